/*
 * sb_conn.c - plain/TLS non-blocking socket I/O (contract in sb_conn.h).
 */
#include "sb_conn.h"
#include "sb_tport.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

SSL_CTX *sb_tls_client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		sb_die("TLS: SSL_CTX_new failed");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
}

SSL_CTX *sb_tls_server_ctx(const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char e[256];
	if (!ctx)
		sb_die("TLS: SSL_CTX_new failed");
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		sb_die("--tls-cert %s: %s", cert, e);
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		sb_die("--tls-key %s: %s", key, e);
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
}

void sb_conn_init(struct sb_conn *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
}

/* tls_fail - classify an SSL_* return: AGAIN, EOF or ERR with text */
static int tls_fail(struct sb_conn *c, int r, bool writing)
{
	int e = SSL_get_error(c->ssl, r);
	c->want_write = false;
	switch (e) {
	case SSL_ERROR_WANT_READ:
		return SB_CONN_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		c->want_write = true;
		return SB_CONN_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return SB_CONN_EOF;
	case SSL_ERROR_SYSCALL:
		if (errno == 0 || errno == EPIPE)
			return SB_CONN_EOF;
		snprintf(c->err, sizeof(c->err), "TLS %s: %s", writing ? "write" : "read", strerror(errno));
		return SB_CONN_ERR;
	default: {
		char t[100];
		unsigned long q = ERR_get_error();
		if (q == 0)
			return SB_CONN_EOF;
		ERR_error_string_n(q, t, sizeof(t));
		snprintf(c->err, sizeof(c->err), "TLS: %s", t);
		ERR_clear_error();
		return SB_CONN_ERR;
	}
	}
}

int sb_conn_read(struct sb_conn *c, struct sb_buf *b, size_t max_buffered)
{
	size_t total = 0;
	for (;;) {
		size_t have = sb_buf_avail(b);
		if (have >= max_buffered)
			return (int)total;
		size_t want = max_buffered - have;
		if (want > 65536)
			want = 65536;
		sb_buf_reserve(b, want);
		ssize_t n;
		if (c->ssl) {
			int r = SSL_read(c->ssl, b->data + b->len, (int)want);
			if (r <= 0) {
				int k = tls_fail(c, r, false);
				return total ? (int)total : k;
			}
			n = r;
		} else {
			n = c->tp ? c->tp->ops->read(c, b->data + b->len, want)
				  : read(c->fd, b->data + b->len, want);
			if (n == 0)
				return total ? (int)total : SB_CONN_EOF;
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return (int)total;
				snprintf(c->err, sizeof(c->err), "%s", strerror(errno));
				return total ? (int)total : SB_CONN_ERR;
			}
		}
		b->len += (size_t)n;
		total += (size_t)n;
		if (total > (1u << 30))
			return (int)total;
	}
}

int sb_conn_write(struct sb_conn *c, struct sb_buf *b)
{
	size_t total = 0;
	while (sb_buf_avail(b)) {
		size_t want = sb_buf_avail(b);
		if (want > (1u << 20))
			want = 1u << 20;
		ssize_t n;
		if (c->ssl) {
			int r = SSL_write(c->ssl, sb_buf_head(b), (int)want);
			if (r <= 0) {
				int k = tls_fail(c, r, true);
				if (k == SB_CONN_AGAIN)
					c->want_write = true; /* retry when writable */
				return total ? (int)total : k;
			}
			n = r;
		} else {
			n = c->tp ? c->tp->ops->write(c, sb_buf_head(b), want)
				  : write(c->fd, sb_buf_head(b), want);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				snprintf(c->err, sizeof(c->err), "%s", strerror(errno));
				return total ? (int)total : SB_CONN_ERR;
			}
		}
		sb_buf_consume(b, (size_t)n);
		total += (size_t)n;
	}
	return (int)total;
}

int sb_conn_tls_start(struct sb_conn *c, SSL_CTX *ctx, bool server)
{
	if (c->tp && !c->tp->ops->tls) {
		snprintf(c->err, sizeof(c->err), "TLS: not available over the %s transport",
			 c->tp->ops->name);
		return SB_CONN_ERR;
	}
	c->ssl = SSL_new(ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		snprintf(c->err, sizeof(c->err), "TLS: SSL_new failed");
		return SB_CONN_ERR;
	}
	if (server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	return 0;
}

int sb_conn_handshake(struct sb_conn *c)
{
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->tls_up = true;
		c->want_write = false;
		return 1;
	}
	int k = tls_fail(c, r, false);
	if (k == SB_CONN_EOF) {
		snprintf(c->err, sizeof(c->err), "TLS handshake: connection closed");
		return SB_CONN_ERR;
	}
	return k == SB_CONN_AGAIN ? 0 : SB_CONN_ERR;
}

void sb_conn_close(struct sb_conn *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->tp) {
		if (c->fd >= 0)
			c->tp->ops->close(c);
	} else if (c->fd >= 0) {
		close(c->fd);
	}
	c->fd = -1;
	c->armed = false;
	c->want = 0;
}
