/*
 * rss.c - Toeplitz prediction and RSS-aware source ports (see rss.h).
 *
 * Input: the port's RSS key and RETA as read back from the device. Output:
 * queue numbers and source ports. Invariant: rss_pick_sport never returns
 * a port outside RSS_SPORT_MIN..RSS_SPORT_MAX.
 */
#include <rte_thash.h>

#include "rss.h"

uint32_t rss_hash(const struct rss_ctx *r, uint32_t src, uint32_t dst,
		  uint16_t sport, uint16_t dport)
{
	uint32_t tuple[RTE_THASH_V4_L4_LEN];

	/* layout of struct rte_ipv4_tuple: src, dst, then sport:dport */
	tuple[0] = src;
	tuple[1] = dst;
	tuple[2] = (uint32_t)sport << 16 | dport;
	return rte_softrss(tuple, RTE_THASH_V4_L4_LEN, r->key);
}

unsigned rss_queue(const struct rss_ctx *r, uint32_t src, uint32_t dst,
		   uint16_t sport, uint16_t dport)
{
	uint32_t h;

	if (!r->enabled || r->nb_queues <= 1)
		return 0;
	h = rss_hash(r, src, dst, sport, dport);
	if (r->reta_size)
		return r->reta[h & (r->reta_size - 1)];
	return h % r->nb_queues;
}

int rss_pick_sport(const struct rss_ctx *r, unsigned queue, uint32_t saddr,
		   uint32_t daddr, uint16_t dport, unsigned attempt,
		   uint16_t *sport)
{
	const uint32_t range = RSS_SPORT_MAX - RSS_SPORT_MIN + 1;
	uint32_t start;

	if (!r->enabled || r->nb_queues <= 1)
		return -1;
	/* spread starting points: mix the tuple, then step by attempt */
	start = (daddr * 2654435761u) ^ (saddr * 40503u) ^ dport;
	start = (start + attempt * 7919u) % range;
	for (uint32_t i = 0; i < range; i++) {
		uint16_t p = (uint16_t)(RSS_SPORT_MIN + (start + i) % range);

		if (rss_queue(r, daddr, saddr, dport, p) == queue) {
			*sport = p;
			return 0;
		}
	}
	return -1;
}
