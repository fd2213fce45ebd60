import Foundation

/// How much slower than normal the tests may run: `EGRESS_TEST_TIME_SCALE` (default 1).
///
/// Scales the *tests'* allowances for scheduling delay — how far past a deadline a probe may be
/// seen to end, how long a scrape may take — never the product's timeouts or the deadlines under
/// test. Tests/Sanitizers/run.sh sets it (2 under AddressSanitizer, 4 under ThreadSanitizer), where
/// every instruction runs several times slower and a resumed task waits longer for a thread.
public enum TestTime {
    public static let scale: Double = {
        guard let text = ProcessInfo.processInfo.environment["EGRESS_TEST_TIME_SCALE"],
              let value = Double(text), value.isFinite, value >= 1 else { return 1 }
        return value
    }()

    /// `seconds` of allowance, scaled.
    public static func allowance(_ seconds: Double) -> Double { seconds * scale }
}
