/*
 * stor_env - shared LMDB environment open (contract in stor_env.h).
 */
#include <errno.h>
#include <sys/stat.h>

#include "stor_env.h"

int stor_env_open(const char *path, size_t map_size, unsigned max_dbs,
		  unsigned max_readers, unsigned flags, MDB_env **env,
		  int *dead)
{
	*env = NULL;
	if (mkdir(path, 0700) && errno != EEXIST)
		return errno;
	int rc = mdb_env_create(env);
	if (rc) {
		*env = NULL;
		return rc;
	}
	if (!(rc = mdb_env_set_mapsize(*env, map_size)) &&
	    !(rc = mdb_env_set_maxdbs(*env, max_dbs)) &&
	    !(rc = mdb_env_set_maxreaders(*env, max_readers ? max_readers : 126)) &&
	    !(rc = mdb_env_open(*env, path, flags, 0600)))
		rc = mdb_reader_check(*env, dead);
	if (rc) {
		mdb_env_close(*env);
		*env = NULL;
	}
	return rc;
}
