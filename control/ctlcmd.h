/*
 * ctlcmd.h - the commands the control socket serves (ctlsock.h), one
 * request line in, one JSON response out. The environment names what a
 * command may look at or change; all of it lives on the control thread.
 *
 * Response shape: {"ok":true,"data":{...},"text":"human table\n"} or
 * {"ok":false,"error":"..."}; sluicectl prints "text" for people and
 * "data" with --json. Commands and fields: docs/cli.md.
 */
#ifndef SLUICE_CTLCMD_H
#define SLUICE_CTLCMD_H

#include <stddef.h>
#include <stdint.h>

struct dsched;
struct mstore;
struct iolcore;
struct worker;
struct cfg;

struct ctlcmd_env {
	struct dsched *sched;
	struct mstore *m;             /* queue (read snapshots), rings */
	struct iolcore *io;
	unsigned n_io;
	struct worker *wk;
	unsigned n_wk;
	const struct cfg *cfg;
	uint64_t started_us;          /* unix us */
};

/* ctlcmd_run - execute one request line; *out is a malloc'd JSON text
 * (caller frees), *outlen its length. Never fails to produce a response
 * (out of memory gives a static error object). */
void ctlcmd_run(struct ctlcmd_env *e, const char *line, char **out,
		size_t *outlen);

#endif
