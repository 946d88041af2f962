/*
 * mlog.h - mail log lines in Postfix's format, so existing log tools
 * (pflogsumm, grep by queue id) work on sluiced's log:
 *
 *   connect from unknown[198.18.0.2]
 *   6B2K0Q1000001: client=unknown[198.18.0.2]
 *   6B2K0Q1000001: from=<a@b.example>, size=512, nrcpt=1 (queue active)
 *   NOQUEUE: reject: RCPT from unknown[198.18.0.2]: 550 5.1.1 <x@demo.sluice.test>: Recipient address rejected: User unknown; from=<a@b.example> to=<x@demo.sluice.test> proto=ESMTP helo=<client.example>
 *   6B2K0Q1000001: reject: END-OF-MESSAGE from unknown[198.18.0.2]: 554 5.4.6 ...; from=<...> proto=ESMTP helo=<...>
 *   disconnect from unknown[198.18.0.2] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
 *   6B2K0Q1000001: to=<a@relay.test>, relay=198.18.0.2:2525, delay=0.21, dsn=2.0.0, status=sent (250 2.0.0 Ok)
 *   6B2K0Q1000001: sender non-delivery notification: 6B2K0Q1000002
 *   6B2K0Q1000001: removed
 *
 * Pure formatting into a caller buffer (always NUL-terminated, truncated
 * with "..." if too long); every client-supplied string is sanitised
 * (control and non-ASCII bytes become '?') so nobody can forge log lines.
 * Returns the length written.
 */
#ifndef SLUICE_MLOG_H
#define SLUICE_MLOG_H

#include <stddef.h>
#include <stdint.h>

#define MLOG_LINE_MAX 1024

struct mlog_client {
	const char *host;     /* verified rDNS or "" (printed "unknown") */
	const char *addr;     /* "198.18.0.2" */
};

size_t mlog_connect(char *buf, size_t cap, const struct mlog_client *c);
size_t mlog_disconnect(char *buf, size_t cap, const struct mlog_client *c,
		       const char *counts);
/* "QID: client=host[addr]" (+ ", sasl_username=U" when authenticated) */
size_t mlog_qclient(char *buf, size_t cap, const char *qid,
		    const struct mlog_client *c, const char *sasl_user);
/* "QID: from=<s>, size=N, nrcpt=N (queue active)" */
size_t mlog_from(char *buf, size_t cap, const char *qid, const char *from,
		 uint64_t size, unsigned nrcpt);
/* "QID|NOQUEUE: reject: STAGE from host[addr]: CODE ENH TEXT; from=<..>
 * [to=<..>] proto=ESMTP|SMTP helo=<..>"; qid NULL/"" -> NOQUEUE, to NULL
 * -> no to=, from NULL -> no from= */
size_t mlog_reject(char *buf, size_t cap, const char *qid, const char *stage,
		   const struct mlog_client *c, int code, const char *enh,
		   const char *text, const char *from, const char *to,
		   int esmtp, const char *helo);

/* "QID: to=<a>, relay=R, delay=D, dsn=X.Y.Z, status=S (reply)";
 * status is sent, deferred, bounced or expired */
size_t mlog_delivery(char *buf, size_t cap, const char *qid, const char *to,
		     const char *relay, double delay_s, const char *dsn,
		     const char *status, const char *reply);
/* "QID: WHAT" for fixed event texts ("removed", "sender non-delivery
 * notification: BQID", "held by operator") */
size_t mlog_event(char *buf, size_t cap, const char *qid, const char *what);

#endif
