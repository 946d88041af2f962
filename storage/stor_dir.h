/*
 * stor_dir - the LMDB directory store: accepted domains and their routes,
 * recipients, authenticated users, trusted client networks, priority rules,
 * per-destination delivery limits.
 *
 * Named databases (layouts in docs/storage.md):
 *   domain  lower-case domain                 -> domain record
 *   rcpt    lower-case local@domain, or @domain for the catch-all
 *                                             -> recipient record
 *   user    lower-case user name              -> user record (password hash)
 *   net     [family 4|6][prefix len][masked address bytes] -> net record
 *   prio    [kind 's'|'r'|'d'] pattern        -> priority record
 *   limit   lower-case destination: domain, or host:port as the workers
 *           store a recipient route's first hop -> limit record
 *
 * Lookups run in a per-thread struct stor_dir_reader (a reusable read txn,
 * MDB_NOTLS, so any lcore may hold one): each lookup renews the snapshot,
 * and what it returns (strings point into the map) stays valid until the
 * next lookup on that reader or stor_dir_reader_release(). Lookups never
 * block and are not blocked by writers. Writes go through a write txn
 * (stor_dir_txn_begin) and the stor_dir_put_* / stor_dir_del functions;
 * stor_dirio does whole-directory import/export on top of them.
 * Names are compared case-insensitively (ASCII lower-cased on the way in).
 *
 * Errors: MDB_* codes unchanged; EINVAL for malformed input; STOR_ECORRUPT
 * for a record that fails its checksum; MDB_NOTFOUND for "no such entry".
 */
#ifndef STOR_DIR_H
#define STOR_DIR_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

#include "stor_rec.h"

struct stor_dir_conf {
	const char *path;           /* directory; created 0700 if missing */
	size_t map_size;            /* 0 = 256 MiB */
	unsigned max_readers;       /* 0 = 126 (one per lcore/thread + tools) */
};

struct stor_dir;
struct stor_dir_reader;

enum stor_dir_table { STOR_DIR_DOMAIN = 0, STOR_DIR_RCPT, STOR_DIR_USER,
		      STOR_DIR_NET, STOR_DIR_PRIO, STOR_DIR_LIMIT,
		      STOR_DIR_NTABLES };

enum stor_prio_kind { STOR_PRIO_SENDER = 's', STOR_PRIO_RCPT = 'r',
		      STOR_PRIO_DOMAIN = 'd' };

int stor_dir_open(const struct stor_dir_conf *c, struct stor_dir **d);
void stor_dir_close(struct stor_dir *d);
MDB_env *stor_dir_env(struct stor_dir *d);
MDB_dbi stor_dir_dbi(const struct stor_dir *d, enum stor_dir_table t);

/* ---- lookups ---- */
int stor_dir_reader_open(struct stor_dir *d, struct stor_dir_reader **r);
void stor_dir_reader_close(struct stor_dir_reader *r);
/* stor_dir_reader_release - drop the snapshot (lets LMDB reuse pages) */
void stor_dir_reader_release(struct stor_dir_reader *r);

/* stor_dir_domain - is domain accepted, and how. MDB_NOTFOUND if not */
int stor_dir_domain(struct stor_dir_reader *r, struct stor_str domain,
		    struct stor_dir_domain *out);
/* stor_dir_rcpt - exact address, else the domain's catch-all (*catchall
 * = 1). MDB_NOTFOUND: unknown recipient. EINVAL: not local@domain */
int stor_dir_rcpt(struct stor_dir_reader *r, struct stor_str addr,
		  struct stor_dir_rcpt *out, int *catchall);
/* stor_dir_user_verify - 0 if user exists and pw matches; EACCES
 * otherwise (unknown users cost the same time as wrong passwords) */
int stor_dir_user_verify(struct stor_dir_reader *r, struct stor_str user,
			 const char *pw, size_t pwlen);
/* stor_dir_trusted - 0 if addr (4 or 16 bytes, network order, af
 * AF_INET/AF_INET6) is inside a trusted network, MDB_NOTFOUND if not */
int stor_dir_trusted(struct stor_dir_reader *r, int af, const void *addr);
/* stor_dir_priority - first matching rule, in this order: recipient
 * address, recipient @domain, sender address, sender @domain, domain of
 * the recipient, domain of the sender. MDB_NOTFOUND if none matches
 * (either address may be empty) */
int stor_dir_priority(struct stor_dir_reader *r, struct stor_str sender,
		      struct stor_str rcpt, uint8_t *level);
/* stor_dir_limit - the delivery limits stored for a destination (a
 * domain, or host:port; normalised as stor_dir_put_limit does).
 * MDB_NOTFOUND if none; EINVAL if dest is not a valid destination name */
int stor_dir_limit(struct stor_dir_reader *r, struct stor_str dest,
		   struct stor_dir_limit *out);

/* ---- writes (inside a txn from stor_dir_txn_begin; commit with
 * mdb_txn_commit, abandon with mdb_txn_abort) ---- */
int stor_dir_txn_begin(struct stor_dir *d, MDB_txn **t);
/* replace != 0 overwrites an existing entry, else MDB_KEYEXIST */
int stor_dir_put_domain(struct stor_dir *d, MDB_txn *t, struct stor_str name,
			const struct stor_dir_domain *v, int replace);
/* addr: local@domain or *@domain (catch-all); the domain must exist
 * (MDB_NOTFOUND otherwise) */
int stor_dir_put_rcpt(struct stor_dir *d, MDB_txn *t, struct stor_str addr,
		      const struct stor_dir_rcpt *v, int replace);
/* hash must pass stor_pwhash_check (EINVAL): plain passwords never stored */
int stor_dir_put_user(struct stor_dir *d, MDB_txn *t, struct stor_str name,
		      struct stor_str hash, int replace);
/* cidr: a.b.c.d/len or v6/len with no host bits set */
int stor_dir_put_net(struct stor_dir *d, MDB_txn *t, struct stor_str cidr,
		     int replace);
int stor_dir_put_prio(struct stor_dir *d, MDB_txn *t, enum stor_prio_kind k,
		      struct stor_str pattern, uint8_t level, int replace);
/* dest: a domain, or HOST:PORT (HOST a name, an IPv4 address or
 * [IPv6]; PORT 1..65535); lower-cased, a domain loses one trailing dot.
 * EINVAL: bad name, a value above its bound (stor_rec_limit_ok) or all
 * three 0 (a limit that sets nothing) */
int stor_dir_put_limit(struct stor_dir *d, MDB_txn *t, struct stor_str dest,
		       const struct stor_dir_limit *v, int replace);
/* stor_dir_del - remove one entry named as for put (for prio: "s:pattern",
 * "r:pattern", "d:pattern"). MDB_NOTFOUND if absent */
int stor_dir_del(struct stor_dir *d, MDB_txn *t, enum stor_dir_table tab,
		 struct stor_str name);
/* stor_dir_clear - empty every table */
int stor_dir_clear(struct stor_dir *d, MDB_txn *t);

/* ---- keys in text form (export) ---- */
/* stor_dir_key_text - the put-form name of a stored key into out (NUL
 * terminated); prio keys give the pattern and *kind. EINVAL if bad */
int stor_dir_key_text(enum stor_dir_table tab, const void *key, size_t n,
		      char *out, size_t cap, char *kind);

#endif
