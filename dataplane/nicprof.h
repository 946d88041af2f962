/*
 * nicprof.h - NIC profiles: what sluiced asks of one NIC family.
 *
 * A profile is an INI file in nic-profiles/ (read with rte_cfgfile through
 * cfgval). It holds device facts and wishes, never site config:
 *
 *   [device]  type = vdev | pci; vdev = EAL --vdev argument (type vdev);
 *             pci = allowlist "0000:03:00.0,0000:03:00.1" (type pci),
 *             the first probed port is used
 *   [queues]  rx, tx = auto (one per io lcore) or a count; rx_desc, tx_desc
 *   [rss]     enabled, ipv4, tcp (hash fields), key (hex, 40 or 52 bytes)
 *   [offload] rx_ip_csum, rx_tcp_csum, tx_ip_csum, tx_tcp_csum, tso
 *             (wishes; the port grants what the device supports)
 *   [port]    mtu, promiscuous
 *   [mempool] mbufs (per io lcore), cache, data_room
 *
 * nicprof_load validates every value; unknown sections/keys are errors.
 */
#ifndef SLUICE_NICPROF_H
#define SLUICE_NICPROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NICPROF_QUEUES_AUTO 0
#define NICPROF_RSS_KEY_MAX 52
#define NICPROF_PCI_MAX 8

enum nicprof_type { NICPROF_VDEV = 0, NICPROF_PCI = 1 };

struct nicprof {
	char path[256];
	char name[64];                   /* file name without .conf */
	enum nicprof_type type;
	char vdev[256];
	char pci[NICPROF_PCI_MAX][32];
	unsigned n_pci;

	unsigned rx_queues, tx_queues;   /* NICPROF_QUEUES_AUTO or a count */
	unsigned rx_desc, tx_desc;

	bool rss;
	bool rss_ipv4, rss_tcp;
	uint8_t rss_key[NICPROF_RSS_KEY_MAX];
	size_t rss_key_len;              /* 0 = device default */

	bool rx_ip_csum, rx_tcp_csum, tx_ip_csum, tx_tcp_csum, tso;

	unsigned mtu;
	bool promiscuous;

	unsigned mbufs, mbuf_cache, data_room;
};

/* nicprof_load - read and validate; 0, or -1 with the reason in err */
int nicprof_load(const char *path, struct nicprof *p, char *err,
		 size_t errlen);

#endif
