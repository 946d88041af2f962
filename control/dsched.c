/*
 * dsched.c - the delivery scheduler (dsched.h).
 *
 * Input: the queue (rebuild at start, then ids of new messages from the
 * workers), finished delivery jobs from the io lcores, operator actions.
 * Output: delivery jobs, storage submissions (recipient results, next
 * attempts, deletes, destination states, notices), mail log lines.
 *
 * In memory (rebuilt from LMDB after any restart):
 *   messages     rte_hash qid -> struct ds_msg: priority, next attempt,
 *                jobs out, parts waiting, and during a round the state of
 *                every recipient (results are applied here first, so a
 *                round's end never depends on uncommitted LMDB state)
 *   ready set    one binary heap per priority ordered by (next attempt,
 *                qid); due messages are taken priority 0 first
 *   destinations rte_hash name -> struct ds_dest: link state, failures,
 *                backoff, rate tokens, route cache (60 s, with the
 *                directory's `limit` entry), and per-priority FIFOs
 *                of parts (the recipients of one message for this
 *                destination) waiting for a slot or for the link: the
 *                holding queue
 * A round: a due message is split into parts by destination; each part
 * waits in its destination's FIFO and goes out as one job; every result
 * is committed as it comes back; when no part is out or waiting the round
 * ends: a notice for failed recipients (RFC 3464, dsn.h), then the
 * message is deleted (nothing pending) or rescheduled with the backoff.
 *
 * Persistent encodings: operator hold = next attempt DS_HOLD (sorted
 * last); link "down" = STOR_LINK_HELD in the dest record. Crash windows
 * only repeat work (at-least-once): a recipient FAILED but not BOUNCED
 * gets its notice after a restart, possibly a second time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_ring.h>
#include <rte_spinlock.h>
#include <rte_telemetry.h>

#include "djob.h"
#include "dsched.h"
#include "dsn.h"
#include "log.h"
#include "mlog.h"
#include "mstore.h"
#include "smtp_client.h"
#include "smtp_param.h"
#include "stor_dir.h"
#include "stor_err.h"
#include "stor_queue.h"
#include "stor_writer.h"

#define DS_HOLD UINT64_MAX           /* next attempt of an operator hold */
#define DS_BURST 64
#define DS_POP_MAX 512               /* due messages taken per poll */
#define DS_MAX_MSGS (1u << 20)       /* messages the index can hold */
#define DS_MAX_DESTS 65536
#define DS_NAME 256
#define DS_PROD_DEPTH 4096
#define DS_ROUTE_TTL_US (60ull * 1000000)
#define DS_LAT_N 4096
#define DS_RATE_N 11                 /* 1 s samples for delivered_per_s */
#define DS_GROUPS 64                 /* destinations handled per round */
#define DS_PUB_US 2000000ull         /* telemetry copy of the status */
#define DS_COMMIT_WAIT_US 5000       /* a due round waits for its updates */

struct ds_msg;

/* recipients of one message for one destination, waiting or out */
struct ds_part {
	TAILQ_ENTRY(ds_part) link;   /* destination FIFO */
	struct ds_part *mnext;       /* message's waiting parts */
	struct ds_msg *m;
	struct ds_dest *d;
	uint32_t n;
	uint32_t idx[];
};
TAILQ_HEAD(ds_partq, ds_part);

/* per-recipient round state (only while a round runs) */
struct ds_rcpt {
	uint8_t state;               /* enum stor_rcpt_state */
	uint8_t notice;              /* a notice is owed for this one */
	char *diag;                  /* last reply (malloc'd) or NULL */
	char *remote;                /* relay that gave it, or NULL */
};

struct ds_msg {
	uint64_t qid, next_us, arrival_us;
	uint32_t heap_pos;           /* UINT32_MAX: not in a heap */
	uint32_t attempts;
	uint8_t prio;
	bool hold, gone, delay_sent, in_round;
	uint16_t out, waiting;
	uint32_t unc;                /* updates submitted, not yet committed:
				      * a round starts only at 0, as it
				      * reads recipient states from LMDB */
	struct ds_part *parts;       /* waiting parts */
	uint32_t nrcpt;
	struct ds_rcpt *r;           /* in a round: nrcpt entries */
};

struct ds_dest {
	uint32_t id;
	char name[DS_NAME];
	uint8_t link;                /* enum stor_link (HELD = down) */
	uint32_t failures;
	uint64_t next_retry_us, changed_us, backoff_until;
	char last_error[DJOB_TEXT];
	uint32_t active;
	bool probing, on_runq;
	struct ds_partq wait[8];
	uint64_t nwait;
	TAILQ_ENTRY(ds_dest) runq;
	double tokens;
	uint64_t tok_us;
	/* route cache, with the directory's limits (0 = [delivery]) */
	uint64_t route_at;
	bool route_ok;
	uint8_t tls, nhops;
	struct djob_hop hop[DJOB_HOPS];
	char route_txt[128];
	uint32_t lim_conns, lim_msgs, lim_rate;
	uint64_t attempts, delivered, deferred, failed;
};

struct ds_heap {
	struct ds_msg **a;
	uint32_t n, cap;
};

enum ds_sub_kind { DS_SUB_UPDATE = 1, DS_SUB_DELETE, DS_SUB_DEST,
		   DS_SUB_ENQUEUE };

/* one storage submission and the memory it points into */
struct ds_sub {
	struct stor_sub sub;
	TAILQ_ENTRY(ds_sub) link;
	uint8_t kind;
	struct ds_sub *then;         /* ENQUEUE of a notice: submitted once
				      * the notice is committed (the original's
				      * DELETE or its BOUNCED update) */
	uint64_t orig;               /* ... the original message */
	uint64_t *count;             /* counter bumped when committed */
	bool log_removed;            /* DELETE: log "removed" when committed */
	uint32_t nupd;
	struct stor_rcpt_upd *upd;
	char **strs;
	uint32_t nstrs;
	/* DS_SUB_DEST */
	struct stor_dest dst;
	char name[DS_NAME];
	char err[DJOB_TEXT];
	/* DS_SUB_ENQUEUE */
	struct stor_msg msg;
	struct stor_rcpt rcpt;
	struct iovec iov;
	uint8_t *body;
	char rcpt_addr[512], rcpt_dest[DS_NAME];
};
TAILQ_HEAD(ds_subq, ds_sub);

struct dsched {
	struct mstore *m;
	const struct cfg *c;
	const struct cfg_delivery *d;
	struct rte_hash *msgs, *dnames;
	struct ds_dest **dest;
	uint32_t ndest;
	struct ds_heap heap[8];
	TAILQ_HEAD(, ds_dest) runq;
	struct stor_reader *rd;
	struct stor_dir_reader *dr;
	struct stor_producer *prod;
	struct ds_subq backlog;
	uint64_t pending_commits, nmsgs;
	uint32_t active;
	bool stopping;
	struct stor_rcpt *rbuf;          /* STOR_RCPT_MAX decode buffer */
	uint64_t lat[DS_LAT_N];
	uint32_t lat_n, lat_i;
	uint64_t rate_t[DS_RATE_N], rate_v[DS_RATE_N];
	uint32_t rate_i;
	uint64_t next_tick_us, next_expire_us, next_pub_us;
	/* a copy of dsched_status for other threads (telemetry), renewed
	 * every DS_PUB_US by the scheduler's own thread */
	rte_spinlock_t pub_lock;
	struct dsched_status pub;
	struct dsched_status st;         /* counters part */
};

/* ---- small helpers ---- */

static uint64_t ds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void ds_log(struct dsched *s, const char *line)
{
	mstore_log(s->m, line);
}

static char *ds_strndup(const char *p, size_t n)
{
	char *x = malloc(n + 1);

	if (x) {
		memcpy(x, p, n);
		x[n] = '\0';
	}
	return x;
}

/* ds_cstr - a stor_str as a NUL-terminated copy in buf */
static const char *ds_cstr(struct stor_str v, char *buf, size_t cap)
{
	size_t n = v.n < cap - 1 ? v.n : cap - 1;

	memcpy(buf, v.p ? v.p : "", n);
	buf[n] = '\0';
	return buf;
}

static uint32_t ds_backoff_s(const struct dsched *s, uint32_t attempt)
{
	uint32_t i = attempt ? attempt - 1 : 0;

	if (i >= s->d->n_retry)
		i = s->d->n_retry - 1;
	return s->d->retry_s[i];
}

/* ---- ready heaps ---- */

static bool ds_before(const struct ds_msg *a, const struct ds_msg *b)
{
	return a->next_us < b->next_us ||
	       (a->next_us == b->next_us && a->qid < b->qid);
}

static void ds_heap_set(struct ds_heap *h, uint32_t i, struct ds_msg *m)
{
	h->a[i] = m;
	m->heap_pos = i;
}

static void ds_heap_up(struct ds_heap *h, uint32_t i)
{
	struct ds_msg *m = h->a[i];

	while (i > 0) {
		uint32_t p = (i - 1) / 2;

		if (!ds_before(m, h->a[p]))
			break;
		ds_heap_set(h, i, h->a[p]);
		i = p;
	}
	ds_heap_set(h, i, m);
}

static void ds_heap_down(struct ds_heap *h, uint32_t i)
{
	struct ds_msg *m = h->a[i];

	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, c = l;

		if (l >= h->n)
			break;
		if (r < h->n && ds_before(h->a[r], h->a[l]))
			c = r;
		if (!ds_before(h->a[c], m))
			break;
		ds_heap_set(h, i, h->a[c]);
		i = c;
	}
	ds_heap_set(h, i, m);
}

static int ds_heap_push(struct dsched *s, struct ds_msg *m)
{
	struct ds_heap *h = &s->heap[m->prio];

	if (h->n == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 1024;
		struct ds_msg **a = realloc(h->a, cap * sizeof(*a));

		if (!a)
			return -1;
		h->a = a;
		h->cap = cap;
	}
	ds_heap_set(h, h->n++, m);
	ds_heap_up(h, h->n - 1);
	return 0;
}

static void ds_heap_remove(struct dsched *s, struct ds_msg *m)
{
	struct ds_heap *h = &s->heap[m->prio];
	uint32_t i = m->heap_pos;

	if (i == UINT32_MAX)
		return;
	m->heap_pos = UINT32_MAX;
	if (--h->n == i)
		return;
	{
		struct ds_msg *x = h->a[h->n];

		ds_heap_set(h, i, x);
		ds_heap_up(h, i);
		ds_heap_down(h, x->heap_pos);
	}
}

/* ds_reschedule - move m in its heap to next_us (push if absent) */
static void ds_reschedule(struct dsched *s, struct ds_msg *m, uint64_t next)
{
	ds_heap_remove(s, m);
	m->next_us = next;
	if (ds_heap_push(s, m) < 0)
		log_warn("scheduler: out of memory for the ready set");
}

/* ---- storage submissions ---- */

static struct ds_sub *ds_sub_new(uint8_t kind, uint32_t nupd)
{
	struct ds_sub *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->kind = kind;
	if (nupd) {
		x->upd = calloc(nupd, sizeof(*x->upd));
		x->strs = calloc(nupd, sizeof(*x->strs));
		if (!x->upd || !x->strs) {
			free(x->upd);
			free(x->strs);
			free(x);
			return NULL;
		}
	}
	return x;
}

static void ds_sub_free(struct ds_sub *x)
{
	for (uint32_t i = 0; i < x->nstrs; i++)
		free(x->strs[i]);
	free(x->strs);
	free(x->upd);
	free(x->body);
	free(x);
}

/* ds_submit - hand x to the writer, or keep it in order behind others */
static void ds_submit(struct dsched *s, struct ds_sub *x)
{
	x->sub.user = x;
	s->pending_commits++;
	if (TAILQ_EMPTY(&s->backlog) &&
	    stor_producer_submit(s->prod, &x->sub) == 0)
		return;
	TAILQ_INSERT_TAIL(&s->backlog, x, link);
}

/* ds_sub_update_prep - x becomes m's UPDATE (counted as uncommitted) */
static void ds_sub_update_prep(struct ds_msg *m, uint64_t now,
			       struct ds_sub *x)
{
	x->sub.op = STOR_OP_UPDATE;
	x->sub.qid = m->qid;
	x->sub.u.upd.attempt_us = now;
	x->sub.u.upd.next_attempt_us = m->hold ? DS_HOLD : m->next_us;
	/* a delay notice is sent once, also across restarts (persisted with
	 * the next update: a crash before it may repeat the notice) */
	x->sub.u.upd.set_flags = m->delay_sent ? STOR_MSG_DELAY_SENT : 0;
	x->sub.u.upd.nupd = x->nupd;
	x->sub.u.upd.upd = x->upd;
	m->unc++;
}

static void ds_sub_update(struct dsched *s, struct ds_msg *m, uint64_t now,
			  struct ds_sub *x)
{
	ds_sub_update_prep(m, now, x);
	ds_submit(s, x);
}

/* ds_persist_next - store m's next attempt (hold, release, retry) */
static void ds_persist_next(struct dsched *s, struct ds_msg *m)
{
	struct ds_sub *x = ds_sub_new(DS_SUB_UPDATE, 0);

	if (!x) {
		log_warn("scheduler: out of memory: next attempt of a message "
			"not stored");
		return;
	}
	ds_sub_update(s, m, ds_now(), x);
}

static void ds_persist_dest(struct dsched *s, struct ds_dest *d)
{
	struct ds_sub *x = ds_sub_new(DS_SUB_DEST, 0);

	if (!x) {
		log_warn("scheduler: out of memory: link state of %s not "
			"stored", d->name);
		return;
	}
	snprintf(x->name, sizeof(x->name), "%s", d->name);
	snprintf(x->err, sizeof(x->err), "%s", d->last_error);
	x->dst.link = d->link;
	x->dst.failures = d->failures;
	x->dst.next_retry_us = d->next_retry_us;
	x->dst.changed_us = d->changed_us;
	x->dst.last_error = (struct stor_str){ x->err,
					       (uint32_t)strlen(x->err) };
	x->sub.op = STOR_OP_DEST;
	x->sub.u.dest.name = (struct stor_str){ x->name,
						(uint32_t)strlen(x->name) };
	x->sub.u.dest.state = &x->dst;
	ds_submit(s, x);
}

static void ds_load(struct dsched *s, uint64_t qid, uint64_t now);
static struct ds_msg *ds_msg_find(const struct dsched *s, uint64_t qid);
static void ds_reschedule(struct dsched *s, struct ds_msg *m, uint64_t next);
static uint32_t ds_backoff_s(const struct dsched *s, uint32_t attempt);

/* ds_notice_failed - a notice was not stored (queue full, write error):
 * its original keeps the failed recipients (state 2, notice owed) and is
 * tried again after the first retry step; nothing is deleted */
static void ds_notice_failed(struct dsched *s, struct ds_sub *x)
{
	struct ds_msg *m = ds_msg_find(s, x->orig);
	uint64_t now = ds_now();

	if (x->then->kind == DS_SUB_UPDATE && m && m->unc)
		m->unc--;
	ds_sub_free(x->then);
	x->then = NULL;
	if (!m) {
		ds_load(s, x->orig, now);
		m = ds_msg_find(s, x->orig);
	}
	if (m && !m->in_round && !m->hold)
		ds_reschedule(s, m, now + (uint64_t)ds_backoff_s(s, 1) *
			      1000000u);
}

static int ds_poll_commits(struct dsched *s)
{
	struct stor_sub *done[DS_BURST];
	unsigned n = stor_producer_poll(s->prod, done, DS_BURST);
	struct ds_sub *x;

	for (unsigned i = 0; i < n; i++) {
		x = done[i]->user;
		s->pending_commits--;
		if (done[i]->result != 0) {
			char q[STOR_QID_TEXT + 1];

			log_warn("scheduler: queue write (op %u) for %s failed: "
				 "%s", x->sub.op, stor_qid_format(x->sub.qid, q),
				 stor_strerror(done[i]->result));
			if (x->then)
				ds_notice_failed(s, x);
		} else if (x->kind == DS_SUB_ENQUEUE) {
			ds_load(s, x->sub.qid, ds_now());
			if (x->then)
				ds_submit(s, x->then);
		} else if (x->kind == DS_SUB_DELETE && x->log_removed) {
			char q[STOR_QID_TEXT + 1], line[MLOG_LINE_MAX];

			mlog_event(line, sizeof(line),
				   stor_qid_format(x->sub.qid, q), "removed");
			ds_log(s, line);
		}
		if (done[i]->result == 0 && x->count)
			(*x->count)++;
		if (x->kind == DS_SUB_UPDATE) {
			/* committed or failed: the round may read LMDB */
			struct ds_msg *m = ds_msg_find(s, x->sub.qid);

			if (m && m->unc)
				m->unc--;
		}
		ds_sub_free(x);
	}
	while ((x = TAILQ_FIRST(&s->backlog)) != NULL) {
		if (stor_producer_submit(s->prod, &x->sub) != 0)
			break;
		TAILQ_REMOVE(&s->backlog, x, link);
	}
	return (int)n;
}

/* ---- destinations ---- */

static struct ds_dest *ds_dest_find(const struct dsched *s, const char *name)
{
	char key[DS_NAME] = { 0 };
	void *data;

	snprintf(key, sizeof(key), "%s", name);
	if (rte_hash_lookup_data(s->dnames, key, &data) < 0)
		return NULL;
	return data;
}

static struct ds_dest *ds_dest_get(struct dsched *s, const char *name)
{
	struct ds_dest *d = ds_dest_find(s, name);
	char key[DS_NAME] = { 0 };

	if (d)
		return d;
	if (s->ndest == DS_MAX_DESTS || strlen(name) >= DS_NAME || !name[0])
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	snprintf(d->name, sizeof(d->name), "%s", name);
	for (int p = 0; p < 8; p++)
		TAILQ_INIT(&d->wait[p]);
	d->id = s->ndest;
	d->link = STOR_LINK_OPEN;
	d->tokens = 1;
	snprintf(key, sizeof(key), "%s", name);
	if (rte_hash_add_key_data(s->dnames, key, d) < 0) {
		free(d);
		return NULL;
	}
	s->dest[s->ndest++] = d;
	return d;
}

static void ds_runq_add(struct dsched *s, struct ds_dest *d)
{
	if (!d->on_runq && d->nwait) {
		TAILQ_INSERT_TAIL(&s->runq, d, runq);
		d->on_runq = true;
	}
}

/* ds_set_link - change a link's state, persist it, log it */
static void ds_set_link(struct dsched *s, struct ds_dest *d, uint8_t link,
			uint64_t now, const char *why)
{
	static const char *const names[] = { "open", "closed", "down" };

	if (d->link != link)
		log_info("link %s: %s -> %s (%s)", d->name, names[d->link],
			 names[link], why);
	d->link = link;
	d->changed_us = now;
	if (link == STOR_LINK_OPEN) {
		d->failures = 0;
		d->backoff_until = 0;
		d->next_retry_us = 0;
		ds_runq_add(s, d);
	}
	ds_persist_dest(s, d);
}

/* ds_resolve_host - IPv4 literal or a name (getaddrinfo: control plane
 * only, result cached with the route) */
static int ds_resolve_host(const char *host, uint32_t *addr)
{
	struct in_addr a;
	struct addrinfo hints = { .ai_family = AF_INET,
				  .ai_socktype = SOCK_STREAM }, *res;

	if (inet_pton(AF_INET, host, &a) == 1) {
		*addr = ntohl(a.s_addr);
		return 0;
	}
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return -1;
	*addr = ntohl(((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr);
	freeaddrinfo(res);
	return 0;
}

/* ds_hop_parse - "host:port" */
static int ds_hop_parse(const char *hp, size_t n, struct djob_hop *h)
{
	char host[DS_NAME];
	const char *colon = memrchr(hp, ':', n);
	char *end;
	unsigned long port;

	if (!colon || colon == hp || (size_t)(colon - hp) >= sizeof(host))
		return -1;
	memcpy(host, hp, (size_t)(colon - hp));
	host[colon - hp] = '\0';
	port = strtoul(colon + 1, &end, 10);
	if (end != hp + n || port == 0 || port > 65535)
		return -1;
	h->port = (uint16_t)port;
	return ds_resolve_host(host, &h->addr);
}

/* ds_limits - the directory's `limit` entry for d (none: all 0, the
 * [delivery] values apply); refreshed with the route */
static void ds_limits(struct dsched *s, struct ds_dest *d)
{
	struct stor_dir_limit l = { 0 };
	int rc = stor_dir_limit(s->dr, (struct stor_str){ d->name,
				(uint32_t)strlen(d->name) }, &l);

	stor_dir_reader_release(s->dr);
	if (rc && rc != MDB_NOTFOUND && rc != EINVAL)
		log_warn("scheduler: limits of %s: %s (using [delivery])",
			 d->name, stor_strerror(rc));
	if (rc)
		l = (struct stor_dir_limit){ 0 };
	if (l.max_conns != d->lim_conns || l.msgs_per_conn != d->lim_msgs ||
	    l.rate != d->lim_rate)
		log_info("destination %s: directory limits max_conns=%u "
			 "msgs_per_conn=%u rate=%u (0 = [delivery])", d->name,
			 l.max_conns, l.msgs_per_conn, l.rate);
	d->lim_conns = l.max_conns;
	d->lim_msgs = l.msgs_per_conn;
	d->lim_rate = l.rate;
}

/* ds_max_conns, ds_rate - d's limits: the directory's, else [delivery] */
static uint32_t ds_max_conns(const struct dsched *s, const struct ds_dest *d)
{
	return d->lim_conns ? d->lim_conns : s->d->max_conns_per_dest;
}

static uint32_t ds_rate(const struct dsched *s, const struct ds_dest *d)
{
	return d->lim_rate ? d->lim_rate : s->d->rate_per_dest;
}

/* ds_route - the destination's next hops (cached for DS_ROUTE_TTL_US,
 * and with them its directory limits, ds_limits):
 * "host:port" names itself; a domain uses its directory route, else
 * [delivery] default_route. false + d->last_error when there is none */
static bool ds_route(struct dsched *s, struct ds_dest *d, uint64_t now)
{
	struct stor_dir_domain dom;
	const char *colon = strrchr(d->name, ':');
	int rc;

	if (d->route_at && now - d->route_at < DS_ROUTE_TTL_US)
		return d->route_ok;
	d->route_at = now;
	ds_limits(s, d);
	d->route_ok = false;
	d->nhops = 0;
	d->tls = SMTP_TLS_OPPORTUNISTIC;
	if (colon && colon[1] >= '0' && colon[1] <= '9') {
		if (ds_hop_parse(d->name, strlen(d->name), &d->hop[0]) == 0)
			d->nhops = 1;
	} else {
		rc = stor_dir_domain(s->dr, (struct stor_str){ d->name,
				     (uint32_t)strlen(d->name) }, &dom);
		if (rc == 0 && dom.route.nhops > 0) {
			d->tls = dom.route.tls;
			for (unsigned i = 0; i < dom.route.nhops; i++) {
				char hp[DS_NAME + 8];
				int n = snprintf(hp, sizeof(hp), "%.*s:%u",
						 (int)dom.route.hop[i].host.n,
						 dom.route.hop[i].host.p,
						 dom.route.hop[i].port);

				if (ds_hop_parse(hp, (size_t)n,
						 &d->hop[d->nhops]) == 0)
					d->nhops++;
			}
		} else if (s->d->default_route[0]) {
			if (ds_hop_parse(s->d->default_route,
					 strlen(s->d->default_route),
					 &d->hop[0]) == 0)
				d->nhops = 1;
		}
		stor_dir_reader_release(s->dr);
	}
	if (d->nhops == 0) {
		snprintf(d->last_error, sizeof(d->last_error), "4.4.3 no route "
			 "to %s (no directory route, no [delivery] "
			 "default_route, or its host does not resolve; MX "
			 "lookup is not implemented)", d->name);
		snprintf(d->route_txt, sizeof(d->route_txt), "none");
		return false;
	}
	d->route_ok = true;
	{
		static const char *const tn[] = { "none", "opportunistic",
						  "required", "verify" };
		struct in_addr a = { htonl(d->hop[0].addr) };
		char ip[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		snprintf(d->route_txt, sizeof(d->route_txt), "%s:%u%s tls=%s",
			 ip, d->hop[0].port, d->nhops > 1 ? " (+backups)" : "",
			 tn[d->tls & 3]);
	}
	return true;
}

/* ---- messages ---- */

static struct ds_msg *ds_msg_find(const struct dsched *s, uint64_t qid)
{
	void *data;

	if (rte_hash_lookup_data(s->msgs, &qid, &data) < 0)
		return NULL;
	return data;
}

static void ds_round_free(struct ds_msg *m)
{
	if (!m->r)
		return;
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		free(m->r[i].diag);
		free(m->r[i].remote);
	}
	free(m->r);
	m->r = NULL;
	m->in_round = false;
}

static void ds_msg_free(struct dsched *s, struct ds_msg *m)
{
	ds_heap_remove(s, m);
	rte_hash_del_key(s->msgs, &m->qid);
	ds_round_free(m);
	s->nmsgs--;
	free(m);
}

/* ds_drop_parts - take m's waiting parts out of their FIFOs */
static void ds_drop_parts(struct dsched *s, struct ds_msg *m)
{
	(void)s;
	while (m->parts) {
		struct ds_part *p = m->parts;

		m->parts = p->mnext;
		TAILQ_REMOVE(&p->d->wait[m->prio], p, link);
		p->d->nwait--;
		m->waiting--;
		free(p);
	}
}

/* ds_meta - decode qid's metadata in the reader's snapshot (caller ends
 * the snapshot). 0, MDB_NOTFOUND, or another error */
static int ds_meta(struct dsched *s, uint64_t qid, struct stor_msg *mm)
{
	int rc = stor_reader_begin(s->rd);

	if (rc)
		return rc;
	return stor_reader_msg(s->rd, qid, mm, s->rbuf, STOR_RCPT_MAX);
}

/* ds_add - index a message from its metadata; NULL if nothing to do */
static struct ds_msg *ds_add(struct dsched *s, uint64_t qid,
			     const struct stor_msg *mm)
{
	struct ds_msg *m;
	bool work = false;

	for (uint32_t i = 0; i < mm->nrcpt; i++)
		work |= mm->rcpt[i].state == STOR_RCPT_PENDING ||
			mm->rcpt[i].state == STOR_RCPT_FAILED;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->qid = qid;
	m->prio = mm->priority & 7;
	m->arrival_us = mm->arrival_us;
	m->attempts = mm->attempts;
	m->heap_pos = UINT32_MAX;
	m->hold = mm->next_attempt_us == DS_HOLD;
	m->delay_sent = mm->flags & STOR_MSG_DELAY_SENT;
	m->next_us = work ? mm->next_attempt_us : 0;
	if (rte_hash_add_key_data(s->msgs, &qid, m) < 0) {
		free(m);
		return NULL;
	}
	s->nmsgs++;
	if (!m->hold && ds_heap_push(s, m) < 0)
		log_warn("scheduler: out of memory for the ready set");
	return m;
}

static void ds_load(struct dsched *s, uint64_t qid, uint64_t now)
{
	struct stor_msg mm;
	int rc;

	(void)now;
	if (ds_msg_find(s, qid))
		return;
	rc = ds_meta(s, qid, &mm);
	if (rc == 0 && !ds_add(s, qid, &mm))
		log_warn("scheduler: cannot index a message (out of memory or "
			"more than %u messages)", DS_MAX_MSGS);
	stor_reader_end(s->rd);
}

/* ds_scan_dests - link states from the `dest` records */
static void ds_scan_dests(struct dsched *s, MDB_cursor *cur)
{
	MDB_val k, v;
	int rc;

	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct stor_dest sd;
		char name[DS_NAME];
		struct ds_dest *d;

		if (k.mv_size >= DS_NAME ||
		    stor_rec_dest_decode(v.mv_data, v.mv_size, &sd) != 0)
			continue;
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		d = ds_dest_get(s, name);
		if (!d)
			continue;
		d->link = sd.link <= STOR_LINK_HELD ? sd.link : STOR_LINK_OPEN;
		d->failures = sd.failures;
		d->next_retry_us = sd.next_retry_us;
		d->changed_us = sd.changed_us;
		ds_cstr(sd.last_error, d->last_error, sizeof(d->last_error));
	}
}

/* ds_scan_msgs - index every message of `meta` not known yet; -1 when
 * the index is full (out of memory or DS_MAX_MSGS) */
static int ds_scan_msgs(struct dsched *s, MDB_cursor *cur, uint64_t *n,
			uint64_t *bad)
{
	MDB_val k, v;
	int rc;

	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct stor_msg mm;
		uint64_t qid;

		if (k.mv_size != STOR_QID_KEY)
			continue;
		qid = stor_qid_from_key(k.mv_data);
		if (ds_msg_find(s, qid))
			continue;
		if (stor_rec_msg_decode(v.mv_data, v.mv_size, &mm, s->rbuf,
					STOR_RCPT_MAX) != 0) {
			(*bad)++;
			continue;
		}
		if (!ds_add(s, qid, &mm))
			return -1;
		(*n)++;
	}
	return 0;
}

/* ds_scan_all - index every message of the queue not known yet, and the
 * destinations' link states (start-up, and after a notice ring overflow) */
static int ds_scan_all(struct dsched *s, char *err, size_t errlen)
{
	const struct stor_queue_dbi *dbi = stor_queue_dbis(s->m->q);
	MDB_cursor *dc = NULL, *mc = NULL;
	uint64_t n = 0, bad = 0;
	int rc = stor_reader_begin(s->rd), full = 0;

	if (rc == 0)
		rc = mdb_cursor_open(stor_reader_txn(s->rd), dbi->dest, &dc);
	if (rc == 0)
		rc = mdb_cursor_open(stor_reader_txn(s->rd), dbi->meta, &mc);
	if (rc == 0) {
		ds_scan_dests(s, dc);
		full = ds_scan_msgs(s, mc, &n, &bad);
	}
	if (dc)
		mdb_cursor_close(dc);
	if (mc)
		mdb_cursor_close(mc);
	stor_reader_end(s->rd);
	if (rc) {
		snprintf(err, errlen, "queue scan: %s", stor_strerror(rc));
		return -1;
	}
	if (full) {
		snprintf(err, errlen, "queue scan: cannot index message %llu "
			 "(out of memory or over %u messages)",
			 (unsigned long long)n, DS_MAX_MSGS);
		return -1;
	}
	if (bad)
		log_warn("scheduler: %llu queue records could not be decoded "
			 "(see sluice-stor queue-info)", (unsigned long long)bad);
	return (int)(n > INT32_MAX ? INT32_MAX : n);
}

/* ---- notices (dsn.h) ---- */

/* ds_dest_of - where mail for addr goes: a recipient route override,
 * else the domain (the same rule as the workers) */
static void ds_dest_of(struct dsched *s, const char *addr, char *out,
		       size_t cap)
{
	struct stor_dir_rcpt dr;
	const char *at = strrchr(addr, '@');
	int catchall = 0;

	if (stor_dir_rcpt(s->dr, (struct stor_str){ addr,
			  (uint32_t)strlen(addr) }, &dr, &catchall) == 0 &&
	    dr.has_route && dr.route.nhops > 0)
		snprintf(out, cap, "%.*s:%u", (int)dr.route.hop[0].host.n,
			 dr.route.hop[0].host.p, dr.route.hop[0].port);
	else
		snprintf(out, cap, "%s", at ? at + 1 : s->c->smtp.hostname);
	stor_dir_reader_release(s->dr);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
}

/* ds_notice - queue a DSN to mm's sender about the listed recipients;
 * the reader's snapshot must hold mm. 0 or -1 */
static int ds_notice(struct dsched *s, struct ds_msg *m,
		     const struct stor_msg *mm, const struct dsn_rcpt *dr,
		     unsigned n, uint64_t now, struct ds_sub *then,
		     uint64_t *count)
{
	struct dsn_in in = { 0 };
	struct ds_sub *x;
	const void *body = NULL;
	size_t blen = 0;
	char sender[512], envid[256], client[128], qtxt[STOR_QID_TEXT + 1],
	     bq[STOR_QID_TEXT + 1], line[MLOG_LINE_MAX], what[64];
	int eight = 0, rc;

	if (stor_reader_body(s->rd, m->qid, 0, &body, &blen) != 0) {
		body = "";
		blen = 0;
	}
	in.reporting_mta = s->c->smtp.hostname;
	in.sender = ds_cstr(mm->sender, sender, sizeof(sender));
	in.envid = mm->envid.n ? ds_cstr(mm->envid, envid, sizeof(envid))
			       : NULL;
	in.received_from = mm->client.n ? ds_cstr(mm->client, client,
						  sizeof(client)) : NULL;
	in.arrival_us = mm->arrival_us;
	in.now_us = now;
	in.qid = m->qid;
	in.ret_full = (mm->flags & STOR_MSG_RET_FULL) != 0;
	in.msg = body;
	in.msg_len = blen;
	in.nrcpt = n;
	in.rcpt = dr;
	x = ds_sub_new(DS_SUB_ENQUEUE, 0);
	if (!x)
		return -1;
	rc = dsn_build(&in, &x->body, &x->iov.iov_len, &eight);
	if (rc != 0) {
		log_warn("scheduler: cannot build a notice for %s: %s",
			 stor_qid_format(m->qid, qtxt), strerror(-rc));
		ds_sub_free(x);
		return -1;
	}
	x->iov.iov_base = x->body;
	snprintf(x->rcpt_addr, sizeof(x->rcpt_addr), "%s", sender);
	ds_dest_of(s, x->rcpt_addr, x->rcpt_dest, sizeof(x->rcpt_dest));
	x->rcpt.addr = (struct stor_str){ x->rcpt_addr,
					  (uint32_t)strlen(x->rcpt_addr) };
	x->rcpt.dest = (struct stor_str){ x->rcpt_dest,
					  (uint32_t)strlen(x->rcpt_dest) };
	x->rcpt.state = STOR_RCPT_PENDING;
	x->rcpt.notify = STOR_NOTIFY_NEVER;
	x->msg.arrival_us = now;
	x->msg.next_attempt_us = now;
	x->msg.priority = (uint8_t)s->c->smtp.notify_priority;
	x->msg.flags = eight ? STOR_MSG_8BITMIME : 0;
	x->msg.sender = (struct stor_str){ "", 0 };
	x->msg.envid = (struct stor_str){ "", 0 };
	x->rcpt.orcpt = (struct stor_str){ "", 0 };
	x->rcpt.reply = (struct stor_str){ "", 0 };
	x->msg.client = STOR_STR("sluiced");
	x->msg.nrcpt = 1;
	x->msg.rcpt = &x->rcpt;
	x->sub.op = STOR_OP_ENQUEUE;
	x->sub.qid = stor_queue_new_qid(s->m->q);
	x->sub.u.enq.msg = &x->msg;
	x->sub.u.enq.iov = &x->iov;
	x->sub.u.enq.iovcnt = 1;
	snprintf(what, sizeof(what), "sender %s notification: %s",
		 dr[0].action == DSN_FAILED ? "non-delivery" :
		 dr[0].action == DSN_DELAYED ? "delay" : "delivery status",
		 stor_qid_format(x->sub.qid, bq));
	mlog_event(line, sizeof(line), stor_qid_format(m->qid, qtxt), what);
	ds_log(s, line);
	x->then = then;
	x->orig = m->qid;
	x->count = count;
	ds_submit(s, x);
	return 0;
}

/* ds_notice_owed - RFC 3461: notify bits say whether action is wanted;
 * without NOTIFY, failures and delays are reported, successes not */
static bool ds_notice_owed(const struct stor_msg *mm, uint8_t notify,
			   enum dsn_action a)
{
	if (mm->sender.n == 0 || (notify & STOR_NOTIFY_NEVER))
		return false;
	if (notify == 0)
		return a == DSN_FAILED || a == DSN_DELAYED;
	return (a == DSN_FAILED && (notify & STOR_NOTIFY_FAILURE)) ||
	       (a == DSN_DELAYED && (notify & STOR_NOTIFY_DELAY)) ||
	       ((a == DSN_RELAYED || a == DSN_DELIVERED) &&
		(notify & STOR_NOTIFY_SUCCESS));
}

/* ds_status_of - "5.1.1" from a reply's enhanced code or its class */
static void ds_status_of(const char *enh, int code, char *out, size_t cap)
{
	if (enh && enh[0] >= '2' && enh[0] <= '5' && enh[1] == '.')
		snprintf(out, cap, "%s", enh);
	else
		snprintf(out, cap, "%d.0.0", code >= 500 ? 5 :
			 code >= 400 ? 4 : 2);
}

/* ---- rounds ---- */

/* ds_next_attempt - now + the next backoff step, not past expiry; the
 * held sentinel for an operator hold */
static uint64_t ds_next_attempt(const struct dsched *s,
				const struct ds_msg *m, uint64_t now)
{
	uint64_t next = now + (uint64_t)ds_backoff_s(s, m->attempts) *
			1000000u;
	uint64_t end = m->arrival_us + s->d->max_lifetime_s * 1000000u;

	if (m->hold)
		return DS_HOLD;
	if (next > end)
		next = end > now ? end : now;
	return next;
}

/* ds_delete_sub - the DELETE of m (not submitted); NULL out of memory */
static struct ds_sub *ds_delete_sub(const struct ds_msg *m)
{
	struct ds_sub *d = ds_sub_new(DS_SUB_DELETE, 0);

	if (d) {
		d->sub.op = STOR_OP_DELETE;
		d->sub.qid = m->qid;
		d->log_removed = true;
	}
	return d;
}


static void ds_round_end(struct dsched *s, struct ds_msg *m, uint64_t now);

/* ds_place - a part into its destination's FIFO */
static void ds_place(struct dsched *s, struct ds_part *p)
{
	struct ds_msg *m = p->m;

	TAILQ_INSERT_TAIL(&p->d->wait[m->prio], p, link);
	p->d->nwait++;
	p->mnext = m->parts;
	m->parts = p;
	m->waiting++;
	ds_runq_add(s, p->d);
}

/* ds_fail_all - every pending recipient fails with text (expiry) */
static void ds_fail_all(struct dsched *s, struct ds_msg *m,
			const struct stor_msg *mm, const char *status,
			const char *text, uint64_t now)
{
	char q[STOR_QID_TEXT + 1], to[512], line[MLOG_LINE_MAX];
	struct ds_sub *x = ds_sub_new(DS_SUB_UPDATE, m->nrcpt);

	for (uint32_t i = 0; i < m->nrcpt; i++) {
		struct ds_rcpt *r = &m->r[i];
		char diag[DJOB_TEXT + 64];

		if (r->state != STOR_RCPT_PENDING)
			continue;
		snprintf(diag, sizeof(diag), "%s %s%s%.*s", status, text,
			 mm->rcpt[i].reply.n ? "; last reply: " : "",
			 (int)(mm->rcpt[i].reply.n > DJOB_TEXT ? DJOB_TEXT :
			       mm->rcpt[i].reply.n), mm->rcpt[i].reply.p);
		r->state = STOR_RCPT_FAILED;
		r->notice = ds_notice_owed(mm, mm->rcpt[i].notify, DSN_FAILED);
		free(r->diag);
		r->diag = strdup(diag);
		s->st.expired++;
		mlog_delivery(line, sizeof(line), stor_qid_format(m->qid, q),
			      ds_cstr(mm->rcpt[i].addr, to, sizeof(to)), NULL,
			      (double)(now - m->arrival_us) / 1e6, status,
			      "expired", diag);
		ds_log(s, line);
		if (x && r->diag) {
			x->strs[x->nstrs] = strdup(r->diag);
			if (x->strs[x->nstrs])
				x->upd[x->nupd++] = (struct stor_rcpt_upd){ i,
					STOR_RCPT_FAILED, { x->strs[x->nstrs],
					(uint32_t)strlen(x->strs[x->nstrs]) } };
			x->nstrs++;
		}
	}
	if (x && x->nupd)
		ds_sub_update(s, m, now, x);
	else if (x)
		ds_sub_free(x);
}

/* ds_delay_notice - NOTIFY=DELAY (or no NOTIFY) after delay_warning */
static void ds_delay_notice(struct dsched *s, struct ds_msg *m,
			    const struct stor_msg *mm, uint64_t now)
{
	struct dsn_rcpt dr[64];
	char st[64][16], addr[64][512], orcpt[64][512], diag[64][DJOB_TEXT];
	unsigned n = 0;

	m->delay_sent = true;
	for (uint32_t i = 0; i < mm->nrcpt && n < 64; i++) {
		const struct stor_rcpt *r = &mm->rcpt[i];

		if (r->state != STOR_RCPT_PENDING ||
		    !ds_notice_owed(mm, r->notify, DSN_DELAYED))
			continue;
		ds_cstr(r->reply, diag[n], sizeof(diag[n]));
		snprintf(st[n], sizeof(st[n]), "4.4.7");
		if (r->reply.n > 6 && r->reply.p[0] == '4') {
			/* "451 4.3.0 ..." -> 4.3.0 */
			const char *sp = memchr(r->reply.p, ' ', r->reply.n);

			if (sp && sp[1] == '4' && sp[2] == '.')
				sscanf(sp + 1, "%15s", st[n]);
		}
		dr[n] = (struct dsn_rcpt){
			.addr = ds_cstr(r->addr, addr[n], sizeof(addr[n])),
			.orcpt = r->orcpt.n ? ds_cstr(r->orcpt, orcpt[n],
						      sizeof(orcpt[n])) : NULL,
			.action = DSN_DELAYED, .status = st[n],
			.diag = diag[n][0] ? diag[n] : NULL,
			.last_attempt_us = r->last_attempt_us,
			.retry_until_us = m->arrival_us +
					  s->d->max_lifetime_s * 1000000u,
		};
		n++;
	}
	if (n)
		ds_notice(s, m, mm, dr, n, now, NULL, &s->st.delay_notices);
}

/* ds_round - start a round for due message m */
static void ds_round(struct dsched *s, struct ds_msg *m, uint64_t now)
{
	struct stor_msg mm;
	struct { struct ds_dest *d; uint32_t n; } g[DS_GROUPS];
	unsigned ng = 0;
	uint64_t life = s->d->max_lifetime_s * 1000000u;
	char dn[DS_NAME];
	int rc;

	if (m->unc) {
		/* the last round's results are not in LMDB yet: reading
		 * them now would resend to delivered recipients */
		ds_reschedule(s, m, now + DS_COMMIT_WAIT_US);
		return;
	}
	rc = ds_meta(s, m->qid, &mm);
	if (rc != 0) {
		stor_reader_end(s->rd);
		if (rc == MDB_NOTFOUND)
			ds_msg_free(s, m);
		else    /* try again later */
			ds_reschedule(s, m, now + 1000000);
		return;
	}
	m->nrcpt = mm.nrcpt;
	m->r = calloc(mm.nrcpt, sizeof(*m->r));
	if (!m->r) {
		stor_reader_end(s->rd);
		ds_reschedule(s, m, now + 1000000);
		return;
	}
	m->in_round = true;
	for (uint32_t i = 0; i < mm.nrcpt; i++) {
		m->r[i].state = mm.rcpt[i].state;
		m->r[i].notice = mm.rcpt[i].state == STOR_RCPT_FAILED &&
			ds_notice_owed(&mm, mm.rcpt[i].notify, DSN_FAILED);
		if (mm.rcpt[i].state == STOR_RCPT_FAILED && mm.rcpt[i].reply.n)
			m->r[i].diag = ds_strndup(mm.rcpt[i].reply.p,
						  mm.rcpt[i].reply.n);
	}
	if (now >= m->arrival_us + life) {
		char t[80];

		snprintf(t, sizeof(t), "message expired: in the queue longer "
			 "than %llus", (unsigned long long)s->d->max_lifetime_s);
		ds_fail_all(s, m, &mm, "4.4.7", t, now);
		stor_reader_end(s->rd);
		ds_round_end(s, m, now);
		return;
	}
	if (s->d->delay_warning_s && !m->delay_sent && m->attempts > 0 &&
	    now >= m->arrival_us + s->d->delay_warning_s * 1000000u)
		ds_delay_notice(s, m, &mm, now);
	/* group pending recipients by destination */
	for (uint32_t i = 0; i < mm.nrcpt; i++) {
		unsigned k;

		if (mm.rcpt[i].state != STOR_RCPT_PENDING)
			continue;
		ds_cstr(mm.rcpt[i].dest, dn, sizeof(dn));
		for (k = 0; k < ng; k++)
			if (strcmp(g[k].d->name, dn) == 0)
				break;
		if (k == ng) {
			struct ds_dest *d = ds_dest_get(s, dn);

			if (!d || ng == DS_GROUPS)
				continue;   /* next round takes the rest */
			g[ng++] = (typeof(g[0])){ d, 0 };
		}
		g[k].n++;
	}
	for (unsigned k = 0; k < ng; k++) {
		struct ds_part *p = malloc(sizeof(*p) + g[k].n * sizeof(uint32_t));

		if (!p)
			continue;
		p->m = m;
		p->d = g[k].d;
		p->n = 0;
		for (uint32_t i = 0; i < mm.nrcpt; i++)
			if (mm.rcpt[i].state == STOR_RCPT_PENDING &&
			    mm.rcpt[i].dest.n == strlen(p->d->name) &&
			    memcmp(mm.rcpt[i].dest.p, p->d->name,
				   mm.rcpt[i].dest.n) == 0)
				p->idx[p->n++] = i;
		ds_place(s, p);
	}
	stor_reader_end(s->rd);
	if (m->waiting == 0)
		ds_round_end(s, m, now);
}

/* ds_round_end - notices for failures, then delete or reschedule. The
 * original's DELETE (nothing pending) or its update marking the failed
 * recipients bounced is submitted only after the notice is committed
 * (ds_sub.then), so a notice the queue refuses is never lost */
static void ds_round_end(struct dsched *s, struct ds_msg *m, uint64_t now)
{
	struct stor_msg mm;
	struct ds_sub *x = NULL, *notice_then;
	uint32_t pending = 0, nf = 0;
	unsigned n = 0;
	int rc;

	for (uint32_t i = 0; i < m->nrcpt; i++) {
		pending += m->r[i].state == STOR_RCPT_PENDING;
		nf += m->r[i].state == STOR_RCPT_FAILED;
	}
	if (pending) {
		/* this round counts; an operator hold is not an attempt */
		if (!m->hold)
			m->attempts++;
		m->next_us = ds_next_attempt(s, m, now);
		if (LOG_MDEBUG_ON(LOG_M_DSCHED)) {
			char q[STOR_QID_TEXT + 1];

			if (m->next_us == DS_HOLD)
				log_mdebug(LOG_M_DSCHED, "%s: %u recipient(s) "
					   "pending, held by the operator",
					   stor_qid_format(m->qid, q), pending);
			else
				log_mdebug(LOG_M_DSCHED, "%s: %u recipient(s) "
					   "pending after %u attempt(s), next "
					   "in %llu s", stor_qid_format(m->qid, q),
					   pending, m->attempts,
					   (unsigned long long)((m->next_us - now)
								/ 1000000u));
		}
	}
	if (nf) {
		struct dsn_rcpt *dr = calloc(nf, sizeof(*dr));
		char (*st)[16] = calloc(nf, sizeof(*st));
		char (*addr)[512] = calloc(nf, sizeof(*addr));
		char (*orcpt)[512] = calloc(nf, sizeof(*orcpt));
		char (*remote)[80] = calloc(nf, sizeof(*remote));
		char (*xdiag)[DJOB_TEXT + 64] = calloc(nf, sizeof(*xdiag));

		x = ds_sub_new(DS_SUB_UPDATE, nf);
		rc = ds_meta(s, m->qid, &mm);
		if (rc == 0 && dr && st && addr && orcpt && remote && xdiag &&
		    x) {
			for (uint32_t i = 0; i < m->nrcpt; i++) {
				struct ds_rcpt *r = &m->r[i];
				const struct stor_rcpt *sr = &mm.rcpt[i];
				const char *diag = r->diag;

				if (r->state != STOR_RCPT_FAILED)
					continue;
				x->strs[x->nupd] = r->diag ? strdup(r->diag)
							   : NULL;
				x->upd[x->nupd] = (struct stor_rcpt_upd){ i,
					STOR_RCPT_BOUNCED, { x->strs[x->nupd] ?
					x->strs[x->nupd] : "", x->strs[x->nupd]
					? (uint32_t)strlen(x->strs[x->nupd])
					: 0 } };
				x->nupd++;
				x->nstrs = x->nupd;
				r->state = STOR_RCPT_BOUNCED;
				if (!r->notice)
					continue;
				/* status: the enhanced code the diag starts
				 * with ("550 5.1.1 ..." or "4.4.7 ...") */
				snprintf(st[n], sizeof(st[n]), "5.0.0");
				if (diag) {
					const char *e = diag;

					if (e[0] >= '2' && e[0] <= '5' &&
					    e[3] == ' ')
						e += 4;
					if (e[0] >= '2' && e[0] <= '5' &&
					    e[1] == '.')
						sscanf(e, "%15[0-9.]", st[n]);
					/* expiry: Diagnostic-Code is the last
					 * SMTP reply, with why we gave up */
					if (diag[0] >= '2' && diag[0] <= '5' &&
					    diag[1] == '.') {
						const char *lr = strstr(diag,
							"; last reply: ");

						if (lr) {
							snprintf(xdiag[n],
								 sizeof(xdiag[n]),
								 "%s (gave up: "
								 "message expired)",
								 lr + 14);
							diag = xdiag[n];
						}
					}
				}
				if (r->remote) {
					/* Remote-MTA is a host, not host:port */
					snprintf(remote[n], sizeof(remote[n]),
						 "%s", r->remote);
					char *c = strrchr(remote[n], ':');

					if (c)
						*c = '\0';
				}
				dr[n] = (struct dsn_rcpt){
					.addr = ds_cstr(sr->addr, addr[n],
							sizeof(addr[n])),
					.orcpt = sr->orcpt.n ?
						ds_cstr(sr->orcpt, orcpt[n],
							sizeof(orcpt[n])) : NULL,
					.action = DSN_FAILED, .status = st[n],
					.remote_mta = r->remote ? remote[n]
								: NULL,
					.diag = diag,
					.last_attempt_us = now,
				};
				n++;
			}
		} else if (x) {
			ds_sub_free(x);    /* try again next round */
			x = NULL;
		}
		/* the original's follow-up, then the notice that gates it */
		notice_then = NULL;
		if (pending == 0) {
			if (x)
				ds_sub_free(x);
			x = NULL;
		} else if (x) {
			ds_sub_update_prep(m, now, x);
		}
		if (n) {
			if (pending == 0)
				notice_then = ds_delete_sub(m);
			else
				notice_then = x;
			if (ds_notice(s, m, &mm, dr, n, now, notice_then,
				      &s->st.bounces) == 0) {
				if (pending)
					x = NULL;   /* goes with the notice */
				else
					notice_then = NULL;
			} else if (pending == 0) {
				/* no notice can be built: do not loop */
				ds_submit(s, notice_then);
				notice_then = NULL;
			}
			if (pending == 0 && notice_then)
				ds_sub_free(notice_then);
		}
		stor_reader_end(s->rd);
		free(dr);
		free(st);
		free(addr);
		free(orcpt);
		free(remote);
		free(xdiag);
		if (pending == 0 && (n == 0 || rc != 0)) {
			struct ds_sub *d = ds_delete_sub(m);

			if (rc != 0) {
				/* metadata unreadable: keep it, retry */
				ds_sub_free(d);
				ds_round_free(m);
				ds_reschedule(s, m, now + 1000000);
				return;
			}
			if (d)
				ds_submit(s, d);
		}
	} else if (pending == 0) {
		struct ds_sub *d = ds_delete_sub(m);

		if (d)
			ds_submit(s, d);
	}
	if (pending == 0) {
		ds_msg_free(s, m);       /* "removed" is logged at commit */
		return;
	}
	/* retry later (m->next_us set above) */
	ds_round_free(m);
	if (!m->hold)
		ds_reschedule(s, m, m->next_us);
	if (x) {                          /* prepared above, not gated */
		ds_submit(s, x);
	} else if (nf == 0 || n == 0) {
		struct ds_sub *u = ds_sub_new(DS_SUB_UPDATE, 0);

		if (u)
			ds_sub_update(s, m, now, u);
	}
}

/* ---- dispatch ---- */

static bool ds_can_go(struct dsched *s, struct ds_dest *d, uint64_t now)
{
	uint32_t rate;

	if (s->stopping || s->active >= s->d->max_active)
		return false;
	if (d->link == STOR_LINK_CLOSED)
		return false;
	if (d->link == STOR_LINK_HELD)    /* down: one probe at a time */
		return !d->probing && now >= d->next_retry_us;
	if (now < d->backoff_until)
		return false;
	ds_route(s, d, now);              /* limits current (cached 60 s) */
	if (d->active >= ds_max_conns(s, d))
		return false;
	rate = ds_rate(s, d);
	if (rate) {
		double cap = rate > 1 ? rate : 1;

		d->tokens += (double)(now - d->tok_us) * rate / 1e6;
		if (d->tokens > cap)
			d->tokens = cap;
		d->tok_us = now;
		if (d->tokens < 1.0)
			return false;
	}
	return true;
}

static void ds_result(struct dsched *s, struct djob *j, uint64_t now);

/* ds_dispatch - the oldest most urgent waiting part of d goes out;
 * false if it could not */
static bool ds_dispatch(struct dsched *s, struct ds_dest *d, uint64_t now)
{
	struct ds_part *p = NULL;
	struct djob *j;
	struct ds_msg *m;

	for (int prio = 0; prio < 8 && !p; prio++)
		p = TAILQ_FIRST(&d->wait[prio]);
	if (!p)
		return false;
	m = p->m;
	j = calloc(1, sizeof(*j));
	if (j)
		j->rcpt = calloc(p->n, sizeof(*j->rcpt));
	if (!j || !j->rcpt) {
		if (j)
			free(j);
		return false;
	}
	/* out of the FIFO and the message's waiting list */
	TAILQ_REMOVE(&d->wait[m->prio], p, link);
	d->nwait--;
	for (struct ds_part **pp = &m->parts; *pp; pp = &(*pp)->mnext)
		if (*pp == p) {
			*pp = p->mnext;
			break;
		}
	m->waiting--;
	m->out++;
	d->active++;
	s->active++;
	if (ds_rate(s, d))
		d->tokens -= 1.0;
	if (d->link == STOR_LINK_HELD)
		d->probing = true;
	j->qid = m->qid;
	j->dest_id = d->id;
	j->prio = m->prio;
	j->nrcpt = p->n;
	for (uint32_t i = 0; i < p->n; i++)
		j->rcpt[i].index = p->idx[i];
	snprintf(j->dest, sizeof(j->dest), "%s", d->name);
	j->sched_priv = p;
	d->attempts++;
	s->st.attempts++;
	if (!ds_route(s, d, now)) {
		/* no next hop: a temporary failure without a connection */
		j->status = DJOB_CONN_FAIL;
		j->code = 451;
		snprintf(j->enh, sizeof(j->enh), "4.4.3");
		snprintf(j->text, sizeof(j->text), "%s", d->last_error + 6);
		ds_result(s, j, now);
		return true;
	}
	j->tls = d->tls;
	j->max_msgs = d->lim_msgs;
	j->nhops = d->nhops;
	memcpy(j->hop, d->hop, sizeof(j->hop));
	j->owner = (uint8_t)(d->id % s->m->n_io);
	if (rte_ring_sp_enqueue(s->m->djob[j->owner], j) != 0) {
		/* io lcore's ring full: undo, try again next poll */
		d->attempts--;
		s->st.attempts--;
		d->active--;
		s->active--;
		m->out--;
		if (d->link == STOR_LINK_HELD)
			d->probing = false;
		if (ds_rate(s, d))
			d->tokens += 1.0;
		free(j->rcpt);
		free(j);
		ds_place(s, p);
		return false;
	}
	if (LOG_MDEBUG_ON(LOG_M_DSCHED)) {
		char q[STOR_QID_TEXT + 1];

		log_mdebug(LOG_M_DSCHED, "%s: to %s%s, priority %u, %u "
			   "recipient(s), attempt %u, io lcore %u, %u "
			   "active for it", stor_qid_format(m->qid, q), d->name,
			   d->probing ? " (probe of a down link)" : "", m->prio,
			   j->nrcpt, m->attempts + 1, j->owner, d->active);
	}
	return true;
}

static int ds_run_dests(struct dsched *s, uint64_t now)
{
	struct ds_dest *d, *next;
	int n = 0;

	for (d = TAILQ_FIRST(&s->runq); d; d = next) {
		next = TAILQ_NEXT(d, runq);
		if (d->nwait == 0 || d->link == STOR_LINK_CLOSED) {
			TAILQ_REMOVE(&s->runq, d, runq);
			d->on_runq = false;
			continue;
		}
		while (d->nwait && ds_can_go(s, d, now) &&
		       ds_dispatch(s, d, now))
			n++;
	}
	return n;
}

/* ds_pop_due - due messages, priority 0 first, start their rounds */
static int ds_pop_due(struct dsched *s, uint64_t now)
{
	int n = 0;

	for (int p = 0; p < 8; p++) {
		struct ds_heap *h = &s->heap[p];

		while (h->n && h->a[0]->next_us <= now && n < DS_POP_MAX &&
		       s->active < s->d->max_active) {
			struct ds_msg *m = h->a[0];

			ds_heap_remove(s, m);
			ds_round(s, m, now);
			n++;
		}
	}
	return n;
}

/* ---- results ---- */

static void ds_lat(struct dsched *s, uint64_t us)
{
	s->lat[s->lat_i] = us;
	s->lat_i = (s->lat_i + 1) % DS_LAT_N;
	if (s->lat_n < DS_LAT_N)
		s->lat_n++;
}

/* ds_job_free - a finished job and its part */
static void ds_job_free(struct djob *j)
{
	free(j->sched_priv);
	free(j->rcpt);
	free(j);
}

/* ds_dest_result - link bookkeeping for one finished job */
static void ds_dest_result(struct dsched *s, struct ds_dest *d,
			   const struct djob *j, uint64_t now)
{
	d->active--;
	s->active--;
	d->probing = false;
	if (j->status == DJOB_CONN_FAIL && strcmp(j->enh, "4.4.3") != 0) {
		s->st.conn_failures++;
		d->failures++;
		snprintf(d->last_error, sizeof(d->last_error), "%d %s %.200s",
			 j->code, j->enh, j->text);
		if (d->link == STOR_LINK_HELD) {
			d->next_retry_us = now + (uint64_t)ds_backoff_s(s,
				d->failures - s->d->down_after) * 1000000u;
			ds_persist_dest(s, d);
		} else if (d->link == STOR_LINK_OPEN &&
			   d->failures >= s->d->down_after) {
			d->next_retry_us = now + (uint64_t)ds_backoff_s(s, 1) *
					   1000000u;
			ds_set_link(s, d, STOR_LINK_HELD, now,
				    "consecutive connection failures");
		} else if (j->code == 421) {
			/* the next hop asked us to back off: all of it */
			d->backoff_until = now + (uint64_t)ds_backoff_s(s,
				d->failures) * 1000000u;
		}
	} else if (j->status != DJOB_CONN_FAIL) {
		if (d->link == STOR_LINK_HELD)
			ds_set_link(s, d, STOR_LINK_OPEN, now,
				    "probe delivered");
		else if (d->failures) {
			d->failures = 0;
			ds_persist_dest(s, d);
		}
	}
	ds_runq_add(s, d);
}

static void ds_result(struct dsched *s, struct djob *j, uint64_t now)
{
	struct ds_part *p = j->sched_priv;
	struct ds_msg *m = p->m;
	struct ds_dest *d = p->d;
	struct stor_msg mm;
	struct ds_sub *x;
	struct dsn_rcpt relayed[16];
	char raddr[16][512], rorcpt[16][512];
	unsigned nrel = 0;
	char q[STOR_QID_TEXT + 1], to[512], reply[DJOB_TEXT + 32],
	     line[MLOG_LINE_MAX];
	bool shutdown = s->stopping && j->status == DJOB_CONN_FAIL &&
			strcmp(j->enh, "4.3.2") == 0;
	int rc;

	ds_dest_result(s, d, j, now);
	m->out--;
	if (m->gone || shutdown) {
		ds_job_free(j);
		if (m->gone && m->out == 0)
			ds_msg_free(s, m);
		return;
	}
	x = ds_sub_new(DS_SUB_UPDATE, j->nrcpt);
	rc = ds_meta(s, m->qid, &mm);
	if (rc != 0 || !x) {
		stor_reader_end(s->rd);
		if (x)
			ds_sub_free(x);
		ds_job_free(j);
		if (rc == MDB_NOTFOUND) {    /* deleted meanwhile */
			m->gone = true;
			if (m->out == 0) {
				ds_drop_parts(s, m);
				ds_msg_free(s, m);
			}
		}
		return;
	}
	stor_qid_format(m->qid, q);
	for (uint32_t i = 0; i < j->nrcpt; i++) {
		struct djob_rcpt *jr = &j->rcpt[i];
		uint32_t k = jr->index;
		struct ds_rcpt *r;
		const char *status;
		int code = jr->code;
		const char *enh = jr->enh, *text = jr->text;
		char dsn[16];
		uint8_t state;

		if (k >= m->nrcpt || k >= mm.nrcpt || !m->r)
			continue;
		r = &m->r[k];
		if (j->status != DJOB_OK) {
			code = j->code ? j->code : 451;
			enh = j->enh;
			text = j->text;
		} else if (code == 0) {
			/* djob.h: 0 = not attempted. Never delivered (the
			 * job's 250 is the others' end of data): the
			 * session's failure if it had one, else 4.3.0 */
			bool tmp = j->code >= 400 && j->code < 500;

			code = tmp ? j->code : 451;
			enh = tmp ? j->enh : "4.3.0";
			text = tmp ? j->text : "recipient not attempted";
		}
		ds_status_of(enh, code, dsn, sizeof(dsn));
		/* the reply text keeps its enhanced code: do not repeat it */
		if (enh[0] && strncmp(text, enh, strlen(enh)) == 0 &&
		    text[strlen(enh)] == ' ')
			text += strlen(enh) + 1;
		snprintf(reply, sizeof(reply), "%d %s %s", code, dsn, text);
		if (code >= 200 && code < 300) {
			state = STOR_RCPT_DELIVERED;
			status = "sent";
			d->delivered++;
			s->st.delivered++;
			ds_lat(s, now - m->arrival_us);
			if (ds_notice_owed(&mm, mm.rcpt[k].notify, DSN_RELAYED) &&
			    !(j->ext & SMTP_EXT_DSN) && nrel < 16) {
				relayed[nrel] = (struct dsn_rcpt){
					.addr = ds_cstr(mm.rcpt[k].addr,
							raddr[nrel], 512),
					.orcpt = mm.rcpt[k].orcpt.n ?
						ds_cstr(mm.rcpt[k].orcpt,
							rorcpt[nrel], 512) : NULL,
					.action = DSN_RELAYED,
					.status = "2.0.0",
					.remote_mta = j->relay[0] ? j->relay
								  : NULL,
					.diag = NULL, .last_attempt_us = now,
				};
				nrel++;
			}
		} else if (code >= 500) {
			state = STOR_RCPT_FAILED;
			status = "bounced";
			d->failed++;
			s->st.failed++;
			r->notice = ds_notice_owed(&mm, mm.rcpt[k].notify,
						   DSN_FAILED);
		} else {
			state = STOR_RCPT_PENDING;
			status = "deferred";
			d->deferred++;
			s->st.deferred++;
		}
		r->state = state;
		free(r->diag);
		r->diag = strdup(reply);
		free(r->remote);
		r->remote = j->relay[0] ? strdup(j->relay) : NULL;
		x->strs[x->nstrs] = strdup(reply);
		x->upd[x->nupd] = (struct stor_rcpt_upd){ k, state,
			{ x->strs[x->nstrs] ? x->strs[x->nstrs] : "",
			  x->strs[x->nstrs] ?
			  (uint32_t)strlen(x->strs[x->nstrs]) : 0 } };
		x->nstrs++;
		x->nupd++;
		mlog_delivery(line, sizeof(line), q,
			      ds_cstr(mm.rcpt[k].addr, to, sizeof(to)),
			      j->relay, (double)(now - m->arrival_us) / 1e6,
			      dsn, status, reply);
		ds_log(s, line);
	}
	if (nrel)
		ds_notice(s, m, &mm, relayed, nrel, now, NULL,
			  &s->st.relayed_notices);
	stor_reader_end(s->rd);
	ds_job_free(j);
	if (x->nupd)
		ds_sub_update(s, m, now, x);
	else
		ds_sub_free(x);
	if (m->out == 0 && m->waiting == 0)
		ds_round_end(s, m, now);
}

static int ds_poll_results(struct dsched *s, uint64_t now)
{
	void *p[DS_BURST];
	unsigned n = rte_ring_sc_dequeue_burst(s->m->dres, p, DS_BURST, NULL);

	for (unsigned i = 0; i < n; i++)
		ds_result(s, p[i], now);
	return (int)n;
}

static int ds_poll_new(struct dsched *s, uint64_t now)
{
	void *p[DS_BURST];
	unsigned n = rte_ring_sc_dequeue_burst(s->m->sched_new, p, DS_BURST,
					       NULL);

	for (unsigned i = 0; i < n; i++)
		ds_load(s, (uint64_t)(uintptr_t)p[i], now);
	if (atomic_exchange_explicit(&s->m->sched_rescan, false,
				     memory_order_acq_rel)) {
		char err[256];

		log_warn("scheduler: new-message ring overflowed: rescanning "
			 "the queue");
		if (ds_scan_all(s, err, sizeof(err)) < 0)
			log_warn("scheduler: %s", err);
	}
	return (int)n;
}

/* ds_expire_down - mail waiting on a down link still expires (mail on
 * a link an operator closed waits until it is opened: the operator's
 * decision, as Postfix's hold queue) */
static void ds_expire_down(struct dsched *s, uint64_t now)
{
	uint64_t life = s->d->max_lifetime_s * 1000000u;

	for (uint32_t i = 0; i < s->ndest; i++) {
		struct ds_dest *d = s->dest[i];

		if (d->link != STOR_LINK_HELD || d->nwait == 0)
			continue;
		for (int p = 0; p < 8; p++) {
			struct ds_part *x, *next;

			for (x = TAILQ_FIRST(&d->wait[p]); x; x = next) {
				struct ds_msg *m = x->m;
				struct stor_msg mm;
				char t[80];

				next = TAILQ_NEXT(x, link);
				if (now < m->arrival_us + life || m->out)
					continue;
				/* next may be m's part too: skip past them */
				while (next && next->m == m)
					next = TAILQ_NEXT(next, link);
				ds_drop_parts(s, m);
				if (ds_meta(s, m->qid, &mm) == 0) {
					snprintf(t, sizeof(t), "message expired "
						 "while the link was down");
					ds_fail_all(s, m, &mm, "4.4.7", t, now);
				}
				stor_reader_end(s->rd);
				ds_round_end(s, m, now);
			}
		}
	}
}

/* ds_tick - once a second: delivery rate samples; every 10 s expiry of
 * mail waiting on down links */
static void ds_tick(struct dsched *s, uint64_t now)
{
	if (now < s->next_tick_us)
		return;
	s->next_tick_us = now + 1000000;
	if (now >= s->next_expire_us) {
		s->next_expire_us = now + 10 * 1000000ull;
		ds_expire_down(s, now);
	}
	if (now >= s->next_pub_us) {
		struct dsched_status st;

		s->next_pub_us = now + DS_PUB_US;
		dsched_status(s, &st);
		rte_spinlock_lock(&s->pub_lock);
		s->pub = st;
		rte_spinlock_unlock(&s->pub_lock);
	}
	s->rate_i = (s->rate_i + 1) % DS_RATE_N;
	s->rate_t[s->rate_i] = now;
	s->rate_v[s->rate_i] = s->st.delivered;
}

int dsched_poll(void *arg, uint64_t now_us)
{
	struct dsched *s = arg;
	uint64_t now = ds_now();
	int n = 0;

	(void)now_us;
	n += ds_poll_commits(s);
	n += ds_poll_results(s, now);
	n += ds_poll_new(s, now);
	if (!s->stopping) {
		n += ds_pop_due(s, now);
		n += ds_run_dests(s, now);
	}
	ds_tick(s, now);
	return n;
}

uint64_t dsched_next_wakeup_us(const struct dsched *s)
{
	uint64_t next = UINT64_MAX;

	for (int p = 0; p < 8; p++)
		if (s->heap[p].n && s->heap[p].a[0]->next_us < next)
			next = s->heap[p].a[0]->next_us;
	return next;
}

void dsched_shutdown(struct dsched *s)
{
	s->stopping = true;
}

bool dsched_drained(const struct dsched *s)
{
	return s->active == 0 && s->pending_commits == 0;
}

/* ---- set-up ---- */

int dsched_new(struct mstore *m, const struct cfg *c, struct dsched **out,
	       char *err, size_t errlen)
{
	struct rte_hash_parameters hm = {
		.name = "sl_dsched_msgs", .entries = DS_MAX_MSGS,
		.key_len = sizeof(uint64_t), .hash_func = rte_jhash,
		.socket_id = SOCKET_ID_ANY,
	};
	struct rte_hash_parameters hd = {
		.name = "sl_dsched_dest", .entries = DS_MAX_DESTS,
		.key_len = DS_NAME, .hash_func = rte_jhash,
		.socket_id = SOCKET_ID_ANY,
	};
	struct dsched *s = calloc(1, sizeof(*s));
	uint64_t t0 = ds_now();
	int rc, n;

	if (!s) {
		snprintf(err, errlen, "scheduler: out of memory");
		return -1;
	}
	s->m = m;
	s->c = c;
	s->d = &c->delivery;
	rte_spinlock_init(&s->pub_lock);
	TAILQ_INIT(&s->runq);
	TAILQ_INIT(&s->backlog);
	s->msgs = rte_hash_create(&hm);
	s->dnames = rte_hash_create(&hd);
	s->dest = calloc(DS_MAX_DESTS, sizeof(*s->dest));
	s->rbuf = calloc(STOR_RCPT_MAX, sizeof(*s->rbuf));
	if (!s->msgs || !s->dnames || !s->dest || !s->rbuf) {
		snprintf(err, errlen, "scheduler: cannot allocate its indexes "
			 "(%s)", rte_strerror(rte_errno));
		dsched_free(s);
		return -1;
	}
	rc = stor_reader_open(m->q, &s->rd);
	if (rc == 0)
		rc = stor_dir_reader_open(m->dir, &s->dr);
	if (rc != 0) {
		snprintf(err, errlen, "scheduler: %s", stor_strerror(rc));
		dsched_free(s);
		return -1;
	}
	rc = stor_writer_producer(m->w, DS_PROD_DEPTH, &s->prod);
	if (rc != 0) {
		snprintf(err, errlen, "scheduler: queue writer producer: %s",
			 stor_strerror(rc));
		dsched_free(s);
		return -1;
	}
	n = ds_scan_all(s, err, errlen);
	if (n < 0) {
		dsched_free(s);
		return -1;
	}
	{
		uint64_t closed = 0, down = 0;

		for (uint32_t i = 0; i < s->ndest; i++) {
			closed += s->dest[i]->link == STOR_LINK_CLOSED;
			down += s->dest[i]->link == STOR_LINK_HELD;
		}
		log_info("scheduler: %d messages, %u destinations (%llu closed, "
			 "%llu down) loaded in %.3f s", n, s->ndest,
			 (unsigned long long)closed, (unsigned long long)down,
			 (double)(ds_now() - t0) / 1e6);
	}
	for (int i = 0; i < DS_RATE_N; i++)
		s->rate_t[i] = t0;
	*out = s;
	return 0;
}

void dsched_free(struct dsched *s)
{
	struct ds_sub *x;

	if (!s)
		return;
	/* after the writer and the io lcores stopped: what came back */
	if (s->prod) {
		struct stor_sub *done[DS_BURST];
		unsigned n;

		while ((n = stor_producer_poll(s->prod, done, DS_BURST)) > 0)
			for (unsigned i = 0; i < n; i++)
				ds_sub_free(done[i]->user);
	}
	if (s->m->dres) {
		void *j;

		while (rte_ring_sc_dequeue(s->m->dres, &j) == 0)
			ds_job_free(j);
	}
	while ((x = TAILQ_FIRST(&s->backlog)) != NULL) {
		TAILQ_REMOVE(&s->backlog, x, link);
		ds_sub_free(x);
	}
	for (int p = 0; p < 8; p++)
		free(s->heap[p].a);
	if (s->msgs) {
		const void *k;
		void *data;
		uint32_t it = 0;

		while (rte_hash_iterate(s->msgs, &k, &data, &it) >= 0) {
			struct ds_msg *m = data;

			while (m->parts) {
				struct ds_part *p = m->parts;

				m->parts = p->mnext;
				free(p);
			}
			ds_round_free(m);
			free(m);
		}
		rte_hash_free(s->msgs);
	}
	for (uint32_t i = 0; s->dest && i < s->ndest; i++)
		free(s->dest[i]);
	free(s->dest);
	if (s->dnames)
		rte_hash_free(s->dnames);
	if (s->dr)
		stor_dir_reader_close(s->dr);
	if (s->rd)
		stor_reader_close(s->rd);
	free(s->rbuf);
	free(s);
}

/* ---- operator actions ---- */

static const char *const ds_op_names[] = { "hold", "release", "delete",
					   "retry", NULL };
static const char *const ds_state_names[] = { "ready", "active", "deferred",
					      "held", "hold", "unknown", NULL };

int dsched_op_parse(const char *name)
{
	for (int i = 0; ds_op_names[i]; i++)
		if (strcmp(name, ds_op_names[i]) == 0)
			return i;
	return -1;
}

const char *dsched_mstate_name(enum dsched_mstate st)
{
	return st <= DSCHED_M_UNKNOWN ? ds_state_names[st] : "?";
}

int dsched_mstate_parse(const char *name)
{
	for (int i = 0; i < DSCHED_M_UNKNOWN; i++)
		if (strcmp(name, ds_state_names[i]) == 0)
			return i;
	return -1;
}

/* ds_op - one message; returns 1 if it changed */
static int ds_op(struct dsched *s, struct ds_msg *m, enum dsched_op op,
		 uint64_t now)
{
	char q[STOR_QID_TEXT + 1], line[MLOG_LINE_MAX];
	struct ds_sub *x;

	stor_qid_format(m->qid, q);
	switch (op) {
	case DSCHED_OP_HOLD:
		if (m->hold)
			return 0;
		m->hold = true;
		ds_heap_remove(s, m);
		ds_drop_parts(s, m);
		if (m->in_round && m->out == 0)
			ds_round_end(s, m, now);   /* keeps the hold */
		else if (!m->in_round)
			ds_persist_next(s, m);
		mlog_event(line, sizeof(line), q, "held by operator");
		ds_log(s, line);
		return 1;
	case DSCHED_OP_RELEASE:
		if (!m->hold)
			return 0;
		m->hold = false;
		if (!m->in_round) {
			ds_reschedule(s, m, now);
			ds_persist_next(s, m);
		}
		mlog_event(line, sizeof(line), q, "released by operator");
		ds_log(s, line);
		return 1;
	case DSCHED_OP_RETRY:
		if (m->hold || m->in_round || m->next_us <= now)
			return 0;
		ds_reschedule(s, m, now);
		ds_persist_next(s, m);
		return 1;
	case DSCHED_OP_DELETE:
		ds_drop_parts(s, m);
		x = ds_sub_new(DS_SUB_DELETE, 0);
		if (x) {
			x->sub.op = STOR_OP_DELETE;
			x->sub.qid = m->qid;
			ds_submit(s, x);
		}
		mlog_event(line, sizeof(line), q, "removed by operator");
		ds_log(s, line);
		if (m->out)
			m->gone = true;     /* freed when its jobs return */
		else
			ds_msg_free(s, m);
		return 1;
	}
	return 0;
}

int dsched_msgs_op(struct dsched *s, enum dsched_op op, const uint64_t *qid,
		   unsigned n, char *err, size_t errlen)
{
	uint64_t now = ds_now();
	int changed = 0;

	if ((unsigned)op > DSCHED_OP_RETRY) {
		snprintf(err, errlen, "unknown operation");
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		struct ds_msg *m = ds_msg_find(s, qid[i]);
		char q[STOR_QID_TEXT + 1];

		if (!m || m->gone) {
			snprintf(err, errlen, "%s: no such message in the "
				 "queue; nothing changed",
				 stor_qid_format(qid[i], q));
			return -1;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		struct ds_msg *m = ds_msg_find(s, qid[i]);

		if (m && !m->gone)
			changed += ds_op(s, m, op, now);
	}
	return changed;
}

struct ds_collect {
	uint64_t *q;
	size_t n, cap;
};

static int ds_collect_cb(void *arg, uint64_t qid)
{
	struct ds_collect *c = arg;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		uint64_t *q = realloc(c->q, cap * sizeof(*q));

		if (!q)
			return 1;
		c->q = q;
		c->cap = cap;
	}
	c->q[c->n++] = qid;
	return 0;
}

int dsched_dest_op(struct dsched *s, enum dsched_op op, const char *dest,
		   char *err, size_t errlen)
{
	struct ds_collect c = { 0 };
	uint64_t now = ds_now();
	char name[DS_NAME];
	int changed = 0, rc;
	size_t n = strlen(dest);

	if (n == 0 || n >= DS_NAME) {
		snprintf(err, errlen, "destination name must be 1..%d "
			 "characters", DS_NAME - 1);
		return -1;
	}
	for (size_t i = 0; i <= n; i++)
		name[i] = (char)(dest[i] >= 'A' && dest[i] <= 'Z' ?
				 dest[i] - 'A' + 'a' : dest[i]);
	rc = stor_reader_begin(s->rd);
	if (rc == 0)
		rc = stor_reader_hold(s->rd, (struct stor_str){ name,
				      (uint32_t)n }, ds_collect_cb, &c);
	stor_reader_end(s->rd);
	if (rc != 0) {
		free(c.q);
		snprintf(err, errlen, "%s: queue read failed: %s", dest,
			 stor_strerror(rc));
		return -1;
	}
	if (c.n == 0 && !ds_dest_find(s, name)) {
		snprintf(err, errlen, "%s: no such destination and no mail "
			 "for it (see link list); nothing changed", dest);
		return -1;
	}
	for (size_t i = 0; i < c.n; i++) {
		struct ds_msg *m = ds_msg_find(s, c.q[i]);

		if (m && !m->gone)
			changed += ds_op(s, m, op, now);
	}
	free(c.q);
	return changed;
}

int dsched_flush(struct dsched *s)
{
	uint64_t now = ds_now();
	int n = 0;

	for (int p = 0; p < 8; p++) {
		struct ds_heap *h = &s->heap[p];

		for (uint32_t i = 0; i < h->n; i++)
			if (h->a[i]->next_us > now) {
				h->a[i]->next_us = now;
				n++;
			}
		for (uint32_t i = h->n / 2 + 1; i-- > 0;)
			if (i < h->n)
				ds_heap_down(h, i);
	}
	for (uint32_t i = 0; i < s->ndest; i++) {
		struct ds_dest *d = s->dest[i];

		d->backoff_until = 0;
		if (d->link == STOR_LINK_HELD)
			d->next_retry_us = now;
		d->route_at = 0;
		ds_runq_add(s, d);
	}
	return n;
}

int dsched_link_set(struct dsched *s, const char *dest, enum stor_link link,
		    char *err, size_t errlen)
{
	struct ds_dest *d;
	char name[DS_NAME];
	size_t n = strlen(dest);

	if (link != STOR_LINK_OPEN && link != STOR_LINK_CLOSED) {
		snprintf(err, errlen, "a link can be opened or closed");
		return -1;
	}
	if (n == 0 || n >= DS_NAME) {
		snprintf(err, errlen, "destination name must be 1..%d "
			 "characters", DS_NAME - 1);
		return -1;
	}
	for (size_t i = 0; i <= n; i++) {
		unsigned char ch = (unsigned char)dest[i];

		if (i < n && (ch <= ' ' || ch >= 0x7f)) {
			snprintf(err, errlen, "destination name contains a "
				 "space or control character");
			return -1;
		}
		name[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
	}
	d = ds_dest_get(s, name);
	if (!d) {
		snprintf(err, errlen, "too many destinations");
		return -1;
	}
	ds_set_link(s, d, (uint8_t)link, ds_now(), "operator");
	return 0;
}

/* ---- views ---- */

enum dsched_mstate dsched_msg_state(const struct dsched *s, uint64_t qid)
{
	const struct ds_msg *m = ds_msg_find(s, qid);

	if (!m || m->gone)
		return DSCHED_M_UNKNOWN;
	if (m->hold)
		return DSCHED_M_HOLD;
	if (m->out)
		return DSCHED_M_ACTIVE;
	for (const struct ds_part *p = m->parts; p; p = p->mnext)
		if (p->d->link != STOR_LINK_OPEN)
			return DSCHED_M_HELD;
	if (m->waiting)
		return DSCHED_M_READY;
	return m->next_us <= ds_now() ? DSCHED_M_READY : DSCHED_M_DEFERRED;
}

static int ds_count_cb(void *arg, uint64_t qid)
{
	uint64_t *c = arg;

	if (c[0]++ == 0)
		c[1] = qid;
	return c[0] >= DSCHED_COUNT_MAX;
}

static void ds_info(const struct dsched *sc, struct ds_dest *d,
		    struct dsched_dest_info *o)
{
	struct dsched *s = (struct dsched *)sc;   /* reader use only */
	uint64_t c[2] = { 0, 0 };

	memset(o, 0, sizeof(*o));
	o->name = d->name;
	o->link = d->link;
	o->failures = d->failures;
	o->next_retry_us = d->next_retry_us;
	o->changed_us = d->changed_us;
	o->last_error = d->last_error;
	o->active = d->active;
	o->held = d->link != STOR_LINK_OPEN ? d->nwait : 0;
	if (stor_reader_begin(s->rd) == 0)
		stor_reader_hold(s->rd, (struct stor_str){ d->name,
				 (uint32_t)strlen(d->name) }, ds_count_cb, c);
	stor_reader_end(s->rd);
	o->queued = c[0];
	o->queued_more = c[0] >= DSCHED_COUNT_MAX;
	/* queue ids start with the arrival second */
	o->oldest_us = c[0] ? (c[1] >> 32) * 1000000u : 0;
	o->attempts = d->attempts;
	o->delivered = d->delivered;
	o->deferred = d->deferred;
	o->failed = d->failed;
	if (!d->route_at)
		ds_route(s, d, ds_now());
	snprintf(o->route, sizeof(o->route), "%s", d->route_txt);
}

static int ds_name_cmp(const void *a, const void *b)
{
	return strcmp((*(struct ds_dest *const *)a)->name,
		      (*(struct ds_dest *const *)b)->name);
}

void dsched_links(const struct dsched *s, dsched_dest_cb cb, void *arg)
{
	struct ds_dest **v = malloc((s->ndest ? s->ndest : 1) * sizeof(*v));
	struct dsched_dest_info o;

	if (!v)
		return;
	memcpy(v, s->dest, s->ndest * sizeof(*v));
	qsort(v, s->ndest, sizeof(*v), ds_name_cmp);
	for (uint32_t i = 0; i < s->ndest; i++) {
		ds_info(s, v[i], &o);
		if (cb(arg, &o))
			break;
	}
	free(v);
}

int dsched_link_info(const struct dsched *s, const char *dest,
		     struct dsched_dest_info *d)
{
	struct ds_dest *x = ds_dest_find(s, dest);

	if (!x)
		return -1;
	ds_info(s, x, d);
	return 0;
}

static int ds_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void dsched_status(const struct dsched *s, struct dsched_status *st)
{
	uint64_t now = ds_now(), lat[DS_LAT_N];
	const void *k;
	void *data;
	uint32_t it = 0, old;

	*st = s->st;
	memset(st->by_prio, 0, sizeof(st->by_prio));
	memset(st->by_state, 0, sizeof(st->by_state));
	st->messages = s->nmsgs;
	st->jobs_active = s->active;
	st->destinations = s->ndest;
	st->pending_commits = s->pending_commits;
	st->links_closed = st->links_down = 0;
	for (uint32_t i = 0; i < s->ndest; i++) {
		st->links_closed += s->dest[i]->link == STOR_LINK_CLOSED;
		st->links_down += s->dest[i]->link == STOR_LINK_HELD;
	}
	while (rte_hash_iterate(s->msgs, &k, &data, &it) >= 0) {
		const struct ds_msg *m = data;
		enum dsched_mstate ms = dsched_msg_state(s, m->qid);

		st->by_prio[m->prio & 7]++;
		if (ms < DSCHED_M_UNKNOWN)
			st->by_state[ms]++;
	}
	old = (s->rate_i + 1) % DS_RATE_N;
	st->delivered_per_s = now > s->rate_t[old] ?
		(double)(s->st.delivered - s->rate_v[old]) * 1e6 /
		(double)(now - s->rate_t[old]) : 0.0;
	if (s->lat_n) {
		memcpy(lat, s->lat, s->lat_n * sizeof(lat[0]));
		qsort(lat, s->lat_n, sizeof(lat[0]), ds_u64_cmp);
		st->deliver_p50_us = lat[s->lat_n / 2];
		st->deliver_p99_us = lat[(s->lat_n * 99) / 100];
	}
}

/* ---- DPDK telemetry: /sluice/queue/status ---- */

static struct dsched *ds_tel;      /* telemetry callbacks take no argument */

static int ds_tel_status(const char *cmd, const char *params,
			 struct rte_tel_data *d)
{
	static const char *const states[] = { "ready", "active", "deferred",
					      "held", "hold" };
	struct dsched_status st;
	char name[32];

	(void)cmd;
	(void)params;
	if (!ds_tel)
		return -ENOTSUP;
	rte_spinlock_lock(&ds_tel->pub_lock);
	st = ds_tel->pub;
	rte_spinlock_unlock(&ds_tel->pub_lock);
	rte_tel_data_start_dict(d);
#define DS_TEL(f) rte_tel_data_add_dict_u64(d, #f, st.f)
	DS_TEL(messages);
	DS_TEL(jobs_active);
	DS_TEL(destinations);
	DS_TEL(links_closed);
	DS_TEL(links_down);
	DS_TEL(pending_commits);
	DS_TEL(delivered);
	DS_TEL(deferred);
	DS_TEL(failed);
	DS_TEL(expired);
	DS_TEL(bounces);
	DS_TEL(delay_notices);
	DS_TEL(relayed_notices);
	DS_TEL(attempts);
	DS_TEL(conn_failures);
	DS_TEL(deliver_p50_us);
	DS_TEL(deliver_p99_us);
#undef DS_TEL
	rte_tel_data_add_dict_u64(d, "delivered_per_s",
				  (uint64_t)(st.delivered_per_s + 0.5));
	for (int p = 0; p < 8; p++) {
		snprintf(name, sizeof(name), "prio/%d", p);
		rte_tel_data_add_dict_u64(d, name, st.by_prio[p]);
	}
	for (int i = 0; i < DSCHED_M_UNKNOWN; i++) {
		snprintf(name, sizeof(name), "state/%s", states[i]);
		rte_tel_data_add_dict_u64(d, name, st.by_state[i]);
	}
	return 0;
}

void dsched_telemetry(struct dsched *s)
{
	ds_tel = s;
	if (s)
		rte_telemetry_register_cmd("/sluice/queue/status",
			ds_tel_status, "Delivery queue: messages by priority "
			"and state, counters (renewed every 2 s)");
}
