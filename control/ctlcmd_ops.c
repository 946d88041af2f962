/*
 * ctlcmd_ops.c - operations commands of the control socket (docs/cli.md):
 *
 *   reload           re-read sluice.conf and the TLS certificate/key; apply
 *                    the keys that can change live, refuse (changing
 *                    nothing) when a key that needs a restart changed
 *   drain [status]   close the SMTP ports on every io lcore (new SYNs get a
 *                    RST: a load balancer's health check sees the port
 *                    closed); open sessions finish, delivery goes on;
 *                    reports progress
 *   undrain          listen again
 *   log level L | log debug MODULE on|off | log show
 *
 * reload, step by step, all on the control thread: cfg_load the same file
 * into a new struct; ctlcmd_reload_diff compares it key by key with the
 * running one (table below: every key is live or restart; bytes of struct
 * cfg the table does not cover count as a restart key, so a key added to
 * cfg.h later is never silently ignored); any restart key changed -> fail
 * naming them all, nothing applied. Else build one new server tls_ctx per
 * io lcore (this reads the files: a bad cert fails here, nothing applied
 * yet), copy the new [smtp] section once (immutable, shared by the io
 * lcores), post both to every io lcore (iolcore_post: the lcore swaps them
 * in between reactor rounds and frees its old tls_ctx; sessions in TLS keep
 * their SSL_CTX reference), then write the live keys into the running
 * struct cfg (scheduler's [delivery] keys and [smtp] notify_priority are
 * read there, on this same thread).
 *
 * Threads: the control thread only. Waits: up to RELOAD_WAIT_MS per io
 * lcore for it to take a post (an io lcore answers within a reactor round,
 * microseconds).
 */
#include "ctlcmd_int.h"

#include "cfg.h"
#include "log.h"
#include "tls_ctx.h"

#define OPS_WAIT_MS 1000

/* ---- reload: the key table ---- */

#define L CTLCMD_RELOAD_LIVE
#define R CTLCMD_RELOAD_RESTART

struct rkey {
	const char *name;       /* "[smtp] max_errors"; NULL: not a key */
	size_t off, len;
	enum ctlcmd_reload_kind kind;
};

#define K(n, f, k) { n, offsetof(struct cfg, f), \
		     sizeof(((struct cfg *)0)->f), k }

static const struct rkey rkeys[] = {
	K(NULL, path, R),                       /* the same file */
	K("[sluice] nic_profile", nic_profile, R),
	K("[sluice] nic_profile", profile_path, R),
	K("[sluice] profile_dir", profile_dir, R),
	K("[eal] file_prefix", file_prefix, R),
	K("[eal] huge", huge, R),
	K("[eal] memory_mb", memory_mb, R),
	K("[eal] socket_mem", socket_mem, R),
	K("[eal] log_level", log_level, R),
	K("[eal] telemetry", telemetry, R),
	K("[lcores] main", main_lcore, R),
	K("[lcores] io", io_lcores, R),
	K("[lcores] io", n_io, R),
	K("[lcores] workers", worker_lcores, R),
	K("[lcores] workers", n_workers, R),
	K("[lcores] cpu_map", cpu_map_lcore, R),
	K("[lcores] cpu_map", cpu_map_cpu, R),
	K("[lcores] cpu_map", n_cpu_map, R),
	K("[interface] address", ip, R),
	K("[interface] address", prefix_len, R),
	K("[interface] gateway", gateway, R),
	K("[interface] mac", mac, R),
	K("[interface] mac", mac_set, R),
	K("[pools] mbufs", mbufs, R),
	K("[pools]/[tcp]", net_set, R),         /* named per key below */
	K("[pools]/[tcp]", net_val, R),
	K("[services] echo", svc_echo, R),
	K("[services] discard", svc_discard, R),
	K("[services] smtp", svc_smtp, R),
	K("[smtp] hostname", smtp.hostname, R),
	K("[smtp] ports", smtp.ports, R),
	K("[smtp] ports", smtp.n_ports, R),
	K("[smtp] submission_ports", smtp.sub_ports, R),
	K("[smtp] submission_ports", smtp.n_sub, R),
	K("[smtp] max_message_size", smtp.max_message_size, R),
	K("[smtp] max_recipients", smtp.max_recipients, L),
	K("[smtp] max_errors", smtp.max_errors, L),
	K("[smtp] command_timeout_s", smtp.command_timeout_s, L),
	K("[smtp] data_timeout_s", smtp.data_timeout_s, L),
	K("[smtp] session_timeout_s", smtp.session_timeout_s, L),
	K("[smtp] banner_delay_ms", smtp.banner_delay_ms, L),
	K("[smtp] max_sessions_per_lcore", smtp.max_sessions_per_lcore, R),
	K("[smtp] per_client_max_conns", smtp.per_client_max_conns, R),
	K("[smtp] per_client_rate_per_min", smtp.per_client_rate_per_min, R),
	K("[smtp] default_priority", smtp.default_priority, L),
	K("[smtp] notify_priority", smtp.notify_priority, L),
	K("[smtp] max_received", smtp.max_received, R),
	K("[smtp] ring_size", smtp.ring_size, R),
	K("[smtp] queue_wait_ms", smtp.queue_wait_ms, L),
	K("[smtp] auth_plaintext", smtp.auth_plaintext, L),
	K("[storage] state_dir", smtp.state_dir, R),
	K("[storage] durability", smtp.durability, R),
	K("[storage] map_size_mb", smtp.map_size_mb, R),
	K("[storage] high_watermark", smtp.high_watermark, R),
	K("[storage] lab_commit_delay_ms", smtp.lab_commit_delay_ms, R),
	K("[tls] cert", smtp.tls_cert, L),
	K("[tls] key", smtp.tls_key, L),
	K("[delivery] enabled", delivery.enabled, R),
	K("[delivery] max_active", delivery.max_active, R),
	K("[delivery] max_conns_per_dest", delivery.max_conns_per_dest, L),
	K("[delivery] max_msgs_per_conn", delivery.max_msgs_per_conn, R),
	K("[delivery] rate_per_dest", delivery.rate_per_dest, L),
	K("[delivery] retry_schedule", delivery.retry_s, L),
	K("[delivery] retry_schedule", delivery.n_retry, L),
	K("[delivery] max_lifetime", delivery.max_lifetime_s, L),
	K("[delivery] delay_warning", delivery.delay_warning_s, L),
	K("[delivery] down_after", delivery.down_after, L),
	K("[delivery] connect_timeout_s", delivery.connect_timeout_s, R),
	K("[delivery] idle_conn_s", delivery.idle_conn_s, R),
	K("[delivery] default_route", delivery.default_route, L),
	K("[delivery] tls_ca", delivery.tls_ca, R),
	K("[delivery] helo_name", delivery.helo_name, R),
	K("[reactor] idle_spins", idle_spins, R),
	K("[reactor] idle_sleep_us_max", idle_sleep_us_max, R),
	K("[control] stats_interval_s", stats_interval_s, R),
	K("[control] socket", ctl_socket, R),
};
#define N_RKEYS (sizeof(rkeys) / sizeof(rkeys[0]))

/* [pools]/[tcp] keys by net_set index (dataplane/cfg.c cfg_netopts) */
static const char *const net_key_names[CFG_NET_OPTS] = {
	"[pools] max_conns", "[pools] rcvbuf", "[pools] sndbuf",
	"[pools] syn_backlog", "[pools] conn_low_water",
	"[pools] timewait_max", "[pools] arp_entries", "[pools] arp_pending",
	"[pools] max_listeners", "[tcp] msl_ms", "[tcp] fin_wait2_ms",
	"[tcp] delack_ms", "[tcp] rto_min_ms", "[tcp] rto_max_ms",
	"[tcp] rto_init_ms", "[tcp] syn_retries", "[tcp] data_retries",
	"[tcp] arp_timeout_ms", "[pools] mbufs",
};

#undef K
#undef L
#undef R

/* diff_add - name once into the live or restart list */
static void diff_add(struct ctlcmd_reload_diff *d, const char *name,
		     enum ctlcmd_reload_kind k)
{
	const char **v = k == CTLCMD_RELOAD_LIVE ? d->live : d->restart;
	unsigned *n = k == CTLCMD_RELOAD_LIVE ? &d->n_live : &d->n_restart;

	for (unsigned i = 0; i < *n; i++)
		if (strcmp(v[i], name) == 0)
			return;
	if (*n < CTLCMD_RELOAD_KEYS_MAX)
		v[(*n)++] = name;
}

void ctlcmd_reload_diff(const struct cfg *old, const struct cfg *nw,
			struct ctlcmd_reload_diff *d)
{
	const unsigned char *a = (const unsigned char *)old;
	const unsigned char *b = (const unsigned char *)nw;
	unsigned char *rest = malloc(sizeof(*nw));

	memset(d, 0, sizeof(*d));
	for (size_t i = 0; i < N_RKEYS; i++) {
		const struct rkey *k = &rkeys[i];

		if (!k->name || memcmp(a + k->off, b + k->off, k->len) == 0)
			continue;
		if (k->off == offsetof(struct cfg, net_set) ||
		    k->off == offsetof(struct cfg, net_val)) {
			for (unsigned j = 0; j < CFG_NET_OPTS; j++)
				if (old->net_set[j] != nw->net_set[j] ||
				    (old->net_set[j] &&
				     old->net_val[j] != nw->net_val[j]))
					diff_add(d, net_key_names[j],
						 CTLCMD_RELOAD_RESTART);
			continue;
		}
		diff_add(d, k->name, k->kind);
	}
	/* everything the table does not cover must be equal: a key added to
	 * struct cfg later needs a restart until this table knows it */
	if (!rest) {
		d->other = memcmp(old, nw, sizeof(*nw)) != 0;
		return;
	}
	memcpy(rest, nw, sizeof(*nw));
	for (size_t i = 0; i < N_RKEYS; i++)
		memcpy(rest + rkeys[i].off, a + rkeys[i].off, rkeys[i].len);
	d->other = memcmp(rest, old, sizeof(*nw)) != 0;
	free(rest);
}

int ctlcmd_reload_key_kind(const char *name)
{
	for (size_t i = 0; i < N_RKEYS; i++)
		if (rkeys[i].name && strcmp(rkeys[i].name, name) == 0)
			return (int)rkeys[i].kind;
	for (unsigned j = 0; j < CFG_NET_OPTS; j++)
		if (strcmp(net_key_names[j], name) == 0)
			return CTLCMD_RELOAD_RESTART;
	return -1;
}

/* apply_live - write the live keys of nw into the running config */
static void apply_live(struct cfg *run, const struct cfg *nw)
{
	for (size_t i = 0; i < N_RKEYS; i++)
		if (rkeys[i].name && rkeys[i].kind == CTLCMD_RELOAD_LIVE)
			memcpy((unsigned char *)run + rkeys[i].off,
			       (const unsigned char *)nw + rkeys[i].off,
			       rkeys[i].len);
}

static void jw_list(struct buf *b, const char *key, const char *const *v,
		    unsigned n)
{
	jw_arr(b, key);
	for (unsigned i = 0; i < n; i++)
		jw_cstr(b, NULL, v[i]);
	jw_end_arr(b);
}

/* join - "a, b, c" into out */
static const char *join(const char *const *v, unsigned n, char *out,
			size_t cap)
{
	size_t k = 0;

	out[0] = 0;
	for (unsigned i = 0; i < n && k < cap; i++)
		k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? ", " : "",
				      v[i]);
	return out;
}

static int cmd_reload(struct ctx *x, int argc, char **argv)
{
	struct ctlcmd_ops *o = &x->e->ops;
	struct ctlcmd_reload_diff d;
	struct tls_ctx *tls[CFG_MAX_IO] = { 0 };
	struct cfg *nw;
	struct cfg_smtp *smtp = NULL;
	char err[1024], names[1024];
	bool smtp_changed = false, tls_on, tls_was, lagging = false;
	unsigned n_io = x->e->n_io;

	if (no_args(x, argc, argv) < 0)
		return -1;
	if (!o->cfg)
		return fail(x, "this sluiced was started without reload "
			    "support");
	if (!(nw = calloc(1, sizeof(*nw))))
		return fail(x, "out of memory");
	if (cfg_load(o->cfg->path, o->profile_dir, nw, err, sizeof(err)) < 0) {
		free(nw);
		return fail(x, "%s; nothing was changed", err);
	}
	ctlcmd_reload_diff(o->cfg, nw, &d);
	if (d.n_restart || d.other) {
		if (d.other)
			diff_add(&d, "a setting reload does not know (restart "
				 "to apply)", CTLCMD_RELOAD_RESTART);
		free(nw);
		return fail(x, "%s: %s changed; %s cannot change while "
			    "sluiced runs (restart sluiced to apply); nothing "
			    "was applied", o->cfg->path,
			    join(d.restart, d.n_restart, names, sizeof(names)),
			    d.n_restart > 1 ? "these" : "it");
	}
	for (unsigned q = 0; q < n_io; q++)
		if (atomic_load(&x->e->io[q].state) != IOLCORE_RUNNING) {
			free(nw);
			return fail(x, "io lcore %u is not running; nothing "
				    "was applied", x->e->io[q].lcore_id);
		}
	tls_on = nw->smtp.tls_cert[0] && nw->smtp.tls_key[0];
	tls_was = o->cfg->smtp.tls_cert[0] && o->cfg->smtp.tls_key[0];
	/* the certificate and key are read again even when their paths did
	 * not change: that is how a renewed certificate gets in */
	for (unsigned q = 0; tls_on && nw->svc_smtp && q < n_io; q++) {
		tls[q] = tls_ctx_server_new(nw->smtp.tls_cert, nw->smtp.tls_key,
					    err, sizeof(err));
		if (!tls[q]) {
			for (unsigned k = 0; k < q; k++)
				tls_ctx_free(tls[k]);
			free(nw);
			return fail(x, "%s: [tls] cert/key: %s; nothing was "
				    "applied (the old certificate stays in use)",
				    o->cfg->path, err);
		}
	}
	for (unsigned i = 0; i < d.n_live; i++)
		if (strncmp(d.live[i], "[smtp]", 6) == 0 ||
		    strncmp(d.live[i], "[tls]", 5) == 0)
			smtp_changed = true;
	if (smtp_changed && nw->svc_smtp) {
		if (!(smtp = malloc(sizeof(*smtp)))) {
			for (unsigned q = 0; q < n_io; q++)
				tls_ctx_free(tls[q]);
			free(nw);
			return fail(x, "out of memory; nothing was applied");
		}
		*smtp = nw->smtp;
	}
	for (unsigned q = 0; nw->svc_smtp && q < n_io; q++)
		if (iolcore_post(&x->e->io[q], smtp, tls_on || tls_was, tls[q],
				 OPS_WAIT_MS) < 0)
			lagging = true;
	if (lagging) {
		/* it takes the post at its next round; the copy must live */
		log_warn("reload: an io lcore did not take the new settings "
			 "within %d ms", OPS_WAIT_MS);
		free(nw);
		return fail(x, "an io lcore did not take the new settings "
			    "within %d ms (it will at its next round); the "
			    "scheduler's settings were not changed: run reload "
			    "again", OPS_WAIT_MS);
	}
	if (smtp) {
		free(o->smtp_live);  /* no io lcore points at it any more */
		o->smtp_live = smtp;
	}
	apply_live(o->cfg, nw);
	o->reloads++;
	free(nw);
	log_info("reload: %s: %s%s%s", o->cfg->path, d.n_live ?
		 "changed " : "no setting changed",
		 join(d.live, d.n_live, names, sizeof(names)),
		 tls_on ? "; TLS certificate re-read" : "");
	jw_cstr(&x->data, "config", o->cfg->path);
	jw_list(&x->data, "changed", d.live, d.n_live);
	jw_bool(&x->data, "tls_reloaded", tls_on);
	jw_u64(&x->data, "reloads", o->reloads);
	buf_printf(&x->text, "reloaded %s: %s%s\n", o->cfg->path,
		   d.n_live ? "changed " : "no setting changed",
		   join(d.live, d.n_live, names, sizeof(names)));
	if (tls_on)
		buf_printf(&x->text, "TLS certificate %s re-read: new "
			   "STARTTLS sessions use it\n", o->cfg->smtp.tls_cert);
	return 0;
}

/* ---- drain ---- */

struct drain_prog {
	uint64_t sessions;           /* SMTP sessions open, all io lcores */
	bool sched;
	uint64_t messages, active, delivered_since;
	unsigned closed;             /* io lcores with their ports closed */
};

static void drain_progress(struct ctx *x, struct drain_prog *p)
{
	struct iolcore_snap *snap = malloc(sizeof(*snap));

	memset(p, 0, sizeof(*p));
	for (unsigned q = 0; snap && q < x->e->n_io; q++) {
		iolcore_snapshot(&x->e->io[q], snap, 100);
		p->sessions += snap->smtpd.active;
		p->closed += atomic_load(&x->e->io[q].draining);
	}
	free(snap);
	if (x->e->sched) {
		struct dsched_status s;

		memset(&s, 0, sizeof(s));
		dsched_status(x->e->sched, &s);
		p->sched = true;
		p->messages = s.messages;
		p->active = s.jobs_active;
		p->delivered_since = s.delivered - x->e->ops.drain_delivered0;
	}
}

static void drain_report(struct ctx *x)
{
	struct ctlcmd_ops *o = &x->e->ops;
	struct drain_prog p;
	char tm[40];

	drain_progress(x, &p);
	jw_bool(&x->data, "draining", o->draining);
	if (o->draining)
		jw_time(&x->data, "since", o->drain_since_us);
	else
		jw_null(&x->data, "since");
	jw_u64(&x->data, "io_lcores_closed", p.closed);
	jw_u64(&x->data, "sessions", p.sessions);
	if (p.sched) {
		jw_u64(&x->data, "queued", p.messages);
		jw_u64(&x->data, "jobs_active", p.active);
		jw_u64(&x->data, "delivered_since_drain", o->draining ?
		       p.delivered_since : 0);
	} else {
		jw_null(&x->data, "queued");
		jw_null(&x->data, "jobs_active");
		jw_null(&x->data, "delivered_since_drain");
	}
	jw_bool(&x->data, "done", o->draining && p.sessions == 0 &&
		(!p.sched || p.messages == 0));
	if (!o->draining) {
		buf_printf(&x->text, "not draining: SMTP ports open; sessions "
			   "open %llu\n", (unsigned long long)p.sessions);
		return;
	}
	buf_printf(&x->text, "draining since %s UTC: SMTP ports closed on "
		   "%u of %u io lcores\n", fmt_time(o->drain_since_us, false,
		   tm, sizeof(tm)), p.closed, x->e->n_io);
	buf_printf(&x->text, "  sessions open %llu", (unsigned long long)
		   p.sessions);
	if (p.sched)
		buf_printf(&x->text, ", messages queued %llu (jobs out %llu), "
			   "delivered since drain %llu",
			   (unsigned long long)p.messages,
			   (unsigned long long)p.active,
			   (unsigned long long)p.delivered_since);
	buf_add(&x->text, "\n", 1);
	if (p.sessions == 0 && (!p.sched || p.messages == 0))
		buf_add(&x->text, "  done: no session open, queue empty\n",
			36);
}

/* set_drain - every io lcore, or none (undone on failure) */
static int set_drain(struct ctx *x, bool on)
{
	for (unsigned q = 0; q < x->e->n_io; q++) {
		struct iolcore *l = &x->e->io[q];

		if (!l->smtp)
			continue;
		if (iolcore_set_drain(l, on, OPS_WAIT_MS) < 0) {
			char why[200];

			snprintf(why, sizeof(why), "%s", l->post_err[0] ?
				 l->post_err : "no answer");
			for (unsigned k = 0; k < q; k++)
				if (x->e->io[k].smtp)
					iolcore_set_drain(&x->e->io[k], !on,
							  OPS_WAIT_MS);
			return fail(x, "io lcore %u: %s; nothing was changed",
				    l->lcore_id, why);
		}
	}
	return 0;
}

static int cmd_drain(struct ctx *x, int argc, char **argv)
{
	struct ctlcmd_ops *o = &x->e->ops;
	char t[64];

	if (argc > 1 || (argc == 1 && strcmp(argv[0], "status") != 0))
		return fail(x, "unexpected argument \"%s\" (usage: drain "
			    "[status])", shown(argv[argc - 1], t, 40));
	if (need_queue(x) < 0)
		return -1;
	if (argc == 0 && !o->draining) {
		if (set_drain(x, true) < 0)
			return -1;
		o->draining = true;
		o->drain_since_us = now_unix_us();
		o->drain_delivered0 = 0;
		if (x->e->sched) {
			struct dsched_status s;

			memset(&s, 0, sizeof(s));
			dsched_status(x->e->sched, &s);
			o->drain_delivered0 = s.delivered;
		}
		log_info("drain: SMTP ports closed for new connections; open "
			 "sessions finish, the queue is delivered");
	}
	drain_report(x);
	return 0;
}

static int cmd_undrain(struct ctx *x, int argc, char **argv)
{
	struct ctlcmd_ops *o = &x->e->ops;

	if (no_args(x, argc, argv) < 0 || need_queue(x) < 0)
		return -1;
	if (set_drain(x, false) < 0)
		return -1;
	if (o->draining)
		log_info("undrain: SMTP ports open again");
	o->draining = false;
	drain_report(x);
	return 0;
}

/* ---- log ---- */

static void log_report(struct ctx *x)
{
	unsigned mask = atomic_load(&log_debug_mask);

	jw_cstr(&x->data, "level", log_level_name(log_get_level()));
	jw_arr(&x->data, "debug");
	buf_printf(&x->text, "log level %s; debug lines from:",
		   log_level_name(log_get_level()));
	for (int m = 0; m < LOG_M_COUNT; m++)
		if (mask & (1u << m)) {
			jw_cstr(&x->data, NULL,
				log_module_name((enum log_module)m));
			buf_printf(&x->text, " %s",
				   log_module_name((enum log_module)m));
		}
	jw_end_arr(&x->data);
	buf_add(&x->text, mask ? "\n" : " none\n", mask ? 1 : 6);
}

static int cmd_log_level(struct ctx *x, int argc, char **argv)
{
	enum log_level l;
	char t[64];

	if (argc != 1)
		return fail(x, "usage: log level debug|info|warn");
	if (log_level_parse(argv[0], &l) < 0)
		return fail(x, "\"%s\" is not a level (debug, info, warn)",
			    shown(argv[0], t, 40));
	log_set_level(l);
	log_warn("log level set to %s (sluicectl)", log_level_name(l));
	log_report(x);
	return 0;
}

static int cmd_log_debug(struct ctx *x, int argc, char **argv)
{
	int m;
	char t[64];

	if (argc != 2 || (strcmp(argv[1], "on") && strcmp(argv[1], "off")))
		return fail(x, "usage: log debug MODULE on|off (modules: "
			    "smtpd, deliver, dsched, stack, storage, ctl)");
	if ((m = log_module_parse(argv[0])) < 0)
		return fail(x, "unknown module \"%s\" (smtpd, deliver, dsched, "
			    "stack, storage, ctl)", shown(argv[0], t, 40));
	log_module_debug((enum log_module)m, strcmp(argv[1], "on") == 0);
	log_warn("debug lines from %s %s (sluicectl)", argv[0],
		 strcmp(argv[1], "on") == 0 ? "on" : "off");
	log_report(x);
	return 0;
}

static int cmd_log_show(struct ctx *x, int argc, char **argv)
{
	if (no_args(x, argc, argv) < 0)
		return -1;
	log_report(x);
	return 0;
}

const struct cmd ctlcmd_ops_cmds[] = {
	{ "reload", NULL, cmd_reload, "reload",
	  "re-read sluice.conf and the TLS certificate; live keys only" },
	{ "drain", NULL, cmd_drain, "drain [status]",
	  "close the SMTP ports, finish sessions, deliver; progress" },
	{ "undrain", NULL, cmd_undrain, "undrain",
	  "open the SMTP ports again" },
	{ "log", "level", cmd_log_level, "log level debug|info|warn",
	  "lines below this level are not written" },
	{ "log", "debug", cmd_log_debug, "log debug MODULE on|off",
	  "debug lines of one module (smtpd deliver dsched stack storage "
	  "ctl)" },
	{ "log", "show", cmd_log_show, "log show",
	  "current level and modules with debug lines" },
	{ NULL, NULL, NULL, NULL, NULL },
};
