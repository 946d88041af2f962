/*
 * ctlcmd.c - the control socket's commands (ctlcmd.h, docs/cli.md):
 * dispatch, help, response assembly and the JSON string escaper. The
 * commands themselves live in ctlcmd_GROUP.c files (queue, link +
 * status, stats, ...), each exporting a table fragment listed in
 * ctlcmd_groups[] below; the shared writer and helpers are in
 * ctlcmd_int.h.
 *
 * Input: one request line, words separated by spaces. The first one or two
 * words pick a row of the command table; the handler validates every
 * argument before it calls anything that changes state (dsched.h operator
 * functions validate again and change nothing on error), so a command that
 * fails has changed nothing.
 *
 * Output: {"ok":true,"data":{...},"text":"..."} + "\n", or
 * {"ok":false,"error":"..."} + "\n". "data" is built with a small JSON
 * writer (struct buf + jw_*), "text" is the human table. Strings are
 * escaped by ctlcmd_json_str: invalid UTF-8 becomes U+FFFD. Responses are
 * bounded by CTLCMD_OUT_MAX; list rows cap their long strings.
 *
 * Threads: the control thread only (dsched and the readers live there).
 */
#include "ctlcmd_int.h"

/* ---- JSON ---- */

/* json_put - copy n bytes to out[*k..] within cap; *k counts all */
static void json_put(char *out, size_t cap, size_t *k, const char *s,
		     size_t n)
{
	for (size_t i = 0; i < n; i++, (*k)++)
		if (*k < cap)
			out[*k] = s[i];
}

/* utf8_len - length of the valid UTF-8 sequence at s[0..n), 0 if none
 * (RFC 3629 section 4: no overlongs, no surrogates, at most U+10FFFF) */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

size_t ctlcmd_json_str(char *out, size_t cap, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t k = 0, i = 0;
	char esc[8];

	json_put(out, cap, &k, "\"", 1);
	while (i < n) {
		unsigned char c = s[i];
		size_t run = i, len;

		/* a run of plain ASCII in one copy */
		while (run < n && s[run] >= 0x20 && s[run] < 0x7f &&
		       s[run] != '"' && s[run] != '\\')
			run++;
		if (run > i) {
			json_put(out, cap, &k, str + i, run - i);
			i = run;
			continue;
		}
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			json_put(out, cap, &k, esc, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			const char *e = c == '\n' ? "\\n" : c == '\r' ? "\\r" :
					c == '\t' ? "\\t" : c == '\b' ? "\\b" :
					c == '\f' ? "\\f" : NULL;

			if (e)
				json_put(out, cap, &k, e, 2);
			else {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				json_put(out, cap, &k, esc, 6);
			}
			i++;
		} else if ((len = utf8_len(s + i, n - i)) > 0) {
			json_put(out, cap, &k, str + i, len);
			i += len;
		} else {
			json_put(out, cap, &k, "\\ufffd", 6);
			i++;
		}
	}
	json_put(out, cap, &k, "\"", 1);
	return k;
}

/* ---- response assembly ---- */

static const char ctlcmd_oom[] =
	"{\"ok\":false,\"error\":\"out of memory\"}\n";

void ctlcmd_free(char *out)
{
	if (out != ctlcmd_oom)
		free(out);
}

static void ctlcmd_static_oom(char **out, size_t *outlen)
{
	*out = (char *)ctlcmd_oom;
	*outlen = sizeof(ctlcmd_oom) - 1;
}

void ctlcmd_error(const char *msg, char **out, size_t *outlen)
{
	struct buf r = { 0 };

	buf_add(&r, "{\"ok\":false,\"error\":", 20);
	jw_esc(&r, msg, strlen(msg));
	buf_add(&r, "}\n", 2);
	if (r.fail) {
		free(r.p);
		ctlcmd_static_oom(out, outlen);
		return;
	}
	*out = r.p;
	*outlen = r.n;
}

/* ---- command table ---- */

static int cmd_help(struct ctx *x, int argc, char **argv);

static const struct cmd help_cmds[] = {
	{ "help", NULL, cmd_help, "help", "this list" },
	{ NULL, NULL, NULL, NULL, NULL },
};

/* the table fragments in help order; a new group is one row here */
static const struct cmd *const ctlcmd_groups[] = {
	ctlcmd_queue_cmds,
	ctlcmd_link_cmds,
	ctlcmd_stats_cmds,
	ctlcmd_ops_cmds,
	ctlcmd_dir_cmds,
	help_cmds,
};
#define N_GROUPS (sizeof(ctlcmd_groups) / sizeof(ctlcmd_groups[0]))

/* FOR_CMDS - every row of every fragment, in help order */
#define FOR_CMDS(c) \
	for (size_t g_ = 0; g_ < N_GROUPS; g_++) \
		for (const struct cmd *c = ctlcmd_groups[g_]; c->w1; c++)

static int cmd_help(struct ctx *x, int argc, char **argv)
{
	if (no_args(x, argc, argv) < 0)
		return -1;
	int w = 0;

	FOR_CMDS(c)
		if ((int)strlen(c->usage) > w)
			w = (int)strlen(c->usage);
	jw_arr(&x->data, "commands");
	buf_add(&x->text, "commands:\n", 10);
	FOR_CMDS(c) {
		char name[32];

		snprintf(name, sizeof(name), "%s%s%s", c->w1,
			 c->w2 ? " " : "", c->w2 ? c->w2 : "");
		jw_obj(&x->data, NULL);
		jw_cstr(&x->data, "command", name);
		jw_cstr(&x->data, "usage", c->usage);
		jw_cstr(&x->data, "help", c->help);
		jw_end_obj(&x->data);
		buf_printf(&x->text, "  %-*s  %s\n", w, c->usage, c->help);
	}
	jw_end_arr(&x->data);
	return 0;
}

/* split - words of line (spaces/tabs) into argv; count or -1 */
static int split(char *line, char **argv, int max)
{
	int n = 0;

	for (char *p = line; *p;) {
		while (*p == ' ' || *p == '\t')
			*p++ = 0;
		if (!*p)
			break;
		if (n == max)
			return -1;
		argv[n++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
	}
	return n;
}

/* dispatch - find the command row and run it; 0 or -1 + x->err */
/* dispatch - find the command row and run it; 0 or -1 + x->err */
static int dispatch(struct ctx *x, int argc, char **argv)
{
	char t[64];
	bool w1_known = false;

	if (argc == 0) {
		x->name = "request";
		return fail(x, "empty request (try help)");
	}
	FOR_CMDS(c) {
		if (strcmp(argv[0], c->w1) != 0)
			continue;
		w1_known = true;
		if (c->w2 && (argc < 2 || strcmp(argv[1], c->w2) != 0))
			continue;
		snprintf(x->namebuf, sizeof(x->namebuf), "%s%s%s", c->w1,
			 c->w2 ? " " : "", c->w2 ? c->w2 : "");
		x->name = x->namebuf;
		int skip = c->w2 ? 2 : 1;

		return c->fn(x, argc - skip, argv + skip);
	}
	snprintf(x->namebuf, sizeof(x->namebuf), "%s", shown(argv[0], t, 40));
	x->name = x->namebuf;
	if (w1_known) {
		char subs[128] = "";

		FOR_CMDS(c)
			if (strcmp(argv[0], c->w1) == 0 && c->w2)
				snprintf(subs + strlen(subs),
					 sizeof(subs) - strlen(subs), "%s%s",
					 subs[0] ? ", " : "", c->w2);
		if (argc < 2)
			return fail(x, "missing subcommand (%s)", subs);
		return fail(x, "unknown subcommand \"%s\" (%s)",
			    shown(argv[1], t, 40), subs);
	}
	x->name = "request";
	return fail(x, "unknown command \"%s\" (try help)",
		    shown(argv[0], t, 40));
}


void ctlcmd_run(struct ctlcmd_env *e, const char *line, char **out,
		size_t *outlen)
{
	struct ctx x = { .e = e, .name = "request" };
	size_t n = strlen(line);
	char *copy = malloc(n + 1);
	char **argv = malloc(sizeof(char *) * (n / 2 + 2));
	int argc, rc;

	if (!copy || !argv) {
		free(copy);
		free(argv);
		ctlcmd_static_oom(out, outlen);
		return;
	}
	memcpy(copy, line, n + 1);
	argc = split(copy, argv, (int)(n / 2 + 1));
	buf_add(&x.data, "{", 1);
	rc = dispatch(&x, argc, argv);
	buf_add(&x.data, "}", 1);
	free(argv);
	free(copy);
	if (rc == 0 && (x.data.fail || x.text.fail)) {
		snprintf(x.err, sizeof(x.err), "%s: response too large (over "
			 "%u MiB) or out of memory; narrow it (limit=, dest=)",
			 x.name, CTLCMD_OUT_MAX >> 20);
		rc = -1;
	}
	if (rc != 0) {
		free(x.data.p);
		free(x.text.p);
		ctlcmd_error(x.err, out, outlen);
		return;
	}
	struct buf r = { 0 };

	buf_add(&r, "{\"ok\":true,\"data\":", 18);
	buf_add(&r, x.data.p, x.data.n);
	buf_add(&r, ",\"text\":", 8);
	jw_esc(&r, x.text.p ? x.text.p : "", x.text.n);
	buf_add(&r, "}\n", 2);
	free(x.data.p);
	free(x.text.p);
	if (r.fail) {
		free(r.p);
		ctlcmd_error("response too large or out of memory", out,
			     outlen);
		return;
	}
	*out = r.p;
	*outlen = r.n;
}
