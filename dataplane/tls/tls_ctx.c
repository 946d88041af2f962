/*
 * tls_ctx.c - OpenSSL contexts with secure defaults and reload (contract
 * in tls_ctx.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "tls_ctx.h"

/* TLS 1.2: forward secrecy and AEAD only (TLS 1.3 suites: OpenSSL's) */
#define TLS_CTX_CIPHERS12 "ECDHE-ECDSA-AES256-GCM-SHA384:" \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:" \
	"ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:" \
	"ECDHE-RSA-AES128-GCM-SHA256"

struct tls_ctx {
	SSL_CTX *ctx;
	unsigned gen;
	int server;
};

/* tls_ctx_last_error - drain the OpenSSL error queue into one line */
const char *tls_ctx_last_error(char *buf, size_t len)
{
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	if (!len)
		return buf;
	if (!last)
		snprintf(buf, len, "unknown OpenSSL error");
	else
		ERR_error_string_n(last, buf, len);
	return buf;
}

/* common - protocol floor, options shared by both sides */
static SSL_CTX *common(const SSL_METHOD *m)
{
	SSL_CTX *c = SSL_CTX_new(m);

	if (!c)
		return NULL;
	if (!SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) ||
	    !SSL_CTX_set_cipher_list(c, TLS_CTX_CIPHERS12)) {
		SSL_CTX_free(c);
		return NULL;
	}
	SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
			    SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return c;
}

/* server_build - load and check the key pair; sessions resumable */
static SSL_CTX *server_build(const char *cert, const char *key, char *err,
			     size_t errlen)
{
	static const unsigned char sid[] = "sluice-smtp";
	SSL_CTX *c;

	ERR_clear_error();
	c = common(TLS_server_method());
	if (!c) {
		tls_ctx_last_error(err, errlen);
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(c, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(c) != 1) {
		char e[256];

		snprintf(err, errlen, "%s / %s: %s", cert, key,
			 tls_ctx_last_error(e, sizeof(e)));
		SSL_CTX_free(c);
		return NULL;
	}
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(c, sid, sizeof(sid) - 1);
	SSL_CTX_set_timeout(c, 3600);
	return c;
}

struct tls_ctx *tls_ctx_server_new(const char *cert_file, const char *key_file,
				   char *err, size_t errlen)
{
	struct tls_ctx *t = calloc(1, sizeof(*t));

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->ctx = server_build(cert_file, key_file, err, errlen);
	if (!t->ctx) {
		free(t);
		return NULL;
	}
	t->server = 1;
	return t;
}

/* tls_ctx_server_reload - swap in a new SSL_CTX; the old one lives on in
 * the connections that use it */
int tls_ctx_server_reload(struct tls_ctx *t, const char *cert_file,
			  const char *key_file, char *err, size_t errlen)
{
	SSL_CTX *n;

	if (!t->server) {
		snprintf(err, errlen, "not a server context");
		return -1;
	}
	n = server_build(cert_file, key_file, err, errlen);
	if (!n)
		return -1;
	SSL_CTX_free(t->ctx);
	t->ctx = n;
	t->gen++;
	return 0;
}

struct tls_ctx *tls_ctx_client_new(const char *ca_file, char *err,
				   size_t errlen)
{
	struct tls_ctx *t = calloc(1, sizeof(*t));
	int ok;

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ERR_clear_error();
	t->ctx = common(TLS_client_method());
	if (!t->ctx) {
		tls_ctx_last_error(err, errlen);
		free(t);
		return NULL;
	}
	ok = ca_file ? SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL)
		     : SSL_CTX_set_default_verify_paths(t->ctx);
	if (ok != 1) {
		char e[256];

		snprintf(err, errlen, "%s: %s", ca_file ? ca_file : "system CAs",
			 tls_ctx_last_error(e, sizeof(e)));
		SSL_CTX_free(t->ctx);
		free(t);
		return NULL;
	}
	SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_CLIENT |
				       SSL_SESS_CACHE_NO_INTERNAL_STORE);
	return t;
}

SSL_CTX *tls_ctx_ssl_ctx(const struct tls_ctx *t)
{
	return t->ctx;
}

unsigned tls_ctx_generation(const struct tls_ctx *t)
{
	return t->gen;
}

int tls_ctx_is_server(const struct tls_ctx *t)
{
	return t->server;
}

void tls_ctx_free(struct tls_ctx *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}
