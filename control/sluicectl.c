/*
 * sluicectl - the operator's client for sluiced's control socket
 * (docs/cli.md). Plain C, no DPDK.
 *
 *   sluicectl [-s SOCKET | -c CONFIG] [--json] [-t TIMEOUT_S] COMMAND [ARGS...]
 *
 * Joins COMMAND and ARGS with single spaces into one request line, sends
 * it, reads the one JSON object sluiced answers, and prints its "text"
 * (people) or its "data" (--json, compact JSON on one line). Errors go to
 * stderr as "sluicectl: ...".
 *
 * Exit: 0 ok; 1 the command failed (sluiced said why); 2 usage error
 * (bad option, argument with a space or line break, line too long,
 * unreadable config); 3 sluiced not reachable (no socket, refused,
 * timeout, connection closed without a valid answer).
 *
 * sluicectl top [-n S] [-c N] [-d D] asks `stats` every S seconds and
 * draws rates from successive answers (client side: the JSON reader below
 * finds members by path); the screen is cleared with ANSI codes only when
 * stdout is a terminal; SIGINT/SIGTERM end it cleanly (exit 0).
 *
 * The JSON reader is strict (RFC 8259): the whole answer must be one
 * object, nested at most 64 deep; only the top-level members "ok",
 * "error", "text" and "data" are used.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define CTL_DEFAULT_SOCKET "/var/lib/sluice/sluiced.sock"
#define CTL_DEFAULT_STATE "/var/lib/sluice"
#define CTL_LINE_MAX 4096               /* ctlsock.h CTLSOCK_LINE_MAX */
#define CTL_RESP_MAX (64u << 20)
#define CTL_BODY_MAX (64u << 20)        /* ctlsock.h CTLSOCK_BODY_MAX */
#define CTL_PW_MAX 1024
#define CTL_JSON_DEPTH 64

enum { EXIT_OK = 0, EXIT_CMD = 1, EXIT_USAGE = 2, EXIT_UNREACH = 3 };

static void usage(FILE *f)
{
	fprintf(f,
"usage: sluicectl [-s SOCKET | -c CONFIG] [--json] [-t TIMEOUT_S] COMMAND [ARGS...]\n"
"\n"
"  -s, --socket PATH    control socket (default " CTL_DEFAULT_SOCKET ")\n"
"  -c, --config FILE    take the socket from sluice.conf: [control] socket,\n"
"                       else [storage] state_dir + /sluiced.sock\n"
"  -j, --json           print the answer's data as JSON\n"
"  -t, --timeout S      give up after S seconds (default 30)\n"
"  -h, --help           this text\n"
"\n"
"commands (sluicectl help asks sluiced for the full list):\n"
"  queue list [dest=D] [prio=0..7] [state=S] [limit=N] [after=ID]\n"
"  queue show ID\n"
"  queue hold|release|delete|retry ID... | dest=D\n"
"  queue flush\n"
"  link list | link show DEST | link open DEST | link close DEST\n"
"  status\n"
"  stats [dests=N]             counters, rings, queue, largest destinations\n"
"  top [-n SECONDS] [-c COUNT] [-d DESTS]   stats every SECONDS (default 2)\n"
"                              with rates; Ctrl-C ends it\n"
"  reload | drain [status] | undrain\n"
"  log level debug|info|warn | log debug MODULE on|off | log show\n"
"  dir list [domains|rcpts|users|nets|prio] [prefix=P] [limit=N]\n"
"  dir show TABLE NAME | dir remove TABLE NAME\n"
"  dir add LINE... | dir change LINE...   (a directory text-format line)\n"
"  dir passwd USER [--stdin]   (asks for the password, or reads a line)\n"
"  dir import FILE|-           (sends the file; replaces the directory)\n"
"  dir export\n"
"  help\n"
"\n"
"exit status: 0 ok, 1 command failed, 2 usage error, 3 sluiced not reachable\n");
}

static void err_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err_msg(const char *fmt, ...)
{
	va_list ap;

	fputs("sluicectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- config: [control] socket, else [storage] state_dir ---- */

/* trim - strip blanks at both ends in place */
static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		*--e = 0;
	return s;
}

/* config_socket - the socket path sluiced uses with this config; 0 or -1
 * (message printed) */
static int config_socket(const char *file, char *out, size_t cap)
{
	FILE *f = fopen(file, "r");
	char line[1024], sec[64] = "", sock[512] = "", state[512] = "";

	if (!f) {
		err_msg("cannot read config %s: %s", file, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *p, *eq, *k, *v;

		if ((p = strchr(line, '#')))
			*p = 0;
		p = trim(line);
		if (*p == '[') {
			char *e = strchr(p, ']');

			if (e) {
				*e = 0;
				snprintf(sec, sizeof(sec), "%s", trim(p + 1));
			}
			continue;
		}
		if (!(eq = strchr(p, '=')))
			continue;
		*eq = 0;
		k = trim(p);
		v = trim(eq + 1);
		if (!strcmp(sec, "control") && !strcmp(k, "socket"))
			snprintf(sock, sizeof(sock), "%s", v);
		else if (!strcmp(sec, "storage") && !strcmp(k, "state_dir"))
			snprintf(state, sizeof(state), "%s", v);
	}
	fclose(f);
	if (sock[0])
		snprintf(out, cap, "%s", sock);
	else
		snprintf(out, cap, "%s/sluiced.sock",
			 state[0] ? state : CTL_DEFAULT_STATE);
	return 0;
}

/* ---- strict JSON reader ---- */

struct jr {
	const char *p, *end;
};

static void jr_ws(struct jr *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
				 *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int hex4(const char *p, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

static size_t put_utf8(char *o, unsigned c)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xc0 | c >> 6);
		o[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xe0 | c >> 12);
		o[1] = (char)(0x80 | (c >> 6 & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | c >> 18);
	o[1] = (char)(0x80 | (c >> 12 & 0x3f));
	o[2] = (char)(0x80 | (c >> 6 & 0x3f));
	o[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* jr_string - a string at j->p; decoded into out (malloc'd, NUL-ended,
 * *n its length) when out is not NULL. 0 or -1 */
static int jr_string(struct jr *j, char **out, size_t *n)
{
	const char *s;
	char *o = NULL;
	size_t k = 0;

	if (j->p >= j->end || *j->p != '"')
		return -1;
	s = ++j->p;
	/* decoded text is never longer than the source */
	while (j->p < j->end && *j->p != '"') {
		if ((unsigned char)*j->p < 0x20)
			return -1;
		if (*j->p == '\\' && j->end - j->p < 2)
			return -1;
		j->p += *j->p == '\\' ? 2 : 1;
	}
	if (j->p >= j->end)
		return -1;
	if (out && !(o = malloc((size_t)(j->p - s) + 1)))
		return -1;
	for (const char *p = s; p < j->p;) {
		unsigned c, c2;

		if (*p != '\\') {
			if (o)
				o[k] = *p;
			k++;
			p++;
			continue;
		}
		p++;
		switch (*p) {
		case '"': case '\\': case '/':
			c = (unsigned char)*p;
			break;
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		case 'u':
			if (j->p - p < 5 || hex4(p + 1, &c) < 0)
				goto bad;
			p += 4;
			if (c >= 0xd800 && c <= 0xdbff && j->p - p >= 7 &&
			    p[1] == '\\' && p[2] == 'u' && hex4(p + 3, &c2) == 0 &&
			    c2 >= 0xdc00 && c2 <= 0xdfff) {
				c = 0x10000 + ((c - 0xd800) << 10) + (c2 - 0xdc00);
				p += 6;
			} else if (c >= 0xd800 && c <= 0xdfff) {
				c = 0xfffd;        /* lone surrogate */
			}
			break;
		default:
			goto bad;
		}
		p++;
		if (o)
			k += put_utf8(o + k, c);
		else
			k++;
	}
	j->p++;
	if (o) {
		o[k] = 0;
		*out = o;
		*n = k;
	}
	return 0;
bad:
	free(o);
	return -1;
}

static int jr_value(struct jr *j, int depth);

static int jr_number(struct jr *j)
{
	const char *p = j->p;

	if (p < j->end && *p == '-')
		p++;
	if (p >= j->end)
		return -1;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (p < j->end && *p >= '0' && *p <= '9')
			p++;
	else
		return -1;
	if (p < j->end && *p == '.') {
		if (++p >= j->end || *p < '0' || *p > '9')
			return -1;
		while (p < j->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < j->end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < j->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= j->end || *p < '0' || *p > '9')
			return -1;
		while (p < j->end && *p >= '0' && *p <= '9')
			p++;
	}
	j->p = p;
	return 0;
}

static int jr_lit(struct jr *j, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n))
		return -1;
	j->p += n;
	return 0;
}

/* jr_members - object or array body after the opening bracket */
static int jr_members(struct jr *j, int depth, bool obj)
{
	char close = obj ? '}' : ']';

	jr_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return 0;
	}
	for (;;) {
		jr_ws(j);
		if (obj) {
			if (jr_string(j, NULL, NULL) < 0)
				return -1;
			jr_ws(j);
			if (j->p >= j->end || *j->p++ != ':')
				return -1;
		}
		if (jr_value(j, depth + 1) < 0)
			return -1;
		jr_ws(j);
		if (j->p >= j->end)
			return -1;
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p++ != close)
			return -1;
		return 0;
	}
}

static int jr_value(struct jr *j, int depth)
{
	if (depth > CTL_JSON_DEPTH)
		return -1;
	jr_ws(j);
	if (j->p >= j->end)
		return -1;
	switch (*j->p) {
	case '{': j->p++; return jr_members(j, depth, true);
	case '[': j->p++; return jr_members(j, depth, false);
	case '"': return jr_string(j, NULL, NULL);
	case 't': return jr_lit(j, "true");
	case 'f': return jr_lit(j, "false");
	case 'n': return jr_lit(j, "null");
	default: return jr_number(j);
	}
}

struct answer {
	int ok;                      /* -1 missing, 0 false, 1 true */
	char *error, *text;
	size_t error_n, text_n;
	const char *data;            /* raw JSON span */
	size_t data_n;
};

/* parse_answer - the server's object; 0 or -1 (not valid) */
static int parse_answer(const char *buf, size_t n, struct answer *a)
{
	struct jr j = { buf, buf + n };

	memset(a, 0, sizeof(*a));
	a->ok = -1;
	jr_ws(&j);
	if (j.p >= j.end || *j.p++ != '{')
		return -1;
	jr_ws(&j);
	if (j.p < j.end && *j.p == '}') {
		j.p++;
	} else {
		for (;;) {
			char *key;
			size_t kn;
			const char *v;

			jr_ws(&j);
			if (jr_string(&j, &key, &kn) < 0)
				return -1;
			jr_ws(&j);
			if (j.p >= j.end || *j.p++ != ':') {
				free(key);
				return -1;
			}
			jr_ws(&j);
			v = j.p;
			bool str = v < j.end && *v == '"';
			int r;

			if (!strcmp(key, "ok") && !jr_lit(&j, "true"))
				r = 0, a->ok = 1;
			else if (!strcmp(key, "ok") && !jr_lit(&j, "false"))
				r = 0, a->ok = 0;
			else if (!strcmp(key, "error") && str && !a->error)
				r = jr_string(&j, &a->error, &a->error_n);
			else if (!strcmp(key, "text") && str && !a->text)
				r = jr_string(&j, &a->text, &a->text_n);
			else
				r = jr_value(&j, 1);
			if (r < 0 || j.p == v) {
				free(key);
				return -1;
			}
			if (!strcmp(key, "data")) {
				a->data = v;
				a->data_n = (size_t)(j.p - v);
			}
			free(key);
			jr_ws(&j);
			if (j.p < j.end && *j.p == ',') {
				j.p++;
				continue;
			}
			if (j.p >= j.end || *j.p++ != '}')
				return -1;
			break;
		}
	}
	jr_ws(&j);
	return j.p == j.end && a->ok >= 0 ? 0 : -1;
}

/* ---- talking to sluiced ---- */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* wait_fd - poll for ev until deadline; 1 ready, 0 timeout */
static int wait_fd(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - mono_ms();
		struct pollfd p = { .fd = fd, .events = ev };
		int r;

		if (left <= 0)
			return 0;
		r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return 1;      /* let the next call report it */
	}
}

/* request - send line, read the answer into *resp; 0 or an exit code */
static int request(const char *path, const char *line, const char *body,
		   size_t body_n, unsigned timeout_s, char **resp,
		   size_t *resp_n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t deadline = mono_ms() + (int64_t)timeout_s * 1000;
	size_t n = strlen(line), off = 0, cap = 65536, got = 0;
	char *buf;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		err_msg("socket path %s is too long", path);
		return EXIT_USAGE;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		err_msg("socket: %s", strerror(errno));
		return EXIT_UNREACH;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EAGAIN && errno != EINPROGRESS) {
			err_msg("cannot reach sluiced at %s: %s (is sluiced "
				"running? -s or -c name another socket)", path,
				strerror(errno));
			close(fd);
			return EXIT_UNREACH;
		}
		/* listen backlog full: connect again until the deadline */
		for (;;) {
			if (mono_ms() >= deadline) {
				err_msg("cannot reach sluiced at %s: it accepts "
					"no connection (timeout %us)", path,
					timeout_s);
				close(fd);
				return EXIT_UNREACH;
			}
			usleep(10000);
			if (connect(fd, (struct sockaddr *)&sa,
				    sizeof(sa)) == 0 || errno == EISCONN)
				break;
			if (errno != EAGAIN && errno != EINPROGRESS &&
			    errno != EALREADY) {
				err_msg("cannot reach sluiced at %s: %s", path,
					strerror(errno));
				close(fd);
				return EXIT_UNREACH;
			}
		}
	}
	while (off < n) {
		ssize_t w;

		if (!wait_fd(fd, POLLOUT, deadline))
			goto timeout;
		w = send(fd, line + off, n - off, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			err_msg("sending to sluiced at %s: %s", path,
				strerror(errno));
			close(fd);
			return EXIT_UNREACH;
		}
		if (w > 0)
			off += (size_t)w;
	}
	for (off = 0; body && off < body_n;) {
		ssize_t w;

		if (!wait_fd(fd, POLLOUT, deadline))
			goto timeout;
		w = send(fd, body + off, body_n - off, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			err_msg("sending to sluiced at %s: %s", path,
				strerror(errno));
			close(fd);
			return EXIT_UNREACH;
		}
		if (w > 0)
			off += (size_t)w;
	}
	if (!(buf = malloc(cap))) {
		err_msg("out of memory");
		close(fd);
		return EXIT_UNREACH;
	}
	for (;;) {
		ssize_t r;

		if (got == cap) {
			char *nb;

			if (cap >= CTL_RESP_MAX || !(nb = realloc(buf, cap * 2))) {
				err_msg("answer from sluiced is too large");
				free(buf);
				close(fd);
				return EXIT_UNREACH;
			}
			buf = nb;
			cap *= 2;
		}
		if (!wait_fd(fd, POLLIN, deadline)) {
			free(buf);
			goto timeout;
		}
		r = recv(fd, buf + got, cap - got, 0);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			err_msg("reading from sluiced at %s: %s", path,
				strerror(errno));
			free(buf);
			close(fd);
			return EXIT_UNREACH;
		}
		got += (size_t)r;
	}
	close(fd);
	*resp = buf;
	*resp_n = got;
	return 0;
timeout:
	err_msg("no answer from sluiced at %s within %us", path, timeout_s);
	close(fd);
	return EXIT_UNREACH;
}

/* read_all - the whole file (path "-": stdin) into *out; 0 or -1 */
static int read_all(const char *path, char **out, size_t *n)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	size_t cap = 65536, k = 0;
	char *b;

	if (!f) {
		err_msg("cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	b = malloc(cap);
	while (b) {
		size_t r = fread(b + k, 1, cap - k, f);

		k += r;
		if (k < cap)
			break;
		if (cap >= CTL_BODY_MAX) {
			err_msg("%s: larger than %u MiB (sluiced takes at most "
				"that in one import)", path, CTL_BODY_MAX >> 20);
			free(b);
			b = NULL;
			break;
		}
		char *nb = realloc(b, cap * 2);

		if (!nb) {
			free(b);
			b = NULL;
			break;
		}
		b = nb;
		cap *= 2;
	}
	if (b && ferror(f)) {
		err_msg("reading %s: %s", path, strerror(errno));
		free(b);
		b = NULL;
	}
	if (f != stdin)
		fclose(f);
	if (!b)
		return -1;
	*out = b;
	*n = k;
	return 0;
}

/* read_pw_line - one line from f without its line end; length or -1 */
static int read_pw_line(FILE *f, char *pw, size_t cap)
{
	size_t n;

	if (!fgets(pw, (int)cap, f))
		return -1;
	n = strlen(pw);
	if (n && pw[n - 1] != '\n' && !feof(f))
		return -2;                       /* too long */
	while (n && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
		pw[--n] = 0;
	return (int)n;
}

/* get_password - from stdin (one line) or the terminal, twice, without
 * echo; 0 or an exit code */
static int get_password(bool from_stdin, const char *user, char *pw,
			size_t cap)
{
	char again[CTL_PW_MAX + 2];
	struct termios old, noecho;
	FILE *tty;
	int n, m;

	if (from_stdin) {
		n = read_pw_line(stdin, pw, cap);
		if (n <= 0) {
			err_msg("dir passwd --stdin: %s", n == -2 ?
				"password longer than 1024 bytes" :
				"no password on stdin (one line)");
			return EXIT_USAGE;
		}
		return 0;
	}
	if (!(tty = fopen("/dev/tty", "r+"))) {
		err_msg("dir passwd: no terminal to ask for the password (use "
			"--stdin)");
		return EXIT_USAGE;
	}
	tcgetattr(fileno(tty), &old);
	noecho = old;
	noecho.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(fileno(tty), TCSAFLUSH, &noecho);
	fprintf(tty, "New password for %s: ", user);
	fflush(tty);
	n = read_pw_line(tty, pw, cap);
	fprintf(tty, "\nRetype it: ");
	fflush(tty);
	m = n > 0 ? read_pw_line(tty, again, sizeof(again)) : -1;
	fputc('\n', tty);
	tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fclose(tty);
	if (n <= 0 || m != n || strcmp(pw, again)) {
		explicit_bzero(again, sizeof(again));
		err_msg("dir passwd: %s", n == 0 ? "empty password" :
			n == -2 ? "password longer than 1024 bytes" :
			"the passwords differ; nothing was changed");
		return EXIT_USAGE;
	}
	explicit_bzero(again, sizeof(again));
	return 0;
}

/* payload_cmd - dir import FILE / dir passwd USER [--stdin]: the request
 * line and its payload (the line ends in "+LEN"). 0 (not one of them:
 * *line untouched), 1 built, or -exit code */
static int payload_cmd(int argc, char **argv, char **line, char **body,
		       size_t *body_n)
{
	static char pw[CTL_PW_MAX + 2];
	char name[128];
	const char *base;
	size_t k;

	if (argc < 2 || strcmp(argv[0], "dir") ||
	    (strcmp(argv[1], "import") && strcmp(argv[1], "passwd")))
		return 0;
	if (!strcmp(argv[1], "import")) {
		if (argc != 3) {
			err_msg("usage: dir import FILE (- for stdin)");
			return -EXIT_USAGE;
		}
		if (read_all(argv[2], body, body_n) < 0)
			return -EXIT_USAGE;
		base = strrchr(argv[2], '/');
		base = base ? base + 1 : argv[2];
		snprintf(name, sizeof(name), "%s", strcmp(argv[2], "-") ? base
			 : "stdin");
		for (k = 0; name[k]; k++)
			if ((unsigned char)name[k] <= ' ' || name[k] == '+' ||
			    (unsigned char)name[k] >= 0x7f)
				name[k] = '_';
		if (!name[0])
			snprintf(name, sizeof(name), "import");
		if (!(*line = malloc(strlen(name) + 40)))
			return -EXIT_UNREACH;
		sprintf(*line, "dir import %s +%zu\n", name, *body_n);
		return 1;
	}
	bool from_stdin = false;
	const char *user = NULL;

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--stdin"))
			from_stdin = true;
		else if (!user)
			user = argv[i];
		else
			user = NULL, i = argc;
	}
	if (!user || argc > 4 || strpbrk(user, " \t\r\n")) {
		err_msg("usage: dir passwd USER [--stdin]");
		return -EXIT_USAGE;
	}
	int rc = get_password(from_stdin, user, pw, sizeof(pw));

	if (rc)
		return -rc;
	*body = pw;
	*body_n = strlen(pw);
	if (!(*line = malloc(strlen(user) + 40)))
		return -EXIT_UNREACH;
	sprintf(*line, "dir passwd %s +%zu\n", user, *body_n);
	return 1;
}

/* ---- top: stats every N seconds, rates from successive samples ---- */

#define TOP_DESTS 10

static volatile sig_atomic_t top_stop;

static void top_on_signal(int sig)
{
	(void)sig;
	top_stop = 1;
}

/* jv_member - the value of key in the object at p, or NULL */
static const char *jv_member(const char *p, const char *end, const char *key)
{
	struct jr j = { p, end };

	jr_ws(&j);
	if (j.p >= j.end || *j.p++ != '{')
		return NULL;
	jr_ws(&j);
	if (j.p < j.end && *j.p == '}')
		return NULL;
	for (;;) {
		char *k;
		size_t kn;
		bool hit;

		jr_ws(&j);
		if (jr_string(&j, &k, &kn) < 0)
			return NULL;
		hit = !strcmp(k, key);
		free(k);
		jr_ws(&j);
		if (j.p >= j.end || *j.p++ != ':')
			return NULL;
		jr_ws(&j);
		if (hit)
			return j.p;
		if (jr_value(&j, 1) < 0)
			return NULL;
		jr_ws(&j);
		if (j.p >= j.end || *j.p != ',')
			return NULL;
		j.p++;
	}
}

/* jv_index - element i of the array at p, or NULL */
static const char *jv_index(const char *p, const char *end, unsigned i)
{
	struct jr j = { p, end };

	jr_ws(&j);
	if (j.p >= j.end || *j.p++ != '[')
		return NULL;
	jr_ws(&j);
	if (j.p < j.end && *j.p == ']')
		return NULL;
	for (unsigned k = 0;; k++) {
		jr_ws(&j);
		if (k == i)
			return j.p;
		if (jr_value(&j, 1) < 0)
			return NULL;
		jr_ws(&j);
		if (j.p >= j.end || *j.p != ',')
			return NULL;
		j.p++;
	}
}

/* jv_path - follow "a.b.3.c" (numbers index arrays) from p; NULL if any
 * step is missing */
static const char *jv_path(const char *p, const char *end, const char *path)
{
	char seg[64];

	while (p && *path) {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(seg))
			return NULL;
		memcpy(seg, path, n);
		seg[n] = 0;
		path += n + (path[n] == '.');
		if (n && strspn(seg, "0123456789") == n)   /* "3", not "4xx" */
			p = jv_index(p, end, (unsigned)strtoul(seg, NULL, 10));
		else
			p = jv_member(p, end, seg);
	}
	return p;
}

/* a sample: the data object of one stats answer */
struct top_sample {
	char *resp;
	const char *d, *end;
};

/* top_num - number at path (printf-style), or -1 when absent / null */
static double top_num(const struct top_sample *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static double top_num(const struct top_sample *s, const char *fmt, ...)
{
	char path[128];
	const char *v;
	va_list ap;

	if (!s->resp)
		return -1;
	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	v = jv_path(s->d, s->end, path);
	if (!v || (*v != '-' && (*v < '0' || *v > '9')))
		return -1;
	return strtod(v, NULL);
}

/* top_str - string at path into out ("" when absent) */
static const char *top_str(const struct top_sample *s, const char *path,
			   char *out, size_t cap)
{
	const char *v = s->resp ? jv_path(s->d, s->end, path) : NULL;
	struct jr j = { v, s->end };
	char *t;
	size_t n;

	out[0] = 0;
	if (v && jr_string(&j, &t, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
				t[i] = '?';
		snprintf(out, cap, "%s", t);
		free(t);
	}
	return out;
}

/* top_rate - "%.1f" per second between two samples, or "-" */
static const char *top_rate(double now, double prev, double secs, char *out,
			    size_t cap)
{
	if (now < 0 || prev < 0 || secs <= 0 || now < prev)
		snprintf(out, cap, "-");
	else
		snprintf(out, cap, "%.1f", (now - prev) / secs);
	return out;
}

static const char *top_us(double us, char *out, size_t cap)
{
	if (us <= 0)
		snprintf(out, cap, "-");
	else if (us < 1000)
		snprintf(out, cap, "%.0f us", us);
	else if (us < 1e6)
		snprintf(out, cap, "%.1f ms", us / 1e3);
	else
		snprintf(out, cap, "%.1f s", us / 1e6);
	return out;
}

/* top_frame - one screen from sample c (p: the previous one or empty) */
static void top_frame(const struct top_sample *c, const struct top_sample *p,
		      unsigned n, unsigned count, double interval)
{
	static const char *const states[] = { "ready", "active", "deferred",
					      "held", "hold" };
	double secs = p->resp ? (top_num(c, "sampled_us") -
				 top_num(p, "sampled_us")) / 1e6 : 0;
	double up = top_num(c, "uptime_s");
	char r[8][32], tm[32], s1[64], s2[64];
	time_t now = (time_t)(top_num(c, "time_us") / 1e6);
	struct tm t;

	gmtime_r(&now, &t);
	strftime(tm, sizeof(tm), "%Y-%m-%d %H:%M:%S", &t);
	printf("sluice top  %s UTC  up %.0fd %02.0fh%02.0fm%02.0fs  every "
	       "%.1f s  sample %u", tm, up >= 0 ? (double)((long)up / 86400) : 0,
	       up >= 0 ? (double)((long)up / 3600 % 24) : 0,
	       up >= 0 ? (double)((long)up / 60 % 60) : 0,
	       up >= 0 ? (double)((long)up % 60) : 0, interval, n);
	if (count)
		printf("/%u", count);
	printf("\n");
#define RATE(i, path) top_rate(top_num(c, path), top_num(p, path), secs, \
			       r[i], sizeof(r[i]))
	printf("per second: accepted %s  delivered %s  deferred %s  bounced "
	       "%s  packets rx %s tx %s  drops %s\n",
	       RATE(0, "totals.accepted"), RATE(1, "delivery.delivered"),
	       RATE(2, "delivery.deferred"), RATE(3, "delivery.failed"),
	       RATE(4, "totals.rx_packets"), RATE(5, "totals.tx_packets"),
	       RATE(6, "totals.drops"));
	if (top_num(c, "queue.messages") >= 0) {
		printf("queue: %.0f messages (", top_num(c, "queue.messages"));
		for (unsigned k = 0; k < 5; k++)
			printf("%s%s %.0f", k ? ", " : "", states[k],
			       top_num(c, "queue.by_state.%s", states[k]));
		printf("), jobs out %.0f; by priority",
		       top_num(c, "queue.jobs_active"));
		for (unsigned k = 0; k < 8; k++)
			printf(" %u:%.0f", k, top_num(c, "queue.by_priority.%u",
						     k));
		printf("\ndelivery: %.1f/s over 10 s, arrival to delivered p50 "
		       "%s p99 %s\n", top_num(c, "delivery.delivered_per_s"),
		       top_us(top_num(c, "delivery.deliver_p99_us") > 0 ?
			      top_num(c, "delivery.deliver_p50_us") : 0, s1,
			      sizeof(s1)),
		       top_us(top_num(c, "delivery.deliver_p99_us"), s2,
			      sizeof(s2)));
	} else {
		printf("queue: scheduler not running\n");
	}
	if (top_num(c, "rings.dres") >= 0) {
		printf("rings: prio");
		for (unsigned k = 0; k < 8; k++)
			printf("%c%.0f", k ? '/' : ' ',
			       top_num(c, "rings.prio.%u", k));
		printf(", djob");
		for (unsigned k = 0; top_num(c, "rings.djob.%u", k) >= 0; k++)
			printf("%c%.0f", k ? '/' : ' ',
			       top_num(c, "rings.djob.%u", k));
		printf(", dres %.0f, new %.0f\n", top_num(c, "rings.dres"),
		       top_num(c, "rings.sched_new"));
	}
	printf("%-5s %-7s %9s %9s %6s %5s %4s %9s %6s %6s %6s %5s\n", "LCORE",
	       "STATE", "RX/S", "TX/S", "SESS/S", "OPEN", "WAIT", "ACCEPT/S",
	       "4XX/S", "5XX/S", "PUSH/S", "BUSY%");
	for (unsigned k = 0; top_num(c, "lcores.%u.lcore", k) >= 0; k++) {
		char st[16], a[6][32];
		double dr = top_num(c, "lcores.%u.rounds", k) -
			    top_num(p, "lcores.%u.rounds", k);
		double db = top_num(c, "lcores.%u.busy_rounds", k) -
			    top_num(p, "lcores.%u.busy_rounds", k);
		double pc = 0, pp = 0;
		static const char *const pb[] = { "ring_full", "wait_timeout",
						  "queue_full", "store_full" };
		bool same = p->resp && top_num(p, "lcores.%u.lcore", k) ==
					top_num(c, "lcores.%u.lcore", k);
		char path[64];

		for (unsigned i = 0; i < 4; i++) {
			pc += top_num(c, "lcores.%u.smtp.pushback.%s", k, pb[i]);
			pp += same ? top_num(p, "lcores.%u.smtp.pushback.%s", k,
					     pb[i]) : -1e18;
		}
		top_str(c, (snprintf(path, sizeof(path), "lcores.%u.state", k),
			    path), st, sizeof(st));
#define LRATE(i, f) top_rate(top_num(c, "lcores.%u." f, k), same ? \
		top_num(p, "lcores.%u." f, k) : -1, secs, a[i], sizeof(a[i]))
		printf("%-5.0f %-7s %9s %9s %6s %5.0f %4.0f %9s %6s %6s %6s ",
		       top_num(c, "lcores.%u.lcore", k), st,
		       LRATE(0, "packets.rx"), LRATE(1, "packets.tx"),
		       LRATE(2, "smtp.sessions"),
		       top_num(c, "lcores.%u.smtp.active", k),
		       top_num(c, "lcores.%u.smtp.waiting", k),
		       LRATE(3, "smtp.accepted"), LRATE(4, "smtp.replies.4xx"),
		       LRATE(5, "smtp.replies.5xx"),
		       top_rate(pc, pp, secs, r[7], sizeof(r[7])));
#undef LRATE
		if (same && dr > 0)
			printf("%5.1f\n", 100.0 * db / dr);
		else
			printf("%5s\n", "-");
	}
#undef RATE
	if (top_num(c, "destinations.total") < 0)
		return;
	printf("destinations: %.0f, largest queues:\n",
	       top_num(c, "destinations.total"));
	printf("  %-28s %-6s %7s %7s %6s %7s  %s\n", "DESTINATION", "LINK",
	       "QUEUED", "HELD", "ACTIVE", "OLDEST", "LAST ERROR");
	for (unsigned k = 0; top_num(c, "destinations.largest.%u.queued", k)
	     >= 0; k++) {
		char name[256], link[16], er[256], path[64], age[32];
		double a = top_num(c, "destinations.largest.%u.oldest_age_s",
				   k);

		snprintf(path, sizeof(path), "destinations.largest.%u."
			 "destination", k);
		top_str(c, path, name, sizeof(name));
		snprintf(path, sizeof(path), "destinations.largest.%u.link", k);
		top_str(c, path, link, sizeof(link));
		snprintf(path, sizeof(path), "destinations.largest.%u."
			 "last_error", k);
		top_str(c, path, er, sizeof(er));
		if (a < 0)
			snprintf(age, sizeof(age), "-");
		else
			snprintf(age, sizeof(age), "%.0fs", a);
		printf("  %-28.28s %-6s %7.0f %7.0f %6.0f %7s  %.60s\n", name,
		       link, top_num(c, "destinations.largest.%u.queued", k),
		       top_num(c, "destinations.largest.%u.held", k),
		       top_num(c, "destinations.largest.%u.active", k), age,
		       er);
	}
}

/* top_sleep - wait s seconds unless a signal stops us */
static void top_sleep(double s)
{
	int64_t end = mono_ms() + (int64_t)(s * 1000);

	while (!top_stop) {
		int64_t left = end - mono_ms();

		if (left <= 0)
			break;
		poll(NULL, 0, left > 200 ? 200 : (int)left);
	}
}

/* top_main - sluicectl top [-n SECONDS] [-c COUNT] [-d DESTS] */
static int top_main(const char *path, int argc, char **argv,
		    unsigned timeout_s)
{
	double interval = 2.0;
	unsigned long count = 0, dests = TOP_DESTS;
	struct top_sample cur = { 0 }, prev = { 0 };
	bool tty = isatty(STDOUT_FILENO);
	struct sigaction sa = { .sa_handler = top_on_signal };
	char line[64];
	int rc = EXIT_OK;

	for (int i = 0; i < argc; i += 2) {
		char *e;

		if (i + 1 >= argc || (strcmp(argv[i], "-n") &&
				      strcmp(argv[i], "-c") &&
				      strcmp(argv[i], "-d"))) {
			err_msg("usage: top [-n SECONDS] [-c COUNT] [-d DESTS]");
			return EXIT_USAGE;
		}
		errno = 0;
		if (!strcmp(argv[i], "-n")) {
			interval = strtod(argv[i + 1], &e);
			if (*e || errno || !(interval >= 0.1 &&
					     interval <= 3600)) {
				err_msg("top -n \"%s\": seconds 0.1..3600",
					argv[i + 1]);
				return EXIT_USAGE;
			}
		} else {
			unsigned long v = strtoul(argv[i + 1], &e, 10);
			bool c = argv[i][1] == 'c';

			if (!argv[i + 1][0] || *e || errno ||
			    v > (c ? 1000000ul : 1000ul) || (c && v == 0)) {
				err_msg("top %s \"%s\": a count %s", argv[i],
					argv[i + 1], c ? "1..1000000" :
					"0..1000");
				return EXIT_USAGE;
			}
			if (c)
				count = v;
			else
				dests = v;
		}
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	snprintf(line, sizeof(line), "stats dests=%lu\n", dests);
	for (unsigned n = 1; !top_stop && (!count || n <= count); n++) {
		struct answer a;
		size_t len = 0;

		rc = request(path, line, NULL, 0, timeout_s, &cur.resp, &len);
		if (rc)
			break;
		if (parse_answer(cur.resp, len, &a) < 0 || !a.ok || !a.data) {
			err_msg("stats: %s", a.ok == 0 && a.error ? a.error :
				"sluiced sent an answer that is not valid");
			free(a.error);
			free(a.text);
			rc = a.ok == 0 ? EXIT_CMD : EXIT_UNREACH;
			break;
		}
		free(a.error);
		free(a.text);
		cur.d = a.data;
		cur.end = a.data + a.data_n;
		if (tty)
			fputs("\033[H\033[2J", stdout);
		else if (n > 1)
			fputc('\n', stdout);
		top_frame(&cur, &prev, n, (unsigned)count, interval);
		if (fflush(stdout) != 0) {
			rc = EXIT_CMD;
			break;
		}
		free(prev.resp);
		prev = cur;
		cur = (struct top_sample){ 0 };
		if (!count || n < count)
			top_sleep(interval);
	}
	free(cur.resp);
	free(prev.resp);
	return rc;
}

int main(int argc, char **argv)
{
	const char *sock = NULL, *config = NULL;
	char path[512], *line = NULL, *resp = NULL;
	size_t len = 0, resp_n = 0;
	unsigned timeout_s = 30;
	bool json = false;
	struct answer a;
	int i, rc;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *o = argv[i];
		bool has_val = !strcmp(o, "-s") || !strcmp(o, "--socket") ||
			       !strcmp(o, "-c") || !strcmp(o, "--config") ||
			       !strcmp(o, "-t") || !strcmp(o, "--timeout");

		if (!strcmp(o, "--")) {
			i++;
			break;
		}
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			usage(stdout);
			return EXIT_OK;
		}
		if (!strcmp(o, "-j") || !strcmp(o, "--json")) {
			json = true;
			continue;
		}
		if (!has_val) {
			err_msg("unknown option %s (sluicectl --help)", o);
			return EXIT_USAGE;
		}
		if (i + 1 >= argc) {
			err_msg("%s needs a value (sluicectl --help)", o);
			return EXIT_USAGE;
		}
		const char *v = argv[++i];

		if (o[1] == 's' || !strcmp(o, "--socket")) {
			sock = v;
		} else if (o[1] == 'c' || !strcmp(o, "--config")) {
			config = v;
		} else {
			char *e;
			unsigned long t;

			errno = 0;
			t = strtoul(v, &e, 10);
			if (!*v || *e || errno || t < 1 || t > 86400) {
				err_msg("%s \"%s\": not a number of seconds "
					"1..86400", o, v);
				return EXIT_USAGE;
			}
			timeout_s = (unsigned)t;
		}
	}
	if (sock && config) {
		err_msg("-s and -c both name the socket: give one");
		return EXIT_USAGE;
	}
	if (i >= argc) {
		err_msg("no command (sluicectl --help; sluicectl help lists "
			"sluiced's commands)");
		return EXIT_USAGE;
	}
	char *body = NULL;
	size_t body_n = 0;
	int pc = payload_cmd(argc - i, argv + i, &line, &body, &body_n);

	if (pc < 0)
		return -pc;
	for (int k = i; pc == 0 && k < argc; k++) {
		if (!argv[k][0]) {
			err_msg("argument %d is empty", k - i + 1);
			return EXIT_USAGE;
		}
		if (strpbrk(argv[k], " \t\r\n")) {
			err_msg("argument \"%s\" contains a space, tab or line "
				"break; the control protocol separates words "
				"with spaces, so no argument may contain one",
				argv[k]);
			return EXIT_USAGE;
		}
		len += strlen(argv[k]) + 1;
	}
	if (len > CTL_LINE_MAX) {
		err_msg("request is %zu bytes; sluiced takes at most %d per "
			"line (split the ids over several calls)", len - 1,
			CTL_LINE_MAX);
		return EXIT_USAGE;
	}
	if (config) {
		if (config_socket(config, path, sizeof(path)) < 0)
			return EXIT_USAGE;
	} else {
		snprintf(path, sizeof(path), "%s", sock ? sock :
			 CTL_DEFAULT_SOCKET);
	}
	if (!strcmp(argv[i], "top"))
		return top_main(path, argc - i - 1, argv + i + 1, timeout_s);
	if (pc == 0) {
		line = malloc(len + 1);
		if (!line) {
			err_msg("out of memory");
			return EXIT_UNREACH;
		}
		line[0] = 0;
		for (int k = i; k < argc; k++) {
			strcat(line, argv[k]);
			strcat(line, k + 1 < argc ? " " : "\n");
		}
	}
	rc = request(path, line, body, body_n, timeout_s, &resp, &resp_n);
	free(line);
	if (body) {
		explicit_bzero(body, body_n);
		if (strcmp(argv[i + 1], "passwd"))
			free(body);
	}
	if (rc)
		return rc;
	if (parse_answer(resp, resp_n, &a) < 0) {
		free(a.error);
		free(a.text);
		if (resp_n == 0)
			err_msg("sluiced at %s closed the connection without "
				"an answer", path);
		else
			err_msg("sluiced at %s sent an answer that is not "
				"valid JSON (%zu bytes)", path, resp_n);
		free(resp);
		return EXIT_UNREACH;
	}
	if (a.ok) {
		if (json) {
			if (a.data)
				fwrite(a.data, 1, a.data_n, stdout);
			else
				fputs("null", stdout);
			fputc('\n', stdout);
		} else if (a.text) {
			fwrite(a.text, 1, a.text_n, stdout);
		}
		rc = EXIT_OK;
	} else {
		err_msg("%s", a.error ? a.error : "command failed (no reason "
			"given)");
		rc = EXIT_CMD;
	}
	free(a.error);
	free(a.text);
	free(resp);
	if (fflush(stdout) != 0) {
		err_msg("writing the answer: %s", strerror(errno));
		return rc ? rc : EXIT_CMD;
	}
	return rc;
}
