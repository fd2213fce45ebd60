
/// Why a proxy handshake failed. Probes map these onto the `proxy_*` and `socks_error` reasons.
public enum ProxyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 407 (or 401) to CONNECT, or SOCKS username/password refused or required.
    case authRequired(String)
    /// The proxy answered but would not open the tunnel: CONNECT non-2xx, SOCKS reply not succeeded.
    case refused(String)
    /// The SOCKS exchange broke the protocol (wrong version, bad reply).
    case socks(String)
    /// The exchange did not finish: timeout, reset, close, or an HTTP answer that is not HTTP.
    case failed(String)

    public var description: String {
        switch self {
        case .authRequired(let s), .refused(let s), .socks(let s), .failed(let s): return s
        }
    }
}

/// Username and password for a proxy (Basic for HTTP, RFC 1929 for SOCKS5).
public struct ProxyCredentials: Sendable, Equatable {
    public let username: String
    public let password: String
    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }
}

/// HTTP CONNECT (RFC 9110 §9.3.6) over a stream to the proxy.
public enum HTTPConnectTunnel {
    /// Asks the proxy for a tunnel to `authority` (`host:port`, IPv6 in brackets). Returns the
    /// tunnel: bytes the proxy sent after its answer are kept, not lost.
    public static func open(over stream: any ByteStream, authority: String, credentials: ProxyCredentials?,
                            deadline: Deadline) async throws(ProxyError) -> any ByteStream {
        var headers = HTTPHeaders()
        headers.add("Host", authority)
        headers.add("User-Agent", "egress-monitor")
        if let c = credentials {
            headers.add("Proxy-Authorization", "Basic " + Base64.encode("\(c.username):\(c.password)".utf8))
        }
        let request = HTTPRequest(method: "CONNECT", target: authority, headers: headers)
        let bytes: [UInt8]
        do { bytes = try request.serialize() } catch { throw ProxyError.failed("cannot write CONNECT for \(authority): \(error)") }
        do {
            try await stream.write(bytes, deadline: deadline)
        } catch {
            throw ProxyError.failed("sending CONNECT: \(error)")
        }
        var parser = HTTPResponseParser(limits: .init(maxHeaderBytes: 16 * 1024, maxHeaderCount: 64, maxBodyBytes: 64 * 1024),
                                        requestMethod: "CONNECT")
        var head: HTTPResponseHead?
        while true {
            let chunk: [UInt8]
            do { chunk = try await stream.read(maxBytes: 16 * 1024, deadline: deadline) } catch {
                throw ProxyError.failed(error == .timedOut ? "no answer to CONNECT before the deadline" : "reading the CONNECT answer: \(error)")
            }
            let events: [HTTPResponseParser.Event]
            do { events = chunk.isEmpty ? try parser.finish() : try parser.feed(chunk) } catch {
                if let head { throw verdict(head) }
                throw ProxyError.failed(chunk.isEmpty ? "the proxy closed the connection without answering CONNECT" : "the proxy's answer is not HTTP: \(error)")
            }
            for event in events {
                if case .head(let h) = event { head = h }
            }
            if let head, (200..<300).contains(head.status) {
                return PrefixedStream(prefix: parser.takeTunnelBytes(), base: stream)
            }
            if let head, parser.isComplete || chunk.isEmpty { throw verdict(head) }
            if chunk.isEmpty { throw ProxyError.failed("the proxy closed the connection without answering CONNECT") }
        }
    }

    static func verdict(_ head: HTTPResponseHead) -> ProxyError {
        let what = "CONNECT answered \(head.status) \(head.reason)"
        // 407 is the standard answer; some proxies (tinyproxy 1.11) answer wrong credentials
        // with 401. Before the tunnel is open only the proxy can answer, so both are its auth.
        if head.status == 407 || head.status == 401 { return .authRequired(what) }
        return .refused(what)
    }
}

/// SOCKS5 (RFC 1928) with username/password authentication (RFC 1929).
public enum SOCKS5Tunnel {
    /// Where the tunnel goes: a name the proxy resolves (socks5h) or an address (socks5).
    public enum Destination: Sendable {
        case name(String)
        case address(IPAddress)
    }

    public static func open(over stream: any ByteStream, to destination: Destination, port: UInt16,
                            credentials: ProxyCredentials?, deadline: Deadline) async throws(ProxyError) -> any ByteStream {
        let reader = ExactReader(stream: stream, deadline: deadline)
        // Greeting: offer no-auth, and username/password when we have credentials.
        let methods: [UInt8] = credentials == nil ? [0x00] : [0x00, 0x02]
        try await send(stream, [0x05, UInt8(methods.count)] + methods, deadline: deadline)
        let choice = try await reader.read(2)
        guard choice[0] == 0x05 else { throw ProxyError.socks("not a SOCKS5 proxy (version byte \(choice[0]))") }
        switch choice[1] {
        case 0x00:
            break
        case 0x02:
            guard let c = credentials else { throw ProxyError.authRequired("the SOCKS5 proxy asks for a username and password") }
            let user = Array(c.username.utf8), pass = Array(c.password.utf8)
            guard (1...255).contains(user.count), pass.count <= 255 else {
                throw ProxyError.authRequired("SOCKS5 username and password must be 1 to 255 bytes")
            }
            try await send(stream, [0x01, UInt8(user.count)] + user + [UInt8(pass.count)] + pass, deadline: deadline)
            let status = try await reader.read(2)
            guard status[1] == 0x00 else { throw ProxyError.authRequired("the SOCKS5 proxy refused the username and password") }
        case 0xFF:
            throw ProxyError.authRequired(credentials == nil
                ? "the SOCKS5 proxy accepts none of the offered methods (it wants credentials)"
                : "the SOCKS5 proxy accepts none of the offered authentication methods")
        default:
            throw ProxyError.socks("the SOCKS5 proxy chose method \(choice[1]), which was not offered")
        }
        var request: [UInt8] = [0x05, 0x01, 0x00]
        switch destination {
        case .name(let host):
            let name = Array(host.utf8)
            guard (1...255).contains(name.count) else { throw ProxyError.socks("host name too long for SOCKS5") }
            request += [0x03, UInt8(name.count)] + name
        case .address(let ip):
            request += [ip.isIPv4 ? 0x01 : 0x04] + ip.bytes
        }
        request += [UInt8(port >> 8), UInt8(port & 0xff)]
        try await send(stream, request, deadline: deadline)
        let reply = try await reader.read(4)
        guard reply[0] == 0x05 else { throw ProxyError.socks("bad SOCKS5 reply version \(reply[0])") }
        guard reply[1] == 0x00 else { throw ProxyError.refused("SOCKS5 CONNECT failed: \(replyText(reply[1]))") }
        switch reply[3] {
        case 0x01: _ = try await reader.read(4 + 2)
        case 0x04: _ = try await reader.read(16 + 2)
        case 0x03:
            let len = try await reader.read(1)[0]
            _ = try await reader.read(Int(len) + 2)
        default: throw ProxyError.socks("bad SOCKS5 reply address type \(reply[3])")
        }
        return PrefixedStream(prefix: reader.leftover, base: stream)
    }

    static func replyText(_ code: UInt8) -> String {
        switch code {
        case 1: return "general SOCKS server failure"
        case 2: return "connection not allowed by ruleset"
        case 3: return "network unreachable"
        case 4: return "host unreachable"
        case 5: return "connection refused"
        case 6: return "TTL expired"
        case 7: return "command not supported"
        case 8: return "address type not supported"
        default: return "reply code \(code)"
        }
    }

    static func send(_ stream: any ByteStream, _ bytes: [UInt8], deadline: Deadline) async throws(ProxyError) {
        do { try await stream.write(bytes, deadline: deadline) } catch {
            throw ProxyError.failed("writing to the SOCKS5 proxy: \(error)")
        }
    }
}

/// Reads exact byte counts from a stream, keeping what arrives beyond them.
final class ExactReader: @unchecked Sendable {
    // @unchecked Sendable: used by the one task running the handshake.
    let stream: any ByteStream
    let deadline: Deadline
    var leftover: [UInt8] = []

    init(stream: any ByteStream, deadline: Deadline) {
        self.stream = stream
        self.deadline = deadline
    }

    func read(_ count: Int) async throws(ProxyError) -> [UInt8] {
        while leftover.count < count {
            let chunk: [UInt8]
            do { chunk = try await stream.read(maxBytes: 4096, deadline: deadline) } catch {
                throw ProxyError.failed(error == .timedOut ? "no answer from the SOCKS5 proxy before the deadline" : "reading from the SOCKS5 proxy: \(error)")
            }
            if chunk.isEmpty { throw ProxyError.socks("the SOCKS5 proxy closed the connection mid-handshake") }
            leftover += chunk
        }
        let out = Array(leftover[..<count])
        leftover.removeFirst(count)
        return out
    }
}
