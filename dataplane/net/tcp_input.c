/* tcp_input.c - TCP segment input (stub) */
#include "net_types.h"

void tcp_input(struct net_stack *s, const struct net_ipinfo *ip,
	       const uint8_t *seg, uint16_t len)
{ (void)s; (void)ip; (void)seg; (void)len; }
void tcp_icmp_error(struct net_stack *s, uint8_t type, uint8_t code,
		    const uint8_t *inner, uint16_t len)
{ (void)s; (void)type; (void)code; (void)inner; (void)len; }
