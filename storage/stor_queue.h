/*
 * stor_queue - the durable message queue in LMDB: environment, schema,
 * queue ids, read access, and the transaction-level operations the writer
 * (stor_writer) batches.
 *
 * Lifecycle: stor_queue_open() -> stor_recover_run() -> stor_writer_new()
 * ... stor_writer_free() -> stor_queue_close(). The writer refuses a queue
 * that has not been recovered.
 *
 * Named databases (layouts in docs/storage.md):
 *   info     schema version, boot generation
 *   body     qid -> body record (immutable)
 *   meta     qid -> message metadata record
 *   sched    [prio][next attempt][qid] -> empty   (derived from meta)
 *   hold     dest 0x00 qid -> empty                (derived from meta)
 *   dest     destination -> link state record
 *   corrupt  [source type][original key] -> quarantined bytes
 *
 * Threads: open/close from one thread. Readers (struct stor_reader) are
 * usable from any thread, one thread at a time per reader (MDB_NOTLS).
 * stor_queue_txn_* run only on the writer thread inside its write txn.
 * stor_queue_new_qid() and stor_queue_full() are lock-free, any thread.
 */
#ifndef STOR_QUEUE_H
#define STOR_QUEUE_H

#include <stdint.h>
#include <stddef.h>
#include <sys/uio.h>
#include <lmdb.h>

#include "stor_rec.h"

#define STOR_SCHEMA_VERSION 1

enum stor_durability {
	STOR_DUR_FULL = 0,              /* fsync data and meta page each commit */
	STOR_DUR_UNSAFE_NOMETASYNC = 1, /* MDB_NOMETASYNC: last commits may roll back on power loss */
	STOR_DUR_UNSAFE_NOSYNC = 2,     /* MDB_NOSYNC: OS decides; power loss may corrupt */
};

typedef void (*stor_log_fn)(void *arg, int level, const char *msg);
#define STOR_LOG_ERR   3
#define STOR_LOG_WARN  4
#define STOR_LOG_INFO  6
#define STOR_LOG_DEBUG 7            /* only when asked for (stor_writer_conf) */

struct stor_queue_conf {
	const char *path;          /* directory; created 0700 if missing */
	size_t map_size;           /* bytes; 0 = 1 GiB */
	double high_watermark;     /* fraction of map_size; 0 = 0.90; 1.0 = none (only the map size limits) */
	enum stor_durability durability;
	unsigned max_readers;      /* 0 = 126 */
	int verify_bodies;         /* recovery checks body checksums; <0 = off, 0 = default (on) */
	stor_log_fn log;           /* NULL = stderr */
	void *log_arg;
};

struct stor_queue;
struct stor_reader;

/* database handles of an open queue (writer and recovery use them) */
struct stor_queue_dbi {
	MDB_dbi info, body, meta, sched, hold, dest, corrupt;
};

/* corrupt database key prefixes: where the quarantined bytes came from */
#define STOR_SRC_META  'M'
#define STOR_SRC_BODY  'B'
#define STOR_SRC_DEST  'D'

/* stor_queue_durability_parse - "full", "unsafe-nometasync",
 * "unsafe-nosync" -> 0 and *d; EINVAL otherwise */
int stor_queue_durability_parse(const char *name, enum stor_durability *d);
const char *stor_queue_durability_name(enum stor_durability d);

/* stor_queue_open - open or create the environment, check the schema
 * (STOR_ESCHEMA), clear stale reader slots of dead processes, bump the boot
 * generation. Opening an existing queue writes only the boot generation;
 * if the map is too full even for that (MDB_MAP_FULL) the queue still opens
 * (warning logged) with the generation pending, see
 * stor_queue_boot_pending(). Errors: errno (mkdir, EINVAL for bad conf),
 * MDB_* codes. */
int stor_queue_open(const struct stor_queue_conf *conf, struct stor_queue **q);
void stor_queue_close(struct stor_queue *q);

MDB_env *stor_queue_env(struct stor_queue *q);
const struct stor_queue_dbi *stor_queue_dbis(const struct stor_queue *q);
void stor_queue_log(struct stor_queue *q, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint32_t stor_queue_boot(const struct stor_queue *q);
void stor_queue_set_recovered(struct stor_queue *q);
int stor_queue_recovered(const struct stor_queue *q);
int stor_queue_verify_bodies(const struct stor_queue *q);

/* stor_queue_new_qid - a fresh id, unique across restarts (time, boot
 * generation, sequence; see stor_rec.h), increasing within a process */
uint64_t stor_queue_new_qid(struct stor_queue *q);

/* stor_queue_usage - bytes in use (every B-tree's pages plus the two meta
 * pages, times the page size; pages on LMDB's freelist count as free), map
 * size, and the high watermark in bytes; read txn. Errors: MDB_* */
int stor_queue_usage(struct stor_queue *q, uint64_t *used, uint64_t *map,
		     uint64_t *watermark);
/* stor_queue_full - 1 when the writer would refuse a new message now:
 * usage after its last commit is at the watermark, or it refused a message
 * (watermark or MDB_MAP_FULL) and no commit since has freed enough room
 * for one of that size. Changed only by the writer's commits (deletions
 * lift it as they commit), never by a timer. Lock-free, for SMTP to answer
 * 452 4.3.1 at MAIL. */
int stor_queue_full(const struct stor_queue *q);
/* writer publishes usage after a commit and whether it refuses */
void stor_queue_publish_used(struct stor_queue *q, uint64_t used, int full);
uint64_t stor_queue_watermark(const struct stor_queue *q);
/* stor_queue_used_in - usage as stor_queue_usage, within txn (read or
 * write; a write txn's own changes included). O(number of databases).
 * Errors: MDB_* */
int stor_queue_used_in(struct stor_queue *q, MDB_txn *txn, uint64_t *used);
/* stor_queue_boot_pending - 1 if the map was too full at open to store the
 * new boot generation; no message may be stored until
 * stor_queue_persist_boot() succeeded (ids would not be unique across
 * restarts otherwise) */
int stor_queue_boot_pending(const struct stor_queue *q);
/* stor_queue_persist_boot - store the pending boot generation in its own
 * write txn (writer thread; no-op when not pending). Errors: MDB_* (e.g.
 * MDB_MAP_FULL: still pending) */
int stor_queue_persist_boot(struct stor_queue *q);
/* stor_queue_tick - commit a minimal write txn (rewrites the boot
 * generation; stores it if pending). LMDB reuses pages a commit freed only
 * two commits later: a tick lets the next txn reuse what the previous one
 * freed. Errors: MDB_* */
int stor_queue_tick(struct stor_queue *q);
/* stor_queue_headroom - 0 if txn t could still allocate `pages` more
 * single pages (probed in a nested txn that is aborted: t is unchanged);
 * MDB_MAP_FULL if not. The writer keeps this headroom after every txn that
 * stores messages, so deletions, updates and a restart always find pages
 * on a map that messages have filled. Errors: MDB_* */
int stor_queue_headroom(struct stor_queue *q, MDB_txn *t, unsigned pages);

/* ---- readers: read-only snapshots, never block the writer ---- */

/* stor_reader_open - allocate a reader (no txn yet). Errors: ENOMEM */
int stor_reader_open(struct stor_queue *q, struct stor_reader **r);
void stor_reader_close(struct stor_reader *r);
/* stor_reader_begin - start (renew) a snapshot; pointers returned by the
 * reader stay valid until stor_reader_end(). Errors: MDB_* */
int stor_reader_begin(struct stor_reader *r);
/* stor_reader_end - release the snapshot (reset; the slot is kept) */
void stor_reader_end(struct stor_reader *r);
MDB_txn *stor_reader_txn(struct stor_reader *r);

/* stor_reader_body - body bytes straight from the map (no copy); verify
 * != 0 checks the CRC32C. Errors: MDB_NOTFOUND, STOR_ECORRUPT, EINVAL (no
 * snapshot) */
int stor_reader_body(struct stor_reader *r, uint64_t qid, int verify,
		     const void **body, size_t *len);
/* stor_reader_msg - decode metadata; strings point into the map; rcpt is
 * a caller array of cap entries. Errors: MDB_NOTFOUND, STOR_ECORRUPT,
 * ERANGE (m->nrcpt = needed) */
int stor_reader_msg(struct stor_reader *r, uint64_t qid, struct stor_msg *m,
		    struct stor_rcpt *rcpt, uint32_t cap);
/* stor_reader_dest - destination state. Errors: MDB_NOTFOUND, STOR_ECORRUPT */
int stor_reader_dest(struct stor_reader *r, struct stor_str dest,
		     struct stor_dest *d);

/* callbacks return nonzero to stop the walk early */
typedef int (*stor_sched_cb)(void *arg, uint8_t prio, uint64_t next_us,
			     uint64_t qid);
typedef int (*stor_qid_cb)(void *arg, uint64_t qid);
typedef int (*stor_corrupt_cb)(void *arg, uint8_t src, uint64_t qid,
			       uint64_t when_us, struct stor_str reason,
			       size_t raw_len);

/* stor_reader_sched - schedule index in (priority, next attempt) order,
 * entries with next attempt <= until_us (UINT64_MAX = all). Errors: MDB_* */
int stor_reader_sched(struct stor_reader *r, uint64_t until_us,
		      stor_sched_cb cb, void *arg);
/* stor_reader_hold - every queued message with a pending recipient for
 * dest (its holding queue while the link is closed or held) */
int stor_reader_hold(struct stor_reader *r, struct stor_str dest,
		     stor_qid_cb cb, void *arg);
/* stor_reader_corrupt - quarantined records */
int stor_reader_corrupt(struct stor_reader *r, stor_corrupt_cb cb, void *arg);
/* stor_reader_count - entries in each database */
struct stor_queue_counts { uint64_t body, meta, sched, hold, dest, corrupt; };
int stor_reader_count(struct stor_reader *r, struct stor_queue_counts *c);

/* ---- writer-thread operations inside an open write txn ----
 * Contract for the writer: on error a function has written nothing when
 * it returns one of MDB_KEYEXIST, MDB_NOTFOUND, EINVAL, STOR_EFULL;
 * STOR_ECORRUPT means the bad record was quarantined (consistent writes,
 * commit them); any other code means the txn must be aborted. */

/* per-recipient outcome of a delivery attempt */
struct stor_rcpt_upd {
	uint32_t index;             /* recipient index in the message */
	uint8_t state;              /* new enum stor_rcpt_state */
	struct stor_str reply;      /* reply text to remember */
};

struct stor_update {
	uint64_t attempt_us;        /* when the attempt happened */
	uint64_t next_attempt_us;   /* next attempt for pending recipients */
	uint32_t nupd;
	const struct stor_rcpt_upd *upd;
	uint16_t set_flags;         /* STOR_MSG_* OR-ed into the message's */
};

/* enqueue: body (iov concatenation) + metadata + index entries.
 * m->body_len/body_crc are computed here. Errors (clean): MDB_KEYEXIST,
 * EINVAL (record out of range, bad destination) */
int stor_queue_txn_enqueue(struct stor_queue *q, MDB_txn *t, uint64_t qid,
			   const struct stor_msg *m, const struct iovec *iov,
			   unsigned iovcnt, size_t body_len);
/* update: recipient states/replies, attempts, next attempt, flags set; indexes
 * follow. Errors (clean): MDB_NOTFOUND, EINVAL (bad index/state) */
int stor_queue_txn_update(struct stor_queue *q, MDB_txn *t, uint64_t qid,
			  const struct stor_update *u);
/* delete: body, metadata and index entries. Errors (clean): MDB_NOTFOUND */
int stor_queue_txn_delete(struct stor_queue *q, MDB_txn *t, uint64_t qid);
/* dest: set (d != NULL) or remove a destination's state */
int stor_queue_txn_dest(struct stor_queue *q, MDB_txn *t, struct stor_str dest,
			const struct stor_dest *d);
/* quarantine: move a message's meta and body (whatever exists) into
 * `corrupt` with a reason, and drop its index entries if known */
int stor_queue_txn_quarantine(struct stor_queue *q, MDB_txn *t, uint64_t qid,
			      const char *reason);
/* index entries of a decoded message (add or remove) */
int stor_queue_txn_index(struct stor_queue *q, MDB_txn *t, uint64_t qid,
			 const struct stor_msg *m, int add);

#endif
