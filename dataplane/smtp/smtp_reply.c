/*
 * smtp_reply.c - output buffer, reply formatting and reply parsing
 * (RFC 5321 4.2, RFC 3463/2034 enhanced codes); see smtp_reply.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_err.h"
#include "smtp_reply.h"

/* smtp_reply_out_init - allocate the fixed output buffer */
int smtp_reply_out_init(struct smtp_reply_out *o, size_t cap)
{
	o->buf = malloc(cap);
	o->cap = o->buf ? cap : 0;
	o->off = o->len = 0;
	return o->buf ? 0 : -SMTP_ENOMEM;
}

void smtp_reply_out_free(struct smtp_reply_out *o)
{
	free(o->buf);
	o->buf = NULL;
	o->cap = o->off = o->len = 0;
}

size_t smtp_reply_out_space(const struct smtp_reply_out *o)
{
	return o->cap - (o->len - o->off);
}

size_t smtp_reply_out_peek(const struct smtp_reply_out *o, const uint8_t **p)
{
	*p = o->buf + o->off;
	return o->len - o->off;
}

void smtp_reply_out_consume(struct smtp_reply_out *o, size_t n)
{
	if (n > o->len - o->off)
		n = o->len - o->off;
	o->off += n;
	if (o->off == o->len)
		o->off = o->len = 0;
}

/* make_room - compact so that n bytes fit at the end */
static int make_room(struct smtp_reply_out *o, size_t n)
{
	if (o->cap - o->len >= n)
		return 0;
	if (smtp_reply_out_space(o) < n)
		return -SMTP_ENOMEM;
	memmove(o->buf, o->buf + o->off, o->len - o->off);
	o->len -= o->off;
	o->off = 0;
	return 0;
}

int smtp_reply_out_put(struct smtp_reply_out *o, const void *p, size_t n)
{
	if (make_room(o, n) < 0)
		return -SMTP_ENOMEM;
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

/* smtp_reply_put - format one (possibly multi-line) reply */
int smtp_reply_put(struct smtp_reply_out *o, int code, const char *enh,
		   const char *text, size_t len)
{
	size_t enl = enh && *enh ? strlen(enh) : 0, lines = 1, i, need;
	uint8_t *w;

	if (code < 200 || code > 599 || enl > 15)
		return -SMTP_EINVAL;
	for (i = 0; i < len; i++)
		if (text[i] == '\n')
			lines++;
	need = len + lines * (4 + (enl ? enl + 1 : 0) + 2);
	if (make_room(o, need) < 0)
		return -SMTP_ENOMEM;
	w = o->buf + o->len;
	for (i = 0;;) {
		size_t e = i;

		while (e < len && text[e] != '\n')
			e++;
		w[0] = (uint8_t)('0' + code / 100);
		w[1] = (uint8_t)('0' + code / 10 % 10);
		w[2] = (uint8_t)('0' + code % 10);
		w[3] = e < len ? '-' : ' ';
		w += 4;
		if (enl) {
			memcpy(w, enh, enl);
			w[enl] = ' ';
			w += enl + 1;
		}
		for (; i < e; i++) {
			uint8_t c = (uint8_t)text[i];

			*w++ = (c < 32 || c == 127) ? ' ' : c;
		}
		*w++ = '\r';
		*w++ = '\n';
		if (e >= len)
			break;
		i = e + 1;
	}
	o->len = (size_t)(w - o->buf);
	return 0;
}

/* smtp_reply_printf - formatted reply (rare paths) */
int smtp_reply_printf(struct smtp_reply_out *o, int code, const char *enh,
		      const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -SMTP_EINVAL;
	if ((size_t)n >= sizeof(tmp))
		n = sizeof(tmp) - 1;
	return smtp_reply_put(o, code, enh, tmp, (size_t)n);
}

/* smtp_reply_parse_reset - forget the reply, ready for the next */
void smtp_reply_parse_reset(struct smtp_reply *r)
{
	r->code = 0;
	r->enh[0] = '\0';
	r->text[0] = '\0';
	r->text_len = 0;
	r->lines = 0;
	r->line_len = 0;
	r->overflow = 0;
}

/* smtp_reply_enh - RFC 3463 class.subject.detail at the start of text */
size_t smtp_reply_enh(const char *t, size_t n, int class_digit, char enh[16])
{
	size_t i = 0, parts = 0, d;

	if (n < 6 || t[0] != '0' + class_digit || t[1] != '.')
		return 0;
	while (parts < 3) {
		d = 0;
		while (i < n && t[i] >= '0' && t[i] <= '9' && d < 3) {
			i++;
			d++;
		}
		if (d == 0 || (i < n && t[i] >= '0' && t[i] <= '9'))
			return 0;
		parts++;
		if (parts < 3) {
			if (i >= n || t[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < n && t[i] != ' ')
		return 0;
	memcpy(enh, t, i);
	enh[i] = '\0';
	return i < n ? i + 1 : i;
}

/* line_done - one complete reply line in r->line; 1 if it was the last */
static int line_done(struct smtp_reply *r)
{
	const char *l = r->line;
	size_t n = r->line_len, k;
	int code;

	if (n && l[n - 1] == '\r')
		n--;
	if (n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '5' ||
	    l[2] < '0' || l[2] > '9' || (n > 3 && l[3] != ' ' && l[3] != '-'))
		return -SMTP_EREPLY;
	code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (r->lines && code != r->code)
		return -SMTP_EREPLY;
	if (++r->lines > SMTP_REPLY_LINES_MAX)
		return -SMTP_EREPLY;
	r->code = code;
	l += n > 3 ? 4 : 3;
	n -= n > 3 ? 4 : 3;
	if (r->lines == 1)
		(void)smtp_reply_enh(l, n, r->code / 100, r->enh);
	if (r->lines > 1 && r->text_len + 1 < sizeof(r->text))
		r->text[r->text_len++] = '\n';
	k = sizeof(r->text) - 1 - r->text_len;
	if (n < k)
		k = n;
	memcpy(r->text + r->text_len, l, k);
	r->text_len += k;
	r->text[r->text_len] = '\0';
	return r->line_len <= 3 || r->line[3] != '-';
}

/* smtp_reply_parse - incremental multi-line reply parser */
ssize_t smtp_reply_parse(struct smtp_reply *r, const uint8_t *in, size_t n,
			 int *complete)
{
	size_t i = 0;

	*complete = 0;
	while (i < n) {
		const uint8_t *lf = memchr(in + i, '\n', n - i);
		size_t take = lf ? (size_t)(lf - (in + i)) : n - i;
		int last;

		if (r->line_len + take > SMTP_REPLY_LINE_MAX)
			return -SMTP_EREPLY;
		memcpy(r->line + r->line_len, in + i, take);
		r->line_len += take;
		i += take;
		if (!lf)
			break;
		i++; /* the LF */
		last = line_done(r);
		r->line_len = 0;
		if (last < 0)
			return last;
		if (last) {
			*complete = 1;
			break;
		}
	}
	return (ssize_t)i;
}
