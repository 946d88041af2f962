/*
 * cfg.c - read and validate sluice.conf (see cfg.h for the keys).
 *
 * Input: a path. Output: struct cfg, or one error message that names the
 * file, section, key and reason. [pools]/[tcp] keys are table driven: each
 * maps to a field of struct net_config with its bounds, so adding a stack
 * knob is one line here and one in docs/operations.md.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
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
	"memory_mb", "socket_mem", "log_level", "telemetry", "pdump", NULL };
static const char *const cfg_lcore_keys[] = { "main", "io", "workers",
					       "cpu_map", NULL };
static const char *const cfg_if_keys[] = { "address", "gateway", "mac",
					   NULL };
static const char *const cfg_pool_keys[] = { "max_conns", "rcvbuf",
	"sndbuf", "syn_backlog", "conn_low_water", "timewait_max",
	"arp_entries", "arp_pending", "max_listeners", "mbufs", NULL };
static const char *const cfg_tcp_keys[] = { "msl_ms", "fin_wait2_ms",
	"delack_ms", "rto_min_ms", "rto_max_ms", "rto_init_ms", "syn_retries",
	"data_retries", "arp_timeout_ms", NULL };
static const char *const cfg_svc_keys[] = { "echo", "discard", "smtp",
					     NULL };
static const char *const cfg_smtp_keys[] = { "hostname", "ports",
	"submission_ports", "max_message_size", "max_recipients", "max_errors",
	"command_timeout_s", "data_timeout_s", "session_timeout_s",
	"banner_delay_ms", "max_sessions_per_lcore", "per_client_max_conns",
	"per_client_rate_per_min", "default_priority", "notify_priority",
	"max_received", "ring_size", "queue_wait_ms", "auth_plaintext", NULL };
static const char *const cfg_storage_keys[] = { "state_dir", "durability",
	"map_size_mb", "high_watermark", "lab_commit_delay_ms", NULL };
static const char *const cfg_delivery_keys[] = { "enabled", "max_active",
	"max_conns_per_dest", "max_msgs_per_conn", "rate_per_dest",
	"retry_schedule", "max_lifetime", "delay_warning", "down_after",
	"connect_timeout_s", "idle_conn_s", "default_route", "tls_ca",
	"helo_name", NULL };
static const char *const cfg_ldap_keys[] = { "enabled", "uris", "bind_dn",
	"bind_password_file", "base", "recipient_filter", "auth_filter",
	"route_attribute", "forward_attribute", "domains", "timeout_ms",
	"cache_ttl_s", "negative_ttl_s", "stale_max_s", "retry_s", "starttls",
	"tls_ca_file", NULL };
static const char *const cfg_tls_keys[] = { "cert", "key", NULL };
static const char *const cfg_reactor_keys[] = { "idle_spins",
						"idle_sleep_us_max", NULL };
static const char *const cfg_control_keys[] = { "stats_interval_s",
						"socket", "metrics_listen",
						NULL };

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
	{ "smtp", cfg_smtp_keys },
	{ "storage", cfg_storage_keys },
	{ "tls", cfg_tls_keys },
	{ "delivery", cfg_delivery_keys },
	{ "ldap", cfg_ldap_keys },
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
	cfgval_bool(v, "eal", "pdump", true, &c->pdump);
}

/* cfg_lcore_known - lcore is the main, an io or a worker lcore */
/* cfg_ipv4_port_ok - "A.B.C.D:PORT", port 1..65535 ([control]
 * metrics_listen) */
static bool cfg_ipv4_port_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	char host[20], *end;
	unsigned long port;
	uint32_t ip;

	if (!colon || (size_t)(colon - s) >= sizeof(host) ||
	    colon[1] < '0' || colon[1] > '9')
		return false;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	return cfgval_parse_ipv4(host, &ip) == 0 && !*end && !errno &&
	       port >= 1 && port <= 65535;
}

static bool cfg_lcore_known(const struct cfg *c, unsigned lcore)
{
	if (lcore == c->main_lcore)
		return true;
	for (unsigned i = 0; i < c->n_io; i++)
		if (c->io_lcores[i] == lcore)
			return true;
	for (unsigned i = 0; i < c->n_workers; i++)
		if (c->worker_lcores[i] == lcore)
			return true;
	return false;
}

/* cfg_cpu_map - [lcores] cpu_map = LCORE@CPU[, LCORE@CPU...]: configured
 * lcores that run on another CPU than their number (EAL --lcores) */
static void cfg_cpu_map(struct cfgval *v, struct cfg *c)
{
	const char *s = cfgval_raw(v, "lcores", "cpu_map"), *p = s;

	c->n_cpu_map = 0;
	if (v->failed || !s)
		return;
	for (;;) {
		unsigned long l, cpu;
		char *end;

		while (isspace((unsigned char)*p))
			p++;
		if (!isdigit((unsigned char)*p))
			goto bad;
		l = strtoul(p, &end, 10);
		if (*end != '@' || !isdigit((unsigned char)end[1]))
			goto bad;
		cpu = strtoul(end + 1, &end, 10);
		p = end;
		if (l > CFG_MAX_LCORE || cpu > CFG_MAX_LCORE)
			goto bad;
		if (!cfg_lcore_known(c, (unsigned)l)) {
			cfgval_fail(v, "[lcores] cpu_map: lcore %lu is not the "
				    "main, an io or a worker lcore", l);
			return;
		}
		for (unsigned i = 0; i < c->n_cpu_map; i++)
			if (c->cpu_map_lcore[i] == l) {
				cfgval_fail(v, "[lcores] cpu_map: \"%s\" maps "
					    "lcore %lu twice", s, l);
				return;
			}
		c->cpu_map_lcore[c->n_cpu_map] = (unsigned)l;
		c->cpu_map_cpu[c->n_cpu_map++] = (unsigned)cpu;
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			return;
		if (*p++ != ',' || c->n_cpu_map == CFG_MAX_CPU_MAP)
			goto bad;
	}
bad:
	cfgval_fail(v, "[lcores] cpu_map: \"%s\" is not a list of LCORE@CPU "
		    "(e.g. \"2@1, 3@1\"; numbers 0..%u)", s, CFG_MAX_LCORE);
}

unsigned cfg_lcore_cpu(const struct cfg *c, unsigned lcore)
{
	for (unsigned i = 0; i < c->n_cpu_map; i++)
		if (c->cpu_map_lcore[i] == lcore)
			return c->cpu_map_cpu[i];
	return lcore;
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
	cfgval_uint_list(v, "lcores", "workers", 0, CFG_MAX_LCORE,
			 c->worker_lcores, CFG_MAX_WORKERS, &c->n_workers);
	if (v->failed)
		return;
	for (unsigned i = 0; i < c->n_workers; i++) {
		if (c->worker_lcores[i] == c->main_lcore)
			goto worker_clash;
		for (unsigned k = 0; k < c->n_io; k++)
			if (c->io_lcores[k] == c->worker_lcores[i])
				goto worker_clash;
		continue;
worker_clash:
		cfgval_fail(v, "[lcores] workers: lcore %u is also the main or "
			    "an io lcore (omit workers to run them on the io "
			    "lcores)", c->worker_lcores[i]);
		return;
	}
	for (unsigned i = 0; i < c->n_io; i++)
		if (c->io_lcores[i] == c->main_lcore) {
			cfgval_fail(v, "[lcores] io: lcore %u is also the main "
				    "lcore (roles need their own lcores)",
				    c->main_lcore);
			return;
		}
	cfg_cpu_map(v, c);
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

/* cfg_ports - "25 587": space-separated TCP ports, no duplicates */
static void cfg_ports(struct cfgval *v, const char *key, const char *def,
		      uint16_t *out, unsigned *n)
{
	const char *raw = cfgval_raw(v, "smtp", key);
	char buf[256], *save = NULL, *tok;

	*n = 0;
	if (v->failed)
		return;
	snprintf(buf, sizeof(buf), "%s", raw ? raw : def);
	for (tok = strtok_r(buf, " \t,", &save); tok;
	     tok = strtok_r(NULL, " \t,", &save)) {
		char *end;
		unsigned long p;

		errno = 0;
		p = strtoul(tok, &end, 10);
		if (*end || errno || p < 1 || p > 65535 || *tok == '-') {
			cfgval_fail(v, "[smtp] %s: \"%s\" is not a list of TCP "
				    "ports 1..65535 separated by spaces", key,
				    raw ? raw : def);
			return;
		}
		for (unsigned i = 0; i < *n; i++)
			if (out[i] == p) {
				cfgval_fail(v, "[smtp] %s: port %lu given twice",
					    key, p);
				return;
			}
		if (*n == CFG_MAX_PORTS) {
			cfgval_fail(v, "[smtp] %s: at most %d ports", key,
				    CFG_MAX_PORTS);
			return;
		}
		out[(*n)++] = (uint16_t)p;
	}
}

/* cfg_smtp - [smtp], [storage], [tls] */
static void cfg_smtp(struct cfgval *v, struct cfg *c)
{
	static const char *const dur[] = { "full", "unsafe-nometasync",
					   "unsafe-nosync", NULL };
	struct cfg_smtp *m = &c->smtp;
	uint64_t x;
	const char *wm;

	cfgval_str(v, "smtp", "hostname", "localhost", m->hostname,
		   sizeof(m->hostname));
	if (!v->failed) {
		for (const char *p = m->hostname; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
			      || (*p >= '0' && *p <= '9') || *p == '-' ||
			      *p == '.')) {
				cfgval_fail(v, "[smtp] hostname: \"%s\" is not a "
					    "host name", m->hostname);
				break;
			}
		if (!v->failed && !m->hostname[0])
			cfgval_fail(v, "[smtp] hostname: empty");
	}
	cfg_ports(v, "ports", "25 587", m->ports, &m->n_ports);
	cfg_ports(v, "submission_ports", "587", m->sub_ports, &m->n_sub);
	if (!v->failed && m->n_ports == 0)
		cfgval_fail(v, "[smtp] ports: at least one port");
	for (unsigned i = 0; !v->failed && i < m->n_sub; i++) {
		unsigned k;

		for (k = 0; k < m->n_ports; k++)
			if (m->ports[k] == m->sub_ports[i])
				break;
		if (k == m->n_ports && cfgval_has(v, "smtp", "submission_ports"))
			cfgval_fail(v, "[smtp] submission_ports: port %u is not "
				    "in [smtp] ports", m->sub_ports[i]);
	}
#define CFG_SMTP_U(key, lo, hi, def, field) \
	if (cfgval_uint(v, "smtp", key, lo, hi, def, &x) == 0) \
		m->field = (unsigned)x
	if (cfgval_uint(v, "smtp", "max_message_size", 1024, 1ull << 31,
			36700160, &x) == 0)
		m->max_message_size = x;
	CFG_SMTP_U("max_recipients", 1, 4096, 1000, max_recipients);
	CFG_SMTP_U("max_errors", 1, 1000, 20, max_errors);
	CFG_SMTP_U("command_timeout_s", 1, 86400, 300, command_timeout_s);
	CFG_SMTP_U("data_timeout_s", 1, 86400, 300, data_timeout_s);
	CFG_SMTP_U("session_timeout_s", 1, 86400, 3600, session_timeout_s);
	CFG_SMTP_U("banner_delay_ms", 0, 600000, 0, banner_delay_ms);
	CFG_SMTP_U("max_sessions_per_lcore", 1, 1000000, 4000,
		   max_sessions_per_lcore);
	CFG_SMTP_U("per_client_max_conns", 0, 1000000, 50,
		   per_client_max_conns);
	CFG_SMTP_U("per_client_rate_per_min", 0, 100000000, 0,
		   per_client_rate_per_min);
	CFG_SMTP_U("default_priority", 0, 7, 4, default_priority);
	CFG_SMTP_U("notify_priority", 0, 7, 2, notify_priority);
	CFG_SMTP_U("max_received", 1, 1000, 50, max_received);
	CFG_SMTP_U("ring_size", 64, 1u << 20, 1024, ring_size);
	CFG_SMTP_U("queue_wait_ms", 10, 600000, 30000, queue_wait_ms);
#undef CFG_SMTP_U
	cfgval_bool(v, "smtp", "auth_plaintext", false, &m->auth_plaintext);

	cfgval_str(v, "storage", "state_dir", "/var/lib/sluice", m->state_dir,
		   sizeof(m->state_dir));
	if (!v->failed && m->state_dir[0] != '/')
		cfgval_fail(v, "[storage] state_dir: \"%s\" is not an absolute "
			    "path", m->state_dir);
	cfgval_enum(v, "storage", "durability", dur, 0, &m->durability);
	if (cfgval_uint(v, "storage", "map_size_mb", 1, 1u << 24, 1024, &x) == 0)
		m->map_size_mb = (unsigned)x;
	m->high_watermark = 0.90;
	wm = cfgval_raw(v, "storage", "high_watermark");
	if (!v->failed && wm) {
		char *end;

		errno = 0;
		m->high_watermark = strtod(wm, &end);
		if (*end || errno || end == wm || !(m->high_watermark > 0.0) ||
		    m->high_watermark > 1.0)
			cfgval_fail(v, "[storage] high_watermark: \"%s\" is not "
				    "a fraction in (0, 1]", wm);
	}
	if (cfgval_uint(v, "storage", "lab_commit_delay_ms", 0, 60000, 0,
			&x) == 0)
		m->lab_commit_delay_ms = (unsigned)x;
	cfgval_str(v, "tls", "cert", "", m->tls_cert, sizeof(m->tls_cert));
	cfgval_str(v, "tls", "key", "", m->tls_key, sizeof(m->tls_key));
	if (!v->failed && !m->tls_cert[0] != !m->tls_key[0])
		cfgval_fail(v, "[tls] %s: set both cert and key, or neither",
			    m->tls_cert[0] ? "key" : "cert");
	if (!v->failed && m->default_priority > 7)
		cfgval_fail(v, "[smtp] default_priority: 0..7");
}

int cfg_parse_duration(const char *s, uint64_t *secs)
{
	char *end;
	unsigned long long n;
	uint64_t mul = 1;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case '\0': case 's': break;
	case 'm': mul = 60; break;
	case 'h': mul = 3600; break;
	case 'd': mul = 86400; break;
	default: return -1;
	}
	if (*end && end[1])
		return -1;
	if (n > UINT64_MAX / mul / 1000000)  /* must fit in microseconds */
		return -1;
	*secs = n * mul;
	return 0;
}

/* cfg_dur - one duration key; 0 when absent (def) or valid */
static void cfg_dur(struct cfgval *v, const char *key, const char *def,
		    uint64_t max, uint64_t *out)
{
	const char *raw = cfgval_raw(v, "delivery", key);

	if (v->failed)
		return;
	if (cfg_parse_duration(raw ? raw : def, out) < 0 || *out > max)
		cfgval_fail(v, "[delivery] %s: \"%s\" is not a duration such as "
			    "90s, 5m, 2h or 5d (at most %llus)", key,
			    raw ? raw : def, (unsigned long long)max);
}

/* cfg_delivery - [delivery] */
static void cfg_delivery(struct cfgval *v, struct cfg *c)
{
	struct cfg_delivery *d = &c->delivery;
	char sched[512], *save = NULL, *tok;
	uint64_t x;

	cfgval_bool(v, "delivery", "enabled", c->svc_smtp, &d->enabled);
#define CFG_DLV_U(key, lo, hi, def, field) \
	if (cfgval_uint(v, "delivery", key, lo, hi, def, &x) == 0) \
		d->field = (unsigned)x
	CFG_DLV_U("max_active", 1, 1000000, 1000, max_active);
	CFG_DLV_U("max_conns_per_dest", 1, 100000, 20, max_conns_per_dest);
	CFG_DLV_U("max_msgs_per_conn", 1, 1000000, 100, max_msgs_per_conn);
	CFG_DLV_U("rate_per_dest", 0, 10000000, 0, rate_per_dest);
	CFG_DLV_U("down_after", 1, 1000000, 5, down_after);
	CFG_DLV_U("connect_timeout_s", 1, 3600, 30, connect_timeout_s);
	CFG_DLV_U("idle_conn_s", 0, 3600, 5, idle_conn_s);
#undef CFG_DLV_U
	cfgval_str(v, "delivery", "retry_schedule", "1m,5m,15m,30m,1h", sched,
		   sizeof(sched));
	for (tok = strtok_r(sched, ", ", &save); tok && !v->failed;
	     tok = strtok_r(NULL, ", ", &save)) {
		if (d->n_retry == CFG_RETRY_STEPS ||
		    cfg_parse_duration(tok, &x) < 0 || x == 0 || x > 86400 * 7)
			cfgval_fail(v, "[delivery] retry_schedule: \"%s\": need "
				    "1..%d durations of 1s..7d, comma separated",
				    tok, CFG_RETRY_STEPS);
		else
			d->retry_s[d->n_retry++] = (uint32_t)x;
	}
	if (!v->failed && d->n_retry == 0)
		cfgval_fail(v, "[delivery] retry_schedule: empty");
	cfg_dur(v, "max_lifetime", "5d", 86400ull * 365, &d->max_lifetime_s);
	if (!v->failed && d->max_lifetime_s == 0)
		cfgval_fail(v, "[delivery] max_lifetime: must be above 0");
	cfg_dur(v, "delay_warning", "4h", 86400ull * 365, &d->delay_warning_s);
	cfgval_str(v, "delivery", "default_route", "", d->default_route,
		   sizeof(d->default_route));
	if (!v->failed && d->default_route[0]) {
		const char *colon = strrchr(d->default_route, ':');
		char *end;
		unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;

		if (!colon || colon == d->default_route || !colon[1] || *end ||
		    port == 0 || port > 65535)
			cfgval_fail(v, "[delivery] default_route: \"%s\" is not "
				    "HOST:PORT", d->default_route);
	}
	cfgval_str(v, "delivery", "tls_ca", "", d->tls_ca, sizeof(d->tls_ca));
	cfgval_str(v, "delivery", "helo_name", c->smtp.hostname, d->helo_name,
		   sizeof(d->helo_name));
}

/* cfg_ldap_filter_bad - an RFC 4515 filter template: "(...)" with balanced
 * parentheses and placeholders %s, %u, %d, %% (at least one of the first
 * three); NULL or the reason */
static const char *cfg_ldap_filter_bad(const char *f)
{
	int depth = 0, holes = 0;
	size_t n = strlen(f);

	if (n < 3 || f[0] != '(' || f[n - 1] != ')')
		return "is not a filter in parentheses";
	for (const char *p = f; *p; p++) {
		if (depth == 0 && p != f)
			return "holds text outside its parentheses";
		if (*p == '(') {
			depth++;
		} else if (*p == ')') {
			if (--depth < 0)
				return "has unbalanced parentheses";
		} else if (*p == '%') {
			p++;
			if (*p == 's' || *p == 'u' || *p == 'd')
				holes++;
			else if (*p != '%')
				return "has a '%' not followed by s, u, d or %";
		}
	}
	if (depth != 0)
		return "has unbalanced parentheses";
	return holes ? NULL : "has no %s, %u or %d for the name looked up";
}

/* cfg_ldap_attr - an attribute description: letters, digits, '-', or a
 * dotted OID; "none" turns the mapping off ("") */
static void cfg_ldap_attr(struct cfgval *v, const char *key, const char *def,
			  char *out, size_t cap)
{
	cfgval_str(v, "ldap", key, def, out, cap);
	if (v->failed)
		return;
	if (strcmp(out, "none") == 0)
		out[0] = '\0';
	for (const char *p = out; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '-' ||
		      (*p == '.' && isdigit((unsigned char)out[0])))) {
			cfgval_fail(v, "[ldap] %s: \"%s\" is not an attribute name",
				    key, out);
			return;
		}
	if (out[0] == '-' || (out[0] && !isalpha((unsigned char)out[0]) &&
			      !isdigit((unsigned char)out[0])))
		cfgval_fail(v, "[ldap] %s: \"%s\" is not an attribute name",
			    key, out);
}

/* cfg_ldap - [ldap]: everything checked here so that sluiced never starts
 * with a backend that cannot work; only the password file is read later
 * (control/ldapdir.c), when the thread starts */
static void cfg_ldap(struct cfgval *v, struct cfg *c)
{
	struct cfg_ldap *l = &c->ldap;
	char buf[2048], *save = NULL, *tok;
	const char *why;
	uint64_t x;

	cfgval_bool(v, "ldap", "enabled", false, &l->enabled);
	cfgval_str(v, "ldap", "uris", "", buf, sizeof(buf));
	for (tok = strtok_r(buf, " \t", &save); tok && !v->failed;
	     tok = strtok_r(NULL, " \t", &save)) {
		size_t n = strlen(tok);

		if ((strncmp(tok, "ldap://", 7) != 0 || n == 7) &&
		    (strncmp(tok, "ldaps://", 8) != 0 || n == 8))
			cfgval_fail(v, "[ldap] uris: \"%s\" is not an ldap://HOST"
				    "[:PORT] or ldaps://HOST[:PORT] URI", tok);
		else if (l->n_uris == CFG_LDAP_MAX_URIS)
			cfgval_fail(v, "[ldap] uris: at most %d URIs",
				    CFG_LDAP_MAX_URIS);
		else if (n >= sizeof(l->uris[0]))
			cfgval_fail(v, "[ldap] uris: \"%s\" is too long", tok);
		else
			memcpy(l->uris[l->n_uris++], tok, n + 1);
	}
	cfgval_str(v, "ldap", "bind_dn", "", l->bind_dn, sizeof(l->bind_dn));
	cfgval_str(v, "ldap", "bind_password_file", "", l->bind_password_file,
		   sizeof(l->bind_password_file));
	cfgval_str(v, "ldap", "base", "", l->base, sizeof(l->base));
	cfgval_str(v, "ldap", "recipient_filter",
		   "(|(mail=%s)(mailAlternateAddress=%s))", l->recipient_filter,
		   sizeof(l->recipient_filter));
	if (!v->failed && (why = cfg_ldap_filter_bad(l->recipient_filter)))
		cfgval_fail(v, "[ldap] recipient_filter: \"%s\" %s",
			    l->recipient_filter, why);
	cfgval_str(v, "ldap", "auth_filter", "", l->auth_filter,
		   sizeof(l->auth_filter));
	if (!v->failed && l->auth_filter[0] &&
	    (why = cfg_ldap_filter_bad(l->auth_filter)))
		cfgval_fail(v, "[ldap] auth_filter: \"%s\" %s", l->auth_filter,
			    why);
	cfg_ldap_attr(v, "route_attribute", "mailHost", l->route_attr,
		      sizeof(l->route_attr));
	cfg_ldap_attr(v, "forward_attribute", "mailForwardingAddress",
		      l->forward_attr, sizeof(l->forward_attr));
	cfgval_str(v, "ldap", "domains", "", l->domains, sizeof(l->domains));
	for (const char *p = l->domains; !v->failed && *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '.' ||
		      *p == ' ' || *p == '\t' || *p == ','))
			cfgval_fail(v, "[ldap] domains: \"%s\" is not a list of "
				    "domains separated by spaces", l->domains);
#define CFG_LDAP_U(key, lo, hi, def, field) \
	if (cfgval_uint(v, "ldap", key, lo, hi, def, &x) == 0) \
		l->field = (unsigned)x
	CFG_LDAP_U("timeout_ms", 10, 60000, 3000, timeout_ms);
	CFG_LDAP_U("cache_ttl_s", 0, 86400 * 7, 300, cache_ttl_s);
	CFG_LDAP_U("negative_ttl_s", 0, 86400 * 7, 60, negative_ttl_s);
	CFG_LDAP_U("stale_max_s", 0, 86400 * 30, 86400, stale_max_s);
	CFG_LDAP_U("retry_s", 1, 3600, 5, retry_s);
#undef CFG_LDAP_U
	cfgval_bool(v, "ldap", "starttls", false, &l->starttls);
	cfgval_str(v, "ldap", "tls_ca_file", "", l->tls_ca_file,
		   sizeof(l->tls_ca_file));
	if (v->failed || !l->enabled)
		return;
	if (l->n_uris == 0)
		cfgval_fail(v, "[ldap] uris: needed when enabled (e.g. "
			    "\"ldap://ldap1.example:389 ldap://ldap2.example\")");
	else if (!l->base[0])
		cfgval_fail(v, "[ldap] base: needed when enabled (e.g. "
			    "\"ou=people,dc=example,dc=com\")");
	else if (l->bind_dn[0] && !l->bind_password_file[0])
		cfgval_fail(v, "[ldap] bind_password_file: needed with bind_dn "
			    "(the password never goes into sluice.conf)");
	else if (l->bind_password_file[0] && l->bind_password_file[0] != '/')
		cfgval_fail(v, "[ldap] bind_password_file: \"%s\" is not an "
			    "absolute path", l->bind_password_file);
	else if (l->tls_ca_file[0] && l->tls_ca_file[0] != '/')
		cfgval_fail(v, "[ldap] tls_ca_file: \"%s\" is not an absolute "
			    "path", l->tls_ca_file);
	else if (l->starttls)
		for (unsigned i = 0; i < l->n_uris; i++)
			if (strncmp(l->uris[i], "ldaps://", 8) == 0) {
				cfgval_fail(v, "[ldap] starttls: %s already "
					    "speaks TLS (use ldap:// URIs with "
					    "starttls)", l->uris[i]);
				break;
			}
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
	cfgval_bool(&v, "services", "smtp", false, &c->svc_smtp);
	cfg_smtp(&v, c);

	if (cfgval_uint(&v, "reactor", "idle_spins", 0, 100000000, 256, &x) == 0)
		c->idle_spins = (unsigned)x;
	if (cfgval_uint(&v, "reactor", "idle_sleep_us_max", 0, 1000000, 200,
			&x) == 0)
		c->idle_sleep_us_max = (unsigned)x;
	if (cfgval_uint(&v, "control", "stats_interval_s", 0, 86400, 60,
			&x) == 0)
		c->stats_interval_s = (unsigned)x;
	cfg_delivery(&v, c);
	cfg_ldap(&v, c);
	if (!v.failed) {
		char defsock[300];

		snprintf(defsock, sizeof(defsock), "%.280s/sluiced.sock",
			 c->smtp.state_dir);
		cfgval_str(&v, "control", "socket", defsock, c->ctl_socket,
			   sizeof(c->ctl_socket));
		if (!v.failed && c->ctl_socket[0] != '/')
			cfgval_fail(&v, "[control] socket: \"%s\" is not an "
				    "absolute path", c->ctl_socket);
	}
	cfgval_str(&v, "control", "metrics_listen", "127.0.0.1:9464",
		   c->metrics_listen, sizeof(c->metrics_listen));
	if (strcmp(c->metrics_listen, "off") == 0)   /* no endpoint */
		c->metrics_listen[0] = 0;
	if (!v.failed && c->metrics_listen[0] &&
	    !cfg_ipv4_port_ok(c->metrics_listen))
		cfgval_fail(&v, "[control] metrics_listen: \"%s\" is not "
			    "IPv4:PORT (e.g. 127.0.0.1:9464) or off",
			    c->metrics_listen);
out:
	return cfgval_close(&v, err, errlen);
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
