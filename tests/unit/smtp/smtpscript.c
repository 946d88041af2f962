/*
 * smtpscript.c - runs one SMTP dialogue script against the sans-IO
 * engines with a virtual clock (format: docs/smtp.md "Dialogue scripts").
 *
 * Server mode (default): the script plays the client and the caller of
 * the server engine: `send` / `raw` feed bytes, `expect` checks replies
 * in order, `event` checks the pending action, `verdict` answers it,
 * `clock` advances time, `env` / `body` / `received` check the message.
 * Client mode (`mode client`, smtpscript_client.c): the script plays the
 * remote server and the caller of the client engine.
 *
 * Exit 0 when every check passed and no reply was left unchecked; 1 with
 * "file:line: reason" on stderr otherwise.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_body.h"
#include "smtp_reply.h"
#include "smtp_server.h"
#include "smtpscript.h"

#define T0 1704067200000ull	/* 2024-01-01 00:00:00 UTC */

const char *sc_path;
int sc_line;

/* sc_fail - report and exit */
void sc_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: ", sc_path, sc_line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* sc_unescape - C escapes into out; returns the length */
size_t sc_unescape(const char *s, size_t n, uint8_t *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (s[i] != '\\' || i + 1 == n) {
			out[o++] = (uint8_t)s[i];
			continue;
		}
		i++;
		switch (s[i]) {
		case 'r': out[o++] = '\r'; break;
		case 'n': out[o++] = '\n'; break;
		case 't': out[o++] = '\t'; break;
		case '0': out[o++] = '\0'; break;
		case 'x': {
			unsigned v = 0;
			int k;

			for (k = 0; k < 2 && i + 1 < n &&
			     isxdigit((unsigned char)s[i + 1]); k++) {
				char c = s[++i];

				v = v * 16 + (unsigned)(isdigit((unsigned char)c) ?
					c - '0' : (tolower(c) - 'a' + 10));
			}
			out[o++] = (uint8_t)v;
			break;
		}
		default: out[o++] = (uint8_t)s[i]; break;
		}
	}
	return o;
}

/* sc_quoted - unescaped "..." at *s (advanced past it); -1 if none */
int sc_quoted(const char **s, uint8_t *out, size_t *len)
{
	const char *p = *s, *q;

	while (*p == ' ')
		p++;
	if (*p != '"')
		return -1;
	for (q = p + 1; *q && *q != '"'; q++)
		if (*q == '\\' && q[1])
			q++;
	if (*q != '"')
		return -1;
	*len = sc_unescape(p + 1, (size_t)(q - p - 1), out);
	*s = q + 1;
	return 0;
}

/* sc_kv - value of key=value in args (value up to space), or NULL */
const char *sc_kv(const char *args, const char *key, char *val, size_t cap)
{
	size_t kl = strlen(key);
	const char *p = args;

	while ((p = strstr(p, key)) != NULL) {
		if ((p == args || p[-1] == ' ') && p[kl] == '=') {
			size_t n = 0;

			p += kl + 1;
			while (p[n] && p[n] != ' ' && n + 1 < cap)
				n++;
			memcpy(val, p, n);
			val[n] = '\0';
			return val;
		}
		p += kl;
	}
	return NULL;
}

/* ---- server mode ---- */

struct reply_rec {
	int code;
	char text[SMTP_REPLY_TEXT_MAX + 32];
};

static struct srv_run {
	struct smtp_server_cfg cfg;
	struct smtp_peer peer;
	struct smtp_server *s;
	uint64_t now;
	uint8_t *in;		/* bytes sent, not yet consumed */
	size_t in_len, in_cap;
	size_t chunk;		/* feed at most this many per call */
	struct reply_rec q[4096];
	unsigned q_head, q_tail;
	unsigned last_flush;	/* replies in the last write */
	struct smtp_reply parser;
	int started;
} R;

/* drain - take the whole output as one write, parse replies into q */
static void drain(void)
{
	const uint8_t *p;
	size_t n = smtp_server_output(R.s, &p), i = 0;

	if (n == 0)
		return;
	R.last_flush = 0;
	if (smtp_body_bare(p, n))
		sc_fail("engine output has a bare CR or LF");
	if (n && (p[n - 1] != '\n'))
		sc_fail("engine output ends mid-line");
	while (i < n) {
		int complete;
		ssize_t k = smtp_reply_parse(&R.parser, p + i, n - i, &complete);

		if (k < 0)
			sc_fail("engine produced a malformed reply");
		i += (size_t)k;
		if (complete) {
			struct reply_rec *r = &R.q[R.q_tail++ % 4096];

			r->code = R.parser.code;
			snprintf(r->text, sizeof(r->text), "%s", R.parser.text);
			R.last_flush++;
			smtp_reply_parse_reset(&R.parser);
		}
	}
	smtp_server_output_consume(R.s, n);
}

/* pump - feed pending input until parked, closed or all consumed */
static void pump(void)
{
	for (;;) {
		size_t n = R.in_len;
		ssize_t k;
		enum smtp_act_type t = smtp_server_action(R.s)->type;

		if (t != SMTP_ACT_NONE && t != SMTP_ACT_STARTTLS)
			break;
		if (n == 0)
			break;
		if (R.chunk && n > R.chunk)
			n = R.chunk;
		k = smtp_server_input(R.s, R.in, n, R.now);
		if (k < 0)
			break;
		memmove(R.in, R.in + k, R.in_len - (size_t)k);
		R.in_len -= (size_t)k;
		drain();
		if (k == 0)
			break;
	}
}

static void start(void)
{
	if (R.started)
		return;
	R.s = smtp_server_new(&R.cfg, &R.peer, R.now);
	if (!R.s)
		sc_fail("smtp_server_new failed (bad config?)");
	R.started = 1;
	drain();
}

static void add_input(const uint8_t *p, size_t n)
{
	if (R.in_len + n > R.in_cap) {
		R.in_cap = (R.in_len + n) * 2;
		R.in = realloc(R.in, R.in_cap);
		if (!R.in)
			sc_fail("out of memory");
	}
	memcpy(R.in + R.in_len, p, n);
	R.in_len += n;
}

static unsigned parse_vp(const char *v)
{
	unsigned m = 0;

	if (strstr(v, "all"))
		return SMTP_VP_ALL;
	if (strstr(v, "connect"))
		m |= SMTP_VP_CONNECT;
	if (strstr(v, "helo"))
		m |= SMTP_VP_HELO;
	if (strstr(v, "mail"))
		m |= SMTP_VP_MAIL;
	if (strstr(v, "rcpt"))
		m |= SMTP_VP_RCPT;
	if (strstr(v, "auth"))
		m |= SMTP_VP_AUTH;
	if (strstr(v, "data"))
		m |= SMTP_VP_DATA;
	return m;
}

static unsigned ext_bit(const char *name)
{
	static const struct { const char *n; unsigned b; } t[] = {
		{ "pipelining", SMTP_EXT_PIPELINING }, { "size", SMTP_EXT_SIZE },
		{ "8bitmime", SMTP_EXT_8BITMIME }, { "smtputf8", SMTP_EXT_SMTPUTF8 },
		{ "enhanced", SMTP_EXT_ENHANCED }, { "chunking", SMTP_EXT_CHUNKING },
		{ "binarymime", SMTP_EXT_BINARYMIME }, { "dsn", SMTP_EXT_DSN },
		{ "starttls", SMTP_EXT_STARTTLS }, { "auth", SMTP_EXT_AUTH },
		{ "mtpriority", SMTP_EXT_MTPRIORITY },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(t[i].n, name))
			return t[i].b;
	sc_fail("unknown extension '%s'", name);
	return 0;
}

/* srv_config - one "config key=value" */
static void srv_config(const char *k, const char *v)
{
	struct smtp_server_cfg *c = &R.cfg;
	unsigned long long x = strtoull(v, NULL, 0);
	static char host[256];

	if (R.started)
		sc_fail("config after the session started");
	if (!strcmp(k, "max_rcpts")) c->max_rcpts = (unsigned)x;
	else if (!strcmp(k, "max_errors")) c->max_errors = (unsigned)x;
	else if (!strcmp(k, "max_txns")) c->max_txns = (unsigned)x;
	else if (!strcmp(k, "max_cmd_line")) c->max_cmd_line = x;
	else if (!strcmp(k, "max_text_line")) c->max_text_line = x;
	else if (!strcmp(k, "max_msg_size")) c->max_msg_size = x;
	else if (!strcmp(k, "cmd_timeout")) c->cmd_timeout_ms = (uint32_t)(x * 1000);
	else if (!strcmp(k, "data_timeout")) c->data_timeout_ms = (uint32_t)(x * 1000);
	else if (!strcmp(k, "session_timeout")) c->session_timeout_ms = (uint32_t)(x * 1000);
	else if (!strcmp(k, "out_cap")) c->out_cap = x;
	else if (!strcmp(k, "vrfy")) c->vrfy = (uint8_t)x;
	else if (!strcmp(k, "auth_plaintext")) c->auth_plaintext = (uint8_t)x;
	else if (!strcmp(k, "tls_required")) c->tls_required = (uint8_t)x;
	else if (!strcmp(k, "route_strip")) c->rcpt_route_strip = (uint8_t)x;
	else if (!strcmp(k, "trust_prio")) c->mtprio_trust_all = (uint8_t)x;
	else if (!strcmp(k, "prio_default")) c->prio_default = (uint8_t)x;
	else if (!strcmp(k, "verdicts")) c->verdicts = parse_vp(v);
	else if (!strcmp(k, "chunk")) R.chunk = x;
	else if (!strcmp(k, "peer")) snprintf(R.peer.addr, sizeof(R.peer.addr), "%s", v);
	else if (!strcmp(k, "rdns")) snprintf(R.peer.name, sizeof(R.peer.name), "%s", v);
	else if (!strcmp(k, "hostname")) {
		snprintf(host, sizeof(host), "%s", v);
		c->hostname = host;
	} else if (!strcmp(k, "ext")) {
		/* ext=+starttls,-pipelining */
		char tmp[256], *t, *save = NULL;

		snprintf(tmp, sizeof(tmp), "%s", v);
		for (t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (t[0] == '+')
				c->ext |= ext_bit(t + 1);
			else if (t[0] == '-')
				c->ext &= ~ext_bit(t + 1);
			else
				sc_fail("ext needs +name or -name");
		}
	} else if (!strncmp(k, "prio_map", 8)) {
		/* prio_map=7,7,...(19 values for -9..9) */
		const char *p = v;
		int i;

		for (i = 0; i < 19; i++) {
			c->prio_map[i] = (uint8_t)strtoul(p, (char **)&p, 10);
			if (*p == ',')
				p++;
		}
	} else {
		sc_fail("unknown config key '%s'", k);
	}
}

static const char *act_name(enum smtp_act_type t)
{
	static const char *const n[] = {
		"NONE", "CONNECT", "HELO", "MAIL", "RCPT", "AUTH", "DATA",
		"STARTTLS", "CLOSE",
	};

	return n[t];
}

/* check_eq - fail unless got == want */
static void check_eq(const char *what, const char *got, const char *want)
{
	if (strcmp(got, want))
		sc_fail("%s: got '%s', want '%s'", what, got, want);
}

static const char *notify_str(uint8_t n, char *buf)
{
	buf[0] = '\0';
	if (n & SMTP_NOTIFY_NEVER) strcat(buf, "NEVER,");
	if (n & SMTP_NOTIFY_SUCCESS) strcat(buf, "SUCCESS,");
	if (n & SMTP_NOTIFY_FAILURE) strcat(buf, "FAILURE,");
	if (n & SMTP_NOTIFY_DELAY) strcat(buf, "DELAY,");
	if (buf[0])
		buf[strlen(buf) - 1] = '\0';
	else
		strcpy(buf, "-");
	return buf;
}

/* srv_event - "event TYPE [value] [key=value...]" */
static void srv_event(const char *args)
{
	const struct smtp_action *a = smtp_server_action(R.s);
	char type[32] = "", val[600], kv[600], tmp[64];
	const char *p;
	int n = 0;

	sscanf(args, "%31s%n", type, &n);
	if (strcmp(type, act_name(a->type)))
		sc_fail("event: pending action is %s, want %s",
			act_name(a->type), type);
	p = args + n;
	while (*p == ' ')
		p++;
	val[0] = '\0';
	if (*p) {
		char tok[600];
		size_t tl;

		/* first token without '=' is the value; escapes allowed */
		sscanf(p, "%599s", tok);
		if (!strchr(tok, '=')) {
			tl = sc_unescape(tok, strlen(tok), (uint8_t *)val);
			val[tl] = '\0';
		}
	}
	switch (a->type) {
	case SMTP_ACT_VERDICT_HELO:
		if (val[0])
			check_eq("helo", a->helo, val);
		if (sc_kv(p, "esmtp", kv, sizeof(kv)))
			check_eq("esmtp", a->esmtp ? "1" : "0", kv);
		break;
	case SMTP_ACT_VERDICT_MAIL:
	case SMTP_ACT_VERDICT_RCPT:
		if (val[0])
			check_eq("address", a->addr->flags & SMTP_ADDR_F_NULL ?
				 "<>" : a->addr->addr, val);
		if (sc_kv(p, "domain", kv, sizeof(kv)))
			check_eq("domain", smtp_addr_domain(a->addr), kv);
		if (sc_kv(p, "route", kv, sizeof(kv)))
			check_eq("route", a->addr->flags & SMTP_ADDR_F_ROUTE ?
				 "1" : "0", kv);
		if (sc_kv(p, "utf8", kv, sizeof(kv)))
			check_eq("utf8", a->addr->flags & SMTP_ADDR_F_UTF8 ?
				 "1" : "0", kv);
		if (a->type == SMTP_ACT_VERDICT_MAIL) {
			if (sc_kv(p, "size", kv, sizeof(kv))) {
				snprintf(tmp, sizeof(tmp), "%llu",
					 (unsigned long long)a->mail->size);
				check_eq("size", tmp, kv);
			}
			if (sc_kv(p, "envid", kv, sizeof(kv)))
				check_eq("envid", a->mail->envid, kv);
		} else {
			if (sc_kv(p, "notify", kv, sizeof(kv)))
				check_eq("notify", notify_str(a->rcpt->notify, tmp), kv);
			if (sc_kv(p, "orcpt", kv, sizeof(kv)))
				check_eq("orcpt", a->rcpt->orcpt, kv);
		}
		break;
	case SMTP_ACT_VERDICT_AUTH:
		if (val[0])
			check_eq("mechanism", a->auth_mech, val);
		if (sc_kv(p, "authcid", kv, sizeof(kv)))
			check_eq("authcid", a->authcid, kv);
		if (sc_kv(p, "authzid", kv, sizeof(kv)))
			check_eq("authzid", a->authzid, kv);
		if (sc_kv(p, "password", kv, sizeof(kv)))
			check_eq("password", a->password, kv);
		break;
	case SMTP_ACT_CLOSE:
		if (val[0] && !strstr(a->reason, val))
			sc_fail("close reason '%s' lacks '%s'", a->reason, val);
		break;
	default:
		break;
	}
}

/* srv_env - "env key=value ..." on the pending DATA verdict */
static void srv_env(const char *args)
{
	const struct smtp_action *a = smtp_server_action(R.s);
	const struct smtp_envelope *e = a->env;
	char kv[600], tmp[700], key[16];
	unsigned i;

	if (a->type != SMTP_ACT_VERDICT_DATA || !e)
		sc_fail("env: no DATA verdict pending");
	if (sc_kv(args, "sender", kv, sizeof(kv)))
		check_eq("sender", e->sender.flags & SMTP_ADDR_F_NULL ? "<>" :
			 e->sender.addr, kv);
	if (sc_kv(args, "rcpts", kv, sizeof(kv))) {
		snprintf(tmp, sizeof(tmp), "%u", e->n_rcpt);
		check_eq("rcpts", tmp, kv);
	}
	for (i = 0; i < e->n_rcpt && i < 10; i++) {
		snprintf(key, sizeof(key), "rcpt%u", i);
		if (sc_kv(args, key, kv, sizeof(kv)))
			check_eq(key, e->rcpt[i].addr.addr, kv);
		snprintf(key, sizeof(key), "notify%u", i);
		if (sc_kv(args, key, kv, sizeof(kv)))
			check_eq(key, notify_str(e->rcpt[i].dsn.notify, tmp), kv);
		snprintf(key, sizeof(key), "orcpt%u", i);
		if (sc_kv(args, key, kv, sizeof(kv)))
			check_eq(key, e->rcpt[i].dsn.orcpt, kv);
	}
	if (sc_kv(args, "body", kv, sizeof(kv)))
		check_eq("body", e->mail.body == SMTP_BODY_BINARYMIME ? "binarymime" :
			 e->mail.body == SMTP_BODY_8BITMIME ? "8bitmime" : "7bit", kv);
#define NUM(name, expr) if (sc_kv(args, name, kv, sizeof(kv))) { \
		snprintf(tmp, sizeof(tmp), "%lld", (long long)(expr)); \
		check_eq(name, tmp, kv); }
	NUM("smtputf8", e->mail.smtputf8);
	NUM("priority", e->priority);
	NUM("mtprio", e->mail.mt_priority);
	NUM("ret", e->mail.ret);
	NUM("tls", e->tls);
	NUM("esmtp", e->esmtp);
	NUM("chunked", e->chunked);
	NUM("size", e->mail.size);
#undef NUM
	if (sc_kv(args, "envid", kv, sizeof(kv)))
		check_eq("envid", e->mail.envid, kv);
	if (sc_kv(args, "auth", kv, sizeof(kv)))
		check_eq("auth", e->auth_id[0] ? e->auth_id : "-", kv);
	if (sc_kv(args, "helo", kv, sizeof(kv)))
		check_eq("helo", e->helo, kv);
	if (sc_kv(args, "qid", kv, sizeof(kv)))
		check_eq("qid", e->queue_id, kv);
	if (sc_kv(args, "peer", kv, sizeof(kv)))
		check_eq("peer", e->peer->addr, kv);
}

/* srv_step - one script directive in server mode */
static void srv_step(const char *cmd, const char *args)
{
	uint8_t buf[65536];
	size_t n;

	if (!strcmp(cmd, "config")) {
		char tmp[512], *t, *save = NULL;

		snprintf(tmp, sizeof(tmp), "%s", args);
		for (t = strtok_r(tmp, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
			char *eq = strchr(t, '=');

			if (!eq)
				sc_fail("config needs key=value");
			*eq = '\0';
			srv_config(t, eq + 1);
		}
		return;
	}
	start();
	if (!strcmp(cmd, "send")) {
		n = sc_unescape(args, strlen(args), buf);
		buf[n++] = '\r';
		buf[n++] = '\n';
		add_input(buf, n);
		pump();
	} else if (!strcmp(cmd, "raw")) {
		const char *p = args;

		if (sc_quoted(&p, buf, &n) < 0)
			sc_fail("raw needs a \"quoted string\"");
		add_input(buf, n);
		pump();
	} else if (!strcmp(cmd, "repeat")) {
		/* repeat N "string": N copies, fed as one stream */
		unsigned long cnt = strtoul(args, (char **)&args, 10), i;

		if (sc_quoted(&args, buf, &n) < 0)
			sc_fail("repeat needs N \"quoted string\"");
		for (i = 0; i < cnt; i++) {
			add_input(buf, n);
			if (R.in_len > (1u << 20))
				pump();
		}
		pump();
	} else if (!strcmp(cmd, "expect")) {
		int code = atoi(args);
		const char *t = strchr(args, ' ');
		struct reply_rec *r;

		if (R.q_head == R.q_tail)
			sc_fail("expected reply %d, none came (state %s, action %s)",
				code, smtp_server_state_name(R.s),
				act_name(smtp_server_action(R.s)->type));
		r = &R.q[R.q_head++ % 4096];
		if (r->code != code)
			sc_fail("expected reply %d, got %d %s", code, r->code,
				r->text);
		if (t && !strstr(r->text, t + 1))
			sc_fail("reply %d '%s' lacks '%s'", code, r->text, t + 1);
	} else if (!strcmp(cmd, "reply-has") || !strcmp(cmd, "reply-lacks")) {
		/* substring check on the reply popped last */
		const struct reply_rec *r = &R.q[(R.q_head - 1) % 4096];
		int has = strstr(r->text, args) != NULL;

		if (R.q_head == 0)
			sc_fail("%s: no reply checked yet", cmd);
		if (has != !strcmp(cmd, "reply-has"))
			sc_fail("reply '%s' %s '%s'", r->text,
				has ? "has" : "lacks", args);
	} else if (!strcmp(cmd, "flush")) {
		unsigned want = (unsigned)atoi(args);

		if (R.last_flush != want)
			sc_fail("last write held %u replies, want %u",
				R.last_flush, want);
	} else if (!strcmp(cmd, "no-reply")) {
		if (R.q_head != R.q_tail)
			sc_fail("unexpected reply %d %s", R.q[R.q_head % 4096].code,
				R.q[R.q_head % 4096].text);
	} else if (!strcmp(cmd, "event")) {
		srv_event(args);
	} else if (!strcmp(cmd, "verdict")) {
		int code = atoi(args);
		char enh[32] = "", *text = NULL;
		const char *p = strchr(args, ' ');
		int r;

		if (p) {
			p++;
			if (isdigit((unsigned char)p[0]) && p[1] == '.') {
				sscanf(p, "%31s", enh);
				p = strchr(p, ' ');
				p = p ? p + 1 : NULL;
			}
			if (p && *p)
				text = (char *)p;
		}
		r = smtp_server_verdict(R.s, code, enh[0] ? enh : NULL, text, R.now);
		if (r < 0)
			sc_fail("verdict refused: %d", r);
		/* like a caller: feed what is buffered, then one write */
		pump();
		drain();
	} else if (!strcmp(cmd, "queueid")) {
		if (smtp_server_set_queue_id(R.s, args) < 0)
			sc_fail("queue id refused");
	} else if (!strcmp(cmd, "queueid-bad")) {
		if (smtp_server_set_queue_id(R.s, args) == 0)
			sc_fail("queue id '%s' accepted", args);
	} else if (!strcmp(cmd, "tls-done")) {
		struct smtp_tls_info ti = { .version = "TLSv1.3",
			.cipher = "TLS_AES_256_GCM_SHA384", .bits = 256 };

		if (smtp_server_tls_done(R.s, &ti, R.now) < 0)
			sc_fail("tls_done refused");
		pump();
	} else if (!strcmp(cmd, "tls-done-bad")) {
		struct smtp_tls_info ti = { .version = "TLSv1.3" };

		if (smtp_server_tls_done(R.s, &ti, R.now) == 0)
			sc_fail("tls_done accepted outside STARTTLS");
	} else if (!strcmp(cmd, "clock")) {
		R.now += strtoull(args[0] == '+' ? args + 1 : args, NULL, 10) * 1000;
		smtp_server_tick(R.s, R.now);
		drain();
	} else if (!strcmp(cmd, "deadline")) {
		uint64_t d = smtp_server_deadline(R.s);
		char tmp[32];

		if (d == UINT64_MAX)
			snprintf(tmp, sizeof(tmp), "none");
		else
			snprintf(tmp, sizeof(tmp), "+%llu",
				 (unsigned long long)((d - R.now) / 1000));
		check_eq("deadline", tmp, args);
	} else if (!strcmp(cmd, "state")) {
		check_eq("state", smtp_server_state_name(R.s), args);
	} else if (!strcmp(cmd, "pending")) {
		char tmp[32];

		snprintf(tmp, sizeof(tmp), "%zu", R.in_len);
		check_eq("unconsumed input", tmp, args);
	} else if (!strcmp(cmd, "env")) {
		srv_env(args);
	} else if (!strcmp(cmd, "body") || !strcmp(cmd, "body-has") ||
		   !strcmp(cmd, "received-has") || !strcmp(cmd, "body-len")) {
		const struct smtp_action *a = smtp_server_action(R.s);
		const uint8_t *b;
		size_t bl;
		const char *p = args;

		if (a->type != SMTP_ACT_VERDICT_DATA)
			sc_fail("%s: no DATA verdict pending", cmd);
		b = a->msg + a->received_len;
		bl = a->msg_len - a->received_len;
		if (!strcmp(cmd, "body-len")) {
			if (bl != strtoull(args, NULL, 10))
				sc_fail("body length %zu, want %s", bl, args);
			return;
		}
		if (sc_quoted(&p, buf, &n) < 0)
			sc_fail("%s needs a \"quoted string\"", cmd);
		if (!strcmp(cmd, "body")) {
			if (n != bl || memcmp(b, buf, n))
				sc_fail("body differs (%zu vs %zu octets): '%.*s'",
					bl, n, (int)(bl > 200 ? 200 : bl), b);
		} else if (!strcmp(cmd, "body-has")) {
			if (!memmem(b, bl, buf, n))
				sc_fail("body lacks the string");
		} else {
			if (a->received_len < 10 ||
			    memcmp(a->msg, "Received: ", 10) ||
			    !memmem(a->msg, a->received_len, buf, n))
				sc_fail("Received header '%.*s' lacks '%.*s'",
					(int)a->received_len, a->msg, (int)n, buf);
		}
	} else if (!strcmp(cmd, "stat")) {
		const struct smtp_server_stats *st = smtp_server_stats(R.s);
		char kv[64], tmp[32];

		if (sc_kv(args, "starttls_discarded", kv, sizeof(kv))) {
			snprintf(tmp, sizeof(tmp), "%llu",
				 (unsigned long long)st->starttls_discarded);
			check_eq("starttls_discarded", tmp, kv);
		}
		if (sc_kv(args, "bare_rejects", kv, sizeof(kv))) {
			snprintf(tmp, sizeof(tmp), "%llu",
				 (unsigned long long)st->bare_rejects);
			check_eq("bare_rejects", tmp, kv);
		}
		if (sc_kv(args, "messages", kv, sizeof(kv))) {
			snprintf(tmp, sizeof(tmp), "%llu",
				 (unsigned long long)st->messages);
			check_eq("messages", tmp, kv);
		}
	} else if (!strcmp(cmd, "input-closed")) {
		if (smtp_server_input(R.s, "x", 1, R.now) != -SMTP_ECLOSED)
			sc_fail("input accepted after close");
	} else {
		sc_fail("unknown directive '%s'", cmd);
	}
}

static void srv_init(void)
{
	smtp_server_cfg_defaults(&R.cfg);
	R.cfg.hostname = "mx.test";
	R.now = T0;
	snprintf(R.peer.addr, sizeof(R.peer.addr), "192.0.2.10");
	R.peer.port = 40000;
	smtp_reply_parse_reset(&R.parser);
}

static void srv_end(void)
{
	if (R.q_head != R.q_tail)
		sc_fail("unchecked reply at end: %d %s", R.q[R.q_head % 4096].code,
			R.q[R.q_head % 4096].text);
	smtp_server_free(R.s);
	free(R.in);
}

int main(int argc, char **argv)
{
	FILE *f;
	char line[70000];
	int client = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: smtpscript FILE.smtp\n");
		return 2;
	}
	sc_path = argv[1];
	f = fopen(sc_path, "r");
	if (!f) {
		perror(sc_path);
		return 2;
	}
	srv_init();
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		char cmd[32] = "";
		const char *args;
		int k = 0;

		sc_line++;
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (!n || line[0] == '#')
			continue;
		sscanf(line, "%31s%n", cmd, &k);
		args = line + k;
		if (*args == ' ')
			args++;
		if (!strcmp(cmd, "mode")) {
			client = !strcmp(args, "client");
			continue;
		}
		if (client)
			cli_step(cmd, args);
		else
			srv_step(cmd, args);
	}
	fclose(f);
	if (client)
		cli_end();
	else
		srv_end();
	return 0;
}
