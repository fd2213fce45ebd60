import EgressNet

/// A URL as the config names a registry, a mirror or a proxy: `scheme://[user[:pass]@]host[:port][/path]`.
///
/// Written by hand rather than with Foundation's URL so that every rejection has a precise
/// message, IPv6 literals are handled, and the userinfo can never leak: `description` redacts it.
public struct EndpointURL: Sendable, Hashable, CustomStringConvertible {
    public let scheme: String
    public let host: String
    public let port: UInt16
    public let path: String
    public let username: String?
    public let password: String?

    /// The host as an IP address when the URL names one (then DNS is skipped and no SNI is sent).
    public var ipLiteral: IPAddress? { IPAddress(host) }

    public init(scheme: String, host: String, port: UInt16, path: String = "", username: String? = nil, password: String? = nil) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.username = username
        self.password = password
    }

    /// Parses `text`; `defaultPorts` maps a scheme to its port. Returns a message on failure.
    public static func parse(_ text: String, defaultPorts: [String: UInt16]) -> Result<EndpointURL, URLProblem> {
        guard let sep = text.firstOccurrence(of: "://") else { return .failure(.init("is not a URL (expected scheme://host)")) }
        let scheme = text[..<sep.lowerBound].lowercased()
        guard !scheme.isEmpty else { return .failure(.init("has no scheme")) }
        var rest = Substring(text[sep.upperBound...])
        var path = ""
        if let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                username = percentDecode(String(userinfo[..<colon]))
                password = percentDecode(String(userinfo[userinfo.index(after: colon)...]))
            } else {
                username = percentDecode(String(userinfo))
            }
        }
        var host: String
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return .failure(.init("has an unclosed IPv6 bracket")) }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            guard IPAddress(host) != nil, host.contains(":") else { return .failure(.init("has a bad IPv6 address \"\(host)\"")) }
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return .failure(.init("has junk after the IPv6 address")) }
                portText = after.dropFirst()
            }
        } else {
            if let colon = rest.lastIndex(of: ":") {
                host = String(rest[..<colon])
                portText = rest[rest.index(after: colon)...]
            } else {
                host = String(rest)
            }
            guard !host.isEmpty else { return .failure(.init("has no host")) }
            guard Self.isValidHostName(host) || IPAddress(host) != nil else {
                return .failure(.init("has an invalid host \"\(host)\""))
            }
        }
        host = host.lowercased()
        var port: UInt16
        if let portText {
            guard let p = UInt16(portText), p > 0 else { return .failure(.init("has an invalid port \"\(portText)\"")) }
            port = p
        } else {
            guard let d = defaultPorts[scheme] else { return .failure(.init("needs a port for scheme \"\(scheme)\"")) }
            port = d
        }
        return .success(EndpointURL(scheme: scheme, host: host, port: port, path: path, username: username, password: password))
    }

    /// Letters, digits, hyphens and dots; labels of 1 to 63 characters; 253 at most.
    static func isValidHostName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        let trimmed = name.hasSuffix(".") ? String(name.dropLast()) : name
        for label in trimmed.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...63).contains(label.utf8.count) else { return false }
            for b in label.utf8 where !(b.isASCIIAlnum || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")) { return false }
            if label.hasPrefix("-") || label.hasSuffix("-") { return false }
        }
        return true
    }

    static func percentDecode(_ s: String) -> String {
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%"), bytes.count >= 2,
               let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) {
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `host:port` with IPv6 brackets, as in a Host header or a CONNECT request.
    public var authority: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The URL with any password replaced by `***`: safe for logs, pages and errors.
    public var description: String {
        var s = "\(scheme)://"
        if let username {
            s += username
            if password != nil { s += ":***" }
            s += "@"
        }
        s += host.contains(":") ? "[\(host)]" : host
        if port != Self.wellKnownPorts[scheme] { s += ":\(port)" }
        return s + path
    }

    public static let wellKnownPorts: [String: UInt16] = [
        "http": 80, "https": 443, "socks5": 1080, "socks5h": 1080,
    ]
}

public struct URLProblem: Error, Sendable, Equatable {
    public let message: String
    init(_ message: String) { self.message = message }
}

extension UInt8 {
    var isASCIIAlnum: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}
