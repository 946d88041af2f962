/* tcp_sock.c - socket API of net.h (stub) */
#include "net_types.h"

unsigned net_events(struct net_stack *s, struct net_event *ev, unsigned max)
{ (void)s; (void)ev; (void)max; return 0; }
int net_listen(struct net_stack *s, uint16_t port, void *user)
{ (void)s; (void)port; (void)user; return -NET_EINVAL; }
int net_unlisten(struct net_stack *s, uint16_t port)
{ (void)s; (void)port; return -NET_EINVAL; }
int net_connect(struct net_stack *s, uint32_t daddr, uint16_t dport,
		void *user, uint64_t now, net_sock_t *out)
{ (void)s; (void)daddr; (void)dport; (void)user; (void)now; *out = NET_SOCK_INVALID; return -NET_EINVAL; }
int net_set_user(struct net_stack *s, net_sock_t sock, void *user)
{ (void)s; (void)sock; (void)user; return -NET_EINVAL; }
ssize_t net_send(struct net_stack *s, net_sock_t sock, const void *buf, size_t len)
{ (void)s; (void)sock; (void)buf; (void)len; return -NET_EINVAL; }
size_t net_send_space(const struct net_stack *s, net_sock_t sock)
{ (void)s; (void)sock; return 0; }
ssize_t net_recv(struct net_stack *s, net_sock_t sock, void *buf, size_t len)
{ (void)s; (void)sock; (void)buf; (void)len; return -NET_EINVAL; }
ssize_t net_recv_peek(struct net_stack *s, net_sock_t sock, struct net_iov iov[2])
{ (void)s; (void)sock; (void)iov; return -NET_EINVAL; }
int net_recv_consume(struct net_stack *s, net_sock_t sock, size_t n)
{ (void)s; (void)sock; (void)n; return -NET_EINVAL; }
int net_shutdown(struct net_stack *s, net_sock_t sock)
{ (void)s; (void)sock; return -NET_EINVAL; }
int net_close(struct net_stack *s, net_sock_t sock)
{ (void)s; (void)sock; return -NET_EINVAL; }
int net_abort(struct net_stack *s, net_sock_t sock)
{ (void)s; (void)sock; return -NET_EINVAL; }
int net_sockinfo(const struct net_stack *s, net_sock_t sock, struct net_sockinfo *info)
{ (void)s; (void)sock; (void)info; return -NET_EINVAL; }
const char *net_state_name(int state) { (void)state; return "?"; }
