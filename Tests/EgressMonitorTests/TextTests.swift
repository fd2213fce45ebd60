import Testing
@testable import EgressMonitor

/// The sub-sequence helpers that replace `_StringProcessing`'s in the product (Support/Text.swift),
/// checked against `_StringProcessing` itself, which the tests still import: same answers on
/// the texts they are used on and on edge cases.
@Suite struct TextHelperTests {
    static let texts = ["", "a", "://", "http://h", "https://user:pw@host:443/x", "socks5h://a:b@c", "aaab", "abab",
                        "%%", "a%%b%%%c", "no separator", "é://ü", "e\u{301}://x", "::/://", "Content-Length: 0\r\n\r\n"]
    static let patterns = ["://", "a", "ab", "aab", "%%", "é", "e", "Content-Length: 0\r\n", "x", "zz"]

    @Test func firstOccurrenceMatchesStringProcessing() {
        for text in Self.texts {
            for pattern in Self.patterns {
                let ours = text.firstOccurrence(of: pattern)
                let theirs = text.firstRange(of: pattern)
                #expect(ours == theirs, "\(text.debugDescription) in \(pattern.debugDescription)")
                #expect(text.containsOccurrence(of: pattern) == (theirs != nil))
                let bytes = Array(text.utf8), needle = Array(pattern.utf8)
                #expect(bytes.firstOccurrence(of: needle) == bytes.firstRange(of: needle), "bytes of \(text.debugDescription)")
            }
        }
    }

    @Test func emptyPatternIsNeverFound() {
        #expect("abc".firstOccurrence(of: "") == nil)
        #expect(![UInt8]().containsOccurrence(of: [UInt8]()))
    }

    @Test func replacingOccurrencesMatchesStringProcessing() {
        for text in Self.texts {
            for pattern in Self.patterns {
                #expect(text.replacingOccurrences(of: pattern, with: "<>") == text.replacing(pattern, with: "<>"),
                        "\(text.debugDescription) replacing \(pattern.debugDescription)")
            }
        }
        #expect("a%%b%%%c".replacingOccurrences(of: "%%", with: "%") == "a%b%%c")
    }
}
