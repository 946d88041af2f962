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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dsched;
struct mstore;
struct iolcore;
struct worker;
struct cfg;

/* operations state (ctlcmd_ops.c: reload, drain, log); sluiced fills
 * cfg and profile_dir, the rest starts zeroed */
struct ctlcmd_ops {
	struct cfg *cfg;              /* the running config (reload writes its
				       * live keys); NULL: reload refused */
	const char *profile_dir;      /* cfg_load's default profile dir */
	struct cfg_smtp *smtp_live;   /* [smtp] copy the io lcores use since
				       * the last reload (NULL: cfg->smtp) */
	unsigned reloads;
	bool draining;
	uint64_t drain_since_us;      /* unix us */
	uint64_t drain_delivered0;    /* scheduler's delivered at drain */
};

struct ctlcmd_env {
	struct dsched *sched;
	struct mstore *m;             /* queue (read snapshots), rings */
	struct iolcore *io;
	unsigned n_io;
	struct worker *wk;
	unsigned n_wk;
	const struct cfg *cfg;
	uint64_t started_us;          /* unix us */
	/* queue list bounds per request (0 = the defaults below): records
	 * scanned, and wall time spent scanning, before it answers with a
	 * `next` cursor; they keep a request on a huge queue short */
	unsigned list_scan_max;
	unsigned list_scan_ms;
	struct ctlcmd_ops ops;
	/* the request's payload (ctlsock: a line ending in "+LEN" is
	 * followed by LEN bytes: dir import, dir passwd); NULL if none. Set
	 * for one ctlcmd_run only */
	const char *req_body;
	size_t req_body_len;
};

#define CTLCMD_LIST_LIMIT 100          /* queue list rows by default */
#define CTLCMD_LIST_LIMIT_MAX 10000
#define CTLCMD_SCAN_MAX 200000         /* records scanned per request */
#define CTLCMD_SCAN_MS 200             /* ms scanning per request */
#define CTLCMD_OUT_MAX (32u << 20)     /* largest response (bytes) */

/* ctlcmd_run - execute one request line (NUL-terminated, no newline);
 * *out is a JSON text ending in "\n", *outlen its length; release it with
 * ctlcmd_free. Never fails to produce a response (out of memory gives a
 * static error object, which ctlcmd_free knows not to free). */
void ctlcmd_run(struct ctlcmd_env *e, const char *line, char **out,
		size_t *outlen);
/* ctlcmd_free - release a response of ctlcmd_run / ctlcmd_error */
void ctlcmd_free(char *out);
/* ctlcmd_error - the failure response {"ok":false,"error":msg} (for
 * requests refused before a command runs: too long, NUL byte) */
void ctlcmd_error(const char *msg, char **out, size_t *outlen);

/* ctlcmd_json_str - append s[0..n) to buf as a JSON string (quotes
 * included): '"', '\\' and control characters escaped, valid UTF-8 copied,
 * every byte that is not part of a valid UTF-8 sequence (overlong forms,
 * surrogates, > U+10FFFF, truncated) becomes \ufffd. Returns the bytes
 * written or needed (as snprintf; buf may be NULL when cap is 0) */
size_t ctlcmd_json_str(char *buf, size_t cap, const char *s, size_t n);

/* ---- reload (ctlcmd_ops.c) ---- */

/* what reload does with a key that differs between the running config
 * and the file */
enum ctlcmd_reload_kind { CTLCMD_RELOAD_LIVE = 0, CTLCMD_RELOAD_RESTART };

#define CTLCMD_RELOAD_KEYS_MAX 96

struct ctlcmd_reload_diff {
	unsigned n_live, n_restart;
	const char *live[CTLCMD_RELOAD_KEYS_MAX];     /* "[smtp] max_errors" */
	const char *restart[CTLCMD_RELOAD_KEYS_MAX];
	bool other;        /* bytes of struct cfg outside the key table differ
			    * (a key this table does not know: restart) */
};

/* ctlcmd_reload_diff - compare two loaded configs key by key (pure).
 * Every key of sluice.conf is in a table marked live or restart; see
 * docs/cli.md "reload" for the list. */
void ctlcmd_reload_diff(const struct cfg *old, const struct cfg *nw,
			struct ctlcmd_reload_diff *d);
/* ctlcmd_reload_key_kind - the table's verdict for "[section] key"; -1 if
 * the key is unknown */
int ctlcmd_reload_key_kind(const char *name);

#endif
