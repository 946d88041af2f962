/*
 * smtp_client.h - sans-IO SMTP client engine for onward relay (RFC 5321,
 * 2920 PIPELINING, 1870 SIZE, 6152 8BITMIME, 6531 SMTPUTF8, 3461 DSN,
 * 3030 CHUNKING/BINARYMIME, 3207 STARTTLS, 6710 MT-PRIORITY).
 *
 * One struct smtp_client per outbound connection:
 *   smtp_client_input(c, bytes, n, now)   server replies in
 *   smtp_client_output(c, &p) / _output_consume(c, n)   bytes to send; the
 *       body is read in place from the caller's buffer (zero copy), with
 *       dot-stuffing done on the fly for DATA
 *   smtp_client_action(c)                 READY / STARTTLS / DONE / CLOSE
 *   smtp_client_send(c, msg, now)         start a message (in READY)
 *   smtp_client_quit(c, now)              QUIT (in READY)
 *   smtp_client_tls_done / _tls_failed    after SMTP_CLI_STARTTLS
 *   smtp_client_tick / _deadline          RFC 5321 4.5.3.2 timeouts
 *
 * Session: greeting, EHLO (HELO if EHLO gets 5xx), STARTTLS per policy
 * (none; opportunistic: use when offered, plaintext otherwise; required /
 * verify: fail with 4.7.5 when not offered or refused - verify means the
 * caller's TLS layer checks the certificate and name), EHLO again.
 * Message: local checks first (SIZE, 8BITMIME, BINARYMIME, SMTPUTF8, bare
 * CR/LF for DATA) fail permanently with a clear reason; then RSET (not
 * before the first message), MAIL, RCPT..., DATA pipelined in one write
 * when PIPELINING is offered, else one at a time; BDAT <n> LAST when
 * CHUNKING is offered, DATA with dot-stuffing otherwise. A DATA body not
 * ending in CRLF gets one appended.
 * Results: rcpt[i].code/enh/text are final per recipient: the RCPT reply
 * if it was refused, else the reply to the end of data (or the MAIL
 * refusal, or a local/connection failure: 4xx when retrying can help).
 * msg->code/text hold the message-level result.
 * Time: `now` in milliseconds (any epoch, never going back).
 */
#ifndef SMTP_CLIENT_H
#define SMTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "smtp_param.h"
#include "smtp_reply.h"

enum smtp_tls_policy {
	SMTP_TLS_NONE = 0,
	SMTP_TLS_OPPORTUNISTIC,
	SMTP_TLS_REQUIRED,
	SMTP_TLS_VERIFY,
};

struct smtp_client_cfg {
	const char *helo_name;		/* our name in EHLO/HELO */
	enum smtp_tls_policy tls;
	uint32_t t_greeting_ms;		/* 300000 (RFC 5321 4.5.3.2.1) */
	uint32_t t_ehlo_ms;		/* 300000 */
	uint32_t t_mail_ms;		/* 300000 (4.5.3.2.2) */
	uint32_t t_rcpt_ms;		/* 300000 (4.5.3.2.3) */
	uint32_t t_data_init_ms;	/* 120000 (4.5.3.2.4) */
	uint32_t t_data_block_ms;	/* 180000 (4.5.3.2.5) */
	uint32_t t_data_term_ms;	/* 600000 (4.5.3.2.6) */
	uint8_t no_pipelining;		/* never pipeline (tests, broken peers) */
	uint8_t no_chunking;		/* never use BDAT */
};

/* smtp_client_cfg_defaults - RFC 5321 4.5.3.2 timeouts, TLS opportunistic */
void smtp_client_cfg_defaults(struct smtp_client_cfg *cfg);

struct smtp_client_rcpt {
	const char *addr;		/* mailbox without <> */
	uint8_t notify;			/* SMTP_NOTIFY_*, 0 = none */
	const char *orcpt;		/* "rfc822;addr" (decoded) or NULL */
	/* result, filled in by the engine */
	int code;
	char enh[16];
	char text[SMTP_REPLY_TEXT_MAX];
};

struct smtp_client_msg {
	const char *sender;		/* "" for the null reverse-path */
	uint8_t body_type;		/* enum smtp_body_type */
	uint8_t smtputf8;
	uint8_t ret;			/* enum smtp_ret */
	const char *envid;		/* decoded, or NULL */
	int8_t mt_priority;		/* -9..9 or SMTP_MTPRIO_NONE */
	unsigned n_rcpt;
	struct smtp_client_rcpt *rcpt;
	const uint8_t *body;		/* must stay valid until DONE/CLOSE */
	size_t body_len;
	/* message-level result */
	int code;
	char enh[16];
	char text[SMTP_REPLY_TEXT_MAX];
};

enum smtp_cli_act {
	SMTP_CLI_NONE = 0,
	SMTP_CLI_READY,		/* send a message or quit */
	SMTP_CLI_STARTTLS,	/* flush output, run the TLS handshake */
	SMTP_CLI_DONE,		/* the message's results are filled in */
	SMTP_CLI_CLOSE,		/* flush output and close; a message in
				 * flight has its results filled in */
};

struct smtp_client;

/* smtp_client_new - a session that waits for the greeting; NULL if out
 * of memory or cfg invalid */
struct smtp_client *smtp_client_new(const struct smtp_client_cfg *cfg,
				    uint64_t now);
void smtp_client_free(struct smtp_client *c);

/* smtp_client_input - server bytes; returns bytes consumed, or
 * -SMTP_ECLOSED after close */
ssize_t smtp_client_input(struct smtp_client *c, const void *in, size_t n,
			  uint64_t now);
/* smtp_client_output - next contiguous bytes to send; returns the count */
size_t smtp_client_output(struct smtp_client *c, const uint8_t **p);
/* smtp_client_output_consume - n of those bytes were sent */
void smtp_client_output_consume(struct smtp_client *c, size_t n,
				uint64_t now);
/* smtp_client_action - what the caller must do now */
enum smtp_cli_act smtp_client_action(const struct smtp_client *c);
/* smtp_client_close_reason - text of the last failure / close */
const char *smtp_client_close_reason(const struct smtp_client *c);
/* smtp_client_send - start msg (READY only); -SMTP_ESTATE, -SMTP_EINVAL,
 * -SMTP_ENOMEM. Local refusals finish at once with SMTP_CLI_DONE. */
int smtp_client_send(struct smtp_client *c, struct smtp_client_msg *msg,
		     uint64_t now);
/* smtp_client_quit - send QUIT (READY only); -SMTP_ESTATE */
int smtp_client_quit(struct smtp_client *c, uint64_t now);
/* smtp_client_tls_done - handshake finished; EHLO again (RFC 3207 4.2) */
int smtp_client_tls_done(struct smtp_client *c, uint64_t now);
/* smtp_client_tls_failed - handshake failed with reason: CLOSE (4.7.5) */
int smtp_client_tls_failed(struct smtp_client *c, const char *reason,
			   uint64_t now);
/* smtp_client_tick - apply timeouts */
void smtp_client_tick(struct smtp_client *c, uint64_t now);
/* smtp_client_deadline - when tick must run next (UINT64_MAX: none) */
uint64_t smtp_client_deadline(const struct smtp_client *c);
/* smtp_client_ext - extensions the server offered (SMTP_EXT_*) */
unsigned smtp_client_ext(const struct smtp_client *c);
/* smtp_client_tls_active - 1 after smtp_client_tls_done */
int smtp_client_tls_active(const struct smtp_client *c);

#endif
