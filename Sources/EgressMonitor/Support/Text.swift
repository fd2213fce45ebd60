/// Small text helpers that stand in for Foundation's.
extension StringProtocol {
    /// Without leading and trailing spaces and tabs (Unicode space separators included), as
    /// Foundation's `trimmingCharacters(in: .whitespaces)` trims.
    var trimmingWhitespace: String {
        let scalars = String(self).unicodeScalars
        func isSpace(_ s: Unicode.Scalar) -> Bool { s == "\t" || s.properties.generalCategory == .spaceSeparator }
        guard let first = scalars.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !isSpace($0) })!
        return String(Substring(scalars[first...last]))
    }
}

extension String {
    /// Cut or padded with spaces to `length` characters, as Foundation's
    /// `padding(toLength:withPad: " ", startingAt: 0)` does for the ASCII text it is used on.
    func paddedWithSpaces(to length: Int) -> String {
        count >= length ? String(prefix(length)) : self + String(repeating: " ", count: length - count)
    }
}

enum TextFormat {
    /// `value` in decimal, left-padded with zeros to `width` digits (`%0*d` for non-negative values).
    static func zeroPadded(_ value: some BinaryInteger, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    /// `value` in hexadecimal, left-padded with zeros to `width` digits (`%0*x` / `%0*X`).
    static func hex(_ value: some BinaryInteger, _ width: Int, uppercase: Bool = false) -> String {
        let digits = String(value, radix: 16, uppercase: uppercase)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

// The product's modules do not import `_StringProcessing` (see Package.swift), whose
// `firstRange(of:)`, `replacing(_:with:)` and `contains(_:)` for sub-sequences these replace,
// under names of their own so tests that do import it see no ambiguity.
extension Collection where Element: Equatable {
    /// The range of the first occurrence of `pattern`, nil if none or if `pattern` is empty.
    /// A direct search: the texts it is used on are short (URLs, header blocks).
    func firstOccurrence<P: Collection>(of pattern: P) -> Range<Index>? where P.Element == Element {
        guard let head = pattern.first else { return nil }
        var start = startIndex
        while let candidate = self[start...].firstIndex(of: head) {
            var i = candidate, j = pattern.startIndex
            while i != endIndex, j != pattern.endIndex, self[i] == pattern[j] {
                formIndex(after: &i)
                pattern.formIndex(after: &j)
            }
            if j == pattern.endIndex { return candidate..<i }
            if i == endIndex { return nil }
            start = index(after: candidate)
        }
        return nil
    }

    /// Whether `pattern` occurs in this collection (false for an empty one).
    func containsOccurrence<P: Collection>(of pattern: P) -> Bool where P.Element == Element {
        firstOccurrence(of: pattern) != nil
    }
}

extension String {
    /// Every occurrence of `target`, left to right and not overlapping, replaced by `replacement`.
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = self[...]
        while let r = rest.firstOccurrence(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        out += rest
        return out
    }
}
