/*
 * net_l3.h - helpers shared by the L2/L3 modules (net_stack.c, arp.c,
 * ipv4.c, icmp.c) only: wire constants, big-endian field access, and the
 * ICMP error rate limit. Not part of the contract with TCP (net_types.h).
 */
#ifndef SLUICE_NET_L3_H
#define SLUICE_NET_L3_H

#include <string.h>

#include "net_types.h"

#define NET_ETHERTYPE_IPV4 0x0800
#define NET_ETHERTYPE_ARP  0x0806
#define NET_ETH_MIN_FRAME  60          /* without FCS; shorter frames padded */

/* ICMP error token bucket (RFC 1122 3.2.2, RFC 1812 4.3.2.8) */
#define NET_ICMP_BURST     50          /* bucket size */
#define NET_ICMP_RATE      100         /* tokens added per second */

#define NET_IP_BCAST       0xffffffffu

static inline uint16_t net_rd16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t net_rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

static inline void net_wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void net_wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* net_ip_mask - host-order netmask of a prefix length (0..32) */
static inline uint32_t net_ip_mask(uint8_t prefix_len)
{
	return prefix_len == 0 ? 0 : prefix_len >= 32 ? 0xffffffffu :
	       ~0u << (32 - prefix_len);
}

/* net_ip_martian - an address no unicast host may use as a source:
 * 0/8, 127/8, multicast/class E and limited broadcast (RFC 1122 3.2.1.3) */
static inline bool net_ip_martian(uint32_t a)
{
	uint8_t top = (uint8_t)(a >> 24);

	return top == 0 || top == 127 || top >= 224;
}

#endif
