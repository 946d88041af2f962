/*
 * sb_gen.h - the load generator's configuration, per-thread worker and
 * statistics, shared by sb_gen.c (options, threads, report) and
 * sb_client.c (the event loop and SMTP client state machine).
 *
 * A worker owns a transport (sb_tport.h) and a slice of the sessions, messages and
 * arrival rate; workers share nothing but the read-only config. Message
 * sequence numbers are global: worker w of J sends seq w+1, w+1+J, ...
 *
 * Latency definitions (all microseconds, CLOCK_MONOTONIC):
 *   intended  closed loop: when a session takes the message;
 *             open loop: t0 + k / rate (its slot in the arrival schedule)
 *   started   when a session takes the message (connect or MAIL)
 *   t250      final 2xx reply - intended      (the "latency")
 *   service   final 2xx reply - started       (what a closed loop sees)
 */
#ifndef SB_GEN_H
#define SB_GEN_H

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "sb_conn.h"
#include "sb_hist.h"
#include "sb_msg.h"
#include "sb_util.h"

enum gen_err {
	GE_REFUSED,        /* connect: connection refused */
	GE_CONN_TIMEOUT,   /* connect: no answer within --connect-timeout */
	GE_CONNECT,        /* connect: other error (unreachable, ...) */
	GE_TIMEOUT,        /* no reply / no progress within --timeout */
	GE_RESET,          /* read/write error (reset) mid-session */
	GE_CLOSED,         /* server closed the connection mid-session */
	GE_BAD_REPLY,      /* reply not "ddd[ -]text", or out of sequence */
	GE_BANNER,         /* greeting was not 220 */
	GE_EHLO,           /* EHLO refused */
	GE_NO_EXT,         /* STARTTLS/CHUNKING asked for but not offered */
	GE_STARTTLS,       /* STARTTLS refused */
	GE_TLS,            /* TLS handshake or record error */
	GE_UNFINISHED,     /* in flight when the run's time ran out */
	GE_UNSENT,         /* open loop: due but never started (behind schedule) */
	GE_MAX
};

extern const char *const gen_err_names[GE_MAX];

struct sb_tport;
struct gen_cfg;

enum gen_transport { GT_KERNEL, GT_MEMIF };

/* memif transport settings (sb_dpdk.h) */
struct gen_memif {
	const char *socket, *devargs, *file_prefix, *cpus, *mac;
	unsigned id, mem_mb;
	uint32_t local_ip;          /* host order */
	uint8_t prefix_len;
	bool no_huge;
	uint64_t link_timeout_us, idle_sleep_us;
};

struct gen_cfg {
	struct sockaddr_in server;
	char server_str[64];
	unsigned sessions, threads, rcpts, msgs_per_conn; /* 0 = unlimited reuse */
	uint64_t count;
	uint64_t duration_us, drain_us, connect_timeout_us, timeout_us;
	double rate;                /* 0 = closed loop */
	bool pipelining, bdat, starttls, progress;
	struct sb_sizes sizes;
	struct sb_body body;
	const char *helo, *from, *json;
	const char **to;
	unsigned nto;
	char run_id[40];
	uint64_t seed;
	SSL_CTX *tls;
	enum gen_transport transport;
	struct gen_memif memif;
	/* a worker's transport, made in its thread at the start of the run */
	struct sb_tport *(*tport_new)(const struct gen_cfg *cfg, unsigned worker);
};

struct gen_stats {
	uint64_t started, done, delivered, deferred, rejected, errors;
	uint64_t bytes_ok, rcpt_rejected, conns, tls_ok;
	uint64_t codes[600];
	uint64_t err[GE_MAX];
	char err_detail[GE_MAX][160];
	struct sb_hist t250, service;
	struct sb_series series;
};

struct gen_sess;

struct gen_worker {
	unsigned id;
	const struct gen_cfg *cfg;
	struct sb_tport *tp;
	struct gen_sess *sess;
	unsigned nsess;
	uint64_t count;          /* messages this worker runs */
	uint64_t next;           /* next message index to start */
	double rate;             /* this worker's share, msgs/s; 0 = closed */
	uint64_t t0, wall0;      /* start of run: monotonic, realtime */
	uint64_t rng;
	uint64_t inflight, backlog;
	struct gen_stats st;
	volatile int done_flag;
};

/* sb_client_run - the worker's event loop; returns when its messages are
 * done or time is up (every in-flight message accounted for) */
void sb_client_run(struct gen_worker *w);

int sb_gen_main(int argc, char **argv);

#endif
