/*
 * sb_util.h - small helpers shared by sluice-bench's generator and sink:
 * clocks, a growable byte buffer, a seeded PRNG, size/duration parsing,
 * fatal errors and a per-second time series.
 *
 * Clocks are microseconds: sb_now_us() is CLOCK_MONOTONIC (all latency
 * arithmetic), sb_wall_us() is CLOCK_REALTIME (only for the timestamp the
 * generator writes into a message so a sink in another process can compute
 * time-to-delivery).
 */
#ifndef SB_UTIL_H
#define SB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint64_t sb_now_us(void);
uint64_t sb_wall_us(void);

/* sb_die - print "sluice-bench: ..." and exit(2); for start-up errors */
void sb_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* growable buffer; data[off..len) is the unread/unsent part */
struct sb_buf {
	char *data;
	size_t off, len, cap;
};

void sb_buf_reserve(struct sb_buf *b, size_t extra);
void sb_buf_append(struct sb_buf *b, const void *p, size_t n);
void sb_buf_printf(struct sb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_buf_consume(struct sb_buf *b, size_t n);
static inline size_t sb_buf_avail(const struct sb_buf *b) { return b->len - b->off; }
static inline char *sb_buf_head(const struct sb_buf *b) { return b->data + b->off; }
void sb_buf_free(struct sb_buf *b);

/* splitmix64 PRNG: deterministic for a given seed */
static inline uint64_t sb_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
/* uniform double in [0,1) */
static inline double sb_rand01(uint64_t *s) { return (sb_rand(s) >> 11) * (1.0 / 9007199254740992.0); }

/* "10", "4k", "100K", "2m", "1M" -> bytes (k = 1024); -1 on error */
long long sb_parse_size(const char *s);
/* "500", "10s", "250ms", "2m" -> microseconds (bare number = seconds); -1 on error */
long long sb_parse_duration_us(const char *s);
/* strict unsigned/double parsers: die naming the option on bad input */
unsigned long long sb_opt_ull(const char *opt, const char *v);
double sb_opt_double(const char *opt, const char *v);

/* per-second counters for throughput-over-time */
struct sb_series {
	uint64_t *msgs;  /* completed messages in second i */
	uint64_t *bytes; /* their bytes */
	uint64_t *errs;  /* failed (non-2xx or error) in second i */
	size_t n;        /* seconds allocated */
};

void sb_series_add(struct sb_series *s, size_t sec, uint64_t msgs, uint64_t bytes, uint64_t errs);
void sb_series_merge(struct sb_series *dst, const struct sb_series *src);
void sb_series_free(struct sb_series *s);

/* "host:port" / "port" -> sockaddr_in; dies naming the option */
struct sockaddr_in;
void sb_parse_addr(const char *opt, const char *v, struct sockaddr_in *sa);



#include <stdio.h>
/* sb_json_str - write s as a JSON string literal */
void sb_json_str(FILE *f, const char *s);
/* sb_json_series - "series":{"interval_s":1,"msgs":[..],"bytes":[..],"errors":[..]} for secs seconds */
void sb_json_series(FILE *f, const struct sb_series *s, size_t secs);
#endif
