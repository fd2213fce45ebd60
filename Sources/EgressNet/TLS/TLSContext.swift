internal import COpenSSL
import EgressSync

/// A configured OpenSSL client context: trust store and minimum version. Shared by every
/// handshake that uses the same trust (one per `ca_file`, plus the system one).
public final class TLSContext: @unchecked Sendable {
    // @unchecked Sendable: SSL_CTX is safe to share between threads once configured, and it
    // is never reconfigured after init.
    let ctx: OpaquePointer
    /// The CA file this context trusts, or nil for the system store.
    public let caFile: String?

    private static let cache = Mutex<[String: TLSContext]>([:])

    /// The context for `caFile` (nil: the system trust store, which honours SSL_CERT_FILE),
    /// created once and reused.
    public static func client(caFile: String?) throws(TLSError) -> TLSContext {
        let key = caFile ?? ""
        if let c = cache.withLock({ $0[key] }) { return c }
        let c = try TLSContext(caFile: caFile)
        return cache.withLock { cache in
            if let existing = cache[key] { return existing }
            cache[key] = c
            return c
        }
    }

    /// Forgets cached contexts (a config reload may have changed a CA file).
    public static func flushCache() { cache.withLock { $0.removeAll() } }

    /// A new client context for `caFile`, not cached: for the step that loads a config's TLS
    /// material before the config is used (`replaceCache` then makes it the one handshakes use).
    public static func loading(caFile: String?) throws(TLSError) -> TLSContext {
        try TLSContext(caFile: caFile)
    }

    /// Replaces every cached context with `contexts` (a config reload loaded them from its CA
    /// files): the contexts a reload checked are the ones its probes use.
    public static func replaceCache(with contexts: [TLSContext]) {
        cache.withLock { cache in
            cache.removeAll()
            for c in contexts { cache[c.caFile ?? ""] = c }
        }
    }

    init(caFile: String?) throws(TLSError) {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw TLSError(.protocolError, "SSL_CTX_new: \(OpenSSLErrors.drain())")
        }
        _ = egress_SSL_CTX_set_min_proto_version(ctx, egress_TLS1_2_VERSION())
        _ = egress_SSL_CTX_set_options_no_renegotiation(ctx)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        if let caFile {
            if SSL_CTX_load_verify_locations(ctx, caFile, nil) != 1 {
                let detail = OpenSSLErrors.drain()
                SSL_CTX_free(ctx)
                throw TLSError(.certificateUntrusted, "cannot load CA file \(caFile): \(detail)")
            }
        } else if SSL_CTX_set_default_verify_paths(ctx) != 1 {
            let detail = OpenSSLErrors.drain()
            SSL_CTX_free(ctx)
            throw TLSError(.certificateUntrusted, "cannot load the system trust store: \(detail)")
        }
        // Stored only once configured: an init that throws after every stored property is set
        // runs deinit, which would free the context a second time (a CA file that is not PEM
        // crashed the agent with "double free"; ConfigTests.theLoadStepParsesCAFiles...).
        self.ctx = ctx
        self.caFile = caFile
    }

    init(adopting ctx: OpaquePointer) {
        self.ctx = ctx
        self.caFile = nil
    }

    deinit { SSL_CTX_free(ctx) }
}

/// Drains OpenSSL's per-thread error queue into one line of text (for logs and details).
enum OpenSSLErrors {
    static func drain() -> String {
        var parts: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buf, buf.count)
            parts.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return parts.isEmpty ? "no OpenSSL error" : parts.joined(separator: "; ")
    }
}
