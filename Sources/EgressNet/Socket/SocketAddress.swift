#if canImport(Glibc)
import Glibc
#endif

/// An IP address and port: what a socket connects to or binds.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public let ip: IPAddress
    public let port: UInt16

    public init(ip: IPAddress, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// "1.2.3.4:443" or "[2001:db8::1]:443".
    public var description: String { ip.isIPv4 ? "\(ip):\(port)" : "[\(ip)]:\(port)" }

    var family: Int32 { ip.isIPv4 ? AF_INET : AF_INET6 }

    /// Calls `body` with this address as a `sockaddr`.
    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        let bytes = ip.bytes
        if ip.isIPv4 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: bytes) }
            return withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        } else {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: bytes) }
            return withUnsafePointer(to: &sin6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }

    /// Reads a `sockaddr_storage` filled by the kernel (getsockname, accept, recvfrom).
    init?(storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let sin = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            let b = withUnsafeBytes(of: sin.sin_addr) { Array($0) }
            guard let ip = IPAddress(bytes: b) else { return nil }
            self.init(ip: ip, port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6:
            let sin6 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            let b = withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }
            guard let ip = IPAddress(bytes: b) else { return nil }
            self.init(ip: ip, port: UInt16(bigEndian: sin6.sin6_port))
        default:
            return nil
        }
    }

    /// Parses "host:port" where host is an IP literal ("[::1]:53" for IPv6), or a bare IP with
    /// `defaultPort`.
    public init?(parsing text: String, defaultPort: UInt16? = nil) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"),
                  let ip = IPAddress(String(text[text.index(after: text.startIndex)..<close])) else { return nil }
            let rest = text[text.index(after: close)...]
            if rest.isEmpty, let d = defaultPort { self.init(ip: ip, port: d); return }
            guard rest.hasPrefix(":"), let p = UInt16(rest.dropFirst()) else { return nil }
            self.init(ip: ip, port: p)
            return
        }
        if let ip = IPAddress(text), let d = defaultPort {  // bare IPv4 or IPv6
            self.init(ip: ip, port: d)
            return
        }
        guard let colon = text.lastIndex(of: ":"), let ip = IPAddress(String(text[..<colon])),
              ip.isIPv4, let p = UInt16(text[text.index(after: colon)...]) else { return nil }
        self.init(ip: ip, port: p)
    }
}
