internal import COpenSSL

extension TLSContext {
    /// A server context for the agent's listener: certificate chain and key from PEM files,
    /// TLS 1.2 at least.
    public static func server(certFile: String, keyFile: String) throws(TLSError) -> TLSContext {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else {
            throw TLSError(.protocolError, "SSL_CTX_new: \(OpenSSLErrors.drain())")
        }
        _ = egress_SSL_CTX_set_min_proto_version(ctx, egress_TLS1_2_VERSION())
        _ = egress_SSL_CTX_set_options_no_renegotiation(ctx)
        if SSL_CTX_use_certificate_chain_file(ctx, certFile) != 1 {
            let detail = OpenSSLErrors.drain()
            SSL_CTX_free(ctx)
            throw TLSError(.protocolError, "cannot load certificate \(certFile): \(detail)")
        }
        if SSL_CTX_use_PrivateKey_file(ctx, keyFile, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1 {
            let detail = OpenSSLErrors.drain()
            SSL_CTX_free(ctx)
            throw TLSError(.protocolError, "cannot load key \(keyFile) for \(certFile): \(detail)")
        }
        return TLSContext(adopting: ctx)
    }
}
