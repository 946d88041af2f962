/* siphash.h - SipHash-2-4 keyed hash (stub) */
#ifndef SLUICE_SIPHASH_H
#define SLUICE_SIPHASH_H
#include <stddef.h>
#include <stdint.h>
uint64_t siphash_24(const uint8_t key[16], const void *data, size_t len);
#endif
