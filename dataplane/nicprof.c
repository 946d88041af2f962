/*
 * nicprof.c - load and validate a NIC profile (see nicprof.h).
 *
 * Input: a profile path. Output: struct nicprof or an error naming file,
 * section, key and reason. Defaults are those of a virtual device (TAP):
 * one queue pair per io lcore, 1024 descriptors, no RSS key override,
 * every checksum offload wished for, MTU 1500.
 */
#include <stdio.h>
#include <string.h>

#include "cfgval.h"
#include "nicprof.h"

static const char *const nicprof_device_keys[] = { "type", "vdev", "pci",
						   NULL };
static const char *const nicprof_queue_keys[] = { "rx", "tx", "rx_desc",
						  "tx_desc", NULL };
static const char *const nicprof_rss_keys[] = { "enabled", "ipv4", "tcp",
						"key", NULL };
static const char *const nicprof_offload_keys[] = { "rx_ip_csum",
	"rx_tcp_csum", "tx_ip_csum", "tx_tcp_csum", "tso", NULL };
static const char *const nicprof_port_keys[] = { "mtu", "promiscuous", NULL };
static const char *const nicprof_mempool_keys[] = { "mbufs", "cache",
						    "data_room", NULL };

static const struct cfgval_section nicprof_schema[] = {
	{ "device", nicprof_device_keys },
	{ "queues", nicprof_queue_keys },
	{ "rss", nicprof_rss_keys },
	{ "offload", nicprof_offload_keys },
	{ "port", nicprof_port_keys },
	{ "mempool", nicprof_mempool_keys },
	{ NULL, NULL },
};

/* nicprof_queues - "auto" or a count 1..128 */
static int nicprof_queues(struct cfgval *v, const char *key, unsigned *out)
{
	const char *s = cfgval_raw(v, "queues", key);
	uint64_t x;

	if (v->failed)
		return -1;
	if (!s || strcmp(s, "auto") == 0) {
		*out = NICPROF_QUEUES_AUTO;
		return 0;
	}
	if (cfgval_uint(v, "queues", key, 1, 128, 1, &x) < 0) {
		/* reword: "auto" is allowed too */
		v->failed = 0;
		return cfgval_fail(v, "[queues] %s: \"%s\" is not \"auto\" or "
				   "a count in 1..128", key, s);
	}
	*out = (unsigned)x;
	return 0;
}

/* nicprof_pci - split the allowlist; each entry DDDD:BB:DD.F or BB:DD.F */
static int nicprof_pci(struct cfgval *v, struct nicprof *p)
{
	char buf[256], *save = NULL, *tok;

	if (cfgval_str(v, "device", "pci", "", buf, sizeof(buf)) < 0)
		return -1;
	for (tok = strtok_r(buf, ", ", &save); tok;
	     tok = strtok_r(NULL, ", ", &save)) {
		unsigned dom, bus, dev, fn;
		char tail;

		if (sscanf(tok, "%x:%x:%x.%x%c", &dom, &bus, &dev, &fn,
			   &tail) != 4 &&
		    sscanf(tok, "%x:%x.%x%c", &bus, &dev, &fn, &tail) != 3)
			return cfgval_fail(v, "[device] pci: \"%s\" is not a "
					   "PCI address (0000:03:00.0)", tok);
		if (p->n_pci == NICPROF_PCI_MAX)
			return cfgval_fail(v, "[device] pci: more than %d "
					   "devices", NICPROF_PCI_MAX);
		snprintf(p->pci[p->n_pci++], sizeof(p->pci[0]), "%s", tok);
	}
	if (p->n_pci == 0)
		return cfgval_fail(v, "[device] pci: missing (required with "
				   "type = pci)");
	return 0;
}

int nicprof_load(const char *path, struct nicprof *p, char *err,
		 size_t errlen)
{
	static const char *const types[] = { "vdev", "pci", NULL };
	static const unsigned key_lens[] = { 40, 52, 0 };
	struct cfgval v;
	const char *base;
	unsigned type;
	uint64_t x;

	memset(p, 0, sizeof(*p));
	snprintf(p->path, sizeof(p->path), "%s", path);
	base = strrchr(path, '/');
	snprintf(p->name, sizeof(p->name), "%s", base ? base + 1 : path);
	if (strlen(p->name) > 5 &&
	    strcmp(p->name + strlen(p->name) - 5, ".conf") == 0)
		p->name[strlen(p->name) - 5] = '\0';

	if (cfgval_open(&v, path) < 0)
		goto out;
	if (cfgval_check_schema(&v, nicprof_schema) < 0)
		goto out;

	cfgval_enum(&v, "device", "type", types, NICPROF_VDEV, &type);
	p->type = (enum nicprof_type)type;
	if (!v.failed && p->type == NICPROF_VDEV) {
		if (!cfgval_has(&v, "device", "vdev"))
			cfgval_fail(&v, "[device] vdev: missing (required with "
				    "type = vdev, e.g. net_tap0,iface=sl0)");
		else if (cfgval_has(&v, "device", "pci"))
			cfgval_fail(&v, "[device] pci: not allowed with type "
				    "= vdev");
		cfgval_str(&v, "device", "vdev", "", p->vdev, sizeof(p->vdev));
		if (!v.failed && strncmp(p->vdev, "net_", 4) != 0)
			cfgval_fail(&v, "[device] vdev: \"%s\" does not name a "
				    "net_* driver", p->vdev);
	} else if (!v.failed) {
		if (cfgval_has(&v, "device", "vdev"))
			cfgval_fail(&v, "[device] vdev: not allowed with type "
				    "= pci");
		nicprof_pci(&v, p);
	}

	nicprof_queues(&v, "rx", &p->rx_queues);
	nicprof_queues(&v, "tx", &p->tx_queues);
	if (cfgval_uint(&v, "queues", "rx_desc", 32, 32768, 1024, &x) == 0)
		p->rx_desc = (unsigned)x;
	if (cfgval_uint(&v, "queues", "tx_desc", 32, 32768, 1024, &x) == 0)
		p->tx_desc = (unsigned)x;
	if (!v.failed && p->rx_queues != p->tx_queues)
		cfgval_fail(&v, "[queues] tx: must equal rx (one queue pair "
			    "per io lcore)");

	cfgval_bool(&v, "rss", "enabled", true, &p->rss);
	cfgval_bool(&v, "rss", "ipv4", true, &p->rss_ipv4);
	cfgval_bool(&v, "rss", "tcp", true, &p->rss_tcp);
	cfgval_hex(&v, "rss", "key", key_lens, p->rss_key,
		   sizeof(p->rss_key), &p->rss_key_len);
	if (!v.failed && p->rss && !p->rss_ipv4 && !p->rss_tcp)
		cfgval_fail(&v, "[rss] enabled: yes but no hash field "
			    "(ipv4, tcp) is on");

	cfgval_bool(&v, "offload", "rx_ip_csum", true, &p->rx_ip_csum);
	cfgval_bool(&v, "offload", "rx_tcp_csum", true, &p->rx_tcp_csum);
	cfgval_bool(&v, "offload", "tx_ip_csum", true, &p->tx_ip_csum);
	cfgval_bool(&v, "offload", "tx_tcp_csum", true, &p->tx_tcp_csum);
	cfgval_bool(&v, "offload", "tso", false, &p->tso);

	if (cfgval_uint(&v, "port", "mtu", 576, 9000, 1500, &x) == 0)
		p->mtu = (unsigned)x;
	cfgval_bool(&v, "port", "promiscuous", false, &p->promiscuous);

	if (cfgval_uint(&v, "mempool", "mbufs", 1023, 1u << 20, 8191, &x) == 0)
		p->mbufs = (unsigned)x;
	if (cfgval_uint(&v, "mempool", "cache", 0, 512, 256, &x) == 0)
		p->mbuf_cache = (unsigned)x;
	if (cfgval_uint(&v, "mempool", "data_room", 1024, 65535, 2176, &x) == 0)
		p->data_room = (unsigned)x;
	if (!v.failed && p->mbuf_cache > p->mbufs / 4)
		cfgval_fail(&v, "[mempool] cache: %u is more than mbufs/4",
			    p->mbuf_cache);
	/* RTE_PKTMBUF_HEADROOM (128) + the largest frame must fit */
	if (!v.failed && p->data_room < 128 + p->mtu + 18)
		cfgval_fail(&v, "[mempool] data_room: %u is too small for "
			    "MTU %u (need %u)", p->data_room, p->mtu,
			    128 + p->mtu + 18);
out:
	return cfgval_close(&v, err, errlen);
}
