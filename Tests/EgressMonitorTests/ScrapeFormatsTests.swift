import Foundation
import Testing
@testable import EgressMetrics
@testable import EgressMonitor
import EgressNet
import EgressSync
import EgressTestSupport

/// `/metrics` in each format a scrape can ask for, read back by the real peers: Prometheus 2.42
/// with `--enable-feature=native-histograms` (protobuf, native histograms), without it
/// (OpenMetrics, which 2.42 asks for first), curl (gzip) and promtool.
@Suite(.serialized) struct ScrapeFormatsTests {
    static let canRun = Lab.has("prometheus") && Lab.has("curl") && Lab.has("promtool")
    static let loopback = SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0)

    /// 1,000 TLS handshake durations, log-uniform from 5 ms to 2 s, and 20 connects, half of
    /// them under a millisecond (the zero bucket).
    static let tlsSeconds = (0..<1000).map { 0.005 * pow(400, Double($0) / 999) }
    static let connectSeconds: [Double] = (0..<20).map { (i: Int) -> Double in i < 10 ? 0.0001 * Double(i + 1) : 0.01 * Double(i) }

    /// The agent's routes over a store holding those observations, and the scrape headers seen.
    struct Agent {
        let server: HTTPServer
        let seen: Seen
        var address: String { "127.0.0.1:\(server.boundAddress.port)" }
    }

    final class Seen: Sendable {
        let requests = Mutex<[ScrapeRequest]>([])
        /// The `Accept` headers as they arrived, verbatim.
        let accepts = Mutex<Set<String>>([])
    }

    static func agent() throws -> Agent {
        let metrics = MetricStore(families: Catalogue.all)
        ProcessCollector.install(into: metrics)
        let results = ResultStore(metrics: metrics)
        for v in tlsSeconds { metrics.observe(Catalogue.phaseDuration, ["hub", "direct", "tls"], v) }
        for v in connectSeconds { metrics.observe(Catalogue.phaseDuration, ["hub", "direct", "connect"], v) }
        metrics.increment(Catalogue.probeRuns, ["hub", "direct"], by: 1000)
        let seen = Seen()
        let routes = Routes(results: results, reload: { nil })
        let server = try HTTPServer(listenOn: loopback) { request in
            if request.head.path == "/metrics" {
                let scrape = ScrapeRequest(accept: request.head.headers["Accept"], acceptEncoding: request.head.headers["Accept-Encoding"])
                seen.requests.withLock { $0.append(scrape) }
                seen.accepts.withLock { _ = $0.insert(request.head.headers["Accept"] ?? "") }
            }
            return await routes.handle(request)
        }
        server.start()
        return Agent(server: server, seen: seen)
    }

    /// The lab's Prometheus scraping `address` every second with `features`, as the shipped rules
    /// and dashboard expect: job `egress-monitor`, the target labelled `site="lab"`. With `rules`,
    /// it loads that rule file and evaluates it every second.
    static func prometheus(scraping address: String, features: [String], rules: String? = nil) async throws -> (LabPrometheus, PrometheusAPI) {
        let server = try await LabPrometheus.start(rulesFile: rules, sites: [("lab", address)],
                                                   arguments: features.map { "--enable-feature=\($0)" })
        return (server, PrometheusAPI(base: server.base))
    }

    /// `(upper bound, count)` of each native bucket of `values`, as the agent should have sent them.
    static func expectedNativeBuckets(_ values: [Double]) -> [Double: Int] {
        var out: [Double: Int] = [:]
        for v in values {
            let upper = v <= NativeHistogram.zeroThreshold ? NativeHistogram.zeroThreshold : NativeHistogram.upperBound(NativeHistogram.index(v))
            out[upper, default: 0] += 1
        }
        return out
    }

    /// The native histogram Prometheus returns for `selector`: count, sum, `upper bound -> count`.
    static func nativeHistogram(_ api: PrometheusAPI, _ selector: String) async throws -> (count: Double, sum: Double, buckets: [Double: Int])? {
        guard let data = try await api.get("/api/v1/query", [("query", selector)]) as? [String: Any],
              let result = (data["result"] as? [[String: Any]])?.first,
              let pair = result["histogram"] as? [Any], let h = pair.last as? [String: Any] else { return nil }
        var buckets: [Double: Int] = [:]
        for bucket in h["buckets"] as? [[Any]] ?? [] {
            guard bucket.count == 4, let upper = (bucket[2] as? String).flatMap(Double.init),
                  let count = (bucket[3] as? String).flatMap(Double.init) else { continue }
            buckets[upper, default: 0] += Int(count)
        }
        guard let count = (h["count"] as? String).flatMap(Double.init), let sum = (h["sum"] as? String).flatMap(Double.init) else { return nil }
        return (count, sum, buckets)
    }

    static func scalar(_ api: PrometheusAPI, _ query: String) async throws -> Double? {
        try await api.query(query).samples.first?.value
    }

    @Test(.enabled(if: canRun, "needs prometheus, promtool and curl (Debian prometheus, curl): SKIPPED, not passed"),
          .timeLimit(.minutes(2)))
    func prometheusReadsNativeHistogramsAndOpenMetrics() async throws {
        let agent = try Self.agent()
        defer { Task { await agent.server.stop() } }
        let (native, nativeAPI) = try await Self.prometheus(scraping: agent.address, features: ["native-histograms"])
        defer { native.stop() }
        let (classic, classicAPI) = try await Self.prometheus(scraping: agent.address, features: [])
        defer { classic.stop() }

        var tls: (count: Double, sum: Double, buckets: [Double: Int])?
        var connect: (count: Double, sum: Double, buckets: [Double: Int])?
        try await nativeAPI.waitFor("native histograms in the TSDB, classic buckets in the other", seconds: 30) {
            tls = try await Self.nativeHistogram(nativeAPI, #"egress_phase_duration_seconds{phase="tls"}"#)
            connect = try await Self.nativeHistogram(nativeAPI, #"egress_phase_duration_seconds{phase="connect"}"#)
            let classicBuckets = try await classicAPI.query(#"egress_phase_duration_seconds_bucket{phase="tls"}"#).series.count
            return tls != nil && connect != nil && classicBuckets == Catalogue.durationBuckets.count + 1
        }
        // What Prometheus decoded is what the agent recorded, bucket for bucket.
        for (name, values, decoded) in [("tls", Self.tlsSeconds, tls!), ("connect", Self.connectSeconds, connect!)] {
            #expect(decoded.count == Double(values.count), "\(name) count")
            #expect(abs(decoded.sum - values.reduce(0, +)) < 1e-9, "\(name) sum")
            #expect(decoded.buckets == Self.expectedNativeBuckets(values), "\(name) buckets: \(decoded.buckets.sorted { $0.key < $1.key })")
        }
        #expect(connect!.buckets[NativeHistogram.zeroThreshold] == 9, "0.1-0.9 ms in the zero bucket")

        // Quantiles: native within the schema's error (one bucket, 9.05 %) of the true one, and
        // both estimates inside the classic bucket that holds the true one.
        for q in [0.5, 0.9, 0.99] {
            let truth = Self.tlsSeconds[Int(q * Double(Self.tlsSeconds.count)) - 1]
            let nativeQ = try #require(try await Self.scalar(nativeAPI, #"histogram_quantile(\#(q), egress_phase_duration_seconds{phase="tls"})"#))
            let classicQ = try #require(try await Self.scalar(classicAPI, #"histogram_quantile(\#(q), egress_phase_duration_seconds_bucket{phase="tls"})"#))
            let hi = Catalogue.durationBuckets.first { $0 >= truth }!
            let lo = Catalogue.durationBuckets.last { $0 < truth } ?? 0
            #expect(abs(nativeQ - truth) / truth <= pow(2, 1.0 / 8) - 1, "q\(q): native \(nativeQ) vs true \(truth)")
            #expect(classicQ >= lo && classicQ <= hi && nativeQ >= lo * 0.95 && nativeQ <= hi * 1.05,
                    "q\(q): classic \(classicQ), native \(nativeQ), true \(truth) in (\(lo), \(hi)]")
            print("q\(q): true \(truth), native \(nativeQ) (\(String(format: "%+.1f", (nativeQ / truth - 1) * 100)) %), classic \(classicQ) (\(String(format: "%+.1f", (classicQ / truth - 1) * 100)) %)")
        }
        // Both scraped cleanly, and each got the format it asked for, gzipped.
        #expect(try await Self.scalar(nativeAPI, "up") == 1)
        #expect(try await Self.scalar(classicAPI, "up") == 1)
        #expect(try await Self.scalar(classicAPI, "egress_probe_runs_total") == 1000)
        let negotiated = Set(agent.seen.requests.withLock { $0 })
        #expect(negotiated == [ScrapeRequest(format: .protobuf, gzip: true), ScrapeRequest(format: .openMetrics, gzip: true)])
        // What Debian's Prometheus 2.42 sends, verbatim (README, "Scrape formats"): OpenMetrics
        // first without the feature flag, protobuf first with it; text 0.0.4 only at q=0.5.
        let accepts = agent.seen.accepts.withLock { $0 }
        print("Accept headers of Prometheus 2.42:\n  " + accepts.sorted().joined(separator: "\n  "))
        #expect(accepts == Self.prometheus242Accepts, "\(accepts)")
    }

    /// The `Accept` of a Prometheus 2.42 scrape, with and without `--enable-feature=native-histograms`.
    static let prometheus242Accepts: Set<String> = [
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
            + "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,"
            + "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
            + "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    ]

    /// Observes `values` into `family` under `labels` again and again, each batch in a fixed
    /// shuffled order (so a scrape that lands mid-batch sees a sample of the whole range, not
    /// its low end), until cancelled: rates over any window have the distribution of `values`.
    static func keepObserving(_ metrics: MetricStore, _ series: [(MetricFamily, [String], [Double])]) -> Task<Void, Never> {
        Task.detached {
            while !Task.isCancelled {
                for (family, labels, values) in series {
                    // 617 is prime to the batch sizes used here: i * 617 mod n visits every index once.
                    for i in values.indices { metrics.observe(family, labels, values[(i * 617) % values.count]) }
                }
                try? await Task.sleep(nanoseconds: 200_000_000)
            }
        }
    }

    /// The shipped recording rules and dashboard panels that take quantiles of histograms, on a
    /// Prometheus 2.42 with native histograms scraping protobuf, which then keeps no `_bucket`
    /// series at all: each rule's `or` half over the native histogram gives them their series,
    /// the same series a classic-only Prometheus records, with the same quantiles within the
    /// native schema's error.
    @Test(.enabled(if: canRun, "needs prometheus, promtool and curl (Debian prometheus, curl): SKIPPED, not passed"),
          .timeLimit(.minutes(2)))
    func shippedRulesWorkOnNativeOnlyIngestion() async throws {
        let metrics = MetricStore(families: Catalogue.all)
        let results = ResultStore(metrics: metrics)
        let lag = Self.tlsSeconds.map { $0 / 4 }
        let observing = Self.keepObserving(metrics, [
            (Catalogue.phaseDuration, ["hub", "direct", "tls"], Self.tlsSeconds),
            (Catalogue.phaseDuration, ["hub", "direct", "connect"], Self.connectSeconds),
            (Catalogue.schedulerLag, [], lag)])
        defer { observing.cancel() }
        let routes = Routes(results: results, reload: { nil })
        let server = try HTTPServer(listenOn: Self.loopback) { await routes.handle($0) }
        server.start()
        defer { Task { await server.stop() } }
        let address = "127.0.0.1:\(server.boundAddress.port)"

        let (native, nativeAPI) = try await Self.prometheus(scraping: address, features: ["native-histograms"],
                                                            rules: OpsTests.rulesFile)
        defer { native.stop() }
        let (classic, classicAPI) = try await Self.prometheus(scraping: address, features: [],
                                                              rules: OpsTests.rulesFile)
        defer { classic.stop() }

        // The quantile rules: 3 quantiles each, of 2 phases (per instance and per site) and of the lag.
        let quantileRules = ["instance_target_path_phase:egress_phase_duration_seconds:quantile_rate5m": 6,
                             "site_target_path_phase:egress_phase_duration_seconds:quantile_rate5m": 6,
                             "instance:egress_scheduler_lag_seconds:quantile_rate5m": 3]
        var found: [String: (native: Int, classic: Int)] = [:]
        do {
            try await nativeAPI.waitFor("every quantile rule's series in both", seconds: 60) {
                for (rule, _) in quantileRules {
                    found[rule] = (try await nativeAPI.query(rule).series.count, try await classicAPI.query(rule).series.count)
                }
                return quantileRules.allSatisfy { found[$0.key]! == ($0.value, $0.value) }
            }
        } catch {
            Issue.record("series per rule (native, classic), expected \(quantileRules): \(found)")
            throw error
        }
        // Native-only: the native Prometheus holds no classic bucket, the classic one no native
        // histogram; each rule found its own half.
        #expect(try await nativeAPI.query("egress_phase_duration_seconds_bucket").isEmpty)
        #expect(try await nativeAPI.query("egress_scheduler_lag_seconds_bucket").isEmpty)
        #expect(try await Self.nativeHistogram(nativeAPI, #"egress_phase_duration_seconds{phase="tls"}"#) != nil)
        #expect(try await classicAPI.query("egress_phase_duration_seconds").isEmpty)

        for (rule, _) in quantileRules.sorted(by: { $0.key < $1.key }) {
            let nativeAnswer = try await nativeAPI.query(rule)
            let classicAnswer = try await classicAPI.query(rule)
            #expect(Set(nativeAnswer.series) == Set(classicAnswer.series), "\(rule): \(nativeAnswer.series) vs \(classicAnswer.series)")
            // Values where the truth is known: tls and the lag, log-uniform.
            for sample in nativeAnswer.samples where sample.labels["phase"] == "tls" || rule.hasPrefix("instance:") {
                let q = try #require(sample.labels["quantile"].flatMap(Double.init))
                let values = rule.hasPrefix("instance:") ? lag : Self.tlsSeconds
                let bounds = rule.hasPrefix("instance:") ? Catalogue.schedulerLag.buckets : Catalogue.durationBuckets
                let truth = values[Int(q * Double(values.count)) - 1]
                let classicValue = try #require(classicAnswer.samples.first { $0.labels == sample.labels }?.value)
                let hi = bounds.first { $0 >= truth }!
                let lo = bounds.last { $0 < truth } ?? 0
                #expect(abs(sample.value - truth) / truth <= pow(2, 1.0 / 8) - 1, "\(rule) q\(q): native \(sample.value) vs true \(truth)")
                #expect(classicValue >= lo && classicValue <= hi && sample.value >= lo * 0.95 && sample.value <= hi * 1.05,
                        "\(rule) q\(q): classic \(classicValue), native \(sample.value), true \(truth) in (\(lo), \(hi)]")
                print("\(rule) q\(q): true \(truth), native \(sample.value), classic \(classicValue)")
            }
        }

        // Every dashboard query over a histogram answers on both, with the same series.
        let dashboard = try Dashboard(path: OpsTests.dashboardFile)
        let all = ["site": ".*", "instance": ".*", "target": ".*", "path": ".*"]
        let histogramQueries = dashboard.queries.filter { $0.expression.contains("histogram_quantile") }
        #expect(histogramQueries.count >= 5)
        for query in histogramQueries {
            let expression = Dashboard.substitute(query.expression, all)
            let nativeAnswer = try await nativeAPI.query(expression)
            let classicAnswer = try await classicAPI.query(expression)
            #expect(!nativeAnswer.isEmpty && Set(nativeAnswer.series) == Set(classicAnswer.series),
                    "\(query.name) on native-only: \(nativeAnswer.summary), classic: \(classicAnswer.summary)")
        }
    }

    static func curl(_ address: String, _ arguments: [String]) async throws -> (headers: String, body: [UInt8]) {
        let directory = try Lab.makeDirectory("scrape-curl")
        defer { Lab.removeDirectory(directory) }
        try await Lab.runAsync("curl", ["-sS", "--noproxy", "*", "--max-time", "10", "-D", directory + "/h", "-o", directory + "/b"]
            + arguments + ["http://\(address)/metrics"])
        let headers = try String(contentsOfFile: directory + "/h", encoding: .utf8)
        let body = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/b")))
        return (headers.lowercased(), body)
    }

    @Test(.enabled(if: canRun, "needs curl and promtool: SKIPPED, not passed"))
    func curlDecodesGzipAndHostileHeadersGetText() async throws {
        let agent = try Self.agent()
        defer { Task { await agent.server.stop() } }
        // gzip, decoded by curl.
        let gz = try await Self.curl(agent.address, ["--compressed"])
        #expect(gz.headers.contains("content-encoding: gzip"))
        let text = String(decoding: gz.body, as: UTF8.self)
        #expect(text.hasPrefix("# HELP ") && text.hasSuffix("\n") && text.contains(#"egress_phase_duration_seconds_count{target="hub",path="direct",phase="tls"} 1000"#))
        let raw = try await Self.curl(agent.address, ["-H", "Accept-Encoding: gzip"])
        #expect(gunzip(raw.body).map { String(decoding: $0, as: UTF8.self).hasPrefix("# HELP ") } == true)

        // Hostile or malformed: 200, text 0.0.4, never gzip unless it was clearly asked for.
        let hostile = ["Accept: application/openmetrics-text;q=nan", "Accept: ;;;;", "Accept: " + String(repeating: "a/b;q=0.1,", count: 700),
                       "Accept: application/vnd.google.protobuf;proto=other;encoding=delimited", "Accept-Encoding: gzip;q=zz",
                       "Accept-Encoding: " + String(repeating: "x", count: 6000), "Accept: \u{80}\u{ff}application/json", "Accept-Encoding: gzip;q=0"]
        for header in hostile {
            let answer = try await Self.curl(agent.address, ["-H", header])
            #expect(answer.headers.hasPrefix("http/1.1 200"), "\(header.prefix(60)): \(answer.headers)")
            #expect(answer.headers.contains("content-type: text/plain; version=0.0.4"), "\(header.prefix(60))")
            #expect(!answer.headers.contains("content-encoding"), "\(header.prefix(60))")
            #expect(String(decoding: answer.body, as: UTF8.self).hasPrefix("# HELP "))
        }

        // Control bytes are not a header value HTTP allows: the listener's parser answers 400
        // before any route runs (a classified refusal, as for any malformed head).
        let control = try await Self.curl(agent.address, ["-H", "Accept: \u{1}\u{7f}"])
        #expect(control.headers.hasPrefix("http/1.1 400"), "\(control.headers)")

        // OpenMetrics: # EOF last; promtool (2.42 reads text 0.0.4 only) parses it, and its only
        // findings are the counters' `_total` samples, which OpenMetrics names apart from their
        // family and a 0.0.4 reader therefore sees without HELP.
        let om = try await Self.curl(agent.address, ["-H", "Accept: application/openmetrics-text; version=1.0.0"])
        #expect(om.headers.contains("content-type: application/openmetrics-text; version=1.0.0"))
        let omText = String(decoding: om.body, as: UTF8.self)
        #expect(omText.hasSuffix("\n# EOF\n"))
        #expect(omText.contains("# TYPE egress_probe_runs counter\n"))
        let directory = try Lab.makeDirectory("scrape-promtool")
        defer { Lab.removeDirectory(directory) }
        try Data(om.body).write(to: URL(fileURLWithPath: directory + "/om.txt"))
        let output = try await Lab.runAsync("sh", ["-c", "promtool check metrics < '\(directory)/om.txt' 2>&1; echo \"exit=$?\""])
        let lines = output.split(separator: "\n")
        #expect(lines.last != "exit=1", "promtool could not parse the OpenMetrics exposition: \(output)")
        let counters = Set(Catalogue.all.filter { $0.type == .counter }.map(\.name))
        for line in lines.dropLast() {
            let name = line.split(separator: " ").first.map(String.init) ?? ""
            #expect(counters.contains(name) && line.hasSuffix("no help text"), "promtool: \(line)")
        }
    }
}
