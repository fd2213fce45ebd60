/// The static host table, `/etc/hosts`, read with glibc's rules (`nss_files`).
///
/// Each line is an address, a canonical name, then aliases, separated by spaces or tabs (and
/// `\r`, for CRLF files); `#` starts a comment anywhere on a line. The address is IPv4 or IPv6 as `inet_pton` reads it; a
/// line with an unreadable address (a zone id included) or without a name is skipped. Lookups
/// compare names ASCII case-insensitively and ignore one trailing dot.
public struct HostsFile: Sendable, Equatable {
    /// One usable line.
    public struct Entry: Sendable, Equatable {
        public var address: IPAddress
        /// The canonical name first, then the aliases, as written.
        public var names: [String]

        public init(address: IPAddress, names: [String]) {
            self.address = address
            self.names = names
        }
    }

    /// The usable lines, in file order.
    public private(set) var entries: [Entry]
    /// Lowercased name (no trailing dot) to its addresses in file order, without repeats.
    private var index: [String: [IPAddress]]

    public init(entries: [Entry] = []) {
        self.entries = []
        self.index = [:]
        for entry in entries { add(entry) }
    }

    public static func parse(_ text: String) -> HostsFile {
        var hosts = HostsFile()
        // Bytes, not Characters: Swift takes "\r\n" for one Character.
        for var line in Array(text.utf8).split(separator: UInt8(ascii: "\n")) {
            if let hash = line.firstIndex(of: UInt8(ascii: "#")) { line = line[..<hash] }
            let fields = line.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 || $0 == 0x0d })
                .map { String(decoding: $0, as: UTF8.self) }
            guard fields.count >= 2, let address = IPAddress(fields[0]) else { continue }
            hosts.add(Entry(address: address, names: Array(fields.dropFirst())))
        }
        return hosts
    }

    /// Reads and parses the file; an unreadable file is an empty table.
    public static func load(path: String = "/etc/hosts") -> HostsFile {
        parse(SystemTextFile.read(path: path) ?? "")
    }

    /// The addresses listed for `name` (canonical or alias), IPv4 and IPv6, in file order,
    /// each once.
    public func addresses(for name: String) -> [IPAddress] {
        index[HostsFile.key(name)] ?? []
    }

    /// The addresses of one family: `.a` for IPv4, `.aaaa` for IPv6; none for other types.
    public func addresses(for name: String, type: DNSRecordType) -> [IPAddress] {
        guard type == .a || type == .aaaa else { return [] }
        return addresses(for: name).filter { $0.isIPv4 == (type == .a) }
    }

    private mutating func add(_ entry: Entry) {
        entries.append(entry)
        for name in entry.names {
            let key = HostsFile.key(name)
            guard !key.isEmpty else { continue }
            var list = index[key] ?? []
            if !list.contains(entry.address) { list.append(entry.address) }
            index[key] = list
        }
    }

    /// ASCII-lowercased, one trailing dot removed.
    private static func key(_ name: String) -> String {
        var bytes = Array(name.utf8)
        if bytes.last == UInt8(ascii: "."), bytes.count > 1 { bytes.removeLast() }
        for i in bytes.indices where bytes[i] >= 65 && bytes[i] <= 90 { bytes[i] += 32 }
        return String(decoding: bytes, as: UTF8.self)
    }
}
