/*
 * arp.c - neighbour table and address resolution (RFC 826, RFC 1122 2.3.2).
 *
 * Input:  ARP packets (frame minus Ethernet header) from net_stack.c;
 *         finished IPv4 frames to send to a next hop (arp_resolve_send);
 *         time via s->now (arp_timers).
 * Output: ARP requests/replies and the held frames, all through
 *         s->io.tx_send (this file is the single place frames leave the
 *         stack, so it keeps l3.tx_frames/tx_bytes).
 *
 * Table: cfg.arp_entries slots in a chained hash. An entry is INCOMPLETE
 * (request outstanding, frames queued on it) or REACHABLE (MAC known until
 * 'expires' = learn time + cfg.arp_timeout_ms). Reachable entries used in
 * their last ARP_REFRESH_US get a unicast refresh request so busy flows
 * never stall on expiry. When full, the reachable entry closest to expiry
 * is evicted; incomplete ones never are.
 *
 * Pending frames: at most cfg.arp_pending in total (RFC 1122 2.3.2.2 says
 * keep at least one per destination; we keep a bounded FIFO per entry).
 * The request is retried every ARP_RETRY_US, ARP_MAX_TRIES times in all;
 * then the queued frames are returned with io.tx_free, each counted in
 * arp.pending_drop, and the resolution in arp.resolve_fail.
 *
 * Learning (RFC 826 "Packet Reception"): a sender already in the table is
 * updated; a new entry is made only when the packet targets our address.
 * So gratuitous ARP (sender == target) only refreshes existing entries.
 * Requests for our address are answered with a unicast reply.
 */
#include <stdlib.h>

#include "net_l3.h"

#define ARP_HLEN        28
#define ARP_OP_REQUEST  1
#define ARP_OP_REPLY    2
#define ARP_RETRY_US    250000u   /* four requests per second */
#define ARP_MAX_TRIES   4         /* give up after ~1 s */
#define ARP_REFRESH_US  5000000u  /* refresh entries this close to expiry */

enum arp_state { ARP_FREE = 0, ARP_INCOMPLETE, ARP_REACHABLE };

struct arp_entry {
	uint32_t ip;
	uint8_t mac[NET_ETHER_ADDR_LEN];
	uint8_t state;           /* enum arp_state */
	uint8_t tries;           /* requests sent while INCOMPLETE */
	int32_t next;            /* hash chain, or free list */
	int32_t pend_head, pend_tail;
	uint64_t expires;        /* REACHABLE: end of validity */
	uint64_t next_req;       /* INCOMPLETE: next retry; REACHABLE: next
				    allowed refresh request */
};

struct arp_pend {
	struct net_txbuf tb;
	uint16_t len;
	uint32_t txflags;
	int32_t next;
};

struct arp_table {
	unsigned n_entries, used;
	unsigned n_pend, pend_used;
	uint32_t hash_mask;
	uint64_t deadline;        /* no timer due before this */
	uint64_t timeout_us, refresh_us;
	int32_t free_e, free_p;
	int32_t *buckets;
	struct arp_entry *e;
	struct arp_pend *p;
};

static const uint8_t arp_bcast[NET_ETHER_ADDR_LEN] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff
};

/* arp_hash - bucket of an IPv4 address (Fibonacci hashing) */
static inline uint32_t arp_hash(const struct arp_table *t, uint32_t ip)
{
	return ((ip * 0x9e3779b1u) >> 7) & t->hash_mask;
}

/* arp_create - allocate the table and the pending pool */
struct arp_table *arp_create(const struct net_config *cfg)
{
	struct arp_table *t = calloc(1, sizeof(*t));
	unsigned nb = 1;

	if (!t)
		return NULL;
	while (nb < cfg->arp_entries * 2u)
		nb <<= 1;
	t->n_entries = cfg->arp_entries;
	t->n_pend = cfg->arp_pending;
	t->hash_mask = nb - 1;
	t->timeout_us = (uint64_t)cfg->arp_timeout_ms * 1000u;
	t->refresh_us = t->timeout_us / 2 < ARP_REFRESH_US ?
			t->timeout_us / 2 : ARP_REFRESH_US;
	t->deadline = UINT64_MAX;
	t->buckets = malloc(nb * sizeof(*t->buckets));
	t->e = calloc(t->n_entries, sizeof(*t->e));
	t->p = calloc(t->n_pend ? t->n_pend : 1, sizeof(*t->p));
	if (!t->buckets || !t->e || !t->p) {
		free(t->buckets);
		free(t->e);
		free(t->p);
		free(t);
		return NULL;
	}
	for (unsigned i = 0; i < nb; i++)
		t->buckets[i] = -1;
	for (unsigned i = 0; i < t->n_entries; i++)
		t->e[i].next = (int32_t)i + 1 < (int32_t)t->n_entries ?
			       (int32_t)i + 1 : -1;
	for (unsigned i = 0; i < t->n_pend; i++)
		t->p[i].next = i + 1 < t->n_pend ? (int32_t)i + 1 : -1;
	t->free_e = 0;
	t->free_p = t->n_pend ? 0 : -1;
	return t;
}

/* arp_drop_pending - return an entry's held frames to the glue */
static void arp_drop_pending(struct net_stack *s, struct arp_entry *e)
{
	struct arp_table *t = s->arp;

	while (e->pend_head >= 0) {
		struct arp_pend *p = &t->p[e->pend_head];
		int32_t idx = e->pend_head;

		e->pend_head = p->next;
		s->io.tx_free(s->io.opaque, &p->tb);
		s->l3.arp_pending_drop++;
		p->next = t->free_p;
		t->free_p = idx;
		t->pend_used--;
	}
	e->pend_tail = -1;
}

/* arp_destroy - drop every held frame and free the table */
void arp_destroy(struct net_stack *s)
{
	struct arp_table *t = s->arp;

	if (!t)
		return;
	for (unsigned i = 0; i < t->n_entries; i++)
		if (t->e[i].state == ARP_INCOMPLETE)
			arp_drop_pending(s, &t->e[i]);
	free(t->buckets);
	free(t->e);
	free(t->p);
	free(t);
	s->arp = NULL;
}

/* arp_lookup - entry index for ip, or -1 */
static int32_t arp_lookup(const struct arp_table *t, uint32_t ip)
{
	int32_t i = t->buckets[arp_hash(t, ip)];

	while (i >= 0 && t->e[i].ip != ip)
		i = t->e[i].next;
	return i;
}

/* arp_unlink - remove entry idx from its chain and free it */
static void arp_unlink(struct arp_table *t, int32_t idx)
{
	int32_t *pp = &t->buckets[arp_hash(t, t->e[idx].ip)];

	while (*pp != idx)
		pp = &t->e[*pp].next;
	*pp = t->e[idx].next;
	t->e[idx].state = ARP_FREE;
	t->e[idx].next = t->free_e;
	t->free_e = idx;
	t->used--;
}

/* arp_alloc - new entry for ip, evicting the oldest reachable if full */
static int32_t arp_alloc(struct arp_table *t, uint32_t ip)
{
	int32_t idx = t->free_e;
	uint32_t b;

	if (idx < 0) {
		uint64_t best = UINT64_MAX;

		for (unsigned i = 0; i < t->n_entries; i++)
			if (t->e[i].state == ARP_REACHABLE &&
			    t->e[i].expires < best) {
				best = t->e[i].expires;
				idx = (int32_t)i;
			}
		if (idx < 0)
			return -1;
		arp_unlink(t, idx);
	}
	t->free_e = t->e[idx].next;
	memset(&t->e[idx], 0, sizeof(t->e[idx]));
	t->e[idx].ip = ip;
	t->e[idx].pend_head = t->e[idx].pend_tail = -1;
	b = arp_hash(t, ip);
	t->e[idx].next = t->buckets[b];
	t->buckets[b] = idx;
	t->used++;
	return idx;
}

/* arp_arm - make sure arp_timers runs no later than when */
static inline void arp_arm(struct arp_table *t, uint64_t when)
{
	if (when < t->deadline)
		t->deadline = when;
}

/* arp_xmit - hand one finished frame to the glue, counting it */
static void arp_xmit(struct net_stack *s, struct net_txbuf *tb, uint16_t len,
		     uint32_t txflags, uint8_t l3_len)
{
	s->l3.tx_frames++;
	s->l3.tx_bytes += len;
	s->io.tx_send(s->io.opaque, tb, len, txflags, NET_ETH_HLEN, l3_len);
}

/* arp_send - build and send one ARP packet (RFC 826 format) */
static void arp_send(struct net_stack *s, uint16_t op, const uint8_t *eth_dst,
		     const uint8_t *tha, uint32_t tpa)
{
	struct net_txbuf tb;
	uint8_t *f, *a;

	if (net_tx_alloc(s, &tb) < 0)
		return;
	if (tb.cap < NET_ETH_MIN_FRAME) {
		s->io.tx_free(s->io.opaque, &tb);
		s->l3.tx_alloc_fail++;
		return;
	}
	f = tb.data;
	memcpy(f, eth_dst, NET_ETHER_ADDR_LEN);
	memcpy(f + 6, s->cfg.mac, NET_ETHER_ADDR_LEN);
	net_wr16(f + 12, NET_ETHERTYPE_ARP);
	a = f + NET_ETH_HLEN;
	net_wr16(a, 1);                     /* htype Ethernet */
	net_wr16(a + 2, NET_ETHERTYPE_IPV4);
	a[4] = NET_ETHER_ADDR_LEN;
	a[5] = 4;
	net_wr16(a + 6, op);
	memcpy(a + 8, s->cfg.mac, NET_ETHER_ADDR_LEN);
	net_wr32(a + 14, s->cfg.ip);
	memcpy(a + 18, tha, NET_ETHER_ADDR_LEN);
	net_wr32(a + 24, tpa);
	memset(a + ARP_HLEN, 0, NET_ETH_MIN_FRAME - NET_ETH_HLEN - ARP_HLEN);
	if (op == ARP_OP_REQUEST)
		s->l3.arp_tx_request++;
	else
		s->l3.arp_tx_reply++;
	arp_xmit(s, &tb, NET_ETH_MIN_FRAME, 0, 0);
}

/* arp_request - who-has ip; broadcast, or unicast to mac when refreshing */
static void arp_request(struct net_stack *s, uint32_t ip, const uint8_t *mac)
{
	static const uint8_t zero[NET_ETHER_ADDR_LEN];

	arp_send(s, ARP_OP_REQUEST, mac ? mac : arp_bcast, zero, ip);
}

/* arp_complete - entry learned its MAC: mark reachable, send held frames */
static void arp_complete(struct net_stack *s, struct arp_entry *e,
			 const uint8_t *mac)
{
	struct arp_table *t = s->arp;

	memcpy(e->mac, mac, NET_ETHER_ADDR_LEN);
	e->state = ARP_REACHABLE;
	e->expires = s->now + t->timeout_us;
	e->next_req = 0;
	e->tries = 0;
	arp_arm(t, e->expires);
	while (e->pend_head >= 0) {
		int32_t idx = e->pend_head;
		struct arp_pend *p = &t->p[idx];

		e->pend_head = p->next;
		memcpy(p->tb.data, mac, NET_ETHER_ADDR_LEN);
		arp_xmit(s, &p->tb, p->len, p->txflags, NET_IP_HLEN);
		p->next = t->free_p;
		t->free_p = idx;
		t->pend_used--;
	}
	e->pend_tail = -1;
}

/* arp_input - RFC 826 packet reception: merge, learn if targeted, reply */
void arp_input(struct net_stack *s, const uint8_t *pkt, uint16_t len,
	       const uint8_t *src_mac)
{
	struct arp_table *t = s->arp;
	uint16_t op;
	uint32_t spa, tpa;
	const uint8_t *sha;
	int32_t idx;
	bool for_us;

	(void)src_mac; /* proxies may legitimately differ from sha */
	if (len < ARP_HLEN || net_rd16(pkt) != 1 ||
	    net_rd16(pkt + 2) != NET_ETHERTYPE_IPV4 ||
	    pkt[4] != NET_ETHER_ADDR_LEN || pkt[5] != 4) {
		s->l3.arp_bad++;
		return;
	}
	op = net_rd16(pkt + 6);
	sha = pkt + 8;
	spa = net_rd32(pkt + 14);
	tpa = net_rd32(pkt + 24);
	if (op == ARP_OP_REQUEST)
		s->l3.arp_rx_request++;
	else if (op == ARP_OP_REPLY)
		s->l3.arp_rx_reply++;
	else {
		s->l3.arp_bad++;
		return;
	}
	/* a group sender MAC, a martian sender, or someone claiming our
	 * address (conflict, or our own packet looped back): never learn */
	if ((sha[0] & 1) || spa == s->cfg.ip ||
	    (net_ip_martian(spa) && spa != 0)) {
		s->l3.arp_bad++;
		return;
	}
	for_us = tpa == s->cfg.ip && s->cfg.ip != 0;
	if (spa != 0) { /* spa 0 = RFC 5227 probe: answer but do not learn */
		idx = arp_lookup(t, spa);
		if (idx >= 0)
			arp_complete(s, &t->e[idx], sha);
		else if (for_us && (idx = arp_alloc(t, spa)) >= 0)
			arp_complete(s, &t->e[idx], sha);
	}
	if (for_us && op == ARP_OP_REQUEST)
		arp_send(s, ARP_OP_REPLY, sha, sha, spa);
}

/* arp_resolve_send - send to nexthop's MAC, or hold the frame and ask */
int arp_resolve_send(struct net_stack *s, uint32_t nexthop,
		     struct net_txbuf *tb, uint16_t len, uint32_t txflags)
{
	struct arp_table *t = s->arp;
	int32_t idx = arp_lookup(t, nexthop);
	struct arp_entry *e;
	struct arp_pend *p;
	int32_t pi;

	if (idx >= 0 && t->e[idx].state == ARP_REACHABLE) {
		e = &t->e[idx];
		if (s->now < e->expires) {
			memcpy(tb->data, e->mac, NET_ETHER_ADDR_LEN);
			arp_xmit(s, tb, len, txflags, NET_IP_HLEN);
			if (s->now + t->refresh_us >= e->expires &&
			    s->now >= e->next_req) {
				e->next_req = s->now + ARP_RETRY_US;
				arp_request(s, nexthop, e->mac);
			}
			return 0;
		}
		/* expired but not yet reaped: resolve again */
		e->state = ARP_INCOMPLETE;
		e->tries = 0;
		e->next_req = s->now;
		e->pend_head = e->pend_tail = -1;
	}
	pi = t->free_p;
	if (pi < 0) {
		s->io.tx_free(s->io.opaque, tb);
		s->l3.arp_pending_drop++;
		return -NET_ENOMEM;
	}
	if (idx < 0) {
		idx = arp_alloc(t, nexthop);
		if (idx < 0) {
			s->io.tx_free(s->io.opaque, tb);
			s->l3.arp_pending_drop++;
			return -NET_ENOMEM;
		}
		t->e[idx].state = ARP_INCOMPLETE;
		t->e[idx].next_req = s->now;
	}
	e = &t->e[idx];
	t->free_p = t->p[pi].next;
	t->pend_used++;
	p = &t->p[pi];
	p->tb = *tb;
	p->len = len;
	p->txflags = txflags;
	p->next = -1;
	if (e->pend_tail >= 0)
		t->p[e->pend_tail].next = pi;
	else
		e->pend_head = pi;
	e->pend_tail = pi;
	if (e->tries == 0) { /* first frame of a new resolution: ask now */
		e->tries = 1;
		e->next_req = s->now + ARP_RETRY_US;
		arp_request(s, nexthop, NULL);
	}
	arp_arm(t, e->next_req);
	return 0;
}

/* arp_timers - retry or fail resolutions, expire old entries */
void arp_timers(struct net_stack *s)
{
	struct arp_table *t = s->arp;
	uint64_t next = UINT64_MAX;

	if (s->now < t->deadline)
		return;
	for (unsigned i = 0; i < t->n_entries; i++) {
		struct arp_entry *e = &t->e[i];

		if (e->state == ARP_INCOMPLETE) {
			if (e->next_req <= s->now) {
				if (e->tries >= ARP_MAX_TRIES) {
					arp_drop_pending(s, e);
					s->l3.arp_resolve_fail++;
					arp_unlink(t, (int32_t)i);
					continue;
				}
				e->tries++;
				e->next_req = s->now + ARP_RETRY_US;
				arp_request(s, e->ip, NULL);
			}
			if (e->next_req < next)
				next = e->next_req;
		} else if (e->state == ARP_REACHABLE) {
			if (e->expires <= s->now) {
				arp_unlink(t, (int32_t)i);
				continue;
			}
			if (e->expires < next)
				next = e->expires;
		}
	}
	t->deadline = next;
}

/* arp_next_deadline - when arp_timers next has work */
uint64_t arp_next_deadline(const struct net_stack *s)
{
	return s->arp->deadline;
}

/* arp_counters - gauges: entries in use, frames held */
unsigned arp_counters(const struct net_stack *s, struct net_counter *out,
		      unsigned max)
{
	if (!out)
		return 2;
	if (max < 2)
		return 0;
	out[0].name = "arp.entries";
	out[0].value = s->arp->used;
	out[1].name = "arp.pending";
	out[1].value = s->arp->pend_used;
	return 2;
}
