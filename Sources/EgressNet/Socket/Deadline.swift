#if canImport(Glibc)
import Glibc
#endif

/// A point on the monotonic clock (CLOCK_MONOTONIC) by which an operation must have finished.
///
/// Every blocking step in EgressNet takes a `Deadline`, never a duration: a phase's timeout and the
/// probe's overall deadline are combined once (`min`) by the caller, and every retry of a wait
/// recomputes the time left from the same deadline, so retries cannot stretch it.
public struct Deadline: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Nanoseconds on CLOCK_MONOTONIC.
    public let nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// Now, on the monotonic clock.
    public static func now() -> Deadline { Deadline(nanoseconds: MonotonicClock.nanoseconds()) }

    /// `seconds` from now (negative or NaN counts as zero).
    public static func after(seconds: Double) -> Deadline {
        let ns = seconds.isFinite && seconds > 0 ? UInt64(min(seconds, 1e9) * 1e9) : 0
        return Deadline(nanoseconds: MonotonicClock.nanoseconds() &+ ns)
    }

    /// A deadline that never passes (a listener waiting for its next client).
    public static let distantFuture = Deadline(nanoseconds: UInt64.max / 2)

    /// Seconds left until the deadline; 0 once it has passed.
    public var remainingSeconds: Double {
        let now = MonotonicClock.nanoseconds()
        return nanoseconds > now ? Double(nanoseconds - now) / 1e9 : 0
    }

    public var hasPassed: Bool { MonotonicClock.nanoseconds() >= nanoseconds }

    /// The earlier of this deadline and `seconds` from now: a phase's own timeout inside a probe's deadline.
    public func capped(atSecondsFromNow seconds: Double) -> Deadline {
        Swift.min(self, .after(seconds: seconds))
    }

    public static func < (a: Deadline, b: Deadline) -> Bool { a.nanoseconds < b.nanoseconds }

    public var description: String { "Deadline(in \(remainingSeconds)s)" }
}

/// CLOCK_MONOTONIC readings, for deadlines and for measuring phase durations.
public enum MonotonicClock {
    public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Seconds elapsed since `start` (a `nanoseconds()` reading).
    public static func seconds(since start: UInt64) -> Double {
        let now = nanoseconds()
        return now > start ? Double(now - start) / 1e9 : 0
    }
}

/// Seconds since the Unix epoch, from CLOCK_REALTIME (for timestamps shown to people and Prometheus).
public func wallClockSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
