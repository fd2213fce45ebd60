import EgressNet
/// Reorders the `[host."…"]` tables of containerd's `hosts.toml`, which containerd tries in file
/// order on every pull. It moves tables, never edits or drops one: each table's text (its keys,
/// `ca`, `capabilities`, `override_path`, `skip_verify`, its sub-tables such as
/// `[host."…".header]`, its comments) travels with it byte for byte.
///
/// A table is the text from its `[host."…"]` header to the next such header, as the contract
/// says, with one refinement: comment lines directly above a header (no blank line between) are
/// that header's, not the table before — a note written over a mirror stays over that mirror.
/// Text before the first table (the preamble: `server = …`) stays first.
public enum HostsTOMLEdit {
    public struct Table: Sendable, Equatable {
        /// The URL in the header, as written.
        public let url: String
        /// The table's whole text, header, sub-tables and comments included.
        public var text: String
    }

    public struct Split: Sendable, Equatable {
        public var preamble: String
        public var tables: [Table]

        /// The file again: preamble then tables, each table ending a line before the next starts.
        public var text: String {
            var out = preamble
            for (k, table) in tables.enumerated() {
                out += table.text
                if k < tables.count - 1, !table.text.hasSuffix("\n") { out += "\n" }
            }
            return out
        }
    }

    /// Splits `text` into its preamble and host tables. Throws, and the file is left alone, when
    /// containerd's reading of it (`HostsTOML.parse`) fails.
    public static func split(_ text: String) throws(ManageError) -> Split {
        do { _ = try HostsTOML.parse(text) } catch {
            throw .unparsable("\(error)")
        }
        var lines: [Substring] = []
        var start = text.startIndex
        while start < text.endIndex {
            let end = text[start...].firstIndex(of: "\n").map { text.index(after: $0) } ?? text.endIndex
            lines.append(text[start..<end])
            start = end
        }
        // Where each host table starts: its header line, or the comment block right above it.
        var starts: [(line: Int, url: String)] = []
        for (n, line) in lines.enumerated() {
            guard let url = hostHeader(line) else { continue }
            var first = n
            let floor = starts.last.map { $0.line + 1 } ?? 0
            while first > floor, lines[first - 1].trimmingWhitespace.hasPrefix("#") { first -= 1 }
            starts.append((first, url))
        }
        guard !starts.isEmpty else { return Split(preamble: text, tables: []) }
        var split = Split(preamble: lines[..<starts[0].line].joined(), tables: [])
        for (k, s) in starts.enumerated() {
            let end = k + 1 < starts.count ? starts[k + 1].line : lines.count
            split.tables.append(Table(url: s.url, text: lines[s.line..<end].joined()))
        }
        return split
    }

    /// The URL of a `[host."URL"]` header line; nil for any other line (sub-tables included).
    static func hostHeader(_ line: Substring) -> String? {
        var bare = Substring(line)
        while bare.hasSuffix("\n") || bare.hasSuffix("\r") { bare = bare.dropLast() }
        let trimmed = HostsTOML.stripComment(String(bare)).trimmingWhitespace
        guard trimmed.hasPrefix("["), !trimmed.hasPrefix("[["), trimmed.hasSuffix("]") else { return nil }
        guard let parts = try? HostsTOML.splitKey(String(trimmed.dropFirst().dropLast()), line: 0),
              parts.count == 2, parts[0] == "host" else { return nil }
        return parts[1]
    }

    /// The host URLs in file order.
    public static func hosts(in text: String) throws(ManageError) -> [String] {
        try split(text).tables.map(\.url)
    }

    /// The file with the tables of `order` (mirror URLs, compared as `MirrorURL.normalized`)
    /// first, in that order, and the others after them in their old order. Unchanged when no
    /// table is named in `order`.
    public static func edit(_ text: String, order: [String]) throws(ManageError) -> String {
        let split = try self.split(text)
        let wanted = order.map(MirrorURL.normalized)
        var first: [Table] = []
        for url in wanted {
            if let t = split.tables.first(where: { MirrorURL.normalized($0.url) == url && !first.contains($0) }) { first.append(t) }
        }
        guard !first.isEmpty else { return text }
        let rest = split.tables.filter { t in !first.contains(t) }
        let reordered = Split(preamble: split.preamble, tables: first + rest)
        return reordered.tables == split.tables ? text : reordered.text
    }
}
