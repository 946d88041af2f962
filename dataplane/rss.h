/*
 * rss.h - predict the NIC's RSS queue of a flow and choose outbound source
 * ports so that replies land on the queue of the lcore that owns the flow.
 *
 * The NIC computes the Toeplitz hash (rte_softrss, original key) of the
 * incoming packet's (src ip, dst ip, src port, dst port) and indexes its
 * redirection table with the low bits. For an active open from us
 * (saddr:sport -> daddr:dport) the reply has src = daddr:dport and
 * dst = saddr:sport. rss_pick_sport scans the ephemeral range from a
 * starting point derived from the tuple and 'attempt' for a port whose
 * reply hashes to our queue. Pure functions: no EAL, no ethdev.
 */
#ifndef SLUICE_RSS_H
#define SLUICE_RSS_H

#include <stdbool.h>
#include <stdint.h>

#define RSS_KEY_MAX 52
#define RSS_RETA_MAX 512
#define RSS_SPORT_MIN 32768u
#define RSS_SPORT_MAX 60999u

struct rss_ctx {
	bool enabled;             /* false: every flow lands on queue 0 */
	/* rte_softrss reads the key as 32-bit words */
	uint8_t key[RSS_KEY_MAX] __attribute__((aligned(8)));
	unsigned key_len;
	uint16_t reta[RSS_RETA_MAX];
	unsigned reta_size;       /* power of two, or 0 when not known */
	unsigned nb_queues;
};

/* rss_hash - Toeplitz hash of an IPv4/TCP 4-tuple as the NIC sees it
 * (all host order) */
uint32_t rss_hash(const struct rss_ctx *r, uint32_t src, uint32_t dst,
		  uint16_t sport, uint16_t dport);

/* rss_queue - queue an incoming IPv4/TCP packet lands on */
unsigned rss_queue(const struct rss_ctx *r, uint32_t src, uint32_t dst,
		   uint16_t sport, uint16_t dport);

/* rss_pick_sport - source port for saddr -> daddr:dport whose replies hash
 * to 'queue'; 0 and *sport, or -1 when no port in range qualifies or RSS
 * does not matter (one queue: the caller lets the stack choose) */
int rss_pick_sport(const struct rss_ctx *r, unsigned queue, uint32_t saddr,
		   uint32_t daddr, uint16_t dport, unsigned attempt,
		   uint16_t *sport);

#endif
