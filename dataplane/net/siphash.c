/*
 * siphash.c - SipHash-2-4, straight from the paper's reference algorithm.
 *
 * Input: 16-byte key, message. Output: 64-bit tag. Little-endian loads
 * through memcpy so it is alignment- and endian-safe.
 */
#include <string.h>

#include "siphash.h"

#define SIPHASH_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPHASH_ROUND(v0, v1, v2, v3)                                      \
	do {                                                               \
		v0 += v1; v1 = SIPHASH_ROTL(v1, 13); v1 ^= v0;             \
		v0 = SIPHASH_ROTL(v0, 32);                                 \
		v2 += v3; v3 = SIPHASH_ROTL(v3, 16); v3 ^= v2;             \
		v0 += v3; v3 = SIPHASH_ROTL(v3, 21); v3 ^= v0;             \
		v2 += v1; v1 = SIPHASH_ROTL(v1, 17); v1 ^= v2;             \
		v2 = SIPHASH_ROTL(v2, 32);                                 \
	} while (0)

/* siphash_le64 - little-endian 64-bit load */
static uint64_t siphash_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t siphash_24(const uint8_t key[16], const void *data, size_t len)
{
	const uint8_t *in = data;
	uint64_t k0 = siphash_le64(key), k1 = siphash_le64(key + 8);
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
	uint64_t v3 = 0x7465646279746573ULL ^ k1;
	uint64_t b = (uint64_t)len << 56;
	size_t i, full = len & ~(size_t)7;

	for (i = 0; i < full; i += 8) {
		uint64_t m = siphash_le64(in + i);
		v3 ^= m;
		SIPHASH_ROUND(v0, v1, v2, v3);
		SIPHASH_ROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	for (size_t j = 0; j < (len & 7); j++)
		b |= (uint64_t)in[full + j] << (8 * j);
	v3 ^= b;
	SIPHASH_ROUND(v0, v1, v2, v3);
	SIPHASH_ROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	for (int r = 0; r < 4; r++)
		SIPHASH_ROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}
