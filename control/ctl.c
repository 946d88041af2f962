/*
 * ctl.c - control role pollers: signals and the periodic stats line.
 *
 * Input: blocked SIGINT/SIGTERM, io lcore snapshots. Output: a stopped
 * reactor on a signal; log lines. Invariant: never touches a stack.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "ctlsock.h"
#include "dsched.h"
#include "iolcore.h"
#include "log.h"
#include "metrics.h"
#include "tsc.h"

void ctl_block_signals(struct ctl *c)
{
	sigemptyset(&c->sigs);
	sigaddset(&c->sigs, SIGINT);
	sigaddset(&c->sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &c->sigs, NULL);
}

/* ctl_poll_signals - poller: wait briefly for a stop signal */
static int ctl_poll_signals(void *arg, uint64_t now)
{
	struct ctl *c = arg;
	struct timespec ts = { 0, 0 };
	int sig;

	(void)now;
	sig = sigtimedwait(&c->sigs, NULL, &ts);
	if (sig > 0) {
		c->signo = sig;
		reactor_stop(&c->reactor);
		return 1;
	}
	return 0;
}

/* ctl_counter - one named value out of a snapshot (0 if absent) */
static uint64_t ctl_counter(const struct iolcore_snap *s, const char *name)
{
	for (unsigned i = 0; i < s->n_net; i++)
		if (strcmp(s->net[i].name, name) == 0)
			return s->net[i].value;
	return 0;
}

void ctl_log_stats(struct iolcore *io, unsigned n_io)
{
	static struct iolcore_snap s;   /* big: keep it off the stack */

	for (unsigned i = 0; i < n_io; i++) {
		iolcore_snapshot(&io[i], &s, 200);
		log_info("stats: lcore %u: rx %llu tx %llu frames, tx drop %llu, "
			 "conns %llu used %llu free, echo %llu conns %llu bytes, "
			 "discard %llu conns %llu bytes, idle sleeps %llu",
			 io[i].lcore_id,
			 (unsigned long long)s.glue.rx_frames,
			 (unsigned long long)s.glue.tx_frames,
			 (unsigned long long)s.glue.tx_drop,
			 (unsigned long long)ctl_counter(&s, "tcp.conns.used"),
			 (unsigned long long)ctl_counter(&s, "tcp.conns.free"),
			 (unsigned long long)s.svc[SVC_ECHO].accepted,
			 (unsigned long long)s.svc[SVC_ECHO].bytes_out,
			 (unsigned long long)s.svc[SVC_DISCARD].accepted,
			 (unsigned long long)s.svc[SVC_DISCARD].bytes_in,
			 (unsigned long long)s.reactor.sleeps);
	}
}

/* ctl_poll_stats - poller: the periodic stats line */
static int ctl_poll_stats(void *arg, uint64_t now)
{
	struct ctl *c = arg;

	if (c->stats_interval_us == 0 || now < c->next_stats_us)
		return 0;
	c->next_stats_us = now + c->stats_interval_us;
	ctl_log_stats(c->io, c->n_io);
	return 0;
}

/* ctl_poll_slow - signals, the control socket and /metrics at most every
 * CTL_SLOW_POLL_US: each costs a syscall per call, and a busy scheduler
 * keeps this loop from sleeping (a profile under load showed 40,000
 * syscalls/s here); a millisecond is nothing to a person or a scraper */
static int ctl_poll_slow(void *arg, uint64_t now)
{
	struct ctl *c = arg;
	int n;

	if (now < c->next_slow_us)
		return 0;
	c->next_slow_us = now + CTL_SLOW_POLL_US;
	n = ctl_poll_signals(c, now);
	if (c->sock)
		n += ctlsock_poll(c->sock, now);
	if (c->metrics)
		n += metrics_poll(c->metrics, now);
	return n;
}

int ctl_run(struct ctl *c, struct iolcore *io, unsigned n_io,
	    unsigned stats_interval_s)
{
	c->io = io;
	c->n_io = n_io;
	c->signo = 0;
	c->stats_interval_us = (uint64_t)stats_interval_s * 1000000u;
	c->next_stats_us = tsc_now_us() + c->stats_interval_us;
	reactor_init(&c->reactor, "control", 16, CTL_IDLE_SLEEP_US);
	reactor_add(&c->reactor, "slow", ctl_poll_slow, c);
	reactor_add(&c->reactor, "stats", ctl_poll_stats, c);
	if (c->sched)
		reactor_add(&c->reactor, "sched", dsched_poll, c->sched);
	reactor_run(&c->reactor);
	return c->signo;
}
