/*
 * sb_gen.c - "sluice-bench gen": options, worker threads, progress line,
 * summary table and JSON. The event loop is in sb_client.c.
 *
 * Exit status: 0 when every message got a reply (2xx, 4xx or 5xx),
 * 1 when any message failed for a transport/protocol reason (counted by
 * reason in the summary), 2 on bad usage.
 */
#include "sb_gen.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "sb_dpdk.h"
#include "sb_tport.h"

static void gen_usage(FILE *f)
{
	fputs(
"usage: sluice-bench gen [OPTIONS]\n"
"  -s, --server HOST:PORT   SMTP server (default 127.0.0.1:25)\n"
"  -c, --sessions N         concurrent sessions (default 10)\n"
"  -n, --count N            messages in total (default 1000)\n"
"  -d, --duration T         stop starting messages after T (default 60s)\n"
"  -r, --rate R             open loop: R messages/s on a fixed schedule,\n"
"                           latency from each message's intended start;\n"
"                           without it: closed loop (as fast as sessions go)\n"
"      --size SPEC          1k | 1k-64k | mix:small | mix:realistic |\n"
"                           mix:W@A-B,... (default 1k)\n"
"      --rcpts N            recipients per message (default 1)\n"
"      --msgs-per-conn N    QUIT and reconnect after N messages (0 = never)\n"
"      --new-conn           a new connection per message (= --msgs-per-conn 1)\n"
"      --no-pipelining      one command per round trip even if offered\n"
"      --bdat               send with BDAT (CHUNKING) instead of DATA\n"
"      --starttls           STARTTLS before mail (no certificate check)\n"
"      --from ADDR          envelope sender (default bench@sluice-bench.test)\n"
"      --to ADDR            recipient, repeatable; beyond the list: LOCAL-J@DOMAIN\n"
"                           of the first (default rcpt@example.test)\n"
"      --helo NAME          EHLO name (default sluice-bench.test)\n"
"      --connect-timeout T  (default 5s)   --timeout T  per reply (default 30s)\n"
"      --drain T            wait for in-flight messages after --duration (default 10s)\n"
"  -j, --threads N          worker threads, each with its share (default 1)\n"
"      --run-id ID          run id in the X-Sluice-Bench header (default random)\n"
"      --seed N             size-picking seed (default 1)\n"
"      --progress           one progress line per second on stderr\n"
"      --json FILE          write results as JSON\n"
"      --transport T        kernel (default): kernel sockets, any MTA;\n"
"                           memif: sluice's TCP/IP stack on a DPDK net_memif\n"
"                           port in this process (memif server; sluiced's\n"
"                           memif profile is the client); one thread, no TLS\n"
"memif transport (with --transport memif):\n"
"      --local-ip A.B.C.D[/LEN]  our address on the memif link (required;\n"
"                           /24 by default); --server must be on the link\n"
"      --memif-socket PATH  control socket (default /run/sluice/memif.sock)\n"
"      --memif-id N         interface id, as in the client's vdev (default 0)\n"
"      --memif-devargs KV   more net_memif devargs, e.g. socket-abstract=no\n"
"      --mac MAC            our MAC (default 02:73:62:00:00:01)\n"
"      --file-prefix NAME   EAL --file-prefix (default sluice-bench)\n"
"      --no-huge            EAL without hugepages (automatic if none are free)\n"
"      --eal-mem MB         EAL memory (default 256)\n"
"      --cpus LIST          CPUs the generator may run on (default: all allowed)\n"
"      --link-timeout T     wait for the client to connect and the server to\n"
"                           accept a probe connection (default 30s)\n"
"      --idle-sleep T       after 256 idle polls sleep up to T (default 50us;\n"
"                           0 = busy-poll)\n", f);
}

static void opt_duration(const char *opt, const char *v, uint64_t *out)
{
	long long us = sb_parse_duration_us(v);
	if (us < 0)
		sb_die("%s: '%s' is not a duration (10, 10s, 250ms, 2m)", opt, v);
	*out = (uint64_t)us;
}

/* memif_check - the memif transport's options are complete and consistent */
static void memif_check(struct gen_cfg *cfg, const char *local_ip, bool threads_set)
{
	struct gen_memif *m = &cfg->memif;
	char ip[32];
	unsigned len = 24;
	struct in_addr a;
	if (!local_ip)
		sb_die("--transport memif needs --local-ip A.B.C.D[/LEN] (our address on the memif link)");
	const char *sl = strchr(local_ip, '/');
	size_t n = sl ? (size_t)(sl - local_ip) : strlen(local_ip);
	if (n >= sizeof(ip))
		sb_die("--local-ip: '%s' is not A.B.C.D[/LEN]", local_ip);
	memcpy(ip, local_ip, n);
	ip[n] = '\0';
	if (sl)
		len = (unsigned)sb_opt_ull("--local-ip prefix", sl + 1);
	if (inet_pton(AF_INET, ip, &a) != 1 || len < 1 || len > 30)
		sb_die("--local-ip: '%s' is not A.B.C.D[/LEN] (LEN 1-30)", local_ip);
	m->local_ip = ntohl(a.s_addr);
	m->prefix_len = (uint8_t)len;
	if (cfg->starttls)
		sb_die("--starttls: not available with --transport memif (the memif transport has no "
		       "TLS; use --transport kernel for STARTTLS)");
	if (threads_set && cfg->threads > 1)
		sb_die("--threads: --transport memif runs one worker thread (one memif queue pair, "
		       "one TCP stack)");
	cfg->threads = 1;
	if (strchr(m->socket, ',') || (m->devargs && strpbrk(m->devargs, " \t")))
		sb_die("--memif-socket must not hold ',' and --memif-devargs no spaces");
	if (!m->mem_mb)
		sb_die("--eal-mem must be at least 1");
}

/* parse_args - fill cfg from argv; die on bad input */
static void parse_args(struct gen_cfg *cfg, int argc, char **argv)
{
	enum { O_SIZE = 256, O_RCPTS, O_MPC, O_NEWCONN, O_NOPIPE, O_BDAT, O_TLS, O_FROM, O_TO,
	       O_HELO, O_CTO, O_TO_US, O_DRAIN, O_RUNID, O_SEED, O_PROGRESS, O_JSON, O_HELP,
	       O_TRANSPORT, O_LOCALIP, O_MSOCK, O_MID, O_MDEVARGS, O_MAC, O_PREFIX, O_NOHUGE,
	       O_EALMEM, O_CPUS, O_LINKTO, O_IDLE };
	static const struct option lo[] = {
		{ "server", 1, 0, 's' }, { "sessions", 1, 0, 'c' }, { "count", 1, 0, 'n' },
		{ "duration", 1, 0, 'd' }, { "rate", 1, 0, 'r' }, { "threads", 1, 0, 'j' },
		{ "size", 1, 0, O_SIZE }, { "rcpts", 1, 0, O_RCPTS }, { "msgs-per-conn", 1, 0, O_MPC },
		{ "new-conn", 0, 0, O_NEWCONN }, { "no-pipelining", 0, 0, O_NOPIPE },
		{ "bdat", 0, 0, O_BDAT }, { "starttls", 0, 0, O_TLS }, { "from", 1, 0, O_FROM },
		{ "to", 1, 0, O_TO }, { "helo", 1, 0, O_HELO }, { "connect-timeout", 1, 0, O_CTO },
		{ "timeout", 1, 0, O_TO_US }, { "drain", 1, 0, O_DRAIN }, { "run-id", 1, 0, O_RUNID },
		{ "seed", 1, 0, O_SEED }, { "progress", 0, 0, O_PROGRESS }, { "json", 1, 0, O_JSON },
		{ "help", 0, 0, O_HELP }, { "transport", 1, 0, O_TRANSPORT },
		{ "local-ip", 1, 0, O_LOCALIP }, { "memif-socket", 1, 0, O_MSOCK },
		{ "memif-id", 1, 0, O_MID }, { "memif-devargs", 1, 0, O_MDEVARGS }, { "mac", 1, 0, O_MAC },
		{ "file-prefix", 1, 0, O_PREFIX }, { "no-huge", 0, 0, O_NOHUGE },
		{ "eal-mem", 1, 0, O_EALMEM }, { "cpus", 1, 0, O_CPUS },
		{ "link-timeout", 1, 0, O_LINKTO }, { "idle-sleep", 1, 0, O_IDLE }, { 0, 0, 0, 0 },
	};
	const char *size = "1k", *local_ip = NULL;
	static const char *tos[64];
	bool threads_set = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:c:n:d:r:j:h", lo, NULL)) != -1) {
		switch (c) {
		case 's': sb_parse_addr("--server", optarg, &cfg->server);
			snprintf(cfg->server_str, sizeof(cfg->server_str), "%s", optarg); break;
		case 'c': cfg->sessions = (unsigned)sb_opt_ull("--sessions", optarg); break;
		case 'n': cfg->count = sb_opt_ull("--count", optarg); break;
		case 'd': opt_duration("--duration", optarg, &cfg->duration_us); break;
		case 'r': cfg->rate = sb_opt_double("--rate", optarg); break;
		case 'j': cfg->threads = (unsigned)sb_opt_ull("--threads", optarg); threads_set = true; break;
		case O_SIZE: size = optarg; break;
		case O_RCPTS: cfg->rcpts = (unsigned)sb_opt_ull("--rcpts", optarg); break;
		case O_MPC: cfg->msgs_per_conn = (unsigned)sb_opt_ull("--msgs-per-conn", optarg); break;
		case O_NEWCONN: cfg->msgs_per_conn = 1; break;
		case O_NOPIPE: cfg->pipelining = false; break;
		case O_BDAT: cfg->bdat = true; break;
		case O_TLS: cfg->starttls = true; break;
		case O_FROM: cfg->from = optarg; break;
		case O_TO:
			if (cfg->nto >= 64)
				sb_die("--to: at most 64 addresses");
			tos[cfg->nto++] = optarg;
			break;
		case O_HELO: cfg->helo = optarg; break;
		case O_CTO: opt_duration("--connect-timeout", optarg, &cfg->connect_timeout_us); break;
		case O_TO_US: opt_duration("--timeout", optarg, &cfg->timeout_us); break;
		case O_DRAIN: opt_duration("--drain", optarg, &cfg->drain_us); break;
		case O_RUNID:
			if (strlen(optarg) >= sizeof(cfg->run_id) || strpbrk(optarg, " \t\r\n") || !*optarg)
				sb_die("--run-id: 1-39 characters, no spaces");
			strcpy(cfg->run_id, optarg);
			break;
		case O_SEED: cfg->seed = sb_opt_ull("--seed", optarg); break;
		case O_PROGRESS: cfg->progress = true; break;
		case O_JSON: cfg->json = optarg; break;
		case O_TRANSPORT:
			if (!strcmp(optarg, "kernel"))
				cfg->transport = GT_KERNEL;
			else if (!strcmp(optarg, "memif"))
				cfg->transport = GT_MEMIF;
			else
				sb_die("--transport: '%s' is not kernel or memif", optarg);
			break;
		case O_LOCALIP: local_ip = optarg; break;
		case O_MSOCK: cfg->memif.socket = optarg; break;
		case O_MID: cfg->memif.id = (unsigned)sb_opt_ull("--memif-id", optarg); break;
		case O_MDEVARGS: cfg->memif.devargs = optarg; break;
		case O_MAC: cfg->memif.mac = optarg; break;
		case O_PREFIX: cfg->memif.file_prefix = optarg; break;
		case O_NOHUGE: cfg->memif.no_huge = true; break;
		case O_EALMEM: cfg->memif.mem_mb = (unsigned)sb_opt_ull("--eal-mem", optarg); break;
		case O_CPUS: cfg->memif.cpus = optarg; break;
		case O_LINKTO: opt_duration("--link-timeout", optarg, &cfg->memif.link_timeout_us); break;
		case O_IDLE: opt_duration("--idle-sleep", optarg, &cfg->memif.idle_sleep_us); break;
		case 'h': case O_HELP: gen_usage(stdout); exit(0);
		default: gen_usage(stderr); exit(2);
		}
	}
	if (optind < argc)
		sb_die("gen: unexpected argument '%s' (see sluice-bench gen --help)", argv[optind]);
	char err[200];
	if (sb_sizes_parse(&cfg->sizes, size, err, sizeof(err)) < 0)
		sb_die("--size: %s", err);
	if (cfg->nto == 0)
		tos[cfg->nto++] = "rcpt@example.test";
	cfg->to = tos;
	if (!cfg->sessions || !cfg->threads || !cfg->rcpts)
		sb_die("--sessions, --threads and --rcpts must be at least 1");
	if (cfg->rcpts > 1000)
		sb_die("--rcpts: at most 1000");
	if (cfg->threads > cfg->sessions)
		cfg->threads = cfg->sessions;
	if (cfg->count == 0 || cfg->duration_us == 0)
		sb_die("--count and --duration must be positive (every run is bounded)");
	if (cfg->transport == GT_MEMIF)
		memif_check(cfg, local_ip, threads_set);
	else if (local_ip)
		sb_die("--local-ip is for --transport memif (the kernel picks the source address)");
}

struct progress_snap {
	uint64_t done, delivered, deferred, rejected, errors, inflight, backlog;
};

static void snap(struct gen_worker *w, unsigned n, struct progress_snap *p)
{
	memset(p, 0, sizeof(*p));
	for (unsigned i = 0; i < n; i++) {
		p->done += __atomic_load_n(&w[i].st.done, __ATOMIC_RELAXED);
		p->delivered += __atomic_load_n(&w[i].st.delivered, __ATOMIC_RELAXED);
		p->deferred += __atomic_load_n(&w[i].st.deferred, __ATOMIC_RELAXED);
		p->rejected += __atomic_load_n(&w[i].st.rejected, __ATOMIC_RELAXED);
		p->errors += __atomic_load_n(&w[i].st.errors, __ATOMIC_RELAXED);
		p->inflight += __atomic_load_n(&w[i].inflight, __ATOMIC_RELAXED);
		p->backlog += __atomic_load_n(&w[i].backlog, __ATOMIC_RELAXED);
	}
}

static void *worker_main(void *arg)
{
	sb_client_run(arg);
	return NULL;
}

static void ms_cols(FILE *f, const char *name, const struct sb_hist *h)
{
	fprintf(f, "%-16s %8llu %9.3f %9.3f %9.3f %9.3f %9.3f\n", name, (unsigned long long)h->count,
		sb_hist_pct(h, 50) / 1e3, sb_hist_pct(h, 90) / 1e3, sb_hist_pct(h, 99) / 1e3,
		sb_hist_pct(h, 99.9) / 1e3, h->max / 1e3);
}

static struct sb_tport *kernel_tport(const struct gen_cfg *cfg, unsigned worker)
{
	(void)cfg;
	(void)worker;
	return sb_tport_kernel_new();
}

static void print_summary(const struct gen_cfg *cfg, const struct gen_stats *st, double secs)
{
	FILE *f = stdout;
	char conn[48];
	if (cfg->msgs_per_conn == 1)
		snprintf(conn, sizeof(conn), "new connection per message");
	else if (cfg->msgs_per_conn)
		snprintf(conn, sizeof(conn), "%u messages per connection", cfg->msgs_per_conn);
	else
		snprintf(conn, sizeof(conn), "connections reused");
	fprintf(f, "sluice-bench gen -> %s: run %s, %u sessions x %u threads, ", cfg->server_str,
		cfg->run_id, cfg->sessions, cfg->threads);
	if (cfg->rate > 0)
		fprintf(f, "open loop %.1f msg/s", cfg->rate);
	else
		fprintf(f, "closed loop");
	fprintf(f, ", %u rcpt, %s, %s, %s%s\n", cfg->rcpts, cfg->pipelining ? "PIPELINING" : "no pipelining",
		cfg->bdat ? "BDAT" : "DATA", cfg->starttls ? "STARTTLS, " : "", conn);
	fprintf(f, "elapsed %.3f s, %llu connections, transport %s\n", secs, (unsigned long long)st->conns,
		cfg->transport == GT_MEMIF ? "memif (sluice TCP stack, DPDK)" : "kernel");
	if (cfg->transport == GT_MEMIF) {
		char line[300];
		sb_dpdk_stats(line, sizeof(line));
		fprintf(f, "%s\n", line);
	}
	fputc('\n', f);
	fprintf(f, "%-16s %10s\n", "messages", "count");
	fprintf(f, "%-16s %10llu\n", "started", (unsigned long long)st->started);
	fprintf(f, "%-16s %10llu   %.1f msg/s, %.2f MB/s\n", "delivered (2xx)",
		(unsigned long long)st->delivered, st->delivered / secs, st->bytes_ok / secs / 1e6);
	fprintf(f, "%-16s %10llu\n", "deferred (4xx)", (unsigned long long)st->deferred);
	fprintf(f, "%-16s %10llu\n", "rejected (5xx)", (unsigned long long)st->rejected);
	fprintf(f, "%-16s %10llu\n", "errors", (unsigned long long)st->errors);
	for (int e = 0; e < GE_MAX; e++)
		if (st->err[e])
			fprintf(f, "  %-30s %8llu   %s\n", gen_err_names[e], (unsigned long long)st->err[e],
				st->err_detail[e]);
	if (st->rcpt_rejected)
		fprintf(f, "%-16s %10llu\n", "rcpts refused", (unsigned long long)st->rcpt_rejected);
	fputs("replies (final per message):", f);
	int any = 0;
	for (int c = 0; c < 600; c++)
		if (st->codes[c])
			any = fprintf(f, " %d: %llu", c, (unsigned long long)st->codes[c]);
	if (!any)
		fputs(" none", f);
	fputs("\n\n", f);
	fprintf(f, "%-16s %8s %9s %9s %9s %9s %9s\n", "latency ms", "count", "p50", "p90", "p99", "p99.9", "max");
	ms_cols(f, "time-to-250", &st->t250);
	ms_cols(f, "service time", &st->service);
	if (cfg->rate > 0)
		fputs("(time-to-250 counts from each message's scheduled start; service time from\n"
		      " when a session actually began it, which is what a closed loop would report)\n", f);
}

static void write_json(const struct gen_cfg *cfg, const struct gen_stats *st, double secs, const char *size,
		       uint64_t wall0)
{
	FILE *f = fopen(cfg->json, "w");
	if (!f)
		sb_die("--json %s: %m", cfg->json);
	fprintf(f, "{\"tool\":\"sluice-bench\",\"mode\":\"gen\",\"start_unix_us\":%llu,\"run_id\":",
		(unsigned long long)wall0);
	sb_json_str(f, cfg->run_id);
	fprintf(f, ",\"config\":{\"server\":");
	sb_json_str(f, cfg->server_str);
	fprintf(f, ",\"sessions\":%u,\"threads\":%u,\"count\":%llu,\"duration_s\":%.3f,"
		"\"rate\":%.3f,\"loop\":\"%s\",\"size\":", cfg->sessions, cfg->threads,
		(unsigned long long)cfg->count, cfg->duration_us / 1e6, cfg->rate,
		cfg->rate > 0 ? "open" : "closed");
	sb_json_str(f, size);
	fprintf(f, ",\"rcpts\":%u,\"msgs_per_conn\":%u,\"pipelining\":%s,\"bdat\":%s,\"starttls\":%s,"
		"\"transport\":\"%s\"},",
		cfg->rcpts, cfg->msgs_per_conn, cfg->pipelining ? "true" : "false",
		cfg->bdat ? "true" : "false", cfg->starttls ? "true" : "false",
		cfg->transport == GT_MEMIF ? "memif" : "kernel");
	fprintf(f, "\"elapsed_s\":%.6f,\"messages\":{\"started\":%llu,\"done\":%llu,\"delivered\":%llu,"
		"\"deferred\":%llu,\"rejected\":%llu,\"errors\":%llu,\"rcpts_refused\":%llu},"
		"\"bytes_delivered\":%llu,\"msgs_per_s\":%.3f,\"mb_per_s\":%.4f,\"connections\":%llu,"
		"\"tls_handshakes\":%llu,\"replies\":{",
		secs, (unsigned long long)st->started, (unsigned long long)st->done,
		(unsigned long long)st->delivered, (unsigned long long)st->deferred,
		(unsigned long long)st->rejected, (unsigned long long)st->errors,
		(unsigned long long)st->rcpt_rejected, (unsigned long long)st->bytes_ok,
		st->delivered / secs, st->bytes_ok / secs / 1e6, (unsigned long long)st->conns,
		(unsigned long long)st->tls_ok);
	int first = 1;
	for (int c = 0; c < 600; c++)
		if (st->codes[c]) {
			fprintf(f, "%s\"%d\":%llu", first ? "" : ",", c, (unsigned long long)st->codes[c]);
			first = 0;
		}
	fputs("},\"errors\":{", f);
	first = 1;
	for (int e = 0; e < GE_MAX; e++)
		if (st->err[e]) {
			fprintf(f, "%s", first ? "" : ",");
			sb_json_str(f, gen_err_names[e]);
			fprintf(f, ":{\"count\":%llu,\"detail\":", (unsigned long long)st->err[e]);
			sb_json_str(f, st->err_detail[e]);
			fputc('}', f);
			first = 0;
		}
	fputs("},\"latency\":{\"t250\":", f);
	sb_hist_json(&st->t250, f, 1);
	fputs(",\"service\":", f);
	sb_hist_json(&st->service, f, 1);
	fputs("},", f);
	sb_json_series(f, &st->series, (size_t)(secs + 0.999999));
	fputs("}\n", f);
	if (fclose(f) != 0)
		sb_die("--json %s: write failed", cfg->json);
}

int sb_gen_main(int argc, char **argv)
{
	static struct gen_cfg cfg;
	cfg.sessions = 10;
	cfg.threads = 1;
	cfg.rcpts = 1;
	cfg.count = 1000;
	cfg.duration_us = 60000000;
	cfg.drain_us = 10000000;
	cfg.connect_timeout_us = 5000000;
	cfg.timeout_us = 30000000;
	cfg.pipelining = true;
	cfg.helo = "sluice-bench.test";
	cfg.from = "bench@sluice-bench.test";
	cfg.seed = 1;
	cfg.memif.socket = "/run/sluice/memif.sock";
	cfg.memif.file_prefix = "sluice-bench";
	cfg.memif.mac = "02:73:62:00:00:01";
	cfg.memif.mem_mb = 256;
	cfg.memif.link_timeout_us = 30000000;
	cfg.memif.idle_sleep_us = 50;
	sb_parse_addr("--server", "127.0.0.1:25", &cfg.server);
	strcpy(cfg.server_str, "127.0.0.1:25");
	const char *size = "1k";
	for (int i = 1; i < argc - 1; i++)
		if (!strcmp(argv[i], "--size"))
			size = argv[i + 1];
	parse_args(&cfg, argc, argv);
	if (!cfg.run_id[0]) {
		uint8_t r[4];
		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
			sb_die("getrandom failed");
		sb_hex(r, sizeof(r), cfg.run_id);
	}
	if (cfg.starttls)
		cfg.tls = sb_tls_client_ctx();
	sb_body_init(&cfg.body, cfg.sizes.max, cfg.seed);
	cfg.tport_new = kernel_tport;
	if (cfg.transport == GT_MEMIF) {
		sb_dpdk_start(&cfg); /* link up, server accepting: then the clock starts */
		cfg.tport_new = sb_dpdk_tport;
	}

	unsigned J = cfg.threads;
	struct gen_worker *w = calloc(J, sizeof(*w));
	pthread_t *th = calloc(J, sizeof(*th));
	if (!w || !th)
		sb_die("out of memory");
	uint64_t t0 = sb_now_us(), wall0 = sb_wall_us();
	for (unsigned i = 0; i < J; i++) {
		w[i].id = i;
		w[i].cfg = &cfg;
		w[i].nsess = cfg.sessions / J + (i < cfg.sessions % J);
		w[i].count = cfg.count / J + (i < cfg.count % J);
		w[i].rate = cfg.rate / J;
		w[i].t0 = t0;
		w[i].wall0 = wall0;
		w[i].rng = cfg.seed * 0x9e3779b97f4a7c15ULL + i + 1;
		sb_hist_init(&w[i].st.t250);
		sb_hist_init(&w[i].st.service);
	}
	for (unsigned i = 0; i < J; i++)
		if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0)
			sb_die("pthread_create failed");

	bool tty = isatty(2);
	struct progress_snap prev = { 0 };
	uint64_t next_tick = t0 + 1000000;
	for (;;) {
		unsigned finished = 0;
		for (unsigned i = 0; i < J; i++)
			finished += __atomic_load_n(&w[i].done_flag, __ATOMIC_ACQUIRE) != 0;
		if (finished == J)
			break;
		uint64_t now = sb_now_us();
		if (cfg.progress && now >= next_tick) {
			struct progress_snap p;
			snap(w, J, &p);
			fprintf(stderr, "%s[%6.1fs] done %llu/%llu  %llu msg/s  ok %llu  4xx %llu  5xx %llu  "
				"err %llu  inflight %llu  backlog %llu%s",
				tty ? "\r" : "", (now - t0) / 1e6, (unsigned long long)p.done,
				(unsigned long long)cfg.count, (unsigned long long)(p.done - prev.done),
				(unsigned long long)p.delivered, (unsigned long long)p.deferred,
				(unsigned long long)p.rejected, (unsigned long long)p.errors,
				(unsigned long long)p.inflight, (unsigned long long)p.backlog, tty ? "   " : "\n");
			prev = p;
			next_tick += 1000000;
		}
		usleep(20000);
	}
	if (cfg.progress && tty)
		fputc('\n', stderr);
	for (unsigned i = 0; i < J; i++)
		pthread_join(th[i], NULL);
	double secs = (sb_now_us() - t0) / 1e6;
	if (secs <= 0)
		secs = 1e-6;

	static struct gen_stats tot;
	sb_hist_init(&tot.t250);
	sb_hist_init(&tot.service);
	for (unsigned i = 0; i < J; i++) {
		const struct gen_stats *s = &w[i].st;
		tot.started += s->started;
		tot.done += s->done;
		tot.delivered += s->delivered;
		tot.deferred += s->deferred;
		tot.rejected += s->rejected;
		tot.errors += s->errors;
		tot.bytes_ok += s->bytes_ok;
		tot.rcpt_rejected += s->rcpt_rejected;
		tot.conns += s->conns;
		tot.tls_ok += s->tls_ok;
		for (int c = 0; c < 600; c++)
			tot.codes[c] += s->codes[c];
		for (int e = 0; e < GE_MAX; e++) {
			tot.err[e] += s->err[e];
			if (!tot.err_detail[e][0])
				memcpy(tot.err_detail[e], s->err_detail[e], sizeof(tot.err_detail[e]));
		}
		sb_hist_merge(&tot.t250, &s->t250);
		sb_hist_merge(&tot.service, &s->service);
		sb_series_merge(&tot.series, &s->series);
	}
	print_summary(&cfg, &tot, secs);
	fflush(stdout);
	if (cfg.json)
		write_json(&cfg, &tot, secs, size, wall0);
	for (unsigned i = 0; i < J; i++)
		sb_series_free(&w[i].st.series);
	sb_series_free(&tot.series);
	free(w);
	free(th);
	free(cfg.body.text);
	if (cfg.tls)
		SSL_CTX_free(cfg.tls);
	if (cfg.transport == GT_MEMIF)
		sb_dpdk_stop();
	if (tot.errors) {
		for (int e = 0; e < GE_MAX; e++)
			if (tot.err[e])
				fprintf(stderr, "sluice-bench gen: %llu of %llu messages failed: %s (%s)\n",
					(unsigned long long)tot.err[e], (unsigned long long)tot.done,
					gen_err_names[e], tot.err_detail[e]);
		return 1;
	}
	return 0;
}
