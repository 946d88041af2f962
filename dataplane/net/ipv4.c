/*
 * ipv4.c - IPv4 input checks and demux, and IPv4 output (RFC 791, RFC 1122
 * 3.2.1 and 3.3).
 *
 * Input:  a datagram (Ethernet payload, may carry link padding) with the
 *         glue's NET_RXF_* flags; L4 data to send from TCP/ICMP.
 * Output: icmp_input / tcp_input with a struct net_ipinfo, ICMP protocol
 *         or port unreachable for other protocols; frames to arp.c.
 *
 * Input checks, each drop counted: length >= 20 and >= IHL*4 and total
 * length within the frame (ip.bad_len); version 4, IHL >= 5, TTL > 0 and
 * a unicast, non-martian source (ip.bad_header); header checksum unless
 * the NIC vouched for it (ip.bad_csum); destination our address
 * (ip.not_for_us: we serve nothing on broadcast/multicast); fragments
 * (MF or offset) are not reassembled (ip.frag_drop). IP options are
 * accepted, ignored and counted (ip.options).
 *
 * Output: route on-link if the destination shares our prefix, else via
 * cfg.gateway, else -NET_EHOSTUNREACH. Header: no options, DF set (we do
 * not fragment; TCP sizes segments from the MTU), TTL 64, a per-stack
 * ip_id counter. Checksums in software unless offloaded by the config.
 */
#include "net_l3.h"

#define IP_DF       0x4000
#define IP_MF       0x2000
#define IP_OFFMASK  0x1fff
#define IP_TTL_OUT  64

/* net_tx_alloc - a frame buffer from the glue; failures counted */
int net_tx_alloc(struct net_stack *s, struct net_txbuf *tb)
{
	if (s->io.tx_alloc(s->io.opaque, tb) < 0) {
		s->l3.tx_alloc_fail++;
		return -NET_ENOMEM;
	}
	return 0;
}

/* ipv4_is_bcast - limited or subnet-directed broadcast for our prefix */
static inline bool ipv4_is_bcast(const struct net_stack *s, uint32_t a)
{
	uint32_t m = net_ip_mask(s->cfg.prefix_len);

	return a == NET_IP_BCAST ||
	       (s->cfg.prefix_len < 31 && (a & ~m) == ~m &&
		(a & m) == (s->cfg.ip & m));
}

/* ipv4_input - RFC 791 / RFC 1122 3.2.1 checks, then demux by protocol */
void ipv4_input(struct net_stack *s, const uint8_t *pkt, uint16_t len,
		uint32_t rxflags)
{
	struct net_ipinfo info;
	unsigned hlen, tot;
	uint16_t frag;

	s->l3.ip_rx++;
	if (len < NET_IP_HLEN) {
		s->l3.ip_bad_len++;
		return;
	}
	hlen = (pkt[0] & 0x0fu) * 4u;
	if ((pkt[0] >> 4) != 4 || hlen < NET_IP_HLEN) {
		s->l3.ip_bad_header++;
		return;
	}
	tot = net_rd16(pkt + 2);
	if (hlen > len || tot < hlen || tot > len) {
		s->l3.ip_bad_len++;
		return;
	}
	if ((rxflags & NET_RXF_IP_CSUM_BAD) ||
	    (!(rxflags & NET_RXF_IP_CSUM_GOOD) &&
	     net_csum_fold(net_csum_partial(pkt, hlen, 0)) != 0)) {
		s->l3.ip_bad_csum++;
		return;
	}
	info.src = net_rd32(pkt + 12);
	info.dst = net_rd32(pkt + 16);
	info.ttl = pkt[8];
	info.tos = pkt[1];
	info.proto = pkt[9];
	/* TTL 0 may not be sent (RFC 1122 3.2.1.7); a source must be a
	 * unicast address of someone else (RFC 1122 3.2.1.3) */
	if (info.ttl == 0 || net_ip_martian(info.src) ||
	    ipv4_is_bcast(s, info.src) || info.src == s->cfg.ip) {
		s->l3.ip_bad_header++;
		return;
	}
	if (info.dst != s->cfg.ip) {
		s->l3.ip_not_for_us++;
		return;
	}
	frag = net_rd16(pkt + 6);
	if (frag & (IP_MF | IP_OFFMASK)) {
		s->l3.ip_frag_drop++;
		return;
	}
	if (hlen > NET_IP_HLEN)
		s->l3.ip_options++;
	info.l4_csum_good = (rxflags & NET_RXF_L4_CSUM_GOOD) != 0;
	info.l4_csum_bad = (rxflags & NET_RXF_L4_CSUM_BAD) != 0;
	info.ip_hdr = pkt;
	info.ip_hdr_len = (uint16_t)hlen;

	switch (info.proto) {
	case NET_IPPROTO_TCP:
		tcp_input(s, &info, pkt + hlen, (uint16_t)(tot - hlen));
		break;
	case NET_IPPROTO_ICMP:
		icmp_input(s, &info, pkt + hlen, (uint16_t)(tot - hlen));
		break;
	default:
		/* no UDP sockets: every port is closed (RFC 1122 4.1.3.1);
		 * other protocols are not implemented (RFC 1122 3.2.2.1) */
		s->l3.ip_unknown_proto++;
		icmp_send_unreach(s, &info, info.proto == NET_IPPROTO_UDP ? 3 : 2,
				  pkt + hlen, (uint16_t)(tot - hlen));
		break;
	}
}

/* ipv4_send - route, write IP + Ethernet headers, checksums, hand to ARP */
int ipv4_send(struct net_stack *s, struct net_txbuf *tb, uint32_t dst,
	      uint8_t proto, uint16_t l4_len, uint8_t tos)
{
	uint32_t mask = net_ip_mask(s->cfg.prefix_len);
	uint32_t nexthop, txflags = 0;
	uint16_t tot = (uint16_t)(NET_IP_HLEN + l4_len);
	uint8_t *f = tb->data, *ip = f + NET_ETH_HLEN, *l4 = f + NET_L4_OFF;

	if ((unsigned)NET_IP_HLEN + l4_len > s->cfg.mtu ||
	    (unsigned)NET_L4_OFF + l4_len > tb->cap) {
		s->l3.ip_tx_bad_len++;
		s->io.tx_free(s->io.opaque, tb);
		return -NET_EINVAL;
	}
	if (((dst ^ s->cfg.ip) & mask) == 0)
		nexthop = dst;
	else if (s->cfg.gateway)
		nexthop = s->cfg.gateway;
	else
		nexthop = 0;
	if (nexthop == 0 || dst == NET_IP_BCAST || net_ip_martian(dst)) {
		s->l3.ip_no_route++;
		s->io.tx_free(s->io.opaque, tb);
		return -NET_EHOSTUNREACH;
	}

	memcpy(f + 6, s->cfg.mac, NET_ETHER_ADDR_LEN);
	net_wr16(f + 12, NET_ETHERTYPE_IPV4);
	ip[0] = 0x45;
	ip[1] = tos;
	net_wr16(ip + 2, tot);
	net_wr16(ip + 4, s->ip_id++);
	net_wr16(ip + 6, IP_DF);
	ip[8] = IP_TTL_OUT;
	ip[9] = proto;
	ip[10] = ip[11] = 0;
	net_wr32(ip + 12, s->cfg.ip);
	net_wr32(ip + 16, dst);
	if (s->cfg.tx_ip_csum_offload) {
		txflags |= NET_TXF_IP_CSUM;
	} else {
		uint16_t c = net_csum_fold(net_csum_partial(ip, NET_IP_HLEN, 0));

		memcpy(ip + 10, &c, 2);
	}
	if (proto == NET_IPPROTO_TCP && l4_len >= 20) {
		uint32_t ph = net_csum_pseudo(s->cfg.ip, dst, proto, l4_len);
		uint16_t c;

		l4[16] = l4[17] = 0;
		if (s->cfg.tx_tcp_csum_offload) {
			/* DPDK convention: folded, not complemented,
			 * pseudo-header sum; the NIC finishes the rest */
			c = (uint16_t)~net_csum_fold(ph);
			txflags |= NET_TXF_TCP_CSUM;
		} else {
			c = net_csum_fold(net_csum_partial(l4, l4_len, ph));
		}
		memcpy(l4 + 16, &c, 2);
	}
	return arp_resolve_send(s, nexthop, tb, (uint16_t)(NET_L4_OFF + l4_len),
				txflags);
}
