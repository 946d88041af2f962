/*
 * tcp_timer.c - hashed timer wheel and the per-connection timers.
 *
 * Time comes only from s->now (microseconds); the wheel ticks in
 * milliseconds over TCP_WHEEL_SLOTS slots (doubly linked lists through
 * tcp_conn.t_next/t_prev, plus a bitmap of non-empty slots). A connection
 * has three deadlines (rto_at: retransmission, SYN or persist timer;
 * delack_at; fw2_at) and sits in the wheel once, at the tick of the
 * earliest one. Moving a deadline later leaves the entry where it is: it
 * fires early, finds nothing due and re-links itself (lazy re-arm, so an
 * ACK restarting the RTO costs no list surgery). Entries further away
 * than one revolution are simply revisited each revolution.
 * TIME_WAIT expiry is a FIFO (tcp_timewait.c), driven from tcp_timers too.
 *
 * Invariant (tcp_timer_check_conn): every live conn with a deadline is
 * linked at a tick no later than that deadline, and past the last tick
 * processed.
 */
#include <stdio.h>

#include "tcp.h"

#define TCP_WHEEL_MASK (TCP_WHEEL_SLOTS - 1)

/* tcp_timer_link - put c into the slot of tick */
static void tcp_timer_link(struct tcp_state *t, struct tcp_conn *c,
			   uint64_t tick)
{
	uint32_t slot = (uint32_t)(tick & TCP_WHEEL_MASK);
	uint32_t idx = tcp_conn_idx(t, c);

	c->t_at = tick;
	c->t_prev = TCP_NIL;
	c->t_next = t->wslot[slot];
	if (c->t_next != TCP_NIL)
		t->conns[c->t_next].t_prev = idx;
	t->wslot[slot] = idx;
	t->wbits[slot >> 6] |= 1ULL << (slot & 63);
	c->flags |= TCP_CF_IN_WHEEL;
	t->n_wheel++;
}

/* tcp_timer_unlink - take c out of the wheel (no-op if not linked) */
void tcp_timer_unlink(struct net_stack *s, struct tcp_conn *c)
{
	struct tcp_state *t = s->tcp;
	uint32_t slot;

	if (!(c->flags & TCP_CF_IN_WHEEL))
		return;
	slot = (uint32_t)(c->t_at & TCP_WHEEL_MASK);
	if (c->t_prev != TCP_NIL)
		t->conns[c->t_prev].t_next = c->t_next;
	else
		t->wslot[slot] = c->t_next;
	if (c->t_next != TCP_NIL)
		t->conns[c->t_next].t_prev = c->t_prev;
	if (t->wslot[slot] == TCP_NIL)
		t->wbits[slot >> 6] &= ~(1ULL << (slot & 63));
	c->t_next = c->t_prev = TCP_NIL;
	c->flags &= ~TCP_CF_IN_WHEEL;
	t->n_wheel--;
}

/* tcp_timer_min - earliest armed deadline of c in us, 0 if none */
static uint64_t tcp_timer_min(const struct tcp_conn *c)
{
	uint64_t m = 0;

	if (c->rto_at)
		m = c->rto_at;
	if (c->delack_at && (!m || c->delack_at < m))
		m = c->delack_at;
	if (c->fw2_at && (!m || c->fw2_at < m))
		m = c->fw2_at;
	return m;
}

/* tcp_timer_update - (re)link c according to its deadlines */
void tcp_timer_update(struct net_stack *s, struct tcp_conn *c)
{
	struct tcp_state *t = s->tcp;
	uint64_t m = tcp_timer_min(c), tick;

	if (m == 0) {
		tcp_timer_unlink(s, c);
		return;
	}
	tick = (m + 999) / 1000;
	if (tick <= t->wtick)
		tick = t->wtick + 1;
	if (c->flags & TCP_CF_IN_WHEEL) {
		if (c->t_at <= tick)
			return; /* fires early and re-arms itself */
		tcp_timer_unlink(s, c);
	}
	tcp_timer_link(t, c, tick);
}

/* tcp_timer_rto_start - arm the retransmission timer unless running */
void tcp_timer_rto_start(struct net_stack *s, struct tcp_conn *c)
{
	if (c->rto_at && !(c->flags & TCP_CF_PERSIST))
		return;
	c->flags &= ~TCP_CF_PERSIST;
	c->rto_at = s->now + tcp_rto_us(s, c);
	tcp_timer_update(s, c);
}

/* tcp_timer_rto_restart - RFC 6298 5.3: restart on ACK of new data */
void tcp_timer_rto_restart(struct net_stack *s, struct tcp_conn *c)
{
	c->flags &= ~TCP_CF_PERSIST;
	c->rto_at = s->now + tcp_rto_us(s, c);
	tcp_timer_update(s, c);
}

/* tcp_timer_rto_stop - RFC 6298 5.2: all data acknowledged */
void tcp_timer_rto_stop(struct net_stack *s, struct tcp_conn *c)
{
	c->rto_at = 0;
	c->flags &= ~TCP_CF_PERSIST;
	tcp_timer_update(s, c);
}

/* tcp_timer_persist_start - RFC 9293 3.8.6.1 zero-window probing */
void tcp_timer_persist_start(struct net_stack *s, struct tcp_conn *c)
{
	if ((c->flags & TCP_CF_PERSIST) && c->rto_at)
		return;
	c->flags |= TCP_CF_PERSIST;
	c->rto_at = s->now + tcp_rto_us(s, c);
	tcp_timer_update(s, c);
}

/* tcp_timer_delack - arm the delayed-ACK timer (RFC 9293 3.8.6.3) */
void tcp_timer_delack(struct net_stack *s, struct tcp_conn *c)
{
	if (c->delack_at)
		return;
	c->delack_at = s->now + (uint64_t)s->cfg.delack_ms * 1000;
	tcp_timer_update(s, c);
}

/* tcp_timer_syn - SYN / SYN-ACK retransmission, RFC 6298 5.7 backoff */
static void tcp_timer_syn(struct net_stack *s, struct tcp_conn *c)
{
	if (++c->retries > s->cfg.syn_retries) {
		s->tcp->st.conn_timeouts++;
		if (c->flags & TCP_CF_ACTIVE)
			s->tcp->st.connect_fail++;
		tcp_conn_finish(s, c, NET_ETIMEDOUT);
		return;
	}
	if (c->rto_shift < 15)
		c->rto_shift++;
	c->flags &= ~TCP_CF_RTT_TIMING;
	c->flags |= TCP_CF_SYN_OUT;
	s->tcp->st.syn_retransmits++;
	c->rto_at = s->now + tcp_rto_us(s, c);
	TCP_TEST_HOOK(retransmit, c);
	tcp_out_mark(s, c);
}

/* tcp_timer_rto - RFC 6298 5.4-5.6: retransmit from snd_una, back off */
static void tcp_timer_rto(struct net_stack *s, struct tcp_conn *c)
{
	if (c->snd_una == c->snd_max)
		return; /* nothing outstanding: stale */
	if (++c->retries > s->cfg.data_retries) {
		s->tcp->st.conn_timeouts++;
		tcp_output_rst(s, c);
		tcp_conn_finish(s, c, NET_ETIMEDOUT);
		return;
	}
	s->tcp->st.rto_timeouts++;
	tcp_cc_rto(s, c);
	c->snd_nxt = c->snd_una;
	if (c->rto_shift < 15)
		c->rto_shift++;
	c->flags &= ~TCP_CF_RTT_TIMING;
	c->rto_at = s->now + tcp_rto_us(s, c);
	TCP_TEST_HOOK(loss, c);
	tcp_out_mark(s, c);
}

/* tcp_timer_persist - send a window probe, back off (never gives up while
 * the peer answers; data_retries unanswered probes abort) */
static void tcp_timer_persist(struct net_stack *s, struct tcp_conn *c)
{
	s->tcp->st.persist_timeouts++;
	if (c->snd_wnd != 0 || (tcp_unsent(c) == 0 && c->snd_una == c->snd_nxt)) {
		c->flags &= ~TCP_CF_PERSIST;
		tcp_out_mark(s, c);
		return;
	}
	if (++c->probes > s->cfg.data_retries) {
		s->tcp->st.conn_timeouts++;
		tcp_output_rst(s, c);
		tcp_conn_finish(s, c, NET_ETIMEDOUT);
		return;
	}
	c->flags |= TCP_CF_FORCE_PROBE;
	if (c->rto_shift < 15)
		c->rto_shift++;
	c->rto_at = s->now + tcp_rto_us(s, c);
	tcp_out_mark(s, c);
}

/* tcp_timer_fire - run every due deadline of c, then re-link it */
static void tcp_timer_fire(struct net_stack *s, struct tcp_conn *c)
{
	uint64_t now = s->now;

	if (c->delack_at && c->delack_at <= now) {
		c->delack_at = 0;
		if (c->last_ack_sent != c->rcv_nxt ||
		    (c->flags & TCP_CF_ACK_NOW)) {
			c->flags |= TCP_CF_ACK_NOW;
			s->tcp->st.delayed_acks++;
			tcp_out_mark(s, c);
		}
	}
	if (c->fw2_at && c->fw2_at <= now) {
		c->fw2_at = 0;
		if (c->state == TCPS_FIN_WAIT2 &&
		    (c->flags & TCP_CF_APP_CLOSED)) {
			s->tcp->st.fin_wait2_timeouts++;
			tcp_output_rst(s, c);
			tcp_conn_finish(s, c, 0);
			return;
		}
	}
	if (c->rto_at && c->rto_at <= now) {
		c->rto_at = 0;
		if (c->flags & TCP_CF_PERSIST)
			tcp_timer_persist(s, c);
		else if (c->state == TCPS_SYN_SENT || c->state == TCPS_SYN_RECV)
			tcp_timer_syn(s, c);
		else
			tcp_timer_rto(s, c);
		if (tcp_conn_gone(c))
			return;
	}
	tcp_timer_update(s, c);
}

/* tcp_timers - advance the wheel to s->now and run what is due */
void tcp_timers(struct net_stack *s)
{
	struct tcp_state *t = s->tcp;
	uint64_t now_tick = s->now / 1000, old = t->wtick, ticks;

	tcp_tw_expire(s);
	if (now_tick <= old)
		return;
	ticks = now_tick - old;
	if (ticks > TCP_WHEEL_SLOTS)
		ticks = TCP_WHEEL_SLOTS;
	t->wtick = now_tick;
	for (uint64_t k = 1; k <= ticks; k++) {
		uint32_t slot = (uint32_t)((old + k) & TCP_WHEEL_MASK);
		uint32_t i;

		if (!(t->wbits[slot >> 6] & (1ULL << (slot & 63))))
			continue;
		i = t->wslot[slot];
		t->wslot[slot] = TCP_NIL;
		t->wbits[slot >> 6] &= ~(1ULL << (slot & 63));
		while (i != TCP_NIL) {
			struct tcp_conn *c = &t->conns[i];
			uint32_t next = c->t_next;

			c->flags &= ~TCP_CF_IN_WHEEL;
			c->t_next = c->t_prev = TCP_NIL;
			t->n_wheel--;
			if (c->t_at <= now_tick)
				tcp_timer_fire(s, c);
			else
				tcp_timer_link(t, c, c->t_at);
			i = next;
		}
	}
}

/* tcp_next_deadline - earliest wheel tick or TIME_WAIT expiry (us); "now"
 * when output is pending so the caller polls again at once */
uint64_t tcp_next_deadline(const struct net_stack *s)
{
	const struct tcp_state *t = s->tcp;
	uint64_t best, m = UINT64_MAX;

	if (t == NULL)
		return UINT64_MAX;
	if (t->out_head != TCP_NIL)
		return s->now;
	best = tcp_tw_next_deadline(s);
	if (t->n_wheel == 0)
		return best;
	for (uint32_t k = 1; k <= TCP_WHEEL_SLOTS; k++) {
		uint64_t tick = t->wtick + k;
		uint32_t slot = (uint32_t)(tick & TCP_WHEEL_MASK);
		bool found = false;

		if ((slot & 63) == 0 && t->wbits[slot >> 6] == 0) {
			k += 63;
			continue;
		}
		if (!(t->wbits[slot >> 6] & (1ULL << (slot & 63))))
			continue;
		for (uint32_t i = t->wslot[slot]; i != TCP_NIL;
		     i = t->conns[i].t_next) {
			uint64_t at = t->conns[i].t_at;
			if (at < m)
				m = at;
			if (at <= tick)
				found = true;
		}
		if (found)
			break;
	}
	if (m != UINT64_MAX && m * 1000 < best)
		best = m * 1000;
	return best;
}

/* tcp_timer_check_conn - c's deadlines are covered by its wheel entry */
int tcp_timer_check_conn(const struct net_stack *s, const struct tcp_conn *c,
			 char *why, size_t n)
{
	const struct tcp_state *t = s->tcp;
	uint64_t m = tcp_timer_min(c), lim;
	uint32_t idx = tcp_conn_idx(t, c);

	if (!(c->flags & TCP_CF_IN_WHEEL)) {
		if (m != 0 && why)
			snprintf(why, n, "conn %u: deadline %llu not in wheel",
				 idx, (unsigned long long)m);
		return m != 0 ? -1 : 0;
	}
	if (c->t_at <= t->wtick) {
		if (why)
			snprintf(why, n, "conn %u: wheel tick %llu overdue", idx,
				 (unsigned long long)c->t_at);
		return -1;
	}
	lim = (m + 999) / 1000;
	if (lim <= t->wtick)
		lim = t->wtick + 1;
	if (m != 0 && c->t_at > lim) {
		if (why)
			snprintf(why, n, "conn %u: linked at %llu after deadline",
				 idx, (unsigned long long)c->t_at);
		return -1;
	}
	if (c->t_prev == TCP_NIL
		    ? t->wslot[c->t_at & TCP_WHEEL_MASK] != idx
		    : t->conns[c->t_prev].t_next != idx) {
		if (why)
			snprintf(why, n, "conn %u: wheel links broken", idx);
		return -1;
	}
	return 0;
}
