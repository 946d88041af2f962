/*
 * accept_test.c - the accept path's pure logic: priority ring scheduling
 * (prio.c), per-client limits (climit.c), Postfix-style log lines (mlog.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "climit.h"
#include "mlog.h"
#include "prio.h"

/* a level alone gets every pick; none -> -1 */
static void prio_single_level(void **st)
{
	struct prio_sched ps;

	(void)st;
	prio_sched_init(&ps, NULL);
	assert_int_equal(prio_sched_pick(&ps, 0), -1);
	for (int i = 0; i < 100; i++)
		assert_int_equal(prio_sched_pick(&ps, 1u << 5), 5);
}

/* all busy: shares follow the weights 128..1, level 7 is not starved */
static void prio_weighted_shares(void **st)
{
	struct prio_sched ps;
	unsigned n[PRIO_LEVELS] = { 0 };

	(void)st;
	prio_sched_init(&ps, NULL);
	for (int i = 0; i < 255 * 10; i++)
		n[prio_sched_pick(&ps, 0xff)]++;
	for (unsigned p = 0; p < PRIO_LEVELS; p++)
		assert_int_equal(n[p], 10u * (1u << (7 - p)));
}

/* urgent first: with 0 and 7 busy, 7 is served once in 129 picks and
 * level 0 comes first */
static void prio_urgent_first(void **st)
{
	struct prio_sched ps;
	unsigned seven = 0;

	(void)st;
	prio_sched_init(&ps, NULL);
	assert_int_equal(prio_sched_pick(&ps, 0x81), 0);
	for (int i = 1; i < 129; i++)
		seven += prio_sched_pick(&ps, 0x81) == 7;
	assert_int_equal(seven, 1);
}

/* custom weights, zero raised to 1 */
static void prio_custom_weights(void **st)
{
	uint32_t w[PRIO_LEVELS] = { 3, 0, 1, 1, 1, 1, 1, 1 };
	struct prio_sched ps;
	unsigned n[2] = { 0, 0 };

	(void)st;
	prio_sched_init(&ps, w);
	assert_int_equal(ps.weight[1], 1);
	for (int i = 0; i < 400; i++)
		n[prio_sched_pick(&ps, 0x3)]++;
	assert_int_equal(n[0], 300);
	assert_int_equal(n[1], 100);
}

/* concurrent limit per address, others unaffected; disconnect frees */
static void climit_concurrent(void **st)
{
	struct climit c;

	(void)st;
	assert_int_equal(climit_init(&c, 64, 2, 0), 0);
	assert_int_equal(climit_connect(&c, 0x0a000001, 0), CLIMIT_OK);
	assert_int_equal(climit_connect(&c, 0x0a000001, 0), CLIMIT_OK);
	assert_int_equal(climit_connect(&c, 0x0a000001, 0), CLIMIT_CONNS);
	assert_int_equal(climit_connect(&c, 0x0a000002, 0), CLIMIT_OK);
	assert_int_equal(climit_conns(&c, 0x0a000001), 2);
	climit_disconnect(&c, 0x0a000001, 1);
	assert_int_equal(climit_connect(&c, 0x0a000001, 2), CLIMIT_OK);
	climit_disconnect(&c, 0x0a000001, 3);
	climit_disconnect(&c, 0x0a000001, 3);
	climit_disconnect(&c, 0x0a000002, 3);
	assert_int_equal(c.used, 0);       /* idle entries are dropped */
	climit_free(&c);
}

/* rate: a burst of rate_per_min, then one more per 60/rate seconds */
static void climit_rate(void **st)
{
	struct climit c;

	(void)st;
	assert_int_equal(climit_init(&c, 64, 0, 6), 0);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(climit_connect(&c, 7, 1000), CLIMIT_OK);
		climit_disconnect(&c, 7, 1000);
	}
	assert_int_equal(climit_connect(&c, 7, 1000), CLIMIT_RATE);
	assert_int_equal(climit_connect(&c, 7, 10999), CLIMIT_RATE);
	assert_int_equal(climit_connect(&c, 7, 11000), CLIMIT_OK);
	climit_free(&c);
}

/* many addresses in a small table: deletion keeps every entry findable;
 * past 75% it fails open and counts */
static void climit_table(void **st)
{
	struct climit c;

	(void)st;
	assert_int_equal(climit_init(&c, 8, 1, 0), 0);   /* cap 16 */
	for (uint32_t a = 1; a <= 12; a++)
		assert_int_equal(climit_connect(&c, a, 0), CLIMIT_OK);
	assert_int_equal(climit_connect(&c, 13, 0), CLIMIT_OK);
	assert_int_equal(c.table_full, 1);
	for (uint32_t a = 1; a <= 12; a += 2)
		climit_disconnect(&c, a, 0);
	for (uint32_t a = 2; a <= 12; a += 2)
		assert_int_equal(climit_connect(&c, a, 0), CLIMIT_CONNS);
	climit_free(&c);
}

static const struct mlog_client cl = { "", "198.18.0.2" };

static void mlog_reject_line(void **st)
{
	char b[MLOG_LINE_MAX];

	(void)st;
	mlog_reject(b, sizeof(b), NULL, "RCPT", &cl, 550, "5.1.1",
		    "<x@demo.test>: Recipient address rejected: User unknown",
		    "a@b.example", "x@demo.test", 1, "client.example");
	assert_string_equal(b, "NOQUEUE: reject: RCPT from unknown[198.18.0.2]: "
		"550 5.1.1 <x@demo.test>: Recipient address rejected: User "
		"unknown; from=<a@b.example> to=<x@demo.test> proto=ESMTP "
		"helo=<client.example>");
}

static void mlog_queue_lines(void **st)
{
	char b[MLOG_LINE_MAX];

	(void)st;
	mlog_qclient(b, sizeof(b), "6P12YJW000000", &cl, NULL);
	assert_string_equal(b, "6P12YJW000000: client=unknown[198.18.0.2]");
	mlog_from(b, sizeof(b), "6P12YJW000000", "", 410, 2);
	assert_string_equal(b, "6P12YJW000000: from=<>, size=410, nrcpt=2 "
			    "(queue active)");
	mlog_connect(b, sizeof(b), &cl);
	assert_string_equal(b, "connect from unknown[198.18.0.2]");
}

/* client text cannot forge lines; long lines end in "..." */
static void mlog_sanitise_truncate(void **st)
{
	char b[64];

	(void)st;
	mlog_reject(b, sizeof(b), "Q", "MAIL", &cl, 530, "5.7.0", "x",
		    "a\nQ: from=<evil>", NULL, 0, "h\r");
	assert_null(strchr(b, '\n'));
	assert_null(strchr(b, '\r'));
	assert_int_equal(strlen(b), sizeof(b) - 1);
	assert_string_equal(b + sizeof(b) - 4, "...");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(prio_single_level),
		cmocka_unit_test(prio_weighted_shares),
		cmocka_unit_test(prio_urgent_first),
		cmocka_unit_test(prio_custom_weights),
		cmocka_unit_test(climit_concurrent),
		cmocka_unit_test(climit_rate),
		cmocka_unit_test(climit_table),
		cmocka_unit_test(mlog_reject_line),
		cmocka_unit_test(mlog_queue_lines),
		cmocka_unit_test(mlog_sanitise_truncate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
