/*
 * tcp_sock.c - the socket API of net.h over TCP connections.
 *
 * Handles are (generation << 20 | slot); a handle is valid from the moment
 * the app sees it (net_connect return, NET_EV_ACCEPTED) until its
 * NET_EV_CLOSED has been taken from net_events, after which the slot may
 * be reused with the next generation.
 *
 * Events: each socket has a pending NET_EV_* mask and sits at most once
 * on an intrusive FIFO ready list, so the queue is bounded by the pool.
 * NET_EV_CLOSED is delivered exactly once per handle: at once when the
 * connection dies (reset, timeout, ICMP while connecting, abort: error
 * set; unread data is discarded). An orderly end (both FINs exchanged)
 * does not end the handle: the app can still read what is left and see
 * end of stream (0), sends fail with -NET_EPIPE; the app calls net_close.
 * After net_close the app gets only the final CLOSED, which arrives when
 * the connection has finished (our FIN acknowledged or TIME_WAIT entered:
 * 0; reset/timeout: the error) and carries the socket's user pointer.
 * After an error CLOSED has been taken, and until the slot is reused, the
 * old handle reads as the dead socket: net_recv/net_recv_peek return the
 * error, everything else -NET_EINVAL.
 *
 * Data: net_send copies into the send ring, segments leave at the next
 * tcp_flush; net_recv / net_recv_peek+consume read the receive ring, and
 * consuming reopens the window (a window update is sent when it grew by
 * min(rcvbuf/2, MSS), RFC 9293 3.8.6.2.2).
 */
#include <string.h>

#include "tcp.h"

/* tcp_sock_get - connection of a valid app handle, or NULL */
static struct tcp_conn *tcp_sock_get(const struct net_stack *s, net_sock_t h)
{
	const struct tcp_state *t = s ? s->tcp : NULL;
	struct tcp_conn *c;
	uint32_t idx = h & 0xfffffu;

	if (t == NULL || idx >= t->nconns)
		return NULL;
	c = &t->conns[idx];
	if (!(c->flags & TCP_CF_USED) || !(c->flags & TCP_CF_APP_SEEN) ||
	    c->gen != (h >> 20))
		return NULL;
	return c;
}

/* net_events - hand out up to max pending socket events */
unsigned net_events(struct net_stack *s, struct net_event *ev, unsigned max)
{
	struct tcp_state *t = s ? s->tcp : NULL;
	unsigned n = 0;

	if (t == NULL)
		return 0;
	while (n < max && t->ev_head != TCP_NIL) {
		struct tcp_conn *c = &t->conns[t->ev_head];
		struct net_event *e;

		t->ev_head = c->ev_next;
		if (t->ev_head == TCP_NIL)
			t->ev_tail = TCP_NIL;
		c->ev_next = TCP_NIL;
		c->flags &= ~TCP_CF_IN_EVQ;
		if (!(c->flags & TCP_CF_USED) || c->ev_pending == 0)
			continue;
		e = &ev[n++];
		e->sock = tcp_sock_handle(t, c);
		e->events = c->ev_pending;
		e->error = (c->ev_pending & NET_EV_CLOSED) ? c->ev_error : 0;
		e->user = c->user;
		e->lport = c->lport;
		c->ev_pending = 0;
		if (e->events & NET_EV_CLOSED) {
			bool read_ok = !(c->flags & TCP_CF_APP_CLOSED);
			tcp_conn_free(s, c);
			if (read_ok)
				c->flags |= TCP_CF_DONE_EV;
		}
	}
	return n;
}

/* net_set_user - attach the app's pointer to a socket */
int net_set_user(struct net_stack *s, net_sock_t sock, void *user)
{
	struct tcp_conn *c = tcp_sock_get(s, sock);

	if (c == NULL)
		return -NET_EINVAL;
	c->user = user;
	return 0;
}

/* tcp_sock_can_send - state allows queueing data: 0 or -NET_E* */
static int tcp_sock_can_send(const struct tcp_conn *c)
{
	if (c->flags & (TCP_CF_APP_CLOSED | TCP_CF_FIN_QUEUED))
		return -NET_EPIPE;
	if (c->flags & TCP_CF_DONE)
		return c->ev_error ? -c->ev_error : -NET_EPIPE;
	if (c->state == TCPS_ESTABLISHED || c->state == TCPS_CLOSE_WAIT)
		return 0;
	return -NET_ENOTCONN;
}

/* net_send - copy into the send ring; bytes taken */
ssize_t net_send(struct net_stack *s, net_sock_t sock, const void *buf,
		 size_t len)
{
	struct tcp_conn *c = tcp_sock_get(s, sock);
	uint32_t sz, space, n, pos, first;
	int rc;

	if (c == NULL || (buf == NULL && len))
		return -NET_EINVAL;
	rc = tcp_sock_can_send(c);
	if (rc < 0)
		return rc;
	sz = s->cfg.sndbuf;
	space = sz - c->snd_len;
	n = len < space ? (uint32_t)len : space;
	if (n < len)
		c->flags |= TCP_CF_WR_BLOCKED;
	if (n == 0)
		return 0;
	pos = c->snd_head + c->snd_len;
	if (pos >= sz)
		pos -= sz;
	first = sz - pos < n ? sz - pos : n;
	memcpy(c->snd_buf + pos, buf, first);
	if (first < n)
		memcpy(c->snd_buf, (const uint8_t *)buf + first, n - first);
	c->snd_len += n;
	tcp_out_mark(s, c);
	return n;
}

/* net_send_space - bytes net_send would take now */
size_t net_send_space(const struct net_stack *s, net_sock_t sock)
{
	struct tcp_conn *c = tcp_sock_get(s, sock);

	if (c == NULL || tcp_sock_can_send(c) < 0)
		return 0;
	return s->cfg.sndbuf - c->snd_len;
}

/* tcp_sock_consumed - n bytes left the receive ring: window update and
 * the deferred CLOSED of a finished connection */
static void tcp_sock_consumed(struct net_stack *s, struct tcp_conn *c,
			      uint32_t n)
{
	c->rcv_head += n;
	if (c->rcv_head >= s->cfg.rcvbuf)
		c->rcv_head -= s->cfg.rcvbuf;
	c->rcv_len -= n;
	if (!(c->flags & (TCP_CF_PEER_FIN | TCP_CF_DONE)) && n) {
		uint32_t edge = c->rcv_nxt + tcp_rcv_space(s, c);
		uint32_t thresh = s->cfg.rcvbuf / 2;
		if (thresh > c->mss)
			thresh = c->mss;
		if (SEQ_GEQ(edge, c->rcv_adv + thresh)) {
			c->flags |= TCP_CF_ACK_NOW;
			tcp_out_mark(s, c);
		}
	}
}

/* tcp_sock_readable - 0 if bytes may be read, else what recv returns */
static ssize_t tcp_sock_readable(const struct tcp_conn *c)
{
	if (c->flags & TCP_CF_APP_CLOSED)
		return -NET_EINVAL;
	if (c->rcv_len)
		return 1;
	if (c->flags & TCP_CF_PEER_FIN)
		return 0;
	if (c->flags & TCP_CF_DONE)
		return c->ev_error ? -c->ev_error : 0;
	if (c->state == TCPS_SYN_SENT || c->state == TCPS_SYN_RECV)
		return -NET_ENOTCONN;
	return -NET_EAGAIN;
}

/* tcp_sock_closed_read - read on a handle whose CLOSED was delivered and
 * whose slot is still free: end of stream (or the error); else EINVAL */
static ssize_t tcp_sock_closed_read(const struct net_stack *s, net_sock_t h)
{
	const struct tcp_state *t = s ? s->tcp : NULL;
	const struct tcp_conn *c;
	uint32_t idx = h & 0xfffffu;

	if (t == NULL || idx >= t->nconns)
		return -NET_EINVAL;
	c = &t->conns[idx];
	if ((c->flags & TCP_CF_USED) || c->gen != (h >> 20) ||
	    !(c->flags & TCP_CF_DONE_EV))
		return -NET_EINVAL;
	return c->ev_error ? -c->ev_error : 0;
}

/* net_recv - copy out up to len bytes (0 = end of stream) */
ssize_t net_recv(struct net_stack *s, net_sock_t sock, void *buf, size_t len)
{
	struct tcp_conn *c = tcp_sock_get(s, sock);
	uint32_t n, first, sz;
	ssize_t r;

	if (c == NULL)
		return tcp_sock_closed_read(s, sock);
	if (buf == NULL && len)
		return -NET_EINVAL;
	r = tcp_sock_readable(c);
	if (r <= 0)
		return r;
	if (len == 0)
		return 0;
	sz = s->cfg.rcvbuf;
	n = len < c->rcv_len ? (uint32_t)len : c->rcv_len;
	first = sz - c->rcv_head < n ? sz - c->rcv_head : n;
	memcpy(buf, c->rcv_buf + c->rcv_head, first);
	if (first < n)
		memcpy((uint8_t *)buf + first, c->rcv_buf, n - first);
	tcp_sock_consumed(s, c, n);
	return n;
}

/* net_recv_peek - readable bytes in place (up to 2 pieces) */
ssize_t net_recv_peek(struct net_stack *s, net_sock_t sock,
		      struct net_iov iov[2])
{
	struct tcp_conn *c = tcp_sock_get(s, sock);
	uint32_t first, sz;
	ssize_t r;

	if (iov == NULL)
		return -NET_EINVAL;
	if (c == NULL)
		return tcp_sock_closed_read(s, sock);
	iov[0].base = iov[1].base = NULL;
	iov[0].len = iov[1].len = 0;
	r = tcp_sock_readable(c);
	if (r <= 0)
		return r;
	sz = s->cfg.rcvbuf;
	first = sz - c->rcv_head < c->rcv_len ? sz - c->rcv_head : c->rcv_len;
	iov[0].base = c->rcv_buf + c->rcv_head;
	iov[0].len = first;
	if (first < c->rcv_len) {
		iov[1].base = c->rcv_buf;
		iov[1].len = c->rcv_len - first;
	}
	return c->rcv_len;
}

/* net_recv_consume - release n bytes seen through net_recv_peek */
int net_recv_consume(struct net_stack *s, net_sock_t sock, size_t n)
{
	struct tcp_conn *c = tcp_sock_get(s, sock);

	if (c == NULL || (c->flags & TCP_CF_APP_CLOSED) || n > c->rcv_len)
		return -NET_EINVAL;
	if (n)
		tcp_sock_consumed(s, c, (uint32_t)n);
	return 0;
}

/* tcp_sock_queue_fin - RFC 9293 3.10.4 CLOSE in ESTABLISHED/CLOSE-WAIT */
static void tcp_sock_queue_fin(struct net_stack *s, struct tcp_conn *c)
{
	c->flags |= TCP_CF_FIN_QUEUED;
	if (c->state == TCPS_ESTABLISHED)
		tcp_conn_set_state(s, c, TCPS_FIN_WAIT1);
	else if (c->state == TCPS_CLOSE_WAIT)
		tcp_conn_set_state(s, c, TCPS_LAST_ACK);
	tcp_out_mark(s, c);
}

/* net_shutdown - send FIN after queued data; reading continues */
int net_shutdown(struct net_stack *s, net_sock_t sock)
{
	struct tcp_conn *c = tcp_sock_get(s, sock);

	if (c == NULL || (c->flags & TCP_CF_APP_CLOSED))
		return -NET_EINVAL;
	if (c->flags & TCP_CF_DONE)
		return -NET_ENOTCONN;
	if (c->flags & TCP_CF_FIN_QUEUED)
		return 0;
	if (c->state != TCPS_ESTABLISHED && c->state != TCPS_CLOSE_WAIT)
		return -NET_ENOTCONN;
	tcp_sock_queue_fin(s, c);
	return 0;
}

/* tcp_sock_release - the app gives up the handle: only CLOSED may still
 * be reported; returns 1 if the connection was already done (CLOSED posted) */
static int tcp_sock_release(struct net_stack *s, struct tcp_conn *c)
{
	c->flags |= TCP_CF_APP_CLOSED;
	c->ev_pending &= NET_EV_CLOSED;
	if (!(c->flags & TCP_CF_DONE))
		return 0;
	tcp_ev_post(s, c, NET_EV_CLOSED);
	return 1;
}

/* tcp_sock_rst_abort - send RST and finish with NET_ECONNABORTED */
static void tcp_sock_rst_abort(struct net_stack *s, struct tcp_conn *c)
{
	s->tcp->st.aborts++;
	tcp_output_rst(s, c);
	tcp_conn_finish(s, c, NET_ECONNABORTED);
}

/* net_close - shutdown and release the handle; NET_EV_CLOSED follows */
int net_close(struct net_stack *s, net_sock_t sock)
{
	struct tcp_conn *c = tcp_sock_get(s, sock);

	if (c == NULL || (c->flags & TCP_CF_APP_CLOSED))
		return -NET_EINVAL;
	if (tcp_sock_release(s, c))
		return 0;
	if (c->rcv_len > 0 && c->state != TCPS_SYN_SENT) {
		/* unread data: abort (RFC 9293 3.10.4, RFC 2525 2.17) */
		c->rcv_len = 0;
		tcp_sock_rst_abort(s, c);
		return 0;
	}
	switch (c->state) {
	case TCPS_SYN_SENT:
		tcp_conn_finish(s, c, 0);
		break;
	case TCPS_SYN_RECV:
		tcp_output_rst(s, c);
		tcp_conn_finish(s, c, 0);
		break;
	case TCPS_ESTABLISHED:
	case TCPS_CLOSE_WAIT:
		if (!(c->flags & TCP_CF_FIN_QUEUED))
			tcp_sock_queue_fin(s, c);
		break;
	case TCPS_FIN_WAIT2:
		c->fw2_at = s->now + (uint64_t)s->cfg.fin_wait2_ms * 1000;
		tcp_timer_update(s, c);
		break;
	default: /* FIN-WAIT-1, CLOSING, LAST-ACK: FIN already queued */
		break;
	}
	return 0;
}

/* net_abort - RST now, NET_EV_CLOSED(NET_ECONNABORTED) follows */
int net_abort(struct net_stack *s, net_sock_t sock)
{
	struct tcp_conn *c = tcp_sock_get(s, sock);

	if (c == NULL)
		return -NET_EINVAL;
	if (!tcp_sock_release(s, c))
		tcp_sock_rst_abort(s, c);
	return 0;
}

/* net_sockinfo - addresses, state and transmission parameters */
int net_sockinfo(const struct net_stack *s, net_sock_t sock,
		 struct net_sockinfo *info)
{
	struct tcp_conn *c = tcp_sock_get(s, sock);

	if (c == NULL || info == NULL)
		return -NET_EINVAL;
	memset(info, 0, sizeof(*info));
	info->laddr = c->laddr;
	info->raddr = c->raddr;
	info->lport = c->lport;
	info->rport = c->rport;
	info->state = c->state;
	info->srtt_us = c->srtt_us;
	info->rto_ms = tcp_rto_us(s, c) / 1000;
	info->cwnd = c->cwnd;
	info->ssthresh = c->ssthresh;
	info->snd_wnd = c->snd_wnd;
	info->rcv_wnd = tcp_rcv_space(s, c);
	info->retransmits = c->retransmits;
	return 0;
}

/* net_state_name - name of an enum tcp_st value (RFC 9293 states,
 * identifier spelling as in the enum: FIN_WAIT1, SYN_RECV, ...) */
const char *net_state_name(int state)
{
	static const char *const names[TCPS_NSTATES] = {
		"CLOSED", "LISTEN", "SYN_SENT", "SYN_RECV", "ESTABLISHED",
		"FIN_WAIT1", "FIN_WAIT2", "CLOSE_WAIT", "CLOSING", "LAST_ACK",
		"TIME_WAIT",
	};

	if (state < 0 || state >= TCPS_NSTATES)
		return "?";
	return names[state];
}
