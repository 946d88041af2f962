/*
 * dsn.h - delivery status notifications (RFC 3464 multipart/report, RFC
 * 3461 semantics): the message sluice sends to an envelope sender when
 * recipients failed, were delayed, or were relayed to a next hop that
 * does not support DSN. Sans-IO: strings in, one complete RFC 5322
 * message (CRLF line endings, no line over 998 octets) out.
 *
 * The caller decides whether a notice is owed (null sender, NOTIFY=NEVER,
 * NOTIFY without FAILURE/DELAY/SUCCESS: none) and queues the result with
 * the null reverse-path <> to in->sender.
 *
 * Layout (RFC 3464 section 2, RFC 6522):
 *   From: MAILER-DAEMON@<reporting_mta> (Mail Delivery System)
 *   To: <sender>; Subject by kind; Date; Message-ID; Auto-Submitted:
 *   auto-replied (RFC 3834); MIME-Version; Content-Type:
 *   multipart/report; report-type=delivery-status; boundary=...
 *   part 1 text/plain: human-readable explanation, one line per recipient
 *   part 2 message/delivery-status: per-message fields (Reporting-MTA,
 *          Original-Envelope-Id, Received-From-MTA, Arrival-Date), then
 *          per recipient: Original-Recipient (if any), Final-Recipient,
 *          Action, Status, Remote-MTA (if any), Diagnostic-Code (if any),
 *          Last-Attempt-Date, Will-Retry-Until (delayed only)
 *   part 3 the original: message/rfc822 (ret_full) or text/rfc822-headers
 *          (headers only: the default, and always for "relayed"/"delivered"
 *          notices unless ret_full)
 */
#ifndef SLUICE_DSN_H
#define SLUICE_DSN_H

#include <stddef.h>
#include <stdint.h>

enum dsn_action {
	DSN_FAILED = 0,
	DSN_DELAYED,
	DSN_DELIVERED,
	DSN_RELAYED,
};

struct dsn_rcpt {
	const char *addr;          /* final recipient (mailbox, no <>) */
	const char *orcpt;         /* RFC 3461 ORCPT "rfc822;addr" or NULL */
	enum dsn_action action;
	const char *status;        /* "5.1.1", "4.4.1", "2.0.0" */
	const char *remote_mta;    /* host name or address literal, or NULL */
	const char *diag;          /* the remote reply "550 5.1.1 no such user"
				    * (sent as "smtp; ..."), or NULL */
	uint64_t last_attempt_us;  /* unix us; 0 = none */
	uint64_t retry_until_us;   /* DSN_DELAYED: expiry time */
};

struct dsn_in {
	const char *reporting_mta;   /* our host name */
	const char *sender;          /* original envelope sender (To:) */
	const char *envid;           /* ORIGINAL ENVID or NULL */
	const char *received_from;   /* "unknown[198.18.0.2]" or NULL */
	uint64_t arrival_us;         /* unix us */
	uint64_t now_us;             /* unix us (Date:, Message-ID) */
	uint64_t qid;                /* original queue id (Message-ID, boundary) */
	int ret_full;                /* return the whole message */
	const uint8_t *msg;          /* original message, headers + body */
	size_t msg_len;
	unsigned nrcpt;              /* >= 1, all of one kind or mixed */
	const struct dsn_rcpt *rcpt;
};

/* dsn_build - the notice as a malloc'd buffer (*out, *outlen; caller
 * frees). *eightbit is set to 1 when the result contains octets > 127
 * (the original returned in full) so the caller can ask for 8BITMIME.
 * Returns 0, -EINVAL (missing field, nrcpt 0) or -ENOMEM. */
int dsn_build(const struct dsn_in *in, uint8_t **out, size_t *outlen,
	      int *eightbit);

/* dsn_subject - the Subject dsn_build uses for these recipients */
const char *dsn_subject(const struct dsn_rcpt *rcpt, unsigned n);

#endif
