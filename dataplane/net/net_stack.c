/*
 * net_stack.c - stack lifetime, Ethernet demux, driving and counters.
 *
 * Input:  whole Ethernet II frames (net_input_burst) and the caller's
 *         monotonic time in microseconds (every entry point takes it and
 *         stores it in s->now before anything else runs).
 * Output: frames through struct net_io (written by arp.c/ipv4.c/icmp.c and
 *         TCP), counters by name.
 *
 * Demux: frames addressed to our MAC or to broadcast go to ARP (0x0806) or
 * IPv4 (0x0800); everything else (other unicast/multicast destinations,
 * VLAN tags, IPv6, runts, multicast sources) is dropped and counted.
 * net_poll runs ARP timers, TCP timers, then TCP output, in that order.
 *
 * Invariants: all memory is allocated in net_stack_create; no globals, no
 * clock reads, no I/O other than through struct net_io.
 */
#include <stddef.h>
#include <stdlib.h>

#include "net_l3.h"

/* net_config_defaults - usable defaults for every field except addresses */
void net_config_defaults(struct net_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->prefix_len = 24;
	cfg->mtu = 1500;
	cfg->max_conns = 4096;
	cfg->rcvbuf = 64 * 1024;
	cfg->sndbuf = 64 * 1024;
	cfg->syn_backlog = 256;
	cfg->conn_low_water = 64;
	cfg->timewait_max = 4096;
	cfg->arp_entries = 256;
	cfg->arp_pending = 128;
	cfg->max_listeners = 16;
	cfg->msl_ms = 30000;
	cfg->fin_wait2_ms = 60000;
	cfg->delack_ms = 40;
	cfg->rto_min_ms = 200;
	cfg->rto_max_ms = 60000;
	cfg->rto_init_ms = 1000;
	cfg->syn_retries = 6;
	cfg->data_retries = 15;
	cfg->arp_timeout_ms = 300000;
}

static const char *const net_err_names[] = {
	[NET_OK] = "success",
	[NET_EINVAL] = "invalid argument or socket handle",
	[NET_ENOMEM] = "pool exhausted",
	[NET_EAGAIN] = "would block",
	[NET_EADDRINUSE] = "address in use",
	[NET_ENOTCONN] = "not connected",
	[NET_ECONNREFUSED] = "connection refused",
	[NET_ECONNRESET] = "connection reset by peer",
	[NET_ETIMEDOUT] = "timed out",
	[NET_EPIPE] = "broken pipe (send after shutdown)",
	[NET_ECONNABORTED] = "connection aborted locally",
	[NET_EHOSTUNREACH] = "host unreachable",
};

/* net_strerror - static description of err or -err */
const char *net_strerror(int err)
{
	if (err < 0)
		err = -err;
	if ((size_t)err < sizeof(net_err_names) / sizeof(net_err_names[0]) &&
	    net_err_names[err])
		return net_err_names[err];
	return "unknown error";
}

/* net_config_ok - reject configurations the stack cannot run with */
static bool net_config_ok(const struct net_config *c)
{
	if (c->mtu < 68 || c->mtu > 9216) /* RFC 791 minimum; jumbo max */
		return false;
	if (c->prefix_len > 32 || c->arp_entries == 0 || c->max_conns == 0)
		return false;
	if (c->mac[0] & 1) /* our MAC must be unicast */
		return false;
	return true;
}

/* net_stack_create - copy config, allocate ARP and TCP state up front */
struct net_stack *net_stack_create(const struct net_config *cfg,
				   const struct net_io *io, uint64_t now)
{
	struct net_stack *s;

	if (!cfg || !io || !io->tx_alloc || !io->tx_send || !io->tx_free ||
	    !net_config_ok(cfg))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->io = *io;
	s->now = now;
	s->icmp_tokens = NET_ICMP_BURST;
	s->icmp_tokens_ts = now;
	s->ip_id = (uint16_t)(cfg->secret[0] | cfg->secret[1] << 8);
	s->arp = arp_create(&s->cfg);
	if (!s->arp) {
		free(s);
		return NULL;
	}
	s->tcp = tcp_create(s);
	if (!s->tcp) {
		arp_destroy(s);
		free(s);
		return NULL;
	}
	return s;
}

/* net_stack_destroy - TCP first (its RSTs still go out), then ARP */
void net_stack_destroy(struct net_stack *s, uint64_t now)
{
	if (!s)
		return;
	s->now = now;
	tcp_destroy(s);
	arp_destroy(s);
	free(s);
}

static const uint8_t eth_bcast[NET_ETHER_ADDR_LEN] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff
};

/* net_eth_input - Ethernet II demux of one frame */
static void net_eth_input(struct net_stack *s, const struct net_rx *rx)
{
	const uint8_t *f = rx->data;
	uint16_t type;

	s->l3.rx_frames++;
	s->l3.rx_bytes += rx->len;
	if (rx->len < NET_ETH_HLEN || (f[6] & 1)) { /* runt / group source */
		s->l3.rx_bad_eth++;
		return;
	}
	if (memcmp(f, s->cfg.mac, NET_ETHER_ADDR_LEN) != 0 &&
	    memcmp(f, eth_bcast, NET_ETHER_ADDR_LEN) != 0) {
		s->l3.rx_not_for_us++;
		return;
	}
	type = net_rd16(f + 12);
	if (type == NET_ETHERTYPE_IPV4)
		ipv4_input(s, f + NET_ETH_HLEN, rx->len - NET_ETH_HLEN,
			   rx->flags);
	else if (type == NET_ETHERTYPE_ARP)
		arp_input(s, f + NET_ETH_HLEN, rx->len - NET_ETH_HLEN, f + 6);
	else
		s->l3.rx_unknown_ethertype++;
}

/* net_input_burst - demux n frames; every frame is consumed */
unsigned net_input_burst(struct net_stack *s, const struct net_rx *rx,
			 unsigned n, uint64_t now)
{
	s->now = now;
	for (unsigned i = 0; i < n; i++)
		net_eth_input(s, &rx[i]);
	return n;
}

/* net_poll - run due timers, then transmit everything pending */
void net_poll(struct net_stack *s, uint64_t now)
{
	s->now = now;
	arp_timers(s);
	tcp_timers(s);
	tcp_flush(s);
}

/* net_next_deadline - earliest of the ARP and TCP timers */
uint64_t net_next_deadline(const struct net_stack *s)
{
	uint64_t a = arp_next_deadline(s), t = tcp_next_deadline(s);

	return a < t ? a : t;
}

#define L3C(n, f) { n, offsetof(struct net_l3_stats, f) }
static const struct {
	const char *name;
	size_t off;
} l3_counter_tab[] = {
	L3C("l3.rx_frames", rx_frames),
	L3C("l3.rx_bytes", rx_bytes),
	L3C("l3.tx_frames", tx_frames),
	L3C("l3.tx_bytes", tx_bytes),
	L3C("l3.tx_alloc_fail", tx_alloc_fail),
	L3C("eth.bad", rx_bad_eth),
	L3C("eth.not_for_us", rx_not_for_us),
	L3C("eth.unknown_ethertype", rx_unknown_ethertype),
	L3C("arp.rx_request", arp_rx_request),
	L3C("arp.rx_reply", arp_rx_reply),
	L3C("arp.tx_request", arp_tx_request),
	L3C("arp.tx_reply", arp_tx_reply),
	L3C("arp.bad", arp_bad),
	L3C("arp.pending_drop", arp_pending_drop),
	L3C("arp.resolve_fail", arp_resolve_fail),
	L3C("ip.rx", ip_rx),
	L3C("ip.bad_header", ip_bad_header),
	L3C("ip.bad_csum", ip_bad_csum),
	L3C("ip.bad_len", ip_bad_len),
	L3C("ip.not_for_us", ip_not_for_us),
	L3C("ip.frag_drop", ip_frag_drop),
	L3C("ip.options", ip_options),
	L3C("ip.unknown_proto", ip_unknown_proto),
	L3C("ip.no_route", ip_no_route),
	L3C("ip.tx_bad_len", ip_tx_bad_len),
	L3C("icmp.rx_echo", icmp_rx_echo),
	L3C("icmp.tx_echo_reply", icmp_tx_echo_reply),
	L3C("icmp.tx_unreach", icmp_tx_unreach),
	L3C("icmp.rx_unreach", icmp_rx_unreach),
	L3C("icmp.rx_ignored", icmp_rx_ignored),
	L3C("icmp.bad", icmp_bad),
	L3C("icmp.rate_limited", icmp_rate_limited),
};
#define L3_NCOUNTERS (sizeof(l3_counter_tab) / sizeof(l3_counter_tab[0]))

/* net_counters - l3 counters, ARP gauges, then TCP's; out NULL = count */
unsigned net_counters(const struct net_stack *s, struct net_counter *out,
		      unsigned max)
{
	unsigned k = 0;

	if (!out)
		return (unsigned)L3_NCOUNTERS + arp_counters(s, NULL, 0) +
		       tcp_counters(s, NULL, 0);
	for (size_t i = 0; i < L3_NCOUNTERS && k < max; i++, k++) {
		out[k].name = l3_counter_tab[i].name;
		memcpy(&out[k].value,
		       (const uint8_t *)&s->l3 + l3_counter_tab[i].off,
		       sizeof(uint64_t));
	}
	if (k < max)
		k += arp_counters(s, out + k, max - k);
	if (k < max)
		k += tcp_counters(s, out + k, max - k);
	return k;
}
