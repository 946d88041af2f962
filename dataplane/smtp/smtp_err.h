/*
 * smtp_err.h - error codes of the SMTP engines and parsers.
 *
 * Every smtp_* function that can fail returns 0 (or a count) on success
 * and a negative SMTP_E* code on failure; smtp_err_strerror() names it.
 * Constructors return NULL instead.
 */
#ifndef SMTP_ERR_H
#define SMTP_ERR_H

enum smtp_err {
	SMTP_EINVAL = 1,	/* bad argument (API misuse) */
	SMTP_ENOMEM,		/* allocation failed or a hard cap was hit */
	SMTP_ESYNTAX,		/* input does not follow the RFC grammar */
	SMTP_ETOOLONG,		/* a length limit was exceeded */
	SMTP_ENEEDUTF8,		/* non-ASCII address without SMTPUTF8 */
	SMTP_EBADUTF8,		/* malformed UTF-8 */
	SMTP_ENULLPATH,		/* <> where a mailbox is required */
	SMTP_EPARAM,		/* unknown ESMTP parameter */
	SMTP_EDUPPARAM,		/* ESMTP parameter given twice */
	SMTP_EPARAMVAL,		/* bad ESMTP parameter value */
	SMTP_ESTATE,		/* call not valid in the current state */
	SMTP_ECLOSED,		/* session is closed */
	SMTP_EREPLY,		/* malformed SMTP reply from the peer */
	SMTP_EMAX
};

/* smtp_err_strerror - text for a (positive or negative) SMTP_E* code */
const char *smtp_err_strerror(int err);

#endif
