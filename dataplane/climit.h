/*
 * climit.h - per-client-address connection policy of one io lcore.
 *
 * Input: connect/disconnect of an IPv4 address at a time in ms.
 * Output: allow, or why not. Limits: concurrent connections per address
 * (max_conns, 0 = none) and new connections per minute per address
 * (rate_per_min, 0 = none; token bucket of rate_per_min tokens refilled
 * continuously, so a burst of rate_per_min is allowed after a quiet
 * minute). Fixed table (open addressing, linear probing, tombstone-free
 * backward-shift deletion); an entry is dropped when it has no connection
 * and its bucket is full again. When the table is full new addresses are
 * let in and counted (fail open: policy must not refuse everyone).
 * Per lcore: with several io lcores RSS spreads one client's connections,
 * so the limits apply per lcore. Pure logic, no DPDK, no globals.
 */
#ifndef SLUICE_CLIMIT_H
#define SLUICE_CLIMIT_H

#include <stdint.h>

#define CLIMIT_UNIT 60000u   /* one token: rate tokens per 60000 ms */

enum climit_verdict { CLIMIT_OK = 0, CLIMIT_CONNS = 1, CLIMIT_RATE = 2 };

struct climit_ent {
	uint32_t addr;        /* 0 = empty slot */
	uint32_t conns;
	uint64_t tokens_milli; /* tokens * CLIMIT_UNIT */
	uint64_t last_ms;
};

struct climit {
	struct climit_ent *tab;
	uint32_t cap;          /* power of two */
	uint32_t used;
	uint32_t max_conns, rate_per_min;
	uint64_t table_full;   /* addresses let in untracked */
};

/* climit_init - table for about `entries` addresses; -1 on ENOMEM */
int climit_init(struct climit *c, uint32_t entries, uint32_t max_conns,
		uint32_t rate_per_min);
void climit_free(struct climit *c);
/* climit_connect - a new connection from addr; CLIMIT_OK counts it (call
 * climit_disconnect later), otherwise nothing is counted */
enum climit_verdict climit_connect(struct climit *c, uint32_t addr,
				   uint64_t now_ms);
/* climit_disconnect - a connection counted by climit_connect ended */
void climit_disconnect(struct climit *c, uint32_t addr, uint64_t now_ms);
/* climit_conns - current connections of addr (tests, logs) */
uint32_t climit_conns(const struct climit *c, uint32_t addr);

#endif
