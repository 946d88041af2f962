/*
 * test_stor_dir - directory store: password hashes, every lookup (domain,
 * recipient with catch-all, user, trusted networks, priority rules), write
 * errors, reopen, corrupt records, concurrent readers, lookup latency,
 * destination limits (put/get/del, name forms, line add/change), and
 * text import/export (golden canonical output, byte-identical round trip,
 * line-numbered errors that leave the old directory untouched).
 */
#include "stor_test.h"
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "stor_dir.h"
#include "stor_dirio.h"
#include "stor_pwhash.h"

#define S_(s) ((struct stor_str){ (s), (uint32_t)strlen(s) })

struct dfix {
	char *dir;
	struct stor_dir *d;
	struct stor_dir_reader *r;
};

static int setup(void **st)
{
	struct dfix *f = calloc(1, sizeof *f);
	f->dir = test_tmpdir();
	struct stor_dir_conf c = { .path = f->dir };
	assert_int_equal(stor_dir_open(&c, &f->d), 0);
	assert_int_equal(stor_dir_reader_open(f->d, &f->r), 0);
	*st = f;
	return 0;
}

static int teardown(void **st)
{
	struct dfix *f = *st;
	stor_dir_reader_close(f->r);
	stor_dir_close(f->d);
	test_rmdir(f->dir);
	free(f);
	return 0;
}

static void reopen(struct dfix *f)
{
	stor_dir_reader_close(f->r);
	stor_dir_close(f->d);
	struct stor_dir_conf c = { .path = f->dir };
	assert_int_equal(stor_dir_open(&c, &f->d), 0);
	assert_int_equal(stor_dir_reader_open(f->d, &f->r), 0);
}

static void pwhash(void **st)
{
	(void)st;
	char h1[STOR_PWHASH_MAX], h2[STOR_PWHASH_MAX], p1[STOR_PWHASH_MAX];
	assert_int_equal(stor_pwhash_make(STOR_PWHASH_SCRYPT, 1024, "s3cret", 6, h1, sizeof h1), 0);
	assert_int_equal(stor_pwhash_make(STOR_PWHASH_SCRYPT, 1024, "s3cret", 6, h2, sizeof h2), 0);
	assert_int_equal(strncmp(h1, "$scrypt$N=1024,r=8,p=1$", 23), 0);
	assert_string_not_equal(h1, h2);                /* fresh salt each time */
	assert_int_equal(stor_pwhash_verify(S_(h1), "s3cret", 6), 0);
	assert_int_equal(stor_pwhash_verify(S_(h2), "s3cret", 6), 0);
	assert_int_equal(stor_pwhash_verify(S_(h1), "s3creT", 6), EACCES);
	assert_int_equal(stor_pwhash_verify(S_(h1), "", 0), EACCES);
	assert_int_equal(stor_pwhash_make(STOR_PWHASH_PBKDF2, 1000, "pw", 2, p1, sizeof p1), 0);
	assert_int_equal(strncmp(p1, "$pbkdf2-sha256$i=1000$", 22), 0);
	assert_int_equal(stor_pwhash_verify(S_(p1), "pw", 2), 0);
	assert_int_equal(stor_pwhash_verify(S_(p1), "pW", 2), EACCES);
	assert_int_equal(stor_pwhash_make(STOR_PWHASH_SCRYPT, 1000, "x", 1, h2, sizeof h2), EINVAL);
	assert_int_equal(stor_pwhash_make(STOR_PWHASH_PBKDF2, 999, "x", 1, h2, sizeof h2), EINVAL);
	assert_int_equal(stor_pwhash_make(STOR_PWHASH_SCRYPT, 1024, "x", 1, h2, 20), ENOSPC);
	/* RFC 7914 section 12 vector 2 as a hash string: scrypt("password",
	 * "NaCl", N=1024, r=8, p=16), first 32 bytes */
	static const char rfc[] = "$scrypt$N=1024,r=8,p=16$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI=";
	assert_int_equal(stor_pwhash_verify(S_(rfc), "password", 8), 0);
	/* malformed or out-of-bounds strings */
	static const char *bad[] = {
		"plaintext", "", "$scrypt$N=1000,r=8,p=1$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI=",
		"$scrypt$N=2097152,r=8,p=1$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI=",
		"$scrypt$N=1024,r=0,p=1$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI=",
		"$scrypt$N=01024,r=8,p=1$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI=",
		"$scrypt$r=8,N=1024,p=1$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI=",
		"$scrypt$N=1024,r=8,p=1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI=",
		"$scrypt$N=1024,r=8,p=1$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MW*",
		"$scrypt$N=1024,r=8,p=1$TmFDbA==$AAAA",
		"$pbkdf2-sha256$i=999$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI=",
		"$pbkdf2-sha1$i=1000$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI=",
		"$pbkdf2-sha256$i=1000$TmFDbA==",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(stor_pwhash_check(S_(bad[i])), EINVAL);
		assert_int_equal(stor_pwhash_verify(S_(bad[i]), "password", 8), EINVAL);
	}
}

/* load - a small directory through the txn API */
static void load(struct dfix *f, const char *scrypt_hash)
{
	MDB_txn *t;
	assert_int_equal(stor_dir_txn_begin(f->d, &t), 0);
	struct stor_dir_domain local = { .kind = STOR_DOMAIN_LOCAL }, relay = { .kind = STOR_DOMAIN_RELAY };
	local.route.tls = STOR_TLS_OPPORTUNISTIC;
	relay.route.tls = STOR_TLS_VERIFY;
	relay.route.nhops = 2;
	relay.route.hop[0] = (struct stor_hop){ STOR_STR("mx1.partner.example"), 25 };
	relay.route.hop[1] = (struct stor_hop){ STOR_STR("[2001:db8::25]"), 2525 };
	assert_int_equal(stor_dir_put_domain(f->d, t, STOR_STR("Example.COM."), &local, 0), 0);
	assert_int_equal(stor_dir_put_domain(f->d, t, STOR_STR("partner.example"), &relay, 0), 0);
	struct stor_dir_rcpt acc = { .action = STOR_ACT_ACCEPT };
	struct stor_dir_rcpt alias = { .action = STOR_ACT_ALIAS, .ntargets = 2,
		.target = { STOR_STR("alice@example.com"), STOR_STR("bob@elsewhere.example") } };
	struct stor_dir_rcpt rej = { .action = STOR_ACT_REJECT };
	struct stor_dir_rcpt over = { .action = STOR_ACT_ACCEPT, .has_route = 1 };
	over.route.tls = STOR_TLS_REQUIRED;
	over.route.nhops = 1;
	over.route.hop[0] = (struct stor_hop){ STOR_STR("10.1.2.3"), 2525 };
	assert_int_equal(stor_dir_put_rcpt(f->d, t, STOR_STR("Alice@example.com"), &acc, 0), 0);
	assert_int_equal(stor_dir_put_rcpt(f->d, t, STOR_STR("team@example.com"), &alias, 0), 0);
	assert_int_equal(stor_dir_put_rcpt(f->d, t, STOR_STR("*@partner.example"), &acc, 0), 0);
	assert_int_equal(stor_dir_put_rcpt(f->d, t, STOR_STR("spam@partner.example"), &rej, 0), 0);
	assert_int_equal(stor_dir_put_rcpt(f->d, t, STOR_STR("ceo@example.com"), &over, 0), 0);
	assert_int_equal(stor_dir_put_user(f->d, t, STOR_STR("Alice@Example.com"), S_(scrypt_hash), 0), 0);
	const char *nets[] = { "10.0.0.0/8", "192.0.2.0/24", "198.51.100.7/32", "2001:db8::/32",
			       "2001:db8:ffff::1/128" };
	for (int i = 0; i < 5; i++)
		assert_int_equal(stor_dir_put_net(f->d, t, S_(nets[i]), 0), 0);
	assert_int_equal(stor_dir_put_prio(f->d, t, STOR_PRIO_RCPT, STOR_STR("ceo@example.com"), 0, 0), 0);
	assert_int_equal(stor_dir_put_prio(f->d, t, STOR_PRIO_SENDER, STOR_STR("@bulk.example"), 7, 0), 0);
	assert_int_equal(stor_dir_put_prio(f->d, t, STOR_PRIO_SENDER, STOR_STR("boss@bulk.example"), 1, 0), 0);
	assert_int_equal(stor_dir_put_prio(f->d, t, STOR_PRIO_DOMAIN, STOR_STR("partner.example"), 3, 0), 0);
	assert_int_equal(mdb_txn_commit(t), 0);
}

static int trusted(struct dfix *f, const char *ip)
{
	uint8_t a[16];
	int af = strchr(ip, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(af, ip, a), 1);
	return stor_dir_trusted(f->r, af, a);
}

static void lookups(void **st)
{
	struct dfix *f = *st;
	char h[STOR_PWHASH_MAX];
	assert_int_equal(stor_pwhash_make(STOR_PWHASH_SCRYPT, 1024, "hunter2", 7, h, sizeof h), 0);
	load(f, h);
	for (int round = 0; round < 2; round++) {
		struct stor_dir_domain dom;
		assert_int_equal(stor_dir_domain(f->r, STOR_STR("EXAMPLE.com"), &dom), 0);
		assert_int_equal(dom.kind, STOR_DOMAIN_LOCAL);
		assert_int_equal(stor_dir_domain(f->r, STOR_STR("partner.example."), &dom), 0);
		assert_int_equal(dom.kind, STOR_DOMAIN_RELAY);
		assert_int_equal(dom.route.tls, STOR_TLS_VERIFY);
		assert_int_equal(dom.route.nhops, 2);
		assert_memory_equal(dom.route.hop[1].host.p, "[2001:db8::25]", 14);
		assert_int_equal(dom.route.hop[1].port, 2525);
		assert_int_equal(stor_dir_domain(f->r, STOR_STR("other.example"), &dom), MDB_NOTFOUND);
		assert_int_equal(stor_dir_domain(f->r, STOR_STR("bad domain"), &dom), EINVAL);

		struct stor_dir_rcpt rc;
		int ca;
		assert_int_equal(stor_dir_rcpt(f->r, STOR_STR("ALICE@example.com"), &rc, &ca), 0);
		assert_int_equal(rc.action, STOR_ACT_ACCEPT);
		assert_int_equal(ca, 0);
		assert_int_equal(stor_dir_rcpt(f->r, STOR_STR("team@example.com"), &rc, &ca), 0);
		assert_int_equal(rc.action, STOR_ACT_ALIAS);
		assert_int_equal(rc.ntargets, 2);
		assert_memory_equal(rc.target[1].p, "bob@elsewhere.example", 21);
		assert_int_equal(stor_dir_rcpt(f->r, STOR_STR("ceo@example.com"), &rc, &ca), 0);
		assert_int_equal(rc.has_route, 1);
		assert_int_equal(rc.route.tls, STOR_TLS_REQUIRED);
		assert_int_equal(rc.route.hop[0].port, 2525);
		assert_int_equal(stor_dir_rcpt(f->r, STOR_STR("nobody@example.com"), &rc, &ca), MDB_NOTFOUND);
		assert_int_equal(stor_dir_rcpt(f->r, STOR_STR("anyone@partner.example"), &rc, &ca), 0);
		assert_int_equal(ca, 1);
		assert_int_equal(stor_dir_rcpt(f->r, STOR_STR("spam@partner.example"), &rc, &ca), 0);
		assert_int_equal(rc.action, STOR_ACT_REJECT);
		assert_int_equal(ca, 0);
		assert_int_equal(stor_dir_rcpt(f->r, STOR_STR("no-at-sign"), &rc, &ca), EINVAL);
		assert_int_equal(stor_dir_rcpt(f->r, STOR_STR("@example.com"), &rc, &ca), EINVAL);

		assert_int_equal(stor_dir_user_verify(f->r, STOR_STR("alice@example.com"), "hunter2", 7), 0);
		assert_int_equal(stor_dir_user_verify(f->r, STOR_STR("ALICE@example.com"), "hunter2", 7), 0);
		assert_int_equal(stor_dir_user_verify(f->r, STOR_STR("alice@example.com"), "hunter3", 7), EACCES);
		assert_int_equal(stor_dir_user_verify(f->r, STOR_STR("mallory"), "hunter2", 7), EACCES);

		assert_int_equal(trusted(f, "10.200.3.4"), 0);
		assert_int_equal(trusted(f, "192.0.2.255"), 0);
		assert_int_equal(trusted(f, "192.0.3.1"), MDB_NOTFOUND);
		assert_int_equal(trusted(f, "198.51.100.7"), 0);
		assert_int_equal(trusted(f, "198.51.100.8"), MDB_NOTFOUND);
		assert_int_equal(trusted(f, "11.0.0.1"), MDB_NOTFOUND);
		assert_int_equal(trusted(f, "2001:db8:1::1"), 0);
		assert_int_equal(trusted(f, "2001:db9::1"), MDB_NOTFOUND);
		assert_int_equal(trusted(f, "::ffff:10.0.0.1"), MDB_NOTFOUND); /* v6 table only */
		assert_int_equal(stor_dir_trusted(f->r, AF_UNIX, "x"), EINVAL);

		uint8_t lvl = 99;
		assert_int_equal(stor_dir_priority(f->r, STOR_STR("x@bulk.example"), STOR_STR("ceo@example.com"), &lvl), 0);
		assert_int_equal(lvl, 0);     /* recipient address beats sender domain */
		assert_int_equal(stor_dir_priority(f->r, STOR_STR("x@bulk.example"), STOR_STR("a@example.com"), &lvl), 0);
		assert_int_equal(lvl, 7);
		assert_int_equal(stor_dir_priority(f->r, STOR_STR("boss@bulk.example"), STOR_STR("a@example.com"), &lvl), 0);
		assert_int_equal(lvl, 1);     /* sender address beats sender domain */
		assert_int_equal(stor_dir_priority(f->r, STOR_STR(""), STOR_STR("x@partner.example"), &lvl), 0);
		assert_int_equal(lvl, 3);     /* domain rule, null sender */
		assert_int_equal(stor_dir_priority(f->r, STOR_STR("a@b.example"), STOR_STR("c@d.example"), &lvl), MDB_NOTFOUND);
		stor_dir_reader_release(f->r);
		reopen(f);
	}
}

static void write_errors(void **st)
{
	struct dfix *f = *st;
	MDB_txn *t;
	char h[STOR_PWHASH_MAX];
	assert_int_equal(stor_pwhash_make(STOR_PWHASH_PBKDF2, 1000, "pw", 2, h, sizeof h), 0);
	load(f, h);
	assert_int_equal(stor_dir_txn_begin(f->d, &t), 0);
	struct stor_dir_rcpt acc = { .action = STOR_ACT_ACCEPT };
	struct stor_dir_domain dom = { .kind = STOR_DOMAIN_LOCAL };
	assert_int_equal(stor_dir_put_rcpt(f->d, t, STOR_STR("x@undeclared.example"), &acc, 0), MDB_NOTFOUND);
	assert_int_equal(stor_dir_put_rcpt(f->d, t, STOR_STR("alice@example.com"), &acc, 0), MDB_KEYEXIST);
	assert_int_equal(stor_dir_put_rcpt(f->d, t, STOR_STR("alice@example.com"), &acc, 1), 0);
	struct stor_dir_rcpt alias0 = { .action = STOR_ACT_ALIAS };
	assert_int_equal(stor_dir_put_rcpt(f->d, t, STOR_STR("z@example.com"), &alias0, 0), EINVAL);
	assert_int_equal(stor_dir_put_user(f->d, t, STOR_STR("bob"), STOR_STR("plain-password"), 0), EINVAL);
	assert_int_equal(stor_dir_put_user(f->d, t, STOR_STR("bad user"), S_(h), 0), EINVAL);
	assert_int_equal(stor_dir_put_net(f->d, t, STOR_STR("10.0.0.1/8"), 0), EINVAL);  /* host bits */
	assert_int_equal(stor_dir_put_net(f->d, t, STOR_STR("10.0.0.0/33"), 0), EINVAL);
	assert_int_equal(stor_dir_put_net(f->d, t, STOR_STR("10.0.0.0"), 0), EINVAL);
	assert_int_equal(stor_dir_put_net(f->d, t, STOR_STR("10.0.0.0/8"), 0), MDB_KEYEXIST);
	assert_int_equal(stor_dir_put_prio(f->d, t, STOR_PRIO_RCPT, STOR_STR("a@b.example"), 8, 0), EINVAL);
	assert_int_equal(stor_dir_put_prio(f->d, t, 'x', STOR_STR("a@b.example"), 1, 0), EINVAL);
	assert_int_equal(stor_dir_put_domain(f->d, t, STOR_STR("a..b"), &dom, 0), EINVAL);
	dom.route.nhops = 1;
	dom.route.hop[0] = (struct stor_hop){ STOR_STR("mx"), 0 };
	assert_int_equal(stor_dir_put_domain(f->d, t, STOR_STR("c.example"), &dom, 0), EINVAL);
	/* deletions */
	assert_int_equal(stor_dir_del(f->d, t, STOR_DIR_NET, STOR_STR("192.0.2.0/24")), 0);
	assert_int_equal(stor_dir_del(f->d, t, STOR_DIR_NET, STOR_STR("192.0.2.0/24")), MDB_NOTFOUND);
	assert_int_equal(stor_dir_del(f->d, t, STOR_DIR_RCPT, STOR_STR("*@partner.example")), 0);
	assert_int_equal(stor_dir_del(f->d, t, STOR_DIR_PRIO, STOR_STR("s:@bulk.example")), 0);
	assert_int_equal(stor_dir_del(f->d, t, STOR_DIR_USER, STOR_STR("ALICE@example.com")), 0);
	assert_int_equal(mdb_txn_commit(t), 0);
	reopen(f);
	struct stor_dir_rcpt rc;
	int ca;
	uint8_t lvl;
	assert_int_equal(trusted(f, "192.0.2.1"), MDB_NOTFOUND);
	assert_int_equal(stor_dir_rcpt(f->r, STOR_STR("anyone@partner.example"), &rc, &ca), MDB_NOTFOUND);
	assert_int_equal(stor_dir_priority(f->r, STOR_STR("x@bulk.example"), STOR_STR("a@example.com"), &lvl), MDB_NOTFOUND);
	assert_int_equal(stor_dir_user_verify(f->r, STOR_STR("alice@example.com"), "pw", 2), EACCES);
	assert_int_equal(trusted(f, "10.1.1.1"), 0);
}

static void corrupt_record(void **st)
{
	struct dfix *f = *st;
	MDB_txn *t;
	assert_int_equal(stor_dir_txn_begin(f->d, &t), 0);
	MDB_val k = { 11, "example.com" }, v = { 5, "\x01" "d\0\0\0" };
	assert_int_equal(mdb_put(t, stor_dir_dbi(f->d, STOR_DIR_DOMAIN), &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(t), 0);
	struct stor_dir_domain dom;
	assert_int_equal(stor_dir_domain(f->r, STOR_STR("example.com"), &dom), STOR_ECORRUPT);
	FILE *out = tmpfile();
	assert_int_equal(stor_dirio_export(f->d, out), STOR_ECORRUPT);
	fclose(out);
}

struct rarg { struct stor_dir *d; int n, bad; };
static void *reader_thread(void *a)
{
	struct rarg *ra = a;
	struct stor_dir_reader *r;
	struct stor_dir_domain dom;
	stor_dir_reader_open(ra->d, &r);
	for (int i = 0; i < ra->n; i++)
		if (stor_dir_domain(r, STOR_STR("example.com"), &dom))
			ra->bad++;
	stor_dir_reader_close(r);
	return NULL;
}

static void readers_not_blocked_and_fast(void **st)
{
	struct dfix *f = *st;
	char h[STOR_PWHASH_MAX];
	assert_int_equal(stor_pwhash_make(STOR_PWHASH_PBKDF2, 1000, "pw", 2, h, sizeof h), 0);
	load(f, h);
	/* a writer holds a write txn while other threads look things up */
	MDB_txn *t;
	assert_int_equal(stor_dir_txn_begin(f->d, &t), 0);
	assert_int_equal(stor_dir_del(f->d, t, STOR_DIR_DOMAIN, STOR_STR("example.com")), 0);
	pthread_t th[2];
	struct rarg ra[2] = { { f->d, 20000, 0 }, { f->d, 20000, 0 } };
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, reader_thread, &ra[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(ra[0].bad + ra[1].bad, 0);   /* saw the committed state */
	mdb_txn_abort(t);
	/* latency: 4 kinds of lookup, 20000 each */
	struct timespec a, b;
	struct stor_dir_domain dom;
	struct stor_dir_rcpt rc;
	int ca;
	uint8_t lvl, ip[4] = { 10, 9, 8, 7 };
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 20000; i++) {
		assert_int_equal(stor_dir_domain(f->r, STOR_STR("partner.example"), &dom), 0);
		assert_int_equal(stor_dir_rcpt(f->r, STOR_STR("someone@partner.example"), &rc, &ca), 0);
		assert_int_equal(stor_dir_trusted(f->r, AF_INET, ip), 0);
		assert_int_equal(stor_dir_priority(f->r, STOR_STR("x@y.example"), STOR_STR("z@partner.example"), &lvl), 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	double us = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / 80000;
	print_message("directory lookup: %.2f us average over 80000 (domain, rcpt+catch-all, trusted, priority)\n", us);
	assert_true(us < 50);    /* microseconds, with slack for a loaded CI box */
}

static const char sample[] =
	"# test directory\n"
	"domain Example.COM local\n"
	"domain partner.example relay route=mx1.partner.example:25,[2001:db8::25]:2525 tls=verify\r\n"
	"\n"
	"rcpt alice@example.com accept\n"
	"rcpt team@example.com alias alice@example.com,bob@elsewhere.example\n"
	"rcpt ceo@example.com accept route=10.1.2.3:2525 tls=required\n"
	"rcpt *@partner.example accept\n"
	"   rcpt spam@partner.example reject\n"
	"rcpt noc@example.com accept tls=verify\n"
	"user alice@example.com $pbkdf2-sha256$i=1000$TmFDbA==$Z9vMeFSKdTKPaJASW+wsWYdujeLkySyZsgGHKnYOKuw=\n"
	"net 10.0.0.0/8\n"
	"net 2001:db8::/32\n"
	"net 192.0.2.0/24\n"
	"prio rcpt ceo@example.com 0\n"
	"prio sender @bulk.example 7\n"
	"prio domain partner.example 3\n"
	"limit Partner.Example. rate=20 msgs_per_conn=0 max_conns=3\n"
	"limit [2001:DB8::25]:2525 msgs_per_conn=1\n"
	"limit 10.1.2.3:2525 max_conns=2 msgs_per_conn=50 rate=5\n";

static const char canonical[] =
	"# sluice directory (stor_dirio export, format 1)\n"
	"domain example.com local tls=opportunistic\n"
	"domain partner.example relay route=mx1.partner.example:25,[2001:db8::25]:2525 tls=verify\n"
	"rcpt *@partner.example accept\n"
	"rcpt alice@example.com accept\n"
	"rcpt ceo@example.com accept route=10.1.2.3:2525 tls=required\n"
	"rcpt noc@example.com accept tls=verify\n"
	"rcpt spam@partner.example reject\n"
	"rcpt team@example.com alias alice@example.com,bob@elsewhere.example\n"
	"user alice@example.com $pbkdf2-sha256$i=1000$TmFDbA==$Z9vMeFSKdTKPaJASW+wsWYdujeLkySyZsgGHKnYOKuw=\n"
	"net 10.0.0.0/8\n"
	"net 192.0.2.0/24\n"
	"net 2001:db8::/32\n"
	"prio domain partner.example 3\n"
	"prio rcpt ceo@example.com 0\n"
	"prio sender @bulk.example 7\n"
	"limit 10.1.2.3:2525 max_conns=2 msgs_per_conn=50 rate=5\n"
	"limit [2001:db8::25]:2525 msgs_per_conn=1\n"
	"limit partner.example max_conns=3 rate=20\n";

static char *export_str(struct stor_dir *d)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *out = open_memstream(&buf, &n);
	assert_int_equal(stor_dirio_export(d, out), 0);
	fclose(out);
	return buf;
}

static int import_str(struct stor_dir *d, const char *text, char *err, size_t errlen)
{
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	int rc = stor_dirio_import(d, in, "dir.txt", err, errlen);
	fclose(in);
	return rc;
}

/* limits: put/get/del, destination name forms, bounds, line add/change */
static void limits(void **st)
{
	struct dfix *f = *st;
	struct stor_dir_limit l = { .max_conns = 2 }, o;
	MDB_txn *t;
	char err[256], line[128];
	assert_int_equal(stor_dir_txn_begin(f->d, &t), 0);
	assert_int_equal(stor_dir_put_limit(f->d, t, STOR_STR("Relay.Test."), &l, 0), 0);
	assert_int_equal(stor_dir_put_limit(f->d, t, STOR_STR("relay.test"), &l, 0), MDB_KEYEXIST);
	l = (struct stor_dir_limit){ .msgs_per_conn = 1, .rate = 7 };
	assert_int_equal(stor_dir_put_limit(f->d, t, STOR_STR("MX.Partner.example:2525"), &l, 0), 0);
	assert_int_equal(stor_dir_put_limit(f->d, t, STOR_STR("[2001:db8::1]:25"), &l, 0), 0);
	/* bad names and values */
	static const char *bad[] = { "", "a..b", "mx:", "mx:0", "mx:025", "mx:65536",
		"mx:2x", ":25", "2001:db8::1:25", "[2001:db8::1]", "[zz]:25", "a b:25",
		"[]:25" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(stor_dir_put_limit(f->d, t, S_(bad[i]), &l, 0), EINVAL);
	o = (struct stor_dir_limit){ 0 };
	assert_int_equal(stor_dir_put_limit(f->d, t, STOR_STR("x.test"), &o, 0), EINVAL);
	o.rate = STOR_LIMIT_RATE_MAX + 1;
	assert_int_equal(stor_dir_put_limit(f->d, t, STOR_STR("x.test"), &o, 0), EINVAL);
	assert_int_equal(mdb_txn_commit(t), 0);

	/* lookups normalise the same way */
	assert_int_equal(stor_dir_limit(f->r, STOR_STR("RELAY.test"), &o), 0);
	assert_int_equal(o.max_conns, 2);
	assert_int_equal(o.msgs_per_conn + o.rate, 0);
	assert_int_equal(stor_dir_limit(f->r, STOR_STR("mx.partner.EXAMPLE:2525"), &o), 0);
	assert_int_equal(o.msgs_per_conn, 1);
	assert_int_equal(o.rate, 7);
	assert_int_equal(stor_dir_limit(f->r, STOR_STR("[2001:DB8::1]:25"), &o), 0);
	assert_int_equal(stor_dir_limit(f->r, STOR_STR("mx.partner.example:25"), &o), MDB_NOTFOUND);
	assert_int_equal(stor_dir_limit(f->r, STOR_STR("mx.partner.example"), &o), MDB_NOTFOUND);
	assert_int_equal(stor_dir_limit(f->r, STOR_STR("a..b"), &o), EINVAL);
	/* key text is the stored (lower-case) name */
	char name[300], kind;
	assert_int_equal(stor_dir_key_text(STOR_DIR_LIMIT, "mx.partner.example:2525", 23,
					   name, sizeof name, &kind), 0);
	assert_string_equal(name, "mx.partner.example:2525");
	reopen(f);
	assert_int_equal(stor_dir_limit(f->r, STOR_STR("relay.test"), &o), 0);
	assert_int_equal(o.max_conns, 2);

	/* dir add / dir change lines (stor_dirio_line) */
	assert_int_equal(stor_dir_txn_begin(f->d, &t), 0);
	snprintf(line, sizeof line, "limit relay.test rate=9");
	assert_int_equal(stor_dirio_line(f->d, t, line, STOR_DIRIO_ADD, err, sizeof err), EINVAL);
	assert_non_null(strstr(err, "duplicate limit destination"));
	snprintf(line, sizeof line, "limit relay.test rate=9");
	assert_int_equal(stor_dirio_line(f->d, t, line, STOR_DIRIO_CHANGE, err, sizeof err), 0);
	snprintf(line, sizeof line, "limit other.test rate=9");
	assert_int_equal(stor_dirio_line(f->d, t, line, STOR_DIRIO_CHANGE, err, sizeof err), EINVAL);
	assert_non_null(strstr(err, "no such entry"));
	assert_int_equal(mdb_txn_commit(t), 0);
	assert_int_equal(stor_dir_limit(f->r, STOR_STR("relay.test"), &o), 0);
	assert_int_equal(o.max_conns, 0);       /* change replaces the whole entry */
	assert_int_equal(o.rate, 9);

	/* delete; stor_dir_clear empties the table */
	assert_int_equal(stor_dir_txn_begin(f->d, &t), 0);
	assert_int_equal(stor_dir_del(f->d, t, STOR_DIR_LIMIT, STOR_STR("RELAY.TEST")), 0);
	assert_int_equal(stor_dir_del(f->d, t, STOR_DIR_LIMIT, STOR_STR("relay.test")), MDB_NOTFOUND);
	assert_int_equal(stor_dir_del(f->d, t, STOR_DIR_LIMIT, STOR_STR("mx:0")), EINVAL);
	assert_int_equal(mdb_txn_commit(t), 0);
	assert_int_equal(stor_dir_limit(f->r, STOR_STR("relay.test"), &o), MDB_NOTFOUND);
	assert_int_equal(stor_dir_limit(f->r, STOR_STR("mx.partner.example:2525"), &o), 0);
	assert_int_equal(stor_dir_txn_begin(f->d, &t), 0);
	assert_int_equal(stor_dir_clear(f->d, t), 0);
	assert_int_equal(mdb_txn_commit(t), 0);
	assert_int_equal(stor_dir_limit(f->r, STOR_STR("mx.partner.example:2525"), &o), MDB_NOTFOUND);
}

static void import_export_round_trip(void **st)
{
	struct dfix *f = *st;
	char err[256] = "";
	assert_int_equal(import_str(f->d, sample, err, sizeof err), 0);
	char *a = export_str(f->d);
	assert_string_equal(a, canonical);
	/* lookups see the imported data */
	struct stor_dir_rcpt rc;
	int ca;
	assert_int_equal(stor_dir_rcpt(f->r, STOR_STR("noc@example.com"), &rc, &ca), 0);
	assert_int_equal(rc.has_route, 1);
	assert_int_equal(rc.route.nhops, 0);
	assert_int_equal(rc.route.tls, STOR_TLS_VERIFY);
	/* PBKDF2-HMAC-SHA256("password", "NaCl", 1000) computed independently */
	assert_int_equal(stor_dir_user_verify(f->r, STOR_STR("alice@example.com"), "password", 8), 0);
	assert_int_equal(stor_dir_user_verify(f->r, STOR_STR("alice@example.com"), "Password", 8), EACCES);
	struct stor_dir_limit lim;
	assert_int_equal(stor_dir_limit(f->r, STOR_STR("partner.example"), &lim), 0);
	assert_int_equal(lim.max_conns, 3);
	assert_int_equal(lim.msgs_per_conn, 0);
	assert_int_equal(lim.rate, 20);
	assert_int_equal(stor_dir_limit(f->r, STOR_STR("10.1.2.3:2525"), &lim), 0);
	assert_int_equal(lim.msgs_per_conn, 50);
	assert_int_equal(stor_dir_limit(f->r, STOR_STR("example.com"), &lim), MDB_NOTFOUND);
	/* export -> import into a fresh directory -> export: identical */
	char *dir2 = test_tmpdir();
	struct stor_dir *d2;
	struct stor_dir_conf c = { .path = dir2 };
	assert_int_equal(stor_dir_open(&c, &d2), 0);
	assert_int_equal(import_str(d2, a, err, sizeof err), 0);
	char *b = export_str(d2);
	assert_string_equal(a, b);
	stor_dir_close(d2);
	test_rmdir(dir2);
	/* importing again replaces (no duplicates, no leftovers) */
	assert_int_equal(import_str(f->d, "domain only.example local\n", err, sizeof err), 0);
	char *c2 = export_str(f->d);
	assert_string_equal(c2, "# sluice directory (stor_dirio export, format 1)\n"
				"domain only.example local tls=opportunistic\n");
	/* comments are free text of any number of words, indented or not */
	assert_int_equal(import_str(f->d, "# the demo: one two three four five six "
				    "seven eight nine ten\n\t  # indented, also "
				    "with many many words in it\n"
				    "domain only.example local\n", err, sizeof err), 0);
	char *c4 = export_str(f->d);
	assert_string_equal(c2, c4);
	free(c4);
	reopen(f);
	char *c3 = export_str(f->d);
	assert_string_equal(c2, c3);
	free(a);
	free(b);
	free(c2);
	free(c3);
}

static void import_errors_atomic(void **st)
{
	struct dfix *f = *st;
	char err[256];
	assert_int_equal(import_str(f->d, sample, err, sizeof err), 0);
	char *before = export_str(f->d);
	static const struct { const char *text, *want; } cases[] = {
		{ "domain a.example local\nbogus line\n", "dir.txt:2: unknown keyword" },
		{ "domain a.example\n", "dir.txt:1: usage: domain" },
		{ "domain a.example remote\n", "dir.txt:1: domain kind must be local or relay" },
		{ "domain a.example local\ndomain A.example. relay\n", "dir.txt:2: duplicate domain name" },
		{ "domain a..example local\n", "dir.txt:1: invalid domain name" },
		{ "domain a.example relay route=mx:0\n", "dir.txt:1: port must be 1..65535" },
		{ "domain a.example relay route=mx\n", "dir.txt:1: next hop must be HOST:PORT" },
		{ "domain a.example relay tls=maybe\n", "dir.txt:1: tls= must be" },
		{ "domain a.example relay tls=none tls=none\n", "dir.txt:1: tls= given twice" },
		{ "domain a.example relay colour=blue\n", "dir.txt:1: unexpected field" },
		{ "#c\n\nrcpt x@a.example accept\n", "dir.txt:3: recipient's domain is not declared" },
		{ "domain a.example local\nrcpt x@a.example forward\n", "dir.txt:2: recipient action must be" },
		{ "domain a.example local\nrcpt x@a.example alias\n", "dir.txt:2: alias needs TARGET" },
		{ "domain a.example local\nrcpt x@a.example alias y@,z@b.example\n", "dir.txt:2: invalid recipient address or alias target" },
		{ "user bob secret\n", "dir.txt:1: password must be a $scrypt$ or $pbkdf2-sha256$ hash" },
		{ "user bob\n", "dir.txt:1: usage: user NAME HASH" },
		{ "net 10.0.0.1/8\n", "dir.txt:1: invalid network" },
		{ "net 10.0.0.0/8\nnet 10.0.0.0/8\n", "dir.txt:2: duplicate network" },
		{ "prio sender a@b.example 8\n", "dir.txt:1: priority level must be 0..7" },
		{ "prio size a@b.example 1\n", "dir.txt:1: prio kind must be" },
		{ "prio rcpt *@b.example 1\n", "dir.txt:1: invalid priority pattern" },
		{ "domain a b c d e f g h i\n", "dir.txt:1: too many fields" },
		{ "domain a.example local\nlimit a.example\n", "dir.txt:2: usage: limit DEST" },
		{ "limit a.example max_conns=0\n", "dir.txt:1: limit sets nothing" },
		{ "limit a.example max_conns=1 max_conns=2\n", "dir.txt:1: limit field given twice" },
		{ "limit a.example max_conns=100001\n", "dir.txt:1: max_conns= must be 0..100000" },
		{ "limit a.example max_conns=-1\n", "dir.txt:1: max_conns= must be" },
		{ "limit a.example max_conns=\n", "dir.txt:1: max_conns= must be" },
		{ "limit a.example msgs_per_conn=1000001\n", "dir.txt:1: msgs_per_conn= must be 0..1000000" },
		{ "limit a.example rate=99999999999\n", "dir.txt:1: rate= must be" },
		{ "limit a.example rate=1x\n", "dir.txt:1: rate= must be" },
		{ "limit a.example rate=01\n", "dir.txt:1: rate= must be" },
		{ "limit a.example conns=1\n", "dir.txt:1: unexpected field" },
		{ "limit a..example rate=1\n", "dir.txt:1: invalid destination" },
		{ "limit mx:0 rate=1\n", "dir.txt:1: invalid destination" },
		{ "limit mx:65536 rate=1\n", "dir.txt:1: invalid destination" },
		{ "limit 2001:db8::1:25 rate=1\n", "dir.txt:1: invalid destination" },
		{ "#\nlimit a.example rate=1\nlimit A.EXAMPLE max_conns=1\n", "dir.txt:3: duplicate limit destination" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		err[0] = 0;
		assert_int_equal(import_str(f->d, cases[i].text, err, sizeof err), EINVAL);
		if (strncmp(err, cases[i].want, strlen(cases[i].want))) {
			print_error("case %zu: got '%s' want prefix '%s'\n", i, err, cases[i].want);
			fail();
		}
		char *after = export_str(f->d);
		assert_string_equal(before, after);    /* nothing changed */
		free(after);
	}
	free(before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pwhash),
		cmocka_unit_test_setup_teardown(lookups, setup, teardown),
		cmocka_unit_test_setup_teardown(write_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(corrupt_record, setup, teardown),
		cmocka_unit_test_setup_teardown(readers_not_blocked_and_fast, setup, teardown),
		cmocka_unit_test_setup_teardown(limits, setup, teardown),
		cmocka_unit_test_setup_teardown(import_export_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(import_errors_atomic, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
