/*
 * sb_tport_kernel.c - the kernel transport: non-blocking TCP sockets and
 * one epoll set per worker (contract in sb_tport.h).
 */
#define _GNU_SOURCE
#include "sb_tport.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct ktport {
	struct sb_tport t;
	int ep;
	struct epoll_event ev[256];
};

static int k_connect(struct sb_tport *t, struct sb_conn *c, const struct sockaddr_in *dst, uint32_t id)
{
	(void)t;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sb_conn_init(c, fd);
	c->tp = t;
	c->id = id;
	if (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		c->fd = -1;
		return -e;
	}
	return 0;
}

static int k_connect_result(struct sb_tport *t, struct sb_conn *c)
{
	(void)t;
	int err = 0;
	socklen_t el = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		return errno;
	return err;
}

static void k_arm(struct sb_tport *t, struct sb_conn *c, uint32_t want)
{
	struct ktport *k = (struct ktport *)t;
	uint32_t ev = (want & SB_EV_IN ? EPOLLIN : 0) | (want & SB_EV_OUT ? EPOLLOUT : 0);
	if (c->armed && want == c->want)
		return;
	struct epoll_event e = { .events = ev, .data.u32 = c->id };
	if (epoll_ctl(k->ep, c->armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) < 0)
		sb_die("epoll_ctl: %s", strerror(errno));
	c->armed = true;
	c->want = want;
}

/* wait_events - epoll_pwait2 (ns timeout); epoll_wait where it is missing */
static int wait_events(int ep, struct epoll_event *ev, int max, uint64_t us)
{
	static int no_pwait2;
	if (!__atomic_load_n(&no_pwait2, __ATOMIC_RELAXED)) {
		struct timespec ts = { .tv_sec = (time_t)(us / 1000000), .tv_nsec = (long)(us % 1000000) * 1000 };
		int n = epoll_pwait2(ep, ev, max, &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		__atomic_store_n(&no_pwait2, 1, __ATOMIC_RELAXED);
	}
	return epoll_wait(ep, ev, max, (int)((us + 999) / 1000));
}

static int k_wait(struct sb_tport *t, struct sb_event *out, int max, uint64_t us)
{
	struct ktport *k = (struct ktport *)t;
	if (max > 256)
		max = 256;
	int n = wait_events(k->ep, k->ev, max, us);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		sb_die("epoll_wait: %s", strerror(errno));
	}
	for (int i = 0; i < n; i++) {
		uint32_t e = k->ev[i].events;
		out[i].id = k->ev[i].data.u32;
		out[i].events = (e & (EPOLLIN | EPOLLHUP | EPOLLERR) ? SB_EV_IN : 0) |
				(e & EPOLLOUT ? SB_EV_OUT : 0) | (e & (EPOLLERR | EPOLLHUP) ? SB_EV_ERR : 0);
	}
	return n;
}

static ssize_t k_read(struct sb_conn *c, void *buf, size_t n)
{
	return read(c->fd, buf, n);
}

static ssize_t k_write(struct sb_conn *c, const void *buf, size_t n)
{
	return write(c->fd, buf, n);
}

static void k_close(struct sb_conn *c)
{
	close(c->fd); /* also leaves the epoll set */
}

static void k_destroy(struct sb_tport *t)
{
	struct ktport *k = (struct ktport *)t;
	close(k->ep);
	free(k);
}

static const struct sb_tport_ops kernel_ops = {
	.name = "kernel",
	.tls = true,
	.connect = k_connect,
	.connect_result = k_connect_result,
	.arm = k_arm,
	.wait = k_wait,
	.read = k_read,
	.write = k_write,
	.close = k_close,
	.destroy = k_destroy,
};

struct sb_tport *sb_tport_kernel_new(void)
{
	struct ktport *k = calloc(1, sizeof(*k));
	if (!k)
		sb_die("out of memory");
	k->t.ops = &kernel_ops;
	k->ep = epoll_create1(EPOLL_CLOEXEC);
	if (k->ep < 0)
		sb_die("epoll_create1: %s", strerror(errno));
	return &k->t;
}
