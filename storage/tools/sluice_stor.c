/*
 * sluice-stor - operator tool for the storage layer.
 *
 *   sluice-stor dir-import DIRPATH FILE     replace the directory (atomic)
 *   sluice-stor dir-export DIRPATH [FILE]   canonical text to FILE/stdout
 *                                           (every table: domain, rcpt,
 *                                           user, net, prio, limit lines;
 *                                           format in docs/storage.md)
 *   sluice-stor hash [scrypt|pbkdf2]        read a password line from
 *                                           stdin, print its hash string
 *   sluice-stor queue-info QUEUEPATH        run recovery, print counts
 *   sluice-stor queue-list QUEUEPATH        one line per message (read-only)
 *   sluice-stor queue-show QUEUEPATH QID [--body]
 *                                           envelope of one message; with
 *                                           --body the exact stored body
 *                                           bytes on stdout instead
 *
 * queue-list and queue-show never write: they open the environment
 * MDB_RDONLY and read in one read-only txn, so they are safe while sluiced
 * (or any writer) runs; LMDB is multi-process. queue-info runs recovery
 * and bumps the boot generation: never while sluiced runs.
 *
 * queue-list line: QID PRIO SENDER RCPT[,RCPT...] SIZE STATE, where SENDER
 * is <> for the null sender, STATE is "pending" (some recipient pending),
 * "done" (none pending) and RCPT is ADDRESS:STATE (pending, delivered,
 * failed). queue-show prints "key: value" lines (id, arrival, priority,
 * flags, size, crc, sender, envid, client, attempts, next-attempt, then
 * one "rcpt:" line per recipient: address, state, dest, orcpt, notify,
 * attempts, reply).
 *
 * Exit 0 on success, 1 on a data error (message names file and line),
 * 2 on usage errors.
 */
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stor_dir.h"
#include "stor_dirio.h"
#include "stor_err.h"
#include "stor_pwhash.h"
#include "stor_queue.h"
#include "stor_rec.h"
#include "stor_recover.h"

static int usage(void)
{
	fprintf(stderr, "usage: sluice-stor dir-import DIR FILE | dir-export DIR [FILE] |\n"
			"       hash [scrypt|pbkdf2] < password | queue-info QUEUEDIR |\n"
			"       queue-list QUEUEDIR | queue-show QUEUEDIR QID [--body]\n");
	return 2;
}

static int open_dir(const char *path, struct stor_dir **d)
{
	struct stor_dir_conf c = { .path = path };
	int rc = stor_dir_open(&c, d);
	if (rc)
		fprintf(stderr, "sluice-stor: %s: %s\n", path, stor_strerror(rc));
	return rc;
}

/* a read-only view of a queue environment: no write txn, no boot bump */
struct qview {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta, body;
	int empty;                  /* databases not created yet */
};

/* qview_open - MDB_RDONLY environment and one read txn over meta/body */
static int qview_open(const char *path, struct qview *v)
{
	memset(v, 0, sizeof *v);
	int rc = mdb_env_create(&v->env);
	if (!rc)
		rc = mdb_env_set_maxdbs(v->env, 16);
	if (!rc)
		rc = mdb_env_set_maxreaders(v->env, 126);
	if (!rc)
		rc = mdb_env_open(v->env, path, MDB_RDONLY | MDB_NOTLS | MDB_NORDAHEAD, 0600);
	if (!rc)
		rc = mdb_txn_begin(v->env, NULL, MDB_RDONLY, &v->txn);
	if (!rc) {
		rc = mdb_dbi_open(v->txn, "meta", 0, &v->meta);
		if (!rc)
			rc = mdb_dbi_open(v->txn, "body", 0, &v->body);
		if (rc == MDB_NOTFOUND) {
			v->empty = 1;
			rc = 0;
		}
	}
	if (rc) {
		fprintf(stderr, "sluice-stor: %s: %s\n", path, stor_strerror(rc));
		if (v->txn)
			mdb_txn_abort(v->txn);
		if (v->env)
			mdb_env_close(v->env);
		v->env = NULL;
	}
	return rc;
}

static void qview_close(struct qview *v)
{
	if (v->txn)
		mdb_txn_abort(v->txn);
	if (v->env)
		mdb_env_close(v->env);
}

static const char *rcpt_state_name(uint8_t s)
{
	return s == STOR_RCPT_PENDING ? "pending" : s == STOR_RCPT_DELIVERED ?
	       "delivered" : s == STOR_RCPT_FAILED ? "failed" :
	       s == STOR_RCPT_BOUNCED ? "bounced" : "?";
}

/* put_str - a stored string, bytes outside printable ASCII as \xHH */
static void put_str(struct stor_str s)
{
	for (uint32_t i = 0; i < s.n; i++) {
		unsigned char c = (unsigned char)s.p[i];
		if (c < 0x21 || c > 0x7e || c == '\\')
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static struct stor_rcpt rcpts[STOR_RCPT_MAX];

/* decode_meta - decode one meta value; prints why on failure */
static int decode_meta(const MDB_val *v, uint64_t qid, struct stor_msg *m)
{
	int rc = stor_rec_msg_decode(v->mv_data, v->mv_size, m, rcpts, STOR_RCPT_MAX);
	if (rc) {
		char id[STOR_QID_TEXT + 1];
		fprintf(stderr, "sluice-stor: %s: metadata: %s\n",
			stor_qid_format(qid, id), stor_strerror(rc));
	}
	return rc;
}

/* queue_list - one line per message in id order */
static int queue_list(const char *path)
{
	struct qview v;
	if (qview_open(path, &v))
		return 1;
	int bad = 0, rc = 0;
	if (!v.empty) {
		MDB_cursor *c;
		MDB_val k, val;
		rc = mdb_cursor_open(v.txn, v.meta, &c);
		while (!rc && !(rc = mdb_cursor_get(c, &k, &val, MDB_NEXT))) {
			struct stor_msg m;
			char id[STOR_QID_TEXT + 1];
			if (k.mv_size != STOR_QID_KEY)
				continue;
			uint64_t qid = stor_qid_from_key(k.mv_data);
			if (decode_meta(&val, qid, &m)) {
				bad = 1;
				continue;
			}
			int pending = 0;
			printf("%s %u ", stor_qid_format(qid, id), m.priority);
			if (m.sender.n)
				put_str(m.sender);
			else
				fputs("<>", stdout);
			putchar(' ');
			for (uint32_t i = 0; i < m.nrcpt; i++) {
				if (i)
					putchar(',');
				put_str(m.rcpt[i].addr);
				printf(":%s", rcpt_state_name(m.rcpt[i].state));
				pending |= m.rcpt[i].state == STOR_RCPT_PENDING;
			}
			printf(" %" PRIu32 " %s\n", m.body_len, pending ? "pending" : "done");
		}
		if (rc == MDB_NOTFOUND)
			rc = 0;
		mdb_cursor_close(c);
	}
	if (rc)
		fprintf(stderr, "sluice-stor: %s: %s\n", path, stor_strerror(rc));
	qview_close(&v);
	return rc || bad ? 1 : 0;
}

/* queue_show - envelope of one message, or its exact body bytes */
static int queue_show(const char *path, const char *qtext, int body)
{
	uint64_t qid;
	if (stor_qid_parse(qtext, strlen(qtext), &qid)) {
		fprintf(stderr, "sluice-stor: '%s' is not a queue id (13 characters base-32)\n", qtext);
		return 2;
	}
	struct qview v;
	if (qview_open(path, &v))
		return 1;
	uint8_t key[STOR_QID_KEY];
	stor_qid_key(qid, key);
	MDB_val k = { sizeof key, key }, mv, bv;
	int rc = v.empty ? MDB_NOTFOUND : mdb_get(v.txn, v.meta, &k, &mv);
	struct stor_msg m;
	if (rc) {
		fprintf(stderr, "sluice-stor: %s: %s\n", qtext,
			rc == MDB_NOTFOUND ? "no such message" : stor_strerror(rc));
		qview_close(&v);
		return 1;
	}
	if (decode_meta(&mv, qid, &m)) {
		qview_close(&v);
		return 1;
	}
	const void *b = NULL;
	size_t blen = 0;
	uint32_t crc = 0;
	rc = mdb_get(v.txn, v.body, &k, &bv);
	if (!rc)
		rc = stor_rec_body_decode(bv.mv_data, bv.mv_size, 1, &b, &blen, &crc);
	if (!rc && (blen != m.body_len || crc != m.body_crc))
		rc = STOR_ECORRUPT;
	if (rc) {
		fprintf(stderr, "sluice-stor: %s: body: %s\n", qtext,
			rc == MDB_NOTFOUND ? "missing" : stor_strerror(rc));
		qview_close(&v);
		return 1;
	}
	if (body) {
		size_t off = 0;
		while (off < blen) {
			ssize_t n = write(1, (const char *)b + off, blen - off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				fprintf(stderr, "sluice-stor: write: %s\n", strerror(errno));
				qview_close(&v);
				return 1;
			}
			off += (size_t)n;
		}
		qview_close(&v);
		return 0;
	}
	char id[STOR_QID_TEXT + 1];
	printf("id: %s\n", stor_qid_format(qid, id));
	printf("arrival-us: %" PRIu64 "\n", m.arrival_us);
	printf("priority: %u\n", m.priority);
	printf("flags: 0x%04x\n", m.flags);
	printf("size: %" PRIu32 "\n", m.body_len);
	printf("crc32c: %08" PRIx32 "\n", m.body_crc);
	fputs("sender: ", stdout);
	if (m.sender.n)
		put_str(m.sender);
	else
		fputs("<>", stdout);
	fputs("\nenvid: ", stdout);
	put_str(m.envid);
	fputs("\nclient: ", stdout);
	put_str(m.client);
	printf("\nattempts: %" PRIu32 "\nnext-attempt-us: %" PRIu64 "\n",
	       m.attempts, m.next_attempt_us);
	printf("recipients: %" PRIu32 "\n", m.nrcpt);
	for (uint32_t i = 0; i < m.nrcpt; i++) {
		const struct stor_rcpt *r = &m.rcpt[i];
		fputs("rcpt: ", stdout);
		put_str(r->addr);
		printf(" state=%s dest=", rcpt_state_name(r->state));
		put_str(r->dest);
		fputs(" orcpt=", stdout);
		put_str(r->orcpt);
		printf(" notify=0x%x attempts=%u reply=", r->notify, r->attempts);
		put_str(r->reply);
		putchar('\n');
	}
	qview_close(&v);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *cmd = argv[1];
	if (!strcmp(cmd, "dir-import") && argc == 4) {
		struct stor_dir *d;
		char err[512];
		FILE *in = strcmp(argv[3], "-") ? fopen(argv[3], "r") : stdin;
		if (!in) {
			fprintf(stderr, "sluice-stor: %s: %s\n", argv[3], strerror(errno));
			return 1;
		}
		if (open_dir(argv[2], &d))
			return 1;
		int rc = stor_dirio_import(d, in, argv[3], err, sizeof err);
		stor_dir_close(d);
		if (rc) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		return 0;
	}
	if (!strcmp(cmd, "dir-export") && (argc == 3 || argc == 4)) {
		struct stor_dir *d;
		FILE *out = argc == 4 ? fopen(argv[3], "w") : stdout;
		if (!out) {
			fprintf(stderr, "sluice-stor: %s: %s\n", argv[3], strerror(errno));
			return 1;
		}
		if (open_dir(argv[2], &d))
			return 1;
		int rc = stor_dirio_export(d, out);
		stor_dir_close(d);
		if (argc == 4 && fclose(out))
			rc = EIO;
		if (rc)
			fprintf(stderr, "sluice-stor: export: %s\n", stor_strerror(rc));
		return rc ? 1 : 0;
	}
	if (!strcmp(cmd, "hash") && argc <= 3) {
		enum stor_pwhash_scheme s = STOR_PWHASH_SCRYPT;
		if (argc == 3 && !strcmp(argv[2], "pbkdf2"))
			s = STOR_PWHASH_PBKDF2;
		else if (argc == 3 && strcmp(argv[2], "scrypt"))
			return usage();
		char pw[1024], out[STOR_PWHASH_MAX];
		if (!fgets(pw, sizeof pw, stdin))
			return usage();
		size_t n = strcspn(pw, "\r\n");
		int rc = stor_pwhash_make(s, 0, pw, n, out, sizeof out);
		memset(pw, 0, sizeof pw);
		if (rc) {
			fprintf(stderr, "sluice-stor: hash: %s\n", stor_strerror(rc));
			return 1;
		}
		puts(out);
		return 0;
	}
	if (!strcmp(cmd, "queue-info") && argc == 3) {
		struct stor_queue_conf c = { .path = argv[2] };
		struct stor_queue *q;
		struct stor_recover_report rep;
		uint64_t used, map, wm;
		int rc = stor_queue_open(&c, &q);
		if (!rc)
			rc = stor_recover_run(q, NULL, &rep);
		if (rc) {
			fprintf(stderr, "sluice-stor: %s: %s\n", argv[2], stor_strerror(rc));
			return 1;
		}
		stor_queue_usage(q, &used, &map, &wm);
		printf("messages %llu pending %llu corrupt %llu quarantined-now %llu "
		       "sched %llu hold %llu rebuilt-sched %d rebuilt-hold %d "
		       "used %llu map %llu watermark %llu\n",
		       (unsigned long long)rep.messages, (unsigned long long)rep.pending,
		       (unsigned long long)rep.corrupt_total, (unsigned long long)rep.quarantined,
		       (unsigned long long)rep.sched_entries, (unsigned long long)rep.hold_entries,
		       rep.sched_rebuilt, rep.hold_rebuilt, (unsigned long long)used,
		       (unsigned long long)map, (unsigned long long)wm);
		stor_queue_close(q);
		return 0;
	}
	if (!strcmp(cmd, "queue-list") && argc == 3)
		return queue_list(argv[2]);
	if (!strcmp(cmd, "queue-show") && (argc == 4 ||
	    (argc == 5 && !strcmp(argv[4], "--body"))))
		return queue_show(argv[2], argv[3], argc == 5);
	return usage();
}
