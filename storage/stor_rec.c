/*
 * stor_rec - encode/decode of every storage record and key (see stor_rec.h
 * for the contract, docs/storage.md for the layouts).
 *
 * Encoders trust sizes computed by the matching *_size() function; decoders
 * trust nothing: every read is bounds-checked through struct rd.
 */
#include <errno.h>
#include <string.h>
#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

#include "stor_err.h"
#include "stor_rec.h"

/* ---- byte order ---- */

void stor_put_le16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
void stor_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}
void stor_put_le64(uint8_t *p, uint64_t v)
{
	stor_put_le32(p, (uint32_t)v);
	stor_put_le32(p + 4, (uint32_t)(v >> 32));
}
uint16_t stor_get_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
uint32_t stor_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
uint64_t stor_get_le64(const uint8_t *p)
{
	return (uint64_t)stor_get_le32(p) | (uint64_t)stor_get_le32(p + 4) << 32;
}
void stor_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}
uint64_t stor_get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- CRC32C ---- */

#if !defined(__SSE4_2__)
static uint32_t crc_table[256];

/* crc_init - reflected table for polynomial 0x82F63B78 */
static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}
#endif

/* stor_crc32c - hardware (SSE4.2) when built for it, table otherwise */
uint32_t stor_crc32c(uint32_t crc, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	crc = ~crc;
#if defined(__SSE4_2__)
	uint64_t c = crc;
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = _mm_crc32_u64(c, v);
	}
	crc = (uint32_t)c;
	for (; n; n--, p++)
		crc = _mm_crc32_u8(crc, *p);
#else
	static int ready;
	if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
		crc_init();   /* idempotent: racing threads write equal values */
		__atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
	}
	for (; n; n--, p++)
		crc = crc_table[(crc ^ *p) & 0xff] ^ (crc >> 8);
#endif
	return ~crc;
}

/* ---- queue ids ---- */

static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void stor_qid_key(uint64_t qid, uint8_t key[STOR_QID_KEY]) { stor_put_be64(key, qid); }
uint64_t stor_qid_from_key(const uint8_t key[STOR_QID_KEY]) { return stor_get_be64(key); }

/* stor_qid_format - 13 base-32 digits, most significant first */
char *stor_qid_format(uint64_t qid, char out[STOR_QID_TEXT + 1])
{
	for (int i = STOR_QID_TEXT - 1; i >= 0; i--, qid >>= 5)
		out[i] = b32[qid & 31];
	out[STOR_QID_TEXT] = 0;
	return out;
}

/* stor_qid_parse - inverse of stor_qid_format; first digit must be < 16 */
int stor_qid_parse(const char *s, size_t n, uint64_t *qid)
{
	uint64_t v = 0;
	if (n != STOR_QID_TEXT)
		return EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		const char *d = c ? strchr(b32, c) : NULL;
		if (!d || (i == 0 && d - b32 >= 16))
			return EINVAL;
		v = v << 5 | (uint64_t)(d - b32);
	}
	*qid = v;
	return 0;
}

void stor_sched_key(uint8_t key[STOR_SCHED_KEY], uint8_t prio,
		    uint64_t next_us, uint64_t qid)
{
	key[0] = prio;
	stor_put_be64(key + 1, next_us);
	stor_put_be64(key + 9, qid);
}

void stor_sched_key_parse(const uint8_t key[STOR_SCHED_KEY], uint8_t *prio,
			  uint64_t *next_us, uint64_t *qid)
{
	*prio = key[0];
	*next_us = stor_get_be64(key + 1);
	*qid = stor_get_be64(key + 9);
}

size_t stor_hold_key(uint8_t *key, size_t cap, struct stor_str dest, uint64_t qid)
{
	if (dest.n == 0 || dest.n > 255 || dest.n + 9 > cap ||
	    memchr(dest.p, 0, dest.n))
		return 0;
	memcpy(key, dest.p, dest.n);
	key[dest.n] = 0;
	stor_put_be64(key + dest.n + 1, qid);
	return dest.n + 9;
}

/* ---- framing helpers ---- */

struct wr { uint8_t *p; };
struct rd { const uint8_t *p, *end; int bad; };

static void w8(struct wr *w, uint8_t v) { *w->p++ = v; }
static void w16(struct wr *w, uint16_t v) { stor_put_le16(w->p, v); w->p += 2; }
static void w32(struct wr *w, uint32_t v) { stor_put_le32(w->p, v); w->p += 4; }
static void w64(struct wr *w, uint64_t v) { stor_put_le64(w->p, v); w->p += 8; }
static void wstr(struct wr *w, struct stor_str s)
{
	w16(w, (uint16_t)s.n);
	if (s.n)
		memcpy(w->p, s.p, s.n);
	w->p += s.n;
}

static const uint8_t *rtake(struct rd *r, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return NULL;
	}
	const uint8_t *q = r->p;
	r->p += n;
	return q;
}
static uint8_t r8(struct rd *r) { const uint8_t *q = rtake(r, 1); return q ? *q : 0; }
static uint16_t r16(struct rd *r) { const uint8_t *q = rtake(r, 2); return q ? stor_get_le16(q) : 0; }
static uint32_t r32(struct rd *r) { const uint8_t *q = rtake(r, 4); return q ? stor_get_le32(q) : 0; }
static uint64_t r64(struct rd *r) { const uint8_t *q = rtake(r, 8); return q ? stor_get_le64(q) : 0; }
static struct stor_str rstr(struct rd *r)
{
	uint16_t n = r16(r);
	const uint8_t *q = rtake(r, n);
	return (struct stor_str){ q ? (const char *)q : "", q ? n : 0 };
}

/* frame_open - write the header; payload follows at buf + STOR_REC_HDR */
static void frame_open(uint8_t *buf, uint8_t type)
{
	buf[0] = STOR_REC_VERSION;
	buf[1] = type;
	buf[2] = buf[3] = 0;
}

/* frame_close - checksum the payload into the header */
static void frame_close(uint8_t *buf, size_t size)
{
	stor_put_le32(buf + 4, stor_crc32c(0, buf + STOR_REC_HDR, size - STOR_REC_HDR));
}

/* frame_check - version, type, reserved bytes and checksum; sets up rd */
static int frame_check(const void *buf, size_t len, uint8_t type, struct rd *r)
{
	const uint8_t *b = buf;
	if (!b || len < STOR_REC_HDR || b[0] != STOR_REC_VERSION ||
	    b[1] != type || b[2] || b[3])
		return STOR_ECORRUPT;
	if (stor_get_le32(b + 4) != stor_crc32c(0, b + STOR_REC_HDR, len - STOR_REC_HDR))
		return STOR_ECORRUPT;
	r->p = b + STOR_REC_HDR;
	r->end = b + len;
	r->bad = 0;
	return 0;
}

/* frame_done - the payload must have been consumed exactly */
static int frame_done(const struct rd *r)
{
	return r->bad || r->p != r->end ? STOR_ECORRUPT : 0;
}

static int str_ok(struct stor_str s) { return s.n <= STOR_STR_MAX && (s.n == 0 || s.p); }

/* ---- message metadata ---- */

#define MSG_FIXED  (8 + 8 + 4 + 4 + 4 + 2 + 1 + 1 + 4)
#define RCPT_FIXED (1 + 1 + 2 + 8)

size_t stor_rec_msg_size(const struct stor_msg *m)
{
	if (m->priority > 7 || m->nrcpt == 0 || m->nrcpt > STOR_RCPT_MAX ||
	    !m->rcpt || !str_ok(m->sender) || !str_ok(m->envid) ||
	    !str_ok(m->client))
		return 0;
	size_t n = STOR_REC_HDR + MSG_FIXED + 6 + m->sender.n + m->envid.n +
		   m->client.n;
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		const struct stor_rcpt *r = &m->rcpt[i];
		if (!str_ok(r->addr) || !str_ok(r->orcpt) || !str_ok(r->dest) ||
		    !str_ok(r->reply) || r->state > STOR_RCPT_BOUNCED ||
		    r->addr.n == 0)
			return 0;
		n += RCPT_FIXED + 8 + r->addr.n + r->orcpt.n + r->dest.n + r->reply.n;
	}
	return n;
}

void stor_rec_msg_encode(const struct stor_msg *m, uint8_t *buf, size_t size)
{
	struct wr w = { buf + STOR_REC_HDR };
	frame_open(buf, STOR_REC_MSG);
	w64(&w, m->arrival_us);
	w64(&w, m->next_attempt_us);
	w32(&w, m->attempts);
	w32(&w, m->body_len);
	w32(&w, m->body_crc);
	w16(&w, m->flags);
	w8(&w, m->priority);
	w8(&w, 0);
	w32(&w, m->nrcpt);
	wstr(&w, m->sender);
	wstr(&w, m->envid);
	wstr(&w, m->client);
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		const struct stor_rcpt *r = &m->rcpt[i];
		w8(&w, r->state);
		w8(&w, r->notify);
		w16(&w, r->attempts);
		w64(&w, r->last_attempt_us);
		wstr(&w, r->addr);
		wstr(&w, r->orcpt);
		wstr(&w, r->dest);
		wstr(&w, r->reply);
	}
	frame_close(buf, size);
}

int stor_rec_msg_decode(const void *buf, size_t len, struct stor_msg *m,
			struct stor_rcpt *rcpt, uint32_t cap)
{
	struct rd r;
	int rc = frame_check(buf, len, STOR_REC_MSG, &r);
	if (rc)
		return rc;
	m->arrival_us = r64(&r);
	m->next_attempt_us = r64(&r);
	m->attempts = r32(&r);
	m->body_len = r32(&r);
	m->body_crc = r32(&r);
	m->flags = r16(&r);
	m->priority = r8(&r);
	uint8_t rsv = r8(&r);
	m->nrcpt = r32(&r);
	m->sender = rstr(&r);
	m->envid = rstr(&r);
	m->client = rstr(&r);
	m->rcpt = rcpt;
	if (r.bad || rsv || m->priority > 7 || m->nrcpt == 0 ||
	    m->nrcpt > STOR_RCPT_MAX)
		return STOR_ECORRUPT;
	if (m->nrcpt > cap)
		return ERANGE;
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		struct stor_rcpt *x = &rcpt[i];
		x->state = r8(&r);
		x->notify = r8(&r);
		x->attempts = r16(&r);
		x->last_attempt_us = r64(&r);
		x->addr = rstr(&r);
		x->orcpt = rstr(&r);
		x->dest = rstr(&r);
		x->reply = rstr(&r);
		if (x->state > STOR_RCPT_BOUNCED || (!r.bad && x->addr.n == 0))
			return STOR_ECORRUPT;
	}
	return frame_done(&r);
}

/* ---- body ---- */

void stor_rec_body_header(uint8_t hdr[STOR_REC_HDR], uint32_t crc)
{
	frame_open(hdr, STOR_REC_BODY);
	stor_put_le32(hdr + 4, crc);
}

int stor_rec_body_decode(const void *buf, size_t len, int verify,
			 const void **body, size_t *n, uint32_t *crc)
{
	const uint8_t *b = buf;
	if (!b || len < STOR_REC_HDR || b[0] != STOR_REC_VERSION ||
	    b[1] != STOR_REC_BODY || b[2] || b[3])
		return STOR_ECORRUPT;
	uint32_t c = stor_get_le32(b + 4);
	if (verify && c != stor_crc32c(0, b + STOR_REC_HDR, len - STOR_REC_HDR))
		return STOR_ECORRUPT;
	*body = b + STOR_REC_HDR;
	*n = len - STOR_REC_HDR;
	if (crc)
		*crc = c;
	return 0;
}

/* ---- destination state ---- */

size_t stor_rec_dest_size(const struct stor_dest *d)
{
	if (d->link > STOR_LINK_HELD || !str_ok(d->last_error))
		return 0;
	return STOR_REC_HDR + 1 + 1 + 2 + 4 + 8 + 8 + 2 + d->last_error.n;
}

void stor_rec_dest_encode(const struct stor_dest *d, uint8_t *buf, size_t size)
{
	struct wr w = { buf + STOR_REC_HDR };
	frame_open(buf, STOR_REC_DEST);
	w8(&w, d->link);
	w8(&w, 0);
	w16(&w, 0);
	w32(&w, d->failures);
	w64(&w, d->next_retry_us);
	w64(&w, d->changed_us);
	wstr(&w, d->last_error);
	frame_close(buf, size);
}

int stor_rec_dest_decode(const void *buf, size_t len, struct stor_dest *d)
{
	struct rd r;
	int rc = frame_check(buf, len, STOR_REC_DEST, &r);
	if (rc)
		return rc;
	d->link = r8(&r);
	uint8_t a = r8(&r);
	uint16_t b = r16(&r);
	d->failures = r32(&r);
	d->next_retry_us = r64(&r);
	d->changed_us = r64(&r);
	d->last_error = rstr(&r);
	if (a || b || d->link > STOR_LINK_HELD)
		return STOR_ECORRUPT;
	return frame_done(&r);
}

/* ---- directory ---- */

static int route_size(const struct stor_route *rt, size_t *n)
{
	if (rt->tls > STOR_TLS_VERIFY || rt->nhops > STOR_ROUTE_HOPS)
		return -1;
	*n += 2;
	for (unsigned i = 0; i < rt->nhops; i++) {
		if (!str_ok(rt->hop[i].host) || rt->hop[i].host.n == 0)
			return -1;
		*n += 4 + rt->hop[i].host.n;
	}
	return 0;
}

static void route_put(struct wr *w, const struct stor_route *rt)
{
	w8(w, rt->tls);
	w8(w, rt->nhops);
	for (unsigned i = 0; i < rt->nhops; i++) {
		wstr(w, rt->hop[i].host);
		w16(w, rt->hop[i].port);
	}
}

static void route_get(struct rd *r, struct stor_route *rt)
{
	rt->tls = r8(r);
	rt->nhops = r8(r);
	if (rt->tls > STOR_TLS_VERIFY || rt->nhops > STOR_ROUTE_HOPS) {
		r->bad = 1;
		return;
	}
	for (unsigned i = 0; i < rt->nhops; i++) {
		rt->hop[i].host = rstr(r);
		rt->hop[i].port = r16(r);
	}
}

size_t stor_rec_domain_size(const struct stor_dir_domain *d)
{
	size_t n = STOR_REC_HDR + 1;
	if (d->kind > STOR_DOMAIN_RELAY || route_size(&d->route, &n))
		return 0;
	return n;
}

void stor_rec_domain_encode(const struct stor_dir_domain *d, uint8_t *buf, size_t size)
{
	struct wr w = { buf + STOR_REC_HDR };
	frame_open(buf, STOR_REC_DOMAIN);
	w8(&w, d->kind);
	route_put(&w, &d->route);
	frame_close(buf, size);
}

int stor_rec_domain_decode(const void *buf, size_t len, struct stor_dir_domain *d)
{
	struct rd r;
	int rc = frame_check(buf, len, STOR_REC_DOMAIN, &r);
	if (rc)
		return rc;
	d->kind = r8(&r);
	route_get(&r, &d->route);
	if (d->kind > STOR_DOMAIN_RELAY)
		return STOR_ECORRUPT;
	return frame_done(&r);
}

size_t stor_rec_rcpt_size(const struct stor_dir_rcpt *x)
{
	size_t n = STOR_REC_HDR + 4;
	if (x->action > STOR_ACT_REJECT || x->ntargets > STOR_ALIAS_MAX ||
	    x->has_route > 1)
		return 0;
	for (unsigned i = 0; i < x->ntargets; i++) {
		if (!str_ok(x->target[i]) || x->target[i].n == 0)
			return 0;
		n += 2 + x->target[i].n;
	}
	if (x->has_route && route_size(&x->route, &n))
		return 0;
	return n;
}

void stor_rec_rcpt_encode(const struct stor_dir_rcpt *x, uint8_t *buf, size_t size)
{
	struct wr w = { buf + STOR_REC_HDR };
	frame_open(buf, STOR_REC_RCPT);
	w8(&w, x->action);
	w8(&w, x->has_route);
	w8(&w, x->ntargets);
	w8(&w, 0);
	for (unsigned i = 0; i < x->ntargets; i++)
		wstr(&w, x->target[i]);
	if (x->has_route)
		route_put(&w, &x->route);
	frame_close(buf, size);
}

int stor_rec_rcpt_decode(const void *buf, size_t len, struct stor_dir_rcpt *x)
{
	struct rd r;
	int rc = frame_check(buf, len, STOR_REC_RCPT, &r);
	if (rc)
		return rc;
	memset(&x->route, 0, sizeof x->route);
	x->action = r8(&r);
	x->has_route = r8(&r);
	x->ntargets = r8(&r);
	uint8_t rsv = r8(&r);
	if (rsv || x->action > STOR_ACT_REJECT || x->has_route > 1 ||
	    x->ntargets > STOR_ALIAS_MAX)
		return STOR_ECORRUPT;
	for (unsigned i = 0; i < x->ntargets; i++)
		x->target[i] = rstr(&r);
	if (x->has_route)
		route_get(&r, &x->route);
	return frame_done(&r);
}

size_t stor_rec_user_size(struct stor_str hash)
{
	return str_ok(hash) && hash.n ? STOR_REC_HDR + 2 + hash.n : 0;
}

void stor_rec_user_encode(struct stor_str hash, uint8_t *buf, size_t size)
{
	struct wr w = { buf + STOR_REC_HDR };
	frame_open(buf, STOR_REC_USER);
	wstr(&w, hash);
	frame_close(buf, size);
}

int stor_rec_user_decode(const void *buf, size_t len, struct stor_str *hash)
{
	struct rd r;
	int rc = frame_check(buf, len, STOR_REC_USER, &r);
	if (rc)
		return rc;
	*hash = rstr(&r);
	return frame_done(&r);
}

void stor_rec_net_encode(uint8_t buf[STOR_REC_HDR])
{
	frame_open(buf, STOR_REC_NET);
	frame_close(buf, STOR_REC_HDR);
}

int stor_rec_net_decode(const void *buf, size_t len)
{
	struct rd r;
	int rc = frame_check(buf, len, STOR_REC_NET, &r);
	return rc ? rc : frame_done(&r);
}

void stor_rec_prio_encode(uint8_t level, uint8_t buf[STOR_REC_HDR + 1])
{
	frame_open(buf, STOR_REC_PRIO);
	buf[STOR_REC_HDR] = level;
	frame_close(buf, STOR_REC_HDR + 1);
}

int stor_rec_prio_decode(const void *buf, size_t len, uint8_t *level)
{
	struct rd r;
	int rc = frame_check(buf, len, STOR_REC_PRIO, &r);
	if (rc)
		return rc;
	*level = r8(&r);
	if (*level > 7)
		return STOR_ECORRUPT;
	return frame_done(&r);
}

/* ---- destination limits ---- */

/* stor_rec_limit_ok - 1 if every value is within its bound */
int stor_rec_limit_ok(const struct stor_dir_limit *l)
{
	return l->max_conns <= STOR_LIMIT_CONNS_MAX &&
	       l->msgs_per_conn <= STOR_LIMIT_MSGS_MAX &&
	       l->rate <= STOR_LIMIT_RATE_MAX;
}

void stor_rec_limit_encode(const struct stor_dir_limit *l,
			   uint8_t buf[STOR_REC_LIMIT_SIZE])
{
	struct wr w = { buf + STOR_REC_HDR };
	frame_open(buf, STOR_REC_LIMIT);
	w32(&w, l->max_conns);
	w32(&w, l->msgs_per_conn);
	w32(&w, l->rate);
	frame_close(buf, STOR_REC_LIMIT_SIZE);
}

int stor_rec_limit_decode(const void *buf, size_t len, struct stor_dir_limit *l)
{
	struct rd r;
	int rc = frame_check(buf, len, STOR_REC_LIMIT, &r);
	if (rc)
		return rc;
	l->max_conns = r32(&r);
	l->msgs_per_conn = r32(&r);
	l->rate = r32(&r);
	if (!stor_rec_limit_ok(l))
		return STOR_ECORRUPT;
	return frame_done(&r);
}
