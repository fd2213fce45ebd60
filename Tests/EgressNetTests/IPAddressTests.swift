#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import EgressNet

/// SplitMix64: a small seeded generator, so randomized tests fail the same way every run.
struct TestRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// A number in 0..<bound (bound > 0).
    mutating func next(upTo bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

/// The reference peer: glibc's `inet_pton`, IPv4 first, then IPv6.
private func systemParse(_ text: String) -> [UInt8]? {
    var v4 = in_addr()
    if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: v4) { Array($0) } }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: v6) { Array($0) } }
    return nil
}

/// The reference peer: glibc's `inet_ntop`.
private func systemText(_ bytes: [UInt8]) -> String {
    var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    let family = bytes.count == 4 ? AF_INET : AF_INET6
    _ = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

@Suite("IP address text")
struct IPAddressTextTests {
    /// Text, then its canonical form.
    static let valid: [(String, String)] = [
        ("1.2.3.4", "1.2.3.4"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("108.160.169.181", "108.160.169.181"),
        ("::", "::"),
        ("::1", "::1"),
        ("2a03:2880:f11b:83:face:b00c:0:25de", "2a03:2880:f11b:83:face:b00c:0:25de"),
        ("2A03:2880:F11B:0083:FACE:B00C:0000:25DE", "2a03:2880:f11b:83:face:b00c:0:25de"),
        ("2a03:2880::face:b00c:0:25de", "2a03:2880::face:b00c:0:25de"),
        ("2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),          // one zero group stays
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),              // first of equal runs
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),                          // longest run
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
        ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
        ("fe80::1", "fe80::1"),
        ("ff02::fb", "ff02::fb"),
        ("1::", "1::"),
        ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
        ("::FFFF:102:304", "::ffff:1.2.3.4"),
        ("::ffff:0.0.0.0", "::ffff:0.0.0.0"),
        ("::1.2.3.4", "::102:304"),                                 // IPv4-compatible: hex (RFC 5952)
        ("64:ff9b::1.2.3.4", "64:ff9b::102:304"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
        ("0:0:0:0:0:0:0:0", "::"),
    ]

    static let invalid: [String] = [
        "", " ", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "1.2.3.256", "1.2.3.4 ", " 1.2.3.4", "1.2.3.-1",
        "a.b.c.d", "1..2.3", ".1.2.3", "1.2.3.", "0x1.2.3.4", "127.1", "١.٢.٣.٤", "1.2.3.4/32",
        ":", ":::", "1::2::3", ":1::2", "1::2:", "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::",
        "::1:2:3:4:5:6:7:8", "1:2:3:4::5:6:7:8", "::1.2.3", "::1.2.3.04", "::1.2.3.4.5", "::1.2.3.4:1",
        "fe80::1%eth0", "fe80::1%1", "[::1]", "::g", "1:2:3:4:5:6:7:1.2.3.4", "::ffff:1.2.3.256", "1.2.3.4::",
        "::-1", "+::1", "::1 ", "2001:db8::/32",
    ]

    @Test(arguments: valid)
    func parsesAndPrintsCanonically(_ text: String, _ canonical: String) throws {
        let address = try #require(IPAddress(text))
        #expect(address.description == canonical)
        #expect(address.bytes == systemParse(text))
        #expect(IPAddress(canonical) == address)
        #expect(IPAddress(bytes: address.bytes) == address)
        #expect(address.isIPv4 == !text.contains(":"))
    }

    @Test(arguments: invalid)
    func rejects(_ text: String) {
        #expect(IPAddress(text) == nil)
        #expect(systemParse(text) == nil, "glibc accepts \"\(text)\"; the table is wrong")
    }

    /// Random text built near the grammar, mutated: this parser and glibc's `inet_pton` accept
    /// exactly the same strings and read the same bytes.
    @Test func acceptsWhatInetPtonAccepts() {
        var random = TestRandom(seed: 6)
        let alphabet = Array("0123456789abcdefABCDEF:.:.::%x ")
        var agreedValid = 0
        for round in 0..<40_000 {
            var text: String
            if round % 2 == 0 {
                text = String((0..<random.next(upTo: 42)).map { _ in alphabet[random.next(upTo: alphabet.count)] })
            } else {
                // Groups of 0...4 hex digits, maybe a "::", maybe a dotted quad at the end.
                var groups = (0..<random.next(upTo: 9) + 1).map { _ -> String in
                    String((0..<random.next(upTo: 5)).map { _ in Array("0000123abcF")[random.next(upTo: 11)] })
                }
                if random.next(upTo: 3) == 0 {
                    groups.append((0..<4).map { _ in String(random.next(upTo: 300)) }.joined(separator: "."))
                }
                text = groups.joined(separator: ":")
                if random.next(upTo: 2) == 0 {
                    let at = random.next(upTo: text.count + 1)
                    text.insert(contentsOf: "::", at: text.index(text.startIndex, offsetBy: at))
                }
                if random.next(upTo: 4) == 0, !text.isEmpty {
                    let at = text.index(text.startIndex, offsetBy: random.next(upTo: text.count))
                    text.replaceSubrange(at...at, with: String(alphabet[random.next(upTo: alphabet.count)]))
                }
            }
            let ours = IPAddress(text)?.bytes
            let theirs = systemParse(text)
            #expect(ours == theirs, "\"\(text)\"")
            if ours != nil && ours == theirs { agreedValid += 1 }
        }
        #expect(agreedValid > 2_000)
    }

    /// Random addresses, rich in zero groups: the text equals `inet_ntop`'s, except where glibc
    /// prints an IPv4-compatible address in dotted form; there both read back the same bytes.
    @Test func printsWhatInetNtopPrints() {
        var random = TestRandom(seed: 1952)
        var differences = 0
        for _ in 0..<20_000 {
            let bytes: [UInt8]
            if random.next(upTo: 5) == 0 {
                bytes = (0..<4).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            } else {
                let density = random.next(upTo: 8)
                var b = [UInt8](repeating: 0, count: 16)
                for group in 0..<8 where random.next(upTo: 8) < density {
                    b[2 * group] = random.next(upTo: 2) == 0 ? 0 : UInt8(truncatingIfNeeded: random.next())
                    b[2 * group + 1] = UInt8(truncatingIfNeeded: random.next())
                }
                if random.next(upTo: 10) == 0 { b[10] = 0xff; b[11] = 0xff; for i in 0..<10 { b[i] = 0 } }
                bytes = b
            }
            let address = IPAddress(bytes: bytes)!
            let reference = systemText(bytes)
            if address.description != reference {
                differences += 1
                #expect(reference.contains(".") && address.ipv4Mapped == nil, "\(bytes): \(address) vs \(reference)")
                #expect(systemParse(address.description) == bytes)
            }
            #expect(IPAddress(address.description) == address)
        }
        #expect(differences < 2_000)  // the IPv4-compatible ones only
    }

    @Test func bytesMustBe4Or16() {
        for count in [0, 1, 3, 5, 8, 15, 17, 32] {
            #expect(IPAddress(bytes: [UInt8](repeating: 1, count: count)) == nil)
        }
        #expect(IPAddress(bytes: [10, 0, 0, 1]) == .v4(10, 0, 0, 1))
        #expect(IPAddress(bytes: [UInt8](repeating: 0, count: 15) + [1]) == .loopbackIPv6)
    }

    @Test func handBuiltV6OfTheWrongLengthDoesNotTrap() {
        #expect(IPAddress.v6([0xfe, 0x80]).description == "fe80::")
        #expect(IPAddress.v6([0xfe, 0x80]).bytes.count == 16)
        #expect(IPAddress.v6([UInt8](repeating: 0xff, count: 20)).bytes.count == 16)
        #expect(IPAddress.v6([]).isUnspecified)
    }

    @Test func sortsIPv4FirstThenByBytes() {
        let sorted = ["2001:db8::1", "10.0.0.2", "::1", "9.255.255.255", "10.0.0.10"].map { IPAddress($0)! }.sorted()
        #expect(sorted.map(\.description) == ["9.255.255.255", "10.0.0.2", "10.0.0.10", "::1", "2001:db8::1"])
    }
}

// MARK: - Classification

struct Classification: Sendable, CustomTestStringConvertible {
    let address: String
    let flags: Set<String>   // loopback unspecified linkLocal private multicast reserved bogon
    init(_ address: String, _ flags: Set<String> = []) {
        self.address = address
        self.flags = flags
    }
    var testDescription: String { address }
}

@Suite("IP address classification")
struct IPAddressClassificationTests {
    static let table: [Classification] = [
        // IPv4
        Classification("127.0.0.1", ["loopback", "bogon"]),
        Classification("127.255.255.254", ["loopback", "bogon"]),
        Classification("0.0.0.0", ["unspecified", "bogon"]),
        Classification("0.1.2.3", ["unspecified", "bogon"]),
        Classification("169.254.169.254", ["linkLocal", "bogon"]),
        Classification("10.0.0.1", ["private", "bogon"]),
        Classification("172.16.0.1", ["private", "bogon"]),
        Classification("172.31.255.255", ["private", "bogon"]),
        Classification("172.15.255.255"),
        Classification("172.32.0.1"),
        Classification("192.168.1.1", ["private", "bogon"]),
        Classification("100.64.0.1", ["private", "bogon"]),
        Classification("100.127.255.255", ["private", "bogon"]),
        Classification("100.63.255.255"),
        Classification("100.128.0.0"),
        Classification("224.0.0.251", ["multicast", "bogon"]),
        Classification("239.255.255.250", ["multicast", "bogon"]),
        Classification("240.0.0.1", ["reserved", "bogon"]),
        Classification("255.255.255.255", ["reserved", "bogon"]),
        Classification("192.0.2.1", ["reserved", "bogon"]),
        Classification("198.51.100.7", ["reserved", "bogon"]),
        Classification("203.0.113.9", ["reserved", "bogon"]),
        Classification("198.18.0.1", ["reserved", "bogon"]),
        Classification("198.19.255.255", ["reserved", "bogon"]),
        Classification("198.20.0.0"),
        Classification("8.8.8.8"),
        Classification("223.5.5.5"),
        Classification("54.227.20.253"),
        Classification("108.160.169.181"),  // the poisoned answer: public, so not a bogon
        // IPv6
        Classification("::1", ["loopback", "bogon"]),
        Classification("::", ["unspecified", "bogon"]),
        Classification("fe80::1", ["linkLocal", "bogon"]),
        Classification("febf:ffff::1", ["linkLocal", "bogon"]),
        Classification("fec0::1", ["bogon"]),                     // deprecated site-local
        Classification("fc00::1", ["private", "bogon"]),
        Classification("fd12:3456::1", ["private", "bogon"]),
        Classification("ff02::1", ["multicast", "bogon"]),
        Classification("2001:db8::1", ["reserved", "bogon"]),
        Classification("3fff:fff::1", ["reserved", "bogon"]),
        Classification("2001:2::1", ["reserved", "bogon"]),
        Classification("100::1", ["reserved", "bogon"]),
        Classification("::1.2.3.4", ["reserved", "bogon"]),        // IPv4-compatible, deprecated
        Classification("::ffff:127.0.0.1", ["loopback", "bogon"]),
        Classification("::ffff:10.1.1.1", ["private", "bogon"]),
        Classification("::ffff:8.8.8.8", ["bogon"]),               // never a real AAAA answer
        Classification("64:ff9b::8.8.8.8"),                       // DNS64 of a public address
        Classification("64:ff9b::10.0.0.1", ["bogon"]),
        Classification("64:ff9b:1::1", ["bogon"]),
        Classification("4000::1", ["bogon"]),                     // outside 2000::/3
        Classification("2a03:2880:f11b:83:face:b00c:0:25de"),
        Classification("2606:4700::6810:1"),
        Classification("2001:4860:4860::8888"),
    ]

    @Test(arguments: table)
    func classifies(_ row: Classification) throws {
        let ip = try #require(IPAddress(row.address))
        var flags: Set<String> = []
        if ip.isLoopback { flags.insert("loopback") }
        if ip.isUnspecified { flags.insert("unspecified") }
        if ip.isLinkLocal { flags.insert("linkLocal") }
        if ip.isPrivate { flags.insert("private") }
        if ip.isMulticast { flags.insert("multicast") }
        if ip.isReserved { flags.insert("reserved") }
        if ip.isBogonForPublicHost { flags.insert("bogon") }
        #expect(flags == row.flags)
    }
}

// MARK: - Prefixes

@Suite("IP prefixes")
struct IPPrefixTests {
    @Test(arguments: [
        ("10.0.0.0/8", "10.0.0.0/8", ["10.0.0.0", "10.255.255.255"], ["11.0.0.0", "9.255.255.255", "::ffff:10.0.0.1"]),
        ("10.1.2.3/8", "10.0.0.0/8", ["10.200.0.1"], []),
        ("172.16.0.0/12", "172.16.0.0/12", ["172.31.0.1"], ["172.32.0.1"]),
        ("192.0.2.1/32", "192.0.2.1/32", ["192.0.2.1"], ["192.0.2.2"]),
        ("0.0.0.0/0", "0.0.0.0/0", ["1.2.3.4", "255.255.255.255"], ["::1"]),
        ("fe80::/10", "fe80::/10", ["fe80::1", "febf::1"], ["fec0::1", "169.254.0.1"]),
        ("2a03:2880::/32", "2a03:2880::/32", ["2a03:2880:f11b:83:face:b00c:0:25de"], ["2a03:2881::1"]),
        ("2001:db8::ff/127", "2001:db8::fe/127", ["2001:db8::fe", "2001:db8::ff"], ["2001:db8::fd"]),
        ("::/0", "::/0", ["::", "ffff::1"], ["0.0.0.0"]),
        ("::1/128", "::1/128", ["::1"], ["::2"]),
    ])
    func contains(_ cidr: String, _ canonical: String, _ inside: [String], _ outside: [String]) throws {
        let prefix = try #require(IPPrefix(cidr))
        #expect(prefix.description == canonical)
        for text in inside { #expect(IPAddress(text)!.contained(in: prefix), "\(text)") }
        for text in outside { #expect(!prefix.contains(IPAddress(text)!), "\(text)") }
    }

    @Test(arguments: ["10.0.0.0/33", "10.0.0.0/", "10.0.0.0/08", "::/129", "10.0.0.0", "/8", "10.0.0.0/-1",
                      "10.0.0.0/+8", "10.0.0/8", "fe80::/1 0", "10.0.0.0/8/8", "10.0.0.0/٨"])
    func rejects(_ cidr: String) {
        #expect(IPPrefix(cidr) == nil)
    }
}
