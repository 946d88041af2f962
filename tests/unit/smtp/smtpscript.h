/*
 * smtpscript.h - shared parts of the dialogue script runner: failure
 * reporting, escapes, key=value lookup; the client mode entry points.
 */
#ifndef SMTPSCRIPT_H
#define SMTPSCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "smtp_err.h"

extern const char *sc_path;
extern int sc_line;

void sc_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
size_t sc_unescape(const char *s, size_t n, uint8_t *out);
int sc_quoted(const char **s, uint8_t *out, size_t *len);
const char *sc_kv(const char *args, const char *key, char *val, size_t cap);

/* client mode (smtpscript_client.c) */
void cli_step(const char *cmd, const char *args);
void cli_end(void);

#endif
