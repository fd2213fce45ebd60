#if canImport(Glibc)
import Glibc
#endif

/// A network failure, as a value. Probes turn these into phase-specific failure reasons.
public enum NetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The deadline passed before the operation finished.
    case timedOut
    /// The peer answered the connect with RST (ECONNREFUSED), or an ICMP port unreachable for UDP.
    case refused
    /// The connection was reset (ECONNRESET, EPIPE).
    case reset
    /// The peer closed the connection (orderly EOF) where more bytes were required.
    case closed
    /// ENETUNREACH: no route to the network.
    case networkUnreachable
    /// EHOSTUNREACH: the host did not answer ARP/ND or an ICMP host unreachable arrived.
    case hostUnreachable
    /// The task waiting was cancelled (agent shutdown).
    case cancelled
    /// Binding to an interface needs CAP_NET_RAW on this kernel, or another permission was refused.
    case permissionDenied(String)
    /// A protocol layer above TCP (TLS) failed after its handshake; the text is for logs only.
    case protocolFailure(String)
    /// Any other system call failure: the call's name and errno.
    case system(call: String, errno: Int32)

    /// Classifies an errno from a socket call.
    public static func from(errno code: Int32, call: String) -> NetError {
        switch code {
        case ECONNREFUSED: return .refused
        case ECONNRESET, EPIPE, ECONNABORTED: return .reset
        case ETIMEDOUT: return .timedOut
        case ENETUNREACH, ENETDOWN: return .networkUnreachable
        case EHOSTUNREACH, EHOSTDOWN: return .hostUnreachable
        case EPERM, EACCES: return .permissionDenied("\(call): \(String(cString: strerror(code)))")
        default: return .system(call: call, errno: code)
        }
    }

    /// Whether the call failed for want of something on this host: file descriptors (EMFILE,
    /// ENFILE), memory or socket buffers (ENOMEM, ENOBUFS). Not the network's fault.
    public var isLocalResourceShortage: Bool {
        guard case .system(_, let code) = self else { return false }
        return code == EMFILE || code == ENFILE || code == ENOMEM || code == ENOBUFS
    }

    public var description: String {
        switch self {
        case .timedOut: return "timed out"
        case .refused: return "connection refused"
        case .reset: return "connection reset by peer"
        case .closed: return "connection closed by peer"
        case .networkUnreachable: return "network unreachable"
        case .hostUnreachable: return "host unreachable"
        case .cancelled: return "cancelled"
        case .permissionDenied(let what): return "permission denied (\(what))"
        case .protocolFailure(let what): return what
        case .system(let call, let code): return "\(call): \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}
