/*
 * tsc.h - the data plane clock: TSC cycles as microseconds.
 *
 * tsc_init() is called once on the main lcore after rte_eal_init, before
 * any lcore is launched; afterwards tsc_now_us() is a read-only,
 * lock-free conversion usable on every lcore. The value is monotonic and
 * starts near 0 at tsc_init (the stack only needs differences).
 */
#ifndef SLUICE_TSC_H
#define SLUICE_TSC_H

#include <stdint.h>

#include <rte_cycles.h>

struct tsc_clock {
	uint64_t hz;
	uint64_t base;
};

extern struct tsc_clock tsc_clock;   /* written once by tsc_init */

void tsc_init(void);

/* tsc_now_us - microseconds since tsc_init */
static inline uint64_t tsc_now_us(void)
{
	uint64_t c = rte_get_tsc_cycles() - tsc_clock.base;

	return c / tsc_clock.hz * 1000000u + c % tsc_clock.hz * 1000000u /
						     tsc_clock.hz;
}

#endif
