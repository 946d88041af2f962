/*
 * smtp_received.c - the Received trace header (RFC 5321 4.4, RFC 5322
 * 3.6.7) prepended at end of data, and an RFC 5322 3.3 date from a
 * millisecond Unix time (pure arithmetic, no libc time zone state).
 *
 *   Received: from <helo> (<rdns> [<ip>])
 *           by <host> (sluice) with <proto> id <queue-id>
 *           (using <TLS version> with cipher <cipher> (<bits> bits))
 *           for <rcpt>; <date>
 * proto: SMTP / ESMTP + S (TLS) + A (AUTH) (RFC 3848), UTF8SMTP... when
 * SMTPUTF8 was used (RFC 6531 4.3). "for" only with a single recipient
 * (no disclosure of Bcc lists). Every part was validated on input, so the
 * header needs no escaping; it is < SMTP_SERVER_HEADROOM octets.
 */
#include <stdio.h>
#include <string.h>

#include "smtp_server_types.h"

/* smtp_received_date - "Mon, 1 Jan 2024 00:00:00 +0000" */
size_t smtp_received_date(char *dst, size_t cap, uint64_t ms)
{
	static const char wd[7][4] = { "Thu", "Fri", "Sat", "Sun", "Mon",
				       "Tue", "Wed" };
	static const char mn[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
					"Jun", "Jul", "Aug", "Sep", "Oct",
					"Nov", "Dec" };
	uint64_t secs = ms / 1000, days = secs / 86400, rem = secs % 86400;
	/* civil_from_days (H. Hinnant), epoch 1970-01-01 */
	int64_t z = (int64_t)days + 719468, era = z / 146097;
	uint64_t doe = (uint64_t)(z - era * 146097);
	uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	uint64_t mp = (5 * doy + 2) / 153;
	unsigned d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	unsigned m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	int64_t y = (int64_t)yoe + era * 400 + (m <= 2);
	int n;

	n = snprintf(dst, cap, "%s, %u %s %lld %02u:%02u:%02u +0000",
		     wd[days % 7], d, mn[m - 1], (long long)y,
		     (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60),
		     (unsigned)(rem % 60));
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* smtp_received_build - the whole header, CRLF-terminated */
size_t smtp_received_build(char *dst, size_t cap,
			   const struct smtp_server *s, uint64_t now)
{
	char date[64], proto[16];
	size_t n = 0;
	int r;

#define ADD(...) do { r = snprintf(dst + n, cap - n, __VA_ARGS__); \
		      if (r < 0 || (size_t)r >= cap - n) return n; \
		      n += (size_t)r; } while (0)
	snprintf(proto, sizeof(proto), "%s%s%s%s",
		 s->env.mail.smtputf8 ? "UTF8" : "",
		 s->esmtp || s->env.mail.smtputf8 ? "ESMTP" : "SMTP",
		 s->tls ? "S" : "", s->auth_id[0] ? "A" : "");
	if (s->env.mail.smtputf8) /* UTF8SMTP[S][A], RFC 6531 4.3 */
		snprintf(proto, sizeof(proto), "UTF8SMTP%s%s",
			 s->tls ? "S" : "", s->auth_id[0] ? "A" : "");
	smtp_received_date(date, sizeof(date), now);
	ADD("Received: from %s (%s%s[%s])\r\n", s->helo[0] ? s->helo : "unknown",
	    s->peer.name, s->peer.name[0] ? " " : "", s->peer.addr);
	ADD("\tby %s (sluice) with %s", s->host, proto);
	if (s->queue_id[0])
		ADD(" id %s", s->queue_id);
	ADD("\r\n");
	if (s->tls)
		ADD("\t(using %s with cipher %s (%d bits))\r\n",
		    s->tls_info.version, s->tls_info.cipher, s->tls_info.bits);
	/* RFC 5322 3.6.7: "Received:" tokens ";" date-time, whatever the
	 * tokens; the for-clause names the recipient only when there is one */
	if (s->n_rcpt == 1)
		ADD("\tfor <%s>;", s->rcpts[0].addr.addr);
	else
		ADD("\t;");
	ADD(" %s\r\n", date);
#undef ADD
	return n;
}
