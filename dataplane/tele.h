/*
 * tele.h - sluiced's rte_telemetry commands (read with dpdk-telemetry.py or
 * the socket /var/run/dpdk/<file-prefix>/dpdk_telemetry.v2):
 *
 *   /sluice/net/counters[,LCORE]  every net_counters() value summed over the
 *                                 io lcores (or of one lcore)
 *   /sluice/port/stats            rte_eth_stats of the port + glue drops
 *   /sluice/services              echo/discard connection and byte counts
 *   /sluice/lcores                reactor rounds/sleeps per io lcore
 *   /sluice/info                  version, config, port, address, lcores
 *   /sluice/smtp/counters         sessions, replies by class, ring depths
 *                                 per priority, pushback by cause, worker
 *                                 and writer counters, end-of-data->250
 *
 * DPDK 22.11 allows only [A-Za-z0-9_/] in dictionary names, so the dots of
 * stack counter names become slashes: "tcp.rst_tx" is "tcp/rst_tx".
 * Counters come from iolcore snapshots (fresh: the lcore copies them on
 * request), never from reading a running stack from this thread.
 */
#ifndef SLUICE_TELE_H
#define SLUICE_TELE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct iolcore;
struct nicprof;
struct port;

/* tele_init - register the commands; the pointers must stay valid until
 * tele_shutdown */
void tele_init(const struct cfg *c, const struct nicprof *prof,
	       const struct port *p, struct iolcore *io, unsigned n_io,
	       bool no_huge);
struct mstore;
struct worker;
/* tele_smtp - register /sluice/smtp/counters (m NULL: SMTP is off) */
void tele_smtp(struct mstore *m, struct worker *wk, unsigned n_wk);
/* tele_shutdown - commands answer an error from now on (port closing) */
void tele_shutdown(void);

/* tele_name - copy a counter name with '.' mapped to '/' */
void tele_name(const char *in, char *out, size_t outlen);

#endif
