/*
 * stor_rotxn - reusable LMDB read-only transaction (contract in
 * stor_rotxn.h).
 */
#include <stddef.h>

#include "stor_rotxn.h"

int stor_rotxn_begin(struct stor_rotxn *x, MDB_env *env)
{
	stor_rotxn_end(x);
	int rc = x->txn ? mdb_txn_renew(x->txn) :
		 mdb_txn_begin(env, NULL, MDB_RDONLY, &x->txn);
	if (rc) {
		if (x->txn)
			mdb_txn_abort(x->txn);
		x->txn = NULL;
		return rc;
	}
	x->active = 1;
	return 0;
}

void stor_rotxn_end(struct stor_rotxn *x)
{
	if (x->active)
		mdb_txn_reset(x->txn);
	x->active = 0;
}

void stor_rotxn_close(struct stor_rotxn *x)
{
	if (x->txn)
		mdb_txn_abort(x->txn);
	x->txn = NULL;
	x->active = 0;
}
