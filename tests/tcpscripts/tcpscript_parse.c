/*
 * tcpscript_parse.c - parse a TCP scenario script into lines.
 *
 * Input: a text file, one event per line (format in docs/tcp-scripts.md).
 * Output: struct ts_script; syntax errors name the line and the problem.
 * Times are converted to absolute script microseconds here; everything
 * else (relative sequence numbers, flows) is resolved when the line runs.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpscript.h"

struct cur {
	const char *p;
	char *err;
	size_t errlen;
	int lineno;
};

/* perr - record a syntax error once */
static int perr(struct cur *c, const char *what)
{
	if (c->err[0] == '\0')
		snprintf(c->err, c->errlen, "line %d: %s near \"%.30s\"",
			 c->lineno, what, c->p);
	return -1;
}

static void skipws(struct cur *c)
{
	while (*c->p == ' ' || *c->p == '\t')
		c->p++;
}

/* word - does the cursor start with keyword w followed by a delimiter */
static bool word(struct cur *c, const char *w)
{
	size_t n = strlen(w);

	skipws(c);
	if (strncmp(c->p, w, n) != 0)
		return false;
	if (isalnum((unsigned char)c->p[n]) || c->p[n] == '_')
		return false;
	c->p += n;
	return true;
}

/* num - unsigned number, or '*' when wild is given */
static int num(struct cur *c, uint32_t *v, bool *wild)
{
	char *end;
	unsigned long long x;

	skipws(c);
	if (*c->p == '*') {
		if (!wild)
			return perr(c, "'*' not allowed here");
		*wild = true;
		*v = 0;
		c->p++;
		return 0;
	}
	if (!isdigit((unsigned char)*c->p))
		return perr(c, "number expected");
	errno = 0;
	x = strtoull(c->p, &end, 0);
	if (errno || x > 0xffffffffull)
		return perr(c, "number out of range");
	c->p = end;
	*v = (uint32_t)x;
	if (wild)
		*wild = false;
	return 0;
}

/* ts_parse_time - "+1.5" / "0.250" / "3" seconds into microseconds */
static int parse_secs(const char **pp, uint64_t *us)
{
	const char *p = *pp;
	uint64_t ip = 0, frac = 0;
	int digits = 0;

	if (!isdigit((unsigned char)*p) && *p != '.')
		return -1;
	while (isdigit((unsigned char)*p))
		ip = ip * 10 + (uint64_t)(*p++ - '0');
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p)) {
			if (digits < 6) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				digits++;
			}
			p++;
		}
	}
	while (digits++ < 6)
		frac *= 10;
	*us = ip * 1000000u + frac;
	*pp = p;
	return 0;
}

/* qstring - a "quoted" string with \n \r \t \\ \" \xHH escapes */
static int qstring(struct cur *c, char **out, uint32_t *outlen)
{
	const char *p = c->p;
	size_t cap = strlen(p) + 1, n = 0;
	char *s = malloc(cap);

	if (!s)
		return perr(c, "out of memory");
	p++; /* opening quote */
	while (*p && *p != '"') {
		char ch = *p++;

		if (ch == '\\') {
			ch = *p++;
			switch (ch) {
			case 'n': ch = '\n'; break;
			case 'r': ch = '\r'; break;
			case 't': ch = '\t'; break;
			case '0': ch = '\0'; break;
			case 'x': {
				char hex[3] = { 0, 0, 0 };

				if (!isxdigit((unsigned char)p[0]) ||
				    !isxdigit((unsigned char)p[1])) {
					free(s);
					return perr(c, "bad \\x escape");
				}
				hex[0] = p[0];
				hex[1] = p[1];
				p += 2;
				ch = (char)strtoul(hex, NULL, 16);
				break;
			}
			case '\\': case '"': break;
			default:
				free(s);
				return perr(c, "bad escape");
			}
		}
		s[n++] = ch;
	}
	if (*p != '"') {
		free(s);
		return perr(c, "unterminated string");
	}
	s[n] = '\0';
	c->p = p + 1;
	*out = s;
	*outlen = (uint32_t)n;
	return 0;
}

/* tolerance - "~N" milliseconds (decimals allowed) */
static int tolerance(struct cur *c, struct ts_line *l)
{
	c->p++;
	if (parse_secs(&c->p, &l->tol_us) < 0)
		return perr(c, "bad tolerance");
	l->tol_us /= 1000; /* value was milliseconds */
	l->has_tol = true;
	return 0;
}

/* parse_opts - "<mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7,sack 1:2>" */
static int parse_opts(struct cur *c, struct ts_seg *sg)
{
	c->p++; /* '<' */
	sg->has_opts = true;
	skipws(c);
	if (*c->p == '*') {
		c->p++;
		skipws(c);
		sg->opts_wild = true;
		if (*c->p != '>')
			return perr(c, "'>' expected");
		c->p++;
		return 0;
	}
	skipws(c);
	if (*c->p == '>') {
		c->p++;
		return 0;
	}
	for (;;) {
		struct ts_opt *o;

		if (sg->nopts >= TS_MAX_OPTS)
			return perr(c, "too many options");
		o = &sg->opts[sg->nopts++];
		memset(o, 0, sizeof(*o));
		if (word(c, "mss")) {
			o->kind = 2;
			if (num(c, &o->a, &o->wild_a) < 0)
				return -1;
		} else if (word(c, "sackOK")) {
			o->kind = 4;
		} else if (word(c, "TS")) {
			o->kind = 8;
			if (!word(c, "val") || num(c, &o->a, &o->wild_a) < 0 ||
			    !word(c, "ecr") || num(c, &o->b, &o->wild_b) < 0)
				return perr(c, "TS val N ecr N expected");
		} else if (word(c, "nop")) {
			o->kind = 1;
		} else if (word(c, "eol")) {
			o->kind = 0;
		} else if (word(c, "wscale")) {
			o->kind = 3;
			if (num(c, &o->a, &o->wild_a) < 0)
				return -1;
		} else if (word(c, "sack")) {
			o->kind = 5;
			skipws(c);
			while (isdigit((unsigned char)*c->p)) {
				if (o->nsack >= TS_MAX_SACK)
					return perr(c, "too many SACK blocks");
				if (num(c, &o->sack[o->nsack][0], NULL) < 0)
					return -1;
				if (*c->p++ != ':')
					return perr(c, "sack L:R expected");
				if (num(c, &o->sack[o->nsack][1], NULL) < 0)
					return -1;
				o->nsack++;
				skipws(c);
			}
			if (o->nsack == 0)
				return perr(c, "sack block expected");
		} else {
			return perr(c, "unknown option");
		}
		skipws(c);
		if (*c->p == ',') {
			c->p++;
			continue;
		}
		if (*c->p == '>') {
			c->p++;
			return 0;
		}
		return perr(c, "',' or '>' expected in options");
	}
}

/* parse_seg - "[abs] [:port] FLAGS seq:end(len) [ack N] [win N] [<opts>]
 * ["payload"] [badcsum] [~ms]" */
static int parse_seg(struct cur *c, struct ts_line *l)
{
	struct ts_seg *sg = &l->seg;
	uint32_t end;
	bool any = false;

	sg->peer_port = -1;
	if (word(c, "abs"))
		sg->abs = true;
	skipws(c);
	if (*c->p == ':') {
		uint32_t port;

		c->p++;
		if (num(c, &port, NULL) < 0 || port == 0 || port > 65535)
			return perr(c, "bad port");
		sg->peer_port = (int)port;
	}
	skipws(c);
	while (*c->p && strchr("SFRPUEW.", *c->p)) {
		switch (*c->p) {
		case 'S': sg->flags |= TS_SYN; break;
		case 'F': sg->flags |= TS_FIN; break;
		case 'R': sg->flags |= TS_RST; break;
		case 'P': sg->flags |= TS_PSH; break;
		case 'U': sg->flags |= TS_URG; break;
		case 'E': sg->flags |= TS_ECE; break;
		case 'W': sg->flags |= TS_CWR; break;
		case '.': sg->flags |= TS_ACK; break;
		}
		c->p++;
		any = true;
	}
	if (!any)
		return perr(c, "flags expected (S, S., ., P., F., R, R. ...)");
	skipws(c);
	if (*c->p == '*') {
		if (l->kind != TS_OUT)
			return perr(c, "'*' sequence only on '>' lines");
		c->p++;
		sg->seq_wild = true;
		sg->len = UINT32_MAX; /* "*" alone: any length */
		if (*c->p == '(') { /* "*(len)" */
			c->p++;
			if (num(c, &sg->len, NULL) < 0 || *c->p++ != ')')
				return perr(c, "(len) expected");
		}
	} else {
		if (num(c, &sg->seq, NULL) < 0 || *c->p++ != ':' ||
		    num(c, &end, NULL) < 0 || *c->p++ != '(' ||
		    num(c, &sg->len, NULL) < 0 || *c->p++ != ')')
			return perr(c, "seq:end(len) expected");
		if (end - sg->seq != sg->len)
			return perr(c, "end - seq != len");
	}
	if (sg->len > 65000 && sg->len != UINT32_MAX)
		return perr(c, "segment too long");
	for (;;) {
		skipws(c);
		if (*c->p == '\0')
			break;
		if (word(c, "ack")) {
			sg->has_ack = true;
			if (num(c, &sg->ack, &sg->ack_wild) < 0)
				return -1;
		} else if (word(c, "win")) {
			sg->has_win = true;
			if (num(c, &sg->win, &sg->win_wild) < 0)
				return -1;
			if (sg->win > 65535)
				return perr(c, "win is the raw 16-bit field");
		} else if (word(c, "badcsum")) {
			sg->badcsum = true;
		} else if (*c->p == '<') {
			if (parse_opts(c, sg) < 0)
				return -1;
		} else if (*c->p == '"') {
			char *s;
			uint32_t n;

			if (qstring(c, &s, &n) < 0)
				return -1;
			if (n != sg->len) {
				free(s);
				return perr(c, "payload length differs from (len)");
			}
			sg->payload = (uint8_t *)s;
		} else if (*c->p == '~') {
			if (tolerance(c, l) < 0)
				return -1;
		} else {
			return perr(c, "unexpected token");
		}
	}
	if (l->kind == TS_IN && (sg->flags & TS_ACK) && !sg->has_ack)
		return perr(c, "inbound segment with '.' needs 'ack N'");
	if (l->kind == TS_IN && (sg->ack_wild || sg->win_wild || sg->opts_wild))
		return perr(c, "'*' only on '>' lines");
	if (l->kind == TS_IN)
		for (int i = 0; i < sg->nopts; i++)
			if (sg->opts[i].wild_a || sg->opts[i].wild_b)
				return perr(c, "'*' only on '>' lines");
	return 0;
}

/* parse_call - app call / directive: whitespace-separated words and
 * "quoted strings"; a "~ms" word sets the line tolerance */
static int parse_call(struct cur *c, struct ts_line *l)
{
	for (;;) {
		skipws(c);
		if (*c->p == '\0')
			break;
		if (l->argc >= TS_MAX_ARGS)
			return perr(c, "too many words");
		if (*c->p == '"') {
			if (qstring(c, &l->argv[l->argc],
				    &l->arglen[l->argc]) < 0)
				return -1;
			l->argquoted[l->argc++] = true;
			continue;
		}
		if (*c->p == '~' && l->argc > 0) {
			if (tolerance(c, l) < 0)
				return -1;
			continue;
		}
		const char *st = c->p;

		while (*c->p && *c->p != ' ' && *c->p != '\t')
			c->p++;
		l->arglen[l->argc] = (uint32_t)(c->p - st);
		l->argv[l->argc] = strndup(st, (size_t)(c->p - st));
		if (!l->argv[l->argc])
			return perr(c, "out of memory");
		l->argc++;
	}
	if (l->argc == 0)
		return perr(c, "empty event");
	return 0;
}

/* strip_comment - cut '#' or '//' comments outside quotes, and trailing
 * whitespace */
static void strip_comment(char *s)
{
	bool q = false;
	char *p;

	for (p = s; *p; p++) {
		if (*p == '\\' && q && p[1]) {
			p++;
			continue;
		}
		if (*p == '"')
			q = !q;
		if (!q && (*p == '#' || (p[0] == '/' && p[1] == '/'))) {
			*p = '\0';
			break;
		}
	}
	p = s + strlen(s);
	while (p > s && isspace((unsigned char)p[-1]))
		*--p = '\0';
}

/* ts_parse_file - read and parse a whole script */
int ts_parse_file(const char *path, struct ts_script *sc, char *err,
		  size_t errlen)
{
	FILE *fp = fopen(path, "r");
	char *buf = NULL;
	size_t bufcap = 0;
	ssize_t got;
	int lineno = 0, cap = 0;
	uint64_t t = 0;

	memset(sc, 0, sizeof(*sc));
	err[0] = '\0';
	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((got = getline(&buf, &bufcap, fp)) >= 0) {
		struct ts_line *l;
		struct cur c = { .err = err, .errlen = errlen };
		char *text;

		lineno++;
		c.lineno = lineno;
		strip_comment(buf);
		text = buf;
		while (isspace((unsigned char)*text))
			text++;
		if (*text == '\0')
			continue;
		if (sc->n == cap) {
			cap = cap ? cap * 2 : 64;
			l = realloc(sc->lines, (size_t)cap * sizeof(*l));
			if (!l)
				goto fail;
			sc->lines = l;
		}
		l = &sc->lines[sc->n++];
		memset(l, 0, sizeof(*l));
		l->lineno = lineno;
		l->text = strdup(text);
		c.p = text;
		/* time: "+rel", "abs", or omitted (= +0) */
		if (*c.p == '+') {
			uint64_t d;

			c.p++;
			if (parse_secs(&c.p, &d) < 0) {
				perr(&c, "bad relative time");
				goto fail;
			}
			t += d;
		} else if (isdigit((unsigned char)*c.p) || *c.p == '.') {
			uint64_t a;

			if (parse_secs(&c.p, &a) < 0) {
				perr(&c, "bad time");
				goto fail;
			}
			if (a < t) {
				perr(&c, "time goes backwards");
				goto fail;
			}
			t = a;
		}
		l->t_us = t;
		skipws(&c);
		if (*c.p == '<' || *c.p == '>') {
			l->kind = *c.p == '<' ? TS_IN : TS_OUT;
			c.p++;
			if (parse_seg(&c, l) < 0)
				goto fail;
		} else {
			l->kind = TS_CALL;
			if (parse_call(&c, l) < 0)
				goto fail;
		}
	}
	free(buf);
	fclose(fp);
	return 0;
fail:
	if (err[0] == '\0')
		snprintf(err, errlen, "line %d: out of memory", lineno);
	free(buf);
	fclose(fp);
	ts_script_free(sc);
	return -1;
}

/* ts_script_free - release everything ts_parse_file allocated */
void ts_script_free(struct ts_script *sc)
{
	for (int i = 0; i < sc->n; i++) {
		free(sc->lines[i].text);
		free(sc->lines[i].seg.payload);
		for (int j = 0; j < sc->lines[i].argc; j++)
			free(sc->lines[i].argv[j]);
	}
	free(sc->lines);
	memset(sc, 0, sizeof(*sc));
}
