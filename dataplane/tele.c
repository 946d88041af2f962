/*
 * tele.c - rte_telemetry commands (see tele.h).
 *
 * Input: telemetry requests on DPDK's telemetry thread. Output: JSON dicts
 * built with rte_tel_data. Invariant: every callback holds tele_lock, and
 * tele_shutdown takes it before the port and lcores go away, so no
 * callback sees a closed port. File-scope state is needed because 22.11
 * callbacks carry no user argument; it is written once in tele_init.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_spinlock.h>
#include <rte_telemetry.h>

#include "cfg.h"
#include "iolcore.h"
#include "mstore.h"
#include <rte_ring.h>
#include "worker.h"
#include "nicprof.h"
#include "port.h"
#include "tele.h"
#include "tsc.h"

#define TELE_SNAP_WAIT_MS 200

static struct {
	rte_spinlock_t lock;
	bool up;
	const struct cfg *cfg;
	const struct nicprof *prof;
	const struct port *port;
	struct iolcore *io;
	unsigned n_io;
	bool no_huge;
	uint64_t start_us;
	struct iolcore_snap snap;   /* scratch, used under lock */
	struct mstore *m;
	struct worker *wk;
	unsigned n_wk;
} tele = { .lock = RTE_SPINLOCK_INITIALIZER };

void tele_name(const char *in, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < outlen; i++)
		out[i] = in[i] == '.' ? '/' : in[i];
	out[i] = '\0';
}

/* tele_begin - lock and check we are up; -EBUSY while stopping */
static int tele_begin(void)
{
	rte_spinlock_lock(&tele.lock);
	if (!tele.up) {
		rte_spinlock_unlock(&tele.lock);
		return -EBUSY;
	}
	return 0;
}

static void tele_end(void)
{
	rte_spinlock_unlock(&tele.lock);
}

/* tele_lcore_param - io lcore index from "N" (an lcore id), or -1 */
static int tele_lcore_param(const char *params)
{
	char *end;
	unsigned long id;

	if (!params || !*params)
		return -1;
	id = strtoul(params, &end, 10);
	if (*end)
		return -2;
	for (unsigned i = 0; i < tele.n_io; i++)
		if (tele.io[i].lcore_id == id)
			return (int)i;
	return -2;
}

/* tele_net_counters - /sluice/net/counters[,LCORE] */
static int tele_net_counters(const char *cmd, const char *params,
			     struct rte_tel_data *d)
{
	struct net_counter sum[IOLCORE_SNAP_MAX];
	unsigned n = 0;
	int which;

	(void)cmd;
	if (tele_begin() < 0)
		return -EBUSY;
	which = tele_lcore_param(params);
	if (which == -2) {
		tele_end();
		return -EINVAL;
	}
	for (unsigned i = 0; i < tele.n_io; i++) {
		if (which >= 0 && (unsigned)which != i)
			continue;
		iolcore_snapshot(&tele.io[i], &tele.snap, TELE_SNAP_WAIT_MS);
		for (unsigned k = 0; k < tele.snap.n_net; k++) {
			unsigned j;

			/* same stack code everywhere: same order, but match */
			for (j = 0; j < n; j++)
				if (strcmp(sum[j].name, tele.snap.net[k].name) == 0)
					break;
			if (j == n) {
				if (n == IOLCORE_SNAP_MAX)
					continue;
				sum[n].name = tele.snap.net[k].name;
				sum[n++].value = 0;
			}
			sum[j].value += tele.snap.net[k].value;
		}
	}
	tele_end();
	rte_tel_data_start_dict(d);
	for (unsigned j = 0; j < n && j < RTE_TEL_MAX_DICT_ENTRIES; j++) {
		char name[RTE_TEL_MAX_STRING_LEN];

		tele_name(sum[j].name, name, sizeof(name));
		rte_tel_data_add_dict_u64(d, name, sum[j].value);
	}
	return 0;
}

/* the glue counters /sluice/port/stats reports, in output order */
static const struct {
	const char *name;
	size_t off;
} tele_glue_fields[] = {
#define TELE_GLUE(name, f) { name, offsetof(struct glue_stats, f) }
	TELE_GLUE("glue/rx_frames", rx_frames),
	TELE_GLUE("glue/rx_bursts", rx_bursts),
	TELE_GLUE("glue/rx_multiseg_drop", rx_multiseg_drop),
	TELE_GLUE("glue/tx_frames", tx_frames),
	TELE_GLUE("glue/tx_bursts", tx_bursts),
	TELE_GLUE("glue/tx_retries", tx_retries),
	TELE_GLUE("glue/tx_drop", tx_drop),
	TELE_GLUE("glue/tx_alloc_fail", tx_alloc_fail),
	TELE_GLUE("glue/tx_too_long", tx_too_long),
	TELE_GLUE("impair/lost", impair_lost),
	TELE_GLUE("impair/duplicated", impair_duplicated),
	TELE_GLUE("impair/delayed", impair_delayed),
	TELE_GLUE("impair/reordered", impair_reordered),
#undef TELE_GLUE
};

/* tele_glue_u64 - counter j of tele_glue_fields in g */
static uint64_t *tele_glue_u64(struct glue_stats *g, unsigned j)
{
	return (uint64_t *)((char *)g + tele_glue_fields[j].off);
}

/* tele_port_stats - /sluice/port/stats */
static int tele_port_stats(const char *cmd, const char *params,
			   struct rte_tel_data *d)
{
	struct rte_eth_stats es;
	struct glue_stats g;
	int rc;

	(void)cmd;
	(void)params;
	if (tele_begin() < 0)
		return -EBUSY;
	rc = rte_eth_stats_get(tele.port->id, &es);
	memset(&g, 0, sizeof(g));
	for (unsigned i = 0; i < tele.n_io; i++) {
		iolcore_snapshot(&tele.io[i], &tele.snap, TELE_SNAP_WAIT_MS);
		for (unsigned j = 0; j < RTE_DIM(tele_glue_fields); j++)
			*tele_glue_u64(&g, j) +=
				*tele_glue_u64(&tele.snap.glue, j);
	}
	tele_end();
	if (rc != 0)
		return rc;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "ipackets", es.ipackets);
	rte_tel_data_add_dict_u64(d, "opackets", es.opackets);
	rte_tel_data_add_dict_u64(d, "ibytes", es.ibytes);
	rte_tel_data_add_dict_u64(d, "obytes", es.obytes);
	rte_tel_data_add_dict_u64(d, "imissed", es.imissed);
	rte_tel_data_add_dict_u64(d, "ierrors", es.ierrors);
	rte_tel_data_add_dict_u64(d, "oerrors", es.oerrors);
	rte_tel_data_add_dict_u64(d, "rx_nombuf", es.rx_nombuf);
	for (unsigned j = 0; j < RTE_DIM(tele_glue_fields); j++)
		rte_tel_data_add_dict_u64(d, tele_glue_fields[j].name,
					  *tele_glue_u64(&g, j));
	return 0;
}

/* tele_services - /sluice/services: per service, summed over lcores */
static int tele_services(const char *cmd, const char *params,
			 struct rte_tel_data *d)
{
	struct svc_stats s[SVC_COUNT];

	(void)cmd;
	(void)params;
	if (tele_begin() < 0)
		return -EBUSY;
	memset(s, 0, sizeof(s));
	for (unsigned i = 0; i < tele.n_io; i++) {
		iolcore_snapshot(&tele.io[i], &tele.snap, TELE_SNAP_WAIT_MS);
		for (unsigned k = 0; k < SVC_COUNT; k++) {
			s[k].accepted += tele.snap.svc[k].accepted;
			s[k].closed += tele.snap.svc[k].closed;
			s[k].closed_error += tele.snap.svc[k].closed_error;
			s[k].bytes_in += tele.snap.svc[k].bytes_in;
			s[k].bytes_out += tele.snap.svc[k].bytes_out;
		}
	}
	tele_end();
	rte_tel_data_start_dict(d);
	for (unsigned k = 0; k < SVC_COUNT; k++) {
		char n[64];

#define TELE_SVC(f) do { \
	snprintf(n, sizeof(n), "%s/" #f, svc_name(k)); \
	rte_tel_data_add_dict_u64(d, n, s[k].f); } while (0)
		TELE_SVC(accepted);
		TELE_SVC(closed);
		TELE_SVC(closed_error);
		TELE_SVC(bytes_in);
		TELE_SVC(bytes_out);
#undef TELE_SVC
	}
	return 0;
}

/* tele_lcores - /sluice/lcores: reactor statistics per io lcore */
static int tele_lcores(const char *cmd, const char *params,
		       struct rte_tel_data *d)
{
	(void)cmd;
	(void)params;
	if (tele_begin() < 0)
		return -EBUSY;
	rte_tel_data_start_dict(d);
	for (unsigned i = 0; i < tele.n_io; i++) {
		const struct reactor_stats *r = &tele.snap.reactor;
		char n[64];

		iolcore_snapshot(&tele.io[i], &tele.snap, TELE_SNAP_WAIT_MS);
#define TELE_LC(f) do { \
	snprintf(n, sizeof(n), "lcore%u/" #f, tele.io[i].lcore_id); \
	rte_tel_data_add_dict_u64(d, n, r->f); } while (0)
		TELE_LC(rounds);
		TELE_LC(busy_rounds);
		TELE_LC(sleeps);
		TELE_LC(slept_us);
#undef TELE_LC
	}
	tele_end();
	return 0;
}

/* tele_info - /sluice/info: what is running where */
static int tele_info(const char *cmd, const char *params,
		     struct rte_tel_data *d)
{
	const struct port *p;
	const struct cfg *c;
	char buf[256];
	size_t off = 0;

	(void)cmd;
	(void)params;
	if (tele_begin() < 0)
		return -EBUSY;
	p = tele.port;
	c = tele.cfg;
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "version", SLUICE_VERSION);
	rte_tel_data_add_dict_int(d, "pid", (int)getpid());
	rte_tel_data_add_dict_u64(d, "uptime_s",
				  (tsc_now_us() - tele.start_us) / 1000000);
	rte_tel_data_add_dict_string(d, "config", c->path);
	rte_tel_data_add_dict_string(d, "nic_profile", tele.prof->path);
	rte_tel_data_add_dict_string(d, "file_prefix", c->file_prefix);
	rte_tel_data_add_dict_string(d, "hugepages", tele.no_huge ? "no"
								  : "yes");
	rte_tel_data_add_dict_string(d, "port", p->name);
	rte_tel_data_add_dict_string(d, "driver", p->driver);
	snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", p->mac[0],
		 p->mac[1], p->mac[2], p->mac[3], p->mac[4], p->mac[5]);
	rte_tel_data_add_dict_string(d, "mac", buf);
	rte_tel_data_add_dict_int(d, "mtu", p->mtu);
	snprintf(buf, sizeof(buf), "%u.%u.%u.%u/%u", c->ip >> 24,
		 c->ip >> 16 & 255, c->ip >> 8 & 255, c->ip & 255,
		 c->prefix_len);
	rte_tel_data_add_dict_string(d, "address", buf);
	snprintf(buf, sizeof(buf), "%u.%u.%u.%u", c->gateway >> 24,
		 c->gateway >> 16 & 255, c->gateway >> 8 & 255,
		 c->gateway & 255);
	rte_tel_data_add_dict_string(d, "gateway", c->gateway ? buf : "none");
	rte_tel_data_add_dict_int(d, "main_lcore", (int)c->main_lcore);
	buf[0] = '\0';
	for (unsigned i = 0; i < tele.n_io && off < sizeof(buf); i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%u",
					i ? "," : "", tele.io[i].lcore_id);
	rte_tel_data_add_dict_string(d, "io_lcores", buf);
	rte_tel_data_add_dict_int(d, "queues", (int)p->nb_queues);
	snprintf(buf, sizeof(buf), "rx_ip_csum=%d rx_tcp_csum=%d "
		 "tx_ip_csum=%d tx_tcp_csum=%d", p->grant.rx_ip_csum,
		 p->grant.rx_tcp_csum, p->grant.tx_ip_csum,
		 p->grant.tx_tcp_csum);
	rte_tel_data_add_dict_string(d, "offloads", buf);
	snprintf(buf, sizeof(buf), "%s%s%s%s", c->svc_echo ? "echo/7 " : "",
		 c->svc_discard ? "discard/9 " : "", c->svc_smtp ? "smtp" : "",
		 c->svc_echo || c->svc_discard || c->svc_smtp ? "" : "none");
	rte_tel_data_add_dict_string(d, "services", buf);
	tele_end();
	return 0;
}

/* tele_smtp_counters - /sluice/smtp/counters */
static int tele_smtp_counters(const char *cmd, const char *params,
			      struct rte_tel_data *d)
{
	struct smtpd_stats t;
	struct worker_stats w;
	struct stor_writer_stats ws;
	uint64_t ring[PRIO_LEVELS];
	char n[64];

	(void)cmd;
	(void)params;
	if (tele_begin() < 0)
		return -EBUSY;
	if (!tele.m) {
		tele_end();
		return -ENOTSUP;
	}
	memset(&t, 0, sizeof(t));
	memset(&w, 0, sizeof(w));
	for (unsigned i = 0; i < tele.n_io; i++) {
		const struct smtpd_stats *s = &tele.snap.smtpd;

		iolcore_snapshot(&tele.io[i], &tele.snap, TELE_SNAP_WAIT_MS);
		for (size_t k = 0; k < sizeof(t) / sizeof(uint64_t); k++) {
			if (offsetof(struct smtpd_stats, eod_to_250_max_us) ==
			    k * sizeof(uint64_t)) {
				if (s->eod_to_250_max_us > t.eod_to_250_max_us)
					t.eod_to_250_max_us =
						s->eod_to_250_max_us;
				continue;
			}
			((uint64_t *)&t)[k] += ((const uint64_t *)s)[k];
		}
	}
	for (unsigned i = 0; i < tele.n_wk; i++) {
		const struct worker_stats *s = &tele.wk[i].st;

		for (size_t k = 0; k < sizeof(w) / sizeof(uint64_t); k++)
			((uint64_t *)&w)[k] += ((const uint64_t *)s)[k];
	}
	for (unsigned p = 0; p < PRIO_LEVELS; p++)
		ring[p] = rte_ring_count(tele.m->prio[p]);
	stor_writer_stats(tele.m->w, &ws);
	rte_tel_data_start_dict(d);
#define TS(f) rte_tel_data_add_dict_u64(d, #f, t.f)
	TS(sessions); TS(active); TS(closed);
	TS(refused_lcore_limit); TS(refused_client_conns);
	TS(refused_client_rate);
	rte_tel_data_add_dict_u64(d, "replies_2xx", t.replies[2]);
	rte_tel_data_add_dict_u64(d, "replies_3xx", t.replies[3]);
	rte_tel_data_add_dict_u64(d, "replies_4xx", t.replies[4]);
	rte_tel_data_add_dict_u64(d, "replies_5xx", t.replies[5]);
	TS(mail); TS(rcpt_ok); TS(rcpt_unknown); TS(rcpt_relay_denied);
	TS(queued); TS(queued_bytes); TS(data_refused);
	TS(auth_ok); TS(auth_fail); TS(auth_required); TS(tls_ok); TS(tls_fail);
	rte_tel_data_add_dict_u64(d, "pushback/ring_full", t.push_ring_full);
	rte_tel_data_add_dict_u64(d, "pushback/wait_timeout",
				  t.push_wait_timeout);
	rte_tel_data_add_dict_u64(d, "pushback/queue_full", t.push_queue_full);
	rte_tel_data_add_dict_u64(d, "pushback/store_full", t.push_store_full);
	rte_tel_data_add_dict_u64(d, "pushback/writer_busy", w.writer_busy);
	TS(waiting);
	rte_tel_data_add_dict_u64(d, "eod_to_250_avg_us", t.eod_to_250_n ?
				  t.eod_to_250_us_sum / t.eod_to_250_n : 0);
	TS(eod_to_250_max_us);
#undef TS
	for (unsigned p = 0; p < PRIO_LEVELS; p++) {
		snprintf(n, sizeof(n), "ring/%u/depth", p);
		rte_tel_data_add_dict_u64(d, n, ring[p]);
		snprintf(n, sizeof(n), "ring/%u/taken", p);
		rte_tel_data_add_dict_u64(d, n, w.taken[p]);
	}
	rte_tel_data_add_dict_u64(d, "worker/submitted", w.submitted);
	rte_tel_data_add_dict_u64(d, "worker/committed", w.committed);
	rte_tel_data_add_dict_u64(d, "worker/failed_full", w.failed_full);
	rte_tel_data_add_dict_u64(d, "worker/failed_store", w.failed_store);
	rte_tel_data_add_dict_u64(d, "worker/loops", w.loops);
	rte_tel_data_add_dict_u64(d, "worker/too_big", w.too_big);
	rte_tel_data_add_dict_u64(d, "writer/batches", ws.batches);
	rte_tel_data_add_dict_u64(d, "writer/committed", ws.committed);
	rte_tel_data_add_dict_u64(d, "writer/max_batch", ws.max_batch);
	rte_tel_data_add_dict_u64(d, "queue/full", stor_queue_full(tele.m->q));
	rte_tel_data_add_dict_u64(d, "log/lines",
				  atomic_load(&tele.m->st.log_lines));
	rte_tel_data_add_dict_u64(d, "log/drops",
				  atomic_load(&tele.m->st.log_drops));
	tele_end();
	return 0;
}

/* tele_deliver_counters - /sluice/deliver/counters: deliver_stats summed
 * over the io lcores with delivery on (parameter: one io lcore id) */
static int tele_deliver_counters(const char *cmd, const char *params,
				 struct rte_tel_data *d)
{
	struct deliver_stats t;
	uint64_t dres_full = 0;
	unsigned on = 0;
	int one;

	(void)cmd;
	if (tele_begin() < 0)
		return -EBUSY;
	one = tele_lcore_param(params);
	if (params && *params && one < 0) {
		tele_end();
		return -EINVAL;
	}
	memset(&t, 0, sizeof(t));
	for (unsigned i = 0; i < tele.n_io; i++) {
		const struct deliver_stats *s = &tele.snap.deliver;

		if (!tele.io[i].delivery || (one >= 0 && (unsigned)one != i))
			continue;
		on++;
		iolcore_snapshot(&tele.io[i], &tele.snap, TELE_SNAP_WAIT_MS);
		for (size_t k = 0; k < sizeof(t) / sizeof(uint64_t); k++)
			((uint64_t *)&t)[k] += ((const uint64_t *)s)[k];
		dres_full += tele.snap.dres_full;
	}
	if (!on) {
		tele_end();
		return -ENOTSUP;
	}
	rte_tel_data_start_dict(d);
#define TD(f) rte_tel_data_add_dict_u64(d, #f, t.f)
	TD(jobs_in); TD(jobs_out); TD(jobs_ok); TD(jobs_conn_fail);
	TD(jobs_msg_fail); TD(rcpt_2xx); TD(rcpt_4xx); TD(rcpt_5xx);
	TD(connects); TD(connect_fail); TD(hop_fail); TD(sessions);
	TD(reused); TD(retried_fresh); TD(conn_lost); TD(idle_closed);
	TD(quits); TD(tls_ok); TD(tls_fail); TD(msgs); TD(body_bytes);
	TD(waiting); TD(active); TD(done_pending); TD(conns); TD(conns_idle);
#undef TD
	rte_tel_data_add_dict_u64(d, "dres_full", dres_full);
	/* ring depths (rte_ring_count is safe from any thread): jobs
	 * waiting for the lcores counted above, results and newly committed
	 * messages waiting for the scheduler */
	if (tele.m) {
		uint64_t djob = 0;

		for (unsigned i = 0; i < tele.n_io; i++)
			if (tele.io[i].delivery && tele.m->djob[i] &&
			    (one < 0 || (unsigned)one == i))
				djob += rte_ring_count(tele.m->djob[i]);
		rte_tel_data_add_dict_u64(d, "ring/djob/depth", djob);
		rte_tel_data_add_dict_u64(d, "ring/dres/depth", tele.m->dres ?
					  rte_ring_count(tele.m->dres) : 0);
		rte_tel_data_add_dict_u64(d, "ring/sched_new/depth",
					  tele.m->sched_new ?
					  rte_ring_count(tele.m->sched_new) : 0);
	}
	tele_end();
	return 0;
}

void tele_smtp(struct mstore *m, struct worker *wk, unsigned n_wk)
{
	rte_spinlock_lock(&tele.lock);
	tele.m = m;
	tele.wk = wk;
	tele.n_wk = n_wk;
	rte_spinlock_unlock(&tele.lock);
	if (m)
		rte_telemetry_register_cmd("/sluice/smtp/counters",
			tele_smtp_counters, "SMTP sessions, replies by class, "
			"priority ring depths, pushback by cause, workers, "
			"writer");
}

void tele_init(const struct cfg *c, const struct nicprof *prof,
	       const struct port *p, struct iolcore *io, unsigned n_io,
	       bool no_huge)
{
	rte_spinlock_lock(&tele.lock);
	tele.cfg = c;
	tele.prof = prof;
	tele.port = p;
	tele.io = io;
	tele.n_io = n_io;
	tele.no_huge = no_huge;
	tele.start_us = tsc_now_us();
	tele.up = true;
	rte_spinlock_unlock(&tele.lock);
	rte_telemetry_register_cmd("/sluice/net/counters", tele_net_counters,
		"Stack counters summed over io lcores; parameter: an io lcore "
		"id for one lcore. Names: '.' of the stack shown as '/'");
	rte_telemetry_register_cmd("/sluice/port/stats", tele_port_stats,
		"Port statistics (rte_eth_stats) and glue tx/rx drops");
	rte_telemetry_register_cmd("/sluice/services", tele_services,
		"Echo/discard connections and bytes");
	rte_telemetry_register_cmd("/sluice/lcores", tele_lcores,
		"Reactor rounds and idle sleeps per io lcore");
	rte_telemetry_register_cmd("/sluice/info", tele_info,
		"sluiced version, config, port, address and lcores");
	rte_telemetry_register_cmd("/sluice/deliver/counters",
		/* help: at most RTE_TEL_MAX_STRING_LEN - 1 bytes, else the
		 * command is not registered */
		tele_deliver_counters, "Delivery jobs, results, connections, "
		"ring depths, summed over io lcores; parameter: an io lcore id "
		"for one lcore");
}

void tele_shutdown(void)
{
	rte_spinlock_lock(&tele.lock);
	tele.up = false;
	rte_spinlock_unlock(&tele.lock);
}
