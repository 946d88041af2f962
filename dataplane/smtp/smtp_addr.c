/*
 * smtp_addr.c - RFC 5321 §4.1.2 path parser with RFC 6531 UTF-8 (see
 * smtp_addr.h for the contract and the relay-trick invariant).
 *
 * Grammar implemented (RFC 5321 4.1.2, 4.1.3; RFC 6531 3.3):
 *   Path       = "<" [ A-d-l ":" ] Mailbox ">"
 *   A-d-l      = At-domain *( "," At-domain ) ; At-domain = "@" Domain
 *   Mailbox    = Local-part "@" ( Domain / address-literal )
 *   Local-part = Dot-string / Quoted-string
 * Pure function of its input: no allocation, no globals.
 */
#include <string.h>

#include "smtp_addr.h"
#include "smtp_err.h"

/* atext of RFC 5322 3.2.3 */
static int is_atext(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int is_letdig(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* smtp_addr_utf8_len - length of the valid UTF-8 sequence at p (RFC 3629) */
size_t smtp_addr_utf8_len(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	size_t len, i;
	uint32_t cp;

	if (n == 0)
		return 0;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* smtp_addr_domain_valid - RFC 5321 Domain; U-labels allowed with utf8 */
int smtp_addr_domain_valid(const char *d, size_t n, int utf8)
{
	const uint8_t *p = (const uint8_t *)d;
	size_t i = 0, lab = 0, k;
	int lab_utf8 = 0;
	uint8_t last = 0;

	if (n == 0 || n > SMTP_DOMAIN_MAX)
		return 0;
	while (i < n) {
		if (p[i] == '.') {
			/* sub-domain = Let-dig [Ldh-str]: no empty label,
			 * no trailing hyphen */
			if (lab == 0 || last == '-' || (!lab_utf8 && lab > 63))
				return 0;
			lab = 0;
			lab_utf8 = 0;
			last = '.';
			i++;
			continue;
		}
		if (p[i] >= 0x80) {
			if (!utf8)
				return 0;
			k = smtp_addr_utf8_len(p + i, n - i);
			if (!k)
				return 0;
			i += k;
			lab += k;
			lab_utf8 = 1;
			last = 'a';
			continue;
		}
		if (p[i] == '-') {
			if (lab == 0)
				return 0;
		} else if (!is_letdig(p[i])) {
			return 0;
		}
		last = p[i];
		lab++;
		i++;
	}
	return lab > 0 && last != '-' && (lab_utf8 || lab <= 63);
}

/* ipv4_valid - dotted quad, each 0..255 without leading zeros beyond one */
static int ipv4_valid(const char *s, size_t n)
{
	size_t i = 0;
	int parts = 0;

	while (parts < 4) {
		unsigned v = 0, digits = 0;

		while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 4) {
			v = v * 10 + (unsigned)(s[i] - '0');
			digits++;
			i++;
		}
		if (digits == 0 || digits > 3 || v > 255)
			return 0;
		parts++;
		if (parts < 4) {
			if (i >= n || s[i] != '.')
				return 0;
			i++;
		}
	}
	return i == n;
}

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* ipv6_valid - RFC 5321 4.1.3 IPv6-addr (full, comp, v4-full, v4-comp) */
static int ipv6_valid(const char *s, size_t n)
{
	size_t i = 0;
	int groups = 0, dcolon = 0;

	if (n >= 2 && s[0] == ':' && s[1] == ':') {
		dcolon = 1;
		i = 2;
		if (i == n)
			return 1;
	} else if (n && s[0] == ':') {
		return 0;
	}
	while (i < n) {
		size_t st = i, k;

		while (i < n && is_hex(s[i]) && i - st < 4)
			i++;
		if (i < n && s[i] == '.') {
			/* trailing IPv4 counts as two groups */
			for (k = st; k < n; k++)
				if (s[k] == ':')
					return 0;
			if (!ipv4_valid(s + st, n - st))
				return 0;
			groups += 2;
			i = n;
			break;
		}
		if (i == st || (i < n && is_hex(s[i])))
			return 0;
		groups++;
		if (i == n)
			break;
		if (s[i] != ':')
			return 0;
		i++;
		if (i < n && s[i] == ':') {
			if (dcolon)
				return 0;
			dcolon = 1;
			i++;
			if (i == n)
				break;
		} else if (i == n) {
			return 0;
		}
	}
	return dcolon ? groups <= 7 : groups == 8;
}

/* smtp_addr_literal_valid - "[" (IPv4 / "IPv6:" IPv6 / tag ":" dcontent) "]" */
int smtp_addr_literal_valid(const char *s, size_t n)
{
	size_t i, colon = 0;

	if (n < 3 || s[0] != '[' || s[n - 1] != ']')
		return 0;
	s++;
	n -= 2;
	if (ipv4_valid(s, n))
		return 1;
	if (n > 5 && strncasecmp(s, "IPv6:", 5) == 0)
		return ipv6_valid(s + 5, n - 5);
	/* General-address-literal: Standardized-tag ":" 1*dcontent */
	for (i = 0; i < n && s[i] != ':'; i++)
		if (!is_letdig((uint8_t)s[i]) && s[i] != '-')
			return 0;
	colon = i;
	if (colon == 0 || colon + 1 >= n || s[colon - 1] == '-')
		return 0;
	for (i = colon + 1; i < n; i++)
		/* dcontent minus the delimiters of paths and addresses: an
		 * '@' inside a literal would fool any later "last @" split */
		if ((uint8_t)s[i] < 33 || (uint8_t)s[i] > 126 ||
		    strchr("[]\\@<>\",;", s[i]))
			return 0;
	return 1;
}

/* scan_domain - length of the domain or literal at s (stops at , : >) */
static size_t scan_domain(const char *s, size_t n)
{
	size_t i = 0;

	if (n && s[0] == '[') {
		while (i < n && s[i] != ']')
			i++;
		return i < n ? i + 1 : 0;
	}
	while (i < n && s[i] != '>' && s[i] != ',' && s[i] != ':' &&
	       s[i] != ' ' && s[i] != '<' && s[i] != '@')
		i++;
	return i;
}

/* smtp_addr_parse - parse "<path>" into a; see smtp_addr.h */
int smtp_addr_parse(struct smtp_addr *a, const char *s, size_t n,
		    unsigned opts, size_t *used)
{
	const uint8_t *u = (const uint8_t *)s;
	size_t i = 1, lp_start, lp_end, d_start, d_len, k, end;
	int utf8 = (opts & SMTP_ADDR_OPT_UTF8) != 0, saw_utf8 = 0;

	a->len = a->at = a->flags = 0;
	a->addr[0] = '\0';
	if (n < 2 || s[0] != '<')
		return -SMTP_ESYNTAX;
	/* find the closing '>' outside a quoted string, bounded */
	{
		int q = 0;

		for (end = 1; end < n; end++) {
			if (q && u[end] == '\\') {
				end++;
				continue;
			}
			if (u[end] == '"')
				q = !q;
			else if (!q && u[end] == '>')
				break;
		}
		if (end >= n)
			return end > SMTP_PATH_MAX ? -SMTP_ETOOLONG
						   : -SMTP_ESYNTAX;
		if (end + 1 > SMTP_PATH_MAX)
			return -SMTP_ETOOLONG;
	}
	if (end == 1) {
		if (!(opts & SMTP_ADDR_OPT_NULL))
			return -SMTP_ENULLPATH;
		a->flags = SMTP_ADDR_F_NULL;
		*used = 2;
		return 0;
	}
	/* A-d-l ":" - source route, syntax-checked then dropped */
	if (s[i] == '@') {
		for (;;) {
			if (i >= end || s[i] != '@')
				return -SMTP_ESYNTAX;
			i++;
			k = scan_domain(s + i, end - i);
			if (k == 0 || !(s[i] == '[' ?
					smtp_addr_literal_valid(s + i, k) :
					smtp_addr_domain_valid(s + i, k, utf8)))
				return -SMTP_ESYNTAX;
			i += k;
			if (i < end && s[i] == ',') {
				i++;
				continue;
			}
			if (i < end && s[i] == ':') {
				i++;
				break;
			}
			return -SMTP_ESYNTAX;
		}
		a->flags |= SMTP_ADDR_F_ROUTE;
	}
	/* Local-part */
	lp_start = i;
	if (i < end && s[i] == '"') {
		i++;
		while (i < end && s[i] != '"') {
			if (u[i] == '\\') {
				/* quoted-pairSMTP = %d92 %d32-126 */
				if (i + 1 >= end || u[i + 1] < 32 || u[i + 1] > 126)
					return -SMTP_ESYNTAX;
				i += 2;
			} else if (u[i] >= 0x80) {
				k = smtp_addr_utf8_len(u + i, end - i);
				if (!k)
					return -SMTP_EBADUTF8;
				saw_utf8 = 1;
				i += k;
			} else if (u[i] >= 32 && u[i] <= 126) {
				i++; /* qtextSMTP: 32-33, 35-91, 93-126 */
			} else {
				return -SMTP_ESYNTAX;
			}
		}
		if (i >= end)
			return -SMTP_ESYNTAX;
		i++;
		a->flags |= SMTP_ADDR_F_QUOTED;
	} else {
		/* Dot-string = Atom *("." Atom) */
		int need_atom = 1;

		while (i < end && s[i] != '@') {
			if (s[i] == '.') {
				if (need_atom)
					return -SMTP_ESYNTAX;
				need_atom = 1;
				i++;
			} else if (u[i] >= 0x80) {
				k = smtp_addr_utf8_len(u + i, end - i);
				if (!k)
					return -SMTP_EBADUTF8;
				saw_utf8 = 1;
				need_atom = 0;
				i += k;
			} else if (is_atext(u[i])) {
				need_atom = 0;
				i++;
			} else {
				return -SMTP_ESYNTAX;
			}
		}
		if (need_atom)
			return -SMTP_ESYNTAX;
	}
	lp_end = i;
	if (i == end) {
		/* <postmaster> (RFC 5321 4.1.1.3), only without a route */
		if ((opts & SMTP_ADDR_OPT_POSTMASTER) &&
		    !(a->flags & (SMTP_ADDR_F_ROUTE | SMTP_ADDR_F_QUOTED)) &&
		    lp_end - lp_start == 10 &&
		    strncasecmp(s + lp_start, "postmaster", 10) == 0) {
			memcpy(a->addr, s + lp_start, 10);
			a->addr[10] = '\0';
			a->len = a->at = 10;
			a->flags |= SMTP_ADDR_F_POSTMASTER;
			*used = end + 1;
			return 0;
		}
		return -SMTP_ESYNTAX;
	}
	if (s[i] != '@')
		return -SMTP_ESYNTAX;
	i++;
	d_start = i;
	d_len = end - d_start;
	if (d_len == 0)
		return -SMTP_ESYNTAX;
	if (s[d_start] == '[') {
		if (!smtp_addr_literal_valid(s + d_start, d_len))
			return -SMTP_ESYNTAX;
		a->flags |= SMTP_ADDR_F_LITERAL;
	} else {
		for (k = d_start; k < end; k++)
			if (u[k] >= 0x80)
				saw_utf8 = 1;
		if (!smtp_addr_domain_valid(s + d_start, d_len, 1))
			return memchr(s + d_start, '@', d_len) ||
			       !saw_utf8 ? -SMTP_ESYNTAX : -SMTP_EBADUTF8;
	}
	if (saw_utf8) {
		if (!utf8)
			return -SMTP_ENEEDUTF8;
		a->flags |= SMTP_ADDR_F_UTF8;
	}
	k = lp_end - lp_start;
	memcpy(a->addr, s + lp_start, k);
	a->addr[k] = '@';
	memcpy(a->addr + k + 1, s + d_start, d_len);
	a->len = (uint16_t)(k + 1 + d_len);
	a->addr[a->len] = '\0';
	a->at = (uint16_t)k;
	*used = end + 1;
	return 0;
}
