/*
 * icmp.c - ICMP for a host (RFC 792, RFC 1122 3.2.2).
 *
 * Input:  ICMP messages addressed to us (ipv4.c has checked the IP header
 *         and dropped fragments and broadcasts).
 * Output: echo replies; destination unreachable (protocol/port) for
 *         datagrams we cannot deliver; errors quoting our TCP segments are
 *         passed to tcp_icmp_error with the quoted datagram.
 *
 * Echo requests are answered with the same identifier, sequence and data
 * (RFC 792, RFC 1122 3.2.2.6). Unreachables we send are rate limited by a
 * token bucket (NET_ICMP_BURST, refilled at NET_ICMP_RATE per second of
 * s->now) and never sent in answer to an ICMP error, to a broadcast or
 * multicast destination or source, or to a non-initial fragment
 * (RFC 1122 3.2.2). They quote the offending IP header and as much of its
 * payload as fits in 576 bytes (RFC 1812 4.3.2.3; RFC 792 requires 8).
 */
#include "net_l3.h"

#define ICMP_ECHO_REPLY    0
#define ICMP_DEST_UNREACH  3
#define ICMP_ECHO          8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_HLEN          8
#define ICMP_ERR_MAX_IP    576   /* total length of an ICMP error we send */

/* icmp_is_error - message types that report errors (never answered) */
static bool icmp_is_error(uint8_t type)
{
	return type == ICMP_DEST_UNREACH || type == 4 /* source quench */ ||
	       type == 5 /* redirect */ || type == ICMP_TIME_EXCEEDED ||
	       type == 12 /* parameter problem */;
}

/* icmp_echo - answer an echo request with the same payload */
static void icmp_echo(struct net_stack *s, const struct net_ipinfo *ip,
		      const uint8_t *icmp, uint16_t len)
{
	struct net_txbuf tb;
	uint8_t *out;
	uint16_t c;

	s->l3.icmp_rx_echo++;
	if (net_tx_alloc(s, &tb) < 0)
		return;
	if ((unsigned)NET_L4_OFF + len > tb.cap ||
	    (unsigned)NET_IP_HLEN + len > s->cfg.mtu) {
		s->l3.ip_tx_bad_len++;
		s->io.tx_free(s->io.opaque, &tb);
		return;
	}
	out = tb.data + NET_L4_OFF;
	memcpy(out, icmp, len);
	out[0] = ICMP_ECHO_REPLY;
	out[1] = 0;
	out[2] = out[3] = 0;
	c = net_csum_fold(net_csum_partial(out, len, 0));
	memcpy(out + 2, &c, 2);
	if (ipv4_send(s, &tb, ip->src, NET_IPPROTO_ICMP, len, ip->tos) == 0)
		s->l3.icmp_tx_echo_reply++;
}

/* icmp_error_in - unreachable/time exceeded: hand quoted TCP to TCP */
static void icmp_error_in(struct net_stack *s, uint8_t type, uint8_t code,
			  const uint8_t *icmp, uint16_t len)
{
	const uint8_t *inner = icmp + ICMP_HLEN;
	uint16_t ilen = (uint16_t)(len - ICMP_HLEN);
	unsigned ihl;

	s->l3.icmp_rx_unreach++;
	/* quoted datagram: an IPv4 header plus >= 8 bytes (RFC 792) */
	if (ilen < NET_IP_HLEN + 8 || (inner[0] >> 4) != 4 ||
	    (ihl = (inner[0] & 0x0fu) * 4u) < NET_IP_HLEN ||
	    ilen < ihl + 8) {
		s->l3.icmp_bad++;
		return;
	}
	if (inner[9] != NET_IPPROTO_TCP || net_rd32(inner + 12) != s->cfg.ip) {
		s->l3.icmp_rx_ignored++;
		return;
	}
	tcp_icmp_error(s, type, code, inner, ilen);
}

/* icmp_input - verify the checksum and dispatch by type */
void icmp_input(struct net_stack *s, const struct net_ipinfo *ip,
		const uint8_t *icmp, uint16_t len)
{
	if (len < ICMP_HLEN ||
	    net_csum_fold(net_csum_partial(icmp, len, 0)) != 0) {
		s->l3.icmp_bad++;
		return;
	}
	switch (icmp[0]) {
	case ICMP_ECHO:
		if (icmp[1] != 0) {
			s->l3.icmp_bad++;
			return;
		}
		icmp_echo(s, ip, icmp, len);
		break;
	case ICMP_DEST_UNREACH:
	case ICMP_TIME_EXCEEDED:
		icmp_error_in(s, icmp[0], icmp[1], icmp, len);
		break;
	default: /* echo replies, redirects, quench, ...: nothing to do */
		s->l3.icmp_rx_ignored++;
		break;
	}
}

/* icmp_rate_ok - take one token from the error bucket (refill by s->now) */
static bool icmp_rate_ok(struct net_stack *s)
{
	const uint64_t per_token = 1000000u / NET_ICMP_RATE;
	uint64_t elapsed = s->now > s->icmp_tokens_ts ?
			   s->now - s->icmp_tokens_ts : 0;
	uint64_t add = elapsed / per_token;

	if (add) {
		if (s->icmp_tokens + add >= NET_ICMP_BURST) {
			s->icmp_tokens = NET_ICMP_BURST;
			s->icmp_tokens_ts = s->now;
		} else {
			s->icmp_tokens += (uint32_t)add;
			s->icmp_tokens_ts += add * per_token;
		}
	}
	if (s->icmp_tokens == 0)
		return false;
	s->icmp_tokens--;
	return true;
}

/* icmp_send_unreach - destination unreachable quoting the datagram */
void icmp_send_unreach(struct net_stack *s, const struct net_ipinfo *ip,
		       uint8_t code, const uint8_t *l4, uint16_t l4_len)
{
	struct net_txbuf tb;
	unsigned room, qip, ql4, len;
	uint8_t *out;
	uint16_t c;

	/* RFC 1122 3.2.2: not for ICMP errors, broadcasts, fragments */
	if (ip->proto == NET_IPPROTO_ICMP &&
	    (l4_len < 1 || icmp_is_error(l4[0])))
		return;
	if (ip->dst != s->cfg.ip || net_ip_martian(ip->src) ||
	    (net_rd16(ip->ip_hdr + 6) & 0x1fff))
		return;
	if (!icmp_rate_ok(s)) {
		s->l3.icmp_rate_limited++;
		return;
	}
	if (net_tx_alloc(s, &tb) < 0)
		return;
	room = ICMP_ERR_MAX_IP;
	if (room > s->cfg.mtu)
		room = s->cfg.mtu;
	if (room > (unsigned)tb.cap - NET_ETH_HLEN)
		room = (unsigned)tb.cap - NET_ETH_HLEN;
	room -= NET_IP_HLEN + ICMP_HLEN;
	qip = ip->ip_hdr_len;
	if (qip + 8 > room) {
		s->l3.ip_tx_bad_len++;
		s->io.tx_free(s->io.opaque, &tb);
		return;
	}
	ql4 = l4_len < room - qip ? l4_len : room - qip;
	len = ICMP_HLEN + qip + ql4;
	out = tb.data + NET_L4_OFF;
	out[0] = ICMP_DEST_UNREACH;
	out[1] = code;
	out[2] = out[3] = 0;
	memset(out + 4, 0, 4);
	memcpy(out + ICMP_HLEN, ip->ip_hdr, qip);
	memcpy(out + ICMP_HLEN + qip, l4, ql4);
	c = net_csum_fold(net_csum_partial(out, len, 0));
	memcpy(out + 2, &c, 2);
	if (ipv4_send(s, &tb, ip->src, NET_IPPROTO_ICMP, (uint16_t)len, 0) == 0)
		s->l3.icmp_tx_unreach++;
}
