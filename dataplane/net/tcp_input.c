/*
 * tcp_input.c - TCP segment input: validation, option parsing, demux and
 * the established fast path.
 *
 * Input: one segment from ipv4.c with the datagram facts. Checksum is
 * verified in software unless the NIC vouched for it (RFC 9293 3.1).
 * Demux order: full connection (flow hash) -> compact TIME_WAIT entry ->
 * listener -> RST for a closed port (RFC 9293 3.10.7.1).
 *
 * Fast path (header prediction, CONVENTIONS 7): ESTABLISHED, only ACK
 * (+PSH) set, seq == rcv_nxt, PAWS passes, nothing in reassembly or SACK
 * recovery, not in persist mode, the ACK is new or the segment carries
 * data, and the data fits the receive ring. Everything else goes to the
 * RFC 9293 3.10.7 slow path in tcp_state.c.
 * ICMP errors quoting our segments (RFC 5927 validated: quoted sequence
 * within snd_una..snd_max) abort connection attempts (RFC 1122 4.2.3.9).
 */
#include <string.h>

#include "tcp.h"

static inline uint16_t tcp_rd16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t tcp_rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

/* tcp_input_parse_opts - fill g's option fields; malformed options end
 * parsing (what was parsed so far stays); returns 0 or -1 if malformed */
int tcp_input_parse_opts(const uint8_t *opt, unsigned len, struct tcp_seg *g)
{
	unsigned i = 0;

	while (i < len) {
		uint8_t kind = opt[i], olen;

		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= len)
			return -1;
		olen = opt[i + 1];
		if (olen < 2 || i + olen > len)
			return -1;
		switch (kind) {
		case 2:
			if (olen == 4) {
				g->has_mss = 1;
				g->mss = tcp_rd16(opt + i + 2);
			}
			break;
		case 3:
			if (olen == 3) {
				g->has_ws = 1;
				g->ws = opt[i + 2] > 14 ? 14 : opt[i + 2];
			}
			break;
		case 4:
			if (olen == 2)
				g->sack_ok = 1;
			break;
		case 5:
			if (olen >= 10 && (olen - 2) % 8 == 0) {
				unsigned n = (olen - 2u) / 8;
				if (n > 4)
					n = 4;
				for (unsigned k = 0; k < n; k++) {
					g->sack[k].start =
						tcp_rd32(opt + i + 2 + 8 * k);
					g->sack[k].end =
						tcp_rd32(opt + i + 6 + 8 * k);
				}
				g->n_sack = (uint8_t)n;
			}
			break;
		case 8:
			if (olen == 10) {
				g->has_ts = 1;
				g->tsval = tcp_rd32(opt + i + 2);
				g->tsecr = tcp_rd32(opt + i + 6);
			}
			break;
		default:
			break;
		}
		i += olen;
	}
	return 0;
}

/* tcp_input_ts_update - RFC 7323 4.3: TS.Recent <- SEG.TSval when the
 * segment covers Last.ACK.sent */
void tcp_input_ts_update(struct tcp_conn *c, const struct tcp_seg *g)
{
	if (g->has_ts && SEQ_LEQ(g->seq, c->last_ack_sent) &&
	    (int32_t)(g->tsval - c->ts_recent) >= 0)
		c->ts_recent = g->tsval;
}

/* tcp_input_fast - established in-order data / new ACK (header prediction) */
static void tcp_input_fast(struct net_stack *s, struct tcp_conn *c,
			   const struct tcp_seg *g)
{
	struct tcp_state *t = s->tcp;

	t->st.fast_path++;
	if (c->flags & TCP_CF_TS)
		tcp_input_ts_update(c, g);
	if (SEQ_GT(g->ack, c->snd_una)) {
		tcp_rtt_on_ack(s, c, g);
		tcp_state_ack_data(s, c, g->ack);
	}
	tcp_state_window_update(s, c, g);
	if (g->len) {
		uint32_t pos = c->rcv_head + c->rcv_len, sz = s->cfg.rcvbuf;
		uint32_t first;

		if (pos >= sz)
			pos -= sz;
		first = sz - pos < g->len ? sz - pos : g->len;
		memcpy(c->rcv_buf + pos, g->data, first);
		if (first < g->len)
			memcpy(c->rcv_buf, g->data + first, g->len - first);
		c->rcv_len += g->len;
		c->rcv_nxt += g->len;
		t->st.rx_bytes += g->len;
		tcp_ev_post(s, c, NET_EV_READABLE);
		/* RFC 5681 4.2 / RFC 9293 3.8.6.3: ACK every second segment */
		if (++c->segs_unacked >= 2) {
			c->flags |= TCP_CF_ACK_NOW;
			tcp_out_mark(s, c);
		} else {
			tcp_timer_delack(s, c);
		}
	}
}

/* tcp_input - validate one segment, find its owner and process it */
void tcp_input(struct net_stack *s, const struct net_ipinfo *ip,
	       const uint8_t *seg, uint16_t len)
{
	struct tcp_state *t = s->tcp;
	struct tcp_seg g;
	struct tcp_conn *c;
	struct tcp_tw *w;
	struct tcp_listener *l;
	unsigned hlen;

	if (t == NULL)
		return;
	t->st.rx_segs++;
	if (len < TCP_HLEN) {
		t->st.bad_hdr++;
		return;
	}
	hlen = (unsigned)(seg[12] >> 4) * 4;
	if (hlen < TCP_HLEN || hlen > len) {
		t->st.bad_hdr++;
		return;
	}
	if (ip->l4_csum_bad) {
		t->st.bad_csum++;
		return;
	}
	if (!ip->l4_csum_good) {
		uint32_t sum = net_csum_pseudo(ip->src, ip->dst, NET_IPPROTO_TCP,
					       len);
		sum = net_csum_partial(seg, len, sum);
		if (net_csum_fold(sum) != 0) {
			t->st.bad_csum++;
			return;
		}
	}
	memset(&g, 0, offsetof(struct tcp_seg, sack));
	g.src = ip->src;
	g.dst = ip->dst;
	g.sport = tcp_rd16(seg);
	g.dport = tcp_rd16(seg + 2);
	g.seq = tcp_rd32(seg + 4);
	g.ack = tcp_rd32(seg + 8);
	g.flags = seg[13];
	g.win = tcp_rd16(seg + 14);
	g.hlen = (uint8_t)hlen;
	g.data = seg + hlen;
	g.len = (uint16_t)(len - hlen);
	if (g.sport == 0 || g.dport == 0) {
		t->st.bad_hdr++;
		return;
	}
	if (hlen > TCP_HLEN) {
		const uint8_t *o = seg + TCP_HLEN;
		if (hlen == TCP_HLEN + 12 && o[0] == 1 && o[1] == 1 &&
		    o[2] == 8 && o[3] == 10) {
			g.has_ts = 1; /* the common case: NOP NOP TS */
			g.tsval = tcp_rd32(o + 4);
			g.tsecr = tcp_rd32(o + 8);
		} else {
			tcp_input_parse_opts(o, hlen - TCP_HLEN, &g);
		}
	}

	c = tcp_flow_lookup(s, g.dst, g.src, g.dport, g.sport);
	if (c != NULL) {
		if (c->state == TCPS_ESTABLISHED &&
		    (g.flags & (TCP_SYN | TCP_FIN | TCP_RST | TCP_URG |
				TCP_ACK)) == TCP_ACK &&
		    g.seq == c->rcv_nxt &&
		    (!(c->flags & TCP_CF_TS) ||
		     (g.has_ts && (int32_t)(g.tsval - c->ts_recent) >= 0)) &&
		    !(c->flags & (TCP_CF_RECOVERY | TCP_CF_PERSIST)) &&
		    c->n_ooo == 0 && c->n_sack == 0 && g.n_sack == 0 &&
		    c->dupacks == 0 &&
		    SEQ_LEQ(g.ack, c->snd_max) &&
		    (SEQ_GT(g.ack, c->snd_una) ||
		     (g.ack == c->snd_una && g.len > 0)) &&
		    g.len <= tcp_rcv_space(s, c)) {
			tcp_input_fast(s, c, &g);
			return;
		}
		tcp_state_input(s, c, &g);
		return;
	}
	w = tcp_tw_lookup(s, g.dst, g.src, g.dport, g.sport);
	if (w != NULL && tcp_tw_input(s, w, &g) == 0)
		return;
	l = tcp_open_find_listener(s, g.dport);
	if (l != NULL) {
		tcp_open_listen_input(s, l, &g);
		return;
	}
	t->st.closed_port_segs++;
	tcp_output_reply_rst(s, &g);
}

/* tcp_icmp_error - ICMP unreachable quoting one of our segments */
void tcp_icmp_error(struct net_stack *s, uint8_t type, uint8_t code,
		    const uint8_t *inner, uint16_t len)
{
	struct tcp_state *t = s->tcp;
	struct tcp_conn *c;
	unsigned ihl;
	uint32_t src, dst, seq;
	uint16_t sport, dport;

	if (t == NULL || len < 28)
		return;
	ihl = (unsigned)(inner[0] & 0x0f) * 4;
	if (ihl < 20 || len < ihl + 8 || inner[9] != NET_IPPROTO_TCP)
		return;
	t->st.icmp_errors++;
	src = tcp_rd32(inner + 12);
	dst = tcp_rd32(inner + 16);
	sport = tcp_rd16(inner + ihl);
	dport = tcp_rd16(inner + ihl + 2);
	seq = tcp_rd32(inner + ihl + 4);
	c = tcp_flow_lookup(s, src, dst, sport, dport);
	if (c == NULL || !SEQ_GEQ(seq, c->snd_una) || !SEQ_LT(seq, c->snd_max))
		return;
	/* RFC 1122 4.2.3.9: hard errors only matter while connecting; in a
	 * synchronized state they are soft errors and are ignored. Type 3
	 * code 4 (fragmentation needed) would drive PMTUD: not implemented,
	 * we send at most the configured MTU with DF clear. */
	if (type != 3 || code == 4 || c->state != TCPS_SYN_SENT)
		return;
	t->st.connect_fail++;
	tcp_conn_finish(s, c,
			(code == 2 || code == 3) ? NET_ECONNREFUSED
						 : NET_EHOSTUNREACH);
}
