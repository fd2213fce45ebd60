// HTTP/1.1 header fields and the byte-level syntax shared by the codec's parsers and serializers.
//
// Everything here is plain Swift over bytes: no Foundation, no String built per byte.

/// An ordered list of header fields.
///
/// Names are compared ASCII-case-insensitively (`content-length` finds `Content-Length`), but each
/// field keeps the name and value exactly as they were added or received, in order, duplicates
/// included. Equality (`==`) compares that wire representation exactly, case included.
public struct HTTPHeaders: Sendable, Sequence, Equatable, ExpressibleByDictionaryLiteral,
    CustomStringConvertible
{
    public typealias Element = (name: String, value: String)

    @usableFromInline
    internal var fields: [(name: String, value: String)]

    /// Creates a header list from name/value pairs, in order.
    public init(_ pairs: [(String, String)] = []) {
        self.fields = pairs.map { (name: $0.0, value: $0.1) }
    }

    /// `["Host": "example.com", "Accept": "*/*"]` keeps the literal's order.
    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// The number of fields, duplicates counted separately.
    public var count: Int { fields.count }

    public var isEmpty: Bool { fields.isEmpty }

    /// The value of the first field with this name, or nil.
    public subscript(_ name: String) -> String? {
        for field in fields where HTTPSyntax.equalsIgnoringASCIICase(field.name, name) {
            return field.value
        }
        return nil
    }

    /// The values of every field with this name, in order.
    public func values(_ name: String) -> [String] {
        fields.compactMap { HTTPSyntax.equalsIgnoringASCIICase($0.name, name) ? $0.value : nil }
    }

    /// Whether at least one field has this name.
    public func contains(_ name: String) -> Bool {
        fields.contains { HTTPSyntax.equalsIgnoringASCIICase($0.name, name) }
    }

    /// The elements of a comma-separated list header (RFC 9110 §5.6.1) across every field with
    /// this name: `Connection: keep-alive, Upgrade` gives `["keep-alive", "Upgrade"]`. Whitespace
    /// around elements is trimmed and empty elements are dropped. Quoted commas are not special
    /// (fine for `Connection` and `Transfer-Encoding`, which hold tokens).
    public func listElements(_ name: String) -> [String] {
        var result: [String] = []
        for value in values(name) {
            for element in value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: true) {
                let trimmed = HTTPSyntax.trimmingOWS(element)
                if !trimmed.isEmpty { result.append(String(decoding: trimmed, as: UTF8.self)) }
            }
        }
        return result
    }

    /// Appends a field, keeping any existing ones with the same name.
    public mutating func add(_ name: String, _ value: String) {
        fields.append((name: name, value: value))
    }

    /// Replaces every field with this name by one field (appended at the end when none existed,
    /// otherwise at the position of the first one).
    public mutating func replaceOrAdd(_ name: String, _ value: String) {
        if let first = fields.firstIndex(where: { HTTPSyntax.equalsIgnoringASCIICase($0.name, name) }) {
            fields[first] = (name: name, value: value)
            var index = fields.index(after: first)
            while index < fields.endIndex {
                if HTTPSyntax.equalsIgnoringASCIICase(fields[index].name, name) {
                    fields.remove(at: index)
                } else {
                    index += 1
                }
            }
        } else {
            fields.append((name: name, value: value))
        }
    }

    /// Removes every field with this name.
    public mutating func remove(_ name: String) {
        fields.removeAll { HTTPSyntax.equalsIgnoringASCIICase($0.name, name) }
    }

    public func makeIterator() -> IndexingIterator<[Element]> {
        fields.makeIterator()
    }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    /// For logs: credentials (`Authorization`, `Proxy-Authorization`, `Cookie`, `Set-Cookie`) are
    /// shown as `<redacted>`.
    public var description: String {
        let redacted = ["Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"]
        return "["
            + fields.map { field in
                let secret = redacted.contains { HTTPSyntax.equalsIgnoringASCIICase(field.name, $0) }
                return "\(field.name): \(secret ? "<redacted>" : field.value)"
            }.joined(separator: ", ") + "]"
    }
}

/// An HTTP version as it appears on a status or request line (`HTTP/1.1`).
public struct HTTPVersion: Sendable, Hashable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)

    public var description: String { "HTTP/\(major).\(minor)" }
}

/// Byte-level HTTP syntax (RFC 9110 §5.6, RFC 9112) shared by the parsers and serializers.
enum HTTPSyntax {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let colon = UInt8(ascii: ":")

    /// `tchar` of RFC 9110 §5.6.2: the characters of a token (method, header name, scheme).
    @inline(__always)
    static func isTokenChar(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"),
            UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    @inline(__always)
    static func isOWS(_ byte: UInt8) -> Bool { byte == space || byte == tab }

    /// A byte allowed inside a field value or reason phrase: VCHAR, obs-text, SP, HTAB, DEL.
    /// Every other control character (NUL, CR, LF, ...) is refused (RFC 9110 §5.5).
    @inline(__always)
    static func isFieldValueByte(_ byte: UInt8) -> Bool { byte >= 0x20 || byte == tab }

    /// A byte allowed in a request-target on the wire: visible ASCII only (no SP, CTL or non-ASCII;
    /// those must be percent-encoded).
    @inline(__always)
    static func isTargetByte(_ byte: UInt8) -> Bool { byte > 0x20 && byte < 0x7F }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
    }

    /// ASCII case-insensitive comparison without allocating.
    static func equalsIgnoringASCIICase(_ lhs: String, _ rhs: String) -> Bool {
        let a = lhs.utf8
        let b = rhs.utf8
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where x != y && lowercased(x) != lowercased(y) {
            return false
        }
        return true
    }

    static func equalsIgnoringASCIICase(_ bytes: some Collection<UInt8>, _ lowercaseASCII: StaticString) -> Bool {
        let count = lowercaseASCII.utf8CodeUnitCount
        guard bytes.count == count else { return false }
        return lowercaseASCII.withUTF8Buffer { expected in
            zip(bytes, expected).allSatisfy { lowercased($0) == $1 }
        }
    }

    static func trimmingOWS<C: BidirectionalCollection>(_ bytes: C) -> C.SubSequence where C.Element == UInt8 {
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, isOWS(bytes[start]) { start = bytes.index(after: start) }
        while end > start, isOWS(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
        return bytes[start..<end]
    }

    static func isToken(_ string: String) -> Bool {
        !string.utf8.isEmpty && string.utf8.allSatisfy(isTokenChar)
    }

    /// Parses one `field-line` (RFC 9112 §5) whose line ending was already removed:
    /// `field-name ":" OWS field-value OWS`. Refuses an empty or non-token name, whitespace before
    /// the colon, obs-fold (a line starting with whitespace) and control characters in the value.
    static func parseFieldLine(_ line: UnsafeBufferPointer<UInt8>) -> (name: String, value: String)? {
        var nameEnd = 0
        while nameEnd < line.count, line[nameEnd] != colon {
            guard isTokenChar(line[nameEnd]) else { return nil }  // also catches SP before ":" and obs-fold
            nameEnd += 1
        }
        guard nameEnd > 0, nameEnd < line.count else { return nil }
        var start = nameEnd + 1
        var end = line.count
        while start < end, isOWS(line[start]) { start += 1 }
        while end > start, isOWS(line[end - 1]) { end -= 1 }
        var index = start
        while index < end {
            guard isFieldValueByte(line[index]) else { return nil }
            index += 1
        }
        let name = String(decoding: UnsafeBufferPointer(rebasing: line[0..<nameEnd]), as: UTF8.self)
        let value = String(decoding: UnsafeBufferPointer(rebasing: line[start..<end]), as: UTF8.self)
        return (name, value)
    }

    /// Parses `HTTP/x.y` exactly (8 bytes, single digits). Returns nil when the bytes do not have
    /// that shape at all; `isHTTPPrefix` tells whether they at least start with `HTTP/`.
    static func parseVersion(_ bytes: UnsafeBufferPointer<UInt8>) -> HTTPVersion? {
        guard bytes.count == 8, hasHTTPPrefix(bytes),
            let major = digitValue(bytes[5]), bytes[6] == UInt8(ascii: "."), let minor = digitValue(bytes[7])
        else { return nil }
        return HTTPVersion(major: major, minor: minor)
    }

    static func hasHTTPPrefix(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.count >= 5 && bytes[0] == UInt8(ascii: "H") && bytes[1] == UInt8(ascii: "T")
            && bytes[2] == UInt8(ascii: "T") && bytes[3] == UInt8(ascii: "P") && bytes[4] == UInt8(ascii: "/")
    }

    @inline(__always)
    static func digitValue(_ byte: UInt8) -> Int? {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) ? Int(byte &- UInt8(ascii: "0")) : nil
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte &- UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte &- UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte &- UInt8(ascii: "A")) + 10
        default: return nil
        }
    }

    /// The message body length from `Content-Length` fields (RFC 9112 §6.3, RFC 9110 §8.6).
    /// Returns nil when there is none. Several fields, or a comma list, are accepted only when
    /// every element is the same number; anything but 1*DIGIT, or a number past `Int.max`, is bad.
    static func contentLength(_ headers: HTTPHeaders) throws(HTTPParseError) -> Int? {
        var result: Int?
        for value in headers.values("Content-Length") {
            for element in value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                let digits = trimmingOWS(element)
                guard !digits.isEmpty else { throw .badContentLength }
                var length = 0
                for byte in digits {
                    guard let digit = digitValue(byte) else { throw .badContentLength }
                    let (shifted, overflow1) = length.multipliedReportingOverflow(by: 10)
                    let (sum, overflow2) = shifted.addingReportingOverflow(digit)
                    guard !overflow1, !overflow2 else { throw .badContentLength }
                    length = sum
                }
                if let previous = result, previous != length { throw .conflictingContentLength }
                result = length
            }
        }
        return result
    }

    /// The transfer codings named by `Transfer-Encoding`, lower-cased, or nil when absent.
    static func transferCodings(_ headers: HTTPHeaders) -> [String]? {
        guard headers.contains("Transfer-Encoding") else { return nil }
        return headers.listElements("Transfer-Encoding").map { element in
            // A coding may carry parameters (`gzip;q=1` is not valid here, but be safe): keep the name.
            let name = element.utf8.prefix { $0 != UInt8(ascii: ";") && !isOWS($0) }
            return String(decoding: name.map(lowercased), as: UTF8.self)
        }
    }

    /// Whether `Connection` lists this option (lower-case ASCII), e.g. `close`, `keep-alive`.
    static func connectionHas(_ headers: HTTPHeaders, _ option: StaticString) -> Bool {
        headers.listElements("Connection").contains { equalsIgnoringASCIICase($0.utf8, option) }
    }

    /// Persistence rules of RFC 9112 §9.3: HTTP/1.1 persists unless `Connection: close`;
    /// HTTP/1.0 closes unless `Connection: keep-alive`.
    static func keepAlive(version: HTTPVersion, headers: HTTPHeaders) -> Bool {
        if connectionHas(headers, "close") { return false }
        if version.major == 1 && version.minor == 0 { return connectionHas(headers, "keep-alive") }
        return version.major >= 1
    }

    /// Appends `name: value\r\n`.
    static func appendField(_ name: String, _ value: String, to out: inout [UInt8]) {
        out.append(contentsOf: name.utf8)
        out.append(colon)
        out.append(space)
        out.append(contentsOf: value.utf8)
        out.append(cr)
        out.append(lf)
    }
}
