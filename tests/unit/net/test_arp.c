/*
 * test_arp.c - ARP (RFC 826): answering, learning, resolution with a
 * bounded pending queue, retries and failure, expiry, refresh, eviction.
 */
#include <string.h>

#include "net_test.h"

#define T0 1000000ull

static const uint8_t zero_mac[6];

/* send_l4 - push l4_len bytes of a dummy protocol through ipv4_send */
static int send_l4(struct net_stack *s, uint32_t dst, uint16_t l4_len)
{
	struct net_txbuf tb;

	assert_int_equal(net_tx_alloc(s, &tb), 0);
	memset(tb.data + NET_L4_OFF, 0xab, l4_len);
	return ipv4_send(s, &tb, dst, 253, l4_len, 0);
}

static void learn_peer(struct net_stack *s, uint32_t ip, const uint8_t *mac,
		       uint64_t now)
{
	uint8_t f[60];

	tu_input(s, f, tu_arp_frame(f, TU_BCAST, 1, mac, ip, zero_mac, TU_IP),
		 0, now);
}

/* is_arp - frame i is an ARP packet with op, target tpa, to eth_dst */
static void assert_arp(int i, uint16_t op, uint32_t tpa, const uint8_t *eth_dst)
{
	const uint8_t *f = tu_io.f[i].data;

	assert_true(i < tu_io.n);
	assert_int_equal(tu_io.f[i].len, 60);
	assert_memory_equal(f, eth_dst, 6);
	assert_memory_equal(f + 6, TU_MAC, 6);
	assert_int_equal(tu_rd16(f + 12), 0x0806);
	assert_int_equal(tu_rd16(f + 14), 1);
	assert_int_equal(tu_rd16(f + 16), 0x0800);
	assert_int_equal(f[18], 6);
	assert_int_equal(f[19], 4);
	assert_int_equal(tu_rd16(f + 20), op);
	assert_memory_equal(f + 22, TU_MAC, 6);
	assert_int_equal(tu_rd32(f + 28), TU_IP);
	assert_int_equal(tu_rd32(f + 38), tpa);
}

static void test_request_for_us_answered(void **state)
{
	struct net_stack *s = tu_stack(NULL, T0);

	(void)state;
	learn_peer(s, TU_PEER, TU_PEER_MAC, T0);
	assert_int_equal(tu_io.n, 1);
	assert_arp(0, 2, TU_PEER, TU_PEER_MAC);
	assert_memory_equal(tu_io.f[0].data + 32, TU_PEER_MAC, 6);
	assert_int_equal(tu_counter(s, "arp.rx_request"), 1);
	assert_int_equal(tu_counter(s, "arp.tx_reply"), 1);
	assert_int_equal(tu_counter(s, "arp.entries"), 1);
	net_stack_destroy(s, T0);
	assert_int_equal(tu_io.outstanding, 0);
}

static void test_request_for_other_ignored(void **state)
{
	struct net_stack *s = tu_stack(NULL, T0);
	uint8_t f[60];

	(void)state;
	tu_input(s, f, tu_arp_frame(f, TU_BCAST, 1, TU_PEER_MAC, TU_PEER,
				    zero_mac, 0x0a000063u), 0, T0);
	assert_int_equal(tu_io.n, 0);
	assert_int_equal(tu_counter(s, "arp.entries"), 0); /* not learned */
	assert_int_equal(tu_counter(s, "arp.rx_request"), 1);
	net_stack_destroy(s, T0);
}

/* frames wait for the reply, leave in order with the learned MAC */
static void test_resolve_pending_flushed(void **state)
{
	struct net_stack *s = tu_stack(NULL, T0);
	uint8_t f[60];

	(void)state;
	assert_int_equal(send_l4(s, TU_PEER, 10), 0);
	assert_int_equal(send_l4(s, TU_PEER, 11), 0);
	assert_int_equal(send_l4(s, TU_PEER, 12), 0);
	assert_int_equal(tu_io.n, 1); /* one request only */
	assert_arp(0, 1, TU_PEER, TU_BCAST);
	assert_int_equal(tu_counter(s, "arp.pending"), 3);
	assert_int_equal(tu_counter(s, "arp.tx_request"), 1);
	tu_input(s, f, tu_arp_frame(f, TU_MAC, 2, TU_PEER_MAC, TU_PEER, TU_MAC,
				    TU_IP), 0, T0 + 1000);
	assert_int_equal(tu_io.n, 4);
	for (int i = 0; i < 3; i++) {
		assert_memory_equal(tu_io.f[1 + i].data, TU_PEER_MAC, 6);
		assert_int_equal(tu_io.f[1 + i].len, NET_L4_OFF + 10 + i);
		assert_int_equal(tu_io.f[1 + i].l2_len, 14);
		assert_int_equal(tu_io.f[1 + i].l3_len, 20);
	}
	assert_int_equal(tu_counter(s, "arp.pending"), 0);
	assert_int_equal(tu_counter(s, "arp.entries"), 1);
	/* now resolved: sent at once */
	assert_int_equal(send_l4(s, TU_PEER, 5), 0);
	assert_int_equal(tu_io.n, 5);
	net_stack_destroy(s, T0);
	assert_int_equal(tu_io.outstanding, 0);
}

/* at most cfg.arp_pending frames are held in total; the rest are freed */
static void test_pending_queue_bounded(void **state)
{
	struct net_stack *s = tu_stack(NULL, T0); /* arp_pending = 4 */

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(send_l4(s, i & 1 ? TU_PEER : TU_REMOTE, 8), 0);
	assert_int_equal(send_l4(s, TU_PEER, 8), -NET_ENOMEM);
	assert_int_equal(send_l4(s, TU_REMOTE, 8), -NET_ENOMEM);
	assert_int_equal(tu_counter(s, "arp.pending"), 4);
	assert_int_equal(tu_counter(s, "arp.pending_drop"), 2);
	assert_int_equal(tu_io.freed, 2);
	assert_int_equal(tu_io.outstanding, 4);
	net_stack_destroy(s, T0); /* held frames returned */
	assert_int_equal(tu_io.outstanding, 0);
}

/* a few requests per second, then the frames are dropped and counted */
static void test_resolve_timeout(void **state)
{
	struct net_stack *s = tu_stack(NULL, T0);
	uint64_t now = T0;
	int polls = 0;

	(void)state;
	assert_int_equal(send_l4(s, TU_PEER, 8), 0);
	assert_int_equal(send_l4(s, TU_PEER, 9), 0);
	while (net_next_deadline(s) != UINT64_MAX && polls++ < 20) {
		now = net_next_deadline(s);
		net_poll(s, now);
	}
	assert_int_equal(tu_counter(s, "arp.tx_request"), 4);
	for (int i = 0; i < tu_io.n; i++)
		assert_arp(i, 1, TU_PEER, TU_BCAST);
	assert_true(now - T0 >= 900000 && now - T0 <= 2000000);
	assert_int_equal(tu_counter(s, "arp.resolve_fail"), 1);
	assert_int_equal(tu_counter(s, "arp.pending_drop"), 2);
	assert_int_equal(tu_counter(s, "arp.pending"), 0);
	assert_int_equal(tu_counter(s, "arp.entries"), 0);
	assert_int_equal(tu_io.freed, 2);
	assert_int_equal(tu_io.outstanding, 0);
	net_stack_destroy(s, now);
}

/* entries live cfg.arp_timeout_ms, then the next send resolves again */
static void test_entry_expires(void **state)
{
	struct net_stack *s = tu_stack(NULL, T0); /* timeout 60 s */

	(void)state;
	learn_peer(s, TU_PEER, TU_PEER_MAC, T0);
	net_poll(s, T0 + 59000000);
	assert_int_equal(tu_counter(s, "arp.entries"), 1);
	assert_int_equal(net_next_deadline(s), T0 + 60000000);
	net_poll(s, T0 + 60000000);
	assert_int_equal(tu_counter(s, "arp.entries"), 0);
	tu_io.n = 0;
	assert_int_equal(send_l4(s, TU_PEER, 8), 0);
	assert_int_equal(tu_io.n, 1);
	assert_arp(0, 1, TU_PEER, TU_BCAST);
	net_stack_destroy(s, T0 + 60000000);
	assert_int_equal(tu_io.outstanding, 0);
}

/* an entry used close to its expiry gets a unicast refresh request, and
 * the frame itself still goes out at once */
static void test_refresh_before_expiry(void **state)
{
	struct net_stack *s = tu_stack(NULL, T0);
	uint64_t t = T0 + 58000000;

	(void)state;
	learn_peer(s, TU_PEER, TU_PEER_MAC, T0);
	tu_io.n = 0;
	net_poll(s, t);
	assert_int_equal(send_l4(s, TU_PEER, 8), 0);
	assert_int_equal(tu_io.n, 2);
	assert_memory_equal(tu_io.f[0].data, TU_PEER_MAC, 6);
	assert_int_equal(tu_rd16(tu_io.f[0].data + 12), 0x0800);
	assert_arp(1, 1, TU_PEER, TU_PEER_MAC);
	/* not again on the next frame */
	assert_int_equal(send_l4(s, TU_PEER, 8), 0);
	assert_int_equal(tu_io.n, 3);
	net_stack_destroy(s, t);
}

/* RFC 826: gratuitous ARP updates an existing entry, never creates one */
static void test_gratuitous(void **state)
{
	struct net_stack *s = tu_stack(NULL, T0);
	const uint8_t newmac[6] = { 0x02, 0, 0, 0, 0, 0x77 };
	uint8_t f[60];

	(void)state;
	tu_input(s, f, tu_arp_frame(f, TU_BCAST, 1, newmac, 0x0a000009u,
				    zero_mac, 0x0a000009u), 0, T0);
	assert_int_equal(tu_counter(s, "arp.entries"), 0);
	learn_peer(s, TU_PEER, TU_PEER_MAC, T0);
	tu_input(s, f, tu_arp_frame(f, TU_BCAST, 2, newmac, TU_PEER, TU_BCAST,
				    TU_PEER), 0, T0);
	assert_int_equal(tu_counter(s, "arp.entries"), 1);
	tu_io.n = 0;
	assert_int_equal(send_l4(s, TU_PEER, 8), 0);
	assert_memory_equal(tu_io.f[0].data, newmac, 6);
	net_stack_destroy(s, T0);
}

/* malformed and hostile packets are counted in arp.bad, never learned */
static void test_bad_packets(void **state)
{
	struct net_stack *s = tu_stack(NULL, T0);
	uint8_t f[60];
	size_t n;

	(void)state;
	n = tu_arp_frame(f, TU_BCAST, 1, TU_PEER_MAC, TU_PEER, zero_mac, TU_IP);
	f[15] = 6; /* htype 6 */
	tu_input(s, f, n, 0, T0);
	n = tu_arp_frame(f, TU_BCAST, 3, TU_PEER_MAC, TU_PEER, zero_mac, TU_IP);
	tu_input(s, f, n, 0, T0); /* op 3 */
	n = tu_arp_frame(f, TU_BCAST, 1, TU_PEER_MAC, TU_PEER, zero_mac, TU_IP);
	tu_input(s, f, 14 + 27, 0, T0); /* truncated */
	n = tu_arp_frame(f, TU_BCAST, 1, TU_PEER_MAC, TU_IP, zero_mac, TU_IP);
	tu_input(s, f, n, 0, T0); /* someone claims our address */
	n = tu_arp_frame(f, TU_BCAST, 1, TU_BCAST, TU_PEER, zero_mac, TU_IP);
	memcpy(f + 6, TU_PEER_MAC, 6); /* Ethernet source stays unicast */
	tu_input(s, f, n, 0, T0); /* broadcast sender MAC */
	assert_int_equal(tu_counter(s, "arp.bad"), 5);
	assert_int_equal(tu_counter(s, "arp.entries"), 0);
	assert_int_equal(tu_io.n, 0);
	net_stack_destroy(s, T0);
}

/* a full table evicts the reachable entry closest to expiry */
static void test_table_full_evicts(void **state)
{
	struct net_stack *s = tu_stack(NULL, T0); /* 8 entries */
	uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0 };

	(void)state;
	for (int i = 0; i < 9; i++) {
		mac[5] = (uint8_t)(0x10 + i);
		learn_peer(s, 0x0a000010u + (uint32_t)i, mac, T0 + (uint64_t)i);
	}
	assert_int_equal(tu_counter(s, "arp.entries"), 8);
	tu_io.n = 0;
	/* the first one learned was evicted: sending to it asks again */
	assert_int_equal(send_l4(s, 0x0a000010u, 8), 0);
	assert_arp(0, 1, 0x0a000010u, TU_BCAST);
	/* the last one is known */
	assert_int_equal(send_l4(s, 0x0a000018u, 8), 0);
	assert_int_equal(tu_rd16(tu_io.f[1].data + 12), 0x0800);
	net_stack_destroy(s, T0);
	assert_int_equal(tu_io.outstanding, 0);
}

/* off-link destinations resolve the gateway; no gateway: no route */
static void test_route_via_gateway(void **state)
{
	struct net_config c;
	struct net_stack *s = tu_stack(NULL, T0);

	(void)state;
	assert_int_equal(send_l4(s, TU_REMOTE, 8), 0);
	assert_arp(0, 1, TU_GW, TU_BCAST);
	net_stack_destroy(s, T0);

	tu_config(&c);
	c.gateway = 0;
	s = tu_stack(&c, T0);
	assert_int_equal(send_l4(s, TU_REMOTE, 8), -NET_EHOSTUNREACH);
	assert_int_equal(tu_counter(s, "ip.no_route"), 1);
	assert_int_equal(tu_io.outstanding, 0);
	assert_int_equal(tu_io.n, 0);
	net_stack_destroy(s, T0);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test(test_request_for_us_answered),
		cmocka_unit_test(test_request_for_other_ignored),
		cmocka_unit_test(test_resolve_pending_flushed),
		cmocka_unit_test(test_pending_queue_bounded),
		cmocka_unit_test(test_resolve_timeout),
		cmocka_unit_test(test_entry_expires),
		cmocka_unit_test(test_refresh_before_expiry),
		cmocka_unit_test(test_gratuitous),
		cmocka_unit_test(test_bad_packets),
		cmocka_unit_test(test_table_full_evicts),
		cmocka_unit_test(test_route_via_gateway),
	};

	return cmocka_run_group_tests_name("arp", t, NULL, NULL);
}
