/*
 * tcpscript_io.c - the runner's side of the stack: a fake net_io that
 * captures every frame (checking its checksums), the flows and sockets
 * the script refers to, and the virtual clock.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpscript_rt.h"

/* --- fake net_io -------------------------------------------------------- */

static int io_alloc(void *o, struct net_txbuf *tb)
{
	struct rt *r = o;
	uint16_t cap = (uint16_t)(r->cfg.mtu + NET_ETH_HLEN);

	tb->data = malloc(cap);
	if (!tb->data)
		return -NET_ENOMEM;
	tb->handle = tb->data;
	tb->cap = cap;
	r->tx_outstanding++;
	return 0;
}

static void io_free(void *o, struct net_txbuf *tb)
{
	struct rt *r = o;

	free(tb->handle);
	tb->handle = tb->data = NULL;
	r->tx_outstanding--;
}

/* io_check_csums - finish offloaded checksums like a NIC would, and verify
 * that every IPv4/TCP checksum the stack produced is right */
static void io_check_csums(struct rt *r, uint8_t *f, uint16_t len,
			   uint32_t txflags, uint8_t l2, uint8_t l3)
{
	uint8_t *ip = f + NET_ETH_HLEN, *th;
	unsigned ihl, tot;

	if (len < NET_ETH_HLEN + 20 || l2 != NET_ETH_HLEN) {
		rt_fail(r, "stack emitted a frame with l2_len %u, len %u", l2, len);
		return;
	}
	ihl = (ip[0] & 15u) * 4;
	tot = (unsigned)(ip[2] << 8 | ip[3]);
	if (l3 != ihl || NET_ETH_HLEN + tot != len || tot < ihl) {
		rt_fail(r, "stack emitted IPv4 frame: l3_len %u, IHL %u, total "
		     "length %u, frame %u", l3, ihl, tot, len);
		return;
	}
	if (txflags & NET_TXF_IP_CSUM) {
		uint16_t c;

		ip[10] = ip[11] = 0;
		c = net_csum_fold(net_csum_partial(ip, ihl, 0));
		memcpy(ip + 10, &c, 2);
	} else if (net_csum_fold(net_csum_partial(ip, ihl, 0)) != 0) {
		rt_fail(r, "stack emitted a bad IPv4 header checksum");
		return;
	}
	if (ip[9] != NET_IPPROTO_TCP && ip[9] != NET_IPPROTO_ICMP)
		return;
	th = ip + ihl;
	uint32_t src = (uint32_t)ip[12] << 24 | (uint32_t)ip[13] << 16 |
		       (uint32_t)ip[14] << 8 | ip[15];
	uint32_t dst = (uint32_t)ip[16] << 24 | (uint32_t)ip[17] << 16 |
		       (uint32_t)ip[18] << 8 | ip[19];
	uint16_t l4len = (uint16_t)(tot - ihl);

	if (ip[9] == NET_IPPROTO_ICMP) {
		if (net_csum_fold(net_csum_partial(th, l4len, 0)) != 0)
			rt_fail(r, "stack emitted a bad ICMP checksum");
		return;
	}
	if (l4len < 20) {
		rt_fail(r, "stack emitted a TCP segment of %u bytes", l4len);
		return;
	}
	uint32_t ph = net_csum_pseudo(src, dst, NET_IPPROTO_TCP, l4len);

	if (txflags & NET_TXF_TCP_CSUM) {
		uint16_t want = (uint16_t)~net_csum_fold(ph), got, c;

		memcpy(&got, th + 16, 2);
		if (got != want) {
			rt_fail(r, "TCP checksum offload: field holds 0x%04x, "
			     "expected the pseudo-header sum 0x%04x", got, want);
			return;
		}
		th[16] = th[17] = 0;
		c = net_csum_fold(net_csum_partial(th, l4len, ph));
		memcpy(th + 16, &c, 2);
	} else if (net_csum_fold(net_csum_partial(th, l4len, ph)) != 0) {
		rt_fail(r, "stack emitted a bad TCP checksum");
	}
}

/* io_send - capture one frame; ARP requests for the peer get answered */
static void io_send(void *o, struct net_txbuf *tb, uint16_t len,
		    uint32_t txflags, uint8_t l2_len, uint8_t l3_len)
{
	struct rt *r = o;
	uint8_t *f = tb->data;

	if (r->destroying || len < NET_ETH_HLEN) {
		io_free(o, tb);
		return;
	}
	if (f[12] == 0x08 && f[13] == 0x06) {
		/* ARP: answer requests for the peer, ignore the rest */
		if (len >= NET_ETH_HLEN + 28 && f[21] == 1 &&
		    memcmp(f + 38, "\xc0\x00\x02\x01", 4) == 0)
			r->arp_replies++;
		io_free(o, tb);
		return;
	}
	if (f[12] != 0x08 || f[13] != 0x00) {
		rt_fail(r, "stack emitted ethertype 0x%02x%02x", f[12], f[13]);
		io_free(o, tb);
		return;
	}
	io_check_csums(r, f, len, txflags, l2_len, l3_len);
	if (r->qn == r->qcap) {
		int nc = r->qcap ? r->qcap * 2 : 64;
		struct frame *nq = malloc((size_t)nc * sizeof(*nq));

		if (!nq)
			abort();
		for (int i = 0; i < r->qn; i++)
			nq[i] = r->q[(r->qhead + i) % r->qcap];
		free(r->q);
		r->q = nq;
		r->qcap = nc;
		r->qhead = 0;
	}
	struct frame *fr = &r->q[(r->qhead + r->qn++) % r->qcap];

	fr->data = malloc(len);
	if (!fr->data)
		abort();
	memcpy(fr->data, f, len);
	fr->len = len;
	fr->t = r->now;
	io_free(o, tb);
}

/* io_sport - deterministic source ports for active opens */
static int io_sport(void *o, uint32_t saddr, uint32_t daddr, uint16_t dport,
		    unsigned attempt, uint16_t *sport)
{
	struct rt *r = o;

	(void)saddr;
	(void)daddr;
	(void)dport;
	*sport = (uint16_t)(r->active_port + attempt);
	return 0;
}

/* --- flows and sockets ------------------------------------------------ */

int rt_flow_get(struct rt *r, uint16_t stack_port, uint16_t peer_port)
{
	struct flow *f;

	for (int i = 0; i < r->nflows; i++)
		if (r->flows[i].fc.stack_port == stack_port &&
		    r->flows[i].fc.peer_port == peer_port)
			return i;
	if (r->nflows == MAX_FLOWS) {
		rt_fail(r, "too many flows");
		return 0;
	}
	f = &r->flows[r->nflows];
	memset(f, 0, sizeof(*f));
	f->fc.stack_ip = STACK_IP;
	f->fc.peer_ip = PEER_IP;
	memcpy(f->fc.stack_mac, r->stack_mac, 6);
	memcpy(f->fc.peer_mac, r->peer_mac, 6);
	f->fc.stack_port = stack_port;
	f->fc.peer_port = peer_port;
	f->fc.peer_isn = r->peer_isn;
	return r->nflows++;
}

/* rt_cur_flow - the flow '<'/'>' lines use without ":PORT" */
int rt_cur_flow(struct rt *r, int peer_port)
{
	uint16_t sp = r->def_stack_port;

	if (r->cur_sock >= 0) {
		int fi = r->socks[r->cur_sock].flow;

		if (peer_port < 0)
			return fi;
		sp = r->flows[fi].fc.stack_port;
	}
	return rt_flow_get(r, sp, peer_port < 0 ? r->def_peer_port :
			(uint16_t)peer_port);
}

void rt_buf_put(uint8_t **b, size_t *len, size_t *cap, size_t off,
		const uint8_t *src, size_t n)
{
	if (off + n > *cap) {
		size_t nc = *cap ? *cap : 4096;

		while (nc < off + n)
			nc *= 2;
		*b = realloc(*b, nc);
		if (!*b)
			abort();
		*cap = nc;
	}
	if (off > *len) /* a hole: fill with the pattern */
		for (size_t i = *len; i < off; i++)
			(*b)[i] = ts_pattern(i);
	memcpy(*b + off, src, n);
	if (off + n > *len)
		*len = off + n;
}

static int sock_find(struct rt *r, net_sock_t h)
{
	for (int i = r->nsocks - 1; i >= 0; i--)
		if (r->socks[i].h == h && !(r->socks[i].pending & NET_EV_CLOSED))
			return i;
	return -1;
}

/* rt_sock_add - track a socket the stack handed us; flow from sockinfo */
int rt_sock_add(struct rt *r, net_sock_t h, uint16_t lport_hint,
		uint16_t rport_hint)
{
	struct net_sockinfo si;
	struct sock *k;

	if (r->nsocks == MAX_SOCKS) {
		rt_fail(r, "too many sockets");
		return 0;
	}
	k = &r->socks[r->nsocks];
	memset(k, 0, sizeof(*k));
	k->h = h;
	if (net_sockinfo(r->s, h, &si) == 0 && si.lport)
		k->flow = rt_flow_get(r, si.lport, si.rport);
	else
		k->flow = rt_flow_get(r, lport_hint, rport_hint);
	return r->nsocks++;
}

/* drain_events - fold the stack's events into the sockets' pending masks */
static void drain_events(struct rt *r)
{
	struct net_event ev[64];
	unsigned n;

	while ((n = net_events(r->s, ev, 64)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			int k = sock_find(r, ev[i].sock);

			if (r->verbose)
				printf("    event sock %08x events 0x%02x "
				       "error %d\n", ev[i].sock, ev[i].events,
				       ev[i].error);
			if (k < 0) {
				k = rt_sock_add(r, ev[i].sock, ev[i].lport,
					     r->def_peer_port);
				r->socks[k].accepted =
					(ev[i].events & NET_EV_ACCEPTED) != 0;
			}
			r->socks[k].pending |= ev[i].events;
			if (ev[i].events & NET_EV_CLOSED)
				r->socks[k].error = ev[i].error;
		}
		if (n < 64)
			break;
	}
}

/* rt_after_call - everything that follows any call into the stack: answer
 * ARP, collect events, check the TCP invariants */
void rt_after_call(struct rt *r)
{
	char why[256];

	while (r->arp_replies > 0 && !r->failed) {
		uint8_t f[60];
		struct net_rx rx = { .data = f, .len = 60, .flags = 0 };

		r->arp_replies--;
		memset(f, 0, sizeof(f));
		memcpy(f, r->stack_mac, 6);
		memcpy(f + 6, r->peer_mac, 6);
		f[12] = 0x08; f[13] = 0x06;
		f[14] = 0; f[15] = 1; f[16] = 0x08; f[17] = 0; f[18] = 6;
		f[19] = 4; f[20] = 0; f[21] = 2;
		memcpy(f + 22, r->peer_mac, 6);
		memcpy(f + 28, "\xc0\x00\x02\x01", 4);
		memcpy(f + 32, r->stack_mac, 6);
		memcpy(f + 38, "\xc0\x00\x02\x02", 4);
		net_input_burst(r->s, &rx, 1, r->now);
	}
	drain_events(r);
	why[0] = '\0';
	if (tcp_check(r->s, why, sizeof(why)) != 0)
		rt_fail(r, "tcp_check: %s", why);
}

void rt_poll_at(struct rt *r, uint64_t t)
{
	if (t > r->now)
		r->now = t;
	net_poll(r->s, r->now);
	rt_after_call(r);
}

/* rt_advance - move the clock to t, polling at every deadline on the way;
 * with stop_on_frame, return as soon as a frame is captured */
void rt_advance(struct rt *r, uint64_t t, bool stop_on_frame)
{
	uint64_t last = UINT64_MAX;
	int same = 0;

	while (!r->failed) {
		uint64_t d = net_next_deadline(r->s);

		if (stop_on_frame && r->qn > 0)
			return;
		if (d > t)
			break;
		if (d < r->now)
			d = r->now;
		if (d == last && ++same > LIVELOCK_MAX) {
			rt_fail(r, "timer livelock: deadline stays at %.6f after "
			     "net_poll", rt_secs(r, d));
			return;
		}
		if (d != last)
			same = 0;
		last = d;
		rt_poll_at(r, d);
	}
	if (t > r->now)
		r->now = t;
}

/* rt_pop_frame - the oldest captured frame (caller frees data) */
struct frame rt_pop_frame(struct rt *r)
{
	struct frame f = r->q[r->qhead];

	r->qhead = (r->qhead + 1) % r->qcap;
	r->qn--;
	return f;
}

/* rt_describe - text of a captured frame relative to its flow, if known */
void rt_describe(struct rt *r, const struct frame *f, char *out, size_t n)
{
	struct ts_frame fr;
	char why[128];

	if (ts_decode(f->data, f->len, &fr, why, sizeof(why)) < 0) {
		snprintf(out, n, "%s", why);
		return;
	}
	for (int i = 0; i < r->nflows; i++)
		if (r->flows[i].fc.stack_port == fr.sport &&
		    r->flows[i].fc.peer_port == fr.dport) {
			ts_format(&r->flows[i].fc, &fr, out, n);
			return;
		}
	struct ts_flowctx fc = { .stack_port = fr.sport, .peer_port = fr.dport };

	ts_format(&fc, &fr, out, n);
	snprintf(out + strlen(out), n - strlen(out), " (ports %u>%u, raw)",
		 fr.sport, fr.dport);
}

/* rt_check_unexpected - frames older than t - tol that no '>' line took */
void rt_check_unexpected(struct rt *r, uint64_t t, uint64_t tol, bool all)
{
	char d[512];

	if (r->failed || r->qn == 0)
		return;
	const struct frame *f = &r->q[r->qhead];

	if (all || f->t + tol < t) {
		rt_describe(r, f, d, sizeof(d));
		rt_fail(r, "unexpected segment at %.6f: %s", rt_secs(r, f->t), d);
	}
}

const struct net_io rt_fake_io = {
	.tx_alloc = io_alloc, .tx_send = io_send, .tx_free = io_free,
	.pick_sport = io_sport,
};
