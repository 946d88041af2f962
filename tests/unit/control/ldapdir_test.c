/*
 * ldapdir_test.c - the LDAP backend's pure parts (control/ldapdir.h):
 * RFC 4515 escaping and filter expansion (no filter injection), route
 * attribute values as destinations, the [ldap] domains list, cache record
 * encode/decode (round trip, damage refused) and the freshness rule that
 * decides between answering, asking LDAP, and 451; the text logged for
 * a connection that failed (a TLS failure named as one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ldapdir.h"

struct str_case {
	const char *name;
	const char *in;
	size_t n;                 /* 0: strlen(in) */
	const char *want;         /* NULL: must fail */
};

static void test_escape(void **state)
{
	static const struct str_case cases[] = {
		{ "plain", "alice@example.com", 0, "alice@example.com" },
		{ "star", "a*@x.test", 0, "a\\2a@x.test" },
		{ "parens", "(x)", 0, "\\28x\\29" },
		{ "backslash", "a\\b", 0, "a\\5cb" },
		{ "nul inside", "a\0b", 3, "a\\00b" },
		{ "injection", "x)(uid=*", 0, "x\\29\\28uid=\\2a" },
		{ "utf-8 kept", "j\xc3\xb6rg@x.test", 0, "j\xc3\xb6rg@x.test" },
		{ "empty", "", 0, "" },
	};
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct str_case *c = &cases[i];
		size_t n = c->n ? c->n : strlen(c->in);
		int w = ldapdir_escape(c->in, n, out, sizeof(out));

		if (w < 0 || strcmp(out, c->want) != 0 ||
		    (size_t)w != strlen(c->want)) {
			print_error("case %s: %d \"%s\"\n", c->name, w,
				    w < 0 ? "" : out);
			fail();
		}
	}
	/* exact fit and one byte short */
	assert_int_equal(ldapdir_escape("a*", 2, out, 5), 4);
	assert_string_equal(out, "a\\2a");
	assert_int_equal(ldapdir_escape("a*", 2, out, 4), -1);
	assert_int_equal(ldapdir_escape("ab", 2, out, 2), -1);
}

static void test_filter(void **state)
{
	static const struct {
		const char *name, *tmpl, *in, *want;
	} cases[] = {
		{ "sun default", "(|(mail=%s)(mailAlternateAddress=%s))",
		  "Bob@Example.COM",
		  "(|(mail=Bob@Example.COM)(mailAlternateAddress=Bob@Example.COM))" },
		{ "local and domain", "(&(uid=%u)(dc=%d))", "bob@x.test",
		  "(&(uid=bob)(dc=x.test))" },
		{ "last at splits", "(&(uid=%u)(dc=%d))", "\"a@b\"@x.test",
		  "(&(uid=\"a@b\")(dc=x.test))" },
		{ "no at", "(|(uid=%u)(mail=%s)(dc=%d))", "alice",
		  "(|(uid=alice)(mail=alice)(dc=))" },
		{ "percent", "(note=100%%%s)", "x", "(note=100%x)" },
		{ "injection escaped", "(mail=%s)", "*)(objectClass=*",
		  "(mail=\\2a\\29\\28objectClass=\\2a)" },
		{ "bad escape", "(mail=%x)", "a", NULL },
		{ "trailing percent", "(mail=%s)%", "a", NULL },
	};
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int w = ldapdir_filter(cases[i].tmpl, cases[i].in,
				       strlen(cases[i].in), out, sizeof(out));

		if (cases[i].want ? (w < 0 || strcmp(out, cases[i].want) != 0 ||
				     (size_t)w != strlen(cases[i].want))
				  : w != -1) {
			print_error("case %s: %d \"%s\"\n", cases[i].name, w,
				    w < 0 ? "" : out);
			fail();
		}
	}
	/* too small: refused, never truncated */
	assert_int_equal(ldapdir_filter("(mail=%s)", "a*b", 3, out, 12), -1);
	assert_int_equal(ldapdir_filter("(mail=%s)", "a*b", 3, out, 13), 12);
	assert_string_equal(out, "(mail=a\\2ab)");
}

static void test_route_norm(void **state)
{
	static const struct str_case cases[] = {
		{ "host", "mx.example", 0, "mx.example:25" },
		{ "host port, lower", "MX.Example.COM:2525", 0,
		  "mx.example.com:2525" },
		{ "bracketed", "[10.0.0.1]:26", 0, "10.0.0.1:26" },
		{ "bracketed no port", "[mbox1.x]", 0, "mbox1.x:25" },
		{ "spaces trimmed", "  mbox1.x:25 ", 0, "mbox1.x:25" },
		{ "ip", "192.0.2.7", 0, "192.0.2.7:25" },
		{ "empty", "", 0, NULL },
		{ "port only", ":25", 0, NULL },
		{ "empty port", "host:", 0, NULL },
		{ "port 0", "host:0", 0, NULL },
		{ "port too big", "host:65536", 0, NULL },
		{ "port garbage", "host:25x", 0, NULL },
		{ "space inside", "ho st", 0, NULL },
		{ "dash first", "-host", 0, NULL },
		{ "unclosed bracket", "[host:25", 0, NULL },
		{ "junk after bracket", "[host]x", 0, NULL },
		{ "url", "smtp://host", 0, NULL },
	};
	char out[300];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct str_case *c = &cases[i];
		int w = ldapdir_route_norm(c->in, strlen(c->in), out,
					   sizeof(out));

		if (c->want ? (w < 0 || strcmp(out, c->want) != 0)
			    : w != -1) {
			print_error("case %s: %d \"%s\"\n", c->name, w,
				    w < 0 ? "" : out);
			fail();
		}
	}
}

static void test_domain_listed(void **state)
{
	(void)state;
	assert_true(ldapdir_domain_listed("", "any.test", 8));
	assert_true(ldapdir_domain_listed(" ,", "any.test", 8));
	assert_true(ldapdir_domain_listed("a.test b.test", "B.TEST", 6));
	assert_true(ldapdir_domain_listed("a.test,b.test", "a.test", 6));
	assert_true(ldapdir_domain_listed("a.test, b.test", "b.test", 6));
	assert_false(ldapdir_domain_listed("a.test b.test", "c.test", 6));
	assert_false(ldapdir_domain_listed("a.test", "a.tes", 5));
	assert_false(ldapdir_domain_listed("a.tes", "a.test", 6));
	assert_false(ldapdir_domain_listed("x.a.test", "a.test", 6));
}

/* rec - a record with a route and two forwarding targets */
static struct ldapdir_rec rec(void)
{
	struct ldapdir_rec r = { 0 };

	r.verdict = LDAPDIR_FOUND;
	r.fetched_ms = 1700000000000ull;
	r.expires_ms = 1700000300000ull;
	r.route = "mbox1.example:2525";
	r.route_len = strlen(r.route);
	r.naliases = 2;
	r.alias[0] = "bob@elsewhere.test";
	r.alias_len[0] = strlen(r.alias[0]);
	r.alias[1] = "bob.archive@example.com";
	r.alias_len[1] = strlen(r.alias[1]);
	return r;
}

static void test_rec_roundtrip(void **state)
{
	struct ldapdir_rec in = rec(), out;
	uint8_t buf[LDAPDIR_REC_MAX];
	int n;

	(void)state;
	n = ldapdir_rec_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, 20 + 2 + 18 + 2 + 18 + 2 + 23 + 4);
	assert_int_equal(ldapdir_rec_decode(buf, (size_t)n, &out), 0);
	assert_int_equal(out.verdict, LDAPDIR_FOUND);
	assert_true(out.fetched_ms == in.fetched_ms);
	assert_true(out.expires_ms == in.expires_ms);
	assert_int_equal(out.route_len, in.route_len);
	assert_memory_equal(out.route, in.route, in.route_len);
	assert_int_equal(out.naliases, 2);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(out.alias_len[i], in.alias_len[i]);
		assert_memory_equal(out.alias[i], in.alias[i], in.alias_len[i]);
	}

	/* a negative answer: no route, no aliases */
	memset(&in, 0, sizeof(in));
	in.verdict = LDAPDIR_NOTFOUND;
	in.fetched_ms = 5;
	in.expires_ms = 65005;
	n = ldapdir_rec_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, 26);
	assert_int_equal(ldapdir_rec_decode(buf, (size_t)n, &out), 0);
	assert_int_equal(out.verdict, LDAPDIR_NOTFOUND);
	assert_int_equal(out.route_len, 0);
	assert_int_equal(out.naliases, 0);
	assert_true(out.expires_ms == 65005);
}

static void test_rec_damage(void **state)
{
	struct ldapdir_rec in = rec(), out;
	uint8_t buf[LDAPDIR_REC_MAX], bad[LDAPDIR_REC_MAX];
	int n;

	(void)state;
	n = ldapdir_rec_encode(&in, buf, sizeof(buf));
	assert_true(n > 0);
	/* every single flipped byte is caught (CRC32C over all of it) */
	for (int i = 0; i < n; i++) {
		memcpy(bad, buf, (size_t)n);
		bad[i] ^= 0x40;
		if (ldapdir_rec_decode(bad, (size_t)n, &out) != -1) {
			print_error("flip at %d accepted\n", i);
			fail();
		}
	}
	/* truncated */
	for (int k = 0; k < n; k++)
		assert_int_equal(ldapdir_rec_decode(buf, (size_t)k, &out), -1);
	/* too small a buffer */
	assert_int_equal(ldapdir_rec_encode(&in, buf, (size_t)n - 1), -1);
	assert_int_equal(ldapdir_rec_encode(&in, buf, (size_t)n), n);
	/* verdict 0 is not a record */
	in.verdict = 0;
	n = ldapdir_rec_encode(&in, buf, sizeof(buf));
	assert_int_equal(ldapdir_rec_decode(buf, (size_t)n, &out), -1);
	/* more aliases than a reader can hold */
	in = rec();
	in.naliases = MSTORE_X_ALIASES + 1;
	assert_int_equal(ldapdir_rec_encode(&in, buf, sizeof(buf)), -1);
}

static void test_rec_age(void **state)
{
	static const struct {
		const char *name;
		uint8_t verdict;
		uint64_t expires, now, stale_max;
		enum ldapdir_age want;
	} cases[] = {
		{ "found, fresh", LDAPDIR_FOUND, 1000, 999, 0, LDAPDIR_FRESH },
		{ "found, at expiry", LDAPDIR_FOUND, 1000, 1000, 500,
		  LDAPDIR_STALE },
		{ "found, inside stale window", LDAPDIR_FOUND, 1000, 1499, 500,
		  LDAPDIR_STALE },
		{ "found, past stale window", LDAPDIR_FOUND, 1000, 1500, 500,
		  LDAPDIR_DEAD },
		{ "found, no stale window", LDAPDIR_FOUND, 1000, 1000, 0,
		  LDAPDIR_DEAD },
		{ "not found, fresh", LDAPDIR_NOTFOUND, 1000, 10, 500,
		  LDAPDIR_FRESH },
		/* an old "no such user" never turns into a 550 */
		{ "not found, expired", LDAPDIR_NOTFOUND, 1000, 1001, 86400000,
		  LDAPDIR_DEAD },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ldapdir_rec r = { 0 };

		r.verdict = cases[i].verdict;
		r.expires_ms = cases[i].expires;
		if (ldapdir_rec_age(&r, cases[i].now, cases[i].stale_max) !=
		    cases[i].want) {
			print_error("case %s\n", cases[i].name);
			fail();
		}
	}
}

static void test_conn_why(void **state)
{
	static const struct {
		const char *name;
		const char *err, *diag;
		bool tls;
		const char *ca, *want;
	} cases[] = {
		{ "refused", "Can't contact LDAP server", NULL, false, "",
		  "Can't contact LDAP server" },
		{ "diag added", "Invalid credentials", "bad password", false,
		  "", "Invalid credentials (bad password)" },
		{ "diag repeats the error", "Connect error", "Connect error",
		  false, "", "Connect error" },
		/* GnuTLS-built libldap: ldaps:// with an untrusted cert */
		{ "tls, uninformative diag", "Can't contact LDAP server",
		  "(unknown error code)", true, "/etc/ca.pem",
		  "TLS handshake failed: Can't contact LDAP server (check "
		  "that the server's certificate chains to tls_ca_file "
		  "/etc/ca.pem and names the URI's host)" },
		/* OpenSSL-built libldap says why */
		{ "tls, system CAs", "Connect error",
		  "certificate verify failed", true, "",
		  "TLS handshake failed: Connect error (certificate verify "
		  "failed) (check that the server's certificate chains to "
		  "the system CAs and names the URI's host)" },
		{ "tls, empty diag", "Connect error", "", true, "/c.pem",
		  "TLS handshake failed: Connect error (check that the "
		  "server's certificate chains to tls_ca_file /c.pem and "
		  "names the URI's host)" },
	};
	char out[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int w = ldapdir_conn_why(out, sizeof(out), cases[i].err,
					 cases[i].diag, cases[i].tls,
					 cases[i].ca);

		if (w < 0 || strcmp(out, cases[i].want) != 0 ||
		    (size_t)w != strlen(out)) {
			print_error("case %s: %d \"%s\"\n", cases[i].name, w,
				    out);
			fail();
		}
	}
	/* truncated, still terminated; the length is what was written */
	assert_int_equal(ldapdir_conn_why(out, 8, "Connect error", NULL, true,
					  ""), 7);
	assert_string_equal(out, "TLS han");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_route_norm),
		cmocka_unit_test(test_domain_listed),
		cmocka_unit_test(test_rec_roundtrip),
		cmocka_unit_test(test_rec_damage),
		cmocka_unit_test(test_rec_age),
		cmocka_unit_test(test_conn_why),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
