/*
 * log.c - Postfix-style messages: "prog: level: text" on stderr.
 *
 * log_fatal exits with status 1 (operator error), log_panic aborts
 * (programmer error, core dump wanted). Lines are written with a single
 * fprintf so lines from different threads do not interleave mid-line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *log_progname = "sluiced";
static int log_verbose;

void log_init(const char *progname)
{
	const char *slash = strrchr(progname, '/');

	log_progname = slash ? slash + 1 : progname;
}

void log_set_verbose(int on)
{
	log_verbose = on;
}

/* log_vprint - format one line with program name and level */
__attribute__((format(printf, 2, 0)))
static void log_vprint(const char *level, const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	fprintf(stderr, "%s: %s: %s\n", log_progname, level, buf);
	fflush(stderr);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	log_vprint("debug", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vprint("info", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vprint("warning", fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vprint("fatal", fmt, ap);
	va_end(ap);
	exit(1);
}

void log_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vprint("panic", fmt, ap);
	va_end(ap);
	abort();
}
