/*
 * net_test.h - helpers for the L2/L3 unit tests: a fake net_io capturing
 * frames, a fake TCP module recording what L3 hands it, frame builders.
 *
 * The L3 tests link the L3 sources with fake_tcp.c (not the real TCP), so
 * they test exactly the Ethernet/ARP/IPv4/ICMP contract of net_types.h.
 */
#ifndef SLUICE_NET_TEST_H
#define SLUICE_NET_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "net_types.h"

#define TU_MAX_FRAMES 512

struct tu_frame {
	uint8_t data[2048];
	uint16_t len;
	uint32_t txflags;
	uint8_t l2_len, l3_len;
};

struct tu_io {
	struct tu_frame f[TU_MAX_FRAMES];
	int n;                 /* frames sent */
	int outstanding;       /* buffers allocated and not yet sent/freed */
	int freed;             /* tx_free calls */
	int fail_alloc;        /* make the next N tx_alloc calls fail */
	uint16_t cap;          /* buffer size handed out */
};

/* what the L3 modules handed to the fake TCP */
struct tu_tcp {
	int inputs;
	uint32_t last_src;
	uint16_t last_len;
	uint8_t last_seg[2048];
	int icmp_errors;
	uint8_t err_type, err_code;
	uint16_t err_len;
	uint8_t err_inner[2048];
	int timers, flushes;
};

extern struct tu_io tu_io;
extern struct tu_tcp tu_tcp;

extern const uint8_t TU_MAC[6], TU_PEER_MAC[6], TU_BCAST[6];
#define TU_IP      0x0a000002u   /* 10.0.0.2/24 */
#define TU_PEER    0x0a000005u   /* 10.0.0.5, on-link */
#define TU_GW      0x0a000001u
#define TU_REMOTE  0xc6336401u   /* 198.51.100.1, via the gateway */

/* tu_config - the test configuration (10.0.0.2/24 gw .1) */
void tu_config(struct net_config *cfg);
/* tu_stack - reset the fakes and create a stack (cfg NULL = tu_config) */
struct net_stack *tu_stack(const struct net_config *cfg, uint64_t now);
void tu_reset(void);

/* tu_ip_frame - Ethernet + IPv4 (valid checksum) around l4; returns the
 * frame length. ihl_words > 5 adds zeroed options. */
size_t tu_ip_frame(uint8_t *f, const uint8_t *eth_dst, uint32_t src,
		   uint32_t dst, uint8_t proto, uint8_t ttl, uint16_t frag,
		   unsigned ihl_words, const uint8_t *l4, size_t l4len);
/* tu_arp_frame - Ethernet + ARP packet (60 bytes) */
size_t tu_arp_frame(uint8_t *f, const uint8_t *eth_dst, uint16_t op,
		    const uint8_t *sha, uint32_t spa, const uint8_t *tha,
		    uint32_t tpa);
/* tu_icmp - ICMP message with a correct checksum; returns its length */
size_t tu_icmp(uint8_t *out, uint8_t type, uint8_t code, uint32_t rest,
	       const uint8_t *data, size_t dlen);
void tu_input(struct net_stack *s, const uint8_t *f, size_t len,
	      uint32_t rxflags, uint64_t now);
/* tu_counter - value of a named counter; fails the test if unknown */
uint64_t tu_counter(const struct net_stack *s, const char *name);

uint16_t tu_rd16(const uint8_t *p);
uint32_t tu_rd32(const uint8_t *p);

#endif
