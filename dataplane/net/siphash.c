/* siphash.c - SipHash-2-4 (stub) */
#include "siphash.h"
uint64_t siphash_24(const uint8_t key[16], const void *data, size_t len)
{ (void)key; (void)data; (void)len; return 0; }
