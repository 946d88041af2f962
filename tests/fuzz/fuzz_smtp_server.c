/*
 * fuzz_smtp_server.c - libFuzzer target: whole server sessions.
 *
 * Byte 0 picks the configuration (which verdicts the caller answers,
 * STARTTLS/AUTH offered, small limits, tiny output buffer). Then ops:
 *   0x00-0xef  feed the next (op & 0x7f) + 1 input bytes as client data
 *   0xf0       answer a pending verdict with a code from the next byte
 *   0xf1       advance the clock by next byte * 7 s, tick
 *   0xf2       TLS handshake done (if STARTTLS pending)
 *   0xf3       drain only part of the output (next byte octets)
 *   0xf4       set a queue id
 * Invariants after every op (abort on violation): output never exceeds
 * the configured cap, never holds a bare CR/LF, every reply line starts
 * with a 3-digit code 2xx-5xx; after CLOSE input is refused; a DATA
 * verdict's message starts with "Received: " and holds no bare CR/LF
 * unless it came by BDAT BODY=BINARYMIME.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_body.h"
#include "smtp_err.h"
#include "smtp_server.h"

/* check_out - the pending output is well-formed; drain take octets.
 * *bol says whether the pending bytes start at a line start (a partial
 * drain may leave the rest of a line). */
static void check_out(struct smtp_server *s, size_t cap, size_t take, int *bol)
{
	const uint8_t *p;
	size_t n = smtp_server_output(s, &p), i = 0;

	if (n > cap)
		abort();
	if (!*bol && n) {
		const uint8_t *lf = memchr(p, '\n', n);

		i = lf ? (size_t)(lf - p) + 1 : n;
	}
	if (n > i && smtp_body_bare(p + i, n - i) &&
	    !(p[n - 1] == '\r' || p[n - 1] != '\n'))
		abort();
	while (i < n) {
		const uint8_t *lf = memchr(p + i, '\n', n - i);

		if (!lf)
			break;
		if ((size_t)(lf - (p + i)) < 5 || p[i] < '2' || p[i] > '5' ||
		    lf[-1] != '\r' || memchr(p + i, '\r', (size_t)(lf - (p + i)) - 1))
			abort();
		i = (size_t)(lf - p) + 1;
	}
	if (take > n)
		take = n;
	if (take)
		*bol = p[take - 1] == '\n';
	smtp_server_output_consume(s, take);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct smtp_server_cfg cfg;
	struct smtp_peer peer = { .addr = "192.0.2.1" };
	struct smtp_server *s;
	uint64_t now = 1704067200000ull;
	size_t i = 1;
	uint8_t c;
	int bol = 1;

	if (n < 1)
		return 0;
	c = d[0];
	smtp_server_cfg_defaults(&cfg);
	cfg.hostname = "fuzz.test";
	cfg.verdicts = c & SMTP_VP_ALL;
	if (c & 0x40) {
		cfg.ext |= SMTP_EXT_STARTTLS | SMTP_EXT_AUTH;
		cfg.auth_plaintext = (c & 0x01) != 0;
	}
	if (c & 0x80) {
		cfg.max_rcpts = 3;
		cfg.max_errors = 5;
		cfg.max_cmd_line = 512;
		cfg.max_text_line = 100;
		cfg.max_msg_size = 300;
		cfg.max_txns = 3;
		cfg.out_cap = 4096;
		cfg.cmd_timeout_ms = 60000;
	}
	s = smtp_server_new(&cfg, &peer, now);
	if (!s)
		abort();
	while (i < n) {
		uint8_t op = d[i++];
		const struct smtp_action *a = smtp_server_action(s);

		if (op < 0xf0) {
			size_t k = (size_t)(op & 0x7f) + 1;
			int was_closed = a->type == SMTP_ACT_CLOSE;
			ssize_t r;

			if (k > n - i)
				k = n - i;
			r = smtp_server_input(s, d + i, k, now);
			if (was_closed && r != -SMTP_ECLOSED)
				abort();
			if (r > (ssize_t)k)
				abort();
			i += k;
		} else if (op == 0xf0 && i < n) {
			static const int codes[] = { 0, 250, 235, 220, 421, 450,
						     451, 535, 550, 554, 999 };
			int code = codes[d[i++] % 11];

			if (a->type == SMTP_ACT_VERDICT_DATA &&
			    (a->msg_len < a->received_len ||
			     memcmp(a->msg, "Received: ", 10) ||
			     (a->env->mail.body != SMTP_BODY_BINARYMIME &&
			      smtp_body_bare(a->msg, a->msg_len))))
				abort();
			(void)smtp_server_verdict(s, code, NULL, NULL, now);
		} else if (op == 0xf1 && i < n) {
			now += (uint64_t)d[i++] * 7000;
			smtp_server_tick(s, now);
		} else if (op == 0xf2) {
			struct smtp_tls_info ti = { .version = "TLSv1.3",
						    .cipher = "X", .bits = 1 };

			(void)smtp_server_tls_done(s, &ti, now);
		} else if (op == 0xf3 && i < n) {
			check_out(s, cfg.out_cap, d[i++], &bol);
			continue;
		} else if (op == 0xf4) {
			(void)smtp_server_set_queue_id(s, "Q1");
		}
		check_out(s, cfg.out_cap, SIZE_MAX, &bol);
	}
	smtp_server_free(s);
	return 0;
}
