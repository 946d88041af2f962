/*
 * test_stor_rec - golden byte layouts and decoder robustness of stor_rec:
 * every record type encodes to the documented bytes (docs/storage.md),
 * decodes back, and every truncation / bit flip / bad version decodes to
 * STOR_ECORRUPT without reading out of bounds (run under ASan).
 */
#include "stor_test.h"
#include <errno.h>
#include "stor_rec.h"

static char *hex(const uint8_t *p, size_t n)
{
	static char buf[4096];
	for (size_t i = 0; i < n && i * 2 + 2 < sizeof buf; i++)
		sprintf(buf + i * 2, "%02x", p[i]);
	buf[n * 2 < sizeof buf ? n * 2 : sizeof buf - 1] = 0;
	return buf;
}

static void crc32c_vectors(void **st)
{
	(void)st;
	/* RFC 3720 B.4 check value and an all-zero 32-byte vector */
	assert_int_equal(stor_crc32c(0, "123456789", 9), 0xE3069283u);
	uint8_t z[32] = { 0 };
	assert_int_equal(stor_crc32c(0, z, 32), 0x8A9136AAu);
	/* incremental equals one-shot */
	assert_int_equal(stor_crc32c(stor_crc32c(0, "12345", 5), "6789", 4), 0xE3069283u);
	assert_int_equal(stor_crc32c(0, "", 0), 0);
}

static void qid_text(void **st)
{
	(void)st;
	char t[STOR_QID_TEXT + 1];
	uint64_t v;
	assert_string_equal(stor_qid_format(0, t), "0000000000000");
	assert_string_equal(stor_qid_format(UINT64_MAX, t), "FZZZZZZZZZZZZ");
	/* 2023-11-14 22:13:20 UTC, boot 5, seq 7 */
	uint64_t q = (uint64_t)1700000000 << 32 | 5u << 20 | 7;
	assert_string_equal(stor_qid_format(q, t), "6AMZH00050007");
	assert_int_equal(stor_qid_parse(t, 13, &v), 0);
	assert_true(v == q);
	assert_int_equal(stor_qid_parse("6amzh00050007", 13, &v), 0);
	assert_true(v == q);
	assert_int_equal(stor_qid_parse("1JE0XCG00A00", 12, &v), EINVAL);
	assert_int_equal(stor_qid_parse("1JE0XCG00A00I", 13, &v), EINVAL);
	assert_int_equal(stor_qid_parse("GZZZZZZZZZZZZ", 13, &v), EINVAL);
	/* text order is numeric order */
	char a[14], b[14];
	stor_qid_format(q, a);
	stor_qid_format(q + 1, b);
	assert_true(strcmp(a, b) < 0);
	uint8_t k[8];
	stor_qid_key(q, k);
	assert_string_equal(hex(k, 8), "6553f10000500007");
	assert_true(stor_qid_from_key(k) == q);
}

static void keys(void **st)
{
	(void)st;
	uint8_t k[64], prio;
	uint64_t next, qid;
	stor_sched_key(k, 3, 0x0102030405060708ull, 0x1112131415161718ull);
	assert_string_equal(hex(k, STOR_SCHED_KEY), "03010203040506070811121314151617" "18");
	stor_sched_key_parse(k, &prio, &next, &qid);
	assert_int_equal(prio, 3);
	assert_true(next == 0x0102030405060708ull && qid == 0x1112131415161718ull);
	size_t n = stor_hold_key(k, sizeof k, STOR_STR("mx.example"), 0x1112131415161718ull);
	assert_int_equal(n, 19);
	assert_string_equal(hex(k, n), "6d782e6578616d706c65001112131415161718");
	assert_int_equal(stor_hold_key(k, sizeof k, STOR_STR(""), 1), 0);
	assert_int_equal(stor_hold_key(k, sizeof k, (struct stor_str){ "a\0b", 3 }, 1), 0);
	assert_int_equal(stor_hold_key(k, 12, STOR_STR("mx.example"), 1), 0);
}

/* the message used for the golden layout */
static void golden_msg(struct stor_msg *m, struct stor_rcpt *r)
{
	memset(m, 0, sizeof *m);
	memset(r, 0, 2 * sizeof *r);
	m->arrival_us = 0x0102030405060708ull;
	m->next_attempt_us = 0x1112131415161718ull;
	m->attempts = 2;
	m->body_len = 0x100;
	m->body_crc = 0xA1B2C3D4;
	m->flags = STOR_MSG_RET_HDRS | STOR_MSG_8BITMIME;
	m->priority = 5;
	m->sender = STOR_STR("a@b");
	m->envid = STOR_STR("E1");
	m->client = STOR_STR("");
	m->nrcpt = 2;
	m->rcpt = r;
	r[0] = (struct stor_rcpt){ .addr = STOR_STR("x@y"), .dest = STOR_STR("y"),
		.state = STOR_RCPT_PENDING, .notify = STOR_NOTIFY_FAILURE };
	r[1] = (struct stor_rcpt){ .addr = STOR_STR("z@w"), .orcpt = STOR_STR("rfc822;z@w"),
		.dest = STOR_STR("w"), .reply = STOR_STR("250 ok"),
		.state = STOR_RCPT_DELIVERED, .attempts = 1, .last_attempt_us = 9 };
}

#define GOLDEN_MSG \
	"014d0000" "0f8b674e"                         /* v1 'M' 0 crc */ \
	"0807060504030201" "1817161514131211"         /* arrival next */ \
	"02000000" "00010000" "d4c3b2a1"              /* attempts len crc */ \
	"0600" "05" "00" "02000000"                   /* flags prio rsv nrcpt */ \
	"0300614062" "02004531" "0000"                /* sender envid client */ \
	"00" "04" "0000" "0000000000000000"           /* r0 state notify att last */ \
	"0300784079" "0000" "010079" "0000"           /* addr orcpt dest reply */ \
	"01" "00" "0100" "0900000000000000"           /* r1 */ \
	"03007a4077" "0a00726663383232" "3b7a4077" "010077" "0600323530206f6b"

static void msg_golden(void **st)
{
	(void)st;
	struct stor_msg m, d;
	struct stor_rcpt r[2], dr[4];
	golden_msg(&m, r);
	size_t n = stor_rec_msg_size(&m);
	uint8_t *buf = malloc(n);
	stor_rec_msg_encode(&m, buf, n);
	assert_string_equal(hex(buf, n), GOLDEN_MSG);
	assert_int_equal(stor_rec_msg_decode(buf, n, &d, dr, 4), 0);
	assert_true(d.arrival_us == m.arrival_us && d.next_attempt_us == m.next_attempt_us);
	assert_int_equal(d.priority, 5);
	assert_int_equal(d.flags, m.flags);
	assert_int_equal(d.nrcpt, 2);
	assert_memory_equal(d.sender.p, "a@b", 3);
	assert_int_equal(dr[1].state, STOR_RCPT_DELIVERED);
	assert_int_equal(dr[1].reply.n, 6);
	assert_memory_equal(dr[1].orcpt.p, "rfc822;z@w", 10);
	/* too small a recipient array */
	assert_int_equal(stor_rec_msg_decode(buf, n, &d, dr, 1), ERANGE);
	assert_int_equal(d.nrcpt, 2);
	/* every truncation and every single-bit flip is caught */
	for (size_t len = 0; len < n; len++) {
		uint8_t *t = malloc(len ? len : 1);
		memcpy(t, buf, len);
		assert_int_equal(stor_rec_msg_decode(t, len, &d, dr, 4), STOR_ECORRUPT);
		free(t);
	}
	for (size_t i = 0; i < n * 8; i++) {
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_not_equal(stor_rec_msg_decode(buf, n, &d, dr, 4), 0);
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	/* trailing garbage */
	uint8_t *big = calloc(1, n + 1);
	memcpy(big, buf, n);
	assert_int_equal(stor_rec_msg_decode(big, n + 1, &d, dr, 4), STOR_ECORRUPT);
	free(big);
	free(buf);
}

static void msg_limits(void **st)
{
	(void)st;
	struct stor_msg m;
	struct stor_rcpt r[2];
	golden_msg(&m, r);
	m.priority = 8;
	assert_int_equal(stor_rec_msg_size(&m), 0);
	golden_msg(&m, r);
	m.nrcpt = 0;
	assert_int_equal(stor_rec_msg_size(&m), 0);
	golden_msg(&m, r);
	r[0].addr = STOR_STR("");
	assert_int_equal(stor_rec_msg_size(&m), 0);
	golden_msg(&m, r);
	r[1].state = STOR_RCPT_BOUNCED + 1;
	assert_int_equal(stor_rec_msg_size(&m), 0);
	golden_msg(&m, r);
	m.sender.n = STOR_STR_MAX + 1;
	assert_int_equal(stor_rec_msg_size(&m), 0);
}

static void body_golden(void **st)
{
	(void)st;
	uint8_t rec[8 + 5];
	uint32_t crc = stor_crc32c(0, "hello", 5);
	stor_rec_body_header(rec, crc);
	memcpy(rec + 8, "hello", 5);
	assert_string_equal(hex(rec, 8), "01420000" "4cbb719a");
	const void *b;
	size_t n;
	uint32_t c;
	assert_int_equal(stor_rec_body_decode(rec, sizeof rec, 1, &b, &n, &c), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(b, "hello", 5);
	rec[10] ^= 1;
	assert_int_equal(stor_rec_body_decode(rec, sizeof rec, 1, &b, &n, &c), STOR_ECORRUPT);
	assert_int_equal(stor_rec_body_decode(rec, sizeof rec, 0, &b, &n, &c), 0);
	assert_int_equal(stor_rec_body_decode(rec, 7, 0, &b, &n, &c), STOR_ECORRUPT);
	rec[10] ^= 1;
	rec[0] = 2;
	assert_int_equal(stor_rec_body_decode(rec, sizeof rec, 0, &b, &n, &c), STOR_ECORRUPT);
}

static void dest_golden(void **st)
{
	(void)st;
	struct stor_dest d = { .link = STOR_LINK_HELD, .failures = 3,
		.next_retry_us = 0x10, .changed_us = 0x20,
		.last_error = STOR_STR("421 busy") }, e;
	size_t n = stor_rec_dest_size(&d);
	uint8_t buf[64];
	assert_int_equal(n, 8 + 24 + 2 + 8);
	stor_rec_dest_encode(&d, buf, n);
	assert_string_equal(hex(buf + 8, n - 8),
		"02" "00" "0000" "03000000" "1000000000000000" "2000000000000000"
		"0800" "343231206275737"  "9");
	assert_int_equal(stor_rec_dest_decode(buf, n, &e), 0);
	assert_int_equal(e.link, STOR_LINK_HELD);
	assert_int_equal(e.failures, 3);
	assert_memory_equal(e.last_error.p, "421 busy", 8);
	for (size_t len = 0; len < n; len++)
		assert_int_equal(stor_rec_dest_decode(buf, len, &e), STOR_ECORRUPT);
	d.link = 3;
	assert_int_equal(stor_rec_dest_size(&d), 0);
}

static void dir_golden(void **st)
{
	(void)st;
	uint8_t buf[256];
	struct stor_dir_domain d = { .kind = STOR_DOMAIN_RELAY }, d2;
	d.route.tls = STOR_TLS_REQUIRED;
	d.route.nhops = 2;
	d.route.hop[0] = (struct stor_hop){ STOR_STR("mx1"), 25 };
	d.route.hop[1] = (struct stor_hop){ STOR_STR("mx2"), 2525 };
	size_t n = stor_rec_domain_size(&d);
	stor_rec_domain_encode(&d, buf, n);
	assert_string_equal(hex(buf, n), "01640000" "6164b094"
		"01" "02" "02" "03006d7831" "1900" "03006d7832" "dd09");
	assert_int_equal(stor_rec_domain_decode(buf, n, &d2), 0);
	assert_int_equal(d2.route.nhops, 2);
	assert_int_equal(d2.route.hop[1].port, 2525);
	for (size_t len = 0; len < n; len++)
		assert_int_equal(stor_rec_domain_decode(buf, len, &d2), STOR_ECORRUPT);

	struct stor_dir_rcpt r = { .action = STOR_ACT_ALIAS, .ntargets = 2,
		.target = { STOR_STR("a@x"), STOR_STR("b@y") }, .has_route = 1 }, r2;
	r.route.tls = STOR_TLS_VERIFY;
	r.route.nhops = 1;
	r.route.hop[0] = (struct stor_hop){ STOR_STR("h"), 587 };
	n = stor_rec_rcpt_size(&r);
	stor_rec_rcpt_encode(&r, buf, n);
	assert_string_equal(hex(buf + 8, n - 8), "01" "01" "02" "00" "0300614078"
		"0300624079" "03" "01" "010068" "4b02");
	assert_int_equal(stor_rec_rcpt_decode(buf, n, &r2), 0);
	assert_int_equal(r2.ntargets, 2);
	assert_memory_equal(r2.target[1].p, "b@y", 3);
	assert_int_equal(r2.route.hop[0].port, 587);
	for (size_t len = 0; len < n; len++)
		assert_int_equal(stor_rec_rcpt_decode(buf, len, &r2), STOR_ECORRUPT);

	struct stor_str h = STOR_STR("$x$"), h2;
	n = stor_rec_user_size(h);
	stor_rec_user_encode(h, buf, n);
	assert_string_equal(hex(buf + 8, n - 8), "0300247824");
	assert_int_equal(stor_rec_user_decode(buf, n, &h2), 0);
	assert_int_equal(h2.n, 3);
	assert_int_equal(stor_rec_user_size(STOR_STR("")), 0);

	stor_rec_net_encode(buf);
	assert_string_equal(hex(buf, 8), "016e0000" "00000000");
	assert_int_equal(stor_rec_net_decode(buf, 8), 0);
	assert_int_equal(stor_rec_net_decode(buf, 9), STOR_ECORRUPT);

	uint8_t lvl;
	stor_rec_prio_encode(6, buf);
	assert_int_equal(buf[8], 6);
	assert_int_equal(stor_rec_prio_decode(buf, 9, &lvl), 0);
	assert_int_equal(lvl, 6);
	stor_rec_prio_encode(9, buf);   /* out of range is refused on decode */
	assert_int_equal(stor_rec_prio_decode(buf, 9, &lvl), STOR_ECORRUPT);
	/* wrong type byte */
	stor_rec_prio_encode(1, buf);
	assert_int_equal(stor_rec_net_decode(buf, 9), STOR_ECORRUPT);
}

/* destination limits: 'l', three u32 LE (max_conns, msgs_per_conn,
 * rate); checksum computed independently (Python bitwise CRC32C) */
static void limit_golden(void **st)
{
	(void)st;
	uint8_t buf[STOR_REC_LIMIT_SIZE + 1];
	struct stor_dir_limit l = { .max_conns = 4, .msgs_per_conn = 100,
				    .rate = 250 }, l2;
	assert_int_equal(STOR_REC_LIMIT_SIZE, 20);
	assert_int_equal(stor_rec_limit_ok(&l), 1);
	stor_rec_limit_encode(&l, buf);
	assert_string_equal(hex(buf, STOR_REC_LIMIT_SIZE),
		"016c0000" "52bade56" "04000000" "64000000" "fa000000");
	memset(&l2, 0xff, sizeof l2);
	assert_int_equal(stor_rec_limit_decode(buf, STOR_REC_LIMIT_SIZE, &l2), 0);
	assert_int_equal(l2.max_conns, 4);
	assert_int_equal(l2.msgs_per_conn, 100);
	assert_int_equal(l2.rate, 250);
	/* every truncation, every bit flip, trailing bytes */
	for (size_t len = 0; len < STOR_REC_LIMIT_SIZE; len++)
		assert_int_equal(stor_rec_limit_decode(buf, len, &l2), STOR_ECORRUPT);
	for (size_t i = 0; i < STOR_REC_LIMIT_SIZE * 8; i++) {
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_equal(stor_rec_limit_decode(buf, STOR_REC_LIMIT_SIZE, &l2),
				 STOR_ECORRUPT);
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	buf[STOR_REC_LIMIT_SIZE] = 0;
	assert_int_equal(stor_rec_limit_decode(buf, STOR_REC_LIMIT_SIZE + 1, &l2),
			 STOR_ECORRUPT);
	/* all zero is a valid layout (every value: the config default) */
	l = (struct stor_dir_limit){ 0 };
	stor_rec_limit_encode(&l, buf);
	assert_int_equal(stor_rec_limit_decode(buf, STOR_REC_LIMIT_SIZE, &l2), 0);
	assert_int_equal(l2.max_conns + l2.msgs_per_conn + l2.rate, 0);
	/* bounds: the sluice.conf keys' ranges; above one is refused on
	 * decode even with a good checksum */
	l = (struct stor_dir_limit){ STOR_LIMIT_CONNS_MAX, STOR_LIMIT_MSGS_MAX,
				     STOR_LIMIT_RATE_MAX };
	assert_int_equal(stor_rec_limit_ok(&l), 1);
	stor_rec_limit_encode(&l, buf);
	assert_int_equal(stor_rec_limit_decode(buf, STOR_REC_LIMIT_SIZE, &l2), 0);
	l.rate++;
	assert_int_equal(stor_rec_limit_ok(&l), 0);
	stor_rec_limit_encode(&l, buf);
	assert_int_equal(stor_rec_limit_decode(buf, STOR_REC_LIMIT_SIZE, &l2), STOR_ECORRUPT);
	l = (struct stor_dir_limit){ STOR_LIMIT_CONNS_MAX + 1, 0, 0 };
	assert_int_equal(stor_rec_limit_ok(&l), 0);
	l = (struct stor_dir_limit){ 0, STOR_LIMIT_MSGS_MAX + 1, 0 };
	assert_int_equal(stor_rec_limit_ok(&l), 0);
	/* another record type is not a limit */
	stor_rec_prio_encode(1, buf);
	assert_int_equal(stor_rec_limit_decode(buf, STOR_REC_HDR + 1, &l2), STOR_ECORRUPT);
}

static void strerror_codes(void **st)
{
	(void)st;
	assert_non_null(strstr(stor_strerror(STOR_EFULL), "full"));
	assert_non_null(strstr(stor_strerror(STOR_ECORRUPT), "corrupt"));
	assert_non_null(strstr(stor_strerror(MDB_MAP_FULL), "MDB_MAP_FULL"));
	assert_non_null(strstr(stor_strerror(ENOENT), "No such file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crc32c_vectors),
		cmocka_unit_test(qid_text),
		cmocka_unit_test(keys),
		cmocka_unit_test(msg_golden),
		cmocka_unit_test(msg_limits),
		cmocka_unit_test(body_golden),
		cmocka_unit_test(dest_golden),
		cmocka_unit_test(dir_golden),
		cmocka_unit_test(limit_golden),
		cmocka_unit_test(strerror_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
