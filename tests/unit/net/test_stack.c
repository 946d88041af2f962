/*
 * test_stack.c - stack lifetime, Ethernet demux, driving and counters.
 */
#include <string.h>

#include "net_test.h"

#define T0 1000000ull

static int dummy_alloc(void *o, struct net_txbuf *tb)
{
	(void)o;
	(void)tb;
	return -NET_ENOMEM;
}

static void dummy_send(void *o, struct net_txbuf *tb, uint16_t len,
		       uint32_t f, uint8_t l2, uint8_t l3)
{
	(void)o; (void)tb; (void)len; (void)f; (void)l2; (void)l3;
}

static void dummy_free(void *o, struct net_txbuf *tb)
{
	(void)o;
	(void)tb;
}

struct cfg_case {
	const char *name;
	void (*mutate)(struct net_config *c, struct net_io *io);
};

static void c_mtu_small(struct net_config *c, struct net_io *io) { (void)io; c->mtu = 60; }
static void c_mtu_big(struct net_config *c, struct net_io *io) { (void)io; c->mtu = 65000; }
static void c_no_arp(struct net_config *c, struct net_io *io) { (void)io; c->arp_entries = 0; }
static void c_mcast_mac(struct net_config *c, struct net_io *io) { (void)io; c->mac[0] = 0x01; }
static void c_prefix(struct net_config *c, struct net_io *io) { (void)io; c->prefix_len = 33; }
static void c_no_send(struct net_config *c, struct net_io *io) { (void)c; io->tx_send = NULL; }

static const struct cfg_case bad_cfgs[] = {
	{ "create refuses mtu below 68", c_mtu_small },
	{ "create refuses mtu above 9216", c_mtu_big },
	{ "create refuses an empty neighbour table", c_no_arp },
	{ "create refuses a multicast mac", c_mcast_mac },
	{ "create refuses prefix 33", c_prefix },
	{ "create refuses io without tx_send", c_no_send },
};

static void test_bad_config(void **state)
{
	const struct cfg_case *c = *state;
	struct net_config cfg;
	struct net_io io = { .tx_alloc = dummy_alloc, .tx_send = dummy_send,
			     .tx_free = dummy_free };
	struct net_stack *s;

	tu_config(&cfg);
	s = net_stack_create(&cfg, &io, T0);
	assert_non_null(s);
	net_stack_destroy(s, T0);
	c->mutate(&cfg, &io);
	assert_null(net_stack_create(&cfg, &io, T0));
}

static void test_defaults(void **state)
{
	struct net_config c;

	(void)state;
	net_config_defaults(&c);
	assert_int_equal(c.mtu, 1500);
	assert_int_equal(c.msl_ms, 30000);
	assert_int_equal(c.fin_wait2_ms, 60000);
	assert_int_equal(c.delack_ms, 40);
	assert_int_equal(c.rto_min_ms, 200);
	assert_int_equal(c.rto_max_ms, 60000);
	assert_int_equal(c.rto_init_ms, 1000);
	assert_int_equal(c.syn_retries, 6);
	assert_int_equal(c.data_retries, 15);
	assert_int_equal(c.arp_timeout_ms, 300000);
	assert_int_equal(c.ip, 0);
	assert_true(c.max_conns > 0 && c.rcvbuf > 0 && c.sndbuf > 0 &&
		    c.arp_entries > 0 && c.arp_pending > 0 &&
		    c.max_listeners > 0 && c.timewait_max > 0);
}

static void test_strerror(void **state)
{
	(void)state;
	for (int e = 0; e <= NET_EHOSTUNREACH; e++) {
		assert_non_null(net_strerror(e));
		assert_string_equal(net_strerror(e), net_strerror(-e));
		assert_string_not_equal(net_strerror(e), "unknown error");
	}
	assert_string_equal(net_strerror(99), "unknown error");
	assert_string_equal(net_strerror(-NET_ETIMEDOUT), "timed out");
}

struct eth_case {
	const char *name;
	size_t len;
	uint8_t dst0, dst5;  /* first/last byte of the destination MAC */
	uint8_t src0;
	uint16_t type;
	const char *counter;
};

static const struct eth_case eths[] = {
	{ "runt frame", 10, 0x02, 0x02, 0x02, 0x0800, "eth.bad" },
	{ "multicast source mac", 60, 0x02, 0x02, 0x01, 0x0800, "eth.bad" },
	{ "other unicast destination", 60, 0x02, 0x03, 0x02, 0x0800,
	  "eth.not_for_us" },
	{ "multicast destination", 60, 0x01, 0x02, 0x02, 0x0800,
	  "eth.not_for_us" },
	{ "ipv6 ethertype", 60, 0x02, 0x02, 0x02, 0x86dd,
	  "eth.unknown_ethertype" },
	{ "vlan tag", 60, 0x02, 0x02, 0x02, 0x8100, "eth.unknown_ethertype" },
	{ "ipv4 to our mac", 60, 0x02, 0x02, 0x02, 0x0800, "ip.rx" },
	{ "ipv4 to broadcast mac", 60, 0xff, 0xff, 0x02, 0x0800, "ip.rx" },
	{ "arp to our mac", 60, 0x02, 0x02, 0x02, 0x0806, "arp.bad" },
};

static void test_eth(void **state)
{
	const struct eth_case *c = *state;
	struct net_stack *s = tu_stack(NULL, T0);
	uint8_t f[60];

	memset(f, 0, sizeof(f));
	memcpy(f, TU_MAC, 6);
	f[0] = c->dst0;
	if (c->dst0 == 0xff)
		memset(f, 0xff, 6);
	f[5] = c->dst5;
	memcpy(f + 6, TU_PEER_MAC, 6);
	f[6] = c->src0;
	f[12] = (uint8_t)(c->type >> 8);
	f[13] = (uint8_t)c->type;
	tu_input(s, f, c->len, 0, T0);
	assert_int_equal(tu_counter(s, "l3.rx_frames"), 1);
	assert_int_equal(tu_counter(s, "l3.rx_bytes"), c->len);
	assert_int_equal(tu_counter(s, c->counter), 1);
	net_stack_destroy(s, T0);
}

/* names unique and static, NULL gives the count, TCP's come last,
 * truncation honours max */
static void test_counters(void **state)
{
	struct net_stack *s = tu_stack(NULL, T0);
	struct net_counter c[128];
	unsigned n = net_counters(s, NULL, 0), m;
	static const char *const required[] = {
		"l3.rx_frames", "l3.tx_frames", "ip.bad_csum", "ip.frag_drop",
		"arp.pending_drop", "arp.resolve_fail", "icmp.tx_echo_reply",
		"icmp.rate_limited", "arp.entries", "arp.pending",
	};

	(void)state;
	assert_true(n > 30 && n < 128);
	m = net_counters(s, c, 128);
	assert_int_equal(m, n);
	for (unsigned i = 0; i < n; i++) {
		assert_non_null(c[i].name);
		for (unsigned j = 0; j < i; j++)
			assert_string_not_equal(c[i].name, c[j].name);
	}
	assert_string_equal(c[n - 1].name, "tcp.fake");
	assert_int_equal(c[n - 1].value, 42);
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		(void)tu_counter(s, required[i]);
	assert_int_equal(net_counters(s, c, 3), 3);
	assert_int_equal(net_counters(s, c, 0), 0);
	net_stack_destroy(s, T0);
}

/* net_poll runs the TCP timers and output; deadlines are ARP's or TCP's */
static void test_poll_and_deadline(void **state)
{
	struct net_stack *s = tu_stack(NULL, T0);
	struct net_txbuf tb;

	(void)state;
	assert_int_equal(net_next_deadline(s), UINT64_MAX);
	net_poll(s, T0 + 5);
	assert_int_equal(tu_tcp.timers, 1);
	assert_int_equal(tu_tcp.flushes, 1);
	assert_int_equal(s->now, T0 + 5);
	assert_int_equal(net_tx_alloc(s, &tb), 0);
	assert_int_equal(ipv4_send(s, &tb, TU_PEER, 253, 10, 0), 0);
	assert_int_equal(net_next_deadline(s), T0 + 5 + 250000);
	net_stack_destroy(s, T0 + 5);
	assert_int_equal(tu_io.outstanding, 0);
}

int main(void)
{
	struct CMUnitTest t[64];
	size_t n = 0;

	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_defaults);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_strerror);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_counters);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_poll_and_deadline);
	for (size_t i = 0; i < sizeof(bad_cfgs) / sizeof(bad_cfgs[0]); i++)
		t[n++] = (struct CMUnitTest){ .name = bad_cfgs[i].name,
			.test_func = test_bad_config,
			.initial_state = (void *)&bad_cfgs[i] };
	for (size_t i = 0; i < sizeof(eths) / sizeof(eths[0]); i++)
		t[n++] = (struct CMUnitTest){ .name = eths[i].name,
			.test_func = test_eth,
			.initial_state = (void *)&eths[i] };
	return _cmocka_run_group_tests("net_stack", t, n, NULL, NULL);
}
