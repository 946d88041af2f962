/*
 * ctlsock.h - sluiced's control socket: a UNIX stream socket (path from
 * [control] socket, mode 0600) served on the control reactor, never
 * blocking. Protocol (docs/cli.md, "Control socket protocol"):
 *
 *   request:  one line, UTF-8, at most CTLSOCK_LINE_MAX bytes, words
 *             separated by single spaces ("queue list dest=a.test
 *             limit=50"); the first one or two words name the command
 *   response: one JSON object followed by "\n", then the server closes
 *             the connection. A line whose last word is "+LEN" is
 *             followed by LEN bytes of payload (at most
 *             CTLSOCK_BODY_MAX: dir import, dir passwd). Success: {"ok":true, ...command fields};
 *             failure: {"ok":false,"error":"text"}. Nothing is changed
 *             by a command that fails.
 *
 * Commands are in ctlcmd.h. One request per connection; requests are
 * answered in arrival order; a slow reader gets its response buffered
 * (bounded) and is dropped after CTLSOCK_TIMEOUT_MS.
 */
#ifndef SLUICE_CTLSOCK_H
#define SLUICE_CTLSOCK_H

#include <stddef.h>
#include <stdint.h>

#define CTLSOCK_LINE_MAX 4096
#define CTLSOCK_TIMEOUT_MS 10000
#define CTLSOCK_BODY_MAX (64u << 20)   /* request payload ("+LEN") */

struct ctlsock;
struct ctlcmd_env;

/* ctlsock_open - bind and listen (an existing stale socket file is
 * replaced). 0 or -1 + err */
int ctlsock_open(const char *path, struct ctlcmd_env *env,
		 struct ctlsock **out, char *err, size_t errlen);
/* ctlsock_poll - reactor poller: accept, read, answer */
int ctlsock_poll(void *arg, uint64_t now_us);
/* ctlsock_close - close clients and the listener, unlink the path */
void ctlsock_close(struct ctlsock *c);

#endif
