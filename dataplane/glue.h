/*
 * glue.h - the thin adapter between one rte_eth queue pair and one
 * sans-IO net_stack (the only data plane code that calls ethdev bursts).
 *
 *   rx:  glue_rx: rte_eth_rx_burst -> struct net_rx[] (checksum results
 *        mapped to NET_RXF_* only for offloads the port granted) ->
 *        net_input_burst -> mbufs freed (the stack copies what it keeps)
 *   tx:  struct net_io from glue_io(): tx_alloc = rte_pktmbuf_alloc
 *        (data = mtod, cap = tailroom), tx_send = set lengths and offload
 *        flags, append to the burst array (flushed when full), tx_free =
 *        rte_pktmbuf_free; glue_tx_flush at the end of every loop round
 *        sends the array with rte_eth_tx_burst, retries a few times, then
 *        frees and counts what the NIC would not take
 *   sport: pick_sport through rss_pick_sport so replies land on our queue
 *   lab:  with sluiced --impair, received frames pass through impair.c
 *         (loss/duplicate/delay/reorder) before the stack sees them
 *
 * One struct glue per io lcore, used only by that lcore.
 */
#ifndef SLUICE_GLUE_H
#define SLUICE_GLUE_H

#include <stdbool.h>
#include <stdint.h>

#include "net.h"
#include "rss.h"

#define GLUE_RX_BURST 32
#define GLUE_TX_BURST 64
#define GLUE_TX_RETRIES 4

struct impair;
struct rte_mempool;
struct rte_mbuf;

struct glue_stats {
	uint64_t rx_frames, rx_bursts, rx_multiseg_drop;
	uint64_t tx_frames, tx_bursts, tx_retries, tx_drop, tx_alloc_fail;
	uint64_t tx_too_long;
	/* lab only (sluiced --impair): netem-style rx impairment */
	uint64_t impair_lost, impair_duplicated, impair_delayed;
	uint64_t impair_reordered;
};

struct glue {
	uint16_t port;
	uint16_t queue;
	struct rte_mempool *pool;
	bool rx_ip_csum, rx_l4_csum;  /* granted rx offloads */
	bool tx_ip_csum, tx_tcp_csum; /* granted tx offloads */
	const struct rss_ctx *rss;    /* the port's, read only */
	struct impair *impair;        /* NULL unless sluiced --impair */
	unsigned ntx;
	struct rte_mbuf *txq[GLUE_TX_BURST];
	struct glue_stats st;
};

/* glue_io - the net_io vtable for this glue (opaque = g) */
void glue_io(struct glue *g, struct net_io *io);
/* glue_rx - one rx burst into the stack; returns frames received */
unsigned glue_rx(struct glue *g, struct net_stack *s, uint64_t now);
/* glue_tx_flush - send the pending tx burst; returns frames sent */
unsigned glue_tx_flush(struct glue *g);

#endif
