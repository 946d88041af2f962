/*
 * sluice-stor-crashtool - the writer and the checker of the storage crash
 * test (tests/system/test_storage_crash.py).
 *
 *   write DIR NPROD [SECONDS]  open + recover DIR, start the writer, and let
 *       NPROD producer threads enqueue messages (16 outstanding each),
 *       update some (recipient 0 delivered) and delete some, until killed
 *       or SECONDS (default 60) passed. A line is printed only after the
 *       writer reported that submission committed:
 *           C <qid>   enqueued      U <qid>   updated      D <qid>   deleted
 *       (one write(2) per line). Bodies are a pure function of the qid
 *       (length 64..8255, bytes from splitmix64 seeded with the qid).
 *   verify DIR < LINES   open + recover DIR as a restart would, then check
 *       every line: C without D -> message present, body identical to the
 *       generated one and its checksum good; U without D -> recipient 0
 *       delivered; D -> absent. A message may be absent without a D line
 *       only if its delete had been submitted (U printed and it is one the
 *       writer deletes): committed-but-not-yet-reported is allowed. Also: recovery quarantined nothing and did
 *       not have to rebuild an index. Exit 0 if all holds, 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stor_err.h"
#include "stor_queue.h"
#include "stor_recover.h"
#include "stor_writer.h"

#define DEPTH 16

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* gen_body - the body of qid into buf (>= 8255 bytes); returns length */
static size_t gen_body(uint64_t qid, uint8_t *buf)
{
	uint64_t s = qid;
	size_t n = 64 + splitmix(&s) % 8192;
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = splitmix(&s);
		memcpy(buf + i, &v, n - i < 8 ? n - i : 8);
	}
	return n;
}

static void say(char kind, uint64_t qid)
{
	char line[3 + STOR_QID_TEXT + 2];
	line[0] = kind;
	line[1] = ' ';
	stor_qid_format(qid, line + 2);
	line[2 + STOR_QID_TEXT] = '\n';
	if (write(1, line, 3 + STOR_QID_TEXT) < 0)
		_exit(3);
}

struct slot {
	struct stor_sub sub;
	struct stor_msg m;
	struct stor_rcpt r[2];
	struct stor_rcpt_upd upd;
	struct iovec iov;
	uint8_t body[8256];
	int busy;
};

struct ctx {
	struct stor_queue *q;
	struct stor_writer *w;
	volatile int stop;
};

static void enqueue(struct ctx *c, struct stor_producer *p, struct slot *s)
{
	uint64_t qid = stor_queue_new_qid(c->q);
	memset(&s->sub, 0, sizeof s->sub);
	s->sub.op = STOR_OP_ENQUEUE;
	s->sub.qid = qid;
	s->iov = (struct iovec){ s->body, gen_body(qid, s->body) };
	s->r[0] = (struct stor_rcpt){ .addr = STOR_STR("a@one.example"), .dest = STOR_STR("one.example") };
	s->r[1] = (struct stor_rcpt){ .addr = STOR_STR("b@two.example"), .dest = STOR_STR("two.example") };
	s->m = (struct stor_msg){ .priority = (uint8_t)(qid % 8), .sender = STOR_STR("s@crash.example"),
		.arrival_us = qid, .next_attempt_us = qid, .nrcpt = 2, .rcpt = s->r };
	s->sub.u.enq.msg = &s->m;
	s->sub.u.enq.iov = &s->iov;
	s->sub.u.enq.iovcnt = 1;
	s->busy = stor_producer_submit(p, &s->sub) == 0;
}

static void *producer(void *a)
{
	struct ctx *c = a;
	struct stor_producer *p;
	static struct slot slots_all[64][DEPTH];
	static int next_id;
	int me = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
	struct slot *slots = slots_all[me];
	if (stor_writer_producer(c->w, DEPTH, &p))
		return NULL;
	for (int i = 0; i < DEPTH; i++)
		enqueue(c, p, &slots[i]);
	while (!c->stop) {
		struct stor_sub *out[DEPTH];
		stor_producer_wait(p, 100000);
		unsigned n = stor_producer_poll(p, out, DEPTH);
		for (unsigned i = 0; i < n; i++) {
			struct slot *s = (struct slot *)out[i];   /* sub is first */
			uint64_t qid = s->sub.qid, h = qid * 0x9E3779B97F4A7C15ull >> 60;
			int op = s->sub.op, rc = s->sub.result;
			s->busy = 0;
			if (rc) {
				fprintf(stderr, "crashtool: op %d on %llx: %s\n", op,
					(unsigned long long)qid, stor_strerror(rc));
				exit(2);
			}
			say(op == STOR_OP_ENQUEUE ? 'C' : op == STOR_OP_UPDATE ? 'U' : 'D', qid);
			if (op == STOR_OP_ENQUEUE && h < 6) {
				memset(&s->sub, 0, sizeof s->sub);
				s->sub.op = STOR_OP_UPDATE;
				s->sub.qid = qid;
				s->upd = (struct stor_rcpt_upd){ 0, STOR_RCPT_DELIVERED, STOR_STR("250 2.0.0 ok") };
				s->sub.u.upd = (struct stor_update){ qid, qid + 1000000, 1, &s->upd };
				s->busy = stor_producer_submit(p, &s->sub) == 0;
			} else if (op == STOR_OP_UPDATE && h < 3) {
				memset(&s->sub, 0, sizeof s->sub);
				s->sub.op = STOR_OP_DELETE;
				s->sub.qid = qid;
				s->busy = stor_producer_submit(p, &s->sub) == 0;
			}
			if (!s->busy)
				enqueue(c, p, s);
		}
	}
	return NULL;
}

static int open_recovered(const char *dir, struct stor_queue **q,
			  struct stor_recover_report *rep)
{
	struct stor_queue_conf qc = { .path = dir, .map_size = (size_t)4 << 30 };
	int rc = stor_queue_open(&qc, q);
	if (!rc)
		rc = stor_recover_run(*q, NULL, rep);
	if (rc)
		fprintf(stderr, "crashtool: %s: %s\n", dir, stor_strerror(rc));
	return rc;
}

static int do_write(const char *dir, int nprod, int secs)
{
	struct ctx c = { 0 };
	struct stor_recover_report rep;
	if (nprod < 1 || nprod > 64 || open_recovered(dir, &c.q, &rep))
		return 2;
	fprintf(stderr, "crashtool: recovered %llu messages (%llu pending), quarantined %llu, "
		"rebuilt sched %d hold %d\n", (unsigned long long)rep.messages,
		(unsigned long long)rep.pending, (unsigned long long)rep.quarantined,
		rep.sched_rebuilt, rep.hold_rebuilt);
	if (stor_writer_new(c.q, NULL, &c.w) || stor_writer_start(c.w))
		return 2;
	pthread_t th[64];
	for (int i = 0; i < nprod; i++)
		pthread_create(&th[i], NULL, producer, &c);
	sleep((unsigned)secs);
	c.stop = 1;
	for (int i = 0; i < nprod; i++)
		pthread_join(th[i], NULL);
	stor_writer_free(c.w);
	stor_queue_close(c.q);
	return 0;
}

struct ent { uint64_t qid; uint8_t c, u, d; };

static int cmp_ent(const void *a, const void *b)
{
	uint64_t x = ((const struct ent *)a)->qid, y = ((const struct ent *)b)->qid;
	return x < y ? -1 : x > y;
}

static int do_verify(const char *dir)
{
	size_t n = 0, cap = 1 << 16;
	struct ent *e = malloc(cap * sizeof *e);
	char line[128];
	while (fgets(line, sizeof line, stdin)) {
		uint64_t qid;
		size_t len = strlen(line);
		if (len != 3 + STOR_QID_TEXT || line[len - 1] != '\n' || line[1] != ' ' ||
		    stor_qid_parse(line + 2, STOR_QID_TEXT, &qid)) {
			fprintf(stderr, "verify: bad line: %s", line);
			return 1;
		}
		if (n == cap)
			e = realloc(e, (cap *= 2) * sizeof *e);
		e[n++] = (struct ent){ qid, line[0] == 'C', line[0] == 'U', line[0] == 'D' };
	}
	qsort(e, n, sizeof *e, cmp_ent);
	size_t m = 0;   /* merge lines of the same id */
	for (size_t i = 0; i < n; i++) {
		if (m && e[m - 1].qid == e[i].qid) {
			e[m - 1].c |= e[i].c;
			e[m - 1].u |= e[i].u;
			e[m - 1].d |= e[i].d;
		} else {
			e[m++] = e[i];
		}
	}
	struct stor_queue *q;
	struct stor_recover_report rep;
	if (open_recovered(dir, &q, &rep))
		return 1;
	int bad = 0;
	if (rep.quarantined || rep.sched_rebuilt || rep.hold_rebuilt) {
		fprintf(stderr, "verify: recovery quarantined %llu, rebuilt sched %d hold %d\n",
			(unsigned long long)rep.quarantined, rep.sched_rebuilt, rep.hold_rebuilt);
		bad++;
	}
	struct stor_reader *r;
	stor_reader_open(q, &r);
	stor_reader_begin(r);
	static uint8_t want[8256];
	size_t present = 0, deleted = 0, updated = 0, unreported = 0;
	for (size_t i = 0; i < m; i++) {
		char id[STOR_QID_TEXT + 1];
		struct stor_msg msg;
		struct stor_rcpt rc[4];
		int rm = stor_reader_msg(r, e[i].qid, &msg, rc, 4);
		stor_qid_format(e[i].qid, id);
		if (e[i].d) {
			deleted++;
			if (rm != MDB_NOTFOUND) {
				fprintf(stderr, "verify: %s reported deleted but %s\n", id,
					rm ? stor_strerror(rm) : "present");
				bad++;
			}
			continue;
		}
		if (!e[i].c && !e[i].u)
			continue;
		uint64_t h = e[i].qid * 0x9E3779B97F4A7C15ull >> 60;
		if (rm == MDB_NOTFOUND && e[i].u && h < 3) {
			unreported++;   /* its delete was submitted after U: may have committed */
			continue;
		}
		if (rm) {
			fprintf(stderr, "verify: %s reported committed but metadata: %s\n", id,
				stor_strerror(rm));
			bad++;
			continue;
		}
		const void *b;
		size_t bn, wn = gen_body(e[i].qid, want);
		int rb = stor_reader_body(r, e[i].qid, 1, &b, &bn);
		if (rb || bn != wn || memcmp(b, want, wn) || msg.body_len != wn) {
			fprintf(stderr, "verify: %s body %s\n", id, rb ? stor_strerror(rb) : "differs");
			bad++;
			continue;
		}
		present++;
		if (e[i].u) {
			updated++;
			if (rc[0].state != STOR_RCPT_DELIVERED || rc[1].state != STOR_RCPT_PENDING) {
				fprintf(stderr, "verify: %s update lost\n", id);
				bad++;
			}
		}
	}
	stor_reader_close(r);
	printf("verify: %zu ids: %zu present and intact (%zu updated), %zu deleted and absent, "
	       "%zu absent after an unreported delete; queue holds %llu messages; %d problem(s)\n",
	       m, present, updated, deleted, unreported, (unsigned long long)rep.messages, bad);
	stor_queue_close(q);
	free(e);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "write"))
		return do_write(argv[2], atoi(argv[3]), argc > 4 ? atoi(argv[4]) : 60);
	if (argc == 3 && !strcmp(argv[1], "verify"))
		return do_verify(argv[2]);
	fprintf(stderr, "usage: %s write DIR NPROD [SECONDS] | verify DIR < LINES\n", argv[0]);
	return 2;
}
