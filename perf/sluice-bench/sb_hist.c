/*
 * sb_hist.c - log-linear latency histogram (contract in sb_hist.h).
 */
#include "sb_hist.h"

#include <string.h>

#define SUB (1u << SB_HIST_SUB_BITS)

void sb_hist_init(struct sb_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

/* sb_hist_index - bucket of a value: exact below 2*SUB, then SUB per octave */
unsigned sb_hist_index(uint64_t v)
{
	if (v >= (1ULL << SB_HIST_MAX_BITS))
		v = (1ULL << SB_HIST_MAX_BITS) - 1;
	if (v < 2 * SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned e = msb - SB_HIST_SUB_BITS;           /* >= 1 */
	return 2 * SUB + (e - 1) * SUB + (unsigned)((v >> e) - SUB);
}

/* sb_hist_upper - highest value that falls in bucket idx */
uint64_t sb_hist_upper(unsigned idx)
{
	if (idx < 2 * SUB)
		return idx;
	unsigned e = (idx - 2 * SUB) / SUB + 1;
	uint64_t sub = (idx - 2 * SUB) % SUB + SUB;
	return ((sub + 1) << e) - 1;
}

void sb_hist_record(struct sb_hist *h, uint64_t us)
{
	h->b[sb_hist_index(us)]++;
	h->count++;
	h->sum += us;
	if (us < h->min)
		h->min = us;
	if (us > h->max)
		h->max = us;
}

void sb_hist_merge(struct sb_hist *dst, const struct sb_hist *src)
{
	for (unsigned i = 0; i < SB_HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t sb_hist_pct(const struct sb_hist *h, double p)
{
	if (h->count == 0)
		return 0;
	if (p >= 100.0)
		return h->max;
	/* rank of the sample at percentile p, 1-based, rounded up */
	uint64_t rank = (uint64_t)((p / 100.0) * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < SB_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t v = sb_hist_upper(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

void sb_hist_json(const struct sb_hist *h, FILE *f, int with_cdf)
{
	fprintf(f, "{\"count\":%llu,\"min_us\":%llu,\"mean_us\":%.1f,"
		"\"p50_us\":%llu,\"p90_us\":%llu,\"p99_us\":%llu,\"p99_9_us\":%llu,"
		"\"max_us\":%llu",
		(unsigned long long)h->count,
		(unsigned long long)(h->count ? h->min : 0),
		h->count ? (double)h->sum / (double)h->count : 0.0,
		(unsigned long long)sb_hist_pct(h, 50), (unsigned long long)sb_hist_pct(h, 90),
		(unsigned long long)sb_hist_pct(h, 99), (unsigned long long)sb_hist_pct(h, 99.9),
		(unsigned long long)h->max);
	if (with_cdf) {
		fputs(",\"cdf\":[", f);
		uint64_t seen = 0;
		int first = 1;
		for (unsigned i = 0; i < SB_HIST_BUCKETS && h->count; i++) {
			if (!h->b[i])
				continue;
			seen += h->b[i];
			uint64_t v = sb_hist_upper(i);
			if (v > h->max)
				v = h->max;
			fprintf(f, "%s[%llu,%.6f]", first ? "" : ",", (unsigned long long)v,
				(double)seen / (double)h->count);
			first = 0;
		}
		fputc(']', f);
	}
	fputc('}', f);
}
