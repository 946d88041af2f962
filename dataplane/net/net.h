/*
 * net.h - sluice's per-lcore userspace TCP/IPv4 stack: the public contract.
 *
 * One struct net_stack per io lcore, shared-nothing, no locks. The stack is
 * sans-IO: it never calls DPDK, never reads a clock, never touches a global.
 *
 *   frames in   net_input_burst(s, rx[], n, now)      (copies what it keeps)
 *   time in     net_poll(s, now)                      (timers, then output)
 *   frames out  through struct net_io: tx_alloc gives a buffer the stack
 *               writes one whole Ethernet frame into, tx_send hands it back
 *               (zero-copy: the glue's buffer is an rte_mbuf); tx_free
 *               returns an unsent buffer (e.g. ARP resolution failed).
 *   events out  net_events(s, ev[], max) after input/poll: one entry per
 *               socket with a bitmask of what happened since the last call.
 *
 * Time is a monotonic count of microseconds chosen by the caller; tests use
 * a virtual clock. Addresses and ports in this API are in host byte order.
 *
 * Socket data semantics (documented in docs/tcp-stack.md):
 *   - net_send() copies into the socket's fixed send buffer and returns how
 *     many bytes it took (maybe fewer than asked); data leaves at the next
 *     net_poll(), so several sends in one round become one segment train
 *     (SMTP pipelined replies go out in one write).
 *   - net_recv() copies out; net_recv_peek()/net_recv_consume() read the
 *     receive buffer in place. The advertised window only reopens as the
 *     application consumes: an application that stops reading closes the
 *     peer's window (backpressure, never drops).
 *
 * Errors: functions return 0 / a count, or a negative NET_E* code;
 * net_strerror() names it. Constructors return NULL.
 */
#ifndef SLUICE_NET_H
#define SLUICE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NET_ETHER_ADDR_LEN 6

enum net_err {
	NET_OK = 0,
	NET_EINVAL = 1,      /* bad argument or socket handle */
	NET_ENOMEM = 2,      /* a fixed pool is exhausted */
	NET_EAGAIN = 3,      /* would block: buffer full / nothing to read */
	NET_EADDRINUSE = 4,  /* port already listening / no free source port */
	NET_ENOTCONN = 5,    /* socket not in a state that allows this */
	NET_ECONNREFUSED = 6,/* RST answered our SYN, or ICMP unreachable */
	NET_ECONNRESET = 7,  /* peer reset an established connection */
	NET_ETIMEDOUT = 8,   /* retransmissions exhausted / ARP failed */
	NET_EPIPE = 9,       /* send after shutdown */
	NET_ECONNABORTED = 10,/* aborted locally (net_abort, stack destroy) */
	NET_EHOSTUNREACH = 11,/* ICMP host/net unreachable while connecting */
};

const char *net_strerror(int err); /* accepts err or -err */

/* --- configuration ------------------------------------------------------ */

struct net_config {
	uint8_t mac[NET_ETHER_ADDR_LEN];
	uint32_t ip;           /* our address */
	uint8_t prefix_len;    /* on-link prefix */
	uint32_t gateway;      /* 0 = none */
	uint16_t mtu;          /* IP MTU, e.g. 1500 */

	unsigned max_conns;    /* fixed connection pool (incl. SYN_RECV) */
	unsigned rcvbuf;       /* bytes per connection receive buffer */
	unsigned sndbuf;       /* bytes per connection send buffer */
	unsigned syn_backlog;  /* SYN_RECV per listener before SYN cookies */
	unsigned conn_low_water; /* free conns below this: SYNs get cookies */
	unsigned timewait_max; /* compact TIME_WAIT entries */
	unsigned arp_entries;  /* neighbour table size */
	unsigned arp_pending;  /* frames held awaiting ARP, in total */
	unsigned max_listeners;

	uint32_t msl_ms;       /* TIME_WAIT = 2*MSL; default 30000 */
	uint32_t fin_wait2_ms; /* orphaned FIN-WAIT-2 timeout; default 60000 */
	uint32_t delack_ms;    /* delayed ACK; default 40 */
	uint32_t rto_min_ms;   /* default 200 (RFC 6298 allows lower than 1s) */
	uint32_t rto_max_ms;   /* default 60000 */
	uint32_t rto_init_ms;  /* default 1000 */
	unsigned syn_retries;  /* default 6 */
	unsigned data_retries; /* default 15 */
	uint32_t arp_timeout_ms; /* neighbour entry lifetime; default 300000 */

	bool tx_ip_csum_offload;  /* glue computes IPv4 header checksum */
	bool tx_tcp_csum_offload; /* glue/NIC computes TCP checksum */

	uint8_t secret[32];    /* keys ISN (RFC 6528) and SYN cookies */
};

/* net_config_defaults - fill every field with a usable default (no address) */
void net_config_defaults(struct net_config *cfg);

/* --- I/O glue ------------------------------------------------------------- */

/* flags passed with an outgoing frame (checksum offload requests) */
#define NET_TXF_IP_CSUM  0x1u  /* fill IPv4 header checksum */
#define NET_TXF_TCP_CSUM 0x2u  /* TCP csum field holds the pseudo-header sum */

struct net_txbuf {
	void *handle;      /* glue's buffer (rte_mbuf *), opaque to the stack */
	uint8_t *data;     /* where the frame is written */
	uint16_t cap;      /* bytes available at data */
};

struct net_io {
	void *opaque;
	/* get a frame buffer; return 0 or -NET_ENOMEM (counted, frame skipped) */
	int (*tx_alloc)(void *opaque, struct net_txbuf *tb);
	/* frame of len bytes is complete; glue queues it for transmission */
	void (*tx_send)(void *opaque, struct net_txbuf *tb, uint16_t len,
			uint32_t txflags, uint8_t l2_len, uint8_t l3_len);
	/* buffer will not be sent */
	void (*tx_free)(void *opaque, struct net_txbuf *tb);
	/* optional: pick an outbound source port whose RSS hash lands on this
	 * lcore's queue (rte_thash); return 0 and set *sport, or negative to
	 * let the stack pick. 'attempt' grows on each retry after collisions. */
	int (*pick_sport)(void *opaque, uint32_t saddr, uint32_t daddr,
			  uint16_t dport, unsigned attempt, uint16_t *sport);
};

/* flags the glue reports with a received frame (checksum offload results) */
#define NET_RXF_IP_CSUM_GOOD  0x1u
#define NET_RXF_IP_CSUM_BAD   0x2u
#define NET_RXF_L4_CSUM_GOOD  0x4u
#define NET_RXF_L4_CSUM_BAD   0x8u

struct net_rx {
	const uint8_t *data;  /* Ethernet frame */
	uint16_t len;
	uint32_t flags;       /* NET_RXF_* */
};

/* --- stack lifetime and driving ----------------------------------------- */

struct net_stack;

/* net_stack_create - allocate all pools up front; NULL on bad config/ENOMEM */
struct net_stack *net_stack_create(const struct net_config *cfg,
				   const struct net_io *io, uint64_t now);
/* net_stack_destroy - RST every live connection, free buffers and pools */
void net_stack_destroy(struct net_stack *s, uint64_t now);

/* net_input_burst - process n frames; returns n (every frame is consumed,
 * dropped ones are counted). The caller may free the frames afterwards. */
unsigned net_input_burst(struct net_stack *s, const struct net_rx *rx,
			 unsigned n, uint64_t now);

/* net_poll - run due timers, then transmit everything pending */
void net_poll(struct net_stack *s, uint64_t now);

/* net_next_deadline - earliest pending timer (UINT64_MAX if none) */
uint64_t net_next_deadline(const struct net_stack *s);

/* --- sockets (TCP) ------------------------------------------------------ */

typedef uint32_t net_sock_t;          /* handle: slot + generation */
#define NET_SOCK_INVALID UINT32_MAX

#define NET_EV_ACCEPTED  0x01u /* new passive connection, established */
#define NET_EV_CONNECTED 0x02u /* active open completed */
#define NET_EV_READABLE  0x04u /* new data in the receive buffer */
#define NET_EV_WRITABLE  0x08u /* send buffer space became available */
#define NET_EV_PEER_FIN  0x10u /* peer finished sending (read returns 0) */
#define NET_EV_CLOSED    0x20u /* socket is gone; error says why (0 = clean);
				  the handle is invalid after this event */

struct net_event {
	net_sock_t sock;
	uint32_t events;   /* NET_EV_* */
	int error;         /* NET_E* (positive) with NET_EV_CLOSED, else 0 */
	void *user;        /* socket's user pointer (listener's for ACCEPTED) */
	uint16_t lport;    /* local port (which service) */
};

/* net_events - take up to max pending events; returns how many */
unsigned net_events(struct net_stack *s, struct net_event *ev, unsigned max);

/* net_listen - accept connections to port; -NET_EADDRINUSE, -NET_ENOMEM */
int net_listen(struct net_stack *s, uint16_t port, void *user);
/* net_unlisten - stop accepting on port; established connections stay */
int net_unlisten(struct net_stack *s, uint16_t port);

/* net_connect - active open to daddr:dport; *out valid at once, the
 * NET_EV_CONNECTED or NET_EV_CLOSED event tells the outcome.
 * -NET_ENOMEM, -NET_EADDRINUSE (no source port). */
int net_connect(struct net_stack *s, uint32_t daddr, uint16_t dport,
		void *user, uint64_t now, net_sock_t *out);

int net_set_user(struct net_stack *s, net_sock_t sock, void *user);

/* net_send - copy up to len bytes into the send buffer; returns bytes taken
 * (0 if full: wait for NET_EV_WRITABLE), -NET_EPIPE after shutdown,
 * -NET_ENOTCONN before established, -NET_EINVAL on a stale handle */
ssize_t net_send(struct net_stack *s, net_sock_t sock, const void *buf,
		 size_t len);
/* net_send_space - bytes net_send would take now */
size_t net_send_space(const struct net_stack *s, net_sock_t sock);

/* net_recv - copy out up to len bytes; returns bytes, 0 at end of stream
 * (peer FIN and buffer empty), -NET_EAGAIN if nothing yet */
ssize_t net_recv(struct net_stack *s, net_sock_t sock, void *buf, size_t len);
/* net_recv_peek - point iov at readable bytes in place (ring: up to 2
 * pieces); returns total bytes; net_recv_consume releases n of them */
struct net_iov { const uint8_t *base; size_t len; };
ssize_t net_recv_peek(struct net_stack *s, net_sock_t sock,
		      struct net_iov iov[2]);
int net_recv_consume(struct net_stack *s, net_sock_t sock, size_t n);

/* net_shutdown - send FIN after queued data; reading continues */
int net_shutdown(struct net_stack *s, net_sock_t sock);
/* net_close - shutdown and release: no more events except the final
 * NET_EV_CLOSED; unread data is discarded (RST if any, RFC 9293 3.10.4 */
int net_close(struct net_stack *s, net_sock_t sock);
/* net_abort - send RST, free at once; NET_EV_CLOSED(ECONNABORTED) follows */
int net_abort(struct net_stack *s, net_sock_t sock);

struct net_sockinfo {
	uint32_t laddr, raddr;
	uint16_t lport, rport;
	int state;           /* enum tcp_state value, see net_state_name() */
	uint32_t srtt_us, rto_ms, cwnd, ssthresh, snd_wnd, rcv_wnd;
	uint64_t retransmits;
};
int net_sockinfo(const struct net_stack *s, net_sock_t sock,
		 struct net_sockinfo *info);
const char *net_state_name(int state);

/* --- counters ------------------------------------------------------------ */

/* net_counters - name/value pairs of every counter and pool gauge of the
 * stack (for rte_telemetry and tests); returns how many were written, or,
 * with out == NULL, how many there are. Names are static strings. */
struct net_counter { const char *name; uint64_t value; };
unsigned net_counters(const struct net_stack *s, struct net_counter *out,
		      unsigned max);

#endif
