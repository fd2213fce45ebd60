/// Sample values formatted as the Go client formats them: `strconv.FormatFloat(v, 'g', -1, 64)`,
/// with `NaN`, `+Inf` and `-Inf`, and `0` for negative zero (client_golang's `writeFloat`
/// special-cases `v == 0`).
///
/// Go's `'g'` with the shortest precision writes the shortest digits that round-trip, in `%e`
/// form when the decimal exponent is below -4 or at least 6 (the precision is taken as 6 for
/// that decision), else in `%f` form; the `%e` exponent has a sign and at least two digits:
///
///     1 -> 1    1234.5 -> 1234.5    999999 -> 999999    1000000 -> 1e+06
///     1234567 -> 1.234567e+06    0.0001 -> 0.0001    0.00001 -> 1e-05    1e21 -> 1e+21
///
/// Swift's `Double.description` also prints the shortest round-tripping digits (and the closest
/// of them), only in another layout; this re-lays them out. Integers below 10^6 skip that.
enum GoFloat {
    /// The longest output, e.g. `-1.7976931348623157e+308`.
    static let maxLength = 24

    /// `v` formatted as a `String`.
    static func format(_ v: Double) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxLength) { buffer in
            let n = write(v, to: buffer.baseAddress!)
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[..<n]), as: UTF8.self)
        }
    }

    /// Writes `v` at `out`, which has room for ``maxLength`` bytes. Returns the bytes written.
    @inline(__always)
    static func write(_ v: Double, to out: UnsafeMutablePointer<UInt8>) -> Int {
        if v.isNaN { return copy("NaN", to: out) }
        if v.isInfinite { return copy(v < 0 ? "-Inf" : "+Inf", to: out) }
        if v.magnitude < 1e6, v == v.rounded(.towardZero) { return writeInteger(Int(v), to: out) }
        return writeGeneral(v, to: out)
    }

    private static func copy(_ s: StaticString, to out: UnsafeMutablePointer<UInt8>) -> Int {
        out.update(from: s.utf8Start, count: s.utf8CodeUnitCount)
        return s.utf8CodeUnitCount
    }

    /// `n` in decimal; |n| < 10^6. Zero (and negative zero, which arrives here as 0) is `0`.
    private static func writeInteger(_ n: Int, to out: UnsafeMutablePointer<UInt8>) -> Int {
        var length = 0
        if n < 0 { out[0] = UInt8(ascii: "-"); length = 1 }
        var magnitude = n.magnitude
        var digits = 1
        var scan = magnitude
        while scan >= 10 { scan /= 10; digits += 1 }
        var i = length + digits - 1
        repeat {
            out[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
            magnitude /= 10
            i -= 1
        } while magnitude > 0
        return length + digits
    }

    /// Any finite, non-zero `v`: take Swift's shortest digits and lay them out as Go does.
    private static func writeGeneral(_ v: Double, to out: UnsafeMutablePointer<UInt8>) -> Int {
        var text = v.description
        return text.withUTF8 { source in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: source.count) { digits in
                // Swift writes "-"? digits ("." digits)? ("e" sign digits)?; collect the digits,
                // where the decimal point falls among them, and the exponent.
                var negative = false
                var i = 0
                if source[0] == UInt8(ascii: "-") { negative = true; i = 1 }
                var nd = 0
                var pointAt = -1
                while i < source.count, source[i] != UInt8(ascii: "e") {
                    if source[i] == UInt8(ascii: ".") { pointAt = nd } else { digits[nd] = source[i]; nd += 1 }
                    i += 1
                }
                if pointAt < 0 { pointAt = nd }
                var exponent = 0
                if i < source.count {
                    i += 1
                    var exponentNegative = false
                    if source[i] == UInt8(ascii: "-") { exponentNegative = true; i += 1 } else if source[i] == UInt8(ascii: "+") { i += 1 }
                    while i < source.count { exponent = exponent * 10 + Int(source[i] &- UInt8(ascii: "0")); i += 1 }
                    if exponentNegative { exponent = -exponent }
                }
                // Significant digits digits[start..<end]; value = 0.DIGITS x 10^dp.
                var start = 0
                while start < nd, digits[start] == UInt8(ascii: "0") { start += 1 }
                var end = nd
                while end > start, digits[end - 1] == UInt8(ascii: "0") { end -= 1 }
                if start == end { out[0] = UInt8(ascii: "0"); return 1 }
                let dp = pointAt + exponent - start
                let significant = end - start

                var n = 0
                if negative { out[n] = UInt8(ascii: "-"); n += 1 }
                let x = dp - 1
                if x < -4 || x >= 6 {
                    // %e: d.ddde±XX
                    out[n] = digits[start]; n += 1
                    if significant > 1 {
                        out[n] = UInt8(ascii: "."); n += 1
                        for k in (start + 1)..<end { out[n] = digits[k]; n += 1 }
                    }
                    out[n] = UInt8(ascii: "e"); n += 1
                    out[n] = x < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"); n += 1
                    let e = x.magnitude
                    if e >= 100 { out[n] = UInt8(ascii: "0") &+ UInt8(e / 100); n += 1 }
                    out[n] = UInt8(ascii: "0") &+ UInt8(e / 10 % 10); n += 1
                    out[n] = UInt8(ascii: "0") &+ UInt8(e % 10); n += 1
                } else {
                    // %f: integer part (or 0), then the fraction if any digits remain.
                    if dp > 0 {
                        for k in 0..<dp { out[n] = k < significant ? digits[start + k] : UInt8(ascii: "0"); n += 1 }
                    } else {
                        out[n] = UInt8(ascii: "0"); n += 1
                    }
                    if significant > dp {
                        out[n] = UInt8(ascii: "."); n += 1
                        if dp < 0 { for _ in 0..<(-dp) { out[n] = UInt8(ascii: "0"); n += 1 } }
                        for k in max(dp, 0)..<significant { out[n] = digits[start + k]; n += 1 }
                    }
                }
                return n
            }
        }
    }
}
