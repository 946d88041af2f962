/*
 * sb_hist.h - HdrHistogram-style log-linear latency histogram, in
 * microseconds, fixed memory (~36 KB), no allocation on record.
 *
 * Values 0..255 us are exact; above, each power-of-two range [2^k, 2^k+1)
 * is cut into 128 equal buckets, so a reported value is within 1/128
 * (0.8 %) of the true one. Count, min, max and sum are exact. Values above
 * 2^40 us (12 days) are clamped. Percentiles report the highest value a
 * bucket can hold (like HdrHistogram's highestEquivalentValue), clamped to
 * the exact max.
 */
#ifndef SB_HIST_H
#define SB_HIST_H

#include <stdint.h>
#include <stdio.h>

#define SB_HIST_SUB_BITS 7
#define SB_HIST_MAX_BITS 40
#define SB_HIST_BUCKETS (2 * (1 << SB_HIST_SUB_BITS) + \
	(SB_HIST_MAX_BITS - SB_HIST_SUB_BITS - 1) * (1 << SB_HIST_SUB_BITS))

struct sb_hist {
	uint64_t count, sum, min, max;
	uint64_t b[SB_HIST_BUCKETS];
};

void sb_hist_init(struct sb_hist *h);
void sb_hist_record(struct sb_hist *h, uint64_t us);
void sb_hist_merge(struct sb_hist *dst, const struct sb_hist *src);
/* sb_hist_pct - value at percentile p (0..100); 0 when empty */
uint64_t sb_hist_pct(const struct sb_hist *h, double p);
/* sb_hist_json - {"count":..,"min_us":..,"p50_us":..,...,"cdf":[[us,frac],...]} */
void sb_hist_json(const struct sb_hist *h, FILE *f, int with_cdf);
/* index <-> value, exposed for the self-test */
unsigned sb_hist_index(uint64_t us);
uint64_t sb_hist_upper(unsigned idx);

#endif
