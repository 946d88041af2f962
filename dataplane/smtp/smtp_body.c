/*
 * smtp_body.c - one-pass body scanner (server) and dot-stuffing helpers
 * (client); contract in smtp_body.h.
 *
 * Scanner states (persist across calls, so any split of the input gives
 * the same result):
 *   BOL    at the start of a line (only after CRLF, never after a bare LF)
 *   MID    inside a line
 *   CR     saw CR, need LF (anything else: bare CR)
 *   DOT    BOL then '.', dot already dropped (DATA mode)
 *   DOTCR  BOL '.' CR: an LF now ends DATA
 */
#include <string.h>
#if defined(__AVX2__) || defined(__SSE2__)
#include <immintrin.h>
#endif

#include "smtp_body.h"

enum { ST_BOL, ST_MID, ST_CR, ST_DOT, ST_DOTCR };

/* find_crlf - first CR or LF in [p, end), or end */
static inline const uint8_t *find_crlf(const uint8_t *p, const uint8_t *end)
{
#if defined(__AVX2__)
	const __m256i cr = _mm256_set1_epi8('\r'), lf = _mm256_set1_epi8('\n');

	while (end - p >= 32) {
		__m256i v = _mm256_loadu_si256((const __m256i *)p);
		unsigned m = (unsigned)_mm256_movemask_epi8(_mm256_or_si256(
			_mm256_cmpeq_epi8(v, cr), _mm256_cmpeq_epi8(v, lf)));

		if (m)
			return p + __builtin_ctz(m);
		p += 32;
	}
#endif
#if defined(__SSE2__)
	{
		const __m128i c16 = _mm_set1_epi8('\r');
		const __m128i l16 = _mm_set1_epi8('\n');

		while (end - p >= 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)p);
			unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(
				_mm_cmpeq_epi8(v, c16), _mm_cmpeq_epi8(v, l16)));

			if (m)
				return p + __builtin_ctz(m);
			p += 16;
		}
	}
#endif
	while (p < end && *p != '\r' && *p != '\n')
		p++;
	return p;
}

/* smtp_body_init - limits and allocator; the buffer comes on first use */
void smtp_body_init(struct smtp_body *b, size_t head, uint64_t max,
		    size_t max_line, smtp_realloc_fn realloc_fn,
		    void (*free_fn)(void *))
{
	memset(b, 0, sizeof(*b));
	b->head = head;
	b->max = max;
	b->max_line = max_line;
	b->realloc_fn = realloc_fn;
	b->free_fn = free_fn;
}

/* smtp_body_start - reset for a new message, keeping the allocation */
void smtp_body_start(struct smtp_body *b, enum smtp_body_mode mode)
{
	b->len = 0;
	b->total = 0;
	b->line_len = 0;
	b->st = ST_BOL;
	b->mode = (uint8_t)mode;
	b->flags = 0;
}

/* smtp_body_mode - BDAT chunks may differ in nothing but keep line state */
void smtp_body_mode(struct smtp_body *b, enum smtp_body_mode mode)
{
	b->mode = (uint8_t)mode;
}

/* append - store p[0..n) under the hard cap, growing geometrically */
static void append(struct smtp_body *b, const uint8_t *p, size_t n)
{
	size_t need;

	b->total += n;
	if (b->flags & (SMTP_BODY_F_TOO_BIG | SMTP_BODY_F_NOMEM) || n == 0)
		return;
	if (b->len + n > b->max) {
		b->flags |= SMTP_BODY_F_TOO_BIG;
		return;
	}
	need = b->head + b->len + n;
	if (need > b->cap) {
		size_t ncap = b->cap ? b->cap : 16384;
		size_t lim = b->head + (size_t)b->max;
		uint8_t *nb;

		while (ncap < need)
			ncap *= 2;
		if (ncap > lim)
			ncap = lim;
		nb = b->realloc_fn(b->buf, ncap);
		if (!nb) {
			b->flags |= SMTP_BODY_F_NOMEM;
			return;
		}
		b->buf = nb;
		b->cap = ncap;
	}
	memcpy(b->buf + b->head + b->len, p, n);
	b->len += n;
}

/* line_end - a CRLF closed a line: RFC 5321 4.5.3.1.6 length check */
static inline void line_end(struct smtp_body *b)
{
	if (b->line_len + 2 > b->max_line)
		b->flags |= SMTP_BODY_F_LONG_LINE;
	b->line_len = 0;
}

/* smtp_body_scan - the one-pass copy/unstuff/check/end scanner */
size_t smtp_body_scan(struct smtp_body *b, const uint8_t *in, size_t n,
		      int *done)
{
	const uint8_t *p = in, *end = in + n, *run = in, *q;
	int dots = b->mode == SMTP_BODY_MODE_DATA;

	*done = 0;
	if (b->mode == SMTP_BODY_MODE_BINARY) {
		append(b, in, n);
		return n;
	}
	while (p < end) {
		switch (b->st) {
		case ST_BOL:
			if (dots && *p == '.') {
				/* drop the stuffed (or terminating) dot */
				append(b, run, (size_t)(p - run));
				run = ++p;
				b->line_len = 1;
				b->st = ST_DOT;
				continue;
			}
			b->st = ST_MID;
			/* fall through */
		case ST_MID:
			for (;;) {
				q = find_crlf(p, end);
				b->line_len += (size_t)(q - p);
				/* fast path: a whole CRLF-terminated line */
				if (q + 1 < end && q[0] == '\r' && q[1] == '\n') {
					line_end(b);
					p = q + 2;
					if (p < end && (*p != '.' || !dots))
						continue;
					b->st = ST_BOL;
					break;
				}
				p = q;
				if (p == end)
					break;
				if (*p == '\r') {
					b->st = ST_CR;
				} else {
					/* bare LF: not a line start */
					b->flags |= SMTP_BODY_F_BARE_LF;
					b->line_len = 0;
				}
				p++;
				break;
			}
			continue;
		case ST_CR:
			if (*p == '\n') {
				p++;
				line_end(b);
				b->st = ST_BOL;
			} else {
				b->flags |= SMTP_BODY_F_BARE_CR;
				b->line_len++;
				b->st = ST_MID;
			}
			continue;
		case ST_DOT:
			if (*p == '\r') {
				append(b, run, (size_t)(p - run));
				run = ++p;
				b->st = ST_DOTCR;
			} else {
				b->st = ST_MID;
			}
			continue;
		case ST_DOTCR:
			if (*p == '\n') {
				/* <CRLF>.<CRLF>: the only end of DATA */
				p++;
				b->st = ST_BOL;
				*done = 1;
				return (size_t)(p - in);
			}
			b->flags |= SMTP_BODY_F_BARE_CR;
			b->st = ST_MID;
			continue;
		}
	}
	append(b, run, (size_t)(p - run));
	return n;
}

/* smtp_body_finish - end of a BDAT message: a trailing CR is bare */
void smtp_body_finish(struct smtp_body *b)
{
	if (b->mode != SMTP_BODY_MODE_BINARY && b->st == ST_CR)
		b->flags |= SMTP_BODY_F_BARE_CR;
}

/* smtp_body_prepend - Received header into the reserved head room */
uint8_t *smtp_body_prepend(struct smtp_body *b, const void *hdr, size_t n)
{
	if (n > b->head)
		return NULL;
	if (!b->buf) {
		b->buf = b->realloc_fn(NULL, b->head ? b->head : 1);
		if (!b->buf)
			return NULL;
		b->cap = b->head;
	}
	memcpy(b->buf + b->head - n, hdr, n);
	return b->buf + b->head - n;
}

/* smtp_body_free - release the buffer */
void smtp_body_free(struct smtp_body *b)
{
	if (b->buf)
		b->free_fn(b->buf);
	b->buf = NULL;
	b->cap = 0;
}

/* smtp_body_bare - any CR without LF after it, or LF without CR before */
int smtp_body_bare(const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n, *q = p;

	while ((q = find_crlf(q, end)) < end) {
		if (*q == '\n' || q + 1 == end || q[1] != '\n')
			return 1;
		q += 2;
	}
	return 0;
}

/* smtp_body_stuff_span - next '.' at a line start at or after pos */
size_t smtp_body_stuff_span(const uint8_t *p, size_t n, size_t pos)
{
	const uint8_t *q;

	if (pos >= n)
		return n;
	q = p + pos;
	/* a '.' at pos itself (and at offset 0) is the caller's business */
	while ((q = memchr(q, '\n', (size_t)(p + n - q))) != NULL) {
		q++;
		if (q < p + n && *q == '.')
			return (size_t)(q - p);
	}
	return n;
}
