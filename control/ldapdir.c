/*
 * ldapdir.c - the LDAP directory backend (ldapdir.h): filter expansion and
 * cache records (pure), the LMDB cache, and the "sluice-ldap" thread.
 *
 * Input: recipient lookups and AUTH items on two MP/SC rings, the [ldap]
 * config. Output: cache records, answers on the requesters' rings.
 * Invariants: only the thread writes the cache and touches libldap; every
 * request taken gets exactly one answer, within timeout_ms of being taken
 * (plus one connection attempt per URI, each bounded by timeout_ms); a
 * lookup that did not get a real answer from LDAP never yields "not
 * found" unless an unexpired negative answer is cached.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lber.h>
#include <ldap.h>
#include <lmdb.h>
#include <rte_errno.h>
#include <rte_ring.h>
#include <rte_telemetry.h>

#include "ldapdir.h"
#include "log.h"
#include "stor_rec.h"

_Static_assert(LDAPDIR_REC_MAX == MSTORE_X_BUF, "reader copies a record");

#define LDAPDIR_REQQ 4096
#define LDAPDIR_AUTHQ 1024
#define LDAPDIR_MAX_PEND 256
#define LDAPDIR_BINDQ 64
#define LDAPDIR_BURST 32
#define LDAPDIR_FILTER_MAX 4096
#define LDAPDIR_DN_MAX 1024
#define LDAPDIR_REC_HDR 20

/* ---- pure parts ---- */

int ldapdir_escape(const char *in, size_t n, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch == '*' || ch == '(' || ch == ')' || ch == '\\' ||
		    ch == '\0') {
			if (o + 3 >= cap)
				return -1;
			out[o++] = '\\';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		} else {
			if (o + 1 >= cap)
				return -1;
			out[o++] = (char)ch;
		}
	}
	if (o >= cap)
		return -1;
	out[o] = '\0';
	return (int)o;
}

int ldapdir_filter(const char *tmpl, const char *name, size_t n, char *out,
		   size_t cap)
{
	const char *at = memrchr(name, '@', n);
	size_t o = 0, ul = at ? (size_t)(at - name) : n;

	for (const char *p = tmpl; *p; p++) {
		const char *v;
		size_t vl;
		int w;

		if (*p != '%') {
			if (o + 1 >= cap)
				return -1;
			out[o++] = *p;
			continue;
		}
		switch (*++p) {
		case 's': v = name; vl = n; break;
		case 'u': v = name; vl = ul; break;
		case 'd': v = at ? at + 1 : ""; vl = at ? n - ul - 1 : 0; break;
		case '%':
			if (o + 1 >= cap)
				return -1;
			out[o++] = '%';
			continue;
		default:
			return -1;
		}
		if (o >= cap)
			return -1;
		w = ldapdir_escape(v, vl, out + o, cap - o);
		if (w < 0)
			return -1;
		o += (size_t)w;
	}
	if (o >= cap)
		return -1;
	out[o] = '\0';
	return (int)o;
}

int ldapdir_route_norm(const char *v, size_t n, char *out, size_t cap)
{
	const char *host = v, *colon = NULL;
	size_t hl;
	unsigned long port = 25;
	int w;

	while (n && isspace((unsigned char)v[n - 1]))
		n--;
	while (n && isspace((unsigned char)*v)) {
		v++;
		n--;
	}
	host = v;
	if (n && *v == '[') {
		const char *rb = memchr(v, ']', n);

		if (!rb)
			return -1;
		host = v + 1;
		hl = (size_t)(rb - host);
		if (rb + 1 < v + n) {
			if (rb[1] != ':')
				return -1;
			colon = rb + 1;
		}
	} else {
		colon = memchr(v, ':', n);
		hl = colon ? (size_t)(colon - v) : n;
	}
	if (colon) {
		const char *p = colon + 1;
		size_t pl = (size_t)(v + n - p);

		if (pl == 0 || pl > 5)
			return -1;
		port = 0;
		for (size_t i = 0; i < pl; i++) {
			if (!isdigit((unsigned char)p[i]))
				return -1;
			port = port * 10 + (unsigned long)(p[i] - '0');
		}
		if (port == 0 || port > 65535)
			return -1;
	}
	if (hl == 0 || hl > 253 || host[0] == '-' || host[0] == '.')
		return -1;
	for (size_t i = 0; i < hl; i++)
		if (!(isalnum((unsigned char)host[i]) || host[i] == '-' ||
		      host[i] == '.'))
			return -1;
	w = snprintf(out, cap, "%.*s:%lu", (int)hl, host, port);
	if (w < 0 || (size_t)w >= cap)
		return -1;
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return w;
}

bool ldapdir_domain_listed(const char *list, const char *dom, size_t n)
{
	const char *p = list;
	bool any = false;

	for (;;) {
		size_t l;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			return !any;
		any = true;
		l = strcspn(p, " \t,");
		if (l == n && strncasecmp(p, dom, n) == 0)
			return true;
		p += l;
	}
}

int ldapdir_conn_why(char *out, size_t cap, const char *errstr,
		     const char *diag, bool tls_begun, const char *ca_file)
{
	bool say_diag = diag && diag[0] && strcmp(diag, errstr) != 0 &&
			strcmp(diag, "(unknown error code)") != 0;
	int w;

	if (tls_begun)
		w = snprintf(out, cap, "TLS handshake failed: %s%s%s%s "
			     "(check that the server's certificate chains to "
			     "%s%s and names the URI's host)", errstr,
			     say_diag ? " (" : "", say_diag ? diag : "",
			     say_diag ? ")" : "",
			     ca_file[0] ? "tls_ca_file " : "the system CAs",
			     ca_file);
	else
		w = snprintf(out, cap, "%s%s%s%s", errstr, say_diag ? " (" : "",
			     say_diag ? diag : "", say_diag ? ")" : "");
	if (w < 0)
		return -1;
	return (size_t)w < cap ? w : (int)cap - 1;
}

int ldapdir_rec_encode(const struct ldapdir_rec *r, uint8_t *out, size_t cap)
{
	size_t o = LDAPDIR_REC_HDR;

	if (cap < LDAPDIR_REC_HDR + 2 + 4 || r->naliases > MSTORE_X_ALIASES ||
	    r->route_len > 65535)
		return -1;
	out[0] = 1;
	out[1] = r->verdict;
	out[2] = (uint8_t)r->naliases;
	out[3] = 0;
	stor_put_le64(out + 4, r->fetched_ms);
	stor_put_le64(out + 12, r->expires_ms);
	for (unsigned i = 0; i <= r->naliases; i++) {
		const char *s = i == 0 ? r->route : r->alias[i - 1];
		size_t l = i == 0 ? r->route_len : r->alias_len[i - 1];

		if (l > 65535 || cap - o < 2 + l + 4)
			return -1;
		stor_put_le16(out + o, (uint16_t)l);
		if (l)
			memcpy(out + o + 2, s, l);
		o += 2 + l;
	}
	stor_put_le32(out + o, stor_crc32c(0, out, o));
	return (int)(o + 4);
}

int ldapdir_rec_decode(const uint8_t *p, size_t n, struct ldapdir_rec *r)
{
	size_t o = LDAPDIR_REC_HDR;

	memset(r, 0, sizeof(*r));
	if (n < LDAPDIR_REC_HDR + 2 + 4 || p[0] != 1 ||
	    (p[1] != LDAPDIR_FOUND && p[1] != LDAPDIR_NOTFOUND) ||
	    p[2] > MSTORE_X_ALIASES ||
	    stor_get_le32(p + n - 4) != stor_crc32c(0, p, n - 4))
		return -1;
	r->verdict = p[1];
	r->naliases = p[2];
	r->fetched_ms = stor_get_le64(p + 4);
	r->expires_ms = stor_get_le64(p + 12);
	for (unsigned i = 0; i <= r->naliases; i++) {
		size_t l;

		if (n - 4 - o < 2)
			return -1;
		l = stor_get_le16(p + o);
		if (n - 4 - o - 2 < l)
			return -1;
		if (i == 0) {
			r->route = (const char *)p + o + 2;
			r->route_len = l;
		} else {
			r->alias[i - 1] = (const char *)p + o + 2;
			r->alias_len[i - 1] = l;
		}
		o += 2 + l;
	}
	return o + 4 == n ? 0 : -1;
}

enum ldapdir_age ldapdir_rec_age(const struct ldapdir_rec *r,
				 uint64_t now_ms, uint64_t stale_max_ms)
{
	if (now_ms < r->expires_ms)
		return LDAPDIR_FRESH;
	if (r->verdict == LDAPDIR_FOUND && now_ms - r->expires_ms < stale_max_ms)
		return LDAPDIR_STALE;
	return LDAPDIR_DEAD;
}

/* ---- the backend ---- */

struct ldapdir_stats {
	atomic_uint_fast64_t searches, found, notfound, unavail, stale_served,
		timeouts, connects, connect_fails, conn_lost, auth_ok,
		auth_fail, auth_unavail, hits_fresh, hits_stale, misses,
		cache_writes, cache_errors;
};

enum { LDAPDIR_P_RCPT = 1, LDAPDIR_P_AUTH = 2 };

struct ldapdir_pend {
	int msgid;                  /* 0: free */
	uint8_t kind, retried;
	uint64_t deadline;          /* monotonic ms */
	struct mstore_xreq *q;
	struct work *w;
};

struct ldapdir_bind {
	struct work *w;
	char dn[LDAPDIR_DN_MAX];
};

struct ldapdir {
	struct cfg_ldap c;
	struct mstore *m;
	char cache_dir[300];
	char pw[512];               /* service bind password */
	size_t pwlen;
	MDB_env *env;
	MDB_dbi dbi;
	struct rte_ring *req, *authq;
	pthread_t th;
	bool started;
	atomic_bool stop;
	struct ldapdir_stats st;

	/* thread-owned */
	LDAP *ld, *ald;             /* service, auth connection */
	uint64_t down_until;        /* monotonic ms; 0 = may connect */
	bool down_logged;
	bool tls_begun;             /* TLS connect callback ran (this try) */
	struct ldapdir_pend pend[LDAPDIR_MAX_PEND];
	unsigned npend;
	struct ldapdir_bind bq[LDAPDIR_BINDQ];
	unsigned bq_head, bq_n;
	struct work *bind_w;        /* bind in flight on ald */
	int bind_msgid;
	uint64_t bind_deadline;
	MDB_txn *wtxn;              /* cache writes of this round */
	struct mstore_xreq *out[LDAPDIR_MAX_PEND + LDAPDIR_BURST * 2];
	unsigned nout;
};

struct ldapdir_reader {
	struct ldapdir *l;
	MDB_txn *txn;
};

static struct ldapdir *ldapdir_tele;   /* telemetry's view (one per process) */

static uint64_t ldapdir_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t ldapdir_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define LDAPDIR_INC(l, f) atomic_fetch_add_explicit(&(l)->st.f, 1, \
						    memory_order_relaxed)

/* ldapdir_lower - ASCII lower-case copy of a key; length or -1 */
static int ldapdir_lower(const char *s, size_t n, char *out, size_t cap)
{
	if (n == 0 || n >= cap)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[n] = '\0';
	return (int)n;
}

/* ---- cache ---- */

/* ldapdir_cache_get - record for key in txn, decoded into buf; 0,
 * MDB_NOTFOUND (also for a damaged record) or an MDB code */
static int ldapdir_cache_get(struct ldapdir *l, MDB_txn *t, const char *key,
			     size_t kn, uint8_t *buf, struct ldapdir_rec *r)
{
	MDB_val k = { kn, (void *)(uintptr_t)key }, v;
	int rc = mdb_get(t, l->dbi, &k, &v);

	if (rc != 0)
		return rc;
	if (v.mv_size > LDAPDIR_REC_MAX)
		return MDB_NOTFOUND;
	memcpy(buf, v.mv_data, v.mv_size);
	if (ldapdir_rec_decode(buf, v.mv_size, r) < 0) {
		LDAPDIR_INC(l, cache_errors);
		return MDB_NOTFOUND;
	}
	return 0;
}

/* ldapdir_cache_put - one record into this round's write txn */
static void ldapdir_cache_put(struct ldapdir *l, const char *key,
			      const struct ldapdir_rec *r)
{
	uint8_t buf[LDAPDIR_REC_MAX];
	int n = ldapdir_rec_encode(r, buf, sizeof(buf));
	MDB_val k = { strlen(key), (void *)(uintptr_t)key }, v;
	int rc;

	if (n < 0) {
		log_warn("ldap: answer for <%s> too large to cache", key);
		LDAPDIR_INC(l, cache_errors);
		return;
	}
	v = (MDB_val){ (size_t)n, buf };
	if (!l->wtxn && (rc = mdb_txn_begin(l->env, NULL, 0, &l->wtxn)) != 0) {
		log_warn("ldap: cache: %s", mdb_strerror(rc));
		l->wtxn = NULL;
		LDAPDIR_INC(l, cache_errors);
		return;
	}
	rc = mdb_put(l->wtxn, l->dbi, &k, &v, 0);
	if (rc != 0) {
		log_warn("ldap: cache put <%s>: %s", key, mdb_strerror(rc));
		LDAPDIR_INC(l, cache_errors);
		mdb_txn_abort(l->wtxn);
		l->wtxn = NULL;
		return;
	}
	LDAPDIR_INC(l, cache_writes);
}

/* ldapdir_flush - commit this round's cache writes, then answer */
static void ldapdir_flush(struct ldapdir *l)
{
	if (l->wtxn) {
		int rc = mdb_txn_commit(l->wtxn);

		if (rc != 0) {
			log_warn("ldap: cache commit: %s", mdb_strerror(rc));
			LDAPDIR_INC(l, cache_errors);
		}
		l->wtxn = NULL;
	}
	for (unsigned i = 0; i < l->nout; i++)
		mstore_xdone(l->m, l->out[i]);
	l->nout = 0;
}

/* ldapdir_answer - q answered (sent after the round's commit) */
static void ldapdir_answer(struct ldapdir *l, struct mstore_xreq *q,
			   uint8_t verdict, uint8_t stale)
{
	q->verdict = verdict;
	q->stale = stale;
	if (verdict == MSTORE_X_UNAVAIL)
		LDAPDIR_INC(l, unavail);
	if (l->nout == sizeof(l->out) / sizeof(l->out[0]))
		ldapdir_flush(l);
	l->out[l->nout++] = q;
}

/* ldapdir_fallback - LDAP gave no answer: what the cache still allows */
static void ldapdir_fallback(struct ldapdir *l, struct mstore_xreq *q)
{
	uint8_t buf[LDAPDIR_REC_MAX];
	struct ldapdir_rec r;
	MDB_txn *t = l->wtxn;
	int rc = 0;

	if (!t)
		rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &t);
	if (rc == 0)
		rc = ldapdir_cache_get(l, t, q->addr, strlen(q->addr), buf, &r);
	if (t && t != l->wtxn)
		mdb_txn_abort(t);
	if (rc != 0) {
		ldapdir_answer(l, q, MSTORE_X_UNAVAIL, 0);
		return;
	}
	switch (ldapdir_rec_age(&r, ldapdir_unix_ms(),
				(uint64_t)l->c.stale_max_s * 1000)) {
	case LDAPDIR_FRESH:
		ldapdir_answer(l, q, r.verdict == LDAPDIR_FOUND ? MSTORE_X_OK
							       : MSTORE_X_NEG, 0);
		break;
	case LDAPDIR_STALE:
		LDAPDIR_INC(l, stale_served);
		ldapdir_answer(l, q, MSTORE_X_OK, 1);
		break;
	default:
		ldapdir_answer(l, q, MSTORE_X_UNAVAIL, 0);
	}
}

/* ---- AUTH results ---- */

/* ldapdir_auth_finish - result into w (password wiped), back to its owner */
static void ldapdir_auth_finish(struct ldapdir *l, struct work *w, int code)
{
	explicit_bzero(w->pw, sizeof(w->pw));
	w->pwlen = 0;
	w->code = code;
	if (code == 0) {
		w->enh[0] = '\0';
		w->text[0] = '\0';
		LDAPDIR_INC(l, auth_ok);
		atomic_fetch_add(&l->m->st.auth_ok, 1);
	} else if (code == 535) {
		snprintf(w->enh, sizeof(w->enh), "5.7.8");
		snprintf(w->text, sizeof(w->text),
			 "Authentication credentials invalid");
		LDAPDIR_INC(l, auth_fail);
		atomic_fetch_add(&l->m->st.auth_fail, 1);
	} else {
		snprintf(w->enh, sizeof(w->enh), "4.7.0");
		snprintf(w->text, sizeof(w->text),
			 "Temporary authentication failure");
		LDAPDIR_INC(l, auth_unavail);
		atomic_fetch_add(&l->m->st.auth_fail, 1);
	}
	mstore_done(l->m, w);
}

/* ---- connections ---- */

/* ldapdir_wait - wait for msgid's result on ld up to timeout_ms; the LDAP
 * result code (LDAP_TIMEOUT if none came) */
static int ldapdir_wait(struct ldapdir *l, LDAP *ld, int msgid)
{
	struct timeval tv = { (time_t)(l->c.timeout_ms / 1000),
			      (suseconds_t)(l->c.timeout_ms % 1000) * 1000 };
	LDAPMessage *res = NULL;
	int err = LDAP_OTHER, t = ldap_result(ld, msgid, LDAP_MSG_ALL, &tv,
					      &res);

	if (t == 0)
		return LDAP_TIMEOUT;
	if (t < 0) {
		ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &err);
		return err ? err : LDAP_SERVER_DOWN;
	}
	if (ldap_parse_result(ld, res, &err, NULL, NULL, NULL, NULL, 1) !=
	    LDAP_SUCCESS)
		return LDAP_OTHER;
	return err;
}

/* ldapdir_tls_begun - libldap's TLS connect callback: TCP is up and the
 * handshake starts, so a failure from here on is a TLS one */
static int ldapdir_tls_begun(LDAP *ld, void *ssl, void *ctx, void *arg)
{
	(void)ld;
	(void)ssl;
	(void)ctx;
	*(bool *)arg = true;
	return 0;
}

/* ldapdir_setup - per-connection options: v3, no referrals, timeouts, TLS
 * (a new TLS context per handle, so tls_ca_file applies and the server's
 * certificate is always verified, for ldaps:// and StartTLS alike) */
static int ldapdir_setup(struct ldapdir *l, LDAP *ld)
{
	struct timeval tv = { (time_t)(l->c.timeout_ms / 1000),
			      (suseconds_t)(l->c.timeout_ms % 1000) * 1000 };
	int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0;
	int rc = ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);

	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
	if (rc == LDAP_SUCCESS && l->c.tls_ca_file[0])
		rc = ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE,
				     l->c.tls_ca_file);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(ld, LDAP_OPT_X_TLS_CONNECT_CB,
				     (void *)ldapdir_tls_begun);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(ld, LDAP_OPT_X_TLS_CONNECT_ARG,
				     &l->tls_begun);
	if (rc == LDAP_SUCCESS)
		rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	return rc;
}

/* ldapdir_open - a connection to the first URI (in order) that answers:
 * TCP (and TLS), and for the service connection the bind as bind_dn.
 * NULL if none does */
static LDAP *ldapdir_open(struct ldapdir *l, bool service)
{
	for (unsigned i = 0; i < l->c.n_uris; i++) {
		const char *u = l->c.uris[i];
		LDAP *ld = NULL;
		int rc = ldap_initialize(&ld, u), msgid;

		l->tls_begun = false;
		if (rc == LDAP_SUCCESS)
			rc = ldapdir_setup(l, ld);
		if (rc == LDAP_SUCCESS)
			rc = ldap_connect(ld);
		if (rc == LDAP_SUCCESS && l->c.starttls)
			rc = ldap_start_tls_s(ld, NULL, NULL);
		if (rc == LDAP_SUCCESS)
			l->tls_begun = false;   /* up: later errors not TLS's */
		if (rc == LDAP_SUCCESS && service && l->c.bind_dn[0]) {
			struct berval cred = { l->pwlen, l->pw };

			rc = ldap_sasl_bind(ld, l->c.bind_dn, LDAP_SASL_SIMPLE,
					    &cred, NULL, NULL, &msgid);
			if (rc == LDAP_SUCCESS)
				rc = ldapdir_wait(l, ld, msgid);
		}
		if (rc == LDAP_SUCCESS) {
			LDAPDIR_INC(l, connects);
			log_info("ldap: %s connection to %s%s", service ?
				 "service" : "auth", u, l->c.starttls ?
				 " (STARTTLS)" : "");
			return ld;
		}
		LDAPDIR_INC(l, connect_fails);
		if (!l->down_logged) {
			char *diag = NULL, why[512];

			if (ld)
				ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE,
						&diag);
			ldapdir_conn_why(why, sizeof(why), ldap_err2string(rc),
					 diag, l->tls_begun, l->c.tls_ca_file);
			ldap_memfree(diag);
			log_warn("ldap: %s: %s", u, why);
		}
		if (ld)
			ldap_unbind_ext(ld, NULL, NULL);
	}
	return NULL;
}

/* ldapdir_service - the service connection, connecting if needed and not
 * inside the retry pause; NULL when LDAP is unreachable */
static LDAP *ldapdir_service(struct ldapdir *l, uint64_t mono)
{
	if (l->ld)
		return l->ld;
	if (l->down_until && mono < l->down_until)
		return NULL;
	l->ld = ldapdir_open(l, true);
	if (!l->ld) {
		l->down_until = ldapdir_mono_ms() + (uint64_t)l->c.retry_s * 1000;
		if (!l->down_logged)
			log_warn("ldap: no server reachable; cached answers "
				 "serve, unknown recipients get 451 4.4.3 (next "
				 "try in %us)", l->c.retry_s);
		l->down_logged = true;
		return NULL;
	}
	if (l->down_logged)
		log_info("ldap: reachable again");
	l->down_logged = false;
	l->down_until = 0;
	return l->ld;
}

static void ldapdir_rcpt_start(struct ldapdir *l, struct mstore_xreq *q,
			       uint64_t mono, uint8_t retried);
static void ldapdir_auth_start(struct ldapdir *l, struct work *w,
			       uint64_t mono, uint8_t retried);

/* ldapdir_drop - lose the service connection; what was waiting on it is
 * asked again once (a server that closed an idle connection), else
 * answered from the cache. pause: the server timed out, do not reconnect
 * for retry_s */
static void ldapdir_drop(struct ldapdir *l, const char *why, bool pause)
{
	struct ldapdir_pend p[LDAPDIR_MAX_PEND];
	unsigned n = 0;
	uint64_t mono = ldapdir_mono_ms();

	if (!l->ld)
		return;
	log_warn("ldap: service connection lost (%s)", why);
	LDAPDIR_INC(l, conn_lost);
	ldap_unbind_ext(l->ld, NULL, NULL);
	l->ld = NULL;
	if (pause) {
		l->down_until = mono + (uint64_t)l->c.retry_s * 1000;
		l->down_logged = true;
	}
	for (unsigned i = 0; i < LDAPDIR_MAX_PEND; i++)
		if (l->pend[i].msgid) {
			p[n++] = l->pend[i];
			l->pend[i].msgid = 0;
		}
	l->npend = 0;
	for (unsigned i = 0; i < n; i++) {
		if (p[i].kind == LDAPDIR_P_RCPT) {
			if (p[i].retried || pause)
				ldapdir_fallback(l, p[i].q);
			else
				ldapdir_rcpt_start(l, p[i].q, mono, 1);
		} else {
			if (p[i].retried || pause)
				ldapdir_auth_finish(l, p[i].w, 454);
			else
				ldapdir_auth_start(l, p[i].w, mono, 1);
		}
	}
}

/* ldapdir_pend_add - remember a search in flight */
static void ldapdir_pend_add(struct ldapdir *l, int msgid, uint8_t kind,
			     uint8_t retried, struct mstore_xreq *q,
			     struct work *w, uint64_t mono)
{
	for (unsigned i = 0; i < LDAPDIR_MAX_PEND; i++)
		if (!l->pend[i].msgid) {
			l->pend[i] = (struct ldapdir_pend){ msgid, kind, retried,
				mono + l->c.timeout_ms, q, w };
			l->npend++;
			return;
		}
	/* callers take requests only while npend < LDAPDIR_MAX_PEND */
	log_fatal("ldap: pending table full (invariant)");
}

/* ldapdir_search - send one search on the service connection; msgid or
 * -1 (connection gone: *lost set) */
static int ldapdir_search(struct ldapdir *l, const char *tmpl,
			  const char *name, size_t n, char **attrs,
			  uint64_t mono, bool *lost)
{
	char filter[LDAPDIR_FILTER_MAX];
	struct timeval tv = { (time_t)(l->c.timeout_ms / 1000),
			      (suseconds_t)(l->c.timeout_ms % 1000) * 1000 };
	LDAP *ld = ldapdir_service(l, mono);
	int msgid = 0, rc;

	*lost = false;
	if (!ld)
		return -1;
	if (ldapdir_filter(tmpl, name, n, filter, sizeof(filter)) < 0) {
		log_warn("ldap: filter for <%.*s> too long", (int)n, name);
		return -1;
	}
	rc = ldap_search_ext(ld, l->c.base, LDAP_SCOPE_SUBTREE, filter, attrs,
			     0, NULL, NULL, &tv, 2, &msgid);
	if (rc != LDAP_SUCCESS) {
		*lost = rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR ||
			rc == LDAP_TIMEOUT;
		if (!*lost)
			log_warn("ldap: search %s: %s", filter,
				 ldap_err2string(rc));
		return -1;
	}
	LDAPDIR_INC(l, searches);
	return msgid;
}

/* ldapdir_rcpt_start - search for one recipient */
static void ldapdir_rcpt_start(struct ldapdir *l, struct mstore_xreq *q,
			       uint64_t mono, uint8_t retried)
{
	char *attrs[3] = { NULL, NULL, NULL }, none[] = LDAP_NO_ATTRS;
	unsigned na = 0;
	bool lost;
	int msgid;

	if (l->c.route_attr[0])
		attrs[na++] = l->c.route_attr;
	if (l->c.forward_attr[0])
		attrs[na++] = l->c.forward_attr;
	if (!na)
		attrs[0] = none;
	msgid = ldapdir_search(l, l->c.recipient_filter, q->addr,
			       strlen(q->addr), attrs, mono, &lost);
	if (msgid < 0 && lost && !retried) {
		ldapdir_drop(l, "send failed", false);
		msgid = ldapdir_search(l, l->c.recipient_filter, q->addr,
				       strlen(q->addr), attrs, mono, &lost);
	}
	if (msgid < 0) {
		if (lost)
			ldapdir_drop(l, "send failed", false);
		ldapdir_fallback(l, q);
		return;
	}
	ldapdir_pend_add(l, msgid, LDAPDIR_P_RCPT, retried, q, NULL, mono);
}

/* ldapdir_auth_start - find the AUTH user's entry */
static void ldapdir_auth_start(struct ldapdir *l, struct work *w,
			       uint64_t mono, uint8_t retried)
{
	char *attrs[2] = { NULL, NULL }, none[] = LDAP_NO_ATTRS;
	bool lost;
	int msgid;

	attrs[0] = none;
	if (w->pwlen == 0 || !w->user[0]) {
		/* RFC 4513 5.1.2: would be an unauthenticated bind */
		ldapdir_auth_finish(l, w, 535);
		return;
	}
	msgid = ldapdir_search(l, l->c.auth_filter, w->user, strlen(w->user),
			       attrs, mono, &lost);
	if (msgid < 0 && lost && !retried) {
		ldapdir_drop(l, "send failed", false);
		msgid = ldapdir_search(l, l->c.auth_filter, w->user,
				       strlen(w->user), attrs, mono, &lost);
	}
	if (msgid < 0) {
		if (lost)
			ldapdir_drop(l, "send failed", false);
		ldapdir_auth_finish(l, w, 454);
		return;
	}
	ldapdir_pend_add(l, msgid, LDAPDIR_P_AUTH, retried, NULL, w, mono);
}

/* ldapdir_result_of - entries and the final result code of a search
 * chain; *first = the first entry */
static int ldapdir_result_of(LDAP *ld, LDAPMessage *res, unsigned *n,
			     LDAPMessage **first)
{
	int err = LDAP_OTHER;

	*n = 0;
	*first = NULL;
	for (LDAPMessage *x = ldap_first_message(ld, res); x;
	     x = ldap_next_message(ld, x)) {
		int t = ldap_msgtype(x);

		if (t == LDAP_RES_SEARCH_ENTRY) {
			if (!(*n)++)
				*first = x;
		} else if (t == LDAP_RES_SEARCH_RESULT) {
			if (ldap_parse_result(ld, x, &err, NULL, NULL, NULL,
					      NULL, 0) != LDAP_SUCCESS)
				err = LDAP_OTHER;
		}
	}
	/* sizelimit 2: a second entry is only there to see ambiguity */
	if (err == LDAP_SIZELIMIT_EXCEEDED && *n > 0)
		err = LDAP_SUCCESS;
	return err;
}

/* ldapdir_rcpt_done - a recipient search answered: cache and reply */
static void ldapdir_rcpt_done(struct ldapdir *l, struct ldapdir_pend *p,
			      LDAPMessage *res)
{
	struct mstore_xreq *q = p->q;
	struct ldapdir_rec r = { 0 };
	struct berval **rv = NULL, **fv = NULL;
	char route[300];
	LDAPMessage *e;
	unsigned n;
	uint64_t now = ldapdir_unix_ms();
	int err = ldapdir_result_of(l->ld, res, &n, &e);

	if (err != LDAP_SUCCESS) {
		/* e.g. noSuchObject (a wrong base): not an answer about q */
		log_warn("ldap: search for <%s>: %s", q->addr,
			 ldap_err2string(err));
		ldapdir_fallback(l, q);
		return;
	}
	r.fetched_ms = now;
	if (n == 0) {
		r.verdict = LDAPDIR_NOTFOUND;
		r.expires_ms = now + (uint64_t)l->c.negative_ttl_s * 1000;
		LDAPDIR_INC(l, notfound);
		ldapdir_cache_put(l, q->addr, &r);
		ldapdir_answer(l, q, MSTORE_X_NEG, 0);
		return;
	}
	if (n > 1)
		log_warn("ldap: <%s> matches several entries; the first is "
			 "used", q->addr);
	r.verdict = LDAPDIR_FOUND;
	r.expires_ms = now + (uint64_t)l->c.cache_ttl_s * 1000;
	if (l->c.route_attr[0] &&
	    (rv = ldap_get_values_len(l->ld, e, l->c.route_attr)) && rv[0]) {
		int k = ldapdir_route_norm(rv[0]->bv_val, rv[0]->bv_len, route,
					   sizeof(route));

		if (k > 0) {
			r.route = route;
			r.route_len = (size_t)k;
		} else {
			log_warn("ldap: <%s>: %s \"%.*s\" is not host[:port]; "
				 "ignored", q->addr, l->c.route_attr,
				 (int)(rv[0]->bv_len > 200 ? 200 : rv[0]->bv_len),
				 rv[0]->bv_val);
		}
	}
	if (l->c.forward_attr[0] &&
	    (fv = ldap_get_values_len(l->ld, e, l->c.forward_attr))) {
		for (unsigned i = 0; fv[i]; i++) {
			const struct berval *b = fv[i];

			if (r.naliases == MSTORE_X_ALIASES) {
				log_warn("ldap: <%s>: more than %d %s values; "
					 "the rest ignored", q->addr,
					 MSTORE_X_ALIASES, l->c.forward_attr);
				break;
			}
			if (b->bv_len == 0 || b->bv_len >= MSTORE_X_ADDR ||
			    !memchr(b->bv_val, '@', b->bv_len) ||
			    memchr(b->bv_val, ' ', b->bv_len) ||
			    memchr(b->bv_val, '\0', b->bv_len)) {
				log_warn("ldap: <%s>: %s value is not an "
					 "address; ignored", q->addr,
					 l->c.forward_attr);
				continue;
			}
			r.alias[r.naliases] = b->bv_val;
			r.alias_len[r.naliases++] = b->bv_len;
		}
	}
	LDAPDIR_INC(l, found);
	ldapdir_cache_put(l, q->addr, &r);
	if (rv)
		ldap_value_free_len(rv);
	if (fv)
		ldap_value_free_len(fv);
	ldapdir_answer(l, q, MSTORE_X_OK, 0);
}

/* ldapdir_auth_found - the AUTH user's entry search answered: queue the
 * bind of its DN */
static void ldapdir_auth_found(struct ldapdir *l, struct ldapdir_pend *p,
			       LDAPMessage *res)
{
	struct work *w = p->w;
	LDAPMessage *e;
	unsigned n;
	int err = ldapdir_result_of(l->ld, res, &n, &e);
	char *dn;

	if (err != LDAP_SUCCESS) {
		log_warn("ldap: AUTH search: %s", ldap_err2string(err));
		ldapdir_auth_finish(l, w, 454);
		return;
	}
	if (n != 1) {
		if (n > 1)
			log_warn("ldap: AUTH name matches several entries; "
				 "refused (make auth_filter unique)");
		ldapdir_auth_finish(l, w, 535);
		return;
	}
	dn = ldap_get_dn(l->ld, e);
	if (!dn || !dn[0] || strlen(dn) >= LDAPDIR_DN_MAX ||
	    l->bq_n == LDAPDIR_BINDQ) {
		ldap_memfree(dn);
		ldapdir_auth_finish(l, w, 454);
		return;
	}
	{
		struct ldapdir_bind *b = &l->bq[(l->bq_head + l->bq_n++) %
						LDAPDIR_BINDQ];

		b->w = w;
		snprintf(b->dn, sizeof(b->dn), "%s", dn);
	}
	ldap_memfree(dn);
}

/* ldapdir_results - collect finished searches on the service connection */
static unsigned ldapdir_results(struct ldapdir *l)
{
	unsigned work = 0;

	while (l->ld && l->npend) {
		struct timeval tv = { 0, 0 };
		LDAPMessage *res = NULL;
		int t = ldap_result(l->ld, LDAP_RES_ANY, LDAP_MSG_ALL, &tv, &res);
		int id;

		if (t == 0)
			break;
		if (t < 0) {
			int err = LDAP_SERVER_DOWN;

			ldap_get_option(l->ld, LDAP_OPT_RESULT_CODE, &err);
			ldapdir_drop(l, ldap_err2string(err), false);
			break;
		}
		work++;
		id = ldap_msgid(res);
		for (unsigned i = 0; i < LDAPDIR_MAX_PEND; i++) {
			struct ldapdir_pend *p = &l->pend[i];

			if (p->msgid != id)
				continue;
			if (p->kind == LDAPDIR_P_RCPT)
				ldapdir_rcpt_done(l, p, res);
			else
				ldapdir_auth_found(l, p, res);
			p->msgid = 0;
			l->npend--;
			break;
		}
		ldap_msgfree(res);
	}
	return work;
}

/* ldapdir_expire - searches past their deadline: the server is too slow
 * or gone; drop the connection and pause (ldapdir_drop answers them) */
static void ldapdir_expire(struct ldapdir *l, uint64_t mono)
{
	for (unsigned i = 0; i < LDAPDIR_MAX_PEND; i++)
		if (l->pend[i].msgid && mono >= l->pend[i].deadline) {
			LDAPDIR_INC(l, timeouts);
			ldapdir_drop(l, "no answer within timeout_ms", true);
			return;
		}
}

/* ldapdir_auth_drop - lose the auth connection */
static void ldapdir_auth_drop(struct ldapdir *l)
{
	if (l->ald)
		ldap_unbind_ext(l->ald, NULL, NULL);
	l->ald = NULL;
}

/* ldapdir_binds - one user bind at a time on the auth connection */
static unsigned ldapdir_binds(struct ldapdir *l, uint64_t mono)
{
	if (l->bind_w) {
		struct timeval tv = { 0, 0 };
		LDAPMessage *res = NULL;
		int t = ldap_result(l->ald, l->bind_msgid, LDAP_MSG_ALL, &tv,
				    &res), err = LDAP_OTHER;

		if (t == 0 && mono < l->bind_deadline)
			return 0;
		if (t > 0 && ldap_parse_result(l->ald, res, &err, NULL, NULL,
					       NULL, NULL, 1) != LDAP_SUCCESS)
			err = LDAP_OTHER;
		if (t <= 0) {
			log_warn("ldap: AUTH bind: %s", t == 0 ? "timed out" :
				 "connection lost");
			ldapdir_auth_drop(l);
			err = LDAP_UNAVAILABLE;
		}
		ldapdir_auth_finish(l, l->bind_w, err == LDAP_SUCCESS ? 0 :
				    (err == LDAP_INVALID_CREDENTIALS ||
				     err == LDAP_INAPPROPRIATE_AUTH) ? 535 : 454);
		l->bind_w = NULL;
		return 1;
	}
	if (!l->bq_n)
		return 0;
	{
		struct ldapdir_bind *b = &l->bq[l->bq_head];
		struct work *w = b->w;
		int rc = LDAP_SERVER_DOWN;

		l->bq_head = (l->bq_head + 1) % LDAPDIR_BINDQ;
		l->bq_n--;
		for (int attempt = 0; attempt < 2; attempt++) {
			struct berval cred = { w->pwlen, w->pw };

			if (!l->ald && (!l->down_until || mono >= l->down_until))
				l->ald = ldapdir_open(l, false);
			if (!l->ald)
				break;
			rc = ldap_sasl_bind(l->ald, b->dn, LDAP_SASL_SIMPLE,
					    &cred, NULL, NULL, &l->bind_msgid);
			if (rc == LDAP_SUCCESS)
				break;
			ldapdir_auth_drop(l);   /* idle connection closed? */
		}
		explicit_bzero(w->pw, sizeof(w->pw));
		w->pwlen = 0;
		if (rc != LDAP_SUCCESS) {
			ldapdir_auth_finish(l, w, 454);
			return 1;
		}
		l->bind_w = w;
		l->bind_deadline = mono + l->c.timeout_ms;
		return 1;
	}
}

/* ldapdir_take - new requests, as many as the pending table allows */
static unsigned ldapdir_take(struct ldapdir *l, uint64_t mono)
{
	unsigned work = 0;

	for (int k = 0; k < 2; k++) {
		struct rte_ring *r = k == 0 ? l->req : l->authq;
		void *p[LDAPDIR_BURST];
		unsigned room = LDAPDIR_MAX_PEND - l->npend, n;

		if (room > LDAPDIR_BURST)
			room = LDAPDIR_BURST;
		n = room ? rte_ring_sc_dequeue_burst(r, p, room, NULL) : 0;
		for (unsigned i = 0; i < n; i++) {
			if (k == 0)
				ldapdir_rcpt_start(l, p[i], mono, 0);
			else
				ldapdir_auth_start(l, p[i], mono, 0);
		}
		work += n;
	}
	return work;
}

/* ldapdir_main - the thread */
static void *ldapdir_main(void *arg)
{
	struct ldapdir *l = arg;
	struct timespec idle = { 0, 500000 };
	sigset_t ss;

	/* libldap writes to sockets: a closed peer must not kill sluiced */
	sigemptyset(&ss);
	sigaddset(&ss, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	for (;;) {
		uint64_t mono = ldapdir_mono_ms();
		unsigned work = ldapdir_take(l, mono);

		work += ldapdir_results(l);
		ldapdir_expire(l, mono);
		work += ldapdir_binds(l, mono);
		ldapdir_flush(l);
		if (work)
			continue;
		if (atomic_load(&l->stop))
			break;
		nanosleep(&idle, NULL);
	}
	/* io lcores are stopped: answer what is left so nothing dangles */
	if (l->ld && l->npend)
		ldapdir_drop(l, "stopping", true);
	if (l->ld)
		ldap_unbind_ext(l->ld, NULL, NULL);
	l->ld = NULL;
	if (l->bind_w)
		ldapdir_auth_finish(l, l->bind_w, 454);
	l->bind_w = NULL;
	for (; l->bq_n; l->bq_n--, l->bq_head = (l->bq_head + 1) % LDAPDIR_BINDQ)
		ldapdir_auth_finish(l, l->bq[l->bq_head].w, 454);
	ldapdir_flush(l);
	ldapdir_auth_drop(l);
	mdb_env_sync(l->env, 1);
	return NULL;
}

/* ---- vtable (mstore_xdir_ops) ---- */

static bool ldapdir_handles(void *ctx, const char *dom, size_t n)
{
	struct ldapdir *l = ctx;

	return ldapdir_domain_listed(l->c.domains, dom, n);
}

static void *ldapdir_reader_new(void *ctx)
{
	struct ldapdir_reader *r = calloc(1, sizeof(*r));

	if (r)
		r->l = ctx;
	return r;
}

static void ldapdir_reader_free(void *rdp)
{
	struct ldapdir_reader *r = rdp;

	if (!r)
		return;
	if (r->txn)
		mdb_txn_abort(r->txn);
	free(r);
}

/* ldapdir_cached - the io lcore's/worker's non-blocking cache read */
static int ldapdir_cached(void *rdp, const char *addr, size_t n,
			  uint64_t now_ms, struct mstore_xrcpt *out)
{
	struct ldapdir_reader *r = rdp;
	struct ldapdir *l = r->l;
	struct ldapdir_rec rec;
	char key[MSTORE_X_ADDR];
	int rc;

	if (ldapdir_lower(addr, n, key, sizeof(key)) < 0)
		return MDB_NOTFOUND;
	rc = r->txn ? mdb_txn_renew(r->txn)
		    : mdb_txn_begin(l->env, NULL, MDB_RDONLY, &r->txn);
	if (rc != 0) {
		if (r->txn)
			mdb_txn_abort(r->txn);
		r->txn = NULL;
		return rc;
	}
	rc = ldapdir_cache_get(l, r->txn, key, n, out->buf, &rec);
	mdb_txn_reset(r->txn);      /* copied: drop the snapshot at once */
	if (rc == 0) {
		switch (ldapdir_rec_age(&rec, now_ms,
					(uint64_t)l->c.stale_max_s * 1000)) {
		case LDAPDIR_FRESH: out->fresh = 1; break;
		case LDAPDIR_STALE: out->fresh = 0; break;
		default: rc = MDB_NOTFOUND;
		}
	}
	if (rc == MDB_NOTFOUND) {
		LDAPDIR_INC(l, misses);
		return rc;
	}
	if (rc != 0)
		return rc;
	if (out->fresh)
		LDAPDIR_INC(l, hits_fresh);
	else
		LDAPDIR_INC(l, hits_stale);
	out->verdict = rec.verdict == LDAPDIR_FOUND ? MSTORE_X_OK : MSTORE_X_NEG;
	out->route = rec.route_len ? rec.route : NULL;
	out->route_len = rec.route_len;
	out->naliases = rec.naliases;
	for (unsigned i = 0; i < rec.naliases; i++) {
		out->alias[i] = rec.alias[i];
		out->alias_len[i] = rec.alias_len[i];
	}
	return 0;
}

static int ldapdir_lookup(void *ctx, struct mstore_xreq *q)
{
	struct ldapdir *l = ctx;

	for (char *p = q->addr; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return rte_ring_mp_enqueue(l->req, q) == 0 ? 0 : -1;
}

static int ldapdir_auth(void *ctx, struct work *w)
{
	struct ldapdir *l = ctx;

	return rte_ring_mp_enqueue(l->authq, w) == 0 ? 0 : -1;
}

static int ldapdir_start(void *ctx, char *err, size_t errlen)
{
	struct ldapdir *l = ctx;
	int rc = pthread_create(&l->th, NULL, ldapdir_main, l);

	if (rc != 0) {
		snprintf(err, errlen, "ldap thread: %s", strerror(rc));
		return -1;
	}
	pthread_setname_np(l->th, "sluice-ldap");
	l->started = true;
	return 0;
}

static void ldapdir_stop(void *ctx)
{
	struct ldapdir *l = ctx;

	if (!l->started)
		return;
	atomic_store(&l->stop, true);
	pthread_join(l->th, NULL);
	l->started = false;
	log_info("ldap: %llu searches (%llu found, %llu not found), %llu "
		 "unavailable, %llu stale answers served; cache %llu fresh "
		 "hits, %llu stale hits, %llu misses; AUTH %llu ok, %llu "
		 "refused, %llu unavailable",
		 (unsigned long long)l->st.searches,
		 (unsigned long long)l->st.found,
		 (unsigned long long)l->st.notfound,
		 (unsigned long long)l->st.unavail,
		 (unsigned long long)l->st.stale_served,
		 (unsigned long long)l->st.hits_fresh,
		 (unsigned long long)l->st.hits_stale,
		 (unsigned long long)l->st.misses,
		 (unsigned long long)l->st.auth_ok,
		 (unsigned long long)l->st.auth_fail,
		 (unsigned long long)l->st.auth_unavail);
}

static void ldapdir_free(void *ctx)
{
	struct ldapdir *l = ctx;

	if (!l)
		return;
	ldapdir_stop(l);
	if (ldapdir_tele == l)
		ldapdir_tele = NULL;
	rte_ring_free(l->req);
	rte_ring_free(l->authq);
	if (l->env)
		mdb_env_close(l->env);
	explicit_bzero(l->pw, sizeof(l->pw));
	free(l);
}

static const struct mstore_xdir_ops ldapdir_ops = {
	.name = "ldap",
	.handles = ldapdir_handles,
	.reader_new = ldapdir_reader_new,
	.reader_free = ldapdir_reader_free,
	.cached = ldapdir_cached,
	.lookup = ldapdir_lookup,
	.auth = ldapdir_auth,
	.start = ldapdir_start,
	.stop = ldapdir_stop,
	.free = ldapdir_free,
};

static const struct mstore_xdir_ops ldapdir_ops_noauth = {
	.name = "ldap",
	.handles = ldapdir_handles,
	.reader_new = ldapdir_reader_new,
	.reader_free = ldapdir_reader_free,
	.cached = ldapdir_cached,
	.lookup = ldapdir_lookup,
	.auth = NULL,
	.start = ldapdir_start,
	.stop = ldapdir_stop,
	.free = ldapdir_free,
};

/* ldapdir_tele_counters - /sluice/ldap/counters */
static int ldapdir_tele_counters(const char *cmd, const char *params,
				 struct rte_tel_data *d)
{
	struct ldapdir *l = ldapdir_tele;

	(void)cmd;
	(void)params;
	if (!l)
		return -ENOTSUP;
	rte_tel_data_start_dict(d);
#define LT(f) rte_tel_data_add_dict_u64(d, #f, atomic_load(&l->st.f))
	LT(searches); LT(found); LT(notfound); LT(unavail); LT(stale_served);
	LT(timeouts); LT(connects); LT(connect_fails); LT(conn_lost);
	LT(auth_ok); LT(auth_fail); LT(auth_unavail); LT(hits_fresh);
	LT(hits_stale); LT(misses); LT(cache_writes); LT(cache_errors);
#undef LT
	return 0;
}

/* ldapdir_read_pw - the service bind password: the file's first line */
static int ldapdir_read_pw(struct ldapdir *l, const struct cfg *c, char *err,
			   size_t errlen)
{
	const char *f = l->c.bind_password_file;
	struct stat sb;
	ssize_t n;
	int fd;

	if (!f[0])
		return 0;
	fd = open(f, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "%s: [ldap] bind_password_file: %s: %s",
			 c->path, f, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (sb.st_mode & 0077)
		log_warn("ldap: %s is readable by group or others (chmod 600)",
			 f);
	n = read(fd, l->pw, sizeof(l->pw) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s: [ldap] bind_password_file: %s: %s",
			 c->path, f, strerror(errno));
		return -1;
	}
	l->pw[n] = '\0';
	l->pwlen = strcspn(l->pw, "\r\n");
	l->pw[l->pwlen] = '\0';
	if (!l->pwlen) {
		snprintf(err, errlen, "%s: [ldap] bind_password_file: %s is "
			 "empty (an empty password would be an unauthenticated "
			 "bind)", c->path, f);
		return -1;
	}
	return 0;
}

/* ldapdir_cache_open - STATE_DIR/ldapcache; a damaged cache is recreated */
static int ldapdir_cache_open(struct ldapdir *l, char *err, size_t errlen)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		MDB_txn *t = NULL;
		int rc;

		if (mkdir(l->cache_dir, 0700) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "ldap cache %s: mkdir: %s",
				 l->cache_dir, strerror(errno));
			return -1;
		}
		rc = mdb_env_create(&l->env);
		if (rc == 0)
			rc = mdb_env_set_mapsize(l->env, (size_t)256 << 20);
		if (rc == 0)
			rc = mdb_env_set_maxreaders(l->env, 126 + 2 * CFG_MAX_IO);
		if (rc == 0)
			rc = mdb_env_open(l->env, l->cache_dir,
					  MDB_NOTLS | MDB_NOSYNC, 0600);
		if (rc == 0)
			rc = mdb_txn_begin(l->env, NULL, 0, &t);
		if (rc == 0)
			rc = mdb_dbi_open(t, NULL, 0, &l->dbi);
		if (rc == 0)
			rc = mdb_txn_commit(t);
		else if (t)
			mdb_txn_abort(t);
		if (rc == 0)
			return 0;
		if (l->env)
			mdb_env_close(l->env);
		l->env = NULL;
		if (attempt == 0 && (rc == MDB_CORRUPTED || rc == MDB_INVALID ||
				     rc == MDB_VERSION_MISMATCH)) {
			char f[320];

			log_warn("ldap cache %s: %s; recreating it",
				 l->cache_dir, mdb_strerror(rc));
			snprintf(f, sizeof(f), "%s/data.mdb", l->cache_dir);
			unlink(f);
			snprintf(f, sizeof(f), "%s/lock.mdb", l->cache_dir);
			unlink(f);
			continue;
		}
		snprintf(err, errlen, "ldap cache %s: %s", l->cache_dir,
			 mdb_strerror(rc));
		return -1;
	}
	return -1;
}

int ldapdir_attach(struct mstore *m, const struct cfg *c, char *err,
		   size_t errlen)
{
	struct ldapdir *l = calloc(1, sizeof(*l));

	if (!l) {
		snprintf(err, errlen, "ldap: out of memory");
		return -1;
	}
	l->c = c->ldap;
	l->m = m;
	atomic_init(&l->stop, false);
	snprintf(l->cache_dir, sizeof(l->cache_dir), "%s/ldapcache",
		 c->smtp.state_dir);
	if (ldapdir_read_pw(l, c, err, errlen) < 0 ||
	    ldapdir_cache_open(l, err, errlen) < 0)
		goto fail;
	l->req = rte_ring_create("sl_ldapq", LDAPDIR_REQQ, SOCKET_ID_ANY,
				 RING_F_SC_DEQ | RING_F_EXACT_SZ);
	l->authq = rte_ring_create("sl_ldapauth", LDAPDIR_AUTHQ, SOCKET_ID_ANY,
				   RING_F_SC_DEQ | RING_F_EXACT_SZ);
	if (!l->req || !l->authq) {
		snprintf(err, errlen, "ldap: cannot create rings: %s",
			 rte_strerror(rte_errno));
		goto fail;
	}
	if (mstore_xdir_attach(m, l->c.auth_filter[0] ? &ldapdir_ops
						       : &ldapdir_ops_noauth,
			       l, err, errlen) < 0)
		goto fail;
	if (!ldapdir_tele) {
		ldapdir_tele = l;
		rte_telemetry_register_cmd("/sluice/ldap/counters",
					   ldapdir_tele_counters,
					   "LDAP directory backend counters");
	}
	log_info("ldap: %u server%s (first %s), base \"%s\", cache %s, AUTH %s",
		 l->c.n_uris, l->c.n_uris == 1 ? "" : "s", l->c.uris[0],
		 l->c.base, l->cache_dir, l->c.auth_filter[0] ? "by LDAP bind"
							      : "local");
	return 0;
fail:
	ldapdir_free(l);
	return -1;
}
