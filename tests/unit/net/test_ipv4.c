/*
 * test_ipv4.c - IPv4 input checks (each bad header counted exactly once,
 * nothing delivered), fragments dropped, options counted, demux, and the
 * output path: headers, checksums in software and offloaded, errors.
 */
#include <string.h>

#include "net_test.h"

#define T0 1000000ull

/* drop counters: a bad datagram must bump exactly one of them */
static const char *const drops[] = {
	"ip.bad_header", "ip.bad_csum", "ip.bad_len", "ip.not_for_us",
	"ip.frag_drop", "eth.bad", "eth.not_for_us", "eth.unknown_ethertype",
};

struct ipcase {
	const char *name;
	void (*mutate)(uint8_t *f, size_t *len, uint32_t *rxflags);
	const char *counter;     /* expected drop counter, NULL = delivered */
};

static void fix_csum(uint8_t *f)
{
	uint8_t *ip = f + 14;
	unsigned hl = (ip[0] & 15u) * 4;
	uint16_t c;

	ip[10] = ip[11] = 0;
	c = net_csum_fold(net_csum_partial(ip, hl, 0));
	memcpy(ip + 10, &c, 2);
}

static void m_none(uint8_t *f, size_t *l, uint32_t *x) { (void)f; (void)l; (void)x; }
static void m_short(uint8_t *f, size_t *l, uint32_t *x) { (void)f; (void)x; *l = 14 + 19; }
static void m_version6(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[14] = 0x65; fix_csum(f); }
static void m_ihl4(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[14] = 0x44; }
static void m_ihl_beyond(uint8_t *f, size_t *l, uint32_t *x) { (void)x; f[14] = 0x4f; *l = 14 + 40; }
static void m_totlen_big(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[17] = 41; fix_csum(f); }
static void m_totlen_small(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[17] = 19; fix_csum(f); }
static void m_bad_csum(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[24] ^= 0x01; }
static void m_nic_bad(uint8_t *f, size_t *l, uint32_t *x) { (void)f; (void)l; *x = NET_RXF_IP_CSUM_BAD; }
static void m_nic_good(uint8_t *f, size_t *l, uint32_t *x) { (void)l; f[24] ^= 0x01; *x = NET_RXF_IP_CSUM_GOOD; }
static void m_ttl0(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[22] = 0; fix_csum(f); }
static void m_ttl1(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[22] = 1; fix_csum(f); }
static void m_src_mcast(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[26] = 224; fix_csum(f); }
static void m_src_loop(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[26] = 127; fix_csum(f); }
static void m_src_zero(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; memset(f + 26, 0, 4); fix_csum(f); }
static void m_src_self(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[29] = 2; fix_csum(f); }
static void m_src_bcast(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[29] = 255; fix_csum(f); }
static void m_dst_other(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[33] = 9; fix_csum(f); }
static void m_dst_bcast(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; memset(f, 0xff, 6); memset(f + 30, 0xff, 4); fix_csum(f); }
static void m_dst_subnet_bcast(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[33] = 255; fix_csum(f); }
static void m_frag_mf(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[20] = 0x20; fix_csum(f); }
static void m_frag_off(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[20] = 0x00; f[21] = 0x10; fix_csum(f); }
static void m_padded(uint8_t *f, size_t *l, uint32_t *x) { (void)x; memset(f + *l, 0, 6); *l += 6; }
static void m_eth_other(uint8_t *f, size_t *l, uint32_t *x) { (void)l; (void)x; f[5] = 0x99; }

static const struct ipcase cases[] = {
	{ "valid datagram is delivered", m_none, NULL },
	{ "ethernet padding is trimmed", m_padded, NULL },
	{ "nic-verified checksum is not rechecked", m_nic_good, NULL },
	{ "ttl 1 is accepted (rfc1122 3.2.1.7)", m_ttl1, NULL },
	{ "shorter than a header", m_short, "ip.bad_len" },
	{ "version 6", m_version6, "ip.bad_header" },
	{ "ihl 4", m_ihl4, "ip.bad_header" },
	{ "ihl beyond the frame", m_ihl_beyond, "ip.bad_len" },
	{ "total length beyond the frame", m_totlen_big, "ip.bad_len" },
	{ "total length below ihl", m_totlen_small, "ip.bad_len" },
	{ "bad header checksum", m_bad_csum, "ip.bad_csum" },
	{ "nic says checksum bad", m_nic_bad, "ip.bad_csum" },
	{ "ttl 0", m_ttl0, "ip.bad_header" },
	{ "multicast source", m_src_mcast, "ip.bad_header" },
	{ "loopback source", m_src_loop, "ip.bad_header" },
	{ "zero source", m_src_zero, "ip.bad_header" },
	{ "our own address as source", m_src_self, "ip.bad_header" },
	{ "subnet broadcast source", m_src_bcast, "ip.bad_header" },
	{ "destination another host", m_dst_other, "ip.not_for_us" },
	{ "destination limited broadcast", m_dst_bcast, "ip.not_for_us" },
	{ "destination subnet broadcast", m_dst_subnet_bcast, "ip.not_for_us" },
	{ "fragment with MF", m_frag_mf, "ip.frag_drop" },
	{ "fragment with offset", m_frag_off, "ip.frag_drop" },
	{ "ethernet destination another MAC", m_eth_other, "eth.not_for_us" },
};

static void test_ipcase(void **state)
{
	const struct ipcase *c = *state;
	struct net_stack *s = tu_stack(NULL, T0);
	uint8_t tcp[20] = { 0x9c, 0x40, 0x1f, 0x90 }, f[128];
	size_t len = tu_ip_frame(f, TU_MAC, TU_PEER, TU_IP, NET_IPPROTO_TCP, 64,
				 0x4000, 5, tcp, sizeof(tcp));
	uint32_t rxflags = 0;
	uint64_t total = 0;

	c->mutate(f, &len, &rxflags);
	tu_input(s, f, len, rxflags, T0);
	for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++) {
		uint64_t v = tu_counter(s, drops[i]);

		total += v;
		if (c->counter && !strcmp(c->counter, drops[i]))
			assert_int_equal(v, 1);
	}
	if (c->counter) {
		assert_int_equal(total, 1);
		assert_int_equal(tu_tcp.inputs, 0);
	} else {
		assert_int_equal(total, 0);
		assert_int_equal(tu_tcp.inputs, 1);
		assert_int_equal(tu_tcp.last_len, 20);
		assert_int_equal(tu_tcp.last_src, TU_PEER);
	}
	assert_int_equal(tu_io.n, 0); /* never an ICMP error for these */
	net_stack_destroy(s, T0);
}

/* options are skipped and counted; L4 starts after them */
static void test_options_counted(void **state)
{
	struct net_stack *s = tu_stack(NULL, T0);
	uint8_t tcp[20] = { 1, 2, 3, 4 }, f[128];
	size_t len = tu_ip_frame(f, TU_MAC, TU_PEER, TU_IP, NET_IPPROTO_TCP, 64,
				 0, 8, tcp, sizeof(tcp));

	(void)state;
	tu_input(s, f, len, 0, T0);
	assert_int_equal(tu_counter(s, "ip.options"), 1);
	assert_int_equal(tu_tcp.inputs, 1);
	assert_int_equal(tu_tcp.last_len, 20);
	assert_memory_equal(tu_tcp.last_seg, tcp, 20);
	net_stack_destroy(s, T0);
}

struct unreach_case {
	const char *name;
	uint8_t proto;
	uint8_t code;
};

static const struct unreach_case ucases[] = {
	{ "udp gets port unreachable", NET_IPPROTO_UDP, 3 },
	{ "unknown protocol gets protocol unreachable", 47, 2 },
};

/* ICMP unreachable quoting the IP header and the start of its payload */
static void test_unreach(void **state)
{
	const struct unreach_case *u = *state;
	struct net_stack *s = tu_stack(NULL, T0);
	uint8_t l4[30], f[128], arp[60];
	static const uint8_t z[6];
	size_t len;
	const uint8_t *o;

	for (size_t i = 0; i < sizeof(l4); i++)
		l4[i] = (uint8_t)i;
	len = tu_ip_frame(f, TU_MAC, TU_PEER, TU_IP, u->proto, 64, 0x4000, 5,
			  l4, sizeof(l4));
	tu_input(s, arp, tu_arp_frame(arp, TU_BCAST, 1, TU_PEER_MAC, TU_PEER, z,
				      TU_IP), 0, T0);
	tu_io.n = 0;
	tu_input(s, f, len, 0, T0);
	assert_int_equal(tu_counter(s, "ip.unknown_proto"), 1);
	assert_int_equal(tu_counter(s, "icmp.tx_unreach"), 1);
	assert_int_equal(tu_io.n, 1);
	o = tu_io.f[0].data;
	assert_int_equal(tu_io.f[0].len, 14 + 20 + 8 + 20 + sizeof(l4));
	assert_int_equal(o[14 + 9], NET_IPPROTO_ICMP);
	assert_int_equal(tu_rd32(o + 14 + 16), TU_PEER);
	assert_int_equal(o[34], 3);
	assert_int_equal(o[35], u->code);
	assert_int_equal(net_csum_fold(net_csum_partial(o + 34, 8 + 20 + 30, 0)), 0);
	assert_memory_equal(o + 42, f + 14, 20 + sizeof(l4));
	net_stack_destroy(s, T0);
}

/* ipv4_send: header fields, software checksums, ip_id increments */
static void test_send_software_csum(void **state)
{
	struct net_stack *s = tu_stack(NULL, T0);
	static const uint8_t z[6];
	uint8_t arp[60];
	struct net_txbuf tb;
	uint16_t id0;

	(void)state;
	tu_input(s, arp, tu_arp_frame(arp, TU_BCAST, 1, TU_PEER_MAC, TU_PEER, z,
				      TU_IP), 0, T0);
	tu_io.n = 0;
	for (int k = 0; k < 2; k++) {
		assert_int_equal(net_tx_alloc(s, &tb), 0);
		for (int i = 0; i < 33; i++)
			tb.data[NET_L4_OFF + i] = (uint8_t)(i * 7 + k);
		tb.data[NET_L4_OFF + 16] = tb.data[NET_L4_OFF + 17] = 0;
		assert_int_equal(ipv4_send(s, &tb, TU_PEER, NET_IPPROTO_TCP, 33,
					   0x10), 0);
	}
	assert_int_equal(tu_io.n, 2);
	for (int k = 0; k < 2; k++) {
		const uint8_t *o = tu_io.f[k].data, *ip = o + 14;

		assert_memory_equal(o, TU_PEER_MAC, 6);
		assert_memory_equal(o + 6, TU_MAC, 6);
		assert_int_equal(tu_rd16(o + 12), 0x0800);
		assert_int_equal(ip[0], 0x45);
		assert_int_equal(ip[1], 0x10);
		assert_int_equal(tu_rd16(ip + 2), 53);
		assert_int_equal(tu_rd16(ip + 6), 0x4000); /* DF */
		assert_int_equal(ip[8], 64);
		assert_int_equal(tu_rd32(ip + 12), TU_IP);
		assert_int_equal(tu_rd32(ip + 16), TU_PEER);
		assert_int_equal(net_csum_fold(net_csum_partial(ip, 20, 0)), 0);
		assert_int_equal(net_csum_fold(net_csum_partial(ip + 20, 33,
			net_csum_pseudo(TU_IP, TU_PEER, 6, 33))), 0);
		assert_int_equal(tu_io.f[k].txflags, 0);
	}
	id0 = tu_rd16(tu_io.f[0].data + 18);
	assert_int_equal(tu_rd16(tu_io.f[1].data + 18), (uint16_t)(id0 + 1));
	net_stack_destroy(s, T0);
}

/* offload: IP field left 0, TCP field = folded pseudo-header sum */
static void test_send_offload(void **state)
{
	struct net_config c;
	struct net_stack *s;
	static const uint8_t z[6];
	uint8_t arp[60];
	struct net_txbuf tb;
	uint16_t want, got;
	const uint8_t *ip;

	(void)state;
	tu_config(&c);
	c.tx_ip_csum_offload = true;
	c.tx_tcp_csum_offload = true;
	s = tu_stack(&c, T0);
	tu_input(s, arp, tu_arp_frame(arp, TU_BCAST, 1, TU_PEER_MAC, TU_PEER, z,
				      TU_IP), 0, T0);
	tu_io.n = 0;
	assert_int_equal(net_tx_alloc(s, &tb), 0);
	memset(tb.data + NET_L4_OFF, 0x5a, 40);
	tb.data[NET_L4_OFF + 16] = tb.data[NET_L4_OFF + 17] = 0;
	assert_int_equal(ipv4_send(s, &tb, TU_PEER, NET_IPPROTO_TCP, 40, 0), 0);
	assert_int_equal(tu_io.f[0].txflags, NET_TXF_IP_CSUM | NET_TXF_TCP_CSUM);
	ip = tu_io.f[0].data + 14;
	assert_int_equal(tu_rd16(ip + 10), 0);
	want = (uint16_t)~net_csum_fold(net_csum_pseudo(TU_IP, TU_PEER, 6, 40));
	memcpy(&got, ip + 20 + 16, 2);
	assert_int_equal(got, want);
	/* a NIC completing the sum over the segment gets a valid checksum */
	{
		uint8_t seg[40];
		uint16_t cs;

		memcpy(seg, ip + 20, 40);
		seg[16] = seg[17] = 0;
		cs = net_csum_fold(net_csum_partial(seg, 40,
			net_csum_pseudo(TU_IP, TU_PEER, 6, 40)));
		assert_int_equal(cs, net_csum_fold(net_csum_partial(ip + 20, 40, 0)));
	}
	net_stack_destroy(s, T0);
}

/* ipv4_send refuses more than the MTU; net_tx_alloc failures counted */
static void test_send_errors(void **state)
{
	struct net_stack *s = tu_stack(NULL, T0);
	struct net_txbuf tb;

	(void)state;
	assert_int_equal(net_tx_alloc(s, &tb), 0);
	assert_int_equal(ipv4_send(s, &tb, TU_PEER, NET_IPPROTO_TCP, 1481, 0),
			 -NET_EINVAL);
	assert_int_equal(tu_counter(s, "ip.tx_bad_len"), 1);
	assert_int_equal(tu_io.outstanding, 0);
	tu_io.fail_alloc = 1;
	assert_int_equal(net_tx_alloc(s, &tb), -NET_ENOMEM);
	assert_int_equal(tu_counter(s, "l3.tx_alloc_fail"), 1);
	net_stack_destroy(s, T0);
}

int main(void)
{
	struct CMUnitTest t[64];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		t[n++] = (struct CMUnitTest){ .name = cases[i].name,
			.test_func = test_ipcase,
			.initial_state = (void *)&cases[i] };
	for (size_t i = 0; i < sizeof(ucases) / sizeof(ucases[0]); i++)
		t[n++] = (struct CMUnitTest){ .name = ucases[i].name,
			.test_func = test_unreach,
			.initial_state = (void *)&ucases[i] };
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_options_counted);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_send_software_csum);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_send_offload);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_send_errors);
	return _cmocka_run_group_tests("ipv4", t, n, NULL, NULL);
}
