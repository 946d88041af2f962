/*
 * log.h - control-plane messages in the Postfix msg(3) style.
 *
 *   log_info/log_warn  one line on stderr: "sluiced: info: text"
 *   log_fatal          "sluiced: fatal: text", then exit(1): bad config or
 *                      environment at start-up (names file, key and reason)
 *   log_panic          "sluiced: panic: text", then abort(): a broken
 *                      invariant, i.e. a programmer error
 *
 * Not for the fast path: io lcores count problems instead of printing them.
 * Thread-safe in the sense of stdio (one fprintf per line).
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>

/* log_init - set the program name printed first on every line */
void log_init(const char *progname);
/* log_set_verbose - enable log_debug output */
void log_set_verbose(int on);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
void log_panic(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#endif
