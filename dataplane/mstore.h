/*
 * mstore.h - the control plane's side of the accept path: the durable
 * queue and its single group-commit writer (own thread, on the main
 * lcore's core), the directory, the 8 priority rings (MP/MC), one done
 * ring per io lcore (MP/SC), and the aux thread that does slow work off
 * the io lcores: AUTH password verification (scrypt) and writing the mail
 * log lines io lcores post. An external directory backend (LDAP) plugs in
 * through struct mstore_xdir_ops (below) with its own thread and rings.
 *
 * Layout on disk: STATE_DIR/queue (stor_queue), STATE_DIR/directory
 * (stor_dir; fill it with `sluice-stor dir-import`; imports are seen by new
 * lookups at once, LMDB read txns renew per lookup). Opened, recovered and
 * started before the io lcores launch; stopped after they have stopped.
 * Start-up errors are returned as text for log_fatal.
 */
#ifndef SLUICE_MSTORE_H
#define SLUICE_MSTORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"
#include "prio.h"
#include "stor_dir.h"
#include "stor_queue.h"
#include "stor_writer.h"
#include "work.h"

struct rte_ring;

#define MSTORE_MAX_PRODUCERS (CFG_MAX_IO + CFG_MAX_WORKERS)

/* ---- an external directory backend (LDAP: control/ldapdir.h) ----
 * It plugs in through a vtable so the data plane never links the backend:
 * sluiced attaches one (ldapdir_attach) between mstore_open and
 * mstore_start; mstore_start/stop/close start, stop and free it.
 * io lcores and workers read its cache through a reader of their own
 * (never blocking); misses go to its thread as an mstore_xreq and come
 * back on the requester's xdone ring. */
enum mstore_xverdict { MSTORE_X_MISS = 0, MSTORE_X_OK = 1, MSTORE_X_NEG = 2,
		       MSTORE_X_UNAVAIL = 3 };

#define MSTORE_X_ADDR 320
#define MSTORE_X_ALIASES 16
#define MSTORE_X_BUF 4096

/* one cached answer, a copy: strings point into buf */
struct mstore_xrcpt {
	uint8_t verdict;           /* MSTORE_X_OK or MSTORE_X_NEG */
	uint8_t fresh;             /* 1: inside its TTL; 0: stale */
	const char *route;         /* "host:port" or NULL */
	size_t route_len;
	unsigned naliases;         /* forwarding targets */
	const char *alias[MSTORE_X_ALIASES];
	size_t alias_len[MSTORE_X_ALIASES];
	uint8_t buf[MSTORE_X_BUF];
};

/* a recipient lookup: embedded in its session, travels io lcore ->
 * backend thread -> xdone[owner]; the session is parked meanwhile */
struct mstore_xreq {
	uint8_t owner;             /* io lcore index */
	uint8_t verdict;           /* result: enum mstore_xverdict */
	uint8_t stale;             /* result came from a stale cache entry */
	void *sess;
	uint64_t t_us;             /* posted (latency) */
	char addr[MSTORE_X_ADDR];  /* lower-case local@domain */
};

struct mstore_xdir_ops {
	const char *name;
	/* handles - is domain (lower case) backed by this directory */
	bool (*handles)(void *ctx, const char *domain, size_t n);
	/* reader_new - a cache reader for one lcore or thread; NULL if none */
	void *(*reader_new)(void *ctx);
	void (*reader_free)(void *rd);
	/* cached - the cached answer for addr: 0 with *out filled, or
	 * MDB_NOTFOUND (nothing usable cached), or another MDB_* code */
	int (*cached)(void *rd, const char *addr, size_t n, uint64_t now_ms,
		      struct mstore_xrcpt *out);
	/* lookup - post a lookup to the backend's thread; -1 if its ring is
	 * full */
	int (*lookup)(void *ctx, struct mstore_xreq *q);
	/* auth - an AUTH check (WORK_AUTH item, answered on the done ring);
	 * NULL: AUTH stays with the local directory */
	int (*auth)(void *ctx, struct work *w);
	int (*start)(void *ctx, char *err, size_t errlen);
	void (*stop)(void *ctx);
	void (*free)(void *ctx);
};

struct mstore_stats {
	atomic_uint_fast64_t auth_ok, auth_fail, log_lines, log_drops;
};

struct mstore {
	char queue_dir[300], dir_dir[300];
	struct stor_queue *q;
	struct stor_writer *w;
	struct stor_dir *dir;
	struct rte_ring *prio[PRIO_LEVELS];
	struct rte_ring *done[CFG_MAX_IO];
	struct rte_ring *authq, *logq;
	/* delivery (djob.h): scheduler -> io lcore k (SP/SC), io lcores ->
	 * scheduler (MP/SC), and ids of newly committed messages from the
	 * workers to the scheduler (MP/SC; overflow sets sched_rescan) */
	struct rte_ring *djob[CFG_MAX_IO];
	struct rte_ring *dres;
	struct rte_ring *sched_new;
	atomic_bool sched_rescan;
	/* external directory (NULL: none) and its answers per io lcore */
	const struct mstore_xdir_ops *xdir;
	void *xdir_ctx;
	struct rte_ring *xdone[CFG_MAX_IO];
	bool xdir_started;
	unsigned xdone_size;
	unsigned n_io;
	pthread_t aux;
	bool aux_started, writer_started;
	atomic_bool aux_stop;
	struct mstore_stats st;
	uint64_t recovered_msgs;
	int pid;                      /* for mail log lines (aux thread) */
};

/* mstore_open - open/recover the queue, open the directory, make the
 * rings, start the writer thread and the aux thread. 0 or -1 + err */
int mstore_open(struct mstore *m, const struct cfg *c, unsigned n_io,
		char *err, size_t errlen);
/* mstore_producer - a writer producer for one worker (main thread, before
 * launch). NULL + err on failure */
struct stor_producer *mstore_producer(struct mstore *m, char *err,
				      size_t errlen);
/* mstore_log - post one mail log line (any lcore; never blocks: a full
 * queue drops the line and counts it) */
void mstore_log(struct mstore *m, const char *line);
/* mstore_auth - hand an AUTH check to the aux thread (or to the external
 * directory when it does AUTH); -1 if its ring is full (answer 454) */
int mstore_auth(struct mstore *m, struct work *w);
/* mstore_committed - tell the scheduler about a new message (workers,
 * after its commit; never blocks: a full ring asks for a rescan) */
void mstore_committed(struct mstore *m, uint64_t qid);
/* mstore_done - give a finished item back to its owner's done ring */
void mstore_done(struct mstore *m, struct work *w);
/* mstore_stop - stop the aux thread (flushing log lines) and the writer
 * (finishes what was submitted); io lcores and workers must be stopped */
void mstore_stop(struct mstore *m);
/* mstore_start - start the writer thread and the aux thread (after every
 * producer was made). 0 or -1 + err */
int mstore_start(struct mstore *m, char *err, size_t errlen);
/* mstore_xdir_attach - plug in an external directory backend (after
 * mstore_open, before mstore_start): makes the xdone rings. 0 or -1 + err */
int mstore_xdir_attach(struct mstore *m, const struct mstore_xdir_ops *ops,
		       void *ctx, char *err, size_t errlen);
/* mstore_xdone - give a finished lookup back to its owner's xdone ring */
void mstore_xdone(struct mstore *m, struct mstore_xreq *q);
/* mstore_close - free rings, writer, queue, directory, the backend */
void mstore_close(struct mstore *m);

#endif
