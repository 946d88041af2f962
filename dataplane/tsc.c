/*
 * tsc.c - calibrate the TSC clock once (see tsc.h).
 */
#include <rte_cycles.h>

#include "log.h"
#include "tsc.h"

struct tsc_clock tsc_clock = { .hz = 1, .base = 0 };

void tsc_init(void)
{
	uint64_t hz = rte_get_tsc_hz();

	if (hz < 1000000)
		log_panic("tsc_init: implausible TSC frequency %llu Hz",
			  (unsigned long long)hz);
	tsc_clock.hz = hz;
	tsc_clock.base = rte_get_tsc_cycles();
}
