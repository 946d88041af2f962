/*
 * worker.c - message checks, recipient resolution and queue submission
 * (worker.h).
 *
 * Input: work items from the priority rings. Output: stor_producer
 * submissions; results on the owners' done rings. Invariant: an item is
 * in exactly one place (a ring, the writer, `held`, or back with its
 * owner); what the worker allocated for it is freed before it goes back.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_ring.h>

#include "smtp_param.h"
#include "stor_err.h"
#include "worker.h"

/* chunked arena: pointers into it stay valid while it grows */
struct work_arena {
	struct work_arena *next;
	size_t used, cap;
	char data[];
};

static char *worker_strdup(struct work *w, const char *s, size_t n)
{
	struct work_arena *a = w->arena;
	char *p;

	if (!a || a->cap - a->used < n + 1) {
		size_t cap = n + 1 > 8192 ? n + 1 : 8192;

		a = malloc(sizeof(*a) + cap);
		if (!a)
			return NULL;
		a->next = w->arena;
		a->used = 0;
		a->cap = cap;
		w->arena = a;
	}
	p = a->data + a->used;
	memcpy(p, s, n);
	p[n] = '\0';
	a->used += n + 1;
	return p;
}

/* worker_release - free what the worker allocated for w */
static void worker_release(struct work *w)
{
	while (w->arena) {
		struct work_arena *a = w->arena;

		w->arena = a->next;
		free(a);
	}
	free(w->rcpt);
	w->rcpt = NULL;
}

/* worker_finish - result into w, resources freed, back to the owner */
static void worker_finish(struct worker *k, struct work *w, int code,
			  const char *enh, const char *text)
{
	w->code = code;
	snprintf(w->enh, sizeof(w->enh), "%s", enh ? enh : "");
	snprintf(w->text, sizeof(w->text), "%s", text ? text : "");
	worker_release(w);
	mstore_done(k->m, w);
}

unsigned worker_count_received(const uint8_t *msg, size_t n)
{
	unsigned count = 0;
	size_t i = 0;

	while (i < n) {
		size_t end = i;

		if (msg[i] == '\r' || msg[i] == '\n')
			break;              /* empty line: end of the header */
		if (n - i >= 9 && strncasecmp((const char *)msg + i,
					      "Received:", 9) == 0)
			count++;
		while (end < n && msg[end] != '\n')
			end++;
		i = end + 1;
	}
	return count;
}

struct worker_res {
	struct worker *k;
	struct work *w;
	unsigned n, cap;
	uint8_t notify;
	struct stor_str orcpt;
	void *xrd;            /* external (LDAP) cache reader, made on need */
};

/* worker_add - one resolved recipient with its destination */
static int worker_add(struct worker_res *r, const char *addr, size_t alen,
		      const char *dest, size_t dlen)
{
	struct stor_rcpt *x;
	char *a, *d;

	for (unsigned i = 0; i < r->n; i++)   /* aliases may repeat */
		if (r->w->rcpt[i].addr.n == alen &&
		    strncasecmp(r->w->rcpt[i].addr.p, addr, alen) == 0)
			return 0;
	if (r->n == STOR_RCPT_MAX)
		return -1;
	if (r->n == r->cap) {
		unsigned cap = r->cap ? r->cap * 2 : 8;
		struct stor_rcpt *t = realloc(r->w->rcpt, cap * sizeof(*t));

		if (!t)
			return -1;
		r->w->rcpt = t;
		r->cap = cap;
	}
	a = worker_strdup(r->w, addr, alen);
	d = worker_strdup(r->w, dest, dlen);
	if (!a || !d)
		return -1;
	for (char *p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	x = &r->w->rcpt[r->n++];
	memset(x, 0, sizeof(*x));
	x->addr = (struct stor_str){ a, (uint32_t)alen };
	x->dest = (struct stor_str){ d, (uint32_t)dlen };
	x->orcpt = r->orcpt;
	x->notify = r->notify;
	x->state = STOR_RCPT_PENDING;
	return 0;
}

/* worker_xdir - the external (LDAP) directory's cached "found" entry for
 * addr when it backs the domain (the RCPT verdict put it in the cache);
 * 0 with *xr, or -1 (then the domain is the destination) */
static int worker_xdir(struct worker_res *r, const char *addr, size_t n,
		       const char *dom, size_t dn, struct mstore_xrcpt *xr)
{
	const struct mstore_xdir_ops *x = r->k->m->xdir;
	struct timespec ts;

	if (!x || !x->handles(r->k->m->xdir_ctx, dom, dn))
		return -1;
	if (!r->xrd && !(r->xrd = x->reader_new(r->k->m->xdir_ctx)))
		return -1;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (x->cached(r->xrd, addr, n, (uint64_t)ts.tv_sec * 1000 +
		      (uint64_t)ts.tv_nsec / 1000000, xr) != 0)
		return -1;
	return xr->verdict == MSTORE_X_OK ? 0 : -1;
}

/* worker_resolve - directory entry of addr: aliases expand (depth
 * bounded), a route override or the domain gives the destination; an
 * address the local directory lacks may have LDAP forwarding or a route
 * (mailForwardingAddress, mailHost) */
static int worker_resolve(struct worker_res *r, const char *addr, size_t n,
			  unsigned depth)
{
	struct stor_dir_rcpt dr;
	const char *at = memrchr(addr, '@', n);
	int catchall = 0, rc;

	if (!at)      /* <postmaster>: ours */
		return worker_add(r, addr, n, r->k->hostname,
				  strlen(r->k->hostname));
	rc = stor_dir_rcpt(r->k->rd, (struct stor_str){ addr, (uint32_t)n },
			   &dr, &catchall);
	if (rc == 0 && dr.action == STOR_ACT_ALIAS &&
	    depth < WORKER_ALIAS_DEPTH) {
		/* results die with the next lookup: copy the targets first */
		char *t[STOR_ALIAS_MAX];
		size_t tl[STOR_ALIAS_MAX];
		unsigned nt = dr.ntargets;

		for (unsigned i = 0; i < nt; i++) {
			t[i] = worker_strdup(r->w, dr.target[i].p,
					     dr.target[i].n);
			tl[i] = dr.target[i].n;
			if (!t[i])
				return -1;
		}
		for (unsigned i = 0; i < nt; i++)
			if (worker_resolve(r, t[i], tl[i], depth + 1) < 0)
				return -1;
		return 0;
	}
	if (rc == 0 && dr.has_route && dr.route.nhops > 0) {
		char dest[300];
		int dn = snprintf(dest, sizeof(dest), "%.*s:%u",
				  (int)dr.route.hop[0].host.n,
				  dr.route.hop[0].host.p, dr.route.hop[0].port);

		return worker_add(r, addr, n, dest, (size_t)dn);
	}
	if (rc == MDB_NOTFOUND && r->k->m->xdir) {
		struct mstore_xrcpt xr;   /* a copy: recursion cannot spoil it */

		if (worker_xdir(r, addr, n, at + 1, (size_t)(addr + n - at - 1),
				&xr) == 0) {
			if (xr.naliases && depth < WORKER_ALIAS_DEPTH) {
				for (unsigned i = 0; i < xr.naliases; i++)
					if (worker_resolve(r, xr.alias[i],
							   xr.alias_len[i],
							   depth + 1) < 0)
						return -1;
				return 0;
			}
			if (xr.route)
				return worker_add(r, addr, n, xr.route,
						  xr.route_len);
		}
	}
	return worker_add(r, addr, n, at + 1, (size_t)(addr + n - at - 1));
}

/* worker_build - checks and the queue record of one message; 0 to submit,
 * or -1 after the item was finished with a refusal */
static int worker_build(struct worker *k, struct work *w)
{
	const struct smtp_envelope *env = w->env;
	struct worker_res r = { .k = k, .w = w };
	struct stor_msg *m = &w->smsg;
	size_t body = w->msg_len - w->received_len;

	if (body > k->max_size) {
		k->st.too_big++;
		worker_finish(k, w, 552, "5.3.4", "Message size exceeds "
			      "fixed maximum message size");
		return -1;
	}
	if (worker_count_received(w->msg + w->received_len, body) >=
	    k->max_received) {
		k->st.loops++;
		worker_finish(k, w, 554, "5.4.6", "Too many hops (mail "
			      "forwarding loop?)");
		return -1;
	}
	for (unsigned i = 0; i < env->n_rcpt; i++) {
		const struct smtp_rcpt *x = &env->rcpt[i];

		r.notify = x->dsn.notify;
		r.orcpt = (struct stor_str){ NULL, 0 };
		if (x->dsn.orcpt[0]) {
			size_t on = strlen(x->dsn.orcpt);

			r.orcpt.p = worker_strdup(w, x->dsn.orcpt, on);
			r.orcpt.n = (uint32_t)on;
		}
		if (worker_resolve(&r, x->addr.addr, x->addr.len, 0) < 0) {
			stor_dir_reader_release(k->rd);
			if (r.xrd)
				k->m->xdir->reader_free(r.xrd);
			k->st.bad++;
			worker_finish(k, w, 452, "4.5.3", "Too many recipients "
				      "after alias expansion, or out of "
				      "memory");
			return -1;
		}
	}
	stor_dir_reader_release(k->rd);
	if (r.xrd)
		k->m->xdir->reader_free(r.xrd);
	memset(m, 0, sizeof(*m));
	m->arrival_us = env->received_ms * 1000;
	m->next_attempt_us = m->arrival_us;
	m->priority = w->prio;
	if (env->mail.body == SMTP_BODY_8BITMIME ||
	    env->mail.body == SMTP_BODY_BINARYMIME)
		m->flags |= STOR_MSG_8BITMIME;
	if (env->mail.smtputf8)
		m->flags |= STOR_MSG_SMTPUTF8;
	if (env->mail.ret == SMTP_RET_FULL)
		m->flags |= STOR_MSG_RET_FULL;
	else if (env->mail.ret == SMTP_RET_HDRS)
		m->flags |= STOR_MSG_RET_HDRS;
	m->sender = (struct stor_str){ env->sender.addr, env->sender.len };
	m->envid = (struct stor_str){ env->mail.envid,
				      (uint32_t)strlen(env->mail.envid) };
	m->client = (struct stor_str){ w->client, (uint32_t)strlen(w->client) };
	m->nrcpt = r.n;
	m->rcpt = w->rcpt;
	w->nrcpt_out = r.n;
	w->iov.iov_base = (void *)(uintptr_t)w->msg;
	w->iov.iov_len = w->msg_len;
	memset(&w->sub, 0, sizeof(w->sub));
	w->sub.op = STOR_OP_ENQUEUE;
	w->sub.qid = w->qid;
	w->sub.u.enq.msg = m;
	w->sub.u.enq.iov = &w->iov;
	w->sub.u.enq.iovcnt = 1;
	w->sub.user = w;
	return 0;
}

/* worker_submit - to the writer; -1 if it is full (keep the item) */
static int worker_submit(struct worker *k, struct work *w)
{
	int rc = stor_producer_submit(k->prod, &w->sub);

	if (rc == STOR_EAGAIN) {
		k->st.writer_busy++;
		return -1;
	}
	if (rc != 0) {
		k->st.failed_store++;
		worker_finish(k, w, 451, "4.3.0", "Queue writer unavailable");
		return 0;
	}
	k->st.submitted++;
	return 0;
}

/* worker_completions - results from the writer back to the owners */
static unsigned worker_completions(struct worker *k)
{
	struct stor_sub *s[WORKER_BURST];
	unsigned n = stor_producer_poll(k->prod, s, WORKER_BURST);

	for (unsigned i = 0; i < n; i++) {
		struct work *w = s[i]->user;
		int rc = s[i]->result;

		if (rc == 0) {
			k->st.committed++;
			mstore_committed(k->m, w->qid);
			worker_finish(k, w, 0, NULL, NULL);
		} else if (rc == STOR_EFULL) {
			k->st.failed_full++;
			worker_finish(k, w, 452, "4.3.1", "Insufficient system "
				      "storage");
		} else {
			char t[160];

			k->st.failed_store++;
			snprintf(t, sizeof(t), "Local error in processing: "
				 "queue write failed (%s)", stor_strerror(rc));
			worker_finish(k, w, 451, "4.3.0", t);
		}
	}
	return n;
}

int worker_poll(void *arg, uint64_t now_us)
{
	struct worker *k = arg;
	unsigned work = worker_completions(k);

	(void)now_us;
	if (k->held) {
		if (worker_submit(k, k->held) < 0)
			return (int)work;
		k->held = NULL;
		work++;
	}
	for (unsigned b = 0; b < WORKER_BURST; b++) {
		unsigned mask = 0;
		void *p;
		int lvl;

		for (unsigned i = 0; i < PRIO_LEVELS; i++)
			if (!rte_ring_empty(k->m->prio[i]))
				mask |= 1u << i;
		lvl = prio_sched_pick(&k->ps, mask);
		if (lvl < 0 || rte_ring_mc_dequeue(k->m->prio[lvl], &p) != 0)
			break;
		k->st.taken[lvl]++;
		work++;
		if (worker_build(k, p) < 0)
			continue;
		if (worker_submit(k, p) < 0) {
			k->held = p;
			break;
		}
	}
	return (int)work;
}

int worker_init(struct worker *k, struct mstore *m, const struct cfg *c,
		char *err, size_t errlen)
{
	int rc;

	memset(k, 0, sizeof(*k));
	k->m = m;
	prio_sched_init(&k->ps, NULL);
	k->max_received = c->smtp.max_received;
	k->max_size = c->smtp.max_message_size;
	snprintf(k->hostname, sizeof(k->hostname), "%s", c->smtp.hostname);
	k->idle_spins = c->idle_spins;
	k->idle_sleep_us_max = c->idle_sleep_us_max;
	k->prod = mstore_producer(m, err, errlen);
	if (!k->prod)
		return -1;
	rc = stor_dir_reader_open(m->dir, &k->rd);
	if (rc != 0) {
		snprintf(err, errlen, "worker directory reader: %s",
			 stor_strerror(rc));
		return -1;
	}
	return 0;
}

int worker_main(void *arg)
{
	struct worker *k = arg;

	reactor_init(&k->reactor, "worker", k->idle_spins,
		     k->idle_sleep_us_max);
	reactor_add(&k->reactor, "worker", worker_poll, k);
	reactor_run(&k->reactor);
	return 0;
}

void worker_fini(struct worker *k)
{
	/* after the writer stopped: hand back what it finished, free the
	 * item the writer never took */
	if (k->prod)
		while (worker_completions(k) > 0)
			;
	if (k->held) {
		worker_release(k->held);
		k->held = NULL;
	}
	if (k->rd)
		stor_dir_reader_close(k->rd);
	k->rd = NULL;
}
