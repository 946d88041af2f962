/*
 * stor_pwhash - password hashes for authenticated users, never plain text.
 *
 * Self-describing strings (salt and hash in standard base64 with padding):
 *   $scrypt$N=<pow2>,r=<r>,p=<p>$<salt>$<hash>      (OpenSSL EVP_PBE_scrypt)
 *   $pbkdf2-sha256$i=<iterations>$<salt>$<hash>     (PKCS5_PBKDF2_HMAC)
 * Salt 16 random bytes (RAND_bytes), hash 32 bytes. Verification compares
 * in constant time (CRYPTO_memcmp). Parameters are bounded on parse so a
 * hostile directory entry cannot make a verification take gigabytes or
 * minutes: scrypt N <= 2^20, r <= 32, p <= 16, 128*N*r <= 512 MiB;
 * PBKDF2 1000 <= i <= 10,000,000; salt 4..64 bytes; hash 16..64 bytes.
 */
#ifndef STOR_PWHASH_H
#define STOR_PWHASH_H

#include <stddef.h>
#include "stor_rec.h"

#define STOR_PWHASH_MAX 256     /* longest string stor_pwhash_make writes */

enum stor_pwhash_scheme { STOR_PWHASH_SCRYPT = 0, STOR_PWHASH_PBKDF2 = 1 };

/* stor_pwhash_make - hash pw with a fresh salt into out (NUL-terminated).
 * cost 0 = default (scrypt N=16384 r=8 p=1; PBKDF2 600000 iterations),
 * otherwise scrypt N or PBKDF2 iterations. Errors: EINVAL (cost out of
 * bounds), ENOSPC (cap), EIO (OpenSSL failure) */
int stor_pwhash_make(enum stor_pwhash_scheme s, unsigned long cost,
		     const char *pw, size_t pwlen, char *out, size_t cap);
/* stor_pwhash_check - 0 if hash is a well-formed string within bounds,
 * else EINVAL */
int stor_pwhash_check(struct stor_str hash);
/* stor_pwhash_verify - 0 if pw matches, EACCES if not, EINVAL malformed,
 * EIO on OpenSSL failure */
int stor_pwhash_verify(struct stor_str hash, const char *pw, size_t pwlen);

#endif
