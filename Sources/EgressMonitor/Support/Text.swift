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
