/*
 * sb_tport.h - the generator's transport: how a worker's connections are
 * opened, polled, read, written and closed. The SMTP client (sb_client.c)
 * only talks to this interface, so the same sessions run over
 *
 *   kernel  non-blocking kernel sockets and epoll (sb_tport_kernel.c):
 *           measures any MTA, through whatever the kernel routes to
 *   memif   sluice's own TCP/IP stack (dataplane/net, net.h) on a DPDK
 *           net_memif port in this process (sb_dpdk.c): the client side is
 *           not limited by the kernel or a TAP device
 *
 * One struct sb_tport per worker thread, used only by that thread.
 * Connections are struct sb_conn (sb_conn.h) owned by the caller; the
 * caller names each with an id that comes back in struct sb_event.
 *
 * Semantics (the same for every transport; the kernel's are the model):
 *   connect         non-blocking; 0 = in progress (SB_EV_OUT when it is
 *                   done, then connect_result), or -errno at once
 *   connect_result  0 connected, else an errno value (ECONNREFUSED,
 *                   ETIMEDOUT, EHOSTUNREACH, ...)
 *   arm             the events the caller waits for (SB_EV_IN|SB_EV_OUT);
 *                   level-triggered: armed readiness that already holds
 *                   is reported by the next wait
 *   wait            up to max events within us microseconds (0 = poll)
 *   read/write      read(2)/write(2) semantics: bytes, 0 at end of stream
 *                   (read), -1 with errno (EAGAIN, ECONNRESET, EPIPE)
 *   close           release the connection (kernel: close(2); memif:
 *                   FIN after queued data, RST if unread data is left)
 *   destroy         end of the run: let closes finish (bounded), free
 */
#ifndef SB_TPORT_H
#define SB_TPORT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sb_conn.h"

#define SB_EV_IN  0x1u  /* readable, end of stream or error: read */
#define SB_EV_OUT 0x2u  /* writable, or the connect finished */
#define SB_EV_ERR 0x4u  /* the connection failed */

struct sb_event {
	uint32_t id;
	uint32_t events;
};

struct sb_tport;

struct sb_tport_ops {
	const char *name;
	bool tls;     /* sb_conn_tls_start works on its connections */
	int (*connect)(struct sb_tport *t, struct sb_conn *c,
		       const struct sockaddr_in *dst, uint32_t id);
	int (*connect_result)(struct sb_tport *t, struct sb_conn *c);
	void (*arm)(struct sb_tport *t, struct sb_conn *c, uint32_t want);
	int (*wait)(struct sb_tport *t, struct sb_event *ev, int max, uint64_t us);
	ssize_t (*read)(struct sb_conn *c, void *buf, size_t n);
	ssize_t (*write)(struct sb_conn *c, const void *buf, size_t n);
	void (*close)(struct sb_conn *c);
	void (*destroy)(struct sb_tport *t);
};

struct sb_tport {
	const struct sb_tport_ops *ops;
};

/* sb_tport_kernel_new - kernel sockets + epoll; dies if epoll fails */
struct sb_tport *sb_tport_kernel_new(void);

#endif
