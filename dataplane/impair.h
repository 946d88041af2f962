/*
 * impair.h - netem-style impairment of received frames, for the lab only.
 *
 * tests/lab applies "tc qdisc ... netem ARGS" on the kernel end of the TAP.
 * Kernels without sch_netem (e.g. minimal VM kernels) cannot, so the lab
 * passes the same ARGS to sluiced --impair, and the glue runs every
 * received frame through this module: the same direction (kernel ->
 * sluiced) and the same knobs:
 *
 *   loss P%        drop a frame
 *   duplicate P%   deliver it twice
 *   delay T        hold it for T (us, ms or s; e.g. 1ms)
 *   reorder P%     with delay: P% of frames skip the delay (as netem)
 *
 * Delayed frames are copied into a fixed ring allocated at start; a full
 * ring delivers at once (counted). Off unless --impair is given: the
 * normal rx path never calls it. Not for production.
 */
#ifndef SLUICE_IMPAIR_H
#define SLUICE_IMPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

#define IMPAIR_SLOTS 4096
#define IMPAIR_FRAME_MAX 2048

struct impair_cfg {
	bool on;
	uint32_t loss_ppm, dup_ppm, reorder_ppm;   /* parts per million */
	uint32_t delay_us;
};

struct impair_stats {
	uint64_t in, lost, duplicated, delayed, reordered, ring_full;
};

struct impair;

/* impair_parse - netem ARGS; 0, or -1 with the offending word in err */
int impair_parse(const char *args, struct impair_cfg *c, char *err,
		 size_t errlen);
/* impair_create - NULL on ENOMEM */
struct impair *impair_create(const struct impair_cfg *c, uint64_t seed);
void impair_destroy(struct impair *im);
/* impair_rx - pass n received frames through; fills out (max entries)
 * with the frames to hand to the stack now: some of in[], plus delayed
 * copies that are due. Pointers stay valid until the next call. */
unsigned impair_rx(struct impair *im, const struct net_rx *in, unsigned n,
		   struct net_rx *out, unsigned max, uint64_t now);
const struct impair_stats *impair_stats(const struct impair *im);
/* impair_held - frames waiting in the delay ring */
unsigned impair_held(const struct impair *im);

#endif
