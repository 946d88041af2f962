/*
 * tcp_flow.c - flow table: full connections keyed by their 4-tuple.
 *
 * Chained hash over tcp_conn.hnext with a power-of-two bucket array sized
 * at twice max_conns (allocated in tcp_create). The hash is a keyed
 * multiply-xorshift mix (keys derived from cfg.secret), cheaper than
 * SipHash per packet but not predictable without the key, so remote hosts
 * cannot aim many flows at one chain. TIME_WAIT entries live in their own
 * table (tcp_timewait.c) using the same hash function.
 */
#include "tcp.h"

/* tcp_flow_hash - keyed mix of the 4-tuple (host order) */
uint32_t tcp_flow_hash(const struct tcp_state *t, uint32_t laddr,
		       uint32_t raddr, uint16_t lport, uint16_t rport)
{
	uint64_t a = ((uint64_t)raddr << 32 | (uint32_t)rport << 16 | lport);
	uint64_t h = (a ^ t->hkey1) * t->hkey0;

	h ^= h >> 29;
	h = (h ^ laddr) * 0x9e3779b97f4a7c15ULL;
	h ^= h >> 32;
	return (uint32_t)h;
}

/* tcp_flow_lookup - find the connection of a 4-tuple, or NULL */
struct tcp_conn *tcp_flow_lookup(struct net_stack *s, uint32_t laddr,
				 uint32_t raddr, uint16_t lport,
				 uint16_t rport)
{
	struct tcp_state *t = s->tcp;
	uint32_t i = t->fbuckets[tcp_flow_hash(t, laddr, raddr, lport, rport) &
				 t->fmask];

	while (i != TCP_NIL) {
		struct tcp_conn *c = &t->conns[i];
		if (c->rport == rport && c->lport == lport &&
		    c->raddr == raddr && c->laddr == laddr)
			return c;
		i = c->hnext;
	}
	return NULL;
}

/* tcp_flow_insert - add a connection (caller checked it is not present) */
void tcp_flow_insert(struct net_stack *s, struct tcp_conn *c)
{
	struct tcp_state *t = s->tcp;
	uint32_t b = tcp_flow_hash(t, c->laddr, c->raddr, c->lport, c->rport) &
		     t->fmask;

	if (c->flags & TCP_CF_HASHED)
		return;
	c->hnext = t->fbuckets[b];
	t->fbuckets[b] = tcp_conn_idx(t, c);
	c->flags |= TCP_CF_HASHED;
	t->n_hashed++;
}

/* tcp_flow_remove - unlink a connection from its chain (no-op if absent) */
void tcp_flow_remove(struct net_stack *s, struct tcp_conn *c)
{
	struct tcp_state *t = s->tcp;
	uint32_t b, idx = tcp_conn_idx(t, c);
	uint32_t *pp;

	if (!(c->flags & TCP_CF_HASHED))
		return;
	b = tcp_flow_hash(t, c->laddr, c->raddr, c->lport, c->rport) &
	    t->fmask;
	for (pp = &t->fbuckets[b]; *pp != TCP_NIL; pp = &t->conns[*pp].hnext) {
		if (*pp == idx) {
			*pp = c->hnext;
			break;
		}
	}
	c->hnext = TCP_NIL;
	c->flags &= ~TCP_CF_HASHED;
	t->n_hashed--;
}
