/*
 * tcp_core.c - the TCP module's lifetime, pools, connection lifecycle,
 * event queue, counters and invariant checks.
 *
 * Inputs: net_stack configuration at tcp_create. Outputs: struct tcp_state
 * with every pool allocated up front (no allocation afterwards), counters.
 *
 * Connection lifecycle:
 *   alloc (SYN_RECV / SYN_SENT) -> ... -> tcp_conn_finish (protocol over:
 *   unhashed, timers off, state CLOSED, TCP_CF_DONE) -> if the app never saw
 *   the handle, freed at once; otherwise NET_EV_CLOSED is queued (at once
 *   after an error or once the app has called net_close; an orderly end
 *   keeps the handle until net_close) and the slot is freed when
 *   net_events hands that event out. Handles carry a generation so a stale
 *   handle never reaches a reused slot.
 * Output and event lists are intrusive FIFOs; a slot freed while still
 * linked keeps its link flag, and the consumers skip entries with nothing
 * to do, so neither list needs unlinking from the middle.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <stdarg.h>

#include "tcp.h"
#include "siphash.h"

#define TCP_GEN_MASK 0xfffu

#ifdef SLUICE_TEST_HOOKS
/* tcp_test_hook - default no-op; tests override it with a strong symbol */
__attribute__((weak)) void tcp_test_hook(const char *name,
					 const struct tcp_conn *c)
{
	(void)name;
	(void)c;
}
#endif

/* tcp_create - allocate every TCP pool for one stack; NULL on bad config */
struct tcp_state *tcp_create(struct net_stack *s)
{
	const struct net_config *cfg = &s->cfg;
	struct tcp_state *t;
	size_t per, total;

	if (cfg->max_conns == 0 || cfg->max_conns >= 0xfffffu ||
	    cfg->rcvbuf < 512 || cfg->sndbuf < 512 ||
	    cfg->rcvbuf > (1u << 30) || cfg->sndbuf > (1u << 30) ||
	    cfg->mtu < 68 + 20 || cfg->max_listeners > 65536)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->nconns = cfg->max_conns;
	t->conns = calloc(t->nconns, sizeof(*t->conns));
	per = (size_t)cfg->sndbuf + cfg->rcvbuf;
	total = per * t->nconns;
	t->bufmem = malloc(total);
	{
		uint32_t nb = 16;
		while (nb < 2 * t->nconns)
			nb <<= 1;
		t->fbuckets = malloc(nb * sizeof(uint32_t));
		t->fmask = nb - 1;
	}
	t->nlisteners = cfg->max_listeners;
	t->listeners = calloc(t->nlisteners ? t->nlisteners : 1,
			      sizeof(*t->listeners));
	t->ntw = cfg->timewait_max;
	t->tw = calloc(t->ntw ? t->ntw : 1, sizeof(*t->tw));
	{
		uint32_t nb = 16;
		while (nb < 2 * t->ntw)
			nb <<= 1;
		t->twbuckets = malloc(nb * sizeof(uint32_t));
		t->twmask = nb - 1;
	}
	if (!t->conns || !t->bufmem || !t->fbuckets || !t->listeners ||
	    !t->tw || !t->twbuckets) {
		free(t->conns);
		free(t->bufmem);
		free(t->fbuckets);
		free(t->listeners);
		free(t->tw);
		free(t->twbuckets);
		free(t);
		return NULL;
	}
	for (uint32_t i = 0; i < t->nconns; i++) {
		struct tcp_conn *c = &t->conns[i];
		c->snd_buf = t->bufmem + per * i;
		c->rcv_buf = c->snd_buf + cfg->sndbuf;
		c->hnext = i + 1 < t->nconns ? i + 1 : TCP_NIL;
		c->out_next = c->ev_next = c->t_next = c->t_prev = TCP_NIL;
	}
	t->free_head = 0;
	t->n_free = t->nconns;
	for (uint32_t i = 0; i <= t->fmask; i++)
		t->fbuckets[i] = TCP_NIL;
	for (uint32_t i = 0; i <= t->twmask; i++)
		t->twbuckets[i] = TCP_NIL;
	for (uint32_t i = 0; i < t->ntw; i++) {
		t->tw[i].hnext = i + 1 < t->ntw ? i + 1 : TCP_NIL;
		t->tw[i].prev = t->tw[i].next = TCP_NIL;
	}
	t->tw_free = t->ntw ? 0 : TCP_NIL;
	t->tw_head = t->tw_tail = TCP_NIL;
	for (uint32_t i = 0; i < TCP_WHEEL_SLOTS; i++)
		t->wslot[i] = TCP_NIL;
	t->wtick = s->now / 1000;
	t->out_head = t->out_tail = TCP_NIL;
	t->ev_head = t->ev_tail = TCP_NIL;

	memcpy(t->isn_key, cfg->secret, 16);
	memcpy(t->cookie_key, cfg->secret + 16, 16);
	{
		static const char tag[] = "sluice-tcp-flow-hash-key";
		uint64_t a = siphash_24(cfg->secret, tag, sizeof(tag));
		uint64_t b = siphash_24(cfg->secret + 16, tag, sizeof(tag));
		t->hkey0 = a | 1;
		t->hkey1 = b;
		t->eph_next = (uint16_t)(a >> 40);
	}
	t->rcv_wscale = 0;
	while (t->rcv_wscale < 14 && (cfg->rcvbuf >> t->rcv_wscale) > 65535)
		t->rcv_wscale++;
	t->mss_local = (uint16_t)(cfg->mtu - 40);
	return t;
}

/* tcp_destroy - RST every synchronized connection, free all pools */
void tcp_destroy(struct net_stack *s)
{
	struct tcp_state *t = s->tcp;

	if (t == NULL)
		return;
	for (uint32_t i = 0; i < t->nconns; i++) {
		struct tcp_conn *c = &t->conns[i];
		if (!(c->flags & TCP_CF_USED) || (c->flags & TCP_CF_DONE))
			continue;
		if (c->state >= TCPS_SYN_RECV && c->state <= TCPS_LAST_ACK)
			tcp_output_rst(s, c);
	}
	free(t->conns);
	free(t->bufmem);
	free(t->fbuckets);
	free(t->listeners);
	free(t->tw);
	free(t->twbuckets);
	free(t);
	s->tcp = NULL;
}

/* tcp_free_conns - connections left in the pool */
uint32_t tcp_free_conns(const struct net_stack *s)
{
	return s->tcp->n_free;
}

/* tcp_conn_alloc - take a zeroed connection from the pool, or NULL */
struct tcp_conn *tcp_conn_alloc(struct net_stack *s)
{
	struct tcp_state *t = s->tcp;
	struct tcp_conn *c;
	uint8_t *sb, *rb;
	uint32_t keep, out_next, ev_next;
	uint16_t gen;

	if (t->free_head == TCP_NIL)
		return NULL;
	c = &t->conns[t->free_head];
	t->free_head = c->hnext;
	t->n_free--;
	sb = c->snd_buf;
	rb = c->rcv_buf;
	keep = c->flags & (TCP_CF_IN_OUTQ | TCP_CF_IN_EVQ);
	out_next = c->out_next;
	ev_next = c->ev_next;
	gen = c->gen;
	memset(c, 0, sizeof(*c));
	c->snd_buf = sb;
	c->rcv_buf = rb;
	c->flags = keep | TCP_CF_USED;
	c->out_next = out_next;
	c->ev_next = ev_next;
	c->gen = (uint16_t)((gen + 1) & TCP_GEN_MASK);
	c->hnext = c->t_next = c->t_prev = TCP_NIL;
	c->listener = UINT16_MAX;
	return c;
}

/* tcp_conn_free - return a connection to the pool (unlinks hash/wheel) */
void tcp_conn_free(struct net_stack *s, struct tcp_conn *c)
{
	struct tcp_state *t = s->tcp;

	if (!(c->flags & TCP_CF_USED))
		return;
	tcp_timer_unlink(s, c);
	tcp_flow_remove(s, c);
	if ((c->flags & TCP_CF_SYNQ) && c->listener < t->nlisteners &&
	    t->listeners[c->listener].syn_recv > 0)
		t->listeners[c->listener].syn_recv--;
	c->flags &= TCP_CF_IN_OUTQ | TCP_CF_IN_EVQ;
	c->state = TCPS_CLOSED;
	c->ev_pending = 0;
	c->user = NULL;
	/* gen is bumped at the next alloc: until then the old handle reads
	 * as a closed socket (tcp_sock.c), afterwards it is stale */
	c->hnext = t->free_head;
	t->free_head = tcp_conn_idx(t, c);
	t->n_free++;
}

/* tcp_conn_set_state - state transition (test hook point) */
void tcp_conn_set_state(struct net_stack *s, struct tcp_conn *c, int st)
{
	(void)s;
	c->state = (uint8_t)st;
	TCP_TEST_HOOK(state_change, c);
}

/* tcp_conn_finish - the protocol side is over (RFC 9293 "delete the TCB"):
 * unhash, stop timers, then free or hand NET_EV_CLOSED(err) to the app */
void tcp_conn_finish(struct net_stack *s, struct tcp_conn *c, int err)
{
	if (c->flags & TCP_CF_DONE)
		return;
	tcp_timer_unlink(s, c);
	tcp_flow_remove(s, c);
	c->rto_at = c->delack_at = c->fw2_at = 0;
	if ((c->flags & TCP_CF_SYNQ) && c->listener < s->tcp->nlisteners &&
	    s->tcp->listeners[c->listener].syn_recv > 0)
		s->tcp->listeners[c->listener].syn_recv--;
	c->flags &= ~TCP_CF_SYNQ;
	tcp_conn_set_state(s, c, TCPS_CLOSED);
	c->flags |= TCP_CF_DONE;
	c->ev_error = err;
	c->snd_len = 0;
	c->n_ooo = 0;
	if (!(c->flags & TCP_CF_APP_SEEN)) {
		tcp_conn_free(s, c);
		return;
	}
	if (err != 0)
		c->rcv_len = 0; /* a reset connection's unread data is gone */
	if ((c->flags & TCP_CF_APP_CLOSED) || err != 0)
		tcp_ev_post(s, c, NET_EV_CLOSED);
	/* else: an orderly end keeps the handle (unread data, end of stream)
	 * until the app calls net_close, which posts CLOSED(0) */
}

/* tcp_fifo_append - append c to an intrusive FIFO of conn indices whose
 * link field sits at next_off in struct tcp_conn (event or output list) */
static void tcp_fifo_append(struct tcp_state *t, struct tcp_conn *c,
			    uint32_t *head, uint32_t *tail, size_t next_off)
{
	uint32_t i = tcp_conn_idx(t, c);

	*(uint32_t *)((char *)c + next_off) = TCP_NIL;
	if (*tail == TCP_NIL)
		*head = i;
	else
		*(uint32_t *)((char *)&t->conns[*tail] + next_off) = i;
	*tail = i;
}

/* tcp_ev_post - add events to a socket and queue it on the ready list */
void tcp_ev_post(struct net_stack *s, struct tcp_conn *c, uint32_t ev)
{
	struct tcp_state *t = s->tcp;

	if (ev & NET_EV_ACCEPTED)
		c->flags |= TCP_CF_APP_SEEN;
	if (!(c->flags & TCP_CF_APP_SEEN))
		return;
	if (c->flags & TCP_CF_APP_CLOSED)
		ev &= NET_EV_CLOSED;
	if (ev & NET_EV_CLOSED) {
		if (c->flags & TCP_CF_CLOSED_EV)
			ev &= ~NET_EV_CLOSED;
		else
			c->flags |= TCP_CF_CLOSED_EV;
	}
	if (ev == 0)
		return;
	c->ev_pending |= ev;
	if (c->flags & TCP_CF_IN_EVQ)
		return;
	c->flags |= TCP_CF_IN_EVQ;
	tcp_fifo_append(t, c, &t->ev_head, &t->ev_tail,
			offsetof(struct tcp_conn, ev_next));
}

/* tcp_out_mark - queue a connection for tcp_flush */
void tcp_out_mark(struct net_stack *s, struct tcp_conn *c)
{
	struct tcp_state *t = s->tcp;

	if (c->flags & TCP_CF_IN_OUTQ)
		return;
	c->flags |= TCP_CF_IN_OUTQ;
	tcp_fifo_append(t, c, &t->out_head, &t->out_tail,
			offsetof(struct tcp_conn, out_next));
}

/* tcp_conn_set_mss - payload per segment: min(peer MSS, mtu-40) - opts */
void tcp_conn_set_mss(struct net_stack *s, struct tcp_conn *c)
{
	uint32_t m = c->peer_mss ? c->peer_mss : 536;

	if (m > s->tcp->mss_local)
		m = s->tcp->mss_local;
	if (c->flags & TCP_CF_TS)
		m -= 12;
	if (m < 64)
		m = 64;
	c->mss = (uint16_t)m;
}

/* ---- counters ------------------------------------------------------------ */

#define TCP_STAT(n, f) { "tcp." n, offsetof(struct tcp_stats, f) }
static const struct {
	const char *name;
	size_t off;
} tcp_stat_names[] = {
	TCP_STAT("rx_segs", rx_segs), TCP_STAT("tx_segs", tx_segs),
	TCP_STAT("rx_bytes", rx_bytes), TCP_STAT("tx_bytes", tx_bytes),
	TCP_STAT("retransmits", retransmits),
	TCP_STAT("fast_retransmits", fast_retransmits),
	TCP_STAT("sack_retransmits", sack_retransmits),
	TCP_STAT("rto_timeouts", rto_timeouts),
	TCP_STAT("syn_retransmits", syn_retransmits),
	TCP_STAT("syncookies_sent", syncookies_sent),
	TCP_STAT("syncookies_ok", syncookies_ok),
	TCP_STAT("syncookies_bad", syncookies_bad),
	TCP_STAT("syn_refused_nomem", syn_refused_nomem),
	TCP_STAT("syn_dropped", syn_dropped),
	TCP_STAT("rst_tx", rst_tx), TCP_STAT("rst_rx", rst_rx),
	TCP_STAT("rst_ignored", rst_ignored),
	TCP_STAT("challenge_acks", challenge_acks),
	TCP_STAT("challenge_ack_limited", challenge_ack_limited),
	TCP_STAT("bad_csum", bad_csum), TCP_STAT("bad_hdr", bad_hdr),
	TCP_STAT("paws_drop", paws_drop), TCP_STAT("no_ts_drop", no_ts_drop),
	TCP_STAT("ooo_segs", ooo_segs), TCP_STAT("ooo_drop", ooo_drop),
	TCP_STAT("dup_acks", dup_acks),
	TCP_STAT("zero_window_probes", zero_window_probes),
	TCP_STAT("accepts", accepts), TCP_STAT("connects", connects),
	TCP_STAT("connect_fail", connect_fail),
	TCP_STAT("conn_timeouts", conn_timeouts),
	TCP_STAT("resets_recv", resets_recv), TCP_STAT("aborts", aborts),
	TCP_STAT("abort_on_data", abort_on_data),
	TCP_STAT("fin_wait2_timeouts", fin_wait2_timeouts),
	TCP_STAT("out_of_window", out_of_window),
	TCP_STAT("urg_ignored", urg_ignored),
	TCP_STAT("delayed_acks", delayed_acks), TCP_STAT("acks_tx", acks_tx),
	TCP_STAT("rx_data_dropped", rx_data_dropped),
	TCP_STAT("timewait.created", tw_created),
	TCP_STAT("timewait.recycled", tw_recycled),
	TCP_STAT("timewait.reused", tw_reused),
	TCP_STAT("timewait.acks", tw_acks),
	TCP_STAT("timewait.rst_ignored", tw_rst_ignored),
	TCP_STAT("closed_port_segs", closed_port_segs),
	TCP_STAT("icmp_errors", icmp_errors), TCP_STAT("tx_fail", tx_fail),
	TCP_STAT("fast_path", fast_path),
	TCP_STAT("partial_acks", partial_acks),
	TCP_STAT("recoveries", recoveries),
	TCP_STAT("persist_timeouts", persist_timeouts),
	TCP_STAT("rcv_win_full", rcv_win_full),
};
#define TCP_NSTATS (sizeof(tcp_stat_names) / sizeof(tcp_stat_names[0]))

enum {
	TCP_G_USED, TCP_G_FREE, TCP_G_EST, TCP_G_SYN_RECV, TCP_G_SYN_SENT,
	TCP_G_CLOSING, TCP_G_ZOMBIE, TCP_G_TW_USED, TCP_G_TW_FREE,
	TCP_G_LISTENERS, TCP_G_TIMERS, TCP_G_HASHED, TCP_NGAUGES
};
static const char *const tcp_gauge_names[TCP_NGAUGES] = {
	"tcp.conns.used", "tcp.conns.free", "tcp.conns.established",
	"tcp.conns.syn_recv", "tcp.conns.syn_sent", "tcp.conns.closing",
	"tcp.conns.zombie", "tcp.timewait.used", "tcp.timewait.free",
	"tcp.listeners", "tcp.timers.armed", "tcp.flows.hashed",
};

/* tcp_counters - event counters then pool gauges (gauges are computed) */
unsigned tcp_counters(const struct net_stack *s, struct net_counter *out,
		      unsigned max)
{
	const struct tcp_state *t = s->tcp;
	uint64_t g[TCP_NGAUGES] = { 0 };
	unsigned n = 0;

	if (out == NULL)
		return (unsigned)(TCP_NSTATS + TCP_NGAUGES);
	if (t == NULL)
		return 0;
	for (size_t i = 0; i < TCP_NSTATS && n < max; i++) {
		out[n].name = tcp_stat_names[i].name;
		memcpy(&out[n].value,
		       (const uint8_t *)&t->st + tcp_stat_names[i].off,
		       sizeof(uint64_t));
		n++;
	}
	for (uint32_t i = 0; i < t->nconns; i++) {
		const struct tcp_conn *c = &t->conns[i];
		if (!(c->flags & TCP_CF_USED))
			continue;
		if (c->flags & TCP_CF_DONE)
			g[TCP_G_ZOMBIE]++;
		else if (c->state == TCPS_ESTABLISHED)
			g[TCP_G_EST]++;
		else if (c->state == TCPS_SYN_RECV)
			g[TCP_G_SYN_RECV]++;
		else if (c->state == TCPS_SYN_SENT)
			g[TCP_G_SYN_SENT]++;
		else
			g[TCP_G_CLOSING]++;
	}
	g[TCP_G_USED] = t->nconns - t->n_free;
	g[TCP_G_FREE] = t->n_free;
	g[TCP_G_TW_USED] = t->tw_used;
	g[TCP_G_TW_FREE] = t->ntw - t->tw_used;
	for (uint32_t i = 0; i < t->nlisteners; i++)
		g[TCP_G_LISTENERS] += t->listeners[i].used;
	g[TCP_G_TIMERS] = t->n_wheel;
	g[TCP_G_HASHED] = t->n_hashed;
	for (unsigned i = 0; i < TCP_NGAUGES && n < max; i++) {
		out[n].name = tcp_gauge_names[i];
		out[n].value = g[i];
		n++;
	}
	return n;
}

/* ---- invariants ---------------------------------------------------------- */

/* tcp_check_fail - format a reason and return -1 */
static int tcp_check_fail(char *why, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int tcp_check_fail(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && n > 0) {
		va_start(ap, fmt);
		vsnprintf(why, n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* tcp_check_conn - sequence and buffer bounds of one live connection */
static int tcp_check_conn(const struct net_stack *s, const struct tcp_conn *c,
			  uint32_t i, char *why, size_t n)
{
	if (c->state >= TCPS_NSTATES || c->state == TCPS_LISTEN ||
	    c->state == TCPS_TIME_WAIT)
		return tcp_check_fail(why, n, "conn %u: bad state %u", i,
				      c->state);
	if (c->snd_len > s->cfg.sndbuf || c->snd_head >= s->cfg.sndbuf)
		return tcp_check_fail(why, n, "conn %u: send ring %u/%u", i,
				      c->snd_len, c->snd_head);
	if (c->rcv_len > s->cfg.rcvbuf || c->rcv_head >= s->cfg.rcvbuf)
		return tcp_check_fail(why, n, "conn %u: recv ring %u/%u", i,
				      c->rcv_len, c->rcv_head);
	if (c->n_ooo > TCP_OOO_MAX || c->n_sack > TCP_SACK_MAX)
		return tcp_check_fail(why, n, "conn %u: ooo/sack count", i);
	if (c->flags & TCP_CF_DONE) {
		if (c->flags & (TCP_CF_HASHED | TCP_CF_IN_WHEEL))
			return tcp_check_fail(why, n,
					      "conn %u: done but linked", i);
		return 0;
	}
	if (c->state == TCPS_CLOSED)
		return tcp_check_fail(why, n, "conn %u: CLOSED not done", i);
	if (!(c->flags & TCP_CF_HASHED))
		return tcp_check_fail(why, n, "conn %u: live but unhashed", i);
	if (!SEQ_LEQ(c->snd_una, c->snd_nxt) ||
	    !SEQ_LEQ(c->snd_nxt, c->snd_max))
		return tcp_check_fail(why, n,
				      "conn %u: una %u nxt %u max %u", i,
				      c->snd_una, c->snd_nxt, c->snd_max);
	if (c->state >= TCPS_ESTABLISHED) {
		uint32_t end = c->snd_buf_seq + c->snd_len +
			       ((c->flags & TCP_CF_FIN_QUEUED) ? 1 : 0);
		if (SEQ_GT(c->snd_max, end))
			return tcp_check_fail(why, n,
					      "conn %u: snd_max %u past data end %u",
					      i, c->snd_max, end);
		if (SEQ_GT(c->snd_buf_seq, c->snd_una) &&
		    !(c->flags & TCP_CF_FIN_QUEUED))
			return tcp_check_fail(why, n,
					      "conn %u: ring starts past una", i);
	}
	for (unsigned k = 0; k < c->n_ooo; k++) {
		const struct tcp_ooo *o = &c->ooo[k];
		if (!SEQ_GT(o->start, c->rcv_nxt) ||
		    !SEQ_LT(o->start, o->end) ||
		    o->end - c->rcv_nxt > s->cfg.rcvbuf - c->rcv_len)
			return tcp_check_fail(why, n,
					      "conn %u: ooo range %u-%u bad", i,
					      o->start, o->end);
		if (k > 0 && !SEQ_LT(c->ooo[k - 1].end, o->start))
			return tcp_check_fail(why, n,
					      "conn %u: ooo ranges unsorted", i);
	}
	for (unsigned k = 0; k < c->n_sack; k++) {
		if (!SEQ_LT(c->sack[k].start, c->sack[k].end) ||
		    SEQ_LT(c->sack[k].start, c->snd_una) ||
		    SEQ_GT(c->sack[k].end, c->snd_max))
			return tcp_check_fail(why, n,
					      "conn %u: sack block bad", i);
	}
	return tcp_timer_check_conn(s, c, why, n);
}

/* tcp_check - verify pool accounting, lists, sequences, timers */
int tcp_check(const struct net_stack *s, char *why, size_t n)
{
	const struct tcp_state *t = s->tcp;
	uint32_t nfree = 0, used = 0, hashed = 0, wheel = 0, steps = 0;
	uint32_t synq = 0, lsum = 0;

	if (t == NULL)
		return 0;
	for (uint32_t i = t->free_head; i != TCP_NIL; i = t->conns[i].hnext) {
		if (i >= t->nconns || ++steps > t->nconns)
			return tcp_check_fail(why, n, "free list corrupt");
		if (t->conns[i].flags & TCP_CF_USED)
			return tcp_check_fail(why, n, "conn %u used but free", i);
		nfree++;
	}
	if (nfree != t->n_free)
		return tcp_check_fail(why, n, "free list %u != n_free %u",
				      nfree, t->n_free);
	for (uint32_t i = 0; i < t->nconns; i++) {
		const struct tcp_conn *c = &t->conns[i];
		if (c->flags & TCP_CF_IN_WHEEL)
			wheel++;
		if (!(c->flags & TCP_CF_USED))
			continue;
		used++;
		if (c->flags & TCP_CF_HASHED) {
			hashed++;
			if (tcp_flow_lookup((struct net_stack *)s, c->laddr,
					    c->raddr, c->lport,
					    c->rport) != c)
				return tcp_check_fail(why, n,
						      "conn %u not found in hash",
						      i);
		}
		if (c->flags & TCP_CF_SYNQ)
			synq++;
		if (tcp_check_conn(s, c, i, why, n) < 0)
			return -1;
	}
	if (used + nfree != t->nconns)
		return tcp_check_fail(why, n, "used %u + free %u != max %u",
				      used, nfree, t->nconns);
	if (hashed != t->n_hashed)
		return tcp_check_fail(why, n, "hashed %u != n_hashed %u",
				      hashed, t->n_hashed);
	if (wheel != t->n_wheel)
		return tcp_check_fail(why, n, "wheel %u != n_wheel %u", wheel,
				      t->n_wheel);
	for (uint32_t i = 0; i < t->nlisteners; i++)
		lsum += t->listeners[i].syn_recv;
	if (lsum != synq)
		return tcp_check_fail(why, n, "listener syn_recv %u != %u",
				      lsum, synq);
	steps = 0;
	for (uint32_t i = t->ev_head; i != TCP_NIL; i = t->conns[i].ev_next)
		if (i >= t->nconns || ++steps > t->nconns)
			return tcp_check_fail(why, n, "event list corrupt");
	steps = 0;
	for (uint32_t i = t->out_head; i != TCP_NIL; i = t->conns[i].out_next)
		if (i >= t->nconns || ++steps > t->nconns)
			return tcp_check_fail(why, n, "output list corrupt");
	return tcp_tw_check(s, why, n);
}
