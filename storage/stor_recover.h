/*
 * stor_recover - start-up check of the queue before the writer runs.
 *
 * In one write txn: decode every `meta` record and check its body (exists,
 * length, and CRC32C unless verify_bodies is off); quarantine (move into
 * `corrupt`, never delete) every message whose metadata or body is bad and
 * every body without metadata; compare the `sched` and `hold` indexes with
 * what the metadata implies and rebuild an index that differs. Commit,
 * then report each quarantined record and hand every message left in the
 * queue (read snapshot, in id order) to the scheduler's callback.
 * Marks the queue recovered (stor_writer_new requires it).
 */
#ifndef STOR_RECOVER_H
#define STOR_RECOVER_H

#include "stor_queue.h"

struct stor_recover_report {
	uint64_t messages;          /* in the queue after recovery */
	uint64_t pending;           /* ... with a pending recipient */
	uint64_t quarantined;       /* moved to `corrupt` by this run */
	uint64_t corrupt_total;     /* entries in `corrupt` afterwards */
	int sched_rebuilt;          /* index differed and was rebuilt */
	int hold_rebuilt;
	uint64_t sched_entries, hold_entries;
};

struct stor_recover_cbs {
	/* every message in the queue; strings valid during the call only */
	void (*message)(void *arg, uint64_t qid, const struct stor_msg *m);
	/* every record quarantined by this run */
	void (*corrupt)(void *arg, uint8_t src, uint64_t qid, const char *reason);
	void *arg;
};

/* stor_recover_run - see above. cbs and rep may be NULL.
 * Errors: MDB_* (the environment is unusable; nothing was changed),
 * ENOMEM */
int stor_recover_run(struct stor_queue *q, const struct stor_recover_cbs *cbs,
		     struct stor_recover_report *rep);

#endif
