/*
 * tcp_state.c - the rare path: RFC 9293 3.10.7.3 (SYN-SENT) and 3.10.7.4
 * (every other state) segment processing for a full connection.
 *
 * Order of checks for synchronized states, as in RFC 9293 3.10.7.4:
 *   PAWS (RFC 7323 5.3) -> sequence acceptability and trimming ->
 *   RST (RFC 5961 3.2: exact match resets, in-window gets a challenge
 *   ACK) -> SYN (RFC 5961 4.2: challenge ACK) -> ACK (RFC 5961 5.2 range,
 *   SYN-RECEIVED completion, snd_una advance, dup ACKs, SACK, window) ->
 *   URG (counted, ignored) -> text (tcp_reass.c) -> FIN.
 * State transitions on our FIN being acknowledged and on the peer's FIN
 * live here too, including the hand-over to the compact TIME_WAIT table
 * (the full connection is released when TIME_WAIT starts).
 */
#include "tcp.h"

#define TCP_CHALLENGE_ACK_LIMIT 1000 /* per second per stack, RFC 5961 7 */

/* tcp_state_challenge_ack - RFC 5961 7: rate-limited challenge ACK */
void tcp_state_challenge_ack(struct net_stack *s, struct tcp_conn *c)
{
	struct tcp_state *t = s->tcp;

	if (s->now - t->chal_window >= 1000000) {
		t->chal_window = s->now;
		t->chal_count = 0;
	}
	if (++t->chal_count > TCP_CHALLENGE_ACK_LIMIT) {
		t->st.challenge_ack_limited++;
		return;
	}
	t->st.challenge_acks++;
	c->flags |= TCP_CF_ACK_NOW;
	tcp_out_mark(s, c);
}

/* tcp_state_time_wait - enter TIME_WAIT: final ACK (if owed), compact
 * entry, release the full connection */
static void tcp_state_time_wait(struct net_stack *s, struct tcp_conn *c,
				bool send_ack)
{
	if (send_ack)
		tcp_output_ack(s, c);
	tcp_conn_set_state(s, c, TCPS_TIME_WAIT);
	tcp_tw_enter(s, c);
	tcp_conn_finish(s, c, 0);
}

/* tcp_state_fin_acked - our FIN was acknowledged (RFC 9293 3.10.7.4
 * fifth, FIN-WAIT-1 / CLOSING / LAST-ACK) */
void tcp_state_fin_acked(struct net_stack *s, struct tcp_conn *c)
{
	switch (c->state) {
	case TCPS_FIN_WAIT1:
		tcp_conn_set_state(s, c, TCPS_FIN_WAIT2);
		if (c->flags & TCP_CF_APP_CLOSED) {
			c->fw2_at = s->now + (uint64_t)s->cfg.fin_wait2_ms * 1000;
			tcp_timer_update(s, c);
		}
		break;
	case TCPS_CLOSING:
		tcp_state_time_wait(s, c, false);
		break;
	case TCPS_LAST_ACK:
		tcp_conn_finish(s, c, 0);
		break;
	default:
		break;
	}
}

/* tcp_state_peer_fin - the peer's FIN is next in sequence (eighth step) */
void tcp_state_peer_fin(struct net_stack *s, struct tcp_conn *c)
{
	if (c->flags & TCP_CF_PEER_FIN) {
		c->flags |= TCP_CF_ACK_NOW;
		tcp_out_mark(s, c);
		return;
	}
	c->rcv_nxt++;
	c->flags |= TCP_CF_PEER_FIN | TCP_CF_ACK_NOW;
	c->flags &= ~TCP_CF_FIN_OOO;
	c->n_ooo = 0;
	tcp_ev_post(s, c, NET_EV_PEER_FIN);
	switch (c->state) {
	case TCPS_SYN_RECV:
	case TCPS_ESTABLISHED:
		tcp_conn_set_state(s, c, TCPS_CLOSE_WAIT);
		break;
	case TCPS_FIN_WAIT1:
		tcp_conn_set_state(s, c, TCPS_CLOSING); /* simultaneous close */
		break;
	case TCPS_FIN_WAIT2:
		tcp_state_time_wait(s, c, true);
		return;
	default:
		break;
	}
	tcp_out_mark(s, c);
}

/* tcp_state_ack_data - SND.UNA < ack <= SND.MAX: release acknowledged
 * bytes, feed congestion control, restart timers (RFC 6298 5.2/5.3) */
void tcp_state_ack_data(struct net_stack *s, struct tcp_conn *c, uint32_t ack)
{
	uint32_t acked = ack - c->snd_una;
	uint32_t fin_seq = c->snd_buf_seq + c->snd_len;

	if (SEQ_GT(ack, c->snd_buf_seq)) {
		uint32_t n = ack - c->snd_buf_seq;
		if (n > c->snd_len)
			n = c->snd_len;
		c->snd_head += n;
		if (c->snd_head >= s->cfg.sndbuf)
			c->snd_head -= s->cfg.sndbuf;
		c->snd_len -= n;
		c->snd_buf_seq += n;
	}
	c->snd_una = ack;
	if (SEQ_LT(c->snd_nxt, ack))
		c->snd_nxt = ack;
	if (SEQ_LT(c->rxt_next, ack))
		c->rxt_next = ack;
	c->retries = 0;
	c->probes = 0;
	if (!(c->flags & TCP_CF_PERSIST))
		c->rto_shift = 0;
	tcp_cc_ack(s, c, acked, ack);
	if (c->n_sack)
		tcp_cc_sack_trim(c);
	if (c->snd_una == c->snd_max)
		tcp_timer_rto_stop(s, c);
	else
		tcp_timer_rto_restart(s, c);
	if ((c->flags & TCP_CF_WR_BLOCKED) && !(c->flags & TCP_CF_FIN_QUEUED)) {
		c->flags &= ~TCP_CF_WR_BLOCKED;
		tcp_ev_post(s, c, NET_EV_WRITABLE);
	}
	if (c->snd_len || (c->flags & TCP_CF_FIN_QUEUED))
		tcp_out_mark(s, c);
	if ((c->flags & TCP_CF_FIN_SENT) && (c->flags & TCP_CF_FIN_QUEUED) &&
	    c->snd_len == 0 && ack == fin_seq + 1)
		tcp_state_fin_acked(s, c);
}

/* tcp_state_window_update - RFC 9293 3.10.7.4 fifth: SND.WND update with
 * the WL1/WL2 rule; leaving a zero window ends persist mode */
void tcp_state_window_update(struct net_stack *s, struct tcp_conn *c,
			     const struct tcp_seg *g)
{
	uint32_t wnd = (uint32_t)g->win << c->snd_wscale;

	if (!(SEQ_LT(c->snd_wl1, g->seq) ||
	      (c->snd_wl1 == g->seq && SEQ_LEQ(c->snd_wl2, g->ack))))
		return;
	c->snd_wl1 = g->seq;
	c->snd_wl2 = g->ack;
	if (wnd == c->snd_wnd)
		return;
	if (wnd > c->snd_wnd)
		tcp_out_mark(s, c);
	c->snd_wnd = wnd;
	if (wnd > c->max_snd_wnd)
		c->max_snd_wnd = wnd;
	if (wnd > 0 && (c->flags & TCP_CF_PERSIST)) {
		c->flags &= ~TCP_CF_PERSIST;
		c->rto_at = 0;
		c->probes = 0;
		c->rto_shift = 0;
		if (c->snd_max != c->snd_una)
			tcp_timer_rto_start(s, c);
		else
			tcp_timer_update(s, c);
		tcp_out_mark(s, c);
	}
}

/* tcp_state_established - handshake complete (SYN-SENT or SYN-RECEIVED) */
static void tcp_state_established(struct net_stack *s, struct tcp_conn *c,
				  const struct tcp_seg *g, uint32_t wnd)
{
	struct tcp_state *t = s->tcp;

	tcp_rtt_on_ack(s, c, g);
	c->snd_una = g->ack;
	c->snd_buf_seq = c->iss + 1;
	if (SEQ_LT(c->snd_nxt, c->snd_una))
		c->snd_nxt = c->snd_una;
	c->snd_wnd = wnd;
	c->max_snd_wnd = wnd;
	c->snd_wl1 = g->seq;
	c->snd_wl2 = g->ack;
	c->flags &= ~TCP_CF_SYN_OUT;
	tcp_conn_set_mss(s, c);
	tcp_cc_init(s, c);
	tcp_timer_rto_stop(s, c);
	if ((c->flags & TCP_CF_SYNQ) && c->listener < t->nlisteners &&
	    t->listeners[c->listener].syn_recv > 0)
		t->listeners[c->listener].syn_recv--;
	c->flags &= ~TCP_CF_SYNQ;
	tcp_conn_set_state(s, c, TCPS_ESTABLISHED);
	if (c->flags & TCP_CF_ACTIVE) {
		t->st.connects++;
		tcp_ev_post(s, c, NET_EV_CONNECTED);
	} else {
		t->st.accepts++;
		tcp_ev_post(s, c, NET_EV_ACCEPTED);
	}
}

/* tcp_state_syn_sent - RFC 9293 3.10.7.3 */
static void tcp_state_syn_sent(struct net_stack *s, struct tcp_conn *c,
			       struct tcp_seg *g)
{
	struct tcp_state *t = s->tcp;

	if (g->flags & TCP_ACK) {
		if (SEQ_LEQ(g->ack, c->iss) || SEQ_GT(g->ack, c->snd_max)) {
			tcp_output_reply_rst(s, g);
			return;
		}
	}
	if (g->flags & TCP_RST) {
		if (g->flags & TCP_ACK) { /* RFC 5961 3.2: ACK must be good */
			t->st.rst_rx++;
			t->st.connect_fail++;
			tcp_conn_finish(s, c, NET_ECONNREFUSED);
		}
		return;
	}
	if (!(g->flags & TCP_SYN))
		return;
	c->irs = g->seq;
	c->rcv_nxt = g->seq + 1;
	c->rcv_adv = c->rcv_nxt;
	c->last_ack_sent = c->rcv_nxt;
	tcp_open_syn_options(s, c, g);
	if (g->flags & TCP_ACK) {
		tcp_state_established(s, c, g, g->win); /* SYN window unscaled */
		c->flags |= TCP_CF_ACK_NOW;
		tcp_out_mark(s, c);
		if (g->len) { /* data on a SYN-ACK (RFC 9293 3.10.7.3) */
			tcp_reass_data(s, c, g->seq + 1, g->data, g->len);
			c->flags |= TCP_CF_ACK_NOW;
		}
		if ((g->flags & TCP_FIN) && g->seq + 1 + g->len == c->rcv_nxt)
			tcp_state_peer_fin(s, c);
		return;
	}
	/* simultaneous open: SYN-RECEIVED, send SYN-ACK (RFC 9293 3.5) */
	tcp_conn_set_state(s, c, TCPS_SYN_RECV);
	c->flags |= TCP_CF_SYN_OUT;
	c->snd_wnd = g->win;
	tcp_out_mark(s, c);
}

/* tcp_state_acceptable - RFC 9293 3.10.7.4 first: the four cases */
static bool tcp_state_acceptable(const struct net_stack *s,
				 const struct tcp_conn *c,
				 const struct tcp_seg *g)
{
	uint32_t wnd = tcp_rcv_space(s, c);
	uint32_t slen = g->len + ((g->flags & TCP_SYN) ? 1 : 0) +
			((g->flags & TCP_FIN) ? 1 : 0);

	/* the window we offered may exceed what is free only by rounding;
	 * accept up to the larger of the two */
	if (SEQ_GT(c->rcv_adv, c->rcv_nxt + wnd))
		wnd = c->rcv_adv - c->rcv_nxt;
	if (slen == 0) {
		if (wnd == 0)
			return g->seq == c->rcv_nxt;
		return SEQ_GEQ(g->seq, c->rcv_nxt) &&
		       SEQ_LT(g->seq, c->rcv_nxt + wnd);
	}
	if (wnd == 0)
		return false;
	return (SEQ_GEQ(g->seq, c->rcv_nxt) &&
		SEQ_LT(g->seq, c->rcv_nxt + wnd)) ||
	       (SEQ_GEQ(g->seq + slen - 1, c->rcv_nxt) &&
		SEQ_LT(g->seq + slen - 1, c->rcv_nxt + wnd));
}

/* tcp_state_trim - cut what lies before rcv_nxt or beyond the window */
static void tcp_state_trim(const struct net_stack *s, const struct tcp_conn *c,
			   struct tcp_seg *g)
{
	uint32_t wnd = tcp_rcv_space(s, c), room;

	if (SEQ_LT(g->seq, c->rcv_nxt)) {
		uint32_t d = c->rcv_nxt - g->seq;
		if (g->flags & TCP_SYN) {
			g->flags &= (uint8_t)~TCP_SYN;
			g->seq++;
			d--;
		}
		if (d > g->len) {
			d = g->len;
			g->flags &= (uint8_t)~TCP_FIN; /* FIN already seen */
		}
		g->data += d;
		g->len = (uint16_t)(g->len - d);
		g->seq += d;
	}
	room = SEQ_GT(c->rcv_nxt + wnd, g->seq) ? c->rcv_nxt + wnd - g->seq : 0;
	if (g->len > room) {
		g->len = (uint16_t)room;
		g->flags &= (uint8_t)~TCP_FIN;
	}
}

/* tcp_state_rst - RST accepted at exactly rcv_nxt (RFC 9293 / 5961 3.2) */
static void tcp_state_rst(struct net_stack *s, struct tcp_conn *c)
{
	struct tcp_state *t = s->tcp;
	int err = NET_ECONNRESET;

	t->st.rst_rx++;
	if (c->state == TCPS_SYN_RECV)
		err = NET_ECONNREFUSED; /* passive: silently freed */
	else
		t->st.resets_recv++;
	TCP_TEST_HOOK(reset, c);
	tcp_conn_finish(s, c, err);
}

/* tcp_state_ack - fifth step for synchronized states; false = drop */
static bool tcp_state_ack(struct net_stack *s, struct tcp_conn *c,
			  struct tcp_seg *g)
{
	uint32_t wnd = (uint32_t)g->win << c->snd_wscale;
	bool dup;
	uint32_t newly = 0;

	if (c->state == TCPS_SYN_RECV) {
		if (SEQ_LT(c->snd_una, g->ack) && SEQ_LEQ(g->ack, c->snd_max)) {
			tcp_state_established(s, c, g, wnd);
			return true;
		}
		tcp_output_reply_rst(s, g);
		return false;
	}
	if (SEQ_GT(g->ack, c->snd_max)) {
		/* acks something not yet sent: ACK and drop */
		c->flags |= TCP_CF_ACK_NOW;
		tcp_out_mark(s, c);
		return false;
	}
	if (SEQ_LT(g->ack, c->snd_una - c->max_snd_wnd) &&
	    SEQ_LT(g->ack, c->snd_una)) {
		tcp_state_challenge_ack(s, c); /* RFC 5961 5.2 */
		return false;
	}
	if (c->flags & TCP_CF_PERSIST)
		c->probes = 0; /* the peer answers: keep probing (3.8.6.1) */
	dup = g->ack == c->snd_una && g->len == 0 &&
	      !(g->flags & (TCP_SYN | TCP_FIN)) && wnd == c->snd_wnd &&
	      c->snd_max != c->snd_una && c->snd_wnd != 0;
	if (SEQ_GT(g->ack, c->snd_una)) {
		tcp_rtt_on_ack(s, c, g);
		tcp_state_ack_data(s, c, g->ack);
		if (tcp_conn_gone(c))
			return false;
	}
	if ((c->flags & TCP_CF_SACK) && g->n_sack)
		newly = tcp_cc_sack_update(s, c, g);
	if (dup || (newly && g->ack == c->snd_una && g->len == 0 &&
		    c->snd_max != c->snd_una))
		tcp_cc_dupack(s, c);
	tcp_state_window_update(s, c, g);
	return true;
}

/* tcp_state_input - a segment for a full connection that missed the fast
 * path (RFC 9293 3.10.7.3 / 3.10.7.4) */
void tcp_state_input(struct net_stack *s, struct tcp_conn *c,
		     struct tcp_seg *g)
{
	struct tcp_state *t = s->tcp;
	uint32_t orig_seq = g->seq;

	if (tcp_conn_gone(c))
		return;
	if (c->state == TCPS_SYN_SENT) {
		tcp_state_syn_sent(s, c, g);
		return;
	}
	/* RFC 7323 3.2 / 5.3: timestamps required once negotiated; PAWS */
	if ((c->flags & TCP_CF_TS) && !(g->flags & TCP_RST)) {
		if (!g->has_ts) {
			t->st.no_ts_drop++;
			return;
		}
		if ((int32_t)(g->tsval - c->ts_recent) < 0) {
			t->st.paws_drop++;
			c->flags |= TCP_CF_ACK_NOW;
			tcp_out_mark(s, c);
			return;
		}
	}
	/* duplicate SYN while in SYN-RECEIVED: resend the SYN-ACK */
	if (c->state == TCPS_SYN_RECV && (g->flags & TCP_SYN) &&
	    !(g->flags & (TCP_ACK | TCP_RST)) && g->seq == c->irs) {
		c->flags |= TCP_CF_SYN_OUT;
		tcp_out_mark(s, c);
		return;
	}
	/* simultaneous open: the peer's SYN-ACK repeats its SYN, which we
	 * already hold; drop the SYN bit so the ACK can complete (as BSD) */
	if (c->state == TCPS_SYN_RECV && (c->flags & TCP_CF_ACTIVE) &&
	    (g->flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK) &&
	    g->seq == c->irs) {
		g->flags &= (uint8_t)~TCP_SYN;
		g->seq++;
		orig_seq = g->seq;
	}
	if (!tcp_state_acceptable(s, c, g)) {
		if (g->flags & TCP_RST)
			return;
		t->st.out_of_window++;
		if (g->flags & TCP_SYN) {
			tcp_state_challenge_ack(s, c);
			return;
		}
		c->flags |= TCP_CF_ACK_NOW;
		tcp_out_mark(s, c);
		return;
	}
	if (g->flags & TCP_RST) {
		if (orig_seq == c->rcv_nxt)
			tcp_state_rst(s, c);
		else
			tcp_state_challenge_ack(s, c); /* RFC 5961 3.2 */
		return;
	}
	tcp_state_trim(s, c, g);
	if (g->flags & TCP_SYN) {
		tcp_state_challenge_ack(s, c); /* RFC 5961 4.2 */
		return;
	}
	if (!(g->flags & TCP_ACK))
		return;
	if (!tcp_state_ack(s, c, g))
		return;
	if (c->flags & TCP_CF_TS)
		tcp_input_ts_update(c, g);
	if (g->flags & TCP_URG)
		t->st.urg_ignored++; /* urgent data is delivered in line */
	if (g->len) {
		switch (c->state) {
		case TCPS_ESTABLISHED:
		case TCPS_FIN_WAIT1:
		case TCPS_FIN_WAIT2:
			if (c->flags & TCP_CF_APP_CLOSED) {
				/* nobody will read it: RFC 9293 3.10.4 */
				t->st.abort_on_data++;
				tcp_output_rst(s, c);
				tcp_conn_finish(s, c, 0);
				return;
			}
			tcp_reass_data(s, c, g->seq, g->data, g->len);
			break;
		default:
			t->st.rx_data_dropped++; /* after the peer's FIN */
			break;
		}
	}
	if (g->flags & TCP_FIN) {
		uint32_t fs = g->seq + g->len;
		if (fs == c->rcv_nxt) {
			tcp_state_peer_fin(s, c);
		} else if (SEQ_GT(fs, c->rcv_nxt) &&
			   !(c->flags & TCP_CF_PEER_FIN)) {
			c->flags |= TCP_CF_FIN_OOO;
			c->fin_seq = fs;
			c->flags |= TCP_CF_ACK_NOW;
			tcp_out_mark(s, c);
		}
	}
	if (!tcp_conn_gone(c))
		tcp_reass_fin_check(s, c);
}
