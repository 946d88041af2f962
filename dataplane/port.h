/*
 * port.h - bring up the one ethdev port described by a NIC profile.
 *
 * port_open: find the port (the profile's vdev by name, else the first
 * probed PCI port), create one mbuf pool per io lcore on that lcore's NUMA
 * socket, configure one rx/tx queue pair per io lcore, RSS (when more than
 * one queue), MTU and the offloads the device can grant out of those the
 * profile wishes for, start it, read back what it really did (MAC, MTU,
 * RSS key and RETA) and log it all: driver, queues, offload capability
 * versus request, MTU, MAC, RSS hash functions. Offloads that are not
 * granted fall back to software (port.grant says which are on).
 * port_close: stop and close (a TAP interface disappears), free pools.
 *
 * Control plane only (main lcore, before launch / after join).
 */
#ifndef SLUICE_PORT_H
#define SLUICE_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "rss.h"

struct nicprof;
struct rte_mempool;

struct port_grant {
	bool rx_ip_csum, rx_tcp_csum, tx_ip_csum, tx_tcp_csum, tso;
};

struct port {
	uint16_t id;
	bool found;                /* port_find succeeded */
	bool open;                 /* configured */
	char name[64];
	char driver[64];
	unsigned nb_queues;
	uint16_t rx_desc, tx_desc;
	uint16_t mtu;
	uint8_t mac[6];
	struct port_grant grant;
	uint64_t rss_hf;
	struct rss_ctx rss;
	struct rte_mempool *pools[CFG_MAX_IO];
};

/* port_open - 0, or -1 with a reason in err naming the profile key when
 * the profile asks for something the device cannot do at all */
int port_open(struct port *p, const struct nicprof *prof,
	      const struct cfg *c, char *err, size_t errlen);
void port_close(struct port *p);

#endif
