// TEMPORARY stand-in, replaced by the full IPAddress (helper-dns).
#if canImport(Glibc)
import Glibc
#endif
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt8, UInt8, UInt8, UInt8)
    case v6([UInt8])
    public init?(_ text: String) {
        var a4 = in_addr()
        if inet_pton(AF_INET, text, &a4) == 1 {
            let b = withUnsafeBytes(of: &a4) { Array($0) }
            self = .v4(b[0], b[1], b[2], b[3]); return
        }
        var a6 = in6_addr()
        if inet_pton(AF_INET6, text, &a6) == 1 { self = .v6(withUnsafeBytes(of: &a6) { Array($0) }); return }
        return nil
    }
    public init?(bytes: [UInt8]) {
        if bytes.count == 4 { self = .v4(bytes[0], bytes[1], bytes[2], bytes[3]) }
        else if bytes.count == 16 { self = .v6(bytes) } else { return nil }
    }
    public var bytes: [UInt8] {
        switch self { case .v4(let a, let b, let c, let d): return [a, b, c, d]; case .v6(let b): return b }
    }
    public var isIPv4: Bool { if case .v4 = self { return true }; return false }
    public var isLoopback: Bool { if case .v4(127, _, _, _) = self { return true }; return bytes == [UInt8](repeating: 0, count: 15) + [1] }
    public var description: String {
        var buf = [CChar](repeating: 0, count: 64)
        var b = bytes
        _ = inet_ntop(isIPv4 ? AF_INET : AF_INET6, &b, &buf, 64)
        return String(cString: buf)
    }
}
