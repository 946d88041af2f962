/*
 * stor_queue - LMDB environment of the queue, schema, ids, readers and the
 * writer's transaction-level operations (contract in stor_queue.h).
 *
 * Invariant kept by every write path: a message with at least one pending
 * recipient has exactly one `sched` entry (its priority and next attempt)
 * and one `hold` entry per distinct destination of its pending recipients;
 * a message without pending recipients has none. Recovery rebuilds the
 * indexes from `meta` when this does not hold.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stor_err.h"
#include "stor_env.h"
#include "stor_queue.h"
#include "stor_rotxn.h"

#define INFO_SCHEMA "schema"
#define INFO_BOOT   "boot"

struct stor_queue {
	MDB_env *env;
	struct stor_queue_dbi dbi;
	uint64_t map_size;
	uint64_t watermark;
	size_t psize;
	uint32_t boot;
	int verify_bodies;
	int recovered;
	enum stor_durability durability;
	stor_log_fn log;
	void *log_arg;
	uint64_t qid_state;        /* atomic: (seconds << 20) | sequence */
	uint64_t used;             /* atomic: bytes in use after the writer's last commit */
	int full;                  /* atomic: the writer refuses messages of the size it last refused */
	int boot_pending;          /* boot generation not yet durable (map was full at open) */
	/* writer-thread scratch */
	uint8_t *sa, *sb;
	size_t sacap, sbcap;
	struct stor_rcpt *rc;
};

struct stor_reader {
	struct stor_queue *q;
	struct stor_rotxn x;
};

static const char *dur_names[] = { "full", "unsafe-nometasync", "unsafe-nosync" };

int stor_queue_durability_parse(const char *name, enum stor_durability *d)
{
	for (unsigned i = 0; i < 3; i++)
		if (name && !strcmp(name, dur_names[i])) {
			*d = (enum stor_durability)i;
			return 0;
		}
	return EINVAL;
}

const char *stor_queue_durability_name(enum stor_durability d)
{
	return (unsigned)d < 3 ? dur_names[d] : "?";
}

static void log_stderr(void *arg, int level, const char *msg)
{
	(void)arg;
	fprintf(stderr, "sluice-storage: %s: %s\n",
		level <= STOR_LOG_ERR ? "error" : level == STOR_LOG_WARN ?
		"warning" : level == STOR_LOG_INFO ? "info" : "debug", msg);
}

void stor_queue_log(struct stor_queue *q, int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	q->log(q->log_arg, level, buf);
}

/* grow - make a scratch buffer at least n bytes */
static int grow(uint8_t **b, size_t *cap, size_t n)
{
	if (*cap >= n)
		return 0;
	size_t c = *cap ? *cap : 4096;
	while (c < n)
		c *= 2;
	uint8_t *p = realloc(*b, c);
	if (!p)
		return ENOMEM;
	*b = p;
	*cap = c;
	return 0;
}

/* open_schema - create the databases and check the schema. On an existing
 * queue this writes nothing, so it succeeds even when the map is full. */
static int open_schema(struct stor_queue *q)
{
	MDB_txn *t;
	int rc = mdb_txn_begin(q->env, NULL, 0, &t);
	if (rc)
		return rc;
	struct { const char *name; MDB_dbi *dbi; } dbs[] = {
		{ "info", &q->dbi.info }, { "body", &q->dbi.body },
		{ "meta", &q->dbi.meta }, { "sched", &q->dbi.sched },
		{ "hold", &q->dbi.hold }, { "dest", &q->dbi.dest },
		{ "corrupt", &q->dbi.corrupt },
	};
	for (unsigned i = 0; i < sizeof dbs / sizeof dbs[0] && !rc; i++)
		rc = mdb_dbi_open(t, dbs[i].name, MDB_CREATE, dbs[i].dbi);
	MDB_val k = { sizeof INFO_SCHEMA - 1, INFO_SCHEMA }, v;
	uint8_t buf[4];
	if (!rc) {
		rc = mdb_get(t, q->dbi.info, &k, &v);
		if (rc == MDB_NOTFOUND) {
			stor_put_le32(buf, STOR_SCHEMA_VERSION);
			v = (MDB_val){ 4, buf };
			rc = mdb_put(t, q->dbi.info, &k, &v, 0);
		} else if (!rc && (v.mv_size != 4 ||
				   stor_get_le32(v.mv_data) != STOR_SCHEMA_VERSION)) {
			rc = STOR_ESCHEMA;
		}
	}
	if (!rc) {
		k = (MDB_val){ sizeof INFO_BOOT - 1, INFO_BOOT };
		rc = mdb_get(t, q->dbi.info, &k, &v);
		if (rc == MDB_NOTFOUND) {
			q->boot = 0;
			rc = 0;
		} else if (!rc) {
			q->boot = v.mv_size == 4 ? stor_get_le32(v.mv_data) + 1 : 0;
		}
	}
	if (rc) {
		mdb_txn_abort(t);
		return rc;
	}
	return mdb_txn_commit(t);
}

/* put_boot - write q->boot as the durable boot generation, own txn */
static int put_boot(struct stor_queue *q)
{
	MDB_txn *t;
	uint8_t buf[4];
	int rc = mdb_txn_begin(q->env, NULL, 0, &t);
	if (rc)
		return rc;
	stor_put_le32(buf, q->boot);
	MDB_val k = { sizeof INFO_BOOT - 1, INFO_BOOT }, v = { 4, buf };
	if ((rc = mdb_put(t, q->dbi.info, &k, &v, 0))) {
		mdb_txn_abort(t);
		return rc;
	}
	return mdb_txn_commit(t);
}

int stor_queue_boot_pending(const struct stor_queue *q) { return q->boot_pending; }

int stor_queue_tick(struct stor_queue *q)
{
	return q->boot_pending ? stor_queue_persist_boot(q) : put_boot(q);
}

int stor_queue_headroom(struct stor_queue *q, MDB_txn *t, unsigned pages)
{
	MDB_txn *c;
	int rc = mdb_txn_begin(q->env, t, 0, &c);
	if (rc)
		return rc;
	for (unsigned i = 0; i < pages && !rc; i++) {
		uint8_t key[10] = { 0xff, 'h' };
		stor_put_be64(key + 2, i);
		/* > half a page: one overflow page per value, so the probe
		 * needs single free pages, not a contiguous run */
		MDB_val k = { sizeof key, key }, v = { q->psize - 64, NULL };
		rc = mdb_put(c, q->dbi.info, &k, &v, MDB_RESERVE);
	}
	mdb_txn_abort(c);    /* gives every probe page back to t */
	return rc;
}

int stor_queue_persist_boot(struct stor_queue *q)
{
	if (!q->boot_pending)
		return 0;
	int rc = put_boot(q);
	if (!rc) {
		q->boot_pending = 0;
		stor_queue_log(q, STOR_LOG_INFO, "boot generation %u stored", q->boot);
	}
	return rc;
}

int stor_queue_open(const struct stor_queue_conf *conf, struct stor_queue **out)
{
	*out = NULL;
	if (!conf || !conf->path || conf->high_watermark < 0 ||
	    conf->high_watermark > 1 || (unsigned)conf->durability > 2)
		return EINVAL;
	struct stor_queue *q = calloc(1, sizeof *q);
	if (!q)
		return ENOMEM;
	q->log = conf->log ? conf->log : log_stderr;
	q->log_arg = conf->log_arg;
	q->durability = conf->durability;
	q->verify_bodies = conf->verify_bodies >= 0;
	unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
	if (conf->durability == STOR_DUR_UNSAFE_NOMETASYNC)
		flags |= MDB_NOMETASYNC;
	else if (conf->durability == STOR_DUR_UNSAFE_NOSYNC)
		flags |= MDB_NOSYNC;
	int dead = 0;
	int rc = stor_env_open(conf->path,
			       conf->map_size ? conf->map_size : (size_t)1 << 30,
			       16, conf->max_readers, flags, &q->env, &dead);
	if (rc) {
		free(q);
		return rc;
	}
	if (dead)
		stor_queue_log(q, STOR_LOG_INFO, "%s: cleared %d stale reader slot(s)",
			       conf->path, dead);
	rc = open_schema(q);
	if (!rc && (rc = put_boot(q)) == MDB_MAP_FULL) {
		/* a full map must not stop a restart: run with the next
		 * generation and store it before the first message (the
		 * writer refuses messages until then, so no stored id carries
		 * a generation that is not durable) */
		q->boot_pending = 1;
		stor_queue_log(q, STOR_LOG_WARN, "%s: map full at open: boot generation %u "
			       "not stored yet; new messages are refused until it is",
			       conf->path, q->boot);
		rc = 0;
	}
	if (rc) {
		mdb_env_close(q->env);
		free(q);
		return rc;
	}
	MDB_envinfo ei;
	MDB_stat st;
	mdb_env_info(q->env, &ei);
	mdb_env_stat(q->env, &st);
	q->map_size = ei.me_mapsize;
	q->psize = st.ms_psize;
	q->watermark = conf->high_watermark >= 1.0 ? UINT64_MAX :
		(uint64_t)((double)q->map_size *
			   (conf->high_watermark > 0 ? conf->high_watermark : 0.90));
	if (conf->durability != STOR_DUR_FULL)
		stor_queue_log(q, STOR_LOG_WARN,
			"%s: durability mode '%s' is for BENCHMARKS ONLY: acknowledged "
			"mail can be lost or the queue corrupted on power loss",
			conf->path, dur_names[conf->durability]);
	*out = q;
	return 0;
}

void stor_queue_close(struct stor_queue *q)
{
	if (!q)
		return;
	mdb_env_close(q->env);
	free(q->sa);
	free(q->sb);
	free(q->rc);
	free(q);
}

MDB_env *stor_queue_env(struct stor_queue *q) { return q->env; }
const struct stor_queue_dbi *stor_queue_dbis(const struct stor_queue *q) { return &q->dbi; }
uint32_t stor_queue_boot(const struct stor_queue *q) { return q->boot; }
void stor_queue_set_recovered(struct stor_queue *q) { q->recovered = 1; }
int stor_queue_recovered(const struct stor_queue *q) { return q->recovered; }
int stor_queue_verify_bodies(const struct stor_queue *q) { return q->verify_bodies; }
uint64_t stor_queue_watermark(const struct stor_queue *q) { return q->watermark; }

/* stor_queue_new_qid - CAS a (seconds, sequence) pair that never goes
 * backwards; if the sequence overflows it borrows the next second */
uint64_t stor_queue_new_qid(struct stor_queue *q)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)(uint32_t)ts.tv_sec << 20;
	uint64_t old = __atomic_load_n(&q->qid_state, __ATOMIC_RELAXED), nxt;
	do {
		nxt = old + 1 > now ? old + 1 : now;
	} while (!__atomic_compare_exchange_n(&q->qid_state, &old, nxt, 1,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return (nxt >> 20) << 32 | (uint64_t)(q->boot & 0xfff) << 20 |
	       (nxt & 0xfffff);
}

/* stor_queue_used_in - pages of every B-tree (free DB, main DB, the named
 * databases) plus the two meta pages, times the page size. mdb_stat() reads
 * counters LMDB keeps per tree, so this is O(number of databases) and, in a
 * write txn, includes that txn's own writes and deletions. (A cursor over
 * LMDB's free DB, the other way to count, is refused in write txns.) */
int stor_queue_used_in(struct stor_queue *q, MDB_txn *txn, uint64_t *used)
{
	const struct stor_queue_dbi *d = &q->dbi;
	MDB_dbi all[] = { 0 /* FREE_DBI */, 1 /* MAIN_DBI */, d->info, d->body,
			  d->meta, d->sched, d->hold, d->dest, d->corrupt };
	uint64_t pages = 2;
	for (unsigned i = 0; i < sizeof all / sizeof all[0]; i++) {
		MDB_stat st;
		int rc = mdb_stat(txn, all[i], &st);
		if (rc)
			return rc;
		pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
	}
	*used = pages * q->psize;
	return 0;
}

int stor_queue_usage(struct stor_queue *q, uint64_t *used, uint64_t *map,
		     uint64_t *watermark)
{
	MDB_txn *t;
	int rc = mdb_txn_begin(q->env, NULL, MDB_RDONLY, &t);
	if (rc)
		return rc;
	rc = stor_queue_used_in(q, t, used);
	mdb_txn_abort(t);
	if (map)
		*map = q->map_size;
	if (watermark)
		*watermark = q->watermark;
	return rc;
}

void stor_queue_publish_used(struct stor_queue *q, uint64_t used, int full)
{
	__atomic_store_n(&q->used, used, __ATOMIC_RELAXED);
	__atomic_store_n(&q->full, full, __ATOMIC_RELEASE);
}

int stor_queue_full(const struct stor_queue *q)
{
	return __atomic_load_n(&q->full, __ATOMIC_ACQUIRE) ||
	       __atomic_load_n(&q->used, __ATOMIC_RELAXED) >= q->watermark;
}

/* ---- readers ---- */

int stor_reader_open(struct stor_queue *q, struct stor_reader **r)
{
	*r = calloc(1, sizeof **r);
	if (!*r)
		return ENOMEM;
	(*r)->q = q;
	return 0;
}

void stor_reader_close(struct stor_reader *r)
{
	if (!r)
		return;
	stor_rotxn_close(&r->x);
	free(r);
}

int stor_reader_begin(struct stor_reader *r)
{
	return stor_rotxn_begin(&r->x, r->q->env);
}

void stor_reader_end(struct stor_reader *r)
{
	stor_rotxn_end(&r->x);
}

MDB_txn *stor_reader_txn(struct stor_reader *r) { return r->x.active ? r->x.txn : NULL; }

int stor_reader_body(struct stor_reader *r, uint64_t qid, int verify,
		     const void **body, size_t *len)
{
	uint8_t key[8];
	MDB_val k = { 8, key }, v;
	if (!r->x.active)
		return EINVAL;
	stor_qid_key(qid, key);
	int rc = mdb_get(r->x.txn, r->q->dbi.body, &k, &v);
	if (rc)
		return rc;
	return stor_rec_body_decode(v.mv_data, v.mv_size, verify, body, len, NULL);
}

int stor_reader_msg(struct stor_reader *r, uint64_t qid, struct stor_msg *m,
		    struct stor_rcpt *rcpt, uint32_t cap)
{
	uint8_t key[8];
	MDB_val k = { 8, key }, v;
	if (!r->x.active)
		return EINVAL;
	stor_qid_key(qid, key);
	int rc = mdb_get(r->x.txn, r->q->dbi.meta, &k, &v);
	if (rc)
		return rc;
	return stor_rec_msg_decode(v.mv_data, v.mv_size, m, rcpt, cap);
}

int stor_reader_dest(struct stor_reader *r, struct stor_str dest,
		     struct stor_dest *d)
{
	MDB_val k = { dest.n, (void *)dest.p }, v;
	if (!r->x.active || !dest.n || dest.n > 255)
		return EINVAL;
	int rc = mdb_get(r->x.txn, r->q->dbi.dest, &k, &v);
	if (rc)
		return rc;
	return stor_rec_dest_decode(v.mv_data, v.mv_size, d);
}

int stor_reader_sched(struct stor_reader *r, uint64_t until_us,
		      stor_sched_cb cb, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	if (!r->x.active)
		return EINVAL;
	int rc = mdb_cursor_open(r->x.txn, r->q->dbi.sched, &c);
	if (rc)
		return rc;
	while (!(rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
		uint8_t prio;
		uint64_t next, qid;
		if (k.mv_size != STOR_SCHED_KEY)
			continue;
		stor_sched_key_parse(k.mv_data, &prio, &next, &qid);
		if (next > until_us)
			continue;    /* later entries of this priority; next prio may be due */
		if (cb(arg, prio, next, qid))
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int stor_reader_hold(struct stor_reader *r, struct stor_str dest,
		     stor_qid_cb cb, void *arg)
{
	uint8_t key[264];
	MDB_cursor *c;
	if (!r->x.active)
		return EINVAL;
	size_t n = stor_hold_key(key, sizeof key, dest, 0);
	if (!n)
		return EINVAL;
	int rc = mdb_cursor_open(r->x.txn, r->q->dbi.hold, &c);
	if (rc)
		return rc;
	MDB_val k = { n, key }, v;
	int op = MDB_SET_RANGE;
	while (!(rc = mdb_cursor_get(c, &k, &v, op))) {
		op = MDB_NEXT;
		if (k.mv_size != n || memcmp(k.mv_data, key, n - 8))
			break;
		if (cb(arg, stor_get_be64((const uint8_t *)k.mv_data + n - 8)))
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int stor_reader_corrupt(struct stor_reader *r, stor_corrupt_cb cb, void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	if (!r->x.active)
		return EINVAL;
	int rc = mdb_cursor_open(r->x.txn, r->q->dbi.corrupt, &c);
	if (rc)
		return rc;
	while (!(rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
		const uint8_t *kp = k.mv_data, *vp = v.mv_data;
		if (k.mv_size < 1 || v.mv_size < 10)
			continue;
		uint64_t qid = k.mv_size == 9 ? stor_get_be64(kp + 1) : 0;
		uint16_t rl = stor_get_le16(vp + 8);
		if ((size_t)rl + 10 > v.mv_size)
			continue;
		struct stor_str reason = { (const char *)vp + 10, rl };
		if (cb(arg, kp[0], qid, stor_get_le64(vp), reason,
		       v.mv_size - 10 - rl))
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int stor_reader_count(struct stor_reader *r, struct stor_queue_counts *c)
{
	MDB_stat st;
	const struct stor_queue_dbi *d = &r->q->dbi;
	struct { MDB_dbi dbi; uint64_t *out; } t[] = {
		{ d->body, &c->body }, { d->meta, &c->meta }, { d->sched, &c->sched },
		{ d->hold, &c->hold }, { d->dest, &c->dest }, { d->corrupt, &c->corrupt },
	};
	if (!r->x.active)
		return EINVAL;
	for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++) {
		int rc = mdb_stat(r->x.txn, t[i].dbi, &st);
		if (rc)
			return rc;
		*t[i].out = st.ms_entries;
	}
	return 0;
}

/* ---- writer-thread operations ---- */

/* has_pending - any recipient still to deliver */
static int has_pending(const struct stor_msg *m)
{
	for (uint32_t i = 0; i < m->nrcpt; i++)
		if (m->rcpt[i].state == STOR_RCPT_PENDING)
			return 1;
	return 0;
}

/* first_pending_for - 1 if recipient i is the first pending one with its
 * destination (so each destination gets one hold entry) */
static int first_pending_for(const struct stor_msg *m, uint32_t i)
{
	const struct stor_rcpt *x = &m->rcpt[i];
	if (x->state != STOR_RCPT_PENDING)
		return 0;
	for (uint32_t j = 0; j < i; j++) {
		const struct stor_rcpt *y = &m->rcpt[j];
		if (y->state == STOR_RCPT_PENDING && y->dest.n == x->dest.n &&
		    !memcmp(y->dest.p, x->dest.p, x->dest.n))
			return 0;
	}
	return 1;
}

/* dests_ok - every destination usable in a hold key */
static int dests_ok(const struct stor_msg *m)
{
	uint8_t key[264];
	for (uint32_t i = 0; i < m->nrcpt; i++)
		if (!stor_hold_key(key, sizeof key, m->rcpt[i].dest, 0))
			return 0;
	return 1;
}

int stor_queue_txn_index(struct stor_queue *q, MDB_txn *t, uint64_t qid,
			 const struct stor_msg *m, int add)
{
	uint8_t key[264];
	MDB_val k, v = { 0, NULL };
	int rc;
	if (!has_pending(m))
		return 0;
	stor_sched_key(key, m->priority, m->next_attempt_us, qid);
	k = (MDB_val){ STOR_SCHED_KEY, key };
	rc = add ? mdb_put(t, q->dbi.sched, &k, &v, 0) :
		   mdb_del(t, q->dbi.sched, &k, NULL);
	if (rc && !(rc == MDB_NOTFOUND && !add))
		return rc;
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		if (!first_pending_for(m, i))
			continue;
		size_t n = stor_hold_key(key, sizeof key, m->rcpt[i].dest, qid);
		if (!n)
			continue;
		k = (MDB_val){ n, key };
		rc = add ? mdb_put(t, q->dbi.hold, &k, &v, 0) :
			   mdb_del(t, q->dbi.hold, &k, NULL);
		if (rc && !(rc == MDB_NOTFOUND && !add))
			return rc;
	}
	return 0;
}

int stor_queue_txn_enqueue(struct stor_queue *q, MDB_txn *t, uint64_t qid,
			   const struct stor_msg *m0, const struct iovec *iov,
			   unsigned iovcnt, size_t body_len)
{
	uint8_t key[8];
	MDB_val k = { 8, key }, v;
	struct stor_msg m = *m0;
	int rc;

	if (body_len > UINT32_MAX - STOR_REC_HDR || !dests_ok(&m))
		return EINVAL;
	size_t msize = stor_rec_msg_size(&m);
	if (!msize)
		return EINVAL;
	stor_qid_key(qid, key);
	rc = mdb_get(t, q->dbi.meta, &k, &v);
	if (rc != MDB_NOTFOUND)
		return rc ? rc : MDB_KEYEXIST;
	uint32_t crc = 0;
	for (unsigned i = 0; i < iovcnt; i++)
		crc = stor_crc32c(crc, iov[i].iov_base, iov[i].iov_len);
	v = (MDB_val){ STOR_REC_HDR + body_len, NULL };
	rc = mdb_put(t, q->dbi.body, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE);
	if (rc == MDB_KEYEXIST)
		return rc;      /* nothing written */
	if (rc)
		return rc == EINVAL ? MDB_BAD_VALSIZE : rc;  /* EINVAL is "clean": remap */
	uint8_t *p = v.mv_data;
	stor_rec_body_header(p, crc);
	p += STOR_REC_HDR;
	for (unsigned i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len)
			memcpy(p, iov[i].iov_base, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	m.body_len = (uint32_t)body_len;
	m.body_crc = crc;
	v = (MDB_val){ msize, NULL };
	rc = mdb_put(t, q->dbi.meta, &k, &v, MDB_RESERVE);
	if (rc)
		return rc == EINVAL ? MDB_BAD_VALSIZE : rc;
	stor_rec_msg_encode(&m, v.mv_data, msize);
	rc = stor_queue_txn_index(q, t, qid, &m, 1);
	return rc == EINVAL ? MDB_BAD_VALSIZE : rc;
}

/* load_meta - copy a message's metadata into scratch and decode it there
 * (the map page may move once we write). Corrupt -> quarantined. */
static int load_meta(struct stor_queue *q, MDB_txn *t, uint64_t qid,
		     struct stor_msg *m)
{
	uint8_t key[8];
	MDB_val k = { 8, key }, v;
	stor_qid_key(qid, key);
	int rc = mdb_get(t, q->dbi.meta, &k, &v);
	if (rc)
		return rc;
	if ((rc = grow(&q->sa, &q->sacap, v.mv_size)))
		return rc;
	if (!q->rc && !(q->rc = calloc(STOR_RCPT_MAX, sizeof *q->rc)))
		return ENOMEM;
	memcpy(q->sa, v.mv_data, v.mv_size);
	rc = stor_rec_msg_decode(q->sa, v.mv_size, m, q->rc, STOR_RCPT_MAX);
	if (rc == STOR_ECORRUPT) {
		rc = stor_queue_txn_quarantine(q, t, qid, "metadata failed to decode");
		return rc ? rc : STOR_ECORRUPT;
	}
	return rc;
}

/* put_meta - encode m (strings may point into scratch a) via scratch b */
static int put_meta(struct stor_queue *q, MDB_txn *t, uint64_t qid,
		    const struct stor_msg *m)
{
	uint8_t key[8];
	size_t n = stor_rec_msg_size(m);
	if (!n)
		return EINVAL;
	int rc = grow(&q->sb, &q->sbcap, n);
	if (rc)
		return rc;
	stor_rec_msg_encode(m, q->sb, n);
	stor_qid_key(qid, key);
	MDB_val k = { 8, key }, v = { n, q->sb };
	rc = mdb_put(t, q->dbi.meta, &k, &v, 0);
	return rc == EINVAL ? MDB_BAD_VALSIZE : rc;
}

int stor_queue_txn_update(struct stor_queue *q, MDB_txn *t, uint64_t qid,
			  const struct stor_update *u)
{
	struct stor_msg m;
	int rc = load_meta(q, t, qid, &m);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < u->nupd; i++)
		if (u->upd[i].index >= m.nrcpt || u->upd[i].state > STOR_RCPT_BOUNCED ||
		    u->upd[i].reply.n > STOR_STR_MAX)
			return EINVAL;
	if ((rc = stor_queue_txn_index(q, t, qid, &m, 0)))
		return rc == EINVAL ? MDB_BAD_VALSIZE : rc;
	for (uint32_t i = 0; i < u->nupd; i++) {
		struct stor_rcpt *x = &m.rcpt[u->upd[i].index];
		x->state = u->upd[i].state;
		x->reply = u->upd[i].reply;
		x->last_attempt_us = u->attempt_us;
		if (x->attempts < UINT16_MAX)
			x->attempts++;
	}
	if (u->nupd)
		m.attempts++;
	m.next_attempt_us = u->next_attempt_us;
	m.flags |= u->set_flags;
	if ((rc = put_meta(q, t, qid, &m)))
		return rc;
	rc = stor_queue_txn_index(q, t, qid, &m, 1);
	return rc == EINVAL ? MDB_BAD_VALSIZE : rc;
}

int stor_queue_txn_delete(struct stor_queue *q, MDB_txn *t, uint64_t qid)
{
	struct stor_msg m;
	uint8_t key[8];
	int rc = load_meta(q, t, qid, &m);
	if (rc)
		return rc;
	if ((rc = stor_queue_txn_index(q, t, qid, &m, 0)))
		return rc == EINVAL ? MDB_BAD_VALSIZE : rc;
	stor_qid_key(qid, key);
	MDB_val k = { 8, key };
	if ((rc = mdb_del(t, q->dbi.meta, &k, NULL)))
		return rc == MDB_NOTFOUND || rc == EINVAL ? MDB_CORRUPTED : rc;
	rc = mdb_del(t, q->dbi.body, &k, NULL);
	if (rc == MDB_NOTFOUND)
		rc = 0;  /* body lost earlier: recovery would have reported it */
	return rc == EINVAL ? MDB_BAD_VALSIZE : rc;
}

int stor_queue_txn_dest(struct stor_queue *q, MDB_txn *t, struct stor_str dest,
			const struct stor_dest *d)
{
	MDB_val k = { dest.n, (void *)dest.p }, v;
	if (!dest.n || dest.n > 255 || memchr(dest.p, 0, dest.n))
		return EINVAL;
	if (!d) {
		int rc = mdb_del(t, q->dbi.dest, &k, NULL);
		return rc == EINVAL ? MDB_BAD_VALSIZE : rc;
	}
	size_t n = stor_rec_dest_size(d);
	if (!n)
		return EINVAL;
	v = (MDB_val){ n, NULL };
	int rc = mdb_put(t, q->dbi.dest, &k, &v, MDB_RESERVE);
	if (rc)
		return rc == EINVAL ? MDB_BAD_VALSIZE : rc;
	stor_rec_dest_encode(d, v.mv_data, n);
	return 0;
}

/* move_one - copy db[key] into corrupt under [src][key] with a reason */
static int move_one(struct stor_queue *q, MDB_txn *t, MDB_dbi dbi, uint8_t src,
		    const uint8_t key[8], const char *reason)
{
	MDB_val k = { 8, (void *)key }, v;
	int rc = mdb_get(t, dbi, &k, &v);
	if (rc)
		return rc == MDB_NOTFOUND ? 0 : rc;
	size_t rl = strlen(reason), n = 10 + rl + v.mv_size;
	if ((rc = grow(&q->sb, &q->sbcap, n)))
		return rc;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	stor_put_le64(q->sb, (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
	stor_put_le16(q->sb + 8, (uint16_t)rl);
	memcpy(q->sb + 10, reason, rl);
	memcpy(q->sb + 10 + rl, v.mv_data, v.mv_size);
	uint8_t ck[9];
	ck[0] = src;
	memcpy(ck + 1, key, 8);
	MDB_val cv = { n, q->sb }, ckv = { 9, ck };
	if ((rc = mdb_put(t, q->dbi.corrupt, &ckv, &cv, 0)))
		return rc;
	return mdb_del(t, dbi, &k, NULL);
}

int stor_queue_txn_quarantine(struct stor_queue *q, MDB_txn *t, uint64_t qid,
			      const char *reason)
{
	uint8_t key[8];
	stor_qid_key(qid, key);
	int rc = move_one(q, t, q->dbi.meta, STOR_SRC_META, key, reason);
	if (!rc)
		rc = move_one(q, t, q->dbi.body, STOR_SRC_BODY, key, reason);
	if (!rc)
		stor_queue_log(q, STOR_LOG_ERR, "quarantined message %s: %s",
			       stor_qid_format(qid, (char[STOR_QID_TEXT + 1]){0}),
			       reason);
	return rc == EINVAL ? MDB_BAD_VALSIZE : rc;
}
