/*
 * fuzz_smtp_addr.c - libFuzzer target: the RFC 5321 path parser and the
 * MAIL/RCPT parameter parsers on arbitrary text.
 *
 * Invariants (abort on violation): a parsed address is NUL-terminated
 * with len == strlen; the routing domain holds no '@' and is a valid
 * domain or address literal (or empty for <> / <postmaster>); non-ASCII
 * only with SMTPUTF8 and then valid UTF-8; used <= input; parameter
 * parsers never write past their fields (ASan) and decode ENVID/ORCPT
 * within their limits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_addr.h"
#include "smtp_param.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct smtp_addr a;
	struct smtp_mail_params mp;
	struct smtp_rcpt_params rp;
	unsigned opts;
	size_t used;

	for (opts = 0; opts < 8; opts++) {
		const char *dom;

		if (smtp_addr_parse(&a, (const char *)d, n, opts, &used) != 0)
			continue;
		if (used > n || a.len != strlen(a.addr) || a.len > SMTP_PATH_MAX)
			abort();
		dom = smtp_addr_domain(&a);
		if (strchr(dom, '@'))
			abort();
		if (a.flags & (SMTP_ADDR_F_NULL | SMTP_ADDR_F_POSTMASTER)) {
			if (*dom)
				abort();
		} else if (dom[0] == '[' ? !smtp_addr_literal_valid(dom, strlen(dom))
			   : !smtp_addr_domain_valid(dom, strlen(dom),
						     (opts & SMTP_ADDR_OPT_UTF8) != 0)) {
			abort();
		}
		if ((a.flags & SMTP_ADDR_F_UTF8) && !(opts & SMTP_ADDR_OPT_UTF8))
			abort();
		if (!(opts & SMTP_ADDR_OPT_UTF8)) {
			size_t i;

			for (i = 0; i < a.len; i++)
				if ((uint8_t)a.addr[i] >= 0x80)
					abort();
		}
	}
	if (smtp_param_mail(&mp, (const char *)d, n, SMTP_EXT_ALL) == 0 &&
	    strlen(mp.envid) > SMTP_ENVID_MAX)
		abort();
	if (smtp_param_rcpt(&rp, (const char *)d, n, SMTP_EXT_ALL) == 0 &&
	    strlen(rp.orcpt) >= sizeof(rp.orcpt))
		abort();
	{
		uint8_t out[1024];
		char enc[4096];
		int r = smtp_param_b64_decode(out, sizeof(out), (const char *)d,
					      n > 1360 ? 1360 : n);

		if (r > (int)sizeof(out))
			abort();
		if (r >= 0 && smtp_param_b64_encode(enc, sizeof(enc), out,
						    (size_t)r) < 0)
			abort();
	}
	return 0;
}
