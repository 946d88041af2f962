/*
 * smtpd.c - SMTP sessions on an io lcore (smtpd.h).
 *
 * Input: socket events, done-ring items, time. Output: net_send/consume/
 * close, work items to the priority rings and the aux thread, mail log
 * lines. Invariants: a session with an item out (busy) is never freed and
 * never fed; a DATA verdict is answered only from a returned item; input
 * is consumed only as far as the engine (or TLS) took it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <rte_ring.h>

#include "log.h"
#include "mlog.h"
#include "smtp_param.h"
#include "smtpd.h"
#include "stor_err.h"
#include "tls_conn.h"
#include "tsc.h"

#define SMTPD_PT_BUF 8192
#define SMTPD_WALK_US 10000
#define SMTPD_DONE_BURST 64

struct smtpd_sess {
	struct svc_def def;          /* first: the socket's user pointer */
	struct smtpd *d;
	struct smtpd_sess *next, *prev;      /* d->all */
	struct smtpd_sess *wnext;            /* d->waiting */
	net_sock_t sk;
	struct smtp_server *eng;
	struct smtp_peer peer;
	struct mlog_client mc;
	uint32_t raddr;
	uint8_t submission, trusted, counted;
	uint8_t closing, sock_gone, busy, handling, waiting, eof;
	uint8_t tls_hs, tls_up;
	char auth_user[256];                 /* "" until AUTH succeeded */
	char helo[256];                      /* for log lines */
	uint8_t esmtp;
	struct tls_conn *tls;
	uint64_t banner_at_ms;               /* banner delay: answer then */
	uint64_t wait_since_ms;
	unsigned rep_col;                    /* reply line scanner */
	char rep_hdr[4];
	unsigned n_ehlo, n_mail, n_rcpt, n_data;
	size_t pt_len;
	uint8_t pt[SMTPD_PT_BUF];
	struct work w;
	struct mstore_xreq xq;               /* LDAP lookup while parked */
};


static uint64_t smtpd_ms(const struct smtpd *d, uint64_t now_us)
{
	return d->epoch_ms_base + (now_us - d->mono_us_base) / 1000;
}

static void smtpd_log(struct smtpd *d, const char *line)
{
	mstore_log(d->m, line);
}

/* smtpd_count_replies - reply lines by class in bytes going out */
static void smtpd_count_replies(struct smtpd *d, struct smtpd_sess *ss,
				const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ss->rep_col < 4)
			ss->rep_hdr[ss->rep_col] = (char)p[i];
		ss->rep_col++;
		if (p[i] == '\n') {
			if (ss->rep_col >= 5 && ss->rep_hdr[3] == ' ' &&
			    ss->rep_hdr[0] >= '2' && ss->rep_hdr[0] <= '5')
				d->st.replies[ss->rep_hdr[0] - '0']++;
			ss->rep_col = 0;
		}
	}
}

/* smtpd_flush - engine output to the socket (through TLS when up);
 * returns 1 when nothing is left to send */
static int smtpd_flush(struct smtpd *d, struct smtpd_sess *ss)
{
	const uint8_t *p;
	size_t n;

	if (ss->sock_gone)
		return 1;
	for (;;) {
		int progress = 0;

		n = smtp_server_output(ss->eng, &p);
		if (n > 0 && (!ss->tls || ss->tls_up)) {
			ssize_t w = ss->tls_up ? tls_conn_write(ss->tls, p, n)
					       : net_send(d->s, ss->sk, p, n);

			if (w > 0) {
				smtpd_count_replies(d, ss, p, (size_t)w);
				smtp_server_output_consume(ss->eng, (size_t)w);
				progress = 1;
			}
		}
		if (ss->tls && (n = tls_conn_cipher_peek(ss->tls, &p)) > 0) {
			ssize_t w = net_send(d->s, ss->sk, p, n);

			if (w > 0) {
				tls_conn_cipher_consume(ss->tls, (size_t)w);
				progress = 1;
			}
		}
		if (!progress)
			break;
	}
	if (ss->tls && tls_conn_cipher_peek(ss->tls, &p) > 0)
		return 0;
	return smtp_server_output(ss->eng, &p) == 0;
}

/* smtpd_answer - answer the pending verdict and continue the session */
static void smtpd_answer(struct smtpd *d, struct smtpd_sess *ss, int code,
			 const char *enh, const char *text, uint64_t now)
{
	(void)d;
	ss->handling = 0;
	smtp_server_verdict(ss->eng, code, enh, text, now);
}

/* smtpd_reject - log the NOQUEUE reject line for a refused command, then
 * answer it with the same code and text */
static void smtpd_reject(struct smtpd *d, struct smtpd_sess *ss,
			 const char *stage, int code, const char *enh,
			 const char *text, const char *from, const char *to,
			 uint64_t now)
{
	char line[MLOG_LINE_MAX];

	mlog_reject(line, sizeof(line), NULL, stage, &ss->mc, code, enh, text,
		    from, to, ss->esmtp, ss->helo);
	smtpd_log(d, line);
	smtpd_answer(d, ss, code, enh, text, now);
}

/* smtpd_rcpt_xverdict - answer the pending RCPT with the external
 * directory's verdict: found 250, not found 550 5.1.1, anything else
 * 451 4.4.3 (never a 550 without a real negative answer) */
static void smtpd_rcpt_xverdict(struct smtpd *d, struct smtpd_sess *ss,
				uint8_t verdict, uint64_t now)
{
	const struct smtp_action *a = smtp_server_action(ss->eng);
	const char *to = a->addr ? a->addr->addr : "";
	const char *from = a->env ? a->env->sender.addr : "";
	char text[400];

	if (verdict == MSTORE_X_OK) {
		d->st.rcpt_ok++;
		smtpd_answer(d, ss, 0, NULL, NULL, now);
	} else if (verdict == MSTORE_X_NEG) {
		d->st.rcpt_unknown++;
		snprintf(text, sizeof(text), "<%s>: Recipient address rejected: "
			 "User unknown", to);
		smtpd_reject(d, ss, "RCPT", 550, "5.1.1", text, from, to, now);
	} else {
		d->st.rcpt_x_unavail++;
		snprintf(text, sizeof(text), "<%s>: Recipient address rejected: "
			 "Directory server unavailable, try again later", to);
		smtpd_reject(d, ss, "RCPT", 451, "4.4.3", text, from, to, now);
	}
}

/* smtpd_rcpt_x - a recipient the external directory (LDAP) answers: a
 * fresh cache entry at once, else the session parks until the backend's
 * thread answers on our xdone ring (it answers within its timeout) */
static void smtpd_rcpt_x(struct smtpd *d, struct smtpd_sess *ss,
			 const struct smtp_action *a, uint64_t now)
{
	const struct mstore_xdir_ops *x = d->m->xdir;
	const struct smtp_addr *ad = a->addr;
	struct mstore_xreq *q = &ss->xq;
	struct mstore_xrcpt xr;
	int rc = EIO;

	if (!d->xrd)
		d->xrd = x->reader_new(d->m->xdir_ctx);
	if (d->xrd && ad->len < sizeof(q->addr))
		rc = x->cached(d->xrd, ad->addr, ad->len, now, &xr);
	if (rc == 0 && xr.fresh) {
		d->st.rcpt_x_hit++;
		smtpd_rcpt_xverdict(d, ss, xr.verdict, now);
		return;
	}
	if (ad->len >= sizeof(q->addr)) {
		smtpd_rcpt_xverdict(d, ss, MSTORE_X_UNAVAIL, now);
		return;
	}
	q->owner = (uint8_t)d->owner;
	q->sess = ss;
	q->verdict = MSTORE_X_MISS;
	q->stale = 0;
	q->t_us = tsc_now_us();
	memcpy(q->addr, ad->addr, ad->len);
	q->addr[ad->len] = '\0';
	if (x->lookup(d->m->xdir_ctx, q) < 0) {
		/* backend swamped: only what the cache still allows */
		smtpd_rcpt_xverdict(d, ss, rc == 0 ? MSTORE_X_OK
						   : MSTORE_X_UNAVAIL, now);
		return;
	}
	d->st.rcpt_x_wait++;
	ss->busy = 1;
}

/* smtpd_rcpt - directory verdict for one recipient (RCPT, io lcore) */
static void smtpd_rcpt(struct smtpd *d, struct smtpd_sess *ss,
		       const struct smtp_action *a, uint64_t now)
{
	const struct smtp_addr *ad = a->addr;
	const char *dom = smtp_addr_domain(ad);
	struct stor_dir_domain dd;
	struct stor_dir_rcpt dr;
	const char *from = a->env ? a->env->sender.addr : "";
	char text[400];
	int catchall = 0, rc, rc2 = 0;

	if (ad->flags & SMTP_ADDR_F_POSTMASTER) {
		d->st.rcpt_ok++;
		smtpd_answer(d, ss, 0, NULL, NULL, now);
		return;
	}
	rc = d->rd ? stor_dir_domain(d->rd, (struct stor_str){ dom,
				     (uint32_t)strlen(dom) }, &dd) : EIO;
	if (rc == 0)
		rc2 = stor_dir_rcpt(d->rd, (struct stor_str){ ad->addr, ad->len },
				    &dr, &catchall);
	if (d->rd)
		stor_dir_reader_release(d->rd);
	if (rc == 0) {
		rc = rc2;
		if (rc == 0 && dr.action != STOR_ACT_REJECT) {
			d->st.rcpt_ok++;
			smtpd_answer(d, ss, 0, NULL, NULL, now);
			return;
		}
		/* not in the local directory: LDAP, if it backs the domain */
		if (rc == MDB_NOTFOUND && d->m->xdir &&
		    d->m->xdir->handles(d->m->xdir_ctx, dom, strlen(dom))) {
			smtpd_rcpt_x(d, ss, a, now);
			return;
		}
		if (rc == 0 || rc == MDB_NOTFOUND) {
			d->st.rcpt_unknown++;
			snprintf(text, sizeof(text), "<%s>: Recipient address "
				 "rejected: User unknown", ad->addr);
			smtpd_reject(d, ss, "RCPT", 550, "5.1.1", text, from,
				     ad->addr, now);
			return;
		}
	} else if (rc == MDB_NOTFOUND) {
		if (ss->trusted || ss->auth_user[0]) {
			d->st.rcpt_ok++;
			smtpd_answer(d, ss, 0, NULL, NULL, now);
			return;
		}
		d->st.rcpt_relay_denied++;
		snprintf(text, sizeof(text), "<%s>: Relay access denied",
			 ad->addr);
		smtpd_reject(d, ss, "RCPT", 554, "5.7.1", text, from,
			     ad->addr, now);
		return;
	}
	snprintf(text, sizeof(text), "<%s>: Recipient address rejected: "
		 "directory unavailable (%s)", ad->addr, stor_strerror(rc));
	smtpd_reject(d, ss, "RCPT", 451, "4.3.0", text, from, ad->addr, now);
}

/* smtpd_mail - submission needs AUTH; queue above watermark -> 452 */
static void smtpd_mail(struct smtpd *d, struct smtpd_sess *ss,
		       const struct smtp_action *a, uint64_t now)
{
	char qid[STOR_QID_TEXT + 1], line[MLOG_LINE_MAX];
	const char *auth = ss->auth_user;

	ss->n_mail++;
	if (ss->submission && !auth[0]) {
		d->st.auth_required++;
		smtpd_reject(d, ss, "MAIL", 530, "5.7.0",
			     "Authentication required", a->addr->addr, NULL,
			     now);
		return;
	}
	if (stor_queue_full(d->m->q)) {
		d->st.push_queue_full++;
		smtpd_reject(d, ss, "MAIL", 452, "4.3.1",
			     "Insufficient system storage", a->addr->addr, NULL,
			     now);
		return;
	}
	ss->w.qid = stor_queue_new_qid(d->m->q);
	stor_qid_format(ss->w.qid, qid);
	smtp_server_set_queue_id(ss->eng, qid);
	d->st.mail++;
	mlog_qclient(line, sizeof(line), qid, &ss->mc, auth);
	smtpd_log(d, line);
	smtpd_answer(d, ss, 0, NULL, NULL, now);
}

/* smtpd_prio - MT-PRIORITY, else directory rules, else defaults */
static uint8_t smtpd_prio(struct smtpd *d, const struct smtp_envelope *e)
{
	uint8_t lvl;

	if (e->mail.mt_priority != SMTP_MTPRIO_NONE)
		return e->priority;
	if (d->rd) {
		struct stor_str snd = { e->sender.addr, e->sender.len };
		struct stor_str rc = { e->n_rcpt ? e->rcpt[0].addr.addr : "",
				       e->n_rcpt ? e->rcpt[0].addr.len : 0 };
		int rc2 = stor_dir_priority(d->rd, snd, rc, &lvl);

		stor_dir_reader_release(d->rd);
		if (rc2 == 0 && lvl < PRIO_LEVELS)
			return lvl;
	}
	/* <> senders are bounces and notifications */
	if (e->sender.flags & SMTP_ADDR_F_NULL)
		return (uint8_t)d->c->notify_priority;
	return (uint8_t)d->c->default_priority;
}

/* smtpd_enqueue - the item into its priority ring; -1 if full */
static int smtpd_enqueue(struct smtpd *d, struct smtpd_sess *ss)
{
	return rte_ring_mp_enqueue(d->m->prio[ss->w.prio], &ss->w) == 0 ? 0
									: -1;
}

/* smtpd_data - end of data: hand envelope + body to the workers */
static void smtpd_data(struct smtpd *d, struct smtpd_sess *ss,
		       const struct smtp_action *a, uint64_t now)
{
	struct work *w = &ss->w;

	ss->n_data++;
	w->kind = WORK_DATA;
	w->owner = (uint8_t)d->owner;
	w->sess = ss;
	w->env = a->env;
	w->msg = a->msg;
	w->msg_len = a->msg_len;
	w->received_len = a->received_len;
	w->prio = smtpd_prio(d, a->env);
	w->t_eod_us = tsc_now_us();
	w->code = 0;
	w->rcpt = NULL;
	w->arena = NULL;
	snprintf(w->client, sizeof(w->client), "%.20s[%.50s]",
		 ss->peer.name[0] ? ss->peer.name : "unknown", ss->peer.addr);
	ss->busy = 1;
	if (smtpd_enqueue(d, ss) < 0) {
		d->st.push_ring_full++;
		d->st.waiting++;
		ss->waiting = 1;
		ss->wait_since_ms = now;
		ss->wnext = d->waiting;
		d->waiting = ss;
	}
}

/* smtpd_auth - password check on the aux thread */
static void smtpd_auth(struct smtpd *d, struct smtpd_sess *ss,
		       const struct smtp_action *a, uint64_t now)
{
	struct work *w = &ss->w;

	w->kind = WORK_AUTH;
	w->owner = (uint8_t)d->owner;
	w->sess = ss;
	snprintf(w->user, sizeof(w->user), "%s", a->authcid ? a->authcid : "");
	w->pwlen = a->password ? strlen(a->password) : 0;
	if (w->pwlen >= sizeof(w->pw))
		w->pwlen = sizeof(w->pw) - 1;
	memcpy(w->pw, a->password ? a->password : "", w->pwlen);
	w->pw[w->pwlen] = '\0';
	ss->busy = 1;
	if (mstore_auth(d->m, w) < 0) {
		ss->busy = 0;
		explicit_bzero(w->pw, sizeof(w->pw));
		smtpd_answer(d, ss, 454, "4.7.0",
			     "Temporary authentication failure", now);
	}
}

/* smtpd_act - start on the engine's pending action; 1 if the session
 * can go on now (answered at once), 0 if it waits */
static int smtpd_act(struct smtpd *d, struct smtpd_sess *ss, uint64_t now)
{
	const struct smtp_action *a = smtp_server_action(ss->eng);

	switch (a->type) {
	case SMTP_ACT_VERDICT_CONNECT:
		if (d->c->banner_delay_ms) {
			if (!ss->banner_at_ms)
				ss->banner_at_ms = now + d->c->banner_delay_ms;
			if (now < ss->banner_at_ms)
				return 0;
		}
		smtpd_answer(d, ss, 0, NULL, NULL, now);
		return 1;
	case SMTP_ACT_VERDICT_HELO:
		ss->n_ehlo++;
		snprintf(ss->helo, sizeof(ss->helo), "%s", a->helo ? a->helo : "");
		ss->esmtp = a->esmtp;
		smtpd_answer(d, ss, 0, NULL, NULL, now);
		return 1;
	case SMTP_ACT_VERDICT_MAIL:
		smtpd_mail(d, ss, a, now);
		return 1;
	case SMTP_ACT_VERDICT_RCPT:
		ss->n_rcpt++;
		smtpd_rcpt(d, ss, a, now);
		return !ss->busy;     /* parked on an LDAP lookup */
	case SMTP_ACT_VERDICT_AUTH:
		ss->handling = 1;
		smtpd_auth(d, ss, a, now);
		return !ss->busy;
	case SMTP_ACT_VERDICT_DATA:
		ss->handling = 1;
		smtpd_data(d, ss, a, now);
		return 0;
	default:
		return 1;
	}
}

/* smtpd_close - we are done with the socket (queued replies still go) */
static void smtpd_close(struct smtpd *d, struct smtpd_sess *ss)
{
	if (ss->closing || ss->sock_gone)
		return;
	ss->closing = 1;
	if (ss->tls && ss->tls_up) {
		tls_conn_shutdown(ss->tls);
		smtpd_flush(d, ss);
	}
	net_close(d->s, ss->sk);
}

/* smtpd_tls_start - STARTTLS: the 220 went out in clear, TLS from now */
static int smtpd_tls_start(struct smtpd *d, struct smtpd_sess *ss)
{
	ss->tls = tls_conn_new(d->tls, NULL, NULL, 0);
	if (!ss->tls) {
		d->st.tls_fail++;
		return -1;
	}
	ss->tls_hs = 1;
	ss->pt_len = 0;
	return 0;
}

/* smtpd_input - socket bytes into the engine (or TLS); returns bytes of
 * progress; sets eof at the peer's end of stream */
static size_t smtpd_input(struct smtpd *d, struct smtpd_sess *ss,
			  uint64_t now)
{
	struct net_iov iov[2];
	ssize_t n = net_recv_peek(d->s, ss->sk, iov);
	size_t used = 0;

	if (n == 0 || n == -NET_EAGAIN) {
		uint8_t b;

		if (net_recv(d->s, ss->sk, &b, 1) == 0)
			ss->eof = 1;
	}
	if (n < 0)
		n = 0;
	for (int i = 0; i < 2 && n > 0; i++) {
		size_t took;

		if (!iov[i].len)
			continue;
		if (ss->tls) {
			took = tls_conn_cipher_in(ss->tls, iov[i].base,
						  iov[i].len);
		} else {
			ssize_t r = smtp_server_input(ss->eng, iov[i].base,
						      iov[i].len, now);

			took = r > 0 ? (size_t)r : 0;
		}
		used += took;
		if (took < iov[i].len)
			break;
	}
	if (used)
		net_recv_consume(d->s, ss->sk, used);
	if (!ss->tls)
		return used;
	if (ss->tls_hs) {
		int r = tls_conn_handshake(ss->tls);

		if (r < 0) {
			d->st.tls_fail++;
			smtpd_flush(d, ss);
			smtpd_close(d, ss);
			return used;
		}
		if (r == 1) {
			struct tls_conn_info ti;
			struct smtp_tls_info si;

			tls_conn_info(ss->tls, &ti);
			memset(&si, 0, sizeof(si));
			snprintf(si.version, sizeof(si.version), "%s", ti.version);
			snprintf(si.cipher, sizeof(si.cipher), "%s", ti.cipher);
			si.bits = ti.bits;
			si.resumed = (uint8_t)ti.resumed;
			ss->tls_hs = 0;
			ss->tls_up = 1;
			ss->auth_user[0] = '\0';  /* RFC 3207 4.2: forget */
			d->st.tls_ok++;
			smtp_server_tls_done(ss->eng, &si, now);
			used++;
		}
		return used;
	}
	/* plaintext out of TLS, staged, fed as far as the engine takes */
	for (;;) {
		ssize_t r = 0, took;

		if (ss->pt_len < sizeof(ss->pt))
			r = tls_conn_read(ss->tls, ss->pt + ss->pt_len,
					  sizeof(ss->pt) - ss->pt_len);
		if (r < 0) {
			if (ss->pt_len == 0) {
				ss->eof = 1;
				break;
			}
			r = 0;
		}
		ss->pt_len += (size_t)r;
		if (!ss->pt_len)
			break;
		took = smtp_server_input(ss->eng, ss->pt, ss->pt_len, now);
		if (took <= 0)
			break;
		memmove(ss->pt, ss->pt + took, ss->pt_len - (size_t)took);
		ss->pt_len -= (size_t)took;
		used += (size_t)took;
	}
	return used;
}

/* smtpd_pump - run the session as far as it goes without waiting */
static void smtpd_pump(struct smtpd *d, struct smtpd_sess *ss, uint64_t now)
{
	for (int rounds = 0; rounds < 64; rounds++) {
		const struct smtp_action *a;
		int flushed;

		if (ss->sock_gone || ss->closing)
			return;
		flushed = smtpd_flush(d, ss);
		if (ss->busy)
			return;
		a = smtp_server_action(ss->eng);
		if (a->type == SMTP_ACT_CLOSE) {
			if (flushed)
				smtpd_close(d, ss);
			return;
		}
		if (a->type == SMTP_ACT_STARTTLS && !ss->tls) {
			if (!flushed)
				return;
			if (smtpd_tls_start(d, ss) < 0) {
				smtpd_close(d, ss);
				return;
			}
			continue;
		}
		if (a->type >= SMTP_ACT_VERDICT_CONNECT &&
		    a->type <= SMTP_ACT_VERDICT_DATA) {
			if (!smtpd_act(d, ss, now))
				return;
			continue;
		}
		if (smtpd_input(d, ss, now) == 0) {
			if (ss->eof) {
				smtpd_flush(d, ss);
				smtpd_close(d, ss);
			}
			return;
		}
	}
}

/* smtpd_sess_free - the last reference is gone */
static void smtpd_sess_free(struct smtpd *d, struct smtpd_sess *ss)
{
	char line[MLOG_LINE_MAX], counts[160];

	snprintf(counts, sizeof(counts), "ehlo=%u mail=%u rcpt=%u data=%u",
		 ss->n_ehlo, ss->n_mail, ss->n_rcpt, ss->n_data);
	mlog_disconnect(line, sizeof(line), &ss->mc, counts);
	smtpd_log(d, line);
	if (ss->counted)
		climit_disconnect(&d->lim, ss->raddr,
				  smtpd_ms(d, tsc_now_us()));
	if (ss->prev)
		ss->prev->next = ss->next;
	else
		d->all = ss->next;
	if (ss->next)
		ss->next->prev = ss->prev;
	d->n_sess--;
	d->st.active = d->n_sess;
	d->st.closed++;
	smtp_server_free(ss->eng);
	if (ss->tls)
		tls_conn_free(ss->tls);
	explicit_bzero(ss->w.pw, sizeof(ss->w.pw));
	free(ss);
}

/* smtpd_refuse - 421 without a session, then close */
static void smtpd_refuse(struct smtpd *d, net_sock_t sk, const char *why)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "421 4.7.0 %s %s\r\n",
			 d->c->hostname, why);

	net_send(d->s, sk, line, (size_t)n);
	d->st.replies[4]++;
	net_close(d->s, sk);
}

/* smtpd_accept - a new connection on one of our ports */
static void smtpd_accept(struct smtpd *d, const struct net_event *ev,
			 uint64_t now)
{
	struct net_sockinfo si;
	struct smtpd_sess *ss;
	struct in_addr ia;
	char line[MLOG_LINE_MAX];
	uint32_t na;
	enum climit_verdict cv;
	int sub = 0, trusted = 0;

	if (net_sockinfo(d->s, ev->sock, &si) < 0)
		return;
	if (d->n_sess >= d->c->max_sessions_per_lcore) {
		d->st.refused_lcore_limit++;
		smtpd_refuse(d, ev->sock, "Error: too many sessions, try later");
		return;
	}
	/* trusted networks ("net" lines) are exempt from per-client limits */
	na = htonl(si.raddr);
	if (d->rd) {
		trusted = stor_dir_trusted(d->rd, AF_INET, &na) == 0;
		stor_dir_reader_release(d->rd);
	}
	cv = trusted ? CLIMIT_OK : climit_connect(&d->lim, si.raddr, now);
	if (cv != CLIMIT_OK) {
		if (cv == CLIMIT_CONNS)
			d->st.refused_client_conns++;
		else
			d->st.refused_client_rate++;
		smtpd_refuse(d, ev->sock, cv == CLIMIT_CONNS ?
			     "Error: too many connections from your address" :
			     "Error: too many connections per minute from your "
			     "address");
		return;
	}
	ss = calloc(1, sizeof(*ss));
	if (!ss) {
		if (!trusted)
			climit_disconnect(&d->lim, si.raddr, now);
		smtpd_refuse(d, ev->sock, "Error: out of memory");
		return;
	}
	for (unsigned i = 0; i < d->c->n_sub; i++)
		if (d->c->sub_ports[i] == si.lport)
			sub = 1;
	ss->def = (struct svc_def){ "smtp", si.lport, SVC_SMTP, smtpd_event,
				    true };
	ss->d = d;
	ss->sk = ev->sock;
	ss->counted = !trusted;
	ss->trusted = (uint8_t)trusted;
	ss->raddr = si.raddr;
	ss->submission = (uint8_t)sub;
	ia.s_addr = htonl(si.raddr);
	inet_ntop(AF_INET, &ia, ss->peer.addr, sizeof(ss->peer.addr));
	ss->peer.port = si.rport;
	ss->mc.host = ss->peer.name;
	ss->mc.addr = ss->peer.addr;
	ss->eng = smtp_server_new(&d->ecfg[sub], &ss->peer, now);
	if (!ss->eng) {
		if (!trusted)
			climit_disconnect(&d->lim, si.raddr, now);
		free(ss);
		smtpd_refuse(d, ev->sock, "Error: out of memory");
		return;
	}
	ss->next = d->all;
	if (d->all)
		d->all->prev = ss;
	d->all = ss;
	d->n_sess++;
	d->st.sessions++;
	d->st.active = d->n_sess;
	net_set_user(d->s, ev->sock, ss);
	mlog_connect(line, sizeof(line), &ss->mc);
	smtpd_log(d, line);
	if (LOG_MDEBUG_ON(LOG_M_SMTPD))       /* sluicectl log debug smtpd on */
		log_mdebug(LOG_M_SMTPD, "io lcore %u: session from %s:%u to "
			   "port %u%s, %u open", d->owner, ss->peer.addr,
			   si.rport, si.lport, trusted ? " (trusted)" : "",
			   d->n_sess);
	smtpd_pump(d, ss, now);
}

void smtpd_event(struct svc *v, const struct net_event *ev)
{
	struct smtpd *d = v->smtpd;
	struct smtpd_sess *ss = ev->user;
	uint64_t now = smtpd_ms(d, tsc_now_us());

	if (ss->def.index != SVC_SMTP)
		return;
	if ((void *)ss >= (void *)d->listen &&
	    (void *)ss < (void *)(d->listen + CFG_MAX_PORTS)) {
		/* listener's pointer: a new connection, or a refused one */
		if (ev->events & NET_EV_ACCEPTED)
			smtpd_accept(d, ev, now);
		return;
	}
	if (ev->events & NET_EV_CLOSED) {
		ss->sock_gone = 1;
		if (!ss->busy)
			smtpd_sess_free(d, ss);
		return;
	}
	smtpd_pump(d, ss, now);
}

/* smtpd_done_data - a message came back from the worker/writer */
static void smtpd_done_data(struct smtpd *d, struct smtpd_sess *ss,
			    struct work *w, uint64_t now)
{
	char line[MLOG_LINE_MAX], qid[STOR_QID_TEXT + 1];
	uint64_t lat = tsc_now_us() - w->t_eod_us;

	stor_qid_format(w->qid, qid);
	if (w->code == 0) {
		d->st.queued++;
		d->st.queued_bytes += w->msg_len;
		d->st.eod_to_250_us_sum += lat;
		d->st.eod_to_250_n++;
		if (lat > d->st.eod_to_250_max_us)
			d->st.eod_to_250_max_us = lat;
		mlog_from(line, sizeof(line), qid, w->env->sender.addr,
			  w->msg_len, w->nrcpt_out);
		smtpd_log(d, line);
		if (!ss->sock_gone)
			smtpd_answer(d, ss, 0, NULL, NULL, now);
		return;
	}
	d->st.data_refused++;
	if (w->code == 452)
		d->st.push_store_full++;
	mlog_reject(line, sizeof(line), qid, "END-OF-MESSAGE", &ss->mc,
		    w->code, w->enh, w->text, w->env->sender.addr, NULL,
		    w->env->esmtp, w->env->helo ? w->env->helo : "");
	smtpd_log(d, line);
	if (!ss->sock_gone)
		smtpd_answer(d, ss, w->code, w->enh, w->text, now);
}

/* smtpd_done - items back on this lcore */
static unsigned smtpd_done(struct smtpd *d, uint64_t now)
{
	void *p[SMTPD_DONE_BURST];
	unsigned n = rte_ring_sc_dequeue_burst(d->m->done[d->owner], p,
					       SMTPD_DONE_BURST, NULL);

	for (unsigned i = 0; i < n; i++) {
		struct work *w = p[i];
		struct smtpd_sess *ss = w->sess;

		ss->busy = 0;
		if (w->kind == WORK_DATA) {
			smtpd_done_data(d, ss, w, now);
		} else {
			if (w->code == 0) {
				d->st.auth_ok++;
				memcpy(ss->auth_user, w->user,
				       sizeof(ss->auth_user));
			} else
				d->st.auth_fail++;
			if (!ss->sock_gone)
				smtpd_answer(d, ss, w->code, w->enh[0] ? w->enh :
					     NULL, w->code ? w->text : NULL, now);
		}
		if (ss->sock_gone)
			smtpd_sess_free(d, ss);
		else
			smtpd_pump(d, ss, now);
	}
	return n;
}

/* smtpd_xdone - LDAP lookups answered: the parked RCPTs go on */
static unsigned smtpd_xdone(struct smtpd *d, uint64_t now)
{
	struct rte_ring *r = d->m->xdone[d->owner];
	void *p[SMTPD_DONE_BURST];
	unsigned n = r ? rte_ring_sc_dequeue_burst(r, p, SMTPD_DONE_BURST,
						   NULL) : 0;

	for (unsigned i = 0; i < n; i++) {
		struct mstore_xreq *q = p[i];
		struct smtpd_sess *ss = q->sess;

		ss->busy = 0;
		if (ss->sock_gone) {
			smtpd_sess_free(d, ss);
			continue;
		}
		smtpd_rcpt_xverdict(d, ss, q->verdict, now);
		smtpd_pump(d, ss, now);
	}
	return n;
}

/* smtpd_retry_waiting - sessions whose priority ring was full */
static unsigned smtpd_retry_waiting(struct smtpd *d, uint64_t now)
{
	struct smtpd_sess **pp = &d->waiting;
	unsigned work = 0;

	while (*pp) {
		struct smtpd_sess *ss = *pp;
		int done = 0;

		if (smtpd_enqueue(d, ss) == 0) {
			done = 1;
		} else if (now >= ss->wait_since_ms + d->c->queue_wait_ms ||
			   ss->sock_gone) {
			/* never reached a worker: ours to answer */
			done = 1;
			ss->busy = 0;
			d->st.push_wait_timeout++;
			if (ss->sock_gone) {
				*pp = ss->wnext;
				ss->waiting = 0;
				d->st.waiting--;
				smtpd_sess_free(d, ss);
				work++;
				continue;
			}
			smtpd_answer(d, ss, 451, "4.3.0", "Local error in "
				     "processing: queue busy, try again later",
				     now);
			smtpd_pump(d, ss, now);
		}
		if (done) {
			*pp = ss->wnext;
			ss->waiting = 0;
			d->st.waiting--;
			work++;
		} else {
			pp = &ss->wnext;
		}
	}
	return work;
}

/* smtpd_walk - timers: banner delay, engine timeouts */
static void smtpd_walk(struct smtpd *d, uint64_t now)
{
	struct smtpd_sess *ss = d->all, *next;

	for (; ss; ss = next) {
		next = ss->next;
		if (ss->sock_gone || ss->closing || ss->busy)
			continue;
		if (ss->banner_at_ms && now >= ss->banner_at_ms &&
		    smtp_server_action(ss->eng)->type ==
		    SMTP_ACT_VERDICT_CONNECT) {
			smtpd_pump(d, ss, now);
			continue;
		}
		if (smtp_server_deadline(ss->eng) <= now) {
			smtp_server_tick(ss->eng, now);
			smtpd_pump(d, ss, now);
		}
	}
}

int smtpd_poll(void *arg, uint64_t now_us)
{
	struct smtpd *d = arg;
	uint64_t now = smtpd_ms(d, now_us);
	unsigned work = smtpd_done(d, now) + smtpd_xdone(d, now);

	if (d->waiting)
		work += smtpd_retry_waiting(d, now);
	if (now_us >= d->next_walk_us) {
		d->next_walk_us = now_us + SMTPD_WALK_US;
		smtpd_walk(d, now);
	}
	return (int)work;
}

/* smtpd_engine_cfg - the engine settings new sessions start with, from
 * d->c and d->tls (sessions copy them at smtp_server_new) */
static void smtpd_engine_cfg(struct smtpd *d)
{
	const struct cfg_smtp *c = d->c;

	for (int k = 0; k < 2; k++) {
		struct smtp_server_cfg *e = &d->ecfg[k];

		smtp_server_cfg_defaults(e);
		e->hostname = c->hostname;
		e->ext = SMTP_EXT_ALL;
		if (!d->tls)
			e->ext &= ~SMTP_EXT_STARTTLS;
		e->verdicts = SMTP_VP_ALL;
		e->max_msg_size = c->max_message_size;
		e->max_rcpts = c->max_recipients;
		e->max_errors = c->max_errors;
		e->cmd_timeout_ms = c->command_timeout_s * 1000;
		e->data_timeout_ms = c->data_timeout_s * 1000;
		e->session_timeout_ms = c->session_timeout_s * 1000;
		e->auth_plaintext = c->auth_plaintext;
		e->prio_default = (uint8_t)c->default_priority;
	}
}

void smtpd_reconfigure(struct smtpd *d, const struct cfg_smtp *c,
		       struct tls_ctx *tls)
{
	d->c = c;
	d->tls = tls;
	smtpd_engine_cfg(d);
}

int smtpd_listen(struct smtpd *d, bool on, char *err, size_t errlen)
{
	for (unsigned i = 0; i < d->c->n_ports; i++) {
		int rc = on ? net_listen(d->s, d->c->ports[i], &d->listen[i])
			    : net_unlisten(d->s, d->c->ports[i]);

		if (rc < 0 && !(on && rc == -NET_EADDRINUSE) &&
		    !(!on && rc == -NET_EINVAL)) {
			snprintf(err, errlen, "%s TCP port %u: %s", on ?
				 "listen on" : "stop listening on",
				 d->c->ports[i], net_strerror(rc));
			return -1;
		}
	}
	return 0;
}

int smtpd_start(struct smtpd *d, struct svc *v, struct mstore *m,
		unsigned owner, const struct cfg_smtp *c, struct tls_ctx *tls,
		char *err, size_t errlen)
{
	struct timeval tv;
	int rc;

	memset(d, 0, sizeof(*d));
	d->s = v->s;
	d->svc = v;
	d->m = m;
	d->owner = owner;
	d->c = c;
	d->tls = tls;
	v->smtpd = d;
	gettimeofday(&tv, NULL);
	d->epoch_ms_base = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec /
			   1000;
	d->mono_us_base = tsc_now_us();
	smtpd_engine_cfg(d);
	rc = stor_dir_reader_open(m->dir, &d->rd);
	if (rc != 0) {
		snprintf(err, errlen, "smtp: directory reader: %s",
			 stor_strerror(rc));
		return -1;
	}
	if (climit_init(&d->lim, c->max_sessions_per_lcore,
			c->per_client_max_conns,
			c->per_client_rate_per_min) < 0) {
		snprintf(err, errlen, "smtp: out of memory");
		return -1;
	}
	for (unsigned i = 0; i < c->n_ports; i++) {
		d->listen[i] = (struct svc_def){ "smtp", c->ports[i], SVC_SMTP,
						 smtpd_event, true };
		rc = net_listen(d->s, c->ports[i], &d->listen[i]);
		if (rc < 0) {
			snprintf(err, errlen, "smtp service: listen on TCP port "
				 "%u: %s", c->ports[i], net_strerror(rc));
			return -1;
		}
	}
	return 0;
}

void smtpd_free_all(struct smtpd *d)
{
	while (d->all) {
		struct smtpd_sess *ss = d->all;

		ss->sock_gone = 1;
		ss->busy = 0;
		ss->w.rcpt = NULL;
		smtpd_sess_free(d, ss);
	}
	if (d->rd)
		stor_dir_reader_close(d->rd);
	d->rd = NULL;
	if (d->xrd)
		d->m->xdir->reader_free(d->xrd);
	d->xrd = NULL;
	climit_free(&d->lim);
}
