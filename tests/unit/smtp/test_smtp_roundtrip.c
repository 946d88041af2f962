/*
 * test_smtp_roundtrip.c - client engine -> server engine in memory,
 * optionally through STARTTLS (tls_conn over BIO pairs) with a
 * certificate generated here by the OpenSSL API into a temp dir.
 *
 * Cases: random binary bodies via BDAT/BINARYMIME and random text with
 * leading dots via DATA arrive byte-exact (Received header stripped);
 * several messages per connection; TLS round trip with verification;
 * wrong expected name fails with OpenSSL's reason; session resumption;
 * certificate reload seen by new connections.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "smtp_client.h"
#include "smtp_server.h"
#include "tls_conn.h"

#define NMSG 16
#define NGEN 12

struct buf { uint8_t *p; size_t len, cap; };

static void buf_put(struct buf *b, const void *p, size_t n)
{
	if (n == 0)             /* an empty piece: b->p may still be NULL */
		return;
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 4096;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void buf_take(struct buf *b, size_t n)
{
	if (n == 0)
		return;
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

struct rt {
	/* config */
	unsigned srv_ext;
	enum smtp_tls_policy policy;
	const char *verify_host;
	struct tls_ctx *sctx, *cctx;
	SSL_SESSION *resume;
	/* messages */
	struct smtp_client_msg msg[NMSG];
	struct smtp_client_rcpt rcpt[NMSG][2];
	uint8_t *body[NMSG];
	unsigned n_msg, next, done;
	/* results */
	uint8_t *got[NMSG];
	size_t got_len[NMSG];
	unsigned got_n;
	int srv_tls, cli_resumed;
	char received[NMSG][512];
	char peer_cn[64];
	SSL_SESSION *saved;
	char close_reason[400];
};

static uint64_t now_ms = 1704067200000ull;

/* run - drive both engines until the client closes */
static void run(struct rt *t)
{
	struct smtp_server_cfg scfg;
	struct smtp_client_cfg ccfg;
	struct smtp_peer peer = { .addr = "198.51.100.7", .port = 1 };
	struct smtp_server *s;
	struct smtp_client *c;
	struct tls_conn *st = NULL, *ct = NULL;
	int s_up = 0, c_up = 0, guard = 0;
	struct buf c2s = { 0 }, s2c = { 0 }, s_in = { 0 }, c_in = { 0 };
	uint8_t tmp[16384];

	smtp_server_cfg_defaults(&scfg);
	scfg.hostname = "mx.test";
	scfg.ext = t->srv_ext;
	scfg.verdicts = SMTP_VP_DATA;
	scfg.max_msg_size = 4 << 20;
	smtp_client_cfg_defaults(&ccfg);
	ccfg.helo_name = "relay.test";
	ccfg.tls = t->policy;
	s = smtp_server_new(&scfg, &peer, now_ms);
	c = smtp_client_new(&ccfg, now_ms);
	assert_non_null(s);
	assert_non_null(c);
	for (;;) {
		const uint8_t *p;
		size_t n;
		ssize_t k;
		const struct smtp_action *a;
		enum smtp_cli_act ca;

		assert_true(++guard < 2000000);
		/* client -> wire */
		while ((n = smtp_client_output(c, &p)) > 0) {
			if (ct) {
				if (!c_up)
					break;
				k = tls_conn_write(ct, p, n);
				assert_true(k >= 0);
				if (k == 0)
					break;
				n = (size_t)k;
			} else {
				buf_put(&c2s, p, n);
			}
			smtp_client_output_consume(c, n, now_ms);
		}
		if (ct)
			while ((n = tls_conn_cipher_peek(ct, &p)) > 0) {
				buf_put(&c2s, p, n);
				tls_conn_cipher_consume(ct, n);
			}
		/* wire -> server plaintext */
		if (st) {
			n = tls_conn_cipher_in(st, c2s.p, c2s.len);
			buf_take(&c2s, n);
			if (!s_up) {
				int h = tls_conn_handshake(st);

				if (h < 0)
					break; /* client sees the alert */
				if (h == 1) {
					struct tls_conn_info ti;
					struct smtp_tls_info si = { 0 };

					tls_conn_info(st, &ti);
					snprintf(si.version, sizeof(si.version), "%s", ti.version);
					snprintf(si.cipher, sizeof(si.cipher), "%s", ti.cipher);
					si.bits = ti.bits;
					si.resumed = (uint8_t)ti.resumed;
					t->cli_resumed = ti.resumed;
					assert_int_equal(smtp_server_tls_done(s, &si, now_ms), 0);
					s_up = 1;
					t->srv_tls = 1;
				}
			}
			while (s_up && (k = tls_conn_read(st, tmp, sizeof(tmp))) > 0)
				buf_put(&s_in, tmp, (size_t)k);
		} else {
			buf_put(&s_in, c2s.p, c2s.len);
			c2s.len = 0;
		}
		/* server engine */
		k = smtp_server_input(s, s_in.p, s_in.len, now_ms);
		if (k > 0)
			buf_take(&s_in, (size_t)k);
		a = smtp_server_action(s);
		if (a->type == SMTP_ACT_VERDICT_DATA) {
			unsigned i = t->got_n++;

			assert_true(i < NMSG);
			t->got_len[i] = a->msg_len - a->received_len;
			t->got[i] = malloc(t->got_len[i] + 1);
			memcpy(t->got[i], a->msg + a->received_len, t->got_len[i]);
			snprintf(t->received[i], sizeof(t->received[i]), "%.*s",
				 (int)a->received_len, a->msg);
			assert_int_equal(smtp_server_verdict(s, 250, NULL, NULL,
							     now_ms), 0);
		} else if (a->type == SMTP_ACT_STARTTLS && !st) {
			/* flush the 220 in plaintext, then TLS from here on */
			while ((n = smtp_server_output(s, &p)) > 0) {
				buf_put(&s2c, p, n);
				smtp_server_output_consume(s, n);
			}
			s_in.len = 0;
			st = tls_conn_new(t->sctx, NULL, NULL, 0);
			assert_non_null(st);
		}
		/* server -> wire */
		while ((n = smtp_server_output(s, &p)) > 0) {
			if (st) {
				if (!s_up)
					break;
				k = tls_conn_write(st, p, n);
				assert_true(k >= 0);
				if (k == 0)
					break;
				n = (size_t)k;
			} else {
				buf_put(&s2c, p, n);
			}
			smtp_server_output_consume(s, n);
		}
		if (st)
			while ((n = tls_conn_cipher_peek(st, &p)) > 0) {
				buf_put(&s2c, p, n);
				tls_conn_cipher_consume(st, n);
			}
		/* wire -> client */
		if (ct) {
			n = tls_conn_cipher_in(ct, s2c.p, s2c.len);
			buf_take(&s2c, n);
			if (!c_up) {
				int h = tls_conn_handshake(ct);

				if (h < 0) {
					smtp_client_tls_failed(c, tls_conn_error(ct), now_ms);
				} else if (h == 1) {
					struct tls_conn_info ti;

					tls_conn_info(ct, &ti);
					snprintf(t->peer_cn, sizeof(t->peer_cn), "%s", ti.peer_cn);
					assert_int_equal(smtp_client_tls_done(c, now_ms), 0);
					c_up = 1;
				}
			}
			while (c_up && (k = tls_conn_read(ct, tmp, sizeof(tmp))) > 0)
				buf_put(&c_in, tmp, (size_t)k);
		} else {
			buf_put(&c_in, s2c.p, s2c.len);
			s2c.len = 0;
		}
		if (c_in.len && smtp_client_action(c) != SMTP_CLI_CLOSE) {
			k = smtp_client_input(c, c_in.p, c_in.len, now_ms);
			if (k > 0)
				buf_take(&c_in, (size_t)k);
		}
		ca = smtp_client_action(c);
		if (ca == SMTP_CLI_READY || ca == SMTP_CLI_DONE) {
			if (ca == SMTP_CLI_DONE)
				t->done++;
			if (t->next < t->n_msg)
				assert_int_equal(smtp_client_send(c, &t->msg[t->next++],
								  now_ms), 0);
			else
				assert_int_equal(smtp_client_quit(c, now_ms), 0);
		} else if (ca == SMTP_CLI_STARTTLS && !ct) {
			ct = tls_conn_new(t->cctx, "localhost", t->verify_host,
					  t->policy == SMTP_TLS_VERIFY);
			assert_non_null(ct);
			if (t->resume)
				assert_int_equal(tls_conn_set_session(ct, t->resume), 0);
		} else if (ca == SMTP_CLI_CLOSE) {
			snprintf(t->close_reason, sizeof(t->close_reason), "%s",
				 smtp_client_close_reason(c));
			break;
		}
	}
	if (ct && c_up) {
		tls_conn_shutdown(ct);
		t->saved = tls_conn_get_session(ct);
	}
	tls_conn_free(ct);
	tls_conn_free(st);
	smtp_client_free(c);
	smtp_server_free(s);
	free(c2s.p);
	free(s2c.p);
	free(s_in.p);
	free(c_in.p);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* add_msg - a message with one or two recipients and body b[0..n) */
static void add_msg(struct rt *t, uint8_t *b, size_t n, uint8_t type)
{
	unsigned i = t->n_msg++;

	t->body[i] = b;
	t->rcpt[i][0].addr = "one@example.com";
	t->rcpt[i][1].addr = "two@example.com";
	t->msg[i].sender = "sender@example.org";
	t->msg[i].rcpt = t->rcpt[i];
	t->msg[i].n_rcpt = 1 + (i & 1);
	t->msg[i].body = b;
	t->msg[i].body_len = n;
	t->msg[i].body_type = type;
	t->msg[i].mt_priority = SMTP_MTPRIO_NONE;
}

static void check_all(struct rt *t)
{
	unsigned i, r;

	assert_int_equal(t->got_n, t->n_msg);
	assert_int_equal(t->done, t->n_msg);
	for (i = 0; i < t->n_msg; i++) {
		assert_int_equal(t->got_len[i], t->msg[i].body_len);
		assert_memory_equal(t->got[i], t->body[i], t->got_len[i]);
		for (r = 0; r < t->msg[i].n_rcpt; r++)
			assert_int_equal(t->rcpt[i][r].code, 250);
	}
}

static void rt_free(struct rt *t)
{
	unsigned i;

	for (i = 0; i < t->n_msg; i++)
		free(t->body[i]);
	for (i = 0; i < t->got_n; i++)
		free(t->got[i]);
	if (t->saved)
		SSL_SESSION_free(t->saved);
}

/* random octets through BDAT with BODY=BINARYMIME arrive unchanged */
static void rt_bdat_random(void **state)
{
	struct rt t = { .srv_ext = SMTP_EXT_ALL & ~(SMTP_EXT_STARTTLS | SMTP_EXT_AUTH),
			.policy = SMTP_TLS_NONE };
	unsigned i;

	(void)state;
	for (i = 0; i < NGEN; i++) {
		size_t n = i == 0 ? 0 : (size_t)(rnd() % 300000), j;
		uint8_t *b = malloc(n + 1);

		for (j = 0; j < n; j++)
			b[j] = (uint8_t)rnd();
		add_msg(&t, b, n, SMTP_BODY_BINARYMIME);
	}
	run(&t);
	check_all(&t);
	rt_free(&t);
}

/* random text lines (many with leading dots) through dot-stuffed DATA */
static void rt_data_random_text(void **state)
{
	struct rt t = { .srv_ext = SMTP_EXT_ALL & ~(SMTP_EXT_STARTTLS |
			SMTP_EXT_AUTH | SMTP_EXT_CHUNKING | SMTP_EXT_BINARYMIME),
			.policy = SMTP_TLS_NONE };
	unsigned i;

	(void)state;
	for (i = 0; i < NGEN; i++) {
		size_t cap = (size_t)(rnd() % 200000) + 16, n = 0;
		uint8_t *b = malloc(cap + 1000);

		while (n < cap) {
			size_t ll = (size_t)(rnd() % 120), j;
			unsigned dots = (unsigned)(rnd() % 4);

			for (j = 0; j < dots && j < ll; j++)
				b[n++] = '.';
			for (; j < ll; j++)
				b[n++] = (uint8_t)(0x20 + rnd() % 95);
			b[n++] = '\r';
			b[n++] = '\n';
		}
		add_msg(&t, b, n, SMTP_BODY_7BIT);
	}
	/* and the classic traps as message content */
	add_msg(&t, (uint8_t *)strdup(".\r\n..\r\n.x\r\n"), 11, SMTP_BODY_7BIT);
	run(&t);
	check_all(&t);
	rt_free(&t);
}

/* cert_make - self-signed P-256 certificate for name into dir */
static void cert_make(const char *dir, const char *name, const char *tag)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *nm;
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	char path[512], san[300];
	FILE *f;

	assert_non_null(k);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(rnd() & 0x7fffffff));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
				   (const unsigned char *)name, -1, -1, 0);
	X509_set_issuer_name(x, nm);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	snprintf(san, sizeof(san), "DNS:%s", name);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	snprintf(path, sizeof(path), "%s/%s.crt", dir, tag);
	f = fopen(path, "w");
	PEM_write_X509(f, x);
	fclose(f);
	snprintf(path, sizeof(path), "%s/%s.key", dir, tag);
	f = fopen(path, "w");
	PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(k);
}

static char tmpdir[64];
static char crt1[128], key1[128], crt2[128], key2[128];

static int tls_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/smtp-tls-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	cert_make(tmpdir, "localhost", "one");
	cert_make(tmpdir, "second.example", "two");
	snprintf(crt1, sizeof(crt1), "%s/one.crt", tmpdir);
	snprintf(key1, sizeof(key1), "%s/one.key", tmpdir);
	snprintf(crt2, sizeof(crt2), "%s/two.crt", tmpdir);
	snprintf(key2, sizeof(key2), "%s/two.key", tmpdir);
	return 0;
}

static int tls_teardown(void **state)
{
	char path[160];

	(void)state;
	snprintf(path, sizeof(path), "%s/one.crt", tmpdir); unlink(path);
	snprintf(path, sizeof(path), "%s/one.key", tmpdir); unlink(path);
	snprintf(path, sizeof(path), "%s/two.crt", tmpdir); unlink(path);
	snprintf(path, sizeof(path), "%s/two.key", tmpdir); unlink(path);
	rmdir(tmpdir);
	return 0;
}

static void tls_pair(struct rt *t, const char *ca)
{
	char err[256];

	t->sctx = tls_ctx_server_new(crt1, key1, err, sizeof(err));
	assert_non_null(t->sctx);
	t->cctx = tls_ctx_client_new(ca, err, sizeof(err));
	assert_non_null(t->cctx);
	t->srv_ext = SMTP_EXT_ALL & ~SMTP_EXT_AUTH;
}

/* STARTTLS with verification, messages both ways byte-exact, resumption */
static void tls_roundtrip(void **state)
{
	struct rt t = { .policy = SMTP_TLS_VERIFY, .verify_host = "localhost" };
	struct rt t2 = { .policy = SMTP_TLS_VERIFY, .verify_host = "localhost" };
	unsigned i;

	(void)state;
	tls_pair(&t, crt1);
	for (i = 0; i < 3; i++) {
		size_t n = 70000 + i, j;
		uint8_t *b = malloc(n);

		for (j = 0; j < n; j++)
			b[j] = (uint8_t)rnd();
		add_msg(&t, b, n, SMTP_BODY_BINARYMIME);
	}
	run(&t);
	check_all(&t);
	assert_int_equal(t.srv_tls, 1);
	assert_non_null(strstr(t.received[0], "with ESMTPS"));
	assert_non_null(strstr(t.received[0], "(using TLSv1.3 with cipher TLS_"));
	assert_string_equal(t.peer_cn, "localhost");
	assert_non_null(t.saved);
	/* second connection resumes the saved session */
	t2.sctx = t.sctx;
	t2.cctx = t.cctx;
	t2.srv_ext = t.srv_ext;
	t2.resume = t.saved;
	add_msg(&t2, (uint8_t *)strdup("hi\r\n"), 4, SMTP_BODY_7BIT);
	run(&t2);
	check_all(&t2);
	assert_int_equal(t2.cli_resumed, 1);
	rt_free(&t2);
	tls_ctx_free(t.sctx);
	tls_ctx_free(t.cctx);
	rt_free(&t);
}

/* the wrong expected name fails the handshake with OpenSSL's reason and
 * a temporary failure for the message */
static void tls_wrong_name(void **state)
{
	struct rt t = { .policy = SMTP_TLS_VERIFY, .verify_host = "mx.other.example" };

	(void)state;
	tls_pair(&t, crt1);
	add_msg(&t, (uint8_t *)strdup("hi\r\n"), 4, SMTP_BODY_7BIT);
	run(&t);
	assert_int_equal(t.got_n, 0);
	assert_non_null(strstr(t.close_reason, "4.7.5 TLS handshake failed: certificate verify failed"));
	tls_ctx_free(t.sctx);
	tls_ctx_free(t.cctx);
	rt_free(&t);
}

/* reload: new connections get the new certificate; a bad reload keeps
 * the old one */
static void tls_reload(void **state)
{
	struct rt t = { .policy = SMTP_TLS_OPPORTUNISTIC };
	char err[256];

	(void)state;
	tls_pair(&t, crt1);
	assert_int_equal(tls_ctx_server_reload(t.sctx, crt2, key1, err, sizeof(err)), -1);
	assert_true(strlen(err) > 0);
	assert_int_equal(tls_ctx_generation(t.sctx), 0);
	assert_int_equal(tls_ctx_server_reload(t.sctx, crt2, key2, err, sizeof(err)), 0);
	assert_int_equal(tls_ctx_generation(t.sctx), 1);
	add_msg(&t, (uint8_t *)strdup("hi\r\n"), 4, SMTP_BODY_7BIT);
	run(&t);
	check_all(&t);
	assert_string_equal(t.peer_cn, "second.example");
	tls_ctx_free(t.sctx);
	tls_ctx_free(t.cctx);
	rt_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rt_bdat_random),
		cmocka_unit_test(rt_data_random_text),
		cmocka_unit_test(tls_roundtrip),
		cmocka_unit_test(tls_wrong_name),
		cmocka_unit_test(tls_reload),
	};

	return cmocka_run_group_tests(tests, tls_setup, tls_teardown);
}
