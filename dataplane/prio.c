/*
 * prio.c - smooth weighted round robin over the priority levels (prio.h).
 *
 * Invariant: the sum of current[] over the levels that took part in a pick
 * is unchanged by it, so credit neither grows without bound nor leaks;
 * a level that empties keeps its credit (its next message is served soon).
 */
#include <string.h>

#include "prio.h"

void prio_sched_init(struct prio_sched *ps, const uint32_t *weights)
{
	memset(ps, 0, sizeof(*ps));
	for (unsigned p = 0; p < PRIO_LEVELS; p++) {
		ps->weight[p] = weights ? weights[p] : 1u << (PRIO_LEVELS - 1 - p);
		if (ps->weight[p] == 0)
			ps->weight[p] = 1;
	}
}

int prio_sched_pick(struct prio_sched *ps, unsigned nonempty)
{
	int64_t total = 0;
	int best = -1;

	for (unsigned p = 0; p < PRIO_LEVELS; p++) {
		if (!(nonempty & (1u << p)))
			continue;
		ps->current[p] += ps->weight[p];
		total += ps->weight[p];
		if (best < 0 || ps->current[p] > ps->current[best])
			best = (int)p;
	}
	if (best < 0)
		return -1;
	ps->current[best] -= total;
	ps->picks[best]++;
	return best;
}
