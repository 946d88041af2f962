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
 */
#include "stor_test.h"

#include "deliver.h"
#include "net.h"
#include "smtp_client.h"

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
};

struct sconn {
	int used;
	net_sock_t sk;
	uint16_t port;
	int data;
	char line[4096];
	size_t ll;
	struct smsg *cur;
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

static void srv_send(struct h *h, struct sconn *c, const char *s)
{
	ssize_t n = net_send(h->b.s, c->sk, s, strlen(s));

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
			c->data = 0;
			c->cur->done = 1;
			srv_send(h, c, "250 2.0.0 Ok: queued\r\n");
			if (h->close_after_msg) {
				h->closes_after++;
				net_close(h->b.s, c->sk);
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
	if (!strncasecmp(l, "EHLO", 4)) {
		char r[512];

		snprintf(r, sizeof(r), "250-next.test\r\n%s", h->ext);
		srv_send(h, c, r);
	} else if (!strncasecmp(l, "HELO", 4)) {
		srv_send(h, c, "250 next.test\r\n");
	} else if (!strncasecmp(l, "MAIL FROM:", 10)) {
		assert_true(h->n_msgs < SRV_MSGS);
		c->cur = &h->msgs[h->n_msgs++];
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
			net_close(h->b.s, c->sk);
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
			c->used = 0;
			return;
		}
		srv_send(h, c, "250 2.0.0 Ok\r\n");
	} else if (!strncasecmp(l, "QUIT", 4)) {
		h->quits++;
		srv_send(h, c, "221 2.0.0 Bye\r\n");
		net_close(h->b.s, c->sk);
	} else {
		srv_send(h, c, "502 5.5.2 Error: command not recognized\r\n");
	}
}

static void srv_read(struct h *h, struct sconn *c)
{
	char buf[8192];
	ssize_t n;

	while ((n = net_recv(h->b.s, c->sk, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			assert_true(c->ll < sizeof(c->line));
			c->line[c->ll++] = buf[i];
			if (buf[i] == '\n') {
				srv_line(h, c, c->line, c->ll);
				c->ll = 0;
				if (!c->used)
					return;
			}
		}
	}
	if (n == 0)
		net_close(h->b.s, c->sk);
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
			net_close(h->b.s, c->sk);
		}
		return;
	}
	c = ev->user;
	if (ev->events & NET_EV_CLOSED) {
		c->used = 0;
		return;
	}
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

static struct h *h_new(unsigned max_conns)
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
	dc.max_conns = max_conns;
	dc.t_reply_ms = 30000;
	h->d = deliver_new(&dc);
	assert_non_null(h->d);
	return h;
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_rcpts_byte_exact),
		cmocka_unit_test(test_rcpt_5xx_and_2xx),
		cmocka_unit_test(test_hop_fallback),
		cmocka_unit_test(test_all_hops_fail),
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_max_msgs_per_conn),
		cmocka_unit_test(test_peer_closes_idle),
		cmocka_unit_test(test_msg_deleted),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_greeting_timeout),
		cmocka_unit_test(test_lost_mid_transaction),
		cmocka_unit_test(test_reused_dead_retry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
