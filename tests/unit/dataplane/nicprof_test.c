/*
 * nicprof_test.c - NIC profile reader: every shipped profile is valid and
 * means what its comments say; each kind of bad profile is refused with a
 * message naming file, section, key and reason.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dp_test.h"
#include "nicprof.h"

#define DEV "[device]\ntype = vdev\nvdev = net_tap0,iface=x\n"

struct prof_case {
	const char *name;
	const char *text;
	const char *err;
};

static const struct prof_case bad_cases[] = {
	{ "type unknown", "[device]\ntype = usb\n",
	  "[device] type: \"usb\" is not one of: vdev, pci" },
	{ "vdev missing", "[device]\ntype = vdev\n",
	  "[device] vdev: missing (required with type = vdev" },
	{ "vdev not net", "[device]\nvdev = crypto_null\n",
	  "[device] vdev: \"crypto_null\" does not name a net_* driver" },
	{ "pci with vdev", DEV "pci = 0000:03:00.0\n",
	  "[device] pci: not allowed with type = vdev" },
	{ "pci missing", "[device]\ntype = pci\n",
	  "[device] pci: missing (required with type = pci)" },
	{ "pci garbage", "[device]\ntype = pci\npci = eth0\n",
	  "[device] pci: \"eth0\" is not a PCI address" },
	{ "rx zero", DEV "[queues]\nrx = 0\n",
	  "[queues] rx: \"0\" is not \"auto\" or a count in 1..128" },
	{ "rx words", DEV "[queues]\nrx = many\n",
	  "[queues] rx: \"many\" is not \"auto\" or a count" },
	{ "tx differs", DEV "[queues]\nrx = 2\ntx = 1\n",
	  "[queues] tx: must equal rx" },
	{ "desc too few", DEV "[queues]\nrx_desc = 8\n",
	  "[queues] rx_desc: \"8\" is not an integer in 32..32768" },
	{ "rss no fields", DEV "[rss]\nenabled = yes\nipv4 = no\ntcp = no\n",
	  "[rss] enabled: yes but no hash field" },
	{ "rss key short", DEV "[rss]\nkey = 6d5a56da\n",
	  "[rss] key: \"6d5a56da\" is not 40 or 52 hex bytes" },
	{ "rss key not hex", DEV "[rss]\nkey = zz\n",
	  "[rss] key: \"zz\" is not 40 or 52 hex bytes" },
	{ "offload garbage", DEV "[offload]\ntx_tcp_csum = perhaps\n",
	  "[offload] tx_tcp_csum: \"perhaps\" is not yes or no" },
	{ "offload unknown", DEV "[offload]\ntx_udp_csum = yes\n",
	  "[offload] tx_udp_csum: unknown key (known: rx_ip_csum," },
	{ "mtu tiny", DEV "[port]\nmtu = 100\n",
	  "[port] mtu: \"100\" is not an integer in 576..9000" },
	{ "mbufs few", DEV "[mempool]\nmbufs = 10\n",
	  "[mempool] mbufs: \"10\" is not an integer in 1023..1048576" },
	{ "cache big", DEV "[mempool]\nmbufs = 2047\ncache = 512\n",
	  "[mempool] cache: 512 is more than mbufs/4" },
	{ "data room small", DEV "[mempool]\ndata_room = 1024\n",
	  "[mempool] data_room: 1024 is too small for MTU 1500 (need 1646)" },
	{ "unknown section", DEV "[queue]\nrx = 1\n",
	  "[queue]: unknown section" },
};

static void test_bad_profiles(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		char path[64], err[1024] = "";
		struct nicprof p;
		int rc;

		dp_test_file(path, sizeof(path), bad_cases[i].text);
		rc = nicprof_load(path, &p, err, sizeof(err));
		unlink(path);
		if (rc != -1 || strncmp(err, path, strlen(path)) != 0 ||
		    !strstr(err, bad_cases[i].err)) {
			print_error("case \"%s\": rc %d\n  got:  %s\n  want: "
				    "...%s...\n", bad_cases[i].name, rc, err,
				    bad_cases[i].err);
			fail();
		}
	}
}

static void test_defaults(void **state)
{
	char path[64], err[1024];
	struct nicprof p;

	(void)state;
	dp_test_file(path, sizeof(path), DEV);
	assert_int_equal(nicprof_load(path, &p, err, sizeof(err)), 0);
	unlink(path);
	assert_int_equal(p.type, NICPROF_VDEV);
	assert_string_equal(p.vdev, "net_tap0,iface=x");
	assert_int_equal(p.rx_queues, NICPROF_QUEUES_AUTO);
	assert_int_equal(p.rx_desc, 1024);
	assert_true(p.rss);
	assert_int_equal(p.rss_key_len, 0);
	assert_true(p.tx_tcp_csum);
	assert_false(p.tso);
	assert_int_equal(p.mtu, 1500);
	assert_int_equal(p.mbufs, 8191);
	assert_int_equal(p.data_room, 2176);
}

static void test_pci_and_key(void **state)
{
	char path[64], err[1024];
	struct nicprof p;

	(void)state;
	dp_test_file(path, sizeof(path),
		"[device]\ntype = pci\npci = 0000:03:00.0, 04:00.1\n"
		"[queues]\nrx = 4\ntx = 4\n"
		"[rss]\nkey = 6d:5a:56:da:25:5b:0e:c2:41:67:25:3d:43:a3:8f:b0:"
		"d0:ca:2b:cb:ae:7b:30:b4:77:cb:2d:a3:80:30:f2:0c:6a:42:b7:3b:"
		"be:ac:01:fa\n");
	if (nicprof_load(path, &p, err, sizeof(err)) != 0) {
		print_error("%s\n", err);
		fail();
	}
	unlink(path);
	assert_int_equal(p.type, NICPROF_PCI);
	assert_int_equal(p.n_pci, 2);
	assert_string_equal(p.pci[0], "0000:03:00.0");
	assert_string_equal(p.pci[1], "04:00.1");
	assert_int_equal(p.rx_queues, 4);
	assert_int_equal(p.rss_key_len, 40);
	assert_int_equal(p.rss_key[0], 0x6d);
	assert_int_equal(p.rss_key[39], 0xfa);
}

/* every file in nic-profiles/ loads; hardware ones say they are untested */
static void test_shipped_profiles(void **state)
{
	DIR *d = opendir(SRC_ROOT "/nic-profiles");
	struct dirent *e;
	unsigned n = 0;
	bool seen_tap = false;

	(void)state;
	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[512], err[1024], head[4096] = "";
		struct nicprof p;
		FILE *fp;
		size_t len = strlen(e->d_name);

		if (len < 6 || strcmp(e->d_name + len - 5, ".conf") != 0)
			continue;
		snprintf(path, sizeof(path), SRC_ROOT "/nic-profiles/%s",
			 e->d_name);
		if (nicprof_load(path, &p, err, sizeof(err)) != 0) {
			print_error("%s\n", err);
			fail();
		}
		fp = fopen(path, "r");
		assert_non_null(fp);
		(void)!fread(head, 1, sizeof(head) - 1, fp);
		fclose(fp);
		if (p.type == NICPROF_PCI && !strstr(head, "UNTESTED ON HARDWARE")) {
			print_error("%s: hardware template without the "
				    "\"UNTESTED ON HARDWARE\" warning\n", path);
			fail();
		}
		if (strcmp(p.name, "tap") == 0) {
			seen_tap = true;
			assert_string_equal(p.vdev, "net_tap0,iface=sl0");
		}
		n++;
	}
	closedir(d);
	assert_true(seen_tap);
	assert_true(n >= 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_profiles),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_pci_and_key),
		cmocka_unit_test(test_shipped_profiles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
