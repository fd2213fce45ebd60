import Foundation
import Testing
@testable import EgressMetrics
@testable import EgressMonitor

/// Issue 18's byte and series budget, measured on the agent's own catalogue at the design's
/// scale: 2,000 target x path pairs (500 registry targets x 4 paths), each with the series a
/// registry round leaves (7 phases).
@Suite struct ExpositionSizeTests {
    static let phases: [Phase] = [.dns, .connect, .tls, .http, .auth, .manifest, .blob]

    static func fleetStore() -> MetricStore {
        let store = MetricStore(families: Catalogue.all)
        var seed: UInt64 = 42
        func random() -> Double {   // deterministic, so the figures repeat
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Double(seed >> 11) / Double(1 << 53)
        }
        for t in 0..<500 {
            for path in ["direct", "vpn", "corp", "clash"] {
                let pair = ["t\(String(format: "%03d", t)).bench.test", path]
                store.increment(Catalogue.probeRuns, pair, by: 12)
                store.set(Catalogue.probeSuccess, pair, 1)
                store.set(Catalogue.lastSuccess, pair, 1_765_000_000 + random() * 30)
                store.set(Catalogue.certNotAfter, pair, 1_790_000_000)
                store.set(Catalogue.tlsInfo, pair + ["TLSv1.3", "TLS_AES_128_GCM_SHA256"], 1)
                store.set(Catalogue.pathPreferred, pair, path == "direct" ? 1 : 0)
                for _ in 0..<12 {
                    // Latencies spread over one doubling around a per-pair base, as one path's are.
                    let base = 0.005 * pow(2, Double(t % 8))
                    var total = 0.0
                    for phase in Self.phases {
                        let v = base * (1 + random())
                        total += v
                        store.observe(Catalogue.phaseDuration, pair + [phase.rawValue], v)
                    }
                    store.observe(Catalogue.probeDuration, pair, total)
                }
            }
        }
        return store
    }

    /// Samples Prometheus stores for a text scrape: every sample line.
    static func classicSeries(_ text: String) -> Int {
        text.split(separator: "\n").filter { !$0.hasPrefix("#") }.count
    }

    /// Series Prometheus stores when it takes native histograms only: one per histogram series,
    /// one per other sample.
    static func nativeSeries(_ text: String) -> Int {
        text.split(separator: "\n").filter { line in
            !line.hasPrefix("#") && !line.contains("_bucket{") && !line.contains("_sum{") && !line.contains("_sum ")
        }.count
    }

    @Test func twoThousandPairsFitTheBudget() async {
        let store = Self.fleetStore()
        let text = store.renderBytes(.prometheusText)
        // Compressed as the listener serves it: streamed through the render.
        var gzip: [UInt8] = []
        await store.render(as: .prometheusText, gzip: true) { (piece: UnsafeBufferPointer<UInt8>) in gzip += piece }
        let protobuf = store.renderBytes(.protobuf)
        let textString = String(decoding: text, as: UTF8.self)
        let classic = Self.classicSeries(textString), native = Self.nativeSeries(textString)
        print(String(format: "2,000 pairs: text %.2f MB, gzip %.2f MB (1/%.1f), protobuf+native %.2f MB; series classic %d (%.1f per pair), native-only %d (%.1f per pair, 1/%.1f)",
                     Double(text.count) / 1e6, Double(gzip.count) / 1e6, Double(text.count) / Double(gzip.count),
                     Double(protobuf.count) / 1e6, classic, Double(classic) / 2000, native, Double(native) / 2000,
                     Double(classic) / Double(native)))
        #expect(gzip.count * 8 <= text.count, "gzip must be at most 1/8 of the text")
        #expect(native * 8 <= classic, "native-only must be at most 1/8 of the classic series")
        #expect(gunzip(gzip) == text)
    }
}
