/*
 * smtp_client.c - sans-IO SMTP client engine (contract: smtp_client.h).
 *
 * States and the reply each waits for (timeout, RFC 5321 4.5.3.2):
 *   GREETING  220 banner (t_greeting)     -> EHLO
 *   EHLO      EHLO reply (t_ehlo)         5xx -> HELO; ok -> STARTTLS/READY
 *   HELO      HELO reply (t_ehlo)         -> READY
 *   STLS      220 to STARTTLS (t_ehlo)    -> TLS (caller's handshake)
 *   TLS       nothing                      tls_done -> EHLO
 *   READY     nothing (caller's turn)      send -> TXN, quit -> QUIT
 *   TXN       replies to RSET/MAIL/RCPT/DATA, in order (pending queue)
 *   BODY      sending body octets (t_data_block per stall)
 *   FINAL     reply to end of data (t_data_term)  -> READY (DONE)
 *   QUIT      221 (t_ehlo)                -> CLOSED
 *   CLOSED
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_body.h"
#include "smtp_client.h"
#include "smtp_err.h"

enum cst { C_GREETING, C_EHLO, C_HELO, C_STLS, C_TLS, C_READY, C_TXN,
	   C_BODY, C_FINAL, C_QUIT, C_CLOSED };

/* expected replies in the pending queue */
enum { K_RSET, K_MAIL, K_RCPT, K_DATA, K_DISCARD_END };

#define OUT_CAP 8192
#define CMD_MAX 1600	/* longest command we render */

struct smtp_client {
	struct smtp_client_cfg cfg;
	char helo[256];
	uint8_t st, tls, act, sent_msgs;
	unsigned ext, auth;
	uint64_t size_limit;
	struct smtp_reply rp;
	struct smtp_reply_out out;
	char reason[SMTP_REPLY_TEXT_MAX + 64];
	uint64_t t_wait;	/* when the current wait started */
	/* message in flight */
	struct smtp_client_msg *msg;
	uint8_t *accepted;	/* per rcpt: RCPT got 2xx */
	unsigned n_accepted;
	uint8_t mail_failed, use_bdat, need_rset;
	unsigned next_cmd;	/* generator: 0 RSET, 1 MAIL, 2.. RCPT, DATA */
	unsigned n_cmds;
	uint16_t *pend;		/* ring of expected reply kinds/index */
	unsigned pend_head, pend_tail, pend_cap;
	/* body streaming */
	size_t pos;		/* next body octet to send */
	size_t dot_at;		/* body index needing a stuffed '.' first */
	uint8_t dot_done, tail_sent, body_done;
	size_t tail_off;
};

/* smtp_client_cfg_defaults - RFC 5321 4.5.3.2 values */
void smtp_client_cfg_defaults(struct smtp_client_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->helo_name = "localhost";
	c->tls = SMTP_TLS_OPPORTUNISTIC;
	c->t_greeting_ms = 300000;
	c->t_ehlo_ms = 300000;
	c->t_mail_ms = 300000;
	c->t_rcpt_ms = 300000;
	c->t_data_init_ms = 120000;
	c->t_data_block_ms = 180000;
	c->t_data_term_ms = 600000;
}

/* smtp_client_new - wait for the greeting */
struct smtp_client *smtp_client_new(const struct smtp_client_cfg *cfg,
				    uint64_t now)
{
	struct smtp_client *c;

	if (!cfg || !cfg->helo_name || !*cfg->helo_name ||
	    strlen(cfg->helo_name) > 255 || strpbrk(cfg->helo_name, " \r\n"))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (smtp_reply_out_init(&c->out, OUT_CAP) < 0) {
		free(c);
		return NULL;
	}
	c->cfg = *cfg;
	snprintf(c->helo, sizeof(c->helo), "%s", cfg->helo_name);
	c->cfg.helo_name = c->helo;
	c->st = C_GREETING;
	c->t_wait = now;
	smtp_reply_parse_reset(&c->rp);
	return c;
}

static void msg_forget(struct smtp_client *c)
{
	free(c->accepted);
	free(c->pend);
	c->accepted = NULL;
	c->pend = NULL;
	c->msg = NULL;
}

void smtp_client_free(struct smtp_client *c)
{
	if (!c)
		return;
	msg_forget(c);
	smtp_reply_out_free(&c->out);
	free(c);
}

/* put_cmd - render one command line into the output buffer */
static void put_cmd(struct smtp_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void put_cmd(struct smtp_client *c, const char *fmt, ...)
{
	char tmp[CMD_MAX + 2];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || n > CMD_MAX)
		n = CMD_MAX;
	tmp[n++] = '\r';
	tmp[n++] = '\n';
	(void)smtp_reply_out_put(&c->out, tmp, (size_t)n);
}

/* set_result - copy a code/enh/text triple */
static void set_result(int *code, char *enh, char *text, int rc,
		       const char *re, const char *rt)
{
	*code = rc;
	snprintf(enh, 16, "%s", re ? re : "");
	snprintf(text, SMTP_REPLY_TEXT_MAX, "%s", rt ? rt : "");
}

/* fail_msg - give every unfinished recipient (and the message) a result */
static void fail_msg(struct smtp_client *c, int code, const char *enh,
		     const char *text, int only_accepted)
{
	struct smtp_client_msg *m = c->msg;
	unsigned i;

	if (!m)
		return;
	set_result(&m->code, m->enh, m->text, code, enh, text);
	for (i = 0; i < m->n_rcpt; i++) {
		struct smtp_client_rcpt *r = &m->rcpt[i];

		if (only_accepted ? c->accepted[i] :
		    (r->code == 0 || c->accepted[i]))
			set_result(&r->code, r->enh, r->text, code, enh, text);
	}
}

/* fatal - the connection is unusable: results, then CLOSE */
static void fatal(struct smtp_client *c, int code, const char *enh,
		  const char *why, int send_quit)
{
	snprintf(c->reason, sizeof(c->reason), "%d %s %s", code, enh, why);
	if (c->msg) {
		fail_msg(c, code, enh, why, 0);
		msg_forget(c);
	}
	if (send_quit)
		put_cmd(c, "QUIT");
	c->st = C_CLOSED;
	c->act = SMTP_CLI_CLOSE;
}

/* pend_push/pend_pop - queue of replies we wait for (RFC 2920 order) */
static void pend_push(struct smtp_client *c, unsigned kind, unsigned idx)
{
	c->pend[c->pend_tail++ % c->pend_cap] = (uint16_t)(kind << 12 | idx);
}

static int pend_pop(struct smtp_client *c, unsigned *kind, unsigned *idx)
{
	uint16_t v;

	if (c->pend_head == c->pend_tail)
		return -1;
	v = c->pend[c->pend_head++ % c->pend_cap];
	*kind = v >> 12;
	*idx = v & 0xfff;
	return 0;
}

/* gen_cmds - render the next commands of the transaction that fit: all of
 * them (up to DATA) with PIPELINING, else one per reply */
static void gen_cmds(struct smtp_client *c)
{
	struct smtp_client_msg *m = c->msg;
	int pipe = (c->ext & SMTP_EXT_PIPELINING) && !c->cfg.no_pipelining;

	while (c->next_cmd < c->n_cmds &&
	       smtp_reply_out_space(&c->out) >= CMD_MAX + 2) {
		unsigned k = c->next_cmd;
		char params[1400] = "", x[540];
		size_t pl = 0;

		if (!pipe && c->pend_head != c->pend_tail)
			return;
		if (k == 0) {
			c->next_cmd++;
			if (!c->need_rset)
				continue;
			put_cmd(c, "RSET");
			pend_push(c, K_RSET, 0);
			continue;
		}
		if (k == 1) {
			if (c->ext & SMTP_EXT_SIZE)
				pl += (size_t)snprintf(params + pl, sizeof(params) - pl,
					" SIZE=%zu", m->body_len);
			if (m->body_type == SMTP_BODY_8BITMIME)
				pl += (size_t)snprintf(params + pl, sizeof(params) - pl,
					" BODY=8BITMIME");
			else if (m->body_type == SMTP_BODY_BINARYMIME)
				pl += (size_t)snprintf(params + pl, sizeof(params) - pl,
					" BODY=BINARYMIME");
			if (m->smtputf8)
				pl += (size_t)snprintf(params + pl, sizeof(params) - pl,
					" SMTPUTF8");
			if ((c->ext & SMTP_EXT_DSN) && m->ret)
				pl += (size_t)snprintf(params + pl, sizeof(params) - pl,
					" RET=%s", m->ret == SMTP_RET_FULL ? "FULL"
									 : "HDRS");
			if ((c->ext & SMTP_EXT_DSN) && m->envid && *m->envid &&
			    smtp_param_xtext_encode(x, sizeof(x), m->envid,
						    strlen(m->envid)) > 0)
				pl += (size_t)snprintf(params + pl, sizeof(params) - pl,
					" ENVID=%s", x);
			if ((c->ext & SMTP_EXT_MTPRIORITY) &&
			    m->mt_priority != SMTP_MTPRIO_NONE)
				pl += (size_t)snprintf(params + pl, sizeof(params) - pl,
					" MT-PRIORITY=%d", m->mt_priority);
			put_cmd(c, "MAIL FROM:<%s>%s", m->sender, params);
			pend_push(c, K_MAIL, 0);
			c->next_cmd++;
			continue;
		}
		if (k - 2 < m->n_rcpt) {
			const struct smtp_client_rcpt *r = &m->rcpt[k - 2];

			if ((c->ext & SMTP_EXT_DSN) && r->notify) {
				char nb[40] = "";

				if (r->notify & SMTP_NOTIFY_NEVER)
					strcat(nb, ",NEVER");
				if (r->notify & SMTP_NOTIFY_SUCCESS)
					strcat(nb, ",SUCCESS");
				if (r->notify & SMTP_NOTIFY_FAILURE)
					strcat(nb, ",FAILURE");
				if (r->notify & SMTP_NOTIFY_DELAY)
					strcat(nb, ",DELAY");
				pl += (size_t)snprintf(params + pl, sizeof(params) - pl,
					" NOTIFY=%s", nb + 1);
			}
			if ((c->ext & SMTP_EXT_DSN) && r->orcpt) {
				const char *semi = strchr(r->orcpt, ';');

				if (semi && (size_t)(semi - r->orcpt) < 16 &&
				    smtp_param_xtext_encode(x, sizeof(x), semi + 1,
							    strlen(semi + 1)) > 0)
					pl += (size_t)snprintf(params + pl,
						sizeof(params) - pl, " ORCPT=%.*s;%s",
						(int)(semi - r->orcpt), r->orcpt, x);
			}
			put_cmd(c, "RCPT TO:<%s>%s", r->addr, params);
			pend_push(c, K_RCPT, k - 2);
			c->next_cmd++;
			continue;
		}
		/* DATA closes the group; BDAT waits for the RCPT replies */
		c->next_cmd++;
		if (!c->use_bdat) {
			put_cmd(c, "DATA");
			pend_push(c, K_DATA, 0);
		}
	}
}

/* start_body - the 354 (or all RCPT replies for BDAT) arrived */
static void start_body(struct smtp_client *c, uint64_t now)
{
	c->pos = 0;
	c->dot_at = SIZE_MAX;
	c->dot_done = 0;
	c->tail_sent = 0;
	c->tail_off = 0;
	c->body_done = 0;
	if (c->use_bdat)
		put_cmd(c, "BDAT %zu LAST", c->msg->body_len);
	else if (c->msg->body_len && c->msg->body[0] == '.')
		c->dot_at = 0;
	c->st = C_BODY;
	c->t_wait = now;
}

/* msg_done - all results in: DONE, then READY for the next */
static void msg_done(struct smtp_client *c)
{
	msg_forget(c);
	c->st = C_READY;
	c->act = SMTP_CLI_DONE;
}

/* tail - what ends a DATA body: CRLF if missing, then ".CRLF" */
static const char *tail(const struct smtp_client *c, size_t *n)
{
	const struct smtp_client_msg *m = c->msg;

	if (m->body_len >= 2 && m->body[m->body_len - 2] == '\r' &&
	    m->body[m->body_len - 1] == '\n') {
		*n = 3;
		return ".\r\n";
	}
	if (m->body_len == 0) {
		*n = 3;
		return ".\r\n";
	}
	*n = 5;
	return "\r\n.\r\n";
}

/* smtp_client_output - commands first, then body pieces */
size_t smtp_client_output(struct smtp_client *c, const uint8_t **p)
{
	const struct smtp_client_msg *m = c->msg;
	size_t n, e;

	if (c->st == C_TXN && m)
		gen_cmds(c);
	n = smtp_reply_out_peek(&c->out, p);
	if (n || c->st != C_BODY || c->body_done)
		return n;
	if (c->pos < m->body_len) {
		if (c->use_bdat) {
			*p = m->body + c->pos;
			return m->body_len - c->pos;
		}
		if (c->pos == c->dot_at && !c->dot_done) {
			*p = (const uint8_t *)".";
			return 1;
		}
		e = smtp_body_stuff_span(m->body, m->body_len, c->pos);
		*p = m->body + c->pos;
		return e - c->pos;
	}
	if (c->use_bdat)
		return 0;
	{
		const char *t = tail(c, &n);

		*p = (const uint8_t *)t + c->tail_off;
		return n - c->tail_off;
	}
}

/* smtp_client_output_consume - advance commands or the body cursor */
void smtp_client_output_consume(struct smtp_client *c, size_t n,
				uint64_t now)
{
	const struct smtp_client_msg *m = c->msg;
	size_t k, e, tn;

	if (n)
		c->t_wait = c->st == C_BODY ? now : c->t_wait;
	k = smtp_reply_out_pending(&c->out);
	if (k) {
		smtp_reply_out_consume(&c->out, n < k ? n : k);
		if (n < k)
			return;
		n -= k;
	}
	if (c->st != C_BODY || c->body_done)
		return;
	if (smtp_reply_out_pending(&c->out))
		return;
	while (n) {
		if (c->pos < m->body_len) {
			if (c->use_bdat) {
				k = m->body_len - c->pos;
			} else if (c->pos == c->dot_at && !c->dot_done) {
				c->dot_done = 1;
				n--;
				continue;
			} else {
				e = smtp_body_stuff_span(m->body, m->body_len,
							 c->pos);
				k = e - c->pos;
				if (n >= k && e < m->body_len) {
					c->dot_at = e;
					c->dot_done = 0;
				}
			}
			if (k > n)
				k = n;
			c->pos += k;
			n -= k;
			continue;
		}
		(void)tail(c, &tn);
		k = tn - c->tail_off;
		if (k > n)
			k = n;
		c->tail_off += k;
		n -= k;
		if (c->tail_off == tn)
			break;
	}
	if (c->pos >= m->body_len &&
	    (c->use_bdat || (tail(c, &tn), c->tail_off == tn))) {
		c->body_done = 1;
		c->st = C_FINAL;
		c->t_wait = now;
	}
}

/* local_check - refusals decided before talking: RFC 1870, 6152, 3030,
 * 6531; returns 0 or fills the result and returns -1 */
static int local_check(struct smtp_client *c, struct smtp_client_msg *m)
{
	char t[200];

	if ((c->ext & SMTP_EXT_SIZE) && c->size_limit &&
	    m->body_len > c->size_limit) {
		snprintf(t, sizeof(t), "message size %zu exceeds the next hop's "
			 "limit of %llu octets", m->body_len,
			 (unsigned long long)c->size_limit);
		fail_msg(c, 552, "5.3.4", t, 0);
		return -1;
	}
	if (m->smtputf8 && !(c->ext & SMTP_EXT_SMTPUTF8)) {
		fail_msg(c, 553, "5.6.7", "next hop does not support SMTPUTF8", 0);
		return -1;
	}
	if (m->body_type == SMTP_BODY_BINARYMIME &&
	    (!(c->ext & SMTP_EXT_BINARYMIME) || !(c->ext & SMTP_EXT_CHUNKING) ||
	     c->cfg.no_chunking)) {
		fail_msg(c, 554, "5.6.3", "next hop does not support "
			 "BINARYMIME with CHUNKING", 0);
		return -1;
	}
	if (m->body_type == SMTP_BODY_8BITMIME &&
	    !(c->ext & SMTP_EXT_8BITMIME)) {
		fail_msg(c, 554, "5.6.3", "next hop does not support 8BITMIME",
			 0);
		return -1;
	}
	if (!c->use_bdat && smtp_body_bare(m->body, m->body_len)) {
		fail_msg(c, 554, "5.6.0", "message has bare CR or LF and the "
			 "next hop does not offer CHUNKING", 0);
		return -1;
	}
	return 0;
}

/* smtp_client_send - begin a transaction */
int smtp_client_send(struct smtp_client *c, struct smtp_client_msg *m,
		     uint64_t now)
{
	unsigned i;

	if (c->st != C_READY)
		return -SMTP_ESTATE;
	if (!m || !m->sender || m->n_rcpt == 0 || m->n_rcpt > 4000 ||
	    (!m->body && m->body_len) || strlen(m->sender) > 256)
		return -SMTP_EINVAL;
	for (i = 0; i < m->n_rcpt; i++)
		if (!m->rcpt[i].addr || strlen(m->rcpt[i].addr) > 256 ||
		    strpbrk(m->rcpt[i].addr, "\r\n<>"))
			return -SMTP_EINVAL;
	if (strpbrk(m->sender, "\r\n<>"))
		return -SMTP_EINVAL;
	c->accepted = calloc(m->n_rcpt, 1);
	c->pend_cap = m->n_rcpt + 4;
	c->pend = calloc(c->pend_cap, sizeof(*c->pend));
	if (!c->accepted || !c->pend) {
		msg_forget(c);
		return -SMTP_ENOMEM;
	}
	c->msg = m;
	m->code = 0;
	m->enh[0] = m->text[0] = '\0';
	for (i = 0; i < m->n_rcpt; i++) {
		m->rcpt[i].code = 0;
		m->rcpt[i].enh[0] = m->rcpt[i].text[0] = '\0';
	}
	c->n_accepted = 0;
	c->mail_failed = 0;
	c->pend_head = c->pend_tail = 0;
	c->use_bdat = (c->ext & SMTP_EXT_CHUNKING) && !c->cfg.no_chunking;
	c->act = SMTP_CLI_NONE;
	if (local_check(c, m) < 0) {
		msg_done(c);
		return 0;
	}
	c->need_rset = c->sent_msgs > 0;
	c->sent_msgs++;
	c->next_cmd = 0;
	c->n_cmds = 2 + m->n_rcpt + 1;
	c->st = C_TXN;
	c->t_wait = now;
	gen_cmds(c);
	return 0;
}

/* smtp_client_quit - polite end */
int smtp_client_quit(struct smtp_client *c, uint64_t now)
{
	if (c->st != C_READY)
		return -SMTP_ESTATE;
	put_cmd(c, "QUIT");
	c->st = C_QUIT;
	c->act = SMTP_CLI_NONE;
	c->t_wait = now;
	return 0;
}

/* ehlo_parsed - EHLO reply: extensions, then STARTTLS or READY */
static void after_hello(struct smtp_client *c, uint64_t now)
{
	if (!c->tls && c->cfg.tls != SMTP_TLS_NONE) {
		if (c->ext & SMTP_EXT_STARTTLS) {
			put_cmd(c, "STARTTLS");
			c->st = C_STLS;
			c->t_wait = now;
			return;
		}
		if (c->cfg.tls >= SMTP_TLS_REQUIRED) {
			fatal(c, 421, "4.7.5", "TLS is required, but the next "
			      "hop does not offer STARTTLS", 1);
			return;
		}
	}
	c->st = C_READY;
	c->act = SMTP_CLI_READY;
}

static void parse_ehlo(struct smtp_client *c)
{
	const char *t = c->rp.text, *nl;

	c->ext = 0;
	c->size_limit = 0;
	c->auth = 0;
	/* the first line is the greeting; each further line a keyword */
	while ((nl = strchr(t, '\n')) != NULL) {
		const char *e;

		t = nl + 1;
		e = strchr(t, '\n');
		c->ext |= smtp_param_ehlo_keyword(t, e ? (size_t)(e - t)
						       : strlen(t),
						  &c->size_limit, &c->auth);
	}
}

/* txn_reply - one reply of the transaction, matched with what we sent */
static void txn_reply(struct smtp_client *c, uint64_t now)
{
	struct smtp_client_msg *m = c->msg;
	const struct smtp_reply *r = &c->rp;
	unsigned kind, idx;

	if (pend_pop(c, &kind, &idx) < 0) {
		fatal(c, 451, "4.5.0", "unexpected reply from the next hop", 1);
		return;
	}
	switch (kind) {
	case K_RSET:
		if (r->code / 100 != 2)
			fatal(c, 451, "4.5.0", "RSET refused by the next hop", 1);
		return;
	case K_MAIL:
		if (r->code / 100 != 2) {
			c->mail_failed = 1;
			fail_msg(c, r->code, r->enh, r->text, 0);
		}
		break;
	case K_RCPT:
		if (c->mail_failed)
			break;
		set_result(&m->rcpt[idx].code, m->rcpt[idx].enh,
			   m->rcpt[idx].text, r->code, r->enh, r->text);
		if (r->code / 100 == 2) {
			c->accepted[idx] = 1;
			c->n_accepted++;
		}
		break;
	case K_DATA:
		if (r->code == 354) {
			if (c->mail_failed || !c->n_accepted) {
				/* broken server: end the empty message */
				put_cmd(c, ".");
				pend_push(c, K_DISCARD_END, 0);
				return;
			}
			start_body(c, now);
			return;
		}
		if (!c->mail_failed && c->n_accepted)
			fail_msg(c, r->code, r->enh, r->text, 1);
		else if (!c->mail_failed)
			set_result(&m->code, m->enh, m->text, r->code, r->enh,
				   r->text);
		msg_done(c);
		return;
	case K_DISCARD_END:
		msg_done(c);
		return;
	}
	if (c->pend_head != c->pend_tail || c->next_cmd < c->n_cmds)
		return;
	/* every reply of the group is in */
	if (c->mail_failed || !c->n_accepted) {
		if (!m->code)
			set_result(&m->code, m->enh, m->text, 554, "5.5.1",
				   "no recipient accepted by the next hop");
		msg_done(c);
		return;
	}
	if (c->use_bdat)
		start_body(c, now);
}

/* on_reply - a complete reply arrived in state st */
static void on_reply(struct smtp_client *c, uint64_t now)
{
	const struct smtp_reply *r = &c->rp;

	c->t_wait = now;
	if (r->code == 421 && c->st != C_QUIT) {
		fatal(c, 421, r->enh[0] ? r->enh : "4.4.2", r->text, 0);
		return;
	}
	switch (c->st) {
	case C_GREETING:
		if (r->code != 220) {
			fatal(c, r->code / 100 == 5 ? 554 : 451,
			      r->code / 100 == 5 ? "5.0.0" : "4.0.0", r->text, 1);
			return;
		}
		put_cmd(c, "EHLO %s", c->helo);
		c->st = C_EHLO;
		return;
	case C_EHLO:
		if (r->code / 100 == 2) {
			parse_ehlo(c);
			after_hello(c, now);
		} else if (r->code / 100 == 5) {
			put_cmd(c, "HELO %s", c->helo);
			c->st = C_HELO;
		} else {
			fatal(c, r->code, "4.0.0", r->text, 1);
		}
		return;
	case C_HELO:
		if (r->code / 100 != 2) {
			fatal(c, r->code, r->code / 100 == 5 ? "5.0.0" : "4.0.0",
			      r->text, 1);
			return;
		}
		c->ext = 0;
		after_hello(c, now);
		return;
	case C_STLS:
		if (r->code == 220) {
			c->st = C_TLS;
			c->act = SMTP_CLI_STARTTLS;
		} else if (c->cfg.tls >= SMTP_TLS_REQUIRED) {
			fatal(c, 421, "4.7.5", "TLS is required, but STARTTLS "
			      "was refused by the next hop", 1);
		} else {
			c->st = C_READY;
			c->act = SMTP_CLI_READY;
		}
		return;
	case C_TXN:
		txn_reply(c, now);
		return;
	case C_BODY:
	case C_FINAL:
		/* final reply (early ones mean the server gave up) */
		if (c->st == C_BODY) {
			fatal(c, r->code / 100 == 5 ? r->code : 451,
			      r->enh[0] ? r->enh : "4.5.0", r->text, 0);
			return;
		}
		fail_msg(c, r->code, r->enh, r->text, 1);
		msg_done(c);
		return;
	case C_QUIT:
		c->st = C_CLOSED;
		c->act = SMTP_CLI_CLOSE;
		snprintf(c->reason, sizeof(c->reason), "quit");
		return;
	default:
		fatal(c, 451, "4.5.0", "unexpected reply from the next hop", 1);
		return;
	}
}

/* smtp_client_input - parse replies and act on each */
ssize_t smtp_client_input(struct smtp_client *c, const void *inp, size_t n,
			  uint64_t now)
{
	const uint8_t *in = inp;
	size_t i = 0;

	if (c->st == C_CLOSED)
		return -SMTP_ECLOSED;
	smtp_client_tick(c, now);
	while (i < n && c->st != C_CLOSED && c->st != C_TLS) {
		int complete;
		ssize_t k = smtp_reply_parse(&c->rp, in + i, n - i, &complete);

		if (k < 0) {
			fatal(c, 451, "4.5.0", "malformed reply from the next hop",
			      0);
			break;
		}
		i += (size_t)k;
		if (!complete)
			continue;
		if (c->st == C_READY) {
			fatal(c, 451, "4.5.0", "unsolicited reply from the next hop", 1);
			break;
		}
		on_reply(c, now);
		smtp_reply_parse_reset(&c->rp);
	}
	if (c->st == C_TLS && i < n) {
		/* bytes after the 220 to STARTTLS: injection, refuse */
		fatal(c, 421, "4.7.5", "next hop sent data after its STARTTLS "
		      "reply", 0);
	}
	return (ssize_t)i;
}

enum smtp_cli_act smtp_client_action(const struct smtp_client *c)
{
	return (enum smtp_cli_act)c->act;
}

const char *smtp_client_close_reason(const struct smtp_client *c)
{
	return c->reason;
}

/* smtp_client_tls_done - RFC 3207 4.2: forget the EHLO reply, ask again */
int smtp_client_tls_done(struct smtp_client *c, uint64_t now)
{
	if (c->st != C_TLS)
		return -SMTP_ESTATE;
	c->tls = 1;
	c->ext = 0;
	put_cmd(c, "EHLO %s", c->helo);
	c->st = C_EHLO;
	c->act = SMTP_CLI_NONE;
	c->t_wait = now;
	return 0;
}

int smtp_client_tls_failed(struct smtp_client *c, const char *reason,
			   uint64_t now)
{
	char t[300];

	(void)now;
	if (c->st != C_TLS)
		return -SMTP_ESTATE;
	snprintf(t, sizeof(t), "TLS handshake failed: %s",
		 reason ? reason : "unknown");
	fatal(c, 421, "4.7.5", t, 0);
	return 0;
}

/* wait_limit - the RFC 5321 4.5.3.2 timeout for the current wait */
static uint64_t wait_limit(const struct smtp_client *c)
{
	unsigned kind = K_MAIL;

	switch (c->st) {
	case C_GREETING: return c->cfg.t_greeting_ms;
	case C_EHLO: case C_HELO: case C_STLS: case C_QUIT:
		return c->cfg.t_ehlo_ms;
	case C_BODY: return c->cfg.t_data_block_ms;
	case C_FINAL: return c->cfg.t_data_term_ms;
	case C_TXN:
		if (c->pend_head != c->pend_tail)
			kind = c->pend[c->pend_head % c->pend_cap] >> 12;
		return kind == K_RCPT ? c->cfg.t_rcpt_ms :
		       kind == K_DATA ? c->cfg.t_data_init_ms :
		       c->cfg.t_mail_ms;
	default: return 0;
	}
}

uint64_t smtp_client_deadline(const struct smtp_client *c)
{
	uint64_t l = wait_limit(c);

	return l ? c->t_wait + l : UINT64_MAX;
}

/* smtp_client_tick - a wait took too long: 4.4.2, close */
void smtp_client_tick(struct smtp_client *c, uint64_t now)
{
	char t[80];

	if (now < smtp_client_deadline(c))
		return;
	snprintf(t, sizeof(t), "timeout after %llu s waiting for the next hop",
		 (unsigned long long)(wait_limit(c) / 1000));
	fatal(c, 421, "4.4.2", t, c->st != C_QUIT && c->st != C_BODY);
}

unsigned smtp_client_ext(const struct smtp_client *c)
{
	return c->ext;
}

int smtp_client_tls_active(const struct smtp_client *c)
{
	return c->tls;
}
