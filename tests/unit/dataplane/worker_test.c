/*
 * worker_test.c - the worker's loop check: Received headers are counted
 * in the header section only (a "Received:" line in the body is not a
 * hop), case-insensitively.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "worker.h"

static unsigned count(const char *m)
{
	return worker_count_received((const uint8_t *)m, strlen(m));
}

static void received_in_header_only(void **st)
{
	(void)st;
	assert_int_equal(count(""), 0);
	assert_int_equal(count("Subject: x\r\n\r\nReceived: body\r\n"), 0);
	assert_int_equal(count("Received: a\r\n\tcontinued\r\nreceived: b\r\n"
			       "RECEIVED: c\r\nSubject: x\r\n\r\n"
			       "Received: not a header\r\n"), 3);
	assert_int_equal(count("X-Received: a\r\nReceivedx\r\n\r\n"), 0);
	assert_int_equal(count("Received: no end of line"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(received_in_header_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
