/*
 * ctlcmd.c - the control socket's commands (ctlcmd.h, docs/cli.md).
 *
 * Input: one request line, words separated by spaces. The first one or two
 * words pick a row of the command table; the handler validates every
 * argument before it calls anything that changes state (dsched.h operator
 * functions validate again and change nothing on error), so a command that
 * fails has changed nothing.
 *
 * Output: {"ok":true,"data":{...},"text":"..."} + "\n", or
 * {"ok":false,"error":"..."} + "\n". "data" is built with a small JSON
 * writer (struct buf + jw_*), "text" is the human table. Strings are
 * escaped by ctlcmd_json_str: invalid UTF-8 becomes U+FFFD. Responses are
 * bounded by CTLCMD_OUT_MAX; list rows cap their long strings.
 *
 * queue list reads the `meta` database with a cursor inside one read
 * snapshot, in id order, and stops after `limit` rows, or after scanning
 * list_scan_max records or list_scan_ms milliseconds, answering a `next`
 * cursor: a million-message queue never holds the control thread long.
 *
 * Threads: the control thread only (dsched and the readers live there).
 */
#include "ctlcmd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <lmdb.h>
#include <rte_ring.h>

#include "dsched.h"
#include "iolcore.h"
#include "mstore.h"
#include "stor_err.h"
#include "stor_queue.h"
#include "stor_rec.h"
#include "worker.h"

#define CTLCMD_ERR_MAX 512
#define CTLCMD_LIST_STR 256      /* sender / reply bytes in a list row */
#define CTLCMD_SHOW_STR 2048     /* any string in queue show */
#define CTLCMD_LIST_DESTS 8      /* destinations named per list row */
#define CTLCMD_DEST_MAX 255

/* ---- growing text buffer ---- */

struct buf {
	char *p;
	size_t n, cap;
	bool fail;       /* out of memory or above CTLCMD_OUT_MAX */
};

/* buf_reserve - room for n more bytes and a NUL; 0 or -1 (b->fail) */
static int buf_reserve(struct buf *b, size_t n)
{
	if (b->fail)
		return -1;
	if (n > CTLCMD_OUT_MAX || b->n + n > CTLCMD_OUT_MAX) {
		b->fail = true;
		return -1;
	}
	if (b->n + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap : 1024;
		char *q;

		while (c < b->n + n + 1)
			c *= 2;
		if (!(q = realloc(b->p, c))) {
			b->fail = true;
			return -1;
		}
		b->p = q;
		b->cap = c;
	}
	return 0;
}

/* buf_add - append n bytes (keeps a NUL after them) */
static void buf_add(struct buf *b, const void *s, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return;
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

static void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (k < 0)
		return;
	if ((size_t)k < sizeof(tmp)) {
		buf_add(b, tmp, (size_t)k);
		return;
	}
	char *big = malloc((size_t)k + 1);

	if (!big) {
		b->fail = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)k + 1, fmt, ap);
	va_end(ap);
	buf_add(b, big, (size_t)k);
	free(big);
}

/* buf_text - append client-supplied bytes for people: control bytes
 * become '?', at most max bytes ("..." marks a cut) */
static void buf_text(struct buf *b, const char *s, size_t n, size_t max)
{
	char tmp[256];
	size_t k = 0, lim = n > max ? max : n;

	for (size_t i = 0; i < lim; i++) {
		unsigned char c = (unsigned char)s[i];

		tmp[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
		if (k == sizeof(tmp)) {
			buf_add(b, tmp, k);
			k = 0;
		}
	}
	buf_add(b, tmp, k);
	if (n > max)
		buf_add(b, "...", 3);
}

/* ---- JSON ---- */

/* json_put - copy n bytes to out[*k..] within cap; *k counts all */
static void json_put(char *out, size_t cap, size_t *k, const char *s,
		     size_t n)
{
	for (size_t i = 0; i < n; i++, (*k)++)
		if (*k < cap)
			out[*k] = s[i];
}

/* utf8_len - length of the valid UTF-8 sequence at s[0..n), 0 if none
 * (RFC 3629 section 4: no overlongs, no surrogates, at most U+10FFFF) */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

size_t ctlcmd_json_str(char *out, size_t cap, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t k = 0, i = 0;
	char esc[8];

	json_put(out, cap, &k, "\"", 1);
	while (i < n) {
		unsigned char c = s[i];
		size_t run = i, len;

		/* a run of plain ASCII in one copy */
		while (run < n && s[run] >= 0x20 && s[run] < 0x7f &&
		       s[run] != '"' && s[run] != '\\')
			run++;
		if (run > i) {
			json_put(out, cap, &k, str + i, run - i);
			i = run;
			continue;
		}
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			json_put(out, cap, &k, esc, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			const char *e = c == '\n' ? "\\n" : c == '\r' ? "\\r" :
					c == '\t' ? "\\t" : c == '\b' ? "\\b" :
					c == '\f' ? "\\f" : NULL;

			if (e)
				json_put(out, cap, &k, e, 2);
			else {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				json_put(out, cap, &k, esc, 6);
			}
			i++;
		} else if ((len = utf8_len(s + i, n - i)) > 0) {
			json_put(out, cap, &k, str + i, len);
			i += len;
		} else {
			json_put(out, cap, &k, "\\ufffd", 6);
			i++;
		}
	}
	json_put(out, cap, &k, "\"", 1);
	return k;
}

/* jw_esc - append s[0..n) as a JSON string */
static void jw_esc(struct buf *b, const char *s, size_t n)
{
	size_t need = ctlcmd_json_str(NULL, 0, s, n);

	if (buf_reserve(b, need) < 0)
		return;
	ctlcmd_json_str(b->p + b->n, need, s, n);
	b->n += need;
	b->p[b->n] = 0;
}

/* jw_key - separator (if a value came before) and "key": (key may be
 * NULL inside arrays) */
static void jw_key(struct buf *b, const char *key)
{
	if (b->n && !b->fail) {
		char c = b->p[b->n - 1];

		if (c != '{' && c != '[' && c != ':')
			buf_add(b, ",", 1);
	}
	if (key) {
		jw_esc(b, key, strlen(key));
		buf_add(b, ":", 1);
	}
}

static void jw_obj(struct buf *b, const char *key)
{
	jw_key(b, key);
	buf_add(b, "{", 1);
}

static void jw_arr(struct buf *b, const char *key)
{
	jw_key(b, key);
	buf_add(b, "[", 1);
}

static void jw_end_obj(struct buf *b) { buf_add(b, "}", 1); }
static void jw_end_arr(struct buf *b) { buf_add(b, "]", 1); }

static void jw_str(struct buf *b, const char *key, const char *s, size_t n)
{
	jw_key(b, key);
	jw_esc(b, s, n);
}

static void jw_cstr(struct buf *b, const char *key, const char *s)
{
	jw_str(b, key, s, strlen(s));
}

/* jw_sstr - a stored string, at most max bytes */
static void jw_sstr(struct buf *b, const char *key, struct stor_str s,
		    size_t max)
{
	jw_str(b, key, s.p, s.n > max ? max : s.n);
}

static void jw_u64(struct buf *b, const char *key, uint64_t v)
{
	jw_key(b, key);
	buf_printf(b, "%llu", (unsigned long long)v);
}

static void jw_bool(struct buf *b, const char *key, bool v)
{
	jw_key(b, key);
	buf_add(b, v ? "true" : "false", v ? 4 : 5);
}

static void jw_null(struct buf *b, const char *key)
{
	jw_key(b, key);
	buf_add(b, "null", 4);
}

static void jw_dbl(struct buf *b, const char *key, double v)
{
	jw_key(b, key);
	if (v != v || v > 1e300 || v < -1e300)
		buf_add(b, "null", 4);
	else
		buf_printf(b, "%.3f", v);
}

static void jw_qid(struct buf *b, const char *key, uint64_t qid)
{
	char t[STOR_QID_TEXT + 1];

	jw_cstr(b, key, stor_qid_format(qid, t));
}

/* ---- response assembly ---- */

static const char ctlcmd_oom[] =
	"{\"ok\":false,\"error\":\"out of memory\"}\n";

void ctlcmd_free(char *out)
{
	if (out != ctlcmd_oom)
		free(out);
}

static void ctlcmd_static_oom(char **out, size_t *outlen)
{
	*out = (char *)ctlcmd_oom;
	*outlen = sizeof(ctlcmd_oom) - 1;
}

void ctlcmd_error(const char *msg, char **out, size_t *outlen)
{
	struct buf r = { 0 };

	buf_add(&r, "{\"ok\":false,\"error\":", 20);
	jw_esc(&r, msg, strlen(msg));
	buf_add(&r, "}\n", 2);
	if (r.fail) {
		free(r.p);
		ctlcmd_static_oom(out, outlen);
		return;
	}
	*out = r.p;
	*outlen = r.n;
}

/* ---- request context, argument helpers ---- */

struct ctx {
	struct ctlcmd_env *e;
	struct buf data, text;
	char err[CTLCMD_ERR_MAX];
	const char *name;          /* "queue list" (for messages) */
	char namebuf[64];
};

static int fail(struct ctx *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int fail(struct ctx *x, const char *fmt, ...)
{
	va_list ap;
	size_t k;

	k = (size_t)snprintf(x->err, sizeof(x->err), "%s: ", x->name);
	if (k >= sizeof(x->err))
		k = 0;
	va_start(ap, fmt);
	vsnprintf(x->err + k, sizeof(x->err) - k, fmt, ap);
	va_end(ap);
	return -1;
}

/* shown: an argument for an error message (bounded, printable) */
static const char *shown(const char *s, char *tmp, size_t cap)
{
	size_t k = 0;

	for (; *s && k + 4 < cap; s++)
		tmp[k++] = ((unsigned char)*s < 0x20 ||
			    (unsigned char)*s >= 0x7f) ? '?' : *s;
	if (*s)
		tmp[k++] = '.', tmp[k++] = '.', tmp[k++] = '.';
	tmp[k] = 0;
	return tmp;
}

/* parse_uint - decimal in [lo, hi]; 0 or -1 */
static int parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *v)
{
	uint64_t x = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || x > (UINT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	if (x < lo || x > hi)
		return -1;
	*v = x;
	return 0;
}

static int parse_qid(struct ctx *x, const char *s, uint64_t *qid)
{
	char t[64];

	if (stor_qid_parse(s, strlen(s), qid) != 0)
		return fail(x, "\"%s\" is not a queue id (13 characters of "
			    "Crockford base-32, e.g. 6AMZH00050007)",
			    shown(s, t, 40));
	return 0;
}

/* check_dest - a destination name: 1..255 printable ASCII bytes */
static int check_dest(struct ctx *x, const char *d)
{
	size_t n = strlen(d);
	char t[64];

	if (n == 0)
		return fail(x, "empty destination");
	if (n > CTLCMD_DEST_MAX)
		return fail(x, "destination \"%s\" is longer than %d bytes",
			    shown(d, t, 40), CTLCMD_DEST_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)d[i] <= 0x20 || (unsigned char)d[i] >= 0x7f)
			return fail(x, "destination \"%s\" has a byte that is "
				    "not printable ASCII", shown(d, t, 40));
	return 0;
}

static int need_queue(struct ctx *x)
{
	if (!x->e->m || !x->e->m->q)
		return fail(x, "sluiced runs without a queue (no mail path)");
	return 0;
}

static int need_sched(struct ctx *x)
{
	if (!x->e->sched)
		return fail(x, "the delivery scheduler is not running");
	return 0;
}

static int no_args(struct ctx *x, int argc, char **argv)
{
	char t[64];

	if (argc > 0)
		return fail(x, "unexpected argument \"%s\"",
			    shown(argv[0], t, 40));
	return 0;
}

static const char *rcpt_state_name(uint8_t s)
{
	return s == STOR_RCPT_PENDING ? "pending" :
	       s == STOR_RCPT_DELIVERED ? "delivered" :
	       s == STOR_RCPT_FAILED ? "failed" :
	       s == STOR_RCPT_BOUNCED ? "bounced" : "?";
}

static const char *link_name(enum stor_link l)
{
	return l == STOR_LINK_OPEN ? "open" : l == STOR_LINK_CLOSED ?
	       "closed" : l == STOR_LINK_HELD ? "down" : "?";
}

static enum dsched_mstate msg_state(struct ctx *x, uint64_t qid)
{
	return x->e->sched ? dsched_msg_state(x->e->sched, qid) :
	       DSCHED_M_UNKNOWN;
}

/* fmt_time - UTC "2023-11-14 22:13:20" (iso: "2023-11-14T22:13:20Z") */
static const char *fmt_time(uint64_t us, bool iso, char *out, size_t cap)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	if (us == 0 || !gmtime_r(&t, &tm)) {
		snprintf(out, cap, "-");
		return out;
	}
	strftime(out, cap, iso ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S",
		 &tm);
	return out;
}

static void jw_time(struct buf *b, const char *key, uint64_t us)
{
	char t[40], k[64];

	snprintf(k, sizeof(k), "%s_us", key);
	jw_u64(b, k, us);
	if (us)
		jw_cstr(b, key, fmt_time(us, true, t, sizeof(t)));
	else
		jw_null(b, key);
}

/* fmt_us - "850 us", "12.3 ms", "4.0 s" */
static const char *fmt_us(uint64_t us, char *out, size_t cap)
{
	if (us < 1000)
		snprintf(out, cap, "%llu us", (unsigned long long)us);
	else if (us < 1000000)
		snprintf(out, cap, "%.1f ms", (double)us / 1e3);
	else
		snprintf(out, cap, "%.1f s", (double)us / 1e6);
	return out;
}

static uint64_t now_unix_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t now_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- queue list ---- */

struct list_args {
	bool has_dest, has_prio, has_state, has_after;
	const char *dest;
	unsigned prio;
	enum dsched_mstate state;
	unsigned limit;
	uint64_t after;
};

static int list_parse(struct ctx *x, int argc, char **argv,
		      struct list_args *a)
{
	char t[64];
	uint64_t v;

	memset(a, 0, sizeof(*a));
	a->limit = CTLCMD_LIST_LIMIT;
	bool seen_limit = false;

	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		const char *val = eq ? eq + 1 : "";
		size_t kl = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
		bool *seen;

#define KEY(k) (kl == sizeof(k) - 1 && memcmp(argv[i], k, kl) == 0)
		if (!eq)
			return fail(x, "argument \"%s\" is not KEY=VALUE (keys: "
				    "dest prio state limit after)",
				    shown(argv[i], t, 40));
		if (KEY("dest"))
			seen = &a->has_dest;
		else if (KEY("prio"))
			seen = &a->has_prio;
		else if (KEY("state"))
			seen = &a->has_state;
		else if (KEY("after"))
			seen = &a->has_after;
		else if (KEY("limit"))
			seen = &seen_limit;
		else
			return fail(x, "unknown argument \"%s\" (keys: dest prio "
				    "state limit after)", shown(argv[i], t, 40));
		if (*seen)
			return fail(x, "%.*s= given twice", (int)kl, argv[i]);
		*seen = true;
		if (KEY("dest")) {
			if (check_dest(x, val) < 0)
				return -1;
			a->dest = val;
		} else if (KEY("prio")) {
			if (parse_uint(val, 0, 7, &v) < 0)
				return fail(x, "prio=\"%s\" is not a priority "
					    "0..7", shown(val, t, 40));
			a->prio = (unsigned)v;
		} else if (KEY("state")) {
			int s = dsched_mstate_parse(val);

			if (s < 0)
				return fail(x, "state=\"%s\" is not a message "
					    "state (ready, active, deferred, "
					    "held, hold)", shown(val, t, 40));
			a->state = (enum dsched_mstate)s;
		} else if (KEY("limit")) {
			if (parse_uint(val, 1, CTLCMD_LIST_LIMIT_MAX, &v) < 0)
				return fail(x, "limit=\"%s\" is not a count "
					    "1..%u", shown(val, t, 40),
					    CTLCMD_LIST_LIMIT_MAX);
			a->limit = (unsigned)v;
		} else if (parse_qid(x, val, &a->after) < 0) {
			return -1;
		}
#undef KEY
	}
	return 0;
}

static bool dest_eq(struct stor_str d, const char *s, size_t n)
{
	return d.n == n && strncasecmp(d.p, s, n) == 0;
}

/* list_row - one message in data and text */
static void list_row(struct ctx *x, uint64_t qid, const struct stor_msg *m,
		     enum dsched_mstate st)
{
	struct buf *d = &x->data, *t = &x->text;
	const struct stor_rcpt *dests[CTLCMD_LIST_DESTS];
	unsigned nd = 0, pending = 0;
	bool more = false;
	const struct stor_rcpt *last = NULL;
	char qt[STOR_QID_TEXT + 1], tm[40];

	for (uint32_t i = 0; i < m->nrcpt; i++) {
		const struct stor_rcpt *r = &m->rcpt[i];
		unsigned k;

		/* the latest reply, a pending recipient's first: why the
		 * message is still here */
		if (r->reply.n && (!last || (r->state == STOR_RCPT_PENDING) >
				   (last->state == STOR_RCPT_PENDING) ||
				   ((r->state == STOR_RCPT_PENDING) ==
				    (last->state == STOR_RCPT_PENDING) &&
				    r->last_attempt_us > last->last_attempt_us)))
			last = r;
		if (r->state != STOR_RCPT_PENDING)
			continue;
		pending++;
		for (k = 0; k < nd; k++)
			if (dests[k]->dest.n == r->dest.n &&
			    memcmp(dests[k]->dest.p, r->dest.p, r->dest.n) == 0)
				break;
		if (k == nd) {
			if (nd < CTLCMD_LIST_DESTS)
				dests[nd++] = r;
			else
				more = true;
		}
	}
	jw_obj(d, NULL);
	jw_qid(d, "id", qid);
	jw_time(d, "arrival", m->arrival_us);
	jw_u64(d, "size", m->body_len);
	jw_u64(d, "priority", m->priority);
	jw_sstr(d, "sender", m->sender, CTLCMD_LIST_STR);
	jw_u64(d, "rcpt_pending", pending);
	jw_u64(d, "rcpt_total", m->nrcpt);
	jw_arr(d, "destinations");
	for (unsigned k = 0; k < nd; k++)
		jw_sstr(d, NULL, dests[k]->dest, CTLCMD_DEST_MAX);
	jw_end_arr(d);
	jw_bool(d, "destinations_more", more);
	jw_cstr(d, "state", dsched_mstate_name(st));
	jw_u64(d, "attempts", m->attempts);
	jw_time(d, "next_attempt", m->next_attempt_us);
	if (last)
		jw_sstr(d, "last_reply", last->reply, CTLCMD_LIST_STR);
	else
		jw_null(d, "last_reply");
	jw_end_obj(d);

	buf_printf(t, "%s %-19s %9u %u %-8s %4u/%-4u ",
		   stor_qid_format(qid, qt),
		   fmt_time(m->arrival_us, false, tm, sizeof(tm)),
		   m->body_len, m->priority, dsched_mstate_name(st), pending,
		   m->nrcpt);
	if (m->sender.n)
		buf_text(t, m->sender.p, m->sender.n, 80);
	else
		buf_add(t, "<>", 2);
	buf_add(t, "\n", 1);
	if (nd) {
		buf_add(t, "    to: ", 8);
		for (unsigned k = 0; k < nd; k++) {
			if (k)
				buf_add(t, ", ", 2);
			buf_text(t, dests[k]->dest.p, dests[k]->dest.n, 80);
		}
		if (more)
			buf_add(t, ", ...", 5);
		buf_add(t, "\n", 1);
	}
	if (last) {
		buf_add(t, "    last reply: ", 16);
		buf_text(t, last->reply.p, last->reply.n, 100);
		buf_add(t, "\n", 1);
	}
}

/* list_match - does m pass the filters (state was checked already) */
static bool list_match(const struct list_args *a, const struct stor_msg *m)
{
	if (a->has_prio && m->priority != a->prio)
		return false;
	if (a->has_dest) {
		size_t n = strlen(a->dest);

		for (uint32_t i = 0; i < m->nrcpt; i++)
			if (m->rcpt[i].state == STOR_RCPT_PENDING &&
			    dest_eq(m->rcpt[i].dest, a->dest, n))
				return true;
		return false;
	}
	return true;
}

static int cmd_queue_list(struct ctx *x, int argc, char **argv)
{
	struct list_args a;
	struct stor_reader *rd = NULL;
	struct stor_rcpt *rcpt = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t key[STOR_QID_KEY];
	uint64_t scanned = 0, corrupt = 0, last = 0, deadline;
	unsigned rows = 0, scan_max, scan_ms;
	bool have_last = false, more = false;
	const char *why = "end";
	char qt[STOR_QID_TEXT + 1];
	int rc;

	if (list_parse(x, argc, argv, &a) < 0 || need_queue(x) < 0)
		return -1;
	scan_max = x->e->list_scan_max ? x->e->list_scan_max : CTLCMD_SCAN_MAX;
	scan_ms = x->e->list_scan_ms ? x->e->list_scan_ms : CTLCMD_SCAN_MS;
	rcpt = malloc(sizeof(*rcpt) * STOR_RCPT_MAX);
	if (!rcpt)
		return fail(x, "out of memory");
	if ((rc = stor_reader_open(x->e->m->q, &rd)) != 0 ||
	    (rc = stor_reader_begin(rd)) != 0 ||
	    (rc = mdb_cursor_open(stor_reader_txn(rd),
				  stor_queue_dbis(x->e->m->q)->meta, &cur))) {
		fail(x, "cannot read the queue: %s", stor_strerror(rc));
		goto out;
	}
	jw_arr(&x->data, "messages");
	buf_printf(&x->text, "%-13s %-19s %9s %s %-8s %9s %s\n", "ID",
		   "ARRIVED (UTC)", "SIZE", "P", "STATE", "PEND/RCPT",
		   "SENDER");
	if (a.has_after) {
		if (a.after == UINT64_MAX) {
			rc = MDB_NOTFOUND;
		} else {
			stor_qid_key(a.after + 1, key);
			k = (MDB_val){ sizeof(key), key };
			rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		}
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	deadline = now_mono_us() + (uint64_t)scan_ms * 1000;
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct stor_msg m;
		uint64_t qid;
		enum dsched_mstate st;

		if (rows == a.limit) {
			more = true;   /* one more record exists */
			why = "limit";
			break;
		}
		if (scanned == scan_max ||
		    (scanned % 256 == 255 && now_mono_us() > deadline)) {
			more = true;
			why = scanned == scan_max ? "scan_max" : "scan_time";
			break;
		}
		if (k.mv_size != STOR_QID_KEY)
			continue;
		qid = stor_qid_from_key(k.mv_data);
		scanned++;
		last = qid;
		have_last = true;
		st = msg_state(x, qid);
		if (a.has_state && st != a.state)
			continue;
		if (stor_rec_msg_decode(v.mv_data, v.mv_size, &m, rcpt,
					STOR_RCPT_MAX) != 0) {
			corrupt++;
			continue;
		}
		if (!list_match(&a, &m))
			continue;
		list_row(x, qid, &m, st);
		rows++;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		fail(x, "reading the queue: %s", stor_strerror(rc));
		goto out;
	}
	jw_end_arr(&x->data);
	jw_u64(&x->data, "count", rows);
	jw_u64(&x->data, "scanned", scanned);
	jw_u64(&x->data, "corrupt", corrupt);
	if (more && have_last)
		jw_qid(&x->data, "next", last);
	else
		jw_null(&x->data, "next");
	jw_cstr(&x->data, "stopped", why);
	buf_printf(&x->text, "-- %u message%s shown, %llu scanned", rows,
		   rows == 1 ? "" : "s", (unsigned long long)scanned);
	if (corrupt)
		buf_printf(&x->text, ", %llu unreadable",
			   (unsigned long long)corrupt);
	if (more && have_last)
		buf_printf(&x->text, "; more: queue list after=%s%s",
			   stor_qid_format(last, qt),
			   why[0] == 's' ? " (scan limit reached)" : "");
	buf_add(&x->text, " --\n", 4);
	rc = 0;
out:
	if (cur)
		mdb_cursor_close(cur);
	if (rd) {
		stor_reader_end(rd);
		stor_reader_close(rd);
	}
	free(rcpt);
	return rc ? -1 : 0;
}

/* ---- queue show ---- */

static void show_msg(struct ctx *x, uint64_t qid, const struct stor_msg *m)
{
	struct buf *d = &x->data, *t = &x->text;
	enum dsched_mstate st = msg_state(x, qid);
	char qt[STOR_QID_TEXT + 1], tm[40];

	jw_qid(d, "id", qid);
	jw_cstr(d, "state", dsched_mstate_name(st));
	jw_time(d, "arrival", m->arrival_us);
	jw_time(d, "next_attempt", m->next_attempt_us);
	jw_u64(d, "attempts", m->attempts);
	jw_u64(d, "size", m->body_len);
	jw_u64(d, "priority", m->priority);
	jw_sstr(d, "sender", m->sender, CTLCMD_SHOW_STR);
	jw_sstr(d, "envid", m->envid, CTLCMD_SHOW_STR);
	jw_sstr(d, "client", m->client, CTLCMD_SHOW_STR);
	jw_obj(d, "flags");
	jw_bool(d, "ret_full", m->flags & STOR_MSG_RET_FULL);
	jw_bool(d, "ret_hdrs", m->flags & STOR_MSG_RET_HDRS);
	jw_bool(d, "8bitmime", m->flags & STOR_MSG_8BITMIME);
	jw_bool(d, "smtputf8", m->flags & STOR_MSG_SMTPUTF8);
	jw_end_obj(d);
	jw_arr(d, "recipients");
	buf_printf(t, "id:           %s\n", stor_qid_format(qid, qt));
	buf_printf(t, "state:        %s\n", dsched_mstate_name(st));
	buf_printf(t, "arrived:      %s UTC\n",
		   fmt_time(m->arrival_us, false, tm, sizeof(tm)));
	buf_printf(t, "next attempt: %s UTC\n",
		   fmt_time(m->next_attempt_us, false, tm, sizeof(tm)));
	buf_printf(t, "attempts:     %u\n", m->attempts);
	buf_printf(t, "size:         %u\n", m->body_len);
	buf_printf(t, "priority:     %u\n", m->priority);
	buf_add(t, "sender:       ", 14);
	if (m->sender.n)
		buf_text(t, m->sender.p, m->sender.n, 300);
	else
		buf_add(t, "<>", 2);
	buf_add(t, "\nclient:       ", 15);
	buf_text(t, m->client.p, m->client.n, 300);
	if (m->envid.n) {
		buf_add(t, "\nenvid:        ", 15);
		buf_text(t, m->envid.p, m->envid.n, 300);
	}
	buf_printf(t, "\nrecipients:   %u\n", m->nrcpt);
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		const struct stor_rcpt *r = &m->rcpt[i];

		jw_obj(d, NULL);
		jw_sstr(d, "address", r->addr, CTLCMD_SHOW_STR);
		jw_sstr(d, "orcpt", r->orcpt, CTLCMD_SHOW_STR);
		jw_sstr(d, "destination", r->dest, CTLCMD_SHOW_STR);
		jw_cstr(d, "state", rcpt_state_name(r->state));
		jw_u64(d, "attempts", r->attempts);
		jw_time(d, "last_attempt", r->last_attempt_us);
		jw_sstr(d, "reply", r->reply, CTLCMD_SHOW_STR);
		jw_u64(d, "notify", r->notify);
		jw_end_obj(d);

		buf_printf(t, "  %-9s ", rcpt_state_name(r->state));
		buf_text(t, r->addr.p, r->addr.n, 300);
		buf_add(t, " -> ", 4);
		buf_text(t, r->dest.p, r->dest.n, 300);
		buf_printf(t, " (attempts %u, last %s)\n", r->attempts,
			   fmt_time(r->last_attempt_us, false, tm, sizeof(tm)));
		if (r->reply.n) {
			buf_add(t, "            reply: ", 19);
			buf_text(t, r->reply.p, r->reply.n, 300);
			buf_add(t, "\n", 1);
		}
	}
	jw_end_arr(d);
}

static int cmd_queue_show(struct ctx *x, int argc, char **argv)
{
	struct stor_reader *rd = NULL;
	struct stor_rcpt *rcpt = NULL;
	struct stor_msg m;
	uint64_t qid;
	char qt[STOR_QID_TEXT + 1];
	int rc;

	if (argc != 1)
		return fail(x, "usage: queue show QUEUE-ID");
	if (parse_qid(x, argv[0], &qid) < 0 || need_queue(x) < 0)
		return -1;
	rcpt = malloc(sizeof(*rcpt) * STOR_RCPT_MAX);
	if (!rcpt)
		return fail(x, "out of memory");
	if ((rc = stor_reader_open(x->e->m->q, &rd)) != 0 ||
	    (rc = stor_reader_begin(rd)) != 0) {
		fail(x, "cannot read the queue: %s", stor_strerror(rc));
		goto out;
	}
	rc = stor_reader_msg(rd, qid, &m, rcpt, STOR_RCPT_MAX);
	if (rc == MDB_NOTFOUND)
		fail(x, "no message %s in the queue",
		     stor_qid_format(qid, qt));
	else if (rc)
		fail(x, "message %s: %s", stor_qid_format(qid, qt),
		     stor_strerror(rc));
	else
		show_msg(x, qid, &m);
out:
	if (rd) {
		stor_reader_end(rd);
		stor_reader_close(rd);
	}
	free(rcpt);
	return rc ? -1 : 0;
}

/* ---- queue hold|release|delete|retry|flush ---- */

static const char *const op_past[] = {
	[DSCHED_OP_HOLD] = "held", [DSCHED_OP_RELEASE] = "released",
	[DSCHED_OP_DELETE] = "deleted", [DSCHED_OP_RETRY] = "due now",
};

static int cmd_queue_op(struct ctx *x, int argc, char **argv)
{
	const char *opname = x->name + strlen("queue ");
	int op = dsched_op_parse(opname), n;
	char err[CTLCMD_ERR_MAX] = "";
	uint64_t *qid;

	if (op < 0 || op > DSCHED_OP_RETRY)
		return fail(x, "unknown operation");
	if (argc == 0)
		return fail(x, "usage: queue %s QUEUE-ID... | queue %s dest=DEST",
			    opname, opname);
	if (strncmp(argv[0], "dest=", 5) == 0) {
		if (argc != 1)
			return fail(x, "dest= takes one destination and no "
				    "queue ids");
		if (check_dest(x, argv[0] + 5) < 0 || need_sched(x) < 0)
			return -1;
		n = dsched_dest_op(x->e->sched, (enum dsched_op)op,
				   argv[0] + 5, err, sizeof(err));
		if (n < 0)
			return fail(x, "%s", err[0] ? err : "refused");
		jw_cstr(&x->data, "op", opname);
		jw_cstr(&x->data, "destination", argv[0] + 5);
		jw_u64(&x->data, "changed", (uint64_t)n);
		buf_printf(&x->text, "%d message%s for %s %s\n", n,
			   n == 1 ? "" : "s", argv[0] + 5, op_past[op]);
		return 0;
	}
	qid = malloc(sizeof(*qid) * (size_t)argc);
	if (!qid)
		return fail(x, "out of memory");
	for (int i = 0; i < argc; i++) {
		if (strchr(argv[i], '=')) {
			free(qid);
			return fail(x, "\"%.40s\": dest=DEST must be the only "
				    "argument", argv[i]);
		}
		if (parse_qid(x, argv[i], &qid[i]) < 0) {
			free(qid);
			return -1;
		}
	}
	if (need_sched(x) < 0) {
		free(qid);
		return -1;
	}
	n = dsched_msgs_op(x->e->sched, (enum dsched_op)op, qid,
			   (unsigned)argc, err, sizeof(err));
	free(qid);
	if (n < 0)
		return fail(x, "%s", err[0] ? err : "refused");
	jw_cstr(&x->data, "op", opname);
	jw_u64(&x->data, "requested", (uint64_t)argc);
	jw_u64(&x->data, "changed", (uint64_t)n);
	buf_printf(&x->text, "%d message%s %s\n", n, n == 1 ? "" : "s",
		   op_past[op]);
	return 0;
}

static int cmd_queue_flush(struct ctx *x, int argc, char **argv)
{
	int n;

	if (no_args(x, argc, argv) < 0 || need_sched(x) < 0)
		return -1;
	n = dsched_flush(x->e->sched);
	jw_u64(&x->data, "changed", (uint64_t)(n < 0 ? 0 : n));
	buf_printf(&x->text, "%d deferred message%s due now\n", n,
		   n == 1 ? "" : "s");
	return 0;
}

/* ---- link ---- */

static void link_json(struct buf *d, const struct dsched_dest_info *i)
{
	jw_cstr(d, "destination", i->name);
	jw_cstr(d, "link", link_name(i->link));
	jw_u64(d, "failures", i->failures);
	jw_time(d, "next_retry", i->next_retry_us);
	jw_time(d, "changed", i->changed_us);
	jw_cstr(d, "last_error", i->last_error ? i->last_error : "");
	jw_u64(d, "active", i->active);
	jw_u64(d, "queued", i->queued);
	jw_u64(d, "held", i->held);
	jw_time(d, "oldest", i->oldest_us);
	jw_u64(d, "attempts", i->attempts);
	jw_u64(d, "delivered", i->delivered);
	jw_u64(d, "deferred", i->deferred);
	jw_u64(d, "failed", i->failed);
	jw_str(d, "route", i->route, strnlen(i->route, sizeof(i->route)));
}

static int link_row(void *arg, const struct dsched_dest_info *i)
{
	struct ctx *x = arg;
	char tm[40];

	size_t nl = strlen(i->name);

	jw_obj(&x->data, NULL);
	link_json(&x->data, i);
	jw_end_obj(&x->data);
	buf_text(&x->text, i->name, nl, 255);
	if (nl < 24)
		buf_printf(&x->text, "%*s", (int)(24 - nl), "");
	buf_printf(&x->text, " %-6s %5u %6u %8llu %8llu  %s\n",
		   link_name(i->link), i->failures, i->active,
		   (unsigned long long)i->queued, (unsigned long long)i->held,
		   fmt_time(i->oldest_us, false, tm, sizeof(tm)));
	if (i->last_error && i->last_error[0]) {
		buf_add(&x->text, "    last error: ", 16);
		buf_text(&x->text, i->last_error, strlen(i->last_error), 200);
		buf_add(&x->text, "\n", 1);
	}
	return x->data.fail || x->text.fail;
}

static int cmd_link_list(struct ctx *x, int argc, char **argv)
{
	if (no_args(x, argc, argv) < 0 || need_sched(x) < 0)
		return -1;
	buf_printf(&x->text, "%-24s %-6s %5s %6s %8s %8s  %s\n",
		   "DESTINATION", "LINK", "FAILS", "ACTIVE", "QUEUED", "HELD",
		   "OLDEST (UTC)");
	jw_arr(&x->data, "links");
	dsched_links(x->e->sched, link_row, x);
	jw_end_arr(&x->data);
	return 0;
}

static int cmd_link_show(struct ctx *x, int argc, char **argv)
{
	struct dsched_dest_info i;
	char tm[40], tm2[40];

	if (argc != 1)
		return fail(x, "usage: link show DEST");
	if (check_dest(x, argv[0]) < 0 || need_sched(x) < 0)
		return -1;
	memset(&i, 0, sizeof(i));
	if (dsched_link_info(x->e->sched, argv[0], &i) < 0)
		return fail(x, "unknown destination \"%s\" (link list shows "
			    "the known ones)", argv[0]);
	link_json(&x->data, &i);
	buf_text(&x->text, i.name, strlen(i.name), 255);
	buf_printf(&x->text, ": link %s since %s UTC, route %.*s\n",
		   link_name(i.link),
		   fmt_time(i.changed_us, false, tm, sizeof(tm)),
		   (int)strnlen(i.route, sizeof(i.route)), i.route);
	buf_printf(&x->text, "  consecutive failures %u, next probe %s\n",
		   i.failures, fmt_time(i.next_retry_us, false, tm2,
					sizeof(tm2)));
	buf_printf(&x->text, "  jobs out %u, queued %llu, held %llu, oldest "
		   "%s\n", i.active, (unsigned long long)i.queued,
		   (unsigned long long)i.held,
		   fmt_time(i.oldest_us, false, tm, sizeof(tm)));
	buf_printf(&x->text, "  since start: attempts %llu, delivered %llu, "
		   "deferred %llu, failed %llu\n",
		   (unsigned long long)i.attempts,
		   (unsigned long long)i.delivered,
		   (unsigned long long)i.deferred,
		   (unsigned long long)i.failed);
	if (i.last_error && i.last_error[0]) {
		buf_add(&x->text, "  last error: ", 14);
		buf_text(&x->text, i.last_error, strlen(i.last_error), 300);
		buf_add(&x->text, "\n", 1);
	}
	return 0;
}

static int cmd_link_set(struct ctx *x, int argc, char **argv)
{
	bool open = strcmp(x->name, "link open") == 0;
	char err[CTLCMD_ERR_MAX] = "";

	if (argc != 1)
		return fail(x, "usage: %s DEST", x->name);
	if (check_dest(x, argv[0]) < 0 || need_sched(x) < 0)
		return -1;
	if (dsched_link_set(x->e->sched, argv[0], open ? STOR_LINK_OPEN :
			    STOR_LINK_CLOSED, err, sizeof(err)) < 0)
		return fail(x, "%s", err[0] ? err : "refused");
	jw_cstr(&x->data, "destination", argv[0]);
	jw_cstr(&x->data, "link", open ? "open" : "closed");
	buf_text(&x->text, argv[0], strlen(argv[0]), 255);
	buf_printf(&x->text, ": link %s\n", open ? "open" : "closed");
	return 0;
}

/* ---- status ---- */

static const char *io_state_name(int s)
{
	return s == IOLCORE_INIT ? "init" : s == IOLCORE_RUNNING ? "running" :
	       s == IOLCORE_FAILED ? "failed" : s == IOLCORE_DONE ? "done" :
	       "?";
}

static void status_sched(struct ctx *x)
{
	struct buf *d = &x->data, *t = &x->text;
	struct dsched_status s;
	char a[32], b[32];

	if (!x->e->sched) {
		jw_null(d, "queue");
		jw_null(d, "delivery");
		buf_add(t, "scheduler: not running\n", 23);
		return;
	}
	memset(&s, 0, sizeof(s));
	dsched_status(x->e->sched, &s);
	jw_obj(d, "queue");
	jw_u64(d, "messages", s.messages);
	jw_arr(d, "by_priority");
	for (unsigned p = 0; p < 8; p++)
		jw_u64(d, NULL, s.by_prio[p]);
	jw_end_arr(d);
	jw_obj(d, "by_state");
	for (unsigned k = 0; k < DSCHED_M_UNKNOWN; k++)
		jw_u64(d, dsched_mstate_name((enum dsched_mstate)k),
		       s.by_state[k]);
	jw_end_obj(d);
	jw_u64(d, "jobs_active", s.jobs_active);
	jw_u64(d, "destinations", s.destinations);
	jw_u64(d, "links_closed", s.links_closed);
	jw_u64(d, "links_down", s.links_down);
	jw_u64(d, "pending_commits", s.pending_commits);
	jw_end_obj(d);
	jw_obj(d, "delivery");
#define SF(f) jw_u64(d, #f, s.f)
	SF(delivered); SF(deferred); SF(failed); SF(expired); SF(bounces);
	SF(delay_notices); SF(relayed_notices); SF(attempts);
	SF(conn_failures);
#undef SF
	jw_dbl(d, "delivered_per_s", s.delivered_per_s);
	jw_u64(d, "deliver_p50_us", s.deliver_p50_us);
	jw_u64(d, "deliver_p99_us", s.deliver_p99_us);
	jw_end_obj(d);

	buf_printf(t, "queue: %llu messages (", (unsigned long long)s.messages);
	for (unsigned k = 0; k < DSCHED_M_UNKNOWN; k++)
		buf_printf(t, "%s%s %llu", k ? ", " : "",
			   dsched_mstate_name((enum dsched_mstate)k),
			   (unsigned long long)s.by_state[k]);
	buf_printf(t, "), jobs out %llu, pending commits %llu\n",
		   (unsigned long long)s.jobs_active,
		   (unsigned long long)s.pending_commits);
	buf_add(t, "  by priority:", 14);
	for (unsigned p = 0; p < 8; p++)
		buf_printf(t, " %u:%llu", p, (unsigned long long)s.by_prio[p]);
	buf_printf(t, "\nlinks: %llu destinations, %llu closed, %llu down\n",
		   (unsigned long long)s.destinations,
		   (unsigned long long)s.links_closed,
		   (unsigned long long)s.links_down);
	buf_printf(t, "delivery since start: delivered %llu, deferred %llu, "
		   "failed %llu, expired %llu, bounces %llu, attempts %llu, "
		   "connection failures %llu\n",
		   (unsigned long long)s.delivered,
		   (unsigned long long)s.deferred,
		   (unsigned long long)s.failed,
		   (unsigned long long)s.expired,
		   (unsigned long long)s.bounces,
		   (unsigned long long)s.attempts,
		   (unsigned long long)s.conn_failures);
	buf_printf(t, "  %.1f delivered/s (last 10 s); arrival to delivered "
		   "p50 %s, p99 %s\n", s.delivered_per_s,
		   s.deliver_p99_us ? fmt_us(s.deliver_p50_us, a, sizeof(a)) :
		   "-", s.deliver_p99_us ?
		   fmt_us(s.deliver_p99_us, b, sizeof(b)) : "-");
}

static unsigned ring_count(struct rte_ring *r)
{
	return r ? rte_ring_count(r) : 0;
}

static void status_rings(struct ctx *x)
{
	struct buf *d = &x->data, *t = &x->text;
	struct mstore *m = x->e->m;
	unsigned n_io = x->e->n_io;

	if (!m) {
		jw_null(d, "rings");
		return;
	}
	if (n_io > CFG_MAX_IO)
		n_io = CFG_MAX_IO;
	jw_obj(d, "rings");
	jw_arr(d, "prio");
	buf_add(t, "rings: prio", 11);
	for (unsigned p = 0; p < PRIO_LEVELS; p++) {
		jw_u64(d, NULL, ring_count(m->prio[p]));
		buf_printf(t, "%c%u", p ? '/' : ' ', ring_count(m->prio[p]));
	}
	jw_end_arr(d);
	jw_arr(d, "djob");
	buf_add(t, ", djob", 6);
	for (unsigned k = 0; k < n_io; k++) {
		jw_u64(d, NULL, ring_count(m->djob[k]));
		buf_printf(t, "%c%u", k ? '/' : ' ', ring_count(m->djob[k]));
	}
	jw_end_arr(d);
	jw_u64(d, "dres", ring_count(m->dres));
	jw_u64(d, "sched_new", ring_count(m->sched_new));
	jw_end_obj(d);
	buf_printf(t, ", dres %u, new %u\n", ring_count(m->dres),
		   ring_count(m->sched_new));
}

static void status_lcores(struct ctx *x)
{
	struct buf *d = &x->data, *t = &x->text;
	struct iolcore_snap *snap = malloc(sizeof(*snap));

	jw_arr(d, "io_lcores");
	for (unsigned k = 0; snap && k < x->e->n_io; k++) {
		struct iolcore *l = &x->e->io[k];
		const struct reactor_stats *r = &snap->reactor;
		const struct smtpd_stats *s = &snap->smtpd;
		int state = atomic_load(&l->state);

		memset(snap, 0, sizeof(*snap));
		iolcore_snapshot(l, snap, 100);
		jw_obj(d, NULL);
		jw_u64(d, "lcore", l->lcore_id);
		jw_u64(d, "queue", l->queue);
		jw_cstr(d, "state", io_state_name(state));
		jw_u64(d, "rx_frames", snap->glue.rx_frames);
		jw_u64(d, "tx_frames", snap->glue.tx_frames);
		jw_u64(d, "tx_drop", snap->glue.tx_drop);
		jw_u64(d, "rounds", r->rounds);
		jw_u64(d, "busy_rounds", r->busy_rounds);
		jw_u64(d, "sessions", s->sessions);
		jw_u64(d, "active", s->active);
		jw_u64(d, "queued", s->queued);
		jw_u64(d, "waiting", s->waiting);
		jw_end_obj(d);
		buf_printf(t, "io lcore %u (queue %u, %s): rx %llu tx %llu "
			   "tx drop %llu, busy %.1f%%, sessions %llu (active "
			   "%llu, waiting %llu), queued %llu\n", l->lcore_id,
			   l->queue, io_state_name(state),
			   (unsigned long long)snap->glue.rx_frames,
			   (unsigned long long)snap->glue.tx_frames,
			   (unsigned long long)snap->glue.tx_drop,
			   r->rounds ? 100.0 * (double)r->busy_rounds /
			   (double)r->rounds : 0.0,
			   (unsigned long long)s->sessions,
			   (unsigned long long)s->active,
			   (unsigned long long)s->waiting,
			   (unsigned long long)s->queued);
	}
	jw_end_arr(d);
	free(snap);
	/* worker counters are plain u64s written by their lcore: a torn
	 * read is impossible on 64-bit, a slightly old one is fine */
	jw_arr(d, "workers");
	for (unsigned k = 0; k < x->e->n_wk; k++) {
		const struct worker *w = &x->e->wk[k];
		const struct worker_stats *s = &w->st;

		jw_obj(d, NULL);
		jw_u64(d, "lcore", w->lcore_id);
		jw_u64(d, "submitted", s->submitted);
		jw_u64(d, "committed", s->committed);
		jw_u64(d, "failed_full", s->failed_full);
		jw_u64(d, "failed_store", s->failed_store);
		jw_u64(d, "writer_busy", s->writer_busy);
		jw_end_obj(d);
		buf_printf(t, "worker %u (lcore %u): submitted %llu, committed "
			   "%llu, refused full %llu, store errors %llu, writer "
			   "busy %llu\n", k, w->lcore_id,
			   (unsigned long long)s->submitted,
			   (unsigned long long)s->committed,
			   (unsigned long long)s->failed_full,
			   (unsigned long long)s->failed_store,
			   (unsigned long long)s->writer_busy);
	}
	jw_end_arr(d);
}

static void status_storage(struct ctx *x)
{
	struct buf *d = &x->data, *t = &x->text;
	uint64_t used, map, wm;

	if (!x->e->m || !x->e->m->q ||
	    stor_queue_usage(x->e->m->q, &used, &map, &wm) != 0) {
		jw_null(d, "storage");
		return;
	}
	jw_obj(d, "storage");
	jw_u64(d, "used_bytes", used);
	jw_u64(d, "map_bytes", map);
	jw_u64(d, "watermark_bytes", wm);
	jw_bool(d, "full", stor_queue_full(x->e->m->q));
	jw_end_obj(d);
	buf_printf(t, "storage: %.1f MiB used of %.1f MiB (watermark %.1f "
		   "MiB)%s\n", (double)used / 1048576.0,
		   (double)map / 1048576.0, (double)wm / 1048576.0,
		   stor_queue_full(x->e->m->q) ? ", FULL: refusing mail" : "");
}

static int cmd_status(struct ctx *x, int argc, char **argv)
{
	uint64_t now = now_unix_us(), up;

	if (no_args(x, argc, argv) < 0)
		return -1;
	up = x->e->started_us && now > x->e->started_us ?
	     (now - x->e->started_us) / 1000000 : 0;
	jw_u64(&x->data, "uptime_s", up);
	buf_printf(&x->text, "sluiced up %llud %02lluh%02llum%02llus\n",
		   (unsigned long long)(up / 86400),
		   (unsigned long long)(up / 3600 % 24),
		   (unsigned long long)(up / 60 % 60),
		   (unsigned long long)(up % 60));
	status_sched(x);
	status_rings(x);
	status_lcores(x);
	status_storage(x);
	return 0;
}

/* ---- command table ---- */

static int cmd_help(struct ctx *x, int argc, char **argv);

struct cmd {
	const char *w1, *w2;
	int (*fn)(struct ctx *x, int argc, char **argv);
	const char *usage, *help;
};

static const struct cmd cmds[] = {
	{ "queue", "list", cmd_queue_list,
	  "queue list [dest=D] [prio=0..7] [state=S] [limit=N] [after=ID]",
	  "messages in id order, filtered, paged (next= cursor)" },
	{ "queue", "show", cmd_queue_show, "queue show ID",
	  "one message: envelope, every recipient, scheduler state" },
	{ "queue", "hold", cmd_queue_op, "queue hold ID... | dest=D",
	  "no delivery attempts until released" },
	{ "queue", "release", cmd_queue_op, "queue release ID... | dest=D",
	  "undo hold; due now" },
	{ "queue", "delete", cmd_queue_op, "queue delete ID... | dest=D",
	  "remove without a bounce (logged)" },
	{ "queue", "retry", cmd_queue_op, "queue retry ID... | dest=D",
	  "due now, skipping the backoff" },
	{ "queue", "flush", cmd_queue_flush, "queue flush",
	  "every deferred message due now" },
	{ "link", "list", cmd_link_list, "link list",
	  "every known destination with its link state" },
	{ "link", "show", cmd_link_show, "link show DEST",
	  "one destination in detail" },
	{ "link", "open", cmd_link_set, "link open DEST",
	  "open the link (releases its holding queue)" },
	{ "link", "close", cmd_link_set, "link close DEST",
	  "close the link (mail for it is held)" },
	{ "status", NULL, cmd_status, "status",
	  "lcores, rings, queue depth, delivery rates, storage" },
	{ "help", NULL, cmd_help, "help", "this list" },
};
#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

static int cmd_help(struct ctx *x, int argc, char **argv)
{
	if (no_args(x, argc, argv) < 0)
		return -1;
	int w = 0;

	for (size_t i = 0; i < N_CMDS; i++)
		if ((int)strlen(cmds[i].usage) > w)
			w = (int)strlen(cmds[i].usage);
	jw_arr(&x->data, "commands");
	buf_add(&x->text, "commands:\n", 10);
	for (size_t i = 0; i < N_CMDS; i++) {
		char name[32];

		snprintf(name, sizeof(name), "%s%s%s", cmds[i].w1,
			 cmds[i].w2 ? " " : "", cmds[i].w2 ? cmds[i].w2 : "");
		jw_obj(&x->data, NULL);
		jw_cstr(&x->data, "command", name);
		jw_cstr(&x->data, "usage", cmds[i].usage);
		jw_cstr(&x->data, "help", cmds[i].help);
		jw_end_obj(&x->data);
		buf_printf(&x->text, "  %-*s  %s\n", w, cmds[i].usage,
			   cmds[i].help);
	}
	jw_end_arr(&x->data);
	return 0;
}

/* split - words of line (spaces/tabs) into argv; count or -1 */
static int split(char *line, char **argv, int max)
{
	int n = 0;

	for (char *p = line; *p;) {
		while (*p == ' ' || *p == '\t')
			*p++ = 0;
		if (!*p)
			break;
		if (n == max)
			return -1;
		argv[n++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
	}
	return n;
}

/* dispatch - find the command row and run it; 0 or -1 + x->err */
static int dispatch(struct ctx *x, int argc, char **argv)
{
	char t[64];
	bool w1_known = false;

	if (argc == 0) {
		x->name = "request";
		return fail(x, "empty request (try help)");
	}
	for (size_t i = 0; i < N_CMDS; i++) {
		const struct cmd *c = &cmds[i];

		if (strcmp(argv[0], c->w1) != 0)
			continue;
		w1_known = true;
		if (c->w2 && (argc < 2 || strcmp(argv[1], c->w2) != 0))
			continue;
		snprintf(x->namebuf, sizeof(x->namebuf), "%s%s%s", c->w1,
			 c->w2 ? " " : "", c->w2 ? c->w2 : "");
		x->name = x->namebuf;
		int skip = c->w2 ? 2 : 1;

		return c->fn(x, argc - skip, argv + skip);
	}
	snprintf(x->namebuf, sizeof(x->namebuf), "%s", shown(argv[0], t, 40));
	x->name = x->namebuf;
	if (w1_known) {
		char subs[128] = "";

		for (size_t i = 0; i < N_CMDS; i++)
			if (strcmp(argv[0], cmds[i].w1) == 0 && cmds[i].w2)
				snprintf(subs + strlen(subs),
					 sizeof(subs) - strlen(subs), "%s%s",
					 subs[0] ? ", " : "", cmds[i].w2);
		if (argc < 2)
			return fail(x, "missing subcommand (%s)", subs);
		return fail(x, "unknown subcommand \"%s\" (%s)",
			    shown(argv[1], t, 40), subs);
	}
	x->name = "request";
	return fail(x, "unknown command \"%s\" (try help)",
		    shown(argv[0], t, 40));
}

void ctlcmd_run(struct ctlcmd_env *e, const char *line, char **out,
		size_t *outlen)
{
	struct ctx x = { .e = e, .name = "request" };
	size_t n = strlen(line);
	char *copy = malloc(n + 1);
	char **argv = malloc(sizeof(char *) * (n / 2 + 2));
	int argc, rc;

	if (!copy || !argv) {
		free(copy);
		free(argv);
		ctlcmd_static_oom(out, outlen);
		return;
	}
	memcpy(copy, line, n + 1);
	argc = split(copy, argv, (int)(n / 2 + 1));
	buf_add(&x.data, "{", 1);
	rc = dispatch(&x, argc, argv);
	buf_add(&x.data, "}", 1);
	free(argv);
	free(copy);
	if (rc == 0 && (x.data.fail || x.text.fail)) {
		snprintf(x.err, sizeof(x.err), "%s: response too large (over "
			 "%u MiB) or out of memory; narrow it (limit=, dest=)",
			 x.name, CTLCMD_OUT_MAX >> 20);
		rc = -1;
	}
	if (rc != 0) {
		free(x.data.p);
		free(x.text.p);
		ctlcmd_error(x.err, out, outlen);
		return;
	}
	struct buf r = { 0 };

	buf_add(&r, "{\"ok\":true,\"data\":", 18);
	buf_add(&r, x.data.p, x.data.n);
	buf_add(&r, ",\"text\":", 8);
	jw_esc(&r, x.text.p ? x.text.p : "", x.text.n);
	buf_add(&r, "}\n", 2);
	free(x.data.p);
	free(x.text.p);
	if (r.fail) {
		free(r.p);
		ctlcmd_error("response too large or out of memory", out,
			     outlen);
		return;
	}
	*out = r.p;
	*outlen = r.n;
}
