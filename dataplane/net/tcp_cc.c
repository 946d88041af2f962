/*
 * tcp_cc.c - RTT estimation, congestion control and the SACK scoreboard.
 *
 *   RTO: RFC 6298 (SRTT/RTTVAR, clock granularity 1 ms, min/max from the
 *        config, exponential backoff via rto_shift, Karn's rule enforced by
 *        the callers: no samples from retransmitted segments unless
 *        timestamps disambiguate, RFC 7323 4).
 *   CC:  RFC 5681 slow start / congestion avoidance in bytes, initial
 *        window RFC 6928 (min(10*MSS, max(2*MSS, 14600))), 1 MSS after a
 *        lost SYN; fast retransmit / NewReno recovery RFC 6582 for peers
 *        without SACK (cwnd inflation, partial ACKs retransmit the next
 *        hole); with SACK, RFC 6675 style recovery: cwnd = ssthresh, and
 *        tcp_output sends while pipe < cwnd, holes first.
 *   Scoreboard: up to TCP_SACK_MAX sorted, disjoint SACKed ranges above
 *        snd_una. Simplifications (honest list): a hole is "lost" when any
 *        SACKed byte lies above it (DupThresh not applied per hole); pipe
 *        = bytes sent above the highest SACK + holes already retransmitted
 *        in this recovery; the scoreboard is discarded on RTO (RFC 6675 5.1
 *        permits that); no limited transmit (RFC 3042).
 */
#include "tcp.h"

#define TCP_CWND_MAX (1u << 30)

/* tcp_rto_us - current RTO with backoff, clamped to the config */
uint32_t tcp_rto_us(const struct net_stack *s, const struct tcp_conn *c)
{
	uint64_t r = (uint64_t)c->rto_us << c->rto_shift;
	uint64_t mx = (uint64_t)s->cfg.rto_max_ms * 1000;
	uint64_t mn = (uint64_t)s->cfg.rto_min_ms * 1000;

	if (r > mx)
		r = mx;
	if (r < mn)
		r = mn;
	if (r == 0)
		r = 1000;
	return (uint32_t)r;
}

/* tcp_cc_init - windows at connection establishment (RFC 6928, 5681 3.1) */
void tcp_cc_init(struct net_stack *s, struct tcp_conn *c)
{
	uint32_t mss = c->mss, iw;

	(void)s;
	iw = 2 * mss > 14600 ? 2 * mss : 14600;
	if (iw > 10 * mss)
		iw = 10 * mss;
	c->cwnd = c->retries ? mss : iw; /* lost SYN: IW = 1 segment */
	c->ssthresh = TCP_CWND_MAX;
	c->recover = c->snd_una;
	c->rxt_next = c->snd_una;
	c->dupacks = 0;
	c->retries = 0;
	if (c->srtt_us == 0 && c->rto_shift) {
		/* RFC 6298 5.7: SYN timed out and no sample: RTO = 3 s */
		c->rto_us = 3000000;
	}
	c->rto_shift = 0;
}

/* tcp_cc_rtt_sample - RFC 6298 2.2/2.3 estimator after one measurement */
void tcp_cc_rtt_sample(struct net_stack *s, struct tcp_conn *c,
		       uint32_t rtt_us)
{
	uint32_t rto, k;

	if (rtt_us == 0)
		rtt_us = 1;
	if (c->srtt_us == 0) {
		c->srtt_us = rtt_us;
		c->rttvar_us = rtt_us / 2;
	} else {
		uint32_t d = c->srtt_us > rtt_us ? c->srtt_us - rtt_us
						 : rtt_us - c->srtt_us;
		c->rttvar_us = (uint32_t)(((uint64_t)c->rttvar_us * 3 + d) / 4);
		c->srtt_us = (uint32_t)(((uint64_t)c->srtt_us * 7 + rtt_us) / 8);
	}
	k = 4 * c->rttvar_us;
	if (k < 1000)
		k = 1000; /* G: 1 ms clock granularity */
	rto = c->srtt_us + k;
	if (rto < s->cfg.rto_min_ms * 1000)
		rto = s->cfg.rto_min_ms * 1000;
	if (rto > s->cfg.rto_max_ms * 1000)
		rto = s->cfg.rto_max_ms * 1000;
	c->rto_us = rto;
	c->rto_shift = 0;
}

/* tcp_cc_ack - snd_una advanced by acked bytes (RFC 5681 3.1, 6582 3.2) */
void tcp_cc_ack(struct net_stack *s, struct tcp_conn *c, uint32_t acked,
		uint32_t ack)
{
	uint32_t mss = c->mss;

	if (c->flags & TCP_CF_RECOVERY) {
		if (SEQ_GEQ(ack, c->recover)) {
			/* full ACK: leave recovery, cwnd = min(ssthresh,
			 * max(FlightSize, SMSS) + SMSS) (RFC 6582 3.2 step 3
			 * option 1) */
			uint32_t fl = c->snd_max - ack;
			if (fl < mss)
				fl = mss;
			c->cwnd = fl + mss < c->ssthresh ? fl + mss : c->ssthresh;
			c->flags &= ~TCP_CF_RECOVERY;
			c->dupacks = 0;
			return;
		}
		s->tcp->st.partial_acks++;
		if (!(c->flags & TCP_CF_SACK)) {
			/* partial ACK: retransmit next, deflate (step 5) */
			c->flags |= TCP_CF_RXT_UNA;
			c->cwnd = c->cwnd > acked ? c->cwnd - acked : mss;
			if (acked >= mss)
				c->cwnd += mss;
		}
		if (SEQ_LT(c->rxt_next, ack))
			c->rxt_next = ack;
		tcp_out_mark(s, c);
		return;
	}
	c->dupacks = 0;
	if (c->cwnd < c->ssthresh) {
		c->cwnd += acked < mss ? acked : mss;     /* slow start */
	} else {
		uint32_t inc = (uint32_t)((uint64_t)mss * mss / c->cwnd);
		c->cwnd += inc ? inc : 1;                 /* cong. avoidance */
	}
	if (c->cwnd > TCP_CWND_MAX)
		c->cwnd = TCP_CWND_MAX;
}

/* tcp_cc_enter_recovery - fast retransmit (RFC 5681 3.2, 6582, 6675 5) */
static void tcp_cc_enter_recovery(struct net_stack *s, struct tcp_conn *c)
{
	uint32_t fl = tcp_flight(c), mss = c->mss;

	c->ssthresh = fl / 2 > 2 * mss ? fl / 2 : 2 * mss;
	c->recover = c->snd_max;
	c->flags |= TCP_CF_RECOVERY;
	c->flags &= ~TCP_CF_RTT_TIMING;
	c->rxt_next = c->snd_una;
	s->tcp->st.recoveries++;
	s->tcp->st.fast_retransmits++;
	if (c->flags & TCP_CF_SACK) {
		c->cwnd = c->ssthresh;
		/* the first hole is retransmitted even if pipe is high
		 * (RFC 6675 5 step 4.1: "at least one segment") */
		c->flags |= TCP_CF_RXT_UNA;
		c->rxt_next = c->snd_una + mss;
	} else {
		c->cwnd = c->ssthresh + 3 * mss;
		c->flags |= TCP_CF_RXT_UNA;
	}
	TCP_TEST_HOOK(loss, c);
	tcp_out_mark(s, c);
}

/* tcp_cc_dupack - a duplicate ACK (or one with new SACK information) */
void tcp_cc_dupack(struct net_stack *s, struct tcp_conn *c)
{
	s->tcp->st.dup_acks++;
	if (c->flags & TCP_CF_RECOVERY) {
		if (!(c->flags & TCP_CF_SACK))
			c->cwnd += c->mss; /* RFC 6582 3.2 step 4: inflate */
		tcp_out_mark(s, c);
		return;
	}
	if (c->dupacks < 255)
		c->dupacks++;
	if (c->dupacks >= 3 ||
	    ((c->flags & TCP_CF_SACK) &&
	     tcp_cc_sacked_bytes(c) > 2u * c->mss)) {
		/* RFC 6582 4.1: only if the ACK covers more than recover */
		if (SEQ_GT(c->snd_una, c->recover) ||
		    c->recover == c->snd_una)
			tcp_cc_enter_recovery(s, c);
		else
			c->dupacks = 0;
	}
}

/* tcp_cc_rto - RFC 5681 eq. 4 and 3.1: loss window after a timeout */
void tcp_cc_rto(struct net_stack *s, struct tcp_conn *c)
{
	uint32_t fl = c->snd_max - c->snd_una, mss = c->mss;

	(void)s;
	if (c->rto_shift == 0)  /* ssthresh held on repeated timeouts */
		c->ssthresh = fl / 2 > 2 * mss ? fl / 2 : 2 * mss;
	c->cwnd = mss;
	c->flags &= ~(TCP_CF_RECOVERY | TCP_CF_RXT_UNA);
	c->dupacks = 0;
	c->recover = c->snd_max;
	c->n_sack = 0;
	c->rxt_next = c->snd_una;
}

/* tcp_cc_sack_insert - merge one valid range into the sorted scoreboard;
 * returns bytes newly covered (approximate when the board is full) */
static uint32_t tcp_cc_sack_insert(struct tcp_conn *c, uint32_t st,
				   uint32_t en)
{
	struct tcp_sackblk out[TCP_SACK_MAX + 1];
	uint32_t before = tcp_cc_sacked_bytes(c), after;
	unsigned n = 0, i = 0;
	bool placed = false;

	for (i = 0; i < c->n_sack; i++) {
		struct tcp_sackblk b = c->sack[i];
		if (SEQ_LT(b.end, st)) {
			out[n++] = b;
		} else if (SEQ_GT(b.start, en)) {
			if (!placed) {
				out[n++] = (struct tcp_sackblk){ st, en };
				placed = true;
			}
			out[n++] = b;
		} else {
			st = SEQ_MIN(st, b.start);
			en = SEQ_MAX(en, b.end);
		}
	}
	if (!placed)
		out[n++] = (struct tcp_sackblk){ st, en };
	if (n > TCP_SACK_MAX)
		n = TCP_SACK_MAX; /* forget the highest range */
	for (i = 0; i < n; i++)
		c->sack[i] = out[i];
	c->n_sack = (uint8_t)n;
	after = tcp_cc_sacked_bytes(c);
	return after > before ? after - before : 0;
}

/* tcp_cc_sack_update - take the SACK blocks of an ACK (RFC 2018 / 6675):
 * ignores D-SACK and blocks outside (snd_una, snd_max]; returns new bytes */
uint32_t tcp_cc_sack_update(struct net_stack *s, struct tcp_conn *c,
			    const struct tcp_seg *g)
{
	uint32_t newly = 0;

	(void)s;
	for (unsigned i = 0; i < g->n_sack; i++) {
		uint32_t st = g->sack[i].start, en = g->sack[i].end;
		if (!SEQ_LT(st, en) || SEQ_LEQ(st, c->snd_una) ||
		    SEQ_GT(en, c->snd_max) || SEQ_LEQ(en, g->ack))
			continue;
		newly += tcp_cc_sack_insert(c, st, en);
	}
	return newly;
}

/* tcp_cc_sack_trim - drop scoreboard ranges at or below snd_una */
void tcp_cc_sack_trim(struct tcp_conn *c)
{
	unsigned n = 0;

	for (unsigned i = 0; i < c->n_sack; i++) {
		struct tcp_sackblk b = c->sack[i];
		if (SEQ_LEQ(b.end, c->snd_una))
			continue;
		if (SEQ_LT(b.start, c->snd_una))
			b.start = c->snd_una;
		if (SEQ_GT(b.end, c->snd_max))
			b.end = c->snd_max;
		if (!SEQ_LT(b.start, b.end))
			continue;
		c->sack[n++] = b;
	}
	c->n_sack = (uint8_t)n;
}

/* tcp_cc_sacked_bytes - total bytes on the scoreboard */
uint32_t tcp_cc_sacked_bytes(const struct tcp_conn *c)
{
	uint32_t n = 0;

	for (unsigned i = 0; i < c->n_sack; i++)
		n += c->sack[i].end - c->sack[i].start;
	return n;
}

/* tcp_cc_is_sacked - is this sequence number on the scoreboard */
bool tcp_cc_is_sacked(const struct tcp_conn *c, uint32_t seq)
{
	for (unsigned i = 0; i < c->n_sack; i++)
		if (SEQ_GEQ(seq, c->sack[i].start) &&
		    SEQ_LT(seq, c->sack[i].end))
			return true;
	return false;
}

/* tcp_cc_pipe - RFC 6675 4 SetPipe, simplified (see file comment) */
uint32_t tcp_cc_pipe(const struct tcp_conn *c)
{
	uint32_t high, pipe = 0, lim, pos, holes = 0;

	if (c->n_sack == 0 || !(c->flags & TCP_CF_RECOVERY))
		return tcp_flight(c);
	high = c->sack[c->n_sack - 1].end;
	if (SEQ_GT(c->snd_nxt, high))
		pipe = c->snd_nxt - high;
	/* holes below rxt_next were retransmitted: count them in flight */
	lim = SEQ_MIN(c->rxt_next, high);
	pos = c->snd_una;
	for (unsigned i = 0; i < c->n_sack && SEQ_LT(pos, lim); i++) {
		uint32_t hs = c->sack[i].start;
		if (SEQ_GT(hs, lim))
			hs = lim;
		if (SEQ_LT(pos, hs))
			holes += hs - pos;
		pos = SEQ_MAX(pos, c->sack[i].end);
	}
	return pipe + holes;
}

/* tcp_cc_next_hole - RFC 6675 NextSeg rule 1: first un-SACKed range at or
 * after rxt_next and below the highest SACKed byte; 0 if none */
int tcp_cc_next_hole(const struct tcp_conn *c, uint32_t *seq, uint32_t *len)
{
	uint32_t pos = SEQ_MAX(c->rxt_next, c->snd_una);

	for (unsigned i = 0; i < c->n_sack; i++) {
		const struct tcp_sackblk *b = &c->sack[i];
		if (SEQ_LT(pos, b->start)) {
			*seq = pos;
			*len = b->start - pos;
			return 1;
		}
		pos = SEQ_MAX(pos, b->end);
	}
	return 0;
}
