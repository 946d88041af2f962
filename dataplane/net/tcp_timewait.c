/*
 * tcp_timewait.c - compact TIME_WAIT table (RFC 9293 3.6.1, 3.10.7.4).
 *
 * A connection entering TIME_WAIT leaves a small struct tcp_tw here and
 * its full struct tcp_conn is released. Entries sit in a bounded pool
 * (cfg.timewait_max) with their own keyed hash (same mix as the flow
 * table) and an expiry-ordered FIFO: every entry lives 2*MSL, so the FIFO
 * head is always the next to expire and, when the pool is full, the
 * oldest entry is recycled (counted in tcp.timewait.recycled).
 *
 * Input handling: a retransmitted FIN is ACKed and restarts 2*MSL (the
 * entry moves to the FIFO tail); other text gets an ACK; RSTs are ignored
 * (RFC 1337 TIME-WAIT assassination hazard); PAWS applies (RFC 7323 5.3).
 * A new SYN may reuse the 4-tuple (RFC 6191): with timestamps when its
 * TSval is newer than TS.Recent, without when its sequence number is above
 * RCV.NXT; the entry is then dropped and the SYN goes to the listener.
 */
#include <stdio.h>

#include "tcp.h"

/* tcp_tw_bucket - hash bucket of a 4-tuple */
static uint32_t tcp_tw_bucket(const struct tcp_state *t, uint32_t laddr,
			      uint32_t raddr, uint16_t lport, uint16_t rport)
{
	return tcp_flow_hash(t, laddr, raddr, lport, rport) & t->twmask;
}

/* tcp_tw_fifo_append - link entry i at the FIFO tail */
static void tcp_tw_fifo_append(struct tcp_state *t, uint32_t i)
{
	struct tcp_tw *w = &t->tw[i];

	w->next = TCP_NIL;
	w->prev = t->tw_tail;
	if (t->tw_tail != TCP_NIL)
		t->tw[t->tw_tail].next = i;
	else
		t->tw_head = i;
	t->tw_tail = i;
}

/* tcp_tw_fifo_unlink - take entry i out of the FIFO */
static void tcp_tw_fifo_unlink(struct tcp_state *t, uint32_t i)
{
	struct tcp_tw *w = &t->tw[i];

	if (w->prev != TCP_NIL)
		t->tw[w->prev].next = w->next;
	else
		t->tw_head = w->next;
	if (w->next != TCP_NIL)
		t->tw[w->next].prev = w->prev;
	else
		t->tw_tail = w->prev;
	w->prev = w->next = TCP_NIL;
}

/* tcp_tw_remove - free an entry (hash, FIFO, back to the free list) */
void tcp_tw_remove(struct net_stack *s, struct tcp_tw *w)
{
	struct tcp_state *t = s->tcp;
	uint32_t i = (uint32_t)(w - t->tw);
	uint32_t *pp = &t->twbuckets[tcp_tw_bucket(t, w->laddr, w->raddr,
						   w->lport, w->rport)];

	if (!w->used)
		return;
	for (; *pp != TCP_NIL; pp = &t->tw[*pp].hnext) {
		if (*pp == i) {
			*pp = w->hnext;
			break;
		}
	}
	tcp_tw_fifo_unlink(t, i);
	w->used = 0;
	w->hnext = t->tw_free;
	t->tw_free = i;
	t->tw_used--;
}

/* tcp_tw_expiry - now + 2*MSL, never before the FIFO tail (keeps the
 * FIFO sorted even if the caller's clock steps back) */
static uint64_t tcp_tw_expiry(const struct net_stack *s)
{
	const struct tcp_state *t = s->tcp;
	uint64_t e = s->now + 2ull * s->cfg.msl_ms * 1000;

	if (t->tw_tail != TCP_NIL && t->tw[t->tw_tail].expiry > e)
		e = t->tw[t->tw_tail].expiry;
	return e;
}

/* tcp_tw_enter - record c's TIME_WAIT; -1 if the table is disabled */
int tcp_tw_enter(struct net_stack *s, struct tcp_conn *c)
{
	struct tcp_state *t = s->tcp;
	struct tcp_tw *w;
	uint32_t i, b, win;

	if (t->ntw == 0)
		return -1;
	if (t->tw_free == TCP_NIL) {
		t->st.tw_recycled++;
		tcp_tw_remove(s, &t->tw[t->tw_head]);
	}
	i = t->tw_free;
	w = &t->tw[i];
	t->tw_free = w->hnext;
	w->laddr = c->laddr;
	w->raddr = c->raddr;
	w->lport = c->lport;
	w->rport = c->rport;
	w->snd_nxt = c->snd_max;
	w->rcv_nxt = c->rcv_nxt;
	w->ts_recent = c->ts_recent;
	w->ts_off = c->ts_off;
	w->ts_ok = (c->flags & TCP_CF_TS) ? 1 : 0;
	win = (s->cfg.rcvbuf - c->rcv_len) >> c->rcv_wscale;
	w->win = (uint16_t)(win > 65535 ? 65535 : win);
	w->used = 1;
	w->expiry = tcp_tw_expiry(s);
	b = tcp_tw_bucket(t, w->laddr, w->raddr, w->lport, w->rport);
	w->hnext = t->twbuckets[b];
	t->twbuckets[b] = i;
	tcp_tw_fifo_append(t, i);
	t->tw_used++;
	t->st.tw_created++;
	return 0;
}

/* tcp_tw_lookup - TIME_WAIT entry of a 4-tuple, or NULL */
struct tcp_tw *tcp_tw_lookup(struct net_stack *s, uint32_t laddr,
			     uint32_t raddr, uint16_t lport, uint16_t rport)
{
	struct tcp_state *t = s->tcp;
	uint32_t i;

	if (t->ntw == 0)
		return NULL;
	i = t->twbuckets[tcp_tw_bucket(t, laddr, raddr, lport, rport)];
	while (i != TCP_NIL) {
		struct tcp_tw *w = &t->tw[i];
		if (w->rport == rport && w->lport == lport &&
		    w->raddr == raddr && w->laddr == laddr)
			return w;
		i = w->hnext;
	}
	return NULL;
}

/* tcp_tw_ack - answer from a TIME_WAIT entry */
static void tcp_tw_ack(struct net_stack *s, const struct tcp_tw *w)
{
	struct tcp_txopt o = { 0 };

	if (w->ts_ok) {
		o.ts = 1;
		o.tsval = tcp_now_ms(s) + w->ts_off;
		o.tsecr = w->ts_recent;
	}
	s->tcp->st.tw_acks++;
	tcp_output_raw(s, w->laddr, w->raddr, w->lport, w->rport, w->snd_nxt,
		       w->rcv_nxt, TCP_ACK, w->win, &o, NULL, 0, 0);
}

/* tcp_tw_input - a segment for a TIME_WAIT 4-tuple; 1 = entry dropped,
 * pass the (SYN) segment on to the listener */
int tcp_tw_input(struct net_stack *s, struct tcp_tw *w,
		 const struct tcp_seg *g)
{
	struct tcp_state *t = s->tcp;
	bool ts_newer = w->ts_ok && g->has_ts &&
			(int32_t)(g->tsval - w->ts_recent) > 0;

	if (g->flags & TCP_RST) {
		t->st.tw_rst_ignored++;
		return 0;
	}
	if ((g->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
		if (ts_newer || ((!w->ts_ok || !g->has_ts) &&
				 SEQ_GT(g->seq, w->rcv_nxt))) {
			t->st.tw_reused++;
			tcp_tw_remove(s, w);
			return 1;
		}
		tcp_tw_ack(s, w);
		return 0;
	}
	if (w->ts_ok && g->has_ts && (int32_t)(g->tsval - w->ts_recent) < 0) {
		t->st.paws_drop++;
		tcp_tw_ack(s, w);
		return 0;
	}
	if (w->ts_ok && g->has_ts && ts_newer)
		w->ts_recent = g->tsval;
	if (g->flags & TCP_FIN) {
		uint32_t i = (uint32_t)(w - t->tw);
		tcp_tw_ack(s, w);
		tcp_tw_fifo_unlink(t, i);
		w->expiry = tcp_tw_expiry(s);
		tcp_tw_fifo_append(t, i);
		return 0;
	}
	if (g->len || (g->flags & TCP_SYN))
		tcp_tw_ack(s, w);
	return 0;
}

/* tcp_tw_expire - drop entries whose 2*MSL is over */
void tcp_tw_expire(struct net_stack *s)
{
	struct tcp_state *t = s->tcp;

	while (t->tw_head != TCP_NIL && t->tw[t->tw_head].expiry <= s->now)
		tcp_tw_remove(s, &t->tw[t->tw_head]);
}

/* tcp_tw_next_deadline - expiry of the oldest entry */
uint64_t tcp_tw_next_deadline(const struct net_stack *s)
{
	const struct tcp_state *t = s->tcp;

	return t->tw_head == TCP_NIL ? UINT64_MAX : t->tw[t->tw_head].expiry;
}

/* tcp_tw_check - pool accounting, FIFO order and hash membership */
int tcp_tw_check(const struct net_stack *s, char *why, size_t n)
{
	const struct tcp_state *t = s->tcp;
	uint32_t cnt = 0, nfree = 0;
	uint64_t last = 0;

	for (uint32_t i = t->tw_head; i != TCP_NIL; i = t->tw[i].next) {
		const struct tcp_tw *w = &t->tw[i];
		if (i >= t->ntw || ++cnt > t->ntw || !w->used) {
			if (why)
				snprintf(why, n, "timewait fifo corrupt");
			return -1;
		}
		if (w->expiry < last) {
			if (why)
				snprintf(why, n, "timewait fifo out of order");
			return -1;
		}
		last = w->expiry;
		if (tcp_tw_lookup((struct net_stack *)s, w->laddr, w->raddr,
				  w->lport, w->rport) != w) {
			if (why)
				snprintf(why, n, "timewait entry not hashed");
			return -1;
		}
	}
	for (uint32_t i = t->tw_free; i != TCP_NIL; i = t->tw[i].hnext) {
		if (i >= t->ntw || ++nfree > t->ntw || t->tw[i].used) {
			if (why)
				snprintf(why, n, "timewait free list corrupt");
			return -1;
		}
	}
	if (cnt != t->tw_used || cnt + nfree != t->ntw) {
		if (why)
			snprintf(why, n, "timewait used %u fifo %u free %u max %u",
				 t->tw_used, cnt, nfree, t->ntw);
		return -1;
	}
	return 0;
}
