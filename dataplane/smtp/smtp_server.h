/*
 * smtp_server.h - sans-IO SMTP server engine (RFC 5321 + ESMTP).
 *
 * One struct smtp_server per inbound connection. Bytes and time in,
 * replies and actions out; no I/O, no clock reads, no globals.
 *
 *   n = smtp_server_input(s, bytes, len, now)   bytes consumed (maybe 0)
 *   smtp_server_output(s, &p) / _output_consume(s, n)    replies to send
 *   smtp_server_action(s)                       what the caller must do
 *   smtp_server_verdict(s, code, enh, text, now) answer a verdict request
 *   smtp_server_tls_done(s, info, now)          STARTTLS handshake finished
 *   smtp_server_tick(s, now), smtp_server_deadline(s)      timeouts
 *
 * Time: `now` is milliseconds since the Unix epoch, supplied by the
 * caller; differences drive the timeouts, the absolute value dates the
 * Received header. The glue passes a wall clock that never goes back.
 *
 * Backpressure: input is consumed only while no action is pending and the
 * output buffer has room for SMTP_SERVER_REPLY_RESERVE bytes; bytes not
 * consumed stay in the caller's TCP receive buffer (window closes).
 * All replies produced by one smtp_server_input call are contiguous in
 * the output, so a pipelined group (RFC 2920) goes out in one write.
 *
 * Verdicts: at connect, HELO/EHLO, MAIL, RCPT, AUTH and end of data the
 * engine parks with an SMTP_ACT_VERDICT_* action if that point is in
 * cfg.verdicts; otherwise it accepts by itself. While parked nothing is
 * read. smtp_server_verdict(code 0 = the default success reply) answers;
 * 421 at any point closes the session after the reply.
 *
 * Queue id: set with smtp_server_set_queue_id() any time during the
 * transaction before end of data (typically when answering the MAIL
 * verdict); it goes into the Received header ("id ...") and the envelope.
 * Without one the Received header has no id clause.
 *
 * STARTTLS (RFC 3207): after "220 Ready to start TLS" the action is
 * SMTP_ACT_STARTTLS; every byte the client pipelined after the STARTTLS
 * line and any byte fed until smtp_server_tls_done() is discarded
 * (CVE-2011-0411); tls_done resets the session to the pre-EHLO state.
 *
 * Memory per session is bounded by the config: command line buffer,
 * output buffer, recipient table (max_rcpts) and the body buffer
 * (max_msg_size + SMTP_SERVER_HEADROOM), grown through cfg.realloc_fn.
 */
#ifndef SMTP_SERVER_H
#define SMTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "smtp_addr.h"
#include "smtp_param.h"

#define SMTP_SERVER_REPLY_RESERVE 2048	/* free output needed to read on */
#define SMTP_SERVER_HEADROOM	 2048	/* room for the Received header */
#define SMTP_HOST_MAX		 255

/* policy points (cfg.verdicts bits) */
#define SMTP_VP_CONNECT	0x01
#define SMTP_VP_HELO	0x02
#define SMTP_VP_MAIL	0x04
#define SMTP_VP_RCPT	0x08
#define SMTP_VP_AUTH	0x10
#define SMTP_VP_DATA	0x20
#define SMTP_VP_ALL	0x3f

struct smtp_server_cfg {
	const char *hostname;		/* banner, EHLO, Received "by" */
	const char *banner_text;	/* after "220 <host> ESMTP "; "sluice" */
	unsigned ext;			/* SMTP_EXT_* offered (default ALL but
					 * STARTTLS and AUTH) */
	unsigned verdicts;		/* SMTP_VP_* asked of the caller */
	size_t max_cmd_line;		/* octets incl. CRLF; 2048 */
	size_t max_text_line;		/* body line incl. CRLF; 10000 */
	uint64_t max_msg_size;		/* octets; 36700160 (35 MiB) */
	unsigned max_rcpts;		/* per message; 1000 (452 beyond) */
	unsigned max_txns;		/* per session; 1000 */
	unsigned max_errors;		/* protocol errors; 20, then 421 */
	uint32_t cmd_timeout_ms;	/* RFC 5321 4.5.3.2.7: 300000 */
	uint32_t data_timeout_ms;	/* between body bytes: 300000 */
	uint32_t session_timeout_ms;	/* whole session: 3600000 */
	size_t out_cap;			/* output buffer; 16384 */
	uint8_t vrfy;			/* 1: VRFY -> 252; 0: 502 (default 1) */
	uint8_t auth_plaintext;		/* offer AUTH without TLS (tests) */
	uint8_t tls_required;		/* MAIL before STARTTLS -> 530 */
	uint8_t rcpt_route_strip;	/* 1: deliver source-routed RCPT to its
					 * final mailbox; 0 (default): 553 */
	uint8_t mtprio_trust_all;	/* 1: honour MT-PRIORITY > 0 from
					 * unauthenticated clients; 0: clamp */
	uint8_t prio_default;		/* ring when MT-PRIORITY absent: 4 */
	uint8_t prio_map[19];		/* MT-PRIORITY -9..9 -> ring 0..7 */
	void *(*realloc_fn)(void *p, size_t n);	/* default realloc */
	void (*free_fn)(void *p);		/* default free */
};

/* smtp_server_cfg_defaults - fill every field with its default (hostname
 * "localhost"); callers then override what they need */
void smtp_server_cfg_defaults(struct smtp_server_cfg *cfg);

struct smtp_peer {
	char addr[48];		/* client IP as text ("192.0.2.1", "2001:db8::1") */
	char name[SMTP_HOST_MAX + 1];	/* verified reverse DNS, or "" */
	uint16_t port;
};

struct smtp_tls_info {
	char version[16];	/* "TLSv1.3" */
	char cipher[64];	/* "TLS_AES_256_GCM_SHA384" */
	int bits;
	uint8_t resumed;
	uint8_t verified;	/* client certificate verified */
	char peer_cn[64];	/* client certificate subject CN or "" */
};

struct smtp_rcpt {
	struct smtp_addr addr;
	struct smtp_rcpt_params dsn;	/* NOTIFY, ORCPT */
};

/* the envelope handed on at end of data */
struct smtp_envelope {
	struct smtp_addr sender;
	struct smtp_mail_params mail;	/* SIZE, BODY, SMTPUTF8, RET, ENVID,
					 * raw MT-PRIORITY */
	uint8_t priority;		/* ring level 0 (urgent) .. 7 */
	uint8_t esmtp;			/* EHLO (1) or HELO (0) */
	uint8_t tls;			/* STARTTLS completed */
	uint8_t chunked;		/* came by BDAT */
	unsigned n_rcpt;
	const struct smtp_rcpt *rcpt;	/* n_rcpt accepted recipients */
	const struct smtp_peer *peer;
	const char *helo;		/* HELO/EHLO argument */
	const struct smtp_tls_info *tls_info;	/* valid if tls */
	const char *auth_id;		/* authenticated identity or "" */
	const char *queue_id;		/* as set by the caller or "" */
	uint64_t received_ms;		/* now at end of data */
};

enum smtp_act_type {
	SMTP_ACT_NONE = 0,
	SMTP_ACT_VERDICT_CONNECT,	/* peer */
	SMTP_ACT_VERDICT_HELO,		/* helo, esmtp */
	SMTP_ACT_VERDICT_MAIL,		/* addr, mail */
	SMTP_ACT_VERDICT_RCPT,		/* addr, rcpt, env (so far) */
	SMTP_ACT_VERDICT_AUTH,		/* auth_* */
	SMTP_ACT_VERDICT_DATA,		/* env, msg, msg_len */
	SMTP_ACT_STARTTLS,		/* flush output, then start TLS */
	SMTP_ACT_CLOSE,			/* flush output, then close */
};

struct smtp_action {
	enum smtp_act_type type;
	const char *helo;
	uint8_t esmtp;
	const struct smtp_addr *addr;
	const struct smtp_mail_params *mail;
	const struct smtp_rcpt_params *rcpt;
	const char *auth_mech;		/* "PLAIN" / "LOGIN" */
	const char *authzid, *authcid, *password;
	const struct smtp_envelope *env;
	const uint8_t *msg;		/* Received header + body, contiguous */
	size_t msg_len;
	size_t received_len;		/* length of the Received header */
	const char *reason;		/* CLOSE: why ("quit", "timeout", ...) */
};

struct smtp_server_stats {
	uint64_t commands, replies, errors, messages, bytes_in;
	uint64_t bare_rejects, starttls_discarded, timeouts;
};

struct smtp_server;

/* smtp_server_new - new session for peer at time now; NULL if out of
 * memory or cfg invalid (no hostname, max_cmd_line < 512, out_cap <
 * SMTP_SERVER_REPLY_RESERVE * 2). The first action is the connect
 * verdict, or the banner is already in the output. */
struct smtp_server *smtp_server_new(const struct smtp_server_cfg *cfg,
				    const struct smtp_peer *peer,
				    uint64_t now);
/* smtp_server_free - release everything (passwords are wiped) */
void smtp_server_free(struct smtp_server *s);

/* smtp_server_input - feed bytes; returns the count consumed (0 while
 * parked or when the output is full), -SMTP_ECLOSED after close */
ssize_t smtp_server_input(struct smtp_server *s, const void *in, size_t n,
			  uint64_t now);
/* smtp_server_action - the pending action (type NONE if none) */
const struct smtp_action *smtp_server_action(const struct smtp_server *s);
/* smtp_server_verdict - answer the pending VERDICT_* action with a reply
 * code (0: default success), enhanced code and text (NULL: defaults);
 * -SMTP_ESTATE if no verdict is pending, -SMTP_EINVAL for a bad code */
int smtp_server_verdict(struct smtp_server *s, int code, const char *enh,
			const char *text, uint64_t now);
/* smtp_server_set_queue_id - queue id for the current transaction
 * (<= 63 chars of [A-Za-z0-9._-]); -SMTP_EINVAL otherwise */
int smtp_server_set_queue_id(struct smtp_server *s, const char *qid);
/* smtp_server_tls_done - the TLS handshake after STARTTLS succeeded;
 * resets to pre-EHLO (RFC 3207 4.2). -SMTP_ESTATE if not in STARTTLS */
int smtp_server_tls_done(struct smtp_server *s,
			 const struct smtp_tls_info *info, uint64_t now);
/* smtp_server_tick - apply timeouts at time now (421 + CLOSE) */
void smtp_server_tick(struct smtp_server *s, uint64_t now);
/* smtp_server_deadline - next time tick must run (UINT64_MAX: none) */
uint64_t smtp_server_deadline(const struct smtp_server *s);
/* smtp_server_output - pending reply bytes; returns the count */
size_t smtp_server_output(const struct smtp_server *s, const uint8_t **p);
/* smtp_server_output_consume - n bytes were sent */
void smtp_server_output_consume(struct smtp_server *s, size_t n);
/* smtp_server_stats - counters of this session */
const struct smtp_server_stats *smtp_server_stats(const struct smtp_server *s);
/* smtp_server_state_name - current state, for logs and tests */
const char *smtp_server_state_name(const struct smtp_server *s);

#endif
