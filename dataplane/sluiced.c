/*
 * sluiced.c - the appliance's entry point.
 *
 *   sluiced [-c FILE] [--no-huge] [--check] [-v] [-- EAL-ARGS...]
 *
 * Start-up (control plane; every failure is fatal and names file, section,
 * key and reason): read sluice.conf and its NIC profile, check the lcores
 * exist, build the EAL command line, rte_eal_init, open the port, prepare
 * one struct iolcore per io lcore, register telemetry, launch the io
 * lcores and wait until each reports RUNNING. The main lcore then runs the
 * control role until SIGINT/SIGTERM.
 *
 * Stop: stop the io reactors (each destroys its stack, which RSTs live
 * connections, and flushes the RSTs), join, stop telemetry, stop and close
 * the port (a TAP interface disappears), free the pools, rte_eal_cleanup
 * (hugepage memory released; with [eal] pdump = no the files were
 * unlinked at start with --huge-unlink so none are left behind, with pdump
 * the next start of the same file prefix removes what a kill -9 left).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_pdump.h>

#include "cfg.h"
#include "ctl.h"
#include "ctlcmd.h"
#include "ctlsock.h"
#include "dsched.h"
#include "ldapdir.h"
#include "eal.h"
#include "impair.h"
#include "iolcore.h"
#include "log.h"
#include "metrics.h"
#include "mstore.h"
#include "nicprof.h"
#include "port.h"
#include "tele.h"
#include "tls_ctx.h"
#include "tsc.h"
#include "worker.h"

#ifndef SLUICE_CONF_DEFAULT
#define SLUICE_CONF_DEFAULT "/etc/sluice/sluice.conf"
#endif
#ifndef SLUICE_PROFILE_DIR
#define SLUICE_PROFILE_DIR "/usr/share/sluice/nic-profiles"
#endif
#define SLUICED_START_WAIT_MS 10000

struct sluiced_opts {
	const char *config;
	bool no_huge;
	bool check;
	bool verbose;
	const char *impair;
	int pass_argc;
	char **pass_argv;
};

/* everything the process owns; static so it outlives every thread */
static struct cfg sl_cfg;
static struct nicprof sl_prof;
static struct port sl_port;
static struct iolcore sl_io[CFG_MAX_IO];
static struct ctl sl_ctl;
static struct mstore sl_store;
static struct dsched *sl_sched;
static struct ctlsock *sl_sock;
static struct metrics *sl_metrics;
static struct ctlcmd_env sl_cmdenv;
static struct tls_ctx *sl_tls_client[CFG_MAX_IO];
static bool sl_store_open;
static struct worker sl_wk[CFG_MAX_IO + CFG_MAX_WORKERS];
static unsigned sl_n_wk;
static bool sl_wk_own_lcores;

static void sluiced_usage(FILE *fp)
{
	fprintf(fp,
"usage: sluiced [-c FILE] [--no-huge] [--check] [-v] [-- EAL-ARGS...]\n"
"\n"
"  -c, --config FILE  sluice.conf to use (default %s)\n"
"      --no-huge      run without hugepages (same as [eal] huge = no)\n"
"  -n, --check        validate the config and NIC profile, print the EAL\n"
"                     command line, exit\n"
"  -v, --verbose      debug messages\n"
"      --impair ARGS  LAB ONLY: netem-style impairment of received frames\n"
"                     (\"loss 1%% duplicate 1%% reorder 5%% delay 1ms\"); used\n"
"                     by tests/lab when the kernel has no netem qdisc\n"
"  -h, --help         this text\n"
"  -- EAL-ARGS        appended to the EAL command line built from the\n"
"                     config (e.g. -- --log-level=pmd.net.tap:debug)\n"
"\n"
"Stops cleanly on SIGINT or SIGTERM. Telemetry: dpdk-telemetry.py -f PREFIX\n"
"(/sluice/info, /sluice/net/counters, /sluice/port/stats, /sluice/services,\n"
"/sluice/lcores). Reference: docs/operations.md.\n", SLUICE_CONF_DEFAULT);
}

/* sluiced_args - parse argv; exits on --help or a usage error */
static void sluiced_args(int argc, char **argv, struct sluiced_opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "no-huge", no_argument, NULL, 'H' },
		{ "check", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "impair", required_argument, NULL, 'I' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->config = SLUICE_CONF_DEFAULT;
	while ((ch = getopt_long(argc, argv, "c:nvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 'H':
			o->no_huge = true;
			break;
		case 'n':
			o->check = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'I':
			o->impair = optarg;
			break;
		case 'h':
			sluiced_usage(stdout);
			exit(0);
		default:
			sluiced_usage(stderr);
			exit(2);
		}
	}
	/* getopt_long stops at "--"; the rest goes to EAL */
	o->pass_argc = argc - optind;
	o->pass_argv = argv + optind;
	if (o->pass_argc > 0 && strcmp(argv[optind - 1], "--") != 0) {
		log_warn("unexpected argument \"%s\" (EAL arguments go after "
			 "\"--\")", argv[optind]);
		sluiced_usage(stderr);
		exit(2);
	}
}

/* sluiced_check_lcores - every configured lcore runs on a CPU we may run
 * on (its own number, or its [lcores] cpu_map CPU); warn about lcores that
 * share a CPU */
static void sluiced_check_lcores(const struct cfg *c)
{
	unsigned id[1 + CFG_MAX_IO + CFG_MAX_WORKERS], n = 0;
	const char *role[1 + CFG_MAX_IO + CFG_MAX_WORKERS];
	char avail[256] = "", list[256];
	cpu_set_t set;
	size_t off = 0;

	id[n] = c->main_lcore;
	role[n++] = "main";
	for (unsigned i = 0; i < c->n_io; i++) {
		id[n] = c->io_lcores[i];
		role[n++] = "io";
	}
	for (unsigned i = 0; i < c->n_workers; i++) {
		id[n] = c->worker_lcores[i];
		role[n++] = "workers";
	}
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return;
	for (int i = 0; i < CPU_SETSIZE && off < sizeof(avail); i++)
		if (CPU_ISSET(i, &set))
			off += (size_t)snprintf(avail + off, sizeof(avail) - off,
						"%s%d", off ? "," : "", i);
	for (unsigned i = 0; i < n; i++) {
		unsigned cpu = cfg_lcore_cpu(c, id[i]);

		if (cpu < CPU_SETSIZE && CPU_ISSET(cpu, &set))
			continue;
		if (cpu != id[i])
			log_fatal("%s: [lcores] %s: CPU %u is not available to "
				  "this process (available: %s; lcore %u is "
				  "mapped to it by [lcores] cpu_map)", c->path,
				  role[i], cpu, avail, id[i]);
		log_fatal("%s: [lcores] %s: CPU %u is not available to this "
			  "process (available: %s; to run lcore %u on one of "
			  "them anyway: [lcores] cpu_map = %u@CPU)", c->path,
			  role[i], cpu, avail, id[i], id[i]);
	}
	/* one warning per CPU that runs more than one lcore */
	for (unsigned i = 0; i < n; i++) {
		unsigned cpu = cfg_lcore_cpu(c, id[i]), k = 0, j;

		for (j = 0; j < i; j++)
			if (cfg_lcore_cpu(c, id[j]) == cpu)
				break;
		if (j < i)
			continue;     /* reported with the first lcore */
		off = 0;
		for (j = i; j < n && off < sizeof(list); j++)
			if (cfg_lcore_cpu(c, id[j]) == cpu) {
				off += (size_t)snprintf(list + off,
					sizeof(list) - off, "%s%u (%s)",
					k++ ? ", " : "", id[j], role[j]);
			}
		if (k > 1)
			log_warn("lcores %s share CPU %u ([lcores] cpu_map): "
				 "they take turns on it; give each busy-polling "
				 "lcore its own core in production", list, cpu);
	}
	if (c->n_workers)
		log_info("lcores: %u worker(s) on their own lcores, separate "
			 "from the io lcores", c->n_workers);
}

static uint64_t sluiced_unix_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* sluiced_teardown - undo whatever of port/EAL is up (safe to repeat) */
static void sluiced_teardown(bool eal_up)
{
	tele_shutdown();
	if (sl_sock)
		ctlsock_close(sl_sock);
	sl_sock = NULL;
	metrics_close(sl_metrics);
	sl_metrics = NULL;
	if (sl_store_open) {
		mstore_stop(&sl_store);
		dsched_telemetry(NULL);
		dsched_free(sl_sched);
		sl_sched = NULL;
		for (unsigned i = 0; i < sl_n_wk; i++)
			worker_fini(&sl_wk[i]);
		for (unsigned q = 0; q < sl_cfg.n_io; q++) {
			if (sl_io[q].smtp)
				smtpd_free_all(&sl_io[q].smtpd);
			if (sl_io[q].tls)
				tls_ctx_free(sl_io[q].tls);
			sl_io[q].tls = NULL;
			if (sl_tls_client[q])
				tls_ctx_free(sl_tls_client[q]);
			sl_tls_client[q] = NULL;
		}
		mstore_close(&sl_store);
		sl_store_open = false;
	}
	port_close(&sl_port);
	if (eal_up) {
		rte_pdump_uninit();
		rte_eal_cleanup();
	}
}

/* sluiced_prepare_io - net_config and glue of each io lcore */
static void sluiced_prepare_io(const struct cfg *c, const struct port *p,
			       const struct impair_cfg *imp)
{
	char err[512];

	for (unsigned q = 0; q < c->n_io; q++) {
		struct iolcore *l = &sl_io[q];

		memset(l, 0, sizeof(*l));
		l->lcore_id = c->io_lcores[q];
		l->queue = q;
		net_config_defaults(&l->ncfg);
		if (cfg_net_apply(c, &l->ncfg, err, sizeof(err)) < 0) {
			sluiced_teardown(true);
			log_fatal("%s", err);
		}
		memcpy(l->ncfg.mac, p->mac, sizeof(l->ncfg.mac));
		l->ncfg.mtu = p->mtu;
		l->ncfg.tx_ip_csum_offload = p->grant.tx_ip_csum;
		l->ncfg.tx_tcp_csum_offload = p->grant.tx_tcp_csum;
		if (getrandom(l->ncfg.secret, sizeof(l->ncfg.secret), 0) !=
		    (ssize_t)sizeof(l->ncfg.secret)) {
			sluiced_teardown(true);
			log_fatal("getrandom: cannot key the TCP stack");
		}
		l->echo = c->svc_echo;
		l->discard = c->svc_discard;
		l->idle_spins = c->idle_spins;
		l->idle_sleep_us_max = c->idle_sleep_us_max;
		l->impair = *imp;
		l->glue.port = p->id;
		l->glue.queue = (uint16_t)q;
		l->glue.pool = p->pools[q];
		l->glue.rx_ip_csum = p->grant.rx_ip_csum;
		l->glue.rx_l4_csum = p->grant.rx_tcp_csum;
		l->glue.tx_ip_csum = p->grant.tx_ip_csum;
		l->glue.tx_tcp_csum = p->grant.tx_tcp_csum;
		l->glue.rss = &p->rss;
		rte_spinlock_init(&l->snap_lock);
		atomic_init(&l->state, IOLCORE_INIT);
		atomic_init(&l->snap_req, 0);
		atomic_init(&l->snap_done, 0);
	}
}

static void sluiced_stop_io(unsigned n);

/* sluiced_prepare_smtp - queue, directory, writer, workers, TLS: all on
 * the control plane before the io lcores launch */
static void sluiced_prepare_smtp(const struct cfg *c)
{
	char err[512];

	if (!c->svc_smtp)
		return;
	if (mstore_open(&sl_store, c, c->n_io, err, sizeof(err)) < 0) {
		sl_store_open = true;
		sluiced_teardown(true);
		log_fatal("%s: %s", c->smtp.state_dir, err);
	}
	sl_store_open = true;
	/* before workers and io lcores: they read the LDAP cache */
	if (c->ldap.enabled && ldapdir_attach(&sl_store, c, err,
					      sizeof(err)) < 0) {
		sluiced_teardown(true);
		log_fatal("%s", err);
	}
	sl_wk_own_lcores = c->n_workers > 0;
	sl_n_wk = sl_wk_own_lcores ? c->n_workers : c->n_io;
	for (unsigned i = 0; i < sl_n_wk; i++) {
		if (worker_init(&sl_wk[i], &sl_store, c, err, sizeof(err)) < 0) {
			sluiced_teardown(true);
			log_fatal("%s", err);
		}
		sl_wk[i].lcore_id = sl_wk_own_lcores ? c->worker_lcores[i]
						     : c->io_lcores[i];
	}
	for (unsigned q = 0; q < c->n_io; q++) {
		struct iolcore *l = &sl_io[q];

		l->smtp = true;
		l->m = &sl_store;
		l->smtp_cfg = &c->smtp;
		l->worker = sl_wk_own_lcores ? NULL : &sl_wk[q];
		if (c->smtp.tls_cert[0]) {
			l->tls = tls_ctx_server_new(c->smtp.tls_cert,
						    c->smtp.tls_key, err,
						    sizeof(err));
			if (!l->tls) {
				sluiced_teardown(true);
				log_fatal("%s: [tls] cert/key: %s", c->path, err);
			}
		}
	}
	if (c->delivery.enabled) {
		for (unsigned q = 0; q < c->n_io; q++) {
			sl_tls_client[q] = tls_ctx_client_new(
				c->delivery.tls_ca[0] ? c->delivery.tls_ca : NULL,
				err, sizeof(err));
			if (!sl_tls_client[q]) {
				sluiced_teardown(true);
				log_fatal("%s: [delivery] tls_ca: %s", c->path, err);
			}
			sl_io[q].delivery = &c->delivery;
			sl_io[q].tls_client = sl_tls_client[q];
		}
		/* before the writer starts: the scheduler adds a producer */
		if (dsched_new(&sl_store, c, &sl_sched, err, sizeof(err)) < 0) {
			sluiced_teardown(true);
			log_fatal("%s", err);
		}
		dsched_telemetry(sl_sched);
	}
	if (mstore_start(&sl_store, err, sizeof(err)) < 0) {
		sluiced_teardown(true);
		log_fatal("%s", err);
	}
	err[0] = '\0';
	for (unsigned i = 0, off = 0; i < c->smtp.n_ports && off < 200; i++) {
		bool sub = false;

		for (unsigned k = 0; k < c->smtp.n_sub; k++)
			sub |= c->smtp.sub_ports[k] == c->smtp.ports[i];
		off += (unsigned)snprintf(err + off, 200 - off, " %u%s",
					  c->smtp.ports[i],
					  sub ? "(submission)" : "");
	}
	log_info("smtp: hostname %s, ports%s, queue %s, directory %s, "
		 "%u worker(s) on %s, STARTTLS %s", c->smtp.hostname,
		 err, sl_store.queue_dir, sl_store.dir_dir, sl_n_wk,
		 sl_wk_own_lcores ? "their own lcores" : "the io lcores",
		 c->smtp.tls_cert[0] ? "on" : "off");
}

/* sluiced_launch_workers - workers on their own lcores */
static void sluiced_launch_workers(void)
{
	if (!sl_wk_own_lcores)
		return;
	for (unsigned i = 0; i < sl_n_wk; i++) {
		int rc = rte_eal_remote_launch(worker_main, &sl_wk[i],
					       sl_wk[i].lcore_id);
		if (rc != 0) {
			sluiced_stop_io(0);
			sluiced_teardown(true);
			log_fatal("cannot launch worker lcore %u: %s",
				  sl_wk[i].lcore_id, rte_strerror(-rc));
		}
	}
}

/* sluiced_stop_io - stop every launched io reactor and join them */
static void sluiced_stop_io(unsigned n)
{
	for (unsigned q = 0; q < n; q++)
		reactor_stop(&sl_io[q].reactor);
	if (sl_wk_own_lcores)
		for (unsigned i = 0; i < sl_n_wk; i++)
			reactor_stop(&sl_wk[i].reactor);
	rte_eal_mp_wait_lcore();
}

/* sluiced_launch - start the io lcores; fatal if one fails to start */
static void sluiced_launch(const struct cfg *c)
{
	for (unsigned q = 0; q < c->n_io; q++) {
		int rc = rte_eal_remote_launch(iolcore_main, &sl_io[q],
					       sl_io[q].lcore_id);
		if (rc != 0) {
			sluiced_stop_io(q);
			sluiced_teardown(true);
			log_fatal("cannot launch io lcore %u: %s",
				  sl_io[q].lcore_id, rte_strerror(-rc));
		}
	}
	for (unsigned q = 0; q < c->n_io; q++) {
		struct iolcore *l = &sl_io[q];
		int st = IOLCORE_INIT;

		for (unsigned ms = 0; ms < SLUICED_START_WAIT_MS; ms++) {
			st = atomic_load_explicit(&l->state,
						  memory_order_acquire);
			if (st != IOLCORE_INIT)
				break;
			rte_delay_us_sleep(1000);
		}
		if (st != IOLCORE_RUNNING) {
			char err[sizeof(l->err)];

			if (st == IOLCORE_INIT)
				snprintf(err, sizeof(err), "io lcore %u did not "
					 "start within %d ms", l->lcore_id,
					 SLUICED_START_WAIT_MS);
			else
				snprintf(err, sizeof(err), "%s", l->err);
			sluiced_stop_io(c->n_io);
			sluiced_teardown(true);
			log_fatal("%s", err);
		}
	}
}

int main(int argc, char **argv)
{
	struct sluiced_opts o;
	struct eal_args ea;
	struct impair_cfg imp = { .on = false };
	char err[1024], line[2048];
	int sig;

	log_init(argv[0]);
	sluiced_args(argc, argv, &o);
	log_set_verbose(o.verbose);

	if (cfg_load(o.config, SLUICE_PROFILE_DIR, &sl_cfg, err,
		     sizeof(err)) < 0)
		log_fatal("%s", err);
	if (nicprof_load(sl_cfg.profile_path, &sl_prof, err, sizeof(err)) < 0)
		log_fatal("%s (from %s: [sluice] nic_profile)", err,
			  sl_cfg.path);
	sluiced_check_lcores(&sl_cfg);
	if (o.impair && impair_parse(o.impair, &imp, err, sizeof(err)) < 0)
		log_fatal("--impair: %s", err);
	if (eal_args_build(&sl_cfg, &sl_prof, o.no_huge, eal_hugepages_free(),
			   o.pass_argc, o.pass_argv, &ea, err,
			   sizeof(err)) < 0)
		log_fatal("%s", err);
	eal_args_str(&ea, line, sizeof(line));
	if (o.check) {
		printf("config %s: ok\nnic profile %s: ok\nEAL: %s\n",
		       sl_cfg.path, sl_prof.path, line);
		return 0;
	}
	if (imp.on)
		log_warn("LAB ONLY: received frames are impaired: %s", o.impair);
	if (geteuid() != 0)
		log_warn("not running as root: EAL and the NIC (TAP) will "
			 "probably refuse");
	log_info("starting sluiced %s: config %s, NIC profile %s", SLUICE_VERSION,
		 sl_cfg.path, sl_prof.path);
	log_info("EAL: %s", line);
	if (ea.no_huge)
		log_info("running without hugepages (%s)",
			 o.no_huge ? "--no-huge" :
			 sl_cfg.huge == CFG_HUGE_NO ? "[eal] huge = no" :
			 "none free; [eal] huge = auto");

	/* threads created by EAL inherit this: only ctl sees the signals */
	ctl_block_signals(&sl_ctl);
	if (rte_eal_init(ea.argc, ea.argv) < 0)
		log_fatal("rte_eal_init: %s (EAL: %s)", rte_strerror(rte_errno),
			  line);
	tsc_init();
	/* dpdk-pdump attaches as a secondary process (docs/operations.md,
	 * "Packet capture"); without it sluiced still runs */
	if (sl_cfg.pdump && rte_pdump_init() < 0)
		log_warn("rte_pdump_init: %s (no packet capture with "
			 "dpdk-pdump)", rte_strerror(rte_errno));
	if (port_open(&sl_port, &sl_prof, &sl_cfg, err, sizeof(err)) < 0) {
		sluiced_teardown(true);
		log_fatal("%s", err);
	}
	sluiced_prepare_io(&sl_cfg, &sl_port, &imp);
	sluiced_prepare_smtp(&sl_cfg);
	tele_init(&sl_cfg, &sl_prof, &sl_port, sl_io, sl_cfg.n_io, ea.no_huge);
	tele_smtp(sl_store_open ? &sl_store : NULL, sl_wk, sl_n_wk);
	sluiced_launch_workers();
	sluiced_launch(&sl_cfg);
	line[0] = '\0';
	for (unsigned q = 0, off = 0; q < sl_cfg.n_io && off < 256; q++)
		off += (unsigned)snprintf(line + off, 256 - off, "%s%u",
					  q ? "," : "", sl_cfg.io_lcores[q]);
	log_info("ready: %u.%u.%u.%u/%u on port %u (%s), main lcore %u, io "
		 "lcores %s, services:%s%s%s%s", sl_cfg.ip >> 24,
		 sl_cfg.ip >> 16 & 255, sl_cfg.ip >> 8 & 255, sl_cfg.ip & 255,
		 sl_cfg.prefix_len, sl_port.id, sl_port.name,
		 sl_cfg.main_lcore, line,
		 sl_cfg.svc_echo ? " echo/7" : "",
		 sl_cfg.svc_discard ? " discard/9" : "",
		 sl_cfg.svc_smtp ? " smtp" : "",
		 sl_cfg.svc_echo || sl_cfg.svc_discard || sl_cfg.svc_smtp ? ""
									  : " none");

	if (sl_store_open) {
		sl_cmdenv = (struct ctlcmd_env){
			.sched = sl_sched, .m = &sl_store, .io = sl_io,
			.n_io = sl_cfg.n_io, .wk = sl_wk, .n_wk = sl_n_wk,
			.cfg = &sl_cfg, .started_us = sluiced_unix_us(),
			/* sluicectl reload re-reads the same file */
			.ops = { .cfg = &sl_cfg,
				 .profile_dir = SLUICE_PROFILE_DIR },
		};
		if (ctlsock_open(sl_cfg.ctl_socket, &sl_cmdenv, &sl_sock, err,
				 sizeof(err)) < 0) {
			sluiced_stop_io(sl_cfg.n_io);
			sluiced_teardown(true);
			log_fatal("%s: [control] socket: %s", sl_cfg.path, err);
		}
		log_info("control socket %s%s", sl_cfg.ctl_socket, sl_sched ?
			 ", delivery on" : ", delivery off ([delivery] enabled)");
	}
	if (sl_cfg.metrics_listen[0]) {
		if (!sl_store_open)     /* lcore counters only */
			sl_cmdenv = (struct ctlcmd_env){
				.io = sl_io, .n_io = sl_cfg.n_io,
				.cfg = &sl_cfg, .started_us = sluiced_unix_us(),
			};
		if (metrics_open(sl_cfg.metrics_listen, &sl_cmdenv,
				 &sl_metrics, err, sizeof(err)) < 0) {
			sluiced_stop_io(sl_cfg.n_io);
			sluiced_teardown(true);
			log_fatal("%s: [control] metrics_listen: %s",
				  sl_cfg.path, err);
		}
		log_info("metrics on http://%s/metrics", sl_cfg.metrics_listen);
	}
	sl_ctl.sched = sl_sched;
	sl_ctl.sock = sl_sock;
	sl_ctl.metrics = sl_metrics;
	sig = ctl_run(&sl_ctl, sl_io, sl_cfg.n_io, sl_cfg.stats_interval_s);

	/* a second signal now ends the process the hard way */
	pthread_sigmask(SIG_UNBLOCK, &sl_ctl.sigs, NULL);
	log_info("%s: stopping", strsignal(sig));
	if (sl_sched)
		dsched_shutdown(sl_sched);
	sluiced_stop_io(sl_cfg.n_io);
	/* jobs the io lcores gave back, results still to commit */
	for (unsigned ms = 0; sl_sched && !dsched_drained(sl_sched) &&
	     ms < 3000; ms++) {
		dsched_poll(sl_sched, 0);
		rte_delay_us_sleep(1000);
	}
	ctl_log_stats(sl_io, sl_cfg.n_io);
	sluiced_teardown(true);
	log_info("stopped");
	return 0;
}
