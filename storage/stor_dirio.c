/*
 * stor_dirio - directory import/export in the text format of stor_dirio.h.
 *
 * Import parses one line at a time into records and puts them with
 * MDB_NOOVERWRITE (a duplicate is an error), all in one txn. Export walks
 * each table in key order from one read txn.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stor_dirio.h"
#include "stor_err.h"
#include "stor_pwhash.h"

#define MAX_FIELDS 8
#define LINE_MAX_  8192

static const char *tls_names[] = { "none", "opportunistic", "required", "verify" };

struct line {
	char *f[MAX_FIELDS];
	int n;
};

/* split - fields separated by blanks; returns -1 if too many */
static int split(char *s, struct line *l)
{
	l->n = 0;
	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			return 0;
		if (l->n == MAX_FIELDS)
			return -1;
		l->f[l->n++] = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		if (*s)
			*s++ = 0;
	}
}

static struct stor_str S(const char *s) { return (struct stor_str){ s, (uint32_t)strlen(s) }; }

/* parse_route - "route=h:p,h:p" into rt (strings point into s) */
static const char *parse_route(char *s, struct stor_route *rt)
{
	rt->nhops = 0;
	while (*s) {
		char *comma = strchr(s, ',');
		if (comma)
			*comma = 0;
		if (rt->nhops == STOR_ROUTE_HOPS)
			return "too many next hops (at most 8)";
		char *colon = strrchr(s, ':');
		if (!colon || colon == s)
			return "next hop must be HOST:PORT";
		if (s[0] == '[' && colon[-1] != ']')
			return "IPv6 next hop must be [ADDRESS]:PORT";
		char *e;
		unsigned long port = strtoul(colon + 1, &e, 10);
		if (*e || !colon[1] || port == 0 || port > 65535 || colon[1] == '0')
			return "port must be 1..65535";
		*colon = 0;
		rt->hop[rt->nhops++] = (struct stor_hop){ S(s), (uint16_t)port };
		if (!comma)
			break;
		s = comma + 1;
		if (!*s)
			return "empty next hop after ','";
	}
	if (!rt->nhops)
		return "route= needs at least one HOST:PORT";
	return NULL;
}

static const char *parse_tls(const char *s, uint8_t *tls)
{
	for (uint8_t i = 0; i < 4; i++)
		if (!strcmp(s, tls_names[i])) {
			*tls = i;
			return NULL;
		}
	return "tls= must be none, opportunistic, required or verify";
}

/* parse_opts - trailing route= / tls= fields; each at most once */
static const char *parse_opts(struct line *l, int from, struct stor_route *rt,
			      int *has_route, int *has_tls)
{
	*has_route = *has_tls = 0;
	rt->tls = STOR_TLS_OPPORTUNISTIC;
	rt->nhops = 0;
	for (int i = from; i < l->n; i++) {
		const char *e;
		if (!strncmp(l->f[i], "route=", 6)) {
			if ((*has_route)++)
				return "route= given twice";
			if ((e = parse_route(l->f[i] + 6, rt)))
				return e;
		} else if (!strncmp(l->f[i], "tls=", 4)) {
			if ((*has_tls)++)
				return "tls= given twice";
			if ((e = parse_tls(l->f[i] + 4, &rt->tls)))
				return e;
		} else {
			return "unexpected field (expected route=... or tls=...)";
		}
	}
	return NULL;
}

/* parse_limit - "max_conns=N" / "msgs_per_conn=N" / "rate=N" fields from
 * l->f[from]; each at most once, N decimal within its bound (0 = the
 * [delivery] default); at least one above 0 */
static const char *parse_limit(struct line *l, int from, struct stor_dir_limit *v)
{
	static const struct {
		const char *key;
		uint32_t max;
		const char *range;
	} opt[3] = {
		{ "max_conns=", STOR_LIMIT_CONNS_MAX, "max_conns= must be 0..100000" },
		{ "msgs_per_conn=", STOR_LIMIT_MSGS_MAX, "msgs_per_conn= must be 0..1000000" },
		{ "rate=", STOR_LIMIT_RATE_MAX, "rate= must be 0..10000000 (messages/s)" },
	};
	uint32_t *val[3] = { &v->max_conns, &v->msgs_per_conn, &v->rate };
	unsigned seen = 0;
	memset(v, 0, sizeof *v);
	for (int i = from; i < l->n; i++) {
		unsigned k;
		for (k = 0; k < 3; k++)
			if (!strncmp(l->f[i], opt[k].key, strlen(opt[k].key)))
				break;
		if (k == 3)
			return "unexpected field (expected max_conns=N, msgs_per_conn=N or rate=N)";
		if (seen & (1u << k))
			return "limit field given twice";
		seen |= 1u << k;
		const char *p = l->f[i] + strlen(opt[k].key);
		uint64_t n = 0;
		if (!*p || strlen(p) > 8 || (p[0] == '0' && p[1]))
			return opt[k].range;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return opt[k].range;
			n = n * 10 + (uint64_t)(*p - '0');
		}
		if (n > opt[k].max)
			return opt[k].range;
		*val[k] = (uint32_t)n;
	}
	if (!v->max_conns && !v->msgs_per_conn && !v->rate)
		return "limit sets nothing (give max_conns=, msgs_per_conn= or rate= above 0)";
	return NULL;
}

static const char *why(int rc, const char *what)
{
	static __thread char buf[128];
	if (rc == MDB_KEYEXIST)
		snprintf(buf, sizeof buf, "duplicate %s", what);
	else if (rc == EINVAL)
		snprintf(buf, sizeof buf, "invalid %s", what);
	else
		snprintf(buf, sizeof buf, "%s: %s", what, stor_strerror(rc));
	return buf;
}

/* change_del - CHANGE mode: the entry must exist; remove it so the put
 * below writes the new one (same txn). NULL or the reason */
static const char *change_del(struct stor_dir *d, MDB_txn *t, enum stor_dirio_mode mode,
			      enum stor_dir_table tab, const char *name, int *fatal)
{
	int rc;
	if (mode != STOR_DIRIO_CHANGE)
		return NULL;
	rc = stor_dir_del(d, t, tab, S(name));
	if (rc == MDB_NOTFOUND)
		return "no such entry (dir add creates one)";
	if (rc == EINVAL)
		return "invalid name";
	if (rc)
		*fatal = rc;
	return rc ? stor_strerror(rc) : NULL;
}

/* do_line - one non-comment line into the txn; NULL or the reason */
static const char *do_line(struct stor_dir *d, MDB_txn *t, struct line *l,
			   enum stor_dirio_mode mode, int *fatal)
{
	const char *e;
	int rc, hr, ht;
	const char *kw = l->f[0];
	char pk[600];
	*fatal = 0;
	if (!strcmp(kw, "domain")) {
		struct stor_dir_domain v = { 0 };
		if (l->n < 3)
			return "usage: domain NAME local|relay [route=...] [tls=...]";
		if (!strcmp(l->f[2], "local"))
			v.kind = STOR_DOMAIN_LOCAL;
		else if (!strcmp(l->f[2], "relay"))
			v.kind = STOR_DOMAIN_RELAY;
		else
			return "domain kind must be local or relay";
		if ((e = parse_opts(l, 3, &v.route, &hr, &ht)))
			return e;
		if ((e = change_del(d, t, mode, STOR_DIR_DOMAIN, l->f[1], fatal)))
			return e;
		rc = stor_dir_put_domain(d, t, S(l->f[1]), &v, 0);
		return rc ? (*fatal = (rc != EINVAL && rc != MDB_KEYEXIST) ? rc : 0, why(rc, "domain name")) : NULL;
	}
	if (!strcmp(kw, "rcpt")) {
		struct stor_dir_rcpt v = { 0 };
		int first_opt = 3;
		if (l->n < 3)
			return "usage: rcpt ADDR accept|reject|alias TARGETS [route=...] [tls=...]";
		if (!strcmp(l->f[2], "accept"))
			v.action = STOR_ACT_ACCEPT;
		else if (!strcmp(l->f[2], "reject"))
			v.action = STOR_ACT_REJECT;
		else if (!strcmp(l->f[2], "alias")) {
			v.action = STOR_ACT_ALIAS;
			if (l->n < 4 || strchr(l->f[3], '='))
				return "alias needs TARGET[,TARGET...]";
			for (char *s = l->f[3]; s; ) {
				char *comma = strchr(s, ',');
				if (comma)
					*comma = 0;
				if (v.ntargets == STOR_ALIAS_MAX)
					return "too many alias targets (at most 32)";
				if (!*s)
					return "empty alias target";
				v.target[v.ntargets++] = S(s);
				s = comma ? comma + 1 : NULL;
			}
			first_opt = 4;
		} else
			return "recipient action must be accept, reject or alias";
		if ((e = parse_opts(l, first_opt, &v.route, &hr, &ht)))
			return e;
		v.has_route = hr || ht;
		if ((e = change_del(d, t, mode, STOR_DIR_RCPT, l->f[1], fatal)))
			return e;
		rc = stor_dir_put_rcpt(d, t, S(l->f[1]), &v, 0);
		if (rc == MDB_NOTFOUND)
			return "recipient's domain is not declared (add a domain line before it)";
		return rc ? (*fatal = (rc != EINVAL && rc != MDB_KEYEXIST) ? rc : 0,
			     why(rc, "recipient address or alias target")) : NULL;
	}
	if (!strcmp(kw, "user")) {
		if (l->n != 3)
			return "usage: user NAME HASH";
		if (stor_pwhash_check(S(l->f[2])))
			return "password must be a $scrypt$ or $pbkdf2-sha256$ hash (never plain text)";
		if ((e = change_del(d, t, mode, STOR_DIR_USER, l->f[1], fatal)))
			return e;
		rc = stor_dir_put_user(d, t, S(l->f[1]), S(l->f[2]), 0);
		return rc ? (*fatal = (rc != EINVAL && rc != MDB_KEYEXIST) ? rc : 0, why(rc, "user name")) : NULL;
	}
	if (!strcmp(kw, "net")) {
		if (l->n != 2)
			return "usage: net ADDRESS/PREFIXLEN";
		if (mode == STOR_DIRIO_CHANGE)
			return "a net line has nothing to change (dir add / dir remove)";
		rc = stor_dir_put_net(d, t, S(l->f[1]), 0);
		return rc ? (*fatal = (rc != EINVAL && rc != MDB_KEYEXIST) ? rc : 0,
			     rc == EINVAL ? "invalid network (ADDRESS/LEN, no host bits set)" :
			     why(rc, "network")) : NULL;
	}
	if (!strcmp(kw, "prio")) {
		enum stor_prio_kind k;
		if (l->n != 4)
			return "usage: prio sender|rcpt|domain PATTERN LEVEL";
		if (!strcmp(l->f[1], "sender"))
			k = STOR_PRIO_SENDER;
		else if (!strcmp(l->f[1], "rcpt"))
			k = STOR_PRIO_RCPT;
		else if (!strcmp(l->f[1], "domain"))
			k = STOR_PRIO_DOMAIN;
		else
			return "prio kind must be sender, rcpt or domain";
		if (strlen(l->f[3]) != 1 || l->f[3][0] < '0' || l->f[3][0] > '7')
			return "priority level must be 0..7";
		snprintf(pk, sizeof pk, "%c:%.520s", (char)k, l->f[2]);
		if ((e = change_del(d, t, mode, STOR_DIR_PRIO, pk, fatal)))
			return e;
		rc = stor_dir_put_prio(d, t, k, S(l->f[2]), (uint8_t)(l->f[3][0] - '0'), 0);
		return rc ? (*fatal = (rc != EINVAL && rc != MDB_KEYEXIST) ? rc : 0, why(rc, "priority pattern")) : NULL;
	}
	if (!strcmp(kw, "limit")) {
		struct stor_dir_limit v;
		if (l->n < 3)
			return "usage: limit DEST [max_conns=N] [msgs_per_conn=N] [rate=N]";
		if ((e = parse_limit(l, 2, &v)))
			return e;
		if ((e = change_del(d, t, mode, STOR_DIR_LIMIT, l->f[1], fatal)))
			return e;
		rc = stor_dir_put_limit(d, t, S(l->f[1]), &v, 0);
		return rc ? (*fatal = (rc != EINVAL && rc != MDB_KEYEXIST) ? rc : 0,
			     rc == EINVAL ? "invalid destination (DOMAIN or HOST:PORT)" :
			     why(rc, "limit destination")) : NULL;
	}
	return "unknown keyword (domain, rcpt, user, net, prio, limit)";
}

int stor_dirio_line(struct stor_dir *d, MDB_txn *t, char *text,
		    enum stor_dirio_mode mode, char *err, size_t errlen)
{
	struct line l;
	const char *reason;
	int fatal = 0;
	size_t lead = strspn(text, " \t");

	if (strlen(text) > LINE_MAX_)
		reason = "line too long";
	else if (text[lead] == '#' || text[lead] == 0)
		reason = "empty line (expected domain, rcpt, user, net, prio or limit)";
	else if (split(text, &l))
		reason = "too many fields";
	else
		reason = do_line(d, t, &l, mode, &fatal);
	if (!reason)
		return 0;
	snprintf(err, errlen, "%s", reason);
	return fatal ? fatal : EINVAL;
}

int stor_dirio_import(struct stor_dir *d, FILE *in, const char *name,
		      char *err, size_t errlen)
{
	MDB_txn *t;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len;
	long lineno = 0;
	int rc = stor_dir_txn_begin(d, &t);
	if (!name)
		name = "-";
	if (rc || (rc = stor_dir_clear(d, t))) {
		snprintf(err, errlen, "%s: %s", name, stor_strerror(rc));
		if (!rc)
			mdb_txn_abort(t);
		return rc;
	}
	while ((len = getline(&buf, &cap, in)) >= 0) {
		lineno++;
		if (len && buf[len - 1] == '\n')
			buf[--len] = 0;
		if (len && buf[len - 1] == '\r')
			buf[--len] = 0;
		const char *reason = NULL;
		int fatal = 0;
		struct line l;
		size_t lead = strspn(buf, " \t");
		if (len > LINE_MAX_)
			reason = "line too long";
		else if (memchr(buf, 0, (size_t)len))
			reason = "NUL byte in line";
		else if (buf[lead] == '#' || buf[lead] == 0)
			continue;       /* comments are free text, any length */
		else if (split(buf, &l))
			reason = "too many fields";
		else
			reason = do_line(d, t, &l, STOR_DIRIO_ADD, &fatal);
		if (reason) {
			snprintf(err, errlen, "%s:%ld: %s", name, lineno, reason);
			mdb_txn_abort(t);
			free(buf);
			return fatal ? fatal : EINVAL;
		}
	}
	free(buf);
	if (ferror(in)) {
		snprintf(err, errlen, "%s:%ld: read error", name, lineno);
		mdb_txn_abort(t);
		return EIO;
	}
	if ((rc = mdb_txn_commit(t)))
		snprintf(err, errlen, "%s: commit: %s", name, stor_strerror(rc));
	return rc;
}

/* put_route - " route=..." (if hops) and " tls=..." */
static void put_route(FILE *out, const struct stor_route *rt)
{
	if (rt->nhops) {
		fputs(" route=", out);
		for (unsigned i = 0; i < rt->nhops; i++)
			fprintf(out, "%s%.*s:%u", i ? "," : "", (int)rt->hop[i].host.n,
				rt->hop[i].host.p, rt->hop[i].port);
	}
	fprintf(out, " tls=%s", tls_names[rt->tls]);
}

int stor_dirio_entry(enum stor_dir_table tab, const MDB_val *k,
		     const MDB_val *v, FILE *out)
{
	char name[700], kind = 0;
	int rc;

	if (stor_dir_key_text(tab, k->mv_data, k->mv_size, name, sizeof name, &kind))
		return STOR_ECORRUPT;
	switch (tab) {
	case STOR_DIR_DOMAIN: {
		struct stor_dir_domain x;
		if ((rc = stor_rec_domain_decode(v->mv_data, v->mv_size, &x)))
			return rc;
		fprintf(out, "domain %s %s", name, x.kind == STOR_DOMAIN_LOCAL ? "local" : "relay");
		put_route(out, &x.route);
		break;
	}
	case STOR_DIR_RCPT: {
		struct stor_dir_rcpt x;
		if ((rc = stor_rec_rcpt_decode(v->mv_data, v->mv_size, &x)))
			return rc;
		fprintf(out, "rcpt %s %s", name, x.action == STOR_ACT_ACCEPT ? "accept" :
			x.action == STOR_ACT_REJECT ? "reject" : "alias");
		for (unsigned i = 0; i < x.ntargets; i++)
			fprintf(out, "%s%.*s", i ? "," : " ", (int)x.target[i].n, x.target[i].p);
		if (x.has_route)
			put_route(out, &x.route);
		break;
	}
	case STOR_DIR_USER: {
		struct stor_str h;
		if ((rc = stor_rec_user_decode(v->mv_data, v->mv_size, &h)))
			return rc;
		fprintf(out, "user %s %.*s", name, (int)h.n, h.p);
		break;
	}
	case STOR_DIR_NET:
		if ((rc = stor_rec_net_decode(v->mv_data, v->mv_size)))
			return rc;
		fprintf(out, "net %s", name);
		break;
	case STOR_DIR_PRIO: {
		uint8_t lvl;
		if ((rc = stor_rec_prio_decode(v->mv_data, v->mv_size, &lvl)))
			return rc;
		fprintf(out, "prio %s %s %u", kind == 's' ? "sender" : kind == 'r' ? "rcpt" :
			"domain", name, lvl);
		break;
	}
	case STOR_DIR_LIMIT: {
		struct stor_dir_limit x;
		if ((rc = stor_rec_limit_decode(v->mv_data, v->mv_size, &x)))
			return rc;
		fprintf(out, "limit %s", name);
		if (x.max_conns)
			fprintf(out, " max_conns=%u", x.max_conns);
		if (x.msgs_per_conn)
			fprintf(out, " msgs_per_conn=%u", x.msgs_per_conn);
		if (x.rate)
			fprintf(out, " rate=%u", x.rate);
		break;
	}
	default:
		return EINVAL;
	}
	return 0;
}

/* export_table - every entry of one table as lines */
static int export_table(struct stor_dir *d, MDB_txn *t, enum stor_dir_table tab, FILE *out)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(t, stor_dir_dbi(d, tab), &c);
	if (rc)
		return rc;
	while (!(rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
		if ((rc = stor_dirio_entry(tab, &k, &v, out)))
			break;
		fputc('\n', out);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int stor_dirio_export(struct stor_dir *d, FILE *out)
{
	MDB_txn *t;
	int rc = mdb_txn_begin(stor_dir_env(d), NULL, MDB_RDONLY, &t);
	if (rc)
		return rc;
	fputs("# sluice directory (stor_dirio export, format 1)\n", out);
	for (int i = 0; i < STOR_DIR_NTABLES && !rc; i++)
		rc = export_table(d, t, (enum stor_dir_table)i, out);
	mdb_txn_abort(t);
	if (!rc && (fflush(out) || ferror(out)))
		rc = EIO;
	return rc;
}
