/*
 * smtpd.h - the SMTP service of one io lcore: sessions of the sans-IO
 * server engine (smtp_server.h) over the userspace stack (net.h), with
 * STARTTLS (tls_conn.h), verdicts answered from the directory on this
 * lcore (RCPT, MAIL) or asynchronously (AUTH on the aux thread, or the
 * LDAP thread; RCPT for an LDAP-backed domain missing from the LMDB cache
 * parks the session until the LDAP thread answers on the xdone ring; end
 * of data through priority ring -> worker -> storage writer), and the
 * connection policy (per-lcore session limit, per-client limits, banner
 * delay).
 *
 * Never 250 before the commit: the DATA verdict is answered only when
 * the work item comes back on this lcore's done ring with result 0.
 * Backpressure: a parked session reads nothing (its TCP window closes);
 * a full priority ring keeps the session waiting and retrying, past
 * queue_wait_ms it gets 451 4.3.0; a queue above its high watermark gets
 * 452 4.3.1 at MAIL. Counters: struct smtpd_stats (telemetry
 * /sluice/smtp/counters).
 */
#ifndef SLUICE_SMTPD_H
#define SLUICE_SMTPD_H

#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"
#include "climit.h"
#include "mstore.h"
#include "net.h"
#include "smtp_server.h"
#include "svc.h"

struct tls_ctx;
struct smtpd_sess;

struct smtpd_stats {
	uint64_t sessions, active, closed;
	uint64_t refused_lcore_limit, refused_client_conns, refused_client_rate;
	uint64_t replies[6];          /* by class: [2]..[5] */
	uint64_t mail, rcpt_ok, rcpt_unknown, rcpt_relay_denied;
	uint64_t queued, queued_bytes, data_refused;
	uint64_t auth_ok, auth_fail, auth_required;
	uint64_t tls_ok, tls_fail;
	uint64_t push_ring_full, push_wait_timeout, push_queue_full,
		 push_store_full;
	uint64_t waiting;             /* sessions waiting for a ring now */
	uint64_t eod_to_250_us_sum, eod_to_250_n, eod_to_250_max_us;
	/* RCPT through the external (LDAP) directory: fresh cache answers,
	 * lookups waited for, 451 4.4.3 answers */
	uint64_t rcpt_x_hit, rcpt_x_wait, rcpt_x_unavail;
};

struct smtpd {
	struct net_stack *s;
	struct svc *svc;
	struct mstore *m;
	unsigned owner;               /* io lcore index */
	const struct cfg_smtp *c;
	struct smtp_server_cfg ecfg[2];   /* [0] relay ports, [1] submission */
	struct tls_ctx *tls;
	struct stor_dir_reader *rd;
	void *xrd;                    /* LDAP cache reader (mstore xdir) */
	struct climit lim;
	struct svc_def listen[CFG_MAX_PORTS];
	struct smtpd_sess *all, *waiting;
	unsigned n_sess;
	uint64_t epoch_ms_base, mono_us_base, next_walk_us;
	struct smtpd_stats st;
};

/* smtpd_start - listeners, reader, limiter on this lcore (runs on the io
 * lcore); 0 or -1 + err */
int smtpd_start(struct smtpd *d, struct svc *v, struct mstore *m,
		unsigned owner, const struct cfg_smtp *c, struct tls_ctx *tls,
		char *err, size_t errlen);
/* smtpd_poll - reactor poller: done ring, waiting sessions, timers */
int smtpd_poll(void *arg, uint64_t now_us);
/* smtpd_event - socket events of SMTP listeners and sessions (svc) */
void smtpd_event(struct svc *v, const struct net_event *ev);
/* smtpd_free_all - free every session (after the lcore, the workers and
 * the writer stopped) */
void smtpd_free_all(struct smtpd *d);

/* smtpd_reconfigure - new sessions use these [smtp] settings and this
 * STARTTLS context (NULL: STARTTLS not offered); sessions already open
 * keep theirs. c must stay valid while d uses it (io lcore) */
void smtpd_reconfigure(struct smtpd *d, const struct cfg_smtp *c,
		       struct tls_ctx *tls);
/* smtpd_listen - listen on the SMTP ports again (on) or stop (off: new
 * SYNs get a RST, half-open ones too; established sessions go on) for
 * sluicectl drain. Ports already in the wanted state are fine. 0 or -1 +
 * err (io lcore) */
int smtpd_listen(struct smtpd *d, bool on, char *err, size_t errlen);

#endif
