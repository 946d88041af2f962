/*
 * reactor.c - the per-lcore poller loop with idle backoff (see reactor.h).
 *
 * Input: pollers and the clock. Output: calls to the pollers; sleeps when
 * idle. Invariant: a round with work never sleeps; the sleep length is
 * reset to 1 us by any work and never exceeds idle_sleep_us_max.
 */
#include <string.h>
#include <time.h>

#include "reactor.h"
#include "tsc.h"

void reactor_init(struct reactor *r, const char *role, unsigned idle_spins,
		  unsigned idle_sleep_us_max)
{
	memset(r, 0, sizeof(*r));
	r->role = role;
	r->idle.spins = idle_spins;
	r->idle.sleep_max_us = idle_sleep_us_max;
	r->idle.sleep_us = 1;
	atomic_init(&r->stop, false);
}

int reactor_add(struct reactor *r, const char *name,
		int (*poll)(void *arg, uint64_t now_us), void *arg)
{
	if (r->n_pollers == REACTOR_MAX_POLLERS)
		return -1;
	r->pollers[r->n_pollers++] = (struct reactor_poller){
		.name = name, .poll = poll, .arg = arg,
	};
	return 0;
}

void reactor_set_deadline(struct reactor *r, uint64_t (*fn)(void *arg),
			  void *arg)
{
	r->deadline = fn;
	r->deadline_arg = arg;
}

unsigned reactor_idle_next(struct reactor_idle *id, unsigned work)
{
	unsigned us;

	if (work) {
		id->empty = 0;
		id->sleep_us = 1;
		return 0;
	}
	if (id->sleep_max_us == 0)
		return 0;
	if (id->empty < id->spins) {
		id->empty++;
		return 0;
	}
	us = id->sleep_us < id->sleep_max_us ? id->sleep_us : id->sleep_max_us;
	if (id->sleep_us < id->sleep_max_us)
		id->sleep_us *= 2;
	return us;
}

void reactor_run(struct reactor *r)
{
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		uint64_t now = tsc_now_us();
		unsigned work = 0, us;

		for (unsigned i = 0; i < r->n_pollers; i++) {
			int w = r->pollers[i].poll(r->pollers[i].arg, now);

			if (w > 0)
				work += (unsigned)w;
		}
		r->st.rounds++;
		if (work)
			r->st.busy_rounds++;
		us = reactor_idle_next(&r->idle, work);
		if (us && r->deadline) {
			uint64_t dl = r->deadline(r->deadline_arg);

			if (dl <= now)
				us = 0;
			else if (dl - now < us)
				us = (unsigned)(dl - now);
		}
		if (us) {
			struct timespec ts = {
				.tv_sec = us / 1000000u,
				.tv_nsec = (long)(us % 1000000u) * 1000,
			};

			nanosleep(&ts, NULL);
			r->st.sleeps++;
			r->st.slept_us += us;
		}
	}
}

void reactor_stop(struct reactor *r)
{
	atomic_store_explicit(&r->stop, true, memory_order_relaxed);
}

bool reactor_stopping(struct reactor *r)
{
	return atomic_load_explicit(&r->stop, memory_order_relaxed);
}
