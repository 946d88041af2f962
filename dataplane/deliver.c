/*
 * deliver.c - delivery jobs over outbound SMTP connections (deliver.h).
 *
 * Input: jobs, socket events and time. Output: net_connect/send/consume/
 * close calls, finished jobs on the done list. Invariants: a job is in
 * exactly one place - the FIFO, one connection slot, or the done list -
 * and held counts all three (<= max_jobs); a slot's socket is released
 * (net_close/net_abort) before the slot is reused, and events for any
 * socket but the slot's current one are ignored; a connection's snapshot
 * is open exactly while a job is attached to it.
 *
 * Connection slot states:
 *   FREE        unused
 *   CONNECTING  SYN out (connect_timeout_s)           -> HELLO
 *   HELLO       greeting, EHLO, STARTTLS, TLS, EHLO   -> BUSY (job sent)
 *   BUSY        a message in flight                   -> IDLE (DONE)
 *   IDLE        ready, no job (idle_conn_s)           -> BUSY / QUIT
 *   QUIT        QUIT sent, waiting for 221            -> FREE
 *   DRAIN       engine closed, flushing its last bytes -> FREE
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "log.h"
#include "smtp_client.h"
#include "smtp_err.h"
#include "stor_err.h"
#include "stor_queue.h"
#include "tls_conn.h"

_Static_assert(STOR_NOTIFY_NEVER == SMTP_NOTIFY_NEVER &&
	       STOR_NOTIFY_SUCCESS == SMTP_NOTIFY_SUCCESS &&
	       STOR_NOTIFY_FAILURE == SMTP_NOTIFY_FAILURE &&
	       STOR_NOTIFY_DELAY == SMTP_NOTIFY_DELAY,
	       "stored NOTIFY bits are the engine's");

#define DELIVER_PT_BUF 4096
#define DELIVER_ROUNDS 64

enum dc_state { DC_FREE = 0, DC_CONNECTING, DC_HELLO, DC_BUSY, DC_IDLE,
		DC_QUIT, DC_DRAIN };

/* a job where deliver keeps it: with the hop it is on */
struct djent {
	struct djob *j;
	uint8_t hop;          /* index of the hop to use next */
	uint8_t fresh;        /* do not reuse: a reused connection failed */
};

struct dconn {
	struct svc_def def;   /* first: the socket's user pointer */
	struct deliver *d;
	uint8_t st;
	uint8_t tls_hs, tls_up, eof, reused, got_bytes, hop;
	net_sock_t sk;
	uint32_t dest_id;
	uint8_t tls_pol;
	struct djob_hop addr;
	char relay[24];
	struct smtp_client *eng;
	struct tls_conn *tls;
	struct djent job;     /* job.j == NULL: none */
	unsigned n_msgs;
	unsigned max_msgs;    /* of its last job (dl_max_msgs) */
	uint64_t t_state;     /* connect start / idle since / QUIT sent */
	/* the message of the attached job */
	struct stor_reader *rd;
	struct smtp_client_msg msg;
	struct smtp_client_rcpt *rc;
	unsigned rc_cap;
	struct stor_rcpt *sr;
	unsigned sr_cap;
	char *arena;
	size_t arena_cap;
};

struct deliver {
	struct deliver_conf c;
	struct smtp_client_cfg ecfg;
	struct dconn *conn;
	unsigned n_conn;
	struct djent *fifo;   /* ring of max_jobs */
	unsigned f_head, f_n;
	struct djob **done;   /* ring of max_jobs */
	unsigned d_head, d_n;
	unsigned held;
	int need_dispatch, dispatching;
	uint64_t last_now;    /* the clock as the engines saw it last */
	struct deliver_stats st;
};

/* dl_clock - callers read the clock at different points of a reactor
 * round (events fresh, the poller from the round start): the engines
 * and timers must never see time go back */
static uint64_t dl_clock(struct deliver *d, uint64_t now)
{
	if (now < d->last_now)
		return d->last_now;
	d->last_now = now;
	return now;
}

static const char *const deliver_errs[] = {
	[DELIVER_OK] = "ok",
	[DELIVER_EINVAL] = "invalid argument",
	[DELIVER_EFULL] = "too many jobs held",
};

const char *deliver_strerror(int err)
{
	if (err < 0)
		err = -err;
	return (size_t)err < sizeof(deliver_errs) / sizeof(deliver_errs[0]) ?
	       deliver_errs[err] : "unknown error";
}

static uint64_t dl_ms(uint64_t now_us)
{
	return now_us / 1000;
}

/* dl_copy_line - copy text into a djob field, one line (newlines become
 * spaces, CR dropped) */
static void dl_copy_line(char *dst, size_t cap, const char *src)
{
	size_t i = 0;

	for (; src && *src && i + 1 < cap; src++) {
		if (*src == '\r')
			continue;
		dst[i++] = *src == '\n' ? ' ' : *src;
	}
	dst[i] = '\0';
}

static void dl_set(int *code, char *enh, char *text, int c, const char *e,
		   const char *t)
{
	*code = c;
	snprintf(enh, 16, "%s", e ? e : "");
	dl_copy_line(text, DJOB_TEXT, t);
}

static void dl_relay(char *out, size_t cap, const struct djob_hop *h)
{
	snprintf(out, cap, "%u.%u.%u.%u:%u", h->addr >> 24, h->addr >> 16 & 255,
		 h->addr >> 8 & 255, h->addr & 255, h->port);
}

/* ---- job lists ---------------------------------------------------------- */

/* dl_finish - the job is done: onto the done list (room is guaranteed:
 * held counts it already) */
static void dl_finish(struct deliver *d, struct djob *j, uint64_t now)
{
	unsigned max = d->c.max_jobs;

	j->t_done_us = now;
	d->done[(d->d_head + d->d_n) % max] = j;
	d->d_n++;
	if (j->status == DJOB_OK)
		d->st.jobs_ok++;
	else if (j->status == DJOB_CONN_FAIL)
		d->st.jobs_conn_fail++;
	else
		d->st.jobs_msg_fail++;
	unsigned n[6] = { 0 };

	for (uint32_t i = 0; j->status == DJOB_OK && i < j->nrcpt; i++) {
		int k = j->rcpt[i].code / 100;

		if (k == 2)
			d->st.rcpt_2xx++;
		else if (k == 4)
			d->st.rcpt_4xx++;
		else if (k == 5)
			d->st.rcpt_5xx++;
		n[k >= 0 && k < 6 ? k : 0]++;
	}
	if (LOG_MDEBUG_ON(LOG_M_DELIVER)) {
		char q[STOR_QID_TEXT + 1];

		log_mdebug(LOG_M_DELIVER, "io lcore %u: %s to %s via %s: %s, "
			   "%u recipient(s): %u 2xx %u 4xx %u 5xx; %d %s %s",
			   d->c.owner, stor_qid_format(j->qid, q), j->dest,
			   j->relay[0] ? j->relay : "-",
			   j->status == DJOB_OK ? "session" :
			   j->status == DJOB_CONN_FAIL ? "no session" :
			   "message failed", j->nrcpt, n[2], n[4], n[5],
			   j->code, j->enh, j->text);
	}
}

/* dl_fail_all - status and one triple for the job and every recipient */
static void dl_fail_all(struct djob *j, uint8_t status, int code,
			const char *enh, const char *text)
{
	j->status = status;
	dl_set(&j->code, j->enh, j->text, code, enh, text);
	for (uint32_t i = 0; i < j->nrcpt; i++)
		dl_set(&j->rcpt[i].code, j->rcpt[i].enh, j->rcpt[i].text, code,
		       enh, text);
}

static void dl_fifo_push(struct deliver *d, struct djent e, int front)
{
	unsigned max = d->c.max_jobs;

	if (front) {
		d->f_head = (d->f_head + max - 1) % max;
		d->fifo[d->f_head] = e;
	} else {
		d->fifo[(d->f_head + d->f_n) % max] = e;
	}
	d->f_n++;
	d->need_dispatch = 1;
}

/* ---- message: snapshot and engine message ------------------------------- */

static int dl_grow(void **p, unsigned *cap, unsigned want, size_t each)
{
	void *n;

	if (want <= *cap)
		return 0;
	n = realloc(*p, (size_t)want * each);
	if (!n)
		return -1;
	*p = n;
	*cap = want;
	return 0;
}

/* dl_str - NUL-terminated copy of s into the arena at *off */
static const char *dl_str(struct dconn *c, size_t *off, struct stor_str s)
{
	char *p = c->arena + *off;

	memcpy(p, s.p, s.n);
	p[s.n] = '\0';
	*off += (size_t)s.n + 1;
	return p;
}

/* dc_load - open the snapshot, decode the message, build the engine's
 * message with the job's recipients; 0, or -1 after filling the job with
 * DJOB_MSG_FAIL (snapshot released) */
static int dc_load(struct deliver *d, struct dconn *c, struct djob *j)
{
	struct stor_msg sm;
	const void *body;
	size_t blen, need, off = 0;
	char why[200];
	int rc;

	if (!c->rd && (rc = stor_reader_open(d->c.q, &c->rd)) != 0)
		goto fail;
	rc = stor_reader_begin(c->rd);
	if (rc != 0)
		goto fail;
	memset(&sm, 0, sizeof(sm));
	rc = stor_reader_msg(c->rd, j->qid, &sm, c->sr, c->sr_cap);
	if (rc == ERANGE) {
		if (dl_grow((void **)&c->sr, &c->sr_cap, sm.nrcpt,
			    sizeof(*c->sr)) < 0) {
			rc = ENOMEM;
			goto fail_end;
		}
		rc = stor_reader_msg(c->rd, j->qid, &sm, c->sr, c->sr_cap);
	}
	if (rc == 0)
		rc = stor_reader_body(c->rd, j->qid, 0, &body, &blen);
	if (rc != 0)
		goto fail_end;
	need = (size_t)sm.sender.n + sm.envid.n + 2;
	for (uint32_t i = 0; i < j->nrcpt; i++) {
		uint32_t x = j->rcpt[i].index;

		if (x >= sm.nrcpt) {
			snprintf(why, sizeof(why), "recipient index %u out of "
				 "range (the message has %u)", x, sm.nrcpt);
			stor_reader_end(c->rd);
			dl_fail_all(j, DJOB_MSG_FAIL, 0, "", why);
			return -1;
		}
		need += (size_t)sm.rcpt[x].addr.n + sm.rcpt[x].orcpt.n + 2;
	}
	if (need > c->arena_cap) {
		char *n = realloc(c->arena, need);

		if (!n) {
			rc = ENOMEM;
			goto fail_end;
		}
		c->arena = n;
		c->arena_cap = need;
	}
	if (dl_grow((void **)&c->rc, &c->rc_cap, j->nrcpt, sizeof(*c->rc)) < 0) {
		rc = ENOMEM;
		goto fail_end;
	}
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.sender = dl_str(c, &off, sm.sender);
	c->msg.envid = sm.envid.n ? dl_str(c, &off, sm.envid) : NULL;
	c->msg.body_type = sm.flags & STOR_MSG_8BITMIME ? SMTP_BODY_8BITMIME
							: SMTP_BODY_7BIT;
	c->msg.smtputf8 = !!(sm.flags & STOR_MSG_SMTPUTF8);
	c->msg.ret = sm.flags & STOR_MSG_RET_FULL ? SMTP_RET_FULL :
		     sm.flags & STOR_MSG_RET_HDRS ? SMTP_RET_HDRS : SMTP_RET_NONE;
	c->msg.mt_priority = SMTP_MTPRIO_NONE;
	c->msg.n_rcpt = j->nrcpt;
	c->msg.rcpt = c->rc;
	c->msg.body = body;
	c->msg.body_len = blen;
	for (uint32_t i = 0; i < j->nrcpt; i++) {
		const struct stor_rcpt *r = &sm.rcpt[j->rcpt[i].index];
		struct smtp_client_rcpt *e = &c->rc[i];

		memset(e, 0, sizeof(*e));
		e->addr = dl_str(c, &off, r->addr);
		e->notify = r->notify;
		/* the worker stores ORCPT as "addr-type;address" decoded from
		 * xtext: what the engine takes (it encodes it again) */
		e->orcpt = r->orcpt.n ? dl_str(c, &off, r->orcpt) : NULL;
	}
	return 0;

fail_end:
	stor_reader_end(c->rd);
fail:
	if (rc == MDB_NOTFOUND)
		snprintf(why, sizeof(why), "message no longer in the queue");
	else
		snprintf(why, sizeof(why), "cannot read the message from the "
			 "queue: %s", stor_strerror(rc));
	dl_fail_all(j, DJOB_MSG_FAIL, 0, "", why);
	return -1;
}

/* dc_detach - the job leaves the slot: snapshot released */
static struct djent dc_detach(struct dconn *c)
{
	struct djent e = c->job;

	c->job.j = NULL;
	if (e.j && c->rd)
		stor_reader_end(c->rd);
	return e;
}

/* dc_harvest - the engine's results into the job, which is finished */
static void dc_harvest(struct deliver *d, struct dconn *c, uint8_t status,
		       uint64_t now)
{
	struct djob *j = c->job.j;

	j->status = status;
	dl_set(&j->code, j->enh, j->text, c->msg.code, c->msg.enh,
	       c->msg.text);
	for (uint32_t i = 0; i < j->nrcpt; i++)
		dl_set(&j->rcpt[i].code, j->rcpt[i].enh, j->rcpt[i].text,
		       c->rc[i].code, c->rc[i].enh, c->rc[i].text);
	j->ext = c->eng ? smtp_client_ext(c->eng) : 0;
	snprintf(j->relay, sizeof(j->relay), "%s", c->relay);
	j->tls_used = c->eng && smtp_client_tls_active(c->eng);
	j->reused = c->reused;
	dc_detach(c);
	dl_finish(d, j, now);
}

/* ---- socket output and input ------------------------------------------- */

/* dc_flush - engine output to the socket (through TLS when up); 1 when
 * nothing is left to send */
static int dc_flush(struct deliver *d, struct dconn *c, uint64_t now)
{
	const uint8_t *p;
	size_t n;

	for (;;) {
		int progress = 0;

		n = smtp_client_output(c->eng, &p);
		if (n > 0 && (!c->tls || c->tls_up)) {
			ssize_t w = c->tls_up ? tls_conn_write(c->tls, p, n)
					      : net_send(d->c.s, c->sk, p, n);

			if (w > 0) {
				if (c->st == DC_BUSY)
					d->st.body_bytes += (uint64_t)w;
				smtp_client_output_consume(c->eng, (size_t)w,
							   dl_ms(now));
				progress = 1;
			}
		}
		if (c->tls && (n = tls_conn_cipher_peek(c->tls, &p)) > 0) {
			ssize_t w = net_send(d->c.s, c->sk, p, n);

			if (w > 0) {
				tls_conn_cipher_consume(c->tls, (size_t)w);
				progress = 1;
			}
		}
		if (!progress)
			break;
	}
	if (c->tls && tls_conn_cipher_peek(c->tls, &p) > 0)
		return 0;
	return smtp_client_output(c->eng, &p) == 0;
}

/* dc_tls_step - drive the handshake after ciphertext arrived */
static void dc_tls_step(struct deliver *d, struct dconn *c, uint64_t now)
{
	int r = tls_conn_handshake(c->tls);

	if (r < 0) {
		char why[300];

		d->st.tls_fail++;
		snprintf(why, sizeof(why), "%s", tls_conn_error(c->tls));
		c->tls_hs = 0;
		smtp_client_tls_failed(c->eng, why, dl_ms(now));
	} else if (r == 1) {
		d->st.tls_ok++;
		c->tls_hs = 0;
		c->tls_up = 1;
		smtp_client_tls_done(c->eng, dl_ms(now));
	}
}

/* dc_input - socket bytes into the engine (or TLS); returns bytes of
 * progress; sets eof at the peer's end of stream */
static size_t dc_input(struct deliver *d, struct dconn *c, uint64_t now)
{
	struct net_iov iov[2];
	ssize_t n = net_recv_peek(d->c.s, c->sk, iov);
	size_t used = 0;

	if (n == 0 || n == -NET_EAGAIN) {
		uint8_t b;

		if (net_recv(d->c.s, c->sk, &b, 1) == 0)
			c->eof = 1;
	}
	for (int i = 0; i < 2 && n > 0; i++) {
		size_t took;

		if (!iov[i].len)
			continue;
		if (c->tls) {
			took = tls_conn_cipher_in(c->tls, iov[i].base,
						  iov[i].len);
		} else {
			ssize_t r = smtp_client_input(c->eng, iov[i].base,
						      iov[i].len, dl_ms(now));

			took = r > 0 ? (size_t)r : 0;
		}
		used += took;
		if (took < iov[i].len)
			break;
	}
	if (used) {
		net_recv_consume(d->c.s, c->sk, used);
		c->got_bytes = 1;
	}
	if (!c->tls)
		return used;
	if (c->tls_hs) {
		dc_tls_step(d, c, now);
		return used + (c->tls_hs ? 0 : 1);
	}
	for (;;) {
		uint8_t pt[DELIVER_PT_BUF];
		ssize_t r = tls_conn_read(c->tls, pt, sizeof(pt));

		if (r < 0) {
			c->eof = 1;
			break;
		}
		if (r == 0)
			break;
		/* the engine takes everything until it closes */
		if (smtp_client_input(c->eng, pt, (size_t)r, dl_ms(now)) <= 0)
			break;
		used += (size_t)r;
	}
	return used;
}

/* ---- connection slot lifetime ------------------------------------------- */

/* dc_release - the socket is gone or let go: engine, TLS freed, slot free */
static void dc_release(struct deliver *d, struct dconn *c, int abort)
{
	if (c->sk != NET_SOCK_INVALID && LOG_MDEBUG_ON(LOG_M_DELIVER))
		log_mdebug(LOG_M_DELIVER, "io lcore %u: connection to %s %s "
			   "after %u message(s)", d->c.owner, c->relay,
			   abort ? "aborted" : "closed", c->n_msgs);
	if (c->sk != NET_SOCK_INVALID) {
		if (abort)
			net_abort(d->c.s, c->sk);
		else
			net_close(d->c.s, c->sk);
	}
	c->sk = NET_SOCK_INVALID;
	smtp_client_free(c->eng);
	c->eng = NULL;
	if (c->tls)
		tls_conn_free(c->tls);
	c->tls = NULL;
	c->st = DC_FREE;
	c->tls_hs = c->tls_up = c->eof = c->reused = c->got_bytes = 0;
	c->n_msgs = 0;
	d->need_dispatch = 1;
}

/* dc_close - flushed: polite close (close_notify under TLS) */
static void dc_close(struct deliver *d, struct dconn *c)
{
	if (c->tls && c->tls_up) {
		tls_conn_shutdown(c->tls);
		dc_flush(d, c, 0);
	}
	dc_release(d, c, 0);
}

/* dc_hop_fail - this hop gave no usable session: next hop, or the job
 * fails DJOB_CONN_FAIL with the (temporary) reason; text names the hop */
static void dc_hop_fail(struct deliver *d, struct dconn *c, int code,
			const char *enh, const char *text, uint64_t now)
{
	struct djent e = dc_detach(c);
	struct djob *j = e.j;
	char e4[16];

	d->st.hop_fail++;
	if (LOG_MDEBUG_ON(LOG_M_DELIVER))
		log_mdebug(LOG_M_DELIVER, "io lcore %u: hop %u of %s (%s) "
			   "failed: %d %s %s", d->c.owner, e.hop + 1u,
			   j ? j->dest : "-", c->relay, code, enh ? enh : "",
			   text);
	if (!j)
		return;
	if (code / 100 != 4)
		code = 451;
	snprintf(e4, sizeof(e4), "%s", enh && enh[0] >= '2' && enh[0] <= '5' &&
		 enh[1] == '.' ? enh : "4.4.2");
	e4[0] = '4';
	dl_set(&j->code, j->enh, j->text, code, e4, text);
	snprintf(j->relay, sizeof(j->relay), "%s", c->relay);
	if ((unsigned)e.hop + 1 < j->nhops) {
		e.hop++;
		e.fresh = 0;
		dl_fifo_push(d, e, 1);
		return;
	}
	dl_fail_all(j, DJOB_CONN_FAIL, code, e4, text);
	dl_finish(d, j, now);
}

/* dc_reason_fail - the engine closed before READY: its reason ("code
 * enh text") fails the hop */
static void dc_reason_fail(struct deliver *d, struct dconn *c, uint64_t now)
{
	const char *r = smtp_client_close_reason(c->eng);
	const char *t = strchr(r, ' ');
	char enh[16] = "", text[DJOB_TEXT];
	int code = atoi(r);

	if (t) {
		size_t n = strcspn(t + 1, " ");

		if (n < sizeof(enh)) {
			memcpy(enh, t + 1, n);
			enh[n] = '\0';
		}
	}
	snprintf(text, sizeof(text), "session with %s failed: %s", c->relay, r);
	dc_hop_fail(d, c, code, enh, text, now);
}

/* dc_lost - the connection died (peer end of stream, reset, error) */
static void dc_lost(struct deliver *d, struct dconn *c, int err,
		    uint64_t now)
{
	char why[DJOB_TEXT];

	switch (c->st) {
	case DC_CONNECTING:
		d->st.connect_fail++;
		snprintf(why, sizeof(why), "connect to %s: %s", c->relay,
			 net_strerror(err ? err : NET_ECONNRESET));
		dc_hop_fail(d, c, 451, "4.4.1", why, now);
		break;
	case DC_HELLO:
		d->st.conn_lost++;
		snprintf(why, sizeof(why), "lost connection with %s before "
			 "the SMTP session was ready (%s)", c->relay,
			 err ? net_strerror(err) : "closed by the peer");
		dc_hop_fail(d, c, 451, "4.4.2", why, now);
		break;
	case DC_BUSY:
		d->st.conn_lost++;
		if (c->reused && !c->got_bytes && !c->job.fresh) {
			struct djent e = dc_detach(c);

			/* the peer dropped the idle connection as we used
			 * it: not the message's fault, try a fresh one */
			d->st.retried_fresh++;
			e.fresh = 1;
			dl_fifo_push(d, e, 1);
			break;
		}
		snprintf(why, sizeof(why), "lost connection with %s while "
			 "sending the message (%s)", c->relay,
			 err ? net_strerror(err) : "closed by the peer");
		c->msg.code = 451;
		snprintf(c->msg.enh, sizeof(c->msg.enh), "4.4.2");
		snprintf(c->msg.text, sizeof(c->msg.text), "%s", why);
		for (unsigned i = 0; i < c->msg.n_rcpt; i++) {
			struct smtp_client_rcpt *r = &c->rc[i];

			if (r->code == 0 || r->code / 100 == 2) {
				r->code = 451;
				snprintf(r->enh, sizeof(r->enh), "4.4.2");
				snprintf(r->text, sizeof(r->text), "%s", why);
			}
		}
		dc_harvest(d, c, DJOB_OK, now);
		break;
	default:
		break;
	}
}

/* dl_max_msgs - messages one connection may carry for j: the job's
 * (directory) limit, else max_msgs_per_conn */
static unsigned dl_max_msgs(const struct deliver *d, const struct djob *j)
{
	return j->max_msgs ? j->max_msgs : d->c.cfg->max_msgs_per_conn;
}

/* dc_connect - open a connection for e on a free slot at its hop; on an
 * immediate failure the hop is given up (maybe the job is finished) */
static void dc_connect(struct deliver *d, struct dconn *c, struct djent e,
		       uint64_t now)
{
	struct djob *j = e.j;
	int rc;

	c->job = e;
	c->dest_id = j->dest_id;
	c->tls_pol = j->tls;
	c->addr = j->hop[e.hop];
	c->hop = e.hop;
	c->n_msgs = 0;
	c->max_msgs = dl_max_msgs(d, j);
	c->reused = 0;
	dl_relay(c->relay, sizeof(c->relay), &c->addr);
	d->st.connects++;
	rc = net_connect(d->c.s, c->addr.addr, c->addr.port, &c->def, now,
			 &c->sk);
	if (rc < 0) {
		char why[DJOB_TEXT];

		c->sk = NET_SOCK_INVALID;
		d->st.connect_fail++;
		snprintf(why, sizeof(why), "connect to %s: %s", c->relay,
			 net_strerror(rc));
		dc_hop_fail(d, c, 451, "4.4.1", why, now);
		dc_release(d, c, 0);
		return;
	}
	c->st = DC_CONNECTING;
	c->t_state = now;
	if (LOG_MDEBUG_ON(LOG_M_DELIVER))
		log_mdebug(LOG_M_DELIVER, "io lcore %u: connecting to %s for %s "
			   "(hop %u of %u)", d->c.owner, c->relay, j->dest,
			   e.hop + 1u, (unsigned)j->nhops);
}

/* dc_send - start the attached job's message on a ready session */
static void dc_send(struct deliver *d, struct dconn *c, uint64_t now)
{
	struct djob *j = c->job.j;
	int rc = smtp_client_send(c->eng, &c->msg, dl_ms(now));

	if (rc < 0) {
		char why[120];

		snprintf(why, sizeof(why), "message not sent: %s",
			 smtp_err_strerror(rc));
		dc_detach(c);
		dl_fail_all(j, DJOB_MSG_FAIL, rc == -SMTP_ENOMEM ? 451 : 554,
			    rc == -SMTP_ENOMEM ? "4.3.0" : "5.6.0", why);
		snprintf(j->relay, sizeof(j->relay), "%s", c->relay);
		dl_finish(d, j, now);
		c->st = DC_IDLE;
		c->t_state = now;
		return;
	}
	if (smtp_client_action(c->eng) == SMTP_CLI_DONE) {
		/* refused locally (SIZE, 8BITMIME, SMTPUTF8, bare CR/LF) */
		dc_harvest(d, c, DJOB_MSG_FAIL, now);
		c->st = DC_IDLE;
		c->t_state = now;
		return;
	}
	d->st.msgs++;
	c->n_msgs++;
	c->got_bytes = 0;
	c->st = DC_BUSY;
}

/* dc_quit - say goodbye to an idle connection */
static void dc_quit(struct deliver *d, struct dconn *c, uint64_t now)
{
	d->st.quits++;
	if (smtp_client_quit(c->eng, dl_ms(now)) < 0) {
		dc_release(d, c, 0);
		return;
	}
	c->st = DC_QUIT;
	c->t_state = now;
}

/* dc_engine_closed - the engine ended the session (CLOSE) */
static void dc_engine_closed(struct deliver *d, struct dconn *c,
			     uint64_t now)
{
	switch (c->st) {
	case DC_HELLO:
		dc_reason_fail(d, c, now);
		break;
	case DC_BUSY:
		/* results filled in by the engine (421, timeout, ...) */
		dc_harvest(d, c, DJOB_OK, now);
		break;
	default:
		break;
	}
	c->st = DC_DRAIN;
	c->t_state = now;
}

static void dl_dispatch(struct deliver *d, uint64_t now);

/* dc_ready_idle - a message finished: next job, QUIT, or idle */
static void dc_idle(struct deliver *d, struct dconn *c, uint64_t now)
{
	c->st = DC_IDLE;
	c->t_state = now;
	d->need_dispatch = 1;
	if (c->n_msgs < c->max_msgs && d->f_n)
		dl_dispatch(d, now);
	if (c->st == DC_IDLE && (c->n_msgs >= c->max_msgs ||
				 d->c.cfg->idle_conn_s == 0))
		dc_quit(d, c, now);
}

/* dc_pump - run the session as far as it goes without waiting */
static void dc_pump(struct deliver *d, struct dconn *c, uint64_t now)
{
	for (int rounds = 0; rounds < DELIVER_ROUNDS; rounds++) {
		enum smtp_cli_act act;
		int flushed;

		if (c->st == DC_FREE || c->st == DC_CONNECTING)
			return;
		flushed = dc_flush(d, c, now);
		if (c->st == DC_DRAIN) {
			if (flushed)
				dc_close(d, c);
			return;
		}
		act = smtp_client_action(c->eng);
		if (act == SMTP_CLI_CLOSE) {
			if (c->st == DC_QUIT || c->st == DC_IDLE) {
				/* 221, or the peer spoke out of turn: drop */
				if (flushed)
					dc_close(d, c);
				else
					c->st = DC_DRAIN;
				return;
			}
			dc_engine_closed(d, c, now);
			continue;
		}
		if (act == SMTP_CLI_STARTTLS && !c->tls) {
			if (!flushed)
				return;
			if (!d->c.tls) {
				smtp_client_tls_failed(c->eng, "no client TLS "
						       "context configured",
						       dl_ms(now));
				continue;
			}
			{
				char host[256], *colon;
				int verify = c->tls_pol == SMTP_TLS_VERIFY;
				const char *dest = c->job.j ? c->job.j->dest : "";

				snprintf(host, sizeof(host), "%s", dest);
				colon = strchr(host, ':');
				if (colon)
					*colon = '\0';
				c->tls = tls_conn_new(d->c.tls,
						      host[0] && host[0] != '[' ?
						      host : NULL,
						      verify ? host : NULL, verify);
			}
			if (!c->tls) {
				d->st.tls_fail++;
				smtp_client_tls_failed(c->eng, "out of memory",
						       dl_ms(now));
				continue;
			}
			c->tls_hs = 1;
			dc_tls_step(d, c, now);   /* ClientHello */
			continue;
		}
		if (act == SMTP_CLI_READY && c->st == DC_HELLO) {
			d->st.sessions++;
			if (c->job.j) {
				dc_send(d, c, now);
				if (c->st == DC_IDLE)
					dc_idle(d, c, now);
			} else {
				dc_idle(d, c, now);
			}
			continue;
		}
		if (act == SMTP_CLI_DONE && c->st == DC_BUSY) {
			dc_harvest(d, c, DJOB_OK, now);
			dc_idle(d, c, now);
			continue;
		}
		if (dc_input(d, c, now) == 0) {
			if (c->eof) {
				dc_lost(d, c, 0, now);
				if (c->st != DC_FREE)
					dc_release(d, c, 0);
			}
			return;
		}
	}
}

/* ---- dispatch ----------------------------------------------------------- */

/* dl_match - idle connection usable for e: same destination and policy,
 * connected to one of the job's hops not yet given up */
static struct dconn *dl_match(struct deliver *d, const struct djent *e)
{
	const struct djob *j = e->j;

	if (e->fresh)
		return NULL;
	for (unsigned i = 0; i < d->n_conn; i++) {
		struct dconn *c = &d->conn[i];

		if (c->st != DC_IDLE || c->dest_id != j->dest_id ||
		    c->tls_pol != j->tls ||
		    c->n_msgs >= dl_max_msgs(d, j))
			continue;
		for (unsigned h = e->hop; h < j->nhops && h < DJOB_HOPS; h++)
			if (j->hop[h].addr == c->addr.addr &&
			    j->hop[h].port == c->addr.port)
				return c;
	}
	return NULL;
}

static struct dconn *dl_free_slot(struct deliver *d)
{
	for (unsigned i = 0; i < d->n_conn; i++)
		if (d->conn[i].st == DC_FREE)
			return &d->conn[i];
	return NULL;
}

/* dl_place - start e on an idle or a new connection; 1 if it left the
 * FIFO (started or finished), 0 if it must wait for a slot */
static int dl_place(struct deliver *d, struct djent e, uint64_t now)
{
	struct dconn *c = dl_match(d, &e);

	if (c) {
		if (dc_load(d, c, e.j) < 0) {
			dl_finish(d, e.j, now);
			return 1;
		}
		d->st.reused++;
		if (LOG_MDEBUG_ON(LOG_M_DELIVER))
			log_mdebug(LOG_M_DELIVER, "io lcore %u: reusing the "
				   "connection to %s for %s (message %u on it)",
				   d->c.owner, c->relay, e.j->dest,
				   c->n_msgs + 1);
		c->job = e;
		c->max_msgs = dl_max_msgs(d, e.j);
		c->reused = 1;
		dc_send(d, c, now);
		if (c->st == DC_IDLE)
			dc_idle(d, c, now);
		else
			dc_pump(d, c, now);
		return 1;
	}
	c = dl_free_slot(d);
	if (!c)
		return 0;
	if (dc_load(d, c, e.j) < 0) {
		dl_finish(d, e.j, now);
		return 1;
	}
	dc_connect(d, c, e, now);
	return 1;
}

/* dl_evict - no slot for waiting jobs: QUIT the longest idle connection */
static void dl_evict(struct deliver *d, uint64_t now)
{
	struct dconn *old = NULL;

	for (unsigned i = 0; i < d->n_conn; i++) {
		struct dconn *c = &d->conn[i];

		if (c->st == DC_IDLE && (!old || c->t_state < old->t_state))
			old = c;
	}
	if (old) {
		d->st.idle_closed++;
		dc_quit(d, old, now);
		dc_pump(d, old, now);
	}
}

/* dl_dispatch - place waiting jobs in FIFO order; a job that finds no
 * slot stays, later ones for connected destinations may still go */
static void dl_dispatch(struct deliver *d, uint64_t now)
{
	unsigned max = d->c.max_jobs;
	int waiting = 0;

	if (d->dispatching)  /* placing a job may finish a message: later */
		return;
	d->dispatching = 1;
	for (int pass = 0; pass < 4 && d->need_dispatch; pass++) {
		unsigned n = d->f_n, kept = 0;

		d->need_dispatch = 0;
		waiting = 0;
		for (unsigned i = 0; i < n; i++) {
			/* take from the front; keep the unplaced at the back */
			struct djent e = d->fifo[d->f_head];

			d->f_head = (d->f_head + 1) % max;
			d->f_n--;
			if (dl_place(d, e, now))
				continue;
			d->fifo[(d->f_head + d->f_n) % max] = e;
			d->f_n++;
			kept++;
			waiting = 1;
		}
		(void)kept;
	}
	if (waiting && !dl_free_slot(d))
		dl_evict(d, now);
	d->dispatching = 0;
}

/* ---- public entry points ------------------------------------------------ */

/* dc_open - the TCP connection is up: start the SMTP session */
static void dc_open(struct deliver *d, struct dconn *c, uint64_t now)
{
	struct smtp_client_cfg ec = d->ecfg;

	ec.tls = (enum smtp_tls_policy)c->tls_pol;
	if (!d->c.tls && ec.tls == SMTP_TLS_OPPORTUNISTIC)
		ec.tls = SMTP_TLS_NONE;
	c->eng = smtp_client_new(&ec, dl_ms(now));
	if (!c->eng) {
		char why[DJOB_TEXT];

		snprintf(why, sizeof(why), "session with %s: out of memory",
			 c->relay);
		dc_hop_fail(d, c, 451, "4.3.0", why, now);
		dc_release(d, c, 1);
		return;
	}
	c->st = DC_HELLO;
	c->t_state = now;
}

void deliver_event(struct deliver *d, const struct net_event *ev,
		   uint64_t now)
{
	uintptr_t u = (uintptr_t)ev->user, lo = (uintptr_t)d->conn;
	struct dconn *c;

	now = dl_clock(d, now);
	if (u < lo || u >= lo + d->n_conn * sizeof(*c) ||
	    (u - lo) % sizeof(*c))
		return;
	c = ev->user;
	if (c->st == DC_FREE || ev->sock != c->sk)
		return;         /* a socket this slot already let go */
	if (ev->events & NET_EV_CLOSED) {
		c->sk = NET_SOCK_INVALID;    /* the handle is gone */
		dc_lost(d, c, ev->error ? ev->error : NET_ECONNRESET, now);
		dc_release(d, c, 0);
	} else {
		if ((ev->events & NET_EV_CONNECTED) && c->st == DC_CONNECTING)
			dc_open(d, c, now);
		dc_pump(d, c, now);
	}
	if (d->need_dispatch)
		dl_dispatch(d, now);
}

/* dc_timers - one slot's timeouts; 1 if something happened */
static int dc_timers(struct deliver *d, struct dconn *c, uint64_t now)
{
	const struct cfg_delivery *cf = d->c.cfg;
	char why[DJOB_TEXT];

	switch (c->st) {
	case DC_CONNECTING:
		/* now may be older than t_state (an event path read the
		 * clock later than this poll round): never subtract */
		if (now < c->t_state + (uint64_t)cf->connect_timeout_s * 1000000)
			return 0;
		d->st.connect_fail++;
		snprintf(why, sizeof(why), "connect to %s: timed out after %u s",
			 c->relay, cf->connect_timeout_s);
		dc_hop_fail(d, c, 451, "4.4.1", why, now);
		dc_release(d, c, 1);
		return 1;
	case DC_IDLE:
		if (now < c->t_state + (uint64_t)cf->idle_conn_s * 1000000)
			return 0;
		d->st.idle_closed++;
		dc_quit(d, c, now);
		dc_pump(d, c, now);
		return 1;
	case DC_QUIT:
	case DC_DRAIN:
		if (now >= c->t_state + DELIVER_QUIT_WAIT_US) {
			dc_release(d, c, 1);
			return 1;
		}
		/* the engine's own timeout too */
		/* fall through */
	case DC_HELLO:
	case DC_BUSY:
		if (c->eng && smtp_client_deadline(c->eng) <= dl_ms(now)) {
			smtp_client_tick(c->eng, dl_ms(now));
			dc_pump(d, c, now);
			return 1;
		}
		return 0;
	default:
		return 0;
	}
}

int deliver_poll(struct deliver *d, uint64_t now)
{
	int work = 0;

	now = dl_clock(d, now);
	for (unsigned i = 0; i < d->n_conn; i++)
		work += dc_timers(d, &d->conn[i], now);
	if (d->need_dispatch && d->f_n) {
		dl_dispatch(d, now);
		work++;
	}
	d->need_dispatch = d->need_dispatch && d->f_n;
	return work;
}

uint64_t deliver_deadline(const struct deliver *d)
{
	const struct cfg_delivery *cf = d->c.cfg;
	uint64_t t = d->need_dispatch && d->f_n ? 0 : UINT64_MAX;

	for (unsigned i = 0; i < d->n_conn; i++) {
		const struct dconn *c = &d->conn[i];
		uint64_t x = UINT64_MAX, e;

		switch (c->st) {
		case DC_CONNECTING:
			x = c->t_state + (uint64_t)cf->connect_timeout_s * 1000000;
			break;
		case DC_IDLE:
			x = c->t_state + (uint64_t)cf->idle_conn_s * 1000000;
			break;
		case DC_QUIT:
		case DC_DRAIN:
			x = c->t_state + DELIVER_QUIT_WAIT_US;
			/* fall through */
		case DC_HELLO:
		case DC_BUSY:
			e = c->eng ? smtp_client_deadline(c->eng) : UINT64_MAX;
			if (e != UINT64_MAX && e * 1000 < x)
				x = e * 1000;
			break;
		default:
			break;
		}
		if (x < t)
			t = x;
	}
	return t;
}

unsigned deliver_room(const struct deliver *d)
{
	return d->c.max_jobs - d->held;
}

int deliver_job(struct deliver *d, struct djob *j, uint64_t now)
{
	struct djent e = { j, 0, 0 };

	now = dl_clock(d, now);
	if (!j)
		return -DELIVER_EINVAL;
	if (d->held >= d->c.max_jobs)
		return -DELIVER_EFULL;
	j->status = DJOB_OK;
	j->code = 0;
	j->enh[0] = j->text[0] = j->relay[0] = '\0';
	j->ext = 0;
	j->tls_used = j->reused = false;
	j->t_start_us = now;
	j->t_done_us = 0;
	for (uint32_t i = 0; j->rcpt && i < j->nrcpt; i++) {
		j->rcpt[i].code = 0;
		j->rcpt[i].enh[0] = j->rcpt[i].text[0] = '\0';
	}
	d->held++;
	d->st.jobs_in++;
	if (j->nrcpt == 0 || !j->rcpt) {
		dl_fail_all(j, DJOB_MSG_FAIL, 0, "", "delivery job without "
			    "recipients");
		dl_finish(d, j, now);
		return 0;
	}
	if (j->nhops == 0 || j->nhops > DJOB_HOPS) {
		dl_fail_all(j, DJOB_CONN_FAIL, 451, "4.4.4", "delivery job "
			    "without a valid next hop list");
		dl_finish(d, j, now);
		return 0;
	}
	dl_fifo_push(d, e, 0);
	dl_dispatch(d, now);
	return 0;
}

unsigned deliver_done_peek(const struct deliver *d, struct djob **out,
			   unsigned max)
{
	unsigned n = d->d_n < max ? d->d_n : max;

	for (unsigned i = 0; i < n; i++)
		out[i] = d->done[(d->d_head + i) % d->c.max_jobs];
	return n;
}

void deliver_done_consume(struct deliver *d, unsigned n)
{
	if (n > d->d_n)
		n = d->d_n;
	d->d_head = (d->d_head + n) % d->c.max_jobs;
	d->d_n -= n;
	d->held -= n;
	d->st.jobs_out += n;
}

/* dl_shutdown_fill - the shutdown result */
static void dl_shutdown_fill(struct djob *j, uint64_t now)
{
	dl_fail_all(j, DJOB_CONN_FAIL, 451, "4.3.2", "sluiced shutting down");
	j->t_done_us = now;
}

void deliver_job_refuse(struct djob *j, uint64_t now)
{
	j->ext = 0;
	j->relay[0] = '\0';
	j->tls_used = j->reused = false;
	j->t_start_us = now;
	dl_shutdown_fill(j, now);
}

void deliver_stop(struct deliver *d, uint64_t now)
{
	now = dl_clock(d, now);
	for (unsigned i = 0; i < d->n_conn; i++) {
		struct dconn *c = &d->conn[i];
		struct djent e = dc_detach(c);

		if (e.j) {
			dl_shutdown_fill(e.j, now);
			dl_finish(d, e.j, now);
		}
		if (c->st != DC_FREE)
			dc_release(d, c, 1);
	}
	while (d->f_n) {
		struct djent e = d->fifo[d->f_head];

		d->f_head = (d->f_head + 1) % d->c.max_jobs;
		d->f_n--;
		dl_shutdown_fill(e.j, now);
		dl_finish(d, e.j, now);
	}
	d->need_dispatch = 0;
}

void deliver_stats(const struct deliver *d, struct deliver_stats *out)
{
	*out = d->st;
	out->waiting = d->f_n;
	out->done_pending = d->d_n;
	out->active = d->held - d->f_n - d->d_n;
	out->conns = out->conns_idle = 0;
	for (unsigned i = 0; i < d->n_conn; i++) {
		out->conns += d->conn[i].st != DC_FREE;
		out->conns_idle += d->conn[i].st == DC_IDLE;
	}
}

struct deliver *deliver_new(const struct deliver_conf *conf)
{
	struct deliver *d;
	const struct cfg_delivery *cf = conf ? conf->cfg : NULL;

	if (!conf || !conf->s || !conf->q || !cf || !cf->helo_name[0])
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->c = *conf;
	if (!d->c.max_conns)
		d->c.max_conns = DELIVER_CONNS_DEFAULT;
	if (!d->c.max_jobs)
		d->c.max_jobs = cf->max_active ? cf->max_active : 1000;
	smtp_client_cfg_defaults(&d->ecfg);
	d->ecfg.helo_name = cf->helo_name;
	if (conf->t_reply_ms) {
		struct smtp_client_cfg *e = &d->ecfg;

		e->t_greeting_ms = e->t_ehlo_ms = e->t_mail_ms = e->t_rcpt_ms =
		e->t_data_init_ms = e->t_data_block_ms = e->t_data_term_ms =
			conf->t_reply_ms;
	}
	d->ecfg.no_pipelining = conf->no_pipelining;
	d->ecfg.no_chunking = conf->no_chunking;
	/* the engine refuses a bad HELO name: find out now, not per job */
	{
		struct smtp_client *probe = smtp_client_new(&d->ecfg, 0);

		if (!probe) {
			free(d);
			return NULL;
		}
		smtp_client_free(probe);
	}
	d->n_conn = d->c.max_conns;
	d->conn = calloc(d->n_conn, sizeof(*d->conn));
	d->fifo = calloc(d->c.max_jobs, sizeof(*d->fifo));
	d->done = calloc(d->c.max_jobs, sizeof(*d->done));
	if (!d->conn || !d->fifo || !d->done) {
		deliver_free(d);
		return NULL;
	}
	for (unsigned i = 0; i < d->n_conn; i++) {
		struct dconn *c = &d->conn[i];

		c->def = (struct svc_def){ "deliver", 0, SVC_DELIVER,
					   conf->svc_event, true };
		c->d = d;
		c->sk = NET_SOCK_INVALID;
	}
	return d;
}

void deliver_free(struct deliver *d)
{
	if (!d)
		return;
	for (unsigned i = 0; d->conn && i < d->n_conn; i++) {
		struct dconn *c = &d->conn[i];

		smtp_client_free(c->eng);
		if (c->tls)
			tls_conn_free(c->tls);
		if (c->rd)
			stor_reader_close(c->rd);
		free(c->rc);
		free(c->sr);
		free(c->arena);
	}
	free(d->conn);
	free(d->fifo);
	free(d->done);
	free(d);
}
