/*
 * deliver_test.c - deliver.h end to end in memory: the delivering stack
 * (A, 10.0.0.1) and a scripted SMTP next hop on a second stack (B,
 * 10.0.0.2) wired back to back, a real LMDB queue in a temporary
 * directory (messages stored through stor_writer), a fake clock.
 *
 * The next hop listens on 2525 (normal), 2527 (421 greeting, then close)
 * and 2530 (never greets); 2526/2528 have no listener (RST: refused);
 * SYNs to 2599 are dropped on the wire (connect timeout). It answers
 * RCPT for addresses containing "reject" with 550, records every
 * message (sender, RCPT lines, body after dot-unstuffing), counts
 * connections, RSETs and QUITs. Tests assert what the scheduler would
 * see: statuses, per-recipient codes, relay, reuse, and the bytes that
 * arrived compared with the stored body.
 *
 * TLS: with starttls set the next hop offers STARTTLS and, after "220",
 * runs a server tls_conn with a certificate for relay.test signed by a
 * CA made at start-up (tls_certs.c); tls_garbage answers the ClientHello
 * with plain text instead (or sends it with the 220), starttls_refuse
 * answers STARTTLS with 454. The server keeps a transcript of the command
 * verbs it received ("<TLS>" where its handshake finished, "." at end of
 * data) and marks each message with whether it arrived under TLS.
 */
#include "stor_test.h"

#include "deliver.h"
#include "net.h"
#include "smtp_client.h"
#include "tls_certs.h"
#include "tls_conn.h"
#include "tls_ctx.h"

#define QMAX 4096
#define FRAME 2048
#define SRV_CONNS 16
#define SRV_MSGS 16

#define IP_A 0x0a000001u
#define IP_B 0x0a000002u

struct frame {
	uint16_t len;
	uint8_t data[FRAME];
};

struct side {
	struct net_stack *s;
	struct side *peer;
	struct frame *q;
	unsigned qn;
	struct h *h;
};

struct smsg {
	char from[300];
	char rcpt[8][600];
	unsigned n_rcpt;
	uint8_t *body;
	size_t len, cap;
	int done;
	int tls;                      /* MAIL FROM arrived under TLS */
};

struct sconn {
	int used;
	net_sock_t sk;
	uint16_t port;
	int data;
	char line[4096];
	size_t ll;
	struct smsg *cur;
	struct tls_conn *tls;         /* after 220 to STARTTLS */
	int tls_hs, tls_up, garbage, closed;
};

struct lst { uint16_t port; };

struct h {
	uint64_t now;
	struct side a, b;
	/* next hop */
	struct lst l[3];
	struct sconn sc[SRV_CONNS];
	struct smsg msgs[SRV_MSGS];
	unsigned n_msgs, accepts, quits, rsets, closes_after;
	int close_after_msg;          /* server drops the connection after 250 */
	int abort_on_data;            /* server closes instead of 354 */
	int abort_on_rset;            /* server resets instead of RSET's 250 */
	const char *ext;              /* EHLO lines after the first */
	int starttls;                 /* offer STARTTLS (plaintext EHLO) */
	int tls_garbage;              /* 1: answer the ClientHello with text;
				       * 2: text right behind the 220 */
	int starttls_refuse;          /* 454 to STARTTLS */
	char log[2048];               /* command verbs received, in order */
	unsigned stls_extra;          /* plaintext bytes after STARTTLS */
	unsigned srv_tls_fail;        /* server-side handshake failures */
	/* delivery */
	struct qfix qf;
	struct cfg_delivery cfg;
	struct deliver *d;
	struct djob *done[32];
	unsigned n_done;
};

/* ---- wire ------------------------------------------------------------- */

static int fake_alloc(void *o, struct net_txbuf *tb)
{
	(void)o;
	tb->data = malloc(FRAME);
	if (!tb->data)
		return -NET_ENOMEM;
	tb->handle = tb->data;
	tb->cap = FRAME;
	return 0;
}

static void fake_free(void *o, struct net_txbuf *tb)
{
	(void)o;
	free(tb->data);
}

/* TCP destination port of an IPv4 frame, 0 if not TCP */
static unsigned frame_dport(const uint8_t *f, uint16_t len)
{
	unsigned ihl;

	if (len < 54 || f[12] != 0x08 || f[13] != 0x00 || f[23] != 6)
		return 0;
	ihl = (f[14] & 15u) * 4;
	return (unsigned)(f[14 + ihl + 2] << 8 | f[14 + ihl + 3]);
}

static void fake_send(void *o, struct net_txbuf *tb, uint16_t len,
		      uint32_t txflags, uint8_t l2, uint8_t l3)
{
	struct side *sd = o;
	struct side *to = sd->peer;

	(void)txflags; (void)l2; (void)l3;
	if (frame_dport(tb->data, len) != 2599) {   /* blackhole port */
		assert_true(to->qn < QMAX);
		to->q[to->qn].len = len;
		memcpy(to->q[to->qn].data, tb->data, len);
		to->qn++;
	}
	free(tb->data);
}

static void side_init(struct h *h, struct side *sd, uint32_t ip, uint8_t mac)
{
	struct net_config cfg;
	struct net_io io = { .opaque = sd, .tx_alloc = fake_alloc,
			     .tx_send = fake_send, .tx_free = fake_free };

	net_config_defaults(&cfg);
	cfg.max_conns = 64;
	cfg.rcvbuf = 16384;
	cfg.sndbuf = 16384;
	cfg.timewait_max = 64;
	cfg.conn_low_water = 4;
	cfg.syn_backlog = 32;
	cfg.ip = ip;
	cfg.prefix_len = 24;
	cfg.mac[0] = 0x02;
	cfg.mac[5] = mac;
	for (int i = 0; i < 32; i++)
		cfg.secret[i] = (uint8_t)(i * 7 + mac);
	sd->h = h;
	sd->q = calloc(QMAX, sizeof(struct frame));
	assert_non_null(sd->q);
	sd->s = net_stack_create(&cfg, &io, h->now);
	assert_non_null(sd->s);
}

/* side_deliver - frames queued for sd into its stack; returns how many */
static unsigned side_deliver(struct side *sd)
{
	static struct frame tmp[QMAX];
	unsigned n = sd->qn;

	memcpy(tmp, sd->q, n * sizeof(struct frame));
	sd->qn = 0;
	for (unsigned i = 0; i < n; i++) {
		struct net_rx rx = { tmp[i].data, tmp[i].len, 0 };

		net_input_burst(sd->s, &rx, 1, sd->h->now);
	}
	return n;
}

/* ---- scripted next hop -------------------------------------------------- */

static struct tls_ctx *srv_ctx;       /* relay.test, signed by ca.crt */
static struct tls_ctx *cli_ctx;       /* trusts ca.crt */
static struct tls_ctx *cli_ctx_other; /* trusts ca2.crt only */

/* srv_log - one token into the server's transcript */
static void srv_log(struct h *h, const char *tok, size_t n)
{
	size_t l = strlen(h->log);

	assert_true(l + n + 2 < sizeof(h->log));
	snprintf(h->log + l, sizeof(h->log) - l, "%s%.*s", l ? " " : "",
		 (int)n, tok);
}

/* srv_close - the server ends the connection (FIN) */
static void srv_close(struct h *h, struct sconn *c)
{
	if (!c->closed)
		net_close(h->b.s, c->sk);
	c->closed = 1;
}

/* srv_end - the socket is gone: slot free, TLS state freed */
static void srv_end(struct sconn *c)
{
	tls_conn_free(c->tls);
	c->tls = NULL;
	c->used = 0;
}

/* srv_cipher_flush - TLS records to the wire */
static void srv_cipher_flush(struct h *h, struct sconn *c)
{
	const uint8_t *p;
	size_t n;

	while (c->tls && !c->closed &&
	       (n = tls_conn_cipher_peek(c->tls, &p)) > 0) {
		ssize_t w = net_send(h->b.s, c->sk, p, n);

		if (w <= 0)
			break;
		tls_conn_cipher_consume(c->tls, (size_t)w);
	}
}

static void srv_send(struct h *h, struct sconn *c, const char *s)
{
	ssize_t n;

	if (c->tls_up) {
		n = tls_conn_write(c->tls, s, strlen(s));
		srv_cipher_flush(h, c);
	} else {
		n = net_send(h->b.s, c->sk, s, strlen(s));
	}
	assert_int_equal(n, (ssize_t)strlen(s));
}

static void body_put(struct smsg *m, const char *p, size_t n)
{
	if (m->len + n > m->cap) {
		m->cap = (m->len + n) * 2 + 1024;
		m->body = realloc(m->body, m->cap);
		assert_non_null(m->body);
	}
	memcpy(m->body + m->len, p, n);
	m->len += n;
}

/* srv_line - one complete line (with CRLF) from the client */
static void srv_line(struct h *h, struct sconn *c, const char *l, size_t n)
{
	if (c->data) {
		if (n == 3 && !memcmp(l, ".\r\n", 3)) {
			srv_log(h, ".", 1);
			c->data = 0;
			c->cur->done = 1;
			srv_send(h, c, "250 2.0.0 Ok: queued\r\n");
			if (h->close_after_msg) {
				h->closes_after++;
				srv_close(h, c);
			}
			return;
		}
		if (l[0] == '.') {          /* RFC 5321 4.5.2 */
			l++;
			n--;
		}
		body_put(c->cur, l, n);
		return;
	}
	srv_log(h, l, strcspn(l, " \r\n"));
	if (!strncasecmp(l, "EHLO", 4)) {
		char r[512];

		/* RFC 3207 4.2: not offered again under TLS */
		snprintf(r, sizeof(r), "250-next.test\r\n%s%s",
			 h->starttls && !c->tls_up ? "250-STARTTLS\r\n" : "",
			 h->ext);
		srv_send(h, c, r);
	} else if (!strncasecmp(l, "STARTTLS", 8) && h->starttls &&
		   !c->tls_up) {
		if (h->starttls_refuse) {
			srv_send(h, c, "454 4.7.0 TLS not available due to "
				 "temporary reason\r\n");
			return;
		}
		srv_send(h, c, h->tls_garbage == 2 ?
			 "220 2.0.0 Ready to start TLS\r\nnot TLS\r\n" :
			 "220 2.0.0 Ready to start TLS\r\n");
		if (h->tls_garbage) {
			c->garbage = 1;
			return;
		}
		c->tls = tls_conn_new(srv_ctx, NULL, NULL, 0);
		assert_non_null(c->tls);
		c->tls_hs = 1;
	} else if (!strncasecmp(l, "HELO", 4)) {
		srv_send(h, c, "250 next.test\r\n");
	} else if (!strncasecmp(l, "MAIL FROM:", 10)) {
		assert_true(h->n_msgs < SRV_MSGS);
		c->cur = &h->msgs[h->n_msgs++];
		c->cur->tls = c->tls_up;
		snprintf(c->cur->from, sizeof(c->cur->from), "%.*s",
			 (int)(n - 12), l + 10);
		srv_send(h, c, "250 2.1.0 Ok\r\n");
	} else if (!strncasecmp(l, "RCPT TO:", 8)) {
		if (memmem(l, n, "reject", 6)) {
			srv_send(h, c, "550 5.1.1 <x>: Recipient address "
				 "rejected: User unknown\r\n");
			return;
		}
		assert_true(c->cur->n_rcpt < 8);
		snprintf(c->cur->rcpt[c->cur->n_rcpt++], 600, "%.*s",
			 (int)(n - 10), l + 8);
		srv_send(h, c, "250 2.1.5 Ok\r\n");
	} else if (!strncasecmp(l, "DATA", 4)) {
		if (h->abort_on_data) {     /* FIN after the RCPT replies */
			srv_close(h, c);
			return;
		}
		if (!c->cur || !c->cur->n_rcpt) {
			srv_send(h, c, "554 5.5.1 No valid recipients\r\n");
			return;
		}
		c->data = 1;
		srv_send(h, c, "354 End data with <CR><LF>.<CR><LF>\r\n");
	} else if (!strncasecmp(l, "RSET", 4)) {
		h->rsets++;
		if (h->abort_on_rset) {
			net_abort(h->b.s, c->sk);
			srv_end(c);
			return;
		}
		srv_send(h, c, "250 2.0.0 Ok\r\n");
	} else if (!strncasecmp(l, "QUIT", 4)) {
		h->quits++;
		srv_send(h, c, "221 2.0.0 Bye\r\n");
		srv_close(h, c);
	} else {
		srv_send(h, c, "502 5.5.2 Error: command not recognized\r\n");
	}
}

/* srv_plain - client plaintext (from the socket or from TLS) into lines */
static void srv_plain(struct h *h, struct sconn *c, const char *buf,
		      size_t n)
{
	for (size_t i = 0; i < n; i++) {
		assert_true(c->ll < sizeof(c->line));
		c->line[c->ll++] = buf[i];
		if (buf[i] == '\n') {
			int was_plain = !c->tls && !c->garbage;

			srv_line(h, c, c->line, c->ll);
			c->ll = 0;
			if (!c->used)
				return;
			if (was_plain && (c->tls || c->garbage)) {
				/* RFC 3207 4: nothing may follow STARTTLS */
				h->stls_extra += (unsigned)(n - i - 1);
				return;
			}
		}
	}
}

/* srv_tls_pump - handshake, then plaintext into lines; records out */
static void srv_tls_pump(struct h *h, struct sconn *c)
{
	char pt[4096];
	ssize_t r;

	if (c->tls_hs) {
		int hs = tls_conn_handshake(c->tls);

		if (hs < 0) {
			h->srv_tls_fail++;
			srv_log(h, "<TLS-FAIL>", 10);
			c->tls_hs = 0;
			srv_cipher_flush(h, c);     /* our alert */
			srv_close(h, c);
			return;
		}
		if (hs == 1) {
			c->tls_hs = 0;
			c->tls_up = 1;
			srv_log(h, "<TLS>", 5);
		}
	}
	srv_cipher_flush(h, c);
	while (c->tls_up && c->used &&
	       (r = tls_conn_read(c->tls, pt, sizeof(pt))) != 0) {
		if (r < 0) {
			if (r == -TLS_ECLOSED)
				srv_log(h, "<close_notify>", 14);
			break;
		}
		srv_plain(h, c, pt, (size_t)r);
	}
	if (c->used)
		srv_cipher_flush(h, c);
}

static void srv_read(struct h *h, struct sconn *c)
{
	char buf[8192];
	ssize_t n;

	while ((n = net_recv(h->b.s, c->sk, buf, sizeof(buf))) > 0) {
		size_t off = 0;

		if (c->garbage) {
			/* the ClientHello: answer with something not TLS */
			srv_log(h, "<GARBAGE>", 9);
			c->garbage = 2;
			if (!c->closed)
				srv_send(h, c, "this is not a TLS record, "
					 "just some plain text\r\n");
			continue;
		}
		if (!c->tls) {
			srv_plain(h, c, buf, (size_t)n);
			if (!c->used)
				return;
			continue;
		}
		while (off < (size_t)n && c->used && !c->closed) {
			size_t took = tls_conn_cipher_in(c->tls, buf + off,
							 (size_t)n - off);

			off += took;
			srv_tls_pump(h, c);
			assert_true(took > 0 || c->closed);
		}
		if (!c->used)
			return;
	}
	if (n == 0)
		srv_close(h, c);
}

static void srv_event(struct h *h, const struct net_event *ev)
{
	struct sconn *c;

	if (ev->events & NET_EV_ACCEPTED) {
		const struct lst *l = ev->user;

		for (c = h->sc; c < h->sc + SRV_CONNS && c->used; c++)
			;
		assert_true(c < h->sc + SRV_CONNS);
		memset(c, 0, sizeof(*c));
		c->used = 1;
		c->sk = ev->sock;
		c->port = l->port;
		net_set_user(h->b.s, ev->sock, c);
		h->accepts++;
		if (c->port == 2525)
			srv_send(h, c, "220 next.test ESMTP\r\n");
		else if (c->port == 2527) {
			srv_send(h, c, "421 4.3.2 next.test busy, try later\r\n");
			srv_close(h, c);
		}
		return;
	}
	c = ev->user;
	if (ev->events & NET_EV_CLOSED) {
		srv_end(c);
		return;
	}
	srv_cipher_flush(h, c);
	if (ev->events & (NET_EV_READABLE | NET_EV_PEER_FIN))
		srv_read(h, c);
}

/* ---- driving ------------------------------------------------------------ */

static void collect(struct h *h)
{
	struct djob *out[8];
	unsigned n;

	while ((n = deliver_done_peek(h->d, out, 8)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			assert_true(h->n_done < 32);
			/* each job exactly once */
			for (unsigned k = 0; k < h->n_done; k++)
				assert_ptr_not_equal(h->done[k], out[i]);
			h->done[h->n_done++] = out[i];
		}
		deliver_done_consume(h->d, n);
	}
}

/* step - one round: wire, stacks, events, timers; advances the clock to
 * the next deadline when nothing moved */
static void step(struct h *h)
{
	struct net_event ev[64];
	unsigned n, moved;

	moved = side_deliver(&h->a) + side_deliver(&h->b);
	net_poll(h->a.s, h->now);
	net_poll(h->b.s, h->now);
	while ((n = net_events(h->a.s, ev, 64)) > 0) {
		for (unsigned i = 0; i < n; i++)
			deliver_event(h->d, &ev[i], h->now);
		moved += n;
	}
	while ((n = net_events(h->b.s, ev, 64)) > 0) {
		for (unsigned i = 0; i < n; i++)
			srv_event(h, &ev[i]);
		moved += n;
	}
	moved += (unsigned)deliver_poll(h->d, h->now);
	net_poll(h->a.s, h->now);
	net_poll(h->b.s, h->now);
	collect(h);
	if (!moved && !h->a.qn && !h->b.qn) {
		uint64_t t = net_next_deadline(h->a.s), x;

		if ((x = net_next_deadline(h->b.s)) < t)
			t = x;
		if ((x = deliver_deadline(h->d)) < t)
			t = x;
		h->now = t > h->now && t != UINT64_MAX ? t : h->now + 1000;
	}
}

/* run_until - step until n jobs are done or limit_us of fake time passed */
static void run_jobs(struct h *h, unsigned n, uint64_t limit_us)
{
	uint64_t end = h->now + limit_us;

	while (h->n_done < n && h->now < end)
		step(h);
	assert_int_equal(h->n_done, n);
}

/* settle - step for a while of fake time (connections finish, close) */
static void settle(struct h *h, uint64_t us)
{
	uint64_t end = h->now + us;

	while (h->now < end)
		step(h);
}

/* ---- fixture ------------------------------------------------------------ */

static const char *body_text(void)
{
	static char *b;

	if (!b) {
		size_t off = 0, cap = 64 * 1024;

		b = malloc(cap);
		assert_non_null(b);
		off += (size_t)snprintf(b + off, cap - off,
			"From: alice@example.org\r\nTo: rcpt0@d0.example\r\n"
			"Subject: test\r\n\r\n.leading dot line\r\n");
		for (int i = 0; off + 100 < cap - 200 && i < 700; i++)
			off += (size_t)snprintf(b + off, cap - off,
				"%sline %d of a body that fills a few windows\r\n",
				i % 50 == 0 ? "." : "", i);
		snprintf(b + off, cap - off, "..two dots\r\nlast line\r\n");
	}
	return b;
}

static uint64_t store(struct h *h, const char **addr, unsigned n)
{
	struct stor_msg m;
	struct stor_rcpt r[8];
	uint64_t qid;

	memset(&m, 0, sizeof(m));
	memset(r, 0, sizeof(r));
	m.arrival_us = 1700000000000000ull;
	m.next_attempt_us = m.arrival_us;
	m.sender = STOR_STR("alice@example.org");
	m.envid = STOR_STR("env-1");
	m.flags = STOR_MSG_RET_HDRS;
	m.nrcpt = n;
	m.rcpt = r;
	for (unsigned i = 0; i < n; i++) {
		r[i].addr = (struct stor_str){ addr[i], (uint32_t)strlen(addr[i]) };
		r[i].dest = STOR_STR("d0.example");
		r[i].notify = STOR_NOTIFY_SUCCESS | STOR_NOTIFY_FAILURE;
		r[i].orcpt = (struct stor_str){ "rfc822;orig+x@d0.example", 24 };
	}
	assert_int_equal(enqueue_sync(&h->qf, &m, body_text(),
				      strlen(body_text()), &qid), 0);
	return qid;
}

static struct djob *job_new(uint64_t qid, uint32_t dest_id, unsigned nrcpt,
			    const uint16_t *ports, unsigned nhops)
{
	struct djob *j = calloc(1, sizeof(*j));

	assert_non_null(j);
	j->qid = qid;
	j->dest_id = dest_id;
	j->tls = SMTP_TLS_OPPORTUNISTIC;
	j->nhops = (uint8_t)nhops;
	for (unsigned i = 0; i < nhops; i++)
		j->hop[i] = (struct djob_hop){ IP_B, ports[i] };
	snprintf(j->dest, sizeof(j->dest), "d0.example");
	j->nrcpt = nrcpt;
	j->rcpt = calloc(nrcpt, sizeof(*j->rcpt));
	for (unsigned i = 0; i < nrcpt; i++)
		j->rcpt[i].index = i;
	return j;
}

static void job_free(struct djob *j)
{
	free(j->rcpt);
	free(j);
}

/* h_new_tls - the fixture with a client TLS context (NULL: none) */
static struct h *h_new_tls(unsigned max_conns, struct tls_ctx *tls)
{
	struct h *h = calloc(1, sizeof(*h));
	struct deliver_conf dc = { 0 };

	assert_non_null(h);
	h->now = 1000000;
	side_init(h, &h->a, IP_A, 1);
	side_init(h, &h->b, IP_B, 2);
	h->a.peer = &h->b;
	h->b.peer = &h->a;
	h->l[0].port = 2525;
	h->l[1].port = 2527;
	h->l[2].port = 2530;
	for (int i = 0; i < 3; i++)
		assert_int_equal(net_listen(h->b.s, h->l[i].port, &h->l[i]), 0);
	h->ext = "250-PIPELINING\r\n250-DSN\r\n250 8BITMIME\r\n";
	h->qf.dir = test_tmpdir();
	assert_int_equal(qfix_open(&h->qf), 0);
	h->cfg.max_active = 100;
	h->cfg.max_msgs_per_conn = 100;
	h->cfg.connect_timeout_s = 2;
	h->cfg.idle_conn_s = 5;
	snprintf(h->cfg.helo_name, sizeof(h->cfg.helo_name), "relay.test");
	dc.s = h->a.s;
	dc.q = h->qf.q;
	dc.cfg = &h->cfg;
	dc.tls = tls;
	dc.max_conns = max_conns;
	dc.t_reply_ms = 30000;
	h->d = deliver_new(&dc);
	assert_non_null(h->d);
	return h;
}

static struct h *h_new(unsigned max_conns)
{
	return h_new_tls(max_conns, NULL);
}

static void h_free(struct h *h)
{
	struct deliver_stats st;

	deliver_stats(h->d, &st);
	assert_int_equal(st.waiting + st.active + st.done_pending, 0);
	deliver_free(h->d);
	net_stack_destroy(h->a.s, h->now);
	net_stack_destroy(h->b.s, h->now);
	free(h->a.q);
	free(h->b.q);
	for (unsigned i = 0; i < h->n_done; i++)
		job_free(h->done[i]);
	for (unsigned i = 0; i < SRV_MSGS; i++)
		free(h->msgs[i].body);
	for (unsigned i = 0; i < SRV_CONNS; i++)
		tls_conn_free(h->sc[i].tls);
	qfix_close(&h->qf);
	test_rmdir(h->qf.dir);
	free(h);
}

static const char *two[] = { "rcpt0@d0.example", "rcpt1@d0.example" };

/* ---- cases ---------------------------------------------------------------- */

/* one message, two recipients: delivered byte-exact, DSN parameters */
static void test_two_rcpts_byte_exact(void **state)
{
	struct h *h = h_new(0);
	uint16_t ports[] = { 2525 };
	uint64_t qid = store(h, two, 2);
	struct djob *j = job_new(qid, 7, 2, ports, 1);
	const char *b = body_text();

	(void)state;
	assert_int_equal(deliver_job(h->d, j, h->now), 0);
	run_jobs(h, 1, 60000000);
	assert_int_equal(j->status, DJOB_OK);
	assert_int_equal(j->code, 250);
	assert_string_equal(j->enh, "2.0.0");
	for (int i = 0; i < 2; i++) {
		assert_int_equal(j->rcpt[i].code, 250);
		assert_string_equal(j->rcpt[i].enh, "2.0.0");
	}
	assert_string_equal(j->relay, "10.0.0.2:2525");
	assert_false(j->reused);
	assert_false(j->tls_used);
	assert_true(j->ext & SMTP_EXT_DSN);
	assert_true(j->t_done_us >= j->t_start_us);
	assert_int_equal(h->n_msgs, 1);
	assert_true(h->msgs[0].done);
	assert_string_equal(h->msgs[0].from,
			    "<alice@example.org> RET=HDRS ENVID=env-1");
	assert_int_equal(h->msgs[0].n_rcpt, 2);
	assert_string_equal(h->msgs[0].rcpt[0], "<rcpt0@d0.example> "
			    "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+2Bx@d0.example");
	assert_int_equal(h->msgs[0].len, strlen(b));
	assert_memory_equal(h->msgs[0].body, b, strlen(b));
	assert_int_equal(h->accepts, 1);
	h_free(h);
}

/* 550 for one recipient, 250 for the other: per-recipient results */
static void test_rcpt_5xx_and_2xx(void **state)
{
	static const char *rc[] = { "reject@d0.example", "ok@d0.example" };
	struct h *h = h_new(0);
	uint16_t ports[] = { 2525 };
	struct djob *j = job_new(store(h, rc, 2), 7, 2, ports, 1);

	(void)state;
	deliver_job(h->d, j, h->now);
	run_jobs(h, 1, 60000000);
	assert_int_equal(j->status, DJOB_OK);
	assert_int_equal(j->rcpt[0].code, 550);
	assert_string_equal(j->rcpt[0].enh, "5.1.1");
	assert_non_null(strstr(j->rcpt[0].text, "User unknown"));
	assert_int_equal(j->rcpt[1].code, 250);
	assert_int_equal(j->code, 250);
	assert_int_equal(h->msgs[0].n_rcpt, 1);
	assert_int_equal(h->msgs[0].len, strlen(body_text()));
	h_free(h);
}

/* refused hop 0 and a 421 greeting: the next hop is used */
static void test_hop_fallback(void **state)
{
	struct h *h = h_new(0);
	uint16_t p1[] = { 2526, 2525 }, p2[] = { 2527, 2525 };
	uint64_t qid = store(h, two, 2);
	struct djob *j1 = job_new(qid, 1, 2, p1, 2);
	struct djob *j2 = job_new(qid, 2, 2, p2, 2);

	(void)state;
	deliver_job(h->d, j1, h->now);
	run_jobs(h, 1, 60000000);
	assert_int_equal(j1->status, DJOB_OK);
	assert_string_equal(j1->relay, "10.0.0.2:2525");
	assert_int_equal(j1->rcpt[0].code, 250);
	deliver_job(h->d, j2, h->now);
	run_jobs(h, 2, 60000000);
	assert_int_equal(j2->status, DJOB_OK);
	assert_string_equal(j2->relay, "10.0.0.2:2525");
	assert_int_equal(j2->rcpt[1].code, 250);
	assert_false(j2->reused);       /* other dest_id: own connection */
	assert_int_equal(h->n_msgs, 2);
	h_free(h);
}

/* every hop refused / 421 / timing out: DJOB_CONN_FAIL with the reason */
static void test_all_hops_fail(void **state)
{
	struct h *h = h_new(0);
	uint16_t p1[] = { 2526, 2528 }, p2[] = { 2527 }, p3[] = { 2599 };
	uint64_t qid = store(h, two, 2);
	struct djob *j1 = job_new(qid, 1, 2, p1, 2);
	struct djob *j2 = job_new(qid, 2, 2, p2, 1);
	struct djob *j3 = job_new(qid, 3, 2, p3, 1);
	uint64_t t0;

	(void)state;
	deliver_job(h->d, j1, h->now);
	run_jobs(h, 1, 60000000);
	assert_int_equal(j1->status, DJOB_CONN_FAIL);
	assert_int_equal(j1->code, 451);
	assert_string_equal(j1->enh, "4.4.1");
	assert_string_equal(j1->text,
			    "connect to 10.0.0.2:2528: connection refused");
	assert_string_equal(j1->relay, "10.0.0.2:2528");
	for (int i = 0; i < 2; i++) {
		assert_int_equal(j1->rcpt[i].code, 451);
		assert_string_equal(j1->rcpt[i].enh, "4.4.1");
	}
	deliver_job(h->d, j2, h->now);
	run_jobs(h, 2, 60000000);
	assert_int_equal(j2->status, DJOB_CONN_FAIL);
	assert_int_equal(j2->code, 421);
	assert_string_equal(j2->enh, "4.3.2");
	assert_non_null(strstr(j2->text, "10.0.0.2:2527"));
	assert_non_null(strstr(j2->text, "busy, try later"));
	t0 = h->now;
	deliver_job(h->d, j3, h->now);
	run_jobs(h, 3, 60000000);
	assert_int_equal(j3->status, DJOB_CONN_FAIL);
	assert_string_equal(j3->enh, "4.4.1");
	assert_string_equal(j3->text,
			    "connect to 10.0.0.2:2599: timed out after 2 s");
	assert_true(h->now - t0 >= 2000000 && h->now - t0 < 2500000);
	assert_int_equal(h->n_msgs, 0);
	h_free(h);
}

/* a second job to the same destination reuses the idle connection */
static void test_reuse(void **state)
{
	struct h *h = h_new(0);
	uint16_t ports[] = { 2525 };
	uint64_t qid = store(h, two, 2);
	struct djob *j1 = job_new(qid, 7, 1, ports, 1);
	struct djob *j2 = job_new(qid, 7, 1, ports, 1);
	struct deliver_stats st;

	(void)state;
	j2->rcpt[0].index = 1;
	deliver_job(h->d, j1, h->now);
	run_jobs(h, 1, 60000000);
	deliver_stats(h->d, &st);
	assert_int_equal(st.conns_idle, 1);
	deliver_job(h->d, j2, h->now);
	run_jobs(h, 2, 60000000);
	assert_int_equal(j2->status, DJOB_OK);
	assert_true(j2->reused);
	assert_false(j1->reused);
	assert_int_equal(j2->rcpt[0].code, 250);
	assert_int_equal(h->accepts, 1);
	assert_int_equal(h->rsets, 1);
	assert_int_equal(h->n_msgs, 2);
	assert_string_equal(h->msgs[1].rcpt[0], "<rcpt1@d0.example> "
			    "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+2Bx@d0.example");
	/* idle_conn_s later: QUIT, closed */
	settle(h, 6000000);
	assert_int_equal(h->quits, 1);
	deliver_stats(h->d, &st);
	assert_int_equal(st.conns, 0);
	assert_int_equal(st.reused, 1);
	h_free(h);
}

/* max_msgs_per_conn = 2: three jobs take two connections */
static void test_max_msgs_per_conn(void **state)
{
	struct h *h = h_new(0);
	uint16_t ports[] = { 2525 };
	uint64_t qid = store(h, two, 2);
	struct djob *j[3];

	(void)state;
	h->cfg.max_msgs_per_conn = 2;
	for (int i = 0; i < 3; i++) {
		j[i] = job_new(qid, 7, 2, ports, 1);
		deliver_job(h->d, j[i], h->now);
		run_jobs(h, (unsigned)i + 1, 60000000);
		assert_int_equal(j[i]->status, DJOB_OK);
		assert_int_equal(j[i]->rcpt[1].code, 250);
	}
	assert_false(j[0]->reused);
	assert_true(j[1]->reused);
	assert_false(j[2]->reused);
	assert_int_equal(h->accepts, 2);
	assert_int_equal(h->quits, 1);      /* the first, at its limit */
	assert_int_equal(h->n_msgs, 3);
	settle(h, 6000000);
	h_free(h);
}

/* djob.max_msgs (the directory's msgs_per_conn) overrides
 * max_msgs_per_conn both ways: 1 under a config of 100 never reuses and
 * QUITs each connection at once; 2 under a config of 1 reuses once */
static void test_job_max_msgs(void **state)
{
	uint16_t ports[] = { 2525 };
	struct h *h = h_new(0);
	uint64_t qid = store(h, two, 2);
	struct djob *j[3];

	(void)state;
	assert_int_equal(h->cfg.max_msgs_per_conn, 100);
	for (int i = 0; i < 3; i++) {
		j[i] = job_new(qid, 7, 2, ports, 1);
		j[i]->max_msgs = 1;
		deliver_job(h->d, j[i], h->now);
		run_jobs(h, (unsigned)i + 1, 60000000);
		assert_int_equal(j[i]->status, DJOB_OK);
		assert_int_equal(j[i]->rcpt[1].code, 250);
		assert_false(j[i]->reused);
	}
	assert_int_equal(h->accepts, 3);
	assert_int_equal(h->n_msgs, 3);
	settle(h, 1000000);                 /* < idle_conn_s (5 s) */
	assert_int_equal(h->quits, 3);      /* each at its limit, not idle */
	h_free(h);

	h = h_new(0);
	qid = store(h, two, 2);
	h->cfg.max_msgs_per_conn = 1;
	for (int i = 0; i < 3; i++) {
		j[i] = job_new(qid, 7, 2, ports, 1);
		j[i]->max_msgs = 2;
		deliver_job(h->d, j[i], h->now);
		run_jobs(h, (unsigned)i + 1, 60000000);
		assert_int_equal(j[i]->status, DJOB_OK);
	}
	assert_false(j[0]->reused);
	assert_true(j[1]->reused);
	assert_false(j[2]->reused);
	assert_int_equal(h->accepts, 2);
	assert_int_equal(h->quits, 1);      /* the first, after two */
	assert_int_equal(h->n_msgs, 3);
	settle(h, 6000000);
	h_free(h);
}

/* the peer closes an idle connection: dropped silently, next job opens
 * a fresh one */
static void test_peer_closes_idle(void **state)
{
	struct h *h = h_new(0);
	uint16_t ports[] = { 2525 };
	uint64_t qid = store(h, two, 2);
	struct djob *j1 = job_new(qid, 7, 2, ports, 1);
	struct djob *j2 = job_new(qid, 7, 2, ports, 1);
	struct deliver_stats st;

	(void)state;
	h->close_after_msg = 1;
	deliver_job(h->d, j1, h->now);
	run_jobs(h, 1, 60000000);
	settle(h, 1000000);
	deliver_stats(h->d, &st);
	assert_int_equal(st.conns, 0);
	assert_int_equal(h->n_done, 1);
	deliver_job(h->d, j2, h->now);
	run_jobs(h, 2, 60000000);
	assert_int_equal(j2->status, DJOB_OK);
	assert_false(j2->reused);
	assert_int_equal(h->accepts, 2);
	h_free(h);
}

/* message deleted from the queue: DJOB_MSG_FAIL, no connection */
static void test_msg_deleted(void **state)
{
	struct h *h = h_new(0);
	uint16_t ports[] = { 2525 };
	uint64_t qid = store(h, two, 2);
	struct stor_sub s = { .op = STOR_OP_DELETE, .qid = qid };
	struct djob *j;

	(void)state;
	assert_int_equal(sync_submit(h->qf.p, &s), 0);
	j = job_new(qid, 7, 2, ports, 1);
	deliver_job(h->d, j, h->now);
	run_jobs(h, 1, 1000000);
	assert_int_equal(j->status, DJOB_MSG_FAIL);
	assert_int_equal(j->code, 0);
	assert_string_equal(j->text, "message no longer in the queue");
	assert_int_equal(h->accepts, 0);
	h_free(h);
}

/* deliver_stop returns the job in a session and the one waiting */
static void test_stop(void **state)
{
	struct h *h = h_new(1);
	uint16_t silent[] = { 2530 }, ok[] = { 2525 };
	uint64_t qid = store(h, two, 2);
	struct djob *j1 = job_new(qid, 1, 2, silent, 1);
	struct djob *j2 = job_new(qid, 2, 2, ok, 1);
	struct deliver_stats st;

	(void)state;
	deliver_job(h->d, j1, h->now);
	deliver_job(h->d, j2, h->now);
	settle(h, 1000000);
	assert_int_equal(h->n_done, 0);
	deliver_stats(h->d, &st);
	assert_int_equal(st.waiting, 1);
	assert_int_equal(st.active, 1);
	assert_int_equal(deliver_room(h->d), 98);
	deliver_stop(h->d, h->now);
	collect(h);
	assert_int_equal(h->n_done, 2);
	for (unsigned i = 0; i < 2; i++) {
		struct djob *j = h->done[i];

		assert_int_equal(j->status, DJOB_CONN_FAIL);
		assert_int_equal(j->code, 451);
		assert_string_equal(j->enh, "4.3.2");
		assert_string_equal(j->text, "sluiced shutting down");
		assert_int_equal(j->rcpt[1].code, 451);
	}
	assert_int_equal(deliver_room(h->d), 100);
	h_free(h);
}

/* a next hop that never greets: the engine's timeout fails the hop */
static void test_greeting_timeout(void **state)
{
	struct h *h = h_new(0);
	uint16_t silent[] = { 2530 };
	struct djob *j = job_new(store(h, two, 2), 1, 2, silent, 1);

	(void)state;
	deliver_job(h->d, j, h->now);
	run_jobs(h, 1, 120000000);
	assert_int_equal(j->status, DJOB_CONN_FAIL);
	assert_int_equal(j->code, 421);
	assert_string_equal(j->enh, "4.4.2");
	assert_non_null(strstr(j->text, "timeout after 30 s"));
	h_free(h);
}

/* the connection is lost in the middle of the transaction: DJOB_OK with
 * 451 4.4.2 for recipients the next hop had accepted at RCPT */
static void test_lost_mid_transaction(void **state)
{
	static const char *rc[] = { "reject@d0.example", "ok@d0.example" };
	struct h *h = h_new(0);
	uint16_t ports[] = { 2525 };
	struct djob *j = job_new(store(h, rc, 2), 7, 2, ports, 1);

	(void)state;
	h->abort_on_data = 1;
	deliver_job(h->d, j, h->now);
	run_jobs(h, 1, 60000000);
	assert_int_equal(j->status, DJOB_OK);
	assert_int_equal(j->code, 451);
	assert_string_equal(j->enh, "4.4.2");
	assert_string_equal(j->text, "lost connection with 10.0.0.2:2525 "
			    "while sending the message (closed by the peer)");
	assert_int_equal(j->rcpt[0].code, 550);
	assert_int_equal(j->rcpt[1].code, 451);
	assert_string_equal(j->rcpt[1].enh, "4.4.2");
	h_free(h);
}

/* a reused connection that dies before answering: the job is retried
 * once on a fresh connection, not failed */
static void test_reused_dead_retry(void **state)
{
	struct h *h = h_new(0);
	uint16_t ports[] = { 2525 };
	uint64_t qid = store(h, two, 2);
	struct djob *j1 = job_new(qid, 7, 2, ports, 1);
	struct djob *j2 = job_new(qid, 7, 2, ports, 1);
	struct deliver_stats st;

	(void)state;
	deliver_job(h->d, j1, h->now);
	run_jobs(h, 1, 60000000);
	h->abort_on_rset = 1;
	deliver_job(h->d, j2, h->now);
	run_jobs(h, 2, 60000000);
	assert_int_equal(j2->status, DJOB_OK);
	assert_int_equal(j2->rcpt[0].code, 250);
	assert_false(j2->reused);
	assert_int_equal(h->accepts, 2);
	assert_int_equal(h->n_msgs, 2);
	assert_int_equal(h->msgs[1].len, strlen(body_text()));
	deliver_stats(h->d, &st);
	assert_int_equal(st.retried_fresh, 1);
	h_free(h);
}

/* ---- STARTTLS toward the next hop ---------------------------------------- */

static const char *const tls_dialogue =
	"EHLO STARTTLS <TLS> EHLO MAIL RCPT RCPT DATA .";
static const char *const plain_dialogue = "EHLO MAIL RCPT RCPT DATA .";

/* tls_case - a fresh fixture with client context cli, the next hop
 * offering STARTTLS or not; one two-recipient job with TLS policy pol
 * for destination dest, run to its end */
static struct djob *tls_case(struct h **hp, struct tls_ctx *cli,
			     int starttls, enum smtp_tls_policy pol,
			     const char *dest)
{
	struct h *h = h_new_tls(0, cli);
	uint16_t ports[] = { 2525 };
	struct djob *j = job_new(store(h, two, 2), 7, 2, ports, 1);

	h->starttls = starttls;
	j->tls = (uint8_t)pol;
	snprintf(j->dest, sizeof(j->dest), "%s", dest);
	assert_int_equal(deliver_job(h->d, j, h->now), 0);
	run_jobs(h, 1, 60000000);
	*hp = h;
	return j;
}

/* check_sent - the job was delivered byte-exact, over TLS or not */
static void check_sent(struct h *h, struct djob *j, unsigned m, bool tls)
{
	assert_int_equal(j->status, DJOB_OK);
	assert_int_equal(j->code, 250);
	assert_string_equal(j->enh, "2.0.0");
	assert_string_equal(j->text, "2.0.0 Ok: queued");
	for (int i = 0; i < 2; i++)
		assert_int_equal(j->rcpt[i].code, 250);
	assert_string_equal(j->relay, "10.0.0.2:2525");
	assert_int_equal(j->tls_used, tls);
	assert_true(h->n_msgs > m);
	assert_true(h->msgs[m].done);
	assert_int_equal(h->msgs[m].tls, tls);
	assert_int_equal(h->msgs[m].n_rcpt, 2);
	assert_int_equal(h->msgs[m].len, strlen(body_text()));
	assert_memory_equal(h->msgs[m].body, body_text(), strlen(body_text()));
	assert_int_equal(h->stls_extra, 0);
}

/* check_tls_fail - DJOB_CONN_FAIL 421 4.7.5 naming why, for the job and
 * each recipient; no transaction reached the next hop */
static void check_tls_fail(struct h *h, struct djob *j, const char *why)
{
	char want[DJOB_TEXT];

	snprintf(want, sizeof(want), "session with 10.0.0.2:2525 failed: "
		 "421 4.7.5 %s", why);
	assert_int_equal(j->status, DJOB_CONN_FAIL);
	assert_int_equal(j->code, 421);
	assert_string_equal(j->enh, "4.7.5");
	if (strncmp(j->text, want, strlen(want)))
		fail_msg("text \"%s\", want a prefix \"%s\"", j->text, want);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(j->rcpt[i].code, 421);
		assert_string_equal(j->rcpt[i].enh, "4.7.5");
		assert_string_equal(j->rcpt[i].text, j->text);
	}
	assert_string_equal(j->relay, "10.0.0.2:2525");
	assert_false(j->tls_used);
	assert_int_equal(h->n_msgs, 0);
	assert_int_equal(h->accepts, 1);      /* no other attempt */
	assert_null(strstr(h->log, "MAIL"));
}

/* opportunistic, STARTTLS offered: the message goes only after the
 * handshake, EHLO is asked again (the post-TLS reply, without STARTTLS,
 * is the one kept); a second job reuses the TLS session; the idle QUIT
 * goes under TLS too */
static void test_tls_opportunistic_offered(void **state)
{
	struct h *h;
	struct djob *j = tls_case(&h, cli_ctx, 1, SMTP_TLS_OPPORTUNISTIC,
				  "d0.example");
	uint16_t ports[] = { 2525 };
	struct djob *j2;
	struct deliver_stats st;

	(void)state;
	check_sent(h, j, 0, true);
	assert_string_equal(h->log, tls_dialogue);
	assert_false(j->reused);
	assert_true(j->ext & SMTP_EXT_PIPELINING);
	assert_false(j->ext & SMTP_EXT_STARTTLS);
	assert_int_equal(h->srv_tls_fail, 0);
	deliver_stats(h->d, &st);
	assert_int_equal(st.tls_ok, 1);
	assert_int_equal(st.tls_fail, 0);

	j2 = job_new(j->qid, 7, 2, ports, 1);
	deliver_job(h->d, j2, h->now);
	run_jobs(h, 2, 60000000);
	check_sent(h, j2, 1, true);
	assert_true(j2->reused);
	settle(h, 6000000);
	assert_string_equal(h->log, "EHLO STARTTLS <TLS> EHLO MAIL RCPT RCPT "
			    "DATA . RSET MAIL RCPT RCPT DATA . QUIT");
	assert_int_equal(h->quits, 1);
	assert_int_equal(h->accepts, 1);
	deliver_stats(h->d, &st);
	assert_int_equal(st.tls_ok, 1);
	assert_int_equal(st.conns, 0);
	h_free(h);
}

/* opportunistic, STARTTLS not offered: plaintext */
static void test_tls_opportunistic_not_offered(void **state)
{
	struct h *h;
	struct djob *j = tls_case(&h, cli_ctx, 0, SMTP_TLS_OPPORTUNISTIC,
				  "d0.example");

	(void)state;
	check_sent(h, j, 0, false);
	assert_string_equal(h->log, plain_dialogue);
	h_free(h);
}

/* required: not offered -> 4.7.5 and QUIT, nothing else sent after EHLO;
 * offered -> TLS (no certificate check: the name does not matter) */
static void test_tls_required(void **state)
{
	struct h *h;
	struct djob *j = tls_case(&h, cli_ctx, 0, SMTP_TLS_REQUIRED,
				  "d0.example");

	(void)state;
	check_tls_fail(h, j, "TLS is required, but the next hop does not "
		       "offer STARTTLS");
	settle(h, 1000000);
	assert_string_equal(h->log, "EHLO QUIT");
	h_free(h);

	j = tls_case(&h, cli_ctx, 1, SMTP_TLS_REQUIRED, "d0.example");
	check_sent(h, j, 0, true);
	assert_string_equal(h->log, tls_dialogue);
	h_free(h);

	/* no client context: required cannot be met */
	j = tls_case(&h, NULL, 1, SMTP_TLS_REQUIRED, "d0.example");
	check_tls_fail(h, j, "TLS handshake failed: no client TLS context "
		       "configured");
	assert_string_equal(h->log, "EHLO STARTTLS");
	h_free(h);
}

/* verify: the chain against the client context's CA and the destination
 * name against the certificate (SAN DNS:relay.test) */
static void test_tls_verify(void **state)
{
	struct h *h;
	struct djob *j = tls_case(&h, cli_ctx, 1, SMTP_TLS_VERIFY,
				  "relay.test");
	struct deliver_stats st;

	(void)state;
	check_sent(h, j, 0, true);
	assert_string_equal(h->log, tls_dialogue);
	h_free(h);

	/* right CA, wrong name */
	j = tls_case(&h, cli_ctx, 1, SMTP_TLS_VERIFY, "other.test");
	check_tls_fail(h, j, "TLS handshake failed: certificate verify "
		       "failed: hostname mismatch");
	settle(h, 1000000);         /* the client's alert reaches it */
	assert_string_equal(h->log, "EHLO STARTTLS <TLS-FAIL>");
	deliver_stats(h->d, &st);
	assert_int_equal(st.tls_fail, 1);
	assert_int_equal(st.tls_ok, 0);
	h_free(h);

	/* right name, a CA the client does not trust */
	j = tls_case(&h, cli_ctx_other, 1, SMTP_TLS_VERIFY, "relay.test");
	check_tls_fail(h, j, "TLS handshake failed: certificate verify "
		       "failed: unable to get local issuer certificate");
	settle(h, 1000000);         /* the client's alert reaches it */
	assert_string_equal(h->log, "EHLO STARTTLS <TLS-FAIL>");
	h_free(h);

	/* the same untrusted certificate is fine below verify */
	j = tls_case(&h, cli_ctx_other, 1, SMTP_TLS_REQUIRED, "other.test");
	check_sent(h, j, 0, true);
	h_free(h);
	j = tls_case(&h, cli_ctx_other, 1, SMTP_TLS_OPPORTUNISTIC,
		     "other.test");
	check_sent(h, j, 0, true);
	h_free(h);
}

/* none: STARTTLS offered but never asked for */
static void test_tls_none_offered(void **state)
{
	struct h *h;
	struct djob *j = tls_case(&h, cli_ctx, 1, SMTP_TLS_NONE, "d0.example");

	(void)state;
	check_sent(h, j, 0, false);
	assert_string_equal(h->log, plain_dialogue);
	assert_true(j->ext & SMTP_EXT_STARTTLS);    /* it was offered */
	h_free(h);
}

/* the next hop answers the ClientHello with plain text: the handshake
 * fails. required: 4.7.5. opportunistic: the same - deliver does not
 * fall back to plaintext (no second connection, no retry without TLS) */
static void test_tls_handshake_garbage(void **state)
{
	static const enum smtp_tls_policy pol[] = { SMTP_TLS_REQUIRED,
						    SMTP_TLS_OPPORTUNISTIC };

	(void)state;
	for (unsigned i = 0; i < 2; i++) {
		struct h *h = h_new_tls(0, cli_ctx);
		uint16_t ports[] = { 2525 };
		struct djob *j = job_new(store(h, two, 2), 7, 2, ports, 1);
		struct deliver_stats st;

		h->starttls = 1;
		h->tls_garbage = 1;
		j->tls = (uint8_t)pol[i];
		deliver_job(h->d, j, h->now);
		run_jobs(h, 1, 60000000);
		check_tls_fail(h, j, "TLS handshake failed: ");
		assert_non_null(strstr(j->text, "wrong version number"));
		settle(h, 1000000);
		assert_string_equal(h->log, "EHLO STARTTLS <GARBAGE>");
		deliver_stats(h->d, &st);
		assert_int_equal(st.tls_fail, 1);
		assert_int_equal(st.conns, 0);
		h_free(h);
	}
}

/* RFC 3207 4: bytes behind the 220 to STARTTLS (a plaintext injection)
 * end the session before any handshake, even for opportunistic */
static void test_tls_data_after_220(void **state)
{
	struct h *h = h_new_tls(0, cli_ctx);
	uint16_t ports[] = { 2525 };
	struct djob *j = job_new(store(h, two, 2), 7, 2, ports, 1);

	(void)state;
	h->starttls = 1;
	h->tls_garbage = 2;
	deliver_job(h->d, j, h->now);
	run_jobs(h, 1, 60000000);
	check_tls_fail(h, j, "next hop sent data after its STARTTLS reply");
	settle(h, 1000000);
	assert_string_equal(h->log, "EHLO STARTTLS");
	h_free(h);
}

/* 454 to STARTTLS: opportunistic goes on in plaintext on the same
 * session; required fails 4.7.5 (and says QUIT) */
static void test_tls_starttls_refused(void **state)
{
	struct h *h = h_new_tls(0, cli_ctx);
	uint16_t ports[] = { 2525 };
	struct djob *j = job_new(store(h, two, 2), 7, 2, ports, 1);

	(void)state;
	h->starttls = 1;
	h->starttls_refuse = 1;
	deliver_job(h->d, j, h->now);
	run_jobs(h, 1, 60000000);
	check_sent(h, j, 0, false);
	assert_string_equal(h->log, "EHLO STARTTLS MAIL RCPT RCPT DATA .");
	h_free(h);

	h = h_new_tls(0, cli_ctx);
	j = job_new(store(h, two, 2), 7, 2, ports, 1);
	h->starttls = 1;
	h->starttls_refuse = 1;
	j->tls = SMTP_TLS_REQUIRED;
	deliver_job(h->d, j, h->now);
	run_jobs(h, 1, 60000000);
	check_tls_fail(h, j, "TLS is required, but STARTTLS was refused by "
		       "the next hop");
	settle(h, 1000000);
	assert_string_equal(h->log, "EHLO STARTTLS QUIT");
	h_free(h);
}

/* grp_setup - CA, server certificate for relay.test, contexts */
static char pki_dir[64];

static int grp_setup(void **state)
{
	char crt[128], key[128], ca[128], ca2[128], err[256];

	(void)state;
	snprintf(pki_dir, sizeof(pki_dir), "/tmp/deliver-tls-XXXXXX");
	if (!mkdtemp(pki_dir) || tls_certs_make(pki_dir, "relay.test") < 0)
		return -1;
	snprintf(crt, sizeof(crt), "%s/srv.crt", pki_dir);
	snprintf(key, sizeof(key), "%s/srv.key", pki_dir);
	snprintf(ca, sizeof(ca), "%s/ca.crt", pki_dir);
	snprintf(ca2, sizeof(ca2), "%s/ca2.crt", pki_dir);
	srv_ctx = tls_ctx_server_new(crt, key, err, sizeof(err));
	if (srv_ctx)
		cli_ctx = tls_ctx_client_new(ca, err, sizeof(err));
	if (cli_ctx)
		cli_ctx_other = tls_ctx_client_new(ca2, err, sizeof(err));
	if (!cli_ctx_other) {
		fprintf(stderr, "TLS contexts: %s\n", err);
		return -1;
	}
	return 0;
}

static int grp_teardown(void **state)
{
	(void)state;
	tls_ctx_free(srv_ctx);
	tls_ctx_free(cli_ctx);
	tls_ctx_free(cli_ctx_other);
	test_rmdir(strdup(pki_dir));
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_rcpts_byte_exact),
		cmocka_unit_test(test_rcpt_5xx_and_2xx),
		cmocka_unit_test(test_hop_fallback),
		cmocka_unit_test(test_all_hops_fail),
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_max_msgs_per_conn),
		cmocka_unit_test(test_job_max_msgs),
		cmocka_unit_test(test_peer_closes_idle),
		cmocka_unit_test(test_msg_deleted),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_greeting_timeout),
		cmocka_unit_test(test_lost_mid_transaction),
		cmocka_unit_test(test_reused_dead_retry),
		cmocka_unit_test(test_tls_opportunistic_offered),
		cmocka_unit_test(test_tls_opportunistic_not_offered),
		cmocka_unit_test(test_tls_required),
		cmocka_unit_test(test_tls_verify),
		cmocka_unit_test(test_tls_none_offered),
		cmocka_unit_test(test_tls_handshake_garbage),
		cmocka_unit_test(test_tls_data_after_220),
		cmocka_unit_test(test_tls_starttls_refused),
	};

	return cmocka_run_group_tests(tests, grp_setup, grp_teardown);
}
