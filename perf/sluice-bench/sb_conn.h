/*
 * sb_conn.h - one non-blocking TCP connection, plain or TLS (OpenSSL), for
 * sluice-bench's SMTP client and server.
 *
 * sb_conn_read/sb_conn_write move bytes between the socket and an sb_buf.
 * Returns: > 0 bytes moved, SB_CONN_AGAIN (nothing possible now),
 * SB_CONN_EOF (peer closed), SB_CONN_ERR (socket or TLS error; errno or the
 * OpenSSL error queue says why, sb_conn_errstr() formats it).
 * sb_conn_tls_start switches an established connection to TLS (after
 * STARTTLS/220); sb_conn_handshake drives the handshake: 1 done, 0 in
 * progress, SB_CONN_ERR failed. While TLS wants the other direction
 * (want_write while reading), sb_conn_wants_write() says so, so the event
 * loop can ask for EPOLLOUT.
 *
 * A connection made by a transport (sb_tport.h: kernel sockets or the
 * memif/DPDK one) carries its transport in tp; its plain bytes then move
 * through tp's read/write/close and fd is only "open" (>= 0) or not (-1).
 * tp == NULL is a kernel socket the caller made (the sink). TLS needs a
 * kernel socket (SSL_set_fd): sb_conn_tls_start refuses other transports.
 */
#ifndef SB_CONN_H
#define SB_CONN_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "sb_util.h"

#define SB_CONN_AGAIN 0
#define SB_CONN_EOF (-1)
#define SB_CONN_ERR (-2)

struct sb_tport;

struct sb_conn {
	int fd;             /* kernel socket; with another transport >= 0 = open */
	struct sb_tport *tp;/* NULL: kernel socket read/written directly */
	uint32_t sock;      /* transport's handle (memif: net_sock_t) */
	uint32_t id;        /* caller's id, returned with events */
	uint32_t want;      /* events armed (SB_EV_*, sb_tport.h) */
	uint32_t pend;      /* transport private: events owed to the caller */
	int terr;           /* transport private: errno once the link died */
	bool armed;         /* transport private: registered with its poller */
	bool connected, dead, peer_fin; /* transport private (memif) */
	SSL *ssl;
	bool tls_up;        /* handshake finished */
	bool want_write;    /* TLS needs the socket writable to progress */
	char err[128];      /* last error text */
};

/* client context (no verification: a benchmark) or server context from
 * PEM files; die with the file and OpenSSL's reason on failure */
SSL_CTX *sb_tls_client_ctx(void);
SSL_CTX *sb_tls_server_ctx(const char *cert, const char *key);

void sb_conn_init(struct sb_conn *c, int fd);
/* read as much as fits (up to max_buffered unread bytes in b) */
int sb_conn_read(struct sb_conn *c, struct sb_buf *b, size_t max_buffered);
/* write the unsent part of b; consumes what was written */
int sb_conn_write(struct sb_conn *c, struct sb_buf *b);
int sb_conn_tls_start(struct sb_conn *c, SSL_CTX *ctx, bool server);
int sb_conn_handshake(struct sb_conn *c);
/* close the socket (no TLS close_notify: the SMTP QUIT already ended it) */
void sb_conn_close(struct sb_conn *c);

#endif
