/*
 * stor_writer - the queue's single LMDB writer with group commit.
 *
 * Producers (io/worker lcores, the scheduler, delivery) each own a
 * struct stor_producer: a submission rte_ring (single producer / single
 * consumer) into the writer and a completion rte_ring back. The writer
 * drains all submission rings, applies as many submissions as fit the
 * batch limits (count, bytes, time) in ONE write transaction, commits once,
 * and only after mdb_txn_commit() returned success reports each submission
 * as committed (result 0) through its producer's completion ring. A
 * submission that is not committed gets a nonzero result; nothing is ever
 * reported committed that is not on disk (in mode `full`).
 *
 * If a batch hits MDB_MAP_FULL (or MDB_TXN_FULL, or another write error)
 * the transaction is aborted and the batch retried in halves; a single
 * submission that still does not fit gets STOR_EFULL, the rest commit.
 * A txn that stores messages must leave headroom (a few dozen pages) so
 * deletions, updates and a restart always fit; before refusing a lone
 * message for MDB_MAP_FULL the writer commits twice minimally so pages the
 * last commits freed become reusable (LMDB), and retries it once.
 * New messages are refused with STOR_EFULL when an exact count of usage
 * says they would cross the high watermark; updates and deletions are
 * always attempted (they free space). stor_queue_full() is updated after
 * each commit, before completions are reported.
 *
 * The rings are DPDK rte_rings placed in ordinary memory with
 * rte_ring_init(): they work with or without rte_eal_init(), so sluiced,
 * unit tests and tools all use the same transport.
 *
 * Threads: a producer handle belongs to one thread at a time. The writer
 * runs either on its own thread (stor_writer_start) or as a poller on a
 * control-plane lcore (stor_writer_poll), never both.
 */
#ifndef STOR_WRITER_H
#define STOR_WRITER_H

#include <stdint.h>
#include <stddef.h>
#include <sys/uio.h>

#include "stor_queue.h"

#define STOR_WRITER_MAX_PRODUCERS 64

struct stor_writer_conf {
	uint32_t batch_max_ops;     /* close a batch at this many; 0 = 4096 */
	size_t batch_max_bytes;     /* ... or this many body+meta bytes; 0 = 32 MiB */
	uint32_t batch_max_delay_us;/* ... or when the first waited this long; default 0 = none (take what is there) */
	uint32_t lab_commit_delay_us;/* LAB ONLY, never in production: the
				      * writer thread sleeps this long before
				      * committing each non-empty batch, so
				      * backpressure tests get a writer that
				      * falls behind; not applied by
				      * stor_writer_poll, cut short once
				      * stor_writer_stop was called; 0 = off */
	/* debug_on: when set and returning non-zero, one STOR_LOG_DEBUG line
	 * per committed batch (size, commit time, queue bytes in use);
	 * called once per batch from the writer thread */
	int (*debug_on)(void);
};

enum stor_op {
	STOR_OP_ENQUEUE = 1,        /* new message: body + metadata */
	STOR_OP_UPDATE = 2,         /* delivery attempt results */
	STOR_OP_DELETE = 3,         /* message done: remove everything */
	STOR_OP_DEST = 4,           /* set/remove a destination's state */
};

struct stor_producer;

/* one submission; the memory it points to stays untouched by the producer
 * until the writer hands it back through stor_producer_poll() */
struct stor_sub {
	uint8_t op;                 /* enum stor_op */
	int result;                 /* 0 = committed; else the error */
	uint64_t qid;               /* ENQUEUE/UPDATE/DELETE */
	union {
		struct {
			const struct stor_msg *msg;
			const struct iovec *iov;   /* body = concatenation */
			unsigned iovcnt;
		} enq;
		struct stor_update upd;
		struct {
			struct stor_str name;
			const struct stor_dest *state;  /* NULL = remove */
		} dest;
	} u;
	void *user;                 /* producer's cookie, untouched */
	struct stor_producer *prod; /* set by stor_producer_submit */
	size_t cost;                /* internal */
};

struct stor_writer_stats {
	uint64_t batches;           /* committed transactions */
	uint64_t ops;               /* submissions completed */
	uint64_t committed;         /* ... of which committed */
	uint64_t full;              /* refused with STOR_EFULL */
	uint64_t splits;            /* batches retried in halves */
	uint64_t max_batch;         /* most submissions in one commit */
	uint64_t commit_ns;         /* total time in mdb_txn_commit */
};

struct stor_writer;

/* stor_writer_new - writer for a recovered queue (EINVAL if not
 * recovered). Errors: EINVAL, ENOMEM */
int stor_writer_new(struct stor_queue *q, const struct stor_writer_conf *c,
		    struct stor_writer **w);
/* stor_writer_producer - a new producer with room for depth outstanding
 * submissions (rounded up to a power of two). Errors: ENOSPC (too many
 * producers), ENOMEM, EINVAL */
int stor_writer_producer(struct stor_writer *w, unsigned depth,
			 struct stor_producer **p);
/* stor_writer_start - run the writer on its own thread. Errors: errno */
int stor_writer_start(struct stor_writer *w);
/* stor_writer_poll - one round (gather, commit, complete) for a reactor;
 * returns submissions completed */
unsigned stor_writer_poll(struct stor_writer *w);
/* stor_writer_stop - finish what was submitted, stop the thread; later
 * submissions fail with STOR_ESTOPPED */
void stor_writer_stop(struct stor_writer *w);
/* stor_writer_free - stop, free producers and the writer */
void stor_writer_free(struct stor_writer *w);
void stor_writer_stats(struct stor_writer *w, struct stor_writer_stats *s);

/* stor_producer_submit - hand s to the writer. Errors: STOR_EAGAIN
 * (depth outstanding: poll first), STOR_ESTOPPED, EINVAL (bad op) */
int stor_producer_submit(struct stor_producer *p, struct stor_sub *s);
/* stor_producer_poll - completed submissions (result set), up to n */
unsigned stor_producer_poll(struct stor_producer *p, struct stor_sub **out,
			    unsigned n);
/* stor_producer_wait - block until a completion is ready or timeout_us
 * passed (for threads that have nothing else to do); returns the count
 * ready */
unsigned stor_producer_wait(struct stor_producer *p, uint64_t timeout_us);
unsigned stor_producer_outstanding(const struct stor_producer *p);

#endif
