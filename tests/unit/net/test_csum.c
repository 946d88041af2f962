/*
 * test_csum.c - RFC 1071 checksum: known vectors, and the fast 8-byte
 * implementation against a naive 16-bit reference over random buffers of
 * every length and alignment.
 */
#include <stdlib.h>
#include <string.h>

#include "net_test.h"

/* naive - RFC 1071 section 4.1 done byte by byte, big-endian words */
static uint16_t naive(const uint8_t *p, size_t n)
{
	uint64_t s = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (i < n)
		s += (uint32_t)p[i] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* wire - the checksum as it reads in network order once memcpy'd */
static uint16_t wire(uint16_t folded)
{
	uint8_t b[2];

	memcpy(b, &folded, 2);
	return (uint16_t)(b[0] << 8 | b[1]);
}

static uint16_t fast(const uint8_t *p, size_t n)
{
	return wire(net_csum_fold(net_csum_partial(p, n, 0)));
}

struct vec {
	const char *name;
	const uint8_t *data;
	size_t len;
	uint16_t want;     /* checksum in network order */
};

static const uint8_t v_rfc1071[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5,
				     0xf6, 0xf7 };
static const uint8_t v_iphdr[] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40,
				   0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
				   0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };
static const uint8_t v_iphdr_full[] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00,
					0x40, 0x00, 0x40, 0x11, 0xb8, 0x61,
					0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
					0x00, 0xc7 };
static const uint8_t v_one[] = { 0x01 };
static const uint8_t v_odd3[] = { 0x12, 0x34, 0x56 };
static uint8_t v_ff[64];
static uint8_t v_ff_big[65535];

static const struct vec vecs[] = {
	{ "rfc1071 example 0x220d", v_rfc1071, sizeof(v_rfc1071), 0x220d },
	{ "ipv4 header 0xb861", v_iphdr, sizeof(v_iphdr), 0xb861 },
	{ "ipv4 header with csum sums to 0", v_iphdr_full,
	  sizeof(v_iphdr_full), 0x0000 },
	{ "empty buffer", v_one, 0, 0xffff },
	{ "one odd byte padded right", v_one, 1, 0xfeff },
	{ "three bytes", v_odd3, 3, (uint16_t)~(0x1234 + 0x5600) },
	{ "64 x 0xff is negative zero", v_ff, sizeof(v_ff), 0x0000 },
	{ "65535 x 0xff carries", v_ff_big, sizeof(v_ff_big), 0x00ff },
};

static void test_vector(void **state)
{
	const struct vec *v = *state;

	assert_int_equal(fast(v->data, v->len), v->want);
	assert_int_equal(naive(v->data, v->len), v->want);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t xrand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* every length 0..1600 at every alignment 0..7, random contents */
static void test_random_vs_naive(void **state)
{
	static uint8_t buf[1600 + 8];

	(void)state;
	for (size_t len = 0; len <= 1600; len++)
		for (size_t off = 0; off < 8; off++) {
			for (size_t i = 0; i < len; i++)
				buf[off + i] = (uint8_t)xrand();
			assert_int_equal(fast(buf + off, len),
					 naive(buf + off, len));
		}
}

/* mostly-0xff buffers stress the carry paths */
static void test_random_high_bytes(void **state)
{
	static uint8_t buf[9000];

	(void)state;
	for (int round = 0; round < 200; round++) {
		size_t len = xrand() % sizeof(buf);

		for (size_t i = 0; i < len; i++)
			buf[i] = (xrand() & 7) ? 0xff : (uint8_t)xrand();
		assert_int_equal(fast(buf, len), naive(buf, len));
	}
}

/* a sum split at any even boundary equals the sum of the whole */
static void test_chained(void **state)
{
	static uint8_t buf[1500];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)xrand();
	for (size_t cut = 0; cut < sizeof(buf); cut += 2) {
		uint32_t s = net_csum_partial(buf, cut, 0);

		s = net_csum_partial(buf + cut, sizeof(buf) - cut - 1, s);
		assert_int_equal(wire(net_csum_fold(s)),
				 naive(buf, sizeof(buf) - 1));
	}
}

/* the pseudo header sum equals the sum of its 12 wire bytes, and a TCP
 * segment checksummed with it verifies to 0 */
static void test_pseudo(void **state)
{
	const uint8_t ph[12] = { 192, 0, 2, 1, 198, 51, 100, 7, 0, 6, 0x05, 0xdc };
	uint8_t seg[40];
	uint16_t c;
	uint32_t p;

	(void)state;
	p = net_csum_pseudo(0xc0000201u, 0xc6336407u, 6, 1500);
	assert_int_equal(wire(net_csum_fold(p)), naive(ph, 12));
	for (size_t i = 0; i < sizeof(seg); i++)
		seg[i] = (uint8_t)xrand();
	seg[16] = seg[17] = 0;
	p = net_csum_pseudo(0x0a000002u, 0x0a000005u, 6, sizeof(seg));
	c = net_csum_fold(net_csum_partial(seg, sizeof(seg), p));
	memcpy(seg + 16, &c, 2);
	assert_int_equal(net_csum_fold(net_csum_partial(seg, sizeof(seg), p)), 0);
}

int main(void)
{
	struct CMUnitTest t[sizeof(vecs) / sizeof(vecs[0]) + 4];
	size_t n = 0;

	memset(v_ff, 0xff, sizeof(v_ff));
	memset(v_ff_big, 0xff, sizeof(v_ff_big));
	for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++)
		t[n++] = (struct CMUnitTest){ .name = vecs[i].name,
			.test_func = test_vector,
			.initial_state = (void *)&vecs[i] };
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_random_vs_naive);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_random_high_bytes);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_chained);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_pseudo);
	return _cmocka_run_group_tests("net_csum", t, n, NULL, NULL);
}
