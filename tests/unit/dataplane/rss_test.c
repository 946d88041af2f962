/*
 * rss_test.c - Toeplitz prediction against the Microsoft RSS verification
 * vectors, and RSS-aware source ports that land on the asked-for queue.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rss.h"

static const uint8_t ms_key[40] = {
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
	0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
	0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
	0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (b) << 16 | (c) << 8 | (d))

static void ctx(struct rss_ctx *r, unsigned queues)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->key, ms_key, sizeof(ms_key));
	r->key_len = sizeof(ms_key);
	r->enabled = true;
	r->nb_queues = queues;
	r->reta_size = 128;
	for (unsigned i = 0; i < r->reta_size; i++)
		r->reta[i] = (uint16_t)(i % queues);
}

/* "Verifying the RSS hash calculation", IPv4 with TCP ports */
static void test_ms_vectors(void **state)
{
	static const struct {
		uint32_t src, dst;
		uint16_t sport, dport;
		uint32_t hash;
	} v[] = {
		{ IP(66, 9, 149, 187), IP(161, 142, 100, 80), 2794, 1766,
		  0x51ccc178 },
		{ IP(199, 92, 111, 2), IP(65, 69, 140, 83), 14230, 4739,
		  0xc626b0ea },
		{ IP(24, 19, 198, 95), IP(12, 22, 207, 184), 12898, 38024,
		  0x5c2b394a },
		{ IP(38, 27, 205, 30), IP(209, 142, 163, 6), 48228, 2217,
		  0xafc7327f },
		{ IP(153, 39, 163, 191), IP(202, 188, 127, 2), 44251, 1303,
		  0x10e828a2 },
	};
	struct rss_ctx r;

	(void)state;
	ctx(&r, 4);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(rss_hash(&r, v[i].src, v[i].dst, v[i].sport,
					  v[i].dport), v[i].hash);
}

static void test_pick_lands_on_queue(void **state)
{
	struct rss_ctx r;
	uint32_t us = IP(198, 18, 0, 1), peer = IP(198, 18, 0, 2);

	(void)state;
	ctx(&r, 4);
	for (unsigned q = 0; q < 4; q++) {
		for (unsigned attempt = 0; attempt < 50; attempt++) {
			uint16_t sport = 0;

			assert_int_equal(rss_pick_sport(&r, q, us, peer, 25,
							attempt, &sport), 0);
			assert_in_range(sport, RSS_SPORT_MIN, RSS_SPORT_MAX);
			/* the reply: peer:25 -> us:sport */
			assert_int_equal(rss_queue(&r, peer, us, 25, sport), q);
		}
	}
}

static void test_attempts_spread(void **state)
{
	struct rss_ctx r;
	uint16_t seen[64];
	unsigned distinct = 0;

	(void)state;
	ctx(&r, 2);
	for (unsigned a = 0; a < 64; a++) {
		uint16_t p;
		bool dup = false;

		assert_int_equal(rss_pick_sport(&r, 1, IP(10, 0, 0, 1),
						IP(10, 0, 0, 2), 25, a, &p), 0);
		for (unsigned i = 0; i < distinct; i++)
			dup |= seen[i] == p;
		if (!dup)
			seen[distinct++] = p;
	}
	assert_true(distinct >= 60);
}

static void test_single_queue_leaves_choice_to_stack(void **state)
{
	struct rss_ctx r;
	uint16_t p;

	(void)state;
	ctx(&r, 1);
	assert_int_equal(rss_pick_sport(&r, 0, 1, 2, 25, 0, &p), -1);
	assert_int_equal(rss_queue(&r, 1, 2, 3, 4), 0);
	ctx(&r, 4);
	r.enabled = false;
	assert_int_equal(rss_pick_sport(&r, 0, 1, 2, 25, 0, &p), -1);
}

static void test_unknown_reta_is_modulo(void **state)
{
	struct rss_ctx r;
	uint32_t h;

	(void)state;
	ctx(&r, 3);
	r.reta_size = 0;
	h = rss_hash(&r, 1, 2, 3, 4);
	assert_int_equal(rss_queue(&r, 1, 2, 3, 4), h % 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ms_vectors),
		cmocka_unit_test(test_pick_lands_on_queue),
		cmocka_unit_test(test_attempts_spread),
		cmocka_unit_test(test_single_queue_leaves_choice_to_stack),
		cmocka_unit_test(test_unknown_reta_is_modulo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
