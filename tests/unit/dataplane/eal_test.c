/*
 * eal_test.c - the EAL command line built from config and profile.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cfg.h"
#include "eal.h"
#include "nicprof.h"

static void base(struct cfg *c, struct nicprof *p)
{
	memset(c, 0, sizeof(*c));
	memset(p, 0, sizeof(*p));
	snprintf(c->path, sizeof(c->path), "/etc/sluice/sluice.conf");
	snprintf(c->file_prefix, sizeof(c->file_prefix), "sluice-lab");
	c->main_lcore = 0;
	c->io_lcores[0] = 1;
	c->n_io = 1;
	c->telemetry = true;
	p->type = NICPROF_VDEV;
	snprintf(p->vdev, sizeof(p->vdev), "net_tap0,iface=sl0");
}

static void line(const struct eal_args *a, char *buf, size_t len)
{
	eal_args_str(a, buf, len);
	assert_null(a->argv[a->argc]);
}

static void test_vdev_no_hugepages(void **state)
{
	struct cfg c;
	struct nicprof p;
	struct eal_args a;
	char err[256], l[1024];

	(void)state;
	base(&c, &p);
	assert_int_equal(eal_args_build(&c, &p, false, false, 0, NULL, &a, err,
					sizeof(err)), 0);
	line(&a, l, sizeof(l));
	assert_true(a.no_huge);
	assert_string_equal(l, "sluiced -l 0,1 --main-lcore 0 --file-prefix "
			    "sluice-lab --no-huge -m 256 --no-pci --vdev "
			    "net_tap0,iface=sl0");
}

static void test_hugepages_auto(void **state)
{
	struct cfg c;
	struct nicprof p;
	struct eal_args a;
	char err[256], l[1024];

	(void)state;
	base(&c, &p);
	c.memory_mb = 1024;
	assert_int_equal(eal_args_build(&c, &p, false, true, 0, NULL, &a, err,
					sizeof(err)), 0);
	line(&a, l, sizeof(l));
	assert_false(a.no_huge);
	assert_string_equal(l, "sluiced -l 0,1 --main-lcore 0 --file-prefix "
			    "sluice-lab --huge-unlink -m 1024 --no-pci --vdev "
			    "net_tap0,iface=sl0");
	/* [eal] pdump = yes: the files stay so dpdk-pdump can map them */
	c.pdump = true;
	assert_int_equal(eal_args_build(&c, &p, false, true, 0, NULL, &a, err,
					sizeof(err)), 0);
	line(&a, l, sizeof(l));
	assert_string_equal(l, "sluiced -l 0,1 --main-lcore 0 --file-prefix "
			    "sluice-lab -m 1024 --no-pci --vdev "
			    "net_tap0,iface=sl0");
	c.pdump = false;
	/* --no-huge on our command line wins over free hugepages */
	assert_int_equal(eal_args_build(&c, &p, true, true, 0, NULL, &a, err,
					sizeof(err)), 0);
	line(&a, l, sizeof(l));
	assert_true(a.no_huge);
	assert_non_null(strstr(l, "--no-huge -m 1024"));
	/* huge = no likewise */
	c.huge = CFG_HUGE_NO;
	assert_int_equal(eal_args_build(&c, &p, false, true, 0, NULL, &a, err,
					sizeof(err)), 0);
	assert_true(a.no_huge);
}

static void test_huge_yes_without_pages(void **state)
{
	struct cfg c;
	struct nicprof p;
	struct eal_args a;
	char err[256];

	(void)state;
	base(&c, &p);
	c.huge = CFG_HUGE_YES;
	assert_int_equal(eal_args_build(&c, &p, false, false, 0, NULL, &a, err,
					sizeof(err)), -1);
	assert_non_null(strstr(err, "/etc/sluice/sluice.conf: [eal] huge: yes, "
			       "but no free hugepages"));
}

static void test_pci_many_lcores_and_passthrough(void **state)
{
	struct cfg c;
	struct nicprof p;
	struct eal_args a;
	char err[256], l[1024];
	char *pass[] = { "--log-level", "pmd.net:debug" };

	(void)state;
	base(&c, &p);
	c.main_lcore = 2;
	c.io_lcores[0] = 4;
	c.io_lcores[1] = 5;
	c.n_io = 2;
	snprintf(c.socket_mem, sizeof(c.socket_mem), "1024,1024");
	snprintf(c.log_level, sizeof(c.log_level), "7");
	c.telemetry = false;
	p.type = NICPROF_PCI;
	snprintf(p.pci[0], sizeof(p.pci[0]), "0000:03:00.0");
	snprintf(p.pci[1], sizeof(p.pci[1]), "0000:03:00.1");
	p.n_pci = 2;
	assert_int_equal(eal_args_build(&c, &p, false, true, 2, pass, &a, err,
					sizeof(err)), 0);
	line(&a, l, sizeof(l));
	assert_string_equal(l, "sluiced -l 2,4,5 --main-lcore 2 --file-prefix "
			    "sluice-lab --huge-unlink --socket-mem 1024,1024 -a "
			    "0000:03:00.0 -a 0000:03:00.1 --log-level 7 "
			    "--no-telemetry --log-level pmd.net:debug");
}

/* workers on their own lcores: -l lists them; with [lcores] cpu_map the
 * list becomes --lcores LCORE@CPU for every lcore (2-CPU machine: the
 * worker lcore 2 shares CPU 1 with the io lcore) */
static void test_worker_lcores_and_cpu_map(void **state)
{
	struct cfg c;
	struct nicprof p;
	struct eal_args a;
	char err[256], l[1024];

	(void)state;
	base(&c, &p);
	c.worker_lcores[0] = 2;
	c.n_workers = 1;
	assert_int_equal(eal_args_build(&c, &p, false, false, 0, NULL, &a, err,
					sizeof(err)), 0);
	line(&a, l, sizeof(l));
	assert_string_equal(l, "sluiced -l 0,1,2 --main-lcore 0 --file-prefix "
			    "sluice-lab --no-huge -m 256 --no-pci --vdev "
			    "net_tap0,iface=sl0");
	c.cpu_map_lcore[0] = 2;
	c.cpu_map_cpu[0] = 1;
	c.n_cpu_map = 1;
	assert_int_equal(eal_args_build(&c, &p, false, false, 0, NULL, &a, err,
					sizeof(err)), 0);
	line(&a, l, sizeof(l));
	assert_string_equal(l, "sluiced --lcores 0@0,1@1,2@1 --main-lcore 0 "
			    "--file-prefix sluice-lab --no-huge -m 256 "
			    "--no-pci --vdev net_tap0,iface=sl0");
	/* several io and worker lcores, two of them mapped */
	c.main_lcore = 4;
	c.io_lcores[0] = 5;
	c.io_lcores[1] = 6;
	c.n_io = 2;
	c.worker_lcores[0] = 8;
	c.worker_lcores[1] = 9;
	c.n_workers = 2;
	c.cpu_map_lcore[0] = 9;
	c.cpu_map_cpu[0] = 3;
	c.cpu_map_lcore[1] = 4;
	c.cpu_map_cpu[1] = 0;
	c.n_cpu_map = 2;
	assert_int_equal(eal_args_build(&c, &p, false, false, 0, NULL, &a, err,
					sizeof(err)), 0);
	line(&a, l, sizeof(l));
	assert_non_null(strstr(l, "sluiced --lcores 4@0,5@5,6@6,8@8,9@3 "
			       "--main-lcore 4 "));
}

static void test_too_many_arguments(void **state)
{
	struct cfg c;
	struct nicprof p;
	struct eal_args a;
	char err[256];
	char *pass[EAL_ARGS_MAX];

	(void)state;
	base(&c, &p);
	for (int i = 0; i < EAL_ARGS_MAX; i++)
		pass[i] = "-v";
	assert_int_equal(eal_args_build(&c, &p, false, false, EAL_ARGS_MAX,
					pass, &a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "EAL command line too long"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vdev_no_hugepages),
		cmocka_unit_test(test_hugepages_auto),
		cmocka_unit_test(test_huge_yes_without_pages),
		cmocka_unit_test(test_pci_many_lcores_and_passthrough),
		cmocka_unit_test(test_worker_lcores_and_cpu_map),
		cmocka_unit_test(test_too_many_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
