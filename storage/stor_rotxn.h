/*
 * stor_rotxn - a reusable LMDB read-only transaction, shared by the queue
 * reader (stor_queue) and the directory reader (stor_dir).
 *
 * A reader keeps one MDB_txn for its whole life: begin takes a fresh
 * snapshot (mdb_txn_renew, or mdb_txn_begin the first time), end releases
 * it (mdb_txn_reset) so the writer can reuse the pages, close frees it.
 * Invariant: txn is NULL or a handle owned by this struct; active is 1
 * only between a successful begin and the next end.
 */
#ifndef STOR_ROTXN_H
#define STOR_ROTXN_H

#include <lmdb.h>

struct stor_rotxn {
	MDB_txn *txn;
	int active;
};

/* stor_rotxn_begin - end any snapshot held, then take a fresh one.
 * Returns 0 or an MDB_* / errno code (the handle is then freed). */
int stor_rotxn_begin(struct stor_rotxn *x, MDB_env *env);
/* stor_rotxn_end - release the snapshot (no-op when none is held) */
void stor_rotxn_end(struct stor_rotxn *x);
/* stor_rotxn_close - free the handle (the struct itself is the caller's) */
void stor_rotxn_close(struct stor_rotxn *x);

#endif
