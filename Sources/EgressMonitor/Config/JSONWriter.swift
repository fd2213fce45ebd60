extension JSONValue {
    /// The value as the reports print JSON (`check --json`, `/api/v1/status`), the format
    /// Foundation's JSONEncoder had with `.sortedKeys, .prettyPrinted, .withoutEscapingSlashes`:
    /// two-space indentation, `"key" : value`, keys in `String` order, an empty array or object
    /// as `[`, an empty line, `]`; numbers as Swift prints a Double without a trailing `.0`;
    /// strings with `"`, `\` and control characters escaped (`\n`-style where JSON has one,
    /// else `\u00XX`), everything else, `/` and non-ASCII included, as is. No trailing newline.
    /// Nil when a number is not finite (JSON has no way to write it).
    public func prettyPrinted() -> [UInt8]? {
        var out: [UInt8] = []
        return write(into: &out, indent: 0) ? out : nil
    }

    private func write(into out: inout [UInt8], indent: Int) -> Bool {
        switch self {
        case .null: out += "null".utf8
        case .bool(let b): out += (b ? "true" : "false").utf8
        case .number(let n):
            guard n.isFinite else { return false }
            var text = n.description
            if text.hasSuffix(".0") { text.removeLast(2) }
            out += text.utf8
        case .string(let s): Self.writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            out.append(10)
            for (k, item) in items.enumerated() {
                out += repeatElement(UInt8(ascii: " "), count: indent + 2)
                guard item.write(into: &out, indent: indent + 2) else { return false }
                if k < items.count - 1 { out.append(UInt8(ascii: ",")) }
                out.append(10)
            }
            if items.isEmpty { out.append(10) }
            out += repeatElement(UInt8(ascii: " "), count: indent)
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            out.append(10)
            let keys = members.keys.sorted()
            for (k, key) in keys.enumerated() {
                out += repeatElement(UInt8(ascii: " "), count: indent + 2)
                Self.writeString(key, into: &out)
                out += " : ".utf8
                guard members[key]!.write(into: &out, indent: indent + 2) else { return false }
                if k < keys.count - 1 { out.append(UInt8(ascii: ",")) }
                out.append(10)
            }
            if keys.isEmpty { out.append(10) }
            out += repeatElement(UInt8(ascii: " "), count: indent)
            out.append(UInt8(ascii: "}"))
        }
        return true
    }

    private static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out += #"\""#.utf8
            case UInt8(ascii: "\\"): out += #"\\"#.utf8
            case 0x0A: out += #"\n"#.utf8
            case 0x0D: out += #"\r"#.utf8
            case 0x09: out += #"\t"#.utf8
            case 0x08: out += #"\b"#.utf8
            case 0x0C: out += #"\f"#.utf8
            case 0x00..<0x20: out += ("\\u00" + TextFormat.hex(b, 2)).utf8
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// A value the reports write as JSON.
protocol JSONRepresentable {
    var json: JSONValue { get }
}

extension Optional where Wrapped == String {
    var json: JSONValue { map { .string($0) } ?? .null }
}
extension Optional where Wrapped == Double {
    var json: JSONValue { map { .number($0) } ?? .null }
}
extension Optional where Wrapped == Bool {
    var json: JSONValue { map { .bool($0) } ?? .null }
}
extension Optional where Wrapped == Int {
    var json: JSONValue { map { .number(Double($0)) } ?? .null }
}
