/// A JSON document as a tree of values, so the config validator can walk it field by field,
/// name every bad field by its path, and reject unknown fields. Parsed by `JSONValue.parse`
/// (RFC 8259, strict) and written by `JSONValue.write` (the reports' format).
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// What to do when an object names a key twice (RFC 8259 leaves it open).
    public enum DuplicateKeys: Sendable {
        /// A syntax error naming the key: for files people write (the config, credentials).
        case reject
        /// The last value wins, as in most JSON readers: for documents from the network
        /// (tokens, manifests) and files other programs own (Docker's daemon.json).
        case lastWins
    }

    /// The deepest nesting of arrays and objects accepted, so hostile input cannot exhaust the stack.
    public static let maximumDepth = 512

    /// Parses `bytes` as one JSON document (RFC 8259): UTF-8 only (invalid UTF-8 is rejected), a
    /// leading UTF-8 byte order mark is skipped, numbers must be finite doubles, nothing but
    /// whitespace may follow the value. The error says `not valid JSON: ...` and where the syntax
    /// broke (line, column in characters, and byte offset).
    public static func parse(_ bytes: some Collection<UInt8>, duplicateKeys: DuplicateKeys = .reject) throws(ConfigError) -> JSONValue {
        var parser = JSONParser(bytes: Array(bytes), duplicateKeys: duplicateKeys)
        do {
            return try parser.document()
        } catch {
            throw ConfigError([ConfigIssue(path: "", message: "not valid JSON: \(error.describe(in: parser.bytes))")])
        }
    }

    /// What a person would call this kind of value, for error messages.
    var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Convenience accessors for readers of network JSON.
    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var numberValue: Double? { if case .number(let n) = self { return n }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { return o }; return nil }
    /// The number when it is a whole number an `Int` holds (`3`, `3.0`, `3e2`), else nil.
    public var intValue: Int? {
        guard case .number(let n) = self, n == n.rounded(), n >= -9.2e18, n <= 9.2e18 else { return nil }
        return Int(n)
    }
}

/// Where and why a document is not JSON.
struct JSONSyntaxError: Error {
    let offset: Int
    let message: String

    /// `unexpected "}" at line 1, column 14 (byte 13)`: line and column count from 1, the
    /// column in characters (UTF-8 sequences), the byte offset from 0.
    func describe(in bytes: [UInt8]) -> String {
        var line = 1
        var column = 1
        for b in bytes[..<min(offset, bytes.count)] {
            if b == UInt8(ascii: "\n") { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 }
        }
        return "\(message) at line \(line), column \(column) (byte \(offset))"
    }
}

/// A recursive-descent parser over the document's bytes.
struct JSONParser {
    let bytes: [UInt8]
    let duplicateKeys: JSONValue.DuplicateKeys
    var i = 0
    var depth = 0

    init(bytes: [UInt8], duplicateKeys: JSONValue.DuplicateKeys) {
        self.bytes = bytes
        self.duplicateKeys = duplicateKeys
    }

    mutating func document() throws(JSONSyntaxError) -> JSONValue {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
        skipWhitespace()
        let value = try self.value()
        skipWhitespace()
        if i < bytes.count { throw unexpected("after the document's value") }
        return value
    }

    func error(_ message: String, at offset: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(offset: offset ?? i, message: message)
    }

    /// `unexpected "x"` (or `unexpected end of input`), with what was expected.
    func unexpected(_ context: String) -> JSONSyntaxError {
        guard i < bytes.count else { return error("unexpected end of input \(context)") }
        let b = bytes[i]
        let shown = (0x21...0x7E).contains(b) ? "\"\(Character(Unicode.Scalar(b)))\"" : "byte 0x\(TextFormat.hex(b, 2, uppercase: true))"
        return error("unexpected \(shown) \(context)")
    }

    mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    mutating func literal(_ word: String, _ value: JSONValue) throws(JSONSyntaxError) -> JSONValue {
        let start = i
        for b in word.utf8 {
            guard i < bytes.count, bytes[i] == b else { throw error("invalid literal (expected \(word))", at: start) }
            i += 1
        }
        return value
    }

    mutating func value() throws(JSONSyntaxError) -> JSONValue {
        guard i < bytes.count else { throw unexpected("where a value was expected") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw unexpected("where a value was expected")
        }
    }

    mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        if depth > JSONValue.maximumDepth { throw error("arrays and objects nested deeper than \(JSONValue.maximumDepth)") }
    }

    mutating func array() throws(JSONSyntaxError) -> JSONValue {
        try enter()
        i += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
            i += 1
            depth -= 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try value())
            skipWhitespace()
            guard i < bytes.count else { throw unexpected("in an array (expected \",\" or \"]\")") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; break }
            throw unexpected("in an array (expected \",\" or \"]\")")
        }
        depth -= 1
        return .array(items)
    }

    mutating func object() throws(JSONSyntaxError) -> JSONValue {
        try enter()
        i += 1  // {
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw unexpected("where an object key was expected") }
            let keyStart = i
            let key = try string()
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw unexpected("after an object key (expected \":\")") }
            i += 1
            skipWhitespace()
            let value = try self.value()
            if members.updateValue(value, forKey: key) != nil, duplicateKeys == .reject {
                throw error("the key \"\(key)\" appears twice in one object", at: keyStart)
            }
            skipWhitespace()
            guard i < bytes.count else { throw unexpected("in an object (expected \",\" or \"}\")") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; break }
            throw unexpected("in an object (expected \",\" or \"}\")")
        }
        depth -= 1
        return .object(members)
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, as a finite Double.
    mutating func number() throws(JSONSyntaxError) -> Double {
        let start = i
        func digits(_ p: inout JSONParser) -> Int {
            let s = p.i
            while p.i < p.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(p.bytes[p.i]) { p.i += 1 }
            return p.i - s
        }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) else {
            throw error("invalid number (expected a digit after \"-\")", at: i)
        }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) {
                throw error("invalid number (no leading zeros)", at: start)
            }
        } else {
            _ = digits(&self)
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            if digits(&self) == 0 { throw error("invalid number (expected a digit after \".\")", at: i) }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            if digits(&self) == 0 { throw error("invalid number (expected a digit in the exponent)", at: i) }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        guard let n = Double(text), n.isFinite else { throw error("number \(text) is out of range", at: start) }
        return n
    }

    /// A string from its opening quote: escapes decoded, UTF-8 validated, control characters refused.
    mutating func string() throws(JSONSyntaxError) -> String {
        i += 1  // "
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw error("unterminated string") }
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "\""):
                i += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try escape(into: &out)
            case 0x00..<0x20:
                throw error("control character 0x\(TextFormat.hex(b, 2, uppercase: true)) in a string (escape it)")
            case 0x20..<0x80:
                out.append(b)
                i += 1
            default:
                try utf8Sequence(into: &out)
            }
        }
    }

    /// One multi-byte UTF-8 sequence, validated (no overlong forms, surrogates or values past U+10FFFF).
    mutating func utf8Sequence(into out: inout [UInt8]) throws(JSONSyntaxError) {
        let b = bytes[i]
        let count: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch b {
        case 0xC2...0xDF: count = 2
        case 0xE0: count = 3; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: count = 3
        case 0xED: count = 3; upper = 0x9F
        case 0xF0: count = 4; lower = 0x90
        case 0xF1...0xF3: count = 4
        case 0xF4: count = 4; upper = 0x8F
        default: throw error("invalid UTF-8")
        }
        guard i + count <= bytes.count else { throw error("invalid UTF-8") }
        for k in 1..<count {
            let c = bytes[i + k]
            let (lo, hi) = k == 1 ? (lower, upper) : (UInt8(0x80), UInt8(0xBF))
            guard c >= lo && c <= hi else { throw error("invalid UTF-8") }
        }
        out.append(contentsOf: bytes[i..<(i + count)])
        i += count
    }

    mutating func escape(into out: inout [UInt8]) throws(JSONSyntaxError) {
        let start = i
        i += 1  // backslash
        guard i < bytes.count else { throw error("unterminated string") }
        let c = bytes[i]
        i += 1
        switch c {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(c)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4(escapeAt: start)
            if (0xDC00...0xDFFF).contains(scalar) { throw error("lone low surrogate \\u\(hex(scalar))", at: start) }
            if (0xD800...0xDBFF).contains(scalar) {
                guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                    throw error("high surrogate \\u\(hex(scalar)) not followed by a low surrogate", at: start)
                }
                let lowStart = i
                i += 2
                let low = try hex4(escapeAt: lowStart)
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw error("high surrogate \\u\(hex(scalar)) not followed by a low surrogate", at: start)
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
        default:
            throw error("invalid escape", at: start)
        }
    }

    func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    /// The four hex digits after `\u`.
    mutating func hex4(escapeAt start: Int) throws(JSONSyntaxError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard i < bytes.count else { throw error("invalid \\u escape (expected four hex digits)", at: start) }
            let b = bytes[i]
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape (expected four hex digits)", at: start)
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }
}

/// One problem in a config file: the JSON path of the field and what was expected.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    /// `targets[2].url`, or empty for the document itself.
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Every problem found in a config, reported at once.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public let issues: [ConfigIssue]
    public init(_ issues: [ConfigIssue]) { self.issues = issues }
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
