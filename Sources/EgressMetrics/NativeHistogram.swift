import Glibc

/// The sparse, exponential ("native") buckets of one histogram series, recorded beside the
/// classic ones as observations arrive and exported only in the protobuf exposition.
///
/// Bucket `i` of schema `s` holds the observations in `(2^((i-1)/2^s), 2^(i/2^s)]`; values whose
/// magnitude is at most ``zeroThreshold`` go to the zero bucket (Prometheus' native histogram
/// model, as client_golang records it).
///
/// **Schema 3** (8 buckets per doubling, each bound 9.05 % above the previous one): the agent's
/// durations span 1 ms to 60 s, 16 doublings, so a series holds at most 128 regular buckets, and
/// in practice the few doublings one path's latency moves within. A quantile read from it lies in
/// a bucket at most 9.05 % wide (4.4 % from the bucket's geometric middle; where in the bucket
/// Prometheus puts it depends on its interpolation, so the tests allow the whole width) —
/// client_golang's recommended bucket factor (1.1) gives this same schema. Schema 4 would halve that error and double the buckets; the classic buckets
/// (1 ms, 2.5 ms, 5 ms …) are off by up to 60 % at the same quantiles.
///
/// **Zero threshold 2^-10 s (0.977 ms)**: a power of two is a bucket bound in every schema, so
/// the zero bucket ends exactly where bucket -80 begins, just below the 1 ms the range starts at.
/// Loopback and `/etc/hosts` phases (microseconds) then cost one zero bucket instead of ~100
/// sparse buckets reaching down to the microsecond, which no decision about an egress path needs.
public enum NativeHistogram {
    /// The schema every native histogram of the store uses.
    public static let schema: Int32 = 3
    /// Observations with `|v| <= zeroThreshold` land in the zero bucket.
    public static let zeroThreshold: Double = 0x1p-10

    /// client_golang's `nativeHistogramBounds[3]`: `2^(i/8 - 1)` for `i` in 0..<8, the mantissa
    /// bounds that `frexp` places a value between.
    static let bounds: [Double] = [
        0.5, 0.5452538663326288, 0.5946035575013605, 0.6484197773255048,
        0.7071067811865475, 0.7711054127039704, 0.8408964152537144, 0.9170040432046711,
    ]

    /// The index of the bucket holding `v` (`v > 0`, finite): client_golang's computation,
    /// `frexp`, then the first mantissa bound `>= frac`.
    static func index(_ v: Double) -> Int32 {
        var exponent: Int32 = 0
        let frac = frexp(v, &exponent)
        var i = 0
        while i < bounds.count && bounds[i] < frac { i += 1 }
        return Int32(i) + (exponent - 1) * Int32(bounds.count)
    }

    /// The highest index recorded: bucket 320 ends at 2^40 (35,000 years in seconds). Larger
    /// values and infinities land in it, which keeps a series' dense bucket array short
    /// whatever it is fed.
    static let maxIndex: Int32 = 320

    /// ``index(_:)``, at most ``maxIndex``.
    static func clampedIndex(_ v: Double) -> Int32 {
        v.isFinite && v < 0x1p40 ? index(v) : maxIndex
    }

    /// The upper bound of bucket `index`: `2^(index/8)`.
    public static func upperBound(_ index: Int32) -> Double {
        let q = index >> 3, r = Int(index & 7)
        return ldexp(bounds[r] * 2, Int32(q))
    }
}

/// Bucket counts over a contiguous range of indices, grown at either end as needed. A duration
/// series usually stays within a few doublings, so the range stays short.
struct SparseBuckets: Sendable, Equatable {
    /// The index of `counts[0]`.
    var first: Int32 = 0
    var counts: [UInt64] = []

    mutating func add(_ index: Int32) {
        if counts.isEmpty {
            first = index
            counts = [1]
        } else if index < first {
            counts.insert(contentsOf: repeatElement(0, count: Int(first - index)), at: 0)
            first = index
            counts[0] += 1
        } else if Int(index - first) >= counts.count {
            counts.append(contentsOf: repeatElement(0, count: Int(index - first) - counts.count + 1))
            counts[counts.count - 1] += 1
        } else {
            counts[Int(index - first)] += 1
        }
    }

    /// Runs of non-empty buckets as protobuf `BucketSpan`s (`offset` from the previous span's
    /// end, or from index 0 for the first) and each bucket's count as a delta to the previous
    /// bucket's, as `io.prometheus.client.Histogram` carries them.
    ///
    /// A gap of one or two empty buckets is carried as zeros inside a span, as client_golang
    /// does: a span costs more bytes than two zero deltas.
    func spansAndDeltas() -> (spans: [(offset: Int32, length: UInt32)], deltas: [Int64]) {
        var spans: [(offset: Int32, length: UInt32)] = []
        var deltas: [Int64] = []
        var previousCount: Int64 = 0
        var nextIndex: Int32 = 0   // the index just after the last span, for the next offset
        var i = 0
        while i < counts.count {
            guard counts[i] > 0 else { i += 1; continue }
            let index = first + Int32(i)
            if !spans.isEmpty && index - nextIndex <= 2 {
                // Fill the short gap with zeros inside the current span.
                for _ in 0..<(index - nextIndex) {
                    deltas.append(-previousCount)
                    previousCount = 0
                    spans[spans.count - 1].length += 1
                }
            } else {
                spans.append((offset: index - (spans.isEmpty ? 0 : nextIndex), length: 0))
            }
            deltas.append(Int64(counts[i]) - previousCount)
            previousCount = Int64(counts[i])
            spans[spans.count - 1].length += 1
            nextIndex = index + 1
            i += 1
        }
        return (spans, deltas)
    }
}

/// A series' native buckets: zero bucket, positive and negative sides.
struct NativeBuckets: Sendable, Equatable {
    var zeroCount: UInt64 = 0
    var positive = SparseBuckets()
    var negative = SparseBuckets()

    /// Counts `v` into its bucket. NaN goes into no bucket (only into the count and sum, which
    /// the series keeps), as in Prometheus.
    mutating func observe(_ v: Double) {
        if v.isNaN { return }
        let magnitude = abs(v)
        if magnitude <= NativeHistogram.zeroThreshold {
            zeroCount += 1
        } else if v > 0 {
            positive.add(NativeHistogram.clampedIndex(magnitude))
        } else {
            negative.add(NativeHistogram.clampedIndex(magnitude))
        }
    }
}
