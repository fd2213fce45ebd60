#ifndef EGRESS_COPENSSL_SHIM_H
#define EGRESS_COPENSSL_SHIM_H
// The system OpenSSL, plus shims for what the Swift importer cannot see (macros, stack
// accessors). Every shim is prefixed `egress_`. Imported only by EgressNet's TLS wrapper.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <time.h>

static inline long egress_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
static inline int egress_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long egress_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}
static inline long egress_SSL_MODE_ENABLE_PARTIAL_WRITE_AND_MOVING_BUFFER(void) {
    return SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
}
static inline long egress_SSL_CTX_set_options_no_renegotiation(SSL_CTX *ctx) {
    return (long)SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
}
static inline int egress_sk_X509_num(const STACK_OF(X509) *sk) { return sk_X509_num(sk); }
static inline X509 *egress_sk_X509_value(const STACK_OF(X509) *sk, int i) { return sk_X509_value(sk, i); }

/// Converts an ASN1_TIME to Unix seconds; returns 0 and sets *ok = 0 on failure.
static inline long long egress_ASN1_TIME_to_unix(const ASN1_TIME *t, int *ok) {
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) { *ok = 0; return 0; }
    *ok = 1;
    return (long long)timegm(&tm);
}
static inline int egress_TLS1_VERSION(void) { return TLS1_VERSION; }
static inline int egress_TLS1_2_VERSION(void) { return TLS1_2_VERSION; }
static inline int egress_TLS1_3_VERSION(void) { return TLS1_3_VERSION; }
#endif
