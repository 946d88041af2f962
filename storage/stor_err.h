/*
 * stor_err - error codes of the storage layer.
 *
 * Storage functions return 0 on success, an LMDB code unchanged (MDB_*,
 * negative, -30799..-30780) or an errno value (positive, e.g. EINVAL,
 * ENOMEM, ENOENT), or one of the storage codes below (negative, -30700..).
 * stor_strerror() maps every one of them to text (LMDB and errno codes
 * through mdb_strerror()).
 */
#ifndef STOR_ERR_H
#define STOR_ERR_H

/* queue above its high watermark, or the map is full: not stored, try later
 * (SMTP: 452 4.3.1) */
#define STOR_EFULL     (-30700)
/* a record failed its version/length/checksum check; it was moved to the
 * `corrupt` database (queue) or refused (directory) */
#define STOR_ECORRUPT  (-30701)
/* the environment holds a schema version this code does not understand */
#define STOR_ESCHEMA   (-30702)
/* the writer has stopped; the submission was not stored */
#define STOR_ESTOPPED  (-30703)
/* the producer has as many submissions outstanding as its ring holds;
 * poll completions first (backpressure, nothing was queued) */
#define STOR_EAGAIN    (-30704)

/* stor_strerror - text for any code a storage function returns */
const char *stor_strerror(int err);

#endif
