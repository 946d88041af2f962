/*
 * stor_err - text for storage, LMDB and errno codes (CONVENTIONS 12: LMDB
 * codes pass through unchanged and are mapped with mdb_strerror).
 */
#include <lmdb.h>
#include "stor_err.h"

/* stor_strerror - own codes first, everything else through mdb_strerror */
const char *stor_strerror(int err)
{
	switch (err) {
	case STOR_EFULL:    return "storage full, try later (high watermark or map size reached)";
	case STOR_ECORRUPT: return "corrupt record (bad version, length or checksum)";
	case STOR_ESCHEMA:  return "unsupported storage schema version";
	case STOR_ESTOPPED: return "storage writer stopped";
	case STOR_EAGAIN:   return "too many submissions outstanding on this producer";
	default:            return mdb_strerror(err);
	}
}
