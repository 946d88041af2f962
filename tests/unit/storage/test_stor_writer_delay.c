/*
 * test_stor_writer_delay - the LAB ONLY commit delay of the group-commit
 * writer (stor_writer_conf.lab_commit_delay_us), used by the backpressure
 * system tests: on the writer thread every non-empty batch is held that
 * long before its commit, nothing is lost, everything still commits;
 * stor_writer_poll (reactor mode) never sleeps; a stop cuts the delay
 * short and still commits what was submitted. Each case on its own
 * temporary directory.
 */
#include "stor_test.h"
#include <time.h>

#define DELAY_MS 50
#define N_MSGS 40

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int setup(void **st)
{
	struct qfix *f = calloc(1, sizeof *f);
	f->dir = test_tmpdir();
	f->map_size = 64 << 20;
	f->wc.lab_commit_delay_us = DELAY_MS * 1000;
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

/* body_is - the stored body of qid is exactly want */
static void body_is(struct qfix *f, uint64_t qid, const char *want)
{
	struct stor_reader *r;
	const void *b;
	size_t n;
	assert_int_equal(stor_reader_open(f->q, &r), 0);
	assert_int_equal(stor_reader_begin(r), 0);
	assert_int_equal(stor_reader_body(r, qid, 1, &b, &n), 0);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(b, want, n);
	stor_reader_close(r);
}

/* one message alone: answered no sooner than the delay, and stored */
static void single_waits_for_delay(void **st)
{
	struct qfix *f = *st;
	struct tmsg t;
	uint64_t q, t0;

	assert_int_equal(qfix_open(f), 0);
	tmsg_init(&t, 1, 1, 4);
	for (int i = 0; i < 3; i++) {
		t0 = mono_ms();
		assert_int_equal(enqueue_sync(f, &t.m, "delayed body", 12, &q), 0);
		assert_true(mono_ms() - t0 >= DELAY_MS);
		body_is(f, q, "delayed body");
	}
}

/* N_MSGS in flight at once: every batch is held >= DELAY_MS, so the
 * elapsed time is at least batches * DELAY_MS; every one commits */
static void batches_each_delayed_none_lost(void **st)
{
	struct qfix *f = *st;
	struct tmsg t;
	struct stor_sub s[N_MSGS];
	struct iovec iov[N_MSGS];
	char body[N_MSGS][32];
	struct stor_writer_stats ws0, ws;
	unsigned got = 0;
	uint64_t t0;

	assert_int_equal(qfix_open(f), 0);
	tmsg_init(&t, 2, 2, 3);
	stor_writer_stats(f->w, &ws0);
	t0 = mono_ms();
	for (unsigned i = 0; i < N_MSGS; i++) {
		snprintf(body[i], sizeof body[i], "message %u\r\n", i);
		iov[i] = (struct iovec){ body[i], strlen(body[i]) };
		s[i] = (struct stor_sub){ .op = STOR_OP_ENQUEUE };
		s[i].qid = stor_queue_new_qid(f->q);
		s[i].u.enq.msg = &t.m;
		s[i].u.enq.iov = &iov[i];
		s[i].u.enq.iovcnt = 1;
		assert_int_equal(stor_producer_submit(f->p, &s[i]), 0);
	}
	/* bounded: 200 waits of at most 100 ms */
	for (int k = 0; k < 200 && got < N_MSGS; k++) {
		struct stor_sub *out[N_MSGS];
		stor_producer_wait(f->p, 100000);
		unsigned n = stor_producer_poll(f->p, out, N_MSGS);
		for (unsigned i = 0; i < n; i++)
			assert_int_equal(out[i]->result, 0);
		got += n;
	}
	uint64_t elapsed = mono_ms() - t0;
	assert_int_equal(got, N_MSGS);
	stor_writer_stats(f->w, &ws);
	uint64_t batches = ws.batches - ws0.batches;
	assert_true(batches >= 1);
	assert_int_equal(ws.committed - ws0.committed, N_MSGS);
	assert_true(elapsed >= batches * DELAY_MS);
	for (unsigned i = 0; i < N_MSGS; i++)
		body_is(f, s[i].qid, body[i]);
	/* and they are durable: a restart finds them all */
	qfix_reopen(f);
	assert_int_equal(f->rep.messages, N_MSGS);
	for (unsigned i = 0; i < N_MSGS; i++)
		body_is(f, s[i].qid, body[i]);
}

/* reactor mode (stor_writer_poll) never sleeps: the delay is for the
 * writer thread only */
static void poll_mode_not_delayed(void **st)
{
	struct qfix *f = *st;
	struct stor_queue_conf qc = { .path = f->dir, .map_size = f->map_size,
				      .log = test_log_fn, .log_arg = &f->log };
	struct stor_writer_conf wc = { .lab_commit_delay_us = 2000 * 1000 };
	struct tmsg t;
	struct stor_sub s = { .op = STOR_OP_ENQUEUE }, *out;
	struct iovec iov = { "polled", 6 };

	assert_int_equal(stor_queue_open(&qc, &f->q), 0);
	assert_int_equal(stor_recover_run(f->q, NULL, NULL), 0);
	assert_int_equal(stor_writer_new(f->q, &wc, &f->w), 0);
	assert_int_equal(stor_writer_producer(f->w, 4, &f->p), 0);
	tmsg_init(&t, 1, 1, 4);
	s.qid = stor_queue_new_qid(f->q);
	s.u.enq.msg = &t.m;
	s.u.enq.iov = &iov;
	s.u.enq.iovcnt = 1;
	assert_int_equal(stor_producer_submit(f->p, &s), 0);
	uint64_t t0 = mono_ms();
	assert_int_equal(stor_writer_poll(f->w), 1);
	assert_true(mono_ms() - t0 < 1000);
	assert_int_equal(stor_producer_poll(f->p, &out, 1), 1);
	assert_int_equal(out->result, 0);
	body_is(f, s.qid, "polled");
}

/* a stop does not wait out a long delay, and still commits what was
 * submitted */
static void stop_cuts_delay_short(void **st)
{
	struct qfix *f = *st;
	struct tmsg t;
	struct stor_sub s = { .op = STOR_OP_ENQUEUE }, *out;
	struct iovec iov = { "at stop", 7 };

	f->wc.lab_commit_delay_us = 5000 * 1000;
	assert_int_equal(qfix_open(f), 0);
	tmsg_init(&t, 1, 1, 4);
	s.qid = stor_queue_new_qid(f->q);
	s.u.enq.msg = &t.m;
	s.u.enq.iov = &iov;
	s.u.enq.iovcnt = 1;
	assert_int_equal(stor_producer_submit(f->p, &s), 0);
	usleep(100 * 1000);    /* the writer took it and sleeps */
	uint64_t t0 = mono_ms();
	stor_writer_stop(f->w);
	assert_true(mono_ms() - t0 < 2500);
	assert_int_equal(stor_producer_poll(f->p, &out, 1), 1);
	assert_int_equal(out->result, 0);
	body_is(f, s.qid, "at stop");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(single_waits_for_delay, setup, teardown),
		cmocka_unit_test_setup_teardown(batches_each_delayed_none_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(poll_mode_not_delayed, setup, teardown),
		cmocka_unit_test_setup_teardown(stop_cuts_delay_short, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
