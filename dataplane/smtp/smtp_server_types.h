/*
 * smtp_server_types.h - private session structure shared by the server
 * engine files (smtp_server.c: input loop, verdicts, body, timers;
 * smtp_cmd.c: command table and handlers). Not a public header.
 */
#ifndef SMTP_SERVER_TYPES_H
#define SMTP_SERVER_TYPES_H

#include "smtp_body.h"
#include "smtp_reply.h"
#include "smtp_server.h"

/* session states (OpenSMTPD style); the first six read commands */
enum smtp_state {
	SS_GREET = 0,	/* banner sent, before HELO/EHLO */
	SS_READY,	/* after HELO/EHLO, no transaction */
	SS_MAIL,	/* MAIL accepted, no recipient yet */
	SS_RCPT,	/* at least one recipient accepted */
	SS_BDAT,	/* between BDAT chunks */
	SS_REJECT,	/* connect refused with 5xx: only QUIT helps */
	SS_AUTH,	/* reading an AUTH continuation line */
	SS_DATA,	/* reading a DATA body */
	SS_CHUNK,	/* reading the octets of a BDAT chunk */
	SS_PARK,	/* waiting for the caller's verdict */
	SS_TLS,		/* STARTTLS: waiting for the handshake */
	SS_CLOSED,
	SS_N
};

/* what a parked session waits for */
enum smtp_park {
	PK_NONE = 0, PK_CONNECT, PK_HELO, PK_MAIL, PK_RCPT, PK_AUTH, PK_DATA
};

#define SMTP_AUTH_FIELD_MAX 255

struct smtp_server {
	struct smtp_server_cfg cfg;
	char host[SMTP_HOST_MAX + 1];
	char banner[128];
	struct smtp_peer peer;
	uint8_t state;
	uint8_t park;
	uint8_t ret_state;	/* state to return to after a refusal */
	unsigned offered;	/* extensions offered right now */
	struct smtp_action act;
	struct smtp_reply_out out;

	/* command line assembly across input calls */
	char *line;
	size_t line_len;
	uint8_t line_overflow;

	/* session facts */
	char helo[SMTP_HOST_MAX + 1];
	char pend_helo[SMTP_HOST_MAX + 1];
	uint8_t esmtp, pend_esmtp, helo_done;
	uint8_t tls;
	struct smtp_tls_info tls_info;
	char auth_id[SMTP_AUTH_FIELD_MAX + 1];

	/* AUTH exchange (RFC 4954) */
	uint8_t auth_mech;	/* SMTP_AUTH_PLAIN / _LOGIN */
	uint8_t auth_step;	/* LOGIN: 0 username, 1 password */
	char auth_zid[SMTP_AUTH_FIELD_MAX + 1];
	char auth_cid[SMTP_AUTH_FIELD_MAX + 1];
	char auth_pw[SMTP_AUTH_FIELD_MAX + 1];

	/* transaction */
	struct smtp_envelope env;
	struct smtp_addr pend_addr;
	struct smtp_mail_params pend_mail;
	struct smtp_rcpt_params pend_rcpt;
	struct smtp_rcpt *rcpts;
	unsigned n_rcpt, cap_rcpt, rcpt_tried;
	char queue_id[64];
	uint8_t txn_failed;	/* a BDAT failed: only RSET helps */
	struct smtp_body body;

	/* BDAT chunk being read */
	uint64_t chunk_left;
	uint8_t chunk_last, chunk_ok;
	int chunk_code;
	const char *chunk_enh, *chunk_text;

	unsigned errors, txns;
	uint64_t t_start, t_last;
	struct smtp_server_stats st;
};

/* smtp_server.c, used by smtp_cmd.c */
void smtp_server_reply(struct smtp_server *s, int code, const char *enh,
		       const char *text);
void smtp_server_replyf(struct smtp_server *s, int code, const char *enh,
			const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void smtp_server_error(struct smtp_server *s, int code, const char *enh,
		       const char *text);
void smtp_server_close(struct smtp_server *s, const char *reason);
void smtp_server_park(struct smtp_server *s, enum smtp_park kind,
		      uint64_t now);
void smtp_server_txn_reset(struct smtp_server *s);
void smtp_server_ehlo_reply(struct smtp_server *s);
void smtp_server_end_of_data(struct smtp_server *s, uint64_t now);
void smtp_server_chunk_end(struct smtp_server *s, uint64_t now);

/* smtp_cmd.c */
void smtp_cmd_dispatch(struct smtp_server *s, const char *l, size_t n,
		       uint64_t now);
void smtp_cmd_auth_line(struct smtp_server *s, const char *l, size_t n,
			uint64_t now);

/* smtp_received.c */
size_t smtp_received_build(char *dst, size_t cap,
			   const struct smtp_server *s, uint64_t now);
size_t smtp_received_date(char *dst, size_t cap, uint64_t ms);

#endif
