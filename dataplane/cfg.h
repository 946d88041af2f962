/*
 * cfg.h - sluice.conf: the site configuration of one sluiced.
 *
 * Read with rte_cfgfile (through cfgval.h); every value is validated and
 * unknown sections or keys are errors. Sections and keys:
 *
 *   [sluice]    nic_profile (name in profile_dir, or a path; default tap),
 *               profile_dir (relative: to the config file's directory)
 *   [eal]       file_prefix, huge = auto|yes|no, memory_mb, socket_mem,
 *               log_level, telemetry, pdump
 *   [lcores]    main (control role), io (list, e.g. "1" or "1-3,5")
 *   [interface] address = A.B.C.D/prefix (required), gateway, mac
 *   [pools]     per io lcore: max_conns, rcvbuf, sndbuf, syn_backlog,
 *               conn_low_water, timewait_max, arp_entries, arp_pending,
 *               max_listeners, mbufs (overrides the profile's pool size)
 *   [tcp]       msl_ms, fin_wait2_ms, delack_ms, rto_min_ms, rto_max_ms,
 *               rto_init_ms, syn_retries, data_retries, arp_timeout_ms
 *   [lcores]    ... workers (list; default: workers run on the io lcores),
 *               cpu_map (LCORE@CPU list: lcores that share a CPU)
 *   [services]  echo (TCP port 7), discard (TCP port 9), smtp
 *   [smtp]      hostname, ports, submission_ports, limits, timeouts,
 *               banner_delay_ms, session/client limits, priorities,
 *               max_received, ring_size, queue_wait_ms, auth_plaintext
 *   [storage]   state_dir, durability, map_size_mb, high_watermark
 *   [tls]       cert, key (STARTTLS offered iff both are set)
 *   [delivery]  relay to next hops (control/sched.h, dataplane/deliver.h):
 *               enabled, max_active, max_conns_per_dest, max_msgs_per_conn,
 *               rate_per_dest, retry_schedule, max_lifetime, delay_warning,
 *               down_after, connect_timeout_s, idle_conn_s, default_route,
 *               tls_ca, helo_name
 *   [reactor]   idle_spins, idle_sleep_us_max
 *   [control]   stats_interval_s, socket (sluicectl's UNIX socket),
 *               metrics_listen (Prometheus /metrics, control/metrics.h)
 *   [storage]   ... lab_commit_delay_ms (LAB ONLY: slows every commit)
 *   [ldap]      LDAP directory backend (control/ldapdir.h): enabled, uris,
 *               bind_dn, bind_password_file, base, recipient_filter,
 *               auth_filter, route_attribute, forward_attribute, domains,
 *               timeout_ms, cache_ttl_s, negative_ttl_s, stale_max_s,
 *               retry_s, starttls, tls_ca_file
 *
 * [pools] and [tcp] values absent from the file keep the stack's defaults
 * (net_config_defaults); cfg_net_apply writes only the ones present.
 * docs/operations.md is the reference; keep it in step with this file.
 */
#ifndef SLUICE_CFG_H
#define SLUICE_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

#define CFG_MAX_IO 64
#define CFG_MAX_LCORE 1023
#define CFG_NET_OPTS 19
#define CFG_MAX_PORTS 8
#define CFG_MAX_WORKERS 16
#define CFG_MAX_CPU_MAP (1 + CFG_MAX_IO + CFG_MAX_WORKERS)

/* [smtp], [storage], [tls]: the SMTP accept path (smtpd.h, mstore.h) */
struct cfg_smtp {
	char hostname[256];
	uint16_t ports[CFG_MAX_PORTS];
	unsigned n_ports;
	uint16_t sub_ports[CFG_MAX_PORTS];   /* AUTH required before MAIL */
	unsigned n_sub;
	uint64_t max_message_size;
	unsigned max_recipients, max_errors;
	unsigned command_timeout_s, data_timeout_s, session_timeout_s;
	unsigned banner_delay_ms;
	unsigned max_sessions_per_lcore;
	unsigned per_client_max_conns, per_client_rate_per_min;
	unsigned default_priority, notify_priority;
	unsigned max_received;
	unsigned ring_size;                  /* per priority ring */
	unsigned queue_wait_ms;              /* ring/writer wait before 451 */
	bool auth_plaintext;                 /* offer AUTH without TLS (lab) */

	char state_dir[256];
	unsigned durability;                 /* enum stor_durability order */
	unsigned map_size_mb;
	double high_watermark;

	char tls_cert[256], tls_key[256];
	unsigned lab_commit_delay_ms;        /* LAB ONLY fault injection */
};

#define CFG_RETRY_STEPS 16

/* [delivery]: scheduler and outbound SMTP */
struct cfg_delivery {
	bool enabled;                        /* default: on with smtp */
	unsigned max_active;                 /* delivery jobs in flight */
	unsigned max_conns_per_dest;
	unsigned max_msgs_per_conn;
	unsigned rate_per_dest;              /* messages/s, 0 = no limit */
	uint32_t retry_s[CFG_RETRY_STEPS];   /* backoff; the last repeats */
	unsigned n_retry;
	uint64_t max_lifetime_s;             /* then the recipient fails */
	uint64_t delay_warning_s;            /* NOTIFY=DELAY notice; 0 = off */
	unsigned down_after;                 /* failures that mark a link down */
	unsigned connect_timeout_s;
	unsigned idle_conn_s;                /* keep idle connections this long */
	char default_route[300];             /* HOST:PORT smarthost or "" */
	char tls_ca[256];                    /* CA file for tls=verify; "" = system */
	char helo_name[256];                 /* default [smtp] hostname */
};

#define CFG_LDAP_MAX_URIS 8

/* [ldap]: recipients, routes and AUTH from an LDAP server, cached in LMDB
 * (control/ldapdir.h). Filters hold %s (address or AUTH name), %u (its
 * local part), %d (its domain), %% (a '%'); values are RFC 4515-escaped
 * when substituted */
struct cfg_ldap {
	bool enabled;                        /* default no */
	char uris[CFG_LDAP_MAX_URIS][256];   /* failover in this order */
	unsigned n_uris;
	char bind_dn[512];                   /* "" = anonymous */
	char bind_password_file[256];        /* needed with bind_dn */
	char base[512];                      /* search base (required) */
	char recipient_filter[512];
	char auth_filter[512];               /* "" = AUTH from the local directory */
	char route_attr[64];                 /* "" = no routes from LDAP */
	char forward_attr[64];               /* "" = no forwarding from LDAP */
	char domains[1024];                  /* "" = every directory domain */
	unsigned timeout_ms;                 /* connect, bind and search */
	unsigned cache_ttl_s, negative_ttl_s;
	unsigned stale_max_s;                /* positive answers serve this long
					      * past their TTL while LDAP is down */
	unsigned retry_s;                    /* all servers down: wait this long */
	bool starttls;
	char tls_ca_file[256];               /* "" = system CAs */
};

enum cfg_huge { CFG_HUGE_AUTO = 0, CFG_HUGE_YES = 1, CFG_HUGE_NO = 2 };

struct cfg {
	char path[256];

	char nic_profile[256];
	char profile_dir[256];
	char profile_path[512];   /* resolved from the two above */

	char file_prefix[64];
	enum cfg_huge huge;
	unsigned memory_mb;       /* EAL -m; 0 = EAL default */
	char socket_mem[64];      /* EAL --socket-mem; "" = none */
	char log_level[64];       /* EAL --log-level; "" = none */
	bool telemetry;
	bool pdump;               /* secondaries may attach: no --huge-unlink */

	unsigned main_lcore;
	unsigned io_lcores[CFG_MAX_IO];
	unsigned n_io;

	uint32_t ip;              /* host order */
	uint8_t prefix_len;
	uint32_t gateway;         /* 0 = none */
	uint8_t mac[6];
	bool mac_set;

	unsigned mbufs;           /* 0 = the profile's [mempool] mbufs */

	/* [pools]/[tcp] keys present in the file, applied by cfg_net_apply */
	bool net_set[CFG_NET_OPTS];
	uint32_t net_val[CFG_NET_OPTS];

	bool svc_echo, svc_discard, svc_smtp;
	struct cfg_smtp smtp;

	unsigned worker_lcores[CFG_MAX_WORKERS];  /* n_workers 0: on io */
	unsigned n_workers;
	/* [lcores] cpu_map: lcore cpu_map_lcore[i] runs on CPU cpu_map_cpu[i];
	 * lcores not listed run on the CPU of their own number */
	unsigned cpu_map_lcore[CFG_MAX_CPU_MAP], cpu_map_cpu[CFG_MAX_CPU_MAP];
	unsigned n_cpu_map;

	unsigned idle_spins;      /* empty loop rounds before sleeping */
	unsigned idle_sleep_us_max; /* 0 = never sleep (pure busy poll) */

	unsigned stats_interval_s;  /* control role stats log; 0 = off */
	char ctl_socket[300];       /* default STATE_DIR/sluiced.sock */
	char metrics_listen[64];    /* /metrics A.B.C.D:PORT; "" = off */

	struct cfg_delivery delivery;
	struct cfg_ldap ldap;
};

/* cfg_lcore_cpu - the CPU an lcore runs on ([lcores] cpu_map, else its
 * own number) */
unsigned cfg_lcore_cpu(const struct cfg *c, unsigned lcore);

/* cfg_parse_duration - "90", "90s", "5m", "2h", "5d" -> seconds; 0 or -1 */
int cfg_parse_duration(const char *s, uint64_t *secs);

/* cfg_load - read and validate path; default_profile_dir is used when the
 * file has no [sluice] profile_dir. 0, or -1 with the reason in err:
 *   FILE: [section] key: "value" is not ...        (bad value)
 *   FILE: [section] key: unknown key (known: ...)  (typo)
 *   FILE: line N: ...                              (syntax) */
int cfg_load(const char *path, const char *default_profile_dir,
	     struct cfg *c, char *err, size_t errlen);

/* cfg_net_apply - fill net_config from the config: address, gateway and
 * every [pools]/[tcp] value present in the file (others untouched).
 * 0, or -1 with err when the merged values contradict each other. */
int cfg_net_apply(const struct cfg *c, struct net_config *nc, char *err,
		  size_t errlen);

#endif
