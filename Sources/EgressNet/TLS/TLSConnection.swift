internal import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// What the handshake established, as plain Swift values.
public struct TLSSessionInfo: Sendable, Equatable {
    /// "TLSv1.3", "TLSv1.2".
    public let version: String
    /// OpenSSL's cipher name, e.g. "TLS_AES_256_GCM_SHA384".
    public let cipher: String
    /// The earliest notAfter in the chain the server sent, in Unix seconds.
    public let earliestNotAfter: Double?
}

/// A TLS client session over any `ByteStream` (a socket, or a tunnel through a proxy).
///
/// OpenSSL runs on memory BIOs: it never touches a file descriptor, so the same code serves a
/// direct socket, a CONNECT tunnel and TLS inside an HTTPS proxy's TLS. Every step that needs
/// bytes from the peer waits on the stream beneath with the caller's deadline.
public final class TLSConnection: ByteStream, @unchecked Sendable {
    // @unchecked Sendable: like every stream, a session is used by one task at a time; the SSL
    // object is only touched from that task, and freed once in deinit.
    private let ssl: OpaquePointer
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    private let transport: any ByteStream
    private var transportEOF = false
    public private(set) var info: TLSSessionInfo?

    private init(context: TLSContext, transport: any ByteStream) throws(TLSError) {
        guard let ssl = SSL_new(context.ctx) else {
            throw TLSError(.protocolError, "SSL_new: \(OpenSSLErrors.drain())")
        }
        guard let r = BIO_new(BIO_s_mem()), let w = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError(.protocolError, "BIO_new failed")
        }
        SSL_set_bio(ssl, r, w)  // ssl owns both BIOs from here
        self.ssl = ssl
        self.readBIO = r
        self.writeBIO = w
        self.transport = transport
    }

    deinit { SSL_free(ssl) }

    /// Runs a client handshake over `transport`.
    ///
    /// - Parameters:
    ///   - serverName: the host name, sent as SNI and checked against the certificate; nil when
    ///     the URL names an IP literal.
    ///   - ipAddress: for an IP-literal URL, the address the certificate must name (no SNI sent).
    public static func handshake(over transport: any ByteStream, context: TLSContext,
                                 serverName: String?, ipAddress: IPAddress? = nil,
                                 deadline: Deadline) async throws(TLSError) -> TLSConnection {
        let conn = try TLSConnection(context: context, transport: transport)
        if let serverName {
            _ = egress_SSL_set_tlsext_host_name(conn.ssl, serverName)
            if SSL_set1_host(conn.ssl, serverName) != 1 {
                throw TLSError(.protocolError, "cannot set host name for verification")
            }
        } else if let ipAddress {
            if X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(conn.ssl), ipAddress.description) != 1 {
                throw TLSError(.protocolError, "cannot set IP address for verification")
            }
        }
        SSL_set_connect_state(conn.ssl)
        try await conn.runHandshake(deadline: deadline)
        conn.info = conn.readSessionInfo()
        return conn
    }

    /// Runs a server handshake over `transport` (the agent's listener with TLS).
    public static func accept(over transport: any ByteStream, context: TLSContext,
                              deadline: Deadline) async throws(TLSError) -> TLSConnection {
        let conn = try TLSConnection(context: context, transport: transport)
        SSL_set_accept_state(conn.ssl)
        try await conn.runHandshake(deadline: deadline)
        conn.info = TLSSessionInfo(version: String(cString: SSL_get_version(conn.ssl)),
                                   cipher: SSL_get_current_cipher(conn.ssl).map { String(cString: SSL_CIPHER_get_name($0)) } ?? "unknown",
                                   earliestNotAfter: nil)
        return conn
    }

    private func runHandshake(deadline: Deadline) async throws(TLSError) {
        while true {
            ERR_clear_error()
            let rc = SSL_do_handshake(ssl)
            if rc == 1 {
                try await flushOrFail(deadline: deadline)
                return
            }
            let err = SSL_get_error(ssl, rc)
            switch err {
            case SSL_ERROR_WANT_READ:
                try await flushOrFail(deadline: deadline)
                if transportEOF { throw TLSError(.reset, "connection closed by peer during the handshake") }
                let bytes: [UInt8]
                do {
                    bytes = try await transport.read(maxBytes: 16 * 1024, deadline: deadline)
                } catch {
                    throw Self.classifyTransport(error, during: "handshake")
                }
                if bytes.isEmpty {
                    transportEOF = true
                    throw TLSError(.reset, "connection closed by peer during the handshake")
                }
                feed(bytes)
            case SSL_ERROR_WANT_WRITE:
                try await flushOrFail(deadline: deadline)
            default:
                // Send whatever alert OpenSSL queued, best effort, then classify.
                _ = try? await flush(deadline: deadline)
                throw classifyHandshakeFailure()
            }
        }
    }

    private func flushOrFail(deadline: Deadline) async throws(TLSError) {
        do { try await flush(deadline: deadline) } catch { throw Self.classifyTransport(error, during: "handshake") }
    }

    private static func classifyTransport(_ error: NetError, during: String) -> TLSError {
        switch error {
        case .timedOut: return TLSError(.timeout, "no answer from the server during the \(during)")
        case .reset: return TLSError(.reset, "connection reset by peer during the \(during)")
        case .closed: return TLSError(.reset, "connection closed by peer during the \(during)")
        default: return TLSError(.reset, "\(error) during the \(during)")
        }
    }

    private func classifyHandshakeFailure() -> TLSError {
        let detail = OpenSSLErrors.drain()
        let verify = SSL_get_verify_result(ssl)
        if verify != X509_V_OK {
            let text = String(cString: X509_verify_cert_error_string(verify))
            switch Int32(verify) {
            case X509_V_ERR_CERT_HAS_EXPIRED, X509_V_ERR_CERT_NOT_YET_VALID:
                return TLSError(.certificateExpired, text)
            case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
                return TLSError(.hostnameMismatch, text)
            default:
                return TLSError(.certificateUntrusted, text)
            }
        }
        return TLSError(.protocolError, detail)
    }

    /// Hands bytes read from the transport to OpenSSL.
    private func feed(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buf in
            _ = BIO_write(readBIO, buf.baseAddress, Int32(buf.count))
        }
    }

    /// Writes whatever OpenSSL produced to the transport.
    private func flush(deadline: Deadline) async throws(NetError) {
        while true {
            let pending = BIO_ctrl_pending(writeBIO)
            if pending == 0 { return }
            let out = [UInt8](unsafeUninitializedCapacity: Int(pending)) { buffer, count in
                count = max(0, Int(BIO_read(writeBIO, buffer.baseAddress, Int32(buffer.count))))
            }
            if out.isEmpty { return }
            try await transport.write(out, deadline: deadline)
        }
    }

    private func readSessionInfo() -> TLSSessionInfo {
        let version = String(cString: SSL_get_version(ssl))
        let cipher = SSL_get_current_cipher(ssl).map { String(cString: SSL_CIPHER_get_name($0)) } ?? "unknown"
        var earliest: Double?
        if let chain = SSL_get_peer_cert_chain(ssl) {
            for i in 0..<egress_sk_X509_num(chain) {
                guard let cert = egress_sk_X509_value(chain, i) else { continue }
                var ok: Int32 = 0
                let t = egress_ASN1_TIME_to_unix(X509_get0_notAfter(cert), &ok)
                if ok == 1 { earliest = min(earliest ?? Double(t), Double(t)) }
            }
        }
        return TLSSessionInfo(version: version, cipher: cipher, earliestNotAfter: earliest)
    }

    // MARK: ByteStream

    public func read(maxBytes: Int, deadline: Deadline) async throws(NetError) -> [UInt8] {
        while true {
            ERR_clear_error()
            // Decrypt into scratch space, return exactly the plaintext: no zeroed buffer per call.
            var n: Int32 = 0
            let plaintext = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(maxBytes, 1)) { scratch -> [UInt8]? in
                n = SSL_read(ssl, scratch.baseAddress, Int32(maxBytes))
                return n > 0 ? Array(UnsafeBufferPointer(rebasing: scratch[..<Int(n)])) : nil
            }
            if let plaintext { return plaintext }
            let err = SSL_get_error(ssl, n)
            switch err {
            case SSL_ERROR_WANT_READ:
                try await flush(deadline: deadline)
                if transportEOF { return [] }  // peer closed without close_notify: end of stream
                let bytes = try await transport.read(maxBytes: 16 * 1024, deadline: deadline)
                if bytes.isEmpty { transportEOF = true } else { feed(bytes) }
            case SSL_ERROR_WANT_WRITE:
                try await flush(deadline: deadline)
            case SSL_ERROR_ZERO_RETURN:
                return []
            default:
                throw NetError.protocolFailure("TLS read: \(OpenSSLErrors.drain())")
            }
        }
    }

    public func write(_ bytes: [UInt8], deadline: Deadline) async throws(NetError) {
        var offset = 0
        while offset < bytes.count {
            ERR_clear_error()
            let n = bytes.withUnsafeBytes { buf in
                SSL_write(ssl, buf.baseAddress! + offset, Int32(buf.count - offset))
            }
            if n > 0 {
                offset += Int(n)
                try await flush(deadline: deadline)
                continue
            }
            let err = SSL_get_error(ssl, n)
            switch err {
            case SSL_ERROR_WANT_WRITE, SSL_ERROR_WANT_READ:
                try await flush(deadline: deadline)
                if err == SSL_ERROR_WANT_READ {
                    let more = try await transport.read(maxBytes: 16 * 1024, deadline: deadline)
                    if more.isEmpty { throw NetError.closed }
                    feed(more)
                }
            default:
                throw NetError.protocolFailure("TLS write: \(OpenSSLErrors.drain())")
            }
        }
    }

    public func close() {
        transport.close()
    }
}
