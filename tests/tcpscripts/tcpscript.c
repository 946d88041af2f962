/*
 * tcpscript.c - run TCP scenario scripts against the sans-IO stack.
 *
 * Usage: tcpscript [-v] [--expect-fail[=LINE]] SCRIPT...
 *
 * One net_stack per script, driven with a virtual clock and a fake net_io
 * that captures every frame. The remote peer (192.0.2.1, default port
 * 40000) exists only in the script: '<' lines are frames it sends, '>'
 * lines frames the stack must emit next. ARP is answered automatically.
 * Before each line the clock advances to the line's time, calling net_poll
 * at every net_next_deadline on the way; tcp_check() runs after every call
 * into the stack. Format and semantics: docs/tcp-scripts.md.
 *
 * Output: "ok NAME" or "FAIL NAME line N: ..." per script. Exit status 0
 * when every script passed (with --expect-fail: when every script failed,
 * at LINE if given), 1 otherwise, 2 on a syntax or set-up error.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpscript_rt.h"

/* rt_fail - record the first failure of the script */
void rt_fail(struct rt *r, const char *fmt, ...)
{
	va_list ap;

	if (r->failed)
		return;
	r->failed = true;
	r->fail_line = r->line ? r->line->lineno : 0;
	va_start(ap, fmt);
	vsnprintf(r->fail, sizeof(r->fail), fmt, ap);
	va_end(ap);
}

double rt_secs(const struct rt *r, uint64_t t)
{
	(void)r;
	return (double)(t - T0_US) / 1e6;
}

/* --- stack set-up --------------------------------------------------------- */

/* set_config - one "key=value" of a config line */
static int set_config(struct rt *r, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char key[64];
	unsigned long long v;
	char *end;
	struct net_config *c = &r->cfg;

	if (!eq || (size_t)(eq - kv) >= sizeof(key))
		return -1;
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	if (!strcmp(eq + 1, "true") || !strcmp(eq + 1, "on"))
		v = 1;
	else if (!strcmp(eq + 1, "false") || !strcmp(eq + 1, "off"))
		v = 0;
	else {
		errno = 0;
		v = strtoull(eq + 1, &end, 0);
		if (errno || *end || end == eq + 1)
			return -1;
	}
#define K(name, field) if (!strcmp(key, name)) { c->field = v; return 0; }
	if (!strcmp(key, "mss")) {
		c->mtu = (uint16_t)(v + 40);
		return 0;
	}
	K("mtu", mtu) K("rcvbuf", rcvbuf) K("sndbuf", sndbuf)
	K("syn_backlog", syn_backlog) K("conn_low_water", conn_low_water)
	K("max_conns", max_conns) K("timewait_max", timewait_max)
	K("max_listeners", max_listeners) K("arp_entries", arp_entries)
	K("arp_pending", arp_pending) K("msl_ms", msl_ms)
	K("fin_wait2_ms", fin_wait2_ms) K("delack_ms", delack_ms)
	K("rto_min_ms", rto_min_ms) K("rto_max_ms", rto_max_ms)
	K("rto_init_ms", rto_init_ms) K("syn_retries", syn_retries)
	K("data_retries", data_retries) K("arp_timeout_ms", arp_timeout_ms)
	K("tx_ip_csum_offload", tx_ip_csum_offload)
	K("tx_tcp_csum_offload", tx_tcp_csum_offload)
#undef K
	if (!strcmp(key, "peer_isn")) { r->peer_isn = (uint32_t)v; return 0; }
	if (!strcmp(key, "peer_win") && v <= 65535) {
		r->peer_win = (uint16_t)v;
		return 0;
	}
	if (!strcmp(key, "peer_port") && v && v <= 65535) {
		r->def_peer_port = (uint16_t)v;
		return 0;
	}
	if (!strcmp(key, "local_port") && v && v <= 65535) {
		r->def_stack_port = (uint16_t)v;
		return 0;
	}
	if (!strcmp(key, "active_port") && v && v <= 65535) {
		r->active_port = (uint16_t)v;
		return 0;
	}
	if (!strcmp(key, "tolerance_ms")) {
		r->tol_us = v * 1000;
		return 0;
	}
	if (!strcmp(key, "secret")) { /* seed for the 32-byte secret */
		for (int i = 0; i < 32; i++)
			c->secret[i] = (uint8_t)((v >> (8 * (i % 8))) + i);
		return 0;
	}
	return -1;
}

/* start - create the stack and let the peer introduce itself by ARP */
static int start(struct rt *r)
{
	struct net_io io = rt_fake_io;
	uint8_t f[60];
	struct net_rx rx = { .data = f, .len = 60 };

	io.opaque = r;
	r->now = T0_US;
	r->s = net_stack_create(&r->cfg, &io, r->now);
	if (!r->s)
		return -1;
	r->started = true;
	/* who-has 192.0.2.2 tell 192.0.2.1: the stack learns the peer */
	memset(f, 0, sizeof(f));
	memset(f, 0xff, 6);
	memcpy(f + 6, r->peer_mac, 6);
	f[12] = 0x08; f[13] = 0x06;
	f[15] = 1; f[16] = 0x08; f[18] = 6; f[19] = 4; f[21] = 1;
	memcpy(f + 22, r->peer_mac, 6);
	memcpy(f + 28, "\xc0\x00\x02\x01", 4);
	memcpy(f + 38, "\xc0\x00\x02\x02", 4);
	net_input_burst(r->s, &rx, 1, r->now);
	rt_after_call(r);
	rt_poll_at(r, r->now);
	return 0;
}

/* --- '<' and '>' lines ------------------------------------------------ */

static void run_in(struct rt *r, const struct ts_line *l)
{
	struct flow *fl = &r->flows[rt_cur_flow(r, l->seg.peer_port)];
	struct ts_seg sg = l->seg;
	static uint8_t buf[70000];
	struct net_rx rx;
	int n;

	if (!sg.has_win)
		sg.win = r->peer_win;
	if ((sg.flags & (TS_SYN | TS_ACK)) == TS_SYN)
		fl->isn_locked = false; /* peer starts a new connection */
	n = ts_build(&fl->fc, &sg, r->ip_id++, buf, sizeof(buf));
	if (n < 0) {
		rt_fail(r, "cannot build this segment (options > 40 bytes?)");
		return;
	}
	if (sg.len) { /* remember what the peer sent, for recv checks */
		uint32_t seq = sg.abs ? sg.seq : fl->fc.peer_isn + sg.seq;
		uint32_t off = seq - fl->fc.peer_isn +
			       ((sg.flags & TS_SYN) ? 1u : 0u) - 1u;
		const uint8_t *pl = buf + n - sg.len;

		if (off < (64u << 20))
			rt_buf_put(&fl->peer_rx, &fl->peer_rx_len,
				&fl->peer_rx_cap, off, pl, sg.len);
	}
	if (r->verbose)
		printf("%9.6f <  %s\n", rt_secs(r, r->now), l->text);
	rx.data = buf;
	rx.len = (uint16_t)n;
	rx.flags = 0;
	net_input_burst(r->s, &rx, 1, r->now);
	rt_after_call(r);
	rt_poll_at(r, r->now);
}

static void run_out(struct rt *r, const struct ts_line *l, uint64_t t,
		    uint64_t tol)
{
	struct flow *fl = &r->flows[rt_cur_flow(r, l->seg.peer_port)];
	struct ts_frame fr;
	struct frame f;
	char why[256], got[512];

	rt_advance(r, t + tol, true);
	if (r->failed)
		return;
	if (r->qn == 0) {
		rt_fail(r, "expected %s\n    got nothing by %.6f", l->text,
		     rt_secs(r, t + tol));
		return;
	}
	f = rt_pop_frame(r);
	rt_describe(r, &f, got, sizeof(got));
	if (f.t + tol < t) {
		rt_fail(r, "expected %s at %.6f\n    got it early, at %.6f: %s",
		     l->text, rt_secs(r, t), rt_secs(r, f.t), got);
		goto out;
	}
	if (ts_decode(f.data, f.len, &fr, why, sizeof(why)) < 0) {
		rt_fail(r, "expected %s\n    got %s", l->text, why);
		goto out;
	}
	if (memcmp(f.data, r->peer_mac, 6) != 0 ||
	    memcmp(f.data + 6, r->stack_mac, 6) != 0 ||
	    fr.saddr != STACK_IP || fr.daddr != PEER_IP) {
		rt_fail(r, "expected %s\n    got a frame with wrong MAC/IP "
		     "addresses: %s", l->text, got);
		goto out;
	}
	if ((l->seg.flags & TS_SYN) && !fl->isn_locked) {
		fl->fc.stack_isn_known = false; /* new connection: relearn */
		fl->fc.ts_known = false;
	}
	if (ts_match(&fl->fc, &l->seg, &fr, why, sizeof(why)) < 0) {
		rt_describe(r, &f, got, sizeof(got));
		rt_fail(r, "expected %s\n    got      %s\n    (%s)", l->text, got,
		     why);
		goto out;
	}
	if (l->seg.flags & TS_SYN)
		fl->isn_locked = true;
	if (r->verbose) {
		rt_describe(r, &f, got, sizeof(got));
		printf("%9.6f  > %s\n", rt_secs(r, f.t), got);
	}
	if (fr.len && !l->seg.payload) {
		uint32_t off = fr.seq - fl->fc.stack_isn +
			       ((fr.flags & TS_SYN) ? 1u : 0u) - 1u;

		if ((uint64_t)off + fr.len > fl->app_tx_len ||
		    memcmp(fl->app_tx + off, fr.payload, fr.len) != 0)
			rt_fail(r, "expected %s\n    got %s\n    (payload is not "
			     "what the application sent at stream offset %u)",
			     l->text, got, off);
	}
out:
	free(f.data);
}

/* --- script driver ------------------------------------------------------- */

static void rt_init(struct rt *r, const char *name, bool verbose)
{
	memset(r, 0, sizeof(*r));
	r->name = name;
	r->verbose = verbose;
	net_config_defaults(&r->cfg);
	r->cfg.ip = STACK_IP;
	r->cfg.prefix_len = 24;
	r->cfg.max_conns = 256;      /* small pools: fast set-up */
	r->cfg.timewait_max = 256;
	for (int i = 0; i < 32; i++)
		r->cfg.secret[i] = (uint8_t)(0x5a + i * 7);
	memcpy(r->stack_mac, "\x02\x00\x00\x00\x00\x02", 6);
	memcpy(r->peer_mac, "\x02\x00\x00\x00\x00\x01", 6);
	memcpy(r->cfg.mac, r->stack_mac, 6);
	r->cur_sock = -1;
	r->def_stack_port = 8080;
	r->def_peer_port = 40000;
	r->active_port = 50000;
	r->peer_isn = 1000000;
	r->peer_win = 65535;
	r->tol_us = 5000;
}

static void rt_free(struct rt *r)
{
	if (r->s) {
		r->destroying = true;
		net_stack_destroy(r->s, r->now);
		r->s = NULL;
	}
	while (r->qn > 0)
		free(rt_pop_frame(r).data);
	free(r->q);
	for (int i = 0; i < r->nflows; i++) {
		free(r->flows[i].app_tx);
		free(r->flows[i].peer_rx);
	}
}

/* run_script - 0 pass, 1 fail (r->fail says why), 2 set-up error */
static int run_script(struct rt *r, const struct ts_script *sc, char *err,
		      size_t errlen)
{
	for (int i = 0; i < sc->n && !r->failed; i++) {
		const struct ts_line *l = &sc->lines[i];
		uint64_t t = T0_US + l->t_us;
		uint64_t tol = l->has_tol ? l->tol_us : r->tol_us;

		r->line = l;
		if (l->kind == TS_CALL && !strcmp(l->argv[0], "config") &&
		    !r->started) {
			for (int k = 1; k < l->argc; k++)
				if (set_config(r, l->argv[k]) < 0) {
					snprintf(err, errlen, "line %d: bad config "
						 "'%s'", l->lineno, l->argv[k]);
					return 2;
				}
			continue;
		}
		if (!r->started && start(r) < 0) {
			snprintf(err, errlen, "net_stack_create failed (bad "
				 "config, or TCP not built yet)");
			return 2;
		}
		if (l->kind == TS_OUT) {
			run_out(r, l, t, tol);
			continue;
		}
		rt_advance(r, t, false);
		rt_check_unexpected(r, t, tol, false);
		if (r->failed)
			break;
		if (r->verbose && l->kind == TS_CALL)
			printf("%9.6f    %s\n", rt_secs(r, r->now), l->text);
		if (l->kind == TS_IN)
			run_in(r, l);
		else
			rt_run_call(r, l);
	}
	r->line = sc->n ? &sc->lines[sc->n - 1] : NULL;
	if (r->started && !r->failed)
		rt_check_unexpected(r, r->now, 0, true);
	if (r->started) {
		r->destroying = true;
		net_stack_destroy(r->s, r->now);
		r->s = NULL;
		if (r->tx_outstanding != 0 && !r->failed)
			rt_fail(r, "%ld tx buffers never returned to the glue",
			     r->tx_outstanding);
	}
	return r->failed ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: tcpscript [-v] [--expect-fail[=LINE]] "
		"SCRIPT...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	bool verbose = false, expect_fail = false;
	int expect_line = 0, status = 0, nscripts = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-v")) {
			verbose = true;
		} else if (!strncmp(a, "--expect-fail", 13)) {
			expect_fail = true;
			if (a[13] == '=')
				expect_line = atoi(a + 14);
			else if (a[13])
				usage();
		} else if (a[0] == '-') {
			usage();
		} else {
			nscripts++;
		}
	}
	if (!nscripts)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		struct ts_script sc;
		struct rt *r;
		char err[512];
		const char *name;
		int rc;

		if (argv[i][0] == '-')
			continue;
		name = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
		if (ts_parse_file(argv[i], &sc, err, sizeof(err)) < 0) {
			printf("ERROR %s: %s\n", name, err);
			status = 2;
			continue;
		}
		r = malloc(sizeof(*r));
		if (!r)
			abort();
		rt_init(r, name, verbose);
		err[0] = '\0';
		rc = run_script(r, &sc, err, sizeof(err));
		if (rc == 2) {
			printf("ERROR %s: %s\n", name, err);
			status = 2;
		} else if (rc == 1 && expect_fail &&
			   (!expect_line || expect_line == r->fail_line)) {
			printf("ok %s (failed as expected at line %d: %s)\n",
			       name, r->fail_line, r->fail);
		} else if (rc == 1) {
			printf("FAIL %s line %d: %s\n", name, r->fail_line,
			       r->fail);
			if (status == 0)
				status = 1;
		} else if (expect_fail) {
			printf("FAIL %s: passed, but it was expected to fail%s\n",
			       name, expect_line ? " at a given line" : "");
			if (status == 0)
				status = 1;
		} else {
			printf("ok %s\n", name);
		}
		rt_free(r);
		free(r);
		ts_script_free(&sc);
	}
	return status;
}
