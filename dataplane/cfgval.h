/*
 * cfgval.h - typed, validated reads from an INI file loaded by rte_cfgfile.
 *
 * Shared by the sluice.conf reader (cfg.c) and the NIC profile reader
 * (nicprof.c). A struct cfgval holds the open file and the first error.
 * Every getter returns 0 (value stored, or the default when the key is
 * absent) or -1 with a message in v->err of the form
 *     FILE: [section] key: "value" is not <what was expected>
 * which the caller passes to log_fatal(). After the first error further
 * getters do nothing and return -1, so a reader can call them in a row and
 * check once. Syntax is checked line by line before rte_cfgfile parses the
 * file, so syntax errors name the line. '#' starts a comment.
 *
 * Unknown sections and keys are errors (cfgval_check_schema): a typo must
 * never be silently ignored. Works without EAL initialisation.
 */
#ifndef SLUICE_CFGVAL_H
#define SLUICE_CFGVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rte_cfgfile;

#define CFGVAL_ERRLEN 512

struct cfgval {
	struct rte_cfgfile *file;
	char path[256];
	char err[CFGVAL_ERRLEN];
	int failed;
};

/* a section and the keys it may hold (NULL-terminated) */
struct cfgval_section {
	const char *name;
	const char *const *keys;
};

/* cfgval_open - lint and load path; -1 and v->err when missing or bad */
int cfgval_open(struct cfgval *v, const char *path);
/* cfgval_close - release the file and report: 0, or -1 with the first
 * error recorded copied into err */
int cfgval_close(struct cfgval *v, char *err, size_t errlen);
/* cfgval_fail - record an error about the file (printf style); returns -1 */
int cfgval_fail(struct cfgval *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* cfgval_check_schema - every section and key must be in schema, none twice */
int cfgval_check_schema(struct cfgval *v, const struct cfgval_section *schema);

bool cfgval_has(struct cfgval *v, const char *sec, const char *key);
/* cfgval_raw - value or NULL when absent */
const char *cfgval_raw(struct cfgval *v, const char *sec, const char *key);

int cfgval_str(struct cfgval *v, const char *sec, const char *key,
	       const char *def, char *out, size_t outlen);
int cfgval_uint(struct cfgval *v, const char *sec, const char *key,
		uint64_t min, uint64_t max, uint64_t def, uint64_t *out);
int cfgval_u32(struct cfgval *v, const char *sec, const char *key,
	       uint32_t min, uint32_t max, uint32_t def, uint32_t *out);
int cfgval_bool(struct cfgval *v, const char *sec, const char *key,
		bool def, bool *out);
/* cfgval_ipv4 - dotted quad, host order; absent: *out = def */
int cfgval_ipv4(struct cfgval *v, const char *sec, const char *key,
		uint32_t def, uint32_t *out);
/* cfgval_ipv4_prefix - "A.B.C.D/N", N 1..32; required when 'required' */
int cfgval_ipv4_prefix(struct cfgval *v, const char *sec, const char *key,
		       bool required, uint32_t *ip, uint8_t *prefix);
/* cfgval_mac - "aa:bb:cc:dd:ee:ff"; *present false when absent */
int cfgval_mac(struct cfgval *v, const char *sec, const char *key,
	       uint8_t mac[6], bool *present);
/* cfgval_uint_list - "1,3-5" into out (max n, sorted as written, no
 * duplicates, each in min..max); absent: *count = 0 */
int cfgval_uint_list(struct cfgval *v, const char *sec, const char *key,
		     unsigned min, unsigned max, unsigned *out, unsigned n,
		     unsigned *count);
/* cfgval_hex - hex bytes (':' or no separator) of exactly one of the
 * lengths in lens[] (0-terminated); *len = 0 when absent */
int cfgval_hex(struct cfgval *v, const char *sec, const char *key,
	       const unsigned *lens, uint8_t *out, size_t outmax,
	       size_t *len);
/* cfgval_enum - value must be one of names[] (NULL-terminated); index out */
int cfgval_enum(struct cfgval *v, const char *sec, const char *key,
		const char *const *names, unsigned def, unsigned *out);

/* parsers usable on their own (no file): 0 or -1 */
int cfgval_parse_ipv4(const char *s, uint32_t *ip);
int cfgval_parse_ipv4_prefix(const char *s, uint32_t *ip, uint8_t *prefix);
int cfgval_parse_mac(const char *s, uint8_t mac[6]);

#endif
