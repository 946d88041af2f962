/*
 * ctlops_test - the operations commands' pure parts: reload's key table
 * (control/ctlcmd_ops.c ctlcmd_reload_diff on configs read by cfg_load
 * from real files: which keys are live, which need a restart) and the dir
 * commands (control/ctlcmd_dir.c through ctlcmd_run) on a real LMDB
 * directory: add/change/remove through stor_dirio's line parser, show,
 * list, import from a payload with a bad line changing nothing, passwd.
 * No EAL, no io lcores (reload's apply step is the system test's).
 */
#include "../storage/stor_test.h"

#include <errno.h>

#include "cfg.h"
#include "ctlcmd.h"
#include "mstore.h"
#include "stor_dir.h"
#include "stor_dirio.h"

static char *tmp;

#define BASE_CONF \
	"[interface]\naddress = 198.18.0.1/24\n" \
	"[services]\nsmtp = yes\n" \
	"[smtp]\nhostname = a.test\nports = 25 587\nmax_errors = 20\n" \
	"[tls]\ncert = /x/cert.pem\nkey = /x/key.pem\n" \
	"[delivery]\nretry_schedule = 1m,5m\n"

/* load - text as a config file -> c */
static void load(const char *text, struct cfg *c)
{
	char path[600], err[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/sluice.conf", tmp);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	if (cfg_load(path, "/nonexistent", c, err, sizeof(err)) < 0)
		fail_msg("cfg_load: %s", err);
}

static bool has(const char *const *v, unsigned n, const char *s)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

/* diff_of - BASE_CONF vs nw_text, both loaded by cfg_load */
static void diff_of(const char *nw_text, struct ctlcmd_reload_diff *d)
{
	struct cfg *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));

	load(BASE_CONF, a);
	load(nw_text, b);
	ctlcmd_reload_diff(a, b, d);
	free(a);
	free(b);
}

static void reload_diff_same(void **st)
{
	struct ctlcmd_reload_diff d;

	(void)st;
	diff_of(BASE_CONF, &d);
	assert_int_equal(d.n_live, 0);
	assert_int_equal(d.n_restart, 0);
	assert_false(d.other);
}

static void reload_diff_live(void **st)
{
	struct ctlcmd_reload_diff d;
	char text[2048];

	(void)st;
	snprintf(text, sizeof(text), "%s",
		 "[interface]\naddress = 198.18.0.1/24\n"
		 "[services]\nsmtp = yes\n"
		 "[smtp]\nhostname = a.test\nports = 25 587\nmax_errors = 7\n"
		 "max_recipients = 9\nqueue_wait_ms = 100\n"
		 "[tls]\ncert = /y/cert.pem\nkey = /x/key.pem\n"
		 "[delivery]\nretry_schedule = 1m,10m\nmax_lifetime = 2d\n");
	diff_of(text, &d);
	assert_int_equal(d.n_restart, 0);
	assert_false(d.other);
	assert_int_equal(d.n_live, 6);
	assert_true(has(d.live, d.n_live, "[smtp] max_errors"));
	assert_true(has(d.live, d.n_live, "[smtp] max_recipients"));
	assert_true(has(d.live, d.n_live, "[smtp] queue_wait_ms"));
	assert_true(has(d.live, d.n_live, "[tls] cert"));
	assert_true(has(d.live, d.n_live, "[delivery] retry_schedule"));
	assert_true(has(d.live, d.n_live, "[delivery] max_lifetime"));
}

static void reload_diff_restart(void **st)
{
	struct ctlcmd_reload_diff d;

	(void)st;
	diff_of("[interface]\naddress = 198.18.0.7/24\n"
		"[services]\nsmtp = yes\n"
		"[smtp]\nhostname = b.test\nports = 25\nmax_errors = 3\n"
		"[tls]\ncert = /x/cert.pem\nkey = /x/key.pem\n"
		"[delivery]\nretry_schedule = 1m,5m\nmax_active = 10\n"
		"[tcp]\nrto_min_ms = 300\n[pools]\nmax_conns = 100\n", &d);
	assert_false(d.other);
	/* helo_name defaults to the hostname: it changed with it */
	assert_int_equal(d.n_restart, 7);
	assert_true(has(d.restart, d.n_restart, "[delivery] helo_name"));
	assert_true(has(d.restart, d.n_restart, "[interface] address"));
	assert_true(has(d.restart, d.n_restart, "[smtp] hostname"));
	assert_true(has(d.restart, d.n_restart, "[smtp] ports"));
	assert_true(has(d.restart, d.n_restart, "[delivery] max_active"));
	assert_true(has(d.restart, d.n_restart, "[tcp] rto_min_ms"));
	assert_true(has(d.restart, d.n_restart, "[pools] max_conns"));
	/* the live one beside them is still named as live */
	assert_int_equal(d.n_live, 1);
	assert_string_equal(d.live[0], "[smtp] max_errors");
}

/* every key of sluice.conf (docs/operations.md) has a verdict */
static void reload_every_key_known(void **st)
{
	static const char *const keys[] = {
		"[sluice] nic_profile", "[sluice] profile_dir",
		"[eal] file_prefix", "[eal] huge", "[eal] memory_mb",
		"[eal] socket_mem", "[eal] log_level", "[eal] telemetry",
		"[lcores] main", "[lcores] io", "[lcores] workers",
		"[lcores] cpu_map", "[interface] address",
		"[interface] gateway", "[interface] mac",
		"[pools] max_conns", "[pools] rcvbuf", "[pools] sndbuf",
		"[pools] syn_backlog", "[pools] conn_low_water",
		"[pools] timewait_max", "[pools] arp_entries",
		"[pools] arp_pending", "[pools] max_listeners", "[pools] mbufs",
		"[tcp] msl_ms", "[tcp] fin_wait2_ms", "[tcp] delack_ms",
		"[tcp] rto_min_ms", "[tcp] rto_max_ms", "[tcp] rto_init_ms",
		"[tcp] syn_retries", "[tcp] data_retries",
		"[tcp] arp_timeout_ms", "[services] echo",
		"[services] discard", "[services] smtp", "[smtp] hostname",
		"[smtp] ports", "[smtp] submission_ports",
		"[smtp] max_message_size", "[smtp] max_recipients",
		"[smtp] max_errors", "[smtp] command_timeout_s",
		"[smtp] data_timeout_s", "[smtp] session_timeout_s",
		"[smtp] banner_delay_ms", "[smtp] max_sessions_per_lcore",
		"[smtp] per_client_max_conns", "[smtp] per_client_rate_per_min",
		"[smtp] default_priority", "[smtp] notify_priority",
		"[smtp] max_received", "[smtp] ring_size",
		"[smtp] queue_wait_ms", "[smtp] auth_plaintext",
		"[storage] state_dir", "[storage] durability",
		"[storage] map_size_mb", "[storage] high_watermark",
		"[storage] lab_commit_delay_ms", "[tls] cert", "[tls] key",
		"[delivery] enabled", "[delivery] max_active",
		"[delivery] max_conns_per_dest", "[delivery] max_msgs_per_conn",
		"[delivery] rate_per_dest", "[delivery] retry_schedule",
		"[delivery] max_lifetime", "[delivery] delay_warning",
		"[delivery] down_after", "[delivery] connect_timeout_s",
		"[delivery] idle_conn_s", "[delivery] default_route",
		"[delivery] tls_ca", "[delivery] helo_name",
		"[reactor] idle_spins", "[reactor] idle_sleep_us_max",
		"[control] stats_interval_s", "[control] socket",
	};
	unsigned live = 0;

	(void)st;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int k = ctlcmd_reload_key_kind(keys[i]);

		if (k < 0)
			fail_msg("%s: not in reload's key table", keys[i]);
		live += k == CTLCMD_RELOAD_LIVE;
	}
	assert_int_equal(live, 19);
	assert_int_equal(ctlcmd_reload_key_kind("[smtp] nonsense"), -1);
}

/* ---- dir commands ---- */

static struct mstore m;
static struct ctlcmd_env env;

/* run - one request; returns ok and copies the response into out */
static bool run(const char *line, char *out, size_t cap)
{
	char *r;
	size_t n;

	ctlcmd_run(&env, line, &r, &n);
	snprintf(out, cap, "%.*s", (int)n, r);
	bool ok = strncmp(r, "{\"ok\":true", 10) == 0;

	ctlcmd_free(r);
	return ok;
}

static char *export_text(void)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&p, &n);

	assert_int_equal(stor_dirio_export(m.dir, f), 0);
	fclose(f);
	return p;
}

static int dir_setup(void **st)
{
	struct stor_dir_conf dc = { 0 };
	char path[600];

	(void)st;
	snprintf(path, sizeof(path), "%s/directory", tmp);
	dc.path = path;
	memset(&m, 0, sizeof(m));
	assert_int_equal(stor_dir_open(&dc, &m.dir), 0);
	memset(&env, 0, sizeof(env));
	env.m = &m;
	return 0;
}

static int dir_teardown(void **st)
{
	(void)st;
	stor_dir_close(m.dir);
	return 0;
}

struct dir_case {
	const char *req;
	bool ok;
	const char *want;          /* substring of the response */
};

static const struct dir_case dir_cases[] = {
	{ "dir add domain x.test local", true, "added: domain x.test local" },
	{ "dir add rcpt a@x.test accept", true, "added: rcpt a@x.test accept" },
	{ "dir add rcpt a@x.test reject", false, "duplicate recipient" },
	{ "dir add rcpt b@y.test accept", false, "domain is not declared" },
	{ "dir add rcpt c@x.test frobnicate", false,
	  "recipient action must be accept, reject or alias" },
	{ "dir add user u1 plaintext", false, "never plain text" },
	{ "dir change rcpt b@x.test accept", false, "no such entry" },
	{ "dir change rcpt a@x.test alias t@x.test route=h:25", true,
	  "changed: rcpt a@x.test alias t@x.test route=h:25" },
	{ "dir show rcpt A@X.TEST", true,
	  "rcpt a@x.test alias t@x.test route=h:25 tls=opportunistic" },
	{ "dir show rcpt nobody@x.test", false, "no rcpt" },
	{ "dir add prio sender @x.test 1", true, "added" },
	{ "dir show prio sender @x.test", true, "prio sender @x.test 1" },
	{ "dir change prio sender @x.test 6", true, "changed" },
	{ "dir show prio sender @x.test", true, "prio sender @x.test 6" },
	{ "dir add net 10.0.0.1/8", false, "no host bits" },
	{ "dir add net 10.0.0.0/8", true, "added: net 10.0.0.0/8" },
	{ "dir list", true, "-- 4 entries --" },
	{ "dir list rcpts", true, "-- 1 entries --" },
	{ "dir list limit=2", true, "more: raise limit=" },
	{ "dir remove domain x.test", false, "still has recipients" },
	{ "dir remove rcpt a@x.test", true, "removed rcpt a@x.test" },
	{ "dir remove rcpt a@x.test", false, "no rcpt" },
	{ "dir remove domain x.test", true, "removed domain x.test" },
	{ "dir remove prio sender @x.test", true, "removed prio" },
	{ "dir frob", false, "unknown subcommand" },
	{ "dir import", false, "no file" },
	{ "dir passwd u1", false, "no password" },
};

static void dir_table(void **st)
{
	char out[4096];

	(void)st;
	for (size_t i = 0; i < sizeof(dir_cases) / sizeof(dir_cases[0]); i++) {
		const struct dir_case *c = &dir_cases[i];
		bool ok = run(c->req, out, sizeof(out));

		if (ok != c->ok || !strstr(out, c->want))
			fail_msg("%s: want %s with \"%s\", got %s", c->req,
				 c->ok ? "ok" : "failure", c->want, out);
	}
}

static void dir_import_payload(void **st)
{
	static const char good[] = "domain d.test local\n"
				   "rcpt one@d.test accept\n";
	static const char bad[] = "domain e.test local\n"
				  "# a comment\n"
				  "rcpt two@e.test accept\n"
				  "rcpt three@nowhere.test accept\n";
	char out[4096], *before, *after;

	(void)st;
	env.req_body = good;
	env.req_body_len = sizeof(good) - 1;
	assert_true(run("dir import good.txt", out, sizeof(out)));
	before = export_text();
	assert_non_null(strstr(before, "rcpt one@d.test accept"));
	env.req_body = bad;
	env.req_body_len = sizeof(bad) - 1;
	assert_false(run("dir import bad.txt", out, sizeof(out)));
	if (!strstr(out, "bad.txt:4: recipient's domain is not declared") ||
	    !strstr(out, "nothing was changed"))
		fail_msg("import error: %s", out);
	after = export_text();
	assert_string_equal(before, after);
	free(after);
	/* export -> import -> export is identical */
	env.req_body = before;
	env.req_body_len = strlen(before);
	assert_true(run("dir import x", out, sizeof(out)));
	env.req_body = NULL;
	assert_true(run("dir export", out, sizeof(out)));
	after = export_text();
	assert_string_equal(before, after);
	free(after);
	free(before);
}

static void dir_passwd_payload(void **st)
{
	struct stor_dir_reader *r;
	char out[4096];
	static const char pw[] = "pass with spaces";

	(void)st;
	env.req_body = pw;
	env.req_body_len = strlen(pw);
	assert_true(run("dir passwd bob", out, sizeof(out)));
	assert_null(strstr(out, "spaces"));
	env.req_body = "a\nb";
	env.req_body_len = 3;
	assert_false(run("dir passwd bob", out, sizeof(out)));
	env.req_body = NULL;
	assert_int_equal(stor_dir_reader_open(m.dir, &r), 0);
	assert_int_equal(stor_dir_user_verify(r, (struct stor_str){ "bob", 3 },
					      pw, strlen(pw)), 0);
	assert_int_equal(stor_dir_user_verify(r, (struct stor_str){ "bob", 3 },
					      "pass", 4), EACCES);
	stor_dir_reader_close(r);
	/* show and list never print the salt or the hash */
	assert_true(run("dir show user bob", out, sizeof(out)));
	assert_non_null(strstr(out, "user bob $scrypt$"));
	assert_non_null(strstr(out, "$...\""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reload_diff_same),
		cmocka_unit_test(reload_diff_live),
		cmocka_unit_test(reload_diff_restart),
		cmocka_unit_test(reload_every_key_known),
		cmocka_unit_test_setup_teardown(dir_table, dir_setup,
						dir_teardown),
		cmocka_unit_test_setup_teardown(dir_import_payload, dir_setup,
						dir_teardown),
		cmocka_unit_test_setup_teardown(dir_passwd_payload, dir_setup,
						dir_teardown),
	};
	int rc;

	tmp = test_tmpdir();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	test_rmdir(tmp);
	return rc;
}
