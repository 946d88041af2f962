/*
 * smtp_server.c - sans-IO SMTP server engine: session life cycle, the
 * input loop (command lines, DATA bodies, BDAT chunks), verdicts, STARTTLS
 * reset, timeouts and the output buffer. Commands: smtp_cmd.c. Contract:
 * smtp_server.h.
 *
 * State table (rows: state; what is read; how it is left):
 *   GREET   command lines   HELO/EHLO -> READY (after the HELO verdict)
 *   READY   command lines   MAIL -> MAIL, AUTH -> AUTH, STARTTLS -> TLS
 *   MAIL    command lines   RCPT -> RCPT, RSET/HELO -> READY
 *   RCPT    command lines   DATA -> DATA, BDAT -> CHUNK
 *   BDAT    command lines   BDAT -> CHUNK, RSET -> READY
 *   REJECT  command lines   QUIT -> CLOSED, all else 503
 *   AUTH    one b64 line    -> PARK (verdict) or READY (cancel/error)
 *   DATA    body octets     <CRLF>.<CRLF> -> PARK (data verdict)
 *   CHUNK   chunk octets    chunk end -> BDAT / PARK (LAST)
 *   PARK    nothing         smtp_server_verdict -> next state
 *   TLS     discarded       smtp_server_tls_done -> GREET
 *   CLOSED  nothing
 * Timeouts (RFC 5321 4.5.3.2): cmd_timeout in the command states,
 * data_timeout in DATA/CHUNK, session_timeout overall; none while PARK or
 * TLS (the caller is working, not the client).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_err.h"
#include "smtp_server_types.h"

static const char *const state_names[SS_N] = {
	"GREET", "READY", "MAIL", "RCPT", "BDAT", "REJECT", "AUTH", "DATA",
	"CHUNK", "PARK", "TLS", "CLOSED",
};

/* smtp_server_cfg_defaults - RFC-minded defaults for a busy relay */
void smtp_server_cfg_defaults(struct smtp_server_cfg *c)
{
	/* RFC 6710 -9..9 -> ring 0 (most urgent) .. 7 */
	static const uint8_t map[19] = {
		7, 7, 7, 7, 6, 6, 6, 5, 5,	/* -9 .. -1 */
		4,				/*  0 */
		3, 3, 2, 2, 1, 1, 0, 0, 0,	/*  1 .. 9 */
	};

	memset(c, 0, sizeof(*c));
	c->hostname = "localhost";
	c->banner_text = "sluice";
	c->ext = SMTP_EXT_ALL & ~(SMTP_EXT_STARTTLS | SMTP_EXT_AUTH);
	c->verdicts = 0;
	c->max_cmd_line = 2048;
	c->max_text_line = 10000;
	c->max_msg_size = 36700160;
	c->max_rcpts = 1000;
	c->max_txns = 1000;
	c->max_errors = 20;
	c->cmd_timeout_ms = 300000;
	c->data_timeout_ms = 300000;
	c->session_timeout_ms = 3600000;
	c->out_cap = 16384;
	c->vrfy = 1;
	c->prio_default = 4;
	memcpy(c->prio_map, map, sizeof(map));
	c->realloc_fn = realloc;
	c->free_fn = free;
}

/* smtp_server_new - allocate a session; banner or connect verdict first */
struct smtp_server *smtp_server_new(const struct smtp_server_cfg *cfg,
				    const struct smtp_peer *peer,
				    uint64_t now)
{
	struct smtp_server *s;
	size_t hl;
	unsigned i;

	if (!cfg || !cfg->hostname || !peer || cfg->max_cmd_line < 512 ||
	    cfg->out_cap < 2 * SMTP_SERVER_REPLY_RESERVE ||
	    cfg->max_text_line < 80 || cfg->max_rcpts == 0 ||
	    cfg->prio_default > 7)
		return NULL;
	hl = strlen(cfg->hostname);
	if (hl == 0 || hl > SMTP_HOST_MAX)
		return NULL;
	for (i = 0; i < 19; i++)
		if (cfg->prio_map[i] > 7)
			return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cfg = *cfg;
	if (!s->cfg.realloc_fn || !s->cfg.free_fn) {
		s->cfg.realloc_fn = realloc;
		s->cfg.free_fn = free;
	}
	memcpy(s->host, cfg->hostname, hl + 1);
	snprintf(s->banner, sizeof(s->banner), "%s",
		 cfg->banner_text ? cfg->banner_text : "sluice");
	s->cfg.hostname = s->host;
	s->cfg.banner_text = s->banner;
	s->peer = *peer;
	s->peer.addr[sizeof(s->peer.addr) - 1] = '\0';
	s->peer.name[sizeof(s->peer.name) - 1] = '\0';
	s->line = malloc(cfg->max_cmd_line);
	if (!s->line || smtp_reply_out_init(&s->out, cfg->out_cap) < 0) {
		free(s->line);
		free(s);
		return NULL;
	}
	smtp_body_init(&s->body, SMTP_SERVER_HEADROOM, cfg->max_msg_size,
		       cfg->max_text_line, s->cfg.realloc_fn, s->cfg.free_fn);
	s->t_start = s->t_last = now;
	s->offered = cfg->ext & ~SMTP_EXT_AUTH;
	if (cfg->auth_plaintext)
		s->offered |= cfg->ext & SMTP_EXT_AUTH;
	s->env.peer = &s->peer;
	s->env.helo = s->helo;
	s->env.tls_info = &s->tls_info;
	s->env.auth_id = s->auth_id;
	s->env.queue_id = s->queue_id;
	smtp_server_park(s, PK_CONNECT, now);
	return s;
}

/* wipe - clear secrets so they do not linger in freed memory */
static void wipe(void *p, size_t n)
{
	volatile uint8_t *v = p;

	while (n--)
		*v++ = 0;
}

/* smtp_server_free - release the session */
void smtp_server_free(struct smtp_server *s)
{
	if (!s)
		return;
	wipe(s->auth_pw, sizeof(s->auth_pw));
	smtp_body_free(&s->body);
	if (s->rcpts)
		s->cfg.free_fn(s->rcpts);
	smtp_reply_out_free(&s->out);
	if (s->line)
		wipe(s->line, s->cfg.max_cmd_line);
	free(s->line);
	free(s);
}

/* smtp_server_reply - one reply; enhanced code only when offered */
void smtp_server_reply(struct smtp_server *s, int code, const char *enh,
		       const char *text)
{
	if (!(s->offered & SMTP_EXT_ENHANCED))
		enh = NULL;
	/* the reserve checked before each command guarantees room */
	if (smtp_reply_put(&s->out, code, enh, text, strlen(text)) == 0)
		s->st.replies++;
}

void smtp_server_replyf(struct smtp_server *s, int code, const char *enh,
			const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	smtp_server_reply(s, code, enh, tmp);
}

/* smtp_server_close - stop reading; the caller flushes then closes */
void smtp_server_close(struct smtp_server *s, const char *reason)
{
	s->state = SS_CLOSED;
	s->park = PK_NONE;
	memset(&s->act, 0, sizeof(s->act));
	s->act.type = SMTP_ACT_CLOSE;
	s->act.reason = reason;
}

/* smtp_server_error - a client error reply; too many -> 421 and close */
void smtp_server_error(struct smtp_server *s, int code, const char *enh,
		       const char *text)
{
	smtp_server_reply(s, code, enh, text);
	s->st.errors++;
	if (++s->errors >= s->cfg.max_errors && s->state != SS_CLOSED) {
		smtp_server_replyf(s, 421, "4.7.0",
				   "%s Error: too many errors, closing connection",
				   s->host);
		smtp_server_close(s, "too many errors");
	}
}

/* smtp_server_txn_reset - forget the mail transaction (RSET, end, EHLO) */
void smtp_server_txn_reset(struct smtp_server *s)
{
	s->n_rcpt = 0;
	s->rcpt_tried = 0;
	s->txn_failed = 0;
	s->queue_id[0] = '\0';
	memset(&s->env.sender, 0, sizeof(s->env.sender));
	memset(&s->env.mail, 0, sizeof(s->env.mail));
	s->env.mail.mt_priority = SMTP_MTPRIO_NONE;
	s->env.n_rcpt = 0;
	s->env.chunked = 0;
	if (s->state == SS_MAIL || s->state == SS_RCPT || s->state == SS_BDAT)
		s->state = SS_READY;
}

/* smtp_server_ehlo_reply - 250 multi-line with the offered extensions */
void smtp_server_ehlo_reply(struct smtp_server *s)
{
	char t[1024];
	int n;
	unsigned e = s->offered;

	n = snprintf(t, sizeof(t), "%s Hello %s [%s]", s->host,
		     s->pend_helo, s->peer.addr);
#define EXT(bit, str) do { if (e & (bit)) n += snprintf(t + n, \
		sizeof(t) - (size_t)n, "\n%s", str); } while (0)
	EXT(SMTP_EXT_PIPELINING, "PIPELINING");
	if (e & SMTP_EXT_SIZE)
		n += snprintf(t + n, sizeof(t) - (size_t)n, "\nSIZE %llu",
			      (unsigned long long)s->cfg.max_msg_size);
	EXT(SMTP_EXT_8BITMIME, "8BITMIME");
	EXT(SMTP_EXT_SMTPUTF8, "SMTPUTF8");
	EXT(SMTP_EXT_ENHANCED, "ENHANCEDSTATUSCODES");
	EXT(SMTP_EXT_CHUNKING, "CHUNKING");
	EXT(SMTP_EXT_BINARYMIME, "BINARYMIME");
	EXT(SMTP_EXT_DSN, "DSN");
	EXT(SMTP_EXT_STARTTLS, "STARTTLS");
	EXT(SMTP_EXT_AUTH, "AUTH PLAIN LOGIN");
	EXT(SMTP_EXT_MTPRIORITY, "MT-PRIORITY MIXER");
#undef EXT
	if (smtp_reply_put(&s->out, 250, NULL, t, (size_t)n) == 0)
		s->st.replies++;
}

/* smtp_server_park - ask the caller, or decide by default at once */
void smtp_server_park(struct smtp_server *s, enum smtp_park kind,
		      uint64_t now)
{
	static const uint8_t vp[] = {
		[PK_CONNECT] = SMTP_VP_CONNECT, [PK_HELO] = SMTP_VP_HELO,
		[PK_MAIL] = SMTP_VP_MAIL, [PK_RCPT] = SMTP_VP_RCPT,
		[PK_AUTH] = SMTP_VP_AUTH, [PK_DATA] = SMTP_VP_DATA,
	};
	static const enum smtp_act_type at[] = {
		[PK_CONNECT] = SMTP_ACT_VERDICT_CONNECT,
		[PK_HELO] = SMTP_ACT_VERDICT_HELO,
		[PK_MAIL] = SMTP_ACT_VERDICT_MAIL,
		[PK_RCPT] = SMTP_ACT_VERDICT_RCPT,
		[PK_AUTH] = SMTP_ACT_VERDICT_AUTH,
		[PK_DATA] = SMTP_ACT_VERDICT_DATA,
	};

	if (s->state != SS_PARK && s->state != SS_CLOSED)
		s->ret_state = s->state;
	if (s->state == SS_CLOSED)
		s->ret_state = SS_GREET;
	s->state = SS_PARK;
	s->park = (uint8_t)kind;
	s->act.type = at[kind];
	/* unasked points accept by default, except AUTH: refusing is the
	 * only safe default when nobody checks credentials */
	if (!(s->cfg.verdicts & vp[kind]))
		(void)smtp_server_verdict(s, kind == PK_AUTH ? 535 : 0, NULL,
					  NULL, now);
}

/* prio_ring - RFC 6710 priority to a ring level, untrusted raises clamped */
static uint8_t prio_ring(const struct smtp_server *s, int p)
{
	if (p == SMTP_MTPRIO_NONE)
		return s->cfg.prio_default;
	if (p > 0 && !s->auth_id[0] && !s->cfg.mtprio_trust_all)
		p = 0; /* RFC 6710 4.1: only trusted senders may raise */
	return s->cfg.prio_map[p + 9];
}

/* add_rcpt - append the pending recipient (table grows to max_rcpts) */
static int add_rcpt(struct smtp_server *s)
{
	if (s->n_rcpt == s->cap_rcpt) {
		unsigned nc = s->cap_rcpt ? s->cap_rcpt * 2 : 4;
		struct smtp_rcpt *r;

		if (nc > s->cfg.max_rcpts)
			nc = s->cfg.max_rcpts;
		r = s->cfg.realloc_fn(s->rcpts, nc * sizeof(*r));
		if (!r)
			return -SMTP_ENOMEM;
		s->rcpts = r;
		s->cap_rcpt = nc;
	}
	s->rcpts[s->n_rcpt].addr = s->pend_addr;
	s->rcpts[s->n_rcpt].dsn = s->pend_rcpt;
	s->n_rcpt++;
	s->env.rcpt = s->rcpts;
	s->env.n_rcpt = s->n_rcpt;
	return 0;
}

/* addr_reply - MAIL/RCPT verdict reply: the callback's words, else 250 Ok
 * with ok_enh on accept or the refusal text */
static void addr_reply(struct smtp_server *s, int ok, int code,
		       const char *enh, const char *text, const char *ok_enh,
		       const char *refused)
{
	if (ok)
		smtp_server_reply(s, code ? code : 250, enh ? enh : ok_enh,
				  text ? text : "Ok");
	else
		smtp_server_reply(s, code, enh, text ? text : refused);
}

/* smtp_server_verdict - apply the caller's answer to the parked request */
int smtp_server_verdict(struct smtp_server *s, int code, const char *enh,
			const char *text, uint64_t now)
{
	uint8_t kind = s->park;
	int ok, enh_given;

	if (s->state != SS_PARK || kind == PK_NONE)
		return -SMTP_ESTATE;
	if (code != 0 && (code < 200 || code > 599))
		return -SMTP_EINVAL;
	ok = code == 0 || code / 100 == 2;
	enh_given = enh != NULL;
	s->park = PK_NONE;
	s->state = s->ret_state;
	memset(&s->act, 0, sizeof(s->act));
	s->t_last = now;
	if (!ok && !enh)
		enh = code / 100 == 4 ? "4.0.0" : "5.0.0";
	switch (kind) {
	case PK_CONNECT:
		if (ok) {
			if (text)
				smtp_server_replyf(s, 220, NULL, "%s %s",
						   s->host, text);
			else
				smtp_server_replyf(s, 220, NULL, "%s ESMTP %s",
						   s->host, s->banner);
			s->state = SS_GREET;
		} else {
			smtp_server_replyf(s, code, NULL, "%s %s", s->host,
				text ? text : "Service not available");
			if (code / 100 == 4)
				smtp_server_close(s, "refused at connect");
			else
				s->state = SS_REJECT;
			return 0;
		}
		break;
	case PK_HELO:
		if (ok) {
			smtp_server_txn_reset(s);
			memcpy(s->helo, s->pend_helo, sizeof(s->helo));
			s->esmtp = s->pend_esmtp;
			s->env.esmtp = s->esmtp;
			s->helo_done = 1;
			if (s->esmtp)
				smtp_server_ehlo_reply(s);
			else
				smtp_server_reply(s, 250, NULL, s->host);
			s->state = SS_READY;
		} else {
			smtp_server_reply(s, code, enh,
					  text ? text : "HELO refused");
		}
		break;
	case PK_MAIL:
		if (ok) {
			s->env.sender = s->pend_addr;
			s->env.mail = s->pend_mail;
			s->env.priority = prio_ring(s, s->pend_mail.mt_priority);
			s->n_rcpt = s->rcpt_tried = 0;
			s->env.n_rcpt = 0;
			s->state = SS_MAIL;
		} else {
			s->queue_id[0] = '\0';
		}
		addr_reply(s, ok, code, enh, text, "2.1.0", "Sender refused");
		break;
	case PK_RCPT:
		if (ok && add_rcpt(s) < 0) {
			code = 452;
			enh = "4.3.1";
			text = "Insufficient system storage";
			ok = 0;
		}
		if (ok)
			s->state = SS_RCPT;
		addr_reply(s, ok, code, enh, text, "2.1.5",
			   "Recipient refused");
		break;
	case PK_AUTH:
		if (ok) {
			memcpy(s->auth_id, s->auth_cid, sizeof(s->auth_id));
			smtp_server_reply(s, 235, enh ? enh : "2.7.0",
				text ? text : "Authentication successful");
		} else {
			smtp_server_reply(s, code, enh_given ? enh :
					  code == 535 ? "5.7.8" : enh,
				text ? text : "Authentication credentials invalid");
		}
		wipe(s->auth_pw, sizeof(s->auth_pw));
		wipe(s->auth_zid, sizeof(s->auth_zid));
		s->state = SS_READY;
		break;
	case PK_DATA:
		if (ok) {
			s->txns++;
			s->st.messages++;
			if (text)
				smtp_server_reply(s, code, enh ? enh : "2.0.0",
						  text);
			else if (s->queue_id[0])
				smtp_server_replyf(s, 250, enh ? enh : "2.0.0",
						   "Ok: queued as %s",
						   s->queue_id);
			else
				smtp_server_reply(s, 250, enh ? enh : "2.0.0",
						  "Ok: queued");
		} else {
			smtp_server_reply(s, code, enh,
					  text ? text : "Message refused");
		}
		s->state = SS_READY;
		smtp_server_txn_reset(s);
		break;
	}
	if (code == 421)
		smtp_server_close(s, "421 by verdict");
	return 0;
}

/* smtp_server_set_queue_id - id for Received and the envelope */
int smtp_server_set_queue_id(struct smtp_server *s, const char *qid)
{
	size_t i, n = qid ? strlen(qid) : 0;

	if (n == 0 || n >= sizeof(s->queue_id))
		return -SMTP_EINVAL;
	for (i = 0; i < n; i++) {
		char c = qid[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return -SMTP_EINVAL;
	}
	memcpy(s->queue_id, qid, n + 1);
	return 0;
}

/* smtp_server_end_of_data - checks, Received header, data verdict */
void smtp_server_end_of_data(struct smtp_server *s, uint64_t now)
{
	uint8_t f = s->body.flags;
	char hdr[SMTP_SERVER_HEADROOM];
	size_t hl;
	uint8_t *msg;

	s->state = SS_READY;
	if (f & SMTP_BODY_F_TOO_BIG) {
		smtp_server_replyf(s, 552, "5.3.4",
			"Message size exceeds fixed limit of %llu octets",
			(unsigned long long)s->cfg.max_msg_size);
		smtp_server_txn_reset(s);
		return;
	}
	if (f & SMTP_BODY_F_NOMEM) {
		smtp_server_reply(s, 452, "4.3.1", "Insufficient system storage");
		smtp_server_txn_reset(s);
		return;
	}
	if (f & (SMTP_BODY_F_BARE_LF | SMTP_BODY_F_BARE_CR)) {
		s->st.bare_rejects++;
		smtp_server_txn_reset(s);
		smtp_server_error(s, 550, "5.6.0", f & SMTP_BODY_F_BARE_LF ?
			"Message refused: bare <LF> in message; lines must end "
			"with <CR><LF> (SMTP smuggling protection)" :
			"Message refused: bare <CR> in message; lines must end "
			"with <CR><LF> (SMTP smuggling protection)");
		return;
	}
	if (f & SMTP_BODY_F_LONG_LINE) {
		smtp_server_txn_reset(s);
		smtp_server_replyf(s, 550, "5.6.0",
			"Message refused: line longer than %zu octets",
			s->cfg.max_text_line);
		return;
	}
	hl = smtp_received_build(hdr, sizeof(hdr), s, now);
	msg = smtp_body_prepend(&s->body, hdr, hl);
	if (!msg) {
		smtp_server_reply(s, 452, "4.3.1", "Insufficient system storage");
		smtp_server_txn_reset(s);
		return;
	}
	s->env.received_ms = now;
	s->act.env = &s->env;
	s->act.msg = msg;
	s->act.msg_len = hl + s->body.len;
	s->act.received_len = hl;
	smtp_server_park(s, PK_DATA, now);
}

/* smtp_server_chunk_end - all octets of a BDAT chunk are in (RFC 3030 2) */
void smtp_server_chunk_end(struct smtp_server *s, uint64_t now)
{
	if (!s->chunk_ok) {
		s->state = s->ret_state;
		if (s->state == SS_BDAT || s->state == SS_MAIL ||
		    s->state == SS_RCPT)
			s->txn_failed = 1;
		if (s->chunk_code == 552)
			smtp_server_reply(s, 552, s->chunk_enh, s->chunk_text);
		else
			smtp_server_error(s, s->chunk_code, s->chunk_enh,
					  s->chunk_text);
		return;
	}
	if (s->chunk_last) {
		smtp_body_finish(&s->body);
		smtp_server_end_of_data(s, now);
		return;
	}
	s->state = SS_BDAT;
	smtp_server_replyf(s, 250, "2.0.0", "%llu octets received",
			   (unsigned long long)s->body.total);
}

/* line_in - a complete command line (LF excluded) */
static void line_in(struct smtp_server *s, const char *l, size_t n,
		    int overflow, uint64_t now)
{
	int in_auth = s->state == SS_AUTH;

	s->st.commands++;
	if (overflow || !n || l[n - 1] != '\r' || memchr(l, '\r', n - 1) ||
	    memchr(l, '\0', n)) {
		if (in_auth) {
			wipe(s->auth_pw, sizeof(s->auth_pw));
			s->state = SS_READY;
		}
		if (overflow) {
			char t[80];

			snprintf(t, sizeof(t), "Line too long (limit %zu "
				 "octets)", s->cfg.max_cmd_line);
			smtp_server_error(s, 500, "5.5.6", t);
		} else if (!n || l[n - 1] != '\r')
			smtp_server_error(s, 500, "5.5.2", "Bare <LF> "
				"received; lines must end with <CR><LF>");
		else if (memchr(l, '\r', n - 1))
			smtp_server_error(s, 500, "5.5.2", "Bare <CR> "
				"received; lines must end with <CR><LF>");
		else
			smtp_server_error(s, 500, "5.5.2",
					  "NUL character in command");
		return;
	}
	if (in_auth)
		smtp_cmd_auth_line(s, l, n - 1, now);
	else
		smtp_cmd_dispatch(s, l, n - 1, now);
}

/* smtp_server_input - the input loop; see smtp_server.h */
ssize_t smtp_server_input(struct smtp_server *s, const void *inp, size_t n,
			  uint64_t now)
{
	const uint8_t *in = inp;
	size_t i = 0;

	if (s->state == SS_CLOSED)
		return -SMTP_ECLOSED;
	smtp_server_tick(s, now);
	while (i < n && s->state != SS_PARK && s->state != SS_CLOSED) {
		const uint8_t *lf;
		size_t k;
		int done;

		switch (s->state) {
		case SS_TLS:
			/* RFC 3207 / CVE-2011-0411: plaintext after STARTTLS */
			s->st.starttls_discarded += n - i;
			i = n;
			continue;
		case SS_DATA:
			i += smtp_body_scan(&s->body, in + i, n - i, &done);
			if (done)
				smtp_server_end_of_data(s, now);
			continue;
		case SS_CHUNK:
			k = n - i;
			if (k > s->chunk_left)
				k = (size_t)s->chunk_left;
			if (s->chunk_ok)
				(void)smtp_body_scan(&s->body, in + i, k, &done);
			i += k;
			s->chunk_left -= k;
			if (s->chunk_left == 0)
				smtp_server_chunk_end(s, now);
			continue;
		default:
			break;
		}
		/* command line states */
		if (smtp_reply_out_space(&s->out) < SMTP_SERVER_REPLY_RESERVE)
			break;
		lf = memchr(in + i, '\n', n - i);
		k = lf ? (size_t)(lf - (in + i)) : n - i;
		if (!s->line_len && !s->line_overflow && lf &&
		    k < s->cfg.max_cmd_line) {
			/* fast path: the whole line is in the input */
			i += k + 1;
			line_in(s, (const char *)in + i - k - 1, k, 0, now);
			continue;
		}
		if (s->line_len + k >= s->cfg.max_cmd_line)
			s->line_overflow = 1;
		if (!s->line_overflow) {
			memcpy(s->line + s->line_len, in + i, k);
			s->line_len += k;
		}
		i += k;
		if (!lf)
			break;
		i++;
		line_in(s, s->line, s->line_len, s->line_overflow, now);
		s->line_len = 0;
		s->line_overflow = 0;
	}
	if (i)
		s->t_last = now;
	s->st.bytes_in += i;
	return (ssize_t)i;
}

/* smtp_server_action - the pending action */
const struct smtp_action *smtp_server_action(const struct smtp_server *s)
{
	return &s->act;
}

/* smtp_server_tls_done - RFC 3207 4.2: forget everything, back to GREET */
int smtp_server_tls_done(struct smtp_server *s,
			 const struct smtp_tls_info *info, uint64_t now)
{
	if (s->state != SS_TLS || !info)
		return -SMTP_ESTATE;
	s->tls_info = *info;
	s->tls_info.version[sizeof(s->tls_info.version) - 1] = '\0';
	s->tls_info.cipher[sizeof(s->tls_info.cipher) - 1] = '\0';
	s->tls_info.peer_cn[sizeof(s->tls_info.peer_cn) - 1] = '\0';
	s->tls = 1;
	s->env.tls = 1;
	s->state = SS_GREET;
	smtp_server_txn_reset(s);
	s->helo[0] = '\0';
	s->helo_done = 0;
	s->esmtp = 0;
	s->auth_id[0] = '\0';
	s->offered = s->cfg.ext & ~SMTP_EXT_STARTTLS;
	s->line_len = 0;
	s->line_overflow = 0;
	memset(&s->act, 0, sizeof(s->act));
	s->t_last = now;
	return 0;
}

/* smtp_server_deadline - when tick must run next */
uint64_t smtp_server_deadline(const struct smtp_server *s)
{
	uint64_t d, sess = s->t_start + s->cfg.session_timeout_ms;

	switch (s->state) {
	case SS_PARK:
	case SS_TLS:
	case SS_CLOSED:
		return UINT64_MAX;
	case SS_DATA:
	case SS_CHUNK:
		d = s->t_last + s->cfg.data_timeout_ms;
		break;
	default:
		d = s->t_last + s->cfg.cmd_timeout_ms;
		break;
	}
	return d < sess ? d : sess;
}

/* smtp_server_tick - RFC 5321 4.5.3.2 timeouts: 421 4.4.2 and close */
void smtp_server_tick(struct smtp_server *s, uint64_t now)
{
	uint64_t d = smtp_server_deadline(s);

	if (d == UINT64_MAX || now < d)
		return;
	s->st.timeouts++;
	if (now >= s->t_start + s->cfg.session_timeout_ms) {
		smtp_server_replyf(s, 421, "4.4.2",
			"%s Error: session time limit exceeded", s->host);
		smtp_server_close(s, "session time limit");
	} else {
		smtp_server_replyf(s, 421, "4.4.2", "%s Error: timeout exceeded",
				   s->host);
		smtp_server_close(s, "timeout");
	}
}

size_t smtp_server_output(const struct smtp_server *s, const uint8_t **p)
{
	return smtp_reply_out_peek(&s->out, p);
}

void smtp_server_output_consume(struct smtp_server *s, size_t n)
{
	smtp_reply_out_consume(&s->out, n);
}

const struct smtp_server_stats *smtp_server_stats(const struct smtp_server *s)
{
	return &s->st;
}

const char *smtp_server_state_name(const struct smtp_server *s)
{
	return state_names[s->state];
}
