/*
 * buf.h - a growing text buffer for the control plane's answers (JSON
 * responses in ctlcmd*.c, the Prometheus exposition and HTTP answers in
 * metrics.c). Header only: static inline, so no short names leak into
 * sluiced's link.
 *
 * struct buf starts zeroed ({ 0 }); b->p is malloc'd, NUL terminated
 * after the first byte added; the caller frees it. A failure (out of
 * memory, or more than CTLCMD_OUT_MAX bytes) sets b->fail and makes
 * every later call a no-op, so callers check once at the end.
 */
#ifndef SLUICE_BUF_H
#define SLUICE_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlcmd.h"

struct buf {
	char *p;
	size_t n, cap;
	bool fail;       /* out of memory or above CTLCMD_OUT_MAX */
};

/* buf_reserve - room for n more bytes and a NUL; 0 or -1 (b->fail) */
static inline int buf_reserve(struct buf *b, size_t n)
{
	if (b->fail)
		return -1;
	if (n > CTLCMD_OUT_MAX || b->n + n > CTLCMD_OUT_MAX) {
		b->fail = true;
		return -1;
	}
	if (b->n + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap : 1024;
		char *q;

		while (c < b->n + n + 1)
			c *= 2;
		if (!(q = realloc(b->p, c))) {
			b->fail = true;
			return -1;
		}
		b->p = q;
		b->cap = c;
	}
	return 0;
}

/* buf_add - append n bytes (keeps a NUL after them) */
static inline void buf_add(struct buf *b, const void *s, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return;
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

/* buf_printf - append printf output of any length */
static inline void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline void buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (k < 0)
		return;
	if ((size_t)k < sizeof(tmp)) {
		buf_add(b, tmp, (size_t)k);
		return;
	}
	char *big = malloc((size_t)k + 1);

	if (!big) {
		b->fail = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)k + 1, fmt, ap);
	va_end(ap);
	buf_add(b, big, (size_t)k);
	free(big);
}

#endif
