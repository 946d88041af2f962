/*
 * sb_dpdk.h - the generator's memif transport: a DPDK EAL in this process,
 * one net_memif port in the server role (sluiced's memif profile is the
 * client), and sluice's sans-IO TCP/IP stack (dataplane/net, through its
 * public header net.h only) driven on it. This file and sb_dpdk.c are the
 * only sluice-bench code that calls DPDK.
 *
 *   sb_dpdk_start   EAL (--file-prefix, --no-huge or hugepages unlinked,
 *                   --in-memory: no runtime files), the memif port (1 rx/1 tx
 *                   queue), waits for the client to connect (link up), makes
 *                   the stack with the static --local-ip, then opens probe
 *                   connections to --server until one is accepted (ARP is
 *                   the stack's), so the run starts with the server ready.
 *                   Dies with the reason on any failure.
 *   sb_dpdk_tport   the transport for the (single) worker: sb_tport.h over
 *                   net_connect/net_send/net_recv/net_events; its wait()
 *                   polls rx, runs net_poll, sends the tx burst, and sleeps
 *                   (bounded by --idle-sleep) only after many idle rounds.
 *   sb_dpdk_stop    port stopped and closed (a non-abstract socket file is
 *                   removed by the driver), EAL cleaned up.
 *
 * One worker only: one memif queue pair, one stack, no locks.
 * No TLS: the stack gives bytes, not a file descriptor (--starttls is
 * refused with memif).
 */
#ifndef SB_DPDK_H
#define SB_DPDK_H

#include "sb_gen.h"

void sb_dpdk_start(const struct gen_cfg *cfg);
struct sb_tport *sb_dpdk_tport(const struct gen_cfg *cfg, unsigned worker);
void sb_dpdk_stop(void);
/* sb_dpdk_stats - one line of port/stack counters for the summary */
void sb_dpdk_stats(char *buf, size_t n);

#endif
