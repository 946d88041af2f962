/*
 * tcp_output.c - building and sending TCP segments; tcp_flush.
 *
 * Inputs: connections marked by tcp_out_mark (data queued, ACK owed,
 * retransmission or probe due, SYN to send). Output: frames through
 * net_tx_alloc + ipv4_send, which fills IP/Ethernet and the checksum (we
 * leave the TCP checksum field zero).
 *
 * tcp_output(c) sends, in this order: a SYN/SYN-ACK if owed; a NewReno
 * retransmission at snd_una; a zero-window probe; SACK-recovery hole
 * retransmissions while pipe < cwnd (RFC 6675 5); new data within
 * min(cwnd, peer window) with sender SWS avoidance (RFC 9293 3.8.6.2.1);
 * our FIN; and finally a pure ACK if one is owed and nothing carried it.
 * Every segment carries the current ACK, window and timestamps, so a burst
 * of input produces at most one ACK per connection per flush.
 */
#include <string.h>

#include "tcp.h"

/* tcp_put16/32 - big-endian stores */
static inline void tcp_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void tcp_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* tcp_output_opts - write options (RFC 9293 3.2, 7323, 2018); length */
static unsigned tcp_output_opts(uint8_t *p, const struct tcp_txopt *o)
{
	unsigned n = 0;

	if (o == NULL)
		return 0;
	if (o->syn) {
		p[n++] = 2; p[n++] = 4;
		tcp_put16(p + n, o->mss); n += 2;
		if (o->sack_ok && o->ts) {
			p[n++] = 4; p[n++] = 2;
		} else if (o->ts) {
			p[n++] = 1; p[n++] = 1;
		}
		if (o->ts) {
			p[n++] = 8; p[n++] = 10;
			tcp_put32(p + n, o->tsval); n += 4;
			tcp_put32(p + n, o->tsecr); n += 4;
		} else if (o->sack_ok) {
			p[n++] = 1; p[n++] = 1; p[n++] = 4; p[n++] = 2;
		}
		if (o->ws_ok) {
			p[n++] = 1; p[n++] = 3; p[n++] = 3; p[n++] = o->ws;
		}
		return n;
	}
	if (o->ts) {
		p[n++] = 1; p[n++] = 1; p[n++] = 8; p[n++] = 10;
		tcp_put32(p + n, o->tsval); n += 4;
		tcp_put32(p + n, o->tsecr); n += 4;
	}
	if (o->n_sack) {
		p[n++] = 1; p[n++] = 1; p[n++] = 5;
		p[n++] = (uint8_t)(2 + 8 * o->n_sack);
		for (unsigned i = 0; i < o->n_sack; i++) {
			tcp_put32(p + n, o->sack[i].start); n += 4;
			tcp_put32(p + n, o->sack[i].end); n += 4;
		}
	}
	return n;
}

/* tcp_output_raw - build one segment and hand it to IPv4; payload bytes
 * come from c's send ring at data_seq */
int tcp_output_raw(struct net_stack *s, uint32_t laddr, uint32_t raddr,
		   uint16_t lport, uint16_t rport, uint32_t seq, uint32_t ack,
		   uint8_t flags, uint16_t win, const struct tcp_txopt *o,
		   const struct tcp_conn *c, uint32_t data_seq,
		   uint32_t data_len)
{
	struct tcp_state *t = s->tcp;
	struct net_txbuf tb;
	uint8_t *th;
	unsigned optlen, hlen;
	int rc;

	(void)laddr;
	if (net_tx_alloc(s, &tb) < 0) {
		t->st.tx_fail++;
		return -NET_ENOMEM;
	}
	th = tb.data + NET_L4_OFF;
	optlen = tcp_output_opts(th + TCP_HLEN, o);
	hlen = TCP_HLEN + optlen;
	if (NET_L4_OFF + hlen + data_len > tb.cap) {
		if (NET_L4_OFF + hlen > tb.cap) {
			s->io.tx_free(s->io.opaque, &tb);
			t->st.tx_fail++;
			return -NET_ENOMEM;
		}
		data_len = tb.cap - NET_L4_OFF - hlen;
	}
	tcp_put16(th, lport);
	tcp_put16(th + 2, rport);
	tcp_put32(th + 4, seq);
	tcp_put32(th + 8, ack);
	th[12] = (uint8_t)((hlen / 4) << 4);
	th[13] = flags;
	tcp_put16(th + 14, win);
	th[16] = th[17] = th[18] = th[19] = 0;
	if (data_len) {
		uint32_t sz = s->cfg.sndbuf;
		uint32_t off = c->snd_head + (data_seq - c->snd_buf_seq);
		uint32_t first;

		if (off >= sz)
			off -= sz;
		first = sz - off < data_len ? sz - off : data_len;
		memcpy(th + hlen, c->snd_buf + off, first);
		if (first < data_len)
			memcpy(th + hlen + first, c->snd_buf, data_len - first);
	}
	t->st.tx_segs++;
	t->st.tx_bytes += data_len;
	if (flags & TCP_RST)
		t->st.rst_tx++;
	rc = ipv4_send(s, &tb, raddr, NET_IPPROTO_TCP,
		       (uint16_t)(hlen + data_len), 0);
	return rc < 0 ? rc : (int)data_len;
}

/* tcp_output_window - window field to advertise now, with receiver SWS
 * avoidance (RFC 9293 3.8.6.2.2); never shrinks the right edge. Updates
 * rcv_adv. */
uint16_t tcp_output_window(struct net_stack *s, struct tcp_conn *c)
{
	uint32_t space = tcp_rcv_space(s, c), edge = c->rcv_nxt + space;
	uint32_t thresh = s->cfg.rcvbuf / 2, win;

	if (thresh > c->mss)
		thresh = c->mss;
	if (SEQ_GEQ(c->rcv_adv, c->rcv_nxt) && SEQ_LT(edge, c->rcv_adv + thresh))
		edge = c->rcv_adv;    /* hold: growth too small to offer */
	win = edge - c->rcv_nxt;
	win >>= c->rcv_wscale;
	if (win > 65535)
		win = 65535;
	if (SEQ_GT(c->rcv_nxt + (win << c->rcv_wscale), c->rcv_adv) ||
	    SEQ_LT(c->rcv_adv, c->rcv_nxt))
		c->rcv_adv = c->rcv_nxt + (win << c->rcv_wscale);
	return (uint16_t)win;
}

/* tcp_output_fill_opts - timestamps and SACK blocks for a non-SYN seg */
static void tcp_output_fill_opts(struct net_stack *s, struct tcp_conn *c,
				 struct tcp_txopt *o)
{
	o->syn = 0;
	o->n_sack = 0;
	o->ts = (c->flags & TCP_CF_TS) ? 1 : 0;
	if (o->ts) {
		o->tsval = tcp_now_ms(s) + c->ts_off;
		o->tsecr = c->ts_recent;
	}
	if ((c->flags & TCP_CF_SACK) && c->n_ooo)
		o->n_sack = (uint8_t)tcp_reass_sack_blocks(c, o->sack,
							   o->ts ? 3 : 4);
}

/* tcp_output_seg - send one segment of c (data from the ring, flags);
 * every such segment acknowledges rcv_nxt */
static int tcp_output_seg(struct net_stack *s, struct tcp_conn *c,
			  uint32_t seq, uint32_t len, uint8_t flags)
{
	struct tcp_txopt o;
	uint16_t win;
	int rc;

	tcp_output_fill_opts(s, c, &o);
	win = tcp_output_window(s, c);
	if (len && o.n_sack) {
		/* room for SACK blocks: payload shrinks, never the MSS */
		uint32_t room = c->mss - 4 - 8 * o.n_sack;
		if (len > room)
			len = room;
	}
	rc = tcp_output_raw(s, c->laddr, c->raddr, c->lport, c->rport, seq,
			    c->rcv_nxt, flags | TCP_ACK, win, &o, c, seq, len);
	if (rc < 0)
		return rc;
	c->last_ack_sent = c->rcv_nxt;
	c->flags &= ~TCP_CF_ACK_NOW;
	c->segs_unacked = 0;
	c->delack_at = 0;
	if (!len && !(flags & (TCP_FIN | TCP_RST)))
		s->tcp->st.acks_tx++;
	return (int)len;
}

/* tcp_output_ack - send a pure ACK now */
int tcp_output_ack(struct net_stack *s, struct tcp_conn *c)
{
	return tcp_output_seg(s, c, c->snd_nxt, 0, 0);
}

/* tcp_output_rst - send RST for connection c (abort, timeouts) */
int tcp_output_rst(struct net_stack *s, struct tcp_conn *c)
{
	if (c->state == TCPS_SYN_SENT)
		return 0; /* nothing synchronized to reset */
	return tcp_output_raw(s, c->laddr, c->raddr, c->lport, c->rport,
			      c->snd_max, c->rcv_nxt, TCP_RST | TCP_ACK, 0,
			      NULL, NULL, 0, 0);
}

/* tcp_output_syn - SYN (SYN_SENT) or SYN-ACK (SYN_RECV) with options */
int tcp_output_syn(struct net_stack *s, struct tcp_conn *c)
{
	struct tcp_txopt o;
	uint32_t space = tcp_rcv_space(s, c);
	uint8_t flags = TCP_SYN;
	bool active = c->state == TCPS_SYN_SENT;
	int rc;

	memset(&o, 0, sizeof(o));
	o.syn = 1;
	o.mss = s->tcp->mss_local;
	o.ws_ok = active || (c->flags & TCP_CF_WS);
	o.ws = s->tcp->rcv_wscale;
	o.sack_ok = active || (c->flags & TCP_CF_SACK);
	o.ts = active || (c->flags & TCP_CF_TS);
	o.tsval = tcp_now_ms(s) + c->ts_off;
	o.tsecr = active ? 0 : c->ts_recent;
	if (!active)
		flags |= TCP_ACK;
	if (c->retries == 0 && !(c->flags & TCP_CF_RTT_TIMING)) {
		c->flags |= TCP_CF_RTT_TIMING;
		c->rtt_seq = c->iss;
		c->rtt_start = s->now;
	}
	rc = tcp_output_raw(s, c->laddr, c->raddr, c->lport, c->rport, c->iss,
			    active ? 0 : c->rcv_nxt, flags,
			    (uint16_t)(space > 65535 ? 65535 : space), &o, NULL,
			    0, 0);
	if (!active) {
		c->last_ack_sent = c->rcv_nxt;
		c->rcv_adv = c->rcv_nxt + (space > 65535 ? 65535 : space);
	}
	c->snd_nxt = c->iss + 1;
	if (SEQ_LT(c->snd_max, c->snd_nxt))
		c->snd_max = c->snd_nxt;
	if (!c->rto_at)
		c->rto_at = s->now + tcp_rto_us(s, c);
	tcp_timer_update(s, c);
	return rc;
}

/* tcp_output_reply_rst - RST answering a segment that has no connection
 * (RFC 9293 3.10.7.1 / 3.5.2); never answers a RST */
void tcp_output_reply_rst(struct net_stack *s, const struct tcp_seg *g)
{
	uint32_t ack;

	if (g->flags & TCP_RST)
		return;
	if (g->src == 0 || g->src >= 0xe0000000u || g->src == 0xffffffffu)
		return;
	if (g->flags & TCP_ACK) {
		tcp_output_raw(s, g->dst, g->src, g->dport, g->sport, g->ack, 0,
			       TCP_RST, 0, NULL, NULL, 0, 0);
		return;
	}
	ack = g->seq + g->len + ((g->flags & TCP_SYN) ? 1 : 0) +
	      ((g->flags & TCP_FIN) ? 1 : 0);
	tcp_output_raw(s, g->dst, g->src, g->dport, g->sport, 0, ack,
		       TCP_RST | TCP_ACK, 0, NULL, NULL, 0, 0);
}

/* tcp_output_count_rxt - account a retransmitted segment */
static void tcp_output_count_rxt(struct net_stack *s, struct tcp_conn *c)
{
	s->tcp->st.retransmits++;
	c->retransmits++;
	c->flags &= ~TCP_CF_RTT_TIMING; /* Karn */
	TCP_TEST_HOOK(retransmit, c);
}

/* tcp_output_data - send [seq, seq+len) (+FIN if it ends the stream) and
 * advance snd_nxt/snd_max; returns bytes sent or <0 */
static int tcp_output_data(struct net_stack *s, struct tcp_conn *c,
			   uint32_t seq, uint32_t len, bool advance)
{
	uint32_t data_end = c->snd_buf_seq + c->snd_len;
	uint8_t flags = 0;
	int rc;

	if ((c->flags & TCP_CF_FIN_QUEUED) && seq + len == data_end)
		flags |= TCP_FIN;
	if (len && seq + len == data_end)
		flags |= TCP_PSH;
	if (SEQ_LT(seq, c->snd_max))
		tcp_output_count_rxt(s, c);
	else if (!(c->flags & (TCP_CF_RTT_TIMING | TCP_CF_TS)) && len) {
		c->flags |= TCP_CF_RTT_TIMING;
		c->rtt_seq = seq;
		c->rtt_start = s->now;
	}
	rc = tcp_output_seg(s, c, seq, len, flags);
	if (rc < 0)
		return rc;
	if ((uint32_t)rc < len)
		flags &= (uint8_t)~TCP_FIN; /* shortened for SACK blocks */
	if (flags & TCP_FIN)
		c->flags |= TCP_CF_FIN_SENT;
	if (advance) {
		uint32_t end = seq + (uint32_t)rc + ((flags & TCP_FIN) ? 1 : 0);
		if (SEQ_GT(end, c->snd_nxt))
			c->snd_nxt = end;
		if (SEQ_GT(end, c->snd_max))
			c->snd_max = end;
	}
	return rc;
}

/* tcp_output_sack_recovery - RFC 6675 5 (simplified): while pipe leaves
 * cwnd room, retransmit the next hole below the highest SACK, else let
 * new data go. Returns segments sent. */
static unsigned tcp_output_sack_recovery(struct net_stack *s,
					 struct tcp_conn *c)
{
	unsigned sent = 0;
	uint32_t seq, len;

	for (int guard = 0; guard < 64; guard++) {
		uint32_t pipe = tcp_cc_pipe(c);
		if (pipe >= c->cwnd || c->cwnd - pipe < c->mss / 2)
			break;
		if (!tcp_cc_next_hole(c, &seq, &len))
			break;
		if (len > c->mss)
			len = c->mss;
		if (tcp_output_data(s, c, seq, len, false) < 0)
			break;
		s->tcp->st.sack_retransmits++;
		c->rxt_next = seq + len;
		sent++;
	}
	return sent;
}

/* tcp_output_new - send new (or, after an RTO, re-sent) data from snd_nxt
 * inside min(cwnd, snd_wnd); returns segments sent */
static unsigned tcp_output_new(struct net_stack *s, struct tcp_conn *c,
			       bool sack_rec)
{
	unsigned sent = 0;

	for (;;) {
		uint32_t data_end = c->snd_buf_seq + c->snd_len;
		uint32_t avail = SEQ_GT(data_end, c->snd_nxt) ?
				 data_end - c->snd_nxt : 0;
		uint32_t flight = tcp_flight(c);
		uint32_t wnd = c->snd_wnd, cw, usable, len;

		if (avail == 0)
			break;
		if (sack_rec) {
			uint32_t pipe = tcp_cc_pipe(c);
			cw = pipe < c->cwnd ? c->cwnd - pipe : 0;
			usable = wnd > flight ? wnd - flight : 0;
			if (usable > cw)
				usable = cw;
		} else {
			cw = c->cwnd < wnd ? c->cwnd : wnd;
			usable = cw > flight ? cw - flight : 0;
		}
		len = avail < c->mss ? avail : c->mss;
		if (len > usable)
			len = usable;
		if (len == 0)
			break;
		/* sender SWS avoidance: full segment, all queued data, half
		 * the largest window, or nothing in flight */
		if (len < c->mss && len < avail && flight > 0 &&
		    len < c->max_snd_wnd / 2)
			break;
		if (tcp_output_data(s, c, c->snd_nxt, len, true) <= 0)
			break;
		sent++;
	}
	return sent;
}

/* tcp_output - send everything c may send now (see file comment) */
void tcp_output(struct net_stack *s, struct tcp_conn *c)
{
	unsigned sent = 0;
	uint32_t data_end;

	if (!(c->flags & TCP_CF_USED) || (c->flags & TCP_CF_DONE))
		return;
	switch (c->state) {
	case TCPS_SYN_SENT:
	case TCPS_SYN_RECV:
		if (c->flags & TCP_CF_SYN_OUT) {
			c->flags &= ~TCP_CF_SYN_OUT;
			tcp_output_syn(s, c);
		}
		return;
	case TCPS_CLOSED:
	case TCPS_LISTEN:
	case TCPS_TIME_WAIT:
		return;
	default:
		break;
	}
	if (c->flags & TCP_CF_RXT_UNA) {
		/* RFC 6582 3.2 steps 2 and 5: retransmit the first unacked */
		uint32_t end = c->snd_buf_seq + c->snd_len, len;
		c->flags &= ~TCP_CF_RXT_UNA;
		len = SEQ_GT(end, c->snd_una) ? end - c->snd_una : 0;
		if (len > c->mss)
			len = c->mss;
		if (len && tcp_output_data(s, c, c->snd_una, len, false) >= 0)
			sent++;
	}
	if (c->flags & TCP_CF_FORCE_PROBE) {
		/* RFC 9293 3.8.6.1: one octet beyond the closed window */
		uint32_t end = c->snd_buf_seq + c->snd_len;
		c->flags &= ~TCP_CF_FORCE_PROBE;
		if (SEQ_GT(end, c->snd_una) &&
		    tcp_output_data(s, c, c->snd_una, 1, false) >= 0) {
			s->tcp->st.zero_window_probes++;
			if (SEQ_LT(c->snd_nxt, c->snd_una + 1))
				c->snd_nxt = c->snd_una + 1;
			if (SEQ_LT(c->snd_max, c->snd_nxt))
				c->snd_max = c->snd_nxt;
			sent++;
		}
	}
	if ((c->flags & (TCP_CF_RECOVERY | TCP_CF_SACK)) ==
	    (TCP_CF_RECOVERY | TCP_CF_SACK)) {
		sent += tcp_output_sack_recovery(s, c);
		sent += tcp_output_new(s, c, true);
	} else {
		sent += tcp_output_new(s, c, false);
	}
	data_end = c->snd_buf_seq + c->snd_len;
	if ((c->flags & TCP_CF_FIN_QUEUED) && c->snd_nxt == data_end) {
		/* bare FIN: ring drained (first send or after an RTO rewind) */
		if (tcp_output_data(s, c, data_end, 0, true) >= 0)
			sent++;
	}
	/* timers: RFC 6298 5.1 and the persist timer */
	if (c->snd_wnd == 0 && c->snd_nxt == c->snd_una &&
	    SEQ_GT(data_end, c->snd_una))
		tcp_timer_persist_start(s, c);
	else if (c->snd_max != c->snd_una && !(c->flags & TCP_CF_PERSIST))
		tcp_timer_rto_start(s, c);
	if (!sent && (c->flags & TCP_CF_ACK_NOW) && tcp_output_ack(s, c) < 0)
		tcp_out_mark(s, c); /* no buffer: retry at the next flush */
}

/* tcp_flush - run tcp_output over the connections marked since the last
 * flush (O(active connections)) */
void tcp_flush(struct net_stack *s)
{
	struct tcp_state *t = s->tcp;
	uint32_t i;

	if (t == NULL)
		return;
	i = t->out_head;
	t->out_head = t->out_tail = TCP_NIL;
	while (i != TCP_NIL) {
		struct tcp_conn *c = &t->conns[i];
		uint32_t next = c->out_next;

		c->flags &= ~TCP_CF_IN_OUTQ;
		c->out_next = TCP_NIL;
		tcp_output(s, c);
		i = next;
	}
}
