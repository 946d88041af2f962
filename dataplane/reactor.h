/*
 * reactor.h - one loop per lcore over a list of pollers.
 *
 * A poller is {name, poll(arg, now_us), arg}; poll returns how much work it
 * did (frames, events, ...; 0 = nothing). A role is just the set of pollers
 * an lcore runs (role.h). Each round reads the clock once and calls every
 * poller in order. When a round does no work the reactor counts it; after
 * idle_spins empty rounds in a row it sleeps, 1 us first and doubling up to
 * idle_sleep_us_max (never past the next timer deadline, if one is set);
 * any work resets the backoff. idle_sleep_us_max = 0 busy-polls forever.
 *
 * reactor_stop() may be called from any thread; the loop ends after the
 * current round. No locks; the stop flag is a C11 atomic.
 */
#ifndef SLUICE_REACTOR_H
#define SLUICE_REACTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define REACTOR_MAX_POLLERS 16

struct reactor_poller {
	const char *name;
	int (*poll)(void *arg, uint64_t now_us);
	void *arg;
};

/* idle backoff state, kept apart so it can be tested without a loop */
struct reactor_idle {
	unsigned spins;           /* empty rounds before the first sleep */
	unsigned sleep_max_us;    /* 0 = never sleep */
	unsigned empty;           /* empty rounds in a row */
	unsigned sleep_us;        /* next sleep length */
};

struct reactor_stats {
	uint64_t rounds, busy_rounds, sleeps, slept_us;
};

struct reactor {
	const char *role;
	struct reactor_poller pollers[REACTOR_MAX_POLLERS];
	unsigned n_pollers;
	struct reactor_idle idle;
	/* optional: absolute time (us) of the next timer; sleeps stop there */
	uint64_t (*deadline)(void *arg);
	void *deadline_arg;
	atomic_bool stop;
	struct reactor_stats st;
};

void reactor_init(struct reactor *r, const char *role, unsigned idle_spins,
		  unsigned idle_sleep_us_max);
/* reactor_add - append a poller; -1 when the list is full */
int reactor_add(struct reactor *r, const char *name,
		int (*poll)(void *arg, uint64_t now_us), void *arg);
void reactor_set_deadline(struct reactor *r, uint64_t (*fn)(void *arg),
			  void *arg);
/* reactor_run - loop until reactor_stop */
void reactor_run(struct reactor *r);
void reactor_stop(struct reactor *r);
bool reactor_stopping(struct reactor *r);

/* reactor_idle_next - feed one round's work; returns microseconds to sleep
 * now (0 = keep polling) */
unsigned reactor_idle_next(struct reactor_idle *id, unsigned work);

#endif
