/*
 * tcp.h - internal interfaces between the TCP modules (tcp_*.c).
 *
 *   tcp_core.c      pools, conn lifecycle, events, counters, invariants
 *   tcp_flow.c      4-tuple hash of full connections (keyed mix)
 *   tcp_timer.c     hashed timer wheel; RTO, persist, delayed ACK, FW2
 *   tcp_input.c     segment parsing, dispatch, established fast path
 *   tcp_state.c     RFC 9293 3.10.7 slow path: every state, RST, SYN, FIN
 *   tcp_reass.c     receive ring placement, out-of-order ranges, SACK gen
 *   tcp_cc.c        RTT/RTO, NewReno, SACK scoreboard, recovery sending
 *   tcp_output.c    segment building, tcp_flush, RST/ACK replies
 *   tcp_open.c      listeners, SYN handling, SYN cookies, ISN, connect
 *   tcp_timewait.c  compact TIME_WAIT table
 *   tcp_sock.c      socket API of net.h
 */
#ifndef SLUICE_TCP_H
#define SLUICE_TCP_H

#include "tcp_types.h"

/* compile-away test hooks (CONVENTIONS 6): a test build defines
 * SLUICE_TEST_HOOKS and provides tcp_test_hook() */
#ifdef SLUICE_TEST_HOOKS
void tcp_test_hook(const char *name, const struct tcp_conn *c);
#define TCP_TEST_HOOK(name, conn) tcp_test_hook(#name, (conn))
#else
#define TCP_TEST_HOOK(name, conn) do { } while (0)
#endif

/* a parsed incoming segment */
struct tcp_seg {
	const uint8_t *data;    /* payload */
	uint32_t src, dst;      /* IP addresses, host order */
	uint32_t seq, ack;
	uint16_t sport, dport;
	uint16_t len;           /* payload bytes */
	uint16_t win;           /* raw window field */
	uint8_t flags;
	uint8_t hlen;
	/* options (RFC 9293 3.2, RFC 7323, RFC 2018) */
	uint8_t has_mss, has_ws, sack_ok, has_ts, n_sack, ws;
	uint16_t mss;
	uint32_t tsval, tsecr;
	struct tcp_sackblk sack[4];
};

/* options we put on an outgoing segment */
struct tcp_txopt {
	uint8_t syn;            /* SYN options: MSS, WS, SACK-permitted */
	uint8_t ws_ok, sack_ok, ts;
	uint8_t ws;
	uint16_t mss;
	uint32_t tsval, tsecr;
	uint8_t n_sack;
	struct tcp_sackblk sack[4];
};

static inline struct tcp_conn *tcp_conn_at(const struct tcp_state *t,
					   uint32_t i)
{
	return &t->conns[i];
}

static inline uint32_t tcp_conn_idx(const struct tcp_state *t,
				    const struct tcp_conn *c)
{
	return (uint32_t)(c - t->conns);
}

/* tcp_conn_gone - finished or already back in the pool */
static inline bool tcp_conn_gone(const struct tcp_conn *c)
{
	return !(c->flags & TCP_CF_USED) || (c->flags & TCP_CF_DONE);
}

/* tcp_sock_handle - the app's handle: generation << 20 | slot */
static inline net_sock_t tcp_sock_handle(const struct tcp_state *t,
					 const struct tcp_conn *c)
{
	return ((uint32_t)c->gen << 20) | tcp_conn_idx(t, c);
}

static inline uint32_t tcp_now_ms(const struct net_stack *s)
{
	return (uint32_t)(s->now / 1000);
}

/* bytes of the send ring not yet sent (from snd_nxt) */
static inline uint32_t tcp_unsent(const struct tcp_conn *c)
{
	uint32_t end = c->snd_buf_seq + c->snd_len;
	return SEQ_GT(end, c->snd_nxt) ? end - c->snd_nxt : 0;
}

/* bytes in flight by sequence (snd_nxt - snd_una) */
static inline uint32_t tcp_flight(const struct tcp_conn *c)
{
	return c->snd_nxt - c->snd_una;
}

/* free space of the receive ring (what the window may offer) */
static inline uint32_t tcp_rcv_space(const struct net_stack *s,
				     const struct tcp_conn *c)
{
	return s->cfg.rcvbuf - c->rcv_len;
}

/* --- tcp_core.c --- */
struct tcp_conn *tcp_conn_alloc(struct net_stack *s);
void tcp_conn_free(struct net_stack *s, struct tcp_conn *c);
void tcp_conn_set_state(struct net_stack *s, struct tcp_conn *c, int st);
void tcp_conn_finish(struct net_stack *s, struct tcp_conn *c, int err);
void tcp_ev_post(struct net_stack *s, struct tcp_conn *c, uint32_t ev);
void tcp_out_mark(struct net_stack *s, struct tcp_conn *c);
void tcp_conn_init_buffers(struct net_stack *s, struct tcp_conn *c);
void tcp_conn_set_mss(struct net_stack *s, struct tcp_conn *c);
uint32_t tcp_free_conns(const struct net_stack *s);

/* --- tcp_flow.c --- */
uint32_t tcp_flow_hash(const struct tcp_state *t, uint32_t laddr,
		       uint32_t raddr, uint16_t lport, uint16_t rport);
struct tcp_conn *tcp_flow_lookup(struct net_stack *s, uint32_t laddr,
				 uint32_t raddr, uint16_t lport,
				 uint16_t rport);
void tcp_flow_insert(struct net_stack *s, struct tcp_conn *c);
void tcp_flow_remove(struct net_stack *s, struct tcp_conn *c);

/* --- tcp_timer.c --- */
void tcp_timer_update(struct net_stack *s, struct tcp_conn *c);
void tcp_timer_unlink(struct net_stack *s, struct tcp_conn *c);
void tcp_timer_rto_start(struct net_stack *s, struct tcp_conn *c);
void tcp_timer_rto_restart(struct net_stack *s, struct tcp_conn *c);
void tcp_timer_rto_stop(struct net_stack *s, struct tcp_conn *c);
void tcp_timer_persist_start(struct net_stack *s, struct tcp_conn *c);
void tcp_timer_delack(struct net_stack *s, struct tcp_conn *c);
int tcp_timer_check_conn(const struct net_stack *s, const struct tcp_conn *c,
			 char *why, size_t n);

/* --- tcp_input.c --- */
int tcp_input_parse_opts(const uint8_t *opt, unsigned len, struct tcp_seg *g);
void tcp_input_ts_update(struct tcp_conn *c, const struct tcp_seg *g);

/* --- tcp_state.c --- */
void tcp_state_input(struct net_stack *s, struct tcp_conn *c,
		     struct tcp_seg *g);
void tcp_state_fin_acked(struct net_stack *s, struct tcp_conn *c);
void tcp_state_challenge_ack(struct net_stack *s, struct tcp_conn *c);
void tcp_state_ack_data(struct net_stack *s, struct tcp_conn *c,
			uint32_t ack);
void tcp_state_peer_fin(struct net_stack *s, struct tcp_conn *c);
void tcp_state_window_update(struct net_stack *s, struct tcp_conn *c,
			     const struct tcp_seg *g);

/* --- tcp_reass.c --- */
uint32_t tcp_reass_data(struct net_stack *s, struct tcp_conn *c,
			uint32_t seq, const uint8_t *data, uint32_t len);
unsigned tcp_reass_sack_blocks(const struct tcp_conn *c,
			       struct tcp_sackblk *out, unsigned max);
void tcp_reass_fin_check(struct net_stack *s, struct tcp_conn *c);
void tcp_reass_copy_in(const struct net_stack *s, struct tcp_conn *c,
		       uint32_t off, const uint8_t *data, uint32_t len);

/* --- tcp_cc.c --- */
void tcp_cc_init(struct net_stack *s, struct tcp_conn *c);
void tcp_cc_rtt_sample(struct net_stack *s, struct tcp_conn *c,
		       uint32_t rtt_us);
/* tcp_rtt_on_ack - RTT sample for an ACK of new data: from the echoed
 * timestamp (RFC 7323 4.1), else from the one timed segment (RFC 6298 3,
 * Karn: retransmissions clear the timing) */
static inline void tcp_rtt_on_ack(struct net_stack *s, struct tcp_conn *c,
				  const struct tcp_seg *g)
{
	if ((c->flags & TCP_CF_TS) && g->has_ts && g->tsecr) {
		uint32_t r = tcp_now_ms(s) + c->ts_off - g->tsecr;
		if (r < 600000)
			tcp_cc_rtt_sample(s, c, r * 1000);
	} else if ((c->flags & TCP_CF_RTT_TIMING) &&
		   SEQ_GT(g->ack, c->rtt_seq)) {
		c->flags &= ~TCP_CF_RTT_TIMING;
		tcp_cc_rtt_sample(s, c, (uint32_t)(s->now - c->rtt_start));
	}
}
void tcp_cc_ack(struct net_stack *s, struct tcp_conn *c, uint32_t acked,
		uint32_t ack);
void tcp_cc_dupack(struct net_stack *s, struct tcp_conn *c);
void tcp_cc_rto(struct net_stack *s, struct tcp_conn *c);
uint32_t tcp_cc_sack_update(struct net_stack *s, struct tcp_conn *c,
			    const struct tcp_seg *g);
void tcp_cc_sack_trim(struct tcp_conn *c);
uint32_t tcp_cc_sacked_bytes(const struct tcp_conn *c);
uint32_t tcp_cc_pipe(const struct tcp_conn *c);
int tcp_cc_next_hole(const struct tcp_conn *c, uint32_t *seq,
		     uint32_t *len);
bool tcp_cc_is_sacked(const struct tcp_conn *c, uint32_t seq);
uint32_t tcp_rto_us(const struct net_stack *s, const struct tcp_conn *c);

/* --- tcp_output.c --- */
void tcp_output(struct net_stack *s, struct tcp_conn *c);
int tcp_output_ack(struct net_stack *s, struct tcp_conn *c);
int tcp_output_rst(struct net_stack *s, struct tcp_conn *c);
int tcp_output_syn(struct net_stack *s, struct tcp_conn *c);
void tcp_output_reply_rst(struct net_stack *s, const struct tcp_seg *g);
int tcp_output_raw(struct net_stack *s, uint32_t laddr, uint32_t raddr,
		   uint16_t lport, uint16_t rport, uint32_t seq, uint32_t ack,
		   uint8_t flags, uint16_t win, const struct tcp_txopt *o,
		   const struct tcp_conn *c, uint32_t data_seq,
		   uint32_t data_len);
uint16_t tcp_output_window(struct net_stack *s, struct tcp_conn *c);

/* --- tcp_open.c --- */
void tcp_open_listen_input(struct net_stack *s, struct tcp_listener *l,
			   struct tcp_seg *g);
struct tcp_listener *tcp_open_find_listener(struct net_stack *s,
					    uint16_t port);
uint32_t tcp_open_isn(const struct net_stack *s, uint32_t laddr,
		      uint32_t raddr, uint16_t lport, uint16_t rport);
uint32_t tcp_open_ts_off(const struct net_stack *s, uint32_t laddr,
			 uint32_t raddr, uint16_t lport, uint16_t rport);
void tcp_open_syn_options(struct net_stack *s, struct tcp_conn *c,
			  const struct tcp_seg *g);

/* --- tcp_timewait.c --- */
int tcp_tw_enter(struct net_stack *s, struct tcp_conn *c);
struct tcp_tw *tcp_tw_lookup(struct net_stack *s, uint32_t laddr,
			     uint32_t raddr, uint16_t lport, uint16_t rport);
/* returns 1 if the segment should continue to the listener (reuse) */
int tcp_tw_input(struct net_stack *s, struct tcp_tw *w,
		 const struct tcp_seg *g);
void tcp_tw_expire(struct net_stack *s);
uint64_t tcp_tw_next_deadline(const struct net_stack *s);
void tcp_tw_remove(struct net_stack *s, struct tcp_tw *w);
int tcp_tw_check(const struct net_stack *s, char *why, size_t n);

#endif
