/*
 * smtpscript_client.c - client mode of the dialogue script runner
 * (placeholder until the client engine exists).
 */
#include "smtpscript.h"

void cli_step(const char *cmd, const char *args)
{
	(void)args;
	sc_fail("client mode not built (%s)", cmd);
}

void cli_end(void)
{
}
