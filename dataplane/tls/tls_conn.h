/*
 * tls_conn.h - one TLS connection over memory BIOs (BIO_new_bio_pair),
 * never blocking: the caller moves ciphertext between the BIO pair and
 * the socket, and plaintext between the engine and SSL_read/SSL_write.
 *
 *   socket bytes  -> tls_conn_cipher_in()   (may take fewer)
 *   tls_conn_handshake() until 1            (then tls_conn_info)
 *   tls_conn_read()  -> plaintext for the SMTP engine
 *   tls_conn_write() <- plaintext from the SMTP engine
 *   tls_conn_cipher_out() -> bytes for net_send (peek/consume form)
 * Client side: verify != 0 checks the chain against the context's CAs
 * and the expected name (SSL_set1_host); sni names the server.
 * Errors: negative TLS_E* codes (tls_conn_strerror); tls_conn_error()
 * gives OpenSSL's reason for the last failure (incl. the X509 verify
 * result). Constructors return NULL.
 */
#ifndef TLS_CONN_H
#define TLS_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tls_ctx.h"

enum { TLS_EINVAL = 1, TLS_ENOMEM, TLS_EHANDSHAKE, TLS_EPROTO, TLS_ECLOSED,
       TLS_EMAX };

struct tls_conn;

struct tls_conn_info {
	char version[16];
	char cipher[64];
	int bits;
	int resumed;
	int verified;		/* peer certificate verified */
	char peer_cn[64];
};

/* tls_conn_new - server (ctx is a server context) or client connection */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, const char *sni,
			      const char *verify_host, int verify);
void tls_conn_free(struct tls_conn *c);
/* tls_conn_set_session - client: resume this session (ref taken) */
int tls_conn_set_session(struct tls_conn *c, SSL_SESSION *s);
/* tls_conn_get_session - client: session to save (caller frees) */
SSL_SESSION *tls_conn_get_session(struct tls_conn *c);

/* tls_conn_cipher_in - ciphertext from the peer; returns bytes taken */
size_t tls_conn_cipher_in(struct tls_conn *c, const void *p, size_t n);
/* tls_conn_cipher_peek - ciphertext to send, in place; returns the count */
size_t tls_conn_cipher_peek(struct tls_conn *c, const uint8_t **p);
/* tls_conn_cipher_consume - n peeked bytes were sent */
void tls_conn_cipher_consume(struct tls_conn *c, size_t n);

/* tls_conn_handshake - drive the handshake: 1 done, 0 needs I/O,
 * -TLS_EHANDSHAKE failed (tls_conn_error says why) */
int tls_conn_handshake(struct tls_conn *c);
/* tls_conn_read - plaintext out; 0 if none yet, -TLS_ECLOSED at
 * close_notify, -TLS_EPROTO on error */
ssize_t tls_conn_read(struct tls_conn *c, void *p, size_t n);
/* tls_conn_write - plaintext in; returns bytes taken (0: BIO full) */
ssize_t tls_conn_write(struct tls_conn *c, const void *p, size_t n);
/* tls_conn_shutdown - queue close_notify (send tls_conn_cipher_peek
 * bytes after it); keeps the session resumable */
void tls_conn_shutdown(struct tls_conn *c);
/* tls_conn_info - negotiated facts after the handshake */
void tls_conn_info(struct tls_conn *c, struct tls_conn_info *info);
/* tls_conn_error - reason of the last failure */
const char *tls_conn_error(const struct tls_conn *c);
const char *tls_conn_strerror(int err);

#endif
