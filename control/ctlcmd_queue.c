/*
 * ctlcmd_queue.c - the queue commands of the control socket: queue list,
 * show, hold, release, delete, retry, flush (docs/cli.md).
 *
 * queue list reads the `meta` database with a cursor inside one read
 * snapshot, in id order, and stops after `limit` rows, or after scanning
 * list_scan_max records or list_scan_ms milliseconds, answering a `next`
 * cursor: a million-message queue never holds the control thread long.
 * queue show reads one message in a snapshot. The operations validate
 * every id before the scheduler (dsched.h) changes anything.
 *
 * Threads: the control thread only.
 */
#include "ctlcmd_int.h"

#include <lmdb.h>

#include "stor_err.h"
#include "stor_queue.h"

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

const struct cmd ctlcmd_queue_cmds[] = {
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
	{ NULL, NULL, NULL, NULL, NULL },
};
