/*
 * sb_dpdk.c - the memif transport: EAL, one net_memif server port and
 * sluice's TCP/IP stack behind the sb_tport interface (contract in
 * sb_dpdk.h). Input: gen_cfg's memif settings. Output: connections for the
 * SMTP client. Invariants: every mbuf lent to the stack comes back through
 * tx_send (queued, then sent or freed by tx_flush) or tx_free; received
 * mbufs are freed after net_input_burst (the stack copies what it keeps);
 * only the thread running the worker touches the stack after start-up.
 */
#define _GNU_SOURCE
#include "sb_dpdk.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_pause.h>

#include "net.h"
#include "sb_tport.h"

#define SBD_PORT_NAME "net_memif0"
#define SBD_RX_BURST 32
#define SBD_TX_BURST 64
#define SBD_DESC 1024
#define SBD_MBUFS 16383
#define SBD_IDLE_SPINS 256
#define SBD_CLOSE_WAIT_US 500000   /* destroy: let FIN exchanges finish */

struct pend {
	struct sb_conn *c;
	uint32_t sock;
};

struct dtport {
	struct sb_tport t;
	struct net_stack *s;
	unsigned live;                 /* handles not yet reported CLOSED */
	struct pend *pend;             /* connections owed events */
	size_t npend, cap;
	uint64_t idle_sleep_us;
	unsigned ntx;
	struct rte_mbuf *txq[SBD_TX_BURST];
};

static struct {
	bool up;
	uint16_t port;
	struct rte_mempool *pool;
	struct dtport *tp;             /* made at start, adopted by the worker */
	uint64_t tx_drop, tx_alloc_fail, rx_multiseg;
} D;

/* --- net_io: the stack's frames in mbufs -------------------------------- */

static unsigned tx_flush(struct dtport *d)
{
	unsigned sent = 0;
	if (!d->ntx)
		return 0;
	for (unsigned tries = 0; sent < d->ntx && tries < 8; tries++)
		sent += rte_eth_tx_burst(D.port, 0, d->txq + sent, (uint16_t)(d->ntx - sent));
	if (sent < d->ntx) { /* memif ring full: TCP retransmits what is lost */
		D.tx_drop += d->ntx - sent;
		rte_pktmbuf_free_bulk(d->txq + sent, d->ntx - sent);
	}
	d->ntx = 0;
	return sent;
}

static int io_tx_alloc(void *opaque, struct net_txbuf *tb)
{
	(void)opaque;
	struct rte_mbuf *m = rte_pktmbuf_alloc(D.pool);
	if (!m) {
		D.tx_alloc_fail++;
		return -NET_ENOMEM;
	}
	tb->handle = m;
	tb->data = rte_pktmbuf_mtod(m, uint8_t *);
	tb->cap = rte_pktmbuf_tailroom(m);
	return 0;
}

static void io_tx_send(void *opaque, struct net_txbuf *tb, uint16_t len, uint32_t txflags,
		       uint8_t l2_len, uint8_t l3_len)
{
	struct dtport *d = opaque;
	struct rte_mbuf *m = tb->handle;
	(void)txflags; /* no offloads configured: the stack fills checksums */
	(void)l2_len;
	(void)l3_len;
	if (len > tb->cap) {
		rte_pktmbuf_free(m);
		return;
	}
	m->data_len = len;
	m->pkt_len = len;
	d->txq[d->ntx++] = m;
	if (d->ntx == SBD_TX_BURST)
		tx_flush(d);
}

static void io_tx_free(void *opaque, struct net_txbuf *tb)
{
	(void)opaque;
	rte_pktmbuf_free(tb->handle);
}

/* rx_once - one rx burst into the stack; returns frames received */
static unsigned rx_once(struct dtport *d, uint64_t now)
{
	struct rte_mbuf *m[SBD_RX_BURST];
	struct net_rx rx[SBD_RX_BURST];
	uint16_t n = rte_eth_rx_burst(D.port, 0, m, SBD_RX_BURST);
	unsigned k = 0;
	if (!n)
		return 0;
	for (uint16_t i = 0; i < n; i++) {
		if (m[i]->nb_segs != 1) {
			D.rx_multiseg++;
			continue;
		}
		rx[k].data = rte_pktmbuf_mtod(m[i], const uint8_t *);
		rx[k].len = rte_pktmbuf_data_len(m[i]);
		rx[k].flags = 0;
		k++;
	}
	if (k)
		net_input_burst(d->s, rx, k, now);
	rte_pktmbuf_free_bulk(m, n);
	return n;
}

/* --- events --------------------------------------------------------------- */

/* owe - the caller gets ev for c at the next wait */
static void owe(struct dtport *d, struct sb_conn *c, uint32_t ev)
{
	if (c->pend == 0) {
		if (d->npend == d->cap) {
			d->cap = d->cap ? d->cap * 2 : 256;
			d->pend = realloc(d->pend, d->cap * sizeof(*d->pend));
			if (!d->pend)
				sb_die("out of memory");
		}
		d->pend[d->npend].c = c;
		d->pend[d->npend].sock = c->sock;
		d->npend++;
	}
	c->pend |= ev;
}

static int errno_of(int net_err)
{
	switch (net_err) {
	case NET_ECONNREFUSED: return ECONNREFUSED;
	case NET_ETIMEDOUT: return ETIMEDOUT;
	case NET_EHOSTUNREACH: return EHOSTUNREACH;
	case NET_ECONNABORTED: return ECONNABORTED;
	case NET_ENOMEM: return ENOBUFS;
	case NET_EADDRINUSE: return EADDRNOTAVAIL;
	case NET_EPIPE: return EPIPE;
	default: return ECONNRESET;
	}
}

/* take_events - the stack's events onto the owed list */
static void take_events(struct dtport *d)
{
	struct net_event ev[64];
	unsigned n;
	while ((n = net_events(d->s, ev, 64)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			struct sb_conn *c = ev[i].user;
			uint32_t e = ev[i].events, out = 0;
			if (e & NET_EV_CLOSED)
				d->live--;
			if (!c || c->fd < 0 || c->sock != ev[i].sock)
				continue; /* closed by us already: the final event */
			if (e & NET_EV_CONNECTED) {
				c->connected = true;
				out |= SB_EV_OUT;
			}
			if (e & (NET_EV_READABLE | NET_EV_PEER_FIN))
				out |= SB_EV_IN;
			if (e & NET_EV_PEER_FIN)
				c->peer_fin = true;
			if (e & NET_EV_WRITABLE)
				out |= SB_EV_OUT;
			if (e & NET_EV_CLOSED) {
				c->dead = true;
				c->terr = ev[i].error ? errno_of(ev[i].error) : 0;
				if (!c->connected && !c->terr)
					c->terr = ECONNRESET;
				out |= SB_EV_IN | SB_EV_OUT | (c->terr ? SB_EV_ERR : 0);
			}
			if (out)
				owe(d, c, out);
		}
		if (n < 64)
			break;
	}
}

/* collect - owed events out, in order; entries of closed/reused
 * connections are dropped */
static int collect(struct dtport *d, struct sb_event *out, int max)
{
	int k = 0;
	size_t i = 0;
	for (; i < d->npend && k < max; i++) {
		struct sb_conn *c = d->pend[i].c;
		if (c->fd < 0 || c->sock != d->pend[i].sock || !c->pend)
			continue;
		out[k].id = c->id;
		out[k].events = c->pend;
		c->pend = 0;
		k++;
	}
	if (i < d->npend)
		memmove(d->pend, d->pend + i, (d->npend - i) * sizeof(*d->pend));
	d->npend -= i;
	return k;
}

/* --- sb_tport ops ----------------------------------------------------------- */

static int d_connect(struct sb_tport *t, struct sb_conn *c, const struct sockaddr_in *dst, uint32_t id)
{
	struct dtport *d = (struct dtport *)t;
	net_sock_t h;
	sb_conn_init(c, -1);
	c->tp = t;
	c->id = id;
	c->sock = NET_SOCK_INVALID;
	int r = net_connect(d->s, ntohl(dst->sin_addr.s_addr), ntohs(dst->sin_port), c, sb_now_us(), &h);
	if (r < 0)
		return -errno_of(-r);
	c->sock = h;
	c->fd = 0; /* open */
	d->live++;
	return 0;
}

static int d_connect_result(struct sb_tport *t, struct sb_conn *c)
{
	(void)t;
	if (c->dead)
		return c->terr ? c->terr : ECONNRESET;
	return c->connected ? 0 : EINPROGRESS;
}

static void d_arm(struct sb_tport *t, struct sb_conn *c, uint32_t want)
{
	struct dtport *d = (struct dtport *)t;
	c->want = want;
	c->armed = true;
	if (c->dead) {
		owe(d, c, want | SB_EV_IN | (c->terr ? SB_EV_ERR : 0));
		return;
	}
	if (!c->connected)
		return;
	if (want & SB_EV_IN) {
		struct net_iov iov[2];
		if (c->peer_fin || net_recv_peek(d->s, c->sock, iov) > 0)
			owe(d, c, SB_EV_IN);
	}
	if ((want & SB_EV_OUT) && net_send_space(d->s, c->sock) > 0)
		owe(d, c, SB_EV_OUT);
}

static void idle_sleep(uint64_t us)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)us * 1000 };
	nanosleep(&ts, NULL);
}

/* d_wait - rx, timers and tx until an event is owed or us has passed; after
 * SBD_IDLE_SPINS idle rounds sleep up to idle_sleep_us at a time, never past
 * the deadline or the stack's next timer */
static int d_wait(struct sb_tport *t, struct sb_event *ev, int max, uint64_t us)
{
	struct dtport *d = (struct dtport *)t;
	uint64_t now = sb_now_us(), until = now + us;
	unsigned idle = 0;
	for (;;) {
		unsigned work = rx_once(d, now);
		net_poll(d->s, now);
		work += tx_flush(d);
		take_events(d);
		int k = collect(d, ev, max);
		if (k)
			return k;
		now = sb_now_us();
		if (now >= until)
			return 0;
		if (work) {
			idle = 0;
			continue;
		}
		if (++idle < SBD_IDLE_SPINS || !d->idle_sleep_us) {
			rte_pause();
			continue;
		}
		uint64_t sl = d->idle_sleep_us, nd = net_next_deadline(d->s);
		if (until - now < sl)
			sl = until - now;
		if (nd > now && nd - now < sl)
			sl = nd - now;
		if (nd <= now)
			sl = 0;
		if (sl)
			idle_sleep(sl);
		now = sb_now_us();
	}
}

static ssize_t d_read(struct sb_conn *c, void *buf, size_t n)
{
	struct dtport *d = (struct dtport *)c->tp;
	if (c->dead) {
		if (!c->terr)
			return 0;
		errno = c->terr;
		return -1;
	}
	ssize_t r = net_recv(d->s, c->sock, buf, n);
	if (r >= 0)
		return r;
	errno = r == -NET_EAGAIN ? EAGAIN : errno_of((int)-r);
	return -1;
}

static ssize_t d_write(struct sb_conn *c, const void *buf, size_t n)
{
	struct dtport *d = (struct dtport *)c->tp;
	if (c->dead) {
		errno = c->terr ? c->terr : EPIPE;
		return -1;
	}
	ssize_t r = net_send(d->s, c->sock, buf, n);
	if (r > 0)
		return r;
	if (r == 0) {
		errno = EAGAIN;
		return -1;
	}
	errno = r == -NET_ENOTCONN ? EAGAIN : errno_of((int)-r);
	return -1;
}

static void d_close(struct sb_conn *c)
{
	struct dtport *d = (struct dtport *)c->tp;
	if (!c->dead) {
		net_set_user(d->s, c->sock, NULL); /* its final event finds no owner */
		net_close(d->s, c->sock);
	}
	c->sock = NET_SOCK_INVALID;
	c->pend = 0;
}

/* d_destroy - let FINs and QUITs out (bounded), then the stack RSTs the rest */
static void d_destroy(struct sb_tport *t)
{
	struct dtport *d = (struct dtport *)t;
	uint64_t end = sb_now_us() + SBD_CLOSE_WAIT_US;
	while (d->live && sb_now_us() < end) {
		uint64_t now = sb_now_us();
		rx_once(d, now);
		net_poll(d->s, now);
		tx_flush(d);
		take_events(d);
		d->npend = 0;
	}
	net_stack_destroy(d->s, sb_now_us());
	tx_flush(d);
	free(d->pend);
	free(d);
	D.tp = NULL;
}

static const struct sb_tport_ops memif_ops = {
	.name = "memif",
	.tls = false,
	.connect = d_connect,
	.connect_result = d_connect_result,
	.arm = d_arm,
	.wait = d_wait,
	.read = d_read,
	.write = d_write,
	.close = d_close,
	.destroy = d_destroy,
};

/* --- start-up --------------------------------------------------------------- */

/* cpu_list - the CPUs this process may run on, as "0,1,..." */
static void cpu_list(char *out, size_t n)
{
	cpu_set_t set;
	size_t off = 0;
	out[0] = '\0';
	if (sched_getaffinity(0, sizeof(set), &set) != 0) {
		snprintf(out, n, "0");
		return;
	}
	for (int i = 0; i < CPU_SETSIZE && off < n; i++)
		if (CPU_ISSET(i, &set))
			off += (size_t)snprintf(out + off, n - off, "%s%d", off ? "," : "", i);
}

/* huge_free - free hugepages reserved (HugePages_Free > 0) */
static bool huge_free(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	long v = 0;
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %ld", &v) == 1)
			break;
	fclose(f);
	return v > 0;
}

static void eal_init(const struct gen_memif *m)
{
	static char args[14][320];
	char *argv[15];
	int argc = 0;
	char cpus[256];
	if (m->cpus)
		snprintf(cpus, sizeof(cpus), "%s", m->cpus);
	else
		cpu_list(cpus, sizeof(cpus));
	bool no_huge = m->no_huge || !huge_free();
#define ARG(...) snprintf(args[argc], sizeof(args[argc]), __VA_ARGS__), argv[argc] = args[argc], argc++
	ARG("sluice-bench");
	ARG("--lcores=0@(%s)", cpus);
	ARG("--file-prefix=%s", m->file_prefix);
	if (no_huge) { /* --in-memory needs hugepages; --no-shconf: no runtime files */
		ARG("--no-huge");
		ARG("--no-shconf");
	} else {
		ARG("--in-memory");
	}
	ARG("-m%u", m->mem_mb);
	ARG("--no-pci");
	ARG("--no-telemetry");
	ARG("--log-level=*:warning");
	int w = snprintf(args[argc], sizeof(args[argc]), "--vdev=" SBD_PORT_NAME ",role=server,id=%u,socket=%s,mac=%s%s%s",
			 m->id, m->socket, m->mac, m->devargs ? "," : "", m->devargs ? m->devargs : "");
	if (w < 0 || (size_t)w >= sizeof(args[argc]))
		sb_die("--memif-socket/--memif-devargs: too long");
	argv[argc] = args[argc];
	argc++;
#undef ARG
	argv[argc] = NULL;
	fprintf(stderr, "sluice-bench: EAL");
	for (int i = 1; i < argc; i++)
		fprintf(stderr, " %s", argv[i]);
	fputc('\n', stderr);
	if (rte_eal_init(argc, argv) < 0)
		sb_die("memif: rte_eal_init failed: %s (EAL arguments above)", rte_strerror(rte_errno));
}

static void port_start(const struct gen_memif *m)
{
	struct rte_eth_conf conf;
	int rc;
	if (rte_eth_dev_get_port_by_name(SBD_PORT_NAME, &D.port) != 0)
		sb_die("memif: no port %s after EAL init (driver net_memif missing?)", SBD_PORT_NAME);
	D.pool = rte_pktmbuf_pool_create("sb_mbuf", SBD_MBUFS, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					 (int)rte_socket_id());
	if (!D.pool)
		sb_die("memif: mbuf pool of %u: %s (more memory: --eal-mem)", SBD_MBUFS,
		       rte_strerror(rte_errno));
	memset(&conf, 0, sizeof(conf));
	if ((rc = rte_eth_dev_configure(D.port, 1, 1, &conf)) != 0)
		sb_die("memif: rte_eth_dev_configure: %s", rte_strerror(-rc));
	if ((rc = rte_eth_rx_queue_setup(D.port, 0, SBD_DESC, (unsigned)rte_socket_id(), NULL, D.pool)) != 0 ||
	    (rc = rte_eth_tx_queue_setup(D.port, 0, SBD_DESC, (unsigned)rte_socket_id(), NULL)) != 0)
		sb_die("memif: queue setup: %s", rte_strerror(-rc));
	if ((rc = rte_eth_dev_start(D.port)) != 0)
		sb_die("memif: rte_eth_dev_start: %s (socket %s in use? a stale socket file?)",
		       rte_strerror(-rc), m->socket);
	D.up = true;
}

/* link_wait - until the client (sluiced) has connected to our socket */
static void link_wait(const struct gen_memif *m)
{
	uint64_t t0 = sb_now_us(), end = t0 + m->link_timeout_us;
	struct rte_eth_link l;
	fprintf(stderr, "sluice-bench: memif server %s id %u: waiting for the client\n", m->socket, m->id);
	for (;;) {
		memset(&l, 0, sizeof(l));
		rte_eth_link_get_nowait(D.port, &l);
		if (l.link_status == RTE_ETH_LINK_UP)
			break;
		if (sb_now_us() >= end) {
			sb_dpdk_stop();
			sb_die("memif: no client connected to %s (id %u) within %.1f s (--link-timeout)",
			       m->socket, m->id, m->link_timeout_us / 1e6);
		}
		idle_sleep(10000);
	}
	fprintf(stderr, "sluice-bench: memif link up after %.2f s\n", (sb_now_us() - t0) / 1e6);
}

static struct dtport *stack_new(const struct gen_cfg *cfg)
{
	const struct gen_memif *m = &cfg->memif;
	struct net_config nc;
	struct net_io io;
	struct rte_ether_addr mac;
	struct dtport *d = calloc(1, sizeof(*d));
	if (!d)
		sb_die("out of memory");
	d->t.ops = &memif_ops;
	d->idle_sleep_us = m->idle_sleep_us;
	net_config_defaults(&nc);
	rte_eth_macaddr_get(D.port, &mac);
	memcpy(nc.mac, mac.addr_bytes, 6);
	nc.ip = m->local_ip;
	nc.prefix_len = m->prefix_len;
	nc.mtu = 1500;
	nc.max_conns = cfg->sessions * 2 + 64;
	nc.timewait_max = cfg->sessions * 4 + 1024;
	nc.sndbuf = 256 * 1024;
	nc.rcvbuf = 64 * 1024;
	if (getrandom(nc.secret, sizeof(nc.secret), 0) != (ssize_t)sizeof(nc.secret))
		sb_die("getrandom failed");
	io = (struct net_io){ .opaque = d, .tx_alloc = io_tx_alloc, .tx_send = io_tx_send,
			      .tx_free = io_tx_free };
	d->s = net_stack_create(&nc, &io, sb_now_us());
	if (!d->s)
		sb_die("memif: net_stack_create failed (%u connections)", nc.max_conns);
	return d;
}

/* probe - connect to the server until it accepts (it may still be starting
 * its SMTP service after the link came up); bounded by --link-timeout */
static void probe(const struct gen_cfg *cfg, struct dtport *d)
{
	uint64_t t0 = sb_now_us(), end = t0 + cfg->memif.link_timeout_us;
	struct sb_conn c;
	struct sb_event ev[4];
	unsigned tries = 0;
	char last[120] = "no answer";
	while (sb_now_us() < end) {
		tries++;
		int r = d_connect(&d->t, &c, &cfg->server, 0);
		if (r < 0)
			sb_die("memif: connect to %s: %s", cfg->server_str, strerror(-r));
		d_arm(&d->t, &c, SB_EV_OUT);
		uint64_t give_up = sb_now_us() + 1000000;
		int res = EINPROGRESS;
		while (res == EINPROGRESS && sb_now_us() < give_up) {
			if (d_wait(&d->t, ev, 4, 10000) > 0)
				res = d_connect_result(&d->t, &c);
		}
		if (res == 0) {
			sb_conn_close(&c);
			d_wait(&d->t, ev, 4, 1000);
			fprintf(stderr, "sluice-bench: %s accepts connections (%.2f s, %u attempt%s)\n",
				cfg->server_str, (sb_now_us() - t0) / 1e6, tries, tries == 1 ? "" : "s");
			return;
		}
		snprintf(last, sizeof(last), "%s", res == EINPROGRESS ? "no answer in 1 s" : strerror(res));
		if (!c.dead) {
			net_abort(d->s, c.sock);
			c.dead = true;
		}
		sb_conn_close(&c);
		uint64_t pause = sb_now_us() + 200000;
		while (sb_now_us() < pause)
			d_wait(&d->t, ev, 4, 10000);
	}
	sb_dpdk_stop();
	sb_die("memif: %s did not accept a connection within %.1f s (%s)", cfg->server_str,
	       cfg->memif.link_timeout_us / 1e6, last);
}

void sb_dpdk_start(const struct gen_cfg *cfg)
{
	const struct gen_memif *m = &cfg->memif;
	uint32_t srv = ntohl(cfg->server.sin_addr.s_addr);
	uint32_t mask = m->prefix_len ? ~0u << (32 - m->prefix_len) : 0;
	if ((srv & mask) != (m->local_ip & mask))
		sb_die("--server %s is not on the memif link %u.%u.%u.%u/%u (no gateway)", cfg->server_str,
		       m->local_ip >> 24, (m->local_ip >> 16) & 255, (m->local_ip >> 8) & 255, m->local_ip & 255,
		       m->prefix_len);
	eal_init(m);
	port_start(m);
	link_wait(m);
	D.tp = stack_new(cfg);
	probe(cfg, D.tp);
}

struct sb_tport *sb_dpdk_tport(const struct gen_cfg *cfg, unsigned worker)
{
	(void)cfg;
	if (worker != 0 || !D.tp)
		sb_die("memif: one worker thread only (-j 1)");
	/* an lcore id for this thread: per-lcore mempool cache */
	if (rte_lcore_id() == LCORE_ID_ANY)
		rte_thread_register();
	return &D.tp->t;
}

void sb_dpdk_stats(char *buf, size_t n)
{
	struct rte_eth_stats st;
	memset(&st, 0, sizeof(st));
	if (D.up)
		rte_eth_stats_get(D.port, &st);
	snprintf(buf, n, "memif port: %llu frames in, %llu out, %llu rx missed, %llu tx errors; "
		 "%llu tx dropped (ring full), %llu mbuf alloc failures",
		 (unsigned long long)st.ipackets, (unsigned long long)st.opackets,
		 (unsigned long long)st.imissed, (unsigned long long)st.oerrors,
		 (unsigned long long)D.tx_drop, (unsigned long long)D.tx_alloc_fail);
}

void sb_dpdk_stop(void)
{
	char dir[PATH_MAX];
	if (D.up) {
		rte_eth_dev_stop(D.port);
		rte_eth_dev_close(D.port); /* the driver removes a socket file */
		D.up = false;
	}
	/* --no-shconf leaves an empty /var/run/dpdk/PREFIX behind */
	snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
	rte_eal_cleanup();
	if (dir[0])
		rmdir(dir); /* only if empty: never another process's files */
}
