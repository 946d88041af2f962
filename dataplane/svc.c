/*
 * svc.c - echo and discard services, and socket event dispatch (svc.h).
 *
 * Input: net_events() of one stack. Output: net_send/net_recv_consume/
 * net_close calls. Invariants: echo never consumes a byte net_send did not
 * take (no loss, the window closes instead); a socket is closed
 * only when its receive buffer is empty and the peer has sent FIN, so a
 * close never discards data (which would mean an RST).
 */
#include <stdio.h>
#include <string.h>

#include "svc.h"

static void svc_echo_event(struct svc *v, const struct net_event *ev);
static void svc_discard_event(struct svc *v, const struct net_event *ev);

static const struct svc_def svc_defs[SVC_COUNT] = {
	[SVC_ECHO] = { "echo", SVC_ECHO_PORT, SVC_ECHO, svc_echo_event },
	[SVC_DISCARD] = { "discard", SVC_DISCARD_PORT, SVC_DISCARD,
			  svc_discard_event },
	[SVC_SMTP] = { "smtp", 0, SVC_SMTP, NULL },   /* smtpd.c listens */
	[SVC_DELIVER] = { "deliver", 0, SVC_DELIVER, NULL }, /* deliver.c */
};

const char *svc_name(unsigned index)
{
	return index < SVC_COUNT ? svc_defs[index].name : "?";
}

/* svc_at_eof - called when peek found nothing: 1 if the peer finished
 * (net_recv reports end of stream), 0 if more may come. net.h: net_recv
 * returns 0 only at end of stream and -NET_EAGAIN while the stream is
 * open and empty, so the one-byte read consumes nothing either way. */
static int svc_at_eof(struct svc *v, net_sock_t sk)
{
	uint8_t b;

	return net_recv(v->s, sk, &b, 1) == 0;
}

/* svc_finish - close after the peer's FIN; our queued data still goes */
static void svc_finish(struct svc *v, net_sock_t sk)
{
	net_close(v->s, sk);
}

/* svc_echo_pump - send back as much of the readable data as the send
 * buffer takes, and consume exactly that much. Everything readable is
 * offered to net_send: a short send is what arms NET_EV_WRITABLE in the
 * stack (net.h: "0 if full: wait for NET_EV_WRITABLE"), so never trim the
 * offer to net_send_space() beforehand or the event never comes. */
static void svc_echo_pump(struct svc *v, net_sock_t sk)
{
	struct svc_stats *st = &v->st[SVC_ECHO];

	for (;;) {
		struct net_iov iov[2];
		size_t done = 0;
		ssize_t n = net_recv_peek(v->s, sk, iov);

		if (n < 0 && n != -NET_EAGAIN)
			return;        /* stale handle: CLOSED event follows */
		if (n <= 0) {
			if (svc_at_eof(v, sk))
				svc_finish(v, sk);
			return;
		}
		for (int i = 0; i < 2; i++) {
			ssize_t w;

			if (iov[i].len == 0)
				continue;
			w = net_send(v->s, sk, iov[i].base, iov[i].len);
			if (w < 0) {
				net_abort(v->s, sk);
				return;
			}
			done += (size_t)w;
			if ((size_t)w < iov[i].len)
				break;
		}
		if (done)
			net_recv_consume(v->s, sk, done);
		st->bytes_in += done;
		st->bytes_out += done;
		if (done < (size_t)n)
			return;        /* short send: NET_EV_WRITABLE will come */
	}
}

static void svc_echo_event(struct svc *v, const struct net_event *ev)
{
	if (ev->events & (NET_EV_READABLE | NET_EV_WRITABLE | NET_EV_PEER_FIN |
			  NET_EV_ACCEPTED))
		svc_echo_pump(v, ev->sock);
}

/* svc_discard_drain - consume everything readable; close at EOF */
static void svc_discard_drain(struct svc *v, net_sock_t sk)
{
	for (;;) {
		struct net_iov iov[2];
		ssize_t n = net_recv_peek(v->s, sk, iov);

		if (n < 0 && n != -NET_EAGAIN)
			return;
		if (n <= 0) {
			if (svc_at_eof(v, sk))
				svc_finish(v, sk);
			return;
		}
		net_recv_consume(v->s, sk, (size_t)n);
		v->st[SVC_DISCARD].bytes_in += (uint64_t)n;
	}
}

static void svc_discard_event(struct svc *v, const struct net_event *ev)
{
	if (ev->events & (NET_EV_READABLE | NET_EV_PEER_FIN | NET_EV_ACCEPTED))
		svc_discard_drain(v, ev->sock);
}

int svc_start(struct svc *v, struct net_stack *s, bool echo, bool discard,
	      char *err, size_t errlen)
{
	memset(v, 0, sizeof(*v));
	v->s = s;
	v->on[SVC_ECHO] = echo;
	v->on[SVC_DISCARD] = discard;
	for (unsigned i = 0; i < SVC_COUNT; i++) {
		int rc;

		if (!v->on[i] || !svc_defs[i].event)
			continue;
		rc = net_listen(s, svc_defs[i].port,
				(void *)(uintptr_t)&svc_defs[i]);
		if (rc < 0) {
			snprintf(err, errlen, "%s service: listen on TCP port "
				 "%u: %s", svc_defs[i].name, svc_defs[i].port,
				 net_strerror(rc));
			return -1;
		}
	}
	return 0;
}

int svc_poll(void *arg, uint64_t now_us)
{
	struct svc *v = arg;
	struct net_event ev[SVC_EVENT_BURST];
	unsigned n, total = 0;

	(void)now_us;
	do {
		n = net_events(v->s, ev, SVC_EVENT_BURST);
		for (unsigned i = 0; i < n; i++) {
			const struct svc_def *d = ev[i].user;

			if (!d) {
				v->stray_events++;
				continue;
			}
			if (ev[i].events & NET_EV_ACCEPTED) {
				v->st[d->index].accepted++;
				net_set_user(v->s, ev[i].sock, ev[i].user);
			}
			if (ev[i].events & NET_EV_CLOSED) {
				v->st[d->index].closed++;
				if (ev[i].error)
					v->st[d->index].closed_error++;
				if (d->want_closed)
					d->event(v, &ev[i]);
				continue;   /* handle is gone */
			}
			d->event(v, &ev[i]);
		}
		total += n;
		v->events += n;
	} while (n == SVC_EVENT_BURST);
	return (int)total;
}
