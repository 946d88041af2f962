/*
 * ctlcmd_dir.c - the directory commands of the control socket
 * (docs/cli.md "dir"): list, show, add, change, remove, passwd, import,
 * export, on the LMDB directory (stor_dir.h) sluiced's io lcores read.
 *
 * Every change is one write txn on the control thread: it commits whole
 * or not at all, and new lookups see it at once (each lookup renews its
 * read snapshot), so new SMTP sessions and commands use it without a
 * restart. add/change take a line of the directory text format and go
 * through stor_dirio_line, the parser import uses (one parser, one set of
 * messages). import replaces the whole directory from the request's
 * payload (stor_dirio_import: all or nothing, "NAME:LINE: reason").
 * passwd hashes the payload with scrypt (stor_pwhash, ~50 ms on this
 * thread: a short stall of the control thread, accepted) and never logs
 * or echoes it.
 *
 * Threads: the control thread only.
 */
#define _GNU_SOURCE
#include "ctlcmd_int.h"

#include "log.h"
#include "stor_dir.h"
#include "stor_dirio.h"
#include "stor_err.h"
#include "stor_pwhash.h"

#define DIR_LIST_LIMIT 1000
#define DIR_LIST_LIMIT_MAX 100000

static const char *const tab_names[] = {
	"domain", "rcpt", "user", "net", "prio", "limit",
};
_Static_assert(sizeof(tab_names) / sizeof(tab_names[0]) == STOR_DIR_NTABLES,
	       "a name for every directory table");

/* tab_parse - "domain(s)", "rcpt(s)", "user(s)", "net(s)", "prio",
 * "limit(s)"; -1 */
static int tab_parse(const char *s)
{
	static const char *const plural[] = {
		"domains", "rcpts", "users", "nets", "prios", "limits",
	};
	_Static_assert(sizeof(plural) / sizeof(plural[0]) == STOR_DIR_NTABLES,
		       "a plural for every directory table");

	for (int i = 0; i < STOR_DIR_NTABLES; i++)
		if (!strcmp(s, tab_names[i]) || !strcmp(s, plural[i]))
			return i;
	return -1;
}

static int need_dir(struct ctx *x)
{
	if (!x->e->m || !x->e->m->dir)
		return fail(x, "sluiced runs without a directory (no mail "
			    "path)");
	return 0;
}

/* entry_text - one stored entry as its line (malloc'd) or NULL */
static char *entry_text(enum stor_dir_table tab, MDB_val *k, MDB_val *v)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&p, &n);
	int rc;

	if (!f)
		return NULL;
	rc = stor_dirio_entry(tab, k, v, f);
	fclose(f);
	if (rc) {
		free(p);
		return NULL;
	}
	return p;
}

/* user_hash_redact - "user NAME HASH" lines show the hash scheme only */
static void redact_hash(char *line)
{
	char *sp;

	if (strncmp(line, "user ", 5) || !(sp = strchr(line + 5, ' ')))
		return;
	/* keep "$scrypt$N=..,r=..,p=..$" ; drop salt and hash */
	char *d = strchr(sp + 2, '$');

	if (d)
		snprintf(d + 1, strlen(d + 1) + 1, "...");
}

static int cmd_dir_list(struct ctx *x, int argc, char **argv)
{
	struct stor_dir *dir;
	MDB_txn *t;
	uint64_t limit = DIR_LIST_LIMIT, count = 0;
	const char *prefix = "";
	int only = -1, rc = 0;
	bool more = false;
	char tmp[64];

	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "prefix=", 7))
			prefix = argv[i] + 7;
		else if (!strncmp(argv[i], "limit=", 6)) {
			if (parse_uint(argv[i] + 6, 1, DIR_LIST_LIMIT_MAX,
				       &limit) < 0)
				return fail(x, "limit= takes 1..%d",
					    DIR_LIST_LIMIT_MAX);
		} else if (only < 0 && (only = tab_parse(argv[i])) >= 0)
			continue;
		else
			return fail(x, "unexpected argument \"%s\" (usage: dir "
				    "list [domains|rcpts|users|nets|prio] "
				    "[prefix=P] [limit=N])",
				    shown(argv[i], tmp, 40));
	}
	if (need_dir(x) < 0)
		return -1;
	dir = x->e->m->dir;
	if ((rc = mdb_txn_begin(stor_dir_env(dir), NULL, MDB_RDONLY, &t)))
		return fail(x, "%s", stor_strerror(rc));
	jw_arr(&x->data, "entries");
	for (int tab = 0; tab < STOR_DIR_NTABLES && !more; tab++) {
		MDB_cursor *c;
		MDB_val k, v;

		if (only >= 0 && tab != only)
			continue;
		if ((rc = mdb_cursor_open(t, stor_dir_dbi(dir,
				(enum stor_dir_table)tab), &c)))
			break;
		while (!(rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
			char name[700], kind;
			char *line;

			if (stor_dir_key_text((enum stor_dir_table)tab,
					      k.mv_data, k.mv_size, name,
					      sizeof(name), &kind))
				continue;
			if (strncmp(name, prefix, strlen(prefix)))
				continue;
			if (count == limit) {
				more = true;
				break;
			}
			if (!(line = entry_text((enum stor_dir_table)tab, &k,
						&v)))
				continue;
			redact_hash(line);
			jw_cstr(&x->data, NULL, line);
			buf_printf(&x->text, "%s\n", line);
			free(line);
			count++;
		}
		mdb_cursor_close(c);
		if (rc == MDB_NOTFOUND)
			rc = 0;
		if (rc)
			break;
	}
	mdb_txn_abort(t);
	jw_end_arr(&x->data);
	if (rc)
		return fail(x, "%s", stor_strerror(rc));
	jw_u64(&x->data, "count", count);
	jw_bool(&x->data, "more", more);
	buf_printf(&x->text, "-- %llu entries%s --\n",
		   (unsigned long long)count, more ? "; more: raise limit= or "
		   "narrow with prefix=" : "");
	return 0;
}

/* find - the entry of table tab whose put-form name is name, as a line
 * (malloc'd); NULL + *rc (MDB_NOTFOUND if absent) */
static char *find(struct stor_dir *dir, int tab, const char *name, int *rc)
{
	MDB_txn *t;
	MDB_cursor *c;
	MDB_val k, v;
	char want[700], got[700], kind;
	char *line = NULL;
	size_t n = strlen(name);
	MDB_cursor_op op = MDB_FIRST;

	if (n >= sizeof(want) - 2) {
		*rc = MDB_NOTFOUND;
		return NULL;
	}
	/* stored names are lower-cased; "*@d" is stored as "@d" */
	for (size_t i = 0; i <= n; i++)
		want[i] = (name[i] >= 'A' && name[i] <= 'Z') ?
			  (char)(name[i] + 32) : name[i];
	if (tab == STOR_DIR_DOMAIN && n > 1 && want[n - 1] == '.')
		want[n - 1] = 0;
	if ((*rc = mdb_txn_begin(stor_dir_env(dir), NULL, MDB_RDONLY, &t)))
		return NULL;
	if ((*rc = mdb_cursor_open(t, stor_dir_dbi(dir,
				   (enum stor_dir_table)tab), &c))) {
		mdb_txn_abort(t);
		return NULL;
	}
	if (tab == STOR_DIR_DOMAIN || tab == STOR_DIR_RCPT ||
	    tab == STOR_DIR_USER) {
		/* the key is the name: seek straight to it */
		k.mv_data = want[0] == '*' ? want + 1 : want;
		k.mv_size = strlen(k.mv_data);
		op = MDB_SET_KEY;
	}
	*rc = MDB_NOTFOUND;
	for (int r = mdb_cursor_get(c, &k, &v, op); r == 0;
	     r = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (stor_dir_key_text((enum stor_dir_table)tab, k.mv_data,
				      k.mv_size, got, sizeof(got), &kind))
			continue;
		if (tab == STOR_DIR_PRIO) {
			char full[720];

			snprintf(full, sizeof(full), "%s %s", kind == 's' ?
				 "sender" : kind == 'r' ? "rcpt" : "domain",
				 got);
			if (strcmp(full, want))
				continue;
		} else if (strcmp(got, want)) {
			if (op == MDB_SET_KEY)
				break;
			continue;
		}
		line = entry_text((enum stor_dir_table)tab, &k, &v);
		*rc = line ? 0 : STOR_ECORRUPT;
		break;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(t);
	return line;
}

/* name_arg - the entry's name from argv: prio takes KIND PATTERN */
static int name_arg(struct ctx *x, int argc, char **argv, int *tab,
		    char *name, size_t cap)
{
	char t[64];

	if (argc < 2 || (*tab = tab_parse(argv[0])) < 0)
		return fail(x, "usage: %s domain|rcpt|user|net NAME, or %s "
			    "prio sender|rcpt|domain PATTERN", x->name,
			    x->name);
	if (*tab == STOR_DIR_PRIO) {
		if (argc != 3 || (strcmp(argv[1], "sender") &&
				  strcmp(argv[1], "rcpt") &&
				  strcmp(argv[1], "domain")))
			return fail(x, "usage: %s prio sender|rcpt|domain "
				    "PATTERN", x->name);
		snprintf(name, cap, "%s %s", argv[1], argv[2]);
		return 0;
	}
	if (argc != 2)
		return fail(x, "unexpected argument \"%s\"",
			    shown(argv[2], t, 40));
	snprintf(name, cap, "%s", argv[1]);
	return 0;
}

static int cmd_dir_show(struct ctx *x, int argc, char **argv)
{
	char name[700], t[64];
	char *line;
	int tab, rc;

	if (name_arg(x, argc, argv, &tab, name, sizeof(name)) < 0 ||
	    need_dir(x) < 0)
		return -1;
	line = find(x->e->m->dir, tab, name, &rc);
	if (!line) {
		if (rc == MDB_NOTFOUND)
			return fail(x, "no %s \"%s\" in the directory",
				    tab_names[tab], shown(name, t, 60));
		return fail(x, "%s", stor_strerror(rc));
	}
	redact_hash(line);
	jw_cstr(&x->data, "table", tab_names[tab]);
	jw_cstr(&x->data, "entry", line);
	buf_printf(&x->text, "%s\n", line);
	free(line);
	return 0;
}

/* commit - end of a change: commit, answer; t is gone either way */
static int commit(struct ctx *x, MDB_txn *t, const char *what)
{
	int rc = mdb_txn_commit(t);

	if (rc)
		return fail(x, "commit: %s; nothing was changed",
			    stor_strerror(rc));
	log_info("directory: %s (sluicectl)", what);
	return 0;
}

/* cmd_dir_addchange - dir add|change LINE: one text-format line */
static int cmd_dir_addchange(struct ctx *x, int argc, char **argv)
{
	bool change = strcmp(x->name, "dir change") == 0;
	char line[8200], err[256], what[400], shownl[300];
	size_t k = 0;
	MDB_txn *t;
	int rc;

	if (argc < 2)
		return fail(x, "usage: %s LINE (a line of the directory text "
			    "format: domain NAME local|relay ..., rcpt ADDR "
			    "accept|reject|alias ..., user NAME HASH, net "
			    "CIDR, prio KIND PATTERN LEVEL)", x->name);
	if (need_dir(x) < 0)
		return -1;
	for (int i = 0; i < argc && k < sizeof(line) - 1; i++)
		k += (size_t)snprintf(line + k, sizeof(line) - k, "%s%s",
				      i ? " " : "", argv[i]);
	/* the line as the log shows it: no password hash */
	snprintf(shownl, sizeof(shownl), "%.290s", line);
	redact_hash(shownl);
	if ((rc = stor_dir_txn_begin(x->e->m->dir, &t)))
		return fail(x, "%s", stor_strerror(rc));
	rc = stor_dirio_line(x->e->m->dir, t, line, change ?
			     STOR_DIRIO_CHANGE : STOR_DIRIO_ADD, err,
			     sizeof(err));
	if (rc) {
		mdb_txn_abort(t);
		return fail(x, "%s; nothing was changed", err);
	}
	snprintf(what, sizeof(what), "%s %s", change ? "changed" : "added",
		 shownl);
	if (commit(x, t, what) < 0)
		return -1;
	jw_cstr(&x->data, "op", change ? "change" : "add");
	jw_cstr(&x->data, "entry", shownl);
	buf_printf(&x->text, "%s: %s\n", change ? "changed" : "added",
		   shownl);
	return 0;
}

/* rcpts_of - does any recipient (or catch-all) belong to domain */
static int rcpts_of(struct stor_dir *dir, MDB_txn *t, const char *domain,
		    bool *any)
{
	MDB_cursor *c;
	MDB_val k, v;
	char want[300];
	size_t n;
	int rc;

	*any = false;
	n = (size_t)snprintf(want, sizeof(want), "@%s", domain);
	for (size_t i = 0; i < n; i++)
		if (want[i] >= 'A' && want[i] <= 'Z')
			want[i] = (char)(want[i] + 32);
	if (n > 1 && want[n - 1] == '.')
		want[--n] = 0;
	if ((rc = mdb_cursor_open(t, stor_dir_dbi(dir, STOR_DIR_RCPT), &c)))
		return rc;
	while (!(rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)))
		if (k.mv_size >= n && !memcmp((char *)k.mv_data + k.mv_size - n,
					      want, n)) {
			*any = true;
			break;
		}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int cmd_dir_remove(struct ctx *x, int argc, char **argv)
{
	char name[700], key[720], what[760], t[64];
	MDB_txn *txn;
	bool any;
	int tab, rc;

	if (name_arg(x, argc, argv, &tab, name, sizeof(name)) < 0 ||
	    need_dir(x) < 0)
		return -1;
	if (tab == STOR_DIR_PRIO)
		snprintf(key, sizeof(key), "%c:%s", argv[1][0] == 's' ? 's' :
			 argv[1][0] == 'r' ? 'r' : 'd', argv[2]);
	else
		snprintf(key, sizeof(key), "%s", name);
	if ((rc = stor_dir_txn_begin(x->e->m->dir, &txn)))
		return fail(x, "%s", stor_strerror(rc));
	if (tab == STOR_DIR_DOMAIN) {
		if ((rc = rcpts_of(x->e->m->dir, txn, name, &any)) || any) {
			mdb_txn_abort(txn);
			if (rc)
				return fail(x, "%s", stor_strerror(rc));
			return fail(x, "domain \"%s\" still has recipients "
				    "(dir list rcpts prefix= ... ; remove them "
				    "first); nothing was changed",
				    shown(name, t, 60));
		}
	}
	rc = stor_dir_del(x->e->m->dir, txn, (enum stor_dir_table)tab,
			  (struct stor_str){ key, (uint32_t)strlen(key) });
	if (rc) {
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND || rc == EINVAL)
			return fail(x, "no %s \"%s\" in the directory",
				    tab_names[tab], shown(name, t, 60));
		return fail(x, "%s", stor_strerror(rc));
	}
	snprintf(what, sizeof(what), "removed %s %s", tab_names[tab], name);
	if (commit(x, txn, what) < 0)
		return -1;
	jw_cstr(&x->data, "op", "remove");
	jw_cstr(&x->data, "table", tab_names[tab]);
	jw_cstr(&x->data, "name", name);
	buf_printf(&x->text, "removed %s %s\n", tab_names[tab], name);
	return 0;
}

static int cmd_dir_passwd(struct ctx *x, int argc, char **argv)
{
	char hash[STOR_PWHASH_MAX], what[400], t[64];
	const char *pw = x->e->req_body;
	size_t pwlen = x->e->req_body_len;
	MDB_txn *txn;
	int rc;

	if (argc != 1)
		return fail(x, "usage: dir passwd USER (the password follows "
			    "the request as its payload: sluicectl asks for "
			    "it)");
	if (need_dir(x) < 0)
		return -1;
	if (!pw)
		return fail(x, "no password: it is sent as the request's "
			    "payload (sluicectl dir passwd USER asks for it, "
			    "or reads it with --stdin)");
	if (pwlen == 0 || pwlen > 1024 || memchr(pw, 0, pwlen) ||
	    memchr(pw, '\n', pwlen) || memchr(pw, '\r', pwlen))
		return fail(x, "the password must be 1..1024 bytes without "
			    "NUL or line breaks");
	if ((rc = stor_pwhash_make(STOR_PWHASH_SCRYPT, 0, pw, pwlen, hash,
				   sizeof(hash))))
		return fail(x, "hashing failed: %s", stor_strerror(rc));
	if ((rc = stor_dir_txn_begin(x->e->m->dir, &txn)))
		return fail(x, "%s", stor_strerror(rc));
	rc = stor_dir_put_user(x->e->m->dir, txn, (struct stor_str){
			       argv[0], (uint32_t)strlen(argv[0]) },
			       (struct stor_str){ hash, (uint32_t)strlen(hash) },
			       1);
	explicit_bzero(hash, sizeof(hash));
	if (rc) {
		mdb_txn_abort(txn);
		return fail(x, rc == EINVAL ? "\"%s\" is not a valid user name"
			    : "%s", rc == EINVAL ? shown(argv[0], t, 40) :
			    stor_strerror(rc));
	}
	snprintf(what, sizeof(what), "password set for user %s", argv[0]);
	if (commit(x, txn, what) < 0)
		return -1;
	jw_cstr(&x->data, "user", argv[0]);
	jw_cstr(&x->data, "scheme", "scrypt");
	buf_printf(&x->text, "password set for %s (scrypt)\n", argv[0]);
	return 0;
}

static int cmd_dir_import(struct ctx *x, int argc, char **argv)
{
	const char *name = argc > 0 ? argv[0] : "-";
	char err[600], what[300];
	FILE *f;
	int rc;

	if (argc > 1)
		return fail(x, "usage: dir import [NAME] + the file as payload "
			    "(sluicectl dir import FILE sends it)");
	if (need_dir(x) < 0)
		return -1;
	if (!x->e->req_body)
		return fail(x, "no file: it is sent as the request's payload "
			    "(sluicectl dir import FILE)");
	if (x->e->req_body_len == 0)
		return fail(x, "%s: empty file (an import replaces the whole "
			    "directory; an empty one is refused)", name);
	f = fmemopen((void *)x->e->req_body, x->e->req_body_len, "r");
	if (!f)
		return fail(x, "out of memory");
	err[0] = 0;
	rc = stor_dirio_import(x->e->m->dir, f, name, err, sizeof(err));
	fclose(f);
	if (rc)
		return fail(x, "%s; nothing was changed (the directory is as "
			    "before)", err[0] ? err : stor_strerror(rc));
	snprintf(what, sizeof(what), "imported %s (%zu bytes), replacing "
		 "everything", name, x->e->req_body_len);
	log_info("directory: %s (sluicectl)", what);
	jw_cstr(&x->data, "name", name);
	jw_u64(&x->data, "bytes", x->e->req_body_len);
	buf_printf(&x->text, "imported %s: the directory was replaced\n",
		   name);
	return 0;
}

static int cmd_dir_export(struct ctx *x, int argc, char **argv)
{
	char *p = NULL;
	size_t n = 0, lines = 0;
	FILE *f;
	int rc;

	if (no_args(x, argc, argv) < 0 || need_dir(x) < 0)
		return -1;
	if (!(f = open_memstream(&p, &n)))
		return fail(x, "out of memory");
	rc = stor_dirio_export(x->e->m->dir, f);
	fclose(f);
	if (rc) {
		free(p);
		return fail(x, "%s", stor_strerror(rc));
	}
	for (size_t i = 0; i < n; i++)
		lines += p[i] == '\n';
	jw_u64(&x->data, "bytes", n);
	jw_u64(&x->data, "lines", lines);
	buf_add(&x->text, p, n);
	free(p);
	return 0;
}

const struct cmd ctlcmd_dir_cmds[] = {
	{ "dir", "list", cmd_dir_list,
	  "dir list [domains|rcpts|users|nets|prio] [prefix=P] [limit=N]",
	  "directory entries as text-format lines" },
	{ "dir", "show", cmd_dir_show, "dir show TABLE NAME",
	  "one entry (prio: dir show prio KIND PATTERN)" },
	{ "dir", "add", cmd_dir_addchange, "dir add LINE",
	  "a new entry: a line of the directory text format" },
	{ "dir", "change", cmd_dir_addchange, "dir change LINE",
	  "replace an existing entry (same name) with this line" },
	{ "dir", "remove", cmd_dir_remove, "dir remove TABLE NAME",
	  "remove one entry (a domain only without recipients)" },
	{ "dir", "passwd", cmd_dir_passwd, "dir passwd USER",
	  "set a user's password (payload; stored as a scrypt hash)" },
	{ "dir", "import", cmd_dir_import, "dir import [NAME] +LEN",
	  "replace the directory with the payload, all or nothing" },
	{ "dir", "export", cmd_dir_export, "dir export",
	  "the whole directory in the text format" },
	{ NULL, NULL, NULL, NULL, NULL },
};
