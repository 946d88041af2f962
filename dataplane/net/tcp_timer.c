/* tcp_timer.c - TCP timers (stub) */
#include "net_types.h"

void tcp_timers(struct net_stack *s) { (void)s; }
uint64_t tcp_next_deadline(const struct net_stack *s) { (void)s; return UINT64_MAX; }
