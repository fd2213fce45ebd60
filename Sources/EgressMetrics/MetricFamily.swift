/// The kind of a metric family, as printed on its `# TYPE` line.
public enum MetricType: String, Sendable {
    /// A value that only goes up (resets only when the process restarts). Names end in `_total`.
    case counter
    /// A value that is set, and may go up and down.
    case gauge
    /// Observations counted into cumulative buckets, with their sum and count.
    case histogram
}

/// The descriptor of one metric family: its name, help text, type, label names and, for a
/// histogram, its bucket upper bounds.
///
/// Descriptors are declared once, in the product's catalogue, and passed to a ``MetricStore``.
/// The initialiser validates the descriptor and traps on a programmer error, so a bad name can
/// never reach the exposition:
/// - `name` matches `[a-zA-Z_][a-zA-Z0-9_]*` (no colons: those are for recording rules);
/// - every label name matches `[a-zA-Z_][a-zA-Z0-9_]*`, does not start with `__`, appears once,
///   and is not `le` on a histogram;
/// - a counter's name ends in `_total`;
/// - a histogram has at least one bucket; its bounds are finite and strictly increasing (the
///   `+Inf` bucket is implicit and must not be listed); other types have no buckets;
/// - `help` is not empty (`promtool check metrics` flags a family without help).
public struct MetricFamily: Sendable, Hashable {
    /// The family name, e.g. `egress_probe_runs_total`.
    public let name: String
    /// The text printed on the `# HELP` line (escaped on output).
    public let help: String
    /// Counter, gauge or histogram.
    public let type: MetricType
    /// The label names, in the order label values are passed and printed.
    public let labelNames: [String]
    /// Histogram bucket upper bounds, strictly increasing, without `+Inf`. Empty for other types.
    public let buckets: [Double]

    /// Creates and validates a descriptor; traps if it breaks a rule listed on ``MetricFamily``.
    public init(name: String, help: String, type: MetricType, labelNames: [String] = [], buckets: [Double] = []) {
        precondition(MetricFamily.isValidName(name), "metric name \(name.debugDescription) must match [a-zA-Z_][a-zA-Z0-9_]*")
        precondition(!help.isEmpty, "metric \(name) needs a help text")
        var seen = Set<String>()
        for label in labelNames {
            precondition(MetricFamily.isValidName(label), "label name \(label.debugDescription) of \(name) must match [a-zA-Z_][a-zA-Z0-9_]*")
            precondition(!label.hasPrefix("__"), "label name \(label) of \(name): the __ prefix is reserved")
            precondition(seen.insert(label).inserted, "label name \(label) repeated in \(name)")
        }
        switch type {
        case .counter:
            precondition(name.hasSuffix("_total"), "counter \(name) must end in _total")
            precondition(buckets.isEmpty, "counter \(name) cannot have buckets")
        case .gauge:
            precondition(buckets.isEmpty, "gauge \(name) cannot have buckets")
        case .histogram:
            precondition(!labelNames.contains("le"), "histogram \(name) cannot use the label name le")
            precondition(!buckets.isEmpty, "histogram \(name) needs at least one bucket")
            for (i, bound) in buckets.enumerated() {
                precondition(bound.isFinite, "histogram \(name): bucket bounds must be finite (+Inf is implicit)")
                precondition(i == 0 || buckets[i - 1] < bound, "histogram \(name): buckets must be strictly increasing")
            }
        }
        self.name = name
        self.help = help
        self.type = type
        self.labelNames = labelNames
        self.buckets = buckets
    }

    /// The names of the sample lines this family prints: itself, or for a histogram
    /// `name_bucket`, `name_sum` and `name_count`.
    var sampleNames: [String] {
        switch type {
        case .counter, .gauge: [name]
        case .histogram: [name + "_bucket", name + "_sum", name + "_count"]
        }
    }

    /// Whether `s` matches `[a-zA-Z_][a-zA-Z0-9_]*`.
    static func isValidName(_ s: String) -> Bool {
        var first = true
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"):
                break
            case UInt8(ascii: "0")...UInt8(ascii: "9") where !first:
                break
            default:
                return false
            }
            first = false
        }
        return !first
    }
}
