/*
 * smtp_cmd.c - command table and handlers of the SMTP server engine
 * (RFC 5321 4.1.1, 4.3.2; ESMTP extensions). Input: one command line
 * without CRLF, already checked for bare CR/LF and NUL (smtp_server.c).
 * Output: replies into the session's buffer, state changes, verdict
 * requests (smtp_server_park).
 *
 * Dispatch is table driven (OpenSMTPD style): each verb lists the states
 * in which it is valid; elsewhere the table's 503 text is sent. Verbs are
 * case-insensitive. Reply codes: 500 unknown/bad line, 501 bad arguments,
 * 502 not implemented/disabled, 503 bad sequence, 504 unknown AUTH
 * mechanism, 555 unknown MAIL/RCPT parameter (RFC 5321 4.1.1.11).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtp_err.h"
#include "smtp_server_types.h"

#define ST(x) (1u << (x))
#define ST_CMD (ST(SS_GREET) | ST(SS_READY) | ST(SS_MAIL) | ST(SS_RCPT) | \
		ST(SS_BDAT))

typedef void (*cmd_fn)(struct smtp_server *s, const char *a, size_t n,
		       uint64_t now);

struct cmd {
	char verb[9];
	uint8_t len;
	unsigned states;	/* where the verb is valid */
	cmd_fn fn;
	uint8_t noarg;		/* an argument gets 501 "Syntax: VERB" */
};

static void cmd_helo(struct smtp_server *, const char *, size_t, uint64_t);
static void cmd_ehlo(struct smtp_server *, const char *, size_t, uint64_t);
static void cmd_mail(struct smtp_server *, const char *, size_t, uint64_t);
static void cmd_rcpt(struct smtp_server *, const char *, size_t, uint64_t);
static void cmd_data(struct smtp_server *, const char *, size_t, uint64_t);
static void cmd_bdat(struct smtp_server *, const char *, size_t, uint64_t);
static void cmd_rset(struct smtp_server *, const char *, size_t, uint64_t);
static void cmd_noop(struct smtp_server *, const char *, size_t, uint64_t);
static void cmd_quit(struct smtp_server *, const char *, size_t, uint64_t);
static void cmd_vrfy(struct smtp_server *, const char *, size_t, uint64_t);
static void cmd_expn(struct smtp_server *, const char *, size_t, uint64_t);
static void cmd_help(struct smtp_server *, const char *, size_t, uint64_t);
static void cmd_stls(struct smtp_server *, const char *, size_t, uint64_t);
static void cmd_auth(struct smtp_server *, const char *, size_t, uint64_t);

static const struct cmd cmds[] = {
	{ "HELO", 4, ST(SS_GREET) | ST(SS_READY) | ST(SS_MAIL) | ST(SS_RCPT),
	  cmd_helo },
	{ "EHLO", 4, ST(SS_GREET) | ST(SS_READY) | ST(SS_MAIL) | ST(SS_RCPT),
	  cmd_ehlo },
	{ "MAIL", 4, ST(SS_GREET) | ST(SS_READY), cmd_mail },
	{ "RCPT", 4, ST(SS_MAIL) | ST(SS_RCPT), cmd_rcpt },
	{ "DATA", 4, ST(SS_MAIL) | ST(SS_RCPT), cmd_data, 1 },
	{ "BDAT", 4, ST_CMD, cmd_bdat },
	{ "RSET", 4, ST_CMD, cmd_rset, 1 },
	{ "NOOP", 4, ST_CMD, cmd_noop },
	{ "QUIT", 4, ST_CMD | ST(SS_REJECT), cmd_quit, 1 },
	{ "VRFY", 4, ST_CMD, cmd_vrfy },
	{ "EXPN", 4, ST_CMD, cmd_expn },
	{ "HELP", 4, ST_CMD, cmd_help },
	{ "STARTTLS", 8, ST(SS_GREET) | ST(SS_READY), cmd_stls, 1 },
	{ "AUTH", 4, ST(SS_GREET) | ST(SS_READY), cmd_auth },
};

/* badseq - the 503 text for a verb in a state where it is not valid */
static const char *badseq(const struct smtp_server *s, const struct cmd *c)
{
	if (s->state == SS_REJECT)
		return "Service refused; only QUIT is accepted";
	if (c->fn == cmd_rcpt)
		return s->state == SS_BDAT ? "RCPT after BDAT" :
					     "Need MAIL before RCPT";
	if (c->fn == cmd_data)
		return s->state == SS_BDAT ? "DATA after BDAT not allowed" :
					     "Need MAIL command";
	if (c->fn == cmd_mail)
		return "Nested MAIL command";
	if (c->fn == cmd_helo || c->fn == cmd_ehlo)
		return "Finish the BDAT transaction first";
	return "Not allowed during a mail transaction";
}

/* smtp_cmd_dispatch - find the verb, check the state, run the handler */
void smtp_cmd_dispatch(struct smtp_server *s, const char *l, size_t n,
		       uint64_t now)
{
	size_t vl = 0, i;

	while (vl < n && l[vl] != ' ')
		vl++;
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const struct cmd *c = &cmds[i];
		const char *a;
		size_t an;

		if (c->len != vl || strncasecmp(l, c->verb, vl) != 0)
			continue;
		if (!(c->states & ST(s->state))) {
			smtp_server_error(s, 503, "5.5.1", badseq(s, c));
			return;
		}
		a = l + vl;
		an = n - vl;
		while (an && *a == ' ') {	/* tolerate extra spaces */
			a++;
			an--;
		}
		while (an && a[an - 1] == ' ')
			an--;
		if (c->noarg && an) {
			char t[sizeof("Syntax: ") + sizeof(c->verb)];

			snprintf(t, sizeof(t), "Syntax: %.*s", (int)c->len,
				 c->verb);
			smtp_server_error(s, 501, "5.5.4", t);
			return;
		}
		c->fn(s, a, an, now);
		return;
	}
	smtp_server_error(s, 500, "5.5.2", "Command unrecognized");
}

/* helo_ok - Domain or address literal (RFC 5321 4.1.1.1); bare IPs and
 * '_' are tolerated since real clients send them; policy is the caller's */
static int helo_ok(const char *a, size_t n)
{
	size_t i;

	if (n == 0 || n > SMTP_HOST_MAX)
		return 0;
	if (a[0] == '[')
		return smtp_addr_literal_valid(a, n);
	if (a[0] == '.' || a[n - 1] == '-' || a[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		char c = a[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '_' || c == ':'))
			return 0;
		if (c == '.' && i + 1 < n && a[i + 1] == '.')
			return 0;
	}
	return 1;
}

/* helo_common - HELO/EHLO: validate, reset the transaction, ask */
static void helo_common(struct smtp_server *s, const char *a, size_t n,
			int esmtp, uint64_t now)
{
	if (n == 0) {
		smtp_server_error(s, 501, "5.5.4", esmtp ? "Syntax: EHLO hostname"
						       : "Syntax: HELO hostname");
		return;
	}
	if (!helo_ok(a, n)) {
		smtp_server_error(s, 501, "5.5.2", "Invalid domain name");
		return;
	}
	/* RFC 5321 4.1.4: EHLO/HELO within a transaction resets it */
	smtp_server_txn_reset(s);
	memcpy(s->pend_helo, a, n);
	s->pend_helo[n] = '\0';
	s->pend_esmtp = (uint8_t)esmtp;
	memset(&s->act, 0, sizeof(s->act));
	s->act.helo = s->pend_helo;
	s->act.esmtp = (uint8_t)esmtp;
	smtp_server_park(s, PK_HELO, now);
}

static void cmd_helo(struct smtp_server *s, const char *a, size_t n,
		     uint64_t now)
{
	helo_common(s, a, n, 0, now);
}

static void cmd_ehlo(struct smtp_server *s, const char *a, size_t n,
		     uint64_t now)
{
	helo_common(s, a, n, 1, now);
}

/* prefix - case-insensitive "FROM:"/"TO:" then optional spaces */
static int prefix(const char **a, size_t *n, const char *p)
{
	size_t pl = strlen(p);

	if (*n < pl || strncasecmp(*a, p, pl) != 0)
		return 0;
	*a += pl;
	*n -= pl;
	while (*n && **a == ' ') {
		(*a)++;
		(*n)--;
	}
	return 1;
}

/* param_error - reply for a failed MAIL/RCPT parameter parse */
static void param_error(struct smtp_server *s, int r)
{
	if (r == -SMTP_EPARAM)
		smtp_server_error(s, 555, "5.5.4",
				  "Unsupported or unknown parameter");
	else if (r == -SMTP_EDUPPARAM)
		smtp_server_error(s, 501, "5.5.4", "Duplicate parameter");
	else
		smtp_server_error(s, 501, "5.5.4", "Invalid parameter value");
}

/* params_refused - after the address of MAIL/RCPT: only " params" may
 * follow, and only in an EHLO session; replies and returns 1 if not */
static int params_refused(struct smtp_server *s, const char *a, size_t n,
			  size_t used, const char *syntax)
{
	if (used == n)
		return 0;
	if (a[used] != ' ')
		smtp_server_error(s, 501, "5.5.4", syntax);
	else if (!s->esmtp)
		smtp_server_error(s, 555, "5.5.4",
				  "Parameters not allowed after HELO");
	else
		return 0;
	return 1;
}

/* cmd_mail - MAIL FROM:<reverse-path> [params] (RFC 5321 4.1.1.2) */
static void cmd_mail(struct smtp_server *s, const char *a, size_t n,
		     uint64_t now)
{
	size_t used = 0;
	int r;

	if (!s->helo_done) {
		smtp_server_error(s, 503, "5.5.1", "Send HELO/EHLO first");
		return;
	}
	if (s->cfg.tls_required && !s->tls) {
		smtp_server_error(s, 530, "5.7.0",
				  "Must issue a STARTTLS command first");
		return;
	}
	if (s->txns >= s->cfg.max_txns) {
		smtp_server_replyf(s, 421, "4.7.0", "%s Error: too many "
				   "transactions in one session, closing",
				   s->host);
		smtp_server_close(s, "transaction limit");
		return;
	}
	if (!prefix(&a, &n, "FROM:")) {
		smtp_server_error(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return;
	}
	r = smtp_addr_parse(&s->pend_addr, a, n, SMTP_ADDR_OPT_NULL |
			    SMTP_ADDR_OPT_UTF8, &used);
	if (r < 0) {
		smtp_server_error(s, 501, "5.1.7", r == -SMTP_ETOOLONG ?
				  "Sender address too long" :
				  "Bad sender address syntax");
		return;
	}
	if (params_refused(s, a, n, used, "Syntax: MAIL FROM:<address>"))
		return;
	r = smtp_param_mail(&s->pend_mail, a + used, n - used, s->offered);
	if (r < 0) {
		param_error(s, r);
		return;
	}
	if ((s->pend_addr.flags & SMTP_ADDR_F_UTF8) && !s->pend_mail.smtputf8) {
		smtp_server_reply(s, 553, "5.6.7",
				  "Non-ASCII address requires SMTPUTF8");
		return;
	}
	/* RFC 1870 6.1 */
	if (s->pend_mail.has_size && s->pend_mail.size > s->cfg.max_msg_size) {
		smtp_server_replyf(s, 552, "5.3.4", "Message size exceeds "
				   "fixed maximum message size of %llu octets",
				   (unsigned long long)s->cfg.max_msg_size);
		return;
	}
	memset(&s->act, 0, sizeof(s->act));
	s->act.addr = &s->pend_addr;
	s->act.mail = &s->pend_mail;
	smtp_server_park(s, PK_MAIL, now);
}

/* cmd_rcpt - RCPT TO:<forward-path> [params] (RFC 5321 4.1.1.3) */
static void cmd_rcpt(struct smtp_server *s, const char *a, size_t n,
		     uint64_t now)
{
	unsigned opts = SMTP_ADDR_OPT_POSTMASTER;
	size_t used = 0;
	int r;

	if (!prefix(&a, &n, "TO:")) {
		smtp_server_error(s, 501, "5.5.4", "Syntax: RCPT TO:<address>");
		return;
	}
	if (s->env.mail.smtputf8)
		opts |= SMTP_ADDR_OPT_UTF8;
	r = smtp_addr_parse(&s->pend_addr, a, n, opts, &used);
	if (r == -SMTP_ENEEDUTF8) {
		smtp_server_reply(s, 553, "5.6.7",
				  "Non-ASCII address requires SMTPUTF8");
		return;
	}
	if (r < 0) {
		smtp_server_error(s, 501, "5.1.3", r == -SMTP_ETOOLONG ?
				  "Recipient address too long" :
				  "Bad recipient address syntax");
		return;
	}
	if (params_refused(s, a, n, used, "Syntax: RCPT TO:<address>"))
		return;
	r = smtp_param_rcpt(&s->pend_rcpt, a + used, n - used, s->offered);
	if (r < 0) {
		param_error(s, r);
		return;
	}
	s->rcpt_tried++;
	/* relay trick @local:user@other - refused unless configured */
	if ((s->pend_addr.flags & SMTP_ADDR_F_ROUTE) &&
	    !s->cfg.rcpt_route_strip) {
		smtp_server_error(s, 553, "5.7.1",
				  "Source-routed recipients are not accepted");
		return;
	}
	if (s->n_rcpt >= s->cfg.max_rcpts) {
		/* RFC 5321 4.5.3.1.10 */
		smtp_server_reply(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	memset(&s->act, 0, sizeof(s->act));
	s->act.addr = &s->pend_addr;
	s->act.rcpt = &s->pend_rcpt;
	s->act.env = &s->env;
	smtp_server_park(s, PK_RCPT, now);
}

/* cmd_data - DATA (RFC 5321 4.1.1.4) */
static void cmd_data(struct smtp_server *s, const char *a, size_t n,
		     uint64_t now)
{
	(void)a;
	(void)n;
	(void)now;
	if (s->state == SS_MAIL) {
		/* RFC 2920 3.1: all pipelined RCPTs failed */
		if (s->rcpt_tried)
			smtp_server_reply(s, 554, "5.5.1", "No valid recipients");
		else
			smtp_server_error(s, 503, "5.5.1", "Need RCPT command");
		return;
	}
	if (s->env.mail.body == SMTP_BODY_BINARYMIME) {
		smtp_server_error(s, 503, "5.5.1", "BODY=BINARYMIME requires BDAT");
		return;
	}
	smtp_body_start(&s->body, SMTP_BODY_MODE_DATA);
	s->state = SS_DATA;
	smtp_server_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

/* cmd_bdat - BDAT size [LAST] (RFC 3030 2); the chunk is always read */
static void cmd_bdat(struct smtp_server *s, const char *a, size_t n,
		     uint64_t now)
{
	uint64_t size = 0;
	size_t i = 0;
	int last = 0;

	/* saturating: any run of digits is a size, however absurd */
	while (i < n && a[i] >= '0' && a[i] <= '9') {
		uint64_t d = (uint64_t)(a[i] - '0');

		size = size > (UINT64_MAX - d) / 10 ? UINT64_MAX
						    : size * 10 + d;
		i++;
	}
	if (i > 0 && i < n && a[i] == ' ') {
		size_t j = i;

		while (j < n && a[j] == ' ')
			j++;
		if (n - j == 4 && strncasecmp(a + j, "LAST", 4) == 0) {
			last = 1;
			i = n;
		}
	}
	if (i == 0 || i != n) {
		/* we cannot tell where the chunk ends: no way to resync */
		smtp_server_reply(s, 501, "5.5.4", "Syntax: BDAT size [LAST]; "
				  "closing connection");
		smtp_server_close(s, "bad BDAT");
		return;
	}
	if (size > s->cfg.max_msg_size) {
		smtp_server_replyf(s, 552, "5.3.4", "Chunk size exceeds the "
				   "message size limit of %llu octets; closing "
				   "connection",
				   (unsigned long long)s->cfg.max_msg_size);
		smtp_server_close(s, "BDAT chunk too big");
		return;
	}
	s->chunk_left = size;
	s->chunk_last = (uint8_t)last;
	s->chunk_ok = 0;
	s->chunk_code = 503;
	s->chunk_enh = "5.5.1";
	if (!(s->offered & SMTP_EXT_CHUNKING) || !s->esmtp) {
		s->chunk_text = "BDAT not available";
	} else if (s->txn_failed) {
		s->chunk_text = "Transaction failed; send RSET";
	} else if (s->state == SS_MAIL) {
		if (s->rcpt_tried) {
			s->chunk_code = 554;
			s->chunk_text = "No valid recipients";
		} else {
			s->chunk_text = "Need RCPT command";
		}
	} else if (s->state != SS_RCPT && s->state != SS_BDAT) {
		s->chunk_text = "Need MAIL command";
	} else {
		if (s->state == SS_RCPT) {
			smtp_body_start(&s->body, s->env.mail.body ==
					SMTP_BODY_BINARYMIME ?
					SMTP_BODY_MODE_BINARY :
					SMTP_BODY_MODE_TEXT);
			s->env.chunked = 1;
		}
		if (s->body.total + size > s->cfg.max_msg_size) {
			s->chunk_code = 552;
			s->chunk_enh = "5.3.4";
			s->chunk_text = "Message size exceeds fixed limit";
		} else {
			s->chunk_ok = 1;
		}
	}
	s->ret_state = s->state;
	s->state = SS_CHUNK;
	if (size == 0)
		smtp_server_chunk_end(s, now);
}

/* cmd_rset - RSET (RFC 5321 4.1.1.5) */
static void cmd_rset(struct smtp_server *s, const char *a, size_t n,
		     uint64_t now)
{
	(void)a;
	(void)n;
	(void)now;
	smtp_server_txn_reset(s);
	s->state = s->helo_done ? SS_READY : SS_GREET;
	smtp_server_reply(s, 250, "2.0.0", "Ok");
}

/* cmd_noop - NOOP [string] (RFC 5321 4.1.1.9) */
static void cmd_noop(struct smtp_server *s, const char *a, size_t n,
		     uint64_t now)
{
	(void)a;
	(void)n;
	(void)now;
	smtp_server_reply(s, 250, "2.0.0", "Ok");
}

/* cmd_quit - QUIT (RFC 5321 4.1.1.10) */
static void cmd_quit(struct smtp_server *s, const char *a, size_t n,
		     uint64_t now)
{
	(void)a;
	(void)n;
	(void)now;
	smtp_server_replyf(s, 221, "2.0.0", "%s Bye", s->host);
	smtp_server_close(s, "quit");
}

/* cmd_vrfy - VRFY (RFC 5321 3.5.3: 252 when we will not verify) */
static void cmd_vrfy(struct smtp_server *s, const char *a, size_t n,
		     uint64_t now)
{
	(void)a;
	(void)now;
	if (!s->cfg.vrfy)
		smtp_server_error(s, 502, "5.5.1", "VRFY command is disabled");
	else if (n == 0)
		smtp_server_error(s, 501, "5.5.4", "Syntax: VRFY address");
	else
		smtp_server_reply(s, 252, "2.1.5", "Cannot VRFY user, but will "
				  "accept message and attempt delivery");
}

static void cmd_expn(struct smtp_server *s, const char *a, size_t n,
		     uint64_t now)
{
	(void)a;
	(void)n;
	(void)now;
	smtp_server_error(s, 502, "5.5.1", "EXPN command not implemented");
}

static void cmd_help(struct smtp_server *s, const char *a, size_t n,
		     uint64_t now)
{
	(void)a;
	(void)n;
	(void)now;
	smtp_server_reply(s, 214, "2.0.0", "Commands: HELO EHLO MAIL RCPT DATA "
			  "BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH\n"
			  "See RFC 5321");
}

/* cmd_stls - STARTTLS (RFC 3207 4) */
static void cmd_stls(struct smtp_server *s, const char *a, size_t n,
		     uint64_t now)
{
	(void)a;
	(void)n;
	(void)now;
	if (s->tls) {
		smtp_server_error(s, 503, "5.5.1", "TLS already active");
		return;
	}
	if (!(s->offered & SMTP_EXT_STARTTLS)) {
		smtp_server_error(s, 502, "5.5.1", "STARTTLS not available");
		return;
	}
	if (!s->esmtp) {
		smtp_server_error(s, 503, "5.5.1", "Send EHLO first");
		return;
	}
	smtp_server_reply(s, 220, "2.0.0", "Ready to start TLS");
	s->state = SS_TLS;
	memset(&s->act, 0, sizeof(s->act));
	s->act.type = SMTP_ACT_STARTTLS;
}

/* auth_ask - decoded credentials complete: ask the caller */
static void auth_ask(struct smtp_server *s, uint64_t now)
{
	memset(&s->act, 0, sizeof(s->act));
	s->act.auth_mech = s->auth_mech == SMTP_AUTH_PLAIN ? "PLAIN" : "LOGIN";
	s->act.authzid = s->auth_zid;
	s->act.authcid = s->auth_cid;
	s->act.password = s->auth_pw;
	s->state = SS_READY;
	smtp_server_park(s, PK_AUTH, now);
}

/* auth_fail - abandon the exchange with a 501 */
static void auth_fail(struct smtp_server *s, const char *enh, const char *t)
{
	memset(s->auth_pw, 0, sizeof(s->auth_pw));
	s->state = SS_READY;
	smtp_server_error(s, 501, enh, t);
}

/* auth_response - one base64 client response (RFC 4954 4) */
static void auth_response(struct smtp_server *s, const char *l, size_t n,
			  uint64_t now)
{
	uint8_t buf[3 * SMTP_AUTH_FIELD_MAX + 8];
	int r;

	if (n == 1 && l[0] == '*') {
		auth_fail(s, "5.7.0", "Authentication cancelled");
		return;
	}
	if (n == 1 && l[0] == '=')
		r = 0;
	else
		r = smtp_param_b64_decode(buf, sizeof(buf), l, n);
	if (r < 0) {
		auth_fail(s, "5.5.2", "Invalid base64 data");
		return;
	}
	if (s->auth_mech == SMTP_AUTH_PLAIN) {
		/* RFC 4616 2: [authzid] NUL authcid NUL passwd */
		uint8_t *z1 = memchr(buf, 0, (size_t)r), *z2;
		size_t zl, cl, pl;

		z2 = z1 ? memchr(z1 + 1, 0, (size_t)(buf + r - z1 - 1)) : NULL;
		if (!z1 || !z2) {
			auth_fail(s, "5.5.2", "Invalid AUTH PLAIN response");
			return;
		}
		zl = (size_t)(z1 - buf);
		cl = (size_t)(z2 - z1 - 1);
		pl = (size_t)(buf + r - z2 - 1);
		if (zl > SMTP_AUTH_FIELD_MAX || cl == 0 ||
		    cl > SMTP_AUTH_FIELD_MAX || pl == 0 ||
		    pl > SMTP_AUTH_FIELD_MAX || memchr(z2 + 1, 0, pl)) {
			memset(buf, 0, sizeof(buf));
			auth_fail(s, "5.5.2", "Invalid AUTH PLAIN response");
			return;
		}
		memcpy(s->auth_zid, buf, zl);
		s->auth_zid[zl] = '\0';
		memcpy(s->auth_cid, z1 + 1, cl);
		s->auth_cid[cl] = '\0';
		memcpy(s->auth_pw, z2 + 1, pl);
		s->auth_pw[pl] = '\0';
		memset(buf, 0, sizeof(buf));
		auth_ask(s, now);
		return;
	}
	/* LOGIN: username, then password */
	if (r == 0 || r > SMTP_AUTH_FIELD_MAX || memchr(buf, 0, (size_t)r)) {
		memset(buf, 0, sizeof(buf));
		auth_fail(s, "5.5.2", "Invalid AUTH LOGIN response");
		return;
	}
	if (s->auth_step == 0) {
		memcpy(s->auth_cid, buf, (size_t)r);
		s->auth_cid[r] = '\0';
		s->auth_zid[0] = '\0';
		s->auth_step = 1;
		s->state = SS_AUTH;
		smtp_server_reply(s, 334, NULL, "UGFzc3dvcmQ6");
		return;
	}
	memcpy(s->auth_pw, buf, (size_t)r);
	s->auth_pw[r] = '\0';
	memset(buf, 0, sizeof(buf));
	auth_ask(s, now);
}

/* smtp_cmd_auth_line - a continuation line while in SS_AUTH */
void smtp_cmd_auth_line(struct smtp_server *s, const char *l, size_t n,
			uint64_t now)
{
	auth_response(s, l, n, now);
}

/* cmd_auth - AUTH mechanism [initial-response] (RFC 4954 4) */
static void cmd_auth(struct smtp_server *s, const char *a, size_t n,
		     uint64_t now)
{
	size_t ml = 0, j;

	if (!(s->cfg.ext & SMTP_EXT_AUTH)) {
		smtp_server_error(s, 502, "5.5.1", "AUTH not available");
		return;
	}
	if (!(s->offered & SMTP_EXT_AUTH)) {
		/* RFC 4954 6 */
		smtp_server_error(s, 538, "5.7.11", "Encryption required for "
				  "requested authentication mechanism");
		return;
	}
	if (!s->esmtp) {
		smtp_server_error(s, 503, "5.5.1", "Send EHLO first");
		return;
	}
	if (s->auth_id[0]) {
		smtp_server_error(s, 503, "5.5.1", "Already authenticated");
		return;
	}
	while (ml < n && a[ml] != ' ')
		ml++;
	if (ml == 5 && strncasecmp(a, "PLAIN", 5) == 0) {
		s->auth_mech = SMTP_AUTH_PLAIN;
	} else if (ml == 5 && strncasecmp(a, "LOGIN", 5) == 0) {
		s->auth_mech = SMTP_AUTH_LOGIN;
	} else if (ml == 0) {
		smtp_server_error(s, 501, "5.5.4", "Syntax: AUTH mechanism");
		return;
	} else {
		smtp_server_error(s, 504, "5.5.4",
				  "Unrecognized authentication type");
		return;
	}
	s->auth_step = 0;
	j = ml;
	while (j < n && a[j] == ' ')
		j++;
	if (j < n) {
		auth_response(s, a + j, n - j, now);
		return;
	}
	s->state = SS_AUTH;
	smtp_server_reply(s, 334, NULL, s->auth_mech == SMTP_AUTH_PLAIN ?
			  "" : "VXNlcm5hbWU6");
}
