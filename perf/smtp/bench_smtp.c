/*
 * bench_smtp.c - `perf/bench smtp`: SMTP engine throughput on one core,
 * no I/O (everything in memory, one thread).
 *
 *   body-scan      smtp_body_scan alone over a DATA body (copy + dot
 *                  unstuffing + line-length check + end detection)
 *   body-engine    the same body through smtp_server_input in DATA state
 *                  (incl. Received header and end-of-data verdict)
 *   body-bdat      a text BDAT chunk through the engine (line checks)
 *   cmds-pipelined MAIL/RCPT/RSET pipelined, auto verdicts, output drained
 *   cmds-verdicts  the same with every MAIL/RCPT verdict answered by the
 *                  caller (park/resume path)
 * Prints a table, then one "summary:" line. Options: -s MiB (body size,
 * default 64), -r rounds (default 5), -n commands (default 3000000).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smtp_body.h"
#include "smtp_server.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* make_body - 76-octet text lines, every 40th starting with a stuffed
 * dot, ending with ".CRLF" */
static uint8_t *make_body(size_t want, size_t *len)
{
	uint8_t *b = malloc(want + 128);
	size_t n = 0, line = 0;

	while (n + 80 < want) {
		size_t j = 0;

		if (line++ % 40 == 0) {
			b[n++] = '.';
			b[n++] = '.';
			j = 2;
		}
		for (; j < 76; j++)
			b[n++] = (uint8_t)('a' + (j * 7 + line) % 26);
		b[n++] = '\r';
		b[n++] = '\n';
	}
	memcpy(b + n, ".\r\n", 3);
	*len = n + 3;
	return b;
}

/* unstuff_ref - naive RFC 5321 4.5.2 reference: drop the leading dot of
 * every line and the final ".CRLF"; returns the output length */
static size_t unstuff_ref(const uint8_t *in, size_t len, uint8_t *out)
{
	size_t i = 0, o = 0;
	int bol = 1;

	while (i < len) {
		if (bol && in[i] == '.') {
			if (i + 2 < len && in[i + 1] == '\r' && in[i + 2] == '\n'
			    && i + 3 == len)
				break;          /* the terminating ".CRLF" */
			i++;
		}
		bol = in[i] == '\n';
		out[o++] = in[i++];
	}
	return o;
}

static const char *cpu_model(void)
{
	static char m[256] = "unknown";
	char l[256];
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(l, sizeof(l), f))
		if (!strncmp(l, "model name", 10)) {
			char *p = strchr(l, ':');

			snprintf(m, sizeof(m), "%s", p ? p + 2 : l);
			m[strcspn(m, "\n")] = '\0';
			break;
		}
	if (f)
		fclose(f);
	return m;
}

#define PIECE 65536	/* input handed over in TCP-ring-sized pieces */

static double bench_scan(const uint8_t *b, size_t len, int rounds)
{
	struct smtp_body body;
	double best = 0;
	int r;

	smtp_body_init(&body, 2048, len + 1, 1000, realloc, free);
	for (r = 0; r < rounds; r++) {
		double t0 = now_s(), dt;
		size_t i = 0;
		int done = 0;

		smtp_body_start(&body, SMTP_BODY_MODE_DATA);
		while (i < len && !done) {
			size_t k = len - i < PIECE ? len - i : PIECE;

			i += smtp_body_scan(&body, b + i, k, &done);
		}
		dt = now_s() - t0;
		if (!done || body.flags) {
			fprintf(stderr, "bench: scan did not end cleanly\n");
			exit(1);
		}
		if (r == 0) {           /* untimed: output equals the reference */
			uint8_t *ref = malloc(len);
			size_t rl = ref ? unstuff_ref(b, len, ref) : 0;

			if (!ref || rl != body.len ||
			    memcmp(ref, body.buf + body.head, rl) != 0) {
				fprintf(stderr, "bench: scan output differs from "
					"the reference (%zu vs %zu bytes)\n",
					body.len, rl);
				exit(1);
			}
			free(ref);
		}
		if (len / dt / 1e9 > best)
			best = (double)len / dt / 1e9;
	}
	smtp_body_free(&body);
	return best;
}

static struct smtp_server *session(unsigned verdicts, uint64_t max)
{
	struct smtp_server_cfg cfg;
	struct smtp_peer peer = { .addr = "192.0.2.1" };
	struct smtp_server *s;
	const uint8_t *p;
	size_t n;

	smtp_server_cfg_defaults(&cfg);
	cfg.hostname = "bench.test";
	cfg.verdicts = verdicts;
	cfg.max_msg_size = max;
	cfg.max_txns = 1u << 30;
	cfg.max_text_line = 1000;
	cfg.out_cap = 65536;
	s = smtp_server_new(&cfg, &peer, 0);
	if (!s)
		exit(1);
	smtp_server_input(s, "EHLO c.example\r\n", 16, 0);
	n = smtp_server_output(s, &p);
	smtp_server_output_consume(s, n);
	return s;
}

static void feed_all(struct smtp_server *s, const uint8_t *b, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t k = len - i < PIECE ? len - i : PIECE;
		ssize_t r = smtp_server_input(s, b + i, k, 1);
		const uint8_t *p;
		size_t n;

		if (r < 0) {
			fprintf(stderr, "bench: engine closed\n");
			exit(1);
		}
		i += (size_t)r;
		n = smtp_server_output(s, &p);
		smtp_server_output_consume(s, n);
		if (smtp_server_action(s)->type != SMTP_ACT_NONE)
			smtp_server_verdict(s, 250, NULL, NULL, 1);
		if (r == 0 && !n && smtp_server_action(s)->type == SMTP_ACT_NONE) {
			fprintf(stderr, "bench: engine stalled in %s\n",
				smtp_server_state_name(s));
			exit(1);
		}
	}
}

static double bench_engine(const uint8_t *b, size_t len, int rounds, int bdat)
{
	struct smtp_server *s = session(0, len + 16);
	static const char hdr[] = "MAIL FROM:<a@example.org>\r\n"
				  "RCPT TO:<b@example.com>\r\n";
	char cmd[64];
	double best = 0;
	int r;

	for (r = 0; r < rounds; r++) {
		double t0, dt;
		uint64_t before = smtp_server_stats(s)->messages;

		feed_all(s, (const uint8_t *)hdr, sizeof(hdr) - 1);
		if (bdat) {
			int k = snprintf(cmd, sizeof(cmd), "BDAT %zu LAST\r\n",
					 len - 3);

			feed_all(s, (const uint8_t *)cmd, (size_t)k);
		} else {
			feed_all(s, (const uint8_t *)"DATA\r\n", 6);
		}
		t0 = now_s();
		feed_all(s, b, bdat ? len - 3 : len);
		dt = now_s() - t0;
		if (smtp_server_stats(s)->messages != before + 1) {
			fprintf(stderr, "bench: message not accepted\n");
			exit(1);
		}
		if (len / dt / 1e9 > best)
			best = (double)len / dt / 1e9;
	}
	smtp_server_free(s);
	return best;
}

static double bench_cmds(size_t ncmd, unsigned verdicts, int rounds)
{
	static const char grp[] = "MAIL FROM:<sender@example.org>\r\n"
				  "RCPT TO:<rcpt@example.com>\r\nRSET\r\n";
	size_t groups = ncmd / 3, gl = sizeof(grp) - 1, i, len = groups * gl;
	uint8_t *b = malloc(len);
	double best = 0;
	int r;

	for (i = 0; i < groups; i++)
		memcpy(b + i * gl, grp, gl);
	for (r = 0; r < rounds; r++) {
		struct smtp_server *s = session(verdicts, 1 << 20);
		uint64_t c0 = smtp_server_stats(s)->commands;
		double t0 = now_s(), dt;

		feed_all(s, b, len);
		dt = now_s() - t0;
		if (smtp_server_stats(s)->commands - c0 != groups * 3) {
			fprintf(stderr, "bench: %llu commands, want %zu\n",
				(unsigned long long)(smtp_server_stats(s)->commands - c0),
				groups * 3);
			exit(1);
		}
		if (groups * 3 / dt > best)
			best = (double)(groups * 3) / dt;
		smtp_server_free(s);
	}
	free(b);
	return best;
}

int main(int argc, char **argv)
{
	size_t mib = 64, ncmd = 3000000, len;
	int rounds = 5, i;
	uint8_t *body;
	double scan, eng, bdat, cmds, cmdv;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "-s"))
			mib = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "-r"))
			rounds = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "-n"))
			ncmd = strtoul(argv[i + 1], NULL, 10);
	}
	body = make_body(mib << 20, &len);
	scan = bench_scan(body, len, rounds);
	eng = bench_engine(body, len, rounds, 0);
	bdat = bench_engine(body, len, rounds, 1);
	cmds = bench_cmds(ncmd, 0, rounds);
	cmdv = bench_cmds(ncmd, SMTP_VP_MAIL | SMTP_VP_RCPT, rounds);
	printf("sluice smtp engine benchmark - one thread, no I/O, best of %d rounds\n",
	       rounds);
	printf("cpu: %s; body %zu MiB of 78-octet CRLF lines (1 in 40 dot-stuffed), "
	       "fed in %d KiB pieces\n", cpu_model(), mib, PIECE / 1024);
	printf("%-16s %14s  %s\n", "test", "result", "conditions");
	printf("%-16s %10.2f GB/s  smtp_body_scan: copy+unstuff+line check+end\n",
	       "body-scan", scan);
	printf("%-16s %10.2f GB/s  server engine DATA, Received + verdict\n",
	       "body-engine", eng);
	printf("%-16s %10.2f GB/s  server engine BDAT LAST, text line checks\n",
	       "body-bdat", bdat);
	printf("%-16s %10.0f cmd/s %zu pipelined MAIL/RCPT/RSET, auto verdicts\n",
	       "cmds-pipelined", cmds, ncmd / 3 * 3);
	printf("%-16s %10.0f cmd/s same, MAIL+RCPT verdicts answered by caller\n",
	       "cmds-verdicts", cmdv);
	printf("summary: body %.2f GB/s/core (goal 2.0) engine-data %.2f GB/s; "
	       "pipelined %.2f Mcmd/s/core (goal 1.0) with-verdicts %.2f Mcmd/s; %s\n",
	       scan, eng, cmds / 1e6, cmdv / 1e6,
	       scan >= 2.0 && cmds >= 1e6 ? "goals met" : "GOAL MISSED");
	free(body);
	return 0;
}
