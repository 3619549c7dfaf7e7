#include "CNVPair.h"
#include "shim.h"

#include <stdlib.h>

int cnvpair_unpack(const uint8_t *buf, size_t len, void **out) {
    nvlist_t *nvl = NULL;
    int err = nvlist_unpack((char *)buf, len, &nvl, 0);
    *out = err == 0 ? nvl : NULL;
    return err;
}

int cnvpair_pack_xdr(void *nvl, uint8_t **out, size_t *out_len) {
    char *buf = NULL;
    size_t len = 0;
    int err = nvlist_pack((nvlist_t *)nvl, &buf, &len, NV_ENCODE_XDR, 0);
    *out = (uint8_t *)buf;
    *out_len = len;
    return err;
}

int cnvpair_pack_xdr_into(void *nvl, uint8_t *buf, size_t capacity, size_t *out_len) {
    char *p = (char *)buf;
    size_t len = capacity;
    int err = nvlist_pack((nvlist_t *)nvl, &p, &len, NV_ENCODE_XDR, 0);
    *out_len = len;
    return err;
}

int cnvpair_size_xdr(void *nvl, size_t *size) { return nvlist_size((nvlist_t *)nvl, size, NV_ENCODE_XDR); }

void cnvpair_free(void *nvl) { nvlist_free((nvlist_t *)nvl); }

void cnvpair_free_buffer(uint8_t *buf, size_t len) {
    (void)len;
    free(buf);  // nvlist_pack allocates with the list's allocator, which is malloc by default
}
