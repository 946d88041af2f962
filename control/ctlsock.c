/*
 * ctlsock.c - sluiced's control socket (ctlsock.h): a non-blocking UNIX
 * stream listener and up to CTLSOCK_CLIENTS connections, served by one
 * reactor poller on the control thread through reqsrv (reqsrv.h: slots,
 * accept, deadline, read, write, close). Never blocks. What is ours: the
 * socket file, the request framing and the answer.
 *
 * Per connection: read one request line into a fixed buffer of
 * CTLSOCK_LINE_MAX bytes (+ newline; a trailing CR is dropped; end of
 * input without a newline ends the line too), run it (ctlcmd_run), write
 * the response, close. A line longer than the buffer, or one with a NUL
 * byte, is answered with an error and not run. Bytes after the newline
 * are ignored, except for a payload: a line whose last word is "+LEN"
 * (decimal, at most CTLSOCK_BODY_MAX) is followed by exactly LEN bytes,
 * read before the line (without the "+LEN" word) runs with them as
 * env->req_body (dir import, dir passwd; reqsrv wipes and frees the
 * request after). A connection still open CTLSOCK_TIMEOUT_MS after it was
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
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlcmd.h"
#include "log.h"
#include "reqsrv.h"

#define CTLSOCK_CLIENTS 16
#define CTLSOCK_ACCEPT_BURST 8

struct ctlsock {
	struct reqsrv *srv;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	struct ctlcmd_env *env;
};

/* the server's limits; the head holds the line and its newline */
static const struct reqsrv_cfg ctlsock_cfg = { .slots = CTLSOCK_CLIENTS,
	.burst = CTLSOCK_ACCEPT_BURST, .timeout_ms = CTLSOCK_TIMEOUT_MS,
	.head_max = CTLSOCK_LINE_MAX + 1 };

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

/* ctlsock_body_len - the line's last word "+LEN": 1 with *len, 0 if the
 * line has none, -1 if it is malformed or too large. Cuts the word off
 * (*n) */
static int ctlsock_body_len(const char *line, size_t *n, size_t *len)
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

/* ctlsock_frame - the request's length: its line and newline, plus the
 * "+LEN" payload; 0 until the newline came */
static size_t ctlsock_frame(void *user, const char *in, size_t n)
{
	const char *nl = memchr(in, '\n', n);
	size_t m, len = 0;

	(void)user;
	if (!nl)
		return 0;
	m = (size_t)(nl - in);
	if (m > 0 && in[m - 1] == '\r')
		m--;
	if (ctlsock_body_len(in, &m, &len) <= 0)
		return (size_t)(nl - in) + 1;
	return (size_t)(nl - in) + 1 + len;
}

/* ctlsock_run - run line[0..n) (NUL-terminated here) with its payload */
static void ctlsock_run(struct ctlsock *c, char *line, size_t n,
			const char *body, size_t body_len, char **out,
			size_t *outlen)
{
	line[n] = 0;
	if (memchr(line, 0, n)) {
		ctlcmd_error("request contains a NUL byte", out, outlen);
		return;
	}
	struct timespec t0, t1;
	bool dbg = LOG_MDEBUG_ON(LOG_M_CTL);

	if (dbg)
		clock_gettime(CLOCK_MONOTONIC, &t0);
	c->env->req_body = body;
	c->env->req_body_len = body_len;
	ctlcmd_run(c->env, line, out, outlen);
	c->env->req_body = NULL;
	c->env->req_body_len = 0;
	if (dbg) {
		/* the request line only: a payload may be a password */
		clock_gettime(CLOCK_MONOTONIC, &t1);
		log_mdebug(LOG_M_CTL, "request \"%.120s\"%s: %zu byte(s) of "
			   "reply in %.3f ms", line, body_len ? " + payload" : "",
			   *outlen, (t1.tv_sec - t0.tv_sec) * 1e3 +
			   (t1.tv_nsec - t0.tv_nsec) / 1e6);
	}
}

/* ctlsock_answer - the request in[0..n): its line (newline, or the end
 * of input, ends it) and any payload; run it or refuse it */
static void ctlsock_answer(void *user, char *in, size_t n,
			   enum reqsrv_end end, char **out, size_t *outlen)
{
	struct ctlsock *c = user;
	char *nl = memchr(in, '\n', n);
	size_t l, m, len = 0;
	char msg[128];
	int r;

	if (end == REQSRV_FULL) {
		snprintf(msg, sizeof(msg), "request line too long (at most %d "
			 "bytes)", CTLSOCK_LINE_MAX);
		ctlcmd_error(msg, out, outlen);
		return;
	}
	l = nl ? (size_t)(nl - in) : n;    /* no newline: end of input */
	m = l;
	if (m > 0 && in[m - 1] == '\r')
		m--;
	r = nl ? ctlsock_body_len(in, &m, &len) : 0;
	if (r == 0) {
		ctlsock_run(c, in, l > 0 && in[l - 1] == '\r' ? l - 1 : l,
			    NULL, 0, out, outlen);
	} else if (r < 0) {
		snprintf(msg, sizeof(msg), "request payload length: \"+LEN\" "
			 "with LEN at most %u bytes", CTLSOCK_BODY_MAX);
		ctlcmd_error(msg, out, outlen);
	} else if (end == REQSRV_NOMEM) {
		ctlcmd_error("out of memory for the request payload", out,
			     outlen);
	} else if (end == REQSRV_EOF) {
		ctlcmd_error("connection ended before the request payload was "
			     "complete", out, outlen);
	} else {
		ctlsock_run(c, in, m, in + l + 1, len, out, outlen);
	}
}

static const struct reqsrv_ops ctlsock_ops = {
	.frame = ctlsock_frame,
	.answer = ctlsock_answer,
	.release = ctlcmd_free,
};

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
	c->env = env;
	memcpy(c->path, path, strlen(path) + 1);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (lfd < 0 ||
	    !(c->srv = reqsrv_open(lfd, &ctlsock_cfg, &ctlsock_ops, c))) {
		snprintf(err, errlen, "control socket: %s%s",
			 lfd < 0 ? "socket: " : "",
			 lfd < 0 ? strerror(errno) : "out of memory");
		free(c);
		return -1;
	}
	struct sockaddr_un ta = { .sun_family = AF_UNIX };

	memcpy(ta.sun_path, tmp, strlen(tmp) + 1);
	unlink(tmp);
	if (bind(lfd, (struct sockaddr *)&ta, sizeof(ta)) < 0 ||
	    chmod(tmp, 0600) < 0 || listen(lfd, 64) < 0 ||
	    rename(tmp, path) < 0 || stat(path, &st) < 0) {
		snprintf(err, errlen, "control socket %s: %s", path,
			 strerror(errno));
		unlink(tmp);
		reqsrv_close(c->srv);
		free(c);
		return -1;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	*out = c;
	return 0;
}

int ctlsock_poll(void *arg, uint64_t now_us)
{
	struct ctlsock *c = arg;

	return reqsrv_poll(c->srv, now_us);
}

void ctlsock_close(struct ctlsock *c)
{
	struct stat st;

	if (!c)
		return;
	reqsrv_close(c->srv);
	/* only our own socket: a newer sluiced may have replaced it */
	if (stat(c->path, &st) == 0 && st.st_dev == c->dev &&
	    st.st_ino == c->ino)
		unlink(c->path);
	free(c);
}
