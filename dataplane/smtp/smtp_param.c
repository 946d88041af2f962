/*
 * smtp_param.c - ESMTP MAIL/RCPT parameters, EHLO keywords, xtext and
 * base64 (see smtp_param.h). Pure functions of their input.
 */
#include <string.h>
#include <strings.h>

#include "smtp_addr.h"
#include "smtp_err.h"
#include "smtp_param.h"

/* kw_is - case-insensitive compare of a keyword of length n */
static int kw_is(const char *k, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(k, lit, n) == 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* RFC 3461: upper-case hex only */
}

/* smtp_param_xtext_decode - RFC 3461 4: xtext = *( xchar / hexchar ) */
int smtp_param_xtext_decode(char *dst, size_t cap, const char *s, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];

		if (c == '+') {
			int h, l;

			if (i + 2 >= n)
				return -SMTP_EPARAMVAL;
			h = hexval(s[i + 1]);
			l = hexval(s[i + 2]);
			if (h < 0 || l < 0)
				return -SMTP_EPARAMVAL;
			c = (uint8_t)(h * 16 + l);
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return -SMTP_EPARAMVAL;
		}
		if (o + 1 >= cap)
			return -SMTP_ETOOLONG;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return (int)o;
}

/* smtp_param_xtext_encode - "+XX" for '+', '=' and bytes outside 33..126 */
int smtp_param_xtext_encode(char *dst, size_t cap, const char *s, size_t n)
{
	static const char hx[] = "0123456789ABCDEF";
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];

		if (c < 33 || c > 126 || c == '+' || c == '=') {
			if (o + 4 > cap)
				return -SMTP_ETOOLONG;
			dst[o++] = '+';
			dst[o++] = hx[c >> 4];
			dst[o++] = hx[c & 15];
		} else {
			if (o + 2 > cap)
				return -SMTP_ETOOLONG;
			dst[o++] = (char)c;
		}
	}
	if (o >= cap)
		return -SMTP_ETOOLONG;
	dst[o] = '\0';
	return (int)o;
}

/* parse_u64 - decimal without sign, at most 20 digits, overflow checked */
static int parse_u64(const char *s, size_t n, uint64_t *v)
{
	uint64_t x = 0;
	size_t i;

	if (n == 0 || n > 20)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (x > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*v = x;
	return 0;
}

/* next_param - split the next "KEY[=VALUE]" at s[*i..n); 1 if one found */
static int next_param(const char *s, size_t n, size_t *i, const char **k,
		      size_t *kl, const char **v, size_t *vl, int *err)
{
	size_t j;

	while (*i < n && s[*i] == ' ')
		(*i)++;
	if (*i >= n)
		return 0;
	*k = s + *i;
	j = *i;
	/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
	while (j < n && s[j] != '=' && s[j] != ' ') {
		char c = s[j];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || (c == '-' && j > *i))) {
			*err = -SMTP_ESYNTAX;
			return -1;
		}
		j++;
	}
	*kl = j - *i;
	if (*kl == 0) {
		*err = -SMTP_ESYNTAX;
		return -1;
	}
	*v = NULL;
	*vl = 0;
	if (j < n && s[j] == '=') {
		size_t vs = ++j;

		/* esmtp-value = 1*(%d33-60 / %d62-126), UTF-8 tolerated */
		while (j < n && s[j] != ' ') {
			if ((uint8_t)s[j] < 33 || s[j] == '=') {
				*err = -SMTP_ESYNTAX;
				return -1;
			}
			j++;
		}
		if (j == vs) {
			*err = -SMTP_ESYNTAX;
			return -1;
		}
		*v = s + vs;
		*vl = j - vs;
	}
	*i = j;
	return 1;
}

#define SEEN(bit) do { if (seen & (bit)) return -SMTP_EDUPPARAM; \
		       seen |= (bit); } while (0)

/* smtp_param_mail - MAIL FROM parameters (RFC 1870, 6152, 3030, 6531,
 * 3461, 4954 5, 6710) */
int smtp_param_mail(struct smtp_mail_params *p, const char *s, size_t n,
		    unsigned ext)
{
	size_t i = 0, kl, vl;
	const char *k, *v;
	unsigned seen = 0;
	int r, err = 0;

	memset(p, 0, sizeof(*p));
	p->mt_priority = SMTP_MTPRIO_NONE;
	while ((r = next_param(s, n, &i, &k, &kl, &v, &vl, &err)) == 1) {
		if (kw_is(k, kl, "SIZE") && (ext & SMTP_EXT_SIZE)) {
			SEEN(1);
			if (!v || parse_u64(v, vl, &p->size) < 0)
				return -SMTP_EPARAMVAL;
			p->has_size = 1;
		} else if (kw_is(k, kl, "BODY") &&
			   (ext & (SMTP_EXT_8BITMIME | SMTP_EXT_BINARYMIME))) {
			SEEN(2);
			if (v && kw_is(v, vl, "7BIT"))
				p->body = SMTP_BODY_7BIT;
			else if (v && kw_is(v, vl, "8BITMIME") &&
				 (ext & SMTP_EXT_8BITMIME))
				p->body = SMTP_BODY_8BITMIME;
			else if (v && kw_is(v, vl, "BINARYMIME") &&
				 (ext & SMTP_EXT_BINARYMIME))
				p->body = SMTP_BODY_BINARYMIME;
			else
				return -SMTP_EPARAMVAL;
		} else if (kw_is(k, kl, "SMTPUTF8") &&
			   (ext & SMTP_EXT_SMTPUTF8)) {
			SEEN(4);
			if (v)
				return -SMTP_EPARAMVAL;
			p->smtputf8 = 1;
		} else if (kw_is(k, kl, "RET") && (ext & SMTP_EXT_DSN)) {
			SEEN(8);
			if (v && kw_is(v, vl, "FULL"))
				p->ret = SMTP_RET_FULL;
			else if (v && kw_is(v, vl, "HDRS"))
				p->ret = SMTP_RET_HDRS;
			else
				return -SMTP_EPARAMVAL;
		} else if (kw_is(k, kl, "ENVID") && (ext & SMTP_EXT_DSN)) {
			size_t j;

			SEEN(16);
			if (!v || smtp_param_xtext_decode(p->envid,
					sizeof(p->envid), v, vl) <= 0)
				return -SMTP_EPARAMVAL;
			for (j = 0; p->envid[j]; j++)
				if ((uint8_t)p->envid[j] < 32 ||
				    (uint8_t)p->envid[j] > 126)
					return -SMTP_EPARAMVAL;
		} else if (kw_is(k, kl, "AUTH") && (ext & SMTP_EXT_AUTH)) {
			char tmp[SMTP_PATH_MAX + 1];

			/* RFC 4954 5: value is xtext "<mailbox>" or "<>";
			 * checked, then ignored (we do not trust it) */
			SEEN(32);
			if (!v || smtp_param_xtext_decode(tmp, sizeof(tmp), v,
							  vl) < 0)
				return -SMTP_EPARAMVAL;
		} else if (kw_is(k, kl, "MT-PRIORITY") &&
			   (ext & SMTP_EXT_MTPRIORITY)) {
			int neg = 0;

			SEEN(64);
			/* RFC 6710 3: priority-value = ["-"/"+"] DIGIT, -9..9 */
			if (!v)
				return -SMTP_EPARAMVAL;
			if (vl == 2 && (v[0] == '-' || v[0] == '+')) {
				neg = v[0] == '-';
				v++;
				vl--;
			}
			if (vl != 1 || v[0] < '0' || v[0] > '9')
				return -SMTP_EPARAMVAL;
			p->mt_priority = (int8_t)(neg ? -(v[0] - '0')
						      : v[0] - '0');
		} else {
			return -SMTP_EPARAM;
		}
	}
	return r < 0 ? err : 0;
}

/* orcpt_parse - ORCPT = addr-type ";" xtext (RFC 3461 4.2) */
static int orcpt_parse(struct smtp_rcpt_params *p, const char *v, size_t vl)
{
	const char *semi = memchr(v, ';', vl);
	size_t tl, j;
	int r;

	if (!semi || semi == v || vl > SMTP_ORCPT_MAX + 20)
		return -SMTP_EPARAMVAL;
	tl = (size_t)(semi - v);
	if (tl > 12)
		return -SMTP_EPARAMVAL;
	for (j = 0; j < tl; j++) {
		char c = v[j];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-'))
			return -SMTP_EPARAMVAL;
	}
	memcpy(p->orcpt, v, tl + 1);
	if (kw_is(v, tl, "utf-8")) {
		/* RFC 6533: utf-8-addr-xtext/unitext; kept verbatim after a
		 * UTF-8 validity check */
		const uint8_t *u = (const uint8_t *)semi + 1;
		size_t n = vl - tl - 1, k;

		if (n == 0 || n > SMTP_ORCPT_MAX)
			return -SMTP_EPARAMVAL;
		for (j = 0; j < n; j += k)
			if (!(k = smtp_addr_utf8_len(u + j, n - j)) ||
			    u[j] < 33)
				return -SMTP_EPARAMVAL;
		memcpy(p->orcpt + tl + 1, u, n);
		p->orcpt[tl + 1 + n] = '\0';
		return 0;
	}
	r = smtp_param_xtext_decode(p->orcpt + tl + 1, SMTP_ORCPT_MAX + 1,
				    semi + 1, vl - tl - 1);
	return r <= 0 ? -SMTP_EPARAMVAL : 0;
}

/* smtp_param_rcpt - RCPT TO parameters: NOTIFY, ORCPT (RFC 3461 4.1/4.2) */
int smtp_param_rcpt(struct smtp_rcpt_params *p, const char *s, size_t n,
		    unsigned ext)
{
	size_t i = 0, kl, vl;
	const char *k, *v;
	unsigned seen = 0;
	int r, err = 0;

	memset(p, 0, sizeof(*p));
	while ((r = next_param(s, n, &i, &k, &kl, &v, &vl, &err)) == 1) {
		if (kw_is(k, kl, "NOTIFY") && (ext & SMTP_EXT_DSN)) {
			size_t a = 0;

			SEEN(1);
			if (!v)
				return -SMTP_EPARAMVAL;
			while (a < vl) {
				size_t b = a;

				while (b < vl && v[b] != ',')
					b++;
				if (kw_is(v + a, b - a, "NEVER"))
					p->notify |= SMTP_NOTIFY_NEVER;
				else if (kw_is(v + a, b - a, "SUCCESS"))
					p->notify |= SMTP_NOTIFY_SUCCESS;
				else if (kw_is(v + a, b - a, "FAILURE"))
					p->notify |= SMTP_NOTIFY_FAILURE;
				else if (kw_is(v + a, b - a, "DELAY"))
					p->notify |= SMTP_NOTIFY_DELAY;
				else
					return -SMTP_EPARAMVAL;
				a = b + 1;
				if (b + 1 == vl)
					return -SMTP_EPARAMVAL;
			}
			/* NEVER must stand alone */
			if ((p->notify & SMTP_NOTIFY_NEVER) &&
			    p->notify != SMTP_NOTIFY_NEVER)
				return -SMTP_EPARAMVAL;
		} else if (kw_is(k, kl, "ORCPT") && (ext & SMTP_EXT_DSN)) {
			SEEN(2);
			if (!v || orcpt_parse(p, v, vl) < 0)
				return -SMTP_EPARAMVAL;
		} else {
			return -SMTP_EPARAM;
		}
	}
	return r < 0 ? err : 0;
}

/* smtp_param_ehlo_keyword - map an EHLO reply line to its extension bit */
unsigned smtp_param_ehlo_keyword(const char *s, size_t n, uint64_t *size,
				 unsigned *auth)
{
	static const struct { const char *kw; unsigned bit; } kws[] = {
		{ "PIPELINING", SMTP_EXT_PIPELINING },
		{ "SIZE", SMTP_EXT_SIZE },
		{ "8BITMIME", SMTP_EXT_8BITMIME },
		{ "SMTPUTF8", SMTP_EXT_SMTPUTF8 },
		{ "ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCED },
		{ "CHUNKING", SMTP_EXT_CHUNKING },
		{ "BINARYMIME", SMTP_EXT_BINARYMIME },
		{ "DSN", SMTP_EXT_DSN },
		{ "STARTTLS", SMTP_EXT_STARTTLS },
		{ "AUTH", SMTP_EXT_AUTH },
		{ "MT-PRIORITY", SMTP_EXT_MTPRIORITY },
	};
	size_t kl = 0, i;

	while (kl < n && s[kl] != ' ' && s[kl] != '=')
		kl++;
	for (i = 0; i < sizeof(kws) / sizeof(kws[0]); i++) {
		if (!kw_is(s, kl, kws[i].kw))
			continue;
		if (kws[i].bit == SMTP_EXT_SIZE) {
			uint64_t v = 0;

			/* "SIZE" alone or "SIZE 0" means no fixed limit */
			if (kl + 1 < n)
				(void)parse_u64(s + kl + 1, n - kl - 1, &v);
			*size = v;
		} else if (kws[i].bit == SMTP_EXT_AUTH) {
			size_t a = kl + 1, b;

			*auth = 0;
			while (a < n) {
				for (b = a; b < n && s[b] != ' '; b++)
					;
				if (kw_is(s + a, b - a, "PLAIN"))
					*auth |= SMTP_AUTH_PLAIN;
				else if (kw_is(s + a, b - a, "LOGIN"))
					*auth |= SMTP_AUTH_LOGIN;
				a = b + 1;
			}
		}
		return kws[i].bit;
	}
	return 0;
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* smtp_param_b64_decode - strict RFC 4648 4 base64 with padding */
int smtp_param_b64_decode(uint8_t *dst, size_t cap, const char *s, size_t n)
{
	size_t i, o = 0;

	if (n % 4)
		return -SMTP_ESYNTAX;
	for (i = 0; i < n; i += 4) {
		int a = b64val(s[i]), b = b64val(s[i + 1]);
		int c = s[i + 2] == '=' ? -2 : b64val(s[i + 2]);
		int d = s[i + 3] == '=' ? -2 : b64val(s[i + 3]);
		uint32_t v;

		if (a < 0 || b < 0 || c == -1 || d == -1 ||
		    (c == -2 && d != -2) || ((c == -2 || d == -2) && i + 4 != n))
			return -SMTP_ESYNTAX;
		v = (uint32_t)a << 18 | (uint32_t)b << 12 |
		    (uint32_t)(c < 0 ? 0 : c) << 6 | (uint32_t)(d < 0 ? 0 : d);
		if (o + 3 > cap)
			return -SMTP_ETOOLONG;
		dst[o++] = (uint8_t)(v >> 16);
		if (c >= 0)
			dst[o++] = (uint8_t)(v >> 8);
		if (d >= 0)
			dst[o++] = (uint8_t)v;
	}
	return (int)o;
}

/* smtp_param_b64_encode - RFC 4648 4 base64 with padding */
int smtp_param_b64_encode(char *dst, size_t cap, const uint8_t *s, size_t n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	if ((n + 2) / 3 * 4 + 1 > cap)
		return -SMTP_ETOOLONG;
	for (i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		dst[o++] = t[v >> 18];
		dst[o++] = t[(v >> 12) & 63];
		dst[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
		dst[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	dst[o] = '\0';
	return (int)o;
}
