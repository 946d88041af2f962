/*
 * sluice-stor - operator tool for the storage layer.
 *
 *   sluice-stor dir-import DIRPATH FILE     replace the directory (atomic)
 *   sluice-stor dir-export DIRPATH [FILE]   canonical text to FILE/stdout
 *   sluice-stor hash [scrypt|pbkdf2]        read a password line from
 *                                           stdin, print its hash string
 *   sluice-stor queue-info QUEUEPATH        run recovery, print counts
 *
 * Exit 0 on success, 1 on a data error (message names file and line),
 * 2 on usage errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stor_dir.h"
#include "stor_dirio.h"
#include "stor_err.h"
#include "stor_pwhash.h"
#include "stor_queue.h"
#include "stor_recover.h"

static int usage(void)
{
	fprintf(stderr, "usage: sluice-stor dir-import DIR FILE | dir-export DIR [FILE] |\n"
			"       hash [scrypt|pbkdf2] < password | queue-info QUEUEDIR\n");
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
	return usage();
}
