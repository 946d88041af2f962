/*
 * dsched_test.c - the delivery scheduler (control/dsched.c) driven for
 * real: EAL without huge pages or devices (rte_ring, rte_hash), an LMDB
 * queue and directory in a temporary state_dir (mstore), the storage
 * writer on its own thread. The test plays the workers (messages enqueued
 * through a writer producer, then mstore_committed) and the io lcores
 * (jobs taken from m->djob[k], results filled in per djob.h and put on
 * m->dres), calls dsched_poll in bounded loops, and checks what a user
 * would see: jobs on the rings, recipient states, replies and next
 * attempts in the queue, deleted messages, notices (RFC 3464) queued to
 * the sender, destination records, and the scheduler's views.
 *
 * The scheduler reads CLOCK_REALTIME, so waits are real: retry steps of
 * 1 s, lifetimes of 2 s; every wait is bounded.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <rte_eal.h>
#include <rte_ring.h>

#include "cfg.h"
#include "djob.h"
#include "dsched.h"
#include "mstore.h"
#include "stor_dirio.h"
#include "stor_err.h"
#include "stor_queue.h"
#include "stor_writer.h"

#define N_IO 2
#define WAIT_MS 5000
#define SENDER "s@sender.test"
#define BODY "From: s@sender.test\r\nSubject: test\r\n\r\nhello\r\n"
#define NOTIFY_PRIO 1

/* directory: relay.test and other.test have routes; sender.test has none
 * (notices to it stay queued with "4.4.3 no route", without jobs);
 * limited.test, the host:port destination 127.0.0.6:2530 and paced.test
 * have directory limits (dir_limit_* cases) */
static const char dir_text[] =
	"domain relay.test relay route=127.0.0.1:2525\n"
	"domain other.test relay route=127.0.0.2:2526,127.0.0.3:2527 "
	"tls=required\n"
	"domain limited.test relay route=127.0.0.4:2528\n"
	"domain paced.test relay route=127.0.0.5:2529\n"
	"limit Limited.Test max_conns=1 msgs_per_conn=3\n"
	"limit 127.0.0.6:2530 max_conns=1\n"
	"limit paced.test rate=4\n";

struct h {
	char dir[64], conf[128];
	struct cfg c;
	struct mstore m;
	struct dsched *s;
	struct stor_producer *p;
	struct stor_reader *rd;
	bool open;
	bool slow_commit;     /* [storage] lab_commit_delay_ms = 300 */
	const char *storage;  /* more [storage] lines */
};

static uint64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* POLL_UNTIL - dsched_poll (1 ms apart) until cond holds or ms passed;
 * the value of cond */
#define POLL_UNTIL(h, cond, ms) ({                                      \
	uint64_t end_ = mono_ms() + (ms);                               \
	bool ok_;                                                       \
	for (;;) {                                                      \
		dsched_poll((h)->s, 0);                                 \
		if ((ok_ = (cond)))                                     \
			break;                                          \
		if (mono_ms() >= end_)                                  \
			break;                                          \
		usleep(1000);                                           \
	}                                                               \
	ok_;                                                            \
})

/* ---- set-up ---- */

static int rm_cb(const char *p, const struct stat *sb, int flag,
		 struct FTW *f)
{
	(void)sb; (void)flag; (void)f;
	return remove(p);
}

/* h_start - config, mstore, directory, scheduler, writer; a fresh
 * state_dir unless h->dir is set (restart) */
static void h_start(struct h *h, const char *delivery)
{
	char err[512], text[2048];
	FILE *f;
	bool fresh = !h->dir[0];

	if (fresh) {
		snprintf(h->dir, sizeof(h->dir), "/tmp/dsched-test-XXXXXX");
		assert_non_null(mkdtemp(h->dir));
	}
	snprintf(h->conf, sizeof(h->conf), "%s/sluice.conf", h->dir);
	snprintf(text, sizeof(text),
		 "[interface]\naddress = 10.0.0.1/24\n"
		 "[smtp]\nhostname = mx.sluice.test\nnotify_priority = %d\n"
		 "[storage]\nstate_dir = %s/state\ndurability = unsafe-nosync\n"
		 "map_size_mb = 64\n%s%s"
		 "[delivery]\nretry_schedule = 1s,2s\n%s",
		 NOTIFY_PRIO, h->dir,
		 h->slow_commit ? "lab_commit_delay_ms = 300\n" : "",
		 h->storage ? h->storage : "",
		 delivery ? delivery : "");
	f = fopen(h->conf, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	if (cfg_load(h->conf, "/nonexistent", &h->c, err, sizeof(err)) != 0)
		fail_msg("cfg_load: %s", err);
	if (mstore_open(&h->m, &h->c, N_IO, err, sizeof(err)) != 0)
		fail_msg("mstore_open: %s", err);
	if (fresh) {
		f = fmemopen((void *)dir_text, strlen(dir_text), "r");
		assert_non_null(f);
		if (stor_dirio_import(h->m.dir, f, "dir", err, sizeof(err)))
			fail_msg("directory import: %s", err);
		fclose(f);
	}
	/* before mstore_start: it adds a writer producer */
	if (dsched_new(&h->m, &h->c, &h->s, err, sizeof(err)) != 0)
		fail_msg("dsched_new: %s", err);
	h->p = mstore_producer(&h->m, err, sizeof(err));
	if (!h->p)
		fail_msg("mstore_producer: %s", err);
	if (mstore_start(&h->m, err, sizeof(err)) != 0)
		fail_msg("mstore_start: %s", err);
	assert_int_equal(stor_reader_open(h->m.q, &h->rd), 0);
	h->open = true;
}

/* h_stop - jobs still out come back (as an io lcore does at its stop),
 * writer stopped, scheduler freed, queue closed; the state_dir stays */
static void h_stop(struct h *h)
{
	void *j;

	if (!h->open)
		return;
	for (unsigned k = 0; k < N_IO; k++)
		while (rte_ring_sc_dequeue(h->m.djob[k], &j) == 0)
			assert_int_equal(rte_ring_mp_enqueue(h->m.dres, j), 0);
	mstore_stop(&h->m);
	dsched_free(h->s);
	h->s = NULL;
	stor_reader_close(h->rd);
	h->rd = NULL;
	mstore_close(&h->m);
	h->open = false;
}

static int setup(void **st)
{
	struct h *h = calloc(1, sizeof(*h));

	if (!h)
		return -1;
	*st = h;
	return 0;
}

static int teardown(void **st)
{
	struct h *h = *st;

	h_stop(h);
	if (h->dir[0])
		nftw(h->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(h);
	return 0;
}

/* ---- the workers' side ---- */

struct rc_spec {
	const char *addr, *dest;
	uint8_t notify;
};

/* enqueue - store a message as a worker does and tell the scheduler */
static uint64_t enqueue(struct h *h, uint8_t prio, const char *sender,
			const struct rc_spec *rs, unsigned n)
{
	struct stor_rcpt r[8];
	struct stor_msg m;
	struct iovec iov = { (void *)BODY, sizeof(BODY) - 1 };
	struct stor_sub s = { .op = STOR_OP_ENQUEUE }, *done = NULL;
	uint64_t end = mono_ms() + WAIT_MS;

	assert_true(n <= 8);
	memset(&m, 0, sizeof(m));
	memset(r, 0, sizeof(r));
	m.arrival_us = wall_us();
	m.next_attempt_us = m.arrival_us;
	m.priority = prio;
	m.sender = (struct stor_str){ sender, (uint32_t)strlen(sender) };
	m.client = STOR_STR("unknown[198.18.0.9]");
	m.nrcpt = n;
	m.rcpt = r;
	for (unsigned i = 0; i < n; i++) {
		r[i].addr = (struct stor_str){ rs[i].addr,
					       (uint32_t)strlen(rs[i].addr) };
		r[i].dest = (struct stor_str){ rs[i].dest,
					       (uint32_t)strlen(rs[i].dest) };
		r[i].notify = rs[i].notify;
	}
	s.qid = stor_queue_new_qid(h->m.q);
	s.u.enq.msg = &m;
	s.u.enq.iov = &iov;
	s.u.enq.iovcnt = 1;
	assert_int_equal(stor_producer_submit(h->p, &s), 0);
	while (stor_producer_poll(h->p, &done, 1) == 0) {
		assert_true(mono_ms() < end);
		stor_producer_wait(h->p, 10000);
	}
	assert_ptr_equal(done, &s);
	assert_int_equal(s.result, 0);
	mstore_committed(&h->m, s.qid);
	return s.qid;
}

/* ---- the io lcores' side ---- */

/* job_take - the next job on any djob ring (polling up to ms); NULL if
 * none came */
static struct djob *job_take(struct h *h, unsigned ms)
{
	struct djob *j = NULL;
	unsigned from = N_IO;

	POLL_UNTIL(h, ({
		for (unsigned k = 0; k < N_IO && !j; k++)
			if (rte_ring_sc_dequeue(h->m.djob[k],
						(void **)&j) == 0)
				from = k;
		j != NULL;
	}), ms);
	if (j)
		assert_int_equal(j->owner, from);
	return j;
}

static unsigned jobs_queued(struct h *h)
{
	unsigned n = 0;

	for (unsigned k = 0; k < N_IO; k++)
		n += rte_ring_count(h->m.djob[k]);
	return n;
}

/* no_job - poll for ms: no job may appear */
static void no_job(struct h *h, unsigned ms)
{
	assert_false(POLL_UNTIL(h, jobs_queued(h) > 0, ms));
}

static void set_text(char *enh, const char *e, char *text, const char *t)
{
	snprintf(enh, 16, "%s", e);
	snprintf(text, DJOB_TEXT, "%s", t);
}

/* rcpt_result - one recipient's reply */
static void rcpt_result(struct djob *j, uint32_t i, int code, const char *enh,
			const char *text)
{
	assert_true(i < j->nrcpt);
	j->rcpt[i].code = code;
	set_text(j->rcpt[i].enh, enh, j->rcpt[i].text, text);
}

/* job_done - the job-level outcome, then back on the dres ring */
static void job_done(struct h *h, struct djob *j, uint8_t status, int code,
		     const char *enh, const char *text)
{
	j->status = status;
	j->code = code;
	set_text(j->enh, enh, j->text, text);
	if (status == DJOB_OK)
		snprintf(j->relay, sizeof(j->relay), "127.0.0.1:2525");
	j->t_start_us = j->t_done_us = 1;
	assert_int_equal(rte_ring_mp_enqueue(h->m.dres, j), 0);
}

/* job_all - every recipient gets the same reply; DJOB_OK */
static void job_all(struct h *h, struct djob *j, int code, const char *enh,
		    const char *text)
{
	for (uint32_t i = 0; i < j->nrcpt; i++)
		rcpt_result(j, i, code, enh, text);
	job_done(h, j, DJOB_OK, code >= 500 && code < 600 ? 554 : 250,
		 code >= 500 ? "5.0.0" : "2.0.0", "end of data");
}

/* job_conn_fail - no session on any hop */
static void job_conn_fail(struct h *h, struct djob *j)
{
	job_done(h, j, DJOB_CONN_FAIL, 451, "4.4.1",
		 "127.0.0.1:2525: connection refused");
}

/* ---- queue views (the test's own reader) ---- */

struct qrcpt {
	char addr[128], dest[128], reply[300];
	uint8_t state, notify;
	uint16_t attempts;
	uint64_t last_attempt_us;
};

struct qmsg {
	uint64_t next_attempt_us, arrival_us;
	uint32_t attempts, nrcpt;
	uint8_t priority;
	char sender[128];
	struct qrcpt r[8];
};

static void strcopy(char *out, size_t cap, struct stor_str v)
{
	size_t n = v.n < cap - 1 ? v.n : cap - 1;

	memcpy(out, v.p ? v.p : "", n);
	out[n] = '\0';
}

/* q_msg - the stored message; false if it is not in the queue */
static bool q_msg(struct h *h, uint64_t qid, struct qmsg *q)
{
	struct stor_msg m;
	struct stor_rcpt r[8];
	int rc;

	assert_int_equal(stor_reader_begin(h->rd), 0);
	rc = stor_reader_msg(h->rd, qid, &m, r, 8);
	if (rc == MDB_NOTFOUND) {
		stor_reader_end(h->rd);
		return false;
	}
	assert_int_equal(rc, 0);
	if (q) {
		memset(q, 0, sizeof(*q));
		q->next_attempt_us = m.next_attempt_us;
		q->arrival_us = m.arrival_us;
		q->attempts = m.attempts;
		q->nrcpt = m.nrcpt;
		q->priority = m.priority;
		strcopy(q->sender, sizeof(q->sender), m.sender);
		for (uint32_t i = 0; i < m.nrcpt; i++) {
			strcopy(q->r[i].addr, sizeof(q->r[i].addr), r[i].addr);
			strcopy(q->r[i].dest, sizeof(q->r[i].dest), r[i].dest);
			strcopy(q->r[i].reply, sizeof(q->r[i].reply),
				r[i].reply);
			q->r[i].state = r[i].state;
			q->r[i].notify = r[i].notify;
			q->r[i].attempts = r[i].attempts;
			q->r[i].last_attempt_us = r[i].last_attempt_us;
		}
	}
	stor_reader_end(h->rd);
	return true;
}

static bool q_has(struct h *h, uint64_t qid)
{
	return q_msg(h, qid, NULL);
}

/* q_list - every queue id in `meta`; the count */
static unsigned q_list(struct h *h, uint64_t *out, unsigned cap)
{
	const struct stor_queue_dbi *dbi = stor_queue_dbis(h->m.q);
	MDB_cursor *cur;
	MDB_val k, v;
	unsigned n = 0;

	assert_int_equal(stor_reader_begin(h->rd), 0);
	assert_int_equal(mdb_cursor_open(stor_reader_txn(h->rd), dbi->meta,
					 &cur), 0);
	for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		assert_int_equal(k.mv_size, STOR_QID_KEY);
		if (n < cap)
			out[n] = stor_qid_from_key(k.mv_data);
		n++;
	}
	mdb_cursor_close(cur);
	stor_reader_end(h->rd);
	return n;
}

/* q_body - a message body as a string */
static char *q_body(struct h *h, uint64_t qid)
{
	const void *b;
	size_t n;
	char *s;

	assert_int_equal(stor_reader_begin(h->rd), 0);
	assert_int_equal(stor_reader_body(h->rd, qid, 1, &b, &n), 0);
	s = malloc(n + 1);
	assert_non_null(s);
	memcpy(s, b, n);
	s[n] = '\0';
	stor_reader_end(h->rd);
	return s;
}

/* q_dest - a destination's stored link record; false if none */
static bool q_dest(struct h *h, const char *name, struct stor_dest *d)
{
	int rc;

	assert_int_equal(stor_reader_begin(h->rd), 0);
	rc = stor_reader_dest(h->rd, (struct stor_str){ name,
			      (uint32_t)strlen(name) }, d);
	stor_reader_end(h->rd);
	if (rc == MDB_NOTFOUND)
		return false;
	assert_int_equal(rc, 0);
	d->last_error = (struct stor_str){ NULL, 0 };   /* snapshot ended */
	return true;
}

static struct dsched_status status(struct h *h)
{
	struct dsched_status st;

	dsched_status(h->s, &st);
	return st;
}

/* settle - every submission of the scheduler committed and seen */
static void settle(struct h *h)
{
	assert_true(POLL_UNTIL(h, status(h).pending_commits == 0, WAIT_MS));
	for (int i = 0; i < 5; i++)
		dsched_poll(h->s, 0);
}

/* wait_gone - the message leaves the queue (bounded) */
static void wait_gone(struct h *h, uint64_t qid)
{
	assert_true(POLL_UNTIL(h, !q_has(h, qid), WAIT_MS));
	settle(h);
}

static void check_job(const struct djob *j, uint64_t qid, const char *dest,
		      uint8_t prio, const uint32_t *idx, uint32_t n)
{
	assert_int_equal(j->qid, qid);
	assert_string_equal(j->dest, dest);
	assert_int_equal(j->prio, prio);
	assert_int_equal(j->nrcpt, n);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(j->rcpt[i].index, idx[i]);
		assert_int_equal(j->rcpt[i].code, 0);
	}
	if (strcmp(dest, "relay.test") == 0) {
		assert_int_equal(j->nhops, 1);
		assert_int_equal(j->hop[0].addr, 0x7f000001);
		assert_int_equal(j->hop[0].port, 2525);
		assert_int_equal(j->tls, 1);    /* opportunistic by default */
	} else if (strcmp(dest, "other.test") == 0) {
		assert_int_equal(j->nhops, 2);
		assert_int_equal(j->hop[0].addr, 0x7f000002);
		assert_int_equal(j->hop[0].port, 2526);
		assert_int_equal(j->hop[1].addr, 0x7f000003);
		assert_int_equal(j->hop[1].port, 2527);
		assert_int_equal(j->tls, 2);    /* required */
	}
}

/* notice_of - the single message in the queue that is not one of the
 * originals: checks it is a notice to SENDER and returns its body */
static char *notice_of(struct h *h, uint64_t *nq)
{
	uint64_t ids[8];
	struct qmsg q;

	assert_int_equal(q_list(h, ids, 8), 1);
	*nq = ids[0];
	assert_true(q_msg(h, ids[0], &q));
	assert_string_equal(q.sender, "");           /* null reverse path */
	assert_int_equal(q.priority, NOTIFY_PRIO);   /* [smtp] notify_priority */
	assert_int_equal(q.nrcpt, 1);
	assert_string_equal(q.r[0].addr, SENDER);
	assert_string_equal(q.r[0].dest, "sender.test");
	assert_int_equal(q.r[0].state, STOR_RCPT_PENDING);
	return q_body(h, ids[0]);
}

static void has(const char *body, const char *s)
{
	if (!strstr(body, s))
		fail_msg("notice lacks \"%s\":\n%s", s, body);
}

static const struct rc_spec AB[] = {
	{ "a@relay.test", "relay.test", 0 },
	{ "b@relay.test", "relay.test", 0 },
};

/* ---- cases ---- */

/* 1: two recipients, both 250: one job, message deleted, counters */
static void all_delivered(void **st)
{
	struct h *h = *st;
	struct djob *j;
	struct dsched_dest_info di;
	static const uint32_t idx[] = { 0, 1 };
	uint64_t qid;

	h_start(h, NULL);
	qid = enqueue(h, 4, SENDER, AB, 2);
	j = job_take(h, WAIT_MS);
	assert_non_null(j);
	check_job(j, qid, "relay.test", 4, idx, 2);
	assert_int_equal(dsched_msg_state(h->s, qid), DSCHED_M_ACTIVE);
	assert_int_equal(status(h).jobs_active, 1);
	no_job(h, 50);                 /* one job for one destination */
	job_all(h, j, 250, "2.0.0", "ok queued as X");
	wait_gone(h, qid);
	assert_int_equal(dsched_msg_state(h->s, qid), DSCHED_M_UNKNOWN);
	assert_int_equal(status(h).delivered, 2);
	assert_int_equal(status(h).messages, 0);
	assert_int_equal(status(h).jobs_active, 0);
	assert_int_equal(status(h).failed, 0);
	assert_int_equal(status(h).bounces, 0);
	assert_int_equal(q_list(h, NULL, 0), 0);    /* no notice */
	assert_int_equal(dsched_link_info(h->s, "relay.test", &di), 0);
	assert_int_equal(di.link, STOR_LINK_OPEN);
	assert_int_equal(di.delivered, 2);
	assert_int_equal(di.attempts, 1);
	assert_int_equal(di.active, 0);
	assert_int_equal(di.queued, 0);
	assert_string_equal(di.route, "127.0.0.1:2525 tls=opportunistic");
	assert_int_equal(dsched_link_info(h->s, "nowhere.test", &di), -1);
}

/* 2: 250 + 550: the original goes, one notice about b comes */
static void one_bounces(void **st)
{
	struct h *h = *st;
	struct djob *j;
	uint64_t qid, nq;
	char *body;

	h_start(h, NULL);
	qid = enqueue(h, 4, SENDER, AB, 2);
	j = job_take(h, WAIT_MS);
	assert_non_null(j);
	rcpt_result(j, 0, 250, "2.1.5", "ok");
	rcpt_result(j, 1, 550, "5.1.1", "no such user");
	job_done(h, j, DJOB_OK, 250, "2.0.0", "queued");
	wait_gone(h, qid);
	body = notice_of(h, &nq);
	assert_true(nq != qid);
	has(body, "Content-Type: multipart/report; report-type=delivery-status");
	has(body, "message/delivery-status");
	has(body, "Final-Recipient: rfc822; b@relay.test\r\nAction: failed\r\n"
		  "Status: 5.1.1\r\n");
	has(body, "Diagnostic-Code: smtp; 550 5.1.1 no such user");
	has(body, "Remote-MTA: dns; 127.0.0.1");
	has(body, "Subject: test");          /* the original's headers */
	assert_null(strstr(body, "Final-Recipient: rfc822; a@relay.test"));
	free(body);
	assert_int_equal(status(h).delivered, 1);
	assert_int_equal(status(h).failed, 1);
	assert_int_equal(status(h).bounces, 1);
	/* the notice is a message of the scheduler's own */
	assert_int_equal(status(h).messages, 1);
	assert_int_not_equal(dsched_msg_state(h->s, nq), DSCHED_M_UNKNOWN);
}

/* 3: a null sender's failure gets no notice */
static void null_sender_no_notice(void **st)
{
	struct h *h = *st;
	struct djob *j;
	uint64_t qid;

	h_start(h, NULL);
	qid = enqueue(h, 4, "", AB, 1);
	j = job_take(h, WAIT_MS);
	assert_non_null(j);
	job_all(h, j, 550, "5.1.1", "no such user");
	wait_gone(h, qid);
	assert_int_equal(q_list(h, NULL, 0), 0);
	assert_int_equal(status(h).failed, 1);
	assert_int_equal(status(h).bounces, 0);
	assert_int_equal(status(h).messages, 0);
}

/* 4: 451 defers by the first retry step, then 250 */
static void deferred_then_delivered(void **st)
{
	struct h *h = *st;
	struct djob *j;
	struct qmsg q;
	static const uint32_t idx[] = { 0 };
	uint64_t qid, t0, t1, m0;

	h_start(h, NULL);
	qid = enqueue(h, 5, SENDER, AB, 1);
	j = job_take(h, WAIT_MS);
	assert_non_null(j);
	check_job(j, qid, "relay.test", 5, idx, 1);
	t0 = wall_us();
	m0 = mono_ms();
	job_all(h, j, 451, "4.3.0", "try later");
	assert_true(POLL_UNTIL(h, q_msg(h, qid, &q) &&
			       q.r[0].reply[0] != '\0' &&
			       q.next_attempt_us > t0, WAIT_MS));
	t1 = wall_us();
	assert_int_equal(q.r[0].state, STOR_RCPT_PENDING);
	assert_string_equal(q.r[0].reply, "451 4.3.0 try later");
	assert_true(q.r[0].last_attempt_us >= t0 && q.r[0].last_attempt_us <= t1);
	/* now + the first step (1 s) */
	assert_true(q.next_attempt_us >= t0 + 1000000);
	assert_true(q.next_attempt_us <= t1 + 1000000);
	assert_int_equal(dsched_msg_state(h->s, qid), DSCHED_M_DEFERRED);
	assert_int_equal(status(h).deferred, 1);
	/* the next job comes about 1 s after the result */
	j = job_take(h, 3000);
	assert_non_null(j);
	assert_true(mono_ms() - m0 >= 900);
	check_job(j, qid, "relay.test", 5, idx, 1);
	job_all(h, j, 250, "2.0.0", "ok");
	wait_gone(h, qid);
	assert_int_equal(status(h).delivered, 1);
	assert_int_equal(q_list(h, NULL, 0), 0);
}

/* 5: recipients for two destinations: two jobs, disjoint recipients,
 * results committed part by part, deleted when nothing is pending */
static void split_by_destination(void **st)
{
	static const struct rc_spec rs[] = {
		{ "a@relay.test", "relay.test", 0 },
		{ "c@other.test", "other.test", 0 },
		{ "b@relay.test", "relay.test", 0 },
	};
	static const uint32_t idx_r[] = { 0, 2 }, idx_o[] = { 1 };
	struct h *h = *st;
	struct djob *j1, *j2, *jr, *jo;
	struct qmsg q;
	uint64_t qid;

	h_start(h, NULL);
	qid = enqueue(h, 4, SENDER, rs, 3);
	j1 = job_take(h, WAIT_MS);
	j2 = job_take(h, WAIT_MS);
	assert_non_null(j1);
	assert_non_null(j2);
	jr = strcmp(j1->dest, "relay.test") == 0 ? j1 : j2;
	jo = jr == j1 ? j2 : j1;
	check_job(jr, qid, "relay.test", 4, idx_r, 2);
	check_job(jo, qid, "other.test", 4, idx_o, 1);
	assert_int_not_equal(jr->dest_id, jo->dest_id);
	/* relay.test's part first: committed while other.test's is out */
	job_all(h, jr, 250, "2.0.0", "ok");
	assert_true(POLL_UNTIL(h, q_msg(h, qid, &q) &&
			       q.r[0].state == STOR_RCPT_DELIVERED, WAIT_MS));
	assert_int_equal(q.r[2].state, STOR_RCPT_DELIVERED);
	assert_int_equal(q.r[1].state, STOR_RCPT_PENDING);
	assert_string_equal(q.r[0].reply, "250 2.0.0 ok");
	assert_int_equal(dsched_msg_state(h->s, qid), DSCHED_M_ACTIVE);
	settle(h);
	assert_true(q_has(h, qid));
	/* other.test defers: only its recipient is tried again */
	job_all(h, jo, 451, "4.4.2", "lost connection");
	assert_true(POLL_UNTIL(h, q_msg(h, qid, &q) &&
			       q.r[1].reply[0] != '\0', WAIT_MS));
	assert_int_equal(q.r[1].state, STOR_RCPT_PENDING);
	assert_int_equal(q.r[0].state, STOR_RCPT_DELIVERED);
	j1 = job_take(h, 3000);
	assert_non_null(j1);
	check_job(j1, qid, "other.test", 4, idx_o, 1);
	no_job(h, 100);                 /* relay.test is done */
	job_all(h, j1, 250, "2.0.0", "ok");
	wait_gone(h, qid);
	assert_int_equal(status(h).delivered, 3);
	assert_int_equal(q_list(h, NULL, 0), 0);
}

struct link_seen {
	const char *name;
	struct dsched_dest_info d;
	bool found;
};

static int link_cb(void *arg, const struct dsched_dest_info *d)
{
	struct link_seen *x = arg;

	if (strcmp(d->name, x->name) == 0) {
		x->d = *d;
		x->found = true;
	}
	return 0;
}

/* 6a: a link closed before mail: held, then opened: dispatched */
static void link_closed_holds(void **st)
{
	struct h *h = *st;
	struct link_seen ls = { .name = "relay.test" };
	struct stor_dest sd;
	struct djob *j;
	char err[256];
	uint64_t qid;

	h_start(h, NULL);
	assert_int_equal(dsched_link_set(h->s, "Relay.Test", STOR_LINK_CLOSED,
					 err, sizeof(err)), 0);
	assert_int_equal(dsched_link_set(h->s, "relay.test", STOR_LINK_HELD,
					 err, sizeof(err)), -1);
	assert_int_equal(dsched_link_set(h->s, "bad dest", STOR_LINK_CLOSED,
					 err, sizeof(err)), -1);
	qid = enqueue(h, 4, SENDER, AB, 2);
	assert_true(POLL_UNTIL(h, dsched_msg_state(h->s, qid) ==
			       DSCHED_M_HELD, WAIT_MS));
	no_job(h, 300);
	assert_int_equal(dsched_msg_state(h->s, qid), DSCHED_M_HELD);
	settle(h);
	dsched_links(h->s, link_cb, &ls);
	assert_true(ls.found);
	assert_int_equal(ls.d.link, STOR_LINK_CLOSED);
	assert_int_equal(ls.d.held, 1);
	assert_int_equal(ls.d.queued, 1);
	assert_int_equal(ls.d.active, 0);
	assert_int_equal(status(h).links_closed, 1);
	assert_int_equal(status(h).by_state[DSCHED_M_HELD], 1);
	assert_true(q_dest(h, "relay.test", &sd));
	assert_int_equal(sd.link, STOR_LINK_CLOSED);
	/* open: the held part goes out */
	assert_int_equal(dsched_link_set(h->s, "relay.test", STOR_LINK_OPEN,
					 err, sizeof(err)), 0);
	j = job_take(h, WAIT_MS);
	assert_non_null(j);
	assert_int_equal(j->qid, qid);
	assert_int_equal(j->nrcpt, 2);
	job_all(h, j, 250, "2.0.0", "ok");
	wait_gone(h, qid);
	assert_true(q_dest(h, "relay.test", &sd));
	assert_int_equal(sd.link, STOR_LINK_OPEN);
	assert_int_equal(status(h).links_closed, 0);
}

/* 6b: three messages held on a closed link leave by priority, one at a
 * time (max_conns_per_dest = 1) */
static void link_open_priority_order(void **st)
{
	static const uint8_t prio[3] = { 6, 0, 3 };
	static const int order[3] = { 1, 2, 0 };     /* 0, 3, 6 */
	struct h *h = *st;
	char err[256];
	uint64_t qid[3];

	h_start(h, "max_conns_per_dest = 1\n");
	assert_int_equal(dsched_link_set(h->s, "relay.test", STOR_LINK_CLOSED,
					 err, sizeof(err)), 0);
	for (int i = 0; i < 3; i++)
		qid[i] = enqueue(h, prio[i], SENDER, AB, 1);
	assert_true(POLL_UNTIL(h,
		dsched_msg_state(h->s, qid[0]) == DSCHED_M_HELD &&
		dsched_msg_state(h->s, qid[1]) == DSCHED_M_HELD &&
		dsched_msg_state(h->s, qid[2]) == DSCHED_M_HELD, WAIT_MS));
	no_job(h, 100);
	assert_int_equal(dsched_link_set(h->s, "relay.test", STOR_LINK_OPEN,
					 err, sizeof(err)), 0);
	for (int k = 0; k < 3; k++) {
		struct djob *j = job_take(h, WAIT_MS);

		assert_non_null(j);
		assert_int_equal(j->qid, qid[order[k]]);
		assert_int_equal(j->prio, prio[order[k]]);
		no_job(h, 100);         /* one connection: one job out */
		job_all(h, j, 250, "2.0.0", "ok");
	}
	for (int i = 0; i < 3; i++)
		wait_gone(h, qid[i]);
	assert_int_equal(status(h).delivered, 3);
}

/* 7: down_after connection failures take the link down; one probe when
 * the backoff allows; a probe that reaches MAIL opens it again */
static void link_down_and_probe(void **st)
{
	struct h *h = *st;
	struct dsched_dest_info di;
	struct stor_dest sd;
	struct djob *j, *probe;
	uint64_t qa, qb, t_fail, other;

	h_start(h, "down_after = 2\n");
	qa = enqueue(h, 4, SENDER, AB, 1);
	qb = enqueue(h, 4, SENDER, AB + 1, 1);
	for (int i = 0; i < 2; i++) {
		j = job_take(h, WAIT_MS);
		assert_non_null(j);
		assert_true(j->qid == qa || j->qid == qb);
		job_conn_fail(h, j);
	}
	t_fail = wall_us();
	assert_true(POLL_UNTIL(h, dsched_link_info(h->s, "relay.test", &di)
			       == 0 && di.failures == 2, WAIT_MS));
	settle(h);
	assert_int_equal(dsched_link_info(h->s, "relay.test", &di), 0);
	assert_int_equal(di.link, STOR_LINK_HELD);
	assert_int_equal(di.failures, 2);
	assert_non_null(strstr(di.last_error, "4.4.1"));
	assert_true(di.next_retry_us > t_fail - 1000000 &&
		    di.next_retry_us <= wall_us() + 1000000);
	assert_int_equal(status(h).links_down, 1);
	assert_int_equal(status(h).conn_failures, 2);
	assert_true(q_dest(h, "relay.test", &sd));
	assert_int_equal(sd.link, STOR_LINK_HELD);
	assert_int_equal(sd.failures, 2);
	assert_int_equal(sd.next_retry_us, di.next_retry_us);
	/* nothing before the probe time */
	assert_true(POLL_UNTIL(h, jobs_queued(h) > 0 ||
			       wall_us() + 20000 >= di.next_retry_us, 3000));
	assert_int_equal(jobs_queued(h), 0);
	/* then exactly one probe */
	probe = job_take(h, 4000);
	assert_non_null(probe);
	assert_true(wall_us() >= di.next_retry_us);
	no_job(h, 300);
	assert_int_equal(dsched_link_info(h->s, "relay.test", &di), 0);
	assert_int_equal(di.link, STOR_LINK_HELD);
	assert_int_equal(di.active, 1);
	assert_int_equal(di.held, 1);
	assert_int_equal(dsched_msg_state(h->s, probe->qid == qa ? qb : qa),
			 DSCHED_M_HELD);
	/* the probe reaches MAIL: open, and the other part goes out */
	other = probe->qid == qa ? qb : qa;
	job_all(h, probe, 250, "2.0.0", "ok");    /* probe is freed */
	j = job_take(h, WAIT_MS);
	assert_non_null(j);
	assert_int_equal(j->qid, other);
	assert_int_equal(dsched_link_info(h->s, "relay.test", &di), 0);
	assert_int_equal(di.link, STOR_LINK_OPEN);
	assert_int_equal(di.failures, 0);
	job_all(h, j, 250, "2.0.0", "ok");
	wait_gone(h, qa);
	wait_gone(h, qb);
	assert_true(q_dest(h, "relay.test", &sd));
	assert_int_equal(sd.link, STOR_LINK_OPEN);
	assert_int_equal(sd.failures, 0);
	assert_int_equal(status(h).links_down, 0);
}

/* 8: 451 until max_lifetime: the recipient fails with 4.4.7 (RFC 3463
 * X.4.7 "delivery time expired"; class 4 with Action: failed, as RFC
 * 3464 section 2.3.3 allows for a persistent transient failure that
 * ended the attempts) and a notice goes to the sender */
static void expiry_bounces(void **st)
{
	struct h *h = *st;
	struct dsched_dest_info di;
	unsigned jobs = 0;
	uint64_t qid, nq;
	char *body;

	h_start(h, "max_lifetime = 2s\n");
	qid = enqueue(h, 4, SENDER, AB, 1);
	assert_true(POLL_UNTIL(h, ({
		void *j;

		for (unsigned k = 0; k < N_IO; k++)
			while (rte_ring_sc_dequeue(h->m.djob[k], &j) == 0) {
				jobs++;
				job_all(h, j, 451, "4.3.0", "try later");
			}
		!q_has(h, qid);
	}), 6000));
	settle(h);
	/* attempts at 0 s and 1 s; at 2 s (not 3 s: capped at the
	 * lifetime) it expires */
	assert_int_equal(jobs, 2);
	body = notice_of(h, &nq);
	has(body, "Final-Recipient: rfc822; a@relay.test\r\nAction: failed\r\n"
		  "Status: 4.4.7\r\n");
	has(body, "expired");
	has(body, "451 4.3.0 try later");       /* the last reply */
	free(body);
	assert_int_equal(status(h).expired, 1);
	assert_int_equal(status(h).bounces, 1);
	/* (the notice itself is deferred too: sender.test has no route) */
	assert_int_equal(dsched_link_info(h->s, "relay.test", &di), 0);
	assert_int_equal(di.deferred, 2);
	assert_int_equal(di.attempts, 2);
	assert_int_equal(di.failed, 0);
}

/* 9: operator actions on messages */
static void operator_ops(void **st)
{
	struct h *h = *st;
	struct djob *j;
	struct qmsg q;
	char err[256];
	uint64_t qid, q2, ids[2];

	h_start(h, NULL);
	qid = enqueue(h, 4, SENDER, AB, 1);
	q2 = enqueue(h, 4, SENDER, AB + 1, 1);
	for (int i = 0; i < 2; i++) {      /* both deferred by 1 s */
		j = job_take(h, WAIT_MS);
		assert_non_null(j);
		job_all(h, j, 451, "4.3.0", "try later");
	}
	assert_true(POLL_UNTIL(h,
		dsched_msg_state(h->s, qid) == DSCHED_M_DEFERRED &&
		dsched_msg_state(h->s, q2) == DSCHED_M_DEFERRED, WAIT_MS));
	settle(h);

	/* one unknown id: -1, nothing changed */
	ids[0] = qid;
	ids[1] = qid + 12345;
	err[0] = '\0';
	assert_int_equal(dsched_msgs_op(h->s, DSCHED_OP_HOLD, ids, 2, err,
					sizeof(err)), -1);
	assert_non_null(strstr(err, "no such message"));
	assert_int_equal(dsched_msgs_op(h->s, DSCHED_OP_DELETE, ids, 2, err,
					sizeof(err)), -1);
	assert_int_equal(dsched_msg_state(h->s, qid), DSCHED_M_DEFERRED);
	settle(h);
	assert_true(q_msg(h, qid, &q));
	assert_true(q.next_attempt_us != UINT64_MAX);

	/* hold: no attempt, stored as the largest time */
	assert_int_equal(dsched_msgs_op(h->s, DSCHED_OP_HOLD, &qid, 1, err,
					sizeof(err)), 1);
	assert_int_equal(dsched_msgs_op(h->s, DSCHED_OP_HOLD, &qid, 1, err,
					sizeof(err)), 0);
	assert_int_equal(dsched_msg_state(h->s, qid), DSCHED_M_HOLD);
	settle(h);
	assert_true(q_msg(h, qid, &q));
	assert_true(q.next_attempt_us == UINT64_MAX);
	/* q2 comes due (1 s), qid does not */
	j = job_take(h, 3000);
	assert_non_null(j);
	assert_int_equal(j->qid, q2);
	job_all(h, j, 451, "4.3.0", "try later");    /* q2: next in 2 s */
	no_job(h, 500);
	assert_int_equal(dsched_msg_state(h->s, qid), DSCHED_M_HOLD);

	/* release: due now */
	assert_int_equal(dsched_msgs_op(h->s, DSCHED_OP_RELEASE, &qid, 1, err,
					sizeof(err)), 1);
	j = job_take(h, 500);
	assert_non_null(j);
	assert_int_equal(j->qid, qid);
	job_all(h, j, 451, "4.3.0", "try later");    /* next in 2 s */
	assert_true(POLL_UNTIL(h, dsched_msg_state(h->s, qid) ==
			       DSCHED_M_DEFERRED, WAIT_MS));
	settle(h);
	assert_true(q_msg(h, qid, &q));
	assert_true(q.next_attempt_us != UINT64_MAX &&
		    q.next_attempt_us > wall_us() + 1000000);

	/* retry: due now, skipping the backoff */
	assert_int_equal(dsched_msgs_op(h->s, DSCHED_OP_RETRY, &qid, 1, err,
					sizeof(err)), 1);
	j = job_take(h, 500);
	assert_non_null(j);
	assert_int_equal(j->qid, qid);
	job_all(h, j, 451, "4.3.0", "try later");
	assert_true(POLL_UNTIL(h, dsched_msg_state(h->s, qid) ==
			       DSCHED_M_DEFERRED, WAIT_MS));

	/* flush: every deferred message due now (qid and q2) */
	assert_int_equal(dsched_flush(h->s), 2);
	for (int i = 0; i < 2; i++) {
		j = job_take(h, 500);
		assert_non_null(j);
		assert_true(j->qid == qid || j->qid == q2);
		job_all(h, j, 451, "4.3.0", "try later");
	}
	assert_true(POLL_UNTIL(h,
		dsched_msg_state(h->s, qid) == DSCHED_M_DEFERRED &&
		dsched_msg_state(h->s, q2) == DSCHED_M_DEFERRED, WAIT_MS));
	settle(h);

	/* delete: gone, without a notice, no more jobs */
	assert_int_equal(dsched_msgs_op(h->s, DSCHED_OP_DELETE, &qid, 1, err,
					sizeof(err)), 1);
	assert_int_equal(dsched_msg_state(h->s, qid), DSCHED_M_UNKNOWN);
	wait_gone(h, qid);
	assert_int_equal(dsched_msgs_op(h->s, DSCHED_OP_RETRY, &qid, 1, err,
					sizeof(err)), -1);
	assert_int_equal(q_list(h, ids, 2), 1);      /* q2 only */
	assert_true(ids[0] == q2);
	assert_int_equal(status(h).bounces, 0);
	assert_int_equal(status(h).messages, 1);
}

/* 10: restart: link state and messages come back from the queue */
static void restart_keeps_state(void **st)
{
	struct h *h = *st;
	struct dsched_dest_info di;
	char err[256];
	uint64_t qa, qb, seen[2] = { 0, 0 };

	h_start(h, NULL);
	assert_int_equal(dsched_link_set(h->s, "relay.test", STOR_LINK_CLOSED,
					 err, sizeof(err)), 0);
	qa = enqueue(h, 4, SENDER, AB, 1);
	qb = enqueue(h, 2, SENDER, AB + 1, 1);
	assert_true(POLL_UNTIL(h,
		dsched_msg_state(h->s, qa) == DSCHED_M_HELD &&
		dsched_msg_state(h->s, qb) == DSCHED_M_HELD, WAIT_MS));
	settle(h);
	h_stop(h);

	h_start(h, NULL);
	assert_int_equal(status(h).messages, 2);
	assert_int_equal(status(h).links_closed, 1);
	assert_int_equal(dsched_link_info(h->s, "relay.test", &di), 0);
	assert_int_equal(di.link, STOR_LINK_CLOSED);
	no_job(h, 300);
	assert_int_equal(dsched_msg_state(h->s, qa), DSCHED_M_HELD);
	assert_int_equal(dsched_msg_state(h->s, qb), DSCHED_M_HELD);
	assert_int_equal(dsched_link_set(h->s, "relay.test", STOR_LINK_OPEN,
					 err, sizeof(err)), 0);
	for (int i = 0; i < 2; i++) {
		struct djob *j = job_take(h, WAIT_MS);

		assert_non_null(j);
		seen[i] = j->qid;
		job_all(h, j, 250, "2.0.0", "ok");
	}
	assert_true(seen[0] == qb && seen[1] == qa);   /* priority 2 first */
	wait_gone(h, qa);
	wait_gone(h, qb);
	assert_int_equal(status(h).delivered, 2);
	assert_int_equal(status(h).messages, 0);
}

/* 11: max_active = 1: one job in flight across destinations */
static void max_active_one(void **st)
{
	static const struct rc_spec ro[] = { { "c@other.test", "other.test",
					       0 } };
	struct h *h = *st;
	struct djob *j;
	uint64_t qa, qb, first;

	h_start(h, "max_active = 1\n");
	qa = enqueue(h, 4, SENDER, AB, 1);
	qb = enqueue(h, 4, SENDER, ro, 1);
	j = job_take(h, WAIT_MS);
	assert_non_null(j);
	first = j->qid;
	assert_true(first == qa || first == qb);
	no_job(h, 300);
	assert_int_equal(status(h).jobs_active, 1);
	job_all(h, j, 250, "2.0.0", "ok");
	j = job_take(h, WAIT_MS);
	assert_non_null(j);
	assert_int_equal(j->qid, first == qa ? qb : qa);
	assert_int_equal(status(h).jobs_active, 1);
	job_all(h, j, 250, "2.0.0", "ok");
	wait_gone(h, qa);
	wait_gone(h, qb);
	assert_int_equal(status(h).delivered, 2);
	assert_int_equal(status(h).jobs_active, 0);
}

/* 12: djob.h: rcpt code 0 = not attempted. In a job that reached MAIL
 * (DJOB_OK, end of data 250 for the others) such a recipient was not
 * delivered: it stays pending and is tried again */
static void not_attempted_stays_pending(void **st)
{
	struct h *h = *st;
	struct djob *j;
	struct qmsg q;
	static const uint32_t idx[] = { 1 };
	uint64_t qid;

	h_start(h, NULL);
	qid = enqueue(h, 4, SENDER, AB, 2);
	j = job_take(h, WAIT_MS);
	assert_non_null(j);
	assert_int_equal(j->nrcpt, 2);
	rcpt_result(j, 0, 250, "2.0.0", "ok");
	/* rcpt 1: code 0, nothing filled in */
	job_done(h, j, DJOB_OK, 250, "2.0.0", "ok");
	assert_true(POLL_UNTIL(h, q_msg(h, qid, &q) &&
			       q.r[0].state == STOR_RCPT_DELIVERED, WAIT_MS));
	assert_int_equal(q.r[1].state, STOR_RCPT_PENDING);
	assert_int_equal(q.r[1].reply[0], '4');
	assert_int_equal(status(h).delivered, 1);
	j = job_take(h, 3000);          /* the next round: b only */
	assert_non_null(j);
	check_job(j, qid, "relay.test", 4, idx, 1);
	job_all(h, j, 250, "2.0.0", "ok");
	wait_gone(h, qid);
	assert_int_equal(status(h).delivered, 2);
}

/* 13: a round starts from the recipient states of the last one even
 * when the queue has not committed them yet (a slow writer: [storage]
 * lab_commit_delay_ms): queue retry right after a partial result must
 * not send to the recipient that was just delivered */
static void retry_before_commit_no_duplicate(void **st)
{
	static const struct rc_spec rs[] = {
		{ "a@relay.test", "relay.test", 0 },
		{ "c@other.test", "other.test", 0 },
	};
	static const uint32_t idx_o[] = { 1 };
	struct h *h = *st;
	struct djob *j1, *j2, *jr, *jo;
	char err[256];
	uint64_t qid;

	h->slow_commit = true;          /* every commit takes 300 ms */
	h_start(h, NULL);
	qid = enqueue(h, 4, SENDER, rs, 2);
	j1 = job_take(h, WAIT_MS);
	j2 = job_take(h, WAIT_MS);
	assert_non_null(j1);
	assert_non_null(j2);
	jr = strcmp(j1->dest, "relay.test") == 0 ? j1 : j2;
	jo = jr == j1 ? j2 : j1;
	job_all(h, jr, 250, "2.0.0", "ok");
	job_all(h, jo, 451, "4.3.0", "try later");
	assert_true(POLL_UNTIL(h, dsched_msg_state(h->s, qid) ==
			       DSCHED_M_DEFERRED, WAIT_MS));
	assert_true(status(h).pending_commits > 0);   /* not on disk yet */
	assert_int_equal(dsched_msgs_op(h->s, DSCHED_OP_RETRY, &qid, 1, err,
					sizeof(err)), 1);
	j1 = job_take(h, 3000);
	assert_non_null(j1);
	check_job(j1, qid, "other.test", 4, idx_o, 1);
	no_job(h, 700);                 /* a@relay.test was delivered */
	job_all(h, j1, 250, "2.0.0", "ok");
	wait_gone(h, qid);
	assert_int_equal(status(h).delivered, 2);
}

/* ---- EAL ---- */

static int eal_up(void **st)
{
	char prefix[64];
	char *argv[] = { "dsched_test", "--no-huge", "-m", "128", "--no-pci",
			 "--file-prefix", prefix, "--log-level=error", NULL };

	(void)st;
	snprintf(prefix, sizeof(prefix), "dsched_test_%d", (int)getpid());
	if (rte_eal_init(8, argv) < 0) {
		fprintf(stderr, "rte_eal_init failed\n");
		return -1;
	}
	return 0;
}

/* eal_down - EAL cleanup, and the run's runtime directory (config and
 * fbarray files of --no-huge memory; EAL leaves it behind) */
static int eal_down(void **st)
{
	char run[PATH_MAX];

	(void)st;
	snprintf(run, sizeof(run), "%s", rte_eal_get_runtime_dir());
	rte_eal_cleanup();
	if (strstr(run, "dsched_test_"))
		nftw(run, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* fill_op - one submission through the test's producer; its result */
static int fill_op(struct h *h, struct stor_sub *s)
{
	struct stor_sub *done = NULL;
	uint64_t end = mono_ms() + WAIT_MS;

	assert_int_equal(stor_producer_submit(h->p, s), 0);
	while (stor_producer_poll(h->p, &done, 1) == 0) {
		assert_true(mono_ms() < end);
		stor_producer_wait(h->p, 10000);
	}
	assert_ptr_equal(done, s);
	return s->result;
}

/* 15: a notice the queue refuses (above its high watermark) is not
 * lost: the original stays with the recipient failed (notice owed, state
 * 2) and is not deleted; once there is room the notice goes out and only
 * then is the original deleted */
static void notice_waits_for_room(void **st)
{
	static uint8_t big[100 * 1024];
	struct h *h = *st;
	struct stor_rcpt fr = { .addr = STOR_STR("f@hold.test"),
				.dest = STOR_STR("hold.test") };
	struct stor_msg fm = { .sender = STOR_STR("f@sender.test"),
			       .client = STOR_STR("filler"), .nrcpt = 1,
			       .rcpt = &fr };
	struct iovec iov = { big, sizeof(big) };
	uint64_t qid, fill[1024], nq;
	unsigned nfill = 0;
	struct qmsg q;
	struct djob *j;
	char *body;

	memset(big, 'x', sizeof(big));
	h->storage = "high_watermark = 0.05\n";     /* about 3 MB of 64 */
	h_start(h, NULL);
	qid = enqueue(h, 4, SENDER, AB, 1);
	j = job_take(h, WAIT_MS);
	assert_non_null(j);
	/* fill the queue up to its watermark, with ever smaller messages
	 * so that even a small notice no longer fits */
	for (size_t sz = sizeof(big); sz >= 100; sz /= 10) {
		iov.iov_len = sz;
		for (;;) {
			struct stor_sub s = { .op = STOR_OP_ENQUEUE };

			fm.arrival_us = fm.next_attempt_us = wall_us() +
							     3600000000ull;
			s.qid = stor_queue_new_qid(h->m.q);
			s.u.enq.msg = &fm;
			s.u.enq.iov = &iov;
			s.u.enq.iovcnt = 1;
			if (fill_op(h, &s) != 0)
				break;
			assert_true(nfill < 1024);
			fill[nfill++] = s.qid;
		}
	}
	assert_true(nfill > 0);
	assert_true(stor_queue_full(h->m.q));
	rcpt_result(j, 0, 550, "5.1.1", "no such user");
	job_done(h, j, DJOB_OK, 550, "5.1.1", "no such user");
	/* the refused notice leaves the original in place, failed */
	assert_true(POLL_UNTIL(h, q_msg(h, qid, &q) &&
			       q.r[0].state == STOR_RCPT_FAILED, WAIT_MS));
	settle(h);
	for (int i = 0; i < 200; i++) {
		dsched_poll(h->s, 0);
		usleep(1000);
	}
	assert_true(q_msg(h, qid, &q));
	assert_int_equal(q.r[0].state, STOR_RCPT_FAILED);
	assert_int_equal(status(h).bounces, 0);
	/* make room: the next round (first retry step, 1 s) sends it */
	for (unsigned i = 0; i < nfill; i++) {
		struct stor_sub s = { .op = STOR_OP_DELETE, .qid = fill[i] };

		assert_int_equal(fill_op(h, &s), 0);
	}
	assert_true(POLL_UNTIL(h, !q_has(h, qid), 3 * WAIT_MS));
	settle(h);
	body = notice_of(h, &nq);
	has(body, "Final-Recipient: rfc822; a@relay.test\r\nAction: failed\r\n"
		  "Status: 5.1.1\r\n");
	free(body);
	assert_int_equal(status(h).bounces, 1);
}

/* 16: directory max_conns=1 (limited.test, and the host:port destination
 * 127.0.0.6:2530): one job out at a time, while relay.test (no limit
 * entry: max_conns_per_dest = 20) gets all of its jobs at once; the job
 * carries the directory's msgs_per_conn (0 = the config value) */
static void dir_limit_conns(void **st)
{
	static const char *const dests[3] = { "limited.test", "127.0.0.6:2530",
					      "relay.test" };
	static const struct rc_spec rs[3] = {
		{ "a@limited.test", "limited.test", 0 },
		{ "a@hop.test", "127.0.0.6:2530", 0 },
		{ "a@relay.test", "relay.test", 0 },
	};
	struct h *h = *st;
	struct djob *out[3][3];
	unsigned nout[3] = { 0, 0, 0 };
	uint64_t qid[9];

	h_start(h, NULL);
	assert_int_equal(h->c.delivery.max_conns_per_dest, 20);
	for (int i = 0; i < 9; i++)
		qid[i] = enqueue(h, 4, SENDER, &rs[i % 3], 1);
	/* everything that can go: 1 + 1 + 3 jobs, then nothing more */
	for (unsigned n = 0; n < 5; n++) {
		struct djob *j = job_take(h, WAIT_MS);
		unsigned k;

		assert_non_null(j);
		for (k = 0; k < 3 && strcmp(j->dest, dests[k]); k++)
			;
		assert_true(k < 3);
		assert_int_equal(j->max_msgs, k == 0 ? 3 : 0);
		out[k][nout[k]++] = j;
	}
	no_job(h, 200);
	assert_int_equal(nout[0], 1);
	assert_int_equal(nout[1], 1);
	assert_int_equal(nout[2], 3);
	for (unsigned i = 0; i < 3; i++)
		job_all(h, out[2][i], 250, "2.0.0", "ok");
	/* each finished job of a limited destination lets the next one go */
	for (unsigned round = 0; round < 2; round++) {
		bool got[2] = { false, false };

		for (unsigned k = 0; k < 2; k++)
			job_all(h, out[k][0], 250, "2.0.0", "ok");
		for (unsigned n = 0; n < 2; n++) {
			struct djob *j = job_take(h, WAIT_MS);
			unsigned k;

			assert_non_null(j);
			k = !strcmp(j->dest, dests[1]);
			assert_string_equal(j->dest, dests[k]);
			assert_false(got[k]);   /* never two out at once */
			got[k] = true;
			out[k][0] = j;
		}
		no_job(h, 100);         /* still one each */
	}
	for (unsigned k = 0; k < 2; k++)
		job_all(h, out[k][0], 250, "2.0.0", "ok");
	for (int i = 0; i < 9; i++)
		wait_gone(h, qid[i]);
	assert_int_equal(status(h).delivered, 9);
}

/* 17: directory rate=4 (paced.test): a burst of 4 (the bucket), then one
 * job every 250 ms, while relay.test (no rate) gets its 8 at once */
static void dir_limit_rate(void **st)
{
	static const struct rc_spec rs[2] = {
		{ "a@paced.test", "paced.test", 0 },
		{ "a@relay.test", "relay.test", 0 },
	};
	struct h *h = *st;
	uint64_t t[8], t0, qid[16];
	unsigned np = 0, nr = 0;

	h_start(h, NULL);
	assert_int_equal(h->c.delivery.rate_per_dest, 0);
	for (int i = 0; i < 16; i++)
		qid[i] = enqueue(h, 4, SENDER, &rs[i % 2], 1);
	t0 = mono_ms();
	while (np < 8) {
		struct djob *j = job_take(h, WAIT_MS);

		assert_non_null(j);
		if (!strcmp(j->dest, "relay.test")) {
			assert_true(mono_ms() - t0 < 500);
			nr++;
		} else {
			assert_string_equal(j->dest, "paced.test");
			t[np++] = mono_ms();
		}
		job_all(h, j, 250, "2.0.0", "ok");
	}
	assert_int_equal(nr, 8);
	/* the burst, then 4 more at 250 ms spacing (1 ms polls: slack) */
	assert_true(t[3] - t0 < 500);
	for (int i = 4; i < 8; i++)
		if (t[i] - t[i - 1] < 200 || t[i] - t[i - 1] > 1000)
			fail_msg("paced job %d came %llu ms after the previous",
				 i, (unsigned long long)(t[i] - t[i - 1]));
	assert_true(t[7] - t[3] >= 950);
	for (int i = 0; i < 16; i++)
		wait_gone(h, qid[i]);
	assert_int_equal(status(h).delivered, 16);
}

#define CASE(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(all_delivered),
		CASE(one_bounces),
		CASE(null_sender_no_notice),
		CASE(deferred_then_delivered),
		CASE(split_by_destination),
		CASE(link_closed_holds),
		CASE(link_open_priority_order),
		CASE(link_down_and_probe),
		CASE(expiry_bounces),
		CASE(operator_ops),
		CASE(restart_keeps_state),
		CASE(max_active_one),
		CASE(not_attempted_stays_pending),
		CASE(retry_before_commit_no_duplicate),
		CASE(notice_waits_for_room),
		CASE(dir_limit_conns),
		CASE(dir_limit_rate),
	};
	return cmocka_run_group_tests(tests, eal_up, eal_down);
}
