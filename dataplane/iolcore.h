/*
 * iolcore.h - the io role: one net_stack, one queue pair, the services.
 *
 * main prepares a struct iolcore per io lcore (net_config, glue fields,
 * services wanted) and launches iolcore_main on it. On its own lcore it
 * creates the stack (memory local to the core), starts the services,
 * publishes state RUNNING (or FAILED with a reason) and runs its reactor:
 *
 *   rx     glue_rx: rx burst -> net_input_burst
 *   app    svc_poll: socket events -> echo / discard / smtp sessions
 *   worker worker_poll (when workers share the io lcores): rings -> writer
 *   smtp   smtpd_poll: done ring (250/4xx), waiting sessions, timers
 *   deliver (when delivery is on) jobs from mstore->djob[queue] into
 *          deliver.h, its timers, finished jobs onto mstore->dres (MP; a
 *          full ring keeps them for the next round, never dropped)
 *   tx     net_poll (timers, output), then glue_tx_flush
 *   stats  answer snapshot requests from the control plane
 *   ctl    take what the control plane posted (sluicectl reload, drain):
 *          new [smtp] settings and a new STARTTLS context for new
 *          sessions, listening on the SMTP ports or not
 *
 * After reactor_stop: delivery finishes every job it holds and every job
 * still on its ring (DJOB_CONN_FAIL 4.3.2) and returns them on dres;
 * then net_stack_destroy (RSTs live connections), final tx
 * flush, a last snapshot, state DONE. Other threads read counters only
 * through iolcore_snapshot (request, the lcore copies under a spinlock);
 * nothing else of the struct is shared after launch, except the post_*
 * fields: the control thread writes them and bumps post_gen (release);
 * the lcore's "ctl" poller applies them between reactor rounds (a quiet
 * point: no session is inside the engine) and publishes post_done.
 */
#ifndef SLUICE_IOLCORE_H
#define SLUICE_IOLCORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_spinlock.h>

#include "deliver.h"
#include "glue.h"
#include "impair.h"
#include "net.h"
#include "reactor.h"
#include "smtpd.h"
#include "svc.h"
#include "worker.h"

#define IOLCORE_SNAP_MAX 256

enum iolcore_state {
	IOLCORE_INIT = 0, IOLCORE_RUNNING, IOLCORE_FAILED, IOLCORE_DONE,
};

struct iolcore_snap {
	unsigned n_net;
	struct net_counter net[IOLCORE_SNAP_MAX];
	struct glue_stats glue;
	struct svc_stats svc[SVC_COUNT];
	struct reactor_stats reactor;
	struct smtpd_stats smtpd;
	struct deliver_stats deliver;
	uint64_t dres_full;             /* rounds a full dres ring deferred */
	uint64_t taken_us;
};

struct iolcore {
	unsigned lcore_id;
	unsigned queue;
	struct net_config ncfg;
	bool echo, discard, smtp;
	struct mstore *m;               /* smtp: queue, rings */
	const struct cfg_smtp *smtp_cfg;
	struct tls_ctx *tls;            /* smtp: STARTTLS context or NULL */
	struct worker *worker;          /* worker poller on this lcore */
	const struct cfg_delivery *delivery;  /* outbound relay (deliver.h); NULL = off */
	struct tls_ctx *tls_client;     /* delivery: client context or NULL */
	struct deliver *deliver;        /* delivery state (lcore's own) */
	uint64_t dres_full;
	struct smtpd smtpd;
	unsigned idle_spins, idle_sleep_us_max;
	struct impair_cfg impair;     /* lab only: sluiced --impair */
	struct glue glue;
	struct net_stack *stack;
	struct svc svc;
	struct reactor reactor;
	atomic_int state;
	char err[256];

	/* control plane -> lcore (iolcore_post / iolcore_set_drain) */
	_Atomic(const struct cfg_smtp *) post_smtp;   /* NULL: no change */
	_Atomic(struct tls_ctx *) post_tls;
	atomic_bool post_tls_set;       /* post_tls replaces tls (NULL: off) */
	atomic_bool post_drain;         /* wanted: SMTP ports closed */
	atomic_uint_fast64_t post_gen, post_done;
	atomic_bool draining;           /* SMTP ports closed now */
	char post_err[160];             /* last failure applying (lcore) */

	rte_spinlock_t snap_lock;
	struct iolcore_snap snap;
	atomic_uint_fast64_t snap_req, snap_done;

	/* sluicectl log debug stack on: counter changes once a second */
	uint64_t dbg_us;
	unsigned dbg_n;
	uint64_t dbg_prev[IOLCORE_SNAP_MAX];
} __rte_cache_aligned;

/* iolcore_main - lcore entry (rte_eal_remote_launch); returns 0 or -1 */
int iolcore_main(void *arg);

/* iolcore_snapshot - fresh counters (waits up to timeout_ms for the lcore,
 * else the last published ones); any thread but the lcore itself */
void iolcore_snapshot(struct iolcore *l, struct iolcore_snap *out,
		      unsigned timeout_ms);

/* iolcore_post - hand new [smtp] settings (smtp: NULL = unchanged; kept
 * alive by the caller while the lcore may use it) and, when set_tls, a
 * new STARTTLS context (ownership passes to the lcore, which frees the old
 * one; connections keep their SSL_CTX reference) to a running io lcore,
 * and wait up to timeout_ms until it has taken them. 0, or -1 if the lcore
 * did not answer in time (it still takes them later) or is not running
 * (nothing posted; tls not taken). Control thread only. */
int iolcore_post(struct iolcore *l, const struct cfg_smtp *smtp,
		 bool set_tls, struct tls_ctx *tls, unsigned timeout_ms);
/* iolcore_set_drain - close (on) or reopen (off) the SMTP ports for new
 * connections; established sessions go on. Waits as iolcore_post; 0 or
 * -1 (not running, no answer in time, or listen failed: post_err) */
int iolcore_set_drain(struct iolcore *l, bool on, unsigned timeout_ms);

#endif
