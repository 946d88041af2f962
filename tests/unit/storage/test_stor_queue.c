/*
 * test_stor_queue - the queue through its public interfaces: enqueue,
 * update, delete, destination state via the group-commit writer; readers;
 * recovery (reopen after every kind of write, corrupt records moved aside
 * and reported, derived indexes rebuilt); capacity (high watermark,
 * MDB_MAP_FULL on a tiny map); error paths. Each case on its own
 * temporary directory.
 */
#include "stor_test.h"
#include <errno.h>
#include <pthread.h>

static int setup(void **st)
{
	struct qfix *f = calloc(1, sizeof *f);
	f->dir = test_tmpdir();
	f->map_size = 64 << 20;
	*st = f;
	return 0;
}

static int teardown(void **st)
{
	struct qfix *f = *st;
	if (f->w || f->q)
		qfix_close(f);
	test_rmdir(f->dir);
	free(f);
	return 0;
}

/* raw_env - open the queue's LMDB directly (queue closed) */
static MDB_env *raw_env(const char *dir, MDB_txn **t)
{
	MDB_env *e;
	assert_int_equal(mdb_env_create(&e), 0);
	mdb_env_set_maxdbs(e, 16);
	mdb_env_set_mapsize(e, 64 << 20);
	assert_int_equal(mdb_env_open(e, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(e, NULL, 0, t), 0);
	return e;
}

static MDB_dbi raw_dbi(MDB_txn *t, const char *name)
{
	MDB_dbi d;
	assert_int_equal(mdb_dbi_open(t, name, 0, &d), 0);
	return d;
}

static void raw_put(MDB_txn *t, const char *db, const void *k, size_t kn,
		    const void *v, size_t vn)
{
	MDB_val kv = { kn, (void *)k }, vv = { vn, (void *)v };
	assert_int_equal(mdb_put(t, raw_dbi(t, db), &kv, &vv, 0), 0);
}

static void raw_close(MDB_env *e, MDB_txn *t)
{
	assert_int_equal(mdb_txn_commit(t), 0);
	mdb_env_close(e);
}

static struct stor_queue_counts counts(struct qfix *f)
{
	struct stor_reader *r;
	struct stor_queue_counts c;
	assert_int_equal(stor_reader_open(f->q, &r), 0);
	assert_int_equal(stor_reader_begin(r), 0);
	assert_int_equal(stor_reader_count(r, &c), 0);
	stor_reader_close(r);
	return c;
}

/* check_body - body of qid equals want (read straight from the map) */
static void check_body(struct qfix *f, uint64_t qid, const void *want, size_t n)
{
	struct stor_reader *r;
	const void *b;
	size_t bn;
	assert_int_equal(stor_reader_open(f->q, &r), 0);
	assert_int_equal(stor_reader_begin(r), 0);
	assert_int_equal(stor_reader_body(r, qid, 1, &b, &bn), 0);
	assert_int_equal(bn, n);
	assert_memory_equal(b, want, n);
	stor_reader_close(r);
}

static int collect_sched(void *arg, uint8_t prio, uint64_t next, uint64_t qid)
{
	uint64_t *v = arg;
	v[0]++;
	v[1 + 3 * (v[0] - 1)] = prio;
	v[2 + 3 * (v[0] - 1)] = next;
	v[3 + 3 * (v[0] - 1)] = qid;
	return 0;
}

static int collect_qid(void *arg, uint64_t qid)
{
	uint64_t *v = arg;
	v[++v[0]] = qid;
	return 0;
}

static void enqueue_read_reopen(void **st)
{
	struct qfix *f = *st;
	struct tmsg t;
	uint64_t qid;
	assert_int_equal(qfix_open(f), 0);
	uint32_t boot0 = stor_queue_boot(f->q);
	tmsg_init(&t, 3, 2, 4);
	t.m.envid = STOR_STR("ENV1");
	t.r[0].notify = STOR_NOTIFY_SUCCESS | STOR_NOTIFY_FAILURE;
	const char body[] = "Subject: hi\r\n\r\nbody\r\n";
	assert_int_equal(enqueue_sync(f, &t.m, body, sizeof body - 1, &qid), 0);
	for (int round = 0; round < 2; round++) {
		struct stor_reader *r;
		struct stor_msg m;
		struct stor_rcpt rc[8];
		assert_int_equal(stor_reader_open(f->q, &r), 0);
		assert_int_equal(stor_reader_msg(r, qid, &m, rc, 8), EINVAL); /* no snapshot */
		assert_int_equal(stor_reader_begin(r), 0);
		assert_int_equal(stor_reader_msg(r, qid, &m, rc, 8), 0);
		assert_int_equal(m.nrcpt, 3);
		assert_int_equal(m.priority, 4);
		assert_int_equal(m.body_len, sizeof body - 1);
		assert_int_equal(m.body_crc, stor_crc32c(0, body, sizeof body - 1));
		assert_memory_equal(m.envid.p, "ENV1", 4);
		assert_memory_equal(rc[2].addr.p, "rcpt2@d0.example", 16);
		assert_int_equal(rc[0].notify, STOR_NOTIFY_SUCCESS | STOR_NOTIFY_FAILURE);
		assert_int_equal(stor_reader_msg(r, qid, &m, rc, 2), ERANGE);
		assert_int_equal(stor_reader_msg(r, qid + 1, &m, rc, 8), MDB_NOTFOUND);
		uint64_t s[1 + 3 * 8] = { 0 };
		assert_int_equal(stor_reader_sched(r, UINT64_MAX, collect_sched, s), 0);
		assert_int_equal(s[0], 1);
		assert_int_equal(s[1], 4);
		assert_true(s[2] == t.m.next_attempt_us && s[3] == qid);
		memset(s, 0, sizeof s);
		assert_int_equal(stor_reader_sched(r, t.m.next_attempt_us - 1, collect_sched, s), 0);
		assert_int_equal(s[0], 0);   /* not due yet */
		uint64_t h[8] = { 0 };
		assert_int_equal(stor_reader_hold(r, STOR_STR("d0"), collect_qid, h), 0);
		assert_int_equal(h[0], 1);
		assert_true(h[1] == qid);
		h[0] = 0;
		assert_int_equal(stor_reader_hold(r, STOR_STR("d"), collect_qid, h), 0);
		assert_int_equal(h[0], 0);   /* prefix of another destination */
		stor_reader_end(r);
		stor_reader_close(r);
		check_body(f, qid, body, sizeof body - 1);
		struct stor_queue_counts c = counts(f);
		assert_true(c.body == 1 && c.meta == 1 && c.sched == 1 && c.hold == 2);
		qfix_reopen(f);
		assert_int_equal(f->rep.messages, 1);
		assert_int_equal(f->rep.pending, 1);
		assert_int_equal(f->rep.sched_rebuilt, 0);
		assert_int_equal(f->rep.hold_rebuilt, 0);
		assert_int_equal(f->rep.quarantined, 0);
	}
	assert_int_equal(stor_queue_boot(f->q), boot0 + 2);
	assert_int_equal(f->log.err, 0);
}

static void qids_unique_across_restarts(void **st)
{
	struct qfix *f = *st;
	uint64_t ids[3][1000];
	for (int b = 0; b < 3; b++) {
		struct stor_queue_conf c = { .path = f->dir, .log = test_log_fn, .log_arg = &f->log };
		assert_int_equal(stor_queue_open(&c, &f->q), 0);
		for (int i = 0; i < 1000; i++) {
			ids[b][i] = stor_queue_new_qid(f->q);
			if (i)
				assert_true(ids[b][i] > ids[b][i - 1]);
		}
		stor_queue_close(f->q);
		f->q = NULL;
	}
	for (int b = 0; b < 3; b++)
		for (int c = 0; c < b; c++)
			for (int i = 0; i < 1000; i += 37)
				for (int j = 0; j < 1000; j++)
					assert_true(ids[b][i] != ids[c][j]);
}

static void recover_count(void *arg, uint64_t qid, const struct stor_msg *m)
{
	(void)qid; (void)m;
	(*(int *)arg)++;
}

static void update_and_delete(void **st)
{
	struct qfix *f = *st;
	struct tmsg t;
	uint64_t qid;
	assert_int_equal(qfix_open(f), 0);
	tmsg_init(&t, 3, 2, 2);   /* rcpt0 d0, rcpt1 d1, rcpt2 d0 */
	assert_int_equal(enqueue_sync(f, &t.m, "x", 1, &qid), 0);
	/* deliver rcpt1 (all of d1), defer the others to +60 s */
	struct stor_rcpt_upd u[2] = {
		{ 1, STOR_RCPT_DELIVERED, STOR_STR("250 2.0.0 ok") },
		{ 0, STOR_RCPT_PENDING, STOR_STR("451 4.3.0 later") },
	};
	struct stor_sub s = { .op = STOR_OP_UPDATE, .qid = qid };
	s.u.upd = (struct stor_update){ 1700000001000000ull, 1700000060000000ull, 2, u,
					STOR_MSG_DELAY_SENT };
	uint16_t flags0 = t.m.flags;
	assert_int_equal(sync_submit(f->p, &s), 0);
	qfix_reopen(f);
	assert_int_equal(f->rep.sched_rebuilt, 0);
	assert_int_equal(f->rep.hold_rebuilt, 0);
	struct stor_reader *r;
	struct stor_msg m;
	struct stor_rcpt rc[8];
	assert_int_equal(stor_reader_open(f->q, &r), 0);
	assert_int_equal(stor_reader_begin(r), 0);
	assert_int_equal(stor_reader_msg(r, qid, &m, rc, 8), 0);
	assert_int_equal(m.attempts, 1);
	assert_true(m.next_attempt_us == 1700000060000000ull);
	/* set_flags is OR-ed in: the enqueued flags stay */
	assert_int_equal(m.flags, flags0 | STOR_MSG_DELAY_SENT);
	assert_int_equal(rc[1].state, STOR_RCPT_DELIVERED);
	assert_int_equal(rc[1].attempts, 1);
	assert_memory_equal(rc[1].reply.p, "250 2.0.0 ok", 12);
	assert_int_equal(rc[0].state, STOR_RCPT_PENDING);
	assert_memory_equal(rc[0].reply.p, "451 4.3.0 later", 15);
	assert_int_equal(rc[2].attempts, 0);
	uint64_t sc[1 + 3 * 8] = { 0 }, h[8] = { 0 };
	stor_reader_sched(r, UINT64_MAX, collect_sched, sc);
	assert_int_equal(sc[0], 1);
	assert_true(sc[2] == 1700000060000000ull);
	stor_reader_hold(r, STOR_STR("d1"), collect_qid, h);
	assert_int_equal(h[0], 0);
	stor_reader_hold(r, STOR_STR("d0"), collect_qid, h);
	assert_int_equal(h[0], 1);
	stor_reader_close(r);

	/* the rest fail permanently: no longer scheduled, still stored */
	struct stor_rcpt_upd u2[2] = {
		{ 0, STOR_RCPT_FAILED, STOR_STR("550 5.1.1 no") },
		{ 2, STOR_RCPT_FAILED, STOR_STR("550 5.1.1 no") },
	};
	s = (struct stor_sub){ .op = STOR_OP_UPDATE, .qid = qid };
	s.u.upd = (struct stor_update){ 1, 2, 2, u2 };
	assert_int_equal(sync_submit(f->p, &s), 0);
	qfix_reopen(f);
	struct stor_queue_counts c = counts(f);
	assert_true(c.meta == 1 && c.body == 1 && c.sched == 0 && c.hold == 0);
	assert_int_equal(f->rep.messages, 1);
	assert_int_equal(f->rep.pending, 0);
	int seen = 0;
	struct stor_recover_cbs cbs = { .message = recover_count, .arg = &seen };
	qfix_close(f);
	struct stor_queue_conf qc = { .path = f->dir, .log = test_log_fn, .log_arg = &f->log };
	assert_int_equal(stor_queue_open(&qc, &f->q), 0);
	assert_int_equal(stor_recover_run(f->q, &cbs, NULL), 0);
	assert_int_equal(seen, 1);   /* finished-but-not-deleted is handed back too */
	stor_queue_close(f->q);
	f->q = NULL;
	assert_int_equal(qfix_open(f), 0);

	s = (struct stor_sub){ .op = STOR_OP_DELETE, .qid = qid };
	assert_int_equal(sync_submit(f->p, &s), 0);
	s = (struct stor_sub){ .op = STOR_OP_DELETE, .qid = qid };
	assert_int_equal(sync_submit(f->p, &s), MDB_NOTFOUND);
	qfix_reopen(f);
	c = counts(f);
	assert_true(c.meta == 0 && c.body == 0 && c.sched == 0 && c.hold == 0);
	assert_int_equal(f->rep.messages, 0);
}

static void delete_pending_removes_indexes(void **st)
{
	struct qfix *f = *st;
	struct tmsg t;
	uint64_t q1, q2;
	assert_int_equal(qfix_open(f), 0);
	tmsg_init(&t, 4, 3, 1);
	assert_int_equal(enqueue_sync(f, &t.m, "a", 1, &q1), 0);
	assert_int_equal(enqueue_sync(f, &t.m, "b", 1, &q2), 0);
	struct stor_sub s = { .op = STOR_OP_DELETE, .qid = q1 };
	assert_int_equal(sync_submit(f->p, &s), 0);
	qfix_reopen(f);
	struct stor_queue_counts c = counts(f);
	assert_true(c.meta == 1 && c.sched == 1 && c.hold == 3);
	assert_int_equal(f->rep.sched_rebuilt + f->rep.hold_rebuilt, 0);
	check_body(f, q2, "b", 1);
}

static void dest_state(void **st)
{
	struct qfix *f = *st;
	assert_int_equal(qfix_open(f), 0);
	struct stor_dest d = { .link = STOR_LINK_CLOSED, .failures = 4,
		.next_retry_us = 77, .changed_us = 66, .last_error = STOR_STR("connect refused") };
	struct stor_sub s = { .op = STOR_OP_DEST };
	s.u.dest.name = STOR_STR("mx.example");
	s.u.dest.state = &d;
	assert_int_equal(sync_submit(f->p, &s), 0);
	qfix_reopen(f);
	struct stor_reader *r;
	struct stor_dest e;
	assert_int_equal(stor_reader_open(f->q, &r), 0);
	assert_int_equal(stor_reader_begin(r), 0);
	assert_int_equal(stor_reader_dest(r, STOR_STR("mx.example"), &e), 0);
	assert_int_equal(e.link, STOR_LINK_CLOSED);
	assert_int_equal(e.failures, 4);
	assert_memory_equal(e.last_error.p, "connect refused", 15);
	assert_int_equal(stor_reader_dest(r, STOR_STR("other"), &e), MDB_NOTFOUND);
	stor_reader_end(r);
	s = (struct stor_sub){ .op = STOR_OP_DEST };
	s.u.dest.name = STOR_STR("mx.example");
	assert_int_equal(sync_submit(f->p, &s), 0);      /* remove */
	s = (struct stor_sub){ .op = STOR_OP_DEST };
	s.u.dest.name = STOR_STR("");
	s.u.dest.state = &d;
	assert_int_equal(sync_submit(f->p, &s), EINVAL);
	qfix_reopen(f);
	stor_reader_close(r);
	assert_int_equal(stor_reader_open(f->q, &r), 0);
	assert_int_equal(stor_reader_begin(r), 0);
	assert_int_equal(stor_reader_dest(r, STOR_STR("mx.example"), &e), MDB_NOTFOUND);
	stor_reader_close(r);
}

static void error_paths(void **st)
{
	struct qfix *f = *st;
	struct tmsg t;
	uint64_t qid;
	assert_int_equal(qfix_open(f), 0);
	tmsg_init(&t, 2, 2, 0);
	assert_int_equal(enqueue_sync(f, &t.m, "x", 1, &qid), 0);
	/* duplicate id */
	struct iovec iov = { "y", 1 };
	struct stor_sub s = { .op = STOR_OP_ENQUEUE, .qid = qid };
	s.u.enq.msg = &t.m;
	s.u.enq.iov = &iov;
	s.u.enq.iovcnt = 1;
	assert_int_equal(sync_submit(f->p, &s), MDB_KEYEXIST);
	/* bad envelope: priority 9; empty destination */
	t.m.priority = 9;
	assert_int_equal(enqueue_sync(f, &t.m, "x", 1, &qid), EINVAL);
	t.m.priority = 0;
	t.r[1].dest = STOR_STR("");
	assert_int_equal(enqueue_sync(f, &t.m, "x", 1, &qid), EINVAL);
	/* unknown message */
	s = (struct stor_sub){ .op = STOR_OP_UPDATE, .qid = 12345 };
	assert_int_equal(sync_submit(f->p, &s), MDB_NOTFOUND);
	s = (struct stor_sub){ .op = STOR_OP_DELETE, .qid = 12345 };
	assert_int_equal(sync_submit(f->p, &s), MDB_NOTFOUND);
	/* bad recipient index */
	tmsg_init(&t, 2, 2, 0);
	assert_int_equal(enqueue_sync(f, &t.m, "x", 1, &qid), 0);
	struct stor_rcpt_upd u = { 7, STOR_RCPT_DELIVERED, STOR_STR("") };
	s = (struct stor_sub){ .op = STOR_OP_UPDATE, .qid = qid };
	s.u.upd = (struct stor_update){ 1, 2, 1, &u };
	assert_int_equal(sync_submit(f->p, &s), EINVAL);
	/* bad op is refused at submit */
	s = (struct stor_sub){ .op = 99 };
	assert_int_equal(stor_producer_submit(f->p, &s), EINVAL);
	/* the failures did not disturb what was committed */
	qfix_reopen(f);
	assert_int_equal(f->rep.messages, 2);
	struct stor_queue_counts c = counts(f);
	assert_true(c.meta == 2 && c.sched == 2);
	/* EAGAIN when the producer's depth is used up (writer not polled) */
	qfix_close(f);
	struct stor_queue_conf qc = { .path = f->dir, .log = test_log_fn, .log_arg = &f->log };
	struct stor_writer *w;
	struct stor_producer *p;
	assert_int_equal(stor_queue_open(&qc, &f->q), 0);
	assert_int_equal(stor_writer_new(f->q, NULL, &w), EINVAL);   /* not recovered */
	assert_int_equal(stor_recover_run(f->q, NULL, NULL), 0);
	assert_int_equal(stor_writer_new(f->q, NULL, &w), 0);
	assert_int_equal(stor_writer_producer(w, 0, &p), EINVAL);
	assert_int_equal(stor_writer_producer(w, 2, &p), 0);
	struct stor_sub d[3];
	for (int i = 0; i < 3; i++)
		d[i] = (struct stor_sub){ .op = STOR_OP_DELETE, .qid = 99 };
	assert_int_equal(stor_producer_submit(p, &d[0]), 0);
	assert_int_equal(stor_producer_submit(p, &d[1]), 0);
	assert_int_equal(stor_producer_submit(p, &d[2]), STOR_EAGAIN);
	assert_int_equal(stor_producer_outstanding(p), 2);
	/* reactor mode: poll the writer by hand */
	assert_int_equal(stor_writer_poll(w), 2);
	struct stor_sub *out[4];
	assert_int_equal(stor_producer_poll(p, out, 4), 2);
	assert_int_equal(out[0]->result, MDB_NOTFOUND);
	assert_int_equal(stor_producer_outstanding(p), 0);
	stor_writer_stop(w);
	assert_int_equal(stor_producer_submit(p, &d[2]), STOR_ESTOPPED);
	stor_writer_free(w);
	for (int i = 0; i < 64; i++) {
		int rc = stor_writer_new(f->q, NULL, &w);
		assert_int_equal(rc, 0);
		break;
	}
	for (int i = 0; i < STOR_WRITER_MAX_PRODUCERS; i++)
		assert_int_equal(stor_writer_producer(w, 1, &p), 0);
	assert_int_equal(stor_writer_producer(w, 1, &p), ENOSPC);
	stor_writer_free(w);
	stor_queue_close(f->q);
	f->q = NULL;
}

static void open_errors(void **st)
{
	struct qfix *f = *st;
	struct stor_queue *q;
	struct stor_queue_conf c = { .path = f->dir, .log = test_log_fn, .log_arg = &f->log };
	enum stor_durability d;
	assert_int_equal(stor_queue_durability_parse("full", &d), 0);
	assert_int_equal(d, STOR_DUR_FULL);
	assert_int_equal(stor_queue_durability_parse("unsafe-nosync", &d), 0);
	assert_int_equal(d, STOR_DUR_UNSAFE_NOSYNC);
	assert_int_equal(stor_queue_durability_parse("nosync", &d), EINVAL);
	c.high_watermark = 1.5;
	assert_int_equal(stor_queue_open(&c, &q), EINVAL);
	c.high_watermark = 0;
	/* unsafe mode opens with a loud warning */
	c.durability = STOR_DUR_UNSAFE_NOMETASYNC;
	assert_int_equal(stor_queue_open(&c, &q), 0);
	assert_int_equal(f->log.warn, 1);
	assert_non_null(strstr(f->log.last, "BENCHMARKS ONLY"));
	stor_queue_close(q);
	/* a schema this code does not know */
	MDB_txn *t;
	MDB_env *e = raw_env(f->dir, &t);
	uint8_t v[4] = { 99, 0, 0, 0 };
	raw_put(t, "info", "schema", 6, v, 4);
	raw_close(e, t);
	c.durability = STOR_DUR_FULL;
	assert_int_equal(stor_queue_open(&c, &q), STOR_ESCHEMA);
	/* a path that cannot be a directory */
	c.path = "/proc/version/x";
	assert_int_not_equal(stor_queue_open(&c, &q), 0);
	c.path = NULL;
	assert_int_equal(stor_queue_open(&c, &q), EINVAL);
}

struct prod_arg {
	struct qfix *f;
	int n, bad;
	uint64_t *ids;
};

/* producer_thread - n messages with up to 32 outstanding */
static void *producer_thread(void *a)
{
	struct prod_arg *pa = a;
	struct stor_producer *p;
	if (stor_writer_producer(pa->f->w, 32, &p)) {
		pa->bad = -1;
		return NULL;
	}
	struct tmsg t;
	tmsg_init(&t, 1, 1, 3);
	struct stor_sub *subs = calloc(pa->n, sizeof *subs);
	struct iovec *iov = calloc(pa->n, sizeof *iov);
	char (*bodies)[64] = calloc(pa->n, 64);
	int sent = 0, done = 0;
	while (done < pa->n) {
		while (sent < pa->n) {
			struct stor_sub *s = &subs[sent];
			s->op = STOR_OP_ENQUEUE;
			s->qid = pa->ids[sent] = stor_queue_new_qid(pa->f->q);
			snprintf(bodies[sent], 64, "body %d of %p", sent, (void *)pa);
			iov[sent] = (struct iovec){ bodies[sent], strlen(bodies[sent]) };
			s->u.enq.msg = &t.m;
			s->u.enq.iov = &iov[sent];
			s->u.enq.iovcnt = 1;
			if (stor_producer_submit(p, s))
				break;
			sent++;
		}
		struct stor_sub *out[32];
		stor_producer_wait(p, 100000);
		unsigned m = stor_producer_poll(p, out, 32);
		for (unsigned i = 0; i < m; i++)
			if (out[i]->result)
				pa->bad++;
		done += m;
	}
	free(subs);
	free(iov);
	free(bodies);
	return NULL;
}

static void many_producers_group_commit(void **st)
{
	struct qfix *f = *st;
	enum { NP = 4, N = 600 };
	assert_int_equal(qfix_open(f), 0);
	pthread_t th[NP];
	struct prod_arg pa[NP];
	for (int i = 0; i < NP; i++) {
		pa[i] = (struct prod_arg){ f, N, 0, calloc(N, sizeof(uint64_t)) };
		pthread_create(&th[i], NULL, producer_thread, &pa[i]);
	}
	for (int i = 0; i < NP; i++)
		pthread_join(th[i], NULL);
	struct stor_writer_stats ws;
	stor_writer_stats(f->w, &ws);
	for (int i = 0; i < NP; i++)
		assert_int_equal(pa[i].bad, 0);
	assert_true(ws.committed == NP * N);
	assert_true(ws.batches < ws.committed / 4);    /* many per commit */
	assert_true(ws.max_batch > 8);
	qfix_reopen(f);
	assert_int_equal(f->rep.messages, NP * N);
	for (int i = 0; i < NP; i++) {
		for (int j = 0; j < N; j += 50) {
			char b[64];
			snprintf(b, sizeof b, "body %d of %p", j, (void *)&pa[i]);
			check_body(f, pa[i].ids[j], b, strlen(b));
		}
		free(pa[i].ids);
	}
}

/* fill - enqueue bodies of len until n stored or a refusal; returns stored */
static int fill(struct qfix *f, size_t len, int max, uint64_t *ids, int *last_rc)
{
	struct tmsg t;
	tmsg_init(&t, 1, 1, 0);
	char *body = malloc(len);
	int n = 0;
	*last_rc = 0;
	for (; n < max; n++) {
		memset(body, 'a' + n % 26, len);
		int rc = enqueue_sync(f, &t.m, body, len, &ids[n]);
		if (rc) {
			*last_rc = rc;
			break;
		}
	}
	free(body);
	return n;
}

static void high_watermark(void **st)
{
	struct qfix *f = *st;
	f->map_size = 4 << 20;
	f->hw = 0.5;
	uint64_t ids[1000];
	int rc;
	assert_int_equal(qfix_open(f), 0);
	assert_int_equal(stor_queue_full(f->q), 0);
	int n = fill(f, 16384, 1000, ids, &rc);
	assert_int_equal(rc, STOR_EFULL);
	assert_true(n > 20 && n < 1000);
	assert_int_equal(stor_queue_full(f->q), 1);
	uint64_t used, map, wm, ids2[1000];
	int n2;
	assert_int_equal(stor_queue_usage(f->q, &used, &map, &wm), 0);
	assert_true(map == 4 << 20 && wm == 2 << 20);
	assert_true(used <= wm + 65536);
	/* still full: the refused size does not fit without deletions */
	n2 = fill(f, 16384, 1, ids2, &rc);
	assert_int_equal(n2, 0);
	assert_int_equal(rc, STOR_EFULL);
	assert_int_equal(stor_queue_full(f->q), 1);
	/* updates and deletions still work above the watermark; the commits
	 * of the deletions themselves lift the full state (no timer) */
	for (int i = 0; i < n; i++) {
		struct stor_sub s = { .op = STOR_OP_DELETE, .qid = ids[i] };
		assert_int_equal(sync_submit(f->p, &s), 0);
	}
	assert_int_equal(stor_queue_full(f->q), 0);
	assert_int_equal(stor_queue_usage(f->q, &used, &map, &wm), 0);
	assert_true(used < wm / 8);
	n2 = fill(f, 16384, 10, ids2, &rc);
	assert_int_equal(n2, 10);
	assert_int_equal(rc, 0);
	assert_int_equal(stor_queue_full(f->q), 0);
	qfix_reopen(f);
	assert_int_equal(f->rep.messages, 10);
}

static void map_full_never_loses(void **st)
{
	struct qfix *f = *st;
	f->map_size = 1 << 20;   /* tiny */
	f->hw = 1.0;             /* no watermark: hit MDB_MAP_FULL itself */
	assert_int_equal(qfix_open(f), 0);
	enum { N = 64 };
	static char bodies[N][9000];
	struct stor_sub s[N];
	struct iovec iov[N];
	struct tmsg t;
	tmsg_init(&t, 1, 1, 0);
	int committed = 0, full = 0;
	uint64_t ok_ids[N * 4];
	for (int round = 0; round < 4; round++) {
		/* 64 outstanding at once: they land in few batches */
		for (int i = 0; i < N; i++) {
			memset(bodies[i], 'A' + (round * N + i) % 26, sizeof bodies[i]);
			iov[i] = (struct iovec){ bodies[i], sizeof bodies[i] };
			s[i] = (struct stor_sub){ .op = STOR_OP_ENQUEUE,
				.qid = stor_queue_new_qid(f->q) };
			s[i].u.enq.msg = &t.m;
			s[i].u.enq.iov = &iov[i];
			s[i].u.enq.iovcnt = 1;
			assert_int_equal(stor_producer_submit(f->p, &s[i]), 0);
		}
		int got = 0;
		while (got < N) {
			struct stor_sub *out[N];
			stor_producer_wait(f->p, 100000);
			unsigned m = stor_producer_poll(f->p, out, N);
			for (unsigned i = 0; i < m; i++) {
				if (out[i]->result == 0)
					ok_ids[committed++] = out[i]->qid;
				else {
					assert_int_equal(out[i]->result, STOR_EFULL);
					full++;
				}
			}
			got += m;
		}
	}
	struct stor_writer_stats ws;
	stor_writer_stats(f->w, &ws);
	assert_true(committed > 10);
	assert_true(full > 0);
	assert_true(ws.splits > 0);     /* MDB_MAP_FULL happened and was split */
	assert_int_equal(f->log.err, 0);
	/* everything reported committed is there and intact, nothing else */
	qfix_reopen(f);
	assert_int_equal(f->rep.messages, committed);
	assert_int_equal(f->rep.quarantined, 0);
	struct stor_reader *r;
	assert_int_equal(stor_reader_open(f->q, &r), 0);
	assert_int_equal(stor_reader_begin(r), 0);
	for (int i = 0; i < committed; i++) {
		const void *b;
		size_t n;
		assert_int_equal(stor_reader_body(r, ok_ids[i], 1, &b, &n), 0);
		assert_int_equal(n, 9000);
	}
	stor_reader_close(r);
	/* still usable: delete one, then a small message fits */
	struct stor_sub d = { .op = STOR_OP_DELETE, .qid = ok_ids[0] };
	assert_int_equal(sync_submit(f->p, &d), 0);
	uint64_t q;
	assert_int_equal(enqueue_sync(f, &t.m, "small", 5, &q), 0);
}

/* a queue filled until MDB_MAP_FULL refuses even small messages must
 * restart (the crash case: the appliance must come back) with every
 * committed message, then delete and accept again; boot generations stay
 * unique */
static void map_full_reopen(void **st)
{
	struct qfix *f = *st;
	f->map_size = 1 << 20;
	f->hw = 1.0;
	assert_int_equal(qfix_open(f), 0);
	struct tmsg t;
	tmsg_init(&t, 1, 1, 0);
	static uint64_t ids[512];
	static size_t lens[512];
	static char body[9000];
	int n = 0, rc = 0;
	/* big bodies until refused, then ever smaller ones: truly full */
	for (size_t len = 9000; len >= 1; len /= 3) {
		for (;;) {
			assert_true(n < 512);
			memset(body, 'a' + n % 26, len);
			rc = enqueue_sync(f, &t.m, body, len, &ids[n]);
			if (rc)
				break;
			lens[n++] = len;
		}
		assert_int_equal(rc, STOR_EFULL);
		assert_int_equal(stor_queue_full(f->q), 1);
	}
	assert_true(n > 40);
	assert_int_equal(f->log.err, 0);
	for (int k = 0; k < 2; k++) {
		qfix_reopen(f);      /* asserts the open and recovery succeed */
		assert_int_equal(f->rep.messages, n);
		assert_int_equal(f->rep.quarantined, 0);
		assert_int_equal(f->rep.sched_entries, n);
		for (int i = 0; i < n; i++) {
			memset(body, 'a' + i % 26, lens[i]);
			check_body(f, ids[i], body, lens[i]);
		}
	}
	/* deliveries free space; then messages are accepted again */
	for (int i = 0; i < 3; i++) {
		struct stor_sub d = { .op = STOR_OP_DELETE, .qid = ids[i] };
		assert_int_equal(sync_submit(f->p, &d), 0);
	}
	uint64_t q1, q2;
	assert_int_equal(enqueue_sync(f, &t.m, "small", 5, &q1), 0);
	assert_int_equal(stor_queue_full(f->q), 0);
	qfix_reopen(f);
	assert_int_equal(f->rep.messages, n - 3 + 1);
	check_body(f, q1, "small", 5);
	/* the generation the stored id carries was durable: the next
	 * start uses a later one */
	q2 = stor_queue_new_qid(f->q);
	assert_true(((q2 >> 20) & 0xfff) > ((q1 >> 20) & 0xfff));
	assert_int_equal(f->log.err, 0);

	/* worse: the map is full to its last page and LMDB has no reusable
	 * page left, so even the boot generation cannot be written: another
	 * program appended junk in one txn (its freed pages are not reusable
	 * by the next txn) and the map is then opened at exactly the file's
	 * size. The queue still opens with every message; it refuses new ones
	 * until the generation is stored. */
	qfix_close(f);
	MDB_env *e;
	MDB_txn *tx;
	MDB_dbi junk;
	assert_int_equal(mdb_env_create(&e), 0);
	mdb_env_set_maxdbs(e, 16);
	mdb_env_set_mapsize(e, 2 << 20);
	assert_int_equal(mdb_env_open(e, f->dir, 0, 0600), 0);
	/* two txns: the first uses up every reusable page (one page per
	 * value), the second leaves only the first's few freed pages */
	for (uint32_t i = 0, end = 200; end <= 208; end += 8) {
		assert_int_equal(mdb_txn_begin(e, NULL, 0, &tx), 0);
		assert_int_equal(mdb_dbi_open(tx, "junk", MDB_CREATE, &junk), 0);
		for (; i < end; i++) {
			uint8_t k[4] = { 0, 0, (uint8_t)(i >> 8), (uint8_t)i };
			MDB_val kv = { 4, k }, vv = { 3000, NULL };
			assert_int_equal(mdb_put(tx, junk, &kv, &vv,
						 MDB_APPEND | MDB_RESERVE), 0);
			memset(vv.mv_data, 'j', vv.mv_size);
		}
		assert_int_equal(mdb_txn_commit(tx), 0);
	}
	mdb_env_close(e);
	f->map_size = 1 << 20;   /* smaller than the file: LMDB maps exactly the file */
	int warn = f->log.warn;
	assert_int_equal(qfix_open(f), 0);
	assert_true(f->log.warn > warn);     /* "map full at open" */
	assert_int_equal(stor_queue_boot_pending(f->q), 1);
	assert_int_equal(stor_queue_full(f->q), 1);
	assert_int_equal(f->rep.messages, n - 3 + 1);
	check_body(f, q1, "small", 5);
	assert_int_equal(enqueue_sync(f, &t.m, "x", 1, &q2), STOR_EFULL);
	/* the operator raises the map size: the generation is stored and
	 * messages are accepted again */
	f->map_size = 4 << 20;
	qfix_reopen(f);
	assert_int_equal(stor_queue_boot_pending(f->q), 0);
	assert_int_equal(stor_queue_full(f->q), 0);
	assert_int_equal(enqueue_sync(f, &t.m, "x", 1, &q2), 0);
	assert_true(((q2 >> 20) & 0xfff) > ((q1 >> 20) & 0xfff) + 1);
	assert_int_equal(f->log.err, 0);
}

struct corrupt_seen { int n; uint64_t qid[8]; uint8_t src[8]; };
static void on_corrupt(void *arg, uint8_t src, uint64_t qid, const char *reason)
{
	struct corrupt_seen *c = arg;
	assert_non_null(reason);
	c->src[c->n] = src;
	c->qid[c->n++] = qid;
}

static int list_corrupt(void *arg, uint8_t src, uint64_t qid, uint64_t when,
			struct stor_str reason, size_t raw)
{
	int *n = arg;
	(void)src; (void)qid; (void)raw;
	assert_true(when > 0);
	assert_true(reason.n > 0);
	(*n)++;
	return 0;
}

static void corrupt_records_quarantined(void **st)
{
	struct qfix *f = *st;
	struct tmsg t;
	uint64_t q[4];
	assert_int_equal(qfix_open(f), 0);
	tmsg_init(&t, 2, 2, 1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(enqueue_sync(f, &t.m, "hello world", 11, &q[i]), 0);
	qfix_close(f);
	/* garbage meta for q1; a flipped body byte for q2; a body with no
	 * metadata (q3's meta removed) */
	MDB_txn *tx;
	MDB_env *e = raw_env(f->dir, &tx);
	uint8_t k[8];
	stor_qid_key(q[1], k);
	raw_put(tx, "meta", k, 8, "\x01M\0\0garbage!", 12);
	stor_qid_key(q[2], k);
	MDB_val kv = { 8, k }, v;
	assert_int_equal(mdb_get(tx, raw_dbi(tx, "body"), &kv, &v), 0);
	uint8_t copy[64];
	memcpy(copy, v.mv_data, v.mv_size);
	copy[10] ^= 0x20;
	raw_put(tx, "body", k, 8, copy, v.mv_size);
	stor_qid_key(q[3], k);
	kv = (MDB_val){ 8, k };
	assert_int_equal(mdb_del(tx, raw_dbi(tx, "meta"), &kv, NULL), 0);
	raw_close(e, tx);

	struct corrupt_seen cs = { 0 };
	struct stor_recover_cbs cbs = { .corrupt = on_corrupt, .arg = &cs };
	struct stor_queue_conf qc = { .path = f->dir, .log = test_log_fn, .log_arg = &f->log };
	struct stor_recover_report rep;
	assert_int_equal(stor_queue_open(&qc, &f->q), 0);
	assert_int_equal(stor_recover_run(f->q, &cbs, &rep), 0);
	assert_int_equal(rep.quarantined, 3);
	assert_int_equal(cs.n, 3);
	assert_true(cs.qid[0] == q[1] && cs.src[0] == STOR_SRC_META);
	assert_true(cs.qid[1] == q[2] && cs.src[1] == STOR_SRC_META);
	assert_true(cs.qid[2] == q[3] && cs.src[2] == STOR_SRC_BODY);
	assert_int_equal(rep.messages, 1);
	assert_int_equal(rep.corrupt_total, 5);  /* q1 meta+body, q2 meta+body, q3 body */
	assert_int_equal(rep.sched_rebuilt, 1);  /* stale entries of q1..q3 dropped */
	assert_int_equal(rep.sched_entries, 1);
	assert_int_equal(rep.hold_entries, 2);
	assert_true(f->log.err >= 3);
	struct stor_reader *r;
	int n = 0;
	assert_int_equal(stor_reader_open(f->q, &r), 0);
	assert_int_equal(stor_reader_begin(r), 0);
	assert_int_equal(stor_reader_corrupt(r, list_corrupt, &n), 0);
	assert_int_equal(n, 5);
	stor_reader_close(r);
	stor_queue_close(f->q);
	f->q = NULL;
	/* quarantine is stable: the next start finds nothing new */
	assert_int_equal(qfix_open(f), 0);
	assert_int_equal(f->rep.quarantined, 0);
	assert_int_equal(f->rep.corrupt_total, 5);
	assert_int_equal(f->rep.sched_rebuilt + f->rep.hold_rebuilt, 0);
	check_body(f, q[0], "hello world", 11);
}

static void corrupt_meta_seen_by_writer(void **st)
{
	struct qfix *f = *st;
	struct tmsg t;
	uint64_t q;
	assert_int_equal(qfix_open(f), 0);
	tmsg_init(&t, 1, 1, 1);
	assert_int_equal(enqueue_sync(f, &t.m, "x", 1, &q), 0);
	qfix_close(f);
	/* damage it after recovery has run: open + recover, then damage
	 * through a raw txn in the same process is not possible (one env per
	 * process), so damage first and skip body verification... instead:
	 * flip a meta byte, open without recovery checks via a fresh run and
	 * make sure the writer path reports it when it gets there first */
	MDB_txn *tx;
	MDB_env *e = raw_env(f->dir, &tx);
	uint8_t k[8];
	stor_qid_key(q, k);
	MDB_val kv = { 8, k }, v;
	assert_int_equal(mdb_get(tx, raw_dbi(tx, "meta"), &kv, &v), 0);
	uint8_t copy[256];
	memcpy(copy, v.mv_data, v.mv_size);
	copy[20] ^= 1;
	raw_put(tx, "meta", k, 8, copy, v.mv_size);
	raw_close(e, tx);
	struct stor_queue_conf qc = { .path = f->dir, .log = test_log_fn, .log_arg = &f->log };
	assert_int_equal(stor_queue_open(&qc, &f->q), 0);
	stor_queue_set_recovered(f->q);     /* skip recovery: writer meets it */
	assert_int_equal(stor_writer_new(f->q, NULL, &f->w), 0);
	assert_int_equal(stor_writer_producer(f->w, 8, &f->p), 0);
	assert_int_equal(stor_writer_start(f->w), 0);
	struct stor_sub s = { .op = STOR_OP_DELETE, .qid = q };
	assert_int_equal(sync_submit(f->p, &s), STOR_ECORRUPT);
	s = (struct stor_sub){ .op = STOR_OP_DELETE, .qid = q };
	assert_int_equal(sync_submit(f->p, &s), MDB_NOTFOUND);  /* moved aside */
	qfix_reopen(f);
	assert_int_equal(f->rep.corrupt_total, 2);
	assert_int_equal(f->rep.messages, 0);
}

static void index_rebuild(void **st)
{
	struct qfix *f = *st;
	struct tmsg t;
	uint64_t q[3];
	assert_int_equal(qfix_open(f), 0);
	tmsg_init(&t, 3, 3, 2);
	for (int i = 0; i < 3; i++)
		assert_int_equal(enqueue_sync(f, &t.m, "z", 1, &q[i]), 0);
	qfix_close(f);
	/* lose the whole schedule index, add a bogus hold entry */
	MDB_txn *tx;
	MDB_env *e = raw_env(f->dir, &tx);
	assert_int_equal(mdb_drop(tx, raw_dbi(tx, "sched"), 0), 0);
	raw_put(tx, "hold", "zz\0\0\0\0\0\0\0\0\1", 11, "", 0);
	raw_close(e, tx);
	assert_int_equal(qfix_open(f), 0);
	assert_int_equal(f->rep.sched_rebuilt, 1);
	assert_int_equal(f->rep.hold_rebuilt, 1);
	assert_int_equal(f->rep.sched_entries, 3);
	assert_int_equal(f->rep.hold_entries, 9);
	assert_int_equal(f->rep.quarantined, 0);
	qfix_reopen(f);
	assert_int_equal(f->rep.sched_rebuilt + f->rep.hold_rebuilt, 0);
}

static void reader_snapshot(void **st)
{
	struct qfix *f = *st;
	struct tmsg t;
	uint64_t q;
	assert_int_equal(qfix_open(f), 0);
	tmsg_init(&t, 1, 1, 1);
	assert_int_equal(enqueue_sync(f, &t.m, "snapshot", 8, &q), 0);
	struct stor_reader *r;
	const void *b;
	size_t n;
	assert_int_equal(stor_reader_open(f->q, &r), 0);
	assert_int_equal(stor_reader_begin(r), 0);
	assert_int_equal(stor_reader_body(r, q, 0, &b, &n), 0);
	/* the writer is not blocked by the open reader */
	struct stor_sub s = { .op = STOR_OP_DELETE, .qid = q };
	assert_int_equal(sync_submit(f->p, &s), 0);
	assert_memory_equal(b, "snapshot", 8);     /* still valid: old snapshot */
	stor_reader_end(r);
	assert_int_equal(stor_reader_begin(r), 0);  /* renew */
	assert_int_equal(stor_reader_body(r, q, 0, &b, &n), MDB_NOTFOUND);
	stor_reader_end(r);
	assert_int_equal(stor_reader_body(r, q, 0, &b, &n), EINVAL);
	stor_reader_close(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(enqueue_read_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(qids_unique_across_restarts, setup, teardown),
		cmocka_unit_test_setup_teardown(update_and_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(delete_pending_removes_indexes, setup, teardown),
		cmocka_unit_test_setup_teardown(dest_state, setup, teardown),
		cmocka_unit_test_setup_teardown(error_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(many_producers_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(high_watermark, setup, teardown),
		cmocka_unit_test_setup_teardown(map_full_never_loses, setup, teardown),
		cmocka_unit_test_setup_teardown(map_full_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(corrupt_records_quarantined, setup, teardown),
		cmocka_unit_test_setup_teardown(corrupt_meta_seen_by_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(index_rebuild, setup, teardown),
		cmocka_unit_test_setup_teardown(reader_snapshot, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
