/*
 * dsn.c - build a delivery status notification (RFC 3464 multipart/report,
 * RFC 6522 container, RFC 3461 semantics, RFC 3834 Auto-Submitted).
 *
 * Input: struct dsn_in (dsn.h). Output: one malloc'd RFC 5322 message in
 * which every line ends in CRLF and no line is longer than 998 octets.
 * Pure: no clock reads, no globals, one growable buffer.
 *
 * Decisions (the contract in dsn.h leaves these open):
 *  - Untrusted values (diag, addresses, orcpt, envid, received_from,
 *    remote_mta) are cleaned before they reach a header field or the
 *    text part: each run of control octets (CR, LF, TAB, NUL, DEL...)
 *    becomes one space, so a CRLF can never start a new field or a MIME
 *    boundary line. Lengths are capped (DSN_DIAG_MAX, DSN_ADDR_MAX...);
 *    a longer value is cut at a character boundary. Addresses and orcpt
 *    keep well-formed UTF-8 (SMTPUTF8); in every other value, and for
 *    malformed UTF-8, an octet > 127 becomes '?'.
 *  - Address types: Final-Recipient is "rfc822; addr" for an ASCII
 *    address and "utf-8; addr" (RFC 6533) otherwise. Original-Recipient
 *    is orcpt as given ("rfc822;a@b", decoded from xtext by the SMTP
 *    parser); an orcpt without ';' is taken to be "rfc822;" + value.
 *    When any address in the report is non-ASCII, part 2 is
 *    message/global-delivery-status (RFC 6533 section 6) and the
 *    report-type follows it (RFC 6522: report-type is part 2's
 *    subtype). The To: header then carries raw UTF-8: such a notice
 *    must be sent with SMTPUTF8 (its *eightbit is 1 too).
 *  - Status must look like class.subject.detail (RFC 3463); anything
 *    else is replaced by the action's generic code (5.0.0, 4.0.0, 2.0.0).
 *  - The returned original: line endings are normalised to CRLF (a bare
 *    LF or bare CR ends a line). A line over 998 octets is split at 998
 *    octets (never inside a UTF-8 sequence): inside the header section
 *    the continuation starts with a space (a fold; unfolding adds one
 *    space), in the body a plain CRLF is inserted. Headers-only returns
 *    up to and including the first empty line, or everything if there
 *    is none. Full return is the whole message.
 *  - The boundary is "=_sluice.<qid>.<now>" (hex); it must not occur in
 *    the content of any part (memmem over each part's content after
 *    building). On a collision the message is rebuilt with a boundary
 *    mixed from qid, now, a hash of the original and an attempt counter.
 *  - Part 1 is us-ascii unless a non-ASCII address appears (then utf-8,
 *    8bit). Any part holding octets > 127 is labelled 8bit, and so is
 *    the top level; *eightbit is computed from the finished output.
 */
#define _GNU_SOURCE
#include "dsn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DSN_LINE_MAX 998	/* RFC 5322 2.1.1, without CRLF */
#define DSN_DIAG_MAX 900	/* Diagnostic-Code text after "smtp; " */
#define DSN_ADDR_MAX 512	/* addresses and orcpt (RFC 5321 path: 256) */
#define DSN_HOST_MAX 255	/* reporting/remote MTA, received_from */
#define DSN_ENVID_MAX 100	/* RFC 3461 4.4: ENVID up to 100 chars */
#define DSN_TEXT_WIDTH 76	/* part 1 word wrap */
#define DSN_BOUNDARY_TRIES 64

struct dsn_buf {
	uint8_t *p;
	size_t n, cap;
	int oom;
};

/* buf_reserve - room for extra more octets; sets oom on failure */
static int buf_reserve(struct dsn_buf *b, size_t extra)
{
	size_t want, cap;
	uint8_t *p;

	if (b->oom)
		return -1;
	if (extra > SIZE_MAX - b->n) {
		b->oom = 1;
		return -1;
	}
	want = b->n + extra;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

static void put(struct dsn_buf *b, const void *s, size_t n)
{
	if (n == 0 || buf_reserve(b, n))
		return;
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

static void puts_(struct dsn_buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* putf - formatted append (only for our own short, trusted text) */
__attribute__((format(printf, 2, 3)))
static void putf(struct dsn_buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	if ((size_t)r < sizeof tmp) {
		put(b, tmp, (size_t)r);
		return;
	}
	if (buf_reserve(b, (size_t)r + 1))
		return;
	va_start(ap, fmt);
	vsnprintf((char *)b->p + b->n, (size_t)r + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)r;
}

/* utf8_len - length of the well-formed UTF-8 sequence at s, 0 if none
 * (RFC 3629 section 4: no overlongs, surrogates or > U+10FFFF) */
static size_t utf8_len(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	size_t k, i;
	uint8_t lo = 0x80, hi = 0xBF;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		k = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		k = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		k = 4;
	else
		return 0;
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (n < k || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < k; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return k;
}

/*
 * clean - copy untrusted s into dst (NUL-terminated, at most max octets):
 * control runs become one space (none leading or trailing), octets > 127
 * survive only as well-formed UTF-8 when utf8 is set, else '?'. Returns
 * the length.
 */
static size_t clean(char *dst, size_t max, const char *s, int utf8)
{
	const uint8_t *u = (const uint8_t *)s;
	size_t n = strlen(s), i = 0, o = 0, k;
	int space = 0;

	while (i < n) {
		uint8_t c = u[i];
		const uint8_t *src = u + i;

		if (c < 0x20 || c == 0x7F) {
			space = o > 0;
			i++;
			continue;
		}
		k = 1;
		if (c >= 0x80 && (!utf8 || !(k = utf8_len(u + i, n - i)))) {
			k = 1;
			src = (const uint8_t *)"?";
		}
		if (o + (size_t)space + k > max)
			break;
		if (space)
			dst[o++] = ' ';
		space = 0;
		memcpy(dst + o, src, k);
		o += k;
		i += k;
	}
	dst[o] = '\0';
	return o;
}

static int has_8bit(const void *p, size_t n)
{
	const uint8_t *u = p;

	for (size_t i = 0; i < n; i++)
		if (u[i] > 127)
			return 1;
	return 0;
}

/* rfc5322_date - "Tue, 14 Nov 2023 22:13:20 +0000" (RFC 5322 3.3) */
static void rfc5322_date(char out[40], uint64_t us)
{
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char mons[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	if (!gmtime_r(&t, &tm)) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	snprintf(out, 40, "%s, %d %s %04d %02d:%02d:%02d +0000",
		 days[tm.tm_wday % 7], tm.tm_mday, mons[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* status_ok - RFC 3463 section 2: class "." subject "." detail */
static int status_ok(const char *s)
{
	size_t i = 0, d;
	int part;

	if (!(s[0] == '2' || s[0] == '4' || s[0] == '5') || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (d = 0; s[i] >= '0' && s[i] <= '9'; i++, d++)
			;
		if (d < 1 || d > 3)
			return 0;
		if (part == 0 && s[i++] != '.')
			return 0;
	}
	return s[i] == '\0';
}

static const char *action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_FAILED: return "failed";
	case DSN_DELAYED: return "delayed";
	case DSN_DELIVERED: return "delivered";
	case DSN_RELAYED: return "relayed";
	}
	return "failed";
}

/* kind of the notice: failures win, then delays, then success */
static enum dsn_action dsn_kind(const struct dsn_rcpt *r, unsigned n)
{
	int delayed = 0;

	for (unsigned i = 0; i < n; i++) {
		if (r[i].action == DSN_FAILED)
			return DSN_FAILED;
		if (r[i].action == DSN_DELAYED)
			delayed = 1;
	}
	return delayed ? DSN_DELAYED : DSN_DELIVERED;
}

/* dsn_subject - the Subject dsn_build uses for these recipients */
const char *dsn_subject(const struct dsn_rcpt *rcpt, unsigned n)
{
	if (!rcpt || n == 0)
		return "Mail Delivery Status Report";
	switch (dsn_kind(rcpt, n)) {
	case DSN_FAILED: return "Undelivered Mail Returned to Sender";
	case DSN_DELAYED: return "Delayed Mail (still being retried)";
	default: return "Successful Mail Delivery Report";
	}
}

/* wrap - word-wrap one paragraph of part 1 at DSN_TEXT_WIDTH, continuation
 * lines indented by four spaces; a word too long for a line is cut (not
 * inside a UTF-8 sequence) */
static void wrap(struct dsn_buf *b, const char *s)
{
	size_t n = strlen(s), width = DSN_TEXT_WIDTH, cut, sp;

	while (n > width) {
		cut = width;
		for (sp = width; sp > 0 && s[sp] != ' '; sp--)
			;
		if (sp > 0) {
			cut = sp;
		} else {
			while (cut > 1 && ((uint8_t)s[cut] & 0xC0) == 0x80)
				cut--;
		}
		put(b, s, cut);
		puts_(b, "\r\n    ");
		s += cut;
		n -= cut;
		while (*s == ' ')
			s++, n--;
		width = DSN_TEXT_WIDTH - 4;
	}
	put(b, s, n);
	puts_(b, "\r\n");
}

/* cleaned per-recipient values */
struct dsn_clean {
	char addr[DSN_ADDR_MAX + 1];
	char orcpt[DSN_ADDR_MAX + 1];
	char mta[DSN_HOST_MAX + 1];
	char diag[DSN_DIAG_MAX + 1];
	const char *status;
};

static void clean_rcpt(struct dsn_clean *c, const struct dsn_rcpt *r)
{
	static const char *const generic[] = {
		[DSN_FAILED] = "5.0.0", [DSN_DELAYED] = "4.0.0",
		[DSN_DELIVERED] = "2.0.0", [DSN_RELAYED] = "2.0.0" };

	clean(c->addr, DSN_ADDR_MAX, r->addr, 1);
	c->orcpt[0] = c->mta[0] = c->diag[0] = '\0';
	if (r->orcpt)
		clean(c->orcpt, DSN_ADDR_MAX, r->orcpt, 1);
	if (r->remote_mta)
		clean(c->mta, DSN_HOST_MAX, r->remote_mta, 0);
	if (r->diag)
		clean(c->diag, DSN_DIAG_MAX, r->diag, 0);
	c->status = status_ok(r->status) ? r->status : generic[r->action];
}

/* text_rcpt - one recipient's line in part 1 (Postfix bounce style) */
static void text_rcpt(struct dsn_buf *b, const struct dsn_rcpt *r)
{
	struct dsn_clean c;
	char line[DSN_ADDR_MAX + DSN_HOST_MAX + DSN_DIAG_MAX + 200];
	char date[40];
	int n;

	clean_rcpt(&c, r);
	n = snprintf(line, sizeof line, "<%s>: ", c.addr);
	switch (r->action) {
	case DSN_DELIVERED:
	case DSN_RELAYED:
		n += snprintf(line + n, sizeof line - (size_t)n, "%s%s%s",
			      r->action == DSN_RELAYED ?
			      "relayed to a mailer that does not send delivery "
			      "notices" : "delivered",
			      c.mta[0] ? " via host " : "", c.mta);
		if (c.diag[0])
			n += snprintf(line + n, sizeof line - (size_t)n,
				      ": %s", c.diag);
		break;
	default:
		if (c.mta[0] && c.diag[0])
			n += snprintf(line + n, sizeof line - (size_t)n,
				      "host %s said: %s", c.mta, c.diag);
		else if (c.diag[0])
			n += snprintf(line + n, sizeof line - (size_t)n,
				      "%s", c.diag);
		else
			n += snprintf(line + n, sizeof line - (size_t)n,
				      "%s%s%s (status %s)",
				      r->action == DSN_DELAYED ?
				      "delivery temporarily deferred" :
				      "delivery failed",
				      c.mta[0] ? " at host " : "", c.mta,
				      c.status);
		if (r->action == DSN_DELAYED && r->retry_until_us) {
			rfc5322_date(date, r->retry_until_us);
			snprintf(line + n, sizeof line - (size_t)n,
				 " (will be retried until %s)", date);
		}
		break;
	}
	wrap(b, line);
	puts_(b, "\r\n");
}

/* part1 - the human-readable explanation, one section per kind present */
static void part1(struct dsn_buf *b, const struct dsn_in *in,
		  const char *mta)
{
	unsigned i, nk[4] = { 0 };

	for (i = 0; i < in->nrcpt; i++)
		nk[in->rcpt[i].action]++;
	putf(b, "This is the mail system at host %s.\r\n\r\n", mta);
	if (nk[DSN_FAILED]) {
		puts_(b, "I'm sorry to have to inform you that your message "
		      "could not\r\nbe delivered to one or more recipients. "
		      "It's attached below.\r\n\r\n"
		      "For further assistance, please send mail to "
		      "postmaster.\r\n\r\n"
		      "If you do so, please include this problem report. "
		      "You can\r\ndelete your own text from the attached "
		      "returned message.\r\n\r\n"
		      "                   The mail system\r\n\r\n");
		for (i = 0; i < in->nrcpt; i++)
			if (in->rcpt[i].action == DSN_FAILED)
				text_rcpt(b, &in->rcpt[i]);
	}
	if (nk[DSN_DELAYED]) {
		puts_(b, "####################################################"
		      "################\r\n"
		      "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND "
		      "YOUR MESSAGE. #\r\n"
		      "####################################################"
		      "################\r\n\r\n"
		      "Your message could not yet be delivered to the "
		      "recipients below.\r\nThe mail system will keep "
		      "trying; you will be told if it gives up.\r\n\r\n");
		for (i = 0; i < in->nrcpt; i++)
			if (in->rcpt[i].action == DSN_DELAYED)
				text_rcpt(b, &in->rcpt[i]);
	}
	if (nk[DSN_DELIVERED] + nk[DSN_RELAYED]) {
		puts_(b, "Your message was successfully delivered to the "
		      "destination(s)\r\nlisted below. If the message was "
		      "delivered to mailbox you will\r\nreceive no further "
		      "notifications. Otherwise you may still receive\r\n"
		      "notifications of mail delivery errors from other "
		      "systems.\r\n\r\n");
		for (i = 0; i < in->nrcpt; i++)
			if (in->rcpt[i].action == DSN_DELIVERED ||
			    in->rcpt[i].action == DSN_RELAYED)
				text_rcpt(b, &in->rcpt[i]);
	}
}

/* part2 - RFC 3464 section 2.2 per-message and 2.3 per-recipient fields */
static void part2(struct dsn_buf *b, const struct dsn_in *in,
		  const char *mta)
{
	char v[DSN_ADDR_MAX + 1], date[40];
	struct dsn_clean c;

	putf(b, "Reporting-MTA: dns; %s\r\n", mta);
	if (in->envid && clean(v, DSN_ENVID_MAX, in->envid, 0))
		putf(b, "Original-Envelope-Id: %s\r\n", v);
	if (in->received_from && clean(v, DSN_HOST_MAX, in->received_from, 0))
		putf(b, "Received-From-MTA: dns; %s\r\n", v);
	if (in->arrival_us) {
		rfc5322_date(date, in->arrival_us);
		putf(b, "Arrival-Date: %s\r\n", date);
	}
	for (unsigned i = 0; i < in->nrcpt; i++) {
		const struct dsn_rcpt *r = &in->rcpt[i];

		clean_rcpt(&c, r);
		puts_(b, "\r\n");
		if (c.orcpt[0])
			putf(b, "Original-Recipient: %s%s\r\n",
			     strchr(c.orcpt, ';') ? "" : "rfc822;", c.orcpt);
		putf(b, "Final-Recipient: %s; %s\r\n",
		     has_8bit(c.addr, strlen(c.addr)) ? "utf-8" : "rfc822",
		     c.addr);
		putf(b, "Action: %s\r\n", action_name(r->action));
		putf(b, "Status: %s\r\n", c.status);
		if (c.mta[0])
			putf(b, "Remote-MTA: dns; %s\r\n", c.mta);
		if (c.diag[0])
			putf(b, "Diagnostic-Code: smtp; %s\r\n", c.diag);
		if (r->last_attempt_us) {
			rfc5322_date(date, r->last_attempt_us);
			putf(b, "Last-Attempt-Date: %s\r\n", date);
		}
		if (r->action == DSN_DELAYED && r->retry_until_us) {
			rfc5322_date(date, r->retry_until_us);
			putf(b, "Will-Retry-Until: %s\r\n", date);
		}
	}
}

/* orig_line - the line at msg[i]: its length and where the next starts
 * (ends at CRLF, bare LF or bare CR) */
static size_t orig_line(const uint8_t *m, size_t n, size_t i, size_t *next)
{
	size_t j = i;

	while (j < n && m[j] != '\n' && m[j] != '\r')
		j++;
	if (j < n && m[j] == '\r' && j + 1 < n && m[j + 1] == '\n')
		*next = j + 2;
	else
		*next = j < n ? j + 1 : n;
	return j - i;
}

/* orig_end - how much of the original part 3 returns */
static size_t orig_end(const uint8_t *m, size_t n, int headers_only)
{
	size_t i = 0, next;

	if (!headers_only)
		return n;
	while (i < n) {
		size_t len = orig_line(m, n, i, &next);

		i = next;
		if (len == 0)
			break;
	}
	return i;
}

/* part3 - the original up to end, CRLF-normalised, long lines split */
static void part3(struct dsn_buf *b, const uint8_t *m, size_t end)
{
	size_t i = 0, next, len, room, cut;
	int in_hdr = 1;

	while (i < end) {
		const uint8_t *l = m + i;

		len = orig_line(m, end, i, &next);
		if (len == 0)
			in_hdr = 0;
		room = DSN_LINE_MAX;
		while (len > room) {
			cut = room;
			/* back off to a character start, at most 3 octets */
			while (cut > room - 3 && (l[cut] & 0xC0) == 0x80)
				cut--;
			put(b, l, cut);
			puts_(b, in_hdr ? "\r\n " : "\r\n");
			l += cut;
			len -= cut;
			room = in_hdr ? DSN_LINE_MAX - 1 : DSN_LINE_MAX;
		}
		put(b, l, len);
		puts_(b, "\r\n");
		i = next;
	}
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

/* make_boundary - candidate number try; later tries also depend on the
 * original's contents so they cannot be planted in advance */
static void make_boundary(char out[64], const struct dsn_in *in,
			  unsigned try, uint64_t msg_hash)
{
	if (try == 0) {
		snprintf(out, 64, "=_sluice.%016" PRIX64 ".%" PRIX64,
			 in->qid, in->now_us);
		return;
	}
	snprintf(out, 64, "=_sluice.%016" PRIX64 ".%016" PRIX64 ".%u",
		 in->qid, mix64(in->qid ^ mix64(in->now_us ^ msg_hash) ^
				try), try);
}

struct dsn_span {
	size_t off, len;
};

/* build - the whole notice with this boundary; the content span of each
 * part goes to span[] for the collision check */
static void build(struct dsn_buf *b, const struct dsn_in *in,
		  const char *mta, const char *boundary,
		  struct dsn_span span[3])
{
	enum dsn_action kind = dsn_kind(in->rcpt, in->nrcpt);
	char sender[DSN_ADDR_MAX + 1], date[40];
	int utf8 = 0, orig8, full = in->ret_full != 0;
	size_t oend = orig_end(in->msg, in->msg_len, !full);
	const char *report = "delivery-status";
	struct dsn_clean c;

	clean(sender, DSN_ADDR_MAX, in->sender, 1);
	utf8 = has_8bit(sender, strlen(sender));
	for (unsigned i = 0; i < in->nrcpt; i++) {
		clean_rcpt(&c, &in->rcpt[i]);
		if (has_8bit(c.addr, strlen(c.addr)) ||
		    has_8bit(c.orcpt, strlen(c.orcpt)))
			utf8 = 1;
	}
	if (utf8)
		report = "global-delivery-status";
	orig8 = has_8bit(in->msg, oend);

	/* top-level header (RFC 3464 section 2, RFC 3834 section 5) */
	putf(b, "From: MAILER-DAEMON@%s (Mail Delivery System)\r\n", mta);
	puts_(b, "To: <");
	puts_(b, sender);
	puts_(b, ">\r\n");
	putf(b, "Subject: %s\r\n", dsn_subject(in->rcpt, in->nrcpt));
	rfc5322_date(date, in->now_us);
	putf(b, "Date: %s\r\n", date);
	putf(b, "Message-ID: <%016" PRIX64 ".%" PRIu64 ".dsn@%s>\r\n",
	     in->qid, in->now_us, mta);
	puts_(b, "Auto-Submitted: auto-replied\r\n"
	      "MIME-Version: 1.0\r\n");
	putf(b, "Content-Type: multipart/report; report-type=%s;\r\n"
	     "\tboundary=\"%s\"\r\n", report, boundary);
	if (utf8 || orig8)
		puts_(b, "Content-Transfer-Encoding: 8bit\r\n");
	puts_(b, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

	putf(b, "--%s\r\nContent-Description: Notification\r\n"
	     "Content-Type: text/plain; charset=%s\r\n%s\r\n", boundary,
	     utf8 ? "utf-8" : "us-ascii",
	     utf8 ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	span[0].off = b->n;
	part1(b, in, mta);
	span[0].len = b->n - span[0].off;

	putf(b, "\r\n--%s\r\nContent-Description: Delivery report\r\n"
	     "Content-Type: message/%s\r\n%s\r\n", boundary, report,
	     utf8 ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	span[1].off = b->n;
	part2(b, in, mta);
	span[1].len = b->n - span[1].off;

	putf(b, "\r\n--%s\r\nContent-Description: %s Message%s\r\n"
	     "Content-Type: %s\r\n%s\r\n", boundary,
	     kind == DSN_FAILED ? "Undelivered" :
	     kind == DSN_DELAYED ? "Delayed" : "Delivered",
	     full ? "" : " Headers",
	     full ? "message/rfc822" : "text/rfc822-headers",
	     orig8 ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	span[2].off = b->n;
	part3(b, in->msg, oend);
	span[2].len = b->n - span[2].off;
	putf(b, "\r\n--%s--\r\n", boundary);
}

/* valid - the -EINVAL checks of dsn.h */
static int valid(const struct dsn_in *in)
{
	if (!in->reporting_mta || !in->sender || !in->sender[0] ||
	    in->nrcpt == 0 || !in->rcpt || (!in->msg && in->msg_len))
		return 0;
	for (unsigned i = 0; i < in->nrcpt; i++) {
		const struct dsn_rcpt *r = &in->rcpt[i];

		if (!r->addr || !r->addr[0] || !r->status ||
		    (unsigned)r->action > DSN_RELAYED)
			return 0;
	}
	return 1;
}

/* dsn_build - the notice as a malloc'd buffer (see dsn.h) */
int dsn_build(const struct dsn_in *in, uint8_t **out, size_t *outlen,
	      int *eightbit)
{
	struct dsn_buf b = { 0 };
	struct dsn_span span[3];
	char mta[DSN_HOST_MAX + 1], boundary[64];
	uint64_t h = 0xCBF29CE484222325ull;
	size_t j, o = 0;
	unsigned try;

	if (!in || !out || !outlen || !eightbit || !valid(in))
		return -EINVAL;
	/* our host name: keep only host-name / address-literal octets */
	for (j = 0; in->reporting_mta[j] && o < DSN_HOST_MAX; j++) {
		char ch = in->reporting_mta[j];

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._[]:", ch))
			mta[o++] = ch;
	}
	mta[o] = '\0';
	if (!o)
		return -EINVAL;
	for (j = 0; j < in->msg_len; j++)
		h = (h ^ in->msg[j]) * 0x100000001B3ull;	/* FNV-1a */

	for (try = 0; try < DSN_BOUNDARY_TRIES; try++) {
		int clash = 0;

		make_boundary(boundary, in, try, h);
		b.n = 0;
		build(&b, in, mta, boundary, span);
		if (b.oom) {
			free(b.p);
			return -ENOMEM;
		}
		for (int k = 0; k < 3 && !clash; k++)
			clash = memmem(b.p + span[k].off, span[k].len,
				       boundary, strlen(boundary)) != NULL;
		if (!clash) {
			*out = b.p;
			*outlen = b.n;
			*eightbit = has_8bit(b.p, b.n);
			return 0;
		}
	}
	free(b.p);
	return -EINVAL;		/* every candidate occurs in the content */
}
