/*
 * cfg_test.c - sluice.conf parser: good files give the right values, each
 * kind of bad file is refused with a message naming file, section, key and
 * reason (table driven, one named case per mistake an operator can make).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cfg.h"
#include "dp_test.h"

#define ADDR "[interface]\naddress = 10.0.0.1/24\n"
#define LDAP_ON "[ldap]\nenabled = yes\n"
#define LDAP_OK LDAP_ON "uris = ldap://127.0.0.1:3389\nbase = dc=x\n"

struct cfg_case {
	const char *name;
	const char *text;
	const char *err;          /* expected substring after "FILE: " */
};

static const struct cfg_case bad_cases[] = {
	{ "octet over 255", "[interface]\naddress = 10.0.0.300/24\n",
	  "[interface] address: \"10.0.0.300/24\" is not an IPv4 "
	  "address/prefix" },
	{ "address without prefix", "[interface]\naddress = 10.0.0.1\n",
	  "[interface] address: \"10.0.0.1\" is not an IPv4 address/prefix" },
	{ "prefix 33", "[interface]\naddress = 10.0.0.1/33\n",
	  "is not an IPv4 address/prefix" },
	{ "prefix 0", "[interface]\naddress = 10.0.0.1/0\n",
	  "is not an IPv4 address/prefix" },
	{ "three octets", "[interface]\naddress = 10.0.1/24\n",
	  "is not an IPv4 address/prefix" },
	{ "leading zero octet", "[interface]\naddress = 10.0.0.010/24\n",
	  "is not an IPv4 address/prefix" },
	{ "address missing", "[services]\necho = yes\n",
	  "[interface] address: missing" },
	{ "network address", "[interface]\naddress = 10.0.0.0/24\n",
	  "is the network or broadcast address" },
	{ "broadcast address", "[interface]\naddress = 10.0.0.255/24\n",
	  "is the network or broadcast address" },
	{ "loopback address", "[interface]\naddress = 127.0.0.1/8\n",
	  "is not a usable unicast address" },
	{ "multicast address", "[interface]\naddress = 224.0.0.1/24\n",
	  "is not a usable unicast address" },
	{ "gateway garbage", ADDR "gateway = router\n",
	  "[interface] gateway: \"router\" is not an IPv4 address" },
	{ "gateway off link", ADDR "gateway = 10.0.1.1\n",
	  "[interface] gateway: \"10.0.1.1\" is not inside 10.0.0.1/24" },
	{ "gateway is us", ADDR "gateway = 10.0.0.1\n",
	  "[interface] gateway: \"10.0.0.1\" is our own address" },
	{ "mac garbage", ADDR "mac = 02:00:00:00:00\n",
	  "[interface] mac: \"02:00:00:00:00\" is not a MAC address" },
	{ "mac multicast", ADDR "mac = 01:00:5e:00:00:01\n",
	  "is a multicast MAC address" },
	{ "unknown section", ADDR "[interfce]\naddress = 1.2.3.4/24\n",
	  "[interfce]: unknown section" },
	{ "unknown key", ADDR "[pools]\nmax_con = 10\n",
	  "[pools] max_con: unknown key (known: max_conns," },
	{ "key in wrong section", ADDR "[tcp]\nmax_conns = 10\n",
	  "[tcp] max_conns: unknown key" },
	{ "duplicate key", ADDR "address = 10.0.0.2/24\n",
	  "line 3: [interface] address: key appears twice" },
	{ "duplicate section", ADDR "[interface]\ngateway = 10.0.0.9\n",
	  "line 3: section [interface] appears twice" },
	{ "line without =", ADDR "echo yes\n",
	  "line 3: expected \"key = value\" or \"[section]\", got \"echo "
	  "yes\"" },
	{ "key outside section", "echo = yes\n" ADDR,
	  "line 1: \"echo\" is outside any [section]" },
	{ "empty value", ADDR "[services]\necho =\n",
	  "line 4: [services] echo: empty value" },
	{ "unterminated section", ADDR "[services\n",
	  "line 3: bad section header" },
	{ "bool garbage", ADDR "[services]\necho = maybe\n",
	  "[services] echo: \"maybe\" is not yes or no" },
	{ "uint zero", ADDR "[pools]\nmax_conns = 0\n",
	  "[pools] max_conns: \"0\" is not an integer in 1..4000000" },
	{ "uint suffix", ADDR "[pools]\nrcvbuf = 64k\n",
	  "[pools] rcvbuf: \"64k\" is not an integer in" },
	{ "uint negative", ADDR "[reactor]\nidle_spins = -1\n",
	  "[reactor] idle_spins: \"-1\" is not an integer" },
	{ "uint huge", ADDR "[tcp]\nmsl_ms = 99999999999999999999999\n",
	  "[tcp] msl_ms: \"99999999999999999999999\" is not an integer" },
	{ "tcp retries zero", ADDR "[tcp]\nsyn_retries = 0\n",
	  "[tcp] syn_retries: \"0\" is not an integer in 1..30" },
	{ "mbufs too few", ADDR "[pools]\nmbufs = 100\n",
	  "[pools] mbufs: \"100\" is not an integer in 1023..1048576" },
	{ "io list dangling range", ADDR "[lcores]\nio = 1-\n",
	  "[lcores] io: \"1-\" is not a list of numbers" },
	{ "io list reversed range", ADDR "[lcores]\nio = 3-1\n",
	  "[lcores] io: \"3-1\" is not a list of numbers" },
	{ "io list duplicate", ADDR "[lcores]\nio = 1,2,1\n",
	  "[lcores] io: \"1,2,1\" lists 1 twice" },
	{ "io is main", ADDR "[lcores]\nmain = 1\nio = 1\n",
	  "[lcores] io: lcore 1 is also the main lcore" },
	{ "main garbage", ADDR "[lcores]\nmain = zero\n",
	  "[lcores] main: \"zero\" is not an integer in 0..1023" },
	{ "worker is io", ADDR "[lcores]\nio = 1\nworkers = 1\n",
	  "[lcores] workers: lcore 1 is also the main or an io lcore" },
	{ "cpu map without cpu", ADDR "[lcores]\nworkers = 2\ncpu_map = 2\n",
	  "[lcores] cpu_map: \"2\" is not a list of LCORE@CPU" },
	{ "cpu map trailing comma", ADDR "[lcores]\nworkers = 2\n"
	  "cpu_map = 2@1,\n",
	  "[lcores] cpu_map: \"2@1,\" is not a list of LCORE@CPU" },
	{ "cpu map range", ADDR "[lcores]\nworkers = 2\ncpu_map = 2-3@1\n",
	  "[lcores] cpu_map: \"2-3@1\" is not a list of LCORE@CPU" },
	{ "cpu map cpu too big", ADDR "[lcores]\nworkers = 2\n"
	  "cpu_map = 2@1024\n",
	  "[lcores] cpu_map: \"2@1024\" is not a list of LCORE@CPU" },
	{ "cpu map unknown lcore", ADDR "[lcores]\nworkers = 2\n"
	  "cpu_map = 3@1\n",
	  "[lcores] cpu_map: lcore 3 is not the main, an io or a worker "
	  "lcore" },
	{ "cpu map twice", ADDR "[lcores]\nworkers = 2, 3\n"
	  "cpu_map = 2@1, 3@1, 2@0\n",
	  "[lcores] cpu_map: \"2@1, 3@1, 2@0\" maps lcore 2 twice" },
	{ "huge garbage", ADDR "[eal]\nhuge = sometimes\n",
	  "[eal] huge: \"sometimes\" is not one of: auto, yes, no" },
	{ "file prefix path", ADDR "[eal]\nfile_prefix = ../x\n",
	  "[eal] file_prefix: \"../x\" may only hold" },
	{ "socket mem garbage", ADDR "[eal]\nsocket_mem = 1G\n",
	  "[eal] socket_mem: \"1G\" is not a list of megabytes" },
	{ "socket mem without huge", ADDR "[eal]\nhuge = no\nsocket_mem = 1024\n",
	  "[eal] socket_mem: needs hugepages" },
	{ "socket mem and memory", ADDR "[eal]\nmemory_mb = 512\n"
	  "socket_mem = 1024\n", "use either memory_mb or socket_mem" },
	{ "idle sleep too long", ADDR "[reactor]\nidle_sleep_us_max = 5000000\n",
	  "[reactor] idle_sleep_us_max: \"5000000\" is not an integer in "
	  "0..1000000" },
	/* [ldap] */
	{ "ldap without uris", ADDR LDAP_ON "base = dc=x\n",
	  "[ldap] uris: needed when enabled" },
	{ "ldap without base", ADDR LDAP_ON "uris = ldap://h\n",
	  "[ldap] base: needed when enabled" },
	{ "ldap uri scheme", ADDR LDAP_ON "uris = ldap://a http://b\n"
	  "base = dc=x\n",
	  "[ldap] uris: \"http://b\" is not an ldap://HOST[:PORT] or "
	  "ldaps://HOST[:PORT] URI" },
	{ "ldap uri empty host", ADDR LDAP_ON "uris = ldaps://\nbase = dc=x\n",
	  "[ldap] uris: \"ldaps://\" is not an ldap://" },
	{ "ldap too many uris", ADDR LDAP_ON "uris = ldap://1 ldap://2 ldap://3 "
	  "ldap://4 ldap://5 ldap://6 ldap://7 ldap://8 ldap://9\n"
	  "base = dc=x\n", "[ldap] uris: at most 8 URIs" },
	{ "ldap bind dn without password file", ADDR LDAP_OK
	  "bind_dn = cn=sluice,dc=x\n",
	  "[ldap] bind_password_file: needed with bind_dn" },
	{ "ldap password file relative", ADDR LDAP_OK
	  "bind_dn = cn=sluice,dc=x\nbind_password_file = pw.txt\n",
	  "[ldap] bind_password_file: \"pw.txt\" is not an absolute path" },
	{ "ldap filter without parentheses", ADDR LDAP_OK
	  "recipient_filter = mail=%s\n",
	  "[ldap] recipient_filter: \"mail=%s\" is not a filter in "
	  "parentheses" },
	{ "ldap filter unbalanced", ADDR LDAP_OK
	  "recipient_filter = (|(mail=%s)(uid=%u)\n",
	  "[ldap] recipient_filter: \"(|(mail=%s)(uid=%u)\" has unbalanced "
	  "parentheses" },
	{ "ldap filter two filters", ADDR LDAP_OK
	  "recipient_filter = (mail=%s)(uid=%u)\n",
	  "holds text outside its parentheses" },
	{ "ldap filter no placeholder", ADDR LDAP_OK
	  "recipient_filter = (mail=x@y)\n",
	  "has no %s, %u or %d for the name looked up" },
	{ "ldap filter bad escape", ADDR LDAP_OK
	  "auth_filter = (uid=%x)\n",
	  "[ldap] auth_filter: \"(uid=%x)\" has a '%' not followed by s, u, "
	  "d or %" },
	{ "ldap attribute garbage", ADDR LDAP_OK
	  "route_attribute = mail host\n",
	  "[ldap] route_attribute: \"mail host\" is not an attribute name" },
	{ "ldap attribute dash first", ADDR LDAP_OK
	  "forward_attribute = -x\n",
	  "[ldap] forward_attribute: \"-x\" is not an attribute name" },
	{ "ldap domains garbage", ADDR LDAP_OK "domains = a.test;b.test\n",
	  "[ldap] domains: \"a.test;b.test\" is not a list of domains" },
	{ "ldap timeout too small", ADDR LDAP_OK "timeout_ms = 5\n",
	  "[ldap] timeout_ms: \"5\" is not an integer in 10..60000" },
	{ "ldap starttls over ldaps", ADDR "[ldap]\nenabled = yes\n"
	  "uris = ldap://a ldaps://b\nbase = dc=x\nstarttls = yes\n",
	  "[ldap] starttls: ldaps://b already speaks TLS" },
	{ "ldap ca relative", ADDR LDAP_OK "tls_ca_file = ca.pem\n",
	  "[ldap] tls_ca_file: \"ca.pem\" is not an absolute path" },
	{ "ldap unknown key", ADDR LDAP_OK "filter = (mail=%s)\n",
	  "[ldap] filter: unknown key (known: enabled, uris," },
};

/* run_bad - one case: refused, message starts with the file name */
static void run_bad(const struct cfg_case *tc)
{
	char path[64];
	char err[1024] = "";
	struct cfg c;
	int rc;

	dp_test_file(path, sizeof(path), tc->text);
	rc = cfg_load(path, "/nonexistent", &c, err, sizeof(err));
	unlink(path);
	if (rc != -1 || strncmp(err, path, strlen(path)) != 0 ||
	    !strstr(err, tc->err)) {
		print_error("case \"%s\": rc %d\n  got:  %s\n  want: ...%s...\n",
			    tc->name, rc, err, tc->err);
		fail();
	}
}

static void test_bad_configs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		run_bad(&bad_cases[i]);
}

static void test_exact_message(void **state)
{
	char path[64], err[1024], want[1024];
	struct cfg c;

	(void)state;
	dp_test_file(path, sizeof(path),
		     "[interface]\naddress = 10.0.0.300/24\n");
	assert_int_equal(cfg_load(path, "/x", &c, err, sizeof(err)), -1);
	unlink(path);
	snprintf(want, sizeof(want), "%s: [interface] address: "
		 "\"10.0.0.300/24\" is not an IPv4 address/prefix", path);
	assert_string_equal(err, want);
}

static void test_missing_file(void **state)
{
	char err[1024];
	struct cfg c;

	(void)state;
	assert_int_equal(cfg_load("/nonexistent/sluice.conf", "/x", &c, err,
				  sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/sluice.conf: cannot open: "
			    "No such file or directory");
}

static void test_minimal_defaults(void **state)
{
	char path[64], err[1024];
	struct cfg c;

	(void)state;
	dp_test_file(path, sizeof(path), ADDR);
	assert_int_equal(cfg_load(path, "/opt/profiles", &c, err,
				  sizeof(err)), 0);
	unlink(path);
	assert_int_equal(c.ip, 0x0a000001);
	assert_int_equal(c.prefix_len, 24);
	assert_int_equal(c.gateway, 0);
	assert_false(c.mac_set);
	assert_string_equal(c.nic_profile, "tap");
	assert_string_equal(c.profile_path, "/opt/profiles/tap.conf");
	assert_string_equal(c.file_prefix, "sluice");
	assert_int_equal(c.huge, CFG_HUGE_AUTO);
	assert_true(c.telemetry);
	assert_int_equal(c.main_lcore, 0);
	assert_int_equal(c.n_io, 1);
	assert_int_equal(c.io_lcores[0], 1);
	assert_false(c.svc_echo);
	assert_false(c.svc_discard);
	assert_int_equal(c.mbufs, 0);
	assert_int_equal(c.idle_spins, 256);
	assert_int_equal(c.idle_sleep_us_max, 200);
	assert_int_equal(c.stats_interval_s, 60);
}

static void test_full_config(void **state)
{
	char path[64], err[1024];
	struct cfg c;
	struct net_config nc;

	(void)state;
	dp_test_file(path, sizeof(path),
		"# a comment\n"
		"[sluice]\n nic_profile = ixgbe   # trailing comment\n"
		"profile_dir = /etc/sluice/nic-profiles\n"
		"[eal]\nfile_prefix = edge-1\nhuge = yes\nsocket_mem = 1024,0\n"
		"log_level = pmd.net.tap:debug\ntelemetry = no\n"
		"[lcores]\nmain = 0\nio = 2-4, 7\n"
		"[interface]\naddress = 192.0.2.10/25\ngateway = 192.0.2.1\n"
		"mac = 02:AA:bb:cc:dd:0e\n"
		"[pools]\nmax_conns = 100000\nrcvbuf = 16384\nsndbuf = 32768\n"
		"mbufs = 65535\n"
		"[tcp]\ndelack_ms = 10\nrto_min_ms = 50\n"
		"[services]\necho = on\ndiscard = TRUE\n"
		"[reactor]\nidle_spins = 0\nidle_sleep_us_max = 0\n"
		"[control]\nstats_interval_s = 0\n");
	assert_int_equal(cfg_load(path, "/x", &c, err, sizeof(err)), 0);
	unlink(path);
	assert_string_equal(c.profile_path,
			    "/etc/sluice/nic-profiles/ixgbe.conf");
	assert_string_equal(c.file_prefix, "edge-1");
	assert_int_equal(c.huge, CFG_HUGE_YES);
	assert_string_equal(c.socket_mem, "1024,0");
	assert_string_equal(c.log_level, "pmd.net.tap:debug");
	assert_false(c.telemetry);
	assert_int_equal(c.n_io, 4);
	assert_int_equal(c.io_lcores[0], 2);
	assert_int_equal(c.io_lcores[2], 4);
	assert_int_equal(c.io_lcores[3], 7);
	assert_int_equal(c.ip, 0xc000020a);
	assert_int_equal(c.prefix_len, 25);
	assert_int_equal(c.gateway, 0xc0000201);
	assert_true(c.mac_set);
	assert_int_equal(c.mac[1], 0xaa);
	assert_int_equal(c.mac[5], 0x0e);
	assert_int_equal(c.mbufs, 65535);
	assert_true(c.svc_echo);
	assert_true(c.svc_discard);
	assert_int_equal(c.idle_sleep_us_max, 0);

	/* [pools]/[tcp] land in net_config; absent keys keep defaults */
	net_config_defaults(&nc);
	uint32_t msl = nc.msl_ms;
	assert_int_equal(cfg_net_apply(&c, &nc, err, sizeof(err)), 0);
	assert_int_equal(nc.max_conns, 100000);
	assert_int_equal(nc.rcvbuf, 16384);
	assert_int_equal(nc.sndbuf, 32768);
	assert_int_equal(nc.delack_ms, 10);
	assert_int_equal(nc.rto_min_ms, 50);
	assert_int_equal(nc.msl_ms, msl);
	assert_int_equal(nc.ip, 0xc000020a);
	assert_int_equal(nc.gateway, 0xc0000201);
	assert_int_equal(nc.mac[1], 0xaa);
}

/* [lcores] workers on their own lcores, mapped onto shared CPUs */
static void test_workers_cpu_map(void **state)
{
	char path[64], err[1024];
	struct cfg c;

	(void)state;
	dp_test_file(path, sizeof(path), ADDR
		"[lcores]\nmain = 0\nio = 1\nworkers = 2-3\n"
		"cpu_map = 2@1 ,3@0\n");
	assert_int_equal(cfg_load(path, "/x", &c, err, sizeof(err)), 0);
	unlink(path);
	assert_int_equal(c.n_workers, 2);
	assert_int_equal(c.worker_lcores[0], 2);
	assert_int_equal(c.worker_lcores[1], 3);
	assert_int_equal(c.n_cpu_map, 2);
	assert_int_equal(cfg_lcore_cpu(&c, 0), 0);
	assert_int_equal(cfg_lcore_cpu(&c, 1), 1);
	assert_int_equal(cfg_lcore_cpu(&c, 2), 1);
	assert_int_equal(cfg_lcore_cpu(&c, 3), 0);
	/* no map: every lcore on the CPU of its number */
	dp_test_file(path, sizeof(path), ADDR "[lcores]\nworkers = 2\n");
	assert_int_equal(cfg_load(path, "/x", &c, err, sizeof(err)), 0);
	unlink(path);
	assert_int_equal(c.n_cpu_map, 0);
	assert_int_equal(cfg_lcore_cpu(&c, 2), 2);
}

static void test_ldap_defaults_and_values(void **state)
{
	char path[64], err[1024];
	struct cfg c;

	(void)state;
	dp_test_file(path, sizeof(path), ADDR);
	assert_int_equal(cfg_load(path, "/x", &c, err, sizeof(err)), 0);
	unlink(path);
	assert_false(c.ldap.enabled);
	assert_int_equal(c.ldap.n_uris, 0);
	assert_string_equal(c.ldap.recipient_filter,
			    "(|(mail=%s)(mailAlternateAddress=%s))");
	assert_string_equal(c.ldap.auth_filter, "");
	assert_string_equal(c.ldap.route_attr, "mailHost");
	assert_string_equal(c.ldap.forward_attr, "mailForwardingAddress");
	assert_int_equal(c.ldap.timeout_ms, 3000);
	assert_int_equal(c.ldap.cache_ttl_s, 300);
	assert_int_equal(c.ldap.negative_ttl_s, 60);
	assert_int_equal(c.ldap.stale_max_s, 86400);
	assert_int_equal(c.ldap.retry_s, 5);
	assert_false(c.ldap.starttls);

	/* disabled: incomplete settings are kept but not required */
	dp_test_file(path, sizeof(path), ADDR "[ldap]\nbase = dc=x\n");
	assert_int_equal(cfg_load(path, "/x", &c, err, sizeof(err)), 0);
	unlink(path);

	dp_test_file(path, sizeof(path), ADDR
		"[ldap]\nenabled = yes\n"
		"uris = ldap://ldap1.example:389  ldap://ldap2.example\n"
		"bind_dn = cn=sluice,ou=services,dc=example,dc=com\n"
		"bind_password_file = /etc/sluice/ldap.pw\n"
		"base = ou=people,dc=example,dc=com\n"
		"recipient_filter = (&(objectClass=inetOrgPerson)(mail=%s))\n"
		"auth_filter = (|(uid=%u)(mail=%s))\n"
		"route_attribute = mailRoutingAddress\n"
		"forward_attribute =\n"
		"domains = example.com, example.org\n"
		"timeout_ms = 500\ncache_ttl_s = 0\nnegative_ttl_s = 10\n"
		"stale_max_s = 3600\nretry_s = 30\nstarttls = yes\n"
		"tls_ca_file = /etc/ssl/ldap-ca.pem\n");
	assert_int_equal(cfg_load(path, "/x", &c, err, sizeof(err)), -1);
	/* an empty value is refused like everywhere else */
	assert_non_null(strstr(err, "[ldap] forward_attribute: empty value"));
	unlink(path);

	dp_test_file(path, sizeof(path), ADDR
		"[ldap]\nenabled = yes\n"
		"uris = ldap://ldap1.example:389  ldap://ldap2.example\n"
		"bind_dn = cn=sluice,ou=services,dc=example,dc=com\n"
		"bind_password_file = /etc/sluice/ldap.pw\n"
		"base = ou=people,dc=example,dc=com\n"
		"recipient_filter = (&(objectClass=inetOrgPerson)(mail=%s))\n"
		"auth_filter = (|(uid=%u)(mail=%s))\n"
		"route_attribute = mailRoutingAddress\n"
		"forward_attribute = none\n"
		"domains = example.com, example.org\n"
		"timeout_ms = 500\ncache_ttl_s = 0\nnegative_ttl_s = 10\n"
		"stale_max_s = 3600\nretry_s = 30\nstarttls = yes\n"
		"tls_ca_file = /etc/ssl/ldap-ca.pem\n");
	assert_int_equal(cfg_load(path, "/x", &c, err, sizeof(err)), 0);
	unlink(path);
	assert_true(c.ldap.enabled);
	assert_int_equal(c.ldap.n_uris, 2);
	assert_string_equal(c.ldap.uris[0], "ldap://ldap1.example:389");
	assert_string_equal(c.ldap.uris[1], "ldap://ldap2.example");
	assert_string_equal(c.ldap.bind_dn,
			    "cn=sluice,ou=services,dc=example,dc=com");
	assert_string_equal(c.ldap.bind_password_file, "/etc/sluice/ldap.pw");
	assert_string_equal(c.ldap.base, "ou=people,dc=example,dc=com");
	assert_string_equal(c.ldap.recipient_filter,
			    "(&(objectClass=inetOrgPerson)(mail=%s))");
	assert_string_equal(c.ldap.auth_filter, "(|(uid=%u)(mail=%s))");
	assert_string_equal(c.ldap.route_attr, "mailRoutingAddress");
	assert_string_equal(c.ldap.forward_attr, "");
	assert_string_equal(c.ldap.domains, "example.com, example.org");
	assert_int_equal(c.ldap.timeout_ms, 500);
	assert_int_equal(c.ldap.cache_ttl_s, 0);
	assert_int_equal(c.ldap.negative_ttl_s, 10);
	assert_int_equal(c.ldap.stale_max_s, 3600);
	assert_int_equal(c.ldap.retry_s, 30);
	assert_true(c.ldap.starttls);
	assert_string_equal(c.ldap.tls_ca_file, "/etc/ssl/ldap-ca.pem");
}

static void test_net_apply_contradictions(void **state)
{
	static const struct cfg_case cases[] = {
		{ "rto_min above rto_max", ADDR "[tcp]\nrto_min_ms = 5000\n"
		  "rto_max_ms = 1000\n", "[tcp] rto_init_ms: need rto_min_ms" },
		{ "rto_init below min", ADDR "[tcp]\nrto_min_ms = 500\n"
		  "rto_init_ms = 100\n", "rto_init_ms (100)" },
		{ "low water above pool", ADDR "[pools]\nmax_conns = 10\n"
		  "conn_low_water = 10\n",
		  "[pools] conn_low_water: 10 must be below max_conns (10)" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[64], err[1024] = "";
		struct cfg c;
		struct net_config nc;

		dp_test_file(path, sizeof(path), cases[i].text);
		assert_int_equal(cfg_load(path, "/x", &c, err, sizeof(err)), 0);
		unlink(path);
		net_config_defaults(&nc);
		if (cfg_net_apply(&c, &nc, err, sizeof(err)) != -1 ||
		    !strstr(err, cases[i].err)) {
			print_error("case \"%s\": got \"%s\"\n", cases[i].name,
				    err);
			fail();
		}
	}
}

static void test_profile_paths(void **state)
{
	static const struct { const char *line, *want_suffix; } cases[] = {
		{ "nic_profile = af_packet\n", "/p/af_packet.conf" },
		{ "nic_profile = /abs/my.conf\n", "/abs/my.conf" },
		{ "nic_profile = mine.conf\n", "/tmp/mine.conf" },
		{ "nic_profile = sub/x.conf\n", "/tmp/sub/x.conf" },
		{ "nic_profile = tap\nprofile_dir = profiles\n",
		  "/tmp/profiles/tap.conf" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char path[64], text[256], err[1024];
		struct cfg c;

		snprintf(text, sizeof(text), "[sluice]\n%s" ADDR,
			 cases[i].line);
		dp_test_file(path, sizeof(path), text);
		assert_int_equal(cfg_load(path, "/p", &c, err, sizeof(err)), 0);
		unlink(path);
		assert_string_equal(c.profile_path, cases[i].want_suffix);
	}
}

static void test_shipped_lab_config(void **state)
{
	char err[1024];
	struct cfg c;

	(void)state;
	if (cfg_load(SRC_ROOT "/tests/lab.conf", SRC_ROOT "/nic-profiles", &c,
		     err, sizeof(err)) != 0) {
		print_error("%s\n", err);
		fail();
	}
	assert_string_equal(c.file_prefix, "sluice-lab");
	assert_int_equal(c.ip, 0xc6120001);   /* 198.18.0.1 */
	assert_true(c.svc_echo);
	assert_true(c.svc_discard);
	assert_string_equal(c.profile_path, SRC_ROOT "/nic-profiles/tap.conf");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_configs),
		cmocka_unit_test(test_exact_message),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_workers_cpu_map),
		cmocka_unit_test(test_ldap_defaults_and_values),
		cmocka_unit_test(test_net_apply_contradictions),
		cmocka_unit_test(test_profile_paths),
		cmocka_unit_test(test_shipped_lab_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
