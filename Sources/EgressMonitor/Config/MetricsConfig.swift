import EgressMetrics

/// The `metrics` config section: the operator's cardinality budget.
///
/// ```json
/// "metrics": {"phase_histograms": ["connect", "tls", "http"], "histogram_buckets": "native"}
/// ```
/// - `phase_histograms`: the phases whose `egress_phase_duration_seconds` series are exported
///   (default: every phase; `[]`: none). The whole-round `egress_probe_duration_seconds` stays.
/// - `histogram_buckets`: `"classic"` (the 16 fixed bounds, in every format), `"native"` (the
///   sparse exponential buckets, which only the protobuf exposition carries; text keeps `+Inf`,
///   `_sum` and `_count`) or `"classic+native"` (the default: text as before, protobuf both).
///
/// Default as before this section existed, so nothing breaks.
public struct MetricsConfig: Sendable, Equatable {
    /// Which buckets the duration histograms export.
    public enum Buckets: String, Sendable, Equatable, CaseIterable {
        case classic
        case native
        case classicAndNative = "classic+native"

        var classic: Bool { self != .native }
        var native: Bool { self != .classic }
    }

    /// Phases whose duration histograms are exported.
    public var phaseHistograms: Set<Phase> = Set(Phase.allCases)
    public var histogramBuckets: Buckets = .classicAndNative

    public init(phaseHistograms: Set<Phase> = Set(Phase.allCases), histogramBuckets: Buckets = .classicAndNative) {
        self.phaseHistograms = phaseHistograms
        self.histogramBuckets = histogramBuckets
    }

    /// The duration histograms the section governs.
    static var histograms: [MetricFamily] { [Catalogue.probeDuration, Catalogue.phaseDuration] }

    /// Applies the bucket choice to `store`.
    func apply(to store: MetricStore) {
        for family in Self.histograms {
            store.setHistogramExport(family, classic: histogramBuckets.classic, native: histogramBuckets.native)
        }
    }
}

extension Validator {
    static let metricsFields = ["phase_histograms", "histogram_buckets"]

    /// The `metrics` section; the default where it is absent.
    mutating func metricsConfig(_ value: JSONValue?) -> MetricsConfig {
        var config = MetricsConfig()
        guard let value, let dict = object(value, at: "metrics", fields: Self.metricsFields) else { return config }
        if let items = array(dict, "phase_histograms", at: "metrics") {
            var phases = Set<Phase>()
            for (i, item) in items.enumerated() {
                let at = "metrics.phase_histograms[\(i)]"
                guard case .string(let name) = item else {
                    fail(at, "expected a phase name, found \(item.kindName)")
                    continue
                }
                guard let phase = Phase(rawValue: name) else {
                    fail(at, "\"\(name)\" is not a phase (expected one of: \(Phase.allCases.map(\.rawValue).joined(separator: ", ")))")
                    continue
                }
                guard phases.insert(phase).inserted else {
                    fail(at, "\"\(name)\" is listed twice")
                    continue
                }
            }
            config.phaseHistograms = phases
        }
        if let text = string(dict, "histogram_buckets", at: "metrics") {
            if let buckets = MetricsConfig.Buckets(rawValue: text) { config.histogramBuckets = buckets } else {
                fail("metrics.histogram_buckets", "\"\(text)\" is not a bucket set (expected one of: \(MetricsConfig.Buckets.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
        }
        return config
    }
}
