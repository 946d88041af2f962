/*
 * sb_msg.c - size distributions, body text and the stamp header (contract
 * in sb_msg.h).
 */
#include "sb_msg.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name, *spec;
} SB_MIXES[] = {
	{ "small", "80@1k-4k,15@4k-16k,5@16k-64k" },
	{ "realistic", "60@1k-8k,25@8k-32k,10@32k-128k,4@100k-500k,1@1m-5m" },
};

/* parse_range - "A" or "A-B" into lo/hi */
static int parse_range(const char *s, uint64_t *lo, uint64_t *hi)
{
	char tmp[64];
	if (strlen(s) >= sizeof(tmp))
		return -1;
	strcpy(tmp, s);
	char *dash = strchr(tmp, '-');
	if (dash)
		*dash = '\0';
	long long a = sb_parse_size(tmp), b = dash ? sb_parse_size(dash + 1) : a;
	if (a < 0 || b < 0 || b < a)
		return -1;
	*lo = (uint64_t)a;
	*hi = (uint64_t)b;
	return 0;
}

int sb_sizes_parse(struct sb_sizes *s, const char *spec, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	if (strncmp(spec, "mix:", 4) != 0) {
		if (parse_range(spec, &s->r[0].lo, &s->r[0].hi) < 0) {
			snprintf(err, errlen, "'%s' is not a size (1k), range (1k-64k) or mix:NAME", spec);
			return -1;
		}
		s->r[0].weight = 1;
		s->n = 1;
	} else {
		const char *body = spec + 4;
		for (size_t i = 0; i < sizeof(SB_MIXES) / sizeof(SB_MIXES[0]); i++)
			if (!strcmp(body, SB_MIXES[i].name))
				body = SB_MIXES[i].spec;
		if (!strchr(body, '@')) {
			snprintf(err, errlen, "unknown mix '%s' (small, realistic, or W@A-B,...)", spec + 4);
			return -1;
		}
		char *dup = strdup(body), *save = NULL;
		for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			char *at = strchr(tok, '@');
			if (!at || s->n >= 16) {
				snprintf(err, errlen, "bad mix element '%s' (want W@A-B, at most 16)", tok);
				free(dup);
				return -1;
			}
			*at = '\0';
			char *end;
			double w = strtod(tok, &end);
			if (end == tok || *end || w <= 0 ||
			    parse_range(at + 1, &s->r[s->n].lo, &s->r[s->n].hi) < 0) {
				snprintf(err, errlen, "bad mix element '%s@%s'", tok, at + 1);
				free(dup);
				return -1;
			}
			s->r[s->n++].weight = w;
		}
		free(dup);
	}
	for (int i = 0; i < s->n; i++) {
		s->total += s->r[i].weight;
		if (s->r[i].hi > s->max)
			s->max = s->r[i].hi;
	}
	if (s->max > (256ull << 20)) {
		snprintf(err, errlen, "sizes above 256m are not supported");
		return -1;
	}
	return 0;
}

uint64_t sb_sizes_pick(const struct sb_sizes *s, uint64_t *rng)
{
	double x = sb_rand01(rng) * s->total;
	int i = 0;
	for (; i < s->n - 1; i++) {
		if (x < s->r[i].weight)
			break;
		x -= s->r[i].weight;
	}
	uint64_t span = s->r[i].hi - s->r[i].lo;
	return s->r[i].lo + (span ? sb_rand(rng) % (span + 1) : 0);
}

void sb_body_init(struct sb_body *b, uint64_t max_size, uint64_t seed)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,;-";
	b->nlines = max_size / SB_LINE + 1024;
	b->text = malloc(b->nlines * SB_LINE);
	if (!b->text)
		sb_die("out of memory for %zu body lines", b->nlines);
	uint64_t rng = seed ^ 0x5b5b5b5bULL;
	for (size_t l = 0; l < b->nlines; l++) {
		char *p = b->text + l * SB_LINE;
		for (int i = 0; i < SB_LINE - 2; i++) {
			uint64_t r = sb_rand(&rng);
			p[i] = alpha[r % (i == 0 ? 52 : sizeof(alpha) - 1)];
		}
		p[SB_LINE - 2] = '\r';
		p[SB_LINE - 1] = '\n';
	}
}

const char *sb_body_slice(const struct sb_body *b, uint64_t seq, size_t body_len, size_t *out_len)
{
	size_t lines = body_len / SB_LINE;
	if (lines < 1)
		lines = 1;
	if (lines > b->nlines)
		lines = b->nlines;
	size_t start = (size_t)((seq * 2654435761ULL) % (b->nlines - lines + 1));
	*out_len = lines * SB_LINE;
	return b->text + start * SB_LINE;
}

void sb_sha256(const void *p, size_t n, uint8_t out[32])
{
	unsigned len = 32;
	if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1)
		sb_die("EVP_Digest(sha256) failed");
}

void sb_hex(const uint8_t *p, size_t n, char *out)
{
	static const char h[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = h[p[i] >> 4];
		out[2 * i + 1] = h[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sb_stamp_parse(const char *v, size_t n, struct sb_stamp *st)
{
	char tmp[256], dig[80];
	if (n >= sizeof(tmp))
		return -1;
	memcpy(tmp, v, n);
	tmp[n] = '\0';
	unsigned long long seq, ts;
	if (sscanf(tmp, " %39s %llu %79s %llu", st->run, &seq, dig, &ts) != 4 || strlen(dig) != 64)
		return -1;
	for (int i = 0; i < 32; i++) {
		int a = unhex(dig[2 * i]), b = unhex(dig[2 * i + 1]);
		if (a < 0 || b < 0)
			return -1;
		st->digest[i] = (uint8_t)(a << 4 | b);
	}
	st->seq = seq;
	st->wall_us = ts;
	return 0;
}
