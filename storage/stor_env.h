/*
 * stor_env - open an LMDB environment the way every storage store does
 * (queue: stor_queue, directory: stor_dir).
 *
 * Creates the directory (0700) if missing, opens the environment (0600)
 * with the given map size, table count, reader slots and flags, and clears
 * reader slots left by dead processes. On failure nothing stays open.
 */
#ifndef STOR_ENV_H
#define STOR_ENV_H

#include <stddef.h>
#include <lmdb.h>

/* stor_env_open - open path into *env; max_readers 0 means 126; *dead (if
 * not NULL) gets the number of stale reader slots cleared.
 * Returns 0, an errno from mkdir, or an MDB_* / errno code from LMDB. */
int stor_env_open(const char *path, size_t map_size, unsigned max_dbs,
		  unsigned max_readers, unsigned flags, MDB_env **env,
		  int *dead);

#endif
