/*
 * tcp_reass.c - receive side: placing segment text into the fixed receive
 * ring, out-of-order reassembly, ACK policy and SACK block generation.
 *
 * Input: text already trimmed to [rcv_nxt, rcv_nxt + free space) by
 * tcp_state.c. Out-of-order bytes are written straight to their ring
 * position (after the readable bytes) and described by up to TCP_OOO_MAX
 * sorted, disjoint, non-adjacent [start, end) ranges; a segment that would
 * need one more range is dropped and counted (the peer retransmits it).
 * When text fills the gap at rcv_nxt, covered ranges are absorbed.
 *
 * ACK policy (RFC 9293 3.8.6.3, RFC 5681 4.2): in-order text is ACKed at
 * least every second segment, otherwise after cfg.delack_ms; out-of-order
 * text or text filling a hole is ACKed at once (with SACK blocks, most
 * recently changed range first, RFC 2018 4).
 */
#include <string.h>

#include "tcp.h"

/* tcp_reass_copy_in - write len bytes at window offset off into the ring */
void tcp_reass_copy_in(const struct net_stack *s, struct tcp_conn *c,
		       uint32_t off, const uint8_t *data, uint32_t len)
{
	uint32_t sz = s->cfg.rcvbuf;
	uint32_t pos = c->rcv_head + c->rcv_len, first;

	if (pos >= sz)
		pos -= sz;
	pos += off;
	if (pos >= sz)
		pos -= sz;
	first = sz - pos < len ? sz - pos : len;
	memcpy(c->rcv_buf + pos, data, first);
	if (first < len)
		memcpy(c->rcv_buf, data + first, len - first);
}

/* tcp_reass_insert - merge [st, en) into the range list; false if full */
static bool tcp_reass_insert(struct tcp_conn *c, uint32_t st, uint32_t en)
{
	struct tcp_ooo out[TCP_OOO_MAX + 1];
	unsigned n = 0, merged = 0;
	bool placed = false;
	uint32_t age = ++c->ooo_age;

	for (unsigned i = 0; i < c->n_ooo; i++)
		if (!(SEQ_LT(c->ooo[i].end, st) || SEQ_GT(c->ooo[i].start, en)))
			merged++;
	if (c->n_ooo - merged + 1 > TCP_OOO_MAX)
		return false;
	for (unsigned i = 0; i < c->n_ooo; i++) {
		struct tcp_ooo o = c->ooo[i];
		if (SEQ_LT(o.end, st)) {
			out[n++] = o;
		} else if (SEQ_GT(o.start, en)) {
			if (!placed) {
				out[n++] = (struct tcp_ooo){ st, en, age };
				placed = true;
			}
			out[n++] = o;
		} else {
			st = SEQ_MIN(st, o.start);
			en = SEQ_MAX(en, o.end);
		}
	}
	if (!placed)
		out[n++] = (struct tcp_ooo){ st, en, age };
	memcpy(c->ooo, out, n * sizeof(out[0]));
	c->n_ooo = (uint8_t)n;
	return true;
}

/* tcp_reass_data - accept text at seq (>= rcv_nxt); returns how far
 * rcv_nxt advanced */
uint32_t tcp_reass_data(struct net_stack *s, struct tcp_conn *c,
			uint32_t seq, const uint8_t *data, uint32_t len)
{
	struct tcp_state *t = s->tcp;
	uint32_t off = seq - c->rcv_nxt, space = tcp_rcv_space(s, c);
	uint32_t before = c->rcv_nxt;
	bool had_ooo = c->n_ooo > 0;

	if (SEQ_LT(seq, c->rcv_nxt) || off >= space) {
		t->st.rcv_win_full++;
		c->flags |= TCP_CF_ACK_NOW;
		tcp_out_mark(s, c);
		return 0;
	}
	if (len > space - off)
		len = space - off;
	if (off > 0) {
		t->st.ooo_segs++;
		if (tcp_reass_insert(c, seq, seq + len))
			tcp_reass_copy_in(s, c, off, data, len);
		else
			t->st.ooo_drop++;
		c->flags |= TCP_CF_ACK_NOW; /* immediate duplicate ACK */
		tcp_out_mark(s, c);
		return 0;
	}
	tcp_reass_copy_in(s, c, 0, data, len);
	c->rcv_len += len;
	c->rcv_nxt += len;
	while (c->n_ooo && SEQ_LEQ(c->ooo[0].start, c->rcv_nxt)) {
		if (SEQ_GT(c->ooo[0].end, c->rcv_nxt)) {
			c->rcv_len += c->ooo[0].end - c->rcv_nxt;
			c->rcv_nxt = c->ooo[0].end;
		}
		memmove(&c->ooo[0], &c->ooo[1],
			(size_t)(c->n_ooo - 1) * sizeof(c->ooo[0]));
		c->n_ooo--;
	}
	t->st.rx_bytes += c->rcv_nxt - before;
	tcp_ev_post(s, c, NET_EV_READABLE);
	if (had_ooo || ++c->segs_unacked >= 2) {
		c->flags |= TCP_CF_ACK_NOW;
		tcp_out_mark(s, c);
	} else {
		tcp_timer_delack(s, c);
	}
	return c->rcv_nxt - before;
}

/* tcp_reass_sack_blocks - SACK blocks for an ACK, most recent first */
unsigned tcp_reass_sack_blocks(const struct tcp_conn *c,
			       struct tcp_sackblk *out, unsigned max)
{
	bool used[TCP_OOO_MAX] = { false };
	unsigned n = 0;

	while (n < max && n < c->n_ooo) {
		unsigned best = TCP_OOO_MAX;
		for (unsigned i = 0; i < c->n_ooo; i++)
			if (!used[i] && (best == TCP_OOO_MAX ||
					 c->ooo[i].age > c->ooo[best].age))
				best = i;
		used[best] = true;
		out[n].start = c->ooo[best].start;
		out[n].end = c->ooo[best].end;
		n++;
	}
	return n;
}

/* tcp_reass_fin_check - an out-of-order FIN becomes next in sequence */
void tcp_reass_fin_check(struct net_stack *s, struct tcp_conn *c)
{
	if ((c->flags & TCP_CF_FIN_OOO) && c->fin_seq == c->rcv_nxt)
		tcp_state_peer_fin(s, c);
}
