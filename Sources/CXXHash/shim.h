// libxxhash (Debian: libxxhash-dev) for XXH3-64, used by the EBS block manifest.
#include <xxhash.h>

#if defined(__x86_64__)
// libxxhash's run-time dispatch picks the widest vector unit the CPU has (AVX2, AVX-512); plain XXH3_64bits
// is its SSE2 build. Same values, about twice the speed on a 512 KiB block. Debian builds the x86-64 library
// with the dispatcher.
#include <xxh_x86dispatch.h>
static inline XXH64_hash_t zlabel_xxh3_64(const void *input, size_t length) {
    return XXH3_64bits_dispatch(input, length);
}
#else
static inline XXH64_hash_t zlabel_xxh3_64(const void *input, size_t length) {
    return XXH3_64bits(input, length);
}
#endif
