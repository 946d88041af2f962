/*
 * stor_dir - directory store over LMDB (contract in stor_dir.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "stor_dir.h"
#include "stor_env.h"
#include "stor_err.h"
#include "stor_pwhash.h"
#include "stor_rotxn.h"

#define NAME_MAX_ 255

struct stor_dir {
	MDB_env *env;
	MDB_dbi dbi[STOR_DIR_NTABLES];
};

struct stor_dir_reader {
	struct stor_dir *d;
	struct stor_rotxn x;
};

static const char *table_names[STOR_DIR_NTABLES] = { "domain", "rcpt", "user", "net", "prio",
							     "limit" };

int stor_dir_open(const struct stor_dir_conf *c, struct stor_dir **out)
{
	*out = NULL;
	if (!c || !c->path)
		return EINVAL;
	struct stor_dir *d = calloc(1, sizeof *d);
	if (!d)
		return ENOMEM;
	int rc = stor_env_open(c->path, c->map_size ? c->map_size : (size_t)256 << 20,
			       8, c->max_readers, MDB_NOTLS, &d->env, NULL);
	if (rc) {
		free(d);
		return rc;
	}
	MDB_txn *t = NULL;
	if (!(rc = mdb_txn_begin(d->env, NULL, 0, &t))) {
		for (int i = 0; i < STOR_DIR_NTABLES && !rc; i++)
			rc = mdb_dbi_open(t, table_names[i], MDB_CREATE, &d->dbi[i]);
		rc = rc ? (mdb_txn_abort(t), rc) : mdb_txn_commit(t);
	}
	if (rc) {
		mdb_env_close(d->env);
		free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void stor_dir_close(struct stor_dir *d)
{
	if (!d)
		return;
	mdb_env_close(d->env);
	free(d);
}

MDB_env *stor_dir_env(struct stor_dir *d) { return d->env; }
MDB_dbi stor_dir_dbi(const struct stor_dir *d, enum stor_dir_table t) { return d->dbi[t]; }

/* ---- names ---- */

static char lc(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* norm_domain - lower-case, drop one trailing dot, check characters:
 * letters, digits, '-', '.', '_', and UTF-8 bytes; returns length or 0 */
static size_t norm_domain(struct stor_str s, char *out)
{
	size_t n = s.n;
	if (n && s.p[n - 1] == '.')
		n--;
	if (!n || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)lc(s.p[i]);
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '.' || c == '_' || c >= 0x80))
			return 0;
		if (c == '.' && (i == 0 || s.p[i - 1] == '.'))
			return 0;
		out[i] = (char)c;
	}
	return n;
}

/* norm_addr - local@domain lower-cased into out; "*@d" and "@d" give the
 * catch-all key "@d"; returns length or 0. *at = offset of '@' */
static size_t norm_addr(struct stor_str s, char *out, size_t *at)
{
	const char *a = NULL;
	for (size_t i = 0; i < s.n; i++)
		if (s.p[i] == '@')
			a = s.p + i;
	if (!a)
		return 0;
	size_t ln = (size_t)(a - s.p), o = 0;
	if (ln > 64 * 4)
		return 0;
	if (!(ln == 1 && s.p[0] == '*')) {
		for (size_t i = 0; i < ln; i++) {
			unsigned char c = (unsigned char)s.p[i];
			if (c <= ' ' || c == 0x7f || c == '<' || c == '>')
				return 0;
			out[o++] = lc((char)c);
		}
	}
	*at = o;
	out[o++] = '@';
	size_t dn = norm_domain((struct stor_str){ a + 1, (uint32_t)(s.n - ln - 1) }, out + o);
	return dn ? o + dn : 0;
}

/* norm_user - lower-cased printable name without spaces */
static size_t norm_user(struct stor_str s, char *out)
{
	if (!s.n || s.n > NAME_MAX_)
		return 0;
	for (size_t i = 0; i < s.n; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (c <= ' ' || c == 0x7f)
			return 0;
		out[i] = lc((char)c);
	}
	return s.n;
}

/* parse_cidr - key [family][plen][masked address]; EINVAL on host bits */
static size_t parse_cidr(struct stor_str s, uint8_t *key)
{
	char buf[64];
	const char *slash = memchr(s.p, '/', s.n);
	if (!slash || s.n >= sizeof buf)
		return 0;
	size_t an = (size_t)(slash - s.p);
	memcpy(buf, s.p, an);
	buf[an] = 0;
	int v6 = memchr(buf, ':', an) != NULL;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, key + 2) != 1)
		return 0;
	unsigned alen = v6 ? 16 : 4, plen = 0;
	const char *p = slash + 1, *end = s.p + s.n;
	if (p == end || end - p > 3 || (*p == '0' && end - p > 1))
		return 0;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		plen = plen * 10 + (unsigned)(*p - '0');
	}
	if (plen > alen * 8)
		return 0;
	for (unsigned bit = plen; bit < alen * 8; bit++)
		if (key[2 + bit / 8] & (0x80 >> (bit % 8)))
			return 0;   /* host bits set */
	key[0] = v6 ? 6 : 4;
	key[1] = (uint8_t)plen;
	return 2 + alen;
}

/* norm_dest - a delivery destination: a domain (norm_domain), or
 * HOST:PORT with HOST a domain/IPv4 (norm_domain) or [IPv6] and PORT
 * 1..65535 without leading zeros; lower-cased into out (>= 256 bytes);
 * returns length or 0 */
static size_t norm_dest(struct stor_str s, char *out)
{
	const char *colon = NULL;
	size_t hn, n;

	for (size_t i = 0; i < s.n; i++)
		if (s.p[i] == ':')
			colon = s.p + i;
	if (!colon)
		return norm_domain(s, out);
	if (s.p[0] != '[' && memchr(s.p, ':', s.n) != colon)
		return 0;               /* IPv6 needs [brackets] */
	hn = (size_t)(colon - s.p);
	const char *port = colon + 1, *end = s.p + s.n;
	unsigned long pv = 0;
	if (port == end || end - port > 5 || *port == '0')
		return 0;
	for (const char *q = port; q < end; q++) {
		if (*q < '0' || *q > '9')
			return 0;
		pv = pv * 10 + (unsigned long)(*q - '0');
	}
	if (pv == 0 || pv > 65535)
		return 0;
	if (hn && s.p[0] == '[') {
		if (hn < 3 || s.p[hn - 1] != ']' || hn > 48)
			return 0;
		for (size_t i = 0; i < hn; i++) {
			char c = lc(s.p[i]);
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			      c == ':' || c == '.' || (i == 0 && c == '[') ||
			      (i == hn - 1 && c == ']')))
				return 0;
			out[i] = c;
		}
		n = hn;
	} else if (!(n = norm_domain((struct stor_str){ s.p, (uint32_t)hn }, out)))
		return 0;
	if (n + 1 + (size_t)(end - port) > NAME_MAX_)
		return 0;
	out[n++] = ':';
	memcpy(out + n, port, (size_t)(end - port));
	return n + (size_t)(end - port);
}

int stor_dir_key_text(enum stor_dir_table tab, const void *key, size_t n,
		      char *out, size_t cap, char *kind)
{
	const char *k = key;
	if (!n || n + 2 > cap)
		return EINVAL;
	switch (tab) {
	case STOR_DIR_DOMAIN:
	case STOR_DIR_USER:
	case STOR_DIR_LIMIT:
		memcpy(out, k, n);
		out[n] = 0;
		return 0;
	case STOR_DIR_RCPT:
		if (k[0] == '@') {
			out[0] = '*';
			memcpy(out + 1, k, n);
			out[n + 1] = 0;
		} else {
			memcpy(out, k, n);
			out[n] = 0;
		}
		return 0;
	case STOR_DIR_PRIO:
		*kind = k[0];
		memcpy(out, k + 1, n - 1);
		out[n - 1] = 0;
		return 0;
	case STOR_DIR_NET: {
		const uint8_t *u = key;
		char a[INET6_ADDRSTRLEN];
		if (!((u[0] == 4 && n == 6) || (u[0] == 6 && n == 18)) ||
		    !inet_ntop(u[0] == 4 ? AF_INET : AF_INET6, u + 2, a, sizeof a))
			return EINVAL;
		int w = snprintf(out, cap, "%s/%u", a, u[1]);
		return w > 0 && (size_t)w < cap ? 0 : EINVAL;
	}
	default:
		return EINVAL;
	}
}

/* ---- readers ---- */

int stor_dir_reader_open(struct stor_dir *d, struct stor_dir_reader **r)
{
	*r = calloc(1, sizeof **r);
	if (!*r)
		return ENOMEM;
	(*r)->d = d;
	return 0;
}

void stor_dir_reader_release(struct stor_dir_reader *r)
{
	stor_rotxn_end(&r->x);
}

void stor_dir_reader_close(struct stor_dir_reader *r)
{
	if (!r)
		return;
	stor_rotxn_close(&r->x);
	free(r);
}

/* snap - a fresh snapshot for the next lookup */
static int snap(struct stor_dir_reader *r)
{
	return stor_rotxn_begin(&r->x, r->d->env);
}

static int get(struct stor_dir_reader *r, enum stor_dir_table t, const void *k,
	       size_t n, MDB_val *v)
{
	MDB_val kv = { n, (void *)k };
	return mdb_get(r->x.txn, r->d->dbi[t], &kv, v);
}

int stor_dir_domain(struct stor_dir_reader *r, struct stor_str domain,
		    struct stor_dir_domain *out)
{
	char k[256];
	MDB_val v;
	size_t n = norm_domain(domain, k);
	if (!n)
		return EINVAL;
	int rc = snap(r);
	if (rc || (rc = get(r, STOR_DIR_DOMAIN, k, n, &v)))
		return rc;
	return stor_rec_domain_decode(v.mv_data, v.mv_size, out);
}

int stor_dir_rcpt(struct stor_dir_reader *r, struct stor_str addr,
		  struct stor_dir_rcpt *out, int *catchall)
{
	char k[600];
	size_t at;
	MDB_val v;
	if (addr.n > 520)
		return EINVAL;
	size_t n = norm_addr(addr, k, &at);
	if (!n || at == 0)
		return EINVAL;
	int rc = snap(r);
	if (rc)
		return rc;
	*catchall = 0;
	rc = get(r, STOR_DIR_RCPT, k, n, &v);
	if (rc == MDB_NOTFOUND) {
		*catchall = 1;
		rc = get(r, STOR_DIR_RCPT, k + at, n - at, &v);
	}
	if (rc)
		return rc;
	return stor_rec_rcpt_decode(v.mv_data, v.mv_size, out);
}

int stor_dir_user_verify(struct stor_dir_reader *r, struct stor_str user,
			 const char *pw, size_t pwlen)
{
	/* same KDF cost as a real entry, for users that do not exist */
	static const char dummy[] = "$scrypt$N=16384,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$"
				    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
	char k[NAME_MAX_ + 1];
	MDB_val v;
	struct stor_str hash = STOR_STR(dummy);
	size_t n = norm_user(user, k);
	int found = 0, rc = snap(r);
	if (rc)
		return rc;
	if (n && !get(r, STOR_DIR_USER, k, n, &v) &&
	    !stor_rec_user_decode(v.mv_data, v.mv_size, &hash))
		found = 1;
	rc = stor_pwhash_verify(hash, pw, pwlen);
	return found && rc == 0 ? 0 : rc == EIO ? EIO : EACCES;
}

int stor_dir_trusted(struct stor_dir_reader *r, int af, const void *addr)
{
	uint8_t fam = af == AF_INET ? 4 : af == AF_INET6 ? 6 : 0;
	unsigned alen = fam == 4 ? 4 : 16;
	MDB_cursor *c;
	if (!fam)
		return EINVAL;
	int rc = snap(r);
	if (rc || (rc = mdb_cursor_open(r->x.txn, r->d->dbi[STOR_DIR_NET], &c)))
		return rc;
	/* visit each prefix length present (one seek per length), probe the
	 * masked address with that length */
	uint8_t k[18];
	unsigned plen = 0;
	rc = MDB_NOTFOUND;
	while (plen <= alen * 8) {
		uint8_t seek[2] = { fam, (uint8_t)plen };
		MDB_val kv = { 2, seek }, v;
		if (mdb_cursor_get(c, &kv, &v, MDB_SET_RANGE))
			break;
		const uint8_t *kp = kv.mv_data;
		if (kv.mv_size != 2 + alen || kp[0] != fam)
			break;
		plen = kp[1];
		k[0] = fam;
		k[1] = (uint8_t)plen;
		memcpy(k + 2, addr, alen);
		for (unsigned bit = plen; bit < alen * 8; bit++)
			k[2 + bit / 8] &= (uint8_t)~(0x80 >> (bit % 8));
		MDB_val pk = { 2 + alen, k };
		if (!mdb_get(r->x.txn, r->d->dbi[STOR_DIR_NET], &pk, &v)) {
			rc = 0;
			break;
		}
		plen++;
	}
	mdb_cursor_close(c);
	return rc;
}

/* prio_get - one rule probe: kind + text (already lower-cased) */
static int prio_get(struct stor_dir_reader *r, char kind, const char *s, size_t n,
		    uint8_t *level)
{
	char k[600];
	MDB_val v;
	if (!n || n + 1 > sizeof k)
		return MDB_NOTFOUND;
	k[0] = kind;
	memcpy(k + 1, s, n);
	int rc = get(r, STOR_DIR_PRIO, k, n + 1, &v);
	return rc ? rc : stor_rec_prio_decode(v.mv_data, v.mv_size, level);
}

int stor_dir_priority(struct stor_dir_reader *r, struct stor_str sender,
		      struct stor_str rcpt, uint8_t *level)
{
	char sa[600], ra[600];
	size_t sat = 0, rat = 0, sn = 0, rn = 0;
	if (sender.n > 520 || rcpt.n > 520)
		return EINVAL;
	if (sender.n && !(sn = norm_addr(sender, sa, &sat)))
		sn = 0;
	if (rcpt.n && !(rn = norm_addr(rcpt, ra, &rat)))
		rn = 0;
	int rc = snap(r);
	if (rc)
		return rc;
	struct { char kind; const char *s; size_t n; } probe[6] = {
		{ 'r', ra, rat ? rn : 0 }, { 'r', ra + rat, rn - rat },
		{ 's', sa, sat ? sn : 0 }, { 's', sa + sat, sn - sat },
		{ 'd', ra + rat + 1, rn ? rn - rat - 1 : 0 },
		{ 'd', sa + sat + 1, sn ? sn - sat - 1 : 0 },
	};
	for (int i = 0; i < 6; i++) {
		rc = prio_get(r, probe[i].kind, probe[i].s, probe[i].n, level);
		if (rc != MDB_NOTFOUND)
			return rc;
	}
	return MDB_NOTFOUND;
}

int stor_dir_limit(struct stor_dir_reader *r, struct stor_str dest,
		   struct stor_dir_limit *out)
{
	char k[NAME_MAX_ + 1];
	MDB_val v;
	size_t n;
	if (dest.n > 520 || !(n = norm_dest(dest, k)))
		return EINVAL;
	int rc = snap(r);
	if (rc || (rc = get(r, STOR_DIR_LIMIT, k, n, &v)))
		return rc;
	return stor_rec_limit_decode(v.mv_data, v.mv_size, out);
}

/* ---- writes ---- */

int stor_dir_txn_begin(struct stor_dir *d, MDB_txn **t)
{
	return mdb_txn_begin(d->env, NULL, 0, t);
}

/* put - reserve and encode a record under key */
static int put(struct stor_dir *d, MDB_txn *t, enum stor_dir_table tab,
	       const void *k, size_t kn, size_t vn, int replace, uint8_t **dst)
{
	MDB_val kv = { kn, (void *)k }, v = { vn, NULL };
	int rc = mdb_put(t, d->dbi[tab], &kv, &v, MDB_RESERVE | (replace ? 0 : MDB_NOOVERWRITE));
	*dst = v.mv_data;
	return rc;
}

static int route_ok(const struct stor_route *rt)
{
	for (unsigned i = 0; i < rt->nhops; i++) {
		const struct stor_str h = rt->hop[i].host;
		if (!h.n || h.n > 255 || !rt->hop[i].port)
			return 0;
		for (size_t j = 0; j < h.n; j++)
			if ((unsigned char)h.p[j] <= ' ' || h.p[j] == ',')
				return 0;
	}
	return 1;
}

int stor_dir_put_domain(struct stor_dir *d, MDB_txn *t, struct stor_str name,
			const struct stor_dir_domain *v, int replace)
{
	char k[256];
	uint8_t *dst;
	size_t n = norm_domain(name, k), vn = stor_rec_domain_size(v);
	if (!n || !vn || !route_ok(&v->route))
		return EINVAL;
	int rc = put(d, t, STOR_DIR_DOMAIN, k, n, vn, replace, &dst);
	if (!rc)
		stor_rec_domain_encode(v, dst, vn);
	return rc;
}

int stor_dir_put_rcpt(struct stor_dir *d, MDB_txn *t, struct stor_str addr,
		      const struct stor_dir_rcpt *v, int replace)
{
	char k[600];
	size_t at;
	uint8_t *dst;
	MDB_val dv;
	if (addr.n > 520)
		return EINVAL;
	size_t n = norm_addr(addr, k, &at), vn = stor_rec_rcpt_size(v);
	if (!n || !vn || (v->has_route && !route_ok(&v->route)) ||
	    (v->action == STOR_ACT_ALIAS) != (v->ntargets > 0))
		return EINVAL;
	for (unsigned i = 0; i < v->ntargets; i++) {
		char tk[600];
		size_t tat;
		if (v->target[i].n > 520 || !norm_addr(v->target[i], tk, &tat) || tat == 0)
			return EINVAL;
	}
	MDB_val dk = { n - at - 1, k + at + 1 };
	int rc = mdb_get(t, d->dbi[STOR_DIR_DOMAIN], &dk, &dv);
	if (rc)
		return rc;   /* MDB_NOTFOUND: domain not declared */
	rc = put(d, t, STOR_DIR_RCPT, k, n, vn, replace, &dst);
	if (!rc)
		stor_rec_rcpt_encode(v, dst, vn);
	return rc;
}

int stor_dir_put_user(struct stor_dir *d, MDB_txn *t, struct stor_str name,
		      struct stor_str hash, int replace)
{
	char k[NAME_MAX_ + 1];
	uint8_t *dst;
	size_t n = norm_user(name, k), vn = stor_rec_user_size(hash);
	if (!n || !vn || stor_pwhash_check(hash))
		return EINVAL;
	int rc = put(d, t, STOR_DIR_USER, k, n, vn, replace, &dst);
	if (!rc)
		stor_rec_user_encode(hash, dst, vn);
	return rc;
}

int stor_dir_put_net(struct stor_dir *d, MDB_txn *t, struct stor_str cidr, int replace)
{
	uint8_t k[18], *dst;
	size_t n = parse_cidr(cidr, k);
	if (!n)
		return EINVAL;
	int rc = put(d, t, STOR_DIR_NET, k, n, STOR_REC_HDR, replace, &dst);
	if (!rc)
		stor_rec_net_encode(dst);
	return rc;
}

int stor_dir_put_limit(struct stor_dir *d, MDB_txn *t, struct stor_str dest,
		       const struct stor_dir_limit *v, int replace)
{
	char k[NAME_MAX_ + 1];
	uint8_t *dst;
	size_t n;
	if (dest.n > 520 || !(n = norm_dest(dest, k)) || !stor_rec_limit_ok(v) ||
	    (!v->max_conns && !v->msgs_per_conn && !v->rate))
		return EINVAL;
	int rc = put(d, t, STOR_DIR_LIMIT, k, n, STOR_REC_LIMIT_SIZE, replace, &dst);
	if (!rc)
		stor_rec_limit_encode(v, dst);
	return rc;
}

/* prio_key - kind + normalised pattern */
static size_t prio_key(enum stor_prio_kind kind, struct stor_str pat, char *k)
{
	size_t at, n;
	k[0] = (char)kind;
	if (pat.n > 520)
		return 0;
	if (kind == STOR_PRIO_DOMAIN)
		n = norm_domain(pat, k + 1);
	else if (kind == STOR_PRIO_SENDER || kind == STOR_PRIO_RCPT) {
		if (pat.n && pat.p[0] == '*')
			return 0;
		n = norm_addr(pat, k + 1, &at);
	} else
		return 0;
	return n ? n + 1 : 0;
}

int stor_dir_put_prio(struct stor_dir *d, MDB_txn *t, enum stor_prio_kind kind,
		      struct stor_str pat, uint8_t level, int replace)
{
	char k[600];
	uint8_t *dst;
	size_t n = prio_key(kind, pat, k);
	if (!n || level > 7)
		return EINVAL;
	int rc = put(d, t, STOR_DIR_PRIO, k, n, STOR_REC_HDR + 1, replace, &dst);
	if (!rc)
		stor_rec_prio_encode(level, dst);
	return rc;
}

int stor_dir_del(struct stor_dir *d, MDB_txn *t, enum stor_dir_table tab,
		 struct stor_str name)
{
	char k[600];
	size_t n = 0, at;
	if (name.n > 520)
		return EINVAL;
	switch (tab) {
	case STOR_DIR_DOMAIN: n = norm_domain(name, k); break;
	case STOR_DIR_RCPT: n = norm_addr(name, k, &at); break;
	case STOR_DIR_USER: n = norm_user(name, k); break;
	case STOR_DIR_NET: n = parse_cidr(name, (uint8_t *)k); break;
	case STOR_DIR_LIMIT: n = norm_dest(name, k); break;
	case STOR_DIR_PRIO:
		if (name.n > 2 && name.p[1] == ':')
			n = prio_key((enum stor_prio_kind)name.p[0],
				     (struct stor_str){ name.p + 2, name.n - 2 }, k);
		break;
	default: break;
	}
	if (!n)
		return EINVAL;
	MDB_val kv = { n, k };
	return mdb_del(t, d->dbi[tab], &kv, NULL);
}

int stor_dir_clear(struct stor_dir *d, MDB_txn *t)
{
	for (int i = 0; i < STOR_DIR_NTABLES; i++) {
		int rc = mdb_drop(t, d->dbi[i], 0);
		if (rc)
			return rc;
	}
	return 0;
}
