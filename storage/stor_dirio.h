/*
 * stor_dirio - the whole directory as a line-based text file.
 *
 * Import replaces the directory atomically: one write txn clears every
 * table and loads the file; any error aborts the txn (the old directory
 * stays untouched) and is reported as "FILE:LINE: reason". Export writes
 * the canonical form (sections in the order below, entries sorted by key,
 * every optional field spelled out), so export -> import -> export gives
 * identical bytes. Format (docs/storage.md has the full grammar):
 *
 *   # comment, blank lines ignored; fields separated by spaces or tabs
 *   domain NAME local|relay [route=HOST:PORT[,HOST:PORT...]] [tls=POLICY]
 *   rcpt ADDR|*@DOMAIN accept|reject [route=...] [tls=POLICY]
 *   rcpt ADDR|*@DOMAIN alias TARGET[,TARGET...] [route=...] [tls=POLICY]
 *   user NAME HASH                  (HASH from stor_pwhash, never plain)
 *   net CIDR
 *   prio sender|rcpt|domain PATTERN LEVEL     (PATTERN: addr or @domain)
 *   limit DEST [max_conns=N] [msgs_per_conn=N] [rate=N]
 *                                   (DEST: domain or HOST:PORT; N 0 or
 *                                   absent = the [delivery] default)
 *
 *   POLICY: none | opportunistic | required | verify
 */
#ifndef STOR_DIRIO_H
#define STOR_DIRIO_H

#include <stdio.h>
#include "stor_dir.h"

/* stor_dirio_import - load in (named name in errors) replacing everything.
 * Returns 0, EINVAL (bad input; err holds "name:LINE: reason"), or an
 * MDB_* / errno code (err says which). */
int stor_dirio_import(struct stor_dir *d, FILE *in, const char *name,
		      char *err, size_t errlen);
enum stor_dirio_mode {
	STOR_DIRIO_ADD = 0,     /* a new entry; an existing one is an error */
	STOR_DIRIO_CHANGE = 1,  /* replace an existing entry (same key) */
};

/* stor_dirio_line - apply one line of the format (NUL-terminated, split
 * in place) inside the write txn t: the same parser and checks as import
 * (sluicectl dir add / dir change). Returns 0, EINVAL with the reason in
 * err ("duplicate recipient ...", "no such entry ...", "recipient's
 * domain is not declared ..."), or an MDB_* code (err says which); on an
 * error the caller aborts t. */
int stor_dirio_line(struct stor_dir *d, MDB_txn *t, char *line,
		    enum stor_dirio_mode mode, char *err, size_t errlen);
/* stor_dirio_entry - one stored entry (k, v of table tab) as a line of
 * the format, without the newline. 0, STOR_ECORRUPT or EINVAL */
int stor_dirio_entry(enum stor_dir_table tab, const MDB_val *k,
		     const MDB_val *v, FILE *out);
/* stor_dirio_export - canonical text of the whole directory (one read
 * snapshot). Errors: MDB_*, STOR_ECORRUPT (a record failed its checksum),
 * EIO (write failed) */
int stor_dirio_export(struct stor_dir *d, FILE *out);

#endif
