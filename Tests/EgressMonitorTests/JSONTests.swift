import Foundation
import Testing
@testable import EgressMonitor
import EgressTestSupport

/// `JSONValue.parse` (the strict RFC 8259 parser behind the config, credentials, token and
/// manifest JSON) and `JSONValue.prettyPrinted` (the reports' writer).
@Suite struct JSONParserTests {
    static func parse(_ text: String, _ duplicates: JSONValue.DuplicateKeys = .reject) throws(ConfigError) -> JSONValue {
        try JSONValue.parse(Array(text.utf8), duplicateKeys: duplicates)
    }

    static func rejection(_ bytes: [UInt8]) -> String? {
        do {
            _ = try JSONValue.parse(bytes)
            return nil
        } catch {
            return error.issues.first?.message
        }
    }

    // MARK: accepted (JSONTestSuite's y_ cases, in spirit)

    static let accepted: [(String, JSONValue)] = [
        ("null", .null), ("true", .bool(true)), ("false", .bool(false)),
        ("0", .number(0)), ("-0", .number(-0.0)), ("1", .number(1)), ("-1", .number(-1)),
        ("1.5", .number(1.5)), ("1e2", .number(100)), ("1E2", .number(100)), ("1e+2", .number(100)),
        ("1e-2", .number(0.01)), ("-0.0e0", .number(0)), ("123456789012345678901234567890", .number(1.2345678901234568e29)),
        ("1e-400", .number(0)), ("5e-324", .number(.leastNonzeroMagnitude)), ("1.7976931348623157e308", .number(1.7976931348623157e308)),
        (#""""#, .string("")), (#""abc""#, .string("abc")),
        (#""\"\\\/\b\f\n\r\t""#, .string("\"\\/\u{8}\u{C}\n\r\t")),
        (#""\u0041\u00e9\u20AC""#, .string("Aé€")), (#""\u0000""#, .string("\u{0}")),
        (#""\uD83D\uDE00""#, .string("😀")), (#""\uDBFF\uDFFF""#, .string("\u{10FFFF}")),
        ("\"é日本😀\"", .string("é日本😀")), ("\"\u{7F}\"", .string("\u{7F}")),
        ("[]", .array([])), ("{}", .object([:])), ("[1,[2,[3]]]", .array([.number(1), .array([.number(2), .array([.number(3)])])])),
        (#"{"a":{"b":[true,null]}}"#, .object(["a": .object(["b": .array([.bool(true), .null])])])),
        (" \t\r\n[ 1 , 2 ]\n\t \r", .array([.number(1), .number(2)])),
        ("\u{FEFF}{}", .object([:])),  // a leading UTF-8 BOM is skipped
        (#"{"":1}"#, .object(["": .number(1)])),
    ]

    @Test func acceptsWhatRFC8259Allows() throws {
        for (text, expected) in Self.accepted {
            let value = try Self.parse(text)
            #expect(value == expected, "\(text)")
        }
        // -0 keeps its sign.
        #expect(try Self.parse("-0").numberValue?.sign == .minus)
        #expect(try Self.parse("[-0.0]") == .array([.number(-0.0)]))
    }

    @Test func nestingUpToTheLimitIsAcceptedAndDeeperIsRejected() throws {
        let depth = JSONValue.maximumDepth
        _ = try Self.parse(String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
        _ = try Self.parse(String(repeating: #"{"a":"#, count: depth - 1) + "[]" + String(repeating: "}", count: depth - 1))
        let deep = String(repeating: "[", count: depth + 1) + String(repeating: "]", count: depth + 1)
        #expect(Self.rejection(Array(deep.utf8))?.contains("nested deeper than 512") == true)
        // Far deeper than any stack: rejected, not a crash.
        #expect(Self.rejection(Array(repeating: UInt8(ascii: "["), count: 1_000_000)) != nil)
        #expect(Self.rejection(Array(String(repeating: #"{"a":"#, count: 100_000).utf8)) != nil)
    }

    // MARK: rejected (n_ cases)

    static let rejected: [(String, String)] = [
        ("", "unexpected end of input"), (" ", "unexpected end of input"),
        ("[1,]", #"unexpected "]" where a value was expected"#), (#"{"a":1,}"#, "where an object key was expected"),
        ("[1 2]", "expected \",\" or \"]\""), (#"{"a" 1}"#, "after an object key"), (#"{a:1}"#, "where an object key was expected"),
        ("[", "unexpected end of input"), ("[1", "unexpected end of input"), (#"{"a":"#, "unexpected end of input"),
        ("01", "no leading zeros"), ("-01", "no leading zeros"), ("1.", "digit after \".\""), (".5", "where a value was expected"),
        ("+1", "where a value was expected"), ("-", "digit after \"-\""), ("1e", "exponent"), ("1e+", "exponent"),
        ("0x10", "after the document's value"), ("1e999", "out of range"), ("-1e999", "out of range"),
        ("NaN", "where a value was expected"), ("Infinity", "where a value was expected"), ("-Infinity", "digit after \"-\""),
        ("tru", "expected true"), ("nul", "expected null"), ("True", "where a value was expected"),
        ("[] []", "after the document's value"), ("{} x", "after the document's value"), ("1 2", "after the document's value"),
        ("\"abc", "unterminated string"), ("\"a\nb\"", "control character 0x0A"), ("\"\t\"", "control character 0x09"),
        ("\"\u{1F}\"", "control character 0x1F"), (#""\x41""#, "invalid escape"), (#""\u12""#, "four hex digits"),
        (#""\uZZZZ""#, "four hex digits"), (#""\uD800""#, "high surrogate \u{5C}uD800 not followed"),
        (#""\uD800\u0041""#, "not followed by a low surrogate"), (#""\uDC00""#, "lone low surrogate"),
        (#""\uD800x""#, "not followed"), ("['a']", "where a value was expected"), ("\u{A0}1", "byte 0xC2"),
        ("\u{C}1", "byte 0x0C"), ("/* c */ 1", "where a value was expected"),
        (#"{"a":1,"a":2}"#, #"the key "a" appears twice"#),
    ]

    @Test func rejectsWhatRFC8259DoesNotAllowNamingWhere() {
        for (text, fragment) in Self.rejected {
            let message = Self.rejection(Array(text.utf8))
            #expect(message?.hasPrefix("not valid JSON: ") == true, "\(text.debugDescription) was accepted")
            #expect(message?.contains(fragment) == true, "\(text.debugDescription): \(message ?? "accepted")")
            #expect(message?.contains("(byte ") == true, "\(text.debugDescription): \(message ?? "accepted")")
        }
    }

    @Test func invalidUTF8IsRejected() {
        let cases: [[UInt8]] = [
            [0x22, 0xFF, 0x22], [0x22, 0xC0, 0x80, 0x22],  // not UTF-8; overlong NUL
            [0x22, 0xE0, 0x80, 0xAF, 0x22],  // overlong "/"
            [0x22, 0xED, 0xA0, 0x80, 0x22],  // an encoded surrogate
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // past U+10FFFF
            [0x22, 0xC3, 0x22], [0x22, 0xE2, 0x82, 0x22], [0x22, 0x80, 0x22],  // truncated; lone continuation
            [0x22, 0xE2, 0x82],  // cut off at the end
        ]
        for bytes in cases {
            #expect(Self.rejection(bytes)?.contains("invalid UTF-8") == true, "\(bytes)")
        }
        #expect(Self.rejection([0xEF, 0xBB]) != nil)  // half a BOM
        #expect(Self.rejection([0xEF, 0xBB, 0xBF, 0xEF, 0xBB, 0xBF, 0x31]) != nil)  // one BOM only
    }

    @Test func errorsNameLineColumnAndByte() {
        #expect(Self.rejection(Array("{\n  \"targets\": [}".utf8)) == #"not valid JSON: unexpected "}" where a value was expected at line 2, column 15 (byte 16)"#)
        #expect(Self.rejection(Array("[\"é\", x]".utf8)) == #"not valid JSON: unexpected "x" where a value was expected at line 1, column 7 (byte 7)"#)
        #expect(Self.rejection(Array(#"{"name": 1, "name": 2}"#.utf8)) == #"not valid JSON: the key "name" appears twice in one object at line 1, column 13 (byte 12)"#)
    }

    @Test func duplicateKeysAreRejectedOrTheLastWins() throws {
        #expect(throws: ConfigError.self) { try Self.parse(#"{"a":1,"b":{"c":1,"c":2}}"#) }
        #expect(try Self.parse(#"{"a":1,"a":2}"#, .lastWins) == .object(["a": .number(2)]))
        // The config loader rejects them, naming the key.
        do {
            _ = try ConfigLoader.decode(Array(#"{"targets": [], "targets": []}"#.utf8))
            Issue.record("accepted a duplicate key")
        } catch {
            #expect(error.issues.map(\.message) == [#"not valid JSON: the key "targets" appears twice in one object at line 1, column 17 (byte 16)"#])
        }
    }

    @Test func accessorsKeepWhatCastsFromJSONSerializationGave() throws {
        let v = try Self.parse(#"{"n": 3, "f": 2.5, "e": 3e2, "b": true, "s": "x", "big": 1e300}"#)
        #expect(v["n"]?.intValue == 3)
        #expect(v["e"]?.intValue == 300)
        #expect(v["f"]?.intValue == nil)
        #expect(v["big"]?.intValue == nil)
        #expect(v["b"]?.numberValue == nil)  // a boolean is not a number
        #expect(v["s"]?.stringValue == "x")
        #expect(v["n"]?.stringValue == nil)
        #expect(v["missing"] == nil)
    }

    @Test func manifestsAndTokensReadAsBefore() {
        let index = #"{"manifests":[{"digest":"sha256:arm","platform":{"os":"linux","architecture":"arm64"}},{"digest":"sha256:amd","platform":{"os":"linux","architecture":"amd64"}}]}"#
        guard case .index(let m)? = Manifests.content(of: Array(index.utf8)) else { Issue.record("no index"); return }
        #expect(m == "sha256:amd")
        let image = #"{"layers":[{"digest":"sha256:a","size":10},{"digest":"sha256:b","size":3e3},{"digest":"sha256:c","size":20.5}]}"#
        guard case .image(let layer)? = Manifests.content(of: Array(image.utf8)) else { Issue.record("no image"); return }
        #expect(layer == "sha256:b")
        // A list with a non-object element is not used, as a failed [[String: Any]] cast was not.
        #expect(Manifests.content(of: Array(#"{"layers":[{"digest":"sha256:a","size":1}, 3]}"#.utf8)) == nil)
        #expect(Manifests.content(of: Array("not json".utf8)) == nil)
    }
}

// MARK: differential: python3's json module

/// `python3`, if it is on PATH.
private let python3 = Lab.path(of: "python3")

/// The same tree python3's `json` reads, compared through a canonical form both sides write:
/// numbers as the hex of their IEEE 754 bits, strings as the hex of their UTF-8, object keys
/// sorted. The peer reads integers as floats (`parse_int=float`), so `-0` keeps its sign.
@Suite struct JSONDifferentialTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static func canonical(_ v: JSONValue) -> String {
        switch v {
        case .null: return "n"
        case .bool(let b): return b ? "t" : "f"
        case .number(let n): return "d" + hex(n.bitPattern)
        case .string(let s): return "s" + s.utf8.map { hex($0) }.joined()
        case .array(let a): return "[" + a.map(canonical).joined(separator: ",") + "]"
        case .object(let o):
            let keys = o.keys.map { ($0, $0.utf8.map { hex($0) }.joined()) }.sorted { $0.1 < $1.1 }
            return "{" + keys.map { "\($0.1):\(canonical(o[$0.0]!))" }.joined(separator: ",") + "}"
        }
    }

    static func hex<T: FixedWidthInteger>(_ v: T) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: T.bitWidth / 4 - s.count) + s
    }

    static let peer = #"""
import json, struct, sys
sys.setrecursionlimit(100000)
def c(v):
    if v is None: return "n"
    if v is True: return "t"
    if v is False: return "f"
    if isinstance(v, float): return "d" + struct.pack(">d", v).hex()
    if isinstance(v, str): return "s" + v.encode("utf-8").hex()
    if isinstance(v, list): return "[" + ",".join(c(x) for x in v) + "]"
    keys = sorted((k.encode("utf-8").hex(), k) for k in v)
    return "{" + ",".join(h + ":" + c(v[k]) for h, k in keys) + "}"
def bad(x): raise ValueError(x)
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    if data.startswith(b"\xef\xbb\xbf"): data = data[3:]
    try:
        print(c(json.loads(data.decode("utf-8"), parse_int=float, parse_constant=bad)))
    except ValueError as e:
        print("ERROR")
"""#

    /// Valid documents written here: the corners of strings and numbers.
    static let generated: [String] = [
        #"[0, -0, 1, -1, 0.1, 1e-7, 1E+2, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 123456789012345678901234567890, 9007199254740993, 1e-400, 0.30000000000000004, 4.35, 1234.5678e-3]"#,
        #"["", "a\"b\\c\/d", "\b\f\n\r\t", "\u0000\u001f\u007f", "\u00e9\u4E2D\uD83D\uDE00\uDBFF\uDFFF", "é日本🙂", "\u2028\u2029", "x\ud834\udd1ey"]"#,
        #"{"a": {"b": {"c": [[], {}, [{}], null, true, false]}}, "": "", " ": 1, "é": "e", "a\u0000b": 2}"#,
        "\u{FEFF}{\"bom\": true}",
        String(repeating: "[", count: 500) + "1" + String(repeating: "]", count: 500),
        "  \n\t\r 42 \n",
        #"{"dup": 1, "dup": 2}"#,  // last wins on both sides here
    ]

    @Test("our parser and python3's json read the same trees", .enabled(if: python3 != nil, "python3 is not on PATH"))
    func sameTreesAsPython() throws {
        let directory = try Lab.makeDirectory("json-differential")
        defer { Lab.removeDirectory(directory) }
        var files: [String] = []
        for (i, text) in Self.generated.enumerated() {
            let path = directory + "/generated-\(i).json"
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            files.append(path)
        }
        let fm = FileManager.default
        let corpus = Self.repository + "/Tests/Fuzz/corpus/config"
        files += try fm.contentsOfDirectory(atPath: corpus).sorted().map { corpus + "/" + $0 }
        files += ["systemd/config.json", "dashboards/egress-monitor.json"].map { Self.repository + "/" + $0 }
        // The README's JSON examples.
        let readme = try String(contentsOfFile: Self.repository + "/README.md", encoding: .utf8)
        for (i, block) in readme.components(separatedBy: "```json\n").dropFirst().enumerated() {
            guard let end = block.range(of: "\n```") else { continue }
            let path = directory + "/readme-\(i).json"
            try Data(block[..<end.lowerBound].utf8).write(to: URL(fileURLWithPath: path))
            files.append(path)
        }
        let script = directory + "/peer.py"
        try Data(Self.peer.utf8).write(to: URL(fileURLWithPath: script))
        let lines = try Lab.run("python3", [script] + files).split(separator: "\n").map(String.init)
        try #require(lines.count == files.count, "python3 printed \(lines.count) lines for \(files.count) files")
        var compared = 0
        for (path, theirs) in zip(files, lines) {
            let bytes = try #require(fm.contents(atPath: path))
            let ours: String
            do { ours = Self.canonical(try JSONValue.parse(Array(bytes), duplicateKeys: .lastWins)) } catch { ours = "ERROR" }
            #expect(ours == theirs, "\(path): ours \(ours.prefix(200)), python3's \(theirs.prefix(200))")
            if theirs != "ERROR" { compared += 1 }
        }
        // Most of the corpus is valid JSON; a peer that rejects everything proves nothing.
        #expect(compared >= Self.generated.count + 3, "only \(compared) documents were valid for python3")
    }
}

// MARK: the writer

@Suite struct JSONWriterTests {
    static let goldens = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path + "/Golden/report-json/"

    static func golden(_ name: String) throws -> String {
        try String(contentsOfFile: goldens + name + ".json", encoding: .utf8)
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    static func doubles(_ values: [Double]) -> String {
        text(ReportJSON.encode(Document(.object(["values": .array(values.map { .number($0) })]))))
    }

    struct Document: JSONRepresentable {
        let json: JSONValue
        init(_ json: JSONValue) { self.json = json }
    }

    // The values the goldens were captured from (through JSONEncoder, before the writer existed).
    @Test func numbersAsFoundationPrintedThem() throws {
        #expect(Self.doubles([0, -0.0, 1, 1.0, 0.1, 0.2, 0.30000000000000004, 1e-7, 1.5e-5, 0.0001, 0.001, 12345678.9, 123456789012345.0, 1e15, 1e16, 1e17, 1.2345e20, 1e21, 1e22, 1e300, .leastNonzeroMagnitude, 1.7976931348623157e308, 1_700_000_000, 1_700_000_000.125, 1_702_592_000.0, -3.5, 2.5e-3, 0.05, 1234.5678, 9007199254740992, 4.35, 100, 1e6, 1e-4, 3.0e-5])
                == (try Self.golden("doubles")))
        #expect(Self.doubles([9007199254740992, 9007199254740994, -9007199254740992, -9007199254740994, 1e15 + 0.5, 123456.0, 1e-300, 9223372036854775808.0, 1.5e15, 4503599627370496.5, 5e-7, 18014398509481984, 1e16 - 2, 8e15, 9.2e18, -1e15, 0.1e-3, 1e21 + 1e6])
                == (try Self.golden("doubles2")))
    }

    @Test func stringsAsFoundationEscapedThem() throws {
        let strings = ["", "plain", "a/b", "q\"uote", "back\\slash", "nl\ncr\rtab\tbs\u{8}ff\u{C}", "\u{0}\u{1}\u{1F}\u{7F}", "é ü ß 日本 🙂", "\u{2028}\u{2029}", "<html>&'", "\u{FEFF}bom", "x\u{85}y"]
        #expect(Self.text(ReportJSON.encode(Document(.object(["values": .array(strings.map { .string($0) })])))) == (try Self.golden("strings")))
        #expect(Self.text(ReportJSON.encode(Document(.object(["values": .array([])])))) == (try Self.golden("empty")))
    }

    @Test func keysSortedAsFoundationSortedThem() throws {
        let keys = ["b": 1, "a": 2, "B": 3, "A": 4, "a10": 5, "a9": 6, "a2": 7, "_x": 8, "z": 9, "Z": 10, "é": 11, "e": 12, "ab": 13, "a-b": 14, "a.b": 15, "": 16, "10": 17, "9": 18, "f": 19, "F": 20, "registry-1.docker.io/library/alpine:3.20": 21, "registry-1.docker.io/library/alpine:3.9": 22]
        #expect(Self.text(ReportJSON.encode(Document(.object(["map": .object(keys.mapValues { .number(Double($0)) })])))) == (try Self.golden("keys")))
    }

    @Test func nestingAndEmptyContainersAsFoundationIndentedThem() throws {
        let mixed: JSONValue = .object(["a": .array([]), "b": .object([:]), "c": .null, "d": .number(200),
                                        "e": .array([.object([:]), .object(["x": .number(1.5)])]), "f": .bool(true), "g": .null])
        #expect(Self.text(ReportJSON.encode(Document(mixed))) == (try Self.golden("mixed")))
        let mixed2: JSONValue = .object(["a": .array([.number(1), .number(-2)]), "b": .object(["k": .string("v")]), "c": .bool(false),
                                         "d": .null, "e": .array([]), "f": .bool(false), "g": .number(0.25)])
        #expect(Self.text(ReportJSON.encode(Document(mixed2))) == (try Self.golden("mixed2")))
    }

    @Test func aNonFiniteNumberMakesTheDocumentEmptyAsJSONEncoderDid() throws {
        #expect(Self.text(ReportJSON.encode(Document(.object(["values": .array([.number(1), .number(.nan)])])))) == (try Self.golden("nan")))
        #expect(Self.text(ReportJSON.encode(Document(.object(["values": .array([.number(.infinity)])])))) == (try Self.golden("inf")))
    }

    @Test func reportsAsFoundationWroteThem() throws {
        #expect(Self.text(CheckCommand.json(ReportTests.roundResults)) == (try Self.golden("check")))
        #expect(Self.text(CheckCommand.json([])) == (try Self.golden("checkempty")))
        let version = "\"version\" : \"\(EgressMonitorVersion.current)\""
        let api = try Self.golden("api").replacingOccurrences(of: "\"version\" : \"0.1.0\"", with: version)
        #expect(Self.text(ReportTests.report(ReportTests.roundResults, config: ReportTests.pageConfig).json()) == api)
        let bare = try Self.golden("apibare").replacingOccurrences(of: "\"version\" : \"0.1.0\"", with: version)
        #expect(Self.text(ReportTests.report(ReportTests.roundResults).json()) == bare)
    }

    @Test func whatTheWriterWritesParsesBackToItself() throws {
        for (text, _) in JSONParserTests.accepted {
            let value = try JSONParserTests.parse(text)
            let written = try #require(value.prettyPrinted())
            #expect(try JSONValue.parse(written) == value, "\(text)")
        }
    }
}
