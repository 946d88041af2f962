/*
 * ctl.h - the control role on the main lcore (for now: signals and a
 * periodic stats line; nothing heavy, nothing on the packet path).
 *
 * Pollers: "signals" waits up to 50 ms for SIGINT/SIGTERM (blocked in every
 * thread before rte_eal_init, so only this one sees them) and stops the
 * control reactor when one arrives; "stats" logs one line per io lcore
 * every stats_interval_s. The main lcore's reactor never busy-polls: the
 * signal wait is its sleep.
 */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

#include <signal.h>
#include <stdint.h>

#include "reactor.h"

struct iolcore;

struct ctl {
	struct reactor reactor;
	sigset_t sigs;
	int signo;                /* the signal that stopped us, or 0 */
	struct iolcore *io;
	unsigned n_io;
	uint64_t stats_interval_us, next_stats_us;
};

/* ctl_block_signals - block SIGINT/SIGTERM in the calling thread (call
 * before threads are created so they inherit the mask) */
void ctl_block_signals(struct ctl *c);
/* ctl_run - the control reactor until a signal; returns the signal */
int ctl_run(struct ctl *c, struct iolcore *io, unsigned n_io,
	    unsigned stats_interval_s);
/* ctl_log_stats - one info line per io lcore */
void ctl_log_stats(struct iolcore *io, unsigned n_io);

#endif
