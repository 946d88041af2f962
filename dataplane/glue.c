/*
 * glue.c - rte_eth bursts <-> net_stack (see glue.h).
 *
 * Input: mbufs from one rx queue; frames written by the stack into mbufs
 * we lent it. Output: mbufs to one tx queue. Invariants: every mbuf lent to
 * the stack comes back through tx_send or tx_free; every mbuf in txq is
 * either sent or freed by glue_tx_flush; nothing here blocks.
 */
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "glue.h"
#include "impair.h"

/* glue_tx_alloc - net_io.tx_alloc: one mbuf, the stack writes from mtod */
static int glue_tx_alloc(void *opaque, struct net_txbuf *tb)
{
	struct glue *g = opaque;
	struct rte_mbuf *m = rte_pktmbuf_alloc(g->pool);
	uint16_t room;

	if (!m) {
		g->st.tx_alloc_fail++;
		return -NET_ENOMEM;
	}
	room = rte_pktmbuf_tailroom(m);
	tb->handle = m;
	tb->data = rte_pktmbuf_mtod(m, uint8_t *);
	tb->cap = room;
	return 0;
}

/* glue_tx_send - net_io.tx_send: lengths, offload flags, queue for burst */
static void glue_tx_send(void *opaque, struct net_txbuf *tb, uint16_t len,
			 uint32_t txflags, uint8_t l2_len, uint8_t l3_len)
{
	struct glue *g = opaque;
	struct rte_mbuf *m = tb->handle;

	if (len > tb->cap) {           /* stack bug: never trust it blindly */
		g->st.tx_too_long++;
		rte_pktmbuf_free(m);
		return;
	}
	m->data_len = len;
	m->pkt_len = len;
	m->ol_flags = 0;
	if (txflags & (NET_TXF_IP_CSUM | NET_TXF_TCP_CSUM)) {
		m->l2_len = l2_len;
		m->l3_len = l3_len;
		m->ol_flags |= RTE_MBUF_F_TX_IPV4;
		if (txflags & NET_TXF_IP_CSUM)
			m->ol_flags |= RTE_MBUF_F_TX_IP_CKSUM;
		if (txflags & NET_TXF_TCP_CSUM)
			m->ol_flags |= RTE_MBUF_F_TX_TCP_CKSUM;
	}
	g->txq[g->ntx++] = m;
	if (g->ntx == GLUE_TX_BURST)
		glue_tx_flush(g);
}

/* glue_tx_free - net_io.tx_free: the stack will not send this buffer */
static void glue_tx_free(void *opaque, struct net_txbuf *tb)
{
	(void)opaque;
	rte_pktmbuf_free(tb->handle);
}

/* glue_pick_sport - net_io.pick_sport: replies must hash to our queue */
static int glue_pick_sport(void *opaque, uint32_t saddr, uint32_t daddr,
			   uint16_t dport, unsigned attempt, uint16_t *sport)
{
	struct glue *g = opaque;

	return rss_pick_sport(g->rss, g->queue, saddr, daddr, dport, attempt,
			      sport);
}

void glue_io(struct glue *g, struct net_io *io)
{
	*io = (struct net_io){
		.opaque = g,
		.tx_alloc = glue_tx_alloc,
		.tx_send = glue_tx_send,
		.tx_free = glue_tx_free,
		.pick_sport = glue_pick_sport,
	};
}

/* glue_rx_flags - NET_RXF_* from mbuf ol_flags, for granted offloads only */
static inline uint32_t glue_rx_flags(const struct glue *g,
				     const struct rte_mbuf *m)
{
	uint32_t f = 0;

	if (g->rx_ip_csum) {
		uint64_t ip = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;

		if (ip == RTE_MBUF_F_RX_IP_CKSUM_GOOD)
			f |= NET_RXF_IP_CSUM_GOOD;
		else if (ip == RTE_MBUF_F_RX_IP_CKSUM_BAD)
			f |= NET_RXF_IP_CSUM_BAD;
	}
	if (g->rx_l4_csum) {
		uint64_t l4 = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;

		if (l4 == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
			f |= NET_RXF_L4_CSUM_GOOD;
		else if (l4 == RTE_MBUF_F_RX_L4_CKSUM_BAD)
			f |= NET_RXF_L4_CSUM_BAD;
	}
	return f;
}

/* glue_rx_impaired - the lab's rx path: frames through impair.c first */
static unsigned glue_rx_impaired(struct glue *g, struct net_stack *s,
				 const struct net_rx *rx, unsigned k,
				 uint64_t now)
{
	struct net_rx out[2 * GLUE_RX_BURST + 32];
	const struct impair_stats *is;
	unsigned n;

	n = impair_rx(g->impair, rx, k, out, 2 * GLUE_RX_BURST + 32, now);
	if (n)
		net_input_burst(s, out, n, now);
	is = impair_stats(g->impair);
	g->st.impair_lost = is->lost;
	g->st.impair_duplicated = is->duplicated;
	g->st.impair_delayed = is->delayed;
	g->st.impair_reordered = is->reordered;
	/* frames held count as work: do not fall asleep on them */
	return n + (impair_held(g->impair) ? 1 : 0);
}

unsigned glue_rx(struct glue *g, struct net_stack *s, uint64_t now)
{
	struct rte_mbuf *m[GLUE_RX_BURST];
	struct net_rx rx[GLUE_RX_BURST];
	uint16_t n, k = 0;

	n = rte_eth_rx_burst(g->port, g->queue, m, GLUE_RX_BURST);
	if (n == 0)
		return g->impair ? glue_rx_impaired(g, s, rx, 0, now) : 0;
	g->st.rx_bursts++;
	g->st.rx_frames += n;
	for (uint16_t i = 0; i < n; i++) {
		if (m[i]->nb_segs != 1) {   /* jumbo chains: not supported */
			g->st.rx_multiseg_drop++;
			continue;
		}
		rx[k].data = rte_pktmbuf_mtod(m[i], const uint8_t *);
		rx[k].len = rte_pktmbuf_data_len(m[i]);
		rx[k].flags = glue_rx_flags(g, m[i]);
		k++;
	}
	if (g->impair) {
		unsigned w = glue_rx_impaired(g, s, rx, k, now);

		rte_pktmbuf_free_bulk(m, n);
		return n + w;
	}
	if (k)
		net_input_burst(s, rx, k, now);
	rte_pktmbuf_free_bulk(m, n);
	return n;
}

unsigned glue_tx_flush(struct glue *g)
{
	unsigned sent = 0;

	if (g->ntx == 0)
		return 0;
	for (unsigned tries = 0; sent < g->ntx; tries++) {
		sent += rte_eth_tx_burst(g->port, g->queue, g->txq + sent,
					 (uint16_t)(g->ntx - sent));
		if (sent == g->ntx || tries == GLUE_TX_RETRIES)
			break;
		g->st.tx_retries++;
	}
	g->st.tx_bursts++;
	g->st.tx_frames += sent;
	if (sent < g->ntx) {
		g->st.tx_drop += g->ntx - sent;
		rte_pktmbuf_free_bulk(g->txq + sent, g->ntx - sent);
	}
	g->ntx = 0;
	return sent;
}
