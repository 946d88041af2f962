/*
 * stor_pwhash - scrypt / PBKDF2-SHA256 password hash strings (contract in
 * stor_pwhash.h). Parsing is strict: canonical decimal numbers, known
 * parameter names in a fixed order, exact base64.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "stor_pwhash.h"

#define SALT_LEN 16
#define HASH_LEN 32

struct parsed {
	enum stor_pwhash_scheme s;
	uint64_t n, r, p, iter;
	uint8_t salt[64], hash[64];
	size_t saltn, hashn;
};

/* b64_decode - exact standard base64 with padding; returns bytes or -1 */
static int b64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
	uint8_t tmp[128];
	if (n == 0 || n % 4 || n / 4 * 3 > sizeof tmp)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			 (c >= '0' && c <= '9') || c == '+' || c == '/' ||
			 (c == '=' && i >= n - 2 && (i == n - 1 || s[n - 1] == '='));
		if (!ok)
			return -1;
	}
	int len = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
	if (len < 0)
		return -1;
	len -= (s[n - 1] == '=') + (s[n - 2] == '=');
	if ((size_t)len > cap)
		return -1;
	memcpy(out, tmp, (size_t)len);
	return len;
}

/* num - canonical decimal in [lo, hi] */
static int num(const char **p, const char *end, uint64_t lo, uint64_t hi, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	if (s >= end || *s < '0' || *s > '9' || (*s == '0' && s + 1 < end &&
						  s[1] >= '0' && s[1] <= '9'))
		return -1;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		x = x * 10 + (uint64_t)(*s - '0');
		if (x > hi)
			return -1;
	}
	if (x < lo)
		return -1;
	*v = x;
	*p = s;
	return 0;
}

static int lit(const char **p, const char *end, const char *want)
{
	size_t n = strlen(want);
	if ((size_t)(end - *p) < n || memcmp(*p, want, n))
		return -1;
	*p += n;
	return 0;
}

/* parse - split and bound-check a hash string */
static int parse(struct stor_str h, struct parsed *o)
{
	const char *p = h.p, *end = h.p + h.n;
	if (!h.p || h.n > STOR_PWHASH_MAX)
		return EINVAL;
	if (!lit(&p, end, "$scrypt$N=")) {
		o->s = STOR_PWHASH_SCRYPT;
		if (num(&p, end, 2, 1u << 20, &o->n) || (o->n & (o->n - 1)) ||
		    lit(&p, end, ",r=") || num(&p, end, 1, 32, &o->r) ||
		    lit(&p, end, ",p=") || num(&p, end, 1, 16, &o->p) ||
		    128 * o->n * o->r > (512u << 20))
			return EINVAL;
	} else if (!lit(&p, end, "$pbkdf2-sha256$i=")) {
		o->s = STOR_PWHASH_PBKDF2;
		if (num(&p, end, 1000, 10000000, &o->iter))
			return EINVAL;
	} else {
		return EINVAL;
	}
	if (lit(&p, end, "$"))
		return EINVAL;
	const char *d = memchr(p, '$', (size_t)(end - p));
	if (!d)
		return EINVAL;
	int sn = b64_decode(p, (size_t)(d - p), o->salt, sizeof o->salt);
	int hn = b64_decode(d + 1, (size_t)(end - d - 1), o->hash, sizeof o->hash);
	if (sn < 4 || hn < 16)
		return EINVAL;
	o->saltn = (size_t)sn;
	o->hashn = (size_t)hn;
	return 0;
}

/* derive - the KDF named by o over pw into out[len] */
static int derive(const struct parsed *o, const char *pw, size_t pwlen,
		  uint8_t *out, size_t len)
{
	if (o->s == STOR_PWHASH_SCRYPT) {
		uint64_t maxmem = 128 * o->r * (o->n + o->p + 2) + (1u << 20);
		return EVP_PBE_scrypt(pw, pwlen, o->salt, o->saltn, o->n, o->r, o->p,
				      maxmem, out, len) == 1 ? 0 : EIO;
	}
	return PKCS5_PBKDF2_HMAC(pw, (int)pwlen, o->salt, (int)o->saltn, (int)o->iter,
				 EVP_sha256(), (int)len, out) == 1 ? 0 : EIO;
}

int stor_pwhash_make(enum stor_pwhash_scheme s, unsigned long cost,
		     const char *pw, size_t pwlen, char *out, size_t cap)
{
	struct parsed o = { .s = s, .saltn = SALT_LEN, .hashn = HASH_LEN };
	char salt64[64], hash64[64], buf[STOR_PWHASH_MAX + 1];
	int n;
	if (s == STOR_PWHASH_SCRYPT) {
		o.n = cost ? cost : 16384;
		o.r = 8;
		o.p = 1;
		if (o.n < 2 || o.n > (1u << 20) || (o.n & (o.n - 1)))
			return EINVAL;
	} else if (s == STOR_PWHASH_PBKDF2) {
		o.iter = cost ? cost : 600000;
		if (o.iter < 1000 || o.iter > 10000000)
			return EINVAL;
	} else {
		return EINVAL;
	}
	if (pwlen > INT32_MAX || RAND_bytes(o.salt, SALT_LEN) != 1 ||
	    derive(&o, pw, pwlen, o.hash, HASH_LEN))
		return EIO;
	EVP_EncodeBlock((unsigned char *)salt64, o.salt, SALT_LEN);
	EVP_EncodeBlock((unsigned char *)hash64, o.hash, HASH_LEN);
	if (s == STOR_PWHASH_SCRYPT)
		n = snprintf(buf, sizeof buf, "$scrypt$N=%llu,r=%llu,p=%llu$%s$%s",
			     (unsigned long long)o.n, (unsigned long long)o.r,
			     (unsigned long long)o.p, salt64, hash64);
	else
		n = snprintf(buf, sizeof buf, "$pbkdf2-sha256$i=%llu$%s$%s",
			     (unsigned long long)o.iter, salt64, hash64);
	OPENSSL_cleanse(&o, sizeof o);
	if (n < 0 || (size_t)n >= cap)
		return ENOSPC;
	memcpy(out, buf, (size_t)n + 1);
	return 0;
}

int stor_pwhash_check(struct stor_str hash)
{
	struct parsed o;
	return parse(hash, &o);
}

int stor_pwhash_verify(struct stor_str hash, const char *pw, size_t pwlen)
{
	struct parsed o;
	uint8_t got[64];
	int rc = parse(hash, &o);
	if (rc)
		return rc;
	if (pwlen > INT32_MAX)
		return EACCES;
	if ((rc = derive(&o, pw, pwlen, got, o.hashn)))
		return rc;
	rc = CRYPTO_memcmp(got, o.hash, o.hashn) ? EACCES : 0;
	OPENSSL_cleanse(got, sizeof got);
	return rc;
}
