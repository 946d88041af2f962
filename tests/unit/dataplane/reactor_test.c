/*
 * reactor_test.c - idle backoff: work never sleeps, idle_spins empty rounds
 * before the first sleep, then 1, 2, 4 ... capped at idle_sleep_us_max,
 * any work resets; 0 means busy-poll forever. And a loop over pollers
 * that stops when a poller asks it to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "reactor.h"
#include "tsc.h"

static void test_backoff_sequence(void **state)
{
	struct reactor r;
	static const unsigned want[] = { 1, 2, 4, 8, 16, 32, 64, 100, 100 };

	(void)state;
	reactor_init(&r, "io", 3, 100);
	for (int i = 0; i < 3; i++)
		assert_int_equal(reactor_idle_next(&r.idle, 0), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(reactor_idle_next(&r.idle, 0), want[i]);
	/* work: no sleep, and the backoff starts over */
	assert_int_equal(reactor_idle_next(&r.idle, 5), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(reactor_idle_next(&r.idle, 0), 0);
	assert_int_equal(reactor_idle_next(&r.idle, 0), 1);
}

static void test_busy_poll(void **state)
{
	struct reactor r;

	(void)state;
	reactor_init(&r, "io", 0, 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(reactor_idle_next(&r.idle, 0), 0);
}

static void test_no_spins(void **state)
{
	struct reactor r;

	(void)state;
	reactor_init(&r, "io", 0, 7);
	assert_int_equal(reactor_idle_next(&r.idle, 0), 1);
	assert_int_equal(reactor_idle_next(&r.idle, 0), 2);
	assert_int_equal(reactor_idle_next(&r.idle, 0), 4);
	assert_int_equal(reactor_idle_next(&r.idle, 0), 7);
	assert_int_equal(reactor_idle_next(&r.idle, 0), 7);
}

struct counter_poller {
	struct reactor *r;
	unsigned calls, stop_at;
	int work;
};

static int count_poll(void *arg, uint64_t now)
{
	struct counter_poller *p = arg;

	(void)now;
	if (++p->calls == p->stop_at)
		reactor_stop(p->r);
	return p->work;
}

static void test_loop_runs_pollers_in_order(void **state)
{
	struct reactor r;
	struct counter_poller a = { .r = &r, .stop_at = 0, .work = 1 };
	struct counter_poller b = { .r = &r, .stop_at = 50, .work = 0 };

	(void)state;
	tsc_clock.hz = 1000000000;     /* any value: no EAL in unit tests */
	reactor_init(&r, "test", 0, 10);
	assert_int_equal(reactor_add(&r, "a", count_poll, &a), 0);
	assert_int_equal(reactor_add(&r, "b", count_poll, &b), 0);
	reactor_run(&r);
	assert_int_equal(a.calls, 50);
	assert_int_equal(b.calls, 50);
	assert_int_equal(r.st.rounds, 50);
	assert_int_equal(r.st.busy_rounds, 50);
	assert_int_equal(r.st.sleeps, 0);
	assert_true(reactor_stopping(&r));
	for (int i = 2; i < REACTOR_MAX_POLLERS; i++)
		assert_int_equal(reactor_add(&r, "x", count_poll, &a), 0);
	assert_int_equal(reactor_add(&r, "full", count_poll, &a), -1);
}

static void test_idle_loop_sleeps(void **state)
{
	struct reactor r;
	struct counter_poller a = { .r = &r, .stop_at = 20, .work = 0 };

	(void)state;
	tsc_clock.hz = 1000000000;
	reactor_init(&r, "test", 5, 4);
	reactor_add(&r, "a", count_poll, &a);
	reactor_run(&r);
	assert_int_equal(r.st.rounds, 20);
	assert_int_equal(r.st.busy_rounds, 0);
	/* rounds 6..20 sleep (the loop checks stop before the next round) */
	assert_int_equal(r.st.sleeps, 15);
	assert_int_equal(r.st.slept_us, 1 + 2 + 4 * 13);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_sequence),
		cmocka_unit_test(test_busy_poll),
		cmocka_unit_test(test_no_spins),
		cmocka_unit_test(test_loop_runs_pollers_in_order),
		cmocka_unit_test(test_idle_loop_sleeps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
