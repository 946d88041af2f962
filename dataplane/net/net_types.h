/*
 * net_types.h - internal contract between the stack's modules.
 *
 * Not for users of the stack (they include net.h). Owners:
 *   net_stack.c  net_stack_create/destroy, net_input_burst (Ethernet demux),
 *                net_poll (calls arp_timers, tcp_timers, tcp_flush),
 *                net_counters (concatenates l3 and tcp counters)
 *   net_csum.c   Internet checksum helpers (RFC 1071)
 *   arp.c        arp_*: neighbour table, pending frames, requests/replies
 *   ipv4.c       ipv4_*: header checks, demux to icmp/tcp, output
 *   icmp.c       icmp_*: echo reply, port unreachable out, errors in
 *   tcp_*.c      everything TCP and the socket API of net.h
 * L3 modules see struct tcp_state only as an opaque pointer and vice versa.
 */
#ifndef SLUICE_NET_TYPES_H
#define SLUICE_NET_TYPES_H

#include "net.h"

#define NET_ETH_HLEN 14
#define NET_IP_HLEN 20             /* we send no IP options */
#define NET_L4_OFF (NET_ETH_HLEN + NET_IP_HLEN)

#define NET_IPPROTO_ICMP 1
#define NET_IPPROTO_TCP 6
#define NET_IPPROTO_UDP 17

struct arp_table;   /* arp.c */
struct tcp_state;   /* tcp_*.c */

/* counters of the L2/L3 modules; names in net_stack.c */
struct net_l3_stats {
	uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes;
	uint64_t rx_bad_eth, rx_not_for_us, rx_unknown_ethertype;
	uint64_t arp_rx_request, arp_rx_reply, arp_tx_request, arp_tx_reply;
	uint64_t arp_bad, arp_pending_drop, arp_resolve_fail;
	uint64_t ip_rx, ip_bad_header, ip_bad_csum, ip_bad_len, ip_not_for_us;
	uint64_t ip_frag_drop, ip_options, ip_unknown_proto, ip_no_route;
	uint64_t icmp_rx_echo, icmp_tx_echo_reply, icmp_tx_unreach;
	uint64_t icmp_rx_unreach, icmp_bad, icmp_rate_limited;
	uint64_t tx_alloc_fail;
	/* added by the L3 work (appended, nothing renamed) */
	uint64_t icmp_rx_ignored;  /* echo replies, unknown types, foreign quotes */
	uint64_t ip_tx_bad_len;    /* ipv4_send asked to exceed MTU/buffer */
};

struct net_stack {
	struct net_config cfg;
	struct net_io io;
	uint64_t now;             /* last time given to the stack (us) */
	struct net_l3_stats l3;
	struct arp_table *arp;
	struct tcp_state *tcp;
	uint16_t ip_id;
	uint64_t icmp_tokens_ts;  /* ICMP error rate limit state */
	uint32_t icmp_tokens;
};

/* facts about a received IPv4 datagram handed to L4 */
struct net_ipinfo {
	uint32_t src, dst;       /* host order */
	uint8_t ttl, tos, proto;
	bool l4_csum_good;       /* NIC verified the L4 checksum */
	bool l4_csum_bad;        /* NIC found it bad */
	const uint8_t *ip_hdr;   /* for ICMP errors quoting the datagram */
	uint16_t ip_hdr_len;
};

/* --- net_csum.c -------------------------------------------------------- */
/* net_csum_partial - ones'-complement sum of len bytes, folded to 32 bits */
uint32_t net_csum_partial(const void *buf, size_t len, uint32_t sum);
/* net_csum_fold - fold and complement to a 16-bit checksum (network order
 * bytes when stored with memcpy of the returned value as-is) */
uint16_t net_csum_fold(uint32_t sum);
/* net_csum_pseudo - pseudo-header sum for TCP/UDP (addresses host order) */
uint32_t net_csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto,
			 uint16_t l4_len);

/* --- output path (ipv4.c) ------------------------------------------------ */
/* net_tx_alloc - get a frame buffer from the glue; L4 header goes at
 * tb->data + NET_L4_OFF. 0 or -NET_ENOMEM (counted in l3.tx_alloc_fail). */
int net_tx_alloc(struct net_stack *s, struct net_txbuf *tb);
/* ipv4_send - fill the IPv4 and Ethernet headers in front of l4_len bytes
 * of L4 data at tb->data + NET_L4_OFF and transmit (or hold it awaiting
 * ARP). With proto TCP it also completes the TCP checksum (software, or
 * pseudo-header + NET_TXF_TCP_CSUM when offloaded): the caller leaves the
 * TCP checksum field zero. Takes ownership of tb in every case.
 * 0, -NET_EHOSTUNREACH (no route), -NET_ENOMEM (ARP queue full). */
int ipv4_send(struct net_stack *s, struct net_txbuf *tb, uint32_t dst,
	      uint8_t proto, uint16_t l4_len, uint8_t tos);
/* ipv4_input - validate and demux one datagram (frame minus Ethernet) */
void ipv4_input(struct net_stack *s, const uint8_t *pkt, uint16_t len,
		uint32_t rxflags);

/* --- arp.c ------------------------------------------------------------- */
struct arp_table *arp_create(const struct net_config *cfg);
void arp_destroy(struct net_stack *s);
void arp_input(struct net_stack *s, const uint8_t *pkt, uint16_t len,
	       const uint8_t *src_mac);
/* arp_resolve_send - write dst MAC into frame and send, or hold + request */
int arp_resolve_send(struct net_stack *s, uint32_t nexthop,
		     struct net_txbuf *tb, uint16_t len, uint32_t txflags);
void arp_timers(struct net_stack *s);
uint64_t arp_next_deadline(const struct net_stack *s);
unsigned arp_counters(const struct net_stack *s, struct net_counter *out,
		      unsigned max); /* gauges: entries, pending */

/* --- icmp.c ------------------------------------------------------------ */
void icmp_input(struct net_stack *s, const struct net_ipinfo *ip,
		const uint8_t *icmp, uint16_t len);
/* icmp_send_unreach - port/proto unreachable quoting the datagram (rate
 * limited, never in answer to ICMP errors, broadcasts or fragments) */
void icmp_send_unreach(struct net_stack *s, const struct net_ipinfo *ip,
		       uint8_t code, const uint8_t *l4, uint16_t l4_len);

/* --- TCP, called by L3 (tcp_*.c) ------------------------------------------ */
struct tcp_state *tcp_create(struct net_stack *s);
void tcp_destroy(struct net_stack *s);      /* RST live conns, free all */
/* tcp_input - one segment (header + payload) of an IPv4 datagram */
void tcp_input(struct net_stack *s, const struct net_ipinfo *ip,
	       const uint8_t *seg, uint16_t len);
/* tcp_icmp_error - ICMP unreachable/time exceeded quoting one of our
 * segments: inner IP header + at least 8 bytes of TCP header */
void tcp_icmp_error(struct net_stack *s, uint8_t type, uint8_t code,
		    const uint8_t *inner, uint16_t len);
void tcp_timers(struct net_stack *s);       /* run expired timers at s->now */
void tcp_flush(struct net_stack *s);        /* send all pending output */
uint64_t tcp_next_deadline(const struct net_stack *s);
unsigned tcp_counters(const struct net_stack *s, struct net_counter *out,
		      unsigned max);
/* tcp_check - verify internal invariants (pool accounting, queue/sequence
 * bounds, timer membership); 0, or -1 with a reason written to why.
 * Used by the fuzzer and tests after each input. */
int tcp_check(const struct net_stack *s, char *why, size_t n);

#endif
