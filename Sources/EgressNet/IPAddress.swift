/// An IPv4 or IPv6 address, as a value.
///
/// Text forms follow the system's `inet_pton`/`inet_ntop` exactly where they are strict, and
/// RFC 5952 where `inet_ntop` is not: parsing accepts what glibc's `inet_pton` accepts (dotted
/// quads without leading zeros; IPv6 with one `::`, hex groups of at most 4 digits, an optional
/// trailing dotted quad) and rejects everything else — zone ids (`%eth0`), brackets, spaces.
/// ``description`` prints RFC 5952's canonical form.
///
/// The classification properties (`isPrivate`, `isReserved`, ...) exist to flag DNS answers that
/// cannot be a public host's address — the `dns_suspicious_answer` reason. An IPv4-mapped IPv6
/// address (`::ffff:a.b.c.d`) is classified as its embedded IPv4 address, as Go's `net.IP` does.
public enum IPAddress: Hashable, Sendable {
    /// An IPv4 address, its four bytes in network order.
    case v4(UInt8, UInt8, UInt8, UInt8)
    /// An IPv6 address: exactly 16 bytes in network order. Build it with ``init(bytes:)`` or
    /// ``init(_:)``, which check the length; a `.v6` built by hand with another length is read
    /// as if cut or zero-padded to 16 bytes.
    case v6([UInt8])

    /// `0.0.0.0`
    public static let anyIPv4 = IPAddress.v4(0, 0, 0, 0)
    /// `127.0.0.1`
    public static let loopbackIPv4 = IPAddress.v4(127, 0, 0, 1)
    /// `::`
    public static let anyIPv6 = IPAddress.v6([UInt8](repeating: 0, count: 16))
    /// `::1`
    public static let loopbackIPv6 = IPAddress.v6([UInt8](repeating: 0, count: 15) + [1])

    /// Parses `"1.2.3.4"`, `"::1"`, `"2a03:2880::face:b00c:0:25de"`, `"::ffff:1.2.3.4"`.
    /// Returns nil for anything `inet_pton` would reject, and for zone ids.
    public init?(_ text: String) {
        let utf8 = Array(text.utf8)
        if utf8.contains(UInt8(ascii: ":")) {
            guard let bytes = IPAddress.parseIPv6(utf8) else { return nil }
            self = .v6(bytes)
        } else {
            guard let b = IPAddress.parseIPv4(utf8[...]) else { return nil }
            self = .v4(b[0], b[1], b[2], b[3])
        }
    }

    /// An address from its bytes in network order: 4 for IPv4, 16 for IPv6, else nil.
    public init?(bytes: [UInt8]) {
        switch bytes.count {
        case 4: self = .v4(bytes[0], bytes[1], bytes[2], bytes[3])
        case 16: self = .v6(bytes)
        default: return nil
        }
    }

    /// The address in network order: 4 bytes for IPv4, 16 for IPv6.
    public var bytes: [UInt8] {
        switch self {
        case let .v4(a, b, c, d): return [a, b, c, d]
        case .v6: return v6Bytes
        }
    }

    public var isIPv4: Bool {
        if case .v4 = self { return true }
        return false
    }

    public var isIPv6: Bool { !isIPv4 }

    /// The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), else nil.
    public var ipv4Mapped: IPAddress? {
        guard case .v6 = self else { return nil }
        let b = v6Bytes
        guard b[0..<10].allSatisfy({ $0 == 0 }), b[10] == 0xff, b[11] == 0xff else { return nil }
        return .v4(b[12], b[13], b[14], b[15])
    }

    /// The 16 bytes of a `.v6`, cut or zero-padded should the case have been built by hand
    /// with another length. Meaningless for `.v4`.
    private var v6Bytes: [UInt8] {
        guard case .v6(let b) = self else { return [] }
        if b.count == 16 { return b }
        if b.count > 16 { return Array(b.prefix(16)) }
        return b + [UInt8](repeating: 0, count: 16 - b.count)
    }
}

// MARK: - Text

extension IPAddress: CustomStringConvertible {
    /// Canonical text: a dotted quad, or RFC 5952 for IPv6 (lowercase, no leading zeros, the
    /// first longest run of two or more zero groups compressed to `::`, and `::ffff:a.b.c.d`
    /// for IPv4-mapped addresses). Deprecated IPv4-compatible addresses are printed in hex
    /// (`::102:304`), where glibc's `inet_ntop` would print `::1.2.3.4`.
    public var description: String {
        switch self {
        case let .v4(a, b, c, d):
            return "\(a).\(b).\(c).\(d)"
        case .v6:
            if let v4 = ipv4Mapped { return "::ffff:\(v4)" }
            let b = v6Bytes
            var groups = [UInt16]()
            groups.reserveCapacity(8)
            for i in stride(from: 0, to: 16, by: 2) { groups.append(UInt16(b[i]) << 8 | UInt16(b[i + 1])) }
            // The first longest run of zero groups, if at least two long.
            var bestStart = -1, bestLength = 0, runStart = -1
            for i in 0...8 {
                if i < 8 && groups[i] == 0 {
                    if runStart < 0 { runStart = i }
                } else if runStart >= 0 {
                    if i - runStart > bestLength { bestStart = runStart; bestLength = i - runStart }
                    runStart = -1
                }
            }
            if bestLength < 2 { bestStart = -1 }
            var text = ""
            var i = 0
            while i < 8 {
                if i == bestStart {
                    text += "::"
                    i += bestLength
                    continue
                }
                if !text.isEmpty && !text.hasSuffix(":") { text += ":" }
                text += String(groups[i], radix: 16)
                i += 1
            }
            return text
        }
    }

    /// glibc's `inet_pton4`: exactly four decimal octets, no leading zeros, each at most 255.
    static func parseIPv4(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        var out = [UInt8]()
        out.reserveCapacity(4)
        var value = 0, digits = 0
        for c in text {
            if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                if digits > 0 && value == 0 { return nil }  // leading zero
                value = value * 10 + Int(c - UInt8(ascii: "0"))
                guard value <= 255 else { return nil }
                digits += 1
            } else if c == UInt8(ascii: ".") && digits > 0 {
                guard out.count < 3 else { return nil }
                out.append(UInt8(value))
                value = 0
                digits = 0
            } else {
                return nil
            }
        }
        guard digits > 0, out.count == 3 else { return nil }
        out.append(UInt8(value))
        return out
    }

    /// A port of glibc's `inet_pton6`, so that this type accepts exactly what the system does.
    static func parseIPv6(_ text: [UInt8]) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 16)
        var filled = 0                // bytes of `out` written
        var gapAt: Int? = nil         // where `::` stands, in bytes of `out`
        var i = 0
        let end = text.count
        guard end > 0 else { return nil }
        // A leading `::` needs special care: a lone leading `:` is an error.
        if text[0] == UInt8(ascii: ":") {
            i = 1
            guard i < end, text[i] == UInt8(ascii: ":") else { return nil }
        }
        var tokenStart = i
        var digits = 0
        var value = 0
        var sawIPv4 = false
        while i < end {
            let c = text[i]
            i += 1
            if let digit = hexValue(c) {
                guard digits < 4 else { return nil }
                value = value << 4 | digit
                digits += 1
                continue
            }
            if c == UInt8(ascii: ":") {
                tokenStart = i
                if digits == 0 {
                    guard gapAt == nil else { return nil }
                    gapAt = filled
                    continue
                }
                guard i < end, filled + 2 <= 16 else { return nil }  // no trailing single `:`
                out[filled] = UInt8(value >> 8)
                out[filled + 1] = UInt8(value & 0xff)
                filled += 2
                digits = 0
                value = 0
                continue
            }
            if c == UInt8(ascii: "."), filled + 4 <= 16, let v4 = parseIPv4(text[tokenStart..<end]) {
                for k in 0..<4 { out[filled + k] = v4[k] }
                filled += 4
                digits = 0
                sawIPv4 = true
                break
            }
            return nil
        }
        if digits > 0 && !sawIPv4 {
            guard filled + 2 <= 16 else { return nil }
            out[filled] = UInt8(value >> 8)
            out[filled + 1] = UInt8(value & 0xff)
            filled += 2
        }
        if let gap = gapAt {
            guard filled < 16 else { return nil }  // `::` must stand for at least one group
            let tail = filled - gap
            var moved = [UInt8](repeating: 0, count: 16)
            for k in 0..<gap { moved[k] = out[k] }
            for k in 0..<tail { moved[16 - tail + k] = out[gap + k] }
            out = moved
            filled = 16
        }
        guard filled == 16 else { return nil }
        return out
    }

    private static func hexValue(_ c: UInt8) -> Int? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(c - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(c - UInt8(ascii: "A")) + 10
        default: return nil
        }
    }
}

// MARK: - Order

extension IPAddress: Comparable {
    /// IPv4 before IPv6, then byte by byte: a stable order for sorting answer sets before they
    /// are compared across resolvers.
    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        if lhs.isIPv4 != rhs.isIPv4 { return lhs.isIPv4 }
        return lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }
}

// MARK: - Classification

extension IPAddress {
    /// 127.0.0.0/8, ::1.
    public var isLoopback: Bool {
        if let v4 = ipv4Mapped { return v4.isLoopback }
        switch self {
        case let .v4(a, _, _, _): return a == 127
        case .v6: return v6Bytes == IPAddress.loopbackIPv6.bytes
        }
    }

    /// 0.0.0.0/8 ("this network"), ::.
    public var isUnspecified: Bool {
        if let v4 = ipv4Mapped { return v4.isUnspecified }
        switch self {
        case let .v4(a, _, _, _): return a == 0
        case .v6: return v6Bytes.allSatisfy { $0 == 0 }
        }
    }

    /// 169.254.0.0/16, fe80::/10.
    public var isLinkLocal: Bool {
        if let v4 = ipv4Mapped { return v4.isLinkLocal }
        return matches(v4: [(169, 254, 16)], v6: [([0xfe, 0x80], 10)])
    }

    /// 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10 (carrier-grade NAT),
    /// fc00::/7 (unique local).
    public var isPrivate: Bool {
        if let v4 = ipv4Mapped { return v4.isPrivate }
        return matches(v4: [(10, 0, 8), (172, 16, 12), (192, 168, 16), (100, 64, 10)],
                       v6: [([0xfc], 7)])
    }

    /// 224.0.0.0/4, ff00::/8.
    public var isMulticast: Bool {
        if let v4 = ipv4Mapped { return v4.isMulticast }
        return matches(v4: [(224, 0, 4)], v6: [([0xff], 8)])
    }

    /// Ranges no public host can have: IPv4 240.0.0.0/4 (including 255.255.255.255), the
    /// documentation nets 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, benchmarking
    /// 198.18.0.0/15; IPv6 documentation 2001:db8::/32 and 3fff::/20, benchmarking
    /// 2001:2::/48, discard-only 100::/64, and the deprecated IPv4-compatible ::/96.
    public var isReserved: Bool {
        if let v4 = ipv4Mapped { return v4.isReserved }
        switch self {
        case let .v4(a, b, c, _):
            return a >= 240
                || (a == 192 && b == 0 && c == 2)
                || (a == 198 && b == 51 && c == 100)
                || (a == 203 && b == 0 && c == 113)
                || (a == 198 && (b & 0xfe) == 18)
        case .v6:
            if v6Bytes[0..<12].allSatisfy({ $0 == 0 }) && !isUnspecified && !isLoopback { return true }
            return matches(v4: [], v6: [([0x20, 0x01, 0x0d, 0xb8], 32), ([0x3f, 0xff, 0x00], 20),
                                        ([0x20, 0x01, 0x00, 0x02, 0x00, 0x00], 48),
                                        ([0x01, 0x00, 0, 0, 0, 0, 0, 0], 64)])
        }
    }

    /// True when a DNS answer carrying this address cannot name a real public host: it is
    /// loopback, unspecified, link-local, private, multicast or reserved; or, for IPv6, it is
    /// IPv4-mapped, or outside global unicast 2000::/3 — except the NAT64 prefix 64:ff9b::/96
    /// (DNS64 answers), which counts as bogon only when its embedded IPv4 address does.
    ///
    /// This catches blackhole answers (0.0.0.0, 127.0.0.1, 10.x). It cannot catch poisoning
    /// that answers with some other public address (108.160.169.181 for registry-1.docker.io):
    /// that needs answers compared across resolvers.
    public var isBogonForPublicHost: Bool {
        if isLoopback || isUnspecified || isLinkLocal || isPrivate || isMulticast || isReserved {
            return true
        }
        guard case .v6 = self else { return false }
        if ipv4Mapped != nil { return true }
        let b = v6Bytes
        if b[0..<12] == [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0] {
            return IPAddress.v4(b[12], b[13], b[14], b[15]).isBogonForPublicHost
        }
        return (b[0] & 0xe0) != 0x20
    }

    /// Whether the address lies inside `prefix`. Families never mix: an IPv4-mapped IPv6
    /// address is not inside an IPv4 prefix.
    public func contained(in prefix: IPPrefix) -> Bool {
        guard isIPv4 == prefix.address.isIPv4 else { return false }
        return IPPrefix.bytes(bytes, equal: prefix.address.bytes, forBits: prefix.length)
    }

    /// Whether the address is in one of the IPv4 prefixes (first octet, second octet, length;
    /// lengths 4...16) or IPv6 prefixes (leading bytes, length).
    private func matches(v4: [(UInt8, UInt8, Int)], v6: [([UInt8], Int)]) -> Bool {
        switch self {
        case let .v4(a, b, _, _):
            for (pa, pb, length) in v4 where IPPrefix.bytes([a, b], equal: [pa, pb], forBits: length) {
                return true
            }
            return false
        case .v6:
            let b = v6Bytes
            for (prefix, length) in v6 where IPPrefix.bytes(b, equal: prefix, forBits: length) {
                return true
            }
            return false
        }
    }
}

// MARK: - Prefix

/// An address prefix in CIDR notation: `10.0.0.0/8`, `fe80::/10`.
public struct IPPrefix: Hashable, Sendable, CustomStringConvertible {
    /// The network address: the host bits are zero.
    public let address: IPAddress
    /// The prefix length: 0...32 for IPv4, 0...128 for IPv6.
    public let length: Int

    /// Parses `address/length`. The length is decimal without leading zeros; host bits set in
    /// the address are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
    public init?(_ cidr: String) {
        guard let slash = cidr.firstIndex(of: "/"),
              let address = IPAddress(String(cidr[..<slash])) else { return nil }
        let digits = cidr[cidr.index(after: slash)...]
        guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              digits == "0" || !digits.hasPrefix("0"), let length = Int(digits) else { return nil }
        self.init(address: address, length: length)
    }

    /// A prefix of `length` bits of `address`; nil when the length does not fit the family.
    public init?(address: IPAddress, length: Int) {
        let bits = address.isIPv4 ? 32 : 128
        guard length >= 0 && length <= bits else { return nil }
        var b = address.bytes
        for i in 0..<b.count {
            let keep = max(0, min(8, length - i * 8))
            b[i] &= keep == 0 ? 0 : ~UInt8(0) << UInt8(8 - keep)
        }
        self.address = IPAddress(bytes: b) ?? address
        self.length = length
    }

    public var description: String { "\(address)/\(length)" }

    /// Whether `address` lies inside this prefix.
    public func contains(_ address: IPAddress) -> Bool { address.contained(in: self) }

    /// Whether the first `bits` bits of `a` and `b` agree (both must hold that many bits).
    static func bytes(_ a: [UInt8], equal b: [UInt8], forBits bits: Int) -> Bool {
        guard bits >= 0, a.count * 8 >= bits, b.count * 8 >= bits else { return false }
        let whole = bits / 8
        for i in 0..<whole where a[i] != b[i] { return false }
        let rest = bits % 8
        if rest == 0 { return true }
        let mask = ~UInt8(0) << UInt8(8 - rest)
        return a[whole] & mask == b[whole] & mask
    }
}
