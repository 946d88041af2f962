/*
 * sb_msg.h - what sluice-bench sends: message sizes, bodies and the
 * X-Sluice-Bench stamp.
 *
 * Size specs (--size):
 *   N            fixed, e.g. 1k, 100k, 2m (k = 1024)
 *   A-B          uniform between A and B, e.g. 1k-64k
 *   mix:NAME     a named mix (see SB_MIXES in sb_msg.c):
 *                  small     80% 1-4k, 15% 4-16k, 5% 16-64k
 *                  realistic 60% 1-8k, 25% 8-32k, 10% 32-128k,
 *                            4% 100-500k, 1% 1m-5m
 *   mix:W@A-B,W@N,...  weighted ranges of your own (weights need not sum
 *                to 100), e.g. mix:90@2k-8k,9@100k,1@2m
 * The size is the whole message (headers + body) give or take one line.
 *
 * Stamp: one header line per message
 *   X-Sluice-Bench: <run-id> <seq> <sha256-hex-of-body> <send-time-us>
 * where the body is every byte after the blank line that ends the headers
 * (CRLF line ends, after dot-unstuffing) and send-time is the generator's
 * intended start of the message, CLOCK_REALTIME microseconds, so a sink can
 * compute time-to-delivery.
 *
 * Bodies are slices of one pseudo-random text block (76 letters + CRLF per
 * line, never a leading '.'), at an offset that depends on seq, so every
 * message's digest differs.
 */
#ifndef SB_MSG_H
#define SB_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "sb_util.h"

#define SB_STAMP_HDR "X-Sluice-Bench:"
#define SB_LINE 78 /* body line incl. CRLF */

struct sb_size_range {
	double weight;
	uint64_t lo, hi;
};

struct sb_sizes {
	struct sb_size_range r[16];
	int n;
	double total;
	uint64_t max;
};

/* sb_sizes_parse - 0 or -1 with a reason in err */
int sb_sizes_parse(struct sb_sizes *s, const char *spec, char *err, size_t errlen);
uint64_t sb_sizes_pick(const struct sb_sizes *s, uint64_t *rng);

struct sb_body {
	char *text;
	size_t nlines;
};

void sb_body_init(struct sb_body *b, uint64_t max_size, uint64_t seed);
/* sb_body_slice - body for message seq with about body_len bytes (>= one
 * line, whole lines) */
const char *sb_body_slice(const struct sb_body *b, uint64_t seq, size_t body_len, size_t *out_len);

/* sb_sha256 - 32-byte digest */
void sb_sha256(const void *p, size_t n, uint8_t out[32]);
void sb_hex(const uint8_t *p, size_t n, char *out);

struct sb_stamp {
	char run[40];
	uint64_t seq;
	uint8_t digest[32];
	uint64_t wall_us;
};

/* sb_stamp_parse - parse the value after "X-Sluice-Bench:"; 0 or -1 */
int sb_stamp_parse(const char *v, size_t n, struct sb_stamp *st);

#endif
