/*
 * sb_client.c - the generator's per-thread event loop and SMTP client
 * state machine (RFC 5321, PIPELINING RFC 2920, CHUNKING/BDAT RFC 3030,
 * STARTTLS RFC 3207) over a transport (sb_tport.h): non-blocking kernel
 * sockets and epoll, or sluice's TCP stack on a DPDK memif port. Nothing
 * here knows which one it runs on.
 *
 * Input: a gen_worker with its share of sessions, messages and rate.
 * Output: gen_worker.st, where every message the worker was given (and
 * that was due before the end of the run) is counted exactly once: as
 * delivered (2xx), deferred (4xx), rejected (5xx) or an error by reason.
 * Never blocks: connect, every reply and every write has a deadline.
 */
#define _GNU_SOURCE
#include "sb_gen.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_tport.h"

const char *const gen_err_names[GE_MAX] = {
	[GE_REFUSED] = "connection refused",
	[GE_CONN_TIMEOUT] = "connect timeout",
	[GE_CONNECT] = "connect error",
	[GE_TIMEOUT] = "reply timeout",
	[GE_RESET] = "connection reset",
	[GE_CLOSED] = "closed by server",
	[GE_BAD_REPLY] = "bad reply",
	[GE_BANNER] = "greeting refused",
	[GE_EHLO] = "EHLO refused",
	[GE_NO_EXT] = "extension not offered",
	[GE_STARTTLS] = "STARTTLS refused",
	[GE_TLS] = "TLS error",
	[GE_UNFINISHED] = "unfinished at end of run",
	[GE_UNSENT] = "due but not sent (behind schedule)",
};

enum gs_state {
	GS_CLOSED, GS_CONNECTING, GS_BANNER, GS_EHLO, GS_STARTTLS, GS_HANDSHAKE,
	GS_READY, GS_TXN, GS_RSET, GS_QUIT,
};

static const char *const gs_names[] = {
	"closed", "connect", "greeting", "EHLO", "STARTTLS", "TLS handshake",
	"idle", "transaction", "RSET", "QUIT",
};

struct gen_sess {
	unsigned idx;
	enum gs_state st;
	struct sb_conn c;
	struct sb_buf in, out;
	bool in_idle;
	bool cap_pipe, cap_chunk, cap_tls;
	uint64_t deadline;
	unsigned msgs_on_conn;
	/* the message this session works on */
	bool has_msg;
	uint64_t seq, intended, started, size;
	char hdr[600];
	size_t hdr_len;
	const char *body;
	size_t body_len;
	/* transaction progress: step 0 MAIL, 1..r RCPT, r+1 DATA/BDAT */
	unsigned sent, acked;
	bool pipelined, await_dot;
	int mail_fail, rcpt_fail;
	unsigned rcpt_ok;
};

struct loop {
	struct gen_worker *w;
	const struct gen_cfg *cfg;
	unsigned *idle;
	unsigned nidle;
	uint64_t now, end;
	bool stopping;
};

static bool flush(struct loop *L, struct gen_sess *s);

/* idle_push - the session can take a message (connected or not) */
static void idle_push(struct loop *L, struct gen_sess *s)
{
	if (s->in_idle)
		return;
	s->in_idle = true;
	L->idle[L->nidle++] = s->idx;
}

/* sess_arm - ask the transport for the events the session's state needs */
static void sess_arm(struct loop *L, struct gen_sess *s)
{
	if (s->c.fd < 0)
		return;
	uint32_t want = SB_EV_IN;
	if (s->st == GS_CONNECTING)
		want = SB_EV_OUT;
	else if (sb_buf_avail(&s->out) || s->c.want_write)
		want |= SB_EV_OUT;
	L->w->tp->ops->arm(L->w->tp, &s->c, want);
}

static void sess_close(struct gen_sess *s)
{
	sb_conn_close(&s->c); /* leaves the transport's poll set too */
	s->in.off = s->in.len = 0;
	s->out.off = s->out.len = 0;
	s->st = GS_CLOSED;
	s->cap_pipe = s->cap_chunk = s->cap_tls = false;
	s->msgs_on_conn = 0;
}

/* msg_finish - count the session's message once: code > 0 is the reply
 * that decided it, else err says why it failed */
static void msg_finish(struct loop *L, struct gen_sess *s, int code, int err, const char *detail)
{
	struct gen_stats *st = &L->w->st;
	if (!s->has_msg)
		return;
	s->has_msg = false;
	L->w->inflight--;
	size_t sec = L->now > L->w->t0 ? (size_t)((L->now - L->w->t0) / 1000000u) : 0;
	if (code > 0) {
		st->codes[code < 600 ? code : 599]++;
		if (code / 100 == 2) {
			__atomic_add_fetch(&st->delivered, 1, __ATOMIC_RELAXED);
			st->bytes_ok += s->size;
			sb_hist_record(&st->t250, L->now - s->intended);
			sb_hist_record(&st->service, L->now - s->started);
			sb_series_add(&st->series, sec, 1, s->size, 0);
		} else {
			if (code / 100 == 4)
				__atomic_add_fetch(&st->deferred, 1, __ATOMIC_RELAXED);
			else
				__atomic_add_fetch(&st->rejected, 1, __ATOMIC_RELAXED);
			sb_series_add(&st->series, sec, 0, 0, 1);
		}
	} else {
		__atomic_add_fetch(&st->errors, 1, __ATOMIC_RELAXED);
		st->err[err]++;
		if (detail && !st->err_detail[err][0])
			snprintf(st->err_detail[err], sizeof(st->err_detail[err]), "%s", detail);
		sb_series_add(&st->series, sec, 0, 0, 1);
	}
	__atomic_add_fetch(&st->done, 1, __ATOMIC_RELAXED);
}

/* sess_fail - the connection is unusable: fail its message, close, free */
static void sess_fail(struct loop *L, struct gen_sess *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void sess_fail(struct loop *L, struct gen_sess *s, int err, const char *fmt, ...)
{
	char d[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d, sizeof(d), fmt, ap);
	va_end(ap);
	msg_finish(L, s, 0, err, d);
	sess_close(s);
	idle_push(L, s);
}

static void put_cmd(struct gen_sess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_cmd(struct gen_sess *s, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || n > (int)sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	line[n++] = '\r';
	line[n++] = '\n';
	sb_buf_append(&s->out, line, (size_t)n);
}

/* rcpt_addr - recipient j of message seq: --to addresses in turn, then
 * local-J@domain of the first once the list runs out */
static void rcpt_addr(const struct gen_cfg *cfg, unsigned j, char *out, size_t n)
{
	if (j < cfg->nto) {
		snprintf(out, n, "%s", cfg->to[j]);
		return;
	}
	const char *a = cfg->to[0], *at = strchr(a, '@');
	if (!at)
		snprintf(out, n, "%s-%u", a, j);
	else
		snprintf(out, n, "%.*s-%u%s", (int)(at - a), a, j, at);
}

/* send_step - queue transaction step i (MAIL, RCPT j, DATA or BDAT) */
static void send_step(struct loop *L, struct gen_sess *s, unsigned i)
{
	const struct gen_cfg *cfg = L->cfg;
	if (i == 0) {
		put_cmd(s, "MAIL FROM:<%s>", cfg->from);
	} else if (i <= cfg->rcpts) {
		char a[300];
		rcpt_addr(cfg, i - 1, a, sizeof(a));
		put_cmd(s, "RCPT TO:<%s>", a);
	} else if (cfg->bdat) {
		put_cmd(s, "BDAT %zu LAST", s->hdr_len + s->body_len);
		sb_buf_append(&s->out, s->hdr, s->hdr_len);
		sb_buf_append(&s->out, s->body, s->body_len);
	} else {
		put_cmd(s, "DATA");
	}
	s->sent = i + 1;
}

/* start_txn - build the message and send MAIL (and with PIPELINING all
 * RCPTs and DATA/BDAT too) */
static void start_txn(struct loop *L, struct gen_sess *s)
{
	const struct gen_cfg *cfg = L->cfg;
	struct gen_worker *w = L->w;
	uint64_t size = sb_sizes_pick(&cfg->sizes, &w->rng);
	const size_t hdr_est = 330 + strlen(cfg->from) + strlen(cfg->to[0]);
	s->body = sb_body_slice(&cfg->body, s->seq, size > hdr_est ? size - hdr_est : 0, &s->body_len);
	uint8_t dg[32];
	char hex[65], to0[300];
	sb_sha256(s->body, s->body_len, dg);
	sb_hex(dg, 32, hex);
	rcpt_addr(cfg, 0, to0, sizeof(to0));
	int n = snprintf(s->hdr, sizeof(s->hdr),
		"From: <%s>\r\nTo: <%s>\r\nSubject: sluice-bench %s %llu\r\n"
		"Message-ID: <%llu.%s@sluice-bench>\r\n"
		SB_STAMP_HDR " %s %llu %s %llu\r\n\r\n",
		cfg->from, to0, cfg->run_id, (unsigned long long)s->seq,
		(unsigned long long)s->seq, cfg->run_id,
		cfg->run_id, (unsigned long long)s->seq, hex,
		(unsigned long long)(w->wall0 + (s->intended - w->t0)));
	s->hdr_len = n < (int)sizeof(s->hdr) ? (size_t)n : sizeof(s->hdr) - 1;
	s->size = s->hdr_len + s->body_len;
	s->sent = s->acked = 0;
	s->await_dot = false;
	s->mail_fail = s->rcpt_fail = 0;
	s->rcpt_ok = 0;
	s->pipelined = cfg->pipelining && s->cap_pipe;
	s->st = GS_TXN;
	s->msgs_on_conn++;
	s->deadline = L->now + cfg->timeout_us;
	unsigned last = cfg->rcpts + 1;
	if (s->pipelined)
		for (unsigned i = 0; i <= last; i++)
			send_step(L, s, i);
	else
		send_step(L, s, 0);
}

/* do_connect - open a non-blocking connection for the session's message */
static void do_connect(struct loop *L, struct gen_sess *s)
{
	struct sb_tport *tp = L->w->tp;
	s->st = GS_CONNECTING;
	s->deadline = L->now + L->cfg->connect_timeout_us;
	int r = tp->ops->connect(tp, &s->c, &L->cfg->server, s->idx);
	if (r < 0) {
		s->c.fd = -1;
		sess_fail(L, s, -r == ECONNREFUSED ? GE_REFUSED : GE_CONNECT, "%s: %s",
			  L->cfg->server_str, strerror(-r));
		return;
	}
	sess_arm(L, s);
}

/* start_msg - give message index k of this worker to an idle session */
static void start_msg(struct loop *L, struct gen_sess *s, uint64_t k, uint64_t intended)
{
	struct gen_worker *w = L->w;
	s->in_idle = false;
	s->has_msg = true;
	s->seq = 1 + w->id + k * L->cfg->threads;
	s->intended = intended;
	s->started = L->now;
	w->inflight++;
	w->st.started++;
	if (s->st == GS_READY) {
		start_txn(L, s);
		if (flush(L, s))
			sess_arm(L, s);
	} else {
		do_connect(L, s);
	}
}

/* after_txn - message done: keep the connection for the next or QUIT */
static void after_txn(struct loop *L, struct gen_sess *s)
{
	const struct gen_cfg *cfg = L->cfg;
	if (L->stopping || (cfg->msgs_per_conn && s->msgs_on_conn >= cfg->msgs_per_conn)) {
		put_cmd(s, "QUIT");
		s->st = GS_QUIT;
		s->deadline = L->now + cfg->timeout_us;
		return;
	}
	s->st = GS_READY;
	idle_push(L, s);
}

/* finish_txn - the transaction's last reply arrived */
static void finish_txn(struct loop *L, struct gen_sess *s, int code)
{
	int final = code;
	if (code / 100 != 2) {
		if (s->mail_fail)
			final = s->mail_fail;
		else if (s->rcpt_ok == 0 && s->rcpt_fail)
			final = s->rcpt_fail;
	}
	msg_finish(L, s, final, 0, NULL);
	if (code == 421 || final == 421) { /* server is closing the channel */
		sess_close(s);
		idle_push(L, s);
		return;
	}
	if (final / 100 != 2) {
		put_cmd(s, "RSET");
		s->st = GS_RSET;
		s->deadline = L->now + L->cfg->timeout_us;
		return;
	}
	after_txn(L, s);
}

/* txn_reply - one reply during a transaction, in command order */
static void txn_reply(struct loop *L, struct gen_sess *s, int code)
{
	const struct gen_cfg *cfg = L->cfg;
	if (s->await_dot) {
		finish_txn(L, s, code);
		return;
	}
	if (s->acked >= s->sent) {
		sess_fail(L, s, GE_BAD_REPLY, "reply %d with no command outstanding", code);
		return;
	}
	unsigned i = s->acked++;
	if (i == 0) {
		if (code / 100 != 2)
			s->mail_fail = code;
	} else if (i <= cfg->rcpts) {
		if (code / 100 == 2) {
			s->rcpt_ok++;
		} else {
			s->rcpt_fail = code;
			L->w->st.rcpt_rejected++;
		}
	} else {
		if (!cfg->bdat && code == 354) {
			sb_buf_append(&s->out, s->hdr, s->hdr_len);
			sb_buf_append(&s->out, s->body, s->body_len);
			sb_buf_append(&s->out, ".\r\n", 3);
			s->await_dot = true;
			return;
		}
		finish_txn(L, s, code);
		return;
	}
	if (!s->pipelined) {
		if (i == 0 && s->mail_fail) {
			finish_txn(L, s, s->mail_fail);
			return;
		}
		if (i == cfg->rcpts && s->rcpt_ok == 0) {
			finish_txn(L, s, s->rcpt_fail);
			return;
		}
		send_step(L, s, s->acked);
	}
}

/* on_reply - a complete (last line of a) reply in the session's state */
static void on_reply(struct loop *L, struct gen_sess *s, int code, const char *text)
{
	const struct gen_cfg *cfg = L->cfg;
	s->deadline = L->now + cfg->timeout_us;
	switch (s->st) {
	case GS_BANNER:
		if (code != 220) {
			sess_fail(L, s, GE_BANNER, "%s", text);
			return;
		}
		put_cmd(s, "EHLO %s", cfg->helo);
		s->st = GS_EHLO;
		return;
	case GS_EHLO:
		if (code != 250) {
			sess_fail(L, s, GE_EHLO, "%s", text);
			return;
		}
		if (cfg->starttls && !s->c.tls_up) {
			if (!s->cap_tls) {
				sess_fail(L, s, GE_NO_EXT, "STARTTLS not offered by %s", cfg->server_str);
				return;
			}
			put_cmd(s, "STARTTLS");
			s->st = GS_STARTTLS;
			return;
		}
		if (cfg->bdat && !s->cap_chunk) {
			sess_fail(L, s, GE_NO_EXT, "CHUNKING (BDAT) not offered by %s", cfg->server_str);
			return;
		}
		if (!s->has_msg) { /* cannot happen: connections open for a message */
			after_txn(L, s);
			return;
		}
		start_txn(L, s);
		return;
	case GS_STARTTLS:
		if (code != 220) {
			sess_fail(L, s, GE_STARTTLS, "%s", text);
			return;
		}
		s->in.off = s->in.len = 0; /* nothing read before TLS may count */
		if (sb_conn_tls_start(&s->c, cfg->tls, false) < 0) {
			sess_fail(L, s, GE_TLS, "%s", s->c.err);
			return;
		}
		s->cap_pipe = s->cap_chunk = s->cap_tls = false;
		s->st = GS_HANDSHAKE;
		return;
	case GS_TXN:
		txn_reply(L, s, code);
		return;
	case GS_RSET:
		after_txn(L, s);
		return;
	case GS_QUIT:
		sess_close(s);
		idle_push(L, s);
		return;
	case GS_READY: /* unsolicited, e.g. 421 idle timeout: drop the link */
		sess_close(s);
		return;
	default:
		sess_fail(L, s, GE_BAD_REPLY, "reply in state %s: %s", gs_names[s->st], text);
		return;
	}
}

/* ehlo_cap - note the extensions we care about from an EHLO line */
static void ehlo_cap(struct gen_sess *s, const char *kw)
{
	if (!strncasecmp(kw, "PIPELINING", 10))
		s->cap_pipe = true;
	else if (!strncasecmp(kw, "CHUNKING", 8))
		s->cap_chunk = true;
	else if (!strncasecmp(kw, "STARTTLS", 8))
		s->cap_tls = true;
}

/* process_input - split replies into lines and act on each complete one */
static void process_input(struct loop *L, struct gen_sess *s)
{
	while (s->c.fd >= 0 && sb_buf_avail(&s->in)) {
		char *p = sb_buf_head(&s->in);
		size_t n = sb_buf_avail(&s->in);
		char *nl = memchr(p, '\n', n);
		if (!nl) {
			if (n > 4096)
				sess_fail(L, s, GE_BAD_REPLY, "reply line longer than 4096 bytes");
			return;
		}
		size_t len = (size_t)(nl - p);
		if (len && p[len - 1] == '\r')
			len--;
		char line[520];
		size_t cl = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
		memcpy(line, p, cl);
		line[cl] = '\0';
		sb_buf_consume(&s->in, (size_t)(nl - p) + 1);
		if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
		    line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-')) {
			sess_fail(L, s, GE_BAD_REPLY, "in %s: \"%.100s\"", gs_names[s->st], line);
			return;
		}
		int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (s->st == GS_EHLO && len > 4)
			ehlo_cap(s, line + 4);
		if (len > 3 && line[3] == '-')
			continue;
		enum gs_state before = s->st;
		on_reply(L, s, code, line);
		if (before == GS_STARTTLS)
			return;
	}
}

/* on_eof - the server closed the connection */
static void on_eof(struct loop *L, struct gen_sess *s)
{
	if (s->st == GS_QUIT) {
		sess_close(s);
		idle_push(L, s);
	} else if (s->st == GS_READY) {
		sess_close(s);
	} else {
		sess_fail(L, s, GE_CLOSED, "server closed the connection in %s", gs_names[s->st]);
	}
}

/* tls_step - drive the handshake; on success send the second EHLO */
static bool tls_step(struct loop *L, struct gen_sess *s)
{
	int r = sb_conn_handshake(&s->c);
	if (r < 0) {
		sess_fail(L, s, GE_TLS, "%s", s->c.err);
		return false;
	}
	if (r == 0)
		return false;
	L->w->st.tls_ok++;
	put_cmd(s, "EHLO %s", L->cfg->helo);
	s->st = GS_EHLO;
	return true;
}

/* flush - write pending output; false if the session failed */
static bool flush(struct loop *L, struct gen_sess *s)
{
	if (!sb_buf_avail(&s->out) && !s->c.want_write)
		return true;
	int r = sb_conn_write(&s->c, &s->out);
	if (r < 0) {
		sess_fail(L, s, s->c.ssl ? GE_TLS : GE_RESET, "write: %s", s->c.err);
		return false;
	}
	if (r > 0)
		s->deadline = L->now + L->cfg->timeout_us;
	return true;
}

/* pump - move bytes both ways and run the state machine */
static void pump(struct loop *L, struct gen_sess *s, uint32_t events)
{
	if (s->st == GS_CONNECTING) {
		if (!(events & (SB_EV_OUT | SB_EV_ERR)))
			return;
		int err = L->w->tp->ops->connect_result(L->w->tp, &s->c);
		if (err) {
			sess_fail(L, s, err == ECONNREFUSED ? GE_REFUSED :
				  err == ETIMEDOUT ? GE_CONN_TIMEOUT : GE_CONNECT,
				  "%s: %s", L->cfg->server_str, strerror(err));
			return;
		}
		L->w->st.conns++;
		s->st = GS_BANNER;
		s->deadline = L->now + L->cfg->timeout_us;
		sess_arm(L, s);
		return;
	}
	if (s->st == GS_HANDSHAKE && !tls_step(L, s)) {
		sess_arm(L, s);
		return;
	}
	if (!flush(L, s))
		return;
	int r = sb_conn_read(&s->c, &s->in, 1 << 16);
	if (r == SB_CONN_EOF) {
		on_eof(L, s);
		return;
	}
	if (r < 0) {
		sess_fail(L, s, s->c.ssl ? GE_TLS : GE_RESET, "read: %s", s->c.err);
		return;
	}
	if (r > 0) {
		s->deadline = L->now + L->cfg->timeout_us;
		process_input(L, s);
	}
	if (s->c.fd < 0)
		return;
	if (s->st == GS_HANDSHAKE) { /* just after 220 to STARTTLS: send ClientHello */
		if (!tls_step(L, s)) {
			sess_arm(L, s);
			return;
		}
	}
	if (!flush(L, s))
		return;
	sess_arm(L, s);
}

/* check_timeouts - fail sessions whose connect/reply/progress deadline passed */
static void check_timeouts(struct loop *L)
{
	struct gen_worker *w = L->w;
	for (unsigned i = 0; i < w->nsess; i++) {
		struct gen_sess *s = &w->sess[i];
		if (s->st == GS_CLOSED || s->st == GS_READY || L->now < s->deadline)
			continue;
		if (s->st == GS_QUIT) {
			sess_close(s);
			idle_push(L, s);
		} else if (s->st == GS_CONNECTING) {
			sess_fail(L, s, GE_CONN_TIMEOUT, "%s: no answer in %.1f s", L->cfg->server_str,
				  (double)L->cfg->connect_timeout_us / 1e6);
		} else {
			sess_fail(L, s, GE_TIMEOUT, "no reply in %s within %.1f s", gs_names[s->st],
				  (double)L->cfg->timeout_us / 1e6);
		}
	}
}

/* due_index - how many of this worker's messages are due by now (open loop) */
static uint64_t due_count(const struct loop *L)
{
	const struct gen_worker *w = L->w;
	uint64_t due = (uint64_t)((double)(L->now - w->t0) * w->rate / 1e6) + 1;
	return due < w->count ? due : w->count;
}

/* schedule - start every message that is due on an idle session */
static void schedule(struct loop *L)
{
	struct gen_worker *w = L->w;
	bool open = w->rate > 0;
	while (!L->stopping && w->next < w->count && L->nidle > 0) {
		uint64_t intended = L->now;
		if (open) {
			intended = w->t0 + (uint64_t)((double)w->next * 1e6 / w->rate);
			if (intended > L->now)
				break;
		}
		struct gen_sess *s = &w->sess[L->idle[--L->nidle]];
		start_msg(L, s, w->next++, intended);
	}
	if (open) {
		uint64_t due = due_count(L);
		w->backlog = due > w->next ? due - w->next : 0;
	}
}

/* wait_timeout_us - until the next arrival (open loop), at most 10 ms so
 * deadlines are checked; microsecond precision (epoll_pwait2, or the memif
 * transport's polling) */
static uint64_t wait_timeout_us(const struct loop *L)
{
	const struct gen_worker *w = L->w;
	if (w->rate > 0 && !L->stopping && w->next < w->count && L->nidle > 0) {
		uint64_t t = w->t0 + (uint64_t)((double)w->next * 1e6 / w->rate);
		if (t <= L->now)
			return 0;
		return t - L->now < 10000 ? t - L->now : 10000;
	}
	return 10000;
}

/* finish_run - count what is left at the end and close every connection */
static void finish_run(struct loop *L)
{
	struct gen_worker *w = L->w;
	if (w->rate > 0) { /* due before the end but never started */
		uint64_t due_end = (uint64_t)((double)(L->end - w->t0) * w->rate / 1e6 + 0.999999);
		if (due_end > w->count)
			due_end = w->count;
		for (; w->next < due_end; w->next++) {
			w->st.errors++;
			w->st.err[GE_UNSENT]++;
			w->st.done++;
		}
	}
	for (unsigned i = 0; i < w->nsess; i++) {
		struct gen_sess *s = &w->sess[i];
		if (s->has_msg)
			msg_finish(L, s, 0, GE_UNFINISHED, "still in progress when the run ended");
		if (s->st == GS_READY && s->c.fd >= 0) {
			struct sb_buf q = { 0 };
			sb_buf_append(&q, "QUIT\r\n", 6);
			sb_conn_write(&s->c, &q);
			sb_buf_free(&q);
		}
		if (s->c.fd >= 0)
			sess_close(s);
		sb_buf_free(&s->in);
		sb_buf_free(&s->out);
	}
}

void sb_client_run(struct gen_worker *w)
{
	const struct gen_cfg *cfg = w->cfg;
	struct loop L = { .w = w, .cfg = cfg };
	w->tp = cfg->tport_new(cfg, w->id);
	w->sess = calloc(w->nsess, sizeof(*w->sess));
	L.idle = calloc(w->nsess, sizeof(unsigned));
	if (!w->sess || !L.idle)
		sb_die("out of memory for %u sessions", w->nsess);
	for (unsigned i = 0; i < w->nsess; i++) {
		w->sess[i].idx = i;
		w->sess[i].c.fd = -1;
	}
	for (unsigned i = w->nsess; i-- > 0;)
		idle_push(&L, &w->sess[i]);
	L.now = sb_now_us();
	L.end = w->t0 + cfg->duration_us;
	uint64_t last_scan = L.now;
	struct sb_event ev[256];
	for (;;) {
		L.now = sb_now_us();
		if (!L.stopping && L.now >= L.end)
			L.stopping = true;
		schedule(&L);
		if (w->next >= w->count && w->inflight == 0)
			break;
		if (L.stopping && w->inflight == 0)
			break;
		if (L.stopping && L.now >= L.end + cfg->drain_us)
			break;
		int n = w->tp->ops->wait(w->tp, ev, 256, wait_timeout_us(&L));
		L.now = sb_now_us();
		for (int i = 0; i < n; i++) {
			if (ev[i].id >= w->nsess)
				continue;
			struct gen_sess *s = &w->sess[ev[i].id];
			if (s->c.fd >= 0)
				pump(&L, s, ev[i].events);
		}
		/* sessions freed by this round may take due messages at once */
		if (L.now - last_scan >= 10000) {
			check_timeouts(&L);
			last_scan = L.now;
		}
	}
	L.now = sb_now_us();
	finish_run(&L);
	w->tp->ops->destroy(w->tp);
	w->tp = NULL;
	free(L.idle);
	free(w->sess);
	w->sess = NULL;
	__atomic_store_n(&w->done_flag, 1, __ATOMIC_RELEASE);
}
