/*
 * deliver.h - outbound relay on one io lcore: runs the delivery jobs
 * (djob.h) the scheduler hands this lcore, over the lcore's own userspace
 * TCP stack (net.h), with the sans-IO SMTP client engine (smtp_client.h),
 * STARTTLS (tls_conn.h) and the message read in place from the queue
 * (stor_queue.h).
 *
 * Sans-DPDK: a struct deliver works on a struct net_stack * and a clock
 * the caller passes in (microseconds, monotonic, the stack's clock), so
 * unit tests drive it with two stacks back to back and a fake clock.
 *
 *   deliver_job(d, job, now)        accept a job (deliver_room() > 0)
 *   deliver_event(d, ev, now)       socket events of its connections
 *   deliver_poll(d, now)            timers: connect, SMTP, idle, QUIT
 *   deliver_done_peek/_consume      finished jobs, each exactly once
 *   deliver_stop(d, now)            finish every job still held
 *
 * Per job: an idle connection of the same destination (dest_id, TLS
 * policy, one of the job's hops not yet given up) that has carried fewer
 * than the job's max_msgs (a directory limit; else [delivery]
 * max_msgs_per_conn) messages is reused (the engine sends RSET before
 * every later message); otherwise net_connect to the job's current hop.
 * Source ports: net_connect asks the glue's net_io.pick_sport, which
 * (glue.c -> rss_pick_sport) picks a port whose reply hashes by RSS to
 * this lcore's queue, so replies land here. A hop is given up on connect
 * failure, connect_timeout_s, a lost connection or a failed session
 * before the server is ready for mail (greeting 421/5xx, EHLO/HELO
 * refused, TLS required but missing or failing): the job moves to the
 * next hop. Every hop failed -> DJOB_CONN_FAIL.
 *
 * Results (djob.h fields; texts are single lines, "A.B.C.D:port: why"):
 *   DJOB_OK         the transaction started (MAIL sent): rcpt[i] and the
 *                   message code/enh/text are the engine's (RCPT refusal,
 *                   else end-of-data reply, or the failure that ended the
 *                   session: 421 from the server, 421 4.4.2 timeout,
 *                   451 4.4.2 "lost connection ..." for recipients that
 *                   had no refusal of their own).
 *   DJOB_CONN_FAIL  no hop gave a usable session: code is the server's
 *                   4xx or 451 (a 5xx greeting/EHLO is reported as 451
 *                   with its enh class turned to 4), enh 4.4.1 (connect
 *                   failed / timed out), 4.4.2 (connection lost), 4.7.5
 *                   (TLS), or the server's; text names the last hop
 *                   tried; every recipient gets the same triple.
 *                   Shutdown: 451 4.3.2 "sluiced shutting down".
 *   DJOB_MSG_FAIL   the message could not be sent: code 0 "message no
 *                   longer in the queue" (or a storage error, or a
 *                   recipient index out of range); a local refusal by the
 *                   engine (SIZE, 8BITMIME, SMTPUTF8, bare CR/LF: 5xx,
 *                   permanent) with per-recipient results.
 * A reused connection that dies before answering anything of the job's
 * transaction does not count: the job is retried once on a fresh
 * connection. Idle connections are kept idle_conn_s (QUIT then close),
 * dropped silently when the peer closes them; one that reached
 * max_msgs_per_conn is QUIT at once.
 *
 * Memory is bounded and allocated up front: max_conns connection slots
 * (each with its own stor_reader, which holds an LMDB reader slot once
 * used), a FIFO and a done list of max_jobs entries; engine and TLS
 * state per connection, message scratch (addresses) per slot, grown
 * only when a message needs more. The message body is passed to the
 * engine in place from the LMDB map and the snapshot stays open until
 * the message is DONE.
 *
 * Errors: deliver_job returns 0 or -DELIVER_E*; deliver_new returns NULL.
 */
#ifndef SLUICE_DELIVER_H
#define SLUICE_DELIVER_H

#include <stdint.h>

#include "cfg.h"
#include "djob.h"
#include "net.h"
#include "svc.h"

struct stor_queue;
struct tls_ctx;
struct deliver;

#define DELIVER_CONNS_DEFAULT 32
#define DELIVER_QUIT_WAIT_US 5000000u   /* wait this long for 221 */

enum deliver_err {
	DELIVER_OK = 0,
	DELIVER_EINVAL = 1,      /* NULL job */
	DELIVER_EFULL = 2,       /* max_jobs held: take finished ones first */
};

struct deliver_conf {
	struct net_stack *s;
	struct stor_queue *q;
	struct tls_ctx *tls;            /* client context, or NULL: no TLS */
	const struct cfg_delivery *cfg; /* connect_timeout_s, idle_conn_s,
					 * max_msgs_per_conn, helo_name */
	unsigned owner;                 /* io lcore index (logs, checks) */
	unsigned max_conns;             /* 0 = DELIVER_CONNS_DEFAULT */
	unsigned max_jobs;              /* 0 = cfg->max_active */
	/* event function put into every connection's svc_def (the socket's
	 * user pointer), for svc dispatch; NULL when the caller dispatches
	 * its own events to deliver_event */
	void (*svc_event)(struct svc *v, const struct net_event *ev);
	/* engine timeouts; 0 = RFC 5321 defaults (tests shorten them) */
	uint32_t t_reply_ms;
	/* engine: never pipeline / never BDAT (tests, broken peers) */
	uint8_t no_pipelining, no_chunking;
};

struct deliver_stats {
	uint64_t jobs_in, jobs_out, jobs_ok, jobs_conn_fail, jobs_msg_fail;
	uint64_t rcpt_2xx, rcpt_4xx, rcpt_5xx;
	uint64_t connects, connect_fail, hop_fail, sessions, reused,
		 retried_fresh, conn_lost, idle_closed, quits;
	uint64_t tls_ok, tls_fail;
	uint64_t msgs, body_bytes;
	uint64_t waiting, active, done_pending, conns, conns_idle; /* gauges */
};

/* deliver_new - slots, readers and lists for one lcore; NULL on bad
 * configuration (no stack/queue/cfg, empty helo_name) or out of memory */
struct deliver *deliver_new(const struct deliver_conf *conf);
/* deliver_free - release everything (after deliver_stop and after the
 * finished jobs were taken; the stack may already be destroyed) */
void deliver_free(struct deliver *d);

/* deliver_room - jobs deliver_job takes now */
unsigned deliver_room(const struct deliver *d);
/* deliver_job - take one job (result fields are reset; t_start_us = now)
 * -DELIVER_EFULL when max_jobs are held, -DELIVER_EINVAL for NULL.
 * A malformed job (nhops 0, nrcpt 0) is finished at once. */
int deliver_job(struct deliver *d, struct djob *j, uint64_t now);
/* deliver_event - one socket event; ignores events of other sockets */
void deliver_event(struct deliver *d, const struct net_event *ev,
		   uint64_t now);
/* deliver_poll - timers and waiting jobs; returns work done (0 = idle) */
int deliver_poll(struct deliver *d, uint64_t now);
/* deliver_deadline - when deliver_poll has timed work (UINT64_MAX: none) */
uint64_t deliver_deadline(const struct deliver *d);

/* deliver_done_peek - up to max finished jobs, oldest first (they stay
 * until consumed); deliver_done_consume - the first n were handed on */
unsigned deliver_done_peek(const struct deliver *d, struct djob **out,
			   unsigned max);
void deliver_done_consume(struct deliver *d, unsigned n);

/* deliver_stop - abort every connection; every job still held (waiting
 * or in progress) is finished DJOB_CONN_FAIL 451 4.3.2 "sluiced shutting
 * down" (take them with deliver_done_peek) */
void deliver_stop(struct deliver *d, uint64_t now);
/* deliver_job_refuse - finish a job deliver never took the same way (a
 * job left on the ring at shutdown) */
void deliver_job_refuse(struct djob *j, uint64_t now);

/* deliver_stats - counters and gauges */
void deliver_stats(const struct deliver *d, struct deliver_stats *out);
const char *deliver_strerror(int err);

#endif
