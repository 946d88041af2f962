/*
 * tls_ctx.h - OpenSSL 3 contexts for STARTTLS, server and client side.
 *
 * A struct tls_ctx holds the SSL_CTX new connections use. Secure
 * defaults: TLS 1.2 and 1.3 only, ECDHE + AEAD ciphers for 1.2 (OpenSSL's
 * default 1.3 suites), no compression, no renegotiation, server cipher
 * preference, session resumption (server: stateless tickets + cache;
 * client: sessions saved by the caller per destination, tls_conn.h).
 *
 * Reload: tls_ctx_server_reload() builds a new SSL_CTX from the files and
 * swaps it in for new connections; existing connections keep a reference
 * to the old one (OpenSSL refcount) until they end. File reading blocks:
 * call load/reload from the control plane, never on an io lcore. One
 * tls_ctx is used by one thread; share across lcores by building one per
 * lcore or by handing out SSL_CTX references (tls_ctx_ssl_ctx + up_ref).
 *
 * Errors: constructors return NULL and write OpenSSL's reason into err;
 * reload returns 0 or -1 (err filled, the old context stays in use).
 */
#ifndef TLS_CTX_H
#define TLS_CTX_H

#include <stddef.h>
#include <openssl/ssl.h>

struct tls_ctx;

/* tls_ctx_server_new - server context from PEM certificate chain and key */
struct tls_ctx *tls_ctx_server_new(const char *cert_file, const char *key_file,
				   char *err, size_t errlen);
/* tls_ctx_server_reload - new SSL_CTX from the files for new connections */
int tls_ctx_server_reload(struct tls_ctx *t, const char *cert_file,
			  const char *key_file, char *err, size_t errlen);
/* tls_ctx_client_new - client context; ca_file NULL: system trust store */
struct tls_ctx *tls_ctx_client_new(const char *ca_file, char *err,
				   size_t errlen);
/* tls_ctx_ssl_ctx - the SSL_CTX new connections get */
SSL_CTX *tls_ctx_ssl_ctx(const struct tls_ctx *t);
/* tls_ctx_generation - bumped by every successful reload */
unsigned tls_ctx_generation(const struct tls_ctx *t);
/* tls_ctx_is_server - 1 for server contexts */
int tls_ctx_is_server(const struct tls_ctx *t);
void tls_ctx_free(struct tls_ctx *t);

/* tls_ctx_last_error - OpenSSL's error queue as one line into buf */
const char *tls_ctx_last_error(char *buf, size_t len);

#endif
