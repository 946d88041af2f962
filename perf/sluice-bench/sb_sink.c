/*
 * sb_sink.c - "sluice-bench sink": an SMTP server that accepts mail as fast
 * as it can (or as badly as told), counts and times arrivals and checks
 * each message against the X-Sluice-Bench stamp the generator wrote.
 *
 * Speaks EHLO/HELO, MAIL, RCPT, DATA (dot-unstuffing, RFC 5321 4.5.2),
 * BDAT (RFC 3030), RSET, NOOP, VRFY, QUIT, STARTTLS (with --tls-cert/key),
 * pipelined input (RFC 2920: commands are answered in order, replies to a
 * batch leave together). The final reply to each message is 250, or 451/554
 * for a --reply-4xx/--reply-5xx share, optionally delayed (--delay-ms, and
 * server-wide from message --stall-at for --stall-ms).
 *
 * Output: a summary on stdout at exit (SIGINT/SIGTERM, --count accepted
 * messages, or --duration), and --json. Exit 1 if verification was on and
 * any message failed it (bad digest, missing stamp or duplicate).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sb_conn.h"
#include "sb_hist.h"
#include "sb_msg.h"
#include "sb_util.h"

int sb_sink_main(int argc, char **argv);

#define SINK_MAX_BAD 32
#define SINK_MAX_RUNS 16
#define SINK_MAX_SEQ (1u << 26)

struct sink_cfg {
	struct sockaddr_in listen;
	unsigned threads;
	uint64_t count, duration_us;
	double p4xx, p5xx;
	uint64_t delay_us, stall_at, stall_us, corrupt_seq;
	int greeting;
	bool verify, pipelining, chunking, progress;
	const char *json, *port_file;
	SSL_CTX *tls;
	uint64_t seed;
};

struct sink_stats {
	uint64_t conns, received, accepted, deferred, rejected, bytes;
	uint64_t ok, bad, no_stamp, dup, skew;
	uint64_t codes[600];
	struct sb_hist delivery;
	struct sb_series series;
};

/* shared by all threads */
static struct sink_cfg cfg;
static uint64_t arrivals;           /* atomic: arrival order, for --stall-at */
static uint64_t accepted_total;     /* atomic: for --count */
static volatile sig_atomic_t stop_flag;
static uint64_t t_start, t_start_wall;
static uint64_t stall_until;        /* atomic: end of the --stall-at pause */
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char run[40];
	uint8_t *bits;
	size_t nbytes;
} seen[SINK_MAX_RUNS];
static unsigned nseen;
static uint64_t bad_seqs[SINK_MAX_BAD];
static unsigned nbad_seqs;

enum ss_state { SS_CMD, SS_DATA, SS_BDAT, SS_HANDSHAKE, SS_DELAY, SS_CLOSING };

struct sink_sess {
	struct sb_conn c;
	struct sb_buf in, out;
	enum ss_state st;
	uint32_t ev;
	bool registered;
	struct sink_sess *prev, *next;
	/* transaction */
	bool have_mail, bdat_last, bdat_bad, msg_open;
	unsigned rcpts;
	uint64_t bdat_left;
	/* message content */
	bool in_body, bol, have_stamp, corrupt_pending;
	char hline[1024];
	size_t hlen;
	struct sb_stamp stamp;
	EVP_MD_CTX *md;
	uint64_t msg_bytes;
	uint64_t delay_until;
	char delayed[160];
};

struct sink_thread {
	unsigned id;
	int ep, lfd;
	uint64_t rng;
	struct sink_sess *head;
	struct sink_stats st;
	pthread_t th;
};

static void sink_usage(FILE *f)
{
	fputs(
"usage: sluice-bench sink [OPTIONS]\n"
"  -l, --listen HOST:PORT  address to accept on (default 127.0.0.1:2525; port 0 = any)\n"
"      --port-file FILE    write the port listened on to FILE\n"
"  -j, --threads N         accepting threads (SO_REUSEPORT; default 1)\n"
"  -n, --count N           exit after N accepted messages (default: no limit)\n"
"  -d, --duration T        exit after T (default 3600s); SIGINT/SIGTERM also end the run\n"
"      --verify            check each body against its X-Sluice-Bench digest\n"
"      --corrupt-check     same as --verify\n"
"      --reply-4xx PCT     answer PCT %% of messages 451 (deferral)\n"
"      --reply-5xx PCT     answer PCT %% of messages 554 (rejection)\n"
"      --delay-ms MS       hold every final reply MS milliseconds (slow receiver)\n"
"      --stall-at N --stall-ms MS   when the Nth message arrives, stall: hold the\n"
"                          final reply of every message until MS ms later\n"
"      --greeting CODE     greet with CODE instead of 220 (a server that refuses)\n"
"      --no-pipelining     do not offer PIPELINING     --no-chunking  nor CHUNKING\n"
"      --tls-cert FILE --tls-key FILE   offer STARTTLS\n"
"      --seed N            seed for the 4xx/5xx choice (default 1)\n"
"      --progress          one line per second on stderr\n"
"      --json FILE         write results as JSON at exit\n"
"      --debug-corrupt SEQ test only: flip a body byte of message SEQ before verifying\n",
	f);
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* seen_mark - note (run, seq); true if it was seen before */
static bool seen_mark(const char *run, uint64_t seq)
{
	bool dup = false;
	if (seq >= SINK_MAX_SEQ)
		return false;
	pthread_mutex_lock(&seen_mu);
	unsigned i = 0;
	for (; i < nseen; i++)
		if (!strcmp(seen[i].run, run))
			break;
	if (i == nseen && nseen < SINK_MAX_RUNS)
		strcpy(seen[nseen++].run, run);
	if (i < nseen) {
		size_t need = seq / 8 + 1;
		if (need > seen[i].nbytes) {
			size_t n = seen[i].nbytes ? seen[i].nbytes : 4096;
			while (n < need)
				n *= 2;
			uint8_t *p = realloc(seen[i].bits, n);
			if (!p)
				sb_die("out of memory");
			memset(p + seen[i].nbytes, 0, n - seen[i].nbytes);
			seen[i].bits = p;
			seen[i].nbytes = n;
		}
		dup = seen[i].bits[seq / 8] & (1u << (seq % 8));
		seen[i].bits[seq / 8] |= (uint8_t)(1u << (seq % 8));
	}
	pthread_mutex_unlock(&seen_mu);
	return dup;
}

static void reply(struct sink_sess *s, const char *text)
{
	sb_buf_append(&s->out, text, strlen(text));
	sb_buf_append(&s->out, "\r\n", 2);
}

static void arm(struct sink_thread *t, struct sink_sess *s)
{
	uint32_t want = 0;
	if (s->st != SS_DELAY && s->st != SS_CLOSING && sb_buf_avail(&s->in) < (1u << 20))
		want |= EPOLLIN;
	if (sb_buf_avail(&s->out) || s->c.want_write || s->st == SS_CLOSING)
		want |= EPOLLOUT;
	if (s->st == SS_HANDSHAKE)
		want |= EPOLLIN;
	if (s->registered && want == s->ev)
		return;
	struct epoll_event e = { .events = want, .data.ptr = s };
	if (epoll_ctl(t->ep, s->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s->c.fd, &e) < 0)
		sb_die("epoll_ctl: %s", strerror(errno));
	s->registered = true;
	s->ev = want;
}

static void sess_free(struct sink_thread *t, struct sink_sess *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		t->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	sb_conn_close(&s->c);
	sb_buf_free(&s->in);
	sb_buf_free(&s->out);
	if (s->md)
		EVP_MD_CTX_free(s->md);
	free(s);
}

static void txn_reset(struct sink_sess *s)
{
	s->have_mail = s->msg_open = s->bdat_bad = false;
	s->rcpts = 0;
}

/* msg_begin - a message body starts (DATA 354 or first BDAT chunk) */
static void msg_begin(struct sink_sess *s)
{
	s->msg_open = true;
	s->in_body = s->have_stamp = s->corrupt_pending = false;
	s->bol = true;
	s->hlen = 0;
	s->msg_bytes = 0;
	if (cfg.verify) {
		if (!s->md && !(s->md = EVP_MD_CTX_new()))
			sb_die("out of memory");
		EVP_DigestInit_ex(s->md, EVP_sha256(), NULL);
	}
}

/* header_line - one complete header line: find the stamp or the blank line */
static void header_line(struct sink_sess *s)
{
	if ((s->hlen == 2 && s->hline[0] == '\r') || (s->hlen == 1)) {
		s->in_body = true;
		if (s->have_stamp && cfg.corrupt_seq && s->stamp.seq == cfg.corrupt_seq)
			s->corrupt_pending = true;
		return;
	}
	size_t k = strlen(SB_STAMP_HDR);
	if (s->hlen > k && !strncasecmp(s->hline, SB_STAMP_HDR, k)) {
		size_t n = s->hlen;
		while (n > k && (s->hline[n - 1] == '\r' || s->hline[n - 1] == '\n'))
			n--;
		s->have_stamp = sb_stamp_parse(s->hline + k, n - k, &s->stamp) == 0;
	}
}

/* content - bytes of the message as the client meant them (unstuffed) */
static void content(struct sink_sess *s, const char *p, size_t n)
{
	s->msg_bytes += n;
	while (n && !s->in_body) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) + 1 : n;
		size_t room = sizeof(s->hline) - s->hlen;
		size_t c = take < room ? take : room;
		memcpy(s->hline + s->hlen, p, c);
		s->hlen += c;
		p += take;
		n -= take;
		if (nl) {
			header_line(s);
			s->hlen = 0;
		}
	}
	if (n && cfg.verify) {
		if (s->corrupt_pending) {
			char b = (char)(p[0] ^ 0x01);
			EVP_DigestUpdate(s->md, &b, 1);
			p++;
			n--;
			s->corrupt_pending = false;
		}
		if (n)
			EVP_DigestUpdate(s->md, p, n);
	}
}

/* msg_end - the whole message is in: verify, count, choose the reply */
static void msg_end(struct sink_thread *t, struct sink_sess *s)
{
	struct sink_stats *st = &t->st;
	uint64_t now = sb_now_us();
	uint64_t no = __atomic_add_fetch(&arrivals, 1, __ATOMIC_RELAXED);
	st->received++;
	st->bytes += s->msg_bytes;
	if (s->have_stamp) {
		uint64_t wall = sb_wall_us();
		if (wall >= s->stamp.wall_us)
			sb_hist_record(&st->delivery, wall - s->stamp.wall_us);
		else
			st->skew++;
	}
	if (cfg.verify) {
		uint8_t dg[32];
		unsigned len = 32;
		EVP_DigestFinal_ex(s->md, dg, &len);
		if (!s->have_stamp) {
			st->no_stamp++;
		} else if (memcmp(dg, s->stamp.digest, 32) != 0) {
			st->bad++;
			pthread_mutex_lock(&seen_mu);
			if (nbad_seqs < SINK_MAX_BAD)
				bad_seqs[nbad_seqs++] = s->stamp.seq;
			pthread_mutex_unlock(&seen_mu);
		} else {
			st->ok++;
		}
		if (s->have_stamp && seen_mark(s->stamp.run, s->stamp.seq))
			st->dup++;
	}
	double r = sb_rand01(&t->rng) * 100.0;
	const char *text;
	int code;
	char ok[80];
	if (r < cfg.p4xx) {
		code = 451;
		text = "451 4.3.0 sluice-bench sink: deferred (--reply-4xx)";
	} else if (r < cfg.p4xx + cfg.p5xx) {
		code = 554;
		text = "554 5.7.1 sluice-bench sink: rejected (--reply-5xx)";
	} else {
		code = 250;
		snprintf(ok, sizeof(ok), "250 2.0.0 Ok: queued as %llu", (unsigned long long)no);
		text = ok;
	}
	st->codes[code]++;
	size_t sec = (size_t)((now - t_start) / 1000000u);
	if (code == 250) {
		st->accepted++;
		__atomic_add_fetch(&accepted_total, 1, __ATOMIC_RELAXED);
		sb_series_add(&st->series, sec, 1, s->msg_bytes, 0);
	} else {
		if (code / 100 == 4)
			st->deferred++;
		else
			st->rejected++;
		sb_series_add(&st->series, sec, 0, 0, 1);
	}
	txn_reset(s);
	/* --stall-at: from the Nth arrival on, every final reply waits until the
	 * stall ends, whatever session it is on (a server-wide pause) */
	uint64_t until = now + cfg.delay_us;
	if (cfg.stall_at && no == cfg.stall_at)
		__atomic_store_n(&stall_until, now + cfg.stall_us, __ATOMIC_RELAXED);
	uint64_t su = __atomic_load_n(&stall_until, __ATOMIC_RELAXED);
	if (su > until)
		until = su;
	if (until > now) {
		snprintf(s->delayed, sizeof(s->delayed), "%s", text);
		s->delay_until = until;
		s->st = SS_DELAY;
	} else {
		reply(s, text);
		s->st = SS_CMD;
	}
}

static void ehlo_reply(struct sink_sess *s)
{
	const char *lines[8];
	int n = 0;
	lines[n++] = "sluice-bench-sink";
	if (cfg.pipelining)
		lines[n++] = "PIPELINING";
	lines[n++] = "8BITMIME";
	if (cfg.chunking)
		lines[n++] = "CHUNKING";
	if (cfg.tls && !s->c.ssl)
		lines[n++] = "STARTTLS";
	lines[n++] = "ENHANCEDSTATUSCODES";
	for (int i = 0; i < n; i++) {
		sb_buf_printf(&s->out, "250%c%s\r\n", i == n - 1 ? ' ' : '-', lines[i]);
	}
}

/* command - one command line (without CRLF) in SS_CMD */
static void command(struct sink_thread *t, struct sink_sess *s, char *line, size_t len)
{
	(void)t;
	line[len] = '\0';
	if (!strncasecmp(line, "EHLO ", 5) || !strcasecmp(line, "EHLO")) {
		txn_reset(s);
		ehlo_reply(s);
	} else if (!strncasecmp(line, "HELO", 4)) {
		txn_reset(s);
		reply(s, "250 sluice-bench-sink");
	} else if (!strncasecmp(line, "MAIL FROM:", 10)) {
		if (s->have_mail) {
			reply(s, "503 5.5.1 nested MAIL");
		} else {
			s->have_mail = true;
			s->rcpts = 0;
			reply(s, "250 2.1.0 Ok");
		}
	} else if (!strncasecmp(line, "RCPT TO:", 8)) {
		if (!s->have_mail) {
			reply(s, "503 5.5.1 need MAIL first");
		} else {
			s->rcpts++;
			reply(s, "250 2.1.5 Ok");
		}
	} else if (!strcasecmp(line, "DATA")) {
		if (!s->have_mail || !s->rcpts) {
			reply(s, "554 5.5.1 no valid recipients");
		} else {
			reply(s, "354 End data with <CR><LF>.<CR><LF>");
			msg_begin(s);
			s->st = SS_DATA;
		}
	} else if (!strncasecmp(line, "BDAT ", 5)) {
		char *end;
		unsigned long long n = strtoull(line + 5, &end, 10);
		if (end == line + 5) {
			reply(s, "501 5.5.4 BDAT needs a size");
			return;
		}
		while (*end == ' ')
			end++;
		s->bdat_last = !strcasecmp(end, "LAST");
		s->bdat_left = n;
		if (!s->have_mail || !s->rcpts)
			s->bdat_bad = true;
		else if (!s->msg_open)
			msg_begin(s);
		s->st = SS_BDAT;
	} else if (!strcasecmp(line, "RSET")) {
		txn_reset(s);
		reply(s, "250 2.0.0 Ok");
	} else if (!strcasecmp(line, "NOOP")) {
		reply(s, "250 2.0.0 Ok");
	} else if (!strncasecmp(line, "VRFY", 4)) {
		reply(s, "252 2.5.2 cannot verify");
	} else if (!strcasecmp(line, "QUIT")) {
		reply(s, "221 2.0.0 Bye");
		s->st = SS_CLOSING;
	} else if (!strcasecmp(line, "STARTTLS")) {
		if (!cfg.tls || s->c.ssl) {
			reply(s, "502 5.5.1 STARTTLS not available");
			return;
		}
		reply(s, "220 2.0.0 Ready to start TLS");
		s->st = SS_HANDSHAKE; /* after the 220 is flushed */
	} else {
		reply(s, "500 5.5.2 unknown command");
	}
}

/* process - consume buffered input in the session's state */
static void process(struct sink_thread *t, struct sink_sess *s)
{
	while (sb_buf_avail(&s->in)) {
		char *p = sb_buf_head(&s->in);
		size_t n = sb_buf_avail(&s->in);
		if (s->st == SS_CMD) {
			char *nl = memchr(p, '\n', n);
			if (!nl) {
				if (n > 4096) {
					reply(s, "500 5.5.2 line too long");
					s->st = SS_CLOSING;
				}
				return;
			}
			size_t len = (size_t)(nl - p);
			if (len && p[len - 1] == '\r')
				len--;
			char line[4100];
			memcpy(line, p, len < 4096 ? len : 4096);
			sb_buf_consume(&s->in, (size_t)(nl - p) + 1);
			command(t, s, line, len < 4096 ? len : 4096);
			if (s->st == SS_HANDSHAKE) { /* RFC 3207 5: discard what came before TLS */
				s->in.off = s->in.len = 0;
				return;
			}
		} else if (s->st == SS_DATA) {
			if (s->bol && p[0] == '.') {
				if (n < 3 && !memchr(p, '\n', n))
					return; /* wait: could be ".\r\n" */
				if ((n >= 3 && !memcmp(p, ".\r\n", 3)) || (n >= 2 && !memcmp(p, ".\n", 2))) {
					sb_buf_consume(&s->in, p[1] == '\r' ? 3 : 2);
					msg_end(t, s);
					continue;
				}
				sb_buf_consume(&s->in, 1); /* dot-unstuff */
				s->bol = false;
				continue;
			}
			char *nl = memchr(p, '\n', n);
			size_t take = nl ? (size_t)(nl - p) + 1 : n;
			content(s, p, take);
			s->bol = nl != NULL;
			sb_buf_consume(&s->in, take);
		} else if (s->st == SS_BDAT) {
			size_t take = n < s->bdat_left ? n : (size_t)s->bdat_left;
			if (!s->bdat_bad)
				content(s, p, take);
			sb_buf_consume(&s->in, take);
			s->bdat_left -= take;
			if (s->bdat_left == 0) {
				if (s->bdat_bad) {
					reply(s, "554 5.5.1 no valid recipients");
					txn_reset(s);
					s->st = SS_CMD;
				} else if (s->bdat_last) {
					msg_end(t, s);
				} else {
					reply(s, "250 2.0.0 chunk Ok");
					s->st = SS_CMD;
				}
			}
		} else {
			return; /* SS_DELAY / SS_CLOSING / SS_HANDSHAKE: not now */
		}
	}
}

/* pump - flush, read, process, flush; frees the session when it ends */
static void pump(struct sink_thread *t, struct sink_sess *s)
{
	for (int round = 0; round < 64; round++) {
		if (s->st == SS_HANDSHAKE && !sb_buf_avail(&s->out)) {
			if (!s->c.ssl && sb_conn_tls_start(&s->c, cfg.tls, true) < 0) {
				sess_free(t, s);
				return;
			}
			int r = sb_conn_handshake(&s->c);
			if (r < 0) {
				sess_free(t, s);
				return;
			}
			if (r == 0)
				break;
			s->st = SS_CMD;
			txn_reset(s);
		}
		if (sb_buf_avail(&s->out) || s->c.want_write) {
			if (sb_conn_write(&s->c, &s->out) < 0) {
				sess_free(t, s);
				return;
			}
		}
		if (s->st == SS_CLOSING) {
			if (!sb_buf_avail(&s->out)) {
				sess_free(t, s);
				return;
			}
			break;
		}
		if (s->st == SS_DELAY || s->st == SS_HANDSHAKE)
			break;
		if (sb_buf_avail(&s->out) > (4u << 20))
			break; /* client is not reading its replies: wait for EPOLLOUT */
		int r = sb_conn_read(&s->c, &s->in, 1u << 18);
		if (r == SB_CONN_EOF || r == SB_CONN_ERR) {
			sess_free(t, s);
			return;
		}
		if (r == 0 && round > 0)
			break;
		process(t, s);
		if (r == 0)
			break;
	}
	if (sb_buf_avail(&s->out) && !s->c.want_write) {
		if (sb_conn_write(&s->c, &s->out) < 0) {
			sess_free(t, s);
			return;
		}
		if (s->st == SS_CLOSING && !sb_buf_avail(&s->out)) {
			sess_free(t, s);
			return;
		}
	}
	arm(t, s);
}

static void accept_all(struct sink_thread *t)
{
	for (;;) {
		int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				fprintf(stderr, "sluice-bench sink: accept: %s\n", strerror(errno));
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct sink_sess *s = calloc(1, sizeof(*s));
		if (!s)
			sb_die("out of memory");
		sb_conn_init(&s->c, fd);
		s->next = t->head;
		if (t->head)
			t->head->prev = s;
		t->head = s;
		t->st.conns++;
		if (cfg.greeting != 220) {
			sb_buf_printf(&s->out, "%d sluice-bench sink: refusing (--greeting)\r\n", cfg.greeting);
			s->st = SS_CLOSING;
		} else {
			reply(s, "220 sluice-bench-sink ESMTP");
		}
		pump(t, s);
	}
}

/* stop_now - the run is over (signal, --count or --duration) */
static bool stop_now(uint64_t now)
{
	if (stop_flag)
		return true;
	if (cfg.count && __atomic_load_n(&accepted_total, __ATOMIC_RELAXED) >= cfg.count)
		return true;
	return now - t_start >= cfg.duration_us;
}

static void *thread_main(void *arg)
{
	struct sink_thread *t = arg;
	struct epoll_event ev[256];
	struct epoll_event le = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, t->lfd, &le) < 0)
		sb_die("epoll_ctl: %s", strerror(errno));
	for (;;) {
		uint64_t now = sb_now_us();
		if (stop_now(now))
			break;
		int timeout = 50;
		for (struct sink_sess *s = t->head; s; s = s->next)
			if (s->st == SS_DELAY) {
				int ms = s->delay_until > now ? (int)((s->delay_until - now + 999) / 1000) : 0;
				if (ms < timeout)
					timeout = ms;
			}
		int n = epoll_wait(t->ep, ev, 256, timeout);
		if (n < 0 && errno != EINTR)
			sb_die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			if (!ev[i].data.ptr)
				accept_all(t);
			else
				pump(t, ev[i].data.ptr);
		}
		now = sb_now_us();
		for (struct sink_sess *s = t->head, *nx; s; s = nx) {
			nx = s->next;
			if (s->st == SS_DELAY && now >= s->delay_until) {
				reply(s, s->delayed);
				s->st = SS_CMD;
				process(t, s); /* commands that queued up behind the reply */
				pump(t, s);
			}
		}
	}
	while (t->head)
		sess_free(t, t->head);
	close(t->lfd);
	close(t->ep);
	return NULL;
}

/* open_listener - bind (SO_REUSEPORT so threads can share the port) */
static int open_listener(struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		sb_die("socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0)
		sb_die("--listen: bind: %s", strerror(errno));
	if (listen(fd, 1024) < 0)
		sb_die("listen: %s", strerror(errno));
	socklen_t l = sizeof(*sa);
	getsockname(fd, (struct sockaddr *)sa, &l);
	return fd;
}

static void parse_args(int argc, char **argv)
{
	enum { O_PORTFILE = 256, O_VERIFY, O_R4, O_R5, O_DELAY, O_STALLAT, O_STALLMS, O_GREET,
	       O_NOPIPE, O_NOCHUNK, O_CERT, O_KEY, O_SEED, O_PROGRESS, O_JSON, O_CORRUPT, O_HELP };
	static const struct option lo[] = {
		{ "listen", 1, 0, 'l' }, { "threads", 1, 0, 'j' }, { "count", 1, 0, 'n' },
		{ "duration", 1, 0, 'd' }, { "port-file", 1, 0, O_PORTFILE },
		{ "verify", 0, 0, O_VERIFY }, { "corrupt-check", 0, 0, O_VERIFY },
		{ "reply-4xx", 1, 0, O_R4 }, { "reply-5xx", 1, 0, O_R5 }, { "delay-ms", 1, 0, O_DELAY },
		{ "stall-at", 1, 0, O_STALLAT }, { "stall-ms", 1, 0, O_STALLMS },
		{ "greeting", 1, 0, O_GREET }, { "no-pipelining", 0, 0, O_NOPIPE },
		{ "no-chunking", 0, 0, O_NOCHUNK }, { "tls-cert", 1, 0, O_CERT }, { "tls-key", 1, 0, O_KEY },
		{ "seed", 1, 0, O_SEED }, { "progress", 0, 0, O_PROGRESS }, { "json", 1, 0, O_JSON },
		{ "debug-corrupt", 1, 0, O_CORRUPT }, { "help", 0, 0, O_HELP }, { 0, 0, 0, 0 },
	};
	const char *cert = NULL, *key = NULL;
	int c;
	long long d;
	optind = 1;
	while ((c = getopt_long(argc, argv, "l:j:n:d:h", lo, NULL)) != -1) {
		switch (c) {
		case 'l': sb_parse_addr("--listen", optarg, &cfg.listen); break;
		case 'j': cfg.threads = (unsigned)sb_opt_ull("--threads", optarg); break;
		case 'n': cfg.count = sb_opt_ull("--count", optarg); break;
		case 'd':
			if ((d = sb_parse_duration_us(optarg)) <= 0)
				sb_die("--duration: '%s' is not a positive duration", optarg);
			cfg.duration_us = (uint64_t)d;
			break;
		case O_PORTFILE: cfg.port_file = optarg; break;
		case O_VERIFY: cfg.verify = true; break;
		case O_R4: cfg.p4xx = sb_opt_double("--reply-4xx", optarg); break;
		case O_R5: cfg.p5xx = sb_opt_double("--reply-5xx", optarg); break;
		case O_DELAY: cfg.delay_us = sb_opt_ull("--delay-ms", optarg) * 1000; break;
		case O_STALLAT: cfg.stall_at = sb_opt_ull("--stall-at", optarg); break;
		case O_STALLMS: cfg.stall_us = sb_opt_ull("--stall-ms", optarg) * 1000; break;
		case O_GREET: cfg.greeting = (int)sb_opt_ull("--greeting", optarg); break;
		case O_NOPIPE: cfg.pipelining = false; break;
		case O_NOCHUNK: cfg.chunking = false; break;
		case O_CERT: cert = optarg; break;
		case O_KEY: key = optarg; break;
		case O_SEED: cfg.seed = sb_opt_ull("--seed", optarg); break;
		case O_PROGRESS: cfg.progress = true; break;
		case O_JSON: cfg.json = optarg; break;
		case O_CORRUPT: cfg.corrupt_seq = sb_opt_ull("--debug-corrupt", optarg); break;
		case 'h': case O_HELP: sink_usage(stdout); exit(0);
		default: sink_usage(stderr); exit(2);
		}
	}
	if (optind < argc)
		sb_die("sink: unexpected argument '%s' (see sluice-bench sink --help)", argv[optind]);
	if (cfg.p4xx + cfg.p5xx > 100)
		sb_die("--reply-4xx + --reply-5xx exceed 100%%");
	if (cfg.greeting < 200 || cfg.greeting > 599)
		sb_die("--greeting: a reply code 200-599");
	if ((cert == NULL) != (key == NULL))
		sb_die("--tls-cert and --tls-key go together");
	if (cert)
		cfg.tls = sb_tls_server_ctx(cert, key);
	if (cfg.corrupt_seq && !cfg.verify)
		sb_die("--debug-corrupt needs --verify");
	if ((cfg.stall_at == 0) != (cfg.stall_us == 0))
		sb_die("--stall-at and --stall-ms go together");
	if (!cfg.threads)
		sb_die("--threads: at least 1");
}

static void print_summary(const struct sink_stats *st, double secs)
{
	FILE *f = stdout;
	fprintf(f, "sluice-bench sink on port %u: %.3f s, %llu connections\n\n", ntohs(cfg.listen.sin_port),
		secs, (unsigned long long)st->conns);
	fprintf(f, "%-16s %10llu\n", "received", (unsigned long long)st->received);
	fprintf(f, "%-16s %10llu   %.1f msg/s, %.2f MB/s\n", "accepted (250)", (unsigned long long)st->accepted,
		st->accepted / secs, st->bytes / secs / 1e6);
	fprintf(f, "%-16s %10llu\n", "deferred (451)", (unsigned long long)st->deferred);
	fprintf(f, "%-16s %10llu\n", "rejected (554)", (unsigned long long)st->rejected);
	if (cfg.verify) {
		fprintf(f, "verify: %llu ok, %llu bad digest, %llu without stamp, %llu duplicates",
			(unsigned long long)st->ok, (unsigned long long)st->bad,
			(unsigned long long)st->no_stamp, (unsigned long long)st->dup);
		if (nbad_seqs) {
			fputs("; bad seq:", f);
			for (unsigned i = 0; i < nbad_seqs; i++)
				fprintf(f, " %llu", (unsigned long long)bad_seqs[i]);
		}
		fputc('\n', f);
	}
	const struct sb_hist *h = &st->delivery;
	fprintf(f, "\n%-16s %8s %9s %9s %9s %9s %9s\n", "latency ms", "count", "p50", "p90", "p99", "p99.9", "max");
	fprintf(f, "%-16s %8llu %9.3f %9.3f %9.3f %9.3f %9.3f\n", "time-to-delivery",
		(unsigned long long)h->count, sb_hist_pct(h, 50) / 1e3, sb_hist_pct(h, 90) / 1e3,
		sb_hist_pct(h, 99) / 1e3, sb_hist_pct(h, 99.9) / 1e3, h->max / 1e3);
	if (st->skew)
		fprintf(f, "(%llu stamps from the future: clocks differ)\n", (unsigned long long)st->skew);
}

static void write_json(const struct sink_stats *st, double secs)
{
	FILE *f = fopen(cfg.json, "w");
	if (!f)
		sb_die("--json %s: %m", cfg.json);
	fprintf(f, "{\"tool\":\"sluice-bench\",\"mode\":\"sink\",\"start_unix_us\":%llu,"
		"\"port\":%u,\"elapsed_s\":%.6f,"
		"\"connections\":%llu,\"messages\":{\"received\":%llu,\"accepted\":%llu,\"deferred\":%llu,"
		"\"rejected\":%llu},\"bytes\":%llu,\"msgs_per_s\":%.3f,\"mb_per_s\":%.4f,\"replies\":{",
		(unsigned long long)t_start_wall, ntohs(cfg.listen.sin_port), secs,
		(unsigned long long)st->conns,
		(unsigned long long)st->received, (unsigned long long)st->accepted,
		(unsigned long long)st->deferred, (unsigned long long)st->rejected,
		(unsigned long long)st->bytes, st->accepted / secs, st->bytes / secs / 1e6);
	int first = 1;
	for (int c = 0; c < 600; c++)
		if (st->codes[c]) {
			fprintf(f, "%s\"%d\":%llu", first ? "" : ",", c, (unsigned long long)st->codes[c]);
			first = 0;
		}
	fprintf(f, "},\"verify\":{\"enabled\":%s,\"ok\":%llu,\"bad\":%llu,\"no_stamp\":%llu,"
		"\"duplicates\":%llu,\"bad_seqs\":[", cfg.verify ? "true" : "false",
		(unsigned long long)st->ok, (unsigned long long)st->bad,
		(unsigned long long)st->no_stamp, (unsigned long long)st->dup);
	for (unsigned i = 0; i < nbad_seqs; i++)
		fprintf(f, "%s%llu", i ? "," : "", (unsigned long long)bad_seqs[i]);
	fputs("],\"runs\":[", f);
	for (unsigned i = 0; i < nseen; i++) {
		fputs(i ? "," : "", f);
		sb_json_str(f, seen[i].run);
	}
	fprintf(f, "]},\"clock_skew\":%llu,\"latency\":{\"delivery\":", (unsigned long long)st->skew);
	sb_hist_json(&st->delivery, f, 1);
	fputs("},", f);
	sb_json_series(f, &st->series, (size_t)(secs + 0.999999));
	fputs("}\n", f);
	if (fclose(f) != 0)
		sb_die("--json %s: write failed", cfg.json);
}

int sb_sink_main(int argc, char **argv)
{
	cfg.threads = 1;
	cfg.duration_us = 3600ull * 1000000;
	cfg.pipelining = cfg.chunking = true;
	cfg.greeting = 220;
	cfg.seed = 1;
	sb_parse_addr("--listen", "127.0.0.1:2525", &cfg.listen);
	parse_args(argc, argv);

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct sink_thread *th = calloc(cfg.threads, sizeof(*th));
	if (!th)
		sb_die("out of memory");
	for (unsigned i = 0; i < cfg.threads; i++) {
		th[i].id = i;
		th[i].lfd = open_listener(&cfg.listen); /* port 0: the first picks, others share */
		th[i].ep = epoll_create1(EPOLL_CLOEXEC);
		th[i].rng = cfg.seed * 0x2545f4914f6cdd1dULL + i;
		sb_hist_init(&th[i].st.delivery);
	}
	if (cfg.port_file) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", cfg.port_file);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%u\n", ntohs(cfg.listen.sin_port)) < 0 || fclose(f) != 0 ||
		    rename(tmp, cfg.port_file) != 0)
			sb_die("--port-file %s: %m", cfg.port_file);
	}
	fprintf(stderr, "sluice-bench sink: listening on port %u\n", ntohs(cfg.listen.sin_port));
	t_start = sb_now_us();
	t_start_wall = sb_wall_us();
	for (unsigned i = 0; i < cfg.threads; i++)
		if (pthread_create(&th[i].th, NULL, thread_main, &th[i]) != 0)
			sb_die("pthread_create failed");

	bool tty = isatty(2);
	uint64_t next_tick = t_start + 1000000, prev = 0;
	while (!stop_now(sb_now_us())) {
		usleep(20000);
		uint64_t now = sb_now_us();
		if (cfg.progress && now >= next_tick) {
			uint64_t a = __atomic_load_n(&arrivals, __ATOMIC_RELAXED);
			fprintf(stderr, "%s[%6.1fs] received %llu  %llu msg/s  accepted %llu%s", tty ? "\r" : "",
				(now - t_start) / 1e6, (unsigned long long)a, (unsigned long long)(a - prev),
				(unsigned long long)__atomic_load_n(&accepted_total, __ATOMIC_RELAXED),
				tty ? "   " : "\n");
			prev = a;
			next_tick += 1000000;
		}
	}
	stop_flag = 1;
	if (cfg.progress && tty)
		fputc('\n', stderr);
	static struct sink_stats tot;
	sb_hist_init(&tot.delivery);
	for (unsigned i = 0; i < cfg.threads; i++) {
		pthread_join(th[i].th, NULL);
		struct sink_stats *s = &th[i].st;
		tot.conns += s->conns;
		tot.received += s->received;
		tot.accepted += s->accepted;
		tot.deferred += s->deferred;
		tot.rejected += s->rejected;
		tot.bytes += s->bytes;
		tot.ok += s->ok;
		tot.bad += s->bad;
		tot.no_stamp += s->no_stamp;
		tot.dup += s->dup;
		tot.skew += s->skew;
		for (int c = 0; c < 600; c++)
			tot.codes[c] += s->codes[c];
		sb_hist_merge(&tot.delivery, &s->delivery);
		sb_series_merge(&tot.series, &s->series);
	}
	double secs = (sb_now_us() - t_start) / 1e6;
	print_summary(&tot, secs);
	fflush(stdout);
	if (cfg.json)
		write_json(&tot, secs);
	for (unsigned i = 0; i < cfg.threads; i++)
		sb_series_free(&th[i].st.series);
	sb_series_free(&tot.series);
	free(th);
	for (unsigned i = 0; i < nseen; i++)
		free(seen[i].bits);
	if (cfg.tls)
		SSL_CTX_free(cfg.tls);
	return (cfg.verify && (tot.bad || tot.no_stamp || tot.dup)) ? 1 : 0;
}
