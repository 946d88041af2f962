/*
 * reqsrv.h - a non-blocking server of one request and one answer per
 * connection on a listening socket, polled by the control reactor (the
 * control socket, ctlsock.c, and the /metrics endpoint, metrics.c).
 *
 * The user creates and binds the listening socket (non-blocking) and
 * hands it over; reqsrv owns the client slots: accept (at most `burst`
 * per poll, while a slot is free; the others wait in the listen
 * backlog), a deadline `timeout_ms` after accept (past it the connection
 * is dropped, whatever it was doing), reading, writing, dropping. It
 * never blocks and never reads past the request.
 *
 * Framing and answers are the user's (struct reqsrv_ops):
 *   frame   called with in[0..n) (n > 0, in[n] == 0), all the client has
 *           sent so far, while the request's length is not known: returns
 *           that length once it is (it may be > n: reqsrv then grows the
 *           buffer and reads exactly up to it), or 0 to read on. It must
 *           bound what it returns.
 *   answer  called once per connection with the request in in[0..n)
 *           (in[n] == 0, all of it writable) and why it ends
 *           (enum reqsrv_end); sets *out (malloc'd or the user's own,
 *           released by ops->release) and *outlen, or *out = NULL to
 *           close without an answer.
 * A connection whose input ends before it sent anything is closed
 * without an answer. The request bytes are wiped once answered.
 * After the answer is written the connection is shut down for writing,
 * unread input is read away (bounded: a close with unread input would
 * reset the connection and could cost the peer the end of the answer)
 * and it is closed.
 */
#ifndef SLUICE_REQSRV_H
#define SLUICE_REQSRV_H

#include <stddef.h>
#include <stdint.h>

enum reqsrv_end {
	REQSRV_WHOLE,   /* frame's length arrived: in[0..n), n = that length */
	REQSRV_FULL,    /* head_max bytes and frame still said 0 */
	REQSRV_EOF,     /* the input ended first: in[0..n) is what came */
	REQSRV_NOMEM,   /* no memory for frame's length: in[0..n) so far */
};

struct reqsrv_ops {
	size_t (*frame)(void *user, const char *in, size_t n);
	void (*answer)(void *user, char *in, size_t n, enum reqsrv_end end,
		       char **out, size_t *outlen);
	void (*release)(char *out);     /* NULL: free() */
};

struct reqsrv_cfg {
	unsigned slots;                 /* connections served at once */
	unsigned burst;                 /* accepts per poll */
	unsigned timeout_ms;            /* from accept to close */
	size_t head_max;                /* bytes read before frame knows */
};

struct reqsrv;

/* reqsrv_open - serve lfd (listening, non-blocking; reqsrv owns it from
 * now, also on failure). NULL: out of memory */
struct reqsrv *reqsrv_open(int lfd, const struct reqsrv_cfg *cfg,
			   const struct reqsrv_ops *ops, void *user);
/* reqsrv_poll - accept, read, answer, write, drop; the work done */
int reqsrv_poll(struct reqsrv *s, uint64_t now_us);
/* reqsrv_close - drop every client, close the listener, free s */
void reqsrv_close(struct reqsrv *s);

#endif
