/*
 * dp_test.h - helpers shared by the dataplane unit tests: write a config
 * text to a temporary file and remove it again.
 */
#ifndef SLUICE_DP_TEST_H
#define SLUICE_DP_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* dp_test_file - write text to a fresh temp file; path into buf */
static inline const char *dp_test_file(char *buf, size_t len, const char *text)
{
	int fd;

	snprintf(buf, len, "/tmp/sluice-dptest-XXXXXX");
	fd = mkstemp(buf);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror("dp_test_file");
		exit(1);
	}
	close(fd);
	return buf;
}

#endif
