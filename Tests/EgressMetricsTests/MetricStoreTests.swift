import Testing
@testable import EgressMetrics

@Suite("MetricStore")
struct MetricStoreTests {
    @Test("removeSeries drops every series of a target x path pair, across families")
    func removeSeriesByLabels() {
        let store = MetricStore(families: Fixture.all)
        for target in ["hub", "lab"] {
            for path in ["direct", "vpn"] {
                store.increment(Fixture.runs, [target, path])
                store.increment(Fixture.failures, [target, path, "tls", "tls_reset"])
                store.set(Fixture.success, [target, path], 0)
                store.observe(Fixture.duration, [target, path], 0.5)
            }
        }
        store.set(Fixture.buildInfo, ["1.0"], 1)
        store.removeSeries { $0["target"] == "hub" && $0["path"] == "vpn" }

        #expect(store.value(Fixture.runs, ["hub", "vpn"]) == nil)
        #expect(store.value(Fixture.failures, ["hub", "vpn", "tls", "tls_reset"]) == nil)
        #expect(store.value(Fixture.success, ["hub", "vpn"]) == nil)
        #expect(store.histogramSnapshot(Fixture.duration, ["hub", "vpn"]) == nil)
        #expect(store.value(Fixture.runs, ["hub", "direct"]) == 1)
        #expect(store.value(Fixture.runs, ["lab", "vpn"]) == 1)
        #expect(store.value(Fixture.buildInfo, ["1.0"]) == 1)
        let text = store.render()
        #expect(!text.contains(#"target="hub",path="vpn""#))
        #expect(text.contains(#"egress_probe_runs_total{target="lab",path="vpn"} 1"#))

        // Everything for a target, whatever the path.
        store.removeSeries { $0["target"] == "lab" }
        #expect(!store.render().contains(#"target="lab""#))
        // A series removed and re-created starts again from zero.
        store.increment(Fixture.runs, ["hub", "vpn"])
        #expect(store.value(Fixture.runs, ["hub", "vpn"]) == 1)
    }

    @Test("remove drops one series and leaves its neighbours")
    func removeOne() {
        let store = MetricStore(families: [Fixture.runs])
        store.increment(Fixture.runs, ["a", "x"])
        store.increment(Fixture.runs, ["b", "x"], by: 2)
        store.increment(Fixture.runs, ["c", "x"], by: 3)
        store.remove(Fixture.runs, ["a", "x"])
        store.remove(Fixture.runs, ["zzz", "x"]) // absent: no effect
        #expect(store.value(Fixture.runs, ["a", "x"]) == nil)
        #expect(store.value(Fixture.runs, ["b", "x"]) == 2)
        #expect(store.value(Fixture.runs, ["c", "x"]) == 3)
        #expect(store.render() == """
            # HELP egress_probe_runs_total Probe rounds finished.
            # TYPE egress_probe_runs_total counter
            egress_probe_runs_total{target="b",path="x"} 2
            egress_probe_runs_total{target="c",path="x"} 3

            """)
    }

    @Test("touch makes counters and histograms exist at zero, keeps existing values, ignores gauges")
    func touch() {
        let store = MetricStore(families: Fixture.all)
        store.touch(Fixture.runs, ["hub", "direct"])
        store.touch(Fixture.lag, [])
        store.touch(Fixture.success, ["hub", "direct"])
        #expect(store.value(Fixture.runs, ["hub", "direct"]) == 0)
        #expect(store.value(Fixture.success, ["hub", "direct"]) == nil)
        #expect(store.render() == """
            # HELP egress_probe_runs_total Probe rounds finished.
            # TYPE egress_probe_runs_total counter
            egress_probe_runs_total{target="hub",path="direct"} 0
            # HELP egress_scheduler_lag_seconds How late probe rounds start.
            # TYPE egress_scheduler_lag_seconds histogram
            egress_scheduler_lag_seconds_bucket{le="0.01"} 0
            egress_scheduler_lag_seconds_bucket{le="0.1"} 0
            egress_scheduler_lag_seconds_bucket{le="+Inf"} 0
            egress_scheduler_lag_seconds_sum 0
            egress_scheduler_lag_seconds_count 0

            """)
        store.increment(Fixture.runs, ["hub", "direct"], by: 5)
        store.touch(Fixture.runs, ["hub", "direct"])
        #expect(store.value(Fixture.runs, ["hub", "direct"]) == 5)
        store.set(Fixture.success, ["hub", "direct"], 1)
        store.touch(Fixture.success, ["hub", "direct"])
        #expect(store.value(Fixture.success, ["hub", "direct"]) == 1)
    }

    @Test("increments from many tasks at once add up exactly")
    func concurrentIncrements() async {
        let store = MetricStore(families: [Fixture.runs, Fixture.lag])
        let tasks = 64, perTask = 2_000
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<tasks {
                group.addTask {
                    for i in 0..<perTask {
                        store.increment(Fixture.runs, ["hub", "direct"])
                        store.increment(Fixture.runs, ["hub", "path\(t % 4)"], by: 0.5)
                        store.observe(Fixture.lag, Double(i % 3) * 0.05)
                        if i % 100 == 0 { _ = store.render() }
                    }
                }
            }
        }
        #expect(store.value(Fixture.runs, ["hub", "direct"]) == Double(tasks * perTask))
        for p in 0..<4 {
            #expect(store.value(Fixture.runs, ["hub", "path\(p)"]) == Double(tasks / 4 * perTask) * 0.5)
        }
        #expect(store.histogramSnapshot(Fixture.lag, [])?.count == UInt64(tasks * perTask))
    }

    @Test("collectors run at every render, before formatting")
    func collectors() {
        let store = MetricStore(families: [Fixture.reloadOK, Fixture.runs])
        store.addCollector { $0.increment(Fixture.runs, ["collector", "x"]) }
        store.addCollector { store in
            // Collectors may read the store: they run outside its lock.
            store.set(Fixture.reloadOK, store.value(Fixture.runs, ["collector", "x"]) ?? -1)
        }
        _ = store.render()
        let text = store.render()
        #expect(text.contains("egress_config_last_reload_successful 2\n"))
        #expect(text.contains(#"egress_probe_runs_total{target="collector",path="x"} 2"#))
    }

    #if DEBUG
    #else
    @Test("negative and NaN increments are ignored in release builds")
    func negativeIncrement() {
        let store = MetricStore(families: [Fixture.runs])
        store.increment(Fixture.runs, ["a", "b"], by: 2)
        store.increment(Fixture.runs, ["a", "b"], by: -1)
        store.increment(Fixture.runs, ["a", "b"], by: .nan)
        #expect(store.value(Fixture.runs, ["a", "b"]) == 2)
    }
    #endif
}

/// Programmer errors trap. Each case runs in a child process (a Swift Testing exit test), and
/// each asserts the precondition that stopped it, by its message on the child's stderr: a trap
/// for another reason (an index out of range after a check went missing) is not the one meant.
@Suite("Programmer errors trap")
struct PreconditionTests {
    /// Checks that the child failed with `message` on its stderr. Release builds print no
    /// precondition message (`-O` keeps the trap, drops the text), so there only the failure counts.
    static func expectReason(_ result: ExitTest.Result?, _ message: String,
                             sourceLocation: SourceLocation = #_sourceLocation) {
        guard let result else {
            Issue.record("the child did not fail", sourceLocation: sourceLocation)
            return
        }
        #if DEBUG
        let stderr = String(decoding: result.standardErrorContent, as: UTF8.self)
        // "…/MetricFamily.swift:48: Precondition failed: <message>" (or "Fatal error:" from
        // preconditionFailure, "Assertion failed:" from a debug-only assert).
        let traps = ["Precondition failed: ", "Fatal error: ", "Assertion failed: "]
        #expect(traps.contains { stderr.contains($0 + message) }, "stderr: \(stderr)", sourceLocation: sourceLocation)
        #endif
    }

    @Test func counterWithoutTotal() async {
        Self.expectReason(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = MetricFamily(name: "egress_runs", help: "h", type: .counter)
        }, "counter egress_runs must end in _total")
    }

    @Test func invalidNames() async {
        Self.expectReason(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = MetricFamily(name: "egress-runs", help: "h", type: .gauge)
        }, #"metric name "egress-runs" must match"#)
        Self.expectReason(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = MetricFamily(name: "g", help: "h", type: .gauge, labelNames: ["__reserved"])
        }, "label name __reserved of g: the __ prefix is reserved")
        Self.expectReason(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = MetricFamily(name: "g", help: "h", type: .gauge, labelNames: ["9lives"])
        }, #"label name "9lives" of g must match"#)
        Self.expectReason(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = MetricFamily(name: "g", help: "h", type: .gauge, labelNames: ["a", "a"])
        }, "label name a repeated in g")
    }

    @Test func badHistograms() async {
        Self.expectReason(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = MetricFamily(name: "h", help: "h", type: .histogram, labelNames: ["le"], buckets: [1])
        }, "histogram h cannot use the label name le")
        Self.expectReason(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = MetricFamily(name: "h", help: "h", type: .histogram, buckets: [])
        }, "histogram h needs at least one bucket")
        Self.expectReason(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = MetricFamily(name: "h", help: "h", type: .histogram, buckets: [1, 1])
        }, "histogram h: buckets must be strictly increasing")
        Self.expectReason(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = MetricFamily(name: "h", help: "h", type: .histogram, buckets: [1, .infinity])
        }, "histogram h: bucket bounds must be finite")
    }

    @Test func registration() async {
        Self.expectReason(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = MetricStore(families: [Fixture.runs, Fixture.runs])
        }, "metric family egress_probe_runs_total registered twice")
        Self.expectReason(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let other = MetricFamily(name: "egress_probe_duration_seconds_count", help: "h", type: .gauge)
            _ = MetricStore(families: [Fixture.duration, other])
        }, "metric families egress_probe_duration_seconds and egress_probe_duration_seconds_count both print samples named egress_probe_duration_seconds_count")
    }

    @Test func misuse() async {
        Self.expectReason(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            MetricStore(families: [Fixture.runs]).increment(Fixture.runs, ["only-one"])
        }, "egress_probe_runs_total takes 2 label values")
        Self.expectReason(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            MetricStore(families: [Fixture.runs]).set(Fixture.success, ["a", "b"], 1)
        }, "metric family egress_probe_success is not registered in this store")
        // Observed as a histogram through the registered (gauge) descriptor: the type check
        // traps, not the debug-only check that a descriptor is the registered one.
        Self.expectReason(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            MetricStore(families: [Fixture.success]).observe(Fixture.success, ["a", "b"], 1)
        }, "egress_probe_success is a gauge, not a histogram")
        Self.expectReason(await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let wrongType = MetricFamily(name: "egress_probe_success", help: "x", type: .histogram, buckets: [1])
            MetricStore(families: [Fixture.success]).observe(wrongType, 1)
        }, "metric family egress_probe_success used with a descriptor other than the registered one")
    }
}
