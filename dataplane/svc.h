/*
 * svc.h - per io lcore TCP services over the net.h socket API, and the
 * event dispatch that routes each socket event to its service.
 *
 *   echo    (TCP 7, RFC 862)  sends back every byte, with backpressure: it
 *           consumes only what net_send took (at most net_send_space), so a
 *           peer that does not read closes its own window instead of losing
 *           data; closes
 *           when the peer has finished and everything was echoed
 *   discard (TCP 9, RFC 863)  consumes everything, closes after peer FIN
 *
 * A listener's user pointer is its struct svc_def; accepted sockets are
 * given the same pointer, so net_events() dispatch is a pointer call.
 * SMTP (smtpd.h) plugs in the same way: its listeners' user pointers are
 * svc_defs, and each session starts with one, so the same dispatch reaches
 * a session directly; it asks for NET_EV_CLOSED too (want_closed) to free
 * the session. Outbound delivery connections (deliver.h) carry a
 * svc_def of index SVC_DELIVER the same way (no listener). One struct svc
 * per io lcore.
 */
#ifndef SLUICE_SVC_H
#define SLUICE_SVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

#define SVC_EVENT_BURST 64
#define SVC_ECHO_PORT 7
#define SVC_DISCARD_PORT 9

struct svc;
struct smtpd;
struct deliver;

struct svc_stats {
	uint64_t accepted, closed, closed_error, bytes_in, bytes_out;
};

struct svc_def {
	const char *name;
	uint16_t port;
	unsigned index;           /* into svc.st */
	void (*event)(struct svc *v, const struct net_event *ev);
	bool want_closed;         /* also call event with NET_EV_CLOSED */
};

enum { SVC_ECHO = 0, SVC_DISCARD = 1, SVC_SMTP = 2, SVC_DELIVER = 3,
       SVC_COUNT };

struct svc {
	struct net_stack *s;
	bool on[SVC_COUNT];
	struct svc_stats st[SVC_COUNT];
	uint64_t events, stray_events;
	struct smtpd *smtpd;      /* SMTP service of this lcore (smtpd.h) */
	struct deliver *deliver;  /* outbound delivery (deliver.h) or NULL */
};

/* svc_start - listen on the enabled services' ports; 0 or -1 with err */
int svc_start(struct svc *v, struct net_stack *s, bool echo, bool discard,
	      char *err, size_t errlen);
/* svc_poll - reactor poller: dispatch pending socket events; returns the
 * number handled */
int svc_poll(void *arg, uint64_t now_us);
/* svc_name - "echo", "discard" */
const char *svc_name(unsigned index);

#endif
