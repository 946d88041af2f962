/*
 * log.h - control-plane messages in the Postfix msg(3) style.
 *
 *   log_info/log_warn  one line on stderr: "sluiced: info: text"
 *   log_debug          "sluiced: debug: text" when the level is debug
 *   log_mdebug         "sluiced: debug: MODULE: text" when the level is
 *                      debug or that module's debug bit is on
 *   log_fatal          "sluiced: fatal: text", then exit(1): bad config or
 *                      environment at start-up (names file, key and reason)
 *   log_panic          "sluiced: panic: text", then abort(): a broken
 *                      invariant, i.e. a programmer error
 *
 * Level and module mask change at run time (sluicectl log ...): both are
 * atomics read with relaxed loads, and LOG_MDEBUG_ON() is checked before
 * any formatting, so a debug call that is off costs one load and a branch
 * and may sit on an io lcore's rare paths (accept, reload, drain). Lines
 * are still not for the per-packet path.
 * Thread-safe in the sense of stdio (one fprintf per line).
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>
#include <stdatomic.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2 };

/* modules with their own debug switch (bit = 1 << module) */
enum log_module { LOG_M_SMTPD = 0, LOG_M_DELIVER, LOG_M_DSCHED,
		  LOG_M_STACK, LOG_M_STORAGE, LOG_M_CTL, LOG_M_COUNT };

extern atomic_uint log_debug_mask;   /* read through LOG_MDEBUG_ON */

/* LOG_MDEBUG_ON - would a log_mdebug(m, ...) print now */
#define LOG_MDEBUG_ON(m) \
	((atomic_load_explicit(&log_debug_mask, memory_order_relaxed) >> \
	  (m)) & 1u)

/* log_init - set the program name printed first on every line */
void log_init(const char *progname);
/* log_set_verbose - on: level debug; off: level info */
void log_set_verbose(int on);
/* log_set_level / log_get_level - lines below the level are dropped
 * (warnings, fatal and panic always print) */
void log_set_level(enum log_level l);
enum log_level log_get_level(void);
/* log_level_name / log_level_parse - "debug", "info", "warn"; parse: 0
 * or -1 */
const char *log_level_name(enum log_level l);
int log_level_parse(const char *s, enum log_level *l);
/* log_module_name / log_module_parse - "smtpd", "deliver", "dsched",
 * "stack", "storage", "ctl"; parse: the module or -1 */
const char *log_module_name(enum log_module m);
int log_module_parse(const char *s);
/* log_module_debug - switch one module's debug lines on or off */
void log_module_debug(enum log_module m, int on);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_mdebug(enum log_module m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
void log_panic(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#endif
