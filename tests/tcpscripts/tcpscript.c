/*
 * tcpscript.c - run TCP scenario scripts against the sans-IO stack.
 *
 * Usage: tcpscript [-v] [--expect-fail[=LINE]] SCRIPT...
 *
 * One net_stack per script, driven with a virtual clock and a fake net_io
 * that captures every frame. The remote peer (192.0.2.1, default port
 * 40000) exists only in the script: '<' lines are frames it sends, '>'
 * lines frames the stack must emit next. ARP is answered automatically.
 * Before each line the clock advances to the line's time, calling net_poll
 * at every net_next_deadline on the way; tcp_check() runs after every call
 * into the stack. Format and semantics: docs/tcp-scripts.md.
 *
 * Output: "ok NAME" or "FAIL NAME line N: ..." per script. Exit status 0
 * when every script passed (with --expect-fail: when every script failed,
 * at LINE if given), 1 otherwise, 2 on a syntax or set-up error.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_types.h"
#include "tcpscript.h"

#define T0_US        1000000u          /* script time 0 on the stack clock */
#define PEER_IP      0xc0000201u       /* 192.0.2.1 */
#define STACK_IP     0xc0000202u       /* 192.0.2.2 */
#define MAX_FLOWS    64
#define MAX_SOCKS    256
#define LIVELOCK_MAX 10000

struct flow {
	struct ts_flowctx fc;
	bool isn_locked;          /* stack ISN learned for this connection */
	uint8_t *app_tx;          /* every byte the app sent (stack stream) */
	size_t app_tx_len, app_tx_cap;
	uint8_t *peer_rx;         /* the peer's stream as the script sent it */
	size_t peer_rx_len, peer_rx_cap;
	uint64_t app_read;        /* bytes the app has read */
};

struct sock {
	net_sock_t h;
	int flow;
	uint32_t pending;         /* NET_EV_* not yet expected */
	int error;                /* with NET_EV_CLOSED */
	bool accepted;            /* came from NET_EV_ACCEPTED */
	bool taken;               /* 'accept' returned it */
};

struct frame {
	uint8_t *data;
	uint16_t len;
	uint64_t t;
};

struct rt {
	const char *name;
	bool verbose;
	struct net_config cfg;
	struct net_stack *s;
	bool started, destroying;
	uint64_t now;

	struct frame *q;
	int qhead, qn, qcap;
	int arp_replies;          /* ARP requests for the peer to answer */
	long tx_outstanding;

	struct flow flows[MAX_FLOWS];
	int nflows;
	struct sock socks[MAX_SOCKS];
	int nsocks;
	int cur_sock;             /* -1: none */

	uint16_t def_stack_port, def_peer_port, active_port;
	uint32_t peer_isn;
	uint16_t peer_win;
	uint64_t tol_us;
	uint16_t ip_id;
	uint8_t stack_mac[6], peer_mac[6];

	const struct ts_line *line;  /* line being run */
	bool failed;
	int fail_line;
	char fail[2048];
};

/* fail - record the first failure of the script */
static void fail(struct rt *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fail(struct rt *r, const char *fmt, ...)
{
	va_list ap;

	if (r->failed)
		return;
	r->failed = true;
	r->fail_line = r->line ? r->line->lineno : 0;
	va_start(ap, fmt);
	vsnprintf(r->fail, sizeof(r->fail), fmt, ap);
	va_end(ap);
}

static double secs(const struct rt *r, uint64_t t)
{
	(void)r;
	return (double)(t - T0_US) / 1e6;
}

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
		fail(r, "stack emitted a frame with l2_len %u, len %u", l2, len);
		return;
	}
	ihl = (ip[0] & 15u) * 4;
	tot = (unsigned)(ip[2] << 8 | ip[3]);
	if (l3 != ihl || NET_ETH_HLEN + tot != len || tot < ihl) {
		fail(r, "stack emitted IPv4 frame: l3_len %u, IHL %u, total "
		     "length %u, frame %u", l3, ihl, tot, len);
		return;
	}
	if (txflags & NET_TXF_IP_CSUM) {
		uint16_t c;

		ip[10] = ip[11] = 0;
		c = net_csum_fold(net_csum_partial(ip, ihl, 0));
		memcpy(ip + 10, &c, 2);
	} else if (net_csum_fold(net_csum_partial(ip, ihl, 0)) != 0) {
		fail(r, "stack emitted a bad IPv4 header checksum");
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
			fail(r, "stack emitted a bad ICMP checksum");
		return;
	}
	if (l4len < 20) {
		fail(r, "stack emitted a TCP segment of %u bytes", l4len);
		return;
	}
	uint32_t ph = net_csum_pseudo(src, dst, NET_IPPROTO_TCP, l4len);

	if (txflags & NET_TXF_TCP_CSUM) {
		uint16_t want = (uint16_t)~net_csum_fold(ph), got, c;

		memcpy(&got, th + 16, 2);
		if (got != want) {
			fail(r, "TCP checksum offload: field holds 0x%04x, "
			     "expected the pseudo-header sum 0x%04x", got, want);
			return;
		}
		th[16] = th[17] = 0;
		c = net_csum_fold(net_csum_partial(th, l4len, ph));
		memcpy(th + 16, &c, 2);
	} else if (net_csum_fold(net_csum_partial(th, l4len, ph)) != 0) {
		fail(r, "stack emitted a bad TCP checksum");
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
		fail(r, "stack emitted ethertype 0x%02x%02x", f[12], f[13]);
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

static int flow_get(struct rt *r, uint16_t stack_port, uint16_t peer_port)
{
	struct flow *f;

	for (int i = 0; i < r->nflows; i++)
		if (r->flows[i].fc.stack_port == stack_port &&
		    r->flows[i].fc.peer_port == peer_port)
			return i;
	if (r->nflows == MAX_FLOWS) {
		fail(r, "too many flows");
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

/* cur_flow - the flow '<'/'>' lines use without ":PORT" */
static int cur_flow(struct rt *r, int peer_port)
{
	uint16_t sp = r->def_stack_port;

	if (r->cur_sock >= 0) {
		int fi = r->socks[r->cur_sock].flow;

		if (peer_port < 0)
			return fi;
		sp = r->flows[fi].fc.stack_port;
	}
	return flow_get(r, sp, peer_port < 0 ? r->def_peer_port :
			(uint16_t)peer_port);
}

static void buf_put(uint8_t **b, size_t *len, size_t *cap, size_t off,
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

/* sock_add - track a socket the stack handed us; flow from sockinfo */
static int sock_add(struct rt *r, net_sock_t h, uint16_t lport_hint,
		    uint16_t rport_hint)
{
	struct net_sockinfo si;
	struct sock *k;

	if (r->nsocks == MAX_SOCKS) {
		fail(r, "too many sockets");
		return 0;
	}
	k = &r->socks[r->nsocks];
	memset(k, 0, sizeof(*k));
	k->h = h;
	if (net_sockinfo(r->s, h, &si) == 0 && si.lport)
		k->flow = flow_get(r, si.lport, si.rport);
	else
		k->flow = flow_get(r, lport_hint, rport_hint);
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
				k = sock_add(r, ev[i].sock, ev[i].lport,
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

/* after_call - everything that follows any call into the stack: answer
 * ARP, collect events, check the TCP invariants */
static void after_call(struct rt *r)
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
		fail(r, "tcp_check: %s", why);
}

static void poll_at(struct rt *r, uint64_t t)
{
	if (t > r->now)
		r->now = t;
	net_poll(r->s, r->now);
	after_call(r);
}

/* advance - move the clock to t, polling at every deadline on the way;
 * with stop_on_frame, return as soon as a frame is captured */
static void advance(struct rt *r, uint64_t t, bool stop_on_frame)
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
			fail(r, "timer livelock: deadline stays at %.6f after "
			     "net_poll", secs(r, d));
			return;
		}
		if (d != last)
			same = 0;
		last = d;
		poll_at(r, d);
	}
	if (t > r->now)
		r->now = t;
}

/* pop_frame - the oldest captured frame (caller frees data) */
static struct frame pop_frame(struct rt *r)
{
	struct frame f = r->q[r->qhead];

	r->qhead = (r->qhead + 1) % r->qcap;
	r->qn--;
	return f;
}

/* describe - text of a captured frame relative to its flow, if known */
static void describe(struct rt *r, const struct frame *f, char *out, size_t n)
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

/* check_unexpected - frames older than t - tol that no '>' line took */
static void check_unexpected(struct rt *r, uint64_t t, uint64_t tol, bool all)
{
	char d[512];

	if (r->failed || r->qn == 0)
		return;
	const struct frame *f = &r->q[r->qhead];

	if (all || f->t + tol < t) {
		describe(r, f, d, sizeof(d));
		fail(r, "unexpected segment at %.6f: %s", secs(r, f->t), d);
	}
}

/* --- stack set-up --------------------------------------------------------- */

/* set_config - one "key=value" of a config line */
static int set_config(struct rt *r, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char key[64];
	unsigned long long v;
	char *end;
	struct net_config *c = &r->cfg;

	if (!eq || (size_t)(eq - kv) >= sizeof(key))
		return -1;
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	if (!strcmp(eq + 1, "true") || !strcmp(eq + 1, "on"))
		v = 1;
	else if (!strcmp(eq + 1, "false") || !strcmp(eq + 1, "off"))
		v = 0;
	else {
		errno = 0;
		v = strtoull(eq + 1, &end, 0);
		if (errno || *end || end == eq + 1)
			return -1;
	}
#define K(name, field) if (!strcmp(key, name)) { c->field = v; return 0; }
	if (!strcmp(key, "mss")) {
		c->mtu = (uint16_t)(v + 40);
		return 0;
	}
	K("mtu", mtu) K("rcvbuf", rcvbuf) K("sndbuf", sndbuf)
	K("syn_backlog", syn_backlog) K("conn_low_water", conn_low_water)
	K("max_conns", max_conns) K("timewait_max", timewait_max)
	K("max_listeners", max_listeners) K("arp_entries", arp_entries)
	K("arp_pending", arp_pending) K("msl_ms", msl_ms)
	K("fin_wait2_ms", fin_wait2_ms) K("delack_ms", delack_ms)
	K("rto_min_ms", rto_min_ms) K("rto_max_ms", rto_max_ms)
	K("rto_init_ms", rto_init_ms) K("syn_retries", syn_retries)
	K("data_retries", data_retries) K("arp_timeout_ms", arp_timeout_ms)
	K("tx_ip_csum_offload", tx_ip_csum_offload)
	K("tx_tcp_csum_offload", tx_tcp_csum_offload)
#undef K
	if (!strcmp(key, "peer_isn")) { r->peer_isn = (uint32_t)v; return 0; }
	if (!strcmp(key, "peer_win") && v <= 65535) {
		r->peer_win = (uint16_t)v;
		return 0;
	}
	if (!strcmp(key, "peer_port") && v && v <= 65535) {
		r->def_peer_port = (uint16_t)v;
		return 0;
	}
	if (!strcmp(key, "local_port") && v && v <= 65535) {
		r->def_stack_port = (uint16_t)v;
		return 0;
	}
	if (!strcmp(key, "active_port") && v && v <= 65535) {
		r->active_port = (uint16_t)v;
		return 0;
	}
	if (!strcmp(key, "tolerance_ms")) {
		r->tol_us = v * 1000;
		return 0;
	}
	if (!strcmp(key, "secret")) { /* seed for the 32-byte secret */
		for (int i = 0; i < 32; i++)
			c->secret[i] = (uint8_t)((v >> (8 * (i % 8))) + i);
		return 0;
	}
	return -1;
}

/* start - create the stack and let the peer introduce itself by ARP */
static int start(struct rt *r)
{
	static const struct net_io io_tmpl = {
		.tx_alloc = io_alloc, .tx_send = io_send, .tx_free = io_free,
		.pick_sport = io_sport,
	};
	struct net_io io = io_tmpl;
	uint8_t f[60];
	struct net_rx rx = { .data = f, .len = 60 };

	io.opaque = r;
	r->now = T0_US;
	r->s = net_stack_create(&r->cfg, &io, r->now);
	if (!r->s)
		return -1;
	r->started = true;
	/* who-has 192.0.2.2 tell 192.0.2.1: the stack learns the peer */
	memset(f, 0, sizeof(f));
	memset(f, 0xff, 6);
	memcpy(f + 6, r->peer_mac, 6);
	f[12] = 0x08; f[13] = 0x06;
	f[15] = 1; f[16] = 0x08; f[18] = 6; f[19] = 4; f[21] = 1;
	memcpy(f + 22, r->peer_mac, 6);
	memcpy(f + 28, "\xc0\x00\x02\x01", 4);
	memcpy(f + 38, "\xc0\x00\x02\x02", 4);
	net_input_burst(r->s, &rx, 1, r->now);
	after_call(r);
	poll_at(r, r->now);
	return 0;
}

/* --- '<' and '>' lines ------------------------------------------------ */

static void run_in(struct rt *r, const struct ts_line *l)
{
	struct flow *fl = &r->flows[cur_flow(r, l->seg.peer_port)];
	struct ts_seg sg = l->seg;
	static uint8_t buf[70000];
	struct net_rx rx;
	int n;

	if (!sg.has_win)
		sg.win = r->peer_win;
	if ((sg.flags & (TS_SYN | TS_ACK)) == TS_SYN)
		fl->isn_locked = false; /* peer starts a new connection */
	n = ts_build(&fl->fc, &sg, r->ip_id++, buf, sizeof(buf));
	if (n < 0) {
		fail(r, "cannot build this segment (options > 40 bytes?)");
		return;
	}
	if (sg.len) { /* remember what the peer sent, for recv checks */
		uint32_t seq = sg.abs ? sg.seq : fl->fc.peer_isn + sg.seq;
		uint32_t off = seq - fl->fc.peer_isn +
			       ((sg.flags & TS_SYN) ? 1u : 0u) - 1u;
		const uint8_t *pl = buf + n - sg.len;

		if (off < (64u << 20))
			buf_put(&fl->peer_rx, &fl->peer_rx_len,
				&fl->peer_rx_cap, off, pl, sg.len);
	}
	if (r->verbose)
		printf("%9.6f <  %s\n", secs(r, r->now), l->text);
	rx.data = buf;
	rx.len = (uint16_t)n;
	rx.flags = 0;
	net_input_burst(r->s, &rx, 1, r->now);
	after_call(r);
	poll_at(r, r->now);
}

static void run_out(struct rt *r, const struct ts_line *l, uint64_t t,
		    uint64_t tol)
{
	struct flow *fl = &r->flows[cur_flow(r, l->seg.peer_port)];
	struct ts_frame fr;
	struct frame f;
	char why[256], got[512];

	advance(r, t + tol, true);
	if (r->failed)
		return;
	if (r->qn == 0) {
		fail(r, "expected %s\n    got nothing by %.6f", l->text,
		     secs(r, t + tol));
		return;
	}
	f = pop_frame(r);
	describe(r, &f, got, sizeof(got));
	if (f.t + tol < t) {
		fail(r, "expected %s at %.6f\n    got it early, at %.6f: %s",
		     l->text, secs(r, t), secs(r, f.t), got);
		goto out;
	}
	if (ts_decode(f.data, f.len, &fr, why, sizeof(why)) < 0) {
		fail(r, "expected %s\n    got %s", l->text, why);
		goto out;
	}
	if (memcmp(f.data, r->peer_mac, 6) != 0 ||
	    memcmp(f.data + 6, r->stack_mac, 6) != 0 ||
	    fr.saddr != STACK_IP || fr.daddr != PEER_IP) {
		fail(r, "expected %s\n    got a frame with wrong MAC/IP "
		     "addresses: %s", l->text, got);
		goto out;
	}
	if ((l->seg.flags & TS_SYN) && !fl->isn_locked) {
		fl->fc.stack_isn_known = false; /* new connection: relearn */
		fl->fc.ts_known = false;
	}
	if (ts_match(&fl->fc, &l->seg, &fr, why, sizeof(why)) < 0) {
		describe(r, &f, got, sizeof(got));
		fail(r, "expected %s\n    got      %s\n    (%s)", l->text, got,
		     why);
		goto out;
	}
	if (l->seg.flags & TS_SYN)
		fl->isn_locked = true;
	if (r->verbose) {
		describe(r, &f, got, sizeof(got));
		printf("%9.6f  > %s\n", secs(r, f.t), got);
	}
	if (fr.len && !l->seg.payload) {
		uint32_t off = fr.seq - fl->fc.stack_isn +
			       ((fr.flags & TS_SYN) ? 1u : 0u) - 1u;

		if ((uint64_t)off + fr.len > fl->app_tx_len ||
		    memcmp(fl->app_tx + off, fr.payload, fr.len) != 0)
			fail(r, "expected %s\n    got %s\n    (payload is not "
			     "what the application sent at stream offset %u)",
			     l->text, got, off);
	}
out:
	free(f.data);
}

/* --- application calls ------------------------------------------------ */

static const char *const err_names[] = {
	"OK", "EINVAL", "ENOMEM", "EAGAIN", "EADDRINUSE", "ENOTCONN",
	"ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ECONNABORTED",
	"EHOSTUNREACH",
};
#define N_ERRS (int)(sizeof(err_names) / sizeof(err_names[0]))

/* parse_result - "N" or an error name ("EPIPE", "0"/"OK" too) as a
 * return value (errors negative); -1 on a bad word */
static int parse_result(const char *w, long long *v)
{
	char *end;

	const char *e = strncasecmp(w, "NET_", 4) == 0 ? w + 4 : w;

	for (int i = 0; i < N_ERRS; i++)
		if (!strcasecmp(e, err_names[i])) {
			*v = -i;
			return 0;
		}
	errno = 0;
	*v = strtoll(w, &end, 0);
	return (errno || *end || end == w) ? -1 : 0;
}

static const char *result_name(long long v, char *buf, size_t n)
{
	if (v < 0 && v > -N_ERRS)
		return err_names[-v];
	snprintf(buf, n, "%lld", v);
	return buf;
}

static const struct { const char *name; uint32_t bit; } ev_names[] = {
	{ "ACCEPTED", NET_EV_ACCEPTED }, { "CONNECTED", NET_EV_CONNECTED },
	{ "READABLE", NET_EV_READABLE }, { "WRITABLE", NET_EV_WRITABLE },
	{ "PEER_FIN", NET_EV_PEER_FIN }, { "CLOSED", NET_EV_CLOSED },
};

static uint32_t ev_bit(const char *w)
{
	for (size_t i = 0; i < sizeof(ev_names) / sizeof(ev_names[0]); i++)
		if (!strcasecmp(w, ev_names[i].name))
			return ev_names[i].bit;
	return 0;
}

static struct sock *cur(struct rt *r)
{
	if (r->cur_sock < 0) {
		fail(r, "no current socket (use accept/connect first)");
		return NULL;
	}
	return &r->socks[r->cur_sock];
}

/* check_ret - compare a return value with the line's "= X" (or want) */
static void check_ret(struct rt *r, const char *what, long long got,
		      bool has_want, long long want)
{
	char a[32], b[32];

	if (!has_want)
		want = 0;
	if (got != want)
		fail(r, "%s returned %s, expected %s", what,
		     result_name(got, a, sizeof(a)),
		     result_name(want, b, sizeof(b)));
}

/* state_eq - state names equal ignoring case, '-' and '_' ("FIN-WAIT-1"
 * matches FIN_WAIT1 and fin-wait-1) */
static bool state_eq(const char *a, const char *b)
{
	for (;;) {
		while (*a == '-' || *a == '_')
			a++;
		while (*b == '-' || *b == '_')
			b++;
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return false;
		if (!*a)
			return true;
		a++;
		b++;
	}
}

static int cmp_op(const char *op, uint64_t a, uint64_t b)
{
	if (!strcmp(op, "==")) return a == b;
	if (!strcmp(op, "!=")) return a != b;
	if (!strcmp(op, ">=")) return a >= b;
	if (!strcmp(op, "<=")) return a <= b;
	if (!strcmp(op, ">")) return a > b;
	if (!strcmp(op, "<")) return a < b;
	return -1;
}

/* counter_value - look a counter up by name; -1 if unknown */
static int counter_value(struct rt *r, const char *name, uint64_t *v)
{
	unsigned n = net_counters(r->s, NULL, 0);
	struct net_counter *c = calloc(n ? n : 1, sizeof(*c));
	int rc = -1;

	if (!c)
		abort();
	n = net_counters(r->s, c, n);
	for (unsigned i = 0; i < n; i++)
		if (c[i].name && !strcmp(c[i].name, name)) {
			*v = c[i].value;
			rc = 0;
			break;
		}
	free(c);
	return rc;
}

static void do_recv(struct rt *r, const struct ts_line *l, int argc,
		    char **argv, const bool *quoted, const uint32_t *qlen)
{
	struct sock *k = cur(r);
	struct flow *fl;
	long long want;
	size_t cap = r->cfg.rcvbuf + 65536u, total = 0;
	uint8_t *buf;
	ssize_t n;
	bool any = false;
	const char *lit = NULL;
	uint32_t litlen = 0;

	if (!k)
		return;
	fl = &r->flows[k->flow];
	if (argc < 2 || parse_result(argv[1], &want) < 0) {
		fail(r, "recv N | recv ERROR expected");
		return;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "any") && !quoted[i])
			any = true;
		else if (!strcmp(argv[i], "=") && i + 1 < argc && quoted[i + 1]) {
			lit = argv[++i];
			litlen = qlen[i];
		} else {
			fail(r, "recv: unexpected word '%s'", argv[i]);
			return;
		}
	}
	if (lit && want != (long long)litlen) {
		fail(r, "recv %lld = \"...\" with a %u-byte string", want, litlen);
		return;
	}
	buf = malloc(cap);
	if (!buf)
		abort();
	for (;;) {
		n = net_recv(r->s, k->h, buf + total, cap - total);
		if (n <= 0 || (size_t)n == cap - total)
			break;
		total += (size_t)n;
	}
	if (n > 0)
		total += (size_t)n;
	after_call(r);
	if (total == 0) {
		char a[32], b[32];

		if ((long long)n != want)
			fail(r, "recv returned %s, expected %s",
			     result_name(n, a, sizeof(a)),
			     result_name(want, b, sizeof(b)));
	} else if ((long long)total != want) {
		fail(r, "recv: %zu bytes readable, expected %lld", total, want);
	} else if (lit && memcmp(buf, lit, litlen) != 0) {
		fail(r, "recv: data \"%.*s\" differs from the expected \"%s\"",
		     (int)(total > 60 ? 60 : total), buf, lit);
	} else if (!lit && !any) {
		size_t off = fl->app_read;

		if (off + total > fl->peer_rx_len ||
		    memcmp(buf, fl->peer_rx + off, total) != 0)
			fail(r, "recv: the %zu bytes read at stream offset %zu "
			     "are not what the peer sent", total, off);
	}
	(void)l;
	fl->app_read += total;
	free(buf);
}

static void do_send(struct rt *r, int argc, char **argv, const bool *quoted,
		    const uint32_t *qlen)
{
	struct sock *k = cur(r);
	struct flow *fl;
	uint8_t *data;
	size_t len;
	long long want = -1;
	bool has_want = false;
	ssize_t n;

	if (!k)
		return;
	fl = &r->flows[k->flow];
	if (argc < 2) {
		fail(r, "send N | send \"text\" expected");
		return;
	}
	if (argc == 4 && !strcmp(argv[2], "=")) {
		if (parse_result(argv[3], &want) < 0) {
			fail(r, "bad result '%s'", argv[3]);
			return;
		}
		has_want = true;
	} else if (argc != 2) {
		fail(r, "send: unexpected words");
		return;
	}
	if (quoted[1]) {
		len = qlen[1];
		data = malloc(len + 1);
		if (!data)
			abort();
		memcpy(data, argv[1], len);
	} else {
		char *end;

		len = strtoul(argv[1], &end, 0);
		if (*end || len > (64u << 20)) {
			fail(r, "send: bad length '%s'", argv[1]);
			return;
		}
		data = malloc(len + 1);
		if (!data)
			abort();
		for (size_t i = 0; i < len; i++)
			data[i] = ts_pattern(fl->app_tx_len + i);
	}
	n = net_send(r->s, k->h, data, len);
	if (n > 0)
		buf_put(&fl->app_tx, &fl->app_tx_len, &fl->app_tx_cap,
			fl->app_tx_len, data, (size_t)n);
	free(data);
	after_call(r);
	check_ret(r, "send", n, true, has_want ? want : (long long)len);
	poll_at(r, r->now);
}

/* run_call - one application call or directive */
static void run_call(struct rt *r, const struct ts_line *l)
{
	char *argv[TS_MAX_ARGS];
	bool quoted[TS_MAX_ARGS];
	uint32_t qlen[TS_MAX_ARGS];
	int argc = 0;
	long long want = 0;
	bool has_want = false;
	const char *cmd;

	/* "@N" selects socket N (1-based, in order of appearance) */
	for (int i = 0; i < l->argc; i++) {
		if (!l->argquoted[i] && l->argv[i][0] == '@') {
			int k = atoi(l->argv[i] + 1);

			if (k < 1 || k > r->nsocks) {
				fail(r, "no socket %s", l->argv[i]);
				return;
			}
			r->cur_sock = k - 1;
			continue;
		}
		argv[argc] = l->argv[i];
		quoted[argc] = l->argquoted[i];
		qlen[argc++] = l->arglen[i];
	}
	if (argc == 0)
		return;
	cmd = argv[0];
	if (!strcmp(cmd, "send")) {
		do_send(r, argc, argv, quoted, qlen);
		return;
	}
	if (!strcmp(cmd, "recv")) {
		do_recv(r, l, argc, argv, quoted, qlen);
		poll_at(r, r->now);
		return;
	}
	/* generic trailing "= RESULT" */
	if (argc >= 3 && !strcmp(argv[argc - 2], "=") &&
	    strncmp(cmd, "expect", 6) != 0) {
		if (parse_result(argv[argc - 1], &want) < 0) {
			fail(r, "bad result '%s'", argv[argc - 1]);
			return;
		}
		has_want = true;
		argc -= 2;
	}
	if (!strcmp(cmd, "listen") || !strcmp(cmd, "unlisten")) {
		long port = argc == 2 ? strtol(argv[1], NULL, 0) : 0;
		int rc;

		if (port <= 0 || port > 65535) {
			fail(r, "%s PORT expected", cmd);
			return;
		}
		if (cmd[0] == 'l') {
			rc = net_listen(r->s, (uint16_t)port, NULL);
			if (rc == 0)
				r->def_stack_port = (uint16_t)port;
		} else {
			rc = net_unlisten(r->s, (uint16_t)port);
		}
		after_call(r);
		check_ret(r, cmd, rc, has_want, want);
	} else if (!strcmp(cmd, "connect")) {
		long port = argc == 2 ? strtol(argv[1], NULL, 0) : 0;
		net_sock_t h = NET_SOCK_INVALID;
		int rc;

		if (port <= 0 || port > 65535) {
			fail(r, "connect PORT expected");
			return;
		}
		rc = net_connect(r->s, PEER_IP, (uint16_t)port, NULL, r->now, &h);
		if (rc == 0) {
			int k = sock_add(r, h, r->active_port, (uint16_t)port);

			r->cur_sock = k;
			r->flows[r->socks[k].flow].isn_locked = false;
		}
		after_call(r);
		check_ret(r, "connect", rc, has_want, want);
	} else if (!strcmp(cmd, "accept")) {
		int found = -1;

		for (int i = 0; i < r->nsocks; i++)
			if (r->socks[i].accepted && !r->socks[i].taken) {
				found = i;
				break;
			}
		if (found < 0) {
			fail(r, "accept: no NET_EV_ACCEPTED event");
			return;
		}
		r->socks[found].taken = true;
		r->socks[found].pending &= ~NET_EV_ACCEPTED;
		r->cur_sock = found;
	} else if (!strcmp(cmd, "shutdown") || !strcmp(cmd, "close") ||
		   !strcmp(cmd, "abort")) {
		struct sock *k = cur(r);
		int rc;

		if (!k)
			return;
		rc = cmd[0] == 's' ? net_shutdown(r->s, k->h) :
		     cmd[0] == 'c' ? net_close(r->s, k->h) :
				     net_abort(r->s, k->h);
		after_call(r);
		check_ret(r, cmd, rc, has_want, want);
	} else if (!strcmp(cmd, "expect_event") ||
		   !strcmp(cmd, "expect_no_event")) {
		struct sock *k = cur(r);
		uint32_t bit = argc >= 2 ? ev_bit(argv[1]) : 0;

		if (!k)
			return;
		if (!bit || argc > 3) {
			fail(r, "%s ACCEPTED|CONNECTED|READABLE|WRITABLE|"
			     "PEER_FIN|CLOSED [ERROR]", cmd);
			return;
		}
		if (cmd[7] == 'n') {
			if (k->pending & bit)
				fail(r, "event %s is pending", argv[1]);
			return;
		}
		if (!(k->pending & bit)) {
			fail(r, "no %s event (pending: 0x%02x)", argv[1],
			     k->pending);
			return;
		}
		if (argc == 3) {
			long long e;

			if (parse_result(argv[2], &e) < 0) {
				fail(r, "bad error name '%s'", argv[2]);
				return;
			}
			if (k->error != -e)
				fail(r, "event %s error %s, expected %s", argv[1],
				     k->error >= 0 && k->error < N_ERRS ?
				     err_names[k->error] : "?", argv[2]);
		}
		if (bit != NET_EV_CLOSED) /* CLOSED stays: the handle is dead */
			k->pending &= ~bit;
	} else if (!strcmp(cmd, "expect_state")) {
		struct sock *k = cur(r);
		struct net_sockinfo si;
		const char *st;

		if (!k)
			return;
		if (argc != 2) {
			fail(r, "expect_state STATE");
			return;
		}
		st = net_sockinfo(r->s, k->h, &si) == 0 ?
		     net_state_name(si.state) : "CLOSED";
		if (!st || !state_eq(st, argv[1]))
			fail(r, "state %s, expected %s", st ? st : "(null)",
			     argv[1]);
	} else if (!strcmp(cmd, "expect_counter")) {
		uint64_t v, want_v;
		char *end;
		int c;

		if (argc != 4) {
			fail(r, "expect_counter NAME OP VALUE");
			return;
		}
		want_v = strtoull(argv[3], &end, 0);
		if (*end) {
			fail(r, "bad value '%s'", argv[3]);
			return;
		}
		if (counter_value(r, argv[1], &v) < 0) {
			fail(r, "no counter named %s", argv[1]);
			return;
		}
		c = cmp_op(argv[2], v, want_v);
		if (c < 0)
			fail(r, "bad operator '%s' (== != >= <= > <)", argv[2]);
		else if (!c)
			fail(r, "counter %s = %" PRIu64 ", expected %s %s",
			     argv[1], v, argv[2], argv[3]);
	} else if (!strcmp(cmd, "config")) {
		fail(r, "config must come before anything else");
		return;
	} else if (!strcmp(cmd, "dump")) {
		unsigned n = net_counters(r->s, NULL, 0);
		struct net_counter *c = calloc(n ? n : 1, sizeof(*c));

		if (!c)
			abort();
		n = net_counters(r->s, c, n);
		for (unsigned i = 0; i < n; i++)
			if (c[i].value)
				printf("    %s = %" PRIu64 "\n", c[i].name,
				       c[i].value);
		free(c);
	} else {
		fail(r, "unknown command '%s'", cmd);
		return;
	}
	poll_at(r, r->now);
}

/* --- script driver ------------------------------------------------------- */

static void rt_init(struct rt *r, const char *name, bool verbose)
{
	memset(r, 0, sizeof(*r));
	r->name = name;
	r->verbose = verbose;
	net_config_defaults(&r->cfg);
	r->cfg.ip = STACK_IP;
	r->cfg.prefix_len = 24;
	r->cfg.max_conns = 256;      /* small pools: fast set-up */
	r->cfg.timewait_max = 256;
	for (int i = 0; i < 32; i++)
		r->cfg.secret[i] = (uint8_t)(0x5a + i * 7);
	memcpy(r->stack_mac, "\x02\x00\x00\x00\x00\x02", 6);
	memcpy(r->peer_mac, "\x02\x00\x00\x00\x00\x01", 6);
	memcpy(r->cfg.mac, r->stack_mac, 6);
	r->cur_sock = -1;
	r->def_stack_port = 8080;
	r->def_peer_port = 40000;
	r->active_port = 50000;
	r->peer_isn = 1000000;
	r->peer_win = 65535;
	r->tol_us = 5000;
}

static void rt_free(struct rt *r)
{
	if (r->s) {
		r->destroying = true;
		net_stack_destroy(r->s, r->now);
		r->s = NULL;
	}
	while (r->qn > 0)
		free(pop_frame(r).data);
	free(r->q);
	for (int i = 0; i < r->nflows; i++) {
		free(r->flows[i].app_tx);
		free(r->flows[i].peer_rx);
	}
}

/* run_script - 0 pass, 1 fail (r->fail says why), 2 set-up error */
static int run_script(struct rt *r, const struct ts_script *sc, char *err,
		      size_t errlen)
{
	for (int i = 0; i < sc->n && !r->failed; i++) {
		const struct ts_line *l = &sc->lines[i];
		uint64_t t = T0_US + l->t_us;
		uint64_t tol = l->has_tol ? l->tol_us : r->tol_us;

		r->line = l;
		if (l->kind == TS_CALL && !strcmp(l->argv[0], "config") &&
		    !r->started) {
			for (int k = 1; k < l->argc; k++)
				if (set_config(r, l->argv[k]) < 0) {
					snprintf(err, errlen, "line %d: bad config "
						 "'%s'", l->lineno, l->argv[k]);
					return 2;
				}
			continue;
		}
		if (!r->started && start(r) < 0) {
			snprintf(err, errlen, "net_stack_create failed (bad "
				 "config, or TCP not built yet)");
			return 2;
		}
		if (l->kind == TS_OUT) {
			run_out(r, l, t, tol);
			continue;
		}
		advance(r, t, false);
		check_unexpected(r, t, tol, false);
		if (r->failed)
			break;
		if (r->verbose && l->kind == TS_CALL)
			printf("%9.6f    %s\n", secs(r, r->now), l->text);
		if (l->kind == TS_IN)
			run_in(r, l);
		else
			run_call(r, l);
	}
	r->line = sc->n ? &sc->lines[sc->n - 1] : NULL;
	if (r->started && !r->failed)
		check_unexpected(r, r->now, 0, true);
	if (r->started) {
		r->destroying = true;
		net_stack_destroy(r->s, r->now);
		r->s = NULL;
		if (r->tx_outstanding != 0 && !r->failed)
			fail(r, "%ld tx buffers never returned to the glue",
			     r->tx_outstanding);
	}
	return r->failed ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: tcpscript [-v] [--expect-fail[=LINE]] "
		"SCRIPT...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	bool verbose = false, expect_fail = false;
	int expect_line = 0, status = 0, nscripts = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-v")) {
			verbose = true;
		} else if (!strncmp(a, "--expect-fail", 13)) {
			expect_fail = true;
			if (a[13] == '=')
				expect_line = atoi(a + 14);
			else if (a[13])
				usage();
		} else if (a[0] == '-') {
			usage();
		} else {
			nscripts++;
		}
	}
	if (!nscripts)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		struct ts_script sc;
		struct rt *r;
		char err[512];
		const char *name;
		int rc;

		if (argv[i][0] == '-')
			continue;
		name = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
		if (ts_parse_file(argv[i], &sc, err, sizeof(err)) < 0) {
			printf("ERROR %s: %s\n", name, err);
			status = 2;
			continue;
		}
		r = malloc(sizeof(*r));
		if (!r)
			abort();
		rt_init(r, name, verbose);
		err[0] = '\0';
		rc = run_script(r, &sc, err, sizeof(err));
		if (rc == 2) {
			printf("ERROR %s: %s\n", name, err);
			status = 2;
		} else if (rc == 1 && expect_fail &&
			   (!expect_line || expect_line == r->fail_line)) {
			printf("ok %s (failed as expected at line %d: %s)\n",
			       name, r->fail_line, r->fail);
		} else if (rc == 1) {
			printf("FAIL %s line %d: %s\n", name, r->fail_line,
			       r->fail);
			if (status == 0)
				status = 1;
		} else if (expect_fail) {
			printf("FAIL %s: passed, but it was expected to fail%s\n",
			       name, expect_line ? " at a given line" : "");
			if (status == 0)
				status = 1;
		} else {
			printf("ok %s\n", name);
		}
		rt_free(r);
		free(r);
		ts_script_free(&sc);
	}
	return status;
}
