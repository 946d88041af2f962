/*
 * port.c - ethdev set-up from a NIC profile (see port.h).
 *
 * Input: profile wishes, the io lcores. Output: a started port and what it
 * granted. Invariant: an offload bit is requested from the device only if
 * its capability says so; everything else is done in software by the
 * stack (net_config.tx_*_csum_offload false, rx flags not trusted).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "log.h"
#include "nicprof.h"
#include "port.h"

/* port_find - the profile's vdev by name, else the first port */
static int port_find(const struct nicprof *prof, uint16_t *id)
{
	char name[64];
	size_t n;

	if (prof->type == NICPROF_VDEV) {
		n = strcspn(prof->vdev, ",");
		snprintf(name, sizeof(name), "%.*s", (int)n, prof->vdev);
		return rte_eth_dev_get_port_by_name(name, id);
	}
	RTE_ETH_FOREACH_DEV(*id)
		return 0;
	return -1;
}

/* port_tap_quiet - net_tap's "rx trigger": every frame the kernel queues
 * on the TAP raises a real-time signal (O_ASYNC + F_SETSIG, queued, one per
 * frame) whose handler only bumps a counter so that empty rx bursts skip
 * their readv. The signal goes to the process, so the kernel picks a
 * thread: the main lcore, the EAL and telemetry threads, interrupting their
 * sleeps; under perf/bench accept that was ~0.3 of the 2 cores, more than
 * the readv it saves. We ignore the signal (the kernel then drops it when
 * raising it) before any frame can arrive (the port is not started): the
 * driver's counter stays 0, which makes every rx burst read, and the io
 * reactor's idle backoff bounds the empty reads. Returns the signal, 0 if
 * none was found (nothing changed). */
static int port_tap_quiet(const char *driver)
{
	if (strcmp(driver, "net_tap") != 0)
		return 0;
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++) {
		struct sigaction sa;
		Dl_info di;

		if (sigaction(sig, NULL, &sa) != 0 ||
		    (sa.sa_flags & SA_SIGINFO) || sa.sa_handler == SIG_DFL ||
		    sa.sa_handler == SIG_IGN)
			continue;
		if (!dladdr((void *)(uintptr_t)sa.sa_handler, &di) ||
		    !di.dli_fname || !strstr(di.dli_fname, "net_tap"))
			continue;
		sa.sa_handler = SIG_IGN;
		if (sigaction(sig, &sa, NULL) == 0)
			return sig;
	}
	return 0;
}

/* port_offload_log - one line: wished / capable / granted per offload */
static void port_offload_log(const struct port *p, const struct nicprof *prof,
			     const struct rte_eth_dev_info *di)
{
	struct {
		const char *name;
		bool wish;
		uint64_t capa;
		bool grant;
	} o[] = {
		{ "rx_ip_csum", prof->rx_ip_csum,
		  di->rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM,
		  p->grant.rx_ip_csum },
		{ "rx_tcp_csum", prof->rx_tcp_csum,
		  di->rx_offload_capa & RTE_ETH_RX_OFFLOAD_TCP_CKSUM,
		  p->grant.rx_tcp_csum },
		{ "tx_ip_csum", prof->tx_ip_csum,
		  di->tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM,
		  p->grant.tx_ip_csum },
		{ "tx_tcp_csum", prof->tx_tcp_csum,
		  di->tx_offload_capa & RTE_ETH_TX_OFFLOAD_TCP_CKSUM,
		  p->grant.tx_tcp_csum },
		{ "tso", prof->tso,
		  di->tx_offload_capa & RTE_ETH_TX_OFFLOAD_TCP_TSO,
		  p->grant.tso },
	};
	char buf[512];
	size_t off = 0;

	for (size_t i = 0; i < sizeof(o) / sizeof(o[0]); i++) {
		const char *what;

		if (o[i].grant)
			what = "offloaded";
		else if (!o[i].wish)
			what = o[i].capa ? "software (not wished)"
					 : "software";
		else if (!o[i].capa)
			what = "software (device lacks it)";
		else
			what = "software (not used by the stack)";
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
					"%s%s %s", i ? ", " : "", o[i].name,
					what);
		if (off >= sizeof(buf))
			break;
	}
	log_info("port %u: offloads: %s", p->id, buf);
	log_info("port %u: device offload capa rx 0x%llx tx 0x%llx, "
		 "configured rx 0x%llx tx 0x%llx", p->id,
		 (unsigned long long)di->rx_offload_capa,
		 (unsigned long long)di->tx_offload_capa,
		 (unsigned long long)((p->grant.rx_ip_csum ?
			RTE_ETH_RX_OFFLOAD_IPV4_CKSUM : 0) |
			(p->grant.rx_tcp_csum ? RTE_ETH_RX_OFFLOAD_TCP_CKSUM : 0)),
		 (unsigned long long)((p->grant.tx_ip_csum ?
			RTE_ETH_TX_OFFLOAD_IPV4_CKSUM : 0) |
			(p->grant.tx_tcp_csum ? RTE_ETH_TX_OFFLOAD_TCP_CKSUM : 0)));
}

/* port_rss_readback - key and RETA the device really uses, for rss.c */
static void port_rss_readback(struct port *p, const struct rte_eth_dev_info *di)
{
	struct rte_eth_rss_conf rc = { .rss_key = p->rss.key,
				       .rss_key_len = RSS_KEY_MAX };
	struct rte_eth_rss_reta_entry64 reta[RSS_RETA_MAX /
					     RTE_ETH_RETA_GROUP_SIZE];
	unsigned rs = di->reta_size;

	p->rss.nb_queues = p->nb_queues;
	p->rss.enabled = p->nb_queues > 1 && p->rss_hf != 0;
	if (!p->rss.enabled)
		return;
	if (rte_eth_dev_rss_hash_conf_get(p->id, &rc) == 0)
		p->rss.key_len = rc.rss_key_len;
	else
		log_warn("port %u: cannot read back the RSS key; outbound "
			 "source ports may land on other queues", p->id);
	if (rs && rs <= RSS_RETA_MAX && (rs & (rs - 1)) == 0) {
		memset(reta, 0, sizeof(reta));
		for (unsigned i = 0; i < rs / RTE_ETH_RETA_GROUP_SIZE; i++)
			reta[i].mask = UINT64_MAX;
		if (rte_eth_dev_rss_reta_query(p->id, reta, (uint16_t)rs) == 0) {
			for (unsigned i = 0; i < rs; i++)
				p->rss.reta[i] =
				    reta[i / RTE_ETH_RETA_GROUP_SIZE]
					.reta[i % RTE_ETH_RETA_GROUP_SIZE];
			p->rss.reta_size = rs;
			return;
		}
	}
	/* unknown table: assume the ethdev default round robin */
	p->rss.reta_size = 0;
}

/* port_pools - one mbuf pool per io lcore on its socket */
static int port_pools(struct port *p, const struct nicprof *prof,
		      const struct cfg *c, char *err, size_t errlen)
{
	unsigned n = c->mbufs ? c->mbufs : prof->mbufs;

	for (unsigned q = 0; q < c->n_io; q++) {
		char name[RTE_MEMPOOL_NAMESIZE];
		int socket = (int)rte_lcore_to_socket_id(c->io_lcores[q]);

		snprintf(name, sizeof(name), "sl_mbuf_%u", c->io_lcores[q]);
		p->pools[q] = rte_pktmbuf_pool_create(name, n,
			prof->mbuf_cache, 0, (uint16_t)prof->data_room, socket);
		if (!p->pools[q]) {
			snprintf(err, errlen, "%s: [mempool] mbufs: cannot create "
				 "a pool of %u mbufs of %u bytes for lcore %u: %s "
				 "(more EAL memory: [eal] memory_mb)", prof->path,
				 n, prof->data_room, c->io_lcores[q],
				 rte_strerror(rte_errno));
			return -1;
		}
	}
	return 0;
}

int port_open(struct port *p, const struct nicprof *prof,
	      const struct cfg *c, char *err, size_t errlen)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info di;
	struct rte_ether_addr mac;
	struct rte_eth_link link;
	uint16_t nrx, ntx, mtu;
	int rc;

	memset(p, 0, sizeof(*p));
	if (port_find(prof, &p->id) != 0) {
		snprintf(err, errlen, "%s: [device] %s: no such ethdev port "
			 "after EAL probe (driver loaded? device bound?)",
			 prof->path, prof->type == NICPROF_VDEV ? "vdev" : "pci");
		return -1;
	}
	p->found = true;
	rte_eth_dev_get_name_by_port(p->id, p->name);
	if ((rc = rte_eth_dev_info_get(p->id, &di)) != 0) {
		snprintf(err, errlen, "port %u: rte_eth_dev_info_get: %s", p->id,
			 rte_strerror(-rc));
		return -1;
	}
	snprintf(p->driver, sizeof(p->driver), "%s", di.driver_name);
	p->nb_queues = c->n_io;
	if (prof->rx_queues != NICPROF_QUEUES_AUTO &&
	    prof->rx_queues != c->n_io) {
		snprintf(err, errlen, "%s: [queues] rx: %u queues but %u io "
			 "lcores (one queue pair per io lcore; or rx = auto)",
			 prof->path, prof->rx_queues, c->n_io);
		return -1;
	}
	if (p->nb_queues > di.max_rx_queues || p->nb_queues > di.max_tx_queues) {
		snprintf(err, errlen, "%s: [queues] rx: device %s has at most "
			 "%u rx / %u tx queues, %u io lcores need %u", prof->path,
			 di.driver_name, di.max_rx_queues, di.max_tx_queues,
			 c->n_io, p->nb_queues);
		return -1;
	}
	if (p->nb_queues > 1 && !prof->rss) {
		snprintf(err, errlen, "%s: [rss] enabled: no, but %u io lcores "
			 "need RSS to share the traffic", prof->path, c->n_io);
		return -1;
	}
	if (port_pools(p, prof, c, err, errlen) < 0)
		return -1;

	memset(&conf, 0, sizeof(conf));
	p->grant.rx_ip_csum = prof->rx_ip_csum &&
		(di.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM);
	p->grant.rx_tcp_csum = prof->rx_tcp_csum &&
		(di.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TCP_CKSUM);
	p->grant.tx_ip_csum = prof->tx_ip_csum &&
		(di.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM);
	/* the stack fills the pseudo-header sum, so TCP offload needs the IP
	 * header flags too; it is only used together with tx_ip_csum */
	p->grant.tx_tcp_csum = prof->tx_tcp_csum && p->grant.tx_ip_csum &&
		(di.tx_offload_capa & RTE_ETH_TX_OFFLOAD_TCP_CKSUM);
	p->grant.tso = false;   /* the stack does not emit TSO super-frames */
	if (p->grant.rx_ip_csum)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
	if (p->grant.rx_tcp_csum)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
	if (p->grant.tx_ip_csum)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	if (p->grant.tx_tcp_csum)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_TCP_CKSUM;

	if (p->nb_queues > 1) {
		uint64_t want = (prof->rss_ipv4 ? RTE_ETH_RSS_IPV4 : 0) |
			(prof->rss_tcp ? RTE_ETH_RSS_NONFRAG_IPV4_TCP : 0);

		p->rss_hf = want & di.flow_type_rss_offloads;
		if (p->rss_hf == 0) {
			snprintf(err, errlen, "%s: [rss] tcp: device %s cannot "
				 "hash IPv4/TCP (rss capa 0x%llx)", prof->path,
				 di.driver_name,
				 (unsigned long long)di.flow_type_rss_offloads);
			return -1;
		}
		if (p->rss_hf != want)
			log_warn("port %u: RSS hash fields 0x%llx of 0x%llx "
				 "wished", p->id, (unsigned long long)p->rss_hf,
				 (unsigned long long)want);
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = p->rss_hf;
		if (prof->rss_key_len) {
			if (di.hash_key_size &&
			    prof->rss_key_len != di.hash_key_size) {
				snprintf(err, errlen, "%s: [rss] key: %zu bytes, "
					 "device %s wants %u", prof->path,
					 prof->rss_key_len, di.driver_name,
					 di.hash_key_size);
				return -1;
			}
			conf.rx_adv_conf.rss_conf.rss_key =
				(uint8_t *)(uintptr_t)prof->rss_key;
			conf.rx_adv_conf.rss_conf.rss_key_len =
				(uint8_t)prof->rss_key_len;
		}
	}
	mtu = (uint16_t)prof->mtu;
	if (di.max_mtu && mtu > di.max_mtu) {
		log_warn("%s: [port] mtu: %u is above the device maximum %u; "
			 "using %u", prof->path, mtu, di.max_mtu, di.max_mtu);
		mtu = di.max_mtu;
	}
	conf.rxmode.mtu = mtu;

	rc = rte_eth_dev_configure(p->id, (uint16_t)p->nb_queues,
				   (uint16_t)p->nb_queues, &conf);
	if (rc != 0) {
		snprintf(err, errlen, "port %u (%s): rte_eth_dev_configure: %s",
			 p->id, p->name, rte_strerror(-rc));
		return -1;
	}
	p->open = true;
	nrx = (uint16_t)prof->rx_desc;
	ntx = (uint16_t)prof->tx_desc;
	if ((rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->id, &nrx, &ntx)) != 0) {
		snprintf(err, errlen, "port %u: descriptor counts %u/%u: %s",
			 p->id, nrx, ntx, rte_strerror(-rc));
		return -1;
	}
	p->rx_desc = nrx;
	p->tx_desc = ntx;
	for (unsigned q = 0; q < p->nb_queues; q++) {
		int socket = (int)rte_lcore_to_socket_id(c->io_lcores[q]);
		struct rte_eth_rxconf rxc = di.default_rxconf;
		struct rte_eth_txconf txc = di.default_txconf;

		rxc.offloads = conf.rxmode.offloads;
		txc.offloads = conf.txmode.offloads;
		rc = rte_eth_rx_queue_setup(p->id, (uint16_t)q, nrx,
					    (unsigned)socket, &rxc, p->pools[q]);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(p->id, (uint16_t)q, ntx,
						    (unsigned)socket, &txc);
		if (rc != 0) {
			snprintf(err, errlen, "port %u: queue %u setup: %s",
				 p->id, q, rte_strerror(-rc));
			return -1;
		}
	}
	if ((rc = port_tap_quiet(p->driver)) > 0)
		log_info("port %u (%s): rx trigger signal %d ignored (rx bursts "
			 "poll; no signal per frame)", p->id, p->name, rc);
	if (prof->promiscuous && (rc = rte_eth_promiscuous_enable(p->id)) != 0)
		log_warn("port %u: promiscuous mode: %s", p->id,
			 rte_strerror(-rc));
	if (c->mac_set) {
		memcpy(mac.addr_bytes, c->mac, 6);
		if ((rc = rte_eth_dev_default_mac_addr_set(p->id, &mac)) != 0)
			log_warn("port %u: cannot set MAC from [interface] mac "
				 "(%s); enabling promiscuous mode", p->id,
				 rte_strerror(-rc));
		if (rc != 0)
			rte_eth_promiscuous_enable(p->id);
	}
	if ((rc = rte_eth_dev_start(p->id)) != 0) {
		/* a net_memif client connects to its server's socket in
		 * dev_start, once: without a server listening it fails with
		 * EPERM, which says nothing to an operator */
		bool memif = strcmp(p->driver, "net_memif") == 0 &&
			     strstr(prof->vdev, "role=client") != NULL;

		snprintf(err, errlen, "port %u (%s): rte_eth_dev_start: %s%s",
			 p->id, p->name, rte_strerror(-rc), memif ?
			 " (memif client: is the memif server listening on "
			 "the socket in [device] vdev? start it first, e.g. "
			 "sluice-bench gen --transport memif)" : "");
		return -1;
	}
	if (rte_eth_dev_get_mtu(p->id, &p->mtu) != 0)
		p->mtu = mtu;
	rte_eth_macaddr_get(p->id, &mac);
	memcpy(p->mac, mac.addr_bytes, 6);
	if (c->mac_set)
		memcpy(p->mac, c->mac, 6);
	port_rss_readback(p, &di);

	memset(&link, 0, sizeof(link));
	rte_eth_link_get_nowait(p->id, &link);
	log_info("port %u (%s): driver %s, %u rx/%u tx queues (device max "
		 "%u/%u), %u/%u descriptors, MTU %u, MAC "
		 "%02x:%02x:%02x:%02x:%02x:%02x, link %s %u Mbps",
		 p->id, p->name, p->driver, p->nb_queues, p->nb_queues,
		 di.max_rx_queues, di.max_tx_queues, nrx, ntx, p->mtu,
		 p->mac[0], p->mac[1], p->mac[2], p->mac[3], p->mac[4],
		 p->mac[5], link.link_status ? "up" : "down",
		 link.link_speed);
	port_offload_log(p, prof, &di);
	if (p->rss.enabled)
		log_info("port %u: RSS hash functions 0x%llx (ipv4 %s, "
			 "ipv4-tcp %s), key %u bytes, RETA %u entries%s", p->id,
			 (unsigned long long)p->rss_hf,
			 p->rss_hf & RTE_ETH_RSS_IPV4 ? "on" : "off",
			 p->rss_hf & RTE_ETH_RSS_NONFRAG_IPV4_TCP ? "on" : "off",
			 p->rss.key_len, p->rss.reta_size,
			 p->rss.reta_size ? "" : " (unknown: assuming modulo)");
	else
		log_info("port %u: RSS off (%u queue%s; device can hash 0x%llx)",
			 p->id, p->nb_queues, p->nb_queues == 1 ? "" : "s",
			 (unsigned long long)di.flow_type_rss_offloads);
	return 0;
}

void port_close(struct port *p)
{
	int rc;

	if (p->open && (rc = rte_eth_dev_stop(p->id)) != 0)
		log_warn("port %u: stop: %s", p->id, rte_strerror(-rc));
	p->open = false;
	/* close even an unconfigured port: a TAP interface goes away */
	if (p->found && (rc = rte_eth_dev_close(p->id)) != 0)
		log_warn("port %u: close: %s", p->id, rte_strerror(-rc));
	p->found = false;
	for (unsigned q = 0; q < CFG_MAX_IO; q++) {
		if (p->pools[q])
			rte_mempool_free(p->pools[q]);
		p->pools[q] = NULL;
	}
}
