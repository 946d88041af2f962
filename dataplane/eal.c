/*
 * eal.c - EAL command line from config and profile (see eal.h).
 *
 * Input: struct cfg, struct nicprof, the hugepage decision inputs and any
 * passthrough arguments. Output: an argv for rte_eal_init whose strings
 * live in the struct itself. Invariant: argv[argc] == NULL.
 */
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "eal.h"
#include "nicprof.h"

/* eal_push - append one argument; -1 when out of room */
static int eal_push(struct eal_args *a, const char *s)
{
	size_t n = strlen(s) + 1;

	if (a->argc >= EAL_ARGS_MAX || a->used + n > sizeof(a->buf))
		return -1;
	memcpy(a->buf + a->used, s, n);
	a->argv[a->argc++] = a->buf + a->used;
	a->argv[a->argc] = NULL;
	a->used += n;
	return 0;
}

/* eal_pushu - append one number */
static int eal_pushu(struct eal_args *a, unsigned x)
{
	char tmp[16];

	snprintf(tmp, sizeof(tmp), "%u", x);
	return eal_push(a, tmp);
}

/* eal_lcore - append one lcore to the -l list, or as LCORE@CPU to the
 * --lcores list when [lcores] cpu_map is set; returns the new length
 * (>= len when it did not fit) */
static size_t eal_lcore(const struct cfg *c, char *buf, size_t len,
			size_t off, unsigned lcore)
{
	if (off >= len)
		return off;
	if (c->n_cpu_map)
		off += (size_t)snprintf(buf + off, len - off, "%s%u@%u",
					off ? "," : "", lcore,
					cfg_lcore_cpu(c, lcore));
	else
		off += (size_t)snprintf(buf + off, len - off, "%s%u",
					off ? "," : "", lcore);
	return off;
}

int eal_args_build(const struct cfg *c, const struct nicprof *p,
		   bool force_no_huge, bool huge_free, int pass_argc,
		   char *const *pass_argv, struct eal_args *out, char *err,
		   size_t errlen)
{
	char lcores[512];
	size_t off;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (force_no_huge)
		out->no_huge = true;
	else if (c->huge == CFG_HUGE_NO)
		out->no_huge = true;
	else if (c->huge == CFG_HUGE_YES) {
		if (!huge_free) {
			snprintf(err, errlen, "%s: [eal] huge: yes, but no free "
				 "hugepages are reserved and mounted (see "
				 "/proc/meminfo; or set huge = auto)", c->path);
			return -1;
		}
	} else
		out->no_huge = !huge_free;

	off = eal_lcore(c, lcores, sizeof(lcores), 0, c->main_lcore);
	for (unsigned i = 0; i < c->n_io; i++)
		off = eal_lcore(c, lcores, sizeof(lcores), off,
				c->io_lcores[i]);
	for (unsigned i = 0; i < c->n_workers; i++)
		off = eal_lcore(c, lcores, sizeof(lcores), off,
				c->worker_lcores[i]);

	rc |= eal_push(out, "sluiced");
	rc |= eal_push(out, c->n_cpu_map ? "--lcores" : "-l");
	rc |= off >= sizeof(lcores) ? -1 : eal_push(out, lcores);
	rc |= eal_push(out, "--main-lcore");
	rc |= eal_pushu(out, c->main_lcore);
	rc |= eal_push(out, "--file-prefix");
	rc |= eal_push(out, c->file_prefix);
	if (out->no_huge) {
		rc |= eal_push(out, "--no-huge");
		rc |= eal_push(out, "-m");
		rc |= eal_pushu(out, c->memory_mb ? c->memory_mb
							: EAL_NO_HUGE_MB);
	} else if (!c->pdump) {
		/* hugepage files are unlinked once mapped: none are left
		 * behind, whatever way the process ends, but no secondary
		 * process (dpdk-pdump) can map them. With pdump they stay
		 * while sluiced runs; the next start of the same file_prefix
		 * removes any a kill -9 left. */
		rc |= eal_push(out, "--huge-unlink");
	}
	if (out->no_huge) {
		;
	} else if (c->socket_mem[0]) {
		rc |= eal_push(out, "--socket-mem");
		rc |= eal_push(out, c->socket_mem);
	} else if (c->memory_mb) {
		rc |= eal_push(out, "-m");
		rc |= eal_pushu(out, c->memory_mb);
	}
	if (p->type == NICPROF_VDEV) {
		rc |= eal_push(out, "--no-pci");
		rc |= eal_push(out, "--vdev");
		rc |= eal_push(out, p->vdev);
	} else {
		for (unsigned i = 0; i < p->n_pci; i++) {
			rc |= eal_push(out, "-a");
			rc |= eal_push(out, p->pci[i]);
		}
	}
	if (c->log_level[0]) {
		rc |= eal_push(out, "--log-level");
		rc |= eal_push(out, c->log_level);
	}
	if (!c->telemetry)
		rc |= eal_push(out, "--no-telemetry");
	for (int i = 0; i < pass_argc; i++)
		rc |= eal_push(out, pass_argv[i]);
	if (rc) {
		snprintf(err, errlen, "%s: EAL command line too long (max %d "
			 "arguments)", c->path, EAL_ARGS_MAX);
		return -1;
	}
	return 0;
}

bool eal_hugepages_free(void)
{
	char line[256];
	long free_pages = 0;
	bool mounted = false;
	FILE *fp;

	fp = fopen("/proc/meminfo", "r");
	if (!fp)
		return false;
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "HugePages_Free: %ld", &free_pages) == 1)
			break;
	fclose(fp);
	if (free_pages <= 0)
		return false;
	fp = fopen("/proc/mounts", "r");
	if (!fp)
		return false;
	while (fgets(line, sizeof(line), fp))
		if (strstr(line, " hugetlbfs "))
			mounted = true;
	fclose(fp);
	return mounted;
}

void eal_args_str(const struct eal_args *a, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < a->argc && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
					i ? " " : "", a->argv[i]);
}
