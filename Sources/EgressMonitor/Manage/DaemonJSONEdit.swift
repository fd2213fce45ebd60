import EgressNet
/// Why a managed file was left as it was: a value, shown on the status page and counted.
public enum ManageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file is not valid JSON (daemon.json), or not hosts.toml as containerd reads it.
    case unparsable(String)
    /// It could not be read, or the directory is not writable, or a system call failed.
    case io(String)
    /// Someone else changed it between the agent's read and its write: re-read, not overwritten.
    case changedSinceRead(String)

    public var description: String {
        switch self {
        case .unparsable(let s), .io(let s), .changedSinceRead(let s): return s
        }
    }
}

/// A mirror URL as Docker's `registry-mirrors` takes one: `https://host[:port]`, lower-case
/// scheme and host, no default port, no path. `https://m.example/` and `https://M.example:443`
/// name the same mirror as `https://m.example`.
public enum MirrorURL {
    public static func text(_ url: EndpointURL) -> String {
        let host = url.host.lowercased()
        var s = "\(url.scheme.lowercased())://" + (host.contains(":") ? "[\(host)]" : host)
        if url.port != EndpointURL.wellKnownPorts[url.scheme.lowercased()] { s += ":\(url.port)" }
        return s
    }

    /// The canonical form of a URL written in a file; text that is no URL stays as written
    /// (less its trailing slashes), so it still compares equal to itself.
    public static func normalized(_ text: String) -> String {
        if case .success(let url) = EndpointURL.parse(text, defaultPorts: ["https": 443, "http": 80]),
           url.path.isEmpty || url.path == "/" {
            return Self.text(url)
        }
        var t = Substring(text)
        while t.hasSuffix("/") { t = t.dropLast() }
        return String(t)
    }
}

/// Rewrites the `registry-mirrors` value of Docker's daemon.json and nothing else: every other
/// byte (key order, spacing, numbers as written, keys the agent does not know) stays as it was.
///
/// The file is validated with the project's strict parser (`JSONValue`, duplicate keys as
/// dockerd reads them: the last wins); the byte span of the value is then found by walking the
/// top-level object with the same parser, so a document the parser accepts is the only kind
/// ever edited.
public enum DaemonJSONEdit {
    /// The byte layout of the top-level object that an edit needs.
    struct Layout {
        /// Offsets of `{` and `}` of the top-level object.
        var open = 0
        var close = 0
        /// Each member: where its key starts, the key, where the value starts and ends.
        var members: [(keyStart: Int, keyEnd: Int, key: String, valueStart: Int, valueEnd: Int)] = []
    }

    /// The mirrors the file lists now (as written), nil when it has no `registry-mirrors` key.
    public static func mirrors(in bytes: [UInt8]) throws(ManageError) -> [String]? {
        let json = try validate(bytes)
        guard let value = json["registry-mirrors"] else { return nil }
        guard case .array(let items) = value else { throw .unparsable("registry-mirrors is not an array") }
        var out: [String] = []
        for (i, item) in items.enumerated() {
            guard case .string(let s) = item else { throw .unparsable("registry-mirrors[\(i)] is not a string") }
            out.append(s)
        }
        return out
    }

    /// The file's bytes with `registry-mirrors` set to `mirrors`; the same bytes when the file
    /// already lists them (compared as `MirrorURL.normalized`, so no write is made for a
    /// trailing slash). Throws, and changes nothing, when the file is not a JSON object.
    public static func edit(_ bytes: [UInt8], mirrors: [String]) throws(ManageError) -> [UInt8] {
        if let current = try self.mirrors(in: bytes), current.map(MirrorURL.normalized) == mirrors.map(MirrorURL.normalized) {
            return bytes
        }
        let layout = try scan(bytes)
        if let member = layout.members.last(where: { $0.key == "registry-mirrors" }) {
            let array = render(mirrors, replacing: Array(bytes[member.valueStart..<member.valueEnd]),
                               memberIndent: lineIndent(bytes, before: member.keyStart))
            return Array(bytes[..<member.valueStart]) + array + Array(bytes[member.valueEnd...])
        }
        // Absent: added as the last member, written as the members before it are.
        if let last = layout.members.last {
            var lead = Array(bytes[(separatorEnd(bytes, before: last.keyStart))..<last.keyStart])
            // `{"a": 1}`: after the comma, the space most JSON on one line has.
            if lead.isEmpty && layout.members.count == 1 { lead = [0x20] }
            let colon = Array(bytes[last.keyEnd..<last.valueStart])
            let indent = lineIndent(bytes, before: last.keyStart)
            let array = render(mirrors, replacing: nil, memberIndent: lead.contains(0x0A) ? indent : nil)
            let member = Array(",".utf8) + lead + Array("\"registry-mirrors\"".utf8) + colon + array
            return Array(bytes[..<last.valueEnd]) + member + Array(bytes[last.valueEnd...])
        }
        // An empty object: the member on a line of its own, indented by two, as Docker's docs write it.
        let member = Array("\n  \"registry-mirrors\": ".utf8) + render(mirrors, replacing: nil, memberIndent: "  ") + [0x0A]
        return Array(bytes[...layout.open]) + member + Array(bytes[layout.close...])
    }

    /// The document, or why it is not a daemon.json the agent may edit.
    static func validate(_ bytes: [UInt8]) throws(ManageError) -> JSONValue {
        let json: JSONValue
        do { json = try JSONValue.parse(bytes, duplicateKeys: .lastWins) } catch {
            throw .unparsable(error.description)
        }
        guard case .object = json else { throw .unparsable("not a JSON object (found \(json.kindName))") }
        return json
    }

    /// Walks the top-level object of a document `validate` accepted, recording byte offsets.
    static func scan(_ bytes: [UInt8]) throws(ManageError) -> Layout {
        _ = try validate(bytes)
        var p = JSONParser(bytes: bytes, duplicateKeys: .lastWins)
        var layout = Layout()
        do {
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { p.i = 3 }
            p.skipWhitespace()
            layout.open = p.i
            p.i += 1
            p.skipWhitespace()
            while p.bytes[p.i] != UInt8(ascii: "}") {
                let keyStart = p.i
                let key = try p.string()
                let keyEnd = p.i
                p.skipWhitespace()
                p.i += 1  // :
                p.skipWhitespace()
                let valueStart = p.i
                _ = try p.value()
                layout.members.append((keyStart, keyEnd, key, valueStart, p.i))
                p.skipWhitespace()
                if p.bytes[p.i] == UInt8(ascii: ",") {
                    p.i += 1
                    p.skipWhitespace()
                }
            }
            layout.close = p.i
        } catch {
            throw .unparsable(error.describe(in: bytes))
        }
        return layout
    }

    /// Where the whitespace before offset `i` begins (just after the `,` or `{` before it).
    static func separatorEnd(_ bytes: [UInt8], before i: Int) -> Int {
        var j = i
        while j > 0, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[j - 1]) { j -= 1 }
        return j
    }

    /// The spaces and tabs that start the line offset `i` is on, or nil when something other
    /// than them precedes `i` on its line (the member is not on a line of its own).
    static func lineIndent(_ bytes: [UInt8], before i: Int) -> String? {
        var j = i
        while j > 0, bytes[j - 1] == 0x20 || bytes[j - 1] == 0x09 { j -= 1 }
        guard j == 0 || bytes[j - 1] == 0x0A else { return nil }
        return String(decoding: bytes[j..<i], as: UTF8.self)
    }

    /// The new array, laid out as the old one was: the text after `[`, between items and before
    /// `]` are copied from it. Without an old array (or an empty one) the items go one per line
    /// when the member is on a line of its own (indented one step deeper), else on one line.
    static func render(_ mirrors: [String], replacing old: [UInt8]?, memberIndent: String?) -> [UInt8] {
        let items = mirrors.map { Array("\"\(SuggestCommand.jsonEscaped($0))\"".utf8) }
        guard !items.isEmpty else { return Array("[]".utf8) }
        var lead: [UInt8], separator: [UInt8], trail: [UInt8]
        if let old, let spans = itemSpans(old), let first = spans.first, let last = spans.last {
            lead = Array(old[1..<first.lowerBound])
            trail = Array(old[last.upperBound..<(old.count - 1)])
            if spans.count > 1 {
                separator = Array(old[spans[0].upperBound..<spans[1].lowerBound])
            } else {
                separator = Array(",".utf8) + (lead.contains(0x0A) ? lead : (lead.isEmpty ? [0x20] : lead))
            }
        } else if let indent = memberIndent {
            let step = indent.isEmpty ? "  " : (indent.allSatisfy { $0 == "\t" } ? "\t" : String(repeating: " ", count: min(indent.count, 4)))
            lead = Array("\n\(indent)\(step)".utf8)
            separator = Array(",\n\(indent)\(step)".utf8)
            trail = Array("\n\(indent)".utf8)
        } else {
            lead = []
            separator = Array(", ".utf8)
            trail = []
        }
        var out: [UInt8] = [UInt8(ascii: "[")] + lead
        for (k, item) in items.enumerated() {
            if k > 0 { out += separator }
            out += item
        }
        return out + trail + [UInt8(ascii: "]")]
    }

    /// The byte ranges of the items of a JSON array's text; nil when it is not a non-empty array.
    static func itemSpans(_ array: [UInt8]) -> [Range<Int>]? {
        var p = JSONParser(bytes: array, duplicateKeys: .lastWins)
        guard array.first == UInt8(ascii: "[") else { return nil }
        p.i = 1
        p.skipWhitespace()
        var spans: [Range<Int>] = []
        do {
            while p.i < array.count, array[p.i] != UInt8(ascii: "]") {
                let start = p.i
                _ = try p.value()
                spans.append(start..<p.i)
                p.skipWhitespace()
                if p.i < array.count, array[p.i] == UInt8(ascii: ",") {
                    p.i += 1
                    p.skipWhitespace()
                }
            }
        } catch {
            return nil
        }
        return spans.isEmpty ? nil : spans
    }
}
