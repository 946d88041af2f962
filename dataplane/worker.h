/*
 * worker.h - the worker role: drains the 8 priority rings (weighted, see
 * prio.h), and for each message resolves every recipient through the
 * directory (aliases expanded up to WORKER_ALIAS_DEPTH, destination =
 * the route's first hop or the recipient's domain), checks loops (more
 * than max_received Received headers: 554 5.4.6) and size (552 5.3.4),
 * builds the queue record and submits it to the storage writer through
 * its own stor_producer. Completions go back to the owning io lcore's done
 * ring with the result (0, or 451/452 and a reason). A worker never
 * blocks: when the writer is behind (producer full) it stops taking from
 * the rings, the rings fill, and io lcores make sessions wait.
 *
 * A worker runs as a poller: on an io lcore (2-core layout) or on its own
 * lcore (worker_main). One producer and one directory reader per worker.
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <stdint.h>

#include "mstore.h"
#include "prio.h"
#include "reactor.h"

#define WORKER_ALIAS_DEPTH 4
#define WORKER_BURST 32

struct worker_stats {
	uint64_t taken[PRIO_LEVELS];   /* dequeued per ring */
	uint64_t submitted, committed, failed_full, failed_store;
	uint64_t loops, too_big, writer_busy, bad;
};

struct worker {
	unsigned lcore_id;
	struct mstore *m;
	struct stor_producer *prod;
	struct stor_dir_reader *rd;
	struct prio_sched ps;
	unsigned max_received;
	uint64_t max_size;
	char hostname[256];
	struct work *held;             /* writer was full: submit first */
	struct reactor reactor;        /* only when on its own lcore */
	unsigned idle_spins, idle_sleep_us_max;
	struct worker_stats st;
};

/* worker_init - producer and reader; 0 or -1 + err (main thread) */
int worker_init(struct worker *k, struct mstore *m, const struct cfg *c,
		char *err, size_t errlen);
/* worker_poll - reactor poller: completions, then new messages */
int worker_poll(void *arg, uint64_t now_us);
/* worker_main - lcore entry for a worker on its own lcore */
int worker_main(void *arg);
/* worker_fini - release the reader (after stop) */
void worker_fini(struct worker *k);

/* worker_count_received - Received: header fields in the header section
 * of msg[0..n) (until the empty line) */
unsigned worker_count_received(const uint8_t *msg, size_t n);

#endif
