/*
 * reqsrv.c - one request, one answer per connection, never blocking
 * (reqsrv.h). Input: a listening socket and the user's framing and
 * answering callbacks; output: answers written to the clients.
 *
 * Each slot holds a head buffer of head_max + 1 bytes (allocated once);
 * a request longer than that (frame said so) is read into a buffer of
 * its own, freed with the slot. Invariants: in[inlen] == 0 while
 * reading; a slot with fd < 0 is free and holds no memory but its head;
 * request bytes are wiped before their buffer is reused or freed.
 */
#define _GNU_SOURCE
#include "reqsrv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct reqsrv_client {
	int fd;                     /* -1 = free slot */
	bool answered;              /* out holds the answer */
	char *head;                 /* head_max + 1 bytes */
	char *big;                  /* want + 1 bytes, or NULL */
	char *in;                   /* head or big */
	size_t inlen, want;         /* want: request length, 0 = unknown */
	char *out;
	size_t outlen, outoff;
	uint64_t deadline_us;
};

struct reqsrv {
	int lfd;
	struct reqsrv_cfg cfg;
	const struct reqsrv_ops *ops;
	void *user;
	struct reqsrv_client *cl;
};

struct reqsrv *reqsrv_open(int lfd, const struct reqsrv_cfg *cfg,
			   const struct reqsrv_ops *ops, void *user)
{
	struct reqsrv *s = calloc(1, sizeof(*s));

	if (s)
		s->cl = calloc(cfg->slots, sizeof(*s->cl));
	if (!s || !s->cl) {
		free(s);
		close(lfd);
		return NULL;
	}
	s->lfd = lfd;
	s->cfg = *cfg;
	s->ops = ops;
	s->user = user;
	for (unsigned i = 0; i < cfg->slots; i++) {
		struct reqsrv_client *k = &s->cl[i];

		k->fd = -1;
		if (!(k->head = malloc(cfg->head_max + 1))) {
			reqsrv_close(s);
			return NULL;
		}
		k->in = k->head;
	}
	return s;
}

/* reqsrv_wipe - forget the request bytes */
static void reqsrv_wipe(struct reqsrv_client *k)
{
	explicit_bzero(k->in, k->inlen);
	free(k->big);
	k->big = NULL;
	k->in = k->head;
	k->inlen = k->want = 0;
}

/* reqsrv_drop - close and free the slot; input not read yet is read
 * away first (bounded) so the close does not reset the connection */
static void reqsrv_drop(struct reqsrv *s, struct reqsrv_client *k)
{
	char sink[4096];

	for (int i = 0; i < 16; i++)
		if (recv(k->fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
			break;
	close(k->fd);
	k->fd = -1;
	reqsrv_wipe(k);
	if (k->out) {
		if (s->ops->release)
			s->ops->release(k->out);
		else
			free(k->out);
	}
	k->out = NULL;
	k->answered = false;
	k->outlen = k->outoff = 0;
	k->deadline_us = 0;
}

/* reqsrv_answer - the user answers in[0..n); no answer closes */
static void reqsrv_answer(struct reqsrv *s, struct reqsrv_client *k,
			  size_t n, enum reqsrv_end end)
{
	k->in[n] = 0;
	k->out = NULL;
	k->outlen = 0;
	s->ops->answer(s->user, k->in, n, end, &k->out, &k->outlen);
	reqsrv_wipe(k);
	k->answered = true;
	k->outoff = 0;
	if (!k->out)
		reqsrv_drop(s, k);
}

/* reqsrv_read - take what the client sent; 1 if anything happened */
static int reqsrv_read(struct reqsrv *s, struct reqsrv_client *k)
{
	size_t lim = k->want ? k->want : s->cfg.head_max, w;
	ssize_t r = recv(k->fd, k->in + k->inlen, lim - k->inlen,
			 MSG_DONTWAIT);

	if (r < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		reqsrv_drop(s, k);
		return 1;
	}
	if (r == 0) {                      /* end of input */
		if (k->inlen == 0)
			reqsrv_drop(s, k);
		else
			reqsrv_answer(s, k, k->inlen, REQSRV_EOF);
		return 1;
	}
	k->inlen += (size_t)r;
	k->in[k->inlen] = 0;
	if (k->want) {
		if (k->inlen == k->want)
			reqsrv_answer(s, k, k->want, REQSRV_WHOLE);
		return 1;
	}
	w = s->ops->frame(s->user, k->in, k->inlen);
	if (w == 0) {
		if (k->inlen >= s->cfg.head_max)
			reqsrv_answer(s, k, k->inlen, REQSRV_FULL);
	} else if (w <= k->inlen) {
		reqsrv_answer(s, k, w, REQSRV_WHOLE);
	} else if (!(k->big = malloc(w + 1))) {
		reqsrv_answer(s, k, k->inlen, REQSRV_NOMEM);
	} else {
		memcpy(k->big, k->head, k->inlen + 1);
		explicit_bzero(k->head, k->inlen);
		k->in = k->big;
		k->want = w;
	}
	return 1;
}

/* reqsrv_write - send what the socket takes; close when done */
static int reqsrv_write(struct reqsrv *s, struct reqsrv_client *k)
{
	ssize_t w = send(k->fd, k->out + k->outoff, k->outlen - k->outoff,
			 MSG_DONTWAIT | MSG_NOSIGNAL);

	if (w < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		reqsrv_drop(s, k);         /* the client went away */
		return 1;
	}
	k->outoff += (size_t)w;
	if (k->outoff == k->outlen) {
		shutdown(k->fd, SHUT_WR);
		reqsrv_drop(s, k);
	}
	return 1;
}

int reqsrv_poll(struct reqsrv *s, uint64_t now_us)
{
	int work = 0;

	for (unsigned i = 0, n = 0; i < s->cfg.slots && n < s->cfg.burst;
	     i++) {
		struct reqsrv_client *k = &s->cl[i];

		if (k->fd >= 0)
			continue;
		k->fd = accept4(s->lfd, NULL, NULL,
				SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (k->fd < 0)
			break;
		k->deadline_us = now_us + (uint64_t)s->cfg.timeout_ms * 1000;
		n++;
		work++;
	}
	for (unsigned i = 0; i < s->cfg.slots; i++) {
		struct reqsrv_client *k = &s->cl[i];

		if (k->fd < 0)
			continue;
		if (now_us > k->deadline_us) {
			reqsrv_drop(s, k);
			work++;
			continue;
		}
		if (!k->answered)
			work += reqsrv_read(s, k);
		if (k->fd >= 0 && k->answered)
			work += reqsrv_write(s, k);
	}
	return work;
}

void reqsrv_close(struct reqsrv *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->cfg.slots; i++) {
		if (s->cl[i].fd >= 0)
			reqsrv_drop(s, &s->cl[i]);
		free(s->cl[i].head);
	}
	close(s->lfd);
	free(s->cl);
	free(s);
}
