/*
 * ctl.h - the control role on the main lcore: signals, the periodic
 * stats line, the delivery scheduler and the control socket (nothing on
 * the packet path).
 *
 * Pollers: "signals" checks for SIGINT/SIGTERM (blocked in every thread
 * before rte_eal_init, so only this one sees them) and stops the control
 * reactor when one arrives; "stats" logs one line per io lcore every
 * stats_interval_s; "sched" (dsched_poll), "ctlsock" and "metrics" (the
 * Prometheus endpoint, metrics.h) when set. The
 * reactor sleeps when idle (backoff up to CTL_IDLE_SLEEP_US), so an idle
 * control lcore costs little and a busy scheduler never waits long.
 */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

#include <signal.h>
#include <stdint.h>

#include "reactor.h"

struct iolcore;
struct dsched;
struct ctlsock;
struct metrics;

#define CTL_IDLE_SLEEP_US 2000
#define CTL_SLOW_POLL_US 1000     /* signals, control socket, /metrics */

struct ctl {
	struct reactor reactor;
	sigset_t sigs;
	int signo;                /* the signal that stopped us, or 0 */
	struct iolcore *io;
	unsigned n_io;
	uint64_t stats_interval_us, next_stats_us, next_slow_us;
	struct dsched *sched;     /* delivery scheduler or NULL */
	struct ctlsock *sock;     /* control socket or NULL */
	struct metrics *metrics;  /* /metrics endpoint (metrics.h) or NULL */
};

/* ctl_block_signals - block SIGINT/SIGTERM in the calling thread (call
 * before threads are created so they inherit the mask) */
void ctl_block_signals(struct ctl *c);
/* ctl_run - the control reactor until a signal; returns the signal */
int ctl_run(struct ctl *c, struct iolcore *io, unsigned n_io,
	    unsigned stats_interval_s);
/* ctl_log_stats - one info line per io lcore */
void ctl_log_stats(struct iolcore *io, unsigned n_io);

#endif
