/*
 * test_icmp.c - ICMP (RFC 792, RFC 1122 3.2.2): echo reply, malformed
 * input, rate limit of unreachables, the never-answer rules, and errors
 * quoting our TCP segments handed to TCP.
 */
#include <string.h>

#include "net_test.h"

#define T0 1000000ull

static const uint8_t zmac[6];

/* stack that already knows the peer's MAC, fakes reset */
static struct net_stack *stack_with_peer(void)
{
	struct net_stack *s = tu_stack(NULL, T0);
	uint8_t arp[60];

	tu_input(s, arp, tu_arp_frame(arp, TU_BCAST, 1, TU_PEER_MAC, TU_PEER,
				      zmac, TU_IP), 0, T0);
	tu_io.n = 0;
	return s;
}

static void test_echo_reply(void **state)
{
	struct net_stack *s = stack_with_peer();
	uint8_t data[56], icmp[64], f[128];
	const uint8_t *o;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i + 1);
	n = tu_icmp(icmp, 8, 0, 0x12340007u, data, sizeof(data));
	tu_input(s, f, tu_ip_frame(f, TU_MAC, TU_PEER, TU_IP, NET_IPPROTO_ICMP,
				   64, 0, 5, icmp, n), 0, T0);
	assert_int_equal(tu_io.n, 1);
	o = tu_io.f[0].data;
	assert_int_equal(tu_io.f[0].len, 14 + 20 + 64);
	assert_memory_equal(o, TU_PEER_MAC, 6);
	assert_int_equal(tu_rd32(o + 26), TU_IP);
	assert_int_equal(tu_rd32(o + 30), TU_PEER);
	assert_int_equal(o[23], NET_IPPROTO_ICMP);
	assert_int_equal(o[34], 0);                  /* echo reply */
	assert_int_equal(o[35], 0);
	assert_int_equal(tu_rd32(o + 38), 0x12340007u); /* id, seq */
	assert_memory_equal(o + 42, data, sizeof(data));
	assert_int_equal(net_csum_fold(net_csum_partial(o + 34, 64, 0)), 0);
	assert_int_equal(tu_counter(s, "icmp.rx_echo"), 1);
	assert_int_equal(tu_counter(s, "icmp.tx_echo_reply"), 1);
	net_stack_destroy(s, T0);
}

struct badcase {
	const char *name;
	size_t len;          /* ICMP bytes to send */
	int corrupt;         /* flip a byte after computing the checksum */
	uint8_t type, code;
	const char *counter;
};

static const struct badcase bad[] = {
	{ "echo with bad checksum", 16, 1, 8, 0, "icmp.bad" },
	{ "truncated header", 6, 0, 8, 0, "icmp.bad" },
	{ "echo with nonzero code", 16, 0, 8, 1, "icmp.bad" },
	{ "echo reply is ignored", 16, 0, 0, 0, "icmp.rx_ignored" },
	{ "redirect is ignored", 16, 0, 5, 1, "icmp.rx_ignored" },
	{ "unreachable quoting too little", 16, 0, 3, 1, "icmp.bad" },
};

static void test_bad(void **state)
{
	const struct badcase *c = *state;
	struct net_stack *s = stack_with_peer();
	uint8_t data[64] = { 0 }, icmp[80], f[128];
	size_t n = tu_icmp(icmp, c->type, c->code, 0, data,
			   c->len >= 8 ? c->len - 8 : 0);

	if (c->len < 8)
		n = c->len;
	if (c->corrupt)
		icmp[9] ^= 0xff;
	tu_input(s, f, tu_ip_frame(f, TU_MAC, TU_PEER, TU_IP, NET_IPPROTO_ICMP,
				   64, 0, 5, icmp, n), 0, T0);
	assert_int_equal(tu_counter(s, c->counter), 1);
	assert_int_equal(tu_io.n, 0);
	assert_int_equal(tu_tcp.icmp_errors, 0);
	net_stack_destroy(s, T0);
}

/* 50 unreachables at once, then NET_ICMP_RATE per second: token bucket
 * driven by the time given to the stack only */
static void test_unreach_rate_limit(void **state)
{
	struct net_stack *s = stack_with_peer();
	uint8_t udp[8] = { 0x9c, 0x40, 0, 53, 0, 8, 0, 0 }, f[128];
	size_t len = tu_ip_frame(f, TU_MAC, TU_PEER, TU_IP, NET_IPPROTO_UDP, 64,
				 0, 5, udp, sizeof(udp));

	(void)state;
	for (int i = 0; i < 60; i++)
		tu_input(s, f, len, 0, T0);
	assert_int_equal(tu_io.n, 50);
	assert_int_equal(tu_counter(s, "icmp.tx_unreach"), 50);
	assert_int_equal(tu_counter(s, "icmp.rate_limited"), 10);
	assert_int_equal(tu_counter(s, "ip.unknown_proto"), 60);
	/* 100 ms later: 10 more tokens */
	for (int i = 0; i < 20; i++)
		tu_input(s, f, len, 0, T0 + 100000);
	assert_int_equal(tu_counter(s, "icmp.tx_unreach"), 60);
	assert_int_equal(tu_counter(s, "icmp.rate_limited"), 20);
	/* a long pause refills to the burst size, not more */
	for (int i = 0; i < 60; i++)
		tu_input(s, f, len, 0, T0 + 10000000);
	assert_int_equal(tu_counter(s, "icmp.tx_unreach"), 110);
	assert_int_equal(tu_counter(s, "icmp.rate_limited"), 30);
	net_stack_destroy(s, T0);
}

struct never_case {
	const char *name;
	uint8_t proto;
	uint8_t l4type;      /* first L4 byte (ICMP type) */
	uint32_t src, dst;
	uint16_t frag;
};

static const struct never_case never[] = {
	{ "never for an icmp error", NET_IPPROTO_ICMP, 3, TU_PEER, TU_IP, 0 },
	{ "never for a broadcast source", 47, 0, 0xffffffffu, TU_IP, 0 },
	{ "never for a multicast source", 47, 0, 0xe0000001u, TU_IP, 0 },
	{ "never for another destination", 47, 0, TU_PEER, 0x0a0000ffu, 0 },
	{ "never for a non-initial fragment", 47, 0, TU_PEER, TU_IP, 0x0010 },
};

/* RFC 1122 3.2.2: the rules of icmp_send_unreach, called directly */
static void test_never(void **state)
{
	const struct never_case *c = *state;
	struct net_stack *s = stack_with_peer();
	uint8_t l4[16] = { c->l4type }, f[128];
	struct net_ipinfo ip;

	tu_ip_frame(f, TU_MAC, c->src, c->dst, c->proto, 64, c->frag, 5, l4,
		    sizeof(l4));
	memset(&ip, 0, sizeof(ip));
	ip.src = c->src;
	ip.dst = c->dst;
	ip.proto = c->proto;
	ip.ttl = 64;
	ip.ip_hdr = f + 14;
	ip.ip_hdr_len = 20;
	icmp_send_unreach(s, &ip, 2, l4, sizeof(l4));
	assert_int_equal(tu_io.n, 0);
	assert_int_equal(tu_counter(s, "icmp.tx_unreach"), 0);
	net_stack_destroy(s, T0);
}

struct err_case {
	const char *name;
	uint8_t type, code;
	uint8_t inner_proto;
	uint32_t inner_src;
	int to_tcp;          /* 1: handed to tcp_icmp_error */
	const char *counter; /* counter that must be 1 */
};

static const struct err_case errs[] = {
	{ "port unreachable for our tcp", 3, 3, NET_IPPROTO_TCP, TU_IP, 1,
	  "icmp.rx_unreach" },
	{ "frag needed for our tcp", 3, 4, NET_IPPROTO_TCP, TU_IP, 1,
	  "icmp.rx_unreach" },
	{ "time exceeded for our tcp", 11, 0, NET_IPPROTO_TCP, TU_IP, 1,
	  "icmp.rx_unreach" },
	{ "unreachable quoting udp is ignored", 3, 3, NET_IPPROTO_UDP, TU_IP, 0,
	  "icmp.rx_ignored" },
	{ "unreachable quoting someone else", 3, 1, NET_IPPROTO_TCP, TU_PEER, 0,
	  "icmp.rx_ignored" },
};

/* errors in: the quoted datagram reaches TCP unchanged */
static void test_error_in(void **state)
{
	const struct err_case *c = *state;
	struct net_stack *s = stack_with_peer();
	uint8_t inner[48], icmp[64], f[128];
	size_t n;

	memset(inner, 0, sizeof(inner));
	inner[0] = 0x45;
	inner[3] = 48;
	inner[8] = 3;
	inner[9] = c->inner_proto;
	inner[12] = (uint8_t)(c->inner_src >> 24);
	inner[13] = (uint8_t)(c->inner_src >> 16);
	inner[14] = (uint8_t)(c->inner_src >> 8);
	inner[15] = (uint8_t)c->inner_src;
	inner[16] = 198; inner[17] = 51; inner[18] = 100; inner[19] = 1;
	for (int i = 20; i < 48; i++)
		inner[i] = (uint8_t)i;
	n = tu_icmp(icmp, c->type, c->code, c->code == 4 ? 1400 : 0, inner,
		    sizeof(inner));
	tu_input(s, f, tu_ip_frame(f, TU_MAC, 0xc6336401u, TU_IP,
				   NET_IPPROTO_ICMP, 60, 0, 5, icmp, n), 0, T0);
	assert_int_equal(tu_counter(s, c->counter), 1);
	assert_int_equal(tu_tcp.icmp_errors, c->to_tcp);
	if (c->to_tcp) {
		assert_int_equal(tu_tcp.err_type, c->type);
		assert_int_equal(tu_tcp.err_code, c->code);
		assert_int_equal(tu_tcp.err_len, sizeof(inner));
		assert_memory_equal(tu_tcp.err_inner, inner, sizeof(inner));
	}
	assert_int_equal(tu_io.n, 0);
	net_stack_destroy(s, T0);
}

int main(void)
{
	struct CMUnitTest t[64];
	size_t n = 0;

	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_echo_reply);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_unreach_rate_limit);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		t[n++] = (struct CMUnitTest){ .name = bad[i].name,
			.test_func = test_bad, .initial_state = (void *)&bad[i] };
	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
		t[n++] = (struct CMUnitTest){ .name = never[i].name,
			.test_func = test_never,
			.initial_state = (void *)&never[i] };
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		t[n++] = (struct CMUnitTest){ .name = errs[i].name,
			.test_func = test_error_in,
			.initial_state = (void *)&errs[i] };
	return _cmocka_run_group_tests("icmp", t, n, NULL, NULL);
}
