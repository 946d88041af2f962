/*
 * ctlcmd_stats.c - the stats command of the control socket (docs/cli.md):
 * everything an operator looks at when the relay misbehaves, in one
 * answer, from one sample (metrics.h, the same one GET /metrics renders).
 *
 *   per io lcore   packets, drops by cause, TCP connections by state,
 *                  SMTP sessions, replies by class, refusals and
 *                  pushback by cause, commit latency, delivery counters
 *                  and its job ring
 *   workers        taken per priority ring, committed, refused by cause
 *   rings          priority ring depths, delivery rings
 *   queue          messages by priority and by state, delivery results,
 *                  rate and latency (p50/p99)
 *   destinations   the largest queues: link state, queued, held, oldest
 *                  message age, attempts, failures, last error
 *
 * "sampled_us" (monotonic) lets a client (sluicectl top) turn two answers
 * into rates; "totals" sums the io lcores for it.
 *
 * Threads: the control thread only.
 */
#include "ctlcmd_int.h"

#include "metrics.h"

#define STATS_DESTS 10          /* destinations shown by default */
#define STATS_DESTS_MAX 1000

/* stats_dur - "850 us" etc. or "-" for 0 */
static const char *stats_dur(uint64_t us, char *out, size_t cap)
{
	if (!us) {
		snprintf(out, cap, "-");
		return out;
	}
	return fmt_us(us, out, cap);
}

static void stats_lcore_json(struct buf *d, const struct metrics_sample *s,
			     unsigned k)
{
	const struct metrics_io *io = &s->io[k];
	const struct iolcore_snap *n = &io->snap;
	const struct smtpd_stats *t = &n->smtpd;
	const struct deliver_stats *v = &n->deliver;
	struct metrics_kv kv[METRICS_DROP_CAUSES];
	unsigned nk;

	jw_obj(d, NULL);
	jw_u64(d, "lcore", io->lcore_id);
	jw_u64(d, "queue", io->queue);
	jw_cstr(d, "state", io_state_name(io->state));
	jw_u64(d, "rounds", n->reactor.rounds);
	jw_u64(d, "busy_rounds", n->reactor.busy_rounds);
	jw_obj(d, "packets");
	jw_u64(d, "rx", n->glue.rx_frames);
	jw_u64(d, "tx", n->glue.tx_frames);
	jw_end_obj(d);
	jw_obj(d, "drops");
	nk = metrics_drops(n, kv);
	for (unsigned i = 0; i < nk; i++)
		jw_u64(d, kv[i].name, kv[i].value);
	jw_end_obj(d);
	jw_obj(d, "tcp");
	jw_obj(d, "connections");
	nk = metrics_tcp_states(n, kv);
	for (unsigned i = 0; i < nk; i++)
		jw_u64(d, kv[i].name, kv[i].value);
	jw_end_obj(d);
	jw_u64(d, "accepts", metrics_net(n, "tcp.accepts"));
	jw_u64(d, "connects", metrics_net(n, "tcp.connects"));
	jw_u64(d, "retransmits", metrics_net(n, "tcp.retransmits"));
	jw_u64(d, "resets_sent", metrics_net(n, "tcp.rst_tx"));
	jw_u64(d, "resets_received", metrics_net(n, "tcp.rst_rx"));
	jw_end_obj(d);
	jw_obj(d, "smtp");
	jw_u64(d, "sessions", t->sessions);
	jw_u64(d, "active", t->active);
	jw_u64(d, "waiting", t->waiting);
	jw_u64(d, "closed", t->closed);
	jw_u64(d, "accepted", t->queued);
	jw_u64(d, "accepted_bytes", t->queued_bytes);
	jw_u64(d, "data_refused", t->data_refused);
	jw_obj(d, "replies");
	jw_u64(d, "2xx", t->replies[2]);
	jw_u64(d, "3xx", t->replies[3]);
	jw_u64(d, "4xx", t->replies[4]);
	jw_u64(d, "5xx", t->replies[5]);
	jw_end_obj(d);
	jw_obj(d, "refused");
	jw_u64(d, "lcore_limit", t->refused_lcore_limit);
	jw_u64(d, "client_conns", t->refused_client_conns);
	jw_u64(d, "client_rate", t->refused_client_rate);
	jw_end_obj(d);
	jw_obj(d, "pushback");
	jw_u64(d, "ring_full", t->push_ring_full);
	jw_u64(d, "wait_timeout", t->push_wait_timeout);
	jw_u64(d, "queue_full", t->push_queue_full);
	jw_u64(d, "store_full", t->push_store_full);
	jw_end_obj(d);
	jw_u64(d, "tls_ok", t->tls_ok);
	jw_u64(d, "tls_fail", t->tls_fail);
	jw_u64(d, "commit_avg_us", t->eod_to_250_n ?
	       t->eod_to_250_us_sum / t->eod_to_250_n : 0);
	jw_u64(d, "commit_max_us", t->eod_to_250_max_us);
	jw_end_obj(d);
	if (!io->delivery) {
		jw_null(d, "delivery");
	} else {
		jw_obj(d, "delivery");
#define DF(f) jw_u64(d, #f, v->f)
		DF(jobs_in); DF(jobs_ok); DF(jobs_conn_fail); DF(jobs_msg_fail);
		DF(rcpt_2xx); DF(rcpt_4xx); DF(rcpt_5xx); DF(connects);
		DF(connect_fail); DF(reused); DF(msgs); DF(body_bytes);
		DF(active); DF(conns);
#undef DF
		jw_u64(d, "job_ring", s->have_rings ? s->ring_djob[k] : 0);
		jw_end_obj(d);
	}
	jw_end_obj(d);
}

static void stats_lcores(struct ctx *x, const struct metrics_sample *s)
{
	struct buf *d = &x->data, *t = &x->text;
	uint64_t rx = 0, tx = 0, drops = 0, acc = 0, act = 0, push = 0,
		 r4 = 0, r5 = 0;
	struct metrics_kv kv[METRICS_DROP_CAUSES];

	jw_arr(d, "lcores");
	buf_printf(t, "%-5s %-7s %10s %10s %6s %5s %5s %4s %4s %4s %6s %5s "
		   "%4s %9s %7s %5s %5s %5s\n", "LCORE", "STATE", "RX PKTS",
		   "TX PKTS", "DROPS", "BUSY%", "EST", "SYN", "CLS", "TW",
		   "SESS", "OPEN", "WAIT", "ACCEPTED", "2XX", "4XX", "5XX",
		   "PUSH");
	for (unsigned k = 0; k < s->n_io; k++) {
		const struct iolcore_snap *n = &s->io[k].snap;
		const struct smtpd_stats *m = &n->smtpd;
		const struct reactor_stats *r = &n->reactor;
		uint64_t dr = 0, pb;
		unsigned nk = metrics_drops(n, kv);

		stats_lcore_json(d, s, k);
		for (unsigned i = 0; i < nk; i++)
			dr += kv[i].value;
		pb = m->push_ring_full + m->push_wait_timeout +
		     m->push_queue_full + m->push_store_full;
		buf_printf(t, "%-5u %-7s %10llu %10llu %6llu %5.1f %5llu %4llu "
			   "%4llu %4llu %6llu %5llu %4llu %9llu %7llu %5llu "
			   "%5llu %5llu\n", s->io[k].lcore_id,
			   io_state_name(s->io[k].state),
			   (unsigned long long)n->glue.rx_frames,
			   (unsigned long long)n->glue.tx_frames,
			   (unsigned long long)dr,
			   r->rounds ? 100.0 * (double)r->busy_rounds /
			   (double)r->rounds : 0.0,
			   (unsigned long long)metrics_net(n,
				"tcp.conns.established"),
			   (unsigned long long)(metrics_net(n,
				"tcp.conns.syn_recv") + metrics_net(n,
				"tcp.conns.syn_sent")),
			   (unsigned long long)metrics_net(n,
				"tcp.conns.closing"),
			   (unsigned long long)metrics_net(n,
				"tcp.timewait.used"),
			   (unsigned long long)m->sessions,
			   (unsigned long long)m->active,
			   (unsigned long long)m->waiting,
			   (unsigned long long)m->queued,
			   (unsigned long long)m->replies[2],
			   (unsigned long long)m->replies[4],
			   (unsigned long long)m->replies[5],
			   (unsigned long long)pb);
		rx += n->glue.rx_frames;
		tx += n->glue.tx_frames;
		drops += dr;
		acc += m->queued;
		act += m->active;
		push += pb;
		r4 += m->replies[4];
		r5 += m->replies[5];
	}
	jw_end_arr(d);
	for (unsigned k = 0; k < s->n_io; k++) {
		const struct iolcore_snap *n = &s->io[k].snap;
		const struct smtpd_stats *m = &n->smtpd;
		unsigned nk = metrics_drops(n, kv);
		bool any = false;
		char a[32], b[32];

		buf_printf(t, "  lcore %u: commit avg %s max %s; pushback "
			   "ring_full %llu wait_timeout %llu queue_full %llu "
			   "store_full %llu; refused lcore_limit %llu "
			   "client_conns %llu client_rate %llu\n",
			   s->io[k].lcore_id,
			   stats_dur(m->eod_to_250_n ? m->eod_to_250_us_sum /
				     m->eod_to_250_n : 0, a, sizeof(a)),
			   stats_dur(m->eod_to_250_max_us, b, sizeof(b)),
			   (unsigned long long)m->push_ring_full,
			   (unsigned long long)m->push_wait_timeout,
			   (unsigned long long)m->push_queue_full,
			   (unsigned long long)m->push_store_full,
			   (unsigned long long)m->refused_lcore_limit,
			   (unsigned long long)m->refused_client_conns,
			   (unsigned long long)m->refused_client_rate);
		for (unsigned i = 0; i < nk; i++) {
			if (!kv[i].value)
				continue;
			buf_printf(t, "%s %s %llu", any ? "," : "    drops:",
				   kv[i].name,
				   (unsigned long long)kv[i].value);
			any = true;
		}
		if (any)
			buf_add(t, "\n", 1);
		if (s->io[k].delivery) {
			const struct deliver_stats *v = &n->deliver;

			buf_printf(t, "    delivery: jobs %llu (ok %llu, "
				   "connection failed %llu), rcpt 2xx %llu "
				   "4xx %llu 5xx %llu, connections open %llu, "
				   "reused %llu, job ring %u\n",
				   (unsigned long long)v->jobs_in,
				   (unsigned long long)v->jobs_ok,
				   (unsigned long long)v->jobs_conn_fail,
				   (unsigned long long)v->rcpt_2xx,
				   (unsigned long long)v->rcpt_4xx,
				   (unsigned long long)v->rcpt_5xx,
				   (unsigned long long)v->conns,
				   (unsigned long long)v->reused,
				   s->have_rings ? s->ring_djob[k] : 0);
		}
	}
	jw_obj(d, "totals");
	jw_u64(d, "rx_packets", rx);
	jw_u64(d, "tx_packets", tx);
	jw_u64(d, "drops", drops);
	jw_u64(d, "accepted", acc);
	jw_u64(d, "sessions_active", act);
	jw_u64(d, "pushback", push);
	jw_u64(d, "replies_4xx", r4);
	jw_u64(d, "replies_5xx", r5);
	jw_end_obj(d);
}

static void stats_workers(struct ctx *x, const struct metrics_sample *s)
{
	struct buf *d = &x->data, *t = &x->text;

	jw_arr(d, "workers");
	for (unsigned k = 0; k < s->n_wk; k++) {
		const struct worker_stats *w = &s->wk[k].st;

		jw_obj(d, NULL);
		jw_u64(d, "lcore", s->wk[k].lcore_id);
		jw_arr(d, "taken");
		for (unsigned p = 0; p < PRIO_LEVELS; p++)
			jw_u64(d, NULL, w->taken[p]);
		jw_end_arr(d);
		jw_u64(d, "submitted", w->submitted);
		jw_u64(d, "committed", w->committed);
		jw_obj(d, "refused");
		jw_u64(d, "full", w->failed_full);
		jw_u64(d, "store", w->failed_store);
		jw_u64(d, "loop", w->loops);
		jw_u64(d, "too_big", w->too_big);
		jw_u64(d, "bad", w->bad);
		jw_end_obj(d);
		jw_u64(d, "writer_busy", w->writer_busy);
		jw_end_obj(d);
		buf_printf(t, "worker %u (lcore %u): taken", k,
			   s->wk[k].lcore_id);
		for (unsigned p = 0; p < PRIO_LEVELS; p++)
			buf_printf(t, "%c%llu", p ? '/' : ' ',
				   (unsigned long long)w->taken[p]);
		buf_printf(t, ", committed %llu, refused full %llu store %llu "
			   "loop %llu too_big %llu, writer busy %llu\n",
			   (unsigned long long)w->committed,
			   (unsigned long long)w->failed_full,
			   (unsigned long long)w->failed_store,
			   (unsigned long long)w->loops,
			   (unsigned long long)w->too_big,
			   (unsigned long long)w->writer_busy);
	}
	jw_end_arr(d);
}

static void stats_rings(struct ctx *x, const struct metrics_sample *s)
{
	struct buf *d = &x->data, *t = &x->text;

	if (!s->have_rings) {
		jw_null(d, "rings");
		jw_null(d, "writer");
		return;
	}
	jw_obj(d, "rings");
	jw_arr(d, "prio");
	buf_add(t, "rings: prio", 11);
	for (unsigned p = 0; p < PRIO_LEVELS; p++) {
		jw_u64(d, NULL, s->ring_prio[p]);
		buf_printf(t, "%c%u", p ? '/' : ' ', s->ring_prio[p]);
	}
	jw_end_arr(d);
	jw_arr(d, "djob");
	buf_add(t, ", djob", 6);
	for (unsigned k = 0; k < s->n_io; k++) {
		jw_u64(d, NULL, s->ring_djob[k]);
		buf_printf(t, "%c%u", k ? '/' : ' ', s->ring_djob[k]);
	}
	jw_end_arr(d);
	jw_u64(d, "dres", s->ring_dres);
	jw_u64(d, "sched_new", s->ring_new);
	jw_end_obj(d);
	buf_printf(t, ", dres %u, new %u\n", s->ring_dres, s->ring_new);
	if (!s->have_writer) {
		jw_null(d, "writer");
		return;
	}
	jw_obj(d, "writer");
	jw_u64(d, "commits", s->writer.batches);
	jw_u64(d, "committed", s->writer.committed);
	jw_u64(d, "full", s->writer.full);
	jw_u64(d, "max_batch", s->writer.max_batch);
	jw_u64(d, "commit_us", s->writer.commit_ns / 1000);
	jw_end_obj(d);
	buf_printf(t, "writer: %llu commits, %llu committed (largest batch "
		   "%llu), refused full %llu\n",
		   (unsigned long long)s->writer.batches,
		   (unsigned long long)s->writer.committed,
		   (unsigned long long)s->writer.max_batch,
		   (unsigned long long)s->writer.full);
}

static void stats_queue(struct ctx *x, const struct metrics_sample *s)
{
	struct buf *d = &x->data, *t = &x->text;
	const struct dsched_status *q = &s->sched;
	char a[32], b[32];

	if (!s->have_sched) {
		jw_null(d, "queue");
		jw_null(d, "delivery");
		buf_add(t, "scheduler: not running\n", 23);
		return;
	}
	jw_obj(d, "queue");
	jw_u64(d, "messages", q->messages);
	jw_arr(d, "by_priority");
	for (unsigned p = 0; p < 8; p++)
		jw_u64(d, NULL, q->by_prio[p]);
	jw_end_arr(d);
	jw_obj(d, "by_state");
	for (unsigned k = 0; k < DSCHED_M_UNKNOWN; k++)
		jw_u64(d, dsched_mstate_name((enum dsched_mstate)k),
		       q->by_state[k]);
	jw_end_obj(d);
	jw_u64(d, "jobs_active", q->jobs_active);
	jw_u64(d, "pending_commits", q->pending_commits);
	jw_end_obj(d);
	jw_obj(d, "delivery");
#define SF(f) jw_u64(d, #f, q->f)
	SF(delivered); SF(deferred); SF(failed); SF(expired); SF(bounces);
	SF(delay_notices); SF(relayed_notices); SF(attempts);
	SF(conn_failures);
#undef SF
	jw_dbl(d, "delivered_per_s", q->delivered_per_s);
	jw_u64(d, "deliver_p50_us", q->deliver_p50_us);
	jw_u64(d, "deliver_p99_us", q->deliver_p99_us);
	jw_end_obj(d);

	buf_printf(t, "queue: %llu messages (", (unsigned long long)q->messages);
	for (unsigned k = 0; k < DSCHED_M_UNKNOWN; k++)
		buf_printf(t, "%s%s %llu", k ? ", " : "",
			   dsched_mstate_name((enum dsched_mstate)k),
			   (unsigned long long)q->by_state[k]);
	buf_add(t, "), by priority", 14);
	for (unsigned p = 0; p < 8; p++)
		buf_printf(t, " %u:%llu", p, (unsigned long long)q->by_prio[p]);
	buf_printf(t, "\ndelivery: delivered %llu, deferred %llu, bounced "
		   "%llu, expired %llu, attempts %llu; %.1f delivered/s; "
		   "arrival to delivered p50 %s p99 %s\n",
		   (unsigned long long)q->delivered,
		   (unsigned long long)q->deferred,
		   (unsigned long long)q->failed,
		   (unsigned long long)q->expired,
		   (unsigned long long)q->attempts, q->delivered_per_s,
		   stats_dur(q->deliver_p99_us ? q->deliver_p50_us : 0, a,
			     sizeof(a)),
		   stats_dur(q->deliver_p99_us, b, sizeof(b)));
}

/* stats_age - "42s", "3m12s", "5h02m", "2d03h" */
static const char *stats_age(uint64_t s, char *out, size_t cap)
{
	if (s < 60)
		snprintf(out, cap, "%llus", (unsigned long long)s);
	else if (s < 3600)
		snprintf(out, cap, "%llum%02llus", (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60));
	else if (s < 86400)
		snprintf(out, cap, "%lluh%02llum",
			 (unsigned long long)(s / 3600),
			 (unsigned long long)(s / 60 % 60));
	else
		snprintf(out, cap, "%llud%02lluh",
			 (unsigned long long)(s / 86400),
			 (unsigned long long)(s / 3600 % 24));
	return out;
}

static void stats_dests(struct ctx *x, const struct metrics_sample *s)
{
	struct buf *d = &x->data, *t = &x->text;

	if (!s->have_sched) {
		jw_null(d, "destinations");
		return;
	}
	jw_obj(d, "destinations");
	jw_u64(d, "total", s->dest_total);
	jw_arr(d, "largest");
	buf_printf(t, "destinations: %u of %llu, largest queue first\n",
		   s->n_dest, (unsigned long long)s->dest_total);
	if (s->n_dest)
		buf_printf(t, "  %-24s %-6s %7s %7s %6s %8s %5s %7s\n",
			   "DESTINATION", "LINK", "QUEUED", "HELD", "ACTIVE",
			   "ATTEMPTS", "FAILS", "OLDEST");
	for (unsigned k = 0; k < s->n_dest; k++) {
		const struct metrics_dest *m = &s->dest[k];
		uint64_t age = m->oldest_us && s->unix_us > m->oldest_us ?
			       (s->unix_us - m->oldest_us) / 1000000 : 0;
		size_t nl = strlen(m->name);
		char a[32];

		jw_obj(d, NULL);
		jw_cstr(d, "destination", m->name);
		jw_cstr(d, "link", link_name(m->link));
		jw_u64(d, "queued", m->queued);
		jw_u64(d, "held", m->held);
		jw_u64(d, "active", m->active);
		jw_time(d, "oldest", m->oldest_us);
		if (m->oldest_us)
			jw_u64(d, "oldest_age_s", age);
		else
			jw_null(d, "oldest_age_s");
		jw_u64(d, "attempts", m->attempts);
		jw_u64(d, "failures", m->failures);
		jw_u64(d, "delivered", m->delivered);
		jw_u64(d, "deferred", m->deferred);
		jw_u64(d, "failed", m->failed);
		jw_cstr(d, "last_error", m->last_error);
		jw_end_obj(d);
		buf_add(t, "  ", 2);
		buf_text(t, m->name, nl, 255);
		if (nl < 24)
			buf_printf(t, "%*s", (int)(24 - nl), "");
		buf_printf(t, " %-6s %7llu %7llu %6u %8llu %5u %7s\n",
			   link_name(m->link), (unsigned long long)m->queued,
			   (unsigned long long)m->held, m->active,
			   (unsigned long long)m->attempts, m->failures,
			   m->oldest_us ? stats_age(age, a, sizeof(a)) : "-");
		if (m->last_error[0]) {
			buf_add(t, "    last error: ", 16);
			buf_text(t, m->last_error, strlen(m->last_error), 200);
			buf_add(t, "\n", 1);
		}
	}
	jw_end_arr(d);
	jw_end_obj(d);
}

static void stats_storage(struct ctx *x, const struct metrics_sample *s)
{
	struct buf *d = &x->data, *t = &x->text;

	if (!s->have_storage) {
		jw_null(d, "storage");
		return;
	}
	jw_obj(d, "storage");
	jw_u64(d, "used_bytes", s->storage_used);
	jw_u64(d, "map_bytes", s->storage_map);
	jw_u64(d, "watermark_bytes", s->storage_wm);
	jw_bool(d, "full", s->storage_full);
	jw_end_obj(d);
	buf_printf(t, "storage: %.1f MiB used of %.1f MiB (watermark %.1f "
		   "MiB)%s\n", (double)s->storage_used / 1048576.0,
		   (double)s->storage_map / 1048576.0,
		   (double)s->storage_wm / 1048576.0,
		   s->storage_full ? ", FULL: refusing mail" : "");
}

static int cmd_stats(struct ctx *x, int argc, char **argv)
{
	struct metrics_sample s;
	uint64_t dests = STATS_DESTS;
	char t[64];

	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "dests=", 6) != 0)
			return fail(x, "unknown argument \"%s\" (stats "
				    "[dests=N])", shown(argv[i], t, 40));
		if (i > 0)
			return fail(x, "dests= given twice");
		if (parse_uint(argv[i] + 6, 0, STATS_DESTS_MAX, &dests) < 0)
			return fail(x, "dests=\"%s\" is not a count 0..%u",
				    shown(argv[i] + 6, t, 40), STATS_DESTS_MAX);
	}
	if (metrics_sample_take(x->e, &s, (unsigned)dests) < 0)
		return fail(x, "out of memory");
	jw_u64(&x->data, "sampled_us", s.mono_us);
	jw_u64(&x->data, "time_us", s.unix_us);
	jw_u64(&x->data, "uptime_s", s.uptime_s);
	buf_printf(&x->text, "sluiced up %llud %02lluh%02llum%02llus\n",
		   (unsigned long long)(s.uptime_s / 86400),
		   (unsigned long long)(s.uptime_s / 3600 % 24),
		   (unsigned long long)(s.uptime_s / 60 % 60),
		   (unsigned long long)(s.uptime_s % 60));
	stats_lcores(x, &s);
	stats_workers(x, &s);
	stats_rings(x, &s);
	stats_queue(x, &s);
	stats_dests(x, &s);
	stats_storage(x, &s);
	metrics_sample_free(&s);
	return 0;
}

const struct cmd ctlcmd_stats_cmds[] = {
	{ "stats", NULL, cmd_stats, "stats [dests=N]",
	  "counters per lcore, workers, rings, queue, delivery, largest "
	  "destinations" },
	{ NULL, NULL, NULL, NULL, NULL },
};
