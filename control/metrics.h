/*
 * metrics.h - sluiced's counters as one sample, and the Prometheus
 * endpoint that serves them (docs/operations.md, "Metrics").
 *
 * A sample (struct metrics_sample) is taken on the control thread from
 * what ctlcmd_env names: every io lcore's snapshot (iolcore_snapshot:
 * glue, stack, SMTP, delivery, reactor counters), the worker counters,
 * ring depths (rte_ring_count), the storage writer, the scheduler's
 * status and its destinations (the dest_max largest queues), storage
 * usage. `sluicectl stats` (ctlcmd_stats.c) and GET /metrics read the
 * same sample, so both show the same numbers.
 *
 * metrics_render writes a sample in the Prometheus text exposition
 * format 0.0.4: every family has "# HELP" and "# TYPE" lines (always,
 * even with no samples), names start with sluice_, counters end in
 * _total, units are in the name (_seconds, _bytes), label values are
 * escaped (\\, \", \n). The family list is metrics_families().
 *
 * The endpoint: a kernel TCP socket ([control] metrics_listen, default
 * 127.0.0.1:9464, "off" = none) served by a non-blocking reactor poller
 * on the control thread. HTTP/1.0 and 1.1 requests: GET /metrics (query
 * string ignored) answers 200 with the exposition; other paths 404;
 * other methods 405; a request head larger than METRICS_REQ_MAX or a
 * malformed one 400. The connection is closed after the answer; one
 * open METRICS_TIMEOUT_MS after accept is dropped.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "dsched.h"
#include "iolcore.h"
#include "prio.h"
#include "stor_writer.h"
#include "worker.h"

struct ctlcmd_env;

#define METRICS_DEST_MAX 50          /* destinations in a /metrics sample */
#define METRICS_REQ_MAX 4096         /* request head bytes */
#define METRICS_TIMEOUT_MS 5000
#define METRICS_CLIENTS 8
#define METRICS_SNAP_WAIT_MS 100     /* per io lcore snapshot */

struct metrics_io {
	unsigned lcore_id, queue;
	int state;                   /* enum iolcore_state */
	bool delivery;               /* delivery runs on this lcore */
	struct iolcore_snap snap;
};

struct metrics_wk {
	unsigned lcore_id;
	struct worker_stats st;
};

struct metrics_dest {
	char name[256];
	enum stor_link link;
	uint32_t failures, active;
	uint64_t queued, held, oldest_us, attempts, delivered, deferred,
		 failed;
	char last_error[256];
};

struct metrics_sample {
	uint64_t mono_us, unix_us, uptime_s;
	unsigned n_io;
	struct metrics_io *io;
	unsigned n_wk;
	struct metrics_wk wk[CFG_MAX_WORKERS];
	bool have_rings;
	unsigned ring_prio[PRIO_LEVELS], ring_djob[CFG_MAX_IO];
	unsigned ring_dres, ring_new;
	bool have_writer;
	struct stor_writer_stats writer;
	bool have_sched;
	struct dsched_status sched;
	uint64_t dest_total;         /* destinations known */
	unsigned n_dest, dest_max;   /* the largest queues, queued desc */
	struct metrics_dest *dest;
	bool have_storage, storage_full;
	uint64_t storage_used, storage_map, storage_wm;
};

/* one named number (drop causes, TCP states) */
struct metrics_kv {
	const char *name;
	uint64_t value;
};

#define METRICS_DROP_CAUSES 18
#define METRICS_TCP_STATES 6

/* metrics_sample_take - fill s from e (control thread); dest_max: the
 * destinations kept, largest queue first. 0, or -1 out of memory (s is
 * then empty; metrics_sample_free is still fine) */
int metrics_sample_take(const struct ctlcmd_env *e, struct metrics_sample *s,
			unsigned dest_max);
void metrics_sample_free(struct metrics_sample *s);

/* metrics_drops - packets dropped by cause on one io lcore (glue and
 * stack counters); fills METRICS_DROP_CAUSES entries, returns the count */
unsigned metrics_drops(const struct iolcore_snap *s, struct metrics_kv *out);
/* metrics_tcp_states - TCP connections by state now (established,
 * syn_recv, syn_sent, closing, zombie, time_wait); METRICS_TCP_STATES */
unsigned metrics_tcp_states(const struct iolcore_snap *s,
			    struct metrics_kv *out);
/* metrics_net - one stack counter by name (0 if absent) */
uint64_t metrics_net(const struct iolcore_snap *s, const char *name);

/* metrics_render - the exposition text of s into *out (malloc'd, NUL
 * terminated; *outlen without the NUL). 0 or -1 (out of memory) */
int metrics_render(const struct metrics_sample *s, char **out,
		   size_t *outlen);
/* metrics_families - the family names metrics_render writes, NULL-ended */
const char *const *metrics_families(void);
/* metrics_label_escape - s as a label value (no quotes) into out;
 * returns the length written or needed (as snprintf) */
size_t metrics_label_escape(char *out, size_t cap, const char *s);

/* metrics_parse_listen - "A.B.C.D:PORT" (port 1..65535) into host order;
 * 0 or -1 */
int metrics_parse_listen(const char *s, uint32_t *ip, uint16_t *port);

struct metrics;
/* metrics_open - listen on addr ("A.B.C.D:PORT"); 0 or -1 + err */
int metrics_open(const char *addr, const struct ctlcmd_env *env,
		 struct metrics **out, char *err, size_t errlen);
/* metrics_poll - reactor poller: accept, read, answer */
int metrics_poll(void *arg, uint64_t now_us);
/* metrics_close - close clients and the listener */
void metrics_close(struct metrics *m);

#endif
