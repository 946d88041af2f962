/*
 * smtp_body.h - one-pass message body processing.
 *
 * Server side (smtp_body_scan): copy + remove dot-stuffing (RFC 5321
 * 4.5.2) + line-length check + end detection in one pass over the input,
 * CR/LF located 16/32 bytes at a time (SSE2/AVX2) like memchr.
 *   - Only <CRLF>.<CRLF> ends DATA (RFC 5321 4.1.1.4). A bare LF or a bare
 *     CR anywhere (incl. \n.\n, \n.\r\n, \r.\r, \r\n.\r, \r\n.\n, \r\r\n)
 *     never ends DATA, never counts as a line start, and is flagged
 *     (SMTP_BODY_F_BARE_LF / _BARE_CR) so the engine refuses the message
 *     once the real end arrives (SMTP smuggling, CVE-2023-51764 family).
 *   - Body bytes go to a growable buffer (caller's realloc, hard cap
 *     max); past the cap scanning continues (to find the end) but nothing
 *     is stored and SMTP_BODY_F_TOO_BIG is set.
 *   - `head` bytes are reserved in front of the body for a Received header
 *     (smtp_body_prepend), so the message is contiguous without a memmove.
 * Modes: DATA (dot handling + end), TEXT (BDAT of 7bit/8bitmime bodies:
 * line checks only), BINARY (BDAT BODY=BINARYMIME: verbatim copy).
 *
 * Client side: smtp_body_bare() finds bare CR/LF, smtp_body_stuff_span()
 * cuts a body into spans between which one '.' is inserted (dot-stuffing).
 */
#ifndef SMTP_BODY_H
#define SMTP_BODY_H

#include <stddef.h>
#include <stdint.h>

enum smtp_body_mode {
	SMTP_BODY_MODE_DATA = 0,
	SMTP_BODY_MODE_TEXT,
	SMTP_BODY_MODE_BINARY,
};

#define SMTP_BODY_F_BARE_LF	0x01
#define SMTP_BODY_F_BARE_CR	0x02
#define SMTP_BODY_F_LONG_LINE	0x04
#define SMTP_BODY_F_TOO_BIG	0x08
#define SMTP_BODY_F_NOMEM	0x10	/* realloc failed below the cap */

typedef void *(*smtp_realloc_fn)(void *p, size_t n);

struct smtp_body {
	uint8_t *buf;		/* head bytes reserved, then the body */
	size_t head;		/* reserved in front */
	size_t len;		/* body bytes stored after head */
	size_t cap;		/* allocated bytes in buf */
	uint64_t max;		/* hard cap on len */
	uint64_t total;		/* body bytes seen (stored or not) */
	size_t max_line;	/* longest line allowed, incl. CRLF */
	size_t line_len;	/* length of the current line so far */
	uint8_t st;		/* scanner state (smtp_body.c) */
	uint8_t mode;		/* enum smtp_body_mode */
	uint8_t flags;		/* SMTP_BODY_F_* */
	smtp_realloc_fn realloc_fn;	/* realloc(p, 0) is never called */
	void (*free_fn)(void *p);
};

/* smtp_body_init - set limits; no allocation until data arrives */
void smtp_body_init(struct smtp_body *b, size_t head, uint64_t max,
		    size_t max_line, smtp_realloc_fn realloc_fn,
		    void (*free_fn)(void *));
/* smtp_body_start - begin a message in the given mode (keeps the buffer) */
void smtp_body_start(struct smtp_body *b, enum smtp_body_mode mode);
/* smtp_body_mode - switch mode between BDAT chunks (line state kept) */
void smtp_body_mode(struct smtp_body *b, enum smtp_body_mode mode);
/* smtp_body_scan - process in[0..n); returns bytes consumed; *done = 1
 * when DATA's <CRLF>.<CRLF> was consumed (never in TEXT/BINARY mode) */
size_t smtp_body_scan(struct smtp_body *b, const uint8_t *in, size_t n,
		      int *done);
/* smtp_body_finish - end of a BDAT message: flag a trailing bare CR */
void smtp_body_finish(struct smtp_body *b);
/* smtp_body_prepend - put hdr[0..n) right in front of the body; returns
 * the start of the contiguous message, NULL if n > head */
uint8_t *smtp_body_prepend(struct smtp_body *b, const void *hdr, size_t n);
/* smtp_body_free - release the buffer */
void smtp_body_free(struct smtp_body *b);

/* smtp_body_bare - 1 if p[0..n) holds a CR not followed by LF or an LF not
 * preceded by CR */
int smtp_body_bare(const uint8_t *p, size_t n);
/* smtp_body_stuff_span - from pos, the end of the next span to send as is:
 * returns e (pos < e <= n); if e < n, p[e] is a '.' after an LF and the
 * sender must emit one extra '.' before continuing at e. A '.' at offset
 * 0 is not reported: the sender stuffs it before the first call. */
size_t smtp_body_stuff_span(const uint8_t *p, size_t n, size_t pos);

#endif
