/*
 * iolcore.c - the io role's pollers and lifetime (see iolcore.h).
 *
 * Input: a prepared struct iolcore. Output: a running stack on one queue
 * pair until stopped. Invariant: only this lcore touches stack, glue and
 * svc; the snapshot is the one thing other threads read, under snap_lock.
 */
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <rte_pause.h>
#include <rte_ring.h>

#include "iolcore.h"
#include "log.h"
#include "mstore.h"
#include "tls_ctx.h"
#include "tsc.h"

#define IOLCORE_DJOB_BURST 32
#define IOLCORE_STOP_RETURN_US 10000000u   /* give up returning jobs */

/* iolcore_poll_rx - poller: one rx burst into the stack */
static int iolcore_poll_rx(void *arg, uint64_t now)
{
	struct iolcore *l = arg;

	return (int)glue_rx(&l->glue, l->stack, now);
}

/* iolcore_poll_tx - poller: timers and output, then the tx burst */
static int iolcore_poll_tx(void *arg, uint64_t now)
{
	struct iolcore *l = arg;

	net_poll(l->stack, now);
	return (int)glue_tx_flush(&l->glue);
}

/* iolcore_deliver_event - svc dispatch of delivery sockets */
static void iolcore_deliver_event(struct svc *v, const struct net_event *ev)
{
	deliver_event(v->deliver, ev, tsc_now_us());
}

/* iolcore_deliver_return - finished jobs onto dres; what does not fit
 * stays in deliver for the next round */
static unsigned iolcore_deliver_return(struct iolcore *l)
{
	struct djob *out[IOLCORE_DJOB_BURST];
	unsigned n, k, total = 0;

	while ((n = deliver_done_peek(l->deliver, out, IOLCORE_DJOB_BURST))) {
		k = rte_ring_mp_enqueue_burst(l->m->dres, (void **)out, n,
					      NULL);
		deliver_done_consume(l->deliver, k);
		total += k;
		if (k < n) {
			l->dres_full++;
			break;
		}
	}
	return total;
}

/* iolcore_poll_deliver - poller: new jobs, delivery timers, results */
static int iolcore_poll_deliver(void *arg, uint64_t now)
{
	struct iolcore *l = arg;
	void *jobs[IOLCORE_DJOB_BURST];
	unsigned room = deliver_room(l->deliver), n = 0;
	int work;

	if (room > IOLCORE_DJOB_BURST)
		room = IOLCORE_DJOB_BURST;
	if (room)
		n = rte_ring_sc_dequeue_burst(l->m->djob[l->queue], jobs, room,
					      NULL);
	for (unsigned i = 0; i < n; i++)
		deliver_job(l->deliver, jobs[i], now);
	work = (int)n + deliver_poll(l->deliver, now);
	return work + (int)iolcore_deliver_return(l);
}

/* iolcore_deliver_stop - every job held or still on our ring goes back
 * finished (DJOB_CONN_FAIL 4.3.2); waits for room on dres, bounded */
static void iolcore_deliver_stop(struct iolcore *l)
{
	uint64_t now = tsc_now_us(), until = now + IOLCORE_STOP_RETURN_US;
	void *p;

	deliver_stop(l->deliver, now);
	iolcore_deliver_return(l);
	while (rte_ring_sc_dequeue(l->m->djob[l->queue], &p) == 0) {
		deliver_job_refuse(p, now);
		while (rte_ring_mp_enqueue(l->m->dres, p) != 0 &&
		       tsc_now_us() < until)
			rte_pause();
	}
	while (deliver_done_peek(l->deliver, (struct djob **)&p, 1) &&
	       tsc_now_us() < until) {
		if (!iolcore_deliver_return(l))
			rte_pause();
	}
}

/* iolcore_deliver_start - delivery state on this lcore; 0 or -1 + err */
static int iolcore_deliver_start(struct iolcore *l, char *err, size_t errlen)
{
	struct deliver_conf dc = {
		.s = l->stack, .tls = l->tls_client, .cfg = l->delivery,
		.owner = l->queue, .svc_event = iolcore_deliver_event,
	};

	if (!l->m) {
		snprintf(err, errlen, "delivery needs the queue (smtp off)");
		return -1;
	}
	dc.q = l->m->q;
	/* leave most of the stack's connections to inbound sessions */
	dc.max_conns = DELIVER_CONNS_DEFAULT;
	if (dc.max_conns > l->ncfg.max_conns / 4)
		dc.max_conns = l->ncfg.max_conns / 4 ? l->ncfg.max_conns / 4 : 1;
	if (dc.max_conns > l->delivery->max_active)
		dc.max_conns = l->delivery->max_active;
	l->deliver = deliver_new(&dc);
	if (!l->deliver) {
		snprintf(err, errlen, "delivery: out of memory or bad [delivery] "
			 "helo_name '%.100s'", l->delivery->helo_name);
		return -1;
	}
	l->svc.deliver = l->deliver;
	return 0;
}

/* iolcore_take_snap - copy counters for readers on other threads */
static void iolcore_take_snap(struct iolcore *l, uint64_t now)
{
	rte_spinlock_lock(&l->snap_lock);
	l->snap.n_net = l->stack ? net_counters(l->stack, l->snap.net,
						IOLCORE_SNAP_MAX) : 0;
	l->snap.glue = l->glue.st;
	memcpy(l->snap.svc, l->svc.st, sizeof(l->snap.svc));
	l->snap.reactor = l->reactor.st;
	l->snap.smtpd = l->smtpd.st;
	if (l->deliver)
		deliver_stats(l->deliver, &l->snap.deliver);
	l->snap.dres_full = l->dres_full;
	l->snap.taken_us = now;
	rte_spinlock_unlock(&l->snap_lock);
}

/* iolcore_stack_debug - one line with the stack counters that changed in
 * the last second or so (the first line after switching on: since start) */
static void iolcore_stack_debug(struct iolcore *l, uint64_t now)
{
	struct net_counter c[IOLCORE_SNAP_MAX];
	char line[1000];
	unsigned n = net_counters(l->stack, c, IOLCORE_SNAP_MAX);
	size_t off = 0;

	if (l->dbg_n != n)
		memset(l->dbg_prev, 0, sizeof(l->dbg_prev));
	for (unsigned i = 0; i < n && off < sizeof(line) - 1; i++) {
		int64_t dv = (int64_t)(c[i].value - l->dbg_prev[i]);
		int w;

		l->dbg_prev[i] = c[i].value;
		if (!dv)
			continue;
		w = snprintf(line + off, sizeof(line) - off, " %s %+lld",
			     c[i].name, (long long)dv);
		off = w < 0 ? off : off + (size_t)w;
	}
	if (off >= sizeof(line))
		off = sizeof(line) - 1;
	line[off] = 0;
	if (l->dbg_n == n)
		log_mdebug(LOG_M_STACK, "io lcore %u, last %.1f s:%s",
			   l->queue, (double)(now - l->dbg_us) / 1e6,
			   off ? line : " no change");
	else
		log_mdebug(LOG_M_STACK, "io lcore %u, since start:%s",
			   l->queue, off ? line : " no change");
	l->dbg_n = n;
	l->dbg_us = now;
}

/* iolcore_poll_stats - poller: serve a pending snapshot request; the
 * stack's debug line */
static int iolcore_poll_stats(void *arg, uint64_t now)
{
	struct iolcore *l = arg;
	uint64_t req = atomic_load_explicit(&l->snap_req, memory_order_acquire);

	if (LOG_MDEBUG_ON(LOG_M_STACK) && l->stack &&
	    now - l->dbg_us >= 1000000u)
		iolcore_stack_debug(l, now);

	if (req != atomic_load_explicit(&l->snap_done, memory_order_relaxed)) {
		iolcore_take_snap(l, now);
		atomic_store_explicit(&l->snap_done, req, memory_order_release);
	}
	return 0;
}

/* iolcore_poll_ctl - poller: apply what the control plane posted */
static int iolcore_poll_ctl(void *arg, uint64_t now)
{
	struct iolcore *l = arg;
	uint64_t gen = atomic_load_explicit(&l->post_gen, memory_order_acquire);
	const struct cfg_smtp *c;
	struct tls_ctx *old = NULL;
	bool drain, tls_set;

	(void)now;
	if (gen == atomic_load_explicit(&l->post_done, memory_order_relaxed))
		return 0;
	c = atomic_exchange_explicit(&l->post_smtp, NULL, memory_order_acq_rel);
	tls_set = atomic_exchange_explicit(&l->post_tls_set, false,
					   memory_order_acq_rel);
	if (tls_set) {
		old = l->tls;
		l->tls = atomic_exchange_explicit(&l->post_tls, NULL,
						  memory_order_acq_rel);
	}
	if (c)
		l->smtp_cfg = c;
	if (l->smtp && (c || tls_set))
		smtpd_reconfigure(&l->smtpd, l->smtp_cfg, l->tls);
	/* sessions already in TLS hold their own SSL_CTX reference */
	tls_ctx_free(old);
	drain = atomic_load_explicit(&l->post_drain, memory_order_acquire);
	if (l->smtp && drain != atomic_load(&l->draining)) {
		l->post_err[0] = '\0';
		if (smtpd_listen(&l->smtpd, !drain, l->post_err,
				 sizeof(l->post_err)) == 0)
			atomic_store(&l->draining, drain);
		log_mdebug(LOG_M_SMTPD, "io lcore %u: SMTP ports %s%s%s",
			   l->lcore_id, drain ? "closed (drain)" : "open",
			   l->post_err[0] ? ": " : "", l->post_err);
	}
	atomic_store_explicit(&l->post_done, gen, memory_order_release);
	return 1;
}

/* iolcore_post_wait - bump the generation, wait for the lcore; 0 or -1 */
static int iolcore_post_wait(struct iolcore *l, unsigned timeout_ms)
{
	struct timespec ts = { 0, 100000 };
	uint64_t gen = atomic_fetch_add_explicit(&l->post_gen, 1,
						 memory_order_acq_rel) + 1;

	for (unsigned i = 0; i <= timeout_ms * 10; i++) {
		if (atomic_load_explicit(&l->post_done, memory_order_acquire)
		    >= gen)
			return 0;
		if (atomic_load_explicit(&l->state, memory_order_acquire) !=
		    IOLCORE_RUNNING)
			return -1;
		nanosleep(&ts, NULL);
	}
	return -1;
}

int iolcore_post(struct iolcore *l, const struct cfg_smtp *smtp,
		 bool set_tls, struct tls_ctx *tls, unsigned timeout_ms)
{
	if (atomic_load_explicit(&l->state, memory_order_acquire) !=
	    IOLCORE_RUNNING)
		return -1;
	if (smtp)
		atomic_store_explicit(&l->post_smtp, smtp,
				      memory_order_release);
	if (set_tls) {
		atomic_store_explicit(&l->post_tls, tls, memory_order_release);
		atomic_store_explicit(&l->post_tls_set, true,
				      memory_order_release);
	}
	return iolcore_post_wait(l, timeout_ms);
}

int iolcore_set_drain(struct iolcore *l, bool on, unsigned timeout_ms)
{
	if (atomic_load_explicit(&l->state, memory_order_acquire) !=
	    IOLCORE_RUNNING)
		return -1;
	atomic_store_explicit(&l->post_drain, on, memory_order_release);
	if (iolcore_post_wait(l, timeout_ms) < 0)
		return -1;
	return atomic_load(&l->draining) == on ? 0 : -1;
}

/* iolcore_deadline - reactor hook: sleep no longer than the next timer */
static uint64_t iolcore_deadline(void *arg)
{
	struct iolcore *l = arg;
	uint64_t t = net_next_deadline(l->stack), dt;

	if (l->deliver && (dt = deliver_deadline(l->deliver)) < t)
		t = dt;
	return t;
}

/* iolcore_fail - publish a start-up failure for main to report */
static int iolcore_fail(struct iolcore *l, const char *why)
{
	snprintf(l->err, sizeof(l->err), "io lcore %u: %s", l->lcore_id, why);
	atomic_store_explicit(&l->state, IOLCORE_FAILED, memory_order_release);
	return -1;
}

int iolcore_main(void *arg)
{
	struct iolcore *l = arg;
	struct net_io io;
	char err[200];

	/* sleeps of a few microseconds need a tight timer slack */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	glue_io(&l->glue, &io);
	if (l->impair.on) {
		l->glue.impair = impair_create(&l->impair,
					       tsc_now_us() ^ l->lcore_id);
		if (!l->glue.impair)
			return iolcore_fail(l, "cannot allocate the impairment "
					    "ring");
	}
	l->stack = net_stack_create(&l->ncfg, &io, tsc_now_us());
	if (!l->stack)
		return iolcore_fail(l, "net_stack_create failed (pool sizes in "
				    "[pools] too large for memory, or an "
				    "inconsistent [tcp] value)");
	if (svc_start(&l->svc, l->stack, l->echo, l->discard, err,
		      sizeof(err)) < 0) {
		net_stack_destroy(l->stack, tsc_now_us());
		glue_tx_flush(&l->glue);
		l->stack = NULL;
		return iolcore_fail(l, err);
	}
	if (l->smtp && smtpd_start(&l->smtpd, &l->svc, l->m, l->queue,
				   l->smtp_cfg, l->tls, err, sizeof(err)) < 0) {
		net_stack_destroy(l->stack, tsc_now_us());
		glue_tx_flush(&l->glue);
		l->stack = NULL;
		return iolcore_fail(l, err);
	}
	if (l->delivery && iolcore_deliver_start(l, err, sizeof(err)) < 0) {
		if (l->smtp)
			smtpd_free_all(&l->smtpd);
		net_stack_destroy(l->stack, tsc_now_us());
		glue_tx_flush(&l->glue);
		l->stack = NULL;
		return iolcore_fail(l, err);
	}
	reactor_init(&l->reactor, "io", l->idle_spins, l->idle_sleep_us_max);
	reactor_add(&l->reactor, "rx", iolcore_poll_rx, l);
	reactor_add(&l->reactor, "app", svc_poll, &l->svc);
	if (l->worker)
		reactor_add(&l->reactor, "worker", worker_poll, l->worker);
	if (l->smtp)
		reactor_add(&l->reactor, "smtp", smtpd_poll, &l->smtpd);
	if (l->deliver)
		reactor_add(&l->reactor, "deliver", iolcore_poll_deliver, l);
	reactor_add(&l->reactor, "tx", iolcore_poll_tx, l);
	reactor_add(&l->reactor, "stats", iolcore_poll_stats, l);
	reactor_add(&l->reactor, "ctl", iolcore_poll_ctl, l);
	reactor_set_deadline(&l->reactor, iolcore_deadline, l);
	iolcore_take_snap(l, tsc_now_us());
	atomic_store_explicit(&l->state, IOLCORE_RUNNING, memory_order_release);

	reactor_run(&l->reactor);

	/* stop: jobs back to the scheduler, RST every live connection, send
	 * those RSTs, last counters */
	if (l->deliver)
		iolcore_deliver_stop(l);
	iolcore_take_snap(l, tsc_now_us());
	net_stack_destroy(l->stack, tsc_now_us());
	glue_tx_flush(&l->glue);
	rte_spinlock_lock(&l->snap_lock);
	l->stack = NULL;
	l->snap.glue = l->glue.st;
	rte_spinlock_unlock(&l->snap_lock);
	deliver_free(l->deliver);
	l->deliver = NULL;
	l->svc.deliver = NULL;
	impair_destroy(l->glue.impair);
	l->glue.impair = NULL;
	atomic_store_explicit(&l->state, IOLCORE_DONE, memory_order_release);
	return 0;
}

void iolcore_snapshot(struct iolcore *l, struct iolcore_snap *out,
		      unsigned timeout_ms)
{
	uint64_t req;
	struct timespec ts = { 0, 50000 };

	req = atomic_fetch_add_explicit(&l->snap_req, 1,
					memory_order_acq_rel) + 1;
	for (unsigned i = 0; i < timeout_ms * 20; i++) {
		if (atomic_load_explicit(&l->state, memory_order_acquire) !=
		    IOLCORE_RUNNING)
			break;
		if (atomic_load_explicit(&l->snap_done, memory_order_acquire)
		    >= req)
			break;
		nanosleep(&ts, NULL);
	}
	rte_spinlock_lock(&l->snap_lock);
	*out = l->snap;
	rte_spinlock_unlock(&l->snap_lock);
}
