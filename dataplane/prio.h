/*
 * prio.h - which of the 8 priority rings a worker drains next.
 *
 * Input: a bitmask of non-empty levels (bit p = level p has work; 0 is the
 * most urgent). Output: the level to take the next message from.
 * Smooth weighted round robin (as nginx upstreams): every non-empty level
 * earns its weight each pick, the richest is served and pays the total.
 * Weights default to 2^(7-p) (128, 64, ... 1): with every level busy level
 * 0 gets 128/255 of the picks and level 7 still 1/255, so nothing starves;
 * a level alone gets every pick. Pure logic: no DPDK, no clock, no globals.
 */
#ifndef SLUICE_PRIO_H
#define SLUICE_PRIO_H

#include <stdint.h>

#define PRIO_LEVELS 8

struct prio_sched {
	uint32_t weight[PRIO_LEVELS];
	int64_t current[PRIO_LEVELS];
	uint64_t picks[PRIO_LEVELS];      /* served per level (counters) */
};

/* prio_sched_init - weights NULL: the default 2^(7-p); a zero weight is
 * raised to 1 (every level must be served eventually) */
void prio_sched_init(struct prio_sched *ps, const uint32_t *weights);
/* prio_sched_pick - next level among the set bits of nonempty; -1 if none */
int prio_sched_pick(struct prio_sched *ps, unsigned nonempty);

#endif
