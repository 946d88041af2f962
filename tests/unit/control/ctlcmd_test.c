/*
 * ctlcmd_test - the control commands (control/ctlcmd.c) and the control
 * socket (control/ctlsock.c).
 *
 * The scheduler is a test double defined below (the dsched.h API: it
 * records every operator call and answers canned views); the queue is a
 * real LMDB queue in a temporary directory, filled through the storage
 * writer, so queue list/show read real records. ctlsock is driven over a
 * real UNIX socket in the same temporary directory. Responses are checked
 * field by field and every one is also fed to Python's json module
 * (strict UTF-8) to prove it is valid JSON.
 */
#include "../storage/stor_test.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <rte_ring.h>

#include "ctlcmd.h"
#include "ctlsock.h"
#include "dsched.h"
#include "mstore.h"

/* ---- the scheduler test double ---- */

struct dsched { int unused; };

static struct fake {
	struct dsched s;
	int msgs_calls, dest_calls, flush_calls, link_calls;
	enum dsched_op op;
	uint64_t qid[64];
	unsigned n;
	char dest[300];
	enum stor_link link;
	int ret;                     /* what the next action returns */
	const char *fail;            /* non-NULL: actions fail with this */
	struct { uint64_t qid; enum dsched_mstate st; } states[16];
	unsigned nstates;
	struct dsched_dest_info links[3];
	unsigned nlinks;
	struct dsched_status st;
} fk;

static const char *const fk_state_names[] = {
	"ready", "active", "deferred", "held", "hold", "unknown",
};

const char *dsched_mstate_name(enum dsched_mstate s)
{
	return (unsigned)s <= DSCHED_M_UNKNOWN ? fk_state_names[s] : "?";
}

int dsched_mstate_parse(const char *name)
{
	for (int i = 0; i < DSCHED_M_UNKNOWN; i++)
		if (!strcmp(name, fk_state_names[i]))
			return i;
	return -1;
}

int dsched_op_parse(const char *name)
{
	static const char *const ops[] = { "hold", "release", "delete",
					   "retry" };

	for (int i = 0; i < 4; i++)
		if (!strcmp(name, ops[i]))
			return i;
	return -1;
}

static int fk_fail(char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", fk.fail);
	return -1;
}

int dsched_msgs_op(struct dsched *s, enum dsched_op op, const uint64_t *qid,
		   unsigned n, char *err, size_t errlen)
{
	assert_ptr_equal(s, &fk.s);
	fk.msgs_calls++;
	if (fk.fail)
		return fk_fail(err, errlen);
	fk.op = op;
	fk.n = n;
	assert_true(n <= 64);
	memcpy(fk.qid, qid, n * sizeof(*qid));
	return fk.ret;
}

int dsched_dest_op(struct dsched *s, enum dsched_op op, const char *dest,
		   char *err, size_t errlen)
{
	assert_ptr_equal(s, &fk.s);
	fk.dest_calls++;
	if (fk.fail)
		return fk_fail(err, errlen);
	fk.op = op;
	snprintf(fk.dest, sizeof(fk.dest), "%s", dest);
	return fk.ret;
}

int dsched_flush(struct dsched *s)
{
	assert_ptr_equal(s, &fk.s);
	fk.flush_calls++;
	return fk.ret;
}

int dsched_link_set(struct dsched *s, const char *dest, enum stor_link link,
		    char *err, size_t errlen)
{
	assert_ptr_equal(s, &fk.s);
	fk.link_calls++;
	if (fk.fail)
		return fk_fail(err, errlen);
	snprintf(fk.dest, sizeof(fk.dest), "%s", dest);
	fk.link = link;
	return 0;
}

enum dsched_mstate dsched_msg_state(const struct dsched *s, uint64_t qid)
{
	assert_ptr_equal(s, &fk.s);
	for (unsigned i = 0; i < fk.nstates; i++)
		if (fk.states[i].qid == qid)
			return fk.states[i].st;
	return DSCHED_M_READY;
}

void dsched_links(const struct dsched *s, dsched_dest_cb cb, void *arg)
{
	assert_ptr_equal(s, &fk.s);
	for (unsigned i = 0; i < fk.nlinks; i++)
		if (cb(arg, &fk.links[i]))
			break;
}

int dsched_link_info(const struct dsched *s, const char *dest,
		     struct dsched_dest_info *d)
{
	assert_ptr_equal(s, &fk.s);
	for (unsigned i = 0; i < fk.nlinks; i++)
		if (!strcmp(fk.links[i].name, dest)) {
			*d = fk.links[i];
			return 0;
		}
	return -1;
}

void dsched_status(const struct dsched *s, struct dsched_status *st)
{
	assert_ptr_equal(s, &fk.s);
	*st = fk.st;
}

/* ---- fixture: a queue with five messages ---- */

#define NMSG 5

static struct qfix qf;
static struct mstore mst;
static struct ctlcmd_env env;
static uint64_t ids[NMSG];
static char idt[NMSG][STOR_QID_TEXT + 1];
static void *ring_mem;

/* mkmsg - store one message: prio, sender, recipients "addr>dest[:state
 * [:reply]]" (state p/d/f) */
static uint64_t mkmsg(uint8_t prio, const char *sender, unsigned n,
		      const char *const *r)
{
	struct stor_msg m = { 0 };
	struct stor_rcpt rc[8];
	char buf[8][128];
	uint64_t qid;

	assert_true(n <= 8);
	m.arrival_us = 1700000000000000ull;
	m.next_attempt_us = 1700000060000000ull;
	m.priority = prio;
	m.sender = (struct stor_str){ sender, (uint32_t)strlen(sender) };
	m.client = STOR_STR("[198.18.0.2]");
	m.nrcpt = n;
	m.rcpt = rc;
	memset(rc, 0, sizeof(rc));
	for (unsigned i = 0; i < n; i++) {
		char *gt, *c1, *c2;

		snprintf(buf[i], sizeof(buf[i]), "%s", r[i]);
		gt = strchr(buf[i], '>');
		*gt = 0;
		c1 = strchr(gt + 1, ':');
		if (c1) {
			*c1 = 0;
			c2 = strchr(c1 + 1, ':');
			rc[i].state = c1[1] == 'd' ? STOR_RCPT_DELIVERED :
				      c1[1] == 'f' ? STOR_RCPT_FAILED :
				      STOR_RCPT_PENDING;
			if (c2) {
				rc[i].reply = (struct stor_str){ c2 + 1,
					(uint32_t)strlen(c2 + 1) };
				rc[i].attempts = 2;
				rc[i].last_attempt_us = 1700000030000000ull;
			}
		}
		rc[i].addr = (struct stor_str){ buf[i], (uint32_t)strlen(buf[i]) };
		rc[i].dest = (struct stor_str){ gt + 1, (uint32_t)strlen(gt + 1) };
	}
	assert_int_equal(enqueue_sync(&qf, &m, "Subject: x\r\n\r\nhi\r\n", 18,
				      &qid), 0);
	return qid;
}

static int setup(void **state)
{
	(void)state;
	memset(&qf, 0, sizeof(qf));
	qf.dir = test_tmpdir();
	assert_int_equal(qfix_open(&qf), 0);
	{
		const char *r0[] = { "a@one.test>one.test" };
		const char *r1[] = { "b@two.test>two.test:p:451 4.4.1 try later",
				     "c@one.test>one.test:d:250 ok" };
		const char *r2[] = { "d@one.test>One.Test" };
		const char *r3[] = { "e@three.test>three.test:f:550 no" };
		const char *r4[] = { "f@two.test>two.test", "g@x.test>x.test" };

		ids[0] = mkmsg(4, "alice@example.org", 1, r0);
		ids[1] = mkmsg(3, "bob@example.org", 2, r1);
		/* sender with a control byte and invalid UTF-8 */
		ids[2] = mkmsg(4, "ev\x01l\xff\xc0\xaf@\xc3\xa9x.test", 1, r2);
		ids[3] = mkmsg(0, "", 1, r3);
		ids[4] = mkmsg(3, "carol@example.org", 2, r4);
	}
	for (int i = 0; i < NMSG; i++)
		stor_qid_format(ids[i], idt[i]);
	memset(&mst, 0, sizeof(mst));
	mst.q = qf.q;
	ssize_t sz = rte_ring_get_memsize(64);

	assert_true(sz > 0);
	ring_mem = aligned_alloc(128, ((size_t)sz + 127) & ~(size_t)127);
	assert_int_equal(rte_ring_init(ring_mem, "ctlt", 64,
				       RING_F_SP_ENQ | RING_F_SC_DEQ), 0);
	mst.prio[2] = ring_mem;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	qfix_close(&qf);
	test_rmdir(qf.dir);
	free(ring_mem);
	return 0;
}

/* per test: fresh fake and environment */
static int reset(void **state)
{
	(void)state;
	memset(&fk, 0, sizeof(fk));
	memset(&env, 0, sizeof(env));
	env.sched = &fk.s;
	env.m = &mst;
	return 0;
}

/* ---- helpers ---- */

/* json_ok - Python's json accepts the text (strict UTF-8) */
static int json_ok(const char *s, size_t n)
{
	FILE *p = popen("/usr/bin/python3 -c 'import json,sys; "
			"json.loads(sys.stdin.buffer.read().decode(\"utf-8\"))'",
			"w");

	assert_non_null(p);
	fwrite(s, 1, n, p);
	return pclose(p) == 0;
}

static char *resp;
static size_t resp_n;

/* run - one request; the response stays in resp (checked to be valid
 * JSON ending in one newline) */
static const char *run(const char *line)
{
	if (resp)
		ctlcmd_free(resp);
	ctlcmd_run(&env, line, &resp, &resp_n);
	assert_non_null(resp);
	assert_true(resp_n > 2);
	assert_int_equal(resp[resp_n - 1], '\n');
	assert_null(memchr(resp, '\n', resp_n - 1));
	assert_true(json_ok(resp, resp_n));
	return resp;
}

#define HAS(s, sub) do { if (!strstr((s), (sub))) \
	{ fprintf(stderr, "missing %s\nin %s\n", (sub), (s)); fail(); } } while (0)
#define HASNT(s, sub) do { if (strstr((s), (sub))) \
	fail_msg("unexpected %s in %s", (sub), (s)); } while (0)
#define OK(s) HAS((s), "{\"ok\":true,")
#define ERR(s, msg) do { HAS((s), "{\"ok\":false,\"error\":\""); \
	HAS((s), (msg)); } while (0)

/* count occurrences of sub */
static int count(const char *s, const char *sub)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, sub)); p++)
		n++;
	return n;
}

/* next_of - the "next" cursor of a queue list response ("" if null) */
static const char *next_of(const char *r, char out[STOR_QID_TEXT + 1])
{
	const char *p = strstr(r, "\"next\":");

	assert_non_null(p);
	p += 7;
	if (*p == 'n') {
		out[0] = 0;
		return out;
	}
	assert_int_equal(*p, '"');
	memcpy(out, p + 1, STOR_QID_TEXT);
	out[STOR_QID_TEXT] = 0;
	return out;
}

/* ---- JSON escaping ---- */

static void test_json_escape(void **state)
{
	static const struct {
		const char *name, *in;
		size_t n;
		const char *out;
	} cases[] = {
		{ "plain", "abc", 3, "\"abc\"" },
		{ "quote and backslash", "a\"b\\c", 5, "\"a\\\"b\\\\c\"" },
		{ "named controls", "\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"" },
		{ "other controls", "\x01\x1f\x7f", 3,
		  "\"\\u0001\\u001f\\u007f\"" },
		{ "NUL inside", "a\0b", 3, "\"a\\u0000b\"" },
		{ "valid UTF-8 kept", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9,
		  "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"" },
		{ "lone byte", "\xff", 1, "\"\\ufffd\"" },
		{ "overlong /", "\xc0\xaf", 2, "\"\\ufffd\\ufffd\"" },
		{ "surrogate", "\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"" },
		{ "above U+10FFFF", "\xf4\x90\x80\x80", 4,
		  "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
		{ "truncated at end", "x\xe2\x82", 3, "\"x\\ufffd\\ufffd\"" },
		{ "continuation alone", "\x80z", 2, "\"\\ufffdz\"" },
		{ "empty", "", 0, "\"\"" },
	};
	char out[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t need = ctlcmd_json_str(NULL, 0, cases[i].in, cases[i].n);
		size_t k = ctlcmd_json_str(out, sizeof(out), cases[i].in,
					   cases[i].n);

		assert_int_equal(need, k);
		out[k] = 0;
		if (strcmp(out, cases[i].out))
			fail_msg("%s: got %s want %s", cases[i].name, out,
				 cases[i].out);
		assert_true(json_ok(out, k));
	}
	/* a short buffer gets a prefix, the return is the full size */
	memset(out, '#', sizeof(out));
	assert_int_equal(ctlcmd_json_str(out, 3, "abcdef", 6), 8);
	assert_memory_equal(out, "\"ab#", 4);
}

/* ---- queue list ---- */

static void test_list_all(void **state)
{
	const char *r;

	(void)state;
	fk.states[0].qid = ids[1];
	fk.states[0].st = DSCHED_M_DEFERRED;
	fk.nstates = 1;
	r = run("queue list");
	OK(r);
	HAS(r, "\"count\":5,\"scanned\":5,\"corrupt\":0,\"next\":null");
	/* id order */
	const char *p0 = strstr(r, idt[0]), *p4 = strstr(r, idt[4]);

	assert_non_null(p0);
	assert_non_null(p4);
	assert_true(p0 < strstr(r, idt[1]) && strstr(r, idt[3]) < p4);
	/* one row in full */
	char row[1024];

	snprintf(row, sizeof(row), "{\"id\":\"%s\",\"arrival_us\":"
		 "1700000000000000,\"arrival\":\"2023-11-14T22:13:20Z\","
		 "\"size\":18,\"priority\":3,\"sender\":\"bob@example.org\","
		 "\"rcpt_pending\":1,\"rcpt_total\":2,\"destinations\":"
		 "[\"two.test\"],\"destinations_more\":false,\"state\":"
		 "\"deferred\",\"attempts\":0,\"next_attempt_us\":"
		 "1700000060000000,\"next_attempt\":\"2023-11-14T22:14:20Z\","
		 "\"last_reply\":\"451 4.4.1 try later\"}", idt[1]);
	HAS(r, row);
	/* the null sender and the escaped one */
	HAS(r, "\"sender\":\"\"");
	HAS(r, "\"sender\":\"ev\\u0001l\\ufffd\\ufffd\\ufffd@\xc3\xa9x.test\"");
	/* the table */
	HAS(r, "\"text\":\"ID            ARRIVED (UTC)");
	HAS(r, "-- 5 messages shown, 5 scanned --");
	HAS(r, "ev?l");         /* control byte shown as ? for people */
}

static void test_list_paging(void **state)
{
	char next[STOR_QID_TEXT + 1], line[128];
	int seen[NMSG] = { 0 }, pages = 0;

	(void)state;
	snprintf(line, sizeof(line), "queue list limit=2");
	for (;;) {
		const char *r = run(line);

		OK(r);
		pages++;
		for (int i = 0; i < NMSG; i++)
			seen[i] += count(r, idt[i]) > 0;
		next_of(r, next);
		if (!next[0])
			break;
		assert_true(pages < 10);
		snprintf(line, sizeof(line), "queue list limit=2 after=%s",
			 next);
	}
	assert_int_equal(pages, 3);
	for (int i = 0; i < NMSG; i++)
		assert_int_equal(seen[i], 1);
	/* the first page stops at its limit with the second id as cursor */
	const char *r = run("queue list limit=2");

	HAS(r, "\"count\":2");
	HAS(r, "\"stopped\":\"limit\"");
	assert_string_equal(next_of(r, next), idt[1]);
	/* exactly as many as there are: no cursor */
	r = run("queue list limit=5");
	HAS(r, "\"count\":5");
	HAS(r, "\"next\":null");
	/* after the last id: nothing; lower case ids are accepted */
	char lc[STOR_QID_TEXT + 1];

	for (int i = 0; i <= STOR_QID_TEXT; i++)
		lc[i] = (char)tolower((unsigned char)idt[4][i]);
	snprintf(line, sizeof(line), "queue list after=%s", lc);
	r = run(line);
	OK(r);
	HAS(r, "\"messages\":[],\"count\":0");
	HAS(r, "\"next\":null");
}

static void test_list_filters(void **state)
{
	const char *r;

	(void)state;
	r = run("queue list prio=3");
	HAS(r, "\"count\":2");
	HAS(r, idt[1]);
	HAS(r, idt[4]);
	/* pending recipients only, destination case-insensitive */
	r = run("queue list dest=one.test");
	HAS(r, "\"count\":2");
	HAS(r, idt[0]);
	HAS(r, idt[2]);
	HASNT(r, idt[1]);        /* its one.test recipient was delivered */
	r = run("queue list dest=ONE.TEST prio=4 limit=1");
	HAS(r, "\"count\":1");
	HAS(r, idt[0]);
	char want[64];

	snprintf(want, sizeof(want), "\"next\":\"%s\"", idt[0]);
	HAS(r, want);
	r = run("queue list dest=three.test");
	HAS(r, "\"count\":0");    /* failed recipient: nothing pending */
	/* state from the scheduler */
	fk.states[0].qid = ids[2];
	fk.states[0].st = DSCHED_M_HOLD;
	fk.states[1].qid = ids[4];
	fk.states[1].st = DSCHED_M_HOLD;
	fk.nstates = 2;
	r = run("queue list state=hold");
	HAS(r, "\"count\":2");
	HAS(r, idt[2]);
	HAS(r, idt[4]);
	r = run("queue list state=hold prio=3 dest=x.test");
	HAS(r, "\"count\":1");
	HAS(r, idt[4]);
	HAS(r, "\"destinations\":[\"two.test\",\"x.test\"]");
	r = run("queue list state=active");
	HAS(r, "\"count\":0,\"scanned\":5");
}

static void test_list_scan_bound(void **state)
{
	char next[STOR_QID_TEXT + 1], line[128];
	const char *r;

	(void)state;
	env.list_scan_max = 2;
	/* only the last message matches: each request scans 2 and answers */
	r = run("queue list prio=3 dest=x.test");
	HAS(r, "\"count\":0,\"scanned\":2");
	HAS(r, "\"stopped\":\"scan_max\"");
	assert_string_equal(next_of(r, next), idt[1]);
	HAS(r, "(scan limit reached)");
	snprintf(line, sizeof(line), "queue list prio=3 dest=x.test after=%s",
		 next);
	r = run(line);
	HAS(r, "\"count\":0,\"scanned\":2");
	assert_string_equal(next_of(r, next), idt[3]);
	snprintf(line, sizeof(line), "queue list prio=3 dest=x.test after=%s",
		 next);
	r = run(line);
	HAS(r, "\"count\":1,\"scanned\":1");
	HAS(r, idt[4]);
	HAS(r, "\"next\":null");
	HAS(r, "\"stopped\":\"end\"");
}

static void test_list_bad_args(void **state)
{
	static const struct { const char *line, *msg; } cases[] = {
		{ "queue list prio=8", "prio=\\\"8\\\" is not a priority 0..7" },
		{ "queue list prio=-1", "is not a priority" },
		{ "queue list prio=", "is not a priority" },
		{ "queue list limit=0", "limit=\\\"0\\\" is not a count 1..10000" },
		{ "queue list limit=10001", "is not a count 1..10000" },
		{ "queue list limit=99999999999999999999999", "is not a count" },
		{ "queue list state=sleeping", "is not a message state" },
		{ "queue list after=XYZ", "is not a queue id" },
		{ "queue list after=6AMZH0005000U", "is not a queue id" },
		{ "queue list colour=red", "unknown argument \\\"colour=red\\\"" },
		{ "queue list prio", "is not KEY=VALUE" },
		{ "queue list prio=1 prio=2", "prio= given twice" },
		{ "queue list dest=", "empty destination" },
		{ "queue list dest=a\x01", "not printable ASCII" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *r = run(cases[i].line);

		if (!strstr(r, "\"ok\":false") || !strstr(r, cases[i].msg))
			fail_msg("%s: got %s", cases[i].line, r);
		HAS(r, "\"error\":\"queue list: ");
	}
}

/* ---- queue show ---- */

static void test_show(void **state)
{
	char line[64];
	const char *r;

	(void)state;
	fk.states[0].qid = ids[1];
	fk.states[0].st = DSCHED_M_DEFERRED;
	fk.nstates = 1;
	snprintf(line, sizeof(line), "queue show %s", idt[1]);
	r = run(line);
	OK(r);
	char want[256];

	snprintf(want, sizeof(want), "\"data\":{\"id\":\"%s\",\"state\":"
		 "\"deferred\"", idt[1]);
	HAS(r, want);
	HAS(r, "\"client\":\"[198.18.0.2]\"");
	HAS(r, "{\"address\":\"b@two.test\",\"orcpt\":\"\",\"destination\":"
	       "\"two.test\",\"state\":\"pending\",\"attempts\":2,"
	       "\"last_attempt_us\":1700000030000000,\"last_attempt\":"
	       "\"2023-11-14T22:13:50Z\",\"reply\":\"451 4.4.1 try later\"");
	HAS(r, "\"address\":\"c@one.test\"");
	HAS(r, "\"state\":\"delivered\"");
	HAS(r, "reply: 250 ok");
	/* escaping of a hostile sender */
	snprintf(line, sizeof(line), "queue show %s", idt[2]);
	r = run(line);
	HAS(r, "\"sender\":\"ev\\u0001l\\ufffd\\ufffd\\ufffd@\xc3\xa9x.test\"");
	/* errors */
	r = run("queue show 00000000000ZZ");
	ERR(r, "queue show: no message 00000000000ZZ in the queue");
	r = run("queue show nonsense");
	ERR(r, "\\\"nonsense\\\" is not a queue id");
	r = run("queue show");
	ERR(r, "usage: queue show QUEUE-ID");
	snprintf(line, sizeof(line), "queue show %s %s", idt[1], idt[2]);
	r = run(line);
	ERR(r, "usage: queue show");
}

/* ---- operator actions ---- */

static void test_ops(void **state)
{
	char line[256];
	const char *r;

	(void)state;
	fk.ret = 2;
	snprintf(line, sizeof(line), "queue hold %s %s", idt[0], idt[3]);
	r = run(line);
	OK(r);
	HAS(r, "\"data\":{\"op\":\"hold\",\"requested\":2,\"changed\":2}");
	HAS(r, "2 messages held");
	assert_int_equal(fk.msgs_calls, 1);
	assert_int_equal(fk.op, DSCHED_OP_HOLD);
	assert_int_equal(fk.n, 2);
	assert_true(fk.qid[0] == ids[0] && fk.qid[1] == ids[3]);

	/* one bad id: nothing is called */
	snprintf(line, sizeof(line), "queue delete %s BADID %s", idt[0],
		 idt[1]);
	r = run(line);
	ERR(r, "queue delete: \\\"BADID\\\" is not a queue id");
	assert_int_equal(fk.msgs_calls, 1);

	fk.ret = 1;
	snprintf(line, sizeof(line), "queue retry %s", idt[4]);
	r = run(line);
	HAS(r, "1 message due now");
	assert_int_equal(fk.op, DSCHED_OP_RETRY);
	snprintf(line, sizeof(line), "queue release %s", idt[4]);
	run(line);
	assert_int_equal(fk.op, DSCHED_OP_RELEASE);
	snprintf(line, sizeof(line), "queue delete %s", idt[4]);
	run(line);
	assert_int_equal(fk.op, DSCHED_OP_DELETE);
	assert_int_equal(fk.msgs_calls, 4);

	/* the scheduler refuses: its reason, exit as an error */
	fk.fail = "message 6AMZH00050007 is not in the queue";
	snprintf(line, sizeof(line), "queue hold %s", idt[4]);
	r = run(line);
	ERR(r, "queue hold: message 6AMZH00050007 is not in the queue");
	fk.fail = NULL;

	/* a whole destination */
	fk.ret = 7;
	r = run("queue hold dest=two.test");
	OK(r);
	HAS(r, "{\"op\":\"hold\",\"destination\":\"two.test\",\"changed\":7}");
	HAS(r, "7 messages for two.test held");
	assert_int_equal(fk.dest_calls, 1);
	assert_string_equal(fk.dest, "two.test");
	fk.fail = "unknown destination \"nowhere.test\"";
	r = run("queue retry dest=nowhere.test");
	ERR(r, "queue retry: unknown destination");
	fk.fail = NULL;
	assert_int_equal(fk.dest_calls, 2);

	/* argument shapes that are refused before anything runs */
	static const struct { const char *line, *msg; } bad[] = {
		{ "queue hold", "usage: queue hold QUEUE-ID... | queue hold dest=DEST" },
		{ "queue hold dest=a.test dest=b.test", "dest= takes one destination" },
		{ "queue hold 00000000000ZZ dest=a.test", "dest=DEST must be the only argument" },
		{ "queue hold dest=", "empty destination" },
		{ "queue flush now", "queue flush: unexpected argument \\\"now\\\"" },
		{ "queue frobnicate", "queue: unknown subcommand \\\"frobnicate\\\" (list, show, hold, release, delete, retry, flush)" },
		{ "queue", "queue: missing subcommand" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = run(bad[i].line);
		if (!strstr(r, "\"ok\":false") || !strstr(r, bad[i].msg))
			fail_msg("%s: got %s", bad[i].line, r);
	}
	assert_int_equal(fk.msgs_calls, 5);
	assert_int_equal(fk.dest_calls, 2);
	assert_int_equal(fk.flush_calls, 0);

	fk.ret = 3;
	r = run("queue flush");
	HAS(r, "\"data\":{\"changed\":3}");
	HAS(r, "3 deferred messages due now");
	assert_int_equal(fk.flush_calls, 1);
}

/* ---- links ---- */

static void test_links(void **state)
{
	const char *r;

	(void)state;
	fk.links[0] = (struct dsched_dest_info){
		.name = "one.test", .link = STOR_LINK_OPEN, .queued = 2,
		.last_error = "", .route = "198.18.0.2:2525 tls=none" };
	fk.links[1] = (struct dsched_dest_info){
		.name = "two.test", .link = STOR_LINK_HELD, .failures = 3,
		.next_retry_us = 1700000100000000ull, .queued = 2, .held = 2,
		.last_error = "421 4.3.0 \"busy\"\n", .delivered = 9 };
	fk.nlinks = 2;
	r = run("link list");
	OK(r);
	HAS(r, "{\"destination\":\"one.test\",\"link\":\"open\",\"failures\":0");
	HAS(r, "\"route\":\"198.18.0.2:2525 tls=none\"");
	HAS(r, "{\"destination\":\"two.test\",\"link\":\"down\",\"failures\":3");
	HAS(r, "\"last_error\":\"421 4.3.0 \\\"busy\\\"\\n\"");
	HAS(r, "\"delivered\":9");
	HAS(r, "last error: 421 4.3.0 \\\"busy\\\"?");

	r = run("link show two.test");
	OK(r);
	HAS(r, "\"data\":{\"destination\":\"two.test\",\"link\":\"down\"");
	HAS(r, "\"next_retry\":\"2023-11-14T22:15:00Z\"");
	r = run("link show three.test");
	ERR(r, "link show: unknown destination \\\"three.test\\\"");

	r = run("link close three.test");
	OK(r);
	HAS(r, "{\"destination\":\"three.test\",\"link\":\"closed\"}");
	assert_int_equal(fk.link_calls, 1);
	assert_int_equal(fk.link, STOR_LINK_CLOSED);
	assert_string_equal(fk.dest, "three.test");
	r = run("link open three.test");
	HAS(r, "three.test: link open");
	assert_int_equal(fk.link, STOR_LINK_OPEN);
	fk.fail = "no";
	r = run("link open three.test");
	ERR(r, "link open: no");
	fk.fail = NULL;
	assert_int_equal(fk.link_calls, 3);
	r = run("link close");
	ERR(r, "usage: link close DEST");
	r = run("link close a.test b.test");
	ERR(r, "usage: link close DEST");
	r = run("link list x");
	ERR(r, "link list: unexpected argument");
	assert_int_equal(fk.link_calls, 3);
}

/* ---- status, help, dispatch ---- */

static void test_status(void **state)
{
	const char *r;
	void *objs[3] = { &qf, &qf, &qf };

	(void)state;
	fk.st.messages = 5;
	fk.st.by_prio[0] = 1;
	fk.st.by_prio[3] = 2;
	fk.st.by_prio[4] = 2;
	fk.st.by_state[DSCHED_M_DEFERRED] = 1;
	fk.st.by_state[DSCHED_M_READY] = 4;
	fk.st.delivered = 42;
	fk.st.delivered_per_s = 1.5;
	fk.st.deliver_p50_us = 1200;
	fk.st.deliver_p99_us = 2500000;
	assert_int_equal(rte_ring_enqueue_bulk(mst.prio[2], objs, 3, NULL), 3);
	env.started_us = (uint64_t)time(NULL) * 1000000u - 3723000000ull;
	r = run("status");
	OK(r);
	HAS(r, "\"uptime_s\":372");
	HAS(r, "\"by_priority\":[1,0,0,2,2,0,0,0]");
	HAS(r, "\"by_state\":{\"ready\":4,\"active\":0,\"deferred\":1,\"held\":0,\"hold\":0}");
	HAS(r, "\"delivered\":42");
	HAS(r, "\"delivered_per_s\":1.500");
	HAS(r, "\"rings\":{\"prio\":[0,0,3,0,0,0,0,0],\"djob\":[],\"dres\":0");
	HAS(r, "\"io_lcores\":[],\"workers\":[]");
	HAS(r, "\"storage\":{\"used_bytes\":");
	HAS(r, "sluiced up 0d 01h02m0");
	HAS(r, "p50 1.2 ms, p99 2.5 s");
	HAS(r, "rings: prio 0/0/3/0/0/0/0/0");
	void *o[3];

	assert_int_equal(rte_ring_dequeue_bulk(mst.prio[2], o, 3, NULL), 3);
	r = run("status now");
	ERR(r, "status: unexpected argument");
}

static void test_dispatch(void **state)
{
	const char *r;

	(void)state;
	r = run("help");
	OK(r);
	HAS(r, "{\"command\":\"queue list\",\"usage\":\"queue list [dest=D]");
	HAS(r, "{\"command\":\"status\"");
	HAS(r, "link close DEST");
	r = run("");
	ERR(r, "request: empty request (try help)");
	r = run("   ");
	ERR(r, "empty request");
	r = run("frobnicate now");
	ERR(r, "request: unknown command \\\"frobnicate\\\" (try help)");
	r = run("link");
	ERR(r, "link: missing subcommand (list, show, open, close)");
	/* extra spaces between words are fine */
	r = run("queue  list   limit=1");
	OK(r);
	HAS(r, "\"count\":1");
}

/* no scheduler (delivery off) and no queue: clear refusals */
static void test_missing_parts(void **state)
{
	char line[64];
	const char *r;

	(void)state;
	env.sched = NULL;
	r = run("queue list limit=1");
	OK(r);
	HAS(r, "\"state\":\"unknown\"");
	snprintf(line, sizeof(line), "queue hold %s", idt[0]);
	r = run(line);
	ERR(r, "queue hold: the delivery scheduler is not running");
	r = run("link list");
	ERR(r, "the delivery scheduler is not running");
	r = run("status");
	OK(r);
	HAS(r, "\"queue\":null,\"delivery\":null");
	env.m = NULL;
	r = run("queue list");
	ERR(r, "queue list: sluiced runs without a queue");
	assert_int_equal(fk.msgs_calls, 0);
}

/* ---- the control socket ---- */

static char sockpath[sizeof(((struct sockaddr_un *)0)->sun_path)];

static int cli_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sockpath);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* drive - poll the server at now_us until fd reached EOF; the bytes read
 * go to out (NUL-terminated); returns their count, -1 if no EOF */
static ssize_t drive(struct ctlsock *c, int fd, uint64_t now_us, char *out,
		     size_t cap)
{
	size_t got = 0;

	for (int i = 0; i < 2000; i++) {
		ctlsock_poll(c, now_us);
		for (;;) {
			ssize_t r = recv(fd, out + got, cap - 1 - got,
					 MSG_DONTWAIT);

			if (r == 0) {
				out[got] = 0;
				return (ssize_t)got;
			}
			if (r < 0)
				break;
			got += (size_t)r;
			assert_true(got < cap - 1);
		}
		usleep(1000);
	}
	out[got] = 0;
	return -1;
}

static void test_socket(void **state)
{
	struct ctlsock *c, *c2;
	char err[256], out[65536];
	struct stat st;
	int fd, fd2;

	(void)state;
	snprintf(sockpath, sizeof(sockpath), "%s/ctl.sock", qf.dir);

	/* a stale socket file (its server is gone) is replaced */
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_STREAM, 0);

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sockpath);
		assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
		close(s);
		assert_int_equal(lstat(sockpath, &st), 0);
	}
	assert_int_equal(ctlsock_open(sockpath, &env, &c, err, sizeof(err)), 0);
	assert_int_equal(stat(sockpath, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);

	/* a second server on a live socket is refused */
	assert_int_equal(ctlsock_open(sockpath, &env, &c2, err, sizeof(err)), -1);
	HAS(err, "another process answers on it");

	/* one request, split over two writes, CRLF */
	fd = cli_connect();
	assert_int_equal(write(fd, "queue li", 8), 8);
	ctlsock_poll(c, 1000);
	assert_int_equal(write(fd, "st limit=1\r\nignored", 19), 19);
	assert_true(drive(c, fd, 1000, out, sizeof(out)) > 0);
	close(fd);
	HAS(out, "{\"ok\":true,\"data\":{\"messages\":[{\"id\":");
	HAS(out, "\"count\":1");
	assert_int_equal(out[strlen(out) - 1], '\n');
	assert_true(json_ok(out, strlen(out)));

	/* end of input ends the line too */
	fd = cli_connect();
	assert_int_equal(write(fd, "help", 4), 4);
	shutdown(fd, SHUT_WR);
	assert_true(drive(c, fd, 1000, out, sizeof(out)) > 0);
	close(fd);
	HAS(out, "{\"ok\":true,\"data\":{\"commands\":");

	/* a line longer than CTLSOCK_LINE_MAX: refused, never run */
	{
		static char big[CTLSOCK_LINE_MAX + 100];

		memset(big, 'a', sizeof(big));
		memcpy(big, "queue hold ", 11);
		fd = cli_connect();
		assert_int_equal(write(fd, big, sizeof(big)),
				 (ssize_t)sizeof(big));
		assert_true(drive(c, fd, 1000, out, sizeof(out)) > 0);
		close(fd);
		assert_string_equal(out, "{\"ok\":false,\"error\":\"request "
				    "line too long (at most 4096 bytes)\"}\n");
		/* exactly CTLSOCK_LINE_MAX bytes is fine */
		memset(big, ' ', CTLSOCK_LINE_MAX);
		memcpy(big, "help", 4);
		big[CTLSOCK_LINE_MAX] = '\n';
		fd = cli_connect();
		assert_int_equal(write(fd, big, CTLSOCK_LINE_MAX + 1),
				 CTLSOCK_LINE_MAX + 1);
		assert_true(drive(c, fd, 1000, out, sizeof(out)) > 0);
		close(fd);
		HAS(out, "{\"ok\":true,");
	}

	/* a NUL byte in the line */
	fd = cli_connect();
	assert_int_equal(write(fd, "help\0x\n", 7), 7);
	assert_true(drive(c, fd, 1000, out, sizeof(out)) > 0);
	close(fd);
	assert_string_equal(out, "{\"ok\":false,\"error\":\"request contains "
			    "a NUL byte\"}\n");

	/* an idle client is dropped after CTLSOCK_TIMEOUT_MS, while another
	 * one is answered meanwhile */
	fd = cli_connect();
	ctlsock_poll(c, 2000000);
	fd2 = cli_connect();
	assert_int_equal(write(fd2, "status\n", 7), 7);
	assert_true(drive(c, fd2, 2000000 + CTLSOCK_TIMEOUT_MS * 1000ull, out,
			  sizeof(out)) > 0);
	close(fd2);
	HAS(out, "{\"ok\":true,");
	assert_int_equal(recv(fd, out, 1, MSG_DONTWAIT), -1);  /* still open */
	assert_int_equal(errno, EAGAIN);
	assert_true(drive(c, fd, 2000001 + CTLSOCK_TIMEOUT_MS * 1000ull, out,
			  sizeof(out)) == 0);
	close(fd);

	/* more clients than slots: all answered, in turn */
	{
		int many[40];

		for (int i = 0; i < 40; i++) {
			many[i] = cli_connect();
			assert_int_equal(write(many[i], "help\n", 5), 5);
		}
		for (int i = 0; i < 40; i++) {
			assert_true(drive(c, many[i], 3000000, out,
					  sizeof(out)) > 0);
			HAS(out, "{\"ok\":true,");
			close(many[i]);
		}
	}

	/* close unlinks the path */
	ctlsock_close(c);
	assert_int_equal(lstat(sockpath, &st), -1);
	assert_int_equal(errno, ENOENT);

	/* something that is not a socket is never replaced */
	fd = open(sockpath, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ctlsock_open(sockpath, &env, &c, err, sizeof(err)), -1);
	HAS(err, "exists and is not a socket");
	assert_int_equal(lstat(sockpath, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(sockpath);
}


/* ---- sluicectl against this ctlsock ---- */

struct ctl_run {
	int status;                  /* exit code */
	char out[65536], err[4096];
};

static void read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, cap - 1, f);
		fclose(f);
	}
	buf[n] = 0;
}

/* ctl - run sluicectl with args while serving c (NULL: nobody answers) */
static void ctl(struct ctlsock *c, struct ctl_run *r, const char *const *args)
{
	const char *bin = getenv("SLUICECTL");
	char outp[700], errp[700];
	const char *argv[32];
	int n = 0, st;
	pid_t pid;

	if (!bin)
		fail_msg("SLUICECTL is not set (meson test sets it to "
			 "build/control/sluicectl)");
	argv[n++] = bin;
	for (; *args; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	snprintf(outp, sizeof(outp), "%s/ctl.out", qf.dir);
	snprintf(errp, sizeof(errp), "%s/ctl.err", qf.dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (!freopen(outp, "w", stdout) || !freopen(errp, "w", stderr))
			_exit(99);
		execv(bin, (char *const *)argv);
		_exit(98);
	}
	for (int i = 0; i < 20000; i++) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			break;
		if (c)
			ctlsock_poll(c, 5000000);
		usleep(500);
	}
	assert_true(WIFEXITED(st));
	r->status = WEXITSTATUS(st);
	read_file(outp, r->out, sizeof(r->out));
	read_file(errp, r->err, sizeof(r->err));
}

static void test_sluicectl(void **state)
{
	static struct ctl_run r;
	struct ctlsock *c;
	char err[256], conf[700], line[64], sdir[700];
	FILE *f;

	(void)state;
	snprintf(sockpath, sizeof(sockpath), "%s/sluiced.sock", qf.dir);
	assert_int_equal(ctlsock_open(sockpath, &env, &c, err, sizeof(err)), 0);

	/* text for people, data with --json */
	ctl(c, &r, (const char *[]){ "-s", sockpath, "queue", "list",
				     "limit=2", NULL });
	assert_int_equal(r.status, 0);
	HAS(r.out, "ID            ARRIVED (UTC)");
	HAS(r.out, idt[1]);
	HAS(r.out, "-- 2 messages shown, 2 scanned; more: queue list after=");
	assert_string_equal(r.err, "");
	ctl(c, &r, (const char *[]){ "--json", "-s", sockpath, "queue", "list",
				     "limit=2", NULL });
	assert_int_equal(r.status, 0);
	assert_true(r.out[0] == '{' && strncmp(r.out, "{\"messages\":[", 13) == 0);
	assert_int_equal(count(r.out, "\n"), 1);
	assert_true(json_ok(r.out, strlen(r.out)));
	/* escapes decoded for people: \u0001 shown as ?, U+FFFD, UTF-8 kept */
	snprintf(line, sizeof(line), "%s", idt[2]);
	ctl(c, &r, (const char *[]){ "-s", sockpath, "queue", "show", line,
				     NULL });
	assert_int_equal(r.status, 0);
	HAS(r.out, "sender:       ev?l\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd@\xc3\xa9x.test\n");
	ctl(c, &r, (const char *[]){ "-j", "-s", sockpath, "queue", "show",
				     line, NULL });
	HAS(r.out, "\"sender\":\"ev\\u0001l\\ufffd\\ufffd\\ufffd@\xc3\xa9x.test\"");

	/* a command error: its message, exit 1, nothing on stdout */
	ctl(c, &r, (const char *[]){ "-s", sockpath, "queue", "show",
				     "nonsense", NULL });
	assert_int_equal(r.status, 1);
	assert_string_equal(r.out, "");
	HAS(r.err, "sluicectl: queue show: \"nonsense\" is not a queue id");
	fk.ret = 1;
	ctl(c, &r, (const char *[]){ "-s", sockpath, "link", "close",
				     "a.test", NULL });
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "a.test: link closed\n");
	assert_int_equal(fk.link_calls, 1);

	/* usage errors: exit 2, nothing sent */
	ctl(c, &r, (const char *[]){ "-s", sockpath, "queue", "hold",
				     "dest=a b", NULL });
	assert_int_equal(r.status, 2);
	HAS(r.err, "sluicectl: argument \"dest=a b\" contains a space");
	ctl(c, &r, (const char *[]){ "-s", sockpath, "link", "close",
				     "a\nb", NULL });
	assert_int_equal(r.status, 2);
	ctl(c, &r, (const char *[]){ "-s", sockpath, NULL });
	assert_int_equal(r.status, 2);
	HAS(r.err, "sluicectl: no command");
	ctl(c, &r, (const char *[]){ "-x", "status", NULL });
	assert_int_equal(r.status, 2);
	HAS(r.err, "unknown option -x");
	ctl(c, &r, (const char *[]){ "-t", "0", "status", NULL });
	assert_int_equal(r.status, 2);
	ctl(c, &r, (const char *[]){ "-s", sockpath, "-c", "/x", "status",
				     NULL });
	assert_int_equal(r.status, 2);
	assert_int_equal(fk.link_calls, 1);
	ctl(c, &r, (const char *[]){ "--help", NULL });
	assert_int_equal(r.status, 0);
	HAS(r.out, "usage: sluicectl [-s SOCKET | -c CONFIG]");

	/* the socket from a config: [control] socket, else state_dir */
	snprintf(conf, sizeof(conf), "%s/a.conf", qf.dir);
	f = fopen(conf, "w");
	fprintf(f, "[storage]\nstate_dir = /nonexistent # not this\n"
		"[control]\n  socket=%s  # comment\n", sockpath);
	fclose(f);
	ctl(c, &r, (const char *[]){ "-c", conf, "status", NULL });
	assert_int_equal(r.status, 0);
	HAS(r.out, "sluiced up ");
	f = fopen(conf, "w");
	fprintf(f, "[control]\nstats_interval_s = 5\n[storage]\n"
		"state_dir = %s\n", qf.dir);
	fclose(f);
	ctl(c, &r, (const char *[]){ "-c", conf, "--json", "status", NULL });
	assert_int_equal(r.status, 0);
	HAS(r.out, "{\"uptime_s\":");
	ctl(c, &r, (const char *[]){ "-c", "/nonexistent.conf", "status",
				     NULL });
	assert_int_equal(r.status, 2);
	HAS(r.err, "cannot read config /nonexistent.conf");

	/* sluiced not there: exit 3 naming the socket */
	snprintf(sdir, sizeof(sdir), "%s/nosuch.sock", qf.dir);
	ctl(c, &r, (const char *[]){ "-s", sdir, "status", NULL });
	assert_int_equal(r.status, 3);
	HAS(r.err, "sluicectl: cannot reach sluiced at ");
	HAS(r.err, "nosuch.sock: No such file or directory");
	/* there but not answering: the timeout */
	ctl(NULL, &r, (const char *[]){ "-t", "1", "-s", sockpath, "status",
					NULL });
	assert_int_equal(r.status, 3);
	HAS(r.err, "no answer from sluiced at ");
	HAS(r.err, "within 1s");
	ctlsock_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_escape),
		cmocka_unit_test_setup(test_list_all, reset),
		cmocka_unit_test_setup(test_list_paging, reset),
		cmocka_unit_test_setup(test_list_filters, reset),
		cmocka_unit_test_setup(test_list_scan_bound, reset),
		cmocka_unit_test_setup(test_list_bad_args, reset),
		cmocka_unit_test_setup(test_show, reset),
		cmocka_unit_test_setup(test_ops, reset),
		cmocka_unit_test_setup(test_links, reset),
		cmocka_unit_test_setup(test_status, reset),
		cmocka_unit_test_setup(test_dispatch, reset),
		cmocka_unit_test_setup(test_missing_parts, reset),
		cmocka_unit_test_setup(test_socket, reset),
		cmocka_unit_test_setup(test_sluicectl, reset),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);

	if (resp)
		ctlcmd_free(resp);
	return rc;
}
