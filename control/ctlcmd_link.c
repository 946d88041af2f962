/*
 * ctlcmd_link.c - the link commands of the control socket (link list,
 * show, open, close) and status (docs/cli.md).
 *
 * Input: the scheduler's views (dsched_links, dsched_link_info,
 * dsched_status), io lcore snapshots, worker counters, ring counts,
 * storage usage. link open/close go through dsched_link_set, which
 * validates before it changes anything.
 *
 * Threads: the control thread only.
 */
#include "ctlcmd_int.h"

#include "stor_queue.h"
#include "worker.h"

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
	jw_bool(&x->data, "draining", x->e->ops.draining);
	buf_printf(&x->text, "sluiced up %llud %02lluh%02llum%02llus%s\n",
		   (unsigned long long)(up / 86400),
		   (unsigned long long)(up / 3600 % 24),
		   (unsigned long long)(up / 60 % 60),
		   (unsigned long long)(up % 60),
		   x->e->ops.draining ? ", DRAINING (SMTP ports closed; "
		   "see drain status)" : "");
	status_sched(x);
	status_rings(x);
	status_lcores(x);
	status_storage(x);
	return 0;
}

const struct cmd ctlcmd_link_cmds[] = {
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
	{ NULL, NULL, NULL, NULL, NULL },
};
