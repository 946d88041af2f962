/*
 * stor_recover - verify, quarantine, rebuild indexes, enumerate (contract
 * in stor_recover.h).
 *
 * Cursor walks never modify the database they walk: bad keys are collected
 * first and moved after the walk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stor_err.h"
#include "stor_recover.h"

struct bad {
	uint64_t qid;
	uint8_t src;
	const char *reason;
};

struct badlist {
	struct bad *v;
	size_t n, cap;
};

static int bad_add(struct badlist *l, uint64_t qid, uint8_t src, const char *reason)
{
	if (l->n == l->cap) {
		size_t c = l->cap ? l->cap * 2 : 64;
		struct bad *v = realloc(l->v, c * sizeof *v);
		if (!v)
			return ENOMEM;
		l->v = v;
		l->cap = c;
	}
	l->v[l->n++] = (struct bad){ qid, src, reason };
	return 0;
}

/* key_exists - 0 if present, MDB_NOTFOUND or another code */
static int key_exists(MDB_txn *t, MDB_dbi dbi, void *key, size_t n)
{
	MDB_val k = { n, key }, v;
	return mdb_get(t, dbi, &k, &v);
}

/* check_message - decode + body check; counts index entries it implies
 * and whether they are present */
static const char *check_message(struct stor_queue *q, MDB_txn *t,
				 const MDB_val *k, const MDB_val *v,
				 struct stor_rcpt *rc, uint64_t *nsched,
				 uint64_t *nhold, int *missing, int *pending)
{
	const struct stor_queue_dbi *d = stor_queue_dbis(q);
	struct stor_msg m;
	if (k->mv_size != 8)
		return "metadata key is not a queue id";
	if (stor_rec_msg_decode(v->mv_data, v->mv_size, &m, rc, STOR_RCPT_MAX))
		return "metadata failed to decode (version, length or checksum)";
	MDB_val bv;
	if (mdb_get(t, d->body, (MDB_val *)k, &bv))
		return "body missing";
	const void *body;
	size_t blen;
	uint32_t crc;
	if (stor_rec_body_decode(bv.mv_data, bv.mv_size,
				 stor_queue_verify_bodies(q), &body, &blen, &crc))
		return "body failed its checksum";
	if (blen != m.body_len || crc != m.body_crc)
		return "body length or checksum differs from metadata";
	*pending = 0;
	for (uint32_t i = 0; i < m.nrcpt; i++)
		if (m.rcpt[i].state == STOR_RCPT_PENDING)
			*pending = 1;
	if (!*pending)
		return NULL;
	uint64_t qid = stor_qid_from_key(k->mv_data);
	uint8_t key[264];
	stor_sched_key(key, m.priority, m.next_attempt_us, qid);
	(*nsched)++;
	if (key_exists(t, d->sched, key, STOR_SCHED_KEY))
		missing[0] = 1;
	for (uint32_t i = 0; i < m.nrcpt; i++) {
		int first = m.rcpt[i].state == STOR_RCPT_PENDING;
		for (uint32_t j = 0; first && j < i; j++)
			if (m.rcpt[j].state == STOR_RCPT_PENDING &&
			    m.rcpt[j].dest.n == m.rcpt[i].dest.n &&
			    !memcmp(m.rcpt[j].dest.p, m.rcpt[i].dest.p, m.rcpt[i].dest.n))
				first = 0;
		if (!first)
			continue;
		size_t n = stor_hold_key(key, sizeof key, m.rcpt[i].dest, qid);
		if (!n)
			continue;
		(*nhold)++;
		if (key_exists(t, d->hold, key, n))
			missing[1] = 1;
	}
	return NULL;
}

/* rebuild - empty an index and re-add every message's entries */
static int rebuild(struct stor_queue *q, MDB_txn *t, int sched, int hold,
		   struct stor_rcpt *rc)
{
	const struct stor_queue_dbi *d = stor_queue_dbis(q);
	int r = 0;
	if (sched && (r = mdb_drop(t, d->sched, 0)))
		return r;
	if (hold && (r = mdb_drop(t, d->hold, 0)))
		return r;
	MDB_cursor *c;
	MDB_val k, v;
	if ((r = mdb_cursor_open(t, d->meta, &c)))
		return r;
	uint8_t key[264];
	MDB_val e = { 0, NULL };
	while (!(r = mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
		struct stor_msg m;
		if (k.mv_size != 8 || stor_rec_msg_decode(v.mv_data, v.mv_size, &m, rc,
							  STOR_RCPT_MAX))
			continue;    /* cannot happen after quarantine */
		uint64_t qid = stor_qid_from_key(k.mv_data);
		int pending = 0;
		for (uint32_t i = 0; i < m.nrcpt; i++) {
			if (m.rcpt[i].state != STOR_RCPT_PENDING)
				continue;
			pending = 1;
			size_t n = stor_hold_key(key, sizeof key, m.rcpt[i].dest, qid);
			MDB_val hk = { n, key };
			if (hold && n && (r = mdb_put(t, d->hold, &hk, &e, 0)))
				goto out;
		}
		if (sched && pending) {
			stor_sched_key(key, m.priority, m.next_attempt_us, qid);
			MDB_val sk = { STOR_SCHED_KEY, key };
			if ((r = mdb_put(t, d->sched, &sk, &e, 0)))
				goto out;
		}
	}
out:
	mdb_cursor_close(c);
	return r == MDB_NOTFOUND ? 0 : r;
}

/* fix_up - the write-txn part of recovery */
static int fix_up(struct stor_queue *q, MDB_txn *t, struct badlist *bad,
		  struct stor_rcpt *rc, struct stor_recover_report *rep)
{
	const struct stor_queue_dbi *d = stor_queue_dbis(q);
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t nsched = 0, nhold = 0;
	int missing[2] = { 0, 0 }, r;

	if ((r = mdb_cursor_open(t, d->meta, &c)))
		return r;
	while (!(r = mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
		int pending = 0;
		const char *why = check_message(q, t, &k, &v, rc, &nsched, &nhold,
						missing, &pending);
		if (why && (r = bad_add(bad, k.mv_size == 8 ?
				stor_qid_from_key(k.mv_data) : 0, STOR_SRC_META, why)))
			break;
	}
	mdb_cursor_close(c);
	if (r != MDB_NOTFOUND)
		return r;
	/* bodies without metadata */
	if ((r = mdb_cursor_open(t, d->body, &c)))
		return r;
	while (!(r = mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
		MDB_val mv;
		if (k.mv_size == 8 && mdb_get(t, d->meta, &k, &mv) == MDB_NOTFOUND &&
		    (r = bad_add(bad, stor_qid_from_key(k.mv_data), STOR_SRC_BODY,
				 "body without metadata")))
			break;
	}
	mdb_cursor_close(c);
	if (r != MDB_NOTFOUND)
		return r;
	for (size_t i = 0; i < bad->n; i++)
		if ((r = stor_queue_txn_quarantine(q, t, bad->v[i].qid, bad->v[i].reason)))
			return r;
	/* the indexes must hold exactly what the surviving metadata implies */
	MDB_stat ss, hs;
	if ((r = mdb_stat(t, d->sched, &ss)) || (r = mdb_stat(t, d->hold, &hs)))
		return r;
	/* good messages only were counted, so stale entries of quarantined
	 * ones make the counts differ and trigger a rebuild too */
	int sched_bad = missing[0] || ss.ms_entries != nsched;
	int hold_bad = missing[1] || hs.ms_entries != nhold;
	if ((sched_bad || hold_bad) && (r = rebuild(q, t, sched_bad, hold_bad, rc)))
		return r;
	rep->sched_rebuilt = sched_bad;
	rep->hold_rebuilt = hold_bad;
	return 0;
}

int stor_recover_run(struct stor_queue *q, const struct stor_recover_cbs *cbs,
		     struct stor_recover_report *out)
{
	struct stor_recover_report rep = { 0 };
	struct badlist bad = { 0 };
	struct stor_rcpt *rc = calloc(STOR_RCPT_MAX, sizeof *rc);
	MDB_txn *t;
	int r;
	if (!rc)
		return ENOMEM;
	if ((r = mdb_txn_begin(stor_queue_env(q), NULL, 0, &t)))
		goto done;
	if ((r = fix_up(q, t, &bad, rc, &rep))) {
		mdb_txn_abort(t);
		goto done;
	}
	if ((r = mdb_txn_commit(t)))
		goto done;
	stor_queue_set_recovered(q);
	for (size_t i = 0; i < bad.n; i++) {
		char id[STOR_QID_TEXT + 1];
		stor_queue_log(q, STOR_LOG_ERR, "recovery: %s %s: %s, moved to 'corrupt'",
			       bad.v[i].src == STOR_SRC_META ? "message" : "body",
			       stor_qid_format(bad.v[i].qid, id), bad.v[i].reason);
		if (cbs && cbs->corrupt)
			cbs->corrupt(cbs->arg, bad.v[i].src, bad.v[i].qid, bad.v[i].reason);
	}
	rep.quarantined = bad.n;
	/* enumerate for the scheduler from a read snapshot */
	if ((r = mdb_txn_begin(stor_queue_env(q), NULL, MDB_RDONLY, &t)))
		goto done;
	const struct stor_queue_dbi *d = stor_queue_dbis(q);
	MDB_cursor *c;
	MDB_val k, v;
	MDB_stat st;
	if (!(r = mdb_cursor_open(t, d->meta, &c))) {
		while (!(r = mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
			struct stor_msg m;
			if (k.mv_size != 8 ||
			    stor_rec_msg_decode(v.mv_data, v.mv_size, &m, rc, STOR_RCPT_MAX))
				continue;
			rep.messages++;
			for (uint32_t i = 0; i < m.nrcpt; i++)
				if (m.rcpt[i].state == STOR_RCPT_PENDING) {
					rep.pending++;
					break;
				}
			if (cbs && cbs->message)
				cbs->message(cbs->arg, stor_qid_from_key(k.mv_data), &m);
		}
		mdb_cursor_close(c);
		if (r == MDB_NOTFOUND)
			r = 0;
	}
	if (!r && !(r = mdb_stat(t, d->corrupt, &st)))
		rep.corrupt_total = st.ms_entries;
	if (!r && !(r = mdb_stat(t, d->sched, &st)))
		rep.sched_entries = st.ms_entries;
	if (!r && !(r = mdb_stat(t, d->hold, &st)))
		rep.hold_entries = st.ms_entries;
	mdb_txn_abort(t);
done:
	free(bad.v);
	free(rc);
	if (out)
		*out = rep;
	return r;
}
