/*
 * ctlcmd_int.h - what the command files of the control socket share
 * (ctlcmd.c: dispatch, help, response assembly; ctlcmd_queue.c: queue
 * ...; ctlcmd_link.c: link ..., status; ctlcmd_stats.c: stats). Private
 * to those files: nothing outside control/ctlcmd*.c includes it.
 *
 * The growing text buffer (buf.h, bounded by CTLCMD_OUT_MAX), a JSON
 * writer over it (jw_*: separators are inserted by jw_key, so callers
 * just emit keys and values in order), the request context (struct ctx:
 * the "data" object and the "text" table being built, the error), the
 * argument helpers every command uses, and the command table entry.
 * The helpers are static inline so each command file gets its own copy
 * and no short names leak into sluiced's link.
 *
 * Command groups: each ctlcmd_GROUP.c defines a table fragment
 * `const struct cmd ctlcmd_GROUP_cmds[]` ending with a { NULL } row;
 * ctlcmd.c lists the fragments (ctlcmd_groups) in help order. Adding a
 * group: a new file, its extern line below, one row in ctlcmd_groups[].
 */
#ifndef SLUICE_CTLCMD_INT_H
#define SLUICE_CTLCMD_INT_H

#include "ctlcmd.h"
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <rte_ring.h>

#include "dsched.h"
#include "iolcore.h"
#include "mstore.h"
#include "stor_rec.h"

#define CTLCMD_ERR_MAX 512
#define CTLCMD_LIST_STR 256      /* sender / reply bytes in a list row */
#define CTLCMD_SHOW_STR 2048     /* any string in queue show */
#define CTLCMD_LIST_DESTS 8      /* destinations named per list row */
#define CTLCMD_DEST_MAX 255

/* ---- growing text buffer (struct buf, buf_add, buf_printf: buf.h) ---- */

/* buf_text - append client-supplied bytes for people: control bytes
 * become '?', at most max bytes ("..." marks a cut) */
static inline void buf_text(struct buf *b, const char *s, size_t n,
			    size_t max)
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

/* ---- JSON writer ---- */

/* jw_esc - append s[0..n) as a JSON string */
static inline void jw_esc(struct buf *b, const char *s, size_t n)
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
static inline void jw_key(struct buf *b, const char *key)
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

static inline void jw_obj(struct buf *b, const char *key)
{
	jw_key(b, key);
	buf_add(b, "{", 1);
}

static inline void jw_arr(struct buf *b, const char *key)
{
	jw_key(b, key);
	buf_add(b, "[", 1);
}

static inline void jw_end_obj(struct buf *b) { buf_add(b, "}", 1); }
static inline void jw_end_arr(struct buf *b) { buf_add(b, "]", 1); }

static inline void jw_str(struct buf *b, const char *key, const char *s,
			  size_t n)
{
	jw_key(b, key);
	jw_esc(b, s, n);
}

static inline void jw_cstr(struct buf *b, const char *key, const char *s)
{
	jw_str(b, key, s, strlen(s));
}

/* jw_sstr - a stored string, at most max bytes */
static inline void jw_sstr(struct buf *b, const char *key, struct stor_str s,
		    size_t max)
{
	jw_str(b, key, s.p, s.n > max ? max : s.n);
}

static inline void jw_u64(struct buf *b, const char *key, uint64_t v)
{
	jw_key(b, key);
	buf_printf(b, "%llu", (unsigned long long)v);
}

static inline void jw_bool(struct buf *b, const char *key, bool v)
{
	jw_key(b, key);
	buf_add(b, v ? "true" : "false", v ? 4 : 5);
}

static inline void jw_null(struct buf *b, const char *key)
{
	jw_key(b, key);
	buf_add(b, "null", 4);
}

static inline void jw_dbl(struct buf *b, const char *key, double v)
{
	jw_key(b, key);
	if (v != v || v > 1e300 || v < -1e300)
		buf_add(b, "null", 4);
	else
		buf_printf(b, "%.3f", v);
}

static inline void jw_qid(struct buf *b, const char *key, uint64_t qid)
{
	char t[STOR_QID_TEXT + 1];

	jw_cstr(b, key, stor_qid_format(qid, t));
}

/* ---- request context, argument helpers ---- */

struct ctx {
	struct ctlcmd_env *e;
	struct buf data, text;
	char err[CTLCMD_ERR_MAX];
	const char *name;          /* "queue list" (for messages) */
	char namebuf[64];
};

static inline int fail(struct ctx *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int fail(struct ctx *x, const char *fmt, ...)
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
static inline const char *shown(const char *s, char *tmp, size_t cap)
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
static inline int parse_uint(const char *s, uint64_t lo, uint64_t hi,
			     uint64_t *v)
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

static inline int parse_qid(struct ctx *x, const char *s, uint64_t *qid)
{
	char t[64];

	if (stor_qid_parse(s, strlen(s), qid) != 0)
		return fail(x, "\"%s\" is not a queue id (13 characters of "
			    "Crockford base-32, e.g. 6AMZH00050007)",
			    shown(s, t, 40));
	return 0;
}

/* check_dest - a destination name: 1..255 printable ASCII bytes */
static inline int check_dest(struct ctx *x, const char *d)
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

static inline int need_queue(struct ctx *x)
{
	if (!x->e->m || !x->e->m->q)
		return fail(x, "sluiced runs without a queue (no mail path)");
	return 0;
}

static inline int need_sched(struct ctx *x)
{
	if (!x->e->sched)
		return fail(x, "the delivery scheduler is not running");
	return 0;
}

static inline int no_args(struct ctx *x, int argc, char **argv)
{
	char t[64];

	if (argc > 0)
		return fail(x, "unexpected argument \"%s\"",
			    shown(argv[0], t, 40));
	return 0;
}

static inline const char *rcpt_state_name(uint8_t s)
{
	return s == STOR_RCPT_PENDING ? "pending" :
	       s == STOR_RCPT_DELIVERED ? "delivered" :
	       s == STOR_RCPT_FAILED ? "failed" :
	       s == STOR_RCPT_BOUNCED ? "bounced" : "?";
}

static inline const char *link_name(enum stor_link l)
{
	return l == STOR_LINK_OPEN ? "open" : l == STOR_LINK_CLOSED ?
	       "closed" : l == STOR_LINK_HELD ? "down" : "?";
}

static inline enum dsched_mstate msg_state(struct ctx *x, uint64_t qid)
{
	return x->e->sched ? dsched_msg_state(x->e->sched, qid) :
	       DSCHED_M_UNKNOWN;
}

/* fmt_time - UTC "2023-11-14 22:13:20" (iso: "2023-11-14T22:13:20Z") */
static inline const char *fmt_time(uint64_t us, bool iso, char *out,
				   size_t cap)
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

static inline void jw_time(struct buf *b, const char *key, uint64_t us)
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
static inline const char *fmt_us(uint64_t us, char *out, size_t cap)
{
	if (us < 1000)
		snprintf(out, cap, "%llu us", (unsigned long long)us);
	else if (us < 1000000)
		snprintf(out, cap, "%.1f ms", (double)us / 1e3);
	else
		snprintf(out, cap, "%.1f s", (double)us / 1e6);
	return out;
}

static inline uint64_t now_unix_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static inline uint64_t now_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static inline const char *io_state_name(int s)
{
	return s == IOLCORE_INIT ? "init" : s == IOLCORE_RUNNING ? "running" :
	       s == IOLCORE_FAILED ? "failed" : s == IOLCORE_DONE ? "done" :
	       "?";
}

static inline unsigned ring_count(struct rte_ring *r)
{
	return r ? rte_ring_count(r) : 0;
}

/* ---- command table ---- */

/* one command: first word, second word (NULL: a one-word command), the
 * handler (0, or -1 with x->err set by fail()), usage and a line of help */
struct cmd {
	const char *w1, *w2;
	int (*fn)(struct ctx *x, int argc, char **argv);
	const char *usage, *help;
};

/* table fragments, each ending with a { NULL } row (ctlcmd.c lists them) */
extern const struct cmd ctlcmd_queue_cmds[];   /* ctlcmd_queue.c */
extern const struct cmd ctlcmd_link_cmds[];    /* ctlcmd_link.c (+ status) */
extern const struct cmd ctlcmd_stats_cmds[];   /* ctlcmd_stats.c */
extern const struct cmd ctlcmd_ops_cmds[];     /* ctlcmd_ops.c: reload, drain, log */
extern const struct cmd ctlcmd_dir_cmds[];     /* ctlcmd_dir.c: dir ... */

#endif
