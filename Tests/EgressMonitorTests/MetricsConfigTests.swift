import Foundation
import Testing
@testable import EgressMetrics
@testable import EgressMonitor

/// The `metrics` section: its validation with field paths, and what it does to the store.
@Suite struct MetricsConfigTests {
    static let base = #""targets": [{"name": "t", "kind": "tcp", "url": "tcp://127.0.0.1:1"}]"#

    static func decode(_ metrics: String) throws(ConfigError) -> AgentConfig {
        try ConfigLoader.decode(Data("{\(base), \"metrics\": \(metrics)}".utf8))
    }

    @Test func absentMeansTodaysExport() throws {
        let config = try ConfigLoader.decode(Data("{\(Self.base)}".utf8))
        #expect(config.metrics == MetricsConfig())
        #expect(config.metrics.phaseHistograms == Set(Phase.allCases))
        #expect(config.metrics.histogramBuckets == .classicAndNative)
    }

    @Test func decodesPhasesAndBuckets() throws {
        let config = try Self.decode(#"{"phase_histograms": ["connect", "tls"], "histogram_buckets": "native"}"#)
        #expect(config.metrics.phaseHistograms == [.connect, .tls])
        #expect(config.metrics.histogramBuckets == .native)
        #expect(try Self.decode(#"{"phase_histograms": []}"#).metrics.phaseHistograms.isEmpty)
    }

    @Test("bad input names its field", arguments: [
        (#"{"phase_histograms": ["tls", "handshake"]}"#, "metrics.phase_histograms[1]", "is not a phase"),
        (#"{"phase_histograms": ["tls", "tls"]}"#, "metrics.phase_histograms[1]", "listed twice"),
        (#"{"phase_histograms": [3]}"#, "metrics.phase_histograms[0]", "expected a phase name"),
        (#"{"phase_histograms": "tls"}"#, "metrics.phase_histograms", "expected an array"),
        (#"{"histogram_buckets": "sparse"}"#, "metrics.histogram_buckets", "not a bucket set"),
        (#"{"buckets": "native"}"#, "metrics.buckets", "unknown field"),
        (#"[]"#, "metrics", "expected an object"),
    ])
    func badInput(json: String, path: String, message: String) {
        do {
            _ = try Self.decode(json)
            Issue.record("accepted \(json)")
        } catch {
            #expect(error.issues.contains { $0.path == path && $0.message.contains(message) }, "\(json): \(error.issues)")
        }
    }

    @Test func applyingDropsUnwantedPhasesAndClassicBuckets() {
        let store = MetricStore(families: Catalogue.all)
        let results = ResultStore(metrics: store)
        store.observe(Catalogue.phaseDuration, ["t", "direct", "dns"], 0.01)
        store.observe(Catalogue.phaseDuration, ["t", "direct", "tls"], 0.02)
        store.observe(Catalogue.probeDuration, ["t", "direct"], 0.03)
        results.applyMetricsConfig(MetricsConfig(phaseHistograms: [.tls], histogramBuckets: .native))
        let text = store.render()
        #expect(!text.contains(#"phase="dns""#))
        #expect(text.contains(#"egress_phase_duration_seconds_bucket{target="t",path="direct",phase="tls",le="+Inf"} 1"#))
        #expect(!text.contains(#"le="0.001""#), "classic buckets still in text")
        results.applyMetricsConfig(MetricsConfig())
        #expect(store.render().contains(#"egress_probe_duration_seconds_bucket{target="t",path="direct",le="0.05"} 1"#))
    }
}
