/*
 * tls_conn.c - per-connection TLS over a BIO pair (contract: tls_conn.h).
 * Nothing here blocks or touches a socket: the internal BIO is SSL's
 * transport, the network BIO is where the caller puts and takes
 * ciphertext. Buffers are the BIO pair's (17 KiB each way, one record).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls_conn.h"

#define TLS_BIO_SIZE (17 * 1024)

struct tls_conn {
	SSL *ssl;
	BIO *net;		/* our end of the pair */
	int server;
	int verify;
	char err[256];
};

/* tls_conn_new - SSL over a fresh BIO pair */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, const char *sni,
			      const char *verify_host, int verify)
{
	struct tls_conn *c = calloc(1, sizeof(*c));
	BIO *in = NULL;

	if (!c)
		return NULL;
	c->server = tls_ctx_is_server(ctx);
	c->verify = verify;
	c->ssl = SSL_new(tls_ctx_ssl_ctx(ctx));
	if (!c->ssl || !BIO_new_bio_pair(&in, TLS_BIO_SIZE, &c->net,
					 TLS_BIO_SIZE))
		goto fail;
	SSL_set_bio(c->ssl, in, in);
	if (c->server) {
		SSL_set_accept_state(c->ssl);
	} else {
		SSL_set_connect_state(c->ssl);
		if (sni && !SSL_set_tlsext_host_name(c->ssl, sni))
			goto fail;
		if (verify) {
			SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
			if (!verify_host || !SSL_set1_host(c->ssl, verify_host))
				goto fail;
			SSL_set_hostflags(c->ssl,
					  X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		} else {
			SSL_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
		}
	}
	return c;
fail:
	if (c->ssl)
		SSL_free(c->ssl);
	else if (in)
		BIO_free(in);
	if (c->net)
		BIO_free(c->net);
	free(c);
	return NULL;
}

void tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl);
	BIO_free(c->net);
	free(c);
}

int tls_conn_set_session(struct tls_conn *c, SSL_SESSION *s)
{
	return SSL_set_session(c->ssl, s) == 1 ? 0 : -TLS_EINVAL;
}

SSL_SESSION *tls_conn_get_session(struct tls_conn *c)
{
	return SSL_get1_session(c->ssl);
}

size_t tls_conn_cipher_in(struct tls_conn *c, const void *p, size_t n)
{
	int r;

	if (n > INT32_MAX)
		n = INT32_MAX;
	r = BIO_write(c->net, p, (int)n);
	return r > 0 ? (size_t)r : 0;
}

size_t tls_conn_cipher_peek(struct tls_conn *c, const uint8_t **p)
{
	char *q = NULL;
	int r = BIO_nread0(c->net, &q);

	*p = (const uint8_t *)q;
	return r > 0 ? (size_t)r : 0;
}

void tls_conn_cipher_consume(struct tls_conn *c, size_t n)
{
	char *q;

	if (n)
		(void)BIO_nread(c->net, &q, (int)n);
}

/* fail - remember OpenSSL's reason, incl. the certificate verdict */
static void fail(struct tls_conn *c)
{
	long v = SSL_get_verify_result(c->ssl);
	char e[200];

	tls_ctx_last_error(e, sizeof(e));
	if (v != X509_V_OK)
		snprintf(c->err, sizeof(c->err), "certificate verify failed: %s",
			 X509_verify_cert_error_string(v));
	else
		snprintf(c->err, sizeof(c->err), "%s", e);
}

/* tls_conn_handshake - one non-blocking step */
int tls_conn_handshake(struct tls_conn *c)
{
	int r, e;

	if (SSL_is_init_finished(c->ssl))
		return 1;
	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1)
		return 1;
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	fail(c);
	return -TLS_EHANDSHAKE;
}

ssize_t tls_conn_read(struct tls_conn *c, void *p, size_t n)
{
	size_t got = 0;
	int r, e;

	ERR_clear_error();
	r = SSL_read_ex(c->ssl, p, n, &got);
	if (r == 1)
		return (ssize_t)got;
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	if (e == SSL_ERROR_ZERO_RETURN)
		return -TLS_ECLOSED;
	fail(c);
	return -TLS_EPROTO;
}

ssize_t tls_conn_write(struct tls_conn *c, const void *p, size_t n)
{
	size_t put = 0;
	int r, e;

	if (n == 0)
		return 0;
	ERR_clear_error();
	r = SSL_write_ex(c->ssl, p, n, &put);
	if (r == 1)
		return (ssize_t)put;
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	fail(c);
	return -TLS_EPROTO;
}

/* tls_conn_shutdown - close_notify into the BIO; never waits */
void tls_conn_shutdown(struct tls_conn *c)
{
	if (SSL_is_init_finished(c->ssl))
		(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
}

void tls_conn_info(struct tls_conn *c, struct tls_conn_info *i)
{
	const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);
	X509 *peer;

	memset(i, 0, sizeof(*i));
	snprintf(i->version, sizeof(i->version), "%s", SSL_get_version(c->ssl));
	snprintf(i->cipher, sizeof(i->cipher), "%s",
		 ci ? SSL_CIPHER_get_name(ci) : "");
	i->bits = ci ? SSL_CIPHER_get_bits(ci, NULL) : 0;
	i->resumed = SSL_session_reused(c->ssl);
	peer = SSL_get1_peer_certificate(c->ssl);
	if (peer) {
		i->verified = SSL_get_verify_result(c->ssl) == X509_V_OK &&
			      (c->server || c->verify);
		X509_NAME_get_text_by_NID(X509_get_subject_name(peer),
					  NID_commonName, i->peer_cn,
					  sizeof(i->peer_cn));
		X509_free(peer);
	}
}

const char *tls_conn_error(const struct tls_conn *c)
{
	return c->err;
}

const char *tls_conn_strerror(int err)
{
	static const char *const n[TLS_EMAX] = {
		"success", "invalid argument", "out of memory",
		"handshake failed", "TLS protocol error", "closed by peer",
	};

	if (err < 0)
		err = -err;
	return err < TLS_EMAX ? n[err] : "unknown error";
}
