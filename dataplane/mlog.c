/*
 * mlog.c - Postfix-style mail log lines (mlog.h).
 *
 * Input: session facts. Output: one line in a caller buffer.
 * Invariant: the output holds only printable ASCII, whatever the client
 * sent; it is NUL-terminated and never longer than cap - 1.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mlog.h"

struct mlog_buf {
	char *p;
	size_t cap, len;
	int trunc;
};

static void mlog_putc(struct mlog_buf *b, char ch)
{
	if (b->len + 1 < b->cap)
		b->p[b->len++] = ch;
	else
		b->trunc = 1;
	if (b->cap)
		b->p[b->len] = '\0';
}

/* mlog_puts - client-supplied text: anything unprintable becomes '?' */
static void mlog_puts(struct mlog_buf *b, const char *s)
{
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		mlog_putc(b, ch >= 0x20 && ch < 0x7f ? (char)ch : '?');
	}
}

static void mlog_printf(struct mlog_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void mlog_printf(struct mlog_buf *b, const char *fmt, ...)
{
	char tmp[MLOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	mlog_puts(b, tmp);
}

static size_t mlog_end(struct mlog_buf *b)
{
	if (b->trunc && b->cap > 4) {
		memcpy(b->p + b->cap - 4, "...", 4);
		b->len = b->cap - 1;
	}
	return b->len;
}

static void mlog_init(struct mlog_buf *b, char *buf, size_t cap)
{
	b->p = buf;
	b->cap = cap;
	b->len = 0;
	b->trunc = 0;
	if (cap)
		buf[0] = '\0';
}

/* mlog_peer - host[addr] */
static void mlog_peer(struct mlog_buf *b, const struct mlog_client *c)
{
	mlog_puts(b, c->host && c->host[0] ? c->host : "unknown");
	mlog_putc(b, '[');
	mlog_puts(b, c->addr);
	mlog_putc(b, ']');
}

size_t mlog_connect(char *buf, size_t cap, const struct mlog_client *c)
{
	struct mlog_buf b;

	mlog_init(&b, buf, cap);
	mlog_puts(&b, "connect from ");
	mlog_peer(&b, c);
	return mlog_end(&b);
}

size_t mlog_disconnect(char *buf, size_t cap, const struct mlog_client *c,
		       const char *counts)
{
	struct mlog_buf b;

	mlog_init(&b, buf, cap);
	mlog_puts(&b, "disconnect from ");
	mlog_peer(&b, c);
	if (counts && *counts) {
		mlog_putc(&b, ' ');
		mlog_puts(&b, counts);
	}
	return mlog_end(&b);
}

size_t mlog_qclient(char *buf, size_t cap, const char *qid,
		    const struct mlog_client *c, const char *sasl_user)
{
	struct mlog_buf b;

	mlog_init(&b, buf, cap);
	mlog_puts(&b, qid);
	mlog_puts(&b, ": client=");
	mlog_peer(&b, c);
	if (sasl_user && *sasl_user) {
		mlog_puts(&b, ", sasl_method=PLAIN, sasl_username=");
		mlog_puts(&b, sasl_user);
	}
	return mlog_end(&b);
}

size_t mlog_from(char *buf, size_t cap, const char *qid, const char *from,
		 uint64_t size, unsigned nrcpt)
{
	struct mlog_buf b;

	mlog_init(&b, buf, cap);
	mlog_puts(&b, qid);
	mlog_puts(&b, ": from=<");
	mlog_puts(&b, from);
	mlog_printf(&b, ">, size=%" PRIu64 ", nrcpt=%u (queue active)", size,
		    nrcpt);
	return mlog_end(&b);
}

size_t mlog_reject(char *buf, size_t cap, const char *qid, const char *stage,
		   const struct mlog_client *c, int code, const char *enh,
		   const char *text, const char *from, const char *to,
		   int esmtp, const char *helo)
{
	struct mlog_buf b;

	mlog_init(&b, buf, cap);
	mlog_puts(&b, qid && *qid ? qid : "NOQUEUE");
	mlog_puts(&b, ": reject: ");
	mlog_puts(&b, stage);
	mlog_puts(&b, " from ");
	mlog_peer(&b, c);
	mlog_printf(&b, ": %d ", code);
	if (enh && *enh) {
		mlog_puts(&b, enh);
		mlog_putc(&b, ' ');
	}
	mlog_puts(&b, text);
	mlog_putc(&b, ';');
	if (from) {
		mlog_puts(&b, " from=<");
		mlog_puts(&b, from);
		mlog_putc(&b, '>');
	}
	if (to) {
		mlog_puts(&b, " to=<");
		mlog_puts(&b, to);
		mlog_putc(&b, '>');
	}
	mlog_puts(&b, esmtp ? " proto=ESMTP" : " proto=SMTP");
	mlog_puts(&b, " helo=<");
	mlog_puts(&b, helo);
	mlog_putc(&b, '>');
	return mlog_end(&b);
}

size_t mlog_delivery(char *buf, size_t cap, const char *qid, const char *to,
		     const char *relay, double delay_s, const char *dsn,
		     const char *status, const char *reply)
{
	struct mlog_buf b;

	mlog_init(&b, buf, cap);
	mlog_puts(&b, qid);
	mlog_puts(&b, ": to=<");
	mlog_puts(&b, to);
	mlog_puts(&b, ">, relay=");
	mlog_puts(&b, relay && *relay ? relay : "none");
	mlog_printf(&b, ", delay=%.2f, dsn=", delay_s);
	mlog_puts(&b, dsn && *dsn ? dsn : "4.0.0");
	mlog_puts(&b, ", status=");
	mlog_puts(&b, status);
	mlog_puts(&b, " (");
	mlog_puts(&b, reply);
	mlog_putc(&b, ')');
	return mlog_end(&b);
}

size_t mlog_event(char *buf, size_t cap, const char *qid, const char *what)
{
	struct mlog_buf b;

	mlog_init(&b, buf, cap);
	mlog_puts(&b, qid);
	mlog_puts(&b, ": ");
	mlog_puts(&b, what);
	return mlog_end(&b);
}
