import Testing
@testable import EgressMetrics

/// Expected strings are what Go's `strconv.FormatFloat(v, 'g', -1, 64)` prints (and what
/// client_golang writes), including its switch to `%e` at exponent >= 6 and < -4.
@Suite("Go float formatting")
struct GoFloatTests {
    static let table: [(Double, String)] = [
        (0, "0"),
        (-0.0, "0"),
        (1, "1"),
        (-1, "-1"),
        (3, "3"),
        (100, "100"),
        (0.5, "0.5"),
        (-2.5, "-2.5"),
        (0.1, "0.1"),
        (0.1 + 0.2, "0.30000000000000004"),
        (0.005, "0.005"),
        (0.001, "0.001"),
        (0.0001, "0.0001"),
        (0.000123, "0.000123"),
        (0.00001, "1e-05"),
        (2.5e-5, "2.5e-05"),
        (1e-7, "1e-07"),
        (1234.5, "1234.5"),
        (123456.789, "123456.789"),
        (999999, "999999"),
        (999999.9, "999999.9"),
        (1_000_000, "1e+06"),
        (1_000_000.5, "1.0000005e+06"),
        (1_234_567, "1.234567e+06"),
        (-1_234_567, "-1.234567e+06"),
        (12_345_678.9, "1.23456789e+07"),
        (1e15, "1e+15"),
        (9_007_199_254_740_992, "9.007199254740992e+15"),
        (1.2345678901234568e17, "1.2345678901234568e+17"),
        (1e21, "1e+21"),
        (1e22, "1e+22"),
        (1e100, "1e+100"),
        (1.5e300, "1.5e+300"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (-2.2250738585072014e-308, "-2.2250738585072014e-308"),
        (.leastNonzeroMagnitude, "5e-324"),
        (Double(UInt64.max), "1.8446744073709552e+19"), // RLIM_INFINITY as Go prints it
        (.nan, "NaN"),
        (.infinity, "+Inf"),
        (-.infinity, "-Inf"),
    ]

    @Test(arguments: table)
    func formatsAsGo(value: Double, expected: String) {
        #expect(GoFloat.format(value) == expected)
    }

    @Test("random bit patterns round-trip and never exceed maxLength")
    func roundTrip() {
        var generator = SplitMix(seed: 2024)
        var failures: [Double] = []
        for _ in 0..<200_000 {
            let value = Double(bitPattern: generator.next())
            guard value.isFinite else { continue }
            let text = GoFloat.format(value)
            if text.utf8.count > GoFloat.maxLength || Double(text) != value { failures.append(value) }
        }
        #expect(failures.isEmpty)
    }

    @Test("integers round-trip across the switch to exponent form")
    func integers() {
        for n in [0, 7, 999_998, 999_999, 1_000_000, 1_000_001, 123_456_789, 1 << 53] {
            for value in [Double(n), -Double(n)] {
                #expect(Double(GoFloat.format(value)) == value)
            }
        }
    }
}

/// A tiny deterministic generator, so failures reproduce.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
