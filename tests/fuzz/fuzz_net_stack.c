/*
 * fuzz_net_stack.c - libFuzzer target: one net_stack per input, driven by
 * the input bytes read as a program of operations.
 *
 * Input: byte 0 picks a configuration (offloads, pool and buffer sizes,
 * MTU, whether the simulated peer answers ARP). Then, until the bytes run
 * out, one op byte plus its arguments:
 *   SEG    a mostly well-formed TCP segment to us, fields fuzzed, sequence
 *          numbers near what the stack last sent (so handshakes complete)
 *   REPLY  an exact ACK/data/FIN/RST answer to the last segment we saw
 *   RAW    an Ethernet frame of fuzz bytes (IPv4, ARP or other type)
 *   IP     an IPv4 header with fuzzed fields and a fuzz payload
 *   ICMP   an ICMP error quoting the last segment the stack sent
 *   ARP    an ARP request/reply with fuzzed addresses
 *   CLOCK  a forward jump of the virtual clock (us .. days), then poll
 *   POLL   net_poll at every deadline up to now
 *   LISTEN/CONNECT/SEND/RECV/CLOSE/ABORT/SHUTDOWN on live (or stale)
 *          handles taken from the stack's events
 *
 * After every op: tcp_check() must pass; counters are consistent
 * (net_counters count, l3 counters never decrease, rx_frames equals the
 * frames injected, gauges within their pools); the only tx buffers the
 * stack holds are the ARP-pending ones; every emitted frame has our
 * addresses and correct IPv4/TCP/ICMP checksums (offloaded ones completed
 * as a NIC would). At the end the stack is destroyed and every tx buffer
 * must be back (ASan reports any other leak). Violations abort().
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_types.h"

#define STACK_IP 0x0a000002u
#define PEER_IP  0x0a000005u
#define GW_IP    0x0a000001u
#define MAX_H    64
#define T0       1000000ull

static const uint8_t stack_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static const uint8_t peer_mac[6] = { 0x02, 0, 0, 0, 0, 0x05 };

struct rd {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct rd *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

static uint16_t u16(struct rd *r)
{
	return (uint16_t)(u8(r) << 8 | u8(r));
}

static uint32_t u32(struct rd *r)
{
	return (uint32_t)u16(r) << 16 | u16(r);
}

/* what we remember of the last TCP segment the stack sent */
struct lastseg {
	bool valid;
	uint16_t sport, dport;
	uint32_t seq, ack, end;   /* end = seq + len + SYN + FIN */
	uint8_t flags;
	bool has_ts;
	uint32_t ts_val;          /* its TS val, echoed by op_reply */
	uint8_t ipq[60];          /* its IP header + 40 bytes, for ICMP */
	uint16_t ipq_len;
};

struct fz {
	struct net_stack *s;
	struct net_config cfg;
	uint64_t now;
	long outstanding;          /* tx buffers handed out, not returned */
	uint64_t injected;         /* frames given to net_input_burst */
	bool auto_arp, destroying;
	int arp_asks;              /* ARP requests for the peer/gw to answer */
	struct lastseg last;
	net_sock_t h[MAX_H];
	int nh;
	net_sock_t stale;
	uint32_t peer_nxt[4];      /* our next sequence per peer port */
	unsigned ncnt;
	struct net_counter *c0, *c1;
	uint16_t ip_id;
};

#define CHECK(cond, ...) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_net_stack: invariant failed: " __VA_ARGS__); \
	fprintf(stderr, "\n"); abort(); } } while (0)

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}
static void wr16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* --- fake io ------------------------------------------------------------ */

static int io_alloc(void *o, struct net_txbuf *tb)
{
	struct fz *z = o;
	uint16_t cap = (uint16_t)(z->cfg.mtu + NET_ETH_HLEN);

	tb->data = malloc(cap);
	if (!tb->data)
		return -NET_ENOMEM;
	tb->handle = tb->data;
	tb->cap = cap;
	z->outstanding++;
	return 0;
}

static void io_free(void *o, struct net_txbuf *tb)
{
	struct fz *z = o;

	CHECK(tb->handle == tb->data, "tx_free of a foreign buffer");
	free(tb->handle);
	z->outstanding--;
}

/* check_frame - every emitted frame is well-formed with good checksums */
static void check_frame(struct fz *z, uint8_t *f, uint16_t len,
			uint32_t txflags, uint8_t l2, uint8_t l3)
{
	uint8_t *ip = f + NET_ETH_HLEN, *l4;
	unsigned ihl, tot;
	uint16_t l4len, c;

	CHECK(len >= 42 && len <= z->cfg.mtu + NET_ETH_HLEN, "frame length %u", len);
	CHECK(memcmp(f + 6, stack_mac, 6) == 0, "source MAC not ours");
	CHECK(l2 == NET_ETH_HLEN, "l2_len %u", l2);
	if (rd16(f + 12) == 0x0806) {
		CHECK(len >= 42 && rd16(f + 20) >= 1 && rd16(f + 20) <= 2,
		      "bad ARP out");
		if (rd16(f + 20) == 1 && (rd32(f + 38) == PEER_IP ||
					  rd32(f + 38) == GW_IP))
			z->arp_asks++;
		return;
	}
	CHECK(rd16(f + 12) == 0x0800, "ethertype 0x%04x out", rd16(f + 12));
	CHECK(!(f[0] & 1), "IPv4 to a group MAC");
	ihl = (ip[0] & 15u) * 4;
	tot = rd16(ip + 2);
	CHECK(ip[0] == 0x45 && l3 == 20, "IPv4 header 0x%02x l3 %u", ip[0], l3);
	CHECK(tot + NET_ETH_HLEN == len, "IP total length %u vs frame %u", tot, len);
	CHECK(rd32(ip + 12) == STACK_IP, "source IP not ours");
	CHECK(ip[8] > 0, "TTL 0 sent");
	if (txflags & NET_TXF_IP_CSUM) {
		CHECK(z->cfg.tx_ip_csum_offload, "IP offload flag unasked");
		ip[10] = ip[11] = 0;
		c = net_csum_fold(net_csum_partial(ip, ihl, 0));
		memcpy(ip + 10, &c, 2);
	}
	CHECK(net_csum_fold(net_csum_partial(ip, ihl, 0)) == 0, "IP checksum");
	l4 = ip + ihl;
	l4len = (uint16_t)(tot - ihl);
	if (ip[9] == NET_IPPROTO_ICMP) {
		CHECK(net_csum_fold(net_csum_partial(l4, l4len, 0)) == 0,
		      "ICMP checksum");
		return;
	}
	CHECK(ip[9] == NET_IPPROTO_TCP, "IP protocol %u sent", ip[9]);
	CHECK(l4len >= 20 && (l4[12] >> 4) * 4u >= 20 &&
	      (l4[12] >> 4) * 4u <= l4len, "TCP header length");
	uint32_t ph = net_csum_pseudo(STACK_IP, rd32(ip + 16), 6, l4len);

	if (txflags & NET_TXF_TCP_CSUM) {
		uint16_t want = (uint16_t)~net_csum_fold(ph), got;

		CHECK(z->cfg.tx_tcp_csum_offload, "TCP offload flag unasked");
		memcpy(&got, l4 + 16, 2);
		CHECK(got == want, "TCP offload pseudo-header sum");
		l4[16] = l4[17] = 0;
		c = net_csum_fold(net_csum_partial(l4, l4len, ph));
		memcpy(l4 + 16, &c, 2);
	}
	CHECK(net_csum_fold(net_csum_partial(l4, l4len, ph)) == 0, "TCP checksum");
	z->last.valid = true;
	z->last.sport = rd16(l4);
	z->last.dport = rd16(l4 + 2);
	z->last.seq = rd32(l4 + 4);
	z->last.ack = rd32(l4 + 8);
	z->last.flags = l4[13];
	z->last.end = z->last.seq + (l4len - (l4[12] >> 4) * 4u) +
		      ((l4[13] & 0x02) ? 1 : 0) + ((l4[13] & 0x01) ? 1 : 0);
	z->last.has_ts = false;
	for (unsigned i = 20; i < (l4[12] >> 4) * 4u;) { /* find TS */
		if (l4[i] == 0)
			break;
		if (l4[i] == 1) {
			i++;
			continue;
		}
		CHECK(i + 1 < (l4[12] >> 4) * 4u && l4[i + 1] >= 2,
		      "malformed TCP option sent");
		if (l4[i] == 8 && l4[i + 1] == 10) {
			z->last.has_ts = true;
			z->last.ts_val = rd32(l4 + i + 2);
		}
		i += l4[i + 1];
	}
	z->last.ipq_len = (uint16_t)(tot < 60 ? tot : 60);
	memcpy(z->last.ipq, ip, z->last.ipq_len);
}

static void io_send(void *o, struct net_txbuf *tb, uint16_t len,
		    uint32_t txflags, uint8_t l2_len, uint8_t l3_len)
{
	struct fz *z = o;

	CHECK(len <= tb->cap, "frame longer than its buffer");
	check_frame(z, tb->data, len, txflags, l2_len, l3_len);
	io_free(o, tb);
}

static int io_sport(void *o, uint32_t saddr, uint32_t daddr, uint16_t dport,
		    unsigned attempt, uint16_t *sport)
{
	(void)o; (void)saddr; (void)daddr; (void)dport;
	if (attempt > 3)
		return -1; /* let the stack pick */
	*sport = (uint16_t)(50000 + attempt);
	return 0;
}

/* --- invariants ---------------------------------------------------------- */

static bool is_gauge(const char *n)
{
	return !strcmp(n, "arp.entries") || !strcmp(n, "arp.pending") ||
	       strncmp(n, "tcp.", 4) == 0; /* TCP mixes gauges in; skip */
}

static uint64_t cval(const struct net_counter *c, unsigned n, const char *name)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(c[i].name, name))
			return c[i].value;
	CHECK(0, "counter %s missing", name);
	return 0;
}

static void check_all(struct fz *z)
{
	char why[256] = "";
	unsigned n;
	struct net_counter *t;

	CHECK(tcp_check(z->s, why, sizeof(why)) == 0, "tcp_check: %s", why);
	n = net_counters(z->s, NULL, 0);
	CHECK(n == z->ncnt, "counter count changed %u -> %u", z->ncnt, n);
	CHECK(net_counters(z->s, z->c1, n) == n, "net_counters short");
	for (unsigned i = 0; i < n; i++) {
		CHECK(z->c1[i].name && z->c1[i].name == z->c0[i].name,
		      "counter %u renamed", i);
		if (!is_gauge(z->c1[i].name))
			CHECK(z->c1[i].value >= z->c0[i].value,
			      "counter %s went down", z->c1[i].name);
	}
	CHECK(cval(z->c1, n, "l3.rx_frames") == z->injected,
	      "l3.rx_frames %llu != injected %llu",
	      (unsigned long long)cval(z->c1, n, "l3.rx_frames"),
	      (unsigned long long)z->injected);
	CHECK(cval(z->c1, n, "arp.pending") <= z->cfg.arp_pending,
	      "arp.pending above its pool");
	CHECK(cval(z->c1, n, "arp.entries") <= z->cfg.arp_entries,
	      "arp.entries above its table");
	CHECK((uint64_t)z->outstanding == cval(z->c1, n, "arp.pending"),
	      "stack holds %ld tx buffers, ARP holds %llu", z->outstanding,
	      (unsigned long long)cval(z->c1, n, "arp.pending"));
	t = z->c0;
	z->c0 = z->c1;
	z->c1 = t;
}

/* --- driving ----------------------------------------------------------------- */

static void drain(struct fz *z)
{
	struct net_event ev[32];
	unsigned n;

	while ((n = net_events(z->s, ev, 32)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			if ((ev[i].events & NET_EV_ACCEPTED) && z->nh < MAX_H)
				z->h[z->nh++] = ev[i].sock;
			if (ev[i].events & NET_EV_CLOSED) {
				CHECK(ev[i].error >= 0 &&
				      ev[i].error <= NET_EHOSTUNREACH,
				      "CLOSED with error %d", ev[i].error);
				for (int k = 0; k < z->nh; k++)
					if (z->h[k] == ev[i].sock) {
						z->stale = z->h[k];
						z->h[k] = z->h[--z->nh];
						break;
					}
			}
		}
	}
}

static void inject(struct fz *z, const uint8_t *f, size_t len, uint32_t flags)
{
	struct net_rx rx = { .data = f, .len = (uint16_t)len, .flags = flags };

	z->injected++;
	CHECK(net_input_burst(z->s, &rx, 1, z->now) == 1, "burst count");
}

static void arp_frame(uint8_t *f, const uint8_t *edst, uint16_t op,
		      const uint8_t *sha, uint32_t spa, uint32_t tpa)
{
	memset(f, 0, 60);
	memcpy(f, edst, 6);
	memcpy(f + 6, sha, 6);
	wr16(f + 12, 0x0806);
	wr16(f + 14, 1);
	wr16(f + 16, 0x0800);
	f[18] = 6;
	f[19] = 4;
	wr16(f + 20, op);
	memcpy(f + 22, sha, 6);
	wr32(f + 28, spa);
	memcpy(f + 32, stack_mac, 6);
	wr32(f + 38, tpa);
}

/* settle - answer ARP like a live peer would, collect events, check */
static void settle(struct fz *z)
{
	uint8_t f[60];

	while (z->arp_asks > 0) {
		z->arp_asks--;
		if (!z->auto_arp)
			continue;
		arp_frame(f, stack_mac, 2, peer_mac, PEER_IP, STACK_IP);
		inject(z, f, 60, 0);
		arp_frame(f, stack_mac, 2, peer_mac, GW_IP, STACK_IP);
		inject(z, f, 60, 0);
	}
	drain(z);
	check_all(z);
}

/* poll_now - net_poll at the current time; a timer may be armed for
 * "now" by the output pass, but a few polls must clear everything due
 * (otherwise a glue sleeping until the deadline would spin) */
static void poll_now(struct fz *z)
{
	int polls = 0;

	do {
		net_poll(z->s, z->now);
		settle(z);
	} while (net_next_deadline(z->s) <= z->now && ++polls < 3);
	/* known exception: TCP keeps output pending (deadline = now) while
	 * ipv4_send fails because the ARP pending queue is full */
	if (cval(z->c0, z->ncnt, "arp.pending") >= z->cfg.arp_pending)
		return;
	CHECK(net_next_deadline(z->s) > z->now,
	      "deadline %llu still not after now %llu after 3 net_polls",
	      (unsigned long long)net_next_deadline(z->s),
	      (unsigned long long)z->now);
}

/* ip_tcp_frame - Ethernet+IPv4+TCP from the peer; returns frame length */
static size_t ip_tcp_frame(struct fz *z, uint8_t *f, uint16_t sport,
			   uint16_t dport, uint32_t seq, uint32_t ack,
			   uint8_t flags, uint16_t win, const uint8_t *opt,
			   unsigned optlen, unsigned paylen, bool badcsum)
{
	uint8_t *ip = f + 14, *th = ip + 20;
	unsigned tl = 20 + optlen + paylen;
	uint16_t c;

	memcpy(f, stack_mac, 6);
	memcpy(f + 6, peer_mac, 6);
	wr16(f + 12, 0x0800);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	wr16(ip + 2, 20 + tl);
	wr16(ip + 4, z->ip_id++);
	ip[8] = 64;
	ip[9] = 6;
	wr32(ip + 12, PEER_IP);
	wr32(ip + 16, STACK_IP);
	c = net_csum_fold(net_csum_partial(ip, 20, 0));
	memcpy(ip + 10, &c, 2);
	wr16(th, sport);
	wr16(th + 2, dport);
	wr32(th + 4, seq);
	wr32(th + 8, ack);
	th[12] = (uint8_t)(((20 + optlen) / 4) << 4);
	th[13] = flags;
	wr16(th + 14, win);
	th[16] = th[17] = th[18] = th[19] = 0;
	memcpy(th + 20, opt, optlen);
	for (unsigned i = 0; i < paylen; i++)
		th[20 + optlen + i] = (uint8_t)('a' + i % 26);
	c = net_csum_fold(net_csum_partial(th, tl,
		net_csum_pseudo(PEER_IP, STACK_IP, 6, (uint16_t)tl)));
	if (badcsum)
		c ^= 0x1111;
	memcpy(th + 16, &c, 2);
	return 14 + 20 + tl;
}

static const uint16_t lports[4] = { 80, 25, 7, 50000 };

/* op_seg - a TCP segment with fuzzed fields near the live sequence space */
static void op_seg(struct fz *z, struct rd *r)
{
	static uint8_t f[1600];
	uint8_t a = u8(r), flags = u8(r), sm = u8(r), opt[40];
	unsigned pi = a & 3, optlen = 0, paylen;
	uint16_t sport = (uint16_t)(40000 + pi);
	uint16_t dport = (a & 0x30) == 0x30 ? u16(r) : lports[(a >> 4) & 3];
	uint32_t seq, ack;
	uint16_t win = u16(r);

	if (sm & 0x80)
		z->peer_nxt[pi] = u32(r);
	seq = z->peer_nxt[pi] + (uint32_t)((int)(sm & 0x1f) - 8);
	ack = (sm & 0x40) ? u32(r) : (z->last.valid ? z->last.end : 0) +
	      (uint32_t)((int)(u8(r) % 4) - 1);
	if (a & 0x40) { /* nice options: MSS, SACK-permitted, TS, wscale */
		static const uint8_t nice[20] = { 2, 4, 5, 0xb4, 4, 2, 8, 10,
			0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7 };

		memcpy(opt, nice, 20);
		optlen = 20;
	} else if (a & 0x80) {
		optlen = (u8(r) % 11) * 4;
		for (unsigned i = 0; i < optlen; i++)
			opt[i] = u8(r);
	}
	paylen = u8(r);
	if (paylen > 200)
		paylen = (paylen - 200) * 24; /* up to 1320 */
	if (paylen + optlen + 40 > z->cfg.mtu)
		paylen = z->cfg.mtu - optlen - 40;
	inject(z, f, ip_tcp_frame(z, f, sport, dport, seq, ack, flags, win,
				  opt, optlen, paylen, (sm & 0x3f) == 0x3f),
	       (a & 0x08) ? NET_RXF_L4_CSUM_GOOD : 0);
	z->peer_nxt[pi] = seq + paylen + ((flags & 2) ? 1 : 0) +
			  ((flags & 1) ? 1 : 0);
	settle(z);
	poll_now(z);
}

/* op_reply - answer the last segment exactly (handshakes, data, FIN) */
static void op_reply(struct fz *z, struct rd *r)
{
	static uint8_t f[1600];
	uint8_t b = u8(r), flags, opt[12];
	unsigned paylen = (u8(r) % 16) * 64, optlen = 0;
	uint32_t seq;
	int pi;

	if (!z->last.valid)
		return;
	pi = z->last.dport >= 40000 && z->last.dport < 40004 ?
	     z->last.dport - 40000 : 0;
	static const uint8_t fl[8] = { 0x10, 0x18, 0x11, 0x12, 0x04, 0x14,
				       0x19, 0x02 };
	flags = fl[b & 7];
	if (flags & 0x04)
		paylen = 0;
	if (paylen + 40 > z->cfg.mtu)
		paylen = z->cfg.mtu - 40;
	seq = (z->last.flags & 0x10) ? z->last.ack : z->peer_nxt[pi];
	if ((z->last.flags & 0x12) == 0x02 && (flags & 0x12) == 0x12)
		seq = z->peer_nxt[pi]; /* SYN-ACK to an active open */
	if (z->last.has_ts) { /* keep timestamps going (RFC 7323) */
		opt[0] = opt[1] = 1;
		opt[2] = 8;
		opt[3] = 10;
		wr32(opt + 4, (uint32_t)(z->now / 1000));
		wr32(opt + 8, z->last.ts_val);
		optlen = 12;
	}
	if (paylen + optlen + 40 > z->cfg.mtu)
		paylen = z->cfg.mtu - optlen - 40;
	inject(z, f, ip_tcp_frame(z, f, z->last.dport, z->last.sport, seq,
				  z->last.end, flags, (uint16_t)(b << 8 | 0xff),
				  opt, optlen, paylen, false), 0);
	z->peer_nxt[pi] = seq + paylen + ((flags & 2) ? 1 : 0) +
			  ((flags & 1) ? 1 : 0);
	settle(z);
	poll_now(z);
}

/* op_ip - an IPv4 datagram with fuzzed header fields */
static void op_ip(struct fz *z, struct rd *r)
{
	uint8_t f[14 + 60 + 64], *ip = f + 14;
	uint8_t a = u8(r), ihl = (uint8_t)(5 + (a & 3) * 3);
	unsigned pl = u8(r) % 64, len;
	uint16_t c;

	memcpy(f, (a & 4) ? (const uint8_t *)"\xff\xff\xff\xff\xff\xff" :
	       stack_mac, 6);
	memcpy(f + 6, peer_mac, 6);
	wr16(f + 12, 0x0800);
	memset(ip, 0, 60);
	ip[0] = (a & 8) ? u8(r) : (uint8_t)(0x40 | ihl);
	ip[1] = u8(r);
	len = ihl * 4u + pl;
	wr16(ip + 2, (a & 16) ? u16(r) : len);
	wr16(ip + 6, (a & 32) ? u16(r) : 0x4000);
	ip[8] = u8(r);
	ip[9] = (a & 64) ? u8(r) : (uint8_t)((a >> 7) ? 6 : 1);
	wr32(ip + 12, (a & 128) ? u32(r) : PEER_IP);
	wr32(ip + 16, (u8(r) & 7) == 0 ? u32(r) : STACK_IP);
	c = net_csum_fold(net_csum_partial(ip, ihl * 4u, 0));
	memcpy(ip + 10, &c, 2);
	for (unsigned i = 0; i < pl; i++)
		ip[ihl * 4u + i] = u8(r);
	inject(z, f, 14 + ihl * 4u + pl, (a & 1) ? NET_RXF_IP_CSUM_GOOD : 0);
	settle(z);
	poll_now(z);
}

/* op_raw - any bytes behind an Ethernet header */
static void op_raw(struct fz *z, struct rd *r)
{
	uint8_t f[600];
	uint8_t a = u8(r);
	unsigned len = u8(r) * 2u + (a & 1);

	if (len > sizeof(f))
		len = sizeof(f);
	for (unsigned i = 0; i < len; i++)
		f[i] = u8(r);
	if (len >= 14) {
		if (a & 2)
			memcpy(f, stack_mac, 6);
		if (a & 4)
			wr16(f + 12, (a & 8) ? 0x0806 : 0x0800);
	}
	inject(z, f, len, a >> 4);
	settle(z);
	poll_now(z);
}

/* op_icmp - an ICMP error quoting the last segment we saw */
static void op_icmp(struct fz *z, struct rd *r)
{
	uint8_t f[14 + 20 + 8 + 60], *ip = f + 14, *ic = ip + 20;
	uint8_t a = u8(r);
	unsigned ql = z->last.valid ? z->last.ipq_len : 0;
	uint16_t c;

	if (a & 0x80 && ql > 20)
		ql = 20 + (a & 0x1f) % (ql - 19);
	memcpy(f, stack_mac, 6);
	memcpy(f + 6, peer_mac, 6);
	wr16(f + 12, 0x0800);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	wr16(ip + 2, 20 + 8 + ql);
	ip[8] = 64;
	ip[9] = 1;
	wr32(ip + 12, PEER_IP);
	wr32(ip + 16, STACK_IP);
	c = net_csum_fold(net_csum_partial(ip, 20, 0));
	memcpy(ip + 10, &c, 2);
	ic[0] = (a & 0x40) ? u8(r) : ((a & 1) ? 11 : 3);
	ic[1] = u8(r) % 16;
	ic[2] = ic[3] = 0;
	wr32(ic + 4, u16(r));
	memcpy(ic + 8, z->last.ipq, ql);
	c = net_csum_fold(net_csum_partial(ic, 8 + ql, 0));
	memcpy(ic + 2, &c, 2);
	inject(z, f, 14 + 20 + 8 + ql, 0);
	settle(z);
	poll_now(z);
}

/* op_arp - requests and replies, some for us, some hostile */
static void op_arp(struct fz *z, struct rd *r)
{
	uint8_t f[60], a = u8(r);
	static const uint32_t ips[4] = { PEER_IP, GW_IP, STACK_IP, 0x0a000063u };
	uint8_t sha[6] = { 0x02, 0, 0, 0, 0, 0x05 };

	if (a & 0x40)
		sha[5] = u8(r);
	arp_frame(f, (a & 0x20) ? stack_mac :
		  (const uint8_t *)"\xff\xff\xff\xff\xff\xff",
		  (uint16_t)(1 + ((a >> 2) & 1)), sha, ips[a & 3],
		  (a & 0x80) ? u32(r) : ips[(a >> 3) & 3]);
	inject(z, f, (a & 0x10) ? 42 + u8(r) % 18 : 60, 0);
	settle(z);
	poll_now(z);
}

/* op_clock - jump forward: microseconds to days */
static void op_clock(struct fz *z, struct rd *r)
{
	uint8_t a = u8(r);
	uint64_t d;

	switch (a & 3) {
	case 0: d = u8(r); break;                          /* us */
	case 1: d = (uint64_t)u16(r) * 1000; break;        /* up to 65 s */
	case 2: d = (uint64_t)u16(r) * 1000000; break;     /* up to 18 h */
	default: d = (uint64_t)u32(r) * 1000000; break;    /* up to 136 y */
	}
	if (a & 4) { /* walk through every deadline up to the target */
		uint64_t target = z->now + d;
		int steps = 0;

		while (steps++ < 64) {
			uint64_t dl = net_next_deadline(z->s);

			if (dl > target)
				break;
			z->now = dl > z->now ? dl : z->now;
			poll_now(z);
		}
		z->now = target;
	} else {
		z->now += d;
	}
	poll_now(z);
}

static net_sock_t pick(struct fz *z, struct rd *r)
{
	uint8_t a = u8(r);

	if ((a & 0xc0) == 0xc0)
		return (a & 1) ? z->stale : (net_sock_t)u32(r);
	if (z->nh == 0)
		return z->stale;
	return z->h[a % z->nh];
}

static void op_app(struct fz *z, struct rd *r, unsigned op)
{
	static uint8_t buf[70000];
	net_sock_t h;
	ssize_t n;
	size_t len;

	switch (op) {
	case 0: { /* listen / unlisten */
		uint8_t a = u8(r);
		uint16_t port = (a & 0x30) == 0x30 ? u16(r) : lports[(a >> 4) & 3];
		int rc = (a & 1) ? net_unlisten(z->s, port) :
				   net_listen(z->s, port, NULL);

		CHECK(rc <= 0 && rc >= -NET_EHOSTUNREACH, "listen rc %d", rc);
		break;
	}
	case 1: { /* connect */
		uint8_t a = u8(r);
		uint32_t dst = (a & 0x80) ? 0xc6336401u : PEER_IP;
		int rc = net_connect(z->s, dst, (uint16_t)(40000 + (a & 3)),
				     NULL, z->now, &h);

		CHECK(rc <= 0 && rc >= -NET_EHOSTUNREACH, "connect rc %d", rc);
		if (rc == 0 && z->nh < MAX_H)
			z->h[z->nh++] = h;
		else if (rc == 0)
			net_abort(z->s, h);
		break;
	}
	case 2: /* send */
		h = pick(z, r);
		len = u16(r) % 20000;
		memset(buf, 'x', len);
		{
			size_t space = net_send_space(z->s, h);

			n = net_send(z->s, h, buf, len);
			CHECK(n < 0 || ((size_t)n <= len && (size_t)n <= space),
			      "send took %zd of %zu (space %zu)", n, len, space);
		}
		break;
	case 3: /* recv, or peek + consume */
		h = pick(z, r);
		len = u16(r);
		if (len & 1) {
			struct net_iov iov[2];

			n = net_recv_peek(z->s, h, iov);
			if (n > 0) {
				CHECK((size_t)n == iov[0].len + iov[1].len,
				      "peek total");
				for (size_t i = 0; i < iov[0].len; i++)
					buf[0] ^= iov[0].base[i];
				CHECK(net_recv_consume(z->s, h, len % (n + 1)) == 0,
				      "consume failed");
			}
		} else {
			n = net_recv(z->s, h, buf, len);
			CHECK(n <= (ssize_t)len, "recv returned %zd > %zu", n, len);
		}
		break;
	default: { /* close, abort or shutdown */
		uint8_t k = u8(r) % 3;

		h = pick(z, r);
		if (k == 0)
			net_close(z->s, h);
		else if (k == 1)
			net_abort(z->s, h);
		else
			net_shutdown(z->s, h);
		break;
	}
	}
	settle(z);
	poll_now(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct net_io io_tmpl = {
		.tx_alloc = io_alloc, .tx_send = io_send, .tx_free = io_free,
		.pick_sport = io_sport,
	};
	struct rd r = { data, size };
	struct fz z;
	struct net_io io = io_tmpl;
	uint8_t cfgb = u8(&r), f[60];
	int ops = 0;

	memset(&z, 0, sizeof(z));
	net_config_defaults(&z.cfg);
	memcpy(z.cfg.mac, stack_mac, 6);
	z.cfg.ip = STACK_IP;
	z.cfg.prefix_len = 24;
	z.cfg.gateway = GW_IP;
	z.cfg.tx_ip_csum_offload = cfgb & 1;
	z.cfg.tx_tcp_csum_offload = (cfgb >> 1) & 1;
	z.auto_arp = !((cfgb >> 2) & 1);
	z.cfg.rcvbuf = z.cfg.sndbuf = (cfgb & 8) ? 2048 : 16384;
	z.cfg.max_conns = (cfgb & 16) ? 4 : 16;
	z.cfg.syn_backlog = (cfgb & 16) ? 2 : 8;
	z.cfg.conn_low_water = (cfgb & 32) ? 2 : 0;
	z.cfg.timewait_max = 8;
	z.cfg.max_listeners = 4;
	z.cfg.arp_entries = 4;
	z.cfg.arp_pending = 8;
	z.cfg.mtu = (cfgb & 64) ? 576 : 1500;
	z.cfg.delack_ms = (cfgb & 128) ? 0 : 40;
	for (int i = 0; i < 32; i++)
		z.cfg.secret[i] = (uint8_t)(i * 13 + 1);
	io.opaque = &z;
	z.now = T0;
	z.s = net_stack_create(&z.cfg, &io, z.now);
	CHECK(z.s != NULL, "net_stack_create failed");
	z.stale = NET_SOCK_INVALID;
	z.ncnt = net_counters(z.s, NULL, 0);
	z.c0 = calloc(z.ncnt, sizeof(*z.c0));
	z.c1 = calloc(z.ncnt, sizeof(*z.c1));
	CHECK(z.c0 && z.c1, "calloc");
	CHECK(net_counters(z.s, z.c0, z.ncnt) == z.ncnt, "net_counters");
	for (unsigned i = 0; i < z.ncnt; i++)
		for (unsigned j = 0; j < i; j++)
			CHECK(strcmp(z.c0[i].name, z.c0[j].name) != 0,
			      "duplicate counter name %s", z.c0[i].name);
	for (int i = 0; i < 4; i++)
		z.peer_nxt[i] = 0x10000000u * (uint32_t)(i + 1);
	/* the peer introduces itself; a listener exists from the start */
	arp_frame(f, (const uint8_t *)"\xff\xff\xff\xff\xff\xff", 1, peer_mac,
		  PEER_IP, STACK_IP);
	inject(&z, f, 60, 0);
	settle(&z);
	CHECK(net_listen(z.s, 80, NULL) == 0, "listen 80");
	settle(&z);

	while (r.n > 0 && ops++ < 2000) {
		uint8_t op = u8(&r);

		switch (op % 16) {
		case 0: case 1: case 2: op_seg(&z, &r); break;
		case 3: case 4: op_reply(&z, &r); break;
		case 5: op_raw(&z, &r); break;
		case 6: op_ip(&z, &r); break;
		case 7: op_icmp(&z, &r); break;
		case 8: op_arp(&z, &r); break;
		case 9: op_clock(&z, &r); break;
		default: op_app(&z, &r, op % 16 - 10u); break;
		}
	}
	if (getenv("FUZZ_NET_TRACE")) { /* seed debugging: what was reached */
		fprintf(stderr, "-- %d ops, %d handles\n", ops, z.nh);
		for (unsigned i = 0; i < z.ncnt; i++)
			if (z.c0[i].value)
				fprintf(stderr, "   %s = %llu\n", z.c0[i].name,
					(unsigned long long)z.c0[i].value);
	}
	z.destroying = true;
	net_stack_destroy(z.s, z.now);
	CHECK(z.outstanding == 0, "%ld tx buffers never returned", z.outstanding);
	free(z.c0);
	free(z.c1);
	return 0;
}
