#ifndef ZLABEL_CNVPAIR_H
#define ZLABEL_CNVPAIR_H

// A narrow C interface to libnvpair for the benchmarks. The nvlist is passed as an opaque pointer so that
// Swift never imports libnvpair's own headers (which pull in the libspl compatibility headers).

#include <stddef.h>
#include <stdint.h>

/// `nvlist_unpack(buf, len, &nvl, 0)`. Returns 0 or an errno; on success `*out` holds the list.
int cnvpair_unpack(const uint8_t *buf, size_t len, void **out);

/// `nvlist_pack(nvl, &buf, &len, NV_ENCODE_XDR, 0)` into a buffer libnvpair allocates; `*out` and
/// `*out_len` receive it, to be released with `cnvpair_free_buffer`. Returns 0 or an errno.
int cnvpair_pack_xdr(void *nvl, uint8_t **out, size_t *out_len);

/// `nvlist_pack` into a caller's buffer of `capacity` bytes (no allocation). Returns 0 or an errno.
int cnvpair_pack_xdr_into(void *nvl, uint8_t *buf, size_t capacity, size_t *out_len);

/// `nvlist_size(nvl, &size, NV_ENCODE_XDR)`.
int cnvpair_size_xdr(void *nvl, size_t *size);

/// `nvlist_free`.
void cnvpair_free(void *nvl);

/// Frees a buffer from `cnvpair_pack_xdr`.
void cnvpair_free_buffer(uint8_t *buf, size_t len);

#endif
