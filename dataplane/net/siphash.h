/*
 * siphash.h - SipHash-2-4 keyed hash (Aumasson & Bernstein, 2012).
 *
 * Used by TCP for keyed ISNs (RFC 6528), SYN cookies (RFC 4987) and
 * per-connection timestamp offsets (RFC 7323 7.1). Pure function: no state,
 * no allocation. Output matches the reference implementation's 64-bit
 * variant (little-endian key and message interpretation).
 */
#ifndef SLUICE_SIPHASH_H
#define SLUICE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* siphash_24 - 64-bit SipHash-2-4 of len bytes under a 16-byte key */
uint64_t siphash_24(const uint8_t key[16], const void *data, size_t len);

#endif
