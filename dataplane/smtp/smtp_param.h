/*
 * smtp_param.h - ESMTP parameters of MAIL and RCPT, extension keywords,
 * xtext (RFC 3461 4) and base64 (RFC 4648, for AUTH).
 *
 * MAIL: SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531),
 *       RET and ENVID (RFC 3461), AUTH (RFC 4954 5, accepted, ignored),
 *       MT-PRIORITY (RFC 6710).
 * RCPT: NOTIFY and ORCPT (RFC 3461).
 * A parameter is only accepted when its extension bit is in `ext` (the
 * extensions offered in this session); otherwise -SMTP_EPARAM.
 * Pure functions, no allocation.
 */
#ifndef SMTP_PARAM_H
#define SMTP_PARAM_H

#include <stddef.h>
#include <stdint.h>

/* ESMTP extensions (offered by a server / seen by a client) */
#define SMTP_EXT_PIPELINING	0x0001u	/* RFC 2920 */
#define SMTP_EXT_SIZE		0x0002u	/* RFC 1870 */
#define SMTP_EXT_8BITMIME	0x0004u	/* RFC 6152 */
#define SMTP_EXT_SMTPUTF8	0x0008u	/* RFC 6531 */
#define SMTP_EXT_ENHANCED	0x0010u	/* RFC 2034 ENHANCEDSTATUSCODES */
#define SMTP_EXT_CHUNKING	0x0020u	/* RFC 3030 */
#define SMTP_EXT_BINARYMIME	0x0040u	/* RFC 3030 */
#define SMTP_EXT_DSN		0x0080u	/* RFC 3461 */
#define SMTP_EXT_STARTTLS	0x0100u	/* RFC 3207 */
#define SMTP_EXT_AUTH		0x0200u	/* RFC 4954 */
#define SMTP_EXT_MTPRIORITY	0x0400u	/* RFC 6710 */
#define SMTP_EXT_ALL		0x07ffu

/* AUTH mechanisms (client side: seen in the EHLO reply) */
#define SMTP_AUTH_PLAIN	0x01
#define SMTP_AUTH_LOGIN	0x02

enum smtp_body_type {
	SMTP_BODY_7BIT = 0,	/* default when BODY= is absent */
	SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME,
};

enum smtp_ret { SMTP_RET_NONE = 0, SMTP_RET_FULL, SMTP_RET_HDRS };

/* NOTIFY flags (RFC 3461 4.1); 0 = parameter absent */
#define SMTP_NOTIFY_NEVER	0x01
#define SMTP_NOTIFY_SUCCESS	0x02
#define SMTP_NOTIFY_FAILURE	0x04
#define SMTP_NOTIFY_DELAY	0x08

#define SMTP_ENVID_MAX	100	/* RFC 3461 4.4 */
#define SMTP_ORCPT_MAX	500	/* RFC 3461 4.2 */
#define SMTP_MTPRIO_NONE (-128)	/* MT-PRIORITY absent */

struct smtp_mail_params {
	uint64_t size;			/* SIZE=, 0 if absent */
	uint8_t has_size;
	uint8_t body;			/* enum smtp_body_type */
	uint8_t smtputf8;
	uint8_t ret;			/* enum smtp_ret */
	int8_t mt_priority;		/* -9..9 or SMTP_MTPRIO_NONE */
	char envid[SMTP_ENVID_MAX + 1];	/* decoded xtext, "" if absent */
};

struct smtp_rcpt_params {
	uint8_t notify;			/* SMTP_NOTIFY_* */
	/* "addr-type;address", address decoded from xtext; "" if absent */
	char orcpt[SMTP_ORCPT_MAX + 16];
};

/* smtp_param_mail - parse MAIL parameters s[0..n) (after the path).
 * Errors: -SMTP_EPARAM (unknown/not offered), -SMTP_EDUPPARAM,
 * -SMTP_EPARAMVAL, -SMTP_ESYNTAX. */
int smtp_param_mail(struct smtp_mail_params *p, const char *s, size_t n,
		    unsigned ext);
/* smtp_param_rcpt - parse RCPT parameters; errors as smtp_param_mail */
int smtp_param_rcpt(struct smtp_rcpt_params *p, const char *s, size_t n,
		    unsigned ext);

/* smtp_param_ehlo_keyword - extension bit for one EHLO reply line's text
 * ("SIZE 1000"); fills *size for SIZE and *auth for AUTH; 0 if unknown */
unsigned smtp_param_ehlo_keyword(const char *s, size_t n, uint64_t *size,
				 unsigned *auth);

/* smtp_param_xtext_decode - decode xtext into dst (NUL-terminated);
 * returns the length or -SMTP_EPARAMVAL / -SMTP_ETOOLONG */
int smtp_param_xtext_decode(char *dst, size_t cap, const char *s, size_t n);
/* smtp_param_xtext_encode - encode into dst (NUL-terminated); returns the
 * length or -SMTP_ETOOLONG */
int smtp_param_xtext_encode(char *dst, size_t cap, const char *s, size_t n);

/* smtp_param_b64_decode - RFC 4648 base64 (padding required); returns the
 * decoded length or -SMTP_ESYNTAX / -SMTP_ETOOLONG */
int smtp_param_b64_decode(uint8_t *dst, size_t cap, const char *s, size_t n);
/* smtp_param_b64_encode - encode; returns length or -SMTP_ETOOLONG */
int smtp_param_b64_encode(char *dst, size_t cap, const uint8_t *s, size_t n);

#endif
