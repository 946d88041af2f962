/*
 * metrics_test - the Prometheus side of control/metrics.c: the text
 * exposition of a hand-made sample (format 0.0.4: HELP and TYPE once per
 * family, samples grouped under their family, names and label values as
 * the format wants them, counters ending in _total), the label escaper,
 * the listen address parser, a sample taken through a scheduler test
 * double (largest destinations kept, in order), and the HTTP endpoint on
 * a real loopback socket (200 / 404 / 405 / 400, bounded request,
 * connection closed after the answer).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctlcmd.h"
#include "metrics.h"

/* ---- the scheduler test double (what metrics.c calls) ---- */

struct dsched { int unused; };

static struct {
	struct dsched s;
	struct dsched_status st;
	struct dsched_dest_info d[4];
	unsigned nd;
} fk;

const char *dsched_mstate_name(enum dsched_mstate s)
{
	static const char *const n[] = { "ready", "active", "deferred",
					 "held", "hold", "unknown" };

	return (unsigned)s <= DSCHED_M_UNKNOWN ? n[s] : "?";
}

void dsched_status(const struct dsched *s, struct dsched_status *st)
{
	(void)s;
	*st = fk.st;
}

void dsched_links(const struct dsched *s, dsched_dest_cb cb, void *arg)
{
	(void)s;
	for (unsigned i = 0; i < fk.nd; i++)
		if (cb(arg, &fk.d[i]))
			return;
}

/* ---- helpers ---- */

static char *render(const struct metrics_sample *s)
{
	char *out = NULL;
	size_t n = 0;

	assert_int_equal(metrics_render(s, &out, &n), 0);
	assert_non_null(out);
	assert_int_equal(strlen(out), n);
	return out;
}

static void has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	fail_msg("no line \"%s\" in:\n%.3000s", line, text);
}

static void no_substr(const char *text, const char *s)
{
	if (strstr(text, s))
		fail_msg("\"%s\" should not be in the output", s);
}

/* check_format - every line is a HELP, a TYPE or a sample of the family
 * whose TYPE came last; every family of metrics_families() appears once,
 * in order; names and types follow the conventions */
static void check_format(const char *text)
{
	const char *const *fams = metrics_families();
	regex_t sample, name;
	char fam[128] = "", type[16] = "";
	unsigned nf = 0, nfams = 0;
	char *copy = strdup(text), *save = NULL;

	assert_non_null(copy);
	while (fams[nfams])
		nfams++;
	assert_true(nfams > 50);
	/* name{label="v",...} value: label values escaped */
	assert_int_equal(regcomp(&sample, "^(sluice_[a-z0-9_]+)"
		"(\\{[a-z_]+=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\""
		"(,[a-z_]+=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\")*\\})? "
		"-?[0-9]+(\\.[0-9]+)?$", REG_EXTENDED), 0);
	assert_int_equal(regcomp(&name, "^sluice_[a-z0-9_]+$",
				 REG_EXTENDED | REG_NOSUB), 0);
	for (char *l = strtok_r(copy, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		regmatch_t m[2];
		char n[128], t[16];

		if (strncmp(l, "# HELP ", 7) == 0) {
			assert_true(nf < nfams);
			assert_int_equal(sscanf(l + 7, "%127s", n), 1);
			assert_string_equal(n, fams[nf]);
			assert_int_equal(regexec(&name, n, 0, NULL, 0), 0);
			assert_true(strlen(l) > 8 + strlen(n));  /* help text */
			continue;
		}
		if (strncmp(l, "# TYPE ", 7) == 0) {
			assert_int_equal(sscanf(l + 7, "%127s %15s", n, t), 2);
			assert_string_equal(n, fams[nf]);
			nf++;
			snprintf(fam, sizeof(fam), "%s", n);
			snprintf(type, sizeof(type), "%s", t);
			size_t k = strlen(n);
			bool total = k > 6 && !strcmp(n + k - 6, "_total");

			if (!strcmp(t, "counter"))
				assert_true(total);
			else if (!strcmp(t, "gauge") || !strcmp(t, "summary"))
				assert_false(total);
			else
				fail_msg("type %s of %s", t, n);
			continue;
		}
		if (regexec(&sample, l, 2, m, 0) != 0)
			fail_msg("not a sample line: \"%s\"", l);
		snprintf(n, sizeof(n), "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
			 l);
		if (!strcmp(type, "summary")) {
			char a[140], b[140];

			snprintf(a, sizeof(a), "%s_sum", fam);
			snprintf(b, sizeof(b), "%s_count", fam);
			if (strcmp(n, a) && strcmp(n, b))
				fail_msg("%s under summary %s", n, fam);
		} else if (strcmp(n, fam)) {
			fail_msg("sample %s under family %s", n, fam);
		}
	}
	assert_int_equal(nf, nfams);
	regfree(&sample);
	regfree(&name);
	free(copy);
}

/* ---- cases ---- */

/* nothing running: every family still has HELP and TYPE, no samples
 * except uptime */
static void test_empty(void **state)
{
	struct metrics_sample s;
	char *t;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.uptime_s = 42;
	t = render(&s);
	check_format(t);
	has_line(t, "# TYPE sluice_rx_packets_total counter");
	has_line(t, "# TYPE sluice_queue_messages gauge");
	has_line(t, "# TYPE sluice_smtp_commit_seconds summary");
	has_line(t, "sluice_uptime_seconds 42");
	no_substr(t, "\nsluice_rx_packets_total");
	no_substr(t, "\nsluice_queue_messages ");
	/* no delivery yet: no latency sample (0 would be a false figure) */
	no_substr(t, "\nsluice_delivery_latency_p50_seconds ");
	free(t);
}

static struct metrics_sample full;

static void fill(void)
{
	static struct metrics_io io[2];
	static struct metrics_dest dest[2];

	memset(&full, 0, sizeof(full));
	memset(io, 0, sizeof(io));
	memset(dest, 0, sizeof(dest));
	full.unix_us = 1700000100000000ull;
	full.uptime_s = 3600;
	full.n_io = 2;
	full.io = io;
	io[0].lcore_id = 1;
	io[0].state = IOLCORE_RUNNING;
	io[0].delivery = true;
	io[0].snap.glue.rx_frames = 100;
	io[0].snap.glue.tx_frames = 90;
	io[0].snap.glue.tx_drop = 3;
	io[0].snap.n_net = 3;
	io[0].snap.net[0] = (struct net_counter){ "tcp.conns.established", 7 };
	io[0].snap.net[1] = (struct net_counter){ "ip.frag_drop", 2 };
	io[0].snap.net[2] = (struct net_counter){ "tcp.accepts", 55 };
	io[0].snap.smtpd.replies[2] = 40;
	io[0].snap.smtpd.replies[4] = 6;
	io[0].snap.smtpd.queued = 12;
	io[0].snap.smtpd.push_ring_full = 4;
	io[0].snap.smtpd.eod_to_250_us_sum = 1500000;
	io[0].snap.smtpd.eod_to_250_n = 3;
	io[0].snap.deliver.rcpt_2xx = 9;
	io[0].snap.deliver.conns = 2;
	io[1].lcore_id = 3;
	io[1].state = IOLCORE_FAILED;
	io[1].snap.smtpd.replies[4] = 7;
	full.n_wk = 1;
	full.wk[0].lcore_id = 1;
	full.wk[0].st.taken[5] = 11;
	full.wk[0].st.too_big = 1;
	full.have_rings = true;
	full.ring_prio[2] = 3;
	full.ring_djob[0] = 4;
	full.ring_dres = 1;
	full.have_writer = true;
	full.writer.batches = 8;
	full.writer.commit_ns = 2500000000ull;
	full.have_sched = true;
	full.sched.messages = 5;
	full.sched.by_prio[0] = 5;
	full.sched.by_state[DSCHED_M_HELD] = 4;
	full.sched.by_state[DSCHED_M_READY] = 1;
	full.sched.destinations = 3;
	full.sched.links_closed = 1;
	full.sched.delivered = 20;
	full.sched.failed = 2;
	full.sched.bounces = 1;
	full.sched.delivered_per_s = 1.5;
	full.sched.deliver_p50_us = 1200;
	full.sched.deliver_p99_us = 2500000;
	full.dest_total = 3;
	full.n_dest = 2;
	full.dest_max = 2;
	full.dest = dest;
	snprintf(dest[0].name, sizeof(dest[0].name), "relay.test");
	dest[0].link = STOR_LINK_CLOSED;
	dest[0].queued = 4;
	dest[0].held = 4;
	dest[0].oldest_us = full.unix_us - 90000000ull;
	dest[0].attempts = 6;
	snprintf(dest[0].last_error, sizeof(dest[0].last_error), "451 x");
	snprintf(dest[1].name, sizeof(dest[1].name), "we\"ird\\x\ny");
	dest[1].link = STOR_LINK_OPEN;
	dest[1].queued = 1;
	dest[1].delivered = 20;
	full.have_storage = true;
	full.storage_used = 4096;
	full.storage_full = true;
}

static void test_full(void **state)
{
	char *t;

	(void)state;
	fill();
	t = render(&full);
	check_format(t);
	has_line(t, "sluice_uptime_seconds 3600");
	has_line(t, "sluice_io_lcore_running{lcore=\"1\"} 1");
	has_line(t, "sluice_io_lcore_running{lcore=\"3\"} 0");
	has_line(t, "sluice_rx_packets_total{lcore=\"1\"} 100");
	has_line(t, "sluice_tx_packets_total{lcore=\"1\"} 90");
	has_line(t, "sluice_packet_drops_total{lcore=\"1\",cause=\"tx_full\"} 3");
	has_line(t, "sluice_packet_drops_total{lcore=\"1\",cause=\"ip_fragment\"} 2");
	has_line(t, "sluice_packet_drops_total{lcore=\"3\",cause=\"ip_fragment\"} 0");
	has_line(t, "sluice_tcp_connections{lcore=\"1\",state=\"established\"} 7");
	has_line(t, "sluice_tcp_connections{lcore=\"1\",state=\"time_wait\"} 0");
	has_line(t, "sluice_tcp_accepts_total{lcore=\"1\"} 55");
	has_line(t, "sluice_smtp_replies_total{lcore=\"1\",class=\"2xx\"} 40");
	has_line(t, "sluice_smtp_replies_total{lcore=\"3\",class=\"4xx\"} 7");
	has_line(t, "sluice_smtp_messages_accepted_total{lcore=\"1\"} 12");
	has_line(t, "sluice_smtp_pushback_total{lcore=\"1\",cause=\"ring_full\"} 4");
	has_line(t, "sluice_smtp_commit_seconds_sum{lcore=\"1\"} 1.500000");
	has_line(t, "sluice_smtp_commit_seconds_count{lcore=\"1\"} 3");
	/* delivery counters only where delivery runs */
	has_line(t, "sluice_deliver_recipients_total{lcore=\"1\",class=\"2xx\"} 9");
	has_line(t, "sluice_deliver_connections_open{lcore=\"1\"} 2");
	no_substr(t, "sluice_deliver_connections_open{lcore=\"3\"}");
	has_line(t, "sluice_delivery_job_ring_depth{lcore=\"1\"} 4");
	has_line(t, "sluice_worker_taken_total{worker=\"0\",priority=\"5\"} 11");
	has_line(t, "sluice_worker_refused_total{worker=\"0\",cause=\"too_big\"} 1");
	has_line(t, "sluice_priority_ring_depth{priority=\"2\"} 3");
	has_line(t, "sluice_delivery_result_ring_depth 1");
	has_line(t, "sluice_writer_commits_total 8");
	has_line(t, "sluice_writer_commit_seconds_total 2.500000");
	has_line(t, "sluice_queue_messages 5");
	has_line(t, "sluice_queue_messages_by_priority{priority=\"0\"} 5");
	has_line(t, "sluice_queue_messages_by_state{state=\"held\"} 4");
	has_line(t, "sluice_links{state=\"open\"} 2");
	has_line(t, "sluice_links{state=\"closed\"} 1");
	has_line(t, "sluice_delivery_recipients_total{result=\"delivered\"} 20");
	has_line(t, "sluice_delivery_recipients_total{result=\"failed\"} 2");
	has_line(t, "sluice_notices_total{type=\"bounce\"} 1");
	has_line(t, "sluice_delivered_per_second 1.500000");
	has_line(t, "sluice_delivery_latency_p50_seconds 0.001200");
	has_line(t, "sluice_delivery_latency_p99_seconds 2.500000");
	has_line(t, "sluice_destinations 3");
	has_line(t, "sluice_destination_queued_messages{dest=\"relay.test\"} 4");
	has_line(t, "sluice_destination_held_messages{dest=\"relay.test\"} 4");
	has_line(t, "sluice_destination_oldest_age_seconds{dest=\"relay.test\"} 90.000000");
	has_line(t, "sluice_destination_link{dest=\"relay.test\",state=\"closed\"} 1");
	has_line(t, "sluice_destination_link{dest=\"relay.test\",state=\"open\"} 0");
	has_line(t, "sluice_destination_attempts_total{dest=\"relay.test\"} 6");
	/* label values escaped: \" \\ \n */
	has_line(t, "sluice_destination_queued_messages{dest=\"we\\\"ird\\\\x\\ny\"} 1");
	has_line(t, "sluice_destination_recipients_total{dest=\"we\\\"ird\\\\x\\ny\",result=\"delivered\"} 20");
	has_line(t, "sluice_storage_used_bytes 4096");
	has_line(t, "sluice_storage_full 1");
	free(t);
}

static void test_escape(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(metrics_label_escape(out, sizeof(out), "a.b-c"), 5);
	assert_string_equal(out, "a.b-c");
	assert_int_equal(metrics_label_escape(out, sizeof(out), "q\"b\\n\nx"),
			 10);
	assert_string_equal(out, "q\\\"b\\\\n\\nx");
	/* cut to the buffer, still terminated; the length says what is
	 * needed */
	assert_int_equal(metrics_label_escape(out, 4, "\"\"\""), 6);
	assert_string_equal(out, "\\\"\\");
	assert_int_equal(metrics_label_escape(NULL, 0, "ab\""), 4);
}

static void test_parse_listen(void **state)
{
	uint32_t ip;
	uint16_t port;

	(void)state;
	assert_int_equal(metrics_parse_listen("127.0.0.1:9464", &ip, &port), 0);
	assert_int_equal(ip, 0x7f000001u);
	assert_int_equal(port, 9464);
	assert_int_equal(metrics_parse_listen("0.0.0.0:1", &ip, &port), 0);
	assert_int_equal(port, 1);
	static const char *const bad[] = {
		"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
		"127.0.0.1:65536", "127.0.0.1:+80", "127.0.0.1:80x",
		"localhost:80", "1.2.3:80", ":80", "[::1]:80",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (metrics_parse_listen(bad[i], &ip, &port) == 0)
			fail_msg("\"%s\" accepted", bad[i]);
}

/* a sample through the double: status copied, the dest_max largest
 * queues kept, largest first; no io lcores, no queue */
static void test_sample(void **state)
{
	struct ctlcmd_env e;
	struct metrics_sample s;
	static const struct {
		const char *n;
		uint64_t q;
	} d[4] = { { "a.test", 2 }, { "b.test", 9 }, { "c.test", 0 },
		   { "d.test", 5 } };

	(void)state;
	memset(&e, 0, sizeof(e));
	memset(&fk, 0, sizeof(fk));
	e.sched = &fk.s;
	e.started_us = 1;
	fk.st.messages = 16;
	fk.st.destinations = 4;
	fk.nd = 4;
	for (unsigned i = 0; i < 4; i++) {
		fk.d[i].name = d[i].n;
		fk.d[i].queued = d[i].q;
		fk.d[i].last_error = i == 1 ? "421 busy" : "";
	}
	assert_int_equal(metrics_sample_take(&e, &s, 2), 0);
	assert_true(s.have_sched);
	assert_false(s.have_rings);
	assert_false(s.have_storage);
	assert_int_equal(s.sched.messages, 16);
	assert_int_equal(s.dest_total, 4);
	assert_int_equal(s.n_dest, 2);
	assert_string_equal(s.dest[0].name, "b.test");
	assert_string_equal(s.dest[0].last_error, "421 busy");
	assert_string_equal(s.dest[1].name, "d.test");
	assert_true(s.uptime_s > 1000000);
	metrics_sample_free(&s);
	/* all of them when there is room; ties keep dsched's (name) order */
	fk.d[2].queued = 9;
	assert_int_equal(metrics_sample_take(&e, &s, 10), 0);
	assert_int_equal(s.n_dest, 4);
	assert_string_equal(s.dest[0].name, "b.test");
	assert_string_equal(s.dest[1].name, "c.test");
	assert_string_equal(s.dest[2].name, "d.test");
	assert_string_equal(s.dest[3].name, "a.test");
	metrics_sample_free(&s);
	/* dest_max 0: only the count */
	assert_int_equal(metrics_sample_take(&e, &s, 0), 0);
	assert_int_equal(s.n_dest, 0);
	assert_int_equal(s.dest_total, 4);
	metrics_sample_free(&s);
}

/* ---- the endpoint over loopback ---- */

static struct metrics *srv;
static struct ctlcmd_env srv_env;
static uint16_t srv_port;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static int fcntl_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* exchange - send req (n bytes), serve, read until the server closes;
 * returns the answer (static) */
static const char *exchange(const char *req, size_t n)
{
	static char buf[1 << 20];
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(srv_port),
				  .sin_addr.s_addr = htonl(0x7f000001u) };
	size_t got = 0, off = 0;
	uint64_t end = now_us() + 5000000;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(fcntl_nonblock(fd), 0);
	for (;;) {
		ssize_t r;

		assert_true(now_us() < end);
		metrics_poll(srv, now_us());
		if (off < n) {
			r = send(fd, req + off, n - off, MSG_NOSIGNAL);
			if (r > 0)
				off += (size_t)r;
			else if (r < 0 && errno == EPIPE)
				off = n;       /* answered and closed already */
		}
		r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (r == 0)
			break;
		if (r < 0 && errno == ECONNRESET)
			break;
		if (r > 0)
			got += (size_t)r;
		else
			poll(NULL, 0, 1);
	}
	close(fd);
	buf[got] = 0;
	return buf;
}

static int srv_setup(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(0x7f000001u) };
	socklen_t sl = sizeof(sa);
	char addr[32], err[256];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	/* a free port: bind to 0, read it back, close */
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	srv_port = ntohs(sa.sin_port);
	close(fd);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", srv_port);
	memset(&srv_env, 0, sizeof(srv_env));
	if (metrics_open(addr, &srv_env, &srv, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int srv_teardown(void **state)
{
	(void)state;
	metrics_close(srv);
	return 0;
}

static void test_http(void **state)
{
	const char *r;
	char big[METRICS_REQ_MAX + 100];
	char addr[32], err[256];
	struct metrics *dup;

	(void)state;
	r = exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 35);
	assert_non_null(strstr(r, "HTTP/1.0 200 OK\r\n"));
	assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4"));
	assert_non_null(strstr(r, "Connection: close\r\n"));
	const char *body = strstr(r, "\r\n\r\n");

	assert_non_null(body);
	body += 4;
	unsigned long clen = strtoul(strstr(r, "Content-Length: ") + 16,
				     NULL, 10);

	assert_int_equal(clen, strlen(body));
	check_format(body);
	/* query strings are ignored, bare LF line ends are fine */
	r = exchange("GET /metrics?x=1 HTTP/1.0\n\n", 27);
	assert_non_null(strstr(r, "HTTP/1.0 200 OK\r\n"));
	r = exchange("GET / HTTP/1.0\r\n\r\n", 18);
	assert_non_null(strstr(r, "HTTP/1.0 404 Not Found\r\n"));
	r = exchange("POST /metrics HTTP/1.0\r\n\r\n", 26);
	assert_non_null(strstr(r, "HTTP/1.0 405 Method Not Allowed\r\n"));
	assert_non_null(strstr(r, "Allow: GET\r\n"));
	r = exchange("hello\r\n\r\n", 9);
	assert_non_null(strstr(r, "HTTP/1.0 400 Bad Request\r\n"));
	/* a head that never ends: refused at METRICS_REQ_MAX */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	r = exchange(big, sizeof(big));
	assert_non_null(strstr(r, "HTTP/1.0 400 Bad Request\r\n"));
	assert_non_null(strstr(r, "request too large"));
	/* the port is taken: open fails and says why */
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", srv_port);
	assert_int_equal(metrics_open(addr, &srv_env, &dup, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "Address already in use"));
	assert_int_equal(metrics_open("nonsense", &srv_env, &dup, err,
				      sizeof(err)), -1);
	assert_non_null(strstr(err, "not IPv4:PORT"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_parse_listen),
		cmocka_unit_test(test_sample),
		cmocka_unit_test_setup_teardown(test_http, srv_setup,
						srv_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
