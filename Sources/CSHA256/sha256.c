// SHA-256 compression with SHA256RNDS2 / SHA256MSG1 / SHA256MSG2 (see include/CSHA256.h).
// (The non-x86 branch at the end keeps the symbols; Swift never calls them there.)
//
// The eight state words live in two vectors as the rounds instruction wants them: `abef` holds (from the high
// lane down) A, B, E, F and `cdgh` holds C, D, G, H. One SHA256RNDS2 does two rounds and takes the two
// message-plus-constant words from the low half of its third operand.
//
// The message schedule is kept in four vectors of four words, w[g % 4] holding W[4g .. 4g+3]:
//   W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16]
// SHA256MSG1(W[t-16..t-13], W[t-12..t-9]) gives W[t-16..t-13] + s0(W[t-15..t-12]); adding W[t-7..t-4] (the
// last three words of the group before the previous one and the first of the previous one) and then
// SHA256MSG2(sum, W[t-4..t-1]) gives W[t..t+3].
#include "CSHA256.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

int zlabel_sha256_available(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const int sha = (b >> 29) & 1;
    return ssse3 && sse41 && sha;
}

static const uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ZL_TARGET __attribute__((target("sha,ssse3,sse4.1"), always_inline)) static inline

// H0..H7 (H0 in the lowest lane of the first load) to the abef/cdgh pair.
ZL_TARGET void load_state(const uint32_t state[8], __m128i *abef, __m128i *cdgh) {
    __m128i dcba = _mm_loadu_si128((const __m128i *)&state[0]);  // lanes 0..3: A B C D
    __m128i hgfe = _mm_loadu_si128((const __m128i *)&state[4]);  // lanes 0..3: E F G H
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);                // lanes: B A D C
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);                // lanes: H G F E
    *abef = _mm_alignr_epi8(cdab, efgh, 8);                      // lanes: F E B A
    *cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);                   // lanes: H G D C
}

ZL_TARGET void store_state(uint32_t state[8], __m128i abef, __m128i cdgh) {
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);                // lanes: A B E F
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);                // lanes: G H C D
    __m128i dcba = _mm_blend_epi16(feba, dchg, 0xF0);            // lanes: A B C D
    __m128i hgfe = _mm_alignr_epi8(dchg, feba, 8);               // lanes: E F G H
    _mm_storeu_si128((__m128i *)&state[0], dcba);
    _mm_storeu_si128((__m128i *)&state[4], hgfe);
}

// One lane's running values for a block.
typedef struct {
    __m128i abef, cdgh, w[4];
} lane;

ZL_TARGET void lane_begin(lane *l, const uint8_t *block, int g) {
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    l->w[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 16 * g)), swap);
}

// Four rounds (group g, 0 ≤ g < 16), computing the group's schedule words first when g ≥ 4.
ZL_TARGET void lane_rounds(lane *l, int g) {
    if (g >= 4) {
        __m128i x = _mm_sha256msg1_epu32(l->w[g & 3], l->w[(g + 1) & 3]);
        x = _mm_add_epi32(x, _mm_alignr_epi8(l->w[(g + 3) & 3], l->w[(g + 2) & 3], 4));
        l->w[g & 3] = _mm_sha256msg2_epu32(x, l->w[(g + 3) & 3]);
    }
    __m128i wk = _mm_add_epi32(l->w[g & 3], _mm_loadu_si128((const __m128i *)&round_constants[4 * g]));
    l->cdgh = _mm_sha256rnds2_epu32(l->cdgh, l->abef, wk);
    l->abef = _mm_sha256rnds2_epu32(l->abef, l->cdgh, _mm_shuffle_epi32(wk, 0x0E));
}

__attribute__((target("sha,ssse3,sse4.1")))
void zlabel_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks) {
    lane a;
    load_state(state, &a.abef, &a.cdgh);
    for (size_t i = 0; i < blocks; i++, data += 64) {
        const __m128i abef0 = a.abef, cdgh0 = a.cdgh;
        for (int g = 0; g < 4; g++) lane_begin(&a, data, g);
#pragma clang loop unroll(full)
        for (int g = 0; g < 16; g++) lane_rounds(&a, g);
        a.abef = _mm_add_epi32(a.abef, abef0);
        a.cdgh = _mm_add_epi32(a.cdgh, cdgh0);
    }
    store_state(state, a.abef, a.cdgh);
}

__attribute__((target("sha,ssse3,sse4.1")))
void zlabel_sha256_blocks_x2(uint32_t state_a[8], const uint8_t *data_a, uint32_t state_b[8], const uint8_t *data_b,
                             size_t blocks) {
    lane a, b;
    load_state(state_a, &a.abef, &a.cdgh);
    load_state(state_b, &b.abef, &b.cdgh);
    for (size_t i = 0; i < blocks; i++, data_a += 64, data_b += 64) {
        const __m128i abef_a = a.abef, cdgh_a = a.cdgh, abef_b = b.abef, cdgh_b = b.cdgh;
        for (int g = 0; g < 4; g++) {
            lane_begin(&a, data_a, g);
            lane_begin(&b, data_b, g);
        }
#pragma clang loop unroll(full)
        for (int g = 0; g < 16; g++) {
            lane_rounds(&a, g);
            lane_rounds(&b, g);
        }
        a.abef = _mm_add_epi32(a.abef, abef_a);
        a.cdgh = _mm_add_epi32(a.cdgh, cdgh_a);
        b.abef = _mm_add_epi32(b.abef, abef_b);
        b.cdgh = _mm_add_epi32(b.cdgh, cdgh_b);
    }
    store_state(state_a, a.abef, a.cdgh);
    store_state(state_b, b.abef, b.cdgh);
}

__attribute__((target("sha,ssse3,sse4.1")))
void zlabel_sha256_blocks_x4(uint32_t states[32], const uint8_t *data0, const uint8_t *data1, const uint8_t *data2,
                             const uint8_t *data3, size_t blocks) {
    const uint8_t *data[4] = {data0, data1, data2, data3};
    lane l[4];
    for (int k = 0; k < 4; k++) load_state(states + 8 * k, &l[k].abef, &l[k].cdgh);
    for (size_t i = 0; i < blocks; i++) {
        __m128i abef[4], cdgh[4];
        for (int k = 0; k < 4; k++) {
            abef[k] = l[k].abef;
            cdgh[k] = l[k].cdgh;
            for (int g = 0; g < 4; g++) lane_begin(&l[k], data[k] + 64 * i, g);
        }
#pragma clang loop unroll(full)
        for (int g = 0; g < 16; g++) {
            for (int k = 0; k < 4; k++) lane_rounds(&l[k], g);
        }
        for (int k = 0; k < 4; k++) {
            l[k].abef = _mm_add_epi32(l[k].abef, abef[k]);
            l[k].cdgh = _mm_add_epi32(l[k].cdgh, cdgh[k]);
        }
    }
    for (int k = 0; k < 4; k++) store_state(states + 8 * k, l[k].abef, l[k].cdgh);
}

#else

int zlabel_sha256_available(void) { return 0; }
void zlabel_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks) {
    (void)state; (void)data; (void)blocks;
}
void zlabel_sha256_blocks_x2(uint32_t state_a[8], const uint8_t *data_a, uint32_t state_b[8], const uint8_t *data_b,
                             size_t blocks) {
    (void)state_a; (void)data_a; (void)state_b; (void)data_b; (void)blocks;
}
void zlabel_sha256_blocks_x4(uint32_t states[32], const uint8_t *data0, const uint8_t *data1, const uint8_t *data2,
                             const uint8_t *data3, size_t blocks) {
    (void)states; (void)data0; (void)data1; (void)data2; (void)data3; (void)blocks;
}

#endif
