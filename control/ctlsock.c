/*
 * ctlsock.c - sluiced's control socket (ctlsock.h): a non-blocking UNIX
 * stream listener and up to CTLSOCK_CLIENTS connections, served by one
 * reactor poller on the control thread. Never blocks.
 *
 * Per connection: read one request line into a fixed buffer of
 * CTLSOCK_LINE_MAX bytes (+ newline; a trailing CR is dropped; end of
 * input without a newline ends the line too), run it (ctlcmd_run), write
 * the response, close. A line longer than the buffer, or one with a NUL
 * byte, is answered with an error and not run. Bytes after the newline
 * are ignored, except for a payload: a line whose last word is "+LEN"
 * (decimal, at most CTLSOCK_BODY_MAX) is followed by exactly LEN bytes,
 * read into a buffer of that size before the line (without the "+LEN"
 * word) runs with them as env->req_body (dir import, dir passwd; the
 * buffer is wiped and freed after). A connection still open CTLSOCK_TIMEOUT_MS after it was
 * accepted (idle, slow writer, slow reader) is dropped. Responses are
 * bounded by CTLCMD_OUT_MAX. While all slots are busy new connections wait
 * in the listen backlog.
 *
 * The socket file is created under a temporary name, chmod 0600 and
 * renamed over the path, so it never exists with looser permissions and a
 * stale file from a crash is replaced atomically; a path where something
 * still answers is refused. ctlsock_close unlinks it if it is still ours.
 */
#define _GNU_SOURCE
#include "ctlsock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlcmd.h"

#define CTLSOCK_CLIENTS 16
#define CTLSOCK_ACCEPT_BURST 8

struct ctlsock_client {
	int fd;                     /* -1 = free slot */
	bool answered;              /* out holds the response */
	size_t inlen;
	char in[CTLSOCK_LINE_MAX + 2];
	char *out;
	size_t outlen, outoff;
	size_t linelen;             /* body: the line is in[0..linelen) */
	char *body;                 /* payload being read, or NULL */
	size_t body_len, body_got;
	uint64_t deadline_us;       /* 0 = set at the next poll */
};

struct ctlsock {
	int lfd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	struct ctlcmd_env *env;
	struct ctlsock_client cl[CTLSOCK_CLIENTS];
};

/* ctlsock_live - does something accept connections at path */
static bool ctlsock_live(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	bool live;

	if (fd < 0)
		return false;
	live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ||
	       errno == EAGAIN;
	close(fd);
	return live;
}

int ctlsock_open(const char *path, struct ctlcmd_env *env,
		 struct ctlsock **out, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char tmp[sizeof(sa.sun_path)];
	struct ctlsock *c;
	struct stat st;

	*out = NULL;
	if (strlen(path) >= sizeof(sa.sun_path) ||
	    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		snprintf(err, errlen, "control socket %s: path too long (a "
			 "UNIX socket path has at most %zu bytes; shorter "
			 "[control] socket)", path, sizeof(sa.sun_path) - 20);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "control socket %s: exists and "
				 "is not a socket (not replacing it)", path);
			return -1;
		}
		if (ctlsock_live(&sa)) {
			snprintf(err, errlen, "control socket %s: another "
				 "process answers on it (another sluiced with "
				 "the same state dir?)", path);
			return -1;
		}
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "control socket: out of memory");
		return -1;
	}
	for (unsigned i = 0; i < CTLSOCK_CLIENTS; i++)
		c->cl[i].fd = -1;
	c->env = env;
	memcpy(c->path, path, strlen(path) + 1);
	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->lfd < 0) {
		snprintf(err, errlen, "control socket: socket: %s",
			 strerror(errno));
		free(c);
		return -1;
	}
	struct sockaddr_un ta = { .sun_family = AF_UNIX };

	memcpy(ta.sun_path, tmp, strlen(tmp) + 1);
	unlink(tmp);
	if (bind(c->lfd, (struct sockaddr *)&ta, sizeof(ta)) < 0 ||
	    chmod(tmp, 0600) < 0 || listen(c->lfd, 64) < 0 ||
	    rename(tmp, path) < 0 || stat(path, &st) < 0) {
		snprintf(err, errlen, "control socket %s: %s", path,
			 strerror(errno));
		unlink(tmp);
		close(c->lfd);
		free(c);
		return -1;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	*out = c;
	return 0;
}

/* ctlsock_drop - close and free the slot. Input the client sent after
 * its line is read away first (bounded): closing a UNIX socket with
 * unread input makes the peer's read fail with ECONNRESET, and the
 * answer it has not read yet would look like an error */
static void ctlsock_drop(struct ctlsock_client *k)
{
	char sink[4096];

	for (int i = 0; i < 16; i++)
		if (recv(k->fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
			break;
	close(k->fd);
	k->fd = -1;
	if (k->body) {
		explicit_bzero(k->body, k->body_len);
		free(k->body);
	}
	k->body = NULL;
	k->body_len = k->body_got = k->linelen = 0;
	if (k->out)
		ctlcmd_free(k->out);
	k->out = NULL;
	k->answered = false;
	k->inlen = k->outlen = k->outoff = 0;
	k->deadline_us = 0;
}

/* ctlsock_answer - run the line in k->in[0..n) (or refuse it) */
static void ctlsock_answer(struct ctlsock *c, struct ctlsock_client *k,
			   size_t n, bool too_long)
{
	char msg[96];

	if (too_long) {
		snprintf(msg, sizeof(msg), "request line too long (at most %d "
			 "bytes)", CTLSOCK_LINE_MAX);
		ctlcmd_error(msg, &k->out, &k->outlen);
	} else {
		if (n > 0 && k->in[n - 1] == '\r')
			n--;
		k->in[n] = 0;
		if (memchr(k->in, 0, n))
			ctlcmd_error("request contains a NUL byte", &k->out,
				     &k->outlen);
		else
			ctlcmd_run(c->env, k->in, &k->out, &k->outlen);
	}
	k->answered = true;
	k->outoff = 0;
}

/* ctlsock_body_len - the line's last word "+LEN": 1 with *len, 0 if the
 * line has none, -1 if it is malformed or too large. Cuts the word off */
static int ctlsock_body_len(char *line, size_t *n, size_t *len)
{
	size_t i = *n, v = 0;

	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9')
		i--;
	if (i == 0 || line[i - 1] != '+' || (i >= 2 && line[i - 2] != ' '))
		return 0;
	if (i == *n || *n - i > 9)
		return -1;
	for (size_t j = i; j < *n; j++)
		v = v * 10 + (size_t)(line[j] - '0');
	if (v > CTLSOCK_BODY_MAX)
		return -1;
	*len = v;
	*n = i >= 2 ? i - 2 : 0;
	return 1;
}

/* ctlsock_run_body - the payload is complete: run the line with it */
static void ctlsock_run_body(struct ctlsock *c, struct ctlsock_client *k)
{
	c->env->req_body = k->body ? k->body : "";
	c->env->req_body_len = k->body_len;
	k->in[k->linelen] = 0;
	if (memchr(k->in, 0, k->linelen))
		ctlcmd_error("request contains a NUL byte", &k->out,
			     &k->outlen);
	else
		ctlcmd_run(c->env, k->in, &k->out, &k->outlen);
	c->env->req_body = NULL;
	c->env->req_body_len = 0;
	if (k->body) {
		explicit_bzero(k->body, k->body_len);
		free(k->body);
		k->body = NULL;
	}
	k->answered = true;
	k->outoff = 0;
}

/* ctlsock_line - a complete line in[0..n), rest bytes after its newline:
 * answer it, or start reading its payload */
static void ctlsock_line(struct ctlsock *c, struct ctlsock_client *k,
			 size_t n, size_t rest)
{
	size_t len = 0, m = n;
	char msg[128];
	int r;

	if (m > 0 && k->in[m - 1] == '\r')
		m--;
	r = ctlsock_body_len(k->in, &m, &len);
	if (r == 0) {
		ctlsock_answer(c, k, n, false);
		return;
	}
	if (r < 0) {
		snprintf(msg, sizeof(msg), "request payload length: \"+LEN\" "
			 "with LEN at most %u bytes", CTLSOCK_BODY_MAX);
		ctlcmd_error(msg, &k->out, &k->outlen);
		k->answered = true;
		k->outoff = 0;
		return;
	}
	k->linelen = m;
	k->body_len = len;
	k->body_got = rest > len ? len : rest;
	if (len && !(k->body = malloc(len))) {
		ctlcmd_error("out of memory for the request payload", &k->out,
			     &k->outlen);
		k->answered = true;
		k->outoff = 0;
		return;
	}
	if (k->body_got)
		memcpy(k->body, k->in + n + 1, k->body_got);
	if (k->body_got == k->body_len)
		ctlsock_run_body(c, k);
}

/* ctlsock_read_body - more of the payload; 1 if anything happened */
static int ctlsock_read_body(struct ctlsock *c, struct ctlsock_client *k)
{
	ssize_t r = recv(k->fd, k->body + k->body_got,
			 k->body_len - k->body_got, MSG_DONTWAIT);

	if (r < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		ctlsock_drop(k);
		return 1;
	}
	if (r == 0) {
		ctlcmd_error("connection ended before the request payload was "
			     "complete", &k->out, &k->outlen);
		k->answered = true;
		k->outoff = 0;
		return 1;
	}
	k->body_got += (size_t)r;
	if (k->body_got == k->body_len)
		ctlsock_run_body(c, k);
	return 1;
}

/* ctlsock_read - take what the client sent; 1 if anything happened */
static int ctlsock_read(struct ctlsock *c, struct ctlsock_client *k)
{
	size_t room = sizeof(k->in) - 1 - k->inlen;
	ssize_t r;
	char *nl;

	if (k->body)
		return ctlsock_read_body(c, k);
	r = recv(k->fd, k->in + k->inlen, room, MSG_DONTWAIT);

	if (r < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		ctlsock_drop(k);
		return 1;
	}
	if (r == 0) {                      /* end of input */
		if (k->inlen == 0) {
			ctlsock_drop(k);
			return 1;
		}
		ctlsock_answer(c, k, k->inlen, false);
		return 1;
	}
	nl = memchr(k->in + k->inlen, '\n', (size_t)r);
	k->inlen += (size_t)r;
	if (nl)
		ctlsock_line(c, k, (size_t)(nl - k->in),
			     k->inlen - (size_t)(nl - k->in) - 1);
	else if (k->inlen > CTLSOCK_LINE_MAX)
		ctlsock_answer(c, k, 0, true);
	return 1;
}

/* ctlsock_write - send what the socket takes; close when done */
static int ctlsock_write(struct ctlsock_client *k)
{
	ssize_t w = send(k->fd, k->out + k->outoff, k->outlen - k->outoff,
			 MSG_DONTWAIT | MSG_NOSIGNAL);

	if (w < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		ctlsock_drop(k);           /* the client went away */
		return 1;
	}
	k->outoff += (size_t)w;
	if (k->outoff == k->outlen)
		ctlsock_drop(k);
	return 1;
}

int ctlsock_poll(void *arg, uint64_t now_us)
{
	struct ctlsock *c = arg;
	int work = 0;

	for (unsigned i = 0, n = 0; i < CTLSOCK_CLIENTS &&
	     n < CTLSOCK_ACCEPT_BURST; i++) {
		struct ctlsock_client *k = &c->cl[i];

		if (k->fd >= 0)
			continue;
		k->fd = accept4(c->lfd, NULL, NULL,
				SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (k->fd < 0)
			break;
		k->deadline_us = now_us + (uint64_t)CTLSOCK_TIMEOUT_MS * 1000;
		n++;
		work++;
	}
	for (unsigned i = 0; i < CTLSOCK_CLIENTS; i++) {
		struct ctlsock_client *k = &c->cl[i];

		if (k->fd < 0)
			continue;
		if (now_us > k->deadline_us) {
			ctlsock_drop(k);
			work++;
			continue;
		}
		if (!k->answered)
			work += ctlsock_read(c, k);
		if (k->fd >= 0 && k->answered)
			work += ctlsock_write(k);
	}
	return work;
}

void ctlsock_close(struct ctlsock *c)
{
	struct stat st;

	if (!c)
		return;
	for (unsigned i = 0; i < CTLSOCK_CLIENTS; i++)
		if (c->cl[i].fd >= 0)
			ctlsock_drop(&c->cl[i]);
	close(c->lfd);
	/* only our own socket: a newer sluiced may have replaced it */
	if (stat(c->path, &st) == 0 && st.st_dev == c->dev &&
	    st.st_ino == c->ino)
		unlink(c->path);
	free(c);
}
