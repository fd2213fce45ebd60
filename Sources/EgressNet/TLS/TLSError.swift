/// Why a TLS handshake failed, told apart from OpenSSL's verify result and the transport's
/// state — never from error strings. `detail` is for logs and `check`, never a metric label.
public struct TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// The deadline passed during the handshake (a ServerHello that never came).
        case timeout
        /// The connection was reset or closed during the handshake (typical of SNI filtering).
        case reset
        /// The chain does not lead to a trusted root (self-signed, unknown CA).
        case certificateUntrusted
        /// A certificate in the chain is expired or not yet valid.
        case certificateExpired
        /// The certificate does not name the host (or IP) that was asked for.
        case hostnameMismatch
        /// Anything else: no shared version or cipher, garbage instead of a ServerHello, alerts.
        case protocolError
    }

    public let kind: Kind
    public let detail: String

    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { "\(kind.rawValue): \(detail)" }
}
