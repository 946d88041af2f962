/*
 * eal.h - build the EAL command line from sluice.conf and the NIC profile.
 *
 *   -l MAIN,IO...,WORKERS...  --main-lcore MAIN  --file-prefix P
 *     (with [lcores] cpu_map: --lcores L@CPU,... for every lcore, so
 *     lcores can share a CPU, e.g. "0@0,1@1,2@1" on a 2-CPU machine)
 *   --no-huge -m N (no hugepages)  |  -m N or --socket-mem L (hugepages;
 *     --huge-unlink too unless [eal] pdump = yes, the default)
 *   --vdev ARGS --no-pci (virtual device)  |  -a PCI ... (allowlist)
 *   --log-level L  --no-telemetry   then the operator's passthrough args
 *
 * eal_args_build is pure (no EAL, no file access) so tests check it;
 * eal_hugepages_free reads /proc to decide [eal] huge = auto.
 */
#ifndef SLUICE_EAL_H
#define SLUICE_EAL_H

#include <stdbool.h>
#include <stddef.h>

struct cfg;
struct nicprof;

#define EAL_ARGS_MAX 64
#define EAL_NO_HUGE_MB 256   /* -m when running without hugepages */

struct eal_args {
	int argc;
	char *argv[EAL_ARGS_MAX + 1];
	char buf[4096];
	size_t used;
	bool no_huge;            /* decision taken */
};

/* eal_args_build - 0, or -1 with err (too many/too long arguments, or
 * huge = yes while none are free). force_no_huge: --no-huge on our
 * command line; huge_free: hugepages available (eal_hugepages_free). */
int eal_args_build(const struct cfg *c, const struct nicprof *p,
		   bool force_no_huge, bool huge_free, int pass_argc,
		   char *const *pass_argv, struct eal_args *out, char *err,
		   size_t errlen);

/* eal_hugepages_free - free hugepages exist and hugetlbfs is mounted */
bool eal_hugepages_free(void);

/* eal_args_str - the argument list as one line for logging */
void eal_args_str(const struct eal_args *a, char *buf, size_t len);

#endif
