/*
 * tcp_open.c - connection establishment: listeners (net_listen,
 * net_unlisten), passive open from LISTEN, SYN cookies, keyed ISNs and
 * active open (net_connect).
 *
 * ISN (RFC 6528): ISN = M + F(4-tuple, key) with M the 4 us clock and F
 * SipHash-2-4 keyed by cfg.secret[0..15]. The other half of the same hash
 * gives the connection's timestamp offset (RFC 7323 7.1), so a SYN-cookie
 * connection gets the same offset without any stored state.
 *
 * SYN cookies (RFC 4987 3.6): used when a listener's SYN_RECV count
 * reaches cfg.syn_backlog or free conns fall below cfg.conn_low_water (or
 * the pool is empty). Cookie = H1(tuple) + peer ISN + (count << 24) +
 * ((H2(tuple, count) + mss_index) mod 2^24), count = 64 s periods, valid
 * for 2 periods back, H keyed with cfg.secret[16..31]. With timestamps the
 * low 6 bits of our TSval carry the peer's window scale (4 bits, 15 =
 * none) and SACK-permitted (1 bit); without timestamps a cookie connection
 * has no window scaling and no SACK (the SYN-ACK does not offer them).
 * If the cookie validates but the pool is empty, the ACK is refused with
 * a RST and counted (tcp.syn_refused_nomem): never a silent stall.
 */
#include <string.h>

#include "tcp.h"
#include "siphash.h"

#define TCP_EPH_LO 32768u
#define TCP_EPH_HI 60999u
#define TCP_COOKIE_MAX_AGE 2
#define TCP_COOKIE_NOWS 0xfu
#define TCP_COOKIE_SACK 0x10u
#define TCP_COOKIE_OPTMASK 0x3fu

static const uint16_t tcp_cookie_mss[] = { 536, 1300, 1440, 1460 };
#define TCP_COOKIE_NMSS (sizeof(tcp_cookie_mss) / sizeof(tcp_cookie_mss[0]))

/* tcp_open_tuple_hash - SipHash of the 4-tuple (and an extra word) */
static uint64_t tcp_open_tuple_hash(const uint8_t key[16], uint32_t laddr,
				    uint32_t raddr, uint16_t lport,
				    uint16_t rport, uint32_t extra)
{
	uint32_t w[4] = { laddr, raddr, (uint32_t)lport << 16 | rport, extra };

	return siphash_24(key, w, sizeof(w));
}

/* tcp_open_isn - RFC 6528 initial sequence number */
uint32_t tcp_open_isn(const struct net_stack *s, uint32_t laddr,
		      uint32_t raddr, uint16_t lport, uint16_t rport)
{
	uint64_t h = tcp_open_tuple_hash(s->tcp->isn_key, laddr, raddr, lport,
					 rport, 0);
	return (uint32_t)h + (uint32_t)(s->now / 4);
}

/* tcp_open_ts_off - per-connection TSval offset (RFC 7323 7.1) */
uint32_t tcp_open_ts_off(const struct net_stack *s, uint32_t laddr,
			 uint32_t raddr, uint16_t lport, uint16_t rport)
{
	uint64_t h = tcp_open_tuple_hash(s->tcp->isn_key, laddr, raddr, lport,
					 rport, 0);
	return (uint32_t)(h >> 32);
}

/* tcp_open_find_listener - listener on a local port, or NULL */
struct tcp_listener *tcp_open_find_listener(struct net_stack *s,
					    uint16_t port)
{
	struct tcp_state *t = s->tcp;

	for (uint32_t i = 0; i < t->nlisteners; i++)
		if (t->listeners[i].used && t->listeners[i].port == port)
			return &t->listeners[i];
	return NULL;
}

/* tcp_open_syn_options - adopt the options of the peer's SYN */
void tcp_open_syn_options(struct net_stack *s, struct tcp_conn *c,
			  const struct tcp_seg *g)
{
	c->peer_mss = g->has_mss ? g->mss : 536; /* RFC 9293 3.7.1 */
	if (c->peer_mss < 64)
		c->peer_mss = 64;
	if (g->has_ws) {
		c->flags |= TCP_CF_WS;
		c->snd_wscale = g->ws;
		c->rcv_wscale = s->tcp->rcv_wscale;
	} else {
		c->flags &= ~TCP_CF_WS;
		c->snd_wscale = c->rcv_wscale = 0;
	}
	if (g->sack_ok)
		c->flags |= TCP_CF_SACK;
	else
		c->flags &= ~TCP_CF_SACK;
	if (g->has_ts) {
		c->flags |= TCP_CF_TS;
		c->ts_recent = g->tsval;
	} else {
		c->flags &= ~TCP_CF_TS;
	}
	tcp_conn_set_mss(s, c);
}

/* tcp_open_cookie_count - 64-second period counter */
static uint32_t tcp_open_cookie_count(const struct net_stack *s)
{
	return (uint32_t)(s->now / 64000000u);
}

/* tcp_open_cookie - our ISN for a cookie SYN-ACK (RFC 4987 3.6) */
static uint32_t tcp_open_cookie(const struct net_stack *s,
				const struct tcp_seg *g, uint32_t count,
				uint32_t mssind)
{
	const uint8_t *k = s->tcp->cookie_key;
	uint32_t h1 = (uint32_t)tcp_open_tuple_hash(k, g->dst, g->src, g->dport,
						    g->sport, 0xffffffffu);
	uint32_t h2 = (uint32_t)tcp_open_tuple_hash(k, g->dst, g->src, g->dport,
						    g->sport, count);

	return h1 + g->seq + (count << 24) + ((h2 + mssind) & 0xffffff);
}

/* tcp_open_send_cookie - stateless SYN-ACK for a SYN under pressure */
static void tcp_open_send_cookie(struct net_stack *s, const struct tcp_seg *g)
{
	struct tcp_state *t = s->tcp;
	struct tcp_txopt o;
	uint32_t mssind = 0, peer = g->has_mss ? g->mss : 536, iss;
	uint32_t rcv = s->cfg.rcvbuf > 65535 ? 65535 : s->cfg.rcvbuf;

	for (uint32_t i = 0; i < TCP_COOKIE_NMSS; i++)
		if (tcp_cookie_mss[i] <= peer)
			mssind = i;
	iss = tcp_open_cookie(s, g, tcp_open_cookie_count(s), mssind);
	memset(&o, 0, sizeof(o));
	o.syn = 1;
	o.mss = t->mss_local;
	if (g->has_ts) {
		uint32_t bits = g->has_ws ? g->ws : TCP_COOKIE_NOWS;
		uint32_t ts = tcp_now_ms(s) +
			      tcp_open_ts_off(s, g->dst, g->src, g->dport,
					      g->sport);
		if (g->sack_ok)
			bits |= TCP_COOKIE_SACK;
		o.ts = 1;
		/* below the real clock so later TSvals never go backwards */
		o.tsval = ((ts - 64) & ~TCP_COOKIE_OPTMASK) | bits;
		o.tsecr = g->tsval;
		o.ws_ok = g->has_ws;
		o.ws = t->rcv_wscale;
		o.sack_ok = g->sack_ok;
	}
	t->st.syncookies_sent++;
	tcp_output_raw(s, g->dst, g->src, g->dport, g->sport, iss, g->seq + 1,
		       TCP_SYN | TCP_ACK, (uint16_t)rcv, &o, NULL, 0, 0);
}

/* tcp_open_cookie_check - validate an ACK's cookie; mss index or -1 */
static int tcp_open_cookie_check(const struct net_stack *s,
				 const struct tcp_seg *g)
{
	const uint8_t *k = s->tcp->cookie_key;
	uint32_t cookie = g->ack - 1, peer_isn = g->seq - 1;
	uint32_t now = tcp_open_cookie_count(s), h1, h2, diff, age, cnt, idx;

	h1 = (uint32_t)tcp_open_tuple_hash(k, g->dst, g->src, g->dport,
					   g->sport, 0xffffffffu);
	diff = cookie - h1 - peer_isn;
	age = (now - (diff >> 24)) & 0xff;
	if (age > TCP_COOKIE_MAX_AGE)
		return -1;
	cnt = now - age;
	h2 = (uint32_t)tcp_open_tuple_hash(k, g->dst, g->src, g->dport,
					   g->sport, cnt);
	idx = (diff - h2) & 0xffffff;
	return idx < TCP_COOKIE_NMSS ? (int)idx : -1;
}

/* tcp_open_conn_init - fields common to passive and active opens */
static void tcp_open_conn_init(struct net_stack *s, struct tcp_conn *c,
			       uint32_t laddr, uint32_t raddr, uint16_t lport,
			       uint16_t rport)
{
	c->laddr = laddr;
	c->raddr = raddr;
	c->lport = lport;
	c->rport = rport;
	c->ts_off = tcp_open_ts_off(s, laddr, raddr, lport, rport);
	c->rto_us = s->cfg.rto_init_ms * 1000;
	c->peer_mss = 536;
	tcp_conn_set_mss(s, c);
}

/* tcp_open_cookie_ack - ACK in LISTEN: maybe completes a cookie handshake */
static void tcp_open_cookie_ack(struct net_stack *s, struct tcp_listener *l,
				struct tcp_seg *g)
{
	struct tcp_state *t = s->tcp;
	struct tcp_conn *c;
	int mi = tcp_open_cookie_check(s, g);
	uint32_t rcv = s->cfg.rcvbuf > 65535 ? 65535 : s->cfg.rcvbuf;

	if (mi < 0) {
		t->st.syncookies_bad++;
		tcp_output_reply_rst(s, g);
		return;
	}
	c = tcp_conn_alloc(s);
	if (c == NULL) {
		t->st.syn_refused_nomem++;
		tcp_output_reply_rst(s, g);
		return;
	}
	tcp_open_conn_init(s, c, g->dst, g->src, g->dport, g->sport);
	c->irs = g->seq - 1;
	c->rcv_nxt = g->seq;
	c->last_ack_sent = c->rcv_nxt;
	c->rcv_adv = c->rcv_nxt + rcv;
	c->iss = g->ack - 1;
	c->snd_una = c->snd_nxt = c->snd_max = c->snd_buf_seq = g->ack;
	c->peer_mss = tcp_cookie_mss[mi];
	if (g->has_ts) {
		uint32_t bits = g->tsecr & TCP_COOKIE_OPTMASK;
		c->flags |= TCP_CF_TS;
		c->ts_recent = g->tsval;
		if ((bits & TCP_COOKIE_NOWS) != TCP_COOKIE_NOWS) {
			c->flags |= TCP_CF_WS;
			c->snd_wscale = (uint8_t)(bits & TCP_COOKIE_NOWS);
			if (c->snd_wscale > 14)
				c->snd_wscale = 14;
			c->rcv_wscale = t->rcv_wscale;
		}
		if (bits & TCP_COOKIE_SACK)
			c->flags |= TCP_CF_SACK;
	}
	tcp_conn_set_mss(s, c);
	c->snd_wnd = c->max_snd_wnd = (uint32_t)g->win << c->snd_wscale;
	c->snd_wl1 = g->seq;
	c->snd_wl2 = g->ack;
	c->listener = (uint16_t)(l - t->listeners);
	c->user = l->user;
	c->flags |= TCP_CF_COOKIE;
	tcp_cc_init(s, c);
	tcp_conn_set_state(s, c, TCPS_ESTABLISHED);
	tcp_flow_insert(s, c);
	t->st.syncookies_ok++;
	t->st.accepts++;
	tcp_ev_post(s, c, NET_EV_ACCEPTED);
	if (g->len || (g->flags & TCP_FIN))
		tcp_state_input(s, c, g); /* data riding on the third ACK */
}

/* tcp_open_listen_input - RFC 9293 3.10.7.2 (LISTEN) */
void tcp_open_listen_input(struct net_stack *s, struct tcp_listener *l,
			   struct tcp_seg *g)
{
	struct tcp_state *t = s->tcp;
	struct tcp_conn *c;

	if (g->flags & TCP_RST)
		return;
	if ((g->flags & (TCP_ACK | TCP_SYN)) == TCP_ACK) {
		tcp_open_cookie_ack(s, l, g);
		return;
	}
	if (g->flags & TCP_ACK) {
		tcp_output_reply_rst(s, g);
		return;
	}
	if (!(g->flags & TCP_SYN))
		return;
	if (g->src == 0 || g->src >= 0xe0000000u) {
		t->st.syn_dropped++;
		return;
	}
	if (l->syn_recv >= s->cfg.syn_backlog ||
	    t->n_free < s->cfg.conn_low_water || t->n_free == 0) {
		tcp_open_send_cookie(s, g);
		return;
	}
	c = tcp_conn_alloc(s);
	tcp_open_conn_init(s, c, g->dst, g->src, g->dport, g->sport);
	c->irs = g->seq;
	c->rcv_nxt = g->seq + 1;
	c->rcv_adv = c->last_ack_sent = c->rcv_nxt;
	c->iss = tcp_open_isn(s, c->laddr, c->raddr, c->lport, c->rport);
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	c->snd_buf_seq = c->iss + 1;
	c->snd_wnd = g->win;
	tcp_open_syn_options(s, c, g);
	c->listener = (uint16_t)(l - t->listeners);
	c->flags |= TCP_CF_SYNQ | TCP_CF_SYN_OUT;
	l->syn_recv++;
	c->user = l->user;
	if (g->len)
		t->st.rx_data_dropped++; /* SYN text: not ACKed, resent later */
	tcp_conn_set_state(s, c, TCPS_SYN_RECV);
	tcp_flow_insert(s, c);
	c->rto_at = s->now + tcp_rto_us(s, c);
	tcp_timer_update(s, c);
	tcp_out_mark(s, c);
}

/* net_listen - accept connections on port (-NET_EADDRINUSE/-NET_ENOMEM) */
int net_listen(struct net_stack *s, uint16_t port, void *user)
{
	struct tcp_state *t = s ? s->tcp : NULL;

	if (t == NULL || port == 0)
		return -NET_EINVAL;
	if (tcp_open_find_listener(s, port))
		return -NET_EADDRINUSE;
	for (uint32_t i = 0; i < t->nlisteners; i++) {
		struct tcp_listener *l = &t->listeners[i];
		if (!l->used) {
			l->used = 1;
			l->port = port;
			l->user = user;
			l->syn_recv = 0;
			return 0;
		}
	}
	return -NET_ENOMEM;
}

/* net_unlisten - stop accepting on port; half-open (SYN_RECV) connections
 * of this listener are reset, established ones stay */
int net_unlisten(struct net_stack *s, uint16_t port)
{
	struct tcp_state *t = s ? s->tcp : NULL;
	struct tcp_listener *l;
	uint32_t idx;

	if (t == NULL)
		return -NET_EINVAL;
	l = tcp_open_find_listener(s, port);
	if (l == NULL)
		return -NET_EINVAL;
	idx = (uint32_t)(l - t->listeners);
	for (uint32_t i = 0; i < t->nconns && l->syn_recv; i++) {
		struct tcp_conn *c = &t->conns[i];
		if ((c->flags & TCP_CF_USED) && (c->flags & TCP_CF_SYNQ) &&
		    c->listener == idx) {
			tcp_output_rst(s, c);
			tcp_conn_finish(s, c, NET_ECONNABORTED);
		}
	}
	l->used = 0;
	l->user = NULL;
	l->syn_recv = 0;
	return 0;
}

/* tcp_open_port_free - is laddr:sport -> daddr:dport unused (full
 * connections and TIME_WAIT) */
static bool tcp_open_port_free(struct net_stack *s, uint32_t laddr,
			       uint32_t daddr, uint16_t sport, uint16_t dport)
{
	return sport != 0 &&
	       tcp_flow_lookup(s, laddr, daddr, sport, dport) == NULL &&
	       tcp_tw_lookup(s, laddr, daddr, sport, dport) == NULL;
}

/* tcp_open_pick_port - source port via io.pick_sport (RSS-aware), retried
 * on 4-tuple collisions, else from our ephemeral range; 0 if none */
static uint16_t tcp_open_pick_port(struct net_stack *s, uint32_t daddr,
				   uint16_t dport)
{
	struct tcp_state *t = s->tcp;
	uint32_t laddr = s->cfg.ip, range = TCP_EPH_HI - TCP_EPH_LO + 1;
	uint16_t sp;

	if (s->io.pick_sport != NULL) {
		for (unsigned a = 0; a < 64; a++) {
			if (s->io.pick_sport(s->io.opaque, laddr, daddr, dport,
					     a, &sp) < 0)
				break;
			if (tcp_open_port_free(s, laddr, daddr, sp, dport))
				return sp;
		}
	}
	for (uint32_t k = 0; k < range; k++) {
		sp = (uint16_t)(TCP_EPH_LO + (t->eph_next++ % range));
		if (tcp_open_port_free(s, laddr, daddr, sp, dport))
			return sp;
	}
	return 0;
}

/* net_connect - active open (RFC 9293 3.10.1): SYN leaves at next poll */
int net_connect(struct net_stack *s, uint32_t daddr, uint16_t dport,
		void *user, uint64_t now, net_sock_t *out)
{
	struct tcp_state *t = s ? s->tcp : NULL;
	struct tcp_conn *c;
	uint16_t sp;

	if (out)
		*out = NET_SOCK_INVALID;
	if (t == NULL || out == NULL || daddr == 0 || dport == 0)
		return -NET_EINVAL;
	if (now > s->now)
		s->now = now;
	if (t->n_free == 0)
		return -NET_ENOMEM;
	sp = tcp_open_pick_port(s, daddr, dport);
	if (sp == 0)
		return -NET_EADDRINUSE;
	c = tcp_conn_alloc(s);
	tcp_open_conn_init(s, c, s->cfg.ip, daddr, sp, dport);
	c->iss = tcp_open_isn(s, c->laddr, c->raddr, c->lport, c->rport);
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	c->snd_buf_seq = c->iss + 1;
	c->rcv_wscale = t->rcv_wscale;
	c->user = user;
	c->flags |= TCP_CF_ACTIVE | TCP_CF_APP_SEEN | TCP_CF_SYN_OUT;
	tcp_conn_set_state(s, c, TCPS_SYN_SENT);
	tcp_flow_insert(s, c);
	c->rto_at = s->now + tcp_rto_us(s, c);
	tcp_timer_update(s, c);
	tcp_out_mark(s, c);
	*out = tcp_sock_handle(t, c);
	return 0;
}
