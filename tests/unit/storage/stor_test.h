/*
 * stor_test - helpers shared by the storage unit tests: temporary
 * directories, a queue+writer fixture, synchronous submit.
 */
#ifndef STOR_TEST_H
#define STOR_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <unistd.h>
#include <cmocka.h>

#include "stor_err.h"
#include "stor_queue.h"
#include "stor_recover.h"
#include "stor_writer.h"

static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
	(void)sb; (void)f; (void)ftw;
	return remove(p);
}

/* test_tmpdir - a fresh directory under $TMPDIR (default /var/tmp) */
static inline char *test_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p = malloc(512);
	snprintf(p, 512, "%s/stor-test-XXXXXX", base && *base ? base : "/var/tmp");
	assert_non_null(mkdtemp(p));
	return p;
}

static inline void test_rmdir(char *p)
{
	nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(p);
}

/* quiet logger that counts messages per level */
struct test_log { int err, warn, info; char last[512]; };
static inline void test_log_fn(void *arg, int level, const char *msg)
{
	struct test_log *l = arg;
	if (level <= STOR_LOG_ERR) l->err++;
	else if (level == STOR_LOG_WARN) l->warn++;
	else l->info++;
	snprintf(l->last, sizeof l->last, "%s", msg);
}

/* fixture: queue (recovered) + writer on its own thread + one producer */
struct qfix {
	char *dir;
	struct stor_queue *q;
	struct stor_writer *w;
	struct stor_producer *p;
	struct stor_recover_report rep;
	struct test_log log;
	size_t map_size;
	double hw;
	struct stor_writer_conf wc;
};

static inline int qfix_open(struct qfix *f)
{
	struct stor_queue_conf c = {
		.path = f->dir, .map_size = f->map_size, .high_watermark = f->hw,
		.log = test_log_fn, .log_arg = &f->log,
	};
	int rc = stor_queue_open(&c, &f->q);
	if (rc)
		return rc;
	if ((rc = stor_recover_run(f->q, NULL, &f->rep)))
		return rc;
	if ((rc = stor_writer_new(f->q, &f->wc, &f->w)))
		return rc;
	if ((rc = stor_writer_producer(f->w, 64, &f->p)))
		return rc;
	return stor_writer_start(f->w);
}

static inline void qfix_close(struct qfix *f)
{
	stor_writer_free(f->w);
	stor_queue_close(f->q);
	f->w = NULL;
	f->q = NULL;
	f->p = NULL;
}

/* qfix_reopen - close and open again (a restart) */
static inline void qfix_reopen(struct qfix *f)
{
	qfix_close(f);
	assert_int_equal(qfix_open(f), 0);
}

/* sync_submit - submit one and wait for its completion; returns result */
static inline int sync_submit(struct stor_producer *p, struct stor_sub *s)
{
	int rc = stor_producer_submit(p, s);
	if (rc)
		return rc;
	struct stor_sub *done = NULL;
	for (int i = 0; i < 10000; i++) {
		stor_producer_wait(p, 100000);
		if (stor_producer_poll(p, &done, 1))
			break;
	}
	assert_ptr_equal(done, s);
	return done->result;
}

/* a one-message envelope with n recipients over dests "d0", "d1", ... */
struct tmsg {
	struct stor_msg m;
	struct stor_rcpt r[8];
	char addr[8][32], dest[8][8];
};

static inline void tmsg_init(struct tmsg *t, unsigned n, unsigned ndest, uint8_t prio)
{
	memset(t, 0, sizeof *t);
	t->m.arrival_us = 1700000000000000ull;
	t->m.next_attempt_us = 1700000000000000ull;
	t->m.priority = prio;
	t->m.sender = STOR_STR("alice@example.org");
	t->m.nrcpt = n;
	t->m.rcpt = t->r;
	for (unsigned i = 0; i < n; i++) {
		snprintf(t->addr[i], sizeof t->addr[i], "rcpt%u@d%u.example", i, i % ndest);
		snprintf(t->dest[i], sizeof t->dest[i], "d%u", i % ndest);
		t->r[i].addr = (struct stor_str){ t->addr[i], (uint32_t)strlen(t->addr[i]) };
		t->r[i].dest = (struct stor_str){ t->dest[i], (uint32_t)strlen(t->dest[i]) };
	}
}

/* enqueue_sync - store msg with body; returns result, *qid set */
static inline int enqueue_sync(struct qfix *f, const struct stor_msg *m,
			       const void *body, size_t len, uint64_t *qid)
{
	struct iovec iov = { (void *)body, len };
	struct stor_sub s = { .op = STOR_OP_ENQUEUE };
	s.qid = *qid = stor_queue_new_qid(f->q);
	s.u.enq.msg = m;
	s.u.enq.iov = &iov;
	s.u.enq.iovcnt = 1;
	return sync_submit(f->p, &s);
}

#endif
