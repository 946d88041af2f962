/*
 * cfgval.c - typed, validated reads from an rte_cfgfile INI file.
 *
 * Input: a path. Output: values or one error message naming file, section,
 * key and reason. Invariant: v->failed is sticky; the first error wins.
 * The file is linted line by line first (our own pass, mirroring the rules
 * of rte_cfgfile_load) so syntax errors, duplicate sections and duplicate
 * keys are reported with their line number, and the key table kept from
 * that pass lets the schema check name the line of an unknown key.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cfgfile.h>

#include "cfgval.h"

#define CFGVAL_LINE_MAX (CFG_NAME_LEN + CFG_VALUE_LEN + 4)
#define CFGVAL_COMMENT '#'

int cfgval_fail(struct cfgval *v, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (v->failed)
		return -1;
	v->failed = 1;
	n = snprintf(v->err, sizeof(v->err), "%s: ", v->path);
	if (n < 0 || (size_t)n >= sizeof(v->err))
		return -1;
	va_start(ap, fmt);
	vsnprintf(v->err + n, sizeof(v->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* cfgval_strip - trim blanks at both ends in place; returns new start */
static char *cfgval_strip(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* cfgval_name_add - append name to a growable list unless it is there:
 * 1 added, 0 already present, -1 out of memory (the list stays valid) */
static int cfgval_name_add(char (**list)[CFG_NAME_LEN], unsigned *n,
			   unsigned *cap, const char *name)
{
	for (unsigned i = 0; i < *n; i++)
		if (strcmp((*list)[i], name) == 0)
			return 0;
	if (*n == *cap) {
		unsigned ncap = *cap ? 2 * *cap : 16;
		char (*grown)[CFG_NAME_LEN] = realloc(*list,
						      ncap * sizeof(**list));

		if (!grown)
			return -1;
		*list = grown;
		*cap = ncap;
	}
	snprintf((*list)[(*n)++], CFG_NAME_LEN, "%s", name);
	return 1;
}

/* cfgval_lint - syntax, length and duplicate checks with line numbers */
static int cfgval_lint(struct cfgval *v, FILE *fp)
{
	char line[CFGVAL_LINE_MAX + 2];
	char (*secs)[CFG_NAME_LEN] = NULL;
	char (*keys)[CFG_NAME_LEN] = NULL;
	unsigned nsec = 0, nkey = 0, cap_s = 0, cap_k = 0, lineno = 0;
	int rc = 0;

	while (rc == 0 && fgets(line, sizeof(line), fp)) {
		char *p, *eq, *key, *val;
		size_t len = strlen(line);
		int added;

		lineno++;
		if (len > 0 && line[len - 1] != '\n' && !feof(fp)) {
			rc = cfgval_fail(v, "line %u: line too long (max %d "
					 "characters)", lineno, CFGVAL_LINE_MAX);
			break;
		}
		p = strchr(line, CFGVAL_COMMENT);
		if (p)
			*p = '\0';
		p = cfgval_strip(line);
		if (*p == '\0')
			continue;
		if (*p == '[') {
			char *end = strchr(p, ']');

			if (!end || end[1] != '\0') {
				rc = cfgval_fail(v, "line %u: bad section "
						 "header \"%s\"", lineno, p);
				break;
			}
			*end = '\0';
			p = cfgval_strip(p + 1);
			if (*p == '\0' || strlen(p) >= CFG_NAME_LEN) {
				rc = cfgval_fail(v, "line %u: bad section "
						 "name", lineno);
				break;
			}
			added = cfgval_name_add(&secs, &nsec, &cap_s, p);
			if (added == 0)
				rc = cfgval_fail(v, "line %u: section [%s] "
						 "appears twice", lineno, p);
			else if (added < 0)
				rc = cfgval_fail(v, "out of memory");
			if (rc)
				break;
			nkey = 0;
			continue;
		}
		eq = strchr(p, '=');
		if (!eq) {
			rc = cfgval_fail(v, "line %u: expected \"key = value\" "
					 "or \"[section]\", got \"%s\"", lineno, p);
			break;
		}
		*eq = '\0';
		key = cfgval_strip(p);
		val = cfgval_strip(eq + 1);
		if (nsec == 0) {
			rc = cfgval_fail(v, "line %u: \"%s\" is outside any "
					 "[section]", lineno, key);
			break;
		}
		if (*key == '\0' || strlen(key) >= CFG_NAME_LEN) {
			rc = cfgval_fail(v, "line %u: bad key name", lineno);
			break;
		}
		if (*val == '\0') {
			rc = cfgval_fail(v, "line %u: [%s] %s: empty value",
					 lineno, secs[nsec - 1], key);
			break;
		}
		if (strlen(val) >= CFG_VALUE_LEN) {
			rc = cfgval_fail(v, "line %u: [%s] %s: value too long "
					 "(max %d characters)", lineno,
					 secs[nsec - 1], key, CFG_VALUE_LEN - 1);
			break;
		}
		added = cfgval_name_add(&keys, &nkey, &cap_k, key);
		if (added == 0)
			rc = cfgval_fail(v, "line %u: [%s] %s: key appears "
					 "twice in the section", lineno,
					 secs[nsec - 1], key);
		else if (added < 0)
			rc = cfgval_fail(v, "out of memory");
	}
	if (rc == 0 && ferror(fp))
		rc = cfgval_fail(v, "read error: %s", strerror(errno));
	free(secs);
	free(keys);
	return rc;
}

int cfgval_open(struct cfgval *v, const char *path)
{
	struct rte_cfgfile_parameters params = {
		.comment_character = CFGVAL_COMMENT,
	};
	FILE *fp;

	memset(v, 0, sizeof(*v));
	snprintf(v->path, sizeof(v->path), "%s", path);
	fp = fopen(path, "r");
	if (!fp)
		return cfgval_fail(v, "cannot open: %s", strerror(errno));
	if (cfgval_lint(v, fp) < 0) {
		fclose(fp);
		return -1;
	}
	fclose(fp);
	v->file = rte_cfgfile_load_with_params(path, 0, &params);
	if (!v->file)
		return cfgval_fail(v, "rte_cfgfile_load failed (syntax)");
	return 0;
}

int cfgval_close(struct cfgval *v, char *err, size_t errlen)
{
	if (v->file)
		rte_cfgfile_close(v->file);
	v->file = NULL;
	if (!v->failed)
		return 0;
	snprintf(err, errlen, "%s", v->err);
	return -1;
}

/* cfgval_known - is name in the NULL-terminated list */
static bool cfgval_known(const char *const *list, const char *name)
{
	for (; list && *list; list++)
		if (strcmp(*list, name) == 0)
			return true;
	return false;
}

/* cfgval_join - "a, b, c" of a key list for error messages */
static void cfgval_join(const char *const *list, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (; list && *list && off < len; list++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
					off ? ", " : "", *list);
}

int cfgval_check_schema(struct cfgval *v, const struct cfgval_section *schema)
{
	int nsec;

	if (v->failed)
		return -1;
	nsec = rte_cfgfile_num_sections(v->file, "", 0);
	for (int i = 0; i < nsec; i++) {
		char name[CFG_NAME_LEN];
		const struct cfgval_section *sec;
		struct rte_cfgfile_entry *ent;
		int n;

		n = rte_cfgfile_section_num_entries_by_index(v->file, name, i);
		for (sec = schema; sec->name; sec++)
			if (strcmp(sec->name, name) == 0)
				break;
		if (!sec->name) {
			char known[256] = "";
			size_t off = 0;

			for (sec = schema; sec->name && off < sizeof(known);
			     sec++)
				off += (size_t)snprintf(known + off,
					sizeof(known) - off, "%s[%s]",
					off ? " " : "", sec->name);
			return cfgval_fail(v, "[%s]: unknown section (known: "
					   "%s)", name, known);
		}
		if (n <= 0)
			continue;
		ent = calloc((size_t)n, sizeof(*ent));
		if (!ent)
			return cfgval_fail(v, "out of memory");
		n = rte_cfgfile_section_entries_by_index(v->file, i, name,
							 ent, n);
		for (int k = 0; k < n; k++) {
			if (!cfgval_known(sec->keys, ent[k].name)) {
				char known[256];

				cfgval_join(sec->keys, known, sizeof(known));
				cfgval_fail(v, "[%s] %s: unknown key (known: "
					    "%s)", name, ent[k].name, known);
				free(ent);
				return -1;
			}
		}
		free(ent);
	}
	return 0;
}

const char *cfgval_raw(struct cfgval *v, const char *sec, const char *key)
{
	if (!v->file)
		return NULL;
	return rte_cfgfile_get_entry(v->file, sec, key);
}

bool cfgval_has(struct cfgval *v, const char *sec, const char *key)
{
	return cfgval_raw(v, sec, key) != NULL;
}

int cfgval_str(struct cfgval *v, const char *sec, const char *key,
	       const char *def, char *out, size_t outlen)
{
	const char *s;

	if (v->failed)
		return -1;
	s = cfgval_raw(v, sec, key);
	if (!s)
		s = def ? def : "";
	if (strlen(s) >= outlen)
		return cfgval_fail(v, "[%s] %s: \"%s\" is too long (max %zu "
				   "characters)", sec, key, s, outlen - 1);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

int cfgval_uint(struct cfgval *v, const char *sec, const char *key,
		uint64_t min, uint64_t max, uint64_t def, uint64_t *out)
{
	const char *s;
	char *end;
	unsigned long long x;

	if (v->failed)
		return -1;
	s = cfgval_raw(v, sec, key);
	if (!s) {
		*out = def;
		return 0;
	}
	errno = 0;
	if (!isdigit((unsigned char)s[0]))
		goto bad;
	x = strtoull(s, &end, 10);
	if (errno || *end != '\0')
		goto bad;
	if (x < min || x > max)
		goto bad;
	*out = x;
	return 0;
bad:
	return cfgval_fail(v, "[%s] %s: \"%s\" is not an integer in %llu..%llu",
			   sec, key, s, (unsigned long long)min,
			   (unsigned long long)max);
}

int cfgval_u32(struct cfgval *v, const char *sec, const char *key,
	       uint32_t min, uint32_t max, uint32_t def, uint32_t *out)
{
	uint64_t x;

	if (cfgval_uint(v, sec, key, min, max, def, &x) < 0)
		return -1;
	*out = (uint32_t)x;
	return 0;
}

int cfgval_bool(struct cfgval *v, const char *sec, const char *key,
		bool def, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };
	const char *s;

	if (v->failed)
		return -1;
	s = cfgval_raw(v, sec, key);
	if (!s) {
		*out = def;
		return 0;
	}
	for (unsigned i = 0; yes[i]; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return cfgval_fail(v, "[%s] %s: \"%s\" is not yes or no", sec, key, s);
}

int cfgval_parse_ipv4(const char *s, uint32_t *ip)
{
	uint32_t a = 0;

	for (int i = 0; i < 4; i++) {
		unsigned long x;
		char *end;

		if (!isdigit((unsigned char)*s))
			return -1;
		/* no leading zeros: "010" is ambiguous (octal in inet_aton) */
		if (s[0] == '0' && isdigit((unsigned char)s[1]))
			return -1;
		x = strtoul(s, &end, 10);
		if (x > 255 || end - s > 3)
			return -1;
		a = a << 8 | (uint32_t)x;
		s = end;
		if (i < 3) {
			if (*s != '.')
				return -1;
			s++;
		}
	}
	if (*s != '\0')
		return -1;
	*ip = a;
	return 0;
}

int cfgval_parse_ipv4_prefix(const char *s, uint32_t *ip, uint8_t *prefix)
{
	char buf[32];
	const char *slash = strchr(s, '/');
	char *end;
	unsigned long p;

	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	if (cfgval_parse_ipv4(buf, ip) < 0)
		return -1;
	if (!isdigit((unsigned char)slash[1]))
		return -1;
	p = strtoul(slash + 1, &end, 10);
	if (*end != '\0' || p < 1 || p > 32)
		return -1;
	*prefix = (uint8_t)p;
	return 0;
}

int cfgval_parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		if (!isxdigit((unsigned char)s[0]) ||
		    !isxdigit((unsigned char)s[1]))
			return -1;
		mac[i] = (uint8_t)strtoul((char[]){ s[0], s[1], 0 }, NULL, 16);
		s += 2;
		if (i < 5 && *s++ != ':')
			return -1;
	}
	return *s == '\0' ? 0 : -1;
}

int cfgval_ipv4(struct cfgval *v, const char *sec, const char *key,
		uint32_t def, uint32_t *out)
{
	const char *s;

	if (v->failed)
		return -1;
	s = cfgval_raw(v, sec, key);
	if (!s) {
		*out = def;
		return 0;
	}
	if (cfgval_parse_ipv4(s, out) < 0)
		return cfgval_fail(v, "[%s] %s: \"%s\" is not an IPv4 address",
				   sec, key, s);
	return 0;
}

int cfgval_ipv4_prefix(struct cfgval *v, const char *sec, const char *key,
		       bool required, uint32_t *ip, uint8_t *prefix)
{
	const char *s;

	if (v->failed)
		return -1;
	s = cfgval_raw(v, sec, key);
	if (!s) {
		if (required)
			return cfgval_fail(v, "[%s] %s: missing (required, "
					   "e.g. 192.0.2.1/24)", sec, key);
		*ip = 0;
		*prefix = 0;
		return 0;
	}
	if (cfgval_parse_ipv4_prefix(s, ip, prefix) < 0)
		return cfgval_fail(v, "[%s] %s: \"%s\" is not an IPv4 "
				   "address/prefix", sec, key, s);
	return 0;
}

int cfgval_mac(struct cfgval *v, const char *sec, const char *key,
	       uint8_t mac[6], bool *present)
{
	const char *s;

	*present = false;
	if (v->failed)
		return -1;
	s = cfgval_raw(v, sec, key);
	if (!s)
		return 0;
	if (cfgval_parse_mac(s, mac) < 0)
		return cfgval_fail(v, "[%s] %s: \"%s\" is not a MAC address "
				   "(aa:bb:cc:dd:ee:ff)", sec, key, s);
	if (mac[0] & 1)
		return cfgval_fail(v, "[%s] %s: \"%s\" is a multicast MAC "
				   "address", sec, key, s);
	*present = true;
	return 0;
}

int cfgval_uint_list(struct cfgval *v, const char *sec, const char *key,
		     unsigned min, unsigned max, unsigned *out, unsigned n,
		     unsigned *count)
{
	const char *s, *p;
	unsigned k = 0;

	*count = 0;
	if (v->failed)
		return -1;
	s = cfgval_raw(v, sec, key);
	if (!s)
		return 0;
	p = s;
	for (;;) {
		unsigned long lo, hi;
		char *end;

		while (isspace((unsigned char)*p))
			p++;
		if (!isdigit((unsigned char)*p))
			goto bad;
		lo = hi = strtoul(p, &end, 10);
		p = end;
		if (*p == '-') {
			p++;
			if (!isdigit((unsigned char)*p))
				goto bad;
			hi = strtoul(p, &end, 10);
			p = end;
		}
		if (lo > hi || lo < min || hi > max)
			goto bad;
		for (unsigned long x = lo; x <= hi; x++) {
			for (unsigned i = 0; i < k; i++)
				if (out[i] == x)
					return cfgval_fail(v, "[%s] %s: \"%s\" "
						"lists %lu twice", sec, key,
						s, x);
			if (k == n)
				return cfgval_fail(v, "[%s] %s: \"%s\" has more "
					"than %u entries", sec, key, s, n);
			out[k++] = (unsigned)x;
		}
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		if (*p++ != ',')
			goto bad;
	}
	*count = k;
	return 0;
bad:
	return cfgval_fail(v, "[%s] %s: \"%s\" is not a list of numbers in "
			   "%u..%u (e.g. 1,3-5)", sec, key, s, min, max);
}

int cfgval_hex(struct cfgval *v, const char *sec, const char *key,
	       const unsigned *lens, uint8_t *out, size_t outmax, size_t *len)
{
	const char *s, *p;
	size_t k = 0;
	char want[64];
	size_t off = 0;

	*len = 0;
	if (v->failed)
		return -1;
	s = cfgval_raw(v, sec, key);
	if (!s)
		return 0;
	for (p = s; *p;) {
		if (*p == ':') {
			p++;
			continue;
		}
		if (!isxdigit((unsigned char)p[0]) ||
		    !isxdigit((unsigned char)p[1]) || k == outmax)
			goto bad;
		out[k++] = (uint8_t)strtoul((char[]){ p[0], p[1], 0 }, NULL,
					    16);
		p += 2;
	}
	for (const unsigned *l = lens; *l; l++)
		if (k == *l) {
			*len = k;
			return 0;
		}
bad:
	for (const unsigned *l = lens; *l && off < sizeof(want); l++)
		off += (size_t)snprintf(want + off, sizeof(want) - off,
					"%s%u", off ? " or " : "", *l);
	return cfgval_fail(v, "[%s] %s: \"%.40s%s\" is not %s hex bytes", sec,
			   key, s, strlen(s) > 40 ? "..." : "", want);
}

int cfgval_enum(struct cfgval *v, const char *sec, const char *key,
		const char *const *names, unsigned def, unsigned *out)
{
	const char *s;
	char known[128];

	if (v->failed)
		return -1;
	s = cfgval_raw(v, sec, key);
	if (!s) {
		*out = def;
		return 0;
	}
	for (unsigned i = 0; names[i]; i++)
		if (strcmp(names[i], s) == 0) {
			*out = i;
			return 0;
		}
	cfgval_join(names, known, sizeof(known));
	return cfgval_fail(v, "[%s] %s: \"%s\" is not one of: %s", sec, key, s,
			   known);
}
