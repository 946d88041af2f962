/*
 * ldapdir - the LDAP directory backend (issue 7): recipient verification,
 * per-recipient routes and forwarding, and AUTH by LDAP bind, from an
 * OpenLDAP-compatible server ([ldap] in sluice.conf, cfg.h), with an LMDB
 * cache so that io lcores never wait on the network.
 *
 * Who asks LDAP: an RCPT for a domain the local directory accepts (local
 * or relay; [ldap] domains narrows the set) whose address the local
 * directory does not know (no exact entry, no catch-all). Local entries
 * always win. AUTH goes to LDAP when [ldap] auth_filter is set (then the
 * local user table is not consulted).
 *
 * Threads and rings: one control-plane thread ("sluice-ldap") owns two
 * libldap connections: the service connection (bound as bind_dn, or
 * anonymous) for searches, the auth connection for user binds. It takes
 * recipient lookups (struct mstore_xreq, MP/SC ring) and AUTH checks
 * (struct work, MP/SC ring), runs them with libldap's asynchronous API
 * (ldap_search_ext / ldap_sasl_bind + ldap_result with no wait, each with
 * a deadline of timeout_ms), writes every answer into the cache and hands
 * the request back (mstore_xdone, mstore_done). Connecting tries uris in
 * order (failover); when all fail, nothing is tried for retry_s and
 * lookups are answered from the cache at once. TLS (ldaps://, or ldap://
 * with starttls) always verifies the server against tls_ca_file in a
 * context of the connection's own; a failed handshake is a URI that is
 * down (never a fall back to clear text), logged as a TLS failure.
 *
 * Cache: LMDB environment STATE_DIR/ldapcache (MDB_NOSYNC: a cache; one
 * that does not open is recreated). Key: lower-cased local@domain. Value
 * (little endian): u8 version 1, u8 verdict (1 found, 2 not found), u8
 * alias count, u8 0, u64 fetched (Unix ms), u64 expires (Unix ms), u16
 * route length + route ("host:port" or empty), per alias u16 length +
 * address, u32 CRC32C of everything before it. Answers expire after
 * cache_ttl_s (found) or negative_ttl_s (not found). Readers (io lcores,
 * workers) copy what they read and drop the snapshot at once.
 *
 * Verdicts (io lcore, smtpd.c): fresh entry -> 250 or 550 5.1.1; stale or
 * missing -> the session waits for the LDAP thread. LDAP answered -> 250 /
 * 550 5.1.1. LDAP unreachable or too slow -> a found entry not older than
 * its expiry + stale_max_s answers 250; anything else (nothing cached, a
 * not-found entry past its TTL) gets 451 4.4.3: a 550 only ever comes from
 * a real, unexpired negative answer.
 *
 * AUTH: the auth_filter search (service connection) must find exactly one
 * entry; its DN is bound with the client's password on the auth
 * connection (one bind at a time, RFC 4511 4.2.1). Empty passwords are
 * refused before LDAP (RFC 4513 5.1.2: they would be unauthenticated
 * binds). Invalid credentials, no entry or several -> 535 5.7.8; LDAP down
 * or slow -> 454 4.7.0. Passwords are never logged and are wiped from the
 * work item once sent.
 *
 * Counters: telemetry /sluice/ldap/counters.
 */
#ifndef SLUICE_LDAPDIR_H
#define SLUICE_LDAPDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "mstore.h"

#define LDAPDIR_REC_MAX 4096       /* largest cache value */

/* ---- pure parts (unit-tested) ---- */

/* ldapdir_escape - RFC 4515 3 value escaping: '*', '(', ')', '\' and NUL
 * become \2a \28 \29 \5c \00. Length written (NUL terminated), or -1 if
 * out (cap bytes) is too small */
int ldapdir_escape(const char *in, size_t n, char *out, size_t cap);

/* ldapdir_filter - expand a filter template: %s = name, %u = its part
 * before the last '@' (all of it if none), %d = the part after (empty if
 * none), %% = '%'; each substitution escaped. Length, or -1 if out is too
 * small or the template holds another '%' sequence */
int ldapdir_filter(const char *tmpl, const char *name, size_t n, char *out,
		   size_t cap);

/* ldapdir_route_norm - a route attribute value "host", "host:port" or
 * "[host]:port" as a destination "host:port" (lower case, port 25 by
 * default). Length, or -1 if the value is not a host name */
int ldapdir_route_norm(const char *v, size_t n, char *out, size_t cap);

/* ldapdir_domain_listed - is domain in a space/comma separated list
 * (case-insensitive); an empty list holds every domain */
bool ldapdir_domain_listed(const char *list, const char *dom, size_t n);

/* ldapdir_conn_why - the log text for a failed connection attempt:
 * libldap's error string, its diagnostic when that adds something, and,
 * if the TLS handshake had begun (tls_begun), that TLS failed and what to
 * check (ca_file, "" = the system CAs). Length written (truncated to
 * cap - 1), or -1 */
int ldapdir_conn_why(char *out, size_t cap, const char *errstr,
		     const char *diag, bool tls_begun, const char *ca_file);

enum ldapdir_verdict { LDAPDIR_FOUND = 1, LDAPDIR_NOTFOUND = 2 };

/* a cache record; strings point into the decoded buffer */
struct ldapdir_rec {
	uint8_t verdict;            /* enum ldapdir_verdict */
	uint64_t fetched_ms, expires_ms;
	const char *route;          /* "host:port"; route_len 0 = none */
	size_t route_len;
	unsigned naliases;
	const char *alias[MSTORE_X_ALIASES];
	size_t alias_len[MSTORE_X_ALIASES];
};

/* ldapdir_rec_encode - record into out; length, or -1 if it does not fit
 * in cap (or a string is longer than 65535) */
int ldapdir_rec_encode(const struct ldapdir_rec *r, uint8_t *out, size_t cap);
/* ldapdir_rec_decode - 0, or -1 for a value that is not a record (bad
 * version, length or CRC) */
int ldapdir_rec_decode(const uint8_t *p, size_t n, struct ldapdir_rec *r);

enum ldapdir_age { LDAPDIR_FRESH = 0, LDAPDIR_STALE = 1, LDAPDIR_DEAD = 2 };

/* ldapdir_rec_age - FRESH before expiry; STALE: a found entry expired less
 * than stale_max_ms ago (serves while LDAP is unreachable); DEAD: a
 * not-found entry past its TTL, or a found one past the stale window */
enum ldapdir_age ldapdir_rec_age(const struct ldapdir_rec *r,
				 uint64_t now_ms, uint64_t stale_max_ms);

/* ---- the backend ---- */

/* ldapdir_attach - open the cache, read the bind password file, make the
 * rings and plug the backend into m (mstore_xdir_attach); the thread
 * starts with mstore_start. Call after mstore_open, before workers and io
 * lcores are set up. 0, or -1 with the reason (naming file and key) */
int ldapdir_attach(struct mstore *m, const struct cfg *c, char *err,
		   size_t errlen);

#endif
