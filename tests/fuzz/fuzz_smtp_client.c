/*
 * fuzz_smtp_client.c - libFuzzer target: the client engine against an
 * arbitrary (hostile) server.
 *
 * Byte 0: TLS policy and options (no pipelining / no chunking); byte 1:
 * message shape (recipients, body type, SMTPUTF8). Then ops:
 *   0x00-0xef  feed (op & 0x7f) + 1 bytes of server replies
 *   0xf0       submit the message if READY (or after DONE)
 *   0xf1       QUIT if READY
 *   0xf2       TLS done / 0xf3 TLS failed (if STARTTLS pending)
 *   0xf4       advance the clock by next byte * 10 s, tick
 *   0xf5       drain only part of the output
 * Invariants: client output never holds a bare CR/LF outside a BDAT or
 * DATA body, every recipient result after DONE/CLOSE is 0 or 200..599,
 * and the body is never sent while no recipient was accepted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_body.h"
#include "smtp_client.h"
#include "smtp_err.h"

static void check_results(const struct smtp_client_msg *m)
{
	unsigned i;

	for (i = 0; i < m->n_rcpt; i++)
		if (m->rcpt[i].code && (m->rcpt[i].code < 200 ||
					m->rcpt[i].code > 599))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static const uint8_t body_text[] = ".a\r\n..\r\nline\r\n.\r\nend\r\n";
	static const uint8_t body_bin[] = "\x00\n.\n\r.\r";
	struct smtp_client_cfg cfg;
	struct smtp_client *c;
	struct smtp_client_rcpt rc[3] = { { .addr = "a@example.com" },
					  { .addr = "b@example.com",
					    .notify = SMTP_NOTIFY_FAILURE },
					  { .addr = "c@example.com",
					    .orcpt = "rfc822;c@example.com" } };
	struct smtp_client_msg m = { .sender = "s@example.org" };
	uint64_t now = 1000;
	size_t i = 2;
	int in_msg = 0;

	if (n < 2)
		return 0;
	smtp_client_cfg_defaults(&cfg);
	cfg.helo_name = "fuzz.test";
	cfg.tls = (enum smtp_tls_policy)(d[0] & 3);
	cfg.no_pipelining = (d[0] & 4) != 0;
	cfg.no_chunking = (d[0] & 8) != 0;
	m.rcpt = rc;
	m.n_rcpt = 1 + d[1] % 3;
	m.body_type = (uint8_t)((d[1] >> 2) % 3);
	m.smtputf8 = (d[1] & 0x10) != 0;
	m.mt_priority = (d[1] & 0x20) ? 3 : SMTP_MTPRIO_NONE;
	m.envid = (d[1] & 0x40) ? "env+id" : NULL;
	m.body = m.body_type == SMTP_BODY_BINARYMIME ? body_bin : body_text;
	m.body_len = m.body_type == SMTP_BODY_BINARYMIME ? sizeof(body_bin) - 1
							  : sizeof(body_text) - 1;
	c = smtp_client_new(&cfg, now);
	if (!c)
		abort();
	while (i < n) {
		uint8_t op = d[i++];
		enum smtp_cli_act a = smtp_client_action(c);
		const uint8_t *p;
		size_t k, take = SIZE_MAX;

		if (op < 0xf0) {
			k = (size_t)(op & 0x7f) + 1;
			if (k > n - i)
				k = n - i;
			if (smtp_client_input(c, d + i, k, now) > (ssize_t)k)
				abort();
			i += k;
		} else if (op == 0xf0 && (a == SMTP_CLI_READY || a == SMTP_CLI_DONE)) {
			if (smtp_client_send(c, &m, now) == 0)
				in_msg = 1;
		} else if (op == 0xf1 && (a == SMTP_CLI_READY || a == SMTP_CLI_DONE)) {
			(void)smtp_client_quit(c, now);
		} else if (op == 0xf2) {
			(void)smtp_client_tls_done(c, now);
		} else if (op == 0xf3) {
			(void)smtp_client_tls_failed(c, "fuzz", now);
		} else if (op == 0xf4 && i < n) {
			now += (uint64_t)d[i++] * 10000;
			smtp_client_tick(c, now);
		} else if (op == 0xf5 && i < n) {
			take = d[i++];
		}
		a = smtp_client_action(c);
		if (in_msg && (a == SMTP_CLI_DONE || a == SMTP_CLI_CLOSE)) {
			check_results(&m);
			in_msg = 0;
		}
		while (take && (k = smtp_client_output(c, &p)) > 0) {
			if (k > take)
				k = take;
			smtp_client_output_consume(c, k, now);
			take -= k;
		}
	}
	smtp_client_free(c);
	return 0;
}
