// The system's OpenSSL (Debian: libssl-dev), for AWSCore's socket transport. Several of the calls it needs are
// macros over SSL_ctrl, which Swift cannot import; the small functions below stand in for them.
#ifndef ZLABEL_COPENSSL_SHIM_H
#define ZLABEL_COPENSSL_SHIM_H

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static inline long zlabel_ssl_set_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}

static inline long zlabel_ssl_ctx_set_min_tls12(SSL_CTX *ctx) {
    return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}

// Without SSL_MODE_AUTO_RETRY a blocking read may return WANT_READ after a non-application record; the
// transport's sockets are non-blocking and poll, so it sets the modes that make retries explicit instead.
static inline long zlabel_ssl_ctx_set_modes(SSL_CTX *ctx) {
    return SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

static inline unsigned long zlabel_ssl_ctx_no_renegotiation(SSL_CTX *ctx) {
    return SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
}

#endif
