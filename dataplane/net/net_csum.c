/*
 * net_csum.c - the Internet checksum (RFC 1071).
 *
 * Input:  bytes exactly as they sit in a packet (network order), plus a
 *         running 32-bit partial sum.
 * Output: partial sums, and a final 16-bit checksum that is stored into a
 *         header field with memcpy of the returned value as-is.
 *
 * How: the ones'-complement sum is independent of byte order (RFC 1071
 * section 2(B)), so words are loaded in host order and summed; the folded,
 * complemented result is then already "in memory order". The loop takes
 * 8 bytes at a time into a 64-bit accumulator with end-around carry
 * (RFC 1071 section 2(C) / 4.1 unrolled), which is congruent modulo
 * 0xffff with the 16-bit sum because 2^64-1 is a multiple of 2^16-1.
 *
 * Invariants: a correct packet's full sum (header with its checksum field,
 * or pseudo header + segment) folds to 0. Only the last piece of a chained
 * sum may have odd length (an odd byte is padded with a zero, RFC 1071).
 * No state, no allocation.
 */
#include <string.h>

#include "net_types.h"

/* csum_add64 - ones'-complement add of two 64-bit quantities */
static inline uint64_t csum_add64(uint64_t acc, uint64_t w)
{
	acc += w;
	return acc + (acc < w);
}

/* csum_fold64 - fold a 64-bit ones'-complement sum to 32 bits */
static inline uint32_t csum_fold64(uint64_t acc)
{
	acc = (acc & 0xffffffffu) + (acc >> 32);
	acc = (acc & 0xffffffffu) + (acc >> 32);
	return (uint32_t)acc;
}

/* net_csum_partial - ones'-complement sum of len bytes plus sum (RFC 1071) */
uint32_t net_csum_partial(const void *buf, size_t len, uint32_t sum)
{
	const uint8_t *p = buf;
	uint64_t acc = sum;
	uint64_t a0 = 0, a1 = 0;

	/* two independent accumulators hide the add-carry dependency chain */
	while (len >= 16) {
		uint64_t w0, w1;

		memcpy(&w0, p, 8);
		memcpy(&w1, p + 8, 8);
		a0 = csum_add64(a0, w0);
		a1 = csum_add64(a1, w1);
		p += 16;
		len -= 16;
	}
	acc = csum_add64(acc, a0);
	acc = csum_add64(acc, a1);
	if (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		acc = csum_add64(acc, w);
		p += 8;
		len -= 8;
	}
	if (len >= 4) {
		uint32_t w;

		memcpy(&w, p, 4);
		acc = csum_add64(acc, w);
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t w;

		memcpy(&w, p, 2);
		acc = csum_add64(acc, w);
		p += 2;
		len -= 2;
	}
	if (len) {
		/* odd byte: pad with zero on the right, in memory order */
		uint8_t pad[2] = { p[0], 0 };
		uint16_t w;

		memcpy(&w, pad, 2);
		acc = csum_add64(acc, w);
	}
	return csum_fold64(acc);
}

/* net_csum_fold - fold to 16 bits and complement (RFC 1071 step 3) */
uint16_t net_csum_fold(uint32_t sum)
{
	sum = (sum & 0xffffu) + (sum >> 16);
	sum = (sum & 0xffffu) + (sum >> 16);
	return (uint16_t)~sum;
}

/* net_csum_pseudo - TCP/UDP pseudo-header sum (RFC 793 3.1, RFC 768),
 * returned in the same memory-order convention as net_csum_partial */
uint32_t net_csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto,
			 uint16_t l4_len)
{
	uint8_t ph[12];

	ph[0] = (uint8_t)(src >> 24); ph[1] = (uint8_t)(src >> 16);
	ph[2] = (uint8_t)(src >> 8);  ph[3] = (uint8_t)src;
	ph[4] = (uint8_t)(dst >> 24); ph[5] = (uint8_t)(dst >> 16);
	ph[6] = (uint8_t)(dst >> 8);  ph[7] = (uint8_t)dst;
	ph[8] = 0;                    ph[9] = proto;
	ph[10] = (uint8_t)(l4_len >> 8); ph[11] = (uint8_t)l4_len;
	return net_csum_partial(ph, sizeof(ph), 0);
}
