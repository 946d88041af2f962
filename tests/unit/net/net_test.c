/*
 * net_test.c - fake net_io and fake TCP for the L2/L3 unit tests.
 */
#include <stdlib.h>
#include <string.h>

#include "net_test.h"

struct tu_io tu_io;
struct tu_tcp tu_tcp;

const uint8_t TU_MAC[6] = { 0x02, 0, 0, 0, 0, 0x02 };
const uint8_t TU_PEER_MAC[6] = { 0x02, 0, 0, 0, 0, 0x05 };
const uint8_t TU_BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

uint16_t tu_rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

uint32_t tu_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* --- fake io ------------------------------------------------------------ */

static int io_alloc(void *o, struct net_txbuf *tb)
{
	(void)o;
	if (tu_io.fail_alloc > 0) {
		tu_io.fail_alloc--;
		return -NET_ENOMEM;
	}
	tb->data = malloc(tu_io.cap);
	assert_non_null(tb->data);
	tb->handle = tb->data;
	tb->cap = tu_io.cap;
	tu_io.outstanding++;
	return 0;
}

static void io_free(void *o, struct net_txbuf *tb)
{
	(void)o;
	assert_ptr_equal(tb->handle, tb->data);
	free(tb->handle);
	tu_io.outstanding--;
	tu_io.freed++;
}

static void io_send(void *o, struct net_txbuf *tb, uint16_t len,
		    uint32_t txflags, uint8_t l2_len, uint8_t l3_len)
{
	struct tu_frame *f;

	(void)o;
	assert_true(len <= tb->cap);
	assert_true(tu_io.n < TU_MAX_FRAMES);
	f = &tu_io.f[tu_io.n++];
	memcpy(f->data, tb->data, len);
	f->len = len;
	f->txflags = txflags;
	f->l2_len = l2_len;
	f->l3_len = l3_len;
	free(tb->handle);
	tu_io.outstanding--;
}

/* --- fake TCP -------------------------------------------------------------- */

static int fake_tcp_state;

struct tcp_state *tcp_create(struct net_stack *s)
{
	(void)s;
	return (struct tcp_state *)&fake_tcp_state;
}

void tcp_destroy(struct net_stack *s)
{
	(void)s;
}

void tcp_input(struct net_stack *s, const struct net_ipinfo *ip,
	       const uint8_t *seg, uint16_t len)
{
	(void)s;
	tu_tcp.inputs++;
	tu_tcp.last_src = ip->src;
	tu_tcp.last_len = len;
	memcpy(tu_tcp.last_seg, seg, len < 2048 ? len : 2048);
}

void tcp_icmp_error(struct net_stack *s, uint8_t type, uint8_t code,
		    const uint8_t *inner, uint16_t len)
{
	(void)s;
	tu_tcp.icmp_errors++;
	tu_tcp.err_type = type;
	tu_tcp.err_code = code;
	tu_tcp.err_len = len;
	memcpy(tu_tcp.err_inner, inner, len < 2048 ? len : 2048);
}

void tcp_timers(struct net_stack *s)
{
	(void)s;
	tu_tcp.timers++;
}

void tcp_flush(struct net_stack *s)
{
	(void)s;
	tu_tcp.flushes++;
}

uint64_t tcp_next_deadline(const struct net_stack *s)
{
	(void)s;
	return UINT64_MAX;
}

unsigned tcp_counters(const struct net_stack *s, struct net_counter *out,
		      unsigned max)
{
	(void)s;
	if (!out)
		return 1;
	if (max < 1)
		return 0;
	out[0].name = "tcp.fake";
	out[0].value = 42;
	return 1;
}

int tcp_check(const struct net_stack *s, char *why, size_t n)
{
	(void)s;
	(void)why;
	(void)n;
	return 0;
}

/* --- set-up and builders -------------------------------------------------- */

void tu_config(struct net_config *cfg)
{
	net_config_defaults(cfg);
	memcpy(cfg->mac, TU_MAC, 6);
	cfg->ip = TU_IP;
	cfg->prefix_len = 24;
	cfg->gateway = TU_GW;
	cfg->arp_entries = 8;
	cfg->arp_pending = 4;
	cfg->arp_timeout_ms = 60000;
}

void tu_reset(void)
{
	memset(&tu_io, 0, sizeof(tu_io));
	memset(&tu_tcp, 0, sizeof(tu_tcp));
	tu_io.cap = 1514;
}

struct net_stack *tu_stack(const struct net_config *cfg, uint64_t now)
{
	static const struct net_io io = {
		.tx_alloc = io_alloc, .tx_send = io_send, .tx_free = io_free,
	};
	struct net_config c;

	tu_reset();
	if (!cfg) {
		tu_config(&c);
		cfg = &c;
	}
	return net_stack_create(cfg, &io, now);
}

size_t tu_ip_frame(uint8_t *f, const uint8_t *eth_dst, uint32_t src,
		   uint32_t dst, uint8_t proto, uint8_t ttl, uint16_t frag,
		   unsigned ihl_words, const uint8_t *l4, size_t l4len)
{
	uint8_t *ip = f + 14;
	size_t hl = ihl_words * 4;
	uint16_t c;

	memcpy(f, eth_dst, 6);
	memcpy(f + 6, TU_PEER_MAC, 6);
	wr16(f + 12, 0x0800);
	memset(ip, 0, hl);
	ip[0] = (uint8_t)(0x40 | ihl_words);
	wr16(ip + 2, (uint16_t)(hl + l4len));
	wr16(ip + 4, 0x1234);
	wr16(ip + 6, frag);
	ip[8] = ttl;
	ip[9] = proto;
	wr32(ip + 12, src);
	wr32(ip + 16, dst);
	c = net_csum_fold(net_csum_partial(ip, hl, 0));
	memcpy(ip + 10, &c, 2);
	memcpy(ip + hl, l4, l4len);
	return 14 + hl + l4len;
}

size_t tu_arp_frame(uint8_t *f, const uint8_t *eth_dst, uint16_t op,
		    const uint8_t *sha, uint32_t spa, const uint8_t *tha,
		    uint32_t tpa)
{
	memset(f, 0, 60);
	memcpy(f, eth_dst, 6);
	memcpy(f + 6, sha, 6);
	wr16(f + 12, 0x0806);
	wr16(f + 14, 1);
	wr16(f + 16, 0x0800);
	f[18] = 6;
	f[19] = 4;
	wr16(f + 20, op);
	memcpy(f + 22, sha, 6);
	wr32(f + 28, spa);
	memcpy(f + 32, tha, 6);
	wr32(f + 38, tpa);
	return 60;
}

size_t tu_icmp(uint8_t *out, uint8_t type, uint8_t code, uint32_t rest,
	       const uint8_t *data, size_t dlen)
{
	uint16_t c;

	out[0] = type;
	out[1] = code;
	out[2] = out[3] = 0;
	wr32(out + 4, rest);
	memcpy(out + 8, data, dlen);
	c = net_csum_fold(net_csum_partial(out, 8 + dlen, 0));
	memcpy(out + 2, &c, 2);
	return 8 + dlen;
}

void tu_input(struct net_stack *s, const uint8_t *f, size_t len,
	      uint32_t rxflags, uint64_t now)
{
	struct net_rx rx = { .data = f, .len = (uint16_t)len,
			     .flags = rxflags };

	assert_int_equal(net_input_burst(s, &rx, 1, now), 1);
}

uint64_t tu_counter(const struct net_stack *s, const char *name)
{
	struct net_counter c[128];
	unsigned n = net_counters(s, c, 128);

	for (unsigned i = 0; i < n; i++)
		if (!strcmp(c[i].name, name))
			return c[i].value;
	fail_msg("no counter named %s", name);
	return 0;
}
