/*
 * log.c - Postfix-style messages: "prog: level: text" on stderr.
 *
 * The level and the per-module debug mask are atomics: sluicectl log
 * changes them from the control thread while every lcore logs. Setting
 * the level to debug sets every module bit, so LOG_MDEBUG_ON stays one
 * load; setting it back clears the bits (a module switched on by name
 * stays on only until the next level change).
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
static atomic_int log_level = LOG_INFO;
atomic_uint log_debug_mask;

static const char *const log_level_names[] = { "debug", "info", "warn" };
static const char *const log_module_names[LOG_M_COUNT] = {
	"smtpd", "deliver", "dsched", "stack", "storage", "ctl",
};

void log_init(const char *progname)
{
	const char *slash = strrchr(progname, '/');

	log_progname = slash ? slash + 1 : progname;
}

void log_set_verbose(int on)
{
	log_set_level(on ? LOG_DEBUG : LOG_INFO);
}

void log_set_level(enum log_level l)
{
	atomic_store(&log_level, (int)l);
	atomic_store(&log_debug_mask, l == LOG_DEBUG ?
		     (1u << LOG_M_COUNT) - 1 : 0u);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load(&log_level);
}

const char *log_level_name(enum log_level l)
{
	return (unsigned)l <= LOG_WARN ? log_level_names[l] : "?";
}

int log_level_parse(const char *s, enum log_level *l)
{
	for (int i = 0; i <= LOG_WARN; i++)
		if (strcmp(s, log_level_names[i]) == 0) {
			*l = (enum log_level)i;
			return 0;
		}
	if (strcmp(s, "warning") == 0) {
		*l = LOG_WARN;
		return 0;
	}
	return -1;
}

const char *log_module_name(enum log_module m)
{
	return (unsigned)m < LOG_M_COUNT ? log_module_names[m] : "?";
}

int log_module_parse(const char *s)
{
	for (int i = 0; i < LOG_M_COUNT; i++)
		if (strcmp(s, log_module_names[i]) == 0)
			return i;
	return -1;
}

void log_module_debug(enum log_module m, int on)
{
	if ((unsigned)m >= LOG_M_COUNT)
		return;
	if (on)
		atomic_fetch_or(&log_debug_mask, 1u << m);
	else
		atomic_fetch_and(&log_debug_mask, ~(1u << m));
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

	if (atomic_load_explicit(&log_level, memory_order_relaxed) > LOG_DEBUG)
		return;
	va_start(ap, fmt);
	log_vprint("debug", fmt, ap);
	va_end(ap);
}

void log_mdebug(enum log_module m, const char *fmt, ...)
{
	char buf[1100];
	va_list ap;

	if (!LOG_MDEBUG_ON(m))
		return;
	snprintf(buf, sizeof(buf), "%s: %s", log_module_name(m), fmt);
	va_start(ap, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	log_vprint("debug", buf, ap);
#pragma GCC diagnostic pop
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	if (atomic_load_explicit(&log_level, memory_order_relaxed) > LOG_INFO)
		return;
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
