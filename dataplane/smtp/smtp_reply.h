/*
 * smtp_reply.h - SMTP replies (RFC 5321 4.2): the bounded output buffer
 * the engines write into, reply formatting (server), and an incremental
 * reply parser (client).
 *
 * Output buffer: linear, fixed capacity chosen at init; the owner reads
 * with smtp_reply_out_peek() and releases with smtp_reply_out_consume()
 * (what net_send took); free space is compacted on demand. Writers check
 * smtp_reply_out_space() first: a write that does not fit fails whole
 * (-SMTP_ENOMEM) and leaves the buffer unchanged.
 *
 * Parser: feeds bytes, returns how many it used; a reply is complete when
 * its last line ("DDD " or "DDD") arrived. Lines may end in CRLF or LF
 * (liberal in what a client accepts). Limits: SMTP_REPLY_LINE_MAX per
 * line, SMTP_REPLY_LINES_MAX lines; text kept up to SMTP_REPLY_TEXT_MAX
 * (the rest is counted, not stored). Malformed: -SMTP_EREPLY.
 */
#ifndef SMTP_REPLY_H
#define SMTP_REPLY_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SMTP_REPLY_LINE_MAX	2048
#define SMTP_REPLY_LINES_MAX	256
#define SMTP_REPLY_TEXT_MAX	1024

struct smtp_reply_out {
	uint8_t *buf;
	size_t cap;
	size_t off;	/* first unsent byte */
	size_t len;	/* end of data */
};

/* smtp_reply_out_init - allocate cap bytes; -SMTP_ENOMEM */
int smtp_reply_out_init(struct smtp_reply_out *o, size_t cap);
void smtp_reply_out_free(struct smtp_reply_out *o);
/* smtp_reply_out_space - bytes a write can take now */
size_t smtp_reply_out_space(const struct smtp_reply_out *o);
/* smtp_reply_out_pending - bytes waiting to be sent */
static inline size_t smtp_reply_out_pending(const struct smtp_reply_out *o)
{
	return o->len - o->off;
}
/* smtp_reply_out_peek - pointer to the pending bytes; returns the count */
size_t smtp_reply_out_peek(const struct smtp_reply_out *o, const uint8_t **p);
/* smtp_reply_out_consume - n pending bytes were sent */
void smtp_reply_out_consume(struct smtp_reply_out *o, size_t n);
/* smtp_reply_out_put - append raw bytes; -SMTP_ENOMEM if they do not fit */
int smtp_reply_out_put(struct smtp_reply_out *o, const void *p, size_t n);

/* smtp_reply_put - write "code[ enh] text" as one reply; '\n' in text
 * separates lines of a multi-line reply ("250-..."); enh may be NULL;
 * control characters in text become spaces. -SMTP_ENOMEM */
int smtp_reply_put(struct smtp_reply_out *o, int code, const char *enh,
		   const char *text, size_t len);
/* smtp_reply_printf - smtp_reply_put with a format */
int smtp_reply_printf(struct smtp_reply_out *o, int code, const char *enh,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

struct smtp_reply {
	int code;			/* 200..599 once complete */
	char enh[16];			/* "x.y.z" of the first line, or "" */
	char text[SMTP_REPLY_TEXT_MAX];	/* lines' text joined by '\n' */
	size_t text_len;
	unsigned lines;
	/* parser state */
	char line[SMTP_REPLY_LINE_MAX + 2];
	size_t line_len;
	uint8_t overflow;
};

/* smtp_reply_parse_reset - ready for the next reply */
void smtp_reply_parse_reset(struct smtp_reply *r);
/* smtp_reply_parse - consume bytes of one reply; returns bytes used
 * (stops right after a complete reply and sets *complete = 1), or
 * -SMTP_EREPLY on a malformed reply */
ssize_t smtp_reply_parse(struct smtp_reply *r, const uint8_t *in, size_t n,
			 int *complete);
/* smtp_reply_enh - extract "x.y.z " at the start of text matching the
 * class digit; returns its length incl. the space, 0 if absent */
size_t smtp_reply_enh(const char *text, size_t n, int class_digit,
		      char enh[16]);

#endif
