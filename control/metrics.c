/*
 * metrics.c - one sample of sluiced's counters, its Prometheus text
 * exposition, and the HTTP endpoint serving it (metrics.h).
 *
 * Input: ctlcmd_env (io lcores, workers, rings, scheduler, queue), read
 * on the control thread; HTTP requests on a kernel TCP socket. Output:
 * struct metrics_sample; text format 0.0.4. Invariants: every family in
 * metrics_fams[] is written, in that order, with its HELP and TYPE lines
 * and all its samples together; the list is the one docs/operations.md
 * documents (tests/system/test_observability.py compares them); the
 * server (reqsrv.h: slots, accept, deadline, read, write) never blocks
 * the control thread on a client; here are its framing and answers.
 */
#define _GNU_SOURCE
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rte_ring.h>

#include "buf.h"
#include "ctlcmd.h"
#include "reqsrv.h"
#include "mstore.h"
#include "stor_queue.h"

/* ---- per-lcore tables: drops by cause, TCP states ---- */

/* packet drops: stack counters by name (glue ones are added below) */
static const struct {
	const char *cause, *counter;
} metrics_drop_net[] = {
	{ "eth_bad", "eth.bad" },
	{ "ip_bad_header", "ip.bad_header" },
	{ "ip_bad_csum", "ip.bad_csum" },
	{ "ip_bad_len", "ip.bad_len" },
	{ "ip_fragment", "ip.frag_drop" },
	{ "ip_unknown_proto", "ip.unknown_proto" },
	{ "arp_pending", "arp.pending_drop" },
	{ "tcp_bad_csum", "tcp.bad_csum" },
	{ "tcp_bad_header", "tcp.bad_hdr" },
	{ "tcp_syn_dropped", "tcp.syn_dropped" },
	{ "tcp_syn_no_memory", "tcp.syn_refused_nomem" },
	{ "tcp_out_of_order", "tcp.ooo_drop" },
	{ "tcp_paws", "tcp.paws_drop" },
	{ "tcp_data_dropped", "tcp.rx_data_dropped" },
};

static const struct {
	const char *state, *counter;
} metrics_tcp_gauges[METRICS_TCP_STATES] = {
	{ "established", "tcp.conns.established" },
	{ "syn_recv", "tcp.conns.syn_recv" },
	{ "syn_sent", "tcp.conns.syn_sent" },
	{ "closing", "tcp.conns.closing" },
	{ "zombie", "tcp.conns.zombie" },
	{ "time_wait", "tcp.timewait.used" },
};

uint64_t metrics_net(const struct iolcore_snap *s, const char *name)
{
	for (unsigned i = 0; i < s->n_net; i++)
		if (strcmp(s->net[i].name, name) == 0)
			return s->net[i].value;
	return 0;
}

unsigned metrics_drops(const struct iolcore_snap *s, struct metrics_kv *out)
{
	unsigned n = 0;

	_Static_assert(sizeof(metrics_drop_net) / sizeof(metrics_drop_net[0])
		       + 4 == METRICS_DROP_CAUSES, "METRICS_DROP_CAUSES");
	out[n++] = (struct metrics_kv){ "rx_multiseg",
					s->glue.rx_multiseg_drop };
	out[n++] = (struct metrics_kv){ "tx_full", s->glue.tx_drop };
	out[n++] = (struct metrics_kv){ "tx_alloc_fail",
					s->glue.tx_alloc_fail };
	out[n++] = (struct metrics_kv){ "tx_too_long", s->glue.tx_too_long };
	for (size_t i = 0; i < sizeof(metrics_drop_net) /
	     sizeof(metrics_drop_net[0]); i++)
		out[n++] = (struct metrics_kv){ metrics_drop_net[i].cause,
			metrics_net(s, metrics_drop_net[i].counter) };
	return n;
}

unsigned metrics_tcp_states(const struct iolcore_snap *s,
			    struct metrics_kv *out)
{
	for (unsigned i = 0; i < METRICS_TCP_STATES; i++)
		out[i] = (struct metrics_kv){ metrics_tcp_gauges[i].state,
			metrics_net(s, metrics_tcp_gauges[i].counter) };
	return METRICS_TCP_STATES;
}

/* ---- taking a sample ---- */

static uint64_t metrics_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static unsigned metrics_ring(struct rte_ring *r)
{
	return r ? rte_ring_count(r) : 0;
}

/* metrics_dest_cb - keep the dest_max largest queues (queued desc, then
 * name as dsched_links gives them) */
static int metrics_dest_cb(void *arg, const struct dsched_dest_info *d)
{
	struct metrics_sample *s = arg;
	unsigned at = s->n_dest;

	s->dest_total++;
	while (at > 0 && s->dest[at - 1].queued < d->queued)
		at--;
	if (at >= s->dest_max)
		return 0;
	if (s->n_dest < s->dest_max)
		s->n_dest++;
	memmove(&s->dest[at + 1], &s->dest[at],
		sizeof(s->dest[0]) * (s->n_dest - 1 - at));
	struct metrics_dest *m = &s->dest[at];

	snprintf(m->name, sizeof(m->name), "%s", d->name);
	snprintf(m->last_error, sizeof(m->last_error), "%s",
		 d->last_error ? d->last_error : "");
	m->link = d->link;
	m->failures = d->failures;
	m->active = d->active;
	m->queued = d->queued;
	m->held = d->held;
	m->oldest_us = d->oldest_us;
	m->attempts = d->attempts;
	m->delivered = d->delivered;
	m->deferred = d->deferred;
	m->failed = d->failed;
	return 0;
}

int metrics_sample_take(const struct ctlcmd_env *e, struct metrics_sample *s,
			unsigned dest_max)
{
	struct mstore *m = e->m;

	memset(s, 0, sizeof(*s));
	s->unix_us = metrics_clock(CLOCK_REALTIME);
	s->mono_us = metrics_clock(CLOCK_MONOTONIC);
	s->uptime_s = e->started_us && s->unix_us > e->started_us ?
		      (s->unix_us - e->started_us) / 1000000 : 0;
	if (e->n_io && !(s->io = calloc(e->n_io, sizeof(*s->io))))
		goto oom;
	if (dest_max && !(s->dest = calloc(dest_max, sizeof(*s->dest))))
		goto oom;
	s->dest_max = dest_max;
	s->n_io = e->n_io > CFG_MAX_IO ? CFG_MAX_IO : e->n_io;
	for (unsigned k = 0; k < s->n_io; k++) {
		struct iolcore *l = &e->io[k];

		s->io[k].lcore_id = l->lcore_id;
		s->io[k].queue = l->queue;
		s->io[k].state = atomic_load(&l->state);
		s->io[k].delivery = l->delivery != NULL;
		iolcore_snapshot(l, &s->io[k].snap, METRICS_SNAP_WAIT_MS);
	}
	/* worker counters are plain u64s written by their lcore: a torn
	 * read is impossible on 64-bit, a slightly old one is fine */
	s->n_wk = e->n_wk > CFG_MAX_WORKERS ? CFG_MAX_WORKERS : e->n_wk;
	for (unsigned k = 0; k < s->n_wk; k++) {
		s->wk[k].lcore_id = e->wk[k].lcore_id;
		s->wk[k].st = e->wk[k].st;
	}
	if (m) {
		s->have_rings = true;
		for (unsigned p = 0; p < PRIO_LEVELS; p++)
			s->ring_prio[p] = metrics_ring(m->prio[p]);
		for (unsigned k = 0; k < s->n_io; k++)
			s->ring_djob[k] = metrics_ring(m->djob[k]);
		s->ring_dres = metrics_ring(m->dres);
		s->ring_new = metrics_ring(m->sched_new);
		if (m->w) {
			s->have_writer = true;
			stor_writer_stats(m->w, &s->writer);
		}
		if (m->q && stor_queue_usage(m->q, &s->storage_used,
					     &s->storage_map,
					     &s->storage_wm) == 0) {
			s->have_storage = true;
			s->storage_full = stor_queue_full(m->q);
		}
	}
	if (e->sched) {
		s->have_sched = true;
		dsched_status(e->sched, &s->sched);
		if (s->dest_max)
			dsched_links(e->sched, metrics_dest_cb, s);
		else
			s->dest_total = s->sched.destinations;
	}
	return 0;
oom:
	metrics_sample_free(s);
	return -1;
}

void metrics_sample_free(struct metrics_sample *s)
{
	free(s->io);
	free(s->dest);
	s->io = NULL;
	s->dest = NULL;
	s->n_io = s->n_dest = s->dest_max = 0;
}

/* ---- exposition ---- */

size_t metrics_label_escape(char *out, size_t cap, const char *s)
{
	size_t k = 0;

	for (; *s; s++) {
		const char *e = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" :
				*s == '\n' ? "\\n" : NULL;
		size_t n = e ? 2 : 1;

		for (size_t i = 0; i < n; i++, k++)
			if (k + 1 < cap)
				out[k] = e ? e[i] : *s;
	}
	if (cap)
		out[k < cap ? k : cap - 1] = 0;
	return k;
}

struct mctx {
	struct buf *b;
	const struct metrics_sample *s;
	const char *name;
};

/* one sample line: name{labels} value; labels "" or 'a="x",b="y"' */
static void m_u64(struct mctx *c, const char *labels, uint64_t v)
{
	buf_printf(c->b, "%s%s%s%s %llu\n", c->name, *labels ? "{" : "",
		  labels, *labels ? "}" : "", (unsigned long long)v);
}

static void m_dbl(struct mctx *c, const char *suffix, const char *labels,
		  double v)
{
	buf_printf(c->b, "%s%s%s%s%s %.6f\n", c->name, suffix,
		  *labels ? "{" : "", labels, *labels ? "}" : "", v);
}

static void lbl_lcore(char *l, size_t n, unsigned lcore)
{
	snprintf(l, n, "lcore=\"%u\"", lcore);
}

/* ---- family writers ---- */

/* io lcore counter at an offset of struct iolcore_snap */
#define IO_OFF(f) offsetof(struct iolcore_snap, f)

static void f_io_off(struct mctx *c, size_t off)
{
	char l[64];

	for (unsigned k = 0; k < c->s->n_io; k++) {
		const struct metrics_io *io = &c->s->io[k];

		lbl_lcore(l, sizeof(l), io->lcore_id);
		m_u64(c, l, *(const uint64_t *)((const char *)&io->snap + off));
	}
}

/* the same, only io lcores with delivery on */
static void f_dlv_off(struct mctx *c, size_t off)
{
	char l[64];

	for (unsigned k = 0; k < c->s->n_io; k++) {
		const struct metrics_io *io = &c->s->io[k];

		if (!io->delivery)
			continue;
		lbl_lcore(l, sizeof(l), io->lcore_id);
		m_u64(c, l, *(const uint64_t *)((const char *)&io->snap + off));
	}
}

static void f_io_running(struct mctx *c, size_t off)
{
	char l[64];

	(void)off;
	for (unsigned k = 0; k < c->s->n_io; k++) {
		lbl_lcore(l, sizeof(l), c->s->io[k].lcore_id);
		m_u64(c, l, c->s->io[k].state == IOLCORE_RUNNING);
	}
}

/* io lcore stack counter by name (off = index into net_names) */
static const char *const net_names[] = {
	"tcp.accepts", "tcp.connects", "tcp.retransmits", "tcp.rst_tx",
	"tcp.rst_rx",
};

static void f_io_net(struct mctx *c, size_t off)
{
	char l[64];

	for (unsigned k = 0; k < c->s->n_io; k++) {
		lbl_lcore(l, sizeof(l), c->s->io[k].lcore_id);
		m_u64(c, l, metrics_net(&c->s->io[k].snap, net_names[off]));
	}
}

static void f_drops(struct mctx *c, size_t off)
{
	struct metrics_kv kv[METRICS_DROP_CAUSES];
	char l[128];

	(void)off;
	for (unsigned k = 0; k < c->s->n_io; k++) {
		unsigned n = metrics_drops(&c->s->io[k].snap, kv);

		for (unsigned i = 0; i < n; i++) {
			snprintf(l, sizeof(l), "lcore=\"%u\",cause=\"%s\"",
				 c->s->io[k].lcore_id, kv[i].name);
			m_u64(c, l, kv[i].value);
		}
	}
}

static void f_tcp_states(struct mctx *c, size_t off)
{
	struct metrics_kv kv[METRICS_TCP_STATES];
	char l[128];

	(void)off;
	for (unsigned k = 0; k < c->s->n_io; k++) {
		unsigned n = metrics_tcp_states(&c->s->io[k].snap, kv);

		for (unsigned i = 0; i < n; i++) {
			snprintf(l, sizeof(l), "lcore=\"%u\",state=\"%s\"",
				 c->s->io[k].lcore_id, kv[i].name);
			m_u64(c, l, kv[i].value);
		}
	}
}

/* io lcore counters with one more label: a list of (value, offset) */
struct lbl_off {
	const char *value;
	size_t off;
};

static void io_labelled(struct mctx *c, const char *key,
			const struct lbl_off *v, unsigned n, bool dlv)
{
	char l[128];

	for (unsigned k = 0; k < c->s->n_io; k++) {
		const struct metrics_io *io = &c->s->io[k];

		if (dlv && !io->delivery)
			continue;
		for (unsigned i = 0; i < n; i++) {
			snprintf(l, sizeof(l), "lcore=\"%u\",%s=\"%s\"",
				 io->lcore_id, key, v[i].value);
			m_u64(c, l, *(const uint64_t *)((const char *)&io->snap
							+ v[i].off));
		}
	}
}

static void f_smtp_replies(struct mctx *c, size_t off)
{
	static const struct lbl_off v[] = {
		{ "2xx", IO_OFF(smtpd.replies[2]) },
		{ "3xx", IO_OFF(smtpd.replies[3]) },
		{ "4xx", IO_OFF(smtpd.replies[4]) },
		{ "5xx", IO_OFF(smtpd.replies[5]) },
	};

	(void)off;
	io_labelled(c, "class", v, 4, false);
}

static void f_smtp_refused(struct mctx *c, size_t off)
{
	static const struct lbl_off v[] = {
		{ "lcore_limit", IO_OFF(smtpd.refused_lcore_limit) },
		{ "client_conns", IO_OFF(smtpd.refused_client_conns) },
		{ "client_rate", IO_OFF(smtpd.refused_client_rate) },
	};

	(void)off;
	io_labelled(c, "cause", v, 3, false);
}

static void f_smtp_pushback(struct mctx *c, size_t off)
{
	static const struct lbl_off v[] = {
		{ "ring_full", IO_OFF(smtpd.push_ring_full) },
		{ "wait_timeout", IO_OFF(smtpd.push_wait_timeout) },
		{ "queue_full", IO_OFF(smtpd.push_queue_full) },
		{ "store_full", IO_OFF(smtpd.push_store_full) },
	};

	(void)off;
	io_labelled(c, "cause", v, 4, false);
}

static void f_smtp_tls(struct mctx *c, size_t off)
{
	static const struct lbl_off v[] = {
		{ "ok", IO_OFF(smtpd.tls_ok) },
		{ "fail", IO_OFF(smtpd.tls_fail) },
	};

	(void)off;
	io_labelled(c, "result", v, 2, false);
}

static void f_smtp_commit(struct mctx *c, size_t off)
{
	char l[64];

	(void)off;
	for (unsigned k = 0; k < c->s->n_io; k++) {
		const struct smtpd_stats *s = &c->s->io[k].snap.smtpd;

		lbl_lcore(l, sizeof(l), c->s->io[k].lcore_id);
		m_dbl(c, "_sum", l, (double)s->eod_to_250_us_sum / 1e6);
		buf_printf(c->b, "%s_count{%s} %llu\n", c->name, l,
			  (unsigned long long)s->eod_to_250_n);
	}
}

static void f_smtp_commit_max(struct mctx *c, size_t off)
{
	char l[64];

	(void)off;
	for (unsigned k = 0; k < c->s->n_io; k++) {
		lbl_lcore(l, sizeof(l), c->s->io[k].lcore_id);
		m_dbl(c, "", l, (double)c->s->io[k].snap.smtpd
		      .eod_to_250_max_us / 1e6);
	}
}

static void f_dlv_rcpt(struct mctx *c, size_t off)
{
	static const struct lbl_off v[] = {
		{ "2xx", IO_OFF(deliver.rcpt_2xx) },
		{ "4xx", IO_OFF(deliver.rcpt_4xx) },
		{ "5xx", IO_OFF(deliver.rcpt_5xx) },
	};

	(void)off;
	io_labelled(c, "class", v, 3, true);
}

/* workers */
static void f_wk_taken(struct mctx *c, size_t off)
{
	char l[96];

	(void)off;
	for (unsigned k = 0; k < c->s->n_wk; k++)
		for (unsigned p = 0; p < PRIO_LEVELS; p++) {
			snprintf(l, sizeof(l), "worker=\"%u\",priority=\"%u\"",
				 k, p);
			m_u64(c, l, c->s->wk[k].st.taken[p]);
		}
}

#define WK_OFF(f) offsetof(struct worker_stats, f)

static void f_wk_off(struct mctx *c, size_t off)
{
	char l[64];

	for (unsigned k = 0; k < c->s->n_wk; k++) {
		snprintf(l, sizeof(l), "worker=\"%u\"", k);
		m_u64(c, l, *(const uint64_t *)((const char *)&c->s->wk[k].st +
						off));
	}
}

static void f_wk_refused(struct mctx *c, size_t off)
{
	static const struct lbl_off v[] = {
		{ "full", WK_OFF(failed_full) },
		{ "store", WK_OFF(failed_store) },
		{ "loop", WK_OFF(loops) },
		{ "too_big", WK_OFF(too_big) },
		{ "bad", WK_OFF(bad) },
	};
	char l[96];

	(void)off;
	for (unsigned k = 0; k < c->s->n_wk; k++)
		for (unsigned i = 0; i < 5; i++) {
			snprintf(l, sizeof(l), "worker=\"%u\",cause=\"%s\"", k,
				 v[i].value);
			m_u64(c, l, *(const uint64_t *)((const char *)
				&c->s->wk[k].st + v[i].off));
		}
}

/* rings */
static void f_ring_prio(struct mctx *c, size_t off)
{
	char l[64];

	(void)off;
	if (!c->s->have_rings)
		return;
	for (unsigned p = 0; p < PRIO_LEVELS; p++) {
		snprintf(l, sizeof(l), "priority=\"%u\"", p);
		m_u64(c, l, c->s->ring_prio[p]);
	}
}

static void f_ring_djob(struct mctx *c, size_t off)
{
	char l[64];

	(void)off;
	if (!c->s->have_rings)
		return;
	for (unsigned k = 0; k < c->s->n_io; k++) {
		if (!c->s->io[k].delivery)
			continue;
		lbl_lcore(l, sizeof(l), c->s->io[k].lcore_id);
		m_u64(c, l, c->s->ring_djob[k]);
	}
}

static void f_ring_one(struct mctx *c, size_t off)
{
	if (c->s->have_rings)
		m_u64(c, "", off ? c->s->ring_new : c->s->ring_dres);
}

/* writer */
#define WR_OFF(f) offsetof(struct stor_writer_stats, f)

static void f_writer(struct mctx *c, size_t off)
{
	if (c->s->have_writer)
		m_u64(c, "", *(const uint64_t *)((const char *)&c->s->writer +
						 off));
}

static void f_writer_secs(struct mctx *c, size_t off)
{
	(void)off;
	if (c->s->have_writer)
		m_dbl(c, "", "", (double)c->s->writer.commit_ns / 1e9);
}

/* scheduler */
#define ST_OFF(f) offsetof(struct dsched_status, f)

static void f_sched(struct mctx *c, size_t off)
{
	if (c->s->have_sched)
		m_u64(c, "", *(const uint64_t *)((const char *)&c->s->sched +
						 off));
}

static void f_queue_prio(struct mctx *c, size_t off)
{
	char l[64];

	(void)off;
	if (!c->s->have_sched)
		return;
	for (unsigned p = 0; p < 8; p++) {
		snprintf(l, sizeof(l), "priority=\"%u\"", p);
		m_u64(c, l, c->s->sched.by_prio[p]);
	}
}

static void f_queue_state(struct mctx *c, size_t off)
{
	char l[64];

	(void)off;
	if (!c->s->have_sched)
		return;
	for (unsigned k = 0; k < DSCHED_M_UNKNOWN; k++) {
		snprintf(l, sizeof(l), "state=\"%s\"",
			 dsched_mstate_name((enum dsched_mstate)k));
		m_u64(c, l, c->s->sched.by_state[k]);
	}
}

static void f_links(struct mctx *c, size_t off)
{
	const struct dsched_status *st = &c->s->sched;
	uint64_t other = st->links_closed + st->links_down;

	(void)off;
	if (!c->s->have_sched)
		return;
	m_u64(c, "state=\"open\"", st->destinations > other ?
	      st->destinations - other : 0);
	m_u64(c, "state=\"closed\"", st->links_closed);
	m_u64(c, "state=\"down\"", st->links_down);
}

static void f_dlv_results(struct mctx *c, size_t off)
{
	(void)off;
	if (!c->s->have_sched)
		return;
	m_u64(c, "result=\"delivered\"", c->s->sched.delivered);
	m_u64(c, "result=\"deferred\"", c->s->sched.deferred);
	m_u64(c, "result=\"failed\"", c->s->sched.failed);
}

static void f_notices(struct mctx *c, size_t off)
{
	(void)off;
	if (!c->s->have_sched)
		return;
	m_u64(c, "type=\"bounce\"", c->s->sched.bounces);
	m_u64(c, "type=\"delay\"", c->s->sched.delay_notices);
	m_u64(c, "type=\"relayed\"", c->s->sched.relayed_notices);
}

static void f_rate(struct mctx *c, size_t off)
{
	(void)off;
	if (c->s->have_sched)
		m_dbl(c, "", "", c->s->sched.delivered_per_s);
}

static void f_latency(struct mctx *c, size_t off)
{
	const struct dsched_status *st = &c->s->sched;

	/* no delivery yet: no sample (0 would be a false latency) */
	if (c->s->have_sched && st->deliver_p99_us)
		m_dbl(c, "", "", (double)(off ? st->deliver_p99_us :
					  st->deliver_p50_us) / 1e6);
}

static void f_dest_total(struct mctx *c, size_t off)
{
	(void)off;
	if (c->s->have_sched)
		m_u64(c, "", c->s->dest_total);
}

/* destinations: dest="..." (escaped) */
static void lbl_dest(char *l, size_t n, const struct metrics_dest *d)
{
	char esc[1100];

	metrics_label_escape(esc, sizeof(esc), d->name);
	snprintf(l, n, "dest=\"%s\"", esc);
}

#define DS_OFF(f) offsetof(struct metrics_dest, f)

static void f_dest_u64(struct mctx *c, size_t off)
{
	char l[1200];

	for (unsigned k = 0; k < c->s->n_dest; k++) {
		lbl_dest(l, sizeof(l), &c->s->dest[k]);
		m_u64(c, l, *(const uint64_t *)((const char *)&c->s->dest[k] +
						off));
	}
}

static void f_dest_u32(struct mctx *c, size_t off)
{
	char l[1200];

	for (unsigned k = 0; k < c->s->n_dest; k++) {
		lbl_dest(l, sizeof(l), &c->s->dest[k]);
		m_u64(c, l, *(const uint32_t *)((const char *)&c->s->dest[k] +
						off));
	}
}

static void f_dest_age(struct mctx *c, size_t off)
{
	char l[1200];

	(void)off;
	for (unsigned k = 0; k < c->s->n_dest; k++) {
		const struct metrics_dest *d = &c->s->dest[k];

		lbl_dest(l, sizeof(l), d);
		m_dbl(c, "", l, d->oldest_us && c->s->unix_us > d->oldest_us ?
		      (double)(c->s->unix_us - d->oldest_us) / 1e6 : 0.0);
	}
}

static void f_dest_link(struct mctx *c, size_t off)
{
	static const struct {
		const char *name;
		enum stor_link link;
	} st[] = { { "open", STOR_LINK_OPEN }, { "closed", STOR_LINK_CLOSED },
		   { "down", STOR_LINK_HELD } };
	char l[1200];

	(void)off;
	for (unsigned k = 0; k < c->s->n_dest; k++)
		for (unsigned i = 0; i < 3; i++) {
			size_t n;

			lbl_dest(l, sizeof(l), &c->s->dest[k]);
			n = strlen(l);
			snprintf(l + n, sizeof(l) - n, ",state=\"%s\"",
				 st[i].name);
			m_u64(c, l, c->s->dest[k].link == st[i].link);
		}
}

static void f_dest_results(struct mctx *c, size_t off)
{
	static const struct lbl_off v[] = {
		{ "delivered", DS_OFF(delivered) },
		{ "deferred", DS_OFF(deferred) },
		{ "failed", DS_OFF(failed) },
	};
	char l[1200];

	(void)off;
	for (unsigned k = 0; k < c->s->n_dest; k++)
		for (unsigned i = 0; i < 3; i++) {
			size_t n;

			lbl_dest(l, sizeof(l), &c->s->dest[k]);
			n = strlen(l);
			snprintf(l + n, sizeof(l) - n, ",result=\"%s\"",
				 v[i].value);
			m_u64(c, l, *(const uint64_t *)((const char *)
				&c->s->dest[k] + v[i].off));
		}
}

/* storage and process */
static void f_storage(struct mctx *c, size_t off)
{
	const struct metrics_sample *s = c->s;

	if (!s->have_storage)
		return;
	m_u64(c, "", off == 0 ? s->storage_used : off == 1 ? s->storage_map :
	      off == 2 ? s->storage_wm : (uint64_t)s->storage_full);
}

static void f_uptime(struct mctx *c, size_t off)
{
	(void)off;
	m_u64(c, "", c->s->uptime_s);
}

/* ---- the family table (docs/operations.md, "Metrics") ---- */

static const struct mfam {
	const char *name, *type, *help;
	void (*fn)(struct mctx *c, size_t off);
	size_t off;
} metrics_fams[] = {
	{ "sluice_uptime_seconds", "gauge",
	  "Seconds since sluiced started", f_uptime, 0 },
	/* io lcores */
	{ "sluice_io_lcore_running", "gauge",
	  "1 while the io lcore runs its reactor", f_io_running, 0 },
	{ "sluice_rx_packets_total", "counter",
	  "Frames received from the NIC queue", f_io_off,
	  IO_OFF(glue.rx_frames) },
	{ "sluice_tx_packets_total", "counter",
	  "Frames handed to the NIC queue", f_io_off, IO_OFF(glue.tx_frames) },
	{ "sluice_packet_drops_total", "counter",
	  "Frames dropped, by cause (glue and stack)", f_drops, 0 },
	{ "sluice_reactor_rounds_total", "counter",
	  "Reactor rounds of the io lcore", f_io_off, IO_OFF(reactor.rounds) },
	{ "sluice_reactor_busy_rounds_total", "counter",
	  "Reactor rounds in which a poller did work", f_io_off,
	  IO_OFF(reactor.busy_rounds) },
	{ "sluice_tcp_connections", "gauge",
	  "TCP connections now, by state", f_tcp_states, 0 },
	{ "sluice_tcp_accepts_total", "counter",
	  "TCP connections accepted", f_io_net, 0 },
	{ "sluice_tcp_connects_total", "counter",
	  "TCP connections opened (outbound)", f_io_net, 1 },
	{ "sluice_tcp_retransmits_total", "counter",
	  "TCP segments retransmitted", f_io_net, 2 },
	{ "sluice_tcp_resets_sent_total", "counter",
	  "TCP RST segments sent", f_io_net, 3 },
	{ "sluice_tcp_resets_received_total", "counter",
	  "TCP RST segments received", f_io_net, 4 },
	{ "sluice_smtp_sessions_total", "counter",
	  "SMTP sessions started", f_io_off, IO_OFF(smtpd.sessions) },
	{ "sluice_smtp_sessions_active", "gauge",
	  "SMTP sessions open now", f_io_off, IO_OFF(smtpd.active) },
	{ "sluice_smtp_sessions_waiting", "gauge",
	  "SMTP sessions waiting for room in a priority ring now", f_io_off,
	  IO_OFF(smtpd.waiting) },
	{ "sluice_smtp_connections_refused_total", "counter",
	  "SMTP connections refused by the connection policy, by cause",
	  f_smtp_refused, 0 },
	{ "sluice_smtp_replies_total", "counter",
	  "SMTP replies sent, by class", f_smtp_replies, 0 },
	{ "sluice_smtp_messages_accepted_total", "counter",
	  "Messages answered 250 after the queue commit", f_io_off,
	  IO_OFF(smtpd.queued) },
	{ "sluice_smtp_accepted_bytes_total", "counter",
	  "Bytes of messages answered 250", f_io_off,
	  IO_OFF(smtpd.queued_bytes) },
	{ "sluice_smtp_pushback_total", "counter",
	  "Messages refused with 4xx by backpressure, by cause",
	  f_smtp_pushback, 0 },
	{ "sluice_smtp_tls_handshakes_total", "counter",
	  "STARTTLS handshakes, by result", f_smtp_tls, 0 },
	{ "sluice_smtp_commit_seconds", "summary",
	  "End of data to the 250 reply (queue commit), sum and count",
	  f_smtp_commit, 0 },
	{ "sluice_smtp_commit_max_seconds", "gauge",
	  "Longest end of data to 250 since start", f_smtp_commit_max, 0 },
	/* delivery on the io lcores */
	{ "sluice_deliver_recipients_total", "counter",
	  "Recipient replies from next hops, by class", f_dlv_rcpt, 0 },
	{ "sluice_deliver_messages_total", "counter",
	  "Messages sent to next hops (DATA done)", f_dlv_off,
	  IO_OFF(deliver.msgs) },
	{ "sluice_deliver_bytes_total", "counter",
	  "Message bytes sent to next hops", f_dlv_off,
	  IO_OFF(deliver.body_bytes) },
	{ "sluice_deliver_connections_total", "counter",
	  "Outbound connections opened", f_dlv_off, IO_OFF(deliver.connects) },
	{ "sluice_deliver_connect_failures_total", "counter",
	  "Outbound connections that failed", f_dlv_off,
	  IO_OFF(deliver.connect_fail) },
	{ "sluice_deliver_connections_reused_total", "counter",
	  "Jobs sent over an already open connection", f_dlv_off,
	  IO_OFF(deliver.reused) },
	{ "sluice_deliver_connections_open", "gauge",
	  "Outbound connections open now", f_dlv_off, IO_OFF(deliver.conns) },
	{ "sluice_deliver_jobs_active", "gauge",
	  "Delivery jobs held by the io lcore now", f_dlv_off,
	  IO_OFF(deliver.active) },
	{ "sluice_deliver_result_ring_full_total", "counter",
	  "Rounds a full result ring kept finished jobs back", f_dlv_off,
	  IO_OFF(dres_full) },
	/* workers */
	{ "sluice_worker_taken_total", "counter",
	  "Messages taken from the priority rings", f_wk_taken, 0 },
	{ "sluice_worker_committed_total", "counter",
	  "Messages committed to the queue", f_wk_off, WK_OFF(committed) },
	{ "sluice_worker_refused_total", "counter",
	  "Messages a worker refused, by cause", f_wk_refused, 0 },
	{ "sluice_worker_writer_busy_total", "counter",
	  "Times a worker found the storage writer full", f_wk_off,
	  WK_OFF(writer_busy) },
	/* rings */
	{ "sluice_priority_ring_depth", "gauge",
	  "Messages in the priority ring now", f_ring_prio, 0 },
	{ "sluice_delivery_job_ring_depth", "gauge",
	  "Delivery jobs waiting for the io lcore now", f_ring_djob, 0 },
	{ "sluice_delivery_result_ring_depth", "gauge",
	  "Delivery results waiting for the scheduler now", f_ring_one, 0 },
	{ "sluice_scheduler_new_ring_depth", "gauge",
	  "Committed message ids waiting for the scheduler now", f_ring_one,
	  1 },
	/* storage writer */
	{ "sluice_writer_commits_total", "counter",
	  "Queue transactions committed (group commits)", f_writer,
	  WR_OFF(batches) },
	{ "sluice_writer_committed_total", "counter",
	  "Submissions committed", f_writer, WR_OFF(committed) },
	{ "sluice_writer_full_total", "counter",
	  "Submissions refused because the queue was full", f_writer,
	  WR_OFF(full) },
	{ "sluice_writer_commit_seconds_total", "counter",
	  "Time spent in LMDB commits", f_writer_secs, 0 },
	/* queue and scheduler */
	{ "sluice_queue_messages", "gauge",
	  "Messages in the queue", f_sched, ST_OFF(messages) },
	{ "sluice_queue_messages_by_priority", "gauge",
	  "Messages in the queue, by priority", f_queue_prio, 0 },
	{ "sluice_queue_messages_by_state", "gauge",
	  "Messages in the queue, by scheduler state", f_queue_state, 0 },
	{ "sluice_queue_pending_commits", "gauge",
	  "Scheduler changes submitted and not yet committed", f_sched,
	  ST_OFF(pending_commits) },
	{ "sluice_delivery_jobs_active", "gauge",
	  "Delivery jobs out to io lcores now", f_sched, ST_OFF(jobs_active) },
	{ "sluice_destinations", "gauge",
	  "Destinations the scheduler knows", f_dest_total, 0 },
	{ "sluice_links", "gauge",
	  "Destinations by link state", f_links, 0 },
	{ "sluice_delivery_recipients_total", "counter",
	  "Recipient delivery results, by result", f_dlv_results, 0 },
	{ "sluice_delivery_attempts_total", "counter",
	  "Delivery attempts (jobs)", f_sched, ST_OFF(attempts) },
	{ "sluice_delivery_connection_failures_total", "counter",
	  "Delivery attempts that found no next hop answering", f_sched,
	  ST_OFF(conn_failures) },
	{ "sluice_delivery_expired_total", "counter",
	  "Messages bounced after the maximum lifetime", f_sched,
	  ST_OFF(expired) },
	{ "sluice_notices_total", "counter",
	  "Delivery status notifications sent, by type", f_notices, 0 },
	{ "sluice_delivered_per_second", "gauge",
	  "Recipients delivered per second over the last 10 s", f_rate, 0 },
	{ "sluice_delivery_latency_p50_seconds", "gauge",
	  "Arrival to delivered, median of the last 4096", f_latency, 0 },
	{ "sluice_delivery_latency_p99_seconds", "gauge",
	  "Arrival to delivered, 99th percentile of the last 4096", f_latency,
	  1 },
	/* destinations, the METRICS_DEST_MAX largest queues */
	{ "sluice_destination_queued_messages", "gauge",
	  "Messages with a pending recipient for the destination", f_dest_u64,
	  DS_OFF(queued) },
	{ "sluice_destination_held_messages", "gauge",
	  "Messages waiting on the destination's closed or down link",
	  f_dest_u64, DS_OFF(held) },
	{ "sluice_destination_active_jobs", "gauge",
	  "Delivery jobs out for the destination", f_dest_u32,
	  DS_OFF(active) },
	{ "sluice_destination_oldest_age_seconds", "gauge",
	  "Age of the oldest message for the destination", f_dest_age, 0 },
	{ "sluice_destination_consecutive_failures", "gauge",
	  "Failed attempts in a row for the destination", f_dest_u32,
	  DS_OFF(failures) },
	{ "sluice_destination_link", "gauge",
	  "1 for the destination's link state", f_dest_link, 0 },
	{ "sluice_destination_attempts_total", "counter",
	  "Delivery attempts for the destination", f_dest_u64,
	  DS_OFF(attempts) },
	{ "sluice_destination_recipients_total", "counter",
	  "Recipient results for the destination, by result", f_dest_results,
	  0 },
	/* storage */
	{ "sluice_storage_used_bytes", "gauge",
	  "Queue database bytes in use", f_storage, 0 },
	{ "sluice_storage_map_bytes", "gauge",
	  "Queue database map size", f_storage, 1 },
	{ "sluice_storage_watermark_bytes", "gauge",
	  "Usage above which new mail is refused (452)", f_storage, 2 },
	{ "sluice_storage_full", "gauge",
	  "1 while the queue refuses new mail", f_storage, 3 },
};
#define N_FAMS (sizeof(metrics_fams) / sizeof(metrics_fams[0]))

const char *const *metrics_families(void)
{
	static const char *names[N_FAMS + 1];

	if (!names[0])
		for (size_t i = 0; i < N_FAMS; i++)
			names[i] = metrics_fams[i].name;
	return names;
}

int metrics_render(const struct metrics_sample *s, char **out,
		   size_t *outlen)
{
	struct buf b = { 0 };
	struct mctx c = { .b = &b, .s = s };

	for (size_t i = 0; i < N_FAMS; i++) {
		const struct mfam *f = &metrics_fams[i];

		buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help,
			  f->name, f->type);
		c.name = f->name;
		f->fn(&c, f->off);
	}
	if (b.fail || !b.p) {
		free(b.p);
		return -1;
	}
	*out = b.p;
	*outlen = b.n;
	return 0;
}

/* ---- the HTTP endpoint ---- */

int metrics_parse_listen(const char *s, uint32_t *ip, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	char host[32];
	struct in_addr a;
	unsigned long p;
	char *end;

	if (!colon || (size_t)(colon - s) >= sizeof(host) || !colon[1])
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	if (inet_pton(AF_INET, host, &a) != 1)
		return -1;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (*end || errno || p < 1 || p > 65535 || colon[1] < '0' ||
	    colon[1] > '9')
		return -1;
	*ip = ntohl(a.s_addr);
	*port = (uint16_t)p;
	return 0;
}

struct metrics {
	struct reqsrv *srv;
	const struct ctlcmd_env *env;
	uint64_t requests;
};

/* the server's limits: every free slot may accept at each poll */
static const struct reqsrv_cfg metrics_cfg = { .slots = METRICS_CLIENTS,
	.burst = METRICS_CLIENTS, .timeout_ms = METRICS_TIMEOUT_MS,
	.head_max = METRICS_REQ_MAX };

/* metrics_reply - status line, headers and body into *out (NULL when
 * out of memory: the connection is closed without an answer) */
static void metrics_reply(char **out, size_t *outlen, const char *status,
			  const char *ctype, const char *body, size_t n)
{
	struct buf b = { 0 };

	buf_printf(&b, "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: "
		   "%zu\r\nConnection: close\r\n%s\r\n", status, ctype, n,
		   status[0] == '4' && status[2] == '5' ? "Allow: GET\r\n" : "");
	buf_add(&b, body, n);
	if (b.fail) {
		free(b.p);
		*out = NULL;
		*outlen = 0;
		return;
	}
	*out = b.p;
	*outlen = b.n;
}

static void metrics_text(char **out, size_t *outlen, const char *status,
			 const char *msg)
{
	metrics_reply(out, outlen, status, "text/plain; charset=utf-8", msg,
		      strlen(msg));
}

/* metrics_frame - the request head ends at an empty line; 0 before */
static size_t metrics_frame(void *user, const char *in, size_t n)
{
	(void)user;
	return strstr(in, "\r\n\r\n") || strstr(in, "\n\n") ? n : 0;
}

/* metrics_answer - the request head is in[0..n); a connection closed
 * before a whole head gets no answer */
static void metrics_answer(void *user, char *in, size_t n,
			   enum reqsrv_end end, char **out, size_t *outlen)
{
	struct metrics *m = user;
	char *sp1, *sp2, *eol, *q;
	struct metrics_sample s;
	char *body;
	size_t len;

	(void)n;
	if (end == REQSRV_FULL) {
		metrics_text(out, outlen, "400 Bad Request",
			     "request too large\n");
		return;
	}
	if (end != REQSRV_WHOLE)
		return;
	eol = strpbrk(in, "\r\n");
	if (eol)
		*eol = 0;
	sp1 = strchr(in, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		metrics_text(out, outlen, "400 Bad Request", "bad request\n");
		return;
	}
	*sp1 = *sp2 = 0;
	if (strcmp(in, "GET") != 0) {
		metrics_text(out, outlen, "405 Method Not Allowed",
			     "only GET\n");
		return;
	}
	if ((q = strchr(sp1 + 1, '?')))
		*q = 0;
	if (strcmp(sp1 + 1, "/metrics") != 0) {
		metrics_text(out, outlen, "404 Not Found",
			     "not found; try /metrics\n");
		return;
	}
	m->requests++;
	if (metrics_sample_take(m->env, &s, METRICS_DEST_MAX) < 0 ||
	    metrics_render(&s, &body, &len) < 0) {
		metrics_sample_free(&s);
		metrics_text(out, outlen, "500 Internal Server Error",
			     "out of memory\n");
		return;
	}
	metrics_sample_free(&s);
	metrics_reply(out, outlen, "200 OK",
		      "text/plain; version=0.0.4; charset=utf-8", body, len);
	free(body);
}

static const struct reqsrv_ops metrics_ops = {
	.frame = metrics_frame,
	.answer = metrics_answer,
};

int metrics_open(const char *addr, const struct ctlcmd_env *env,
		 struct metrics **out, char *err, size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct metrics *m;
	uint32_t ip;
	uint16_t port;
	int one = 1, lfd;

	*out = NULL;
	if (metrics_parse_listen(addr, &ip, &port) < 0) {
		snprintf(err, errlen, "metrics: \"%s\" is not IPv4:PORT", addr);
		return -1;
	}
	sa.sin_addr.s_addr = htonl(ip);
	sa.sin_port = htons(port);
	if (!(m = calloc(1, sizeof(*m)))) {
		snprintf(err, errlen, "metrics: out of memory");
		return -1;
	}
	m->env = env;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one,
		       sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 32) < 0) {
		snprintf(err, errlen, "metrics %s: %s", addr, strerror(errno));
		if (lfd >= 0)
			close(lfd);
		free(m);
		return -1;
	}
	if (!(m->srv = reqsrv_open(lfd, &metrics_cfg, &metrics_ops, m))) {
		snprintf(err, errlen, "metrics: out of memory");
		free(m);
		return -1;
	}
	*out = m;
	return 0;
}

int metrics_poll(void *arg, uint64_t now_us)
{
	struct metrics *m = arg;

	return reqsrv_poll(m->srv, now_us);
}

void metrics_close(struct metrics *m)
{
	if (!m)
		return;
	reqsrv_close(m->srv);
	free(m);
}
