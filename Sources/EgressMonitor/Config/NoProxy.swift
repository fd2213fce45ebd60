import EgressNet

/// A `NO_PROXY` list, matched as Docker (Go's net/http proxy rules) matches it: `*` matches
/// everything; `example.com` matches it and its subdomains; `.example.com` only subdomains; an
/// optional `:port` narrows an entry; IP addresses and CIDR prefixes match IP-literal hosts.
/// `localhost` and loopback addresses are never proxied, whatever the list says.
public struct NoProxy: Sendable, Equatable {
    enum Entry: Sendable, Equatable {
        case all
        case domain(suffix: String, matchesExact: Bool, port: UInt16?)
        case ip(IPAddress, port: UInt16?)
        case prefix(IPPrefix)
    }

    let entries: [Entry]
    public let text: String

    public init(_ text: String) {
        self.text = text
        var entries: [Entry] = []
        for raw in text.split(whereSeparator: { $0 == "," || $0 == " " }) {
            var item = raw.lowercased()
            if item == "*" { entries.append(.all); continue }
            if let prefix = IPPrefix(item) { entries.append(.prefix(prefix)); continue }
            var port: UInt16?
            if let colon = item.lastIndex(of: ":"), !item.hasSuffix("]"), IPAddress(item) == nil,
               let p = UInt16(item[item.index(after: colon)...]) {
                port = p
                item = String(item[..<colon])
            }
            let bare = item.hasPrefix("[") && item.hasSuffix("]") ? String(item.dropFirst().dropLast()) : item
            if let ip = IPAddress(bare) { entries.append(.ip(ip, port: port)); continue }
            guard !item.isEmpty else { continue }
            if item.hasPrefix("*.") { item = String(item.dropFirst()) }
            if item.hasPrefix(".") {
                entries.append(.domain(suffix: item, matchesExact: false, port: port))
            } else {
                entries.append(.domain(suffix: "." + item, matchesExact: true, port: port))
            }
        }
        self.entries = entries
    }

    /// Whether a request to `host:port` goes direct, not through the proxy.
    public func bypasses(host rawHost: String, port: UInt16) -> Bool {
        let host = rawHost.lowercased()
        if host == "localhost" { return true }
        let ip = IPAddress(host)
        if let ip, ip.isLoopback { return true }
        for entry in entries {
            switch entry {
            case .all:
                return true
            case .domain(let suffix, let exact, let p):
                guard ip == nil, p == nil || p == port else { continue }
                if host.hasSuffix(suffix) || (exact && host == String(suffix.dropFirst())) { return true }
            case .ip(let a, let p):
                if ip == a && (p == nil || p == port) { return true }
            case .prefix(let prefix):
                if let ip, ip.contained(in: prefix) { return true }
            }
        }
        return false
    }
}
