/*
 * tcpscript_rt.h - state of one script run, shared by the runner's files:
 * tcpscript.c (set-up, '<'/'>' lines, driver loop, main),
 * tcpscript_io.c (fake net_io, flows/sockets, virtual clock, frame queue),
 * tcpscript_call.c (application calls and directives).
 */
#ifndef SLUICE_TCPSCRIPT_RT_H
#define SLUICE_TCPSCRIPT_RT_H

#include "net_types.h"
#include "tcpscript.h"

#define T0_US        1000000u          /* script time 0 on the stack clock */
#define PEER_IP      0xc0000201u       /* 192.0.2.1 */
#define STACK_IP     0xc0000202u       /* 192.0.2.2 */
#define MAX_FLOWS    64
#define MAX_SOCKS    256
#define LIVELOCK_MAX 10000

struct flow {
	struct ts_flowctx fc;
	bool isn_locked;          /* stack ISN learned for this connection */
	uint8_t *app_tx;          /* every byte the app sent (stack stream) */
	size_t app_tx_len, app_tx_cap;
	uint8_t *peer_rx;         /* the peer's stream as the script sent it */
	size_t peer_rx_len, peer_rx_cap;
	uint64_t app_read;        /* bytes the app has read */
};

struct sock {
	net_sock_t h;
	int flow;
	uint32_t pending;         /* NET_EV_* not yet expected */
	int error;                /* with NET_EV_CLOSED */
	bool accepted;            /* came from NET_EV_ACCEPTED */
	bool taken;               /* 'accept' returned it */
};

struct frame {
	uint8_t *data;
	uint16_t len;
	uint64_t t;
};

struct rt {
	const char *name;
	bool verbose;
	struct net_config cfg;
	struct net_stack *s;
	bool started, destroying;
	uint64_t now;

	struct frame *q;
	int qhead, qn, qcap;
	int arp_replies;          /* ARP requests for the peer to answer */
	long tx_outstanding;

	struct flow flows[MAX_FLOWS];
	int nflows;
	struct sock socks[MAX_SOCKS];
	int nsocks;
	int cur_sock;             /* -1: none */

	uint16_t def_stack_port, def_peer_port, active_port;
	uint32_t peer_isn;
	uint16_t peer_win;
	uint64_t tol_us;
	uint16_t ip_id;
	uint8_t stack_mac[6], peer_mac[6];

	const struct ts_line *line;  /* line being run */
	bool failed;
	int fail_line;
	char fail[2048];
};

/* --- tcpscript.c -------------------------------------------------------- */

/* rt_fail - record the first failure of the script */
void rt_fail(struct rt *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
double rt_secs(const struct rt *r, uint64_t t);

/* --- tcpscript_io.c ----------------------------------------------------- */

/* the fake net_io (set .opaque to the struct rt) */
extern const struct net_io rt_fake_io;
int rt_flow_get(struct rt *r, uint16_t stack_port, uint16_t peer_port);
int rt_cur_flow(struct rt *r, int peer_port);
void rt_buf_put(uint8_t **b, size_t *len, size_t *cap, size_t off,
		const uint8_t *src, size_t n);
int rt_sock_add(struct rt *r, net_sock_t h, uint16_t lport_hint,
		uint16_t rport_hint);
void rt_after_call(struct rt *r);
void rt_poll_at(struct rt *r, uint64_t t);
void rt_advance(struct rt *r, uint64_t t, bool stop_on_frame);
struct frame rt_pop_frame(struct rt *r);
void rt_describe(struct rt *r, const struct frame *f, char *out, size_t n);
void rt_check_unexpected(struct rt *r, uint64_t t, uint64_t tol, bool all);

/* --- tcpscript_call.c --------------------------------------------------- */

/* rt_run_call - one application call or directive */
void rt_run_call(struct rt *r, const struct ts_line *l);

#endif
