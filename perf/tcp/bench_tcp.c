/*
 * bench_tcp - two sluice TCP stacks back to back in memory on one core.
 *
 * Measures the stack alone (no NIC, no copies between the stacks: a frame
 * buffer written by one stack is handed to the other's net_input_burst):
 *   pingpong  C connections, 1-byte request / 1-byte response pairs per s
 *   connrate  full connections per s: open, 1 KB each way, close
 * Uses only the public net.h. Prints a table and, last, one summary line.
 * Usage: sluice-bench-tcp [-c conns] [-t seconds] [-m pingpong|connrate|all]
 */
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

#define FRAME_CAP 2048
#define MAX_FRAMES 65536
#define BURST 32

struct wire {                  /* one direction: frames waiting for input */
	struct net_rx q[MAX_FRAMES];
	unsigned n;
	uint64_t dropped;
};

struct side {
	struct net_stack *st;
	struct wire *in;           /* frames addressed to this side */
	struct wire *peer_in;      /* where this side's tx goes */
};

static uint8_t *pool_mem;
static uint8_t *free_list[MAX_FRAMES];
static unsigned free_n;

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int io_alloc(void *opaque, struct net_txbuf *tb)
{
	(void)opaque;
	if (free_n == 0)
		return -NET_ENOMEM;
	tb->data = free_list[--free_n];
	tb->handle = tb->data;
	tb->cap = FRAME_CAP;
	return 0;
}

static void io_free(void *opaque, struct net_txbuf *tb)
{
	(void)opaque;
	free_list[free_n++] = tb->data;
}

static void io_send(void *opaque, struct net_txbuf *tb, uint16_t len,
		    uint32_t txflags, uint8_t l2, uint8_t l3)
{
	struct side *sd = opaque;
	struct wire *w = sd->peer_in;
	(void)txflags; (void)l2; (void)l3;
	if (w->n == MAX_FRAMES) {
		w->dropped++;
		io_free(opaque, tb);
		return;
	}
	w->q[w->n].data = tb->data;
	w->q[w->n].len = len;
	w->q[w->n].flags = 0;
	w->n++;
}

/* deliver - feed everything queued for sd into its stack; returns frames.
 * In place: a stack's input only transmits onto the other side's wire. */
static unsigned deliver(struct side *sd, uint64_t now)
{
	struct wire *w = sd->in;
	unsigned n = w->n, i;

	for (i = 0; i < n; i += BURST) {
		unsigned k = n - i < BURST ? n - i : BURST;
		net_input_burst(sd->st, w->q + i, k, now);
	}
	for (i = 0; i < n; i++)
		free_list[free_n++] = (uint8_t *)w->q[i].data;
	w->n = 0;
	return n;
}

static struct wire wire_a, wire_b;
static struct side A, B;   /* A = server 10.0.0.1, B = client 10.0.0.2 */

static void make_side(struct side *sd, struct wire *in, struct wire *peer_in,
		      uint32_t ip, uint8_t last, unsigned conns, uint64_t now)
{
	struct net_config cfg;
	struct net_io io = {
		.opaque = sd, .tx_alloc = io_alloc, .tx_send = io_send,
		.tx_free = io_free,
	};
	net_config_defaults(&cfg);
	uint8_t mac[6] = {0x02, 0, 0, 0, 0, last};
	memcpy(cfg.mac, mac, 6);
	cfg.ip = ip;
	cfg.prefix_len = 24;
	cfg.mtu = 1500;
	cfg.max_conns = conns;
	cfg.rcvbuf = 16384;
	cfg.sndbuf = 16384;
	cfg.syn_backlog = conns;
	cfg.conn_low_water = 0;
	cfg.timewait_max = conns * 4;
	for (unsigned i = 0; i < sizeof(cfg.secret); i++)
		cfg.secret[i] = (uint8_t)(i * 7 + last);
	sd->in = in;
	sd->peer_in = peer_in;
	sd->st = net_stack_create(&cfg, &io, now);
	if (!sd->st) {
		fprintf(stderr, "bench_tcp: net_stack_create failed\n");
		exit(1);
	}
}

/* pump - move frames both ways and poll both stacks until quiet */
static void pump(uint64_t now)
{
	for (int round = 0; round < 64; round++) {
		unsigned n = deliver(&A, now) + deliver(&B, now);
		net_poll(A.st, now);
		net_poll(B.st, now);
		if (n == 0 && wire_a.n == 0 && wire_b.n == 0)
			break;
	}
}

/* settle - finish closing: move frames, take events (closing what the peer
 * ended) until nothing moves, so the pool gauges show the true baseline */
static void settle(void)
{
	struct net_event ev[256];
	for (int round = 0; round < 1000; round++) {
		unsigned n, moved = 0;
		pump(now_us());
		while ((n = net_events(A.st, ev, 256)) > 0)
			for (unsigned i = 0; i < n; i++, moved++)
				if (ev[i].events & NET_EV_PEER_FIN)
					net_close(A.st, ev[i].sock);
		while ((n = net_events(B.st, ev, 256)) > 0)
			moved += n;
		if (moved == 0 && wire_a.n == 0 && wire_b.n == 0)
			break;
	}
}

static void setup(unsigned conns)
{
	uint64_t now = now_us();
	pool_mem = aligned_alloc(64, (size_t)MAX_FRAMES * FRAME_CAP);
	if (!pool_mem) {
		perror("bench_tcp: frames");
		exit(1);
	}
	for (unsigned i = 0; i < MAX_FRAMES; i++)
		free_list[i] = pool_mem + (size_t)i * FRAME_CAP;
	free_n = MAX_FRAMES;
	make_side(&A, &wire_a, &wire_b, 0x0a000001, 1, conns + 64, now);
	make_side(&B, &wire_b, &wire_a, 0x0a000002, 2, conns + 64, now);
	/* resolve neighbours: a ping of ARP both ways happens on first send */
}

/* ----- ping-pong ----------------------------------------------------- */

struct pp_result { double pairs_per_s; uint64_t pairs; double secs; };

static int pingpong(unsigned conns, double secs, struct pp_result *res)
{
	static net_sock_t cli[1 << 16];
	struct net_event ev[256];
	unsigned connected = 0, n, i;
	uint64_t pairs = 0, t0, t_end, now;
	uint8_t b = 'x';

	if (net_listen(A.st, 7, NULL) < 0)
		return -1;
	now = now_us();
	for (i = 0; i < conns; i++) {
		if (net_connect(B.st, 0x0a000001, 7, (void *)(uintptr_t)i, now,
				&cli[i]) < 0) {
			fprintf(stderr, "connect %u failed\n", i);
			return -1;
		}
	}
	/* establish everything */
	t_end = now_us() + 5000000;
	while (connected < conns && now_us() < t_end) {
		now = now_us();
		pump(now);
		while ((n = net_events(A.st, ev, 256)) > 0)
			;
		while ((n = net_events(B.st, ev, 256)) > 0)
			for (i = 0; i < n; i++)
				if (ev[i].events & NET_EV_CONNECTED) {
					connected++;
					net_send(B.st, ev[i].sock, &b, 1);
				}
	}
	if (connected < conns) {
		fprintf(stderr, "only %u/%u connected\n", connected, conns);
		return -1;
	}
	t0 = now_us();
	t_end = t0 + (uint64_t)(secs * 1e6);
	do {
		now = now_us();
		deliver(&A, now);
		while ((n = net_events(A.st, ev, 256)) > 0)
			for (i = 0; i < n; i++)
				if (ev[i].events & NET_EV_READABLE) {
					uint8_t buf[64];
					ssize_t r = net_recv(A.st, ev[i].sock,
							     buf, sizeof buf);
					if (r > 0)
						net_send(A.st, ev[i].sock, buf,
							 (size_t)r);
				}
		net_poll(A.st, now);
		deliver(&B, now);
		while ((n = net_events(B.st, ev, 256)) > 0)
			for (i = 0; i < n; i++)
				if (ev[i].events & NET_EV_READABLE) {
					uint8_t buf[64];
					ssize_t r = net_recv(B.st, ev[i].sock,
							     buf, sizeof buf);
					if (r > 0) {
						pairs += (uint64_t)r;
						net_send(B.st, ev[i].sock, &b, 1);
					}
				}
		net_poll(B.st, now);
	} while ((pairs & 1023) || now_us() < t_end);
	res->secs = (double)(now_us() - t0) / 1e6;
	res->pairs = pairs;
	res->pairs_per_s = (double)pairs / res->secs;
	for (i = 0; i < conns; i++)
		net_abort(B.st, cli[i]);
	settle();
	net_unlisten(A.st, 7);
	return 0;
}

/* ----- connection rate ------------------------------------------------ */

struct cr_result { double conns_per_s; uint64_t done, failed; double secs; };

static uint8_t kb[1024];

/* slot - per-connection byte counts, found through the socket user pointer */
struct slot { size_t got; struct slot *next; };

static struct slot *slot_get(struct slot **fl)
{
	struct slot *sl = *fl;
	if (sl) {
		*fl = sl->next;
		sl->got = 0;
	}
	return sl;
}

static void slot_put(struct slot **fl, struct slot *sl)
{
	sl->next = *fl;
	*fl = sl;
}

static int connrate(unsigned par, double secs, struct cr_result *res)
{
	struct net_event ev[256];
	struct slot *cli_fl = NULL, *srv_fl = NULL;
	struct slot *cli = calloc(par, sizeof *cli);
	struct slot *srv = calloc(par * 2, sizeof *srv);
	uint64_t done = 0, failed = 0, t0, t_end, now;
	unsigned active = 0, n, i;
	uint8_t buf[2048];

	if (!cli || !srv)
		return -1;
	for (i = 0; i < par; i++)
		slot_put(&cli_fl, &cli[i]);
	for (i = 0; i < par * 2; i++)
		slot_put(&srv_fl, &srv[i]);
	memset(kb, 'k', sizeof kb);
	if (net_listen(A.st, 80, NULL) < 0)
		return -1;
	t0 = now_us();
	t_end = t0 + (uint64_t)(secs * 1e6);
	for (;;) {
		now = now_us();
		bool stopping = now >= t_end;
		if (stopping && active == 0)
			break;
		if (now > t_end + 5000000) {
			fprintf(stderr, "connrate: %u connections stuck\n",
				active);
			failed += active;
			break;
		}
		while (!stopping && active < par) {
			net_sock_t s;
			struct slot *sl = slot_get(&cli_fl);
			if (!sl)
				break;
			if (net_connect(B.st, 0x0a000001, 80, sl, now, &s) < 0) {
				slot_put(&cli_fl, sl);
				break;
			}
			active++;
		}
		deliver(&A, now);
		while ((n = net_events(A.st, ev, 256)) > 0)
			for (i = 0; i < n; i++) {
				net_sock_t s = ev[i].sock;
				struct slot *sl = ev[i].user;
				if (ev[i].events & NET_EV_ACCEPTED) {
					sl = slot_get(&srv_fl);
					if (!sl) {
						net_abort(A.st, s);
						continue;
					}
					net_set_user(A.st, s, sl);
				}
				if (ev[i].events & NET_EV_READABLE) {
					ssize_t r;
					while ((r = net_recv(A.st, s, buf,
							     sizeof buf)) > 0)
						sl->got += (size_t)r;
					if (sl->got >= sizeof kb) {
						net_send(A.st, s, kb, sizeof kb);
						sl->got = 0;
					}
				}
				if (ev[i].events & NET_EV_PEER_FIN)
					net_close(A.st, s);
				if (ev[i].events & NET_EV_CLOSED)
					slot_put(&srv_fl, sl);
			}
		net_poll(A.st, now);
		deliver(&B, now);
		while ((n = net_events(B.st, ev, 256)) > 0)
			for (i = 0; i < n; i++) {
				net_sock_t s = ev[i].sock;
				struct slot *sl = ev[i].user;
				if (ev[i].events & NET_EV_CONNECTED)
					net_send(B.st, s, kb, sizeof kb);
				if ((ev[i].events & NET_EV_READABLE) &&
				    sl->got < sizeof kb) {
					ssize_t r;
					while ((r = net_recv(B.st, s, buf,
							     sizeof buf)) > 0)
						sl->got += (size_t)r;
					if (sl->got >= sizeof kb) {
						net_close(B.st, s);
						done++;
					}
				}
				if (ev[i].events & NET_EV_CLOSED) {
					if (ev[i].error || sl->got < sizeof kb)
						failed++;
					slot_put(&cli_fl, sl);
					active--;
				}
			}
		net_poll(B.st, now);
	}
	res->secs = (double)(now_us() - t0) / 1e6;
	res->done = done;
	res->failed = failed;
	res->conns_per_s = (double)done / res->secs;
	settle();
	free(cli);
	free(srv);
	return 0;
}

static uint64_t counter(struct net_stack *st, const char *name)
{
	struct net_counter c[512];
	unsigned n = net_counters(st, c, 512);
	for (unsigned i = 0; i < n; i++)
		if (strcmp(c[i].name, name) == 0)
			return c[i].value;
	return UINT64_MAX;
}

int main(int argc, char **argv)
{
	unsigned conns = 100;
	double secs = 3.0;
	const char *mode = "all";
	int opt;
	struct pp_result pp = {0};
	struct cr_result cr = {0};
	bool do_pp, do_cr;

	while ((opt = getopt(argc, argv, "c:t:m:h")) != -1) {
		switch (opt) {
		case 'c': conns = (unsigned)atoi(optarg); break;
		case 't': secs = atof(optarg); break;
		case 'm': mode = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-c conns] [-t secs] "
				"[-m pingpong|connrate|all]\n", argv[0]);
			return 2;
		}
	}
	if (conns == 0 || conns > 16384 || secs <= 0) {
		fprintf(stderr, "bench_tcp: -c 1..16384, -t > 0\n");
		return 2;
	}
	do_pp = !strcmp(mode, "all") || !strcmp(mode, "pingpong");
	do_cr = !strcmp(mode, "all") || !strcmp(mode, "connrate");
	setup(conns);

	printf("sluice TCP stack, two instances back to back in memory, one "
	       "core, no NIC\n");
	printf("%-10s %-34s %14s %10s\n", "test", "conditions", "rate/s",
	       "count");
	if (do_pp) {
		if (pingpong(conns, secs, &pp) < 0)
			return 1;
		printf("%-10s %-34s %14.0f %10" PRIu64 "\n", "pingpong",
		       "1-byte req/resp pairs", pp.pairs_per_s, pp.pairs);
		printf("%-10s   (%u connections, %.1f s)\n", "", conns,
		       pp.secs);
	}
	if (do_cr) {
		if (connrate(conns, secs, &cr) < 0)
			return 1;
		printf("%-10s %-34s %14.0f %10" PRIu64 "\n", "connrate",
		       "open, 1 KB each way, close", cr.conns_per_s, cr.done);
		printf("%-10s   (%u in parallel, %.1f s, %" PRIu64
		       " failed)\n", "", conns, cr.secs, cr.failed);
	}
	printf("%-10s server conns.used=%" PRIu64 " client conns.used=%"
	       PRIu64 " frames lost in harness=%" PRIu64 "\n", "after",
	       counter(A.st, "tcp.conns.used"), counter(B.st, "tcp.conns.used"),
	       wire_a.dropped + wire_b.dropped);
	printf("summary: tcp pingpong %.0f pairs/s, connrate %.0f conns/s "
	       "(goal 1000000 / 200000, one core)\n", pp.pairs_per_s,
	       cr.conns_per_s);
	net_stack_destroy(A.st, now_us());
	net_stack_destroy(B.st, now_us());
	free(pool_mem);
	return cr.failed ? 1 : 0;
}
