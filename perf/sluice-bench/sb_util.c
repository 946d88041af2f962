/*
 * sb_util.c - clocks, buffers, parsers and the time series for sluice-bench
 * (contract in sb_util.h).
 */
#include "sb_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t sb_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t sb_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void sb_die(const char *fmt, ...)
{
	va_list ap;
	fputs("sluice-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* sb_buf_reserve - make room for extra bytes after len, compacting first */
void sb_buf_reserve(struct sb_buf *b, size_t extra)
{
	if (b->off > 0 && b->off == b->len) {
		b->off = b->len = 0;
	}
	if (b->len + extra <= b->cap)
		return;
	if (b->off > 0) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len + extra <= b->cap)
			return;
	}
	size_t ncap = b->cap ? b->cap : 4096;
	while (ncap < b->len + extra)
		ncap *= 2;
	char *p = realloc(b->data, ncap);
	if (!p)
		sb_die("out of memory (%zu bytes)", ncap);
	b->data = p;
	b->cap = ncap;
}

void sb_buf_append(struct sb_buf *b, const void *p, size_t n)
{
	sb_buf_reserve(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void sb_buf_printf(struct sb_buf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		int n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			sb_die("vsnprintf failed");
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		sb_buf_reserve(b, (size_t)n + 1);
	}
}

void sb_buf_consume(struct sb_buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void sb_buf_free(struct sb_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

long long sb_parse_size(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	long long mul = 1;
	switch (tolower((unsigned char)*end)) {
	case '\0': break;
	case 'b': end++; break;
	case 'k': mul = 1024; end++; break;
	case 'm': mul = 1024 * 1024; end++; break;
	case 'g': mul = 1024LL * 1024 * 1024; end++; break;
	default: return -1;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end)
		return -1;
	return (long long)(v * (double)mul);
}

long long sb_parse_duration_us(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	double mul = 1e6;
	if (!strcmp(end, "") || !strcmp(end, "s"))
		mul = 1e6;
	else if (!strcmp(end, "ms"))
		mul = 1e3;
	else if (!strcmp(end, "us"))
		mul = 1;
	else if (!strcmp(end, "m") || !strcmp(end, "min"))
		mul = 60e6;
	else
		return -1;
	return (long long)(v * mul);
}

unsigned long long sb_opt_ull(const char *opt, const char *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-')
		sb_die("%s: '%s' is not a non-negative integer", opt, v);
	return x;
}

double sb_opt_double(const char *opt, const char *v)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (errno || end == v || *end || x < 0)
		sb_die("%s: '%s' is not a non-negative number", opt, v);
	return x;
}

/* series_grow - make room for second sec */
static void series_grow(struct sb_series *s, size_t sec)
{
	if (sec < s->n)
		return;
	size_t n = s->n ? s->n : 64;
	while (n <= sec)
		n *= 2;
	uint64_t **arrs[3] = { &s->msgs, &s->bytes, &s->errs };
	for (int i = 0; i < 3; i++) {
		uint64_t *p = realloc(*arrs[i], n * sizeof(uint64_t));
		if (!p)
			sb_die("out of memory");
		memset(p + s->n, 0, (n - s->n) * sizeof(uint64_t));
		*arrs[i] = p;
	}
	s->n = n;
}

void sb_series_add(struct sb_series *s, size_t sec, uint64_t msgs, uint64_t bytes, uint64_t errs)
{
	series_grow(s, sec);
	s->msgs[sec] += msgs;
	s->bytes[sec] += bytes;
	s->errs[sec] += errs;
}

void sb_series_merge(struct sb_series *dst, const struct sb_series *src)
{
	for (size_t i = 0; i < src->n; i++)
		if (src->msgs[i] || src->bytes[i] || src->errs[i])
			sb_series_add(dst, i, src->msgs[i], src->bytes[i], src->errs[i]);
}

void sb_series_free(struct sb_series *s)
{
	free(s->msgs);
	free(s->bytes);
	free(s->errs);
	memset(s, 0, sizeof(*s));
}

void sb_parse_addr(const char *opt, const char *v, struct sockaddr_in *sa)
{
	char host[256] = "127.0.0.1";
	const char *colon = strrchr(v, ':');
	const char *port = v;
	if (colon) {
		size_t hl = (size_t)(colon - v);
		if (hl == 0 || hl >= sizeof(host))
			sb_die("%s: bad address '%s' (want HOST:PORT)", opt, v);
		memcpy(host, v, hl);
		host[hl] = '\0';
		port = colon + 1;
	}
	char *end;
	unsigned long p = strtoul(port, &end, 10);
	if (end == port || *end || p > 65535)
		sb_die("%s: bad port in '%s'", opt, v);
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)p);
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		sb_die("%s: '%s' is not an IPv4 address", opt, host);
}

void sb_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void sb_json_series(FILE *f, const struct sb_series *s, size_t secs)
{
	const uint64_t *arr[3] = { s->msgs, s->bytes, s->errs };
	const char *names[3] = { "msgs", "bytes", "errors" };
	fputs("\"series\":{\"interval_s\":1", f);
	for (int k = 0; k < 3; k++) {
		fprintf(f, ",\"%s\":[", names[k]);
		for (size_t i = 0; i < secs; i++)
			fprintf(f, "%s%llu", i ? "," : "", (unsigned long long)(i < s->n ? arr[k][i] : 0));
		fputc(']', f);
	}
	fputc('}', f);
}
