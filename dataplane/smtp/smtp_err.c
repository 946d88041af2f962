/*
 * smtp_err.c - names of the SMTP_E* error codes (see smtp_err.h).
 */
#include "smtp_err.h"

static const char *const smtp_err_names[SMTP_EMAX] = {
	[0] = "success",
	[SMTP_EINVAL] = "invalid argument",
	[SMTP_ENOMEM] = "out of memory or hard cap reached",
	[SMTP_ESYNTAX] = "syntax error",
	[SMTP_ETOOLONG] = "too long",
	[SMTP_ENEEDUTF8] = "non-ASCII address requires SMTPUTF8",
	[SMTP_EBADUTF8] = "malformed UTF-8",
	[SMTP_ENULLPATH] = "null path not allowed here",
	[SMTP_EPARAM] = "unknown ESMTP parameter",
	[SMTP_EDUPPARAM] = "duplicate ESMTP parameter",
	[SMTP_EPARAMVAL] = "invalid ESMTP parameter value",
	[SMTP_ESTATE] = "not valid in this state",
	[SMTP_ECLOSED] = "session closed",
	[SMTP_EREPLY] = "malformed SMTP reply",
};

/* smtp_err_strerror - text for a (positive or negative) SMTP_E* code */
const char *smtp_err_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err >= SMTP_EMAX)
		return "unknown error";
	return smtp_err_names[err];
}
