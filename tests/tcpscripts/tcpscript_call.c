/*
 * tcpscript_call.c - application calls and directives of a script
 * (accept, connect, send, recv, close, expect, ...).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpscript_rt.h"

/* --- application calls ------------------------------------------------ */

static const char *const err_names[] = {
	"OK", "EINVAL", "ENOMEM", "EAGAIN", "EADDRINUSE", "ENOTCONN",
	"ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ECONNABORTED",
	"EHOSTUNREACH",
};
#define N_ERRS (int)(sizeof(err_names) / sizeof(err_names[0]))

/* parse_result - "N" or an error name ("EPIPE", "0"/"OK" too) as a
 * return value (errors negative); -1 on a bad word */
static int parse_result(const char *w, long long *v)
{
	char *end;

	const char *e = strncasecmp(w, "NET_", 4) == 0 ? w + 4 : w;

	for (int i = 0; i < N_ERRS; i++)
		if (!strcasecmp(e, err_names[i])) {
			*v = -i;
			return 0;
		}
	errno = 0;
	*v = strtoll(w, &end, 0);
	return (errno || *end || end == w) ? -1 : 0;
}

static const char *result_name(long long v, char *buf, size_t n)
{
	if (v < 0 && v > -N_ERRS)
		return err_names[-v];
	snprintf(buf, n, "%lld", v);
	return buf;
}

static const struct { const char *name; uint32_t bit; } ev_names[] = {
	{ "ACCEPTED", NET_EV_ACCEPTED }, { "CONNECTED", NET_EV_CONNECTED },
	{ "READABLE", NET_EV_READABLE }, { "WRITABLE", NET_EV_WRITABLE },
	{ "PEER_FIN", NET_EV_PEER_FIN }, { "CLOSED", NET_EV_CLOSED },
};

static uint32_t ev_bit(const char *w)
{
	for (size_t i = 0; i < sizeof(ev_names) / sizeof(ev_names[0]); i++)
		if (!strcasecmp(w, ev_names[i].name))
			return ev_names[i].bit;
	return 0;
}

static struct sock *cur(struct rt *r)
{
	if (r->cur_sock < 0) {
		rt_fail(r, "no current socket (use accept/connect first)");
		return NULL;
	}
	return &r->socks[r->cur_sock];
}

/* check_ret - compare a return value with the line's "= X" (or want) */
static void check_ret(struct rt *r, const char *what, long long got,
		      bool has_want, long long want)
{
	char a[32], b[32];

	if (!has_want)
		want = 0;
	if (got != want)
		rt_fail(r, "%s returned %s, expected %s", what,
		     result_name(got, a, sizeof(a)),
		     result_name(want, b, sizeof(b)));
}

/* state_eq - state names equal ignoring case, '-' and '_' ("FIN-WAIT-1"
 * matches FIN_WAIT1 and fin-wait-1) */
static bool state_eq(const char *a, const char *b)
{
	for (;;) {
		while (*a == '-' || *a == '_')
			a++;
		while (*b == '-' || *b == '_')
			b++;
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return false;
		if (!*a)
			return true;
		a++;
		b++;
	}
}

static int cmp_op(const char *op, uint64_t a, uint64_t b)
{
	if (!strcmp(op, "==")) return a == b;
	if (!strcmp(op, "!=")) return a != b;
	if (!strcmp(op, ">=")) return a >= b;
	if (!strcmp(op, "<=")) return a <= b;
	if (!strcmp(op, ">")) return a > b;
	if (!strcmp(op, "<")) return a < b;
	return -1;
}

/* counter_value - look a counter up by name; -1 if unknown */
static int counter_value(struct rt *r, const char *name, uint64_t *v)
{
	unsigned n = net_counters(r->s, NULL, 0);
	struct net_counter *c = calloc(n ? n : 1, sizeof(*c));
	int rc = -1;

	if (!c)
		abort();
	n = net_counters(r->s, c, n);
	for (unsigned i = 0; i < n; i++)
		if (c[i].name && !strcmp(c[i].name, name)) {
			*v = c[i].value;
			rc = 0;
			break;
		}
	free(c);
	return rc;
}

static void do_recv(struct rt *r, const struct ts_line *l, int argc,
		    char **argv, const bool *quoted, const uint32_t *qlen)
{
	struct sock *k = cur(r);
	struct flow *fl;
	long long want;
	size_t cap = r->cfg.rcvbuf + 65536u, total = 0;
	uint8_t *buf;
	ssize_t n;
	bool any = false;
	const char *lit = NULL;
	uint32_t litlen = 0;

	if (!k)
		return;
	fl = &r->flows[k->flow];
	if (argc < 2 || parse_result(argv[1], &want) < 0) {
		rt_fail(r, "recv N | recv ERROR expected");
		return;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "any") && !quoted[i])
			any = true;
		else if (!strcmp(argv[i], "=") && i + 1 < argc && quoted[i + 1]) {
			lit = argv[++i];
			litlen = qlen[i];
		} else {
			rt_fail(r, "recv: unexpected word '%s'", argv[i]);
			return;
		}
	}
	if (lit && want != (long long)litlen) {
		rt_fail(r, "recv %lld = \"...\" with a %u-byte string", want, litlen);
		return;
	}
	buf = malloc(cap);
	if (!buf)
		abort();
	for (;;) {
		n = net_recv(r->s, k->h, buf + total, cap - total);
		if (n <= 0 || (size_t)n == cap - total)
			break;
		total += (size_t)n;
	}
	if (n > 0)
		total += (size_t)n;
	rt_after_call(r);
	if (total == 0) {
		char a[32], b[32];

		if ((long long)n != want)
			rt_fail(r, "recv returned %s, expected %s",
			     result_name(n, a, sizeof(a)),
			     result_name(want, b, sizeof(b)));
	} else if ((long long)total != want) {
		rt_fail(r, "recv: %zu bytes readable, expected %lld", total, want);
	} else if (lit && memcmp(buf, lit, litlen) != 0) {
		rt_fail(r, "recv: data \"%.*s\" differs from the expected \"%s\"",
		     (int)(total > 60 ? 60 : total), buf, lit);
	} else if (!lit && !any) {
		size_t off = fl->app_read;

		if (off + total > fl->peer_rx_len ||
		    memcmp(buf, fl->peer_rx + off, total) != 0)
			rt_fail(r, "recv: the %zu bytes read at stream offset %zu "
			     "are not what the peer sent", total, off);
	}
	(void)l;
	fl->app_read += total;
	free(buf);
}

static void do_send(struct rt *r, int argc, char **argv, const bool *quoted,
		    const uint32_t *qlen)
{
	struct sock *k = cur(r);
	struct flow *fl;
	uint8_t *data;
	size_t len;
	long long want = -1;
	bool has_want = false;
	ssize_t n;

	if (!k)
		return;
	fl = &r->flows[k->flow];
	if (argc < 2) {
		rt_fail(r, "send N | send \"text\" expected");
		return;
	}
	if (argc == 4 && !strcmp(argv[2], "=")) {
		if (parse_result(argv[3], &want) < 0) {
			rt_fail(r, "bad result '%s'", argv[3]);
			return;
		}
		has_want = true;
	} else if (argc != 2) {
		rt_fail(r, "send: unexpected words");
		return;
	}
	if (quoted[1]) {
		len = qlen[1];
		data = malloc(len + 1);
		if (!data)
			abort();
		memcpy(data, argv[1], len);
	} else {
		char *end;

		len = strtoul(argv[1], &end, 0);
		if (*end || len > (64u << 20)) {
			rt_fail(r, "send: bad length '%s'", argv[1]);
			return;
		}
		data = malloc(len + 1);
		if (!data)
			abort();
		for (size_t i = 0; i < len; i++)
			data[i] = ts_pattern(fl->app_tx_len + i);
	}
	n = net_send(r->s, k->h, data, len);
	if (n > 0)
		rt_buf_put(&fl->app_tx, &fl->app_tx_len, &fl->app_tx_cap,
			fl->app_tx_len, data, (size_t)n);
	free(data);
	rt_after_call(r);
	check_ret(r, "send", n, true, has_want ? want : (long long)len);
	rt_poll_at(r, r->now);
}

/* rt_run_call - one application call or directive */
void rt_run_call(struct rt *r, const struct ts_line *l)
{
	char *argv[TS_MAX_ARGS];
	bool quoted[TS_MAX_ARGS];
	uint32_t qlen[TS_MAX_ARGS];
	int argc = 0;
	long long want = 0;
	bool has_want = false;
	const char *cmd;

	/* "@N" selects socket N (1-based, in order of appearance) */
	for (int i = 0; i < l->argc; i++) {
		if (!l->argquoted[i] && l->argv[i][0] == '@') {
			int k = atoi(l->argv[i] + 1);

			if (k < 1 || k > r->nsocks) {
				rt_fail(r, "no socket %s", l->argv[i]);
				return;
			}
			r->cur_sock = k - 1;
			continue;
		}
		argv[argc] = l->argv[i];
		quoted[argc] = l->argquoted[i];
		qlen[argc++] = l->arglen[i];
	}
	if (argc == 0)
		return;
	cmd = argv[0];
	if (!strcmp(cmd, "send")) {
		do_send(r, argc, argv, quoted, qlen);
		return;
	}
	if (!strcmp(cmd, "recv")) {
		do_recv(r, l, argc, argv, quoted, qlen);
		rt_poll_at(r, r->now);
		return;
	}
	/* generic trailing "= RESULT" */
	if (argc >= 3 && !strcmp(argv[argc - 2], "=") &&
	    strncmp(cmd, "expect", 6) != 0) {
		if (parse_result(argv[argc - 1], &want) < 0) {
			rt_fail(r, "bad result '%s'", argv[argc - 1]);
			return;
		}
		has_want = true;
		argc -= 2;
	}
	if (!strcmp(cmd, "listen") || !strcmp(cmd, "unlisten")) {
		long port = argc == 2 ? strtol(argv[1], NULL, 0) : 0;
		int rc;

		if (port <= 0 || port > 65535) {
			rt_fail(r, "%s PORT expected", cmd);
			return;
		}
		if (cmd[0] == 'l') {
			rc = net_listen(r->s, (uint16_t)port, NULL);
			if (rc == 0)
				r->def_stack_port = (uint16_t)port;
		} else {
			rc = net_unlisten(r->s, (uint16_t)port);
		}
		rt_after_call(r);
		check_ret(r, cmd, rc, has_want, want);
	} else if (!strcmp(cmd, "connect")) {
		long port = argc == 2 ? strtol(argv[1], NULL, 0) : 0;
		net_sock_t h = NET_SOCK_INVALID;
		int rc;

		if (port <= 0 || port > 65535) {
			rt_fail(r, "connect PORT expected");
			return;
		}
		rc = net_connect(r->s, PEER_IP, (uint16_t)port, NULL, r->now, &h);
		if (rc == 0) {
			int k = rt_sock_add(r, h, r->active_port, (uint16_t)port);

			r->cur_sock = k;
			r->flows[r->socks[k].flow].isn_locked = false;
		}
		rt_after_call(r);
		check_ret(r, "connect", rc, has_want, want);
	} else if (!strcmp(cmd, "accept")) {
		int found = -1;

		for (int i = 0; i < r->nsocks; i++)
			if (r->socks[i].accepted && !r->socks[i].taken) {
				found = i;
				break;
			}
		if (found < 0) {
			rt_fail(r, "accept: no NET_EV_ACCEPTED event");
			return;
		}
		r->socks[found].taken = true;
		r->socks[found].pending &= ~NET_EV_ACCEPTED;
		r->cur_sock = found;
	} else if (!strcmp(cmd, "shutdown") || !strcmp(cmd, "close") ||
		   !strcmp(cmd, "abort")) {
		struct sock *k = cur(r);
		int rc;

		if (!k)
			return;
		rc = cmd[0] == 's' ? net_shutdown(r->s, k->h) :
		     cmd[0] == 'c' ? net_close(r->s, k->h) :
				     net_abort(r->s, k->h);
		rt_after_call(r);
		check_ret(r, cmd, rc, has_want, want);
	} else if (!strcmp(cmd, "expect_event") ||
		   !strcmp(cmd, "expect_no_event")) {
		struct sock *k = cur(r);
		uint32_t bit = argc >= 2 ? ev_bit(argv[1]) : 0;

		if (!k)
			return;
		if (!bit || argc > 3) {
			rt_fail(r, "%s ACCEPTED|CONNECTED|READABLE|WRITABLE|"
			     "PEER_FIN|CLOSED [ERROR]", cmd);
			return;
		}
		if (cmd[7] == 'n') {
			if (k->pending & bit)
				rt_fail(r, "event %s is pending", argv[1]);
			return;
		}
		if (!(k->pending & bit)) {
			rt_fail(r, "no %s event (pending: 0x%02x)", argv[1],
			     k->pending);
			return;
		}
		if (argc == 3) {
			long long e;

			if (parse_result(argv[2], &e) < 0) {
				rt_fail(r, "bad error name '%s'", argv[2]);
				return;
			}
			if (k->error != -e)
				rt_fail(r, "event %s error %s, expected %s", argv[1],
				     k->error >= 0 && k->error < N_ERRS ?
				     err_names[k->error] : "?", argv[2]);
		}
		if (bit != NET_EV_CLOSED) /* CLOSED stays: the handle is dead */
			k->pending &= ~bit;
	} else if (!strcmp(cmd, "expect_state")) {
		struct sock *k = cur(r);
		struct net_sockinfo si;
		const char *st;

		if (!k)
			return;
		if (argc != 2) {
			rt_fail(r, "expect_state STATE");
			return;
		}
		st = net_sockinfo(r->s, k->h, &si) == 0 ?
		     net_state_name(si.state) : "CLOSED";
		if (!st || !state_eq(st, argv[1]))
			rt_fail(r, "state %s, expected %s", st ? st : "(null)",
			     argv[1]);
	} else if (!strcmp(cmd, "expect_counter")) {
		uint64_t v, want_v;
		char *end;
		int c;

		if (argc != 4) {
			rt_fail(r, "expect_counter NAME OP VALUE");
			return;
		}
		want_v = strtoull(argv[3], &end, 0);
		if (*end) {
			rt_fail(r, "bad value '%s'", argv[3]);
			return;
		}
		if (counter_value(r, argv[1], &v) < 0) {
			rt_fail(r, "no counter named %s", argv[1]);
			return;
		}
		c = cmp_op(argv[2], v, want_v);
		if (c < 0)
			rt_fail(r, "bad operator '%s' (== != >= <= > <)", argv[2]);
		else if (!c)
			rt_fail(r, "counter %s = %" PRIu64 ", expected %s %s",
			     argv[1], v, argv[2], argv[3]);
	} else if (!strcmp(cmd, "config")) {
		rt_fail(r, "config must come before anything else");
		return;
	} else if (!strcmp(cmd, "dump")) {
		unsigned n = net_counters(r->s, NULL, 0);
		struct net_counter *c = calloc(n ? n : 1, sizeof(*c));

		if (!c)
			abort();
		n = net_counters(r->s, c, n);
		for (unsigned i = 0; i < n; i++)
			if (c[i].value)
				printf("    %s = %" PRIu64 "\n", c[i].name,
				       c[i].value);
		free(c);
	} else {
		rt_fail(r, "unknown command '%s'", cmd);
		return;
	}
	rt_poll_at(r, r->now);
}
