/*
 * dsched.h - the delivery scheduler (control plane, main lcore).
 *
 * Owns the ready set of queued messages by (priority, next attempt),
 * splits each message's pending recipients by destination into delivery
 * jobs (djob.h), applies per-destination limits (connections, rate), link
 * states (open / closed / down with probe), retries with the configured
 * backoff up to the maximum lifetime, and DSNs (dsn.h) for failures,
 * delays and relayed notices. Every result goes to the storage writer
 * (recipient states, next attempt, deletes, destination states, bounce
 * enqueues); after a restart dsched_new() rebuilds everything from the
 * queue: messages from `meta`, link states from `dest`.
 *
 * Threads: one thread (the control reactor). dsched_poll is its poller;
 * the operator functions below are called from the control socket on the
 * same thread. Operator functions validate every argument before they
 * change anything: on error nothing was changed and err says why.
 * Changes are submitted to the storage writer; they are durable a moment
 * after the call returns (dsched_status().pending_commits).
 */
#ifndef SLUICE_DSCHED_H
#define SLUICE_DSCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "stor_rec.h"

struct mstore;
struct dsched;

/* message states as operators see them (queue list state=...) */
enum dsched_mstate {
	DSCHED_M_READY = 0,    /* due now, waiting for a free slot */
	DSCHED_M_ACTIVE,       /* a delivery job is out */
	DSCHED_M_DEFERRED,     /* waiting for its next attempt (retry) */
	DSCHED_M_HELD,         /* waiting on a closed or down link */
	DSCHED_M_HOLD,         /* held by an operator (queue hold) */
	DSCHED_M_UNKNOWN,      /* not in the queue (or not loaded yet) */
};
const char *dsched_mstate_name(enum dsched_mstate s);
/* dsched_mstate_parse - "ready", "active", ...; -1 if unknown */
int dsched_mstate_parse(const char *name);

/* dsched_new - scheduler over m's queue and directory; reads the whole
 * queue (rebuild). 0 or -1 + err */
int dsched_new(struct mstore *m, const struct cfg *c, struct dsched **out,
	      char *err, size_t errlen);
void dsched_free(struct dsched *s);
/* dsched_poll - reactor poller: new messages, due messages, job results,
 * commits; returns work done (0 = idle) */
int dsched_poll(void *arg, uint64_t now_us);
/* dsched_next_wakeup_us - when dsched_poll has timed work next (the
 * control reactor sleeps at most until then) */
uint64_t dsched_next_wakeup_us(const struct dsched *s);
/* dsched_shutdown - stop dispatching; call dsched_poll until
 * dsched_drained() so jobs out come back and results commit */
void dsched_shutdown(struct dsched *s);
bool dsched_drained(const struct dsched *s);

/* ---- operator actions (control socket) ---- */
enum dsched_op {
	DSCHED_OP_HOLD = 0,    /* no attempts until released */
	DSCHED_OP_RELEASE,     /* undo hold; due now */
	DSCHED_OP_DELETE,      /* remove without a bounce (logged) */
	DSCHED_OP_RETRY,       /* due now (skips backoff; not a closed link) */
};
/* dsched_op_parse - "hold", "release", "delete", "retry"; -1 if unknown */
int dsched_op_parse(const char *name);

/* dsched_msgs_op - apply op to every listed message; every id must be in
 * the queue (else -1, nothing done). Returns the count changed */
int dsched_msgs_op(struct dsched *s, enum dsched_op op, const uint64_t *qid,
		  unsigned n, char *err, size_t errlen);
/* dsched_dest_op - apply op to every message with a pending recipient
 * for dest; -1 + err for an unknown destination. Returns the count */
int dsched_dest_op(struct dsched *s, enum dsched_op op, const char *dest,
		  char *err, size_t errlen);
/* dsched_flush - every deferred message due now (queue flush); count */
int dsched_flush(struct dsched *s);
/* dsched_link_set - open (releases the holding queue in priority order)
 * or close a destination's link; a destination not seen yet is created
 * (so a link can be closed before mail for it arrives). 0 or -1 + err */
int dsched_link_set(struct dsched *s, const char *dest, enum stor_link link,
		   char *err, size_t errlen);

/* ---- views ---- */
enum dsched_mstate dsched_msg_state(const struct dsched *s, uint64_t qid);

struct dsched_dest_info {
	const char *name;
	enum stor_link link;
	uint32_t failures;          /* consecutive */
	uint64_t next_retry_us;     /* down: next probe (unix us) */
	uint64_t changed_us;
	const char *last_error;     /* "" if none */
	uint32_t active;            /* jobs out now */
	uint64_t queued;            /* messages with pending recipients */
	bool queued_more;           /* queued is a lower bound: the count
				     * stopped at DSCHED_COUNT_MAX */
	uint64_t held;              /* ... waiting on the link */
	uint64_t oldest_us;         /* arrival of the oldest (0 = none) */
	uint64_t attempts, delivered, deferred, failed;   /* since start */
	char route[128];            /* "198.18.0.2:2525 tls=opportunistic" */
};
#define DSCHED_COUNT_MAX 100000    /* per-destination count bound */
typedef int (*dsched_dest_cb)(void *arg, const struct dsched_dest_info *d);
/* dsched_links - every known destination, by name; cb nonzero stops */
void dsched_links(const struct dsched *s, dsched_dest_cb cb, void *arg);
/* dsched_link_info - one destination; -1 if unknown */
int dsched_link_info(const struct dsched *s, const char *dest,
		    struct dsched_dest_info *d);

struct dsched_status {
	uint64_t messages;                    /* in the queue */
	uint64_t by_prio[8];
	uint64_t by_state[DSCHED_M_UNKNOWN];   /* enum dsched_mstate */
	uint64_t jobs_active;
	uint64_t destinations, links_closed, links_down;
	uint64_t pending_commits;             /* submitted, not committed */
	/* since start */
	uint64_t delivered, deferred, failed, expired, bounces, delay_notices,
		 relayed_notices, attempts, conn_failures;
	double delivered_per_s;               /* over the last 10 s */
	uint64_t deliver_p50_us, deliver_p99_us;  /* arrival -> delivered, last 4096 */
};
void dsched_status(const struct dsched *s, struct dsched_status *st);

/* dsched_telemetry - register /sluice/queue/status (DPDK telemetry: a
 * copy of dsched_status renewed every 2 s by the scheduler's thread);
 * NULL unregisters the scheduler (the command then answers -ENOTSUP) */
void dsched_telemetry(struct dsched *s);

#endif
