/*
 * mstore.h - the control plane's side of the accept path: the durable
 * queue and its single group-commit writer (own thread, on the main
 * lcore's core), the directory, the 8 priority rings (MP/MC), one done
 * ring per io lcore (MP/SC), and the aux thread that does slow work off
 * the io lcores: AUTH password verification (scrypt) and writing the mail
 * log lines io lcores post.
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
	unsigned n_io;
	pthread_t aux;
	bool aux_started, writer_started;
	atomic_bool aux_stop;
	struct mstore_stats st;
	uint64_t recovered_msgs;
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
/* mstore_auth - hand an AUTH check to the aux thread; -1 if its ring is
 * full (answer 454) */
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
/* mstore_close - free rings, writer, queue, directory */
void mstore_close(struct mstore *m);

#endif
