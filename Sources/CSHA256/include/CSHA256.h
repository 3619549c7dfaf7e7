// SHA-256 block compression with the x86 SHA extensions, one message, two or four at once.
//
// Only the compression function is here: padding, lengths and digests are the Swift side's (module BlockHashing).
// On an x86-64 CPU with the SHA extensions, SSSE3 and SSE4.1 `zlabel_sha256_available()` is 1; elsewhere it is 0
// and the compression functions must not be called.
//
// Why several at once: the rounds instruction of one message waits on the result of the one before, so a single
// message keeps the SHA unit busy only part of the time; independent messages fill those gaps (on the AMD EPYC
// machines measured: one message 2.0 GB/s, two 3.1, four 3.7).
#ifndef ZLABEL_CSHA256_H
#define ZLABEL_CSHA256_H
#include <stddef.h>
#include <stdint.h>

/// 1 when the compression functions below may run on this CPU, else 0.
int zlabel_sha256_available(void);

/// Runs `blocks` 64-byte blocks of `data` through the compression function; `state` is H0..H7.
void zlabel_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks);

/// The same for two independent messages, `blocks` blocks of each, interleaved.
void zlabel_sha256_blocks_x2(uint32_t state_a[8], const uint8_t *data_a, uint32_t state_b[8], const uint8_t *data_b,
                             size_t blocks);

/// The same for four messages; `states` holds their four states one after the other (H0..H7 of the first, …).
void zlabel_sha256_blocks_x4(uint32_t states[32], const uint8_t *data0, const uint8_t *data1, const uint8_t *data2,
                             const uint8_t *data3, size_t blocks);

#endif
