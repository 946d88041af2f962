/*
 * test_tcp_pair.c - two sans-IO stacks wired back to back in memory.
 *
 * A fake net_io copies every frame a stack sends into the other stack's
 * input queue (optionally dropping, duplicating or delaying frames by a
 * seeded deterministic rule); a virtual clock advances to the next
 * deadline when nothing is in flight. Tests assert what a user notices:
 * bytes delivered exactly, events, errors, and every pool back at its
 * baseline afterwards. tcp_check() runs after every step.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "net.h"
#include "net_types.h"

#define PAIR_QMAX 4096
#define PAIR_FRAME 2048

struct frame {
	uint16_t len;
	uint64_t at;            /* deliver no earlier than this */
	uint8_t data[PAIR_FRAME];
};

struct side;

struct pair {
	struct side *a, *b;
	uint64_t now;
	uint32_t rng;
	unsigned loss_pct;      /* drop data-carrying TCP frames */
	unsigned dup_pct;
	unsigned delay_pct;     /* delay (reorder) by 3 ms */
	unsigned dropped, duplicated, delayed;
	int (*drop_rule)(struct pair *p, struct side *from, const uint8_t *f,
			 uint16_t len);
	int rule_state;
};

struct side {
	struct pair *p;
	struct net_stack *s;
	struct side *peer;
	struct frame *q;        /* input queue of this side */
	unsigned qn;
	unsigned bufs_out;
	uint32_t ip;
};

/* pair_rand - xorshift32, deterministic per test */
static uint32_t pair_rand(struct pair *p)
{
	uint32_t x = p->rng;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	p->rng = x;
	return x;
}

static int fake_alloc(void *o, struct net_txbuf *tb)
{
	struct side *sd = o;
	tb->data = malloc(PAIR_FRAME);
	if (!tb->data)
		return -NET_ENOMEM;
	tb->handle = tb->data;
	tb->cap = PAIR_FRAME;
	sd->bufs_out++;
	return 0;
}

static void fake_free(void *o, struct net_txbuf *tb)
{
	struct side *sd = o;
	free(tb->data);
	sd->bufs_out--;
}

/* tcp payload length of a frame (0 if not TCP) */
static unsigned frame_tcp_payload(const uint8_t *f, uint16_t len)
{
	unsigned ihl, thl, tot;
	if (len < 54 || f[12] != 0x08 || f[13] != 0x00 || f[23] != 6)
		return 0;
	ihl = (f[14] & 15u) * 4;
	tot = (unsigned)(f[16] << 8 | f[17]);
	thl = (f[14 + ihl + 12] >> 4) * 4u;
	return tot > ihl + thl ? tot - ihl - thl : 0;
}

static void enqueue(struct side *to, const uint8_t *d, uint16_t len,
		    uint64_t at)
{
	struct frame *f;
	assert_true(to->qn < PAIR_QMAX);
	f = &to->q[to->qn++];
	f->len = len;
	f->at = at;
	memcpy(f->data, d, len);
}

static void fake_send(void *o, struct net_txbuf *tb, uint16_t len,
		      uint32_t txflags, uint8_t l2, uint8_t l3)
{
	struct side *sd = o;
	struct pair *p = sd->p;
	(void)txflags; (void)l2; (void)l3;
	if (p->drop_rule && p->drop_rule(p, sd, tb->data, len)) {
		p->dropped++;
	} else if (frame_tcp_payload(tb->data, len) &&
		   pair_rand(p) % 100 < p->loss_pct) {
		p->dropped++;
	} else {
		uint64_t at = p->now;
		if (p->delay_pct && pair_rand(p) % 100 < p->delay_pct) {
			at += 3000;
			p->delayed++;
		}
		enqueue(sd->peer, tb->data, len, at);
		if (p->dup_pct && pair_rand(p) % 100 < p->dup_pct) {
			enqueue(sd->peer, tb->data, len, at + 500);
			p->duplicated++;
		}
	}
	free(tb->data);
	sd->bufs_out--;
}

static struct side *side_new(struct pair *p, uint32_t ip, uint8_t mac,
			     const struct net_config *base)
{
	struct side *sd = calloc(1, sizeof(*sd));
	struct net_config cfg;
	struct net_io io = { .opaque = sd, .tx_alloc = fake_alloc,
			     .tx_send = fake_send, .tx_free = fake_free };
	sd->p = p;
	sd->q = calloc(PAIR_QMAX, sizeof(struct frame));
	sd->ip = ip;
	cfg = *base;
	cfg.ip = ip;
	cfg.prefix_len = 24;
	memset(cfg.mac, 0, 6);
	cfg.mac[0] = 0x02;
	cfg.mac[5] = mac;
	for (int i = 0; i < 32; i++)
		cfg.secret[i] = (uint8_t)(i * 7 + mac);
	sd->s = net_stack_create(&cfg, &io, p->now);
	assert_non_null(sd->s);
	return sd;
}

static void pair_cfg(struct net_config *c)
{
	net_config_defaults(c);
	c->max_conns = 64;
	c->rcvbuf = 16384;
	c->sndbuf = 16384;
	c->timewait_max = 64;
	c->conn_low_water = 4;
	c->syn_backlog = 32;
}

static struct pair *pair_new(const struct net_config *cfg, uint32_t seed)
{
	struct pair *p = calloc(1, sizeof(*p));
	p->now = 1000000;
	p->rng = seed ? seed : 1;
	p->a = side_new(p, 0x0a000001, 1, cfg);
	p->b = side_new(p, 0x0a000002, 2, cfg);
	p->a->peer = p->b;
	p->b->peer = p->a;
	return p;
}

static void check_side(struct side *sd)
{
	char why[256] = "";
	int rc = tcp_check(sd->s, why, sizeof(why));
	if (rc != 0)
		fail_msg("tcp_check: %s", why);
}

/* deliver due frames of one side's queue; returns how many */
static unsigned side_deliver(struct side *sd)
{
	struct pair *p = sd->p;
	unsigned n = 0, keep = 0;
	static struct frame tmp[PAIR_QMAX];
	unsigned cnt = sd->qn;

	memcpy(tmp, sd->q, cnt * sizeof(struct frame));
	sd->qn = 0;
	for (unsigned i = 0; i < cnt; i++) {
		if (tmp[i].at > p->now) {
			sd->q[sd->qn++] = tmp[i];
			keep++;
			continue;
		}
		struct net_rx rx = { tmp[i].data, tmp[i].len, 0 };
		net_input_burst(sd->s, &rx, 1, p->now);
		check_side(sd);
		n++;
	}
	(void)keep;
	return n;
}

typedef void (*ev_fn)(struct side *sd, const struct net_event *e, void *ctx);

/* one round: deliver, poll, hand events to fn; advance the clock when
 * idle. Returns false when nothing is pending at all. */
static bool pair_step(struct pair *p, ev_fn fn, void *ctx)
{
	struct side *sides[2] = { p->a, p->b };
	unsigned moved = 0;
	struct net_event ev[64];

	for (int k = 0; k < 2; k++) {
		moved += side_deliver(sides[k]);
		net_poll(sides[k]->s, p->now);
		check_side(sides[k]);
		unsigned n;
		while ((n = net_events(sides[k]->s, ev, 64)) > 0) {
			for (unsigned i = 0; i < n; i++)
				if (fn)
					fn(sides[k], &ev[i], ctx);
			net_poll(sides[k]->s, p->now);
			check_side(sides[k]);
		}
	}
	if (moved || p->a->qn || p->b->qn) {
		uint64_t next = UINT64_MAX;
		if (moved)
			return true;
		for (int k = 0; k < 2; k++)
			for (unsigned i = 0; i < sides[k]->qn; i++)
				if (sides[k]->q[i].at < next)
					next = sides[k]->q[i].at;
		for (int k = 0; k < 2; k++) {
			uint64_t d = net_next_deadline(sides[k]->s);
			if (d < next)
				next = d;
		}
		if (next > p->now)
			p->now = next;
		return true;
	}
	uint64_t d1 = net_next_deadline(p->a->s), d2 = net_next_deadline(p->b->s);
	uint64_t d = d1 < d2 ? d1 : d2;
	if (d == UINT64_MAX)
		return false;
	if (d > p->now)
		p->now = d;
	return true;
}

static uint64_t counter(struct side *sd, const char *name)
{
	struct net_counter c[256];
	unsigned n = net_counters(sd->s, c, 256);
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(c[i].name, name))
			return c[i].value;
	fail_msg("no counter %s", name);
	return 0;
}

static void dump_counters(struct pair *p, const char *what)
{
	struct net_counter c[256];
	if (!getenv("TCP_PAIR_VERBOSE"))
		return;
	printf("-- %s: t=%.3fs dropped %u dup %u delayed %u\n", what,
	       (double)p->now / 1e6, p->dropped, p->duplicated, p->delayed);
	for (int k = 0; k < 2; k++) {
		unsigned n = net_counters(k ? p->b->s : p->a->s, c, 256);
		printf("  %s:", k ? "B" : "A");
		for (unsigned i = 0; i < n; i++)
			if (c[i].value && !strncmp(c[i].name, "tcp.", 4))
				printf(" %s=%llu", c[i].name + 4,
				       (unsigned long long)c[i].value);
		printf("\n");
	}
}

static void pair_free(struct pair *p)
{
	dump_counters(p, "end");
	net_stack_destroy(p->a->s, p->now);
	net_stack_destroy(p->b->s, p->now);
	assert_int_equal(p->a->bufs_out, 0);
	assert_int_equal(p->b->bufs_out, 0);
	free(p->a->q);
	free(p->b->q);
	free(p->a);
	free(p->b);
	free(p);
}

/* every pool back at baseline (after TIME_WAIT has expired) */
static void assert_baseline(struct pair *p, unsigned max_conns)
{
	struct side *sides[2] = { p->a, p->b };
	for (int k = 0; k < 2; k++) {
		assert_int_equal(counter(sides[k], "tcp.conns.used"), 0);
		assert_int_equal(counter(sides[k], "tcp.conns.free"), max_conns);
		assert_int_equal(counter(sides[k], "tcp.timewait.used"), 0);
		assert_int_equal(counter(sides[k], "tcp.timers.armed"), 0);
		assert_int_equal(counter(sides[k], "tcp.flows.hashed"), 0);
	}
}

/* ---- a bulk transfer application ---------------------------------------- */

static uint8_t pattern(uint64_t off, uint32_t salt)
{
	uint64_t x = off * 2654435761u + salt;
	return (uint8_t)(x ^ (x >> 13));
}

struct xfer_conn {
	net_sock_t sock;
	uint64_t sent, rcvd, total_send, expect_recv;
	uint32_t salt_send, salt_recv;
	bool connected, peer_fin, closed, shut, mismatch;
	int close_err;
};

struct xfer {
	struct xfer_conn cli[64], srv[64];
	unsigned ncli, nsrv;
	uint64_t c2s, s2c;     /* bytes each way per connection */
	bool server_reads;     /* false: server stops reading */
	unsigned closed_cli, closed_srv;
};

static void xfer_pump_send(struct side *sd, struct xfer_conn *x)
{
	uint8_t buf[4096];
	while (x->sent < x->total_send) {
		size_t n = x->total_send - x->sent;
		if (n > sizeof(buf))
			n = sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(x->sent + i, x->salt_send);
		ssize_t r = net_send(sd->s, x->sock, buf, n);
		assert_true(r >= 0);
		if (r == 0)
			return;
		x->sent += (uint64_t)r;
	}
	if (!x->shut) {
		assert_int_equal(net_shutdown(sd->s, x->sock), 0);
		x->shut = true;
	}
}

static void xfer_pump_recv(struct side *sd, struct xfer_conn *x)
{
	uint8_t buf[4096];
	ssize_t r;
	while ((r = net_recv(sd->s, x->sock, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != pattern(x->rcvd + (uint64_t)i, x->salt_recv))
				x->mismatch = true;
		x->rcvd += (uint64_t)r;
	}
	if (r == 0 && !x->peer_fin) {
		x->peer_fin = true;
	}
}

static void xfer_ev(struct side *sd, const struct net_event *e, void *ctx)
{
	struct xfer *X = ctx;
	struct xfer_conn *x = NULL;
	bool server = sd == sd->p->b;

	if (e->events & NET_EV_ACCEPTED) {
		assert_true(server);
		x = &X->srv[X->nsrv++];
		memset(x, 0, sizeof(*x));
		x->sock = e->sock;
		x->total_send = X->s2c;
		x->salt_send = 2;
		x->salt_recv = 1;
		x->connected = true;
		assert_int_equal(net_set_user(sd->s, e->sock, x), 0);
	} else {
		x = e->user;
	}
	assert_non_null(x);
	assert_int_equal(x->sock, e->sock);
	if (e->events & NET_EV_CONNECTED)
		x->connected = true;
	if (x->closed)
		fail_msg("event after CLOSED");
	if (e->events & NET_EV_CLOSED) {
		x->closed = true;
		x->close_err = e->error;
		if (server)
			X->closed_srv++;
		else
			X->closed_cli++;
		return;
	}
	if (server && !X->server_reads)
		return;
	if (e->events & (NET_EV_READABLE | NET_EV_PEER_FIN | NET_EV_ACCEPTED |
			 NET_EV_CONNECTED))
		xfer_pump_recv(sd, x);
	if (e->events & (NET_EV_WRITABLE | NET_EV_ACCEPTED | NET_EV_CONNECTED))
		xfer_pump_send(sd, x);
	if (x->peer_fin && x->shut && x->sent == x->total_send) {
		assert_int_equal(net_close(sd->s, x->sock), 0);
		x->shut = false; /* close once */
		x->total_send = 0;
		x->sent = 0;
	}
}

static void xfer_run(struct pair *p, struct xfer *X, unsigned nconn,
		     uint64_t limit_us)
{
	uint64_t until = p->now + limit_us;

	assert_int_equal(net_listen(p->b->s, 25, NULL), 0);
	for (unsigned i = 0; i < nconn; i++) {
		struct xfer_conn *x = &X->cli[X->ncli++];
		memset(x, 0, sizeof(*x));
		x->total_send = X->c2s;
		x->salt_send = 1;
		x->salt_recv = 2;
		assert_int_equal(net_connect(p->a->s, p->b->ip, 25, x, p->now,
					     &x->sock), 0);
	}
	while (pair_step(p, xfer_ev, X) && p->now < until) {
		if (X->closed_cli == nconn && X->closed_srv == nconn)
			break;
	}
	assert_int_equal(X->closed_cli, nconn);
	assert_int_equal(X->closed_srv, nconn);
	for (unsigned i = 0; i < nconn; i++) {
		assert_false(X->cli[i].mismatch);
		assert_false(X->srv[i].mismatch);
		assert_int_equal(X->cli[i].close_err, 0);
		assert_int_equal(X->srv[i].close_err, 0);
		assert_int_equal(X->srv[i].rcvd, X->c2s);
		assert_int_equal(X->cli[i].rcvd, X->s2c);
	}
	/* let TIME_WAIT run out */
	while (pair_step(p, xfer_ev, X))
		;
	assert_int_equal(net_unlisten(p->b->s, 25), 0);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_bulk_both_ways(void **state)
{
	struct net_config cfg;
	struct xfer *X = calloc(1, sizeof(*X));
	(void)state;
	pair_cfg(&cfg);
	struct pair *p = pair_new(&cfg, 7);
	X->c2s = 300000;
	X->s2c = 200000;
	X->server_reads = true;
	xfer_run(p, X, 1, 120000000);
	assert_int_equal(counter(p->a, "tcp.retransmits"), 0);
	assert_int_equal(counter(p->b, "tcp.accepts"), 1);
	assert_int_equal(counter(p->a, "tcp.connects"), 1);
	assert_true(counter(p->b, "tcp.fast_path") > 100);
	assert_baseline(p, cfg.max_conns);
	pair_free(p);
	free(X);
}

static void test_bulk_with_loss(void **state)
{
	struct net_config cfg;
	struct xfer *X = calloc(1, sizeof(*X));
	(void)state;
	pair_cfg(&cfg);
	struct pair *p = pair_new(&cfg, 12345);
	p->loss_pct = 3;
	p->delay_pct = 5;
	p->dup_pct = 1;
	X->c2s = 400000;
	X->s2c = 100000;
	X->server_reads = true;
	xfer_run(p, X, 1, 600000000);
	assert_true(p->dropped > 0);
	assert_true(counter(p->a, "tcp.retransmits") > 0);
	assert_true(counter(p->a, "tcp.fast_retransmits") +
		    counter(p->a, "tcp.rto_timeouts") > 0);
	assert_true(counter(p->b, "tcp.ooo_segs") > 0);
	assert_baseline(p, cfg.max_conns);
	pair_free(p);
	free(X);
}

static void test_bulk_loss_no_sack_peer_heavy(void **state)
{
	/* heavier loss, many connections at once */
	struct net_config cfg;
	struct xfer *X = calloc(1, sizeof(*X));
	(void)state;
	pair_cfg(&cfg);
	struct pair *p = pair_new(&cfg, 999);
	p->loss_pct = 10;
	p->delay_pct = 10;
	X->c2s = 30000;
	X->s2c = 30000;
	X->server_reads = true;
	xfer_run(p, X, 20, 900000000);
	assert_true(counter(p->a, "tcp.retransmits") > 0);
	assert_baseline(p, cfg.max_conns);
	pair_free(p);
	free(X);
}

static void test_many_connections(void **state)
{
	struct net_config cfg;
	struct xfer *X = calloc(1, sizeof(*X));
	(void)state;
	pair_cfg(&cfg);
	struct pair *p = pair_new(&cfg, 3);
	X->c2s = 1000;
	X->s2c = 1000;
	X->server_reads = true;
	xfer_run(p, X, 50, 60000000);
	assert_int_equal(counter(p->b, "tcp.accepts"), 50);
	assert_baseline(p, cfg.max_conns);
	pair_free(p);
	free(X);
}

/* a receiver that stops reading closes the window; the sender probes
 * and resumes when the reader drains */
struct zw {
	net_sock_t cs, ss;
	bool have_s;
};

static void zw_ev(struct side *sd, const struct net_event *e, void *ctx)
{
	struct zw *z = ctx;
	if (e->events & NET_EV_ACCEPTED) {
		z->ss = e->sock;
		z->have_s = true;
	}
	(void)sd;
}

static void test_zero_window_persist(void **state)
{
	struct net_config cfg;
	struct zw z = { 0 };
	uint8_t buf[20000];
	uint64_t total = 0;
	(void)state;
	pair_cfg(&cfg);
	struct pair *p = pair_new(&cfg, 5);
	assert_int_equal(net_listen(p->b->s, 25, NULL), 0);
	assert_int_equal(net_connect(p->a->s, p->b->ip, 25, NULL, p->now,
				     &z.cs), 0);
	for (int i = 0; i < 50 && !z.have_s; i++)
		pair_step(p, zw_ev, &z);
	assert_true(z.have_s);
	memset(buf, 'x', sizeof(buf));
	/* fill the receiver's ring and our send ring */
	for (int i = 0; i < 400 && total < cfg.rcvbuf + cfg.sndbuf; i++) {
		ssize_t r = net_send(p->a->s, z.cs, buf, sizeof(buf));
		if (r < 0)
			fail_msg("send %d at i=%d: %s", (int)r, i, net_strerror((int)r));
		total += (uint64_t)r;
		pair_step(p, zw_ev, &z);
	}
	assert_int_equal(total, cfg.rcvbuf + cfg.sndbuf);
	/* idle for 30 s of virtual time: persist probes, no abort */
	uint64_t probes0 = counter(p->a, "tcp.zero_window_probes");
	uint64_t until = p->now + 30000000;
	while (p->now < until && pair_step(p, zw_ev, &z))
		;
	assert_true(counter(p->a, "tcp.zero_window_probes") >= probes0 + 3);
	assert_true(p->now < until + 30000000); /* nothing stalls the clock */
	struct net_sockinfo si;
	assert_int_equal(net_sockinfo(p->a->s, z.cs, &si), 0);
	assert_string_equal(net_state_name(si.state), "ESTABLISHED");
	assert_int_equal(si.snd_wnd, 0);
	/* drain: everything arrives */
	uint64_t got = 0;
	until = p->now + 60000000;
	while (got < total && p->now < until) {
		ssize_t r = net_recv(p->b->s, z.ss, buf, sizeof(buf));
		if (r > 0)
			got += (uint64_t)r;
		pair_step(p, zw_ev, &z);
		if (getenv("TCP_PAIR_VERBOSE")) {
			net_sockinfo(p->a->s, z.cs, &si);
			printf("t=%.3f r=%zd got=%llu a.snd_wnd=%u cwnd=%u\n",
			       (double)p->now / 1e6, r, (unsigned long long)got,
			       si.snd_wnd, si.cwnd);
		}
	}
	assert_int_equal(got, total);
	assert_int_equal(net_abort(p->a->s, z.cs), 0);
	for (int i = 0; i < 20; i++)
		pair_step(p, zw_ev, &z);
	pair_free(p);
}

/* connection refused and a reset mid-stream reach the app as errors */
struct errs {
	int err[4];
	uint32_t evs[4];
	net_sock_t srv;
};

static void errs_ev(struct side *sd, const struct net_event *e, void *ctx)
{
	struct errs *x = ctx;
	int k = sd == sd->p->a ? 0 : 1;
	if (e->events & NET_EV_ACCEPTED)
		x->srv = e->sock;
	x->evs[k] |= e->events;
	if (e->events & NET_EV_CLOSED)
		x->err[k] = e->error;
}

static void test_refused_and_reset(void **state)
{
	struct net_config cfg;
	struct errs x = { 0 };
	net_sock_t cs;
	(void)state;
	pair_cfg(&cfg);
	struct pair *p = pair_new(&cfg, 9);
	assert_int_equal(net_connect(p->a->s, p->b->ip, 26, NULL, p->now,
				     &cs), 0);
	while (pair_step(p, errs_ev, &x))
		;
	assert_true(x.evs[0] & NET_EV_CLOSED);
	assert_int_equal(x.err[0], NET_ECONNREFUSED);
	assert_int_equal(net_send(p->a->s, cs, "x", 1), -NET_EINVAL);

	memset(&x, 0, sizeof(x));
	assert_int_equal(net_listen(p->b->s, 25, NULL), 0);
	assert_int_equal(net_connect(p->a->s, p->b->ip, 25, NULL, p->now,
				     &cs), 0);
	for (int i = 0; i < 20; i++)
		pair_step(p, errs_ev, &x);
	assert_true(x.evs[1] & NET_EV_ACCEPTED);
	assert_int_equal(net_abort(p->b->s, x.srv), 0);
	while (pair_step(p, errs_ev, &x))
		;
	assert_int_equal(x.err[1], NET_ECONNABORTED);
	assert_int_equal(x.err[0], NET_ECONNRESET);
	assert_baseline(p, cfg.max_conns);
	pair_free(p);
}

/* ICMP port unreachable quoting our SYN aborts the connection attempt
 * (RFC 1122 4.2.3.9): capture A's SYN instead of delivering it, answer
 * with an ICMP error from B, expect CLOSED(ECONNREFUSED). */
static uint8_t syn_copy[PAIR_FRAME];
static uint16_t syn_len;

static int capture_syn(struct pair *p, struct side *from, const uint8_t *f,
		       uint16_t len)
{
	if (from == p->a && len >= 54 && f[23] == 6 && (f[47] & 0x02)) {
		memcpy(syn_copy, f, len);
		syn_len = len;
		return 1;
	}
	return 0;
}

static void test_icmp_unreachable(void **state)
{
	struct net_config cfg;
	struct errs x = { 0 };
	net_sock_t cs;
	uint8_t fr[128];
	uint32_t sum;
	uint16_t ck;
	(void)state;
	pair_cfg(&cfg);
	struct pair *p = pair_new(&cfg, 11);
	p->drop_rule = capture_syn;
	syn_len = 0;
	assert_int_equal(net_connect(p->a->s, p->b->ip, 25, NULL, p->now,
				     &cs), 0);
	for (int i = 0; i < 10 && syn_len == 0; i++)
		pair_step(p, errs_ev, &x);
	assert_true(syn_len > 0);
	memset(fr, 0, sizeof(fr));
	memcpy(fr, syn_copy + 6, 6);           /* to A's MAC */
	memcpy(fr + 6, syn_copy, 6);           /* from B's MAC */
	fr[12] = 0x08;
	fr[14] = 0x45;
	fr[16] = 0; fr[17] = 20 + 8 + 28;      /* total length */
	fr[22] = 64;
	fr[23] = 1;                            /* ICMP */
	memcpy(fr + 26, syn_copy + 30, 4);     /* src = B */
	memcpy(fr + 30, syn_copy + 26, 4);     /* dst = A */
	ck = net_csum_fold(net_csum_partial(fr + 14, 20, 0));
	memcpy(fr + 24, &ck, 2);
	fr[34] = 3;                            /* unreachable */
	fr[35] = 3;                            /* port */
	memcpy(fr + 42, syn_copy + 14, 28);    /* IP header + 8 bytes TCP */
	sum = net_csum_partial(fr + 34, 8 + 28, 0);
	ck = net_csum_fold(sum);
	memcpy(fr + 36, &ck, 2);
	enqueue(p->a, fr, 14 + 20 + 8 + 28, p->now);
	for (int i = 0; i < 10 && !(x.evs[0] & NET_EV_CLOSED); i++)
		pair_step(p, errs_ev, &x);
	assert_true(x.evs[0] & NET_EV_CLOSED);
	assert_int_equal(x.err[0], NET_ECONNREFUSED);
	assert_int_equal(counter(p->a, "tcp.icmp_errors"), 1);
	assert_int_equal(counter(p->a, "tcp.conns.used"), 0);
	pair_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bulk_both_ways),
		cmocka_unit_test(test_bulk_with_loss),
		cmocka_unit_test(test_bulk_loss_no_sack_peer_heavy),
		cmocka_unit_test(test_many_connections),
		cmocka_unit_test(test_zero_window_persist),
		cmocka_unit_test(test_refused_and_reset),
		cmocka_unit_test(test_icmp_unreachable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
