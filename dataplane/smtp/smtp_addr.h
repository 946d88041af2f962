/*
 * smtp_addr.h - RFC 5321 §4.1.2 path parser (reverse-path / forward-path),
 * with RFC 6531 (SMTPUTF8) extensions.
 *
 * Input: the text after "MAIL FROM:" / "RCPT TO:" starting at '<'.
 * Output: struct smtp_addr holding "local@domain" (source route stripped),
 * the offset of the '@' that separates the routing domain, and flags.
 *
 * Invariant (relay tricks): the routing domain is always what follows the
 * last '@' of the mailbox outside quotes; '%' and '!' stay in the local
 * part, a quoted "user@other" stays in the local part, and a source route
 * "@hop1,@hop2:" is removed (RFC 5321 Appendix C) and reported with
 * SMTP_ADDR_F_ROUTE so a caller can refuse it.
 *
 * Limits: whole path <= SMTP_PATH_MAX octets (RFC 5321 4.5.3.1.3), domain
 * <= 255 octets, ASCII labels <= 63. The 64-octet local-part limit of
 * 4.5.3.1.1 is NOT enforced: real VERP/SRS addresses exceed it.
 */
#ifndef SMTP_ADDR_H
#define SMTP_ADDR_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_PATH_MAX	256	/* RFC 5321 4.5.3.1.3, octets incl. <> */
#define SMTP_DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2 */

/* flags in struct smtp_addr */
#define SMTP_ADDR_F_NULL	0x01	/* <> */
#define SMTP_ADDR_F_POSTMASTER	0x02	/* <postmaster> without domain */
#define SMTP_ADDR_F_UTF8	0x04	/* contains non-ASCII (RFC 6531) */
#define SMTP_ADDR_F_QUOTED	0x08	/* local part is a quoted string */
#define SMTP_ADDR_F_LITERAL	0x10	/* domain is an address literal */
#define SMTP_ADDR_F_ROUTE	0x20	/* a source route was stripped */

/* options to smtp_addr_parse */
#define SMTP_ADDR_OPT_NULL	0x01	/* accept <> (reverse-path) */
#define SMTP_ADDR_OPT_POSTMASTER 0x02	/* accept <postmaster> */
#define SMTP_ADDR_OPT_UTF8	0x04	/* SMTPUTF8 in force: allow UTF-8 */

struct smtp_addr {
	char addr[SMTP_PATH_MAX + 1];	/* "local@domain", NUL-terminated */
	uint16_t len;			/* strlen(addr) */
	uint16_t at;			/* index of the routing '@' (len if none) */
	uint16_t flags;			/* SMTP_ADDR_F_* */
};

/* smtp_addr_parse - parse "<path>" at s[0..n); *used = octets consumed
 * (up to and including '>'). Errors: -SMTP_ESYNTAX, -SMTP_ETOOLONG,
 * -SMTP_ENULLPATH (<> without OPT_NULL), -SMTP_ENEEDUTF8 (non-ASCII
 * without OPT_UTF8), -SMTP_EBADUTF8. */
int smtp_addr_parse(struct smtp_addr *a, const char *s, size_t n,
		    unsigned opts, size_t *used);

/* smtp_addr_domain - the routing domain ("" for <> and <postmaster>) */
static inline const char *smtp_addr_domain(const struct smtp_addr *a)
{
	return a->at < a->len ? a->addr + a->at + 1 : a->addr + a->len;
}

/* smtp_addr_utf8_len - length of the valid UTF-8 sequence at p (1..4), or
 * 0 if p[0..n) does not start with one (overlong, surrogate, > U+10FFFF) */
size_t smtp_addr_utf8_len(const uint8_t *p, size_t n);

/* smtp_addr_domain_valid - 1 if d[0..n) is a valid RFC 5321 Domain (or,
 * with utf8, an RFC 6531 domain with U-labels) */
int smtp_addr_domain_valid(const char *d, size_t n, int utf8);

/* smtp_addr_literal_valid - 1 if s[0..n) is an address-literal "[...]"
 * (IPv4, "IPv6:" or a General-address-literal, RFC 5321 4.1.3) */
int smtp_addr_literal_valid(const char *s, size_t n);

#endif
