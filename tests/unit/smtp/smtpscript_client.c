/*
 * smtpscript_client.c - client mode of the dialogue script runner: the
 * script plays the remote server (`send` feeds a reply line) and the
 * caller (`submit`, `quit`, `tls-done`); `expect` checks each line the
 * client engine wrote, `expect-raw` exact octets, `result` the
 * per-recipient results. Format: docs/smtp.md.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_client.h"
#include "smtpscript.h"

#define T0 1704067200000ull

static struct cli_run {
	struct smtp_client_cfg cfg;
	struct smtp_client *c;
	uint64_t now;
	int started;
	uint8_t out[1 << 20];	/* client output not yet checked */
	size_t out_len;
	unsigned last_lines;	/* lines in the last write */
	size_t chunk;		/* feed replies in pieces of this size */
	size_t send_max;	/* take at most this much output per call */
	struct smtp_client_msg msg;
	struct smtp_client_rcpt rcpt[64];
	char sender[300], rcpts[64][300], orcpt[64][300], envid[128];
	uint8_t body[65536];
} C;

static const char *act_name(enum smtp_cli_act a)
{
	static const char *const n[] = { "NONE", "READY", "STARTTLS", "DONE",
					 "CLOSE" };
	return n[a];
}

/* drain - take all output (like a socket write loop) */
static void drain(void)
{
	const uint8_t *p;
	size_t n, before = C.out_len, i;

	while ((n = smtp_client_output(C.c, &p)) > 0) {
		if (C.send_max && n > C.send_max)
			n = C.send_max;
		if (C.out_len + n > sizeof(C.out))
			sc_fail("client output overflow");
		memcpy(C.out + C.out_len, p, n);
		C.out_len += n;
		smtp_client_output_consume(C.c, n, C.now);
	}
	if (C.out_len == before)
		return;
	C.last_lines = 0;
	for (i = before; i < C.out_len; i++)
		if (C.out[i] == '\n')
			C.last_lines++;
}

static void start(void)
{
	if (C.started)
		return;
	C.c = smtp_client_new(&C.cfg, C.now);
	if (!C.c)
		sc_fail("smtp_client_new failed");
	C.started = 1;
}

static void feed(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t k = C.chunk && n - i > C.chunk ? C.chunk : n - i;
		ssize_t r = smtp_client_input(C.c, p + i, k, C.now);

		if (r < 0 && smtp_client_action(C.c) == SMTP_CLI_CLOSE)
			break;
		if (r < 0)
			sc_fail("client input after close");
		drain();
		if (r == 0)
			break;
		i += (size_t)r;
	}
}

/* msg_setup - "msg key=value ..." */
static void msg_setup(const char *args)
{
	char kv[4096];
	const char *b;
	unsigned i = 0;

	memset(&C.msg, 0, sizeof(C.msg));
	memset(C.rcpt, 0, sizeof(C.rcpt));
	C.msg.mt_priority = SMTP_MTPRIO_NONE;
	C.msg.sender = sc_kv(args, "sender", C.sender, sizeof(C.sender)) ?
		       C.sender : "";
	if (!strcmp(C.sender, "<>"))
		C.sender[0] = '\0';
	if (sc_kv(args, "rcpts", kv, sizeof(kv))) {
		char *t, *save = NULL;

		for (t = strtok_r(kv, ",", &save); t && i < 64;
		     t = strtok_r(NULL, ",", &save), i++) {
			snprintf(C.rcpts[i], sizeof(C.rcpts[i]), "%s", t);
			C.rcpt[i].addr = C.rcpts[i];
		}
	}
	C.msg.n_rcpt = i;
	C.msg.rcpt = C.rcpt;
	if (sc_kv(args, "notify0", kv, sizeof(kv))) {
		C.rcpt[0].notify = (uint8_t)((strstr(kv, "SUCCESS") ? SMTP_NOTIFY_SUCCESS : 0) |
			(strstr(kv, "FAILURE") ? SMTP_NOTIFY_FAILURE : 0) |
			(strstr(kv, "DELAY") ? SMTP_NOTIFY_DELAY : 0) |
			(strstr(kv, "NEVER") ? SMTP_NOTIFY_NEVER : 0));
	}
	if (sc_kv(args, "orcpt0", C.orcpt[0], sizeof(C.orcpt[0])))
		C.rcpt[0].orcpt = C.orcpt[0];
	if (sc_kv(args, "envid", C.envid, sizeof(C.envid)))
		C.msg.envid = C.envid;
	if (sc_kv(args, "ret", kv, sizeof(kv)))
		C.msg.ret = !strcmp(kv, "full") ? SMTP_RET_FULL : SMTP_RET_HDRS;
	if (sc_kv(args, "prio", kv, sizeof(kv)))
		C.msg.mt_priority = (int8_t)atoi(kv);
	if (sc_kv(args, "utf8", kv, sizeof(kv)))
		C.msg.smtputf8 = 1;
	if (sc_kv(args, "type", kv, sizeof(kv)))
		C.msg.body_type = !strcmp(kv, "8bitmime") ? SMTP_BODY_8BITMIME :
			!strcmp(kv, "binarymime") ? SMTP_BODY_BINARYMIME :
			SMTP_BODY_7BIT;
	b = strstr(args, "body=");
	if (b) {
		b += 5;
		if (sc_quoted(&b, C.body, &C.msg.body_len) < 0)
			sc_fail("body=\"...\" expected");
		C.msg.body = C.body;
	}
	if (sc_kv(args, "bodysize", kv, sizeof(kv))) {
		C.msg.body_len = strtoul(kv, NULL, 10);
		memset(C.body, 'x', C.msg.body_len);
		C.msg.body = C.body;
	}
}

static void check_result(const char *args)
{
	char who[32], text[SMTP_REPLY_TEXT_MAX];
	int code, n = 0;
	const char *t;
	int rc;
	const char *rt;

	if (sscanf(args, "%31s %d%n", who, &code, &n) < 2)
		sc_fail("result WHO CODE [text]");
	t = args + n;
	while (*t == ' ')
		t++;
	if (!strcmp(who, "msg")) {
		rc = C.msg.code;
		rt = C.msg.text;
	} else {
		unsigned i = (unsigned)atoi(who);

		if (i >= C.msg.n_rcpt)
			sc_fail("no recipient %u", i);
		rc = C.rcpt[i].code;
		rt = C.rcpt[i].text;
		snprintf(text, sizeof(text), "%s %s", C.rcpt[i].enh, rt);
		rt = text;
	}
	if (rc != code)
		sc_fail("result %s: code %d (%s), want %d", who, rc, rt, code);
	if (*t && !strstr(rt, t))
		sc_fail("result %s: '%s' lacks '%s'", who, rt, t);
}

void cli_step(const char *cmd, const char *args)
{
	uint8_t buf[65536];
	size_t n;

	if (!C.now) {
		smtp_client_cfg_defaults(&C.cfg);
		C.cfg.helo_name = "relay.test";
		C.now = T0;
	}
	if (!strcmp(cmd, "config")) {
		char kv[64];

		if (sc_kv(args, "tls", kv, sizeof(kv)))
			C.cfg.tls = !strcmp(kv, "none") ? SMTP_TLS_NONE :
				!strcmp(kv, "required") ? SMTP_TLS_REQUIRED :
				!strcmp(kv, "verify") ? SMTP_TLS_VERIFY :
				SMTP_TLS_OPPORTUNISTIC;
		if (sc_kv(args, "no_pipelining", kv, sizeof(kv)))
			C.cfg.no_pipelining = 1;
		if (sc_kv(args, "no_chunking", kv, sizeof(kv)))
			C.cfg.no_chunking = 1;
		if (sc_kv(args, "chunk", kv, sizeof(kv)))
			C.chunk = strtoul(kv, NULL, 10);
		if (sc_kv(args, "send_max", kv, sizeof(kv)))
			C.send_max = strtoul(kv, NULL, 10);
		return;
	}
	if (!strcmp(cmd, "msg")) {
		msg_setup(args);
		return;
	}
	start();
	if (!strcmp(cmd, "send")) {
		n = sc_unescape(args, strlen(args), buf);
		buf[n++] = '\r';
		buf[n++] = '\n';
		feed(buf, n);
	} else if (!strcmp(cmd, "raw")) {
		const char *p = args;

		if (sc_quoted(&p, buf, &n) < 0)
			sc_fail("raw needs \"...\"");
		feed(buf, n);
	} else if (!strcmp(cmd, "expect")) {
		uint8_t *lf = memchr(C.out, '\n', C.out_len);
		size_t ll, wl = sc_unescape(args, strlen(args), buf);

		if (!lf)
			sc_fail("expected '%s', client wrote nothing (action %s)",
				args, act_name(smtp_client_action(C.c)));
		ll = (size_t)(lf - C.out) + 1;
		if (ll < 2 || C.out[ll - 2] != '\r')
			sc_fail("client line without CRLF");
		if (ll - 2 != wl || memcmp(C.out, buf, wl))
			sc_fail("client wrote '%.*s', want '%s'", (int)(ll - 2),
				C.out, args);
		memmove(C.out, C.out + ll, C.out_len - ll);
		C.out_len -= ll;
	} else if (!strcmp(cmd, "expect-raw")) {
		const char *p = args;

		if (sc_quoted(&p, buf, &n) < 0)
			sc_fail("expect-raw needs \"...\"");
		if (C.out_len < n || memcmp(C.out, buf, n))
			sc_fail("client wrote '%.*s' (%zu octets), want %zu octets",
				(int)(C.out_len > 80 ? 80 : C.out_len), C.out,
				C.out_len, n);
		memmove(C.out, C.out + n, C.out_len - n);
		C.out_len -= n;
	} else if (!strcmp(cmd, "no-output")) {
		if (C.out_len)
			sc_fail("unexpected client output '%.*s'",
				(int)(C.out_len > 80 ? 80 : C.out_len), C.out);
	} else if (!strcmp(cmd, "flush")) {
		if (C.last_lines != (unsigned)atoi(args))
			sc_fail("last write held %u lines, want %s",
				C.last_lines, args);
	} else if (!strcmp(cmd, "event")) {
		if (strcmp(act_name(smtp_client_action(C.c)), args))
			sc_fail("client action %s, want %s",
				act_name(smtp_client_action(C.c)), args);
	} else if (!strcmp(cmd, "reason")) {
		if (!strstr(smtp_client_close_reason(C.c), args))
			sc_fail("close reason '%s' lacks '%s'",
				smtp_client_close_reason(C.c), args);
	} else if (!strcmp(cmd, "submit")) {
		int r = smtp_client_send(C.c, &C.msg, C.now);

		if (r < 0)
			sc_fail("smtp_client_send: %s", smtp_err_strerror(r));
		drain();
	} else if (!strcmp(cmd, "submit-bad")) {
		if (smtp_client_send(C.c, &C.msg, C.now) == 0)
			sc_fail("smtp_client_send accepted");
	} else if (!strcmp(cmd, "quit")) {
		if (smtp_client_quit(C.c, C.now) < 0)
			sc_fail("smtp_client_quit refused");
		drain();
	} else if (!strcmp(cmd, "tls-done")) {
		if (smtp_client_tls_done(C.c, C.now) < 0)
			sc_fail("tls_done refused");
		drain();
	} else if (!strcmp(cmd, "tls-failed")) {
		if (smtp_client_tls_failed(C.c, args, C.now) < 0)
			sc_fail("tls_failed refused");
		drain();
	} else if (!strcmp(cmd, "result")) {
		check_result(args);
	} else if (!strcmp(cmd, "clock")) {
		C.now += strtoull(args[0] == '+' ? args + 1 : args, NULL, 10) * 1000;
		smtp_client_tick(C.c, C.now);
		drain();
	} else if (!strcmp(cmd, "ext-has")) {
		unsigned e = smtp_client_ext(C.c);

		if (!strcmp(args, "PIPELINING") ? !(e & SMTP_EXT_PIPELINING) :
		    !strcmp(args, "CHUNKING") ? !(e & SMTP_EXT_CHUNKING) :
		    !strcmp(args, "SIZE") ? !(e & SMTP_EXT_SIZE) : 1)
			sc_fail("extension %s not seen", args);
	} else {
		sc_fail("unknown client directive '%s'", cmd);
	}
}

void cli_end(void)
{
	if (C.out_len)
		sc_fail("unchecked client output at end: '%.*s'",
			(int)(C.out_len > 80 ? 80 : C.out_len), C.out);
	smtp_client_free(C.c);
}
