/*
 * cfg.c - read and validate sluice.conf (see cfg.h for the keys).
 *
 * Input: a path. Output: struct cfg, or one error message that names the
 * file, section, key and reason. [pools]/[tcp] keys are table driven: each
 * maps to a field of struct net_config with its bounds, so adding a stack
 * knob is one line here and one in docs/operations.md.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "cfgval.h"

struct cfg_netopt {
	const char *sec, *key;
	size_t off;               /* of a 32-bit field in struct net_config */
	uint32_t min, max;
};

#define CFG_NO(sec, f, lo, hi) \
	{ sec, #f, offsetof(struct net_config, f), lo, hi }

static const struct cfg_netopt cfg_netopts[CFG_NET_OPTS] = {
	CFG_NO("pools", max_conns, 1, 4000000),
	CFG_NO("pools", rcvbuf, 1024, 64u << 20),
	CFG_NO("pools", sndbuf, 1024, 64u << 20),
	CFG_NO("pools", syn_backlog, 1, 1000000),
	CFG_NO("pools", conn_low_water, 0, 1000000),
	CFG_NO("pools", timewait_max, 0, 4000000),
	CFG_NO("pools", arp_entries, 4, 1000000),
	CFG_NO("pools", arp_pending, 1, 1000000),
	CFG_NO("pools", max_listeners, 1, 65535),
	CFG_NO("tcp", msl_ms, 1, 600000),
	CFG_NO("tcp", fin_wait2_ms, 1, 3600000),
	CFG_NO("tcp", delack_ms, 1, 500),
	CFG_NO("tcp", rto_min_ms, 1, 60000),
	CFG_NO("tcp", rto_max_ms, 100, 600000),
	CFG_NO("tcp", rto_init_ms, 1, 60000),
	CFG_NO("tcp", syn_retries, 1, 30),
	CFG_NO("tcp", data_retries, 1, 60),
	CFG_NO("tcp", arp_timeout_ms, 1000, 86400000),
	/* not a net_config field: handled separately, kept for the schema */
	{ "pools", "mbufs", 0, 1023, 1u << 20 },
};
#define CFG_NETOPT_MBUFS (CFG_NET_OPTS - 1)

_Static_assert(sizeof(((struct net_config *)0)->max_conns) == 4 &&
	       sizeof(((struct net_config *)0)->msl_ms) == 4,
	       "cfg_netopts assumes 32-bit net_config fields");

static const char *const cfg_sluice_keys[] = { "nic_profile", "profile_dir",
					       NULL };
static const char *const cfg_eal_keys[] = { "file_prefix", "huge",
	"memory_mb", "socket_mem", "log_level", "telemetry", NULL };
static const char *const cfg_lcore_keys[] = { "main", "io", NULL };
static const char *const cfg_if_keys[] = { "address", "gateway", "mac",
					   NULL };
static const char *const cfg_pool_keys[] = { "max_conns", "rcvbuf",
	"sndbuf", "syn_backlog", "conn_low_water", "timewait_max",
	"arp_entries", "arp_pending", "max_listeners", "mbufs", NULL };
static const char *const cfg_tcp_keys[] = { "msl_ms", "fin_wait2_ms",
	"delack_ms", "rto_min_ms", "rto_max_ms", "rto_init_ms", "syn_retries",
	"data_retries", "arp_timeout_ms", NULL };
static const char *const cfg_svc_keys[] = { "echo", "discard", NULL };
static const char *const cfg_reactor_keys[] = { "idle_spins",
						"idle_sleep_us_max", NULL };
static const char *const cfg_control_keys[] = { "stats_interval_s", NULL };

static const struct cfgval_section cfg_schema[] = {
	{ "sluice", cfg_sluice_keys },
	{ "eal", cfg_eal_keys },
	{ "lcores", cfg_lcore_keys },
	{ "interface", cfg_if_keys },
	{ "pools", cfg_pool_keys },
	{ "tcp", cfg_tcp_keys },
	{ "services", cfg_svc_keys },
	{ "reactor", cfg_reactor_keys },
	{ "control", cfg_control_keys },
	{ NULL, NULL },
};

/* cfg_sluice - [sluice]: profile name or path, resolved to a file path.
 * A bare name (no '/', no ".conf") is profile_dir/NAME.conf; anything else
 * is a path. Relative paths are relative to the config file's directory. */
static void cfg_sluice(struct cfgval *v, struct cfg *c,
		       const char *default_dir)
{
	char dir[256], pdir[512];
	const char *slash = strrchr(c->path, '/');
	const char *prof = c->nic_profile;
	size_t n;
	int w;

	cfgval_str(v, "sluice", "nic_profile", "tap", c->nic_profile,
		   sizeof(c->nic_profile));
	cfgval_str(v, "sluice", "profile_dir", default_dir, c->profile_dir,
		   sizeof(c->profile_dir));
	if (v->failed)
		return;
	if (slash)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - c->path),
			 c->path);
	else
		snprintf(dir, sizeof(dir), ".");
	if (c->profile_dir[0] != '/' && cfgval_has(v, "sluice", "profile_dir"))
		snprintf(pdir, sizeof(pdir), "%s/%s", dir, c->profile_dir);
	else
		snprintf(pdir, sizeof(pdir), "%s", c->profile_dir);
	n = strlen(prof);
	if (!strchr(prof, '/') && !(n > 5 && strcmp(prof + n - 5, ".conf") == 0))
		w = snprintf(c->profile_path, sizeof(c->profile_path),
			     "%s/%s.conf", pdir, prof);
	else if (prof[0] != '/')
		w = snprintf(c->profile_path, sizeof(c->profile_path), "%s/%s",
			     dir, prof);
	else
		w = snprintf(c->profile_path, sizeof(c->profile_path), "%s",
			     prof);
	if (w < 0 || (size_t)w >= sizeof(c->profile_path))
		cfgval_fail(v, "[sluice] nic_profile: path too long");
}

/* cfg_eal - [eal]: how the environment abstraction layer is started */
static void cfg_eal(struct cfgval *v, struct cfg *c)
{
	static const char *const huge[] = { "auto", "yes", "no", NULL };
	unsigned h;
	uint64_t x;

	cfgval_str(v, "eal", "file_prefix", "sluice", c->file_prefix,
		   sizeof(c->file_prefix));
	if (!v->failed) {
		for (const char *p = c->file_prefix; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
			      || (*p >= '0' && *p <= '9') || *p == '-' ||
			      *p == '_' || *p == '.')) {
				cfgval_fail(v, "[eal] file_prefix: \"%s\" may only "
					    "hold letters, digits, '-', '_', '.'",
					    c->file_prefix);
				break;
			}
	}
	cfgval_enum(v, "eal", "huge", huge, CFG_HUGE_AUTO, &h);
	c->huge = (enum cfg_huge)h;
	if (cfgval_uint(v, "eal", "memory_mb", 0, 1u << 20, 0, &x) == 0)
		c->memory_mb = (unsigned)x;
	cfgval_str(v, "eal", "socket_mem", "", c->socket_mem,
		   sizeof(c->socket_mem));
	if (!v->failed && c->socket_mem[0]) {
		for (const char *p = c->socket_mem; *p; p++)
			if (!((*p >= '0' && *p <= '9') || *p == ',')) {
				cfgval_fail(v, "[eal] socket_mem: \"%s\" is not a "
					    "list of megabytes per socket "
					    "(e.g. 1024,0)", c->socket_mem);
				break;
			}
		if (!v->failed && c->memory_mb)
			cfgval_fail(v, "[eal] socket_mem: use either memory_mb "
				    "or socket_mem, not both");
		if (!v->failed && c->huge == CFG_HUGE_NO)
			cfgval_fail(v, "[eal] socket_mem: needs hugepages "
				    "(huge = no)");
	}
	cfgval_str(v, "eal", "log_level", "", c->log_level,
		   sizeof(c->log_level));
	cfgval_bool(v, "eal", "telemetry", true, &c->telemetry);
}

/* cfg_lcores - [lcores]: control lcore and the io lcores, disjoint */
static void cfg_lcores(struct cfgval *v, struct cfg *c)
{
	uint64_t x;

	if (cfgval_uint(v, "lcores", "main", 0, CFG_MAX_LCORE, 0, &x) == 0)
		c->main_lcore = (unsigned)x;
	cfgval_uint_list(v, "lcores", "io", 0, CFG_MAX_LCORE, c->io_lcores,
			 CFG_MAX_IO, &c->n_io);
	if (v->failed)
		return;
	if (!cfgval_has(v, "lcores", "io")) {
		c->io_lcores[0] = c->main_lcore == 1 ? 0 : 1;
		c->n_io = 1;
	}
	for (unsigned i = 0; i < c->n_io; i++)
		if (c->io_lcores[i] == c->main_lcore) {
			cfgval_fail(v, "[lcores] io: lcore %u is also the main "
				    "lcore (roles need their own lcores)",
				    c->main_lcore);
			return;
		}
}

/* cfg_interface - [interface]: our address, gateway and MAC */
static void cfg_interface(struct cfgval *v, struct cfg *c)
{
	uint32_t mask;

	cfgval_ipv4_prefix(v, "interface", "address", true, &c->ip,
			   &c->prefix_len);
	cfgval_ipv4(v, "interface", "gateway", 0, &c->gateway);
	cfgval_mac(v, "interface", "mac", c->mac, &c->mac_set);
	if (v->failed)
		return;
	mask = c->prefix_len == 32 ? 0xffffffffu
				   : ~(0xffffffffu >> c->prefix_len);
	if (c->ip >> 24 == 0 || c->ip >> 24 == 127 || c->ip >> 28 >= 14)
		cfgval_fail(v, "[interface] address: \"%s\" is not a usable "
			    "unicast address",
			    cfgval_raw(v, "interface", "address"));
	else if (c->prefix_len < 31 &&
		 ((c->ip & ~mask) == 0 || (c->ip & ~mask) == ~mask))
		cfgval_fail(v, "[interface] address: \"%s\" is the network or "
			    "broadcast address of its prefix",
			    cfgval_raw(v, "interface", "address"));
	else if (c->gateway && (c->gateway & mask) != (c->ip & mask))
		cfgval_fail(v, "[interface] gateway: \"%s\" is not inside %s",
			    cfgval_raw(v, "interface", "gateway"),
			    cfgval_raw(v, "interface", "address"));
	else if (c->gateway && c->gateway == c->ip)
		cfgval_fail(v, "[interface] gateway: \"%s\" is our own address",
			    cfgval_raw(v, "interface", "gateway"));
}

/* cfg_net - [pools] and [tcp] through the table */
static void cfg_net(struct cfgval *v, struct cfg *c)
{
	for (unsigned i = 0; i < CFG_NET_OPTS; i++) {
		const struct cfg_netopt *o = &cfg_netopts[i];

		c->net_set[i] = cfgval_has(v, o->sec, o->key);
		cfgval_u32(v, o->sec, o->key, o->min, o->max, 0, &c->net_val[i]);
	}
	c->mbufs = c->net_set[CFG_NETOPT_MBUFS] ? c->net_val[CFG_NETOPT_MBUFS]
						: 0;
}

int cfg_load(const char *path, const char *default_profile_dir,
	     struct cfg *c, char *err, size_t errlen)
{
	struct cfgval v;
	uint64_t x;

	memset(c, 0, sizeof(*c));
	snprintf(c->path, sizeof(c->path), "%s", path);
	if (cfgval_open(&v, path) < 0 || cfgval_check_schema(&v, cfg_schema) < 0)
		goto out;

	cfg_sluice(&v, c, default_profile_dir);
	cfg_eal(&v, c);
	cfg_lcores(&v, c);
	cfg_interface(&v, c);
	cfg_net(&v, c);

	cfgval_bool(&v, "services", "echo", false, &c->svc_echo);
	cfgval_bool(&v, "services", "discard", false, &c->svc_discard);

	if (cfgval_uint(&v, "reactor", "idle_spins", 0, 100000000, 256, &x) == 0)
		c->idle_spins = (unsigned)x;
	if (cfgval_uint(&v, "reactor", "idle_sleep_us_max", 0, 1000000, 200,
			&x) == 0)
		c->idle_sleep_us_max = (unsigned)x;
	if (cfgval_uint(&v, "control", "stats_interval_s", 0, 86400, 60,
			&x) == 0)
		c->stats_interval_s = (unsigned)x;
out:
	cfgval_close(&v);
	if (v.failed) {
		snprintf(err, errlen, "%s", v.err);
		return -1;
	}
	return 0;
}

int cfg_net_apply(const struct cfg *c, struct net_config *nc, char *err,
		  size_t errlen)
{
	nc->ip = c->ip;
	nc->prefix_len = c->prefix_len;
	nc->gateway = c->gateway;
	if (c->mac_set)
		memcpy(nc->mac, c->mac, sizeof(nc->mac));
	for (unsigned i = 0; i < CFG_NET_OPTS; i++) {
		if (i == CFG_NETOPT_MBUFS || !c->net_set[i])
			continue;
		memcpy((char *)nc + cfg_netopts[i].off, &c->net_val[i],
		       sizeof(uint32_t));
	}
	if (nc->rto_min_ms > nc->rto_max_ms)
		goto bad_rto;
	if (nc->rto_init_ms < nc->rto_min_ms || nc->rto_init_ms > nc->rto_max_ms)
		goto bad_rto;
	if (nc->conn_low_water >= nc->max_conns) {
		snprintf(err, errlen, "%s: [pools] conn_low_water: %u must be "
			 "below max_conns (%u)", c->path, nc->conn_low_water,
			 nc->max_conns);
		return -1;
	}
	return 0;
bad_rto:
	snprintf(err, errlen, "%s: [tcp] rto_init_ms: need rto_min_ms (%u) <= "
		 "rto_init_ms (%u) <= rto_max_ms (%u)", c->path, nc->rto_min_ms,
		 nc->rto_init_ms, nc->rto_max_ms);
	return -1;
}
