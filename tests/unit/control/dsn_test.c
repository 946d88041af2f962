/*
 * dsn_test - dsn_build output parsed back: line discipline (CRLF, <= 998
 * octets), top-level header, exactly three MIME parts around the
 * boundary, the delivery-status fields per recipient in order for each
 * kind, ORCPT/ENVID only when given, headers-only versus full return,
 * header injection through network strings, boundary collisions, 8-bit
 * detection, allocation failure and -EINVAL cases.
 *
 * "dsn_test --dump DIR" writes sample notices to DIR instead (used by
 * dsn_pycheck.py, which parses them with Python's email package).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"

/* realloc failure injection (linked with -Wl,--wrap=realloc): the n-th
 * realloc from now fails when fail_at is n; 0 = never */
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);
static int fail_at;

void *__wrap_realloc(void *p, size_t n)
{
	if (fail_at > 0 && --fail_at == 0)
		return NULL;
	return __real_realloc(p, n);
}

#define NOW_US   (1700000000ull * 1000000 + 123456)  /* Tue, 14 Nov 2023 22:13:20 */
#define ARR_US   (1699999000ull * 1000000)           /* 21:56:40 */
#define QID      0x6553F10000500007ull

static const char orig_crlf[] =
	"From: Alice <alice@example.org>\r\n"
	"To: bob@example.com\r\n"
	"Subject: hello\r\n"
	"Message-ID: <1@example.org>\r\n"
	"\r\n"
	"Hi Bob,\r\n"
	"second line\r\n";
/* the header section, up to and including the empty line */
#define ORIG_HDR_LEN \
	((size_t)(strstr(orig_crlf, "\r\n\r\n") + 4 - orig_crlf))

/* ---- parsing helpers ------------------------------------------------- */

struct dsn_out {
	char *p;		/* NUL-terminated copy */
	size_t n;
	int eightbit;
};

static void out_free(struct dsn_out *o)
{
	free(o->p);
	o->p = NULL;
}

static struct dsn_in base_in(const struct dsn_rcpt *r, unsigned n)
{
	return (struct dsn_in){
		.reporting_mta = "mx1.sluice.example",
		.sender = "alice@example.org",
		.arrival_us = ARR_US,
		.now_us = NOW_US,
		.qid = QID,
		.msg = (const uint8_t *)orig_crlf,
		.msg_len = sizeof orig_crlf - 1,
		.nrcpt = n,
		.rcpt = r,
	};
}

static struct dsn_out run(const struct dsn_in *in)
{
	uint8_t *out = NULL;
	size_t len = 0;
	struct dsn_out o = { 0 };

	assert_int_equal(dsn_build(in, &out, &len, &o.eightbit), 0);
	assert_non_null(out);
	o.p = malloc(len + 1);
	assert_non_null(o.p);
	memcpy(o.p, out, len);
	o.p[len] = '\0';
	o.n = len;
	free(out);
	return o;
}

/* every line ends in CRLF, no bare CR/LF, no line over 998 octets */
static void check_lines(const struct dsn_out *o)
{
	size_t start = 0;

	assert_true(o->n >= 2);
	assert_memory_equal(o->p + o->n - 2, "\r\n", 2);
	for (size_t i = 0; i < o->n; i++) {
		if (o->p[i] == '\r') {
			assert_true(i + 1 < o->n && o->p[i + 1] == '\n');
			assert_true(i - start <= 998);
			i++;
			start = i + 1;
		} else {
			assert_true(o->p[i] != '\n');
		}
	}
}

/* value of field name in header block h (ends at "\r\n\r\n" or NUL),
 * unfolded, malloc'd; NULL if absent; *count gets the occurrences */
static char *field(const char *h, const char *name, int *count)
{
	size_t nl = strlen(name);
	const char *end = strstr(h, "\r\n\r\n");
	const char *l = h;
	char *val = NULL;
	int c = 0;

	if (!end)
		end = h + strlen(h);
	while (l < end) {
		const char *e = strstr(l, "\r\n");

		if (!e || e > end)
			e = end;
		if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
			const char *v = l + nl + 1, *q = v;
			size_t vn = 0;

			/* value: this line and its continuation lines */
			while (q < end) {
				const char *qe = strstr(q, "\r\n");

				if (!qe || qe > end)
					qe = end;
				q = qe + 2;
				if (q >= end || (*q != ' ' && *q != '\t'))
					break;
			}
			vn = (size_t)((q > end ? end : q) - v);
			if (!val) {
				val = calloc(1, vn + 1);
				assert_non_null(val);
				for (size_t i = 0, o = 0; i < vn; i++)
					if (v[i] != '\r' && v[i] != '\n')
						val[o++] = v[i];
				/* trim */
				char *s = val;
				while (*s == ' ' || *s == '\t')
					s++;
				memmove(val, s, strlen(s) + 1);
				for (size_t k = strlen(val); k &&
				     (val[k - 1] == ' ' || val[k - 1] == '\t');)
					val[--k] = '\0';
			}
			c++;
		}
		l = e + 2;
	}
	if (count)
		*count = c;
	return val;
}

static void assert_field(const char *h, const char *name, const char *want)
{
	int c;
	char *v = field(h, name, &c);

	if (!v)
		fail_msg("field %s missing", name);
	if (strcmp(v, want) != 0)
		fail_msg("%s: got \"%s\" want \"%s\"", name, v, want);
	assert_int_equal(c, 1);
	free(v);
}

static void assert_no_field(const char *h, const char *name)
{
	char *v = field(h, name, NULL);

	if (v)
		fail_msg("unexpected field %s: %s", name, v);
}

struct part {
	char *hdr;		/* part header block, NUL-terminated */
	char *body;		/* content (without the delimiter's CRLF) */
	size_t body_len;
};

struct mime {
	char boundary[128];
	struct part part[8];
	int nparts;
};

/* parse_mime - top-level boundary from Content-Type, then the parts
 * between "--b" lines up to "--b--" (RFC 2046 5.1.1) */
static void parse_mime(const struct dsn_out *o, struct mime *m)
{
	char *ct = field(o->p, "Content-Type", NULL), *b, *q;
	const char *body, *p, *prev = NULL;
	char delim[140];
	int closed = 0;

	memset(m, 0, sizeof *m);
	assert_non_null(ct);
	b = strstr(ct, "boundary=\"");
	assert_non_null(b);
	b += 10;
	q = strchr(b, '"');
	assert_non_null(q);
	assert_true(q - b > 0 && q - b < 71);	/* RFC 2046: 1..70 */
	memcpy(m->boundary, b, (size_t)(q - b));
	free(ct);
	snprintf(delim, sizeof delim, "\r\n--%s", m->boundary);

	body = strstr(o->p, "\r\n\r\n");
	assert_non_null(body);
	body += 2;		/* the preamble starts after the empty line */
	for (p = body; (p = strstr(p, delim)) != NULL; ) {
		const char *after = p + strlen(delim);

		if (prev) {
			struct part *pt = &m->part[m->nparts - 1];
			size_t n = (size_t)(p - prev);
			const char *sep = strstr(prev, "\r\n\r\n");

			assert_true(sep && sep < p + 2);
			pt->hdr = strndup(prev, (size_t)(sep - prev) + 2);
			pt->body = strndup(sep + 4, (size_t)(p - (sep + 4)));
			pt->body_len = (size_t)(p - (sep + 4));
			(void)n;
		}
		if (strncmp(after, "--\r\n", 4) == 0) {
			closed = 1;
			assert_true(after + 4 == o->p + o->n);	/* nothing after */
			break;
		}
		assert_memory_equal(after, "\r\n", 2);
		assert_true(m->nparts < 8);
		m->nparts++;
		prev = after + 2;
		p = after;
	}
	assert_true(closed);
}

static void mime_free(struct mime *m)
{
	for (int i = 0; i < m->nparts; i++) {
		free(m->part[i].hdr);
		free(m->part[i].body);
	}
}

/* groups - split delivery-status content at empty lines; names[g][k] is
 * the k-th field name of group g ("Final-Recipient", ...) */
#define MAXG 8
#define MAXF 12
struct groups {
	int n;
	int nf[MAXG];
	char name[MAXG][MAXF][40];
	char *text[MAXG];	/* the group's lines, NUL-terminated */
};

static void parse_groups(const char *s, struct groups *g)
{
	memset(g, 0, sizeof *g);
	while (*s) {
		const char *e = strstr(s, "\r\n\r\n");
		size_t n = e ? (size_t)(e - s) + 2 : strlen(s);

		assert_true(g->n < MAXG);
		g->text[g->n] = strndup(s, n);
		for (const char *l = s; l < s + n; ) {
			const char *le = strstr(l, "\r\n");
			const char *colon = memchr(l, ':', (size_t)(le - l));

			if (*l != ' ' && *l != '\t') {
				assert_non_null(colon);
				assert_true(g->nf[g->n] < MAXF);
				snprintf(g->name[g->n][g->nf[g->n]++], 40, "%.*s",
					 (int)(colon - l), l);
			}
			l = le + 2;
		}
		g->n++;
		s += n;
		if (e)
			s += 2;
	}
}

static void groups_free(struct groups *g)
{
	for (int i = 0; i < g->n; i++)
		free(g->text[i]);
}

static void assert_names(const struct groups *g, int gi, const char *list)
{
	char got[512] = "";

	for (int k = 0; k < g->nf[gi]; k++) {
		if (k)
			strcat(got, ",");
		strcat(got, g->name[gi][k]);
	}
	if (strcmp(got, list) != 0)
		fail_msg("group %d fields: got \"%s\" want \"%s\"", gi, got,
			 list);
}

/* full parse: lines, MIME, three parts, delivery-status groups */
static void parse_all(const struct dsn_out *o, struct mime *m,
		      struct groups *g)
{
	check_lines(o);
	parse_mime(o, m);
	assert_int_equal(m->nparts, 3);
	parse_groups(m->part[1].body, g);
}

static const char *ctype(const struct mime *m, int i)
{
	static char buf[200];
	char *v = field(m->part[i].hdr, "Content-Type", NULL);

	assert_non_null(v);
	snprintf(buf, sizeof buf, "%s", v);
	free(v);
	return buf;
}

/* ---- cases ------------------------------------------------------------ */

static void failed_single(void **st)
{
	(void)st;
	struct dsn_rcpt r = { .addr = "bob@example.com", .action = DSN_FAILED,
		.status = "5.1.1", .remote_mta = "mx.example.com",
		.diag = "550 5.1.1 <bob@example.com>: no such user",
		.last_attempt_us = NOW_US - 5000000 };
	struct dsn_in in = base_in(&r, 1);
	struct dsn_out o = run(&in);
	struct mime m;
	struct groups g;

	parse_all(&o, &m, &g);
	assert_int_equal(o.eightbit, 0);
	assert_field(o.p, "From",
		     "MAILER-DAEMON@mx1.sluice.example (Mail Delivery System)");
	assert_field(o.p, "To", "<alice@example.org>");
	assert_field(o.p, "Subject", "Undelivered Mail Returned to Sender");
	assert_field(o.p, "Date", "Tue, 14 Nov 2023 22:13:20 +0000");
	assert_field(o.p, "Auto-Submitted", "auto-replied");
	assert_field(o.p, "MIME-Version", "1.0");
	char *mid = field(o.p, "Message-ID", NULL);
	assert_non_null(mid);
	assert_true(mid[0] == '<' && strstr(mid, "6553F10000500007") &&
		    strstr(mid, "@mx1.sluice.example>") &&
		    mid[strlen(mid) - 1] == '>');
	free(mid);
	char *ct = field(o.p, "Content-Type", NULL);
	assert_true(strncmp(ct, "multipart/report; report-type=delivery-status;",
			    46) == 0);
	free(ct);
	assert_no_field(o.p, "Content-Transfer-Encoding");

	assert_string_equal(ctype(&m, 0), "text/plain; charset=us-ascii");
	assert_string_equal(ctype(&m, 1), "message/delivery-status");
	assert_string_equal(ctype(&m, 2), "text/rfc822-headers");
	assert_non_null(strstr(m.part[0].body,
			       "This is the mail system at host mx1.sluice.example."));
	assert_non_null(strstr(m.part[0].body, "could not\r\nbe delivered"));
	assert_non_null(strstr(m.part[0].body, "<bob@example.com>: host "
			       "mx.example.com said: 550 5.1.1"));

	assert_int_equal(g.n, 2);
	assert_names(&g, 0, "Reporting-MTA,Arrival-Date");
	assert_field(g.text[0], "Reporting-MTA", "dns; mx1.sluice.example");
	assert_field(g.text[0], "Arrival-Date", "Tue, 14 Nov 2023 21:56:40 +0000");
	assert_names(&g, 1, "Final-Recipient,Action,Status,Remote-MTA,"
		     "Diagnostic-Code,Last-Attempt-Date");
	assert_field(g.text[1], "Final-Recipient", "rfc822; bob@example.com");
	assert_field(g.text[1], "Action", "failed");
	assert_field(g.text[1], "Status", "5.1.1");
	assert_field(g.text[1], "Remote-MTA", "dns; mx.example.com");
	assert_field(g.text[1], "Diagnostic-Code",
		     "smtp; 550 5.1.1 <bob@example.com>: no such user");
	assert_field(g.text[1], "Last-Attempt-Date",
		     "Tue, 14 Nov 2023 22:13:15 +0000");

	/* headers only: exactly the header section with its empty line */
	assert_int_equal(m.part[2].body_len, ORIG_HDR_LEN);
	assert_memory_equal(m.part[2].body, orig_crlf, ORIG_HDR_LEN);
	assert_null(strstr(o.p, "Hi Bob"));
	groups_free(&g);
	mime_free(&m);
	out_free(&o);
}

static void delayed(void **st)
{
	(void)st;
	struct dsn_rcpt r = { .addr = "bob@example.com", .action = DSN_DELAYED,
		.status = "4.4.1", .remote_mta = "mx.example.com",
		.diag = "451 4.4.1 try later", .last_attempt_us = NOW_US,
		.retry_until_us = NOW_US + 5ull * 86400 * 1000000 };
	struct dsn_in in = base_in(&r, 1);
	struct dsn_out o = run(&in);
	struct mime m;
	struct groups g;

	parse_all(&o, &m, &g);
	assert_field(o.p, "Subject", "Delayed Mail (still being retried)");
	assert_non_null(strstr(m.part[0].body, "THIS IS A WARNING ONLY"));
	assert_null(strstr(m.part[0].body, "I'm sorry"));
	assert_int_equal(g.n, 2);
	assert_names(&g, 1, "Final-Recipient,Action,Status,Remote-MTA,"
		     "Diagnostic-Code,Last-Attempt-Date,Will-Retry-Until");
	assert_field(g.text[1], "Action", "delayed");
	assert_field(g.text[1], "Status", "4.4.1");
	assert_field(g.text[1], "Will-Retry-Until",
		     "Sun, 19 Nov 2023 22:13:20 +0000");
	assert_string_equal(ctype(&m, 2), "text/rfc822-headers");
	groups_free(&g);
	mime_free(&m);
	out_free(&o);
}

static void relayed(void **st)
{
	(void)st;
	/* retry_until is ignored for a non-delayed recipient */
	struct dsn_rcpt r = { .addr = "bob@example.com", .action = DSN_RELAYED,
		.status = "2.0.0", .remote_mta = "legacy.example.com",
		.diag = "250 2.0.0 queued as 123",
		.retry_until_us = NOW_US + 1000000 };
	struct dsn_in in = base_in(&r, 1);
	struct dsn_out o = run(&in);
	struct mime m;
	struct groups g;

	parse_all(&o, &m, &g);
	assert_field(o.p, "Subject", "Successful Mail Delivery Report");
	assert_non_null(strstr(m.part[0].body, "successfully delivered"));
	assert_names(&g, 1, "Final-Recipient,Action,Status,Remote-MTA,"
		     "Diagnostic-Code");
	assert_field(g.text[1], "Action", "relayed");
	assert_field(g.text[1], "Status", "2.0.0");
	assert_string_equal(ctype(&m, 2), "text/rfc822-headers");
	assert_memory_equal(m.part[2].body, orig_crlf, ORIG_HDR_LEN);
	assert_int_equal(m.part[2].body_len, ORIG_HDR_LEN);
	groups_free(&g);
	mime_free(&m);
	out_free(&o);
}

static void mixed(void **st)
{
	(void)st;
	struct dsn_rcpt r[3] = {
		{ .addr = "ok@example.com", .action = DSN_DELIVERED,
		  .status = "2.0.0" },
		{ .addr = "later@example.net", .action = DSN_DELAYED,
		  .status = "4.4.7", .retry_until_us = NOW_US + 1000000 },
		{ .addr = "gone@example.org", .action = DSN_FAILED,
		  .status = "5.1.2", .diag = "host not found" },
	};
	struct dsn_in in = base_in(r, 3);
	struct dsn_out o = run(&in);
	struct mime m;
	struct groups g;

	parse_all(&o, &m, &g);
	assert_field(o.p, "Subject", "Undelivered Mail Returned to Sender");
	assert_int_equal(g.n, 4);
	/* recipients in input order, each with its own fields */
	assert_names(&g, 1, "Final-Recipient,Action,Status");
	assert_field(g.text[1], "Final-Recipient", "rfc822; ok@example.com");
	assert_field(g.text[1], "Action", "delivered");
	assert_names(&g, 2, "Final-Recipient,Action,Status,Will-Retry-Until");
	assert_field(g.text[2], "Action", "delayed");
	assert_field(g.text[2], "Status", "4.4.7");
	assert_names(&g, 3, "Final-Recipient,Action,Status,Diagnostic-Code");
	assert_field(g.text[3], "Final-Recipient", "rfc822; gone@example.org");
	assert_field(g.text[3], "Action", "failed");
	assert_field(g.text[3], "Diagnostic-Code", "smtp; host not found");
	/* part 1 has a section per kind */
	assert_non_null(strstr(m.part[0].body, "I'm sorry"));
	assert_non_null(strstr(m.part[0].body, "WARNING ONLY"));
	assert_non_null(strstr(m.part[0].body, "successfully delivered"));
	assert_non_null(strstr(m.part[0].body, "<gone@example.org>: host not found"));
	groups_free(&g);
	mime_free(&m);
	out_free(&o);

	/* delayed + relayed: delay wins over success */
	r[2].action = DSN_RELAYED;
	r[2].status = "2.0.0";
	assert_string_equal(dsn_subject(r, 3), "Delayed Mail (still being retried)");
	o = run(&in);
	assert_field(o.p, "Subject", "Delayed Mail (still being retried)");
	out_free(&o);
}

static void orcpt_envid(void **st)
{
	(void)st;
	struct dsn_rcpt r[2] = {
		{ .addr = "bob@example.com", .orcpt = "rfc822;Bob@Example.COM",
		  .action = DSN_FAILED, .status = "5.1.1" },
		{ .addr = "carol@example.com", .action = DSN_FAILED,
		  .status = "5.1.1" },
	};
	struct dsn_in in = base_in(r, 2);
	in.envid = "QQ314159";
	in.received_from = "unknown[198.18.0.2]";
	struct dsn_out o = run(&in);
	struct mime m;
	struct groups g;

	parse_all(&o, &m, &g);
	assert_names(&g, 0, "Reporting-MTA,Original-Envelope-Id,"
		     "Received-From-MTA,Arrival-Date");
	assert_field(g.text[0], "Original-Envelope-Id", "QQ314159");
	assert_field(g.text[0], "Received-From-MTA", "dns; unknown[198.18.0.2]");
	assert_names(&g, 1, "Original-Recipient,Final-Recipient,Action,Status");
	assert_field(g.text[1], "Original-Recipient", "rfc822;Bob@Example.COM");
	/* carol has no ORCPT */
	assert_names(&g, 2, "Final-Recipient,Action,Status");
	groups_free(&g);
	mime_free(&m);
	out_free(&o);

	/* ORCPT without an address type gets rfc822 */
	r[0].orcpt = "bob@example.com";
	o = run(&in);
	parse_all(&o, &m, &g);
	assert_field(g.text[1], "Original-Recipient", "rfc822;bob@example.com");
	groups_free(&g);
	mime_free(&m);
	out_free(&o);
}

static void ret_full(void **st)
{
	(void)st;
	struct dsn_rcpt r = { .addr = "bob@example.com", .action = DSN_FAILED,
		.status = "5.1.1" };
	struct dsn_in in = base_in(&r, 1);
	in.ret_full = 1;
	struct dsn_out o = run(&in);
	struct mime m;
	struct groups g;

	parse_all(&o, &m, &g);
	assert_string_equal(ctype(&m, 2), "message/rfc822");
	assert_int_equal(m.part[2].body_len, sizeof orig_crlf - 1);
	assert_memory_equal(m.part[2].body, orig_crlf, sizeof orig_crlf - 1);
	assert_int_equal(o.eightbit, 0);
	groups_free(&g);
	mime_free(&m);
	out_free(&o);

	/* relayed notice with RET=FULL also returns everything */
	r.action = DSN_RELAYED;
	r.status = "2.0.0";
	o = run(&in);
	parse_all(&o, &m, &g);
	assert_string_equal(ctype(&m, 2), "message/rfc822");
	assert_memory_equal(m.part[2].body, orig_crlf, sizeof orig_crlf - 1);
	groups_free(&g);
	mime_free(&m);
	out_free(&o);
}

static void bare_lf_and_no_body(void **st)
{
	(void)st;
	static const char lf[] = "Subject: x\nFrom: a@b\n\nbody\rline\nlast";
	static const char want[] =
		"Subject: x\r\nFrom: a@b\r\n\r\nbody\r\nline\r\nlast\r\n";
	struct dsn_rcpt r = { .addr = "bob@example.com", .action = DSN_FAILED,
		.status = "5.1.1" };
	struct dsn_in in = base_in(&r, 1);
	in.msg = (const uint8_t *)lf;
	in.msg_len = sizeof lf - 1;
	in.ret_full = 1;
	struct dsn_out o = run(&in);
	struct mime m;
	struct groups g;

	parse_all(&o, &m, &g);
	assert_int_equal(m.part[2].body_len, sizeof want - 1);
	assert_memory_equal(m.part[2].body, want, sizeof want - 1);
	groups_free(&g);
	mime_free(&m);
	out_free(&o);

	/* headers only of the bare-LF message */
	in.ret_full = 0;
	o = run(&in);
	parse_all(&o, &m, &g);
	size_t wh = (size_t)(strstr(want, "\r\n\r\n") + 4 - want);
	assert_int_equal(m.part[2].body_len, wh);
	assert_memory_equal(m.part[2].body, want, wh);
	groups_free(&g);
	mime_free(&m);
	out_free(&o);

	/* no empty line at all: the whole message is its header */
	static const char hdr_only[] = "Subject: x\r\nFrom: a@b";
	in.msg = (const uint8_t *)hdr_only;
	in.msg_len = sizeof hdr_only - 1;
	o = run(&in);
	parse_all(&o, &m, &g);
	assert_string_equal(m.part[2].body, "Subject: x\r\nFrom: a@b\r\n");
	groups_free(&g);
	mime_free(&m);
	out_free(&o);
}

static void long_lines(void **st)
{
	(void)st;
	size_t hl = 3000, bl = 2500, n = 0;
	char *msg = malloc(hl + bl + 100);
	struct dsn_rcpt r = { .addr = "bob@example.com", .action = DSN_FAILED,
		.status = "5.1.1" };
	struct dsn_in in = base_in(&r, 1);
	struct mime m;
	struct groups g;

	assert_non_null(msg);
	n += (size_t)sprintf(msg, "X-Long: ");
	memset(msg + n, 'Q', hl), n += hl;
	n += (size_t)sprintf(msg + n, "\r\nSubject: s\r\n\r\n");
	memset(msg + n, 'Z', bl), n += bl;
	n += (size_t)sprintf(msg + n, "\r\n");
	in.msg = (const uint8_t *)msg;
	in.msg_len = n;
	in.ret_full = 1;
	struct dsn_out o = run(&in);

	parse_all(&o, &m, &g);	/* includes: no line over 998 */
	const char *p3 = m.part[2].body;
	/* all octets kept */
	size_t nh = 0, nb = 0;
	for (const char *c = p3; *c; c++)
		nh += *c == 'Q', nb += *c == 'Z';
	assert_int_equal(nh, hl);
	assert_int_equal(nb, bl);
	/* the header line was folded: still one X-Long field, Subject kept */
	int cnt;
	char *v = field(p3, "X-Long", &cnt);
	assert_int_equal(cnt, 1);
	assert_true(strspn(v, "Q ") == strlen(v));
	/* every Q is inside the one unfolded field value */
	size_t nq = 0;
	for (const char *c = v; *c; c++)
		nq += *c == 'Q';
	assert_int_equal(nq, hl);
	free(v);
	assert_field(p3, "Subject", "s");
	/* in the body, split lines never start with a space */
	const char *body = strstr(p3, "\r\n\r\n") + 4;
	for (const char *l = body; *l; l = strstr(l, "\r\n") + 2)
		assert_true(*l == 'Z');
	groups_free(&g);
	mime_free(&m);
	out_free(&o);
	free(msg);
}

static void injection(void **st)
{
	(void)st;
	struct dsn_rcpt r = { .addr = "bob@example.com\r\nBcc: x@evil",
		.orcpt = "rfc822;b@x\nX-Orcpt: 1", .action = DSN_FAILED,
		.status = "5.1.1\r\nX-Status: 1",
		.remote_mta = "mx\r\nX-Mta: 1",
		.diag = "550 no\r\nX-Injected: yes\r\n\r\n--=_sluice\r\n"
			"Content-Type: text/html\r\n\r\n<b>" };
	struct dsn_in in = base_in(&r, 1);
	in.envid = "abc\r\nX-Evil: 1";
	in.received_from = "host\nX-Rf: 1";
	in.sender = "alice@example.org>\r\nCc: <victim@example.com";
	struct dsn_out o = run(&in);
	struct mime m;
	struct groups g;
	static const char *const bad[] = { "Bcc:", "X-Orcpt:", "X-Status:",
		"X-Mta:", "X-Injected:", "X-Evil:", "X-Rf:", "Cc:",
		"Content-Type: text/html" };

	parse_all(&o, &m, &g);
	/* no line of the whole notice starts with an injected field */
	for (const char *l = o.p; *l; l = strstr(l, "\r\n") + 2)
		for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
			if (strncmp(l, bad[k], strlen(bad[k])) == 0)
				fail_msg("injected line: %.60s", l);
	assert_int_equal(g.n, 2);
	assert_names(&g, 0, "Reporting-MTA,Original-Envelope-Id,"
		     "Received-From-MTA,Arrival-Date");
	assert_names(&g, 1, "Original-Recipient,Final-Recipient,Action,"
		     "Status,Remote-MTA,Diagnostic-Code");
	assert_field(g.text[0], "Original-Envelope-Id", "abc X-Evil: 1");
	assert_field(g.text[1], "Diagnostic-Code",
		     "smtp; 550 no X-Injected: yes --=_sluice Content-Type: "
		     "text/html <b>");
	assert_field(g.text[1], "Final-Recipient",
		     "rfc822; bob@example.com Bcc: x@evil");
	/* a malformed status falls back to the generic one */
	assert_field(g.text[1], "Status", "5.0.0");
	groups_free(&g);
	mime_free(&m);
	out_free(&o);
}

static void diag_limit(void **st)
{
	(void)st;
	char diag[5000];
	struct dsn_rcpt r = { .addr = "bob@example.com", .action = DSN_FAILED,
		.status = "5.1.1", .diag = diag };
	struct dsn_in in = base_in(&r, 1);
	struct mime m;
	struct groups g;

	memset(diag, 'd', sizeof diag - 1);
	diag[sizeof diag - 1] = '\0';
	struct dsn_out o = run(&in);
	parse_all(&o, &m, &g);
	char *v = field(g.text[1], "Diagnostic-Code", NULL);
	assert_non_null(v);
	assert_int_equal(strlen(v), strlen("smtp; ") + 900);
	free(v);
	/* part 1 wraps the long word: its lines stay short */
	for (const char *l = m.part[0].body; *l; ) {
		const char *e = strstr(l, "\r\n");
		assert_true(e - l <= 76);
		l = e + 2;
	}
	groups_free(&g);
	mime_free(&m);
	out_free(&o);
}

static void boundary_collision(void **st)
{
	(void)st;
	struct dsn_rcpt r = { .addr = "bob@example.com", .action = DSN_FAILED,
		.status = "5.1.1" };
	struct dsn_in in = base_in(&r, 1);
	struct dsn_out o = run(&in);
	struct mime m, m2;
	struct groups g;
	char first[128], *msg;

	parse_all(&o, &m, &g);
	snprintf(first, sizeof first, "%s", m.boundary);
	groups_free(&g);
	mime_free(&m);
	out_free(&o);

	/* the original contains the first-choice delimiter line */
	assert_true(asprintf(&msg, "Subject: trap\r\n\r\nbefore\r\n--%s\r\n"
			     "Content-Type: text/plain\r\n\r\nfake\r\n--%s--\r\n",
			     first, first) > 0);
	in.msg = (const uint8_t *)msg;
	in.msg_len = strlen(msg);
	in.ret_full = 1;
	o = run(&in);
	parse_all(&o, &m2, &g);
	assert_string_not_equal(m2.boundary, first);
	assert_non_null(strstr(m2.part[2].body, first));	/* kept verbatim */
	assert_null(strstr(m2.part[2].body, m2.boundary));
	assert_string_equal(m2.part[2].body, msg);
	groups_free(&g);
	mime_free(&m2);
	out_free(&o);

	/* headers-only: the trap is in the body, not returned: no change */
	in.ret_full = 0;
	o = run(&in);
	parse_all(&o, &m2, &g);
	assert_string_equal(m2.boundary, first);
	groups_free(&g);
	mime_free(&m2);
	out_free(&o);

	/* the boundary planted in a diagnostic */
	r.diag = first;
	o = run(&in);
	parse_all(&o, &m2, &g);
	assert_string_not_equal(m2.boundary, first);
	assert_int_equal(g.n, 2);
	groups_free(&g);
	mime_free(&m2);
	out_free(&o);
	free(msg);
}

static void eightbit(void **st)
{
	(void)st;
	static const char u8[] = "Subject: caf\xc3\xa9?\r\n\r\nna\xc3\xafve\r\n";
	static const char u8body[] = "Subject: plain\r\n\r\nna\xc3\xafve\r\n";
	struct dsn_rcpt r = { .addr = "bob@example.com", .action = DSN_FAILED,
		.status = "5.1.1" };
	struct dsn_in in = base_in(&r, 1);
	struct mime m;
	struct groups g;

	in.msg = (const uint8_t *)u8;
	in.msg_len = sizeof u8 - 1;
	in.ret_full = 1;
	struct dsn_out o = run(&in);
	parse_all(&o, &m, &g);
	assert_int_equal(o.eightbit, 1);
	assert_field(o.p, "Content-Transfer-Encoding", "8bit");
	assert_field(m.part[2].hdr, "Content-Transfer-Encoding", "8bit");
	assert_string_equal(m.part[2].body, u8);
	groups_free(&g);
	mime_free(&m);
	out_free(&o);

	/* 8-bit only in the body, headers returned: 7-bit notice */
	in.msg = (const uint8_t *)u8body;
	in.msg_len = sizeof u8body - 1;
	in.ret_full = 0;
	o = run(&in);
	parse_all(&o, &m, &g);
	assert_int_equal(o.eightbit, 0);
	assert_no_field(o.p, "Content-Transfer-Encoding");
	for (size_t i = 0; i < o.n; i++)
		assert_true((uint8_t)o.p[i] < 128);
	groups_free(&g);
	mime_free(&m);
	out_free(&o);

	/* 8-bit in a diagnostic never reaches the notice */
	r.diag = "550 \xff\xc3\xa9 bad";
	o = run(&in);
	assert_int_equal(o.eightbit, 0);
	parse_all(&o, &m, &g);
	assert_field(g.text[1], "Diagnostic-Code", "smtp; 550 ??? bad");
	groups_free(&g);
	mime_free(&m);
	out_free(&o);
}

static void utf8_address(void **st)
{
	(void)st;
	struct dsn_rcpt r[2] = {
		{ .addr = "j\xc3\xb6rg@b\xc3\xbc" "cher.example",
		  .orcpt = "utf-8;j\xc3\xb6rg@b\xc3\xbc" "cher.example",
		  .action = DSN_FAILED, .status = "5.1.1" },
		/* malformed UTF-8 is not passed through */
		{ .addr = "x\xff\xfe@example.com", .action = DSN_FAILED,
		  .status = "5.1.1" },
	};
	struct dsn_in in = base_in(r, 2);
	struct dsn_out o = run(&in);
	struct mime m;
	struct groups g;

	parse_all(&o, &m, &g);
	assert_int_equal(o.eightbit, 1);
	char *ct = field(o.p, "Content-Type", NULL);
	assert_non_null(strstr(ct, "report-type=global-delivery-status"));
	free(ct);
	assert_string_equal(ctype(&m, 0), "text/plain; charset=utf-8");
	assert_string_equal(ctype(&m, 1), "message/global-delivery-status");
	assert_field(g.text[1], "Final-Recipient",
		     "utf-8; j\xc3\xb6rg@b\xc3\xbc" "cher.example");
	assert_field(g.text[1], "Original-Recipient",
		     "utf-8;j\xc3\xb6rg@b\xc3\xbc" "cher.example");
	assert_field(g.text[2], "Final-Recipient", "rfc822; x??@example.com");
	groups_free(&g);
	mime_free(&m);
	out_free(&o);
}

static void subjects(void **st)
{
	(void)st;
	struct dsn_rcpt r[2] = { { .action = DSN_DELIVERED },
				 { .action = DSN_RELAYED } };

	assert_string_equal(dsn_subject(r, 2), "Successful Mail Delivery Report");
	assert_string_equal(dsn_subject(r + 1, 1), "Successful Mail Delivery Report");
	r[1].action = DSN_DELAYED;
	assert_string_equal(dsn_subject(r, 2), "Delayed Mail (still being retried)");
	r[0].action = DSN_FAILED;
	assert_string_equal(dsn_subject(r, 2), "Undelivered Mail Returned to Sender");
	assert_string_equal(dsn_subject(r, 0), "Mail Delivery Status Report");
	assert_string_equal(dsn_subject(NULL, 2), "Mail Delivery Status Report");
}

static void einval(void **st)
{
	(void)st;
	struct dsn_rcpt r = { .addr = "bob@example.com", .action = DSN_FAILED,
		.status = "5.1.1" };
	struct dsn_in in = base_in(&r, 1), bad;
	struct dsn_rcpt br;
	uint8_t *out = NULL;
	size_t len = 0;
	int eb = -1;

	assert_int_equal(dsn_build(NULL, &out, &len, &eb), -EINVAL);
	assert_int_equal(dsn_build(&in, NULL, &len, &eb), -EINVAL);
	assert_int_equal(dsn_build(&in, &out, NULL, &eb), -EINVAL);
	assert_int_equal(dsn_build(&in, &out, &len, NULL), -EINVAL);
#define BAD(stmt) do { bad = in; br = r; bad.rcpt = &br; stmt; \
	assert_int_equal(dsn_build(&bad, &out, &len, &eb), -EINVAL); } while (0)
	BAD(bad.reporting_mta = NULL);
	BAD(bad.reporting_mta = "\r\n");	/* nothing left after cleaning */
	BAD(bad.sender = NULL);
	BAD(bad.sender = "");
	BAD(bad.nrcpt = 0);
	BAD(bad.rcpt = NULL);
	BAD(br.addr = NULL);
	BAD(br.addr = "");
	BAD(br.status = NULL);
	BAD(br.action = (enum dsn_action)7);
	BAD(bad.msg = NULL);		/* msg_len > 0 */
#undef BAD
	assert_null(out);
	assert_int_equal(eb, -1);
	/* the same input is fine */
	assert_int_equal(dsn_build(&in, &out, &len, &eb), 0);
	free(out);
}

static void enomem(void **st)
{
	(void)st;
	size_t big = 200000;
	char *msg = malloc(big + 32);
	struct dsn_rcpt r = { .addr = "bob@example.com", .action = DSN_FAILED,
		.status = "5.1.1" };
	struct dsn_in in = base_in(&r, 1);
	uint8_t *out = NULL;
	size_t len = 0;
	int eb = 0;

	assert_non_null(msg);
	strcpy(msg, "Subject: big\r\n\r\n");
	memset(msg + 16, 'x', big);
	in.msg = (const uint8_t *)msg;
	in.msg_len = big + 16;
	in.ret_full = 1;
	/* first allocation, then a growth step: no result, no leak (ASan) */
	for (int k = 1; k <= 3; k++) {
		fail_at = k;
		assert_int_equal(dsn_build(&in, &out, &len, &eb), -ENOMEM);
		assert_null(out);
	}
	fail_at = 0;
	assert_int_equal(dsn_build(&in, &out, &len, &eb), 0);
	assert_true(len > big);
	free(out);
	free(msg);
}

/* ---- --dump for the Python cross-check -------------------------------- */

static int dump_one(const char *dir, const char *name, const struct dsn_in *in)
{
	char path[4096];
	uint8_t *out;
	size_t len;
	int eb;
	FILE *f;

	if (dsn_build(in, &out, &len, &eb) != 0)
		return -1;
	snprintf(path, sizeof path, "%s/%s.eml", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(out, 1, len, f) != len || fclose(f) != 0) {
		free(out);
		return -1;
	}
	free(out);
	return 0;
}

static int dump(const char *dir)
{
	struct dsn_rcpt mix[3] = {
		{ .addr = "ok@example.com", .action = DSN_RELAYED,
		  .status = "2.0.0", .remote_mta = "legacy.example.com" },
		{ .addr = "later@example.net", .orcpt = "rfc822;Later@example.net",
		  .action = DSN_DELAYED, .status = "4.4.7",
		  .last_attempt_us = NOW_US, .retry_until_us = NOW_US + 1000000 },
		{ .addr = "gone@example.org", .action = DSN_FAILED,
		  .status = "5.1.1", .remote_mta = "mx.example.org",
		  .diag = "550 5.1.1 no\r\nX-Injected: yes" },
	};
	struct dsn_in in = base_in(mix, 3);
	int rc = 0;

	in.envid = "QQ314159\r\nX-Evil: 1";
	in.received_from = "unknown[198.18.0.2]";
	rc |= dump_one(dir, "mixed_headers", &in);
	in.ret_full = 1;
	rc |= dump_one(dir, "mixed_full", &in);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(failed_single),
		cmocka_unit_test(delayed),
		cmocka_unit_test(relayed),
		cmocka_unit_test(mixed),
		cmocka_unit_test(orcpt_envid),
		cmocka_unit_test(ret_full),
		cmocka_unit_test(bare_lf_and_no_body),
		cmocka_unit_test(long_lines),
		cmocka_unit_test(injection),
		cmocka_unit_test(diag_limit),
		cmocka_unit_test(boundary_collision),
		cmocka_unit_test(eightbit),
		cmocka_unit_test(utf8_address),
		cmocka_unit_test(subjects),
		cmocka_unit_test(einval),
		cmocka_unit_test(enomem),
	};

	if (argc == 3 && strcmp(argv[1], "--dump") == 0)
		return dump(argv[2]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
