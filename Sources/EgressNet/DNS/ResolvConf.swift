#if canImport(Glibc)
import Glibc
#endif

/// The system resolver's configuration, read from `/etc/resolv.conf` with glibc's rules
/// (`res_init.c`), so the agent asks the servers the system itself would ask.
///
/// - `nameserver ADDR`: at most ``maxNameservers`` (3, glibc's `MAXNS`) are used, in file
///   order. The address is read like glibc: IPv4 as `inet_aton` reads it (so `127.1` and
///   `0x7f.0.0.1` count), else IPv6; an IPv6 zone (`fe80::1%eth0`) is dropped because
///   ``IPAddress`` has none. Anything after the address on the line is ignored.
/// - `domain NAME` and `search NAME...`: the last such line wins; `domain` sets a one-entry
///   search list. With neither, glibc searches the domain part of the host name.
/// - `options`: `ndots:n` (clamped to 0...15), `timeout:n` (1...30 seconds), `attempts:n`
///   (1...5), `rotate`, `edns0`, `use-vc`; the numbers are read like `atoi`. Others are ignored.
/// - A keyword counts only at the very start of a line and only when followed by a space or a
///   tab; lines starting with `#` or `;` are comments. As in glibc, `#` later on a line is not a
///   comment (on a `search` line it becomes a search domain). One leniency: a `\r` counts as
///   white space, so a file with CRLF line ends reads as intended.
/// - No usable nameserver: glibc's default, 127.0.0.1 (port 53). An unreadable file: all
///   defaults, as glibc does.
///
/// The `LOCALDOMAIN` and `RES_OPTIONS` environment variables, which glibc also reads, are not
/// applied; neither is `sortlist`.
public struct ResolvConf: Sendable, Equatable {
    /// The servers to ask, in order; never empty after ``parse(_:hostname:)``.
    public var nameservers: [IPAddress]
    /// Domains to try after names with fewer than ``ndots`` dots.
    public var search: [String]
    /// A name with at least this many dots is first tried as is. glibc default 1.
    public var ndots: Int
    /// Seconds to wait for one server's answer. glibc default 5.
    public var timeoutSeconds: Int
    /// Rounds through the server list. glibc default 2.
    public var attempts: Int
    /// Spread queries over the servers instead of always starting with the first.
    public var rotate: Bool
    /// Send EDNS0 OPT records (glibc only does when asked).
    public var edns0: Bool
    /// `use-vc`: query over TCP.
    public var useTCP: Bool

    /// glibc's `MAXNS`.
    public static let maxNameservers = 3
    /// The server glibc asks when resolv.conf names none.
    public static let defaultNameserver = IPAddress.loopbackIPv4

    public init(nameservers: [IPAddress] = [ResolvConf.defaultNameserver], search: [String] = [],
                ndots: Int = 1, timeoutSeconds: Int = 5, attempts: Int = 2, rotate: Bool = false,
                edns0: Bool = false, useTCP: Bool = false) {
        self.nameservers = nameservers
        self.search = search
        self.ndots = ndots
        self.timeoutSeconds = timeoutSeconds
        self.attempts = attempts
        self.rotate = rotate
        self.edns0 = edns0
        self.useTCP = useTCP
    }

    /// Parses resolv.conf text. `hostname` supplies the default search domain (the part after
    /// its first dot) when the text has no `search` or `domain` line, as glibc takes it from
    /// `gethostname`.
    public static func parse(_ text: String, hostname: String? = nil) -> ResolvConf {
        var conf = ResolvConf(nameservers: [])
        var sawSearch = false
        // Bytes, not Characters: Swift takes "\r\n" for one Character.
        for line in Array(text.utf8).split(separator: UInt8(ascii: "\n")) {
            guard let first = line.first, first != UInt8(ascii: "#"), first != UInt8(ascii: ";") else { continue }
            if let rest = argument(of: "nameserver", in: line) {
                guard conf.nameservers.count < maxNameservers,
                      let word = words(rest).first, let address = nameserverAddress(word) else { continue }
                conf.nameservers.append(address)
            } else if let rest = argument(of: "domain", in: line) {
                guard let word = words(rest).first else { continue }
                conf.search = [String(decoding: word, as: UTF8.self)]
                sawSearch = true
            } else if let rest = argument(of: "search", in: line) {
                let domains = words(rest)
                guard !domains.isEmpty else { continue }
                conf.search = domains.map { String(decoding: $0, as: UTF8.self) }
                sawSearch = true
            } else if let rest = argument(of: "options", in: line) {
                for option in words(rest) { conf.apply(option: option) }
            }
        }
        if conf.nameservers.isEmpty { conf.nameservers = [defaultNameserver] }
        if !sawSearch, let hostname, let dot = hostname.firstIndex(of: "."),
           hostname.index(after: dot) < hostname.endIndex {
            conf.search = [String(hostname[hostname.index(after: dot)...])]
        }
        return conf
    }

    /// Reads and parses the file; an unreadable file gives the defaults (127.0.0.1, no search
    /// list beyond the host name's domain).
    public static func load(path: String = "/etc/resolv.conf") -> ResolvConf {
        parse(SystemTextFile.read(path: path) ?? "", hostname: SystemTextFile.hostname())
    }

    // MARK: glibc's rules

    private mutating func apply(option: ArraySlice<UInt8>) {
        let text = String(decoding: option, as: UTF8.self)
        if text.hasPrefix("ndots:") {
            ndots = min(max(ResolvConf.atoi(option.dropFirst(6)), 0), 15)
        } else if text.hasPrefix("timeout:") {
            timeoutSeconds = min(max(ResolvConf.atoi(option.dropFirst(8)), 1), 30)
        } else if text.hasPrefix("attempts:") {
            attempts = min(max(ResolvConf.atoi(option.dropFirst(9)), 1), 5)
        } else if text == "rotate" {
            rotate = true
        } else if text == "edns0" {
            edns0 = true
        } else if text == "use-vc" {
            useTCP = true
        }
    }

    /// The rest of `line` when it starts with `keyword` followed by a space or tab (glibc's
    /// `MATCH`), else nil.
    private static func argument(of keyword: String, in line: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        let key = Array(keyword.utf8)
        guard line.count > key.count, line.starts(with: key),
              isSpace(line[line.startIndex + key.count]) else { return nil }
        return line[(line.startIndex + key.count + 1)...]
    }

    private static func words(_ text: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        text.split(whereSeparator: isSpace)
    }

    private static func isSpace(_ c: UInt8) -> Bool {
        c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\r")
    }

    /// glibc: `inet_aton` (exact) first, then `inet_pton(AF_INET6)` with any `%zone` cut off.
    static func nameserverAddress(_ word: ArraySlice<UInt8>) -> IPAddress? {
        if let v4 = inetAton(word) { return v4 }
        guard word.contains(UInt8(ascii: ":")) else { return nil }
        let address = word.split(separator: UInt8(ascii: "%"), maxSplits: 1, omittingEmptySubsequences: false)[0]
        guard let bytes = IPAddress.parseIPv6(Array(address)) else { return nil }
        return .v6(bytes)
    }

    /// `inet_aton`: one to four parts, each decimal, octal (leading 0) or hex (0x); the last
    /// part fills the remaining bytes (`127.1` is 127.0.0.1). Nothing may follow.
    static func inetAton(_ text: ArraySlice<UInt8>) -> IPAddress? {
        var parts: [UInt64] = []
        var i = text.startIndex
        while true {
            guard i < text.endIndex, isDecimal(text[i]) else { return nil }
            var base: UInt64 = 10
            var sawDigit = false
            if text[i] == UInt8(ascii: "0") {
                base = 8
                sawDigit = true
                i += 1
                if i < text.endIndex, text[i] == UInt8(ascii: "x") || text[i] == UInt8(ascii: "X") {
                    base = 16
                    sawDigit = false
                    i += 1
                }
            }
            var value: UInt64 = 0
            while i < text.endIndex, let digit = digitValue(text[i]), digit < base {
                value = value * base + digit
                guard value <= 0xffff_ffff else { return nil }
                sawDigit = true
                i += 1
            }
            guard sawDigit else { return nil }
            parts.append(value)
            if i < text.endIndex, text[i] == UInt8(ascii: ".") {
                guard parts.count < 4 else { return nil }
                i += 1
                continue
            }
            guard i == text.endIndex else { return nil }
            break
        }
        var value = parts[parts.count - 1]
        let maxLast: [UInt64] = [0xffff_ffff, 0xff_ffff, 0xffff, 0xff]
        guard value <= maxLast[parts.count - 1] else { return nil }
        for (index, part) in parts.dropLast().enumerated() {
            guard part <= 0xff else { return nil }
            value |= part << UInt64(24 - 8 * index)
        }
        return .v4(UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff))
    }

    private static func isDecimal(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    private static func digitValue(_ c: UInt8) -> UInt64? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt64(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt64(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt64(c - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    /// C's `atoi` on an option value: optional sign, then decimal digits up to the first other
    /// byte; 0 when there are none. Saturates instead of overflowing.
    static func atoi(_ text: ArraySlice<UInt8>) -> Int {
        var i = text.startIndex
        var negative = false
        if i < text.endIndex, text[i] == UInt8(ascii: "-") || text[i] == UInt8(ascii: "+") {
            negative = text[i] == UInt8(ascii: "-")
            i += 1
        }
        var value = 0
        while i < text.endIndex, isDecimal(text[i]) {
            value = min(value * 10 + Int(text[i] - UInt8(ascii: "0")), 1 << 31)
            i += 1
        }
        return negative ? -value : value
    }
}

/// Reads the small system files the resolver needs (`/etc/resolv.conf`, `/etc/hosts`).
enum SystemTextFile {
    /// The file as UTF-8 text (invalid bytes replaced), or nil when it cannot be read. Reads at
    /// most `maxBytes`.
    static func read(path: String, maxBytes: Int = 4 << 20) -> String? {
        SystemFile.read(path, maxBytes: maxBytes).map { String(decoding: $0, as: UTF8.self) }
    }

    /// `gethostname`, or nil.
    static func hostname() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
