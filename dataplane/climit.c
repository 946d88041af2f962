/*
 * climit.c - per-client connection and rate limits (climit.h).
 *
 * Input: addresses and times. Output: verdicts. Invariant: every live
 * entry is reachable from its home slot without crossing an empty slot
 * (deletion shifts later entries back instead of leaving tombstones).
 */
#include <stdlib.h>

#include "climit.h"

static uint32_t climit_hash(uint32_t a)
{
	a ^= a >> 16;
	a *= 0x7feb352du;
	a ^= a >> 15;
	a *= 0x846ca68bu;
	a ^= a >> 16;
	return a;
}

int climit_init(struct climit *c, uint32_t entries, uint32_t max_conns,
		uint32_t rate_per_min)
{
	uint32_t cap = 16;

	while (cap < entries * 2 && cap < (1u << 30))
		cap <<= 1;
	c->tab = calloc(cap, sizeof(*c->tab));
	if (!c->tab)
		return -1;
	c->cap = cap;
	c->used = 0;
	c->max_conns = max_conns;
	c->rate_per_min = rate_per_min;
	c->table_full = 0;
	return 0;
}

void climit_free(struct climit *c)
{
	free(c->tab);
	c->tab = NULL;
}

/* climit_find - slot of addr, or the empty slot where it would go */
static uint32_t climit_find(const struct climit *c, uint32_t addr)
{
	uint32_t i = climit_hash(addr) & (c->cap - 1);

	while (c->tab[i].addr && c->tab[i].addr != addr)
		i = (i + 1) & (c->cap - 1);
	return i;
}

/* climit_refill - add the tokens earned since last_ms (cap: one minute) */
static void climit_refill(const struct climit *c, struct climit_ent *e,
			  uint64_t now)
{
	uint64_t full = (uint64_t)c->rate_per_min * CLIMIT_UNIT;

	if (now > e->last_ms) {
		/* rate_per_min tokens per 60000 ms: exact, no rounding loss */
		e->tokens_milli += (now - e->last_ms) * c->rate_per_min;
		if (e->tokens_milli > full)
			e->tokens_milli = full;
	}
	e->last_ms = now;
}

/* climit_remove - delete slot i, shifting the probe chain back */
static void climit_remove(struct climit *c, uint32_t i)
{
	uint32_t mask = c->cap - 1, j = i;

	c->tab[i].addr = 0;
	c->used--;
	for (;;) {
		uint32_t home;

		j = (j + 1) & mask;
		if (!c->tab[j].addr)
			return;
		home = climit_hash(c->tab[j].addr) & mask;
		/* can the entry at j move to i? only if home is not in (i, j] */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			c->tab[i] = c->tab[j];
			c->tab[j].addr = 0;
			i = j;
		}
	}
}

/* climit_sweep - drop idle entries whose bucket has refilled */
static void climit_sweep(struct climit *c, uint64_t now)
{
	for (uint32_t i = 0; i < c->cap; i++) {
		struct climit_ent *e = &c->tab[i];

		while (e->addr && e->conns == 0) {
			climit_refill(c, e, now);
			if (e->tokens_milli < (uint64_t)c->rate_per_min * CLIMIT_UNIT)
				break;
			climit_remove(c, i);  /* may shift another entry in */
		}
	}
}

enum climit_verdict climit_connect(struct climit *c, uint32_t addr,
				   uint64_t now_ms)
{
	struct climit_ent *e;
	uint32_t i;

	if (addr == 0)
		addr = 0xffffffffu;     /* 0 marks empty slots */
	i = climit_find(c, addr);
	e = &c->tab[i];
	if (!e->addr) {
		if (c->used + 1 > c->cap / 4 * 3) {
			climit_sweep(c, now_ms);
			i = climit_find(c, addr);
			e = &c->tab[i];
		}
		if (c->used + 1 > c->cap / 4 * 3) {
			c->table_full++;   /* > 75% full: fail open */
			return CLIMIT_OK;
		}
		e->addr = addr;
		e->conns = 0;
		e->tokens_milli = (uint64_t)c->rate_per_min * CLIMIT_UNIT;
		e->last_ms = now_ms;
		c->used++;
	}
	climit_refill(c, e, now_ms);
	if (c->max_conns && e->conns >= c->max_conns)
		return CLIMIT_CONNS;
	if (c->rate_per_min) {
		if (e->tokens_milli < CLIMIT_UNIT)
			return CLIMIT_RATE;
		e->tokens_milli -= CLIMIT_UNIT;
	}
	e->conns++;
	return CLIMIT_OK;
}

void climit_disconnect(struct climit *c, uint32_t addr, uint64_t now_ms)
{
	struct climit_ent *e;
	uint32_t i;

	if (addr == 0)
		addr = 0xffffffffu;
	i = climit_find(c, addr);
	e = &c->tab[i];
	if (!e->addr)
		return;            /* was let in untracked (table full) */
	if (e->conns)
		e->conns--;
	climit_refill(c, e, now_ms);
	if (e->conns == 0 &&
	    e->tokens_milli >= (uint64_t)c->rate_per_min * CLIMIT_UNIT)
		climit_remove(c, i);
}

uint32_t climit_conns(const struct climit *c, uint32_t addr)
{
	uint32_t i;

	if (addr == 0)
		addr = 0xffffffffu;
	i = climit_find(c, addr);
	return c->tab[i].addr ? c->tab[i].conns : 0;
}
