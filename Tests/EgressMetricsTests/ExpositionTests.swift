import Testing
@testable import EgressMetrics

@Suite("Text exposition 0.0.4")
struct ExpositionTests {
    @Test("counter: HELP, TYPE, labelled samples in label order")
    func counter() {
        let store = MetricStore(families: [Fixture.runs])
        store.increment(Fixture.runs, ["hub", "vpn"])
        store.increment(Fixture.runs, ["hub", "direct"], by: 2)
        store.increment(Fixture.runs, ["hub", "direct"])
        #expect(store.render() == """
            # HELP egress_probe_runs_total Probe rounds finished.
            # TYPE egress_probe_runs_total counter
            egress_probe_runs_total{target="hub",path="direct"} 3
            egress_probe_runs_total{target="hub",path="vpn"} 1

            """)
    }

    @Test("gauge: fractional, negative, large and unlabelled values")
    func gauge() {
        let store = MetricStore(families: [Fixture.success, Fixture.reloadOK, Fixture.buildInfo])
        store.set(Fixture.success, ["a", "direct"], 1)
        store.set(Fixture.success, ["a", "proxy"], 0)
        store.set(Fixture.success, ["b", "direct"], -2.5)
        store.set(Fixture.success, ["c", "direct"], 1_700_000_000.25)
        store.set(Fixture.reloadOK, 1)
        store.set(Fixture.success, ["a", "proxy"], 0.5) // overwrites
        store.set(Fixture.buildInfo, ["1.0.0"], 1)
        #expect(store.render() == """
            # HELP egress_build_info Build information; always 1.
            # TYPE egress_build_info gauge
            egress_build_info{version="1.0.0"} 1
            # HELP egress_config_last_reload_successful 1 if the last config reload succeeded.
            # TYPE egress_config_last_reload_successful gauge
            egress_config_last_reload_successful 1
            # HELP egress_probe_success 1 if the last probe round succeeded, else 0.
            # TYPE egress_probe_success gauge
            egress_probe_success{target="a",path="direct"} 1
            egress_probe_success{target="a",path="proxy"} 0.5
            egress_probe_success{target="b",path="direct"} -2.5
            egress_probe_success{target="c",path="direct"} 1.70000000025e+09

            """)
    }

    @Test("histogram: cumulative buckets, le last, +Inf equals count, then sum and count")
    func histogram() {
        let store = MetricStore(families: [Fixture.duration, Fixture.lag])
        for v in [0.25, 0.5, 0.5, 4] { store.observe(Fixture.duration, ["hub", "direct"], v) }
        store.observe(Fixture.lag, 0.001)
        store.observe(Fixture.lag, 0.1) // le is inclusive
        #expect(store.render() == """
            # HELP egress_probe_duration_seconds Duration of a whole probe round.
            # TYPE egress_probe_duration_seconds histogram
            egress_probe_duration_seconds_bucket{target="hub",path="direct",le="0.25"} 1
            egress_probe_duration_seconds_bucket{target="hub",path="direct",le="1"} 3
            egress_probe_duration_seconds_bucket{target="hub",path="direct",le="2.5"} 3
            egress_probe_duration_seconds_bucket{target="hub",path="direct",le="+Inf"} 4
            egress_probe_duration_seconds_sum{target="hub",path="direct"} 5.25
            egress_probe_duration_seconds_count{target="hub",path="direct"} 4
            # HELP egress_scheduler_lag_seconds How late probe rounds start.
            # TYPE egress_scheduler_lag_seconds histogram
            egress_scheduler_lag_seconds_bucket{le="0.01"} 1
            egress_scheduler_lag_seconds_bucket{le="0.1"} 2
            egress_scheduler_lag_seconds_bucket{le="+Inf"} 2
            egress_scheduler_lag_seconds_sum 0.101
            egress_scheduler_lag_seconds_count 2

            """)
        let snapshot = store.histogramSnapshot(Fixture.duration, ["hub", "direct"])
        #expect(snapshot == HistogramSnapshot(count: 4, sum: 5.25, buckets: [
            .init(upperBound: 0.25, cumulativeCount: 1),
            .init(upperBound: 1, cumulativeCount: 3),
            .init(upperBound: 2.5, cumulativeCount: 3),
        ]))
        #expect(store.histogramSnapshot(Fixture.duration, ["hub", "vpn"]) == nil)
    }

    @Test("histogram: NaN observations land only in +Inf, as in the Go client")
    func histogramNaN() {
        let store = MetricStore(families: [Fixture.lag])
        store.observe(Fixture.lag, .nan)
        let snapshot = store.histogramSnapshot(Fixture.lag, [])
        #expect(snapshot?.count == 1)
        #expect(snapshot?.buckets.map(\.cumulativeCount) == [0, 0])
        #expect(store.render().contains("egress_scheduler_lag_seconds_sum NaN\n"))
    }

    @Test("HELP escapes backslash and newline; label values escape backslash, quote and newline")
    func escaping() {
        let family = MetricFamily(
            name: "odd_total", help: "Line one\nC:\\path \"quoted\"", type: .counter, labelNames: ["v"])
        let store = MetricStore(families: [family])
        store.increment(family, ["a\"b\\c\nd"])
        store.increment(family, ["plain ünïcode ✓"])
        #expect(store.render() == #"""
            # HELP odd_total Line one\nC:\\path "quoted"
            # TYPE odd_total counter
            odd_total{v="a\"b\\c\nd"} 1
            odd_total{v="plain ünïcode ✓"} 1

            """#)
    }

    @Test("families sorted by name and series by label values, byte-wise, whatever the insertion order")
    func stableOrder() {
        let store = MetricStore(families: Fixture.all.reversed())
        let pairs = [["b", "a"], ["a", "z"], ["B", "z"], ["a", "10"], ["a", "9"], ["", "x"], ["a", "a"]]
        for pair in pairs.shuffled() { store.set(Fixture.success, pair, 1) }
        store.increment(Fixture.runs, ["x", "y"])
        store.set(Fixture.buildInfo, ["v"], 1)
        let first = store.render()
        #expect(first == store.render())
        let samples = first.split(separator: "\n").filter { $0.hasPrefix("egress_probe_success{") }
        #expect(samples == [
            #"egress_probe_success{target="",path="x"} 1"#,
            #"egress_probe_success{target="B",path="z"} 1"#,
            #"egress_probe_success{target="a",path="10"} 1"#,
            #"egress_probe_success{target="a",path="9"} 1"#,
            #"egress_probe_success{target="a",path="a"} 1"#,
            #"egress_probe_success{target="a",path="z"} 1"#,
            #"egress_probe_success{target="b",path="a"} 1"#,
        ])
        let families = first.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }
        #expect(families == [
            "# TYPE egress_build_info gauge",
            "# TYPE egress_probe_runs_total counter",
            "# TYPE egress_probe_success gauge",
        ])
        // Removing and re-adding keeps the order; the store re-sorts after each change.
        store.remove(Fixture.success, ["a", "10"])
        store.set(Fixture.success, ["0", "0"], 1)
        store.set(Fixture.success, ["a", "10"], 1)
        let again = store.render().split(separator: "\n").filter { $0.hasPrefix("egress_probe_success{") }
        #expect(again == [#"egress_probe_success{target="",path="x"} 1"#, #"egress_probe_success{target="0",path="0"} 1"#] + samples.dropFirst())
    }

    @Test("a family without series prints nothing; an empty store renders the empty string")
    func emptyFamilies() {
        let store = MetricStore(families: Fixture.all)
        #expect(store.render() == "")
        store.set(Fixture.reloadOK, 0)
        #expect(store.render() == """
            # HELP egress_config_last_reload_successful 1 if the last config reload succeeded.
            # TYPE egress_config_last_reload_successful gauge
            egress_config_last_reload_successful 0

            """)
    }

    @Test("renderBytes equals render; the size bound holds for the longest values")
    func bytesAndBound() {
        let one = MetricFamily(name: "g", help: "h", type: .gauge)
        let hist = MetricFamily(name: "h", help: "h", type: .histogram, buckets: [-1.7976931348623157e308, -2.2250738585072014e-308, 1e-300])
        let store = MetricStore(families: [one, hist])
        store.set(one, -1.7976931348623157e308)
        store.observe(hist, -2.2250738585072014e-308)
        let text = store.render()
        #expect(text.hasSuffix("\n"))
        #expect(Array(text.utf8) == store.renderBytes())
        #expect(text.contains("g -1.7976931348623157e+308\n"))
        #expect(text.contains(#"h_bucket{le="-1.7976931348623157e+308"} 0"#))
        #expect(text.contains(#"h_bucket{le="1e-300"} 1"#))
        #expect(text.contains("h_sum -2.2250738585072014e-308\n"))
    }

    @Test func contentType() {
        #expect(MetricStore.contentType == "text/plain; version=0.0.4; charset=utf-8")
    }
}

@Suite("Rendering into buffers")
struct RenderBufferTests {
    @Test("render(into:) replaces the buffer's contents, larger or smaller")
    func renderInto() {
        let store = MetricStore(families: Fixture.all)
        var buffer = Array(repeating: UInt8(ascii: "x"), count: 10_000)
        store.set(Fixture.reloadOK, 1)
        store.render(into: &buffer)
        #expect(buffer == Array(store.render().utf8))
        for t in 0..<50 { store.observe(Fixture.duration, ["t\(t)", "direct"], Double(t)) }
        store.render(into: &buffer)
        #expect(buffer == store.renderBytes())
        store.removeSeries { _ in true }
        store.render(into: &buffer)
        #expect(buffer.isEmpty)
    }

    @Test("the size bound holds when histogram counts reach 10^6 and print in exponent form")
    func boundWithLargeCounts() {
        let family = MetricFamily(name: "h", help: "h", type: .histogram, buckets: [1])
        var state = FamilyState(layout: FamilyLayout(family))
        state.update(checking: family, .histogram, []) { series in
            series.count = 1_234_567
            series.bucketCounts[0] = 999_999
            series.value = -1.2345678901234568e-300
        }
        state.sortIfNeeded()
        let bound = Exposition.sizeBound([state])
        let text = [UInt8](unsafeUninitializedCapacity: bound) { buffer, count in
            count = Exposition.write([state], into: buffer)
        }
        #expect(String(decoding: text, as: UTF8.self) == """
            # HELP h h
            # TYPE h histogram
            h_bucket{le="1"} 999999
            h_bucket{le="+Inf"} 1.234567e+06
            h_sum -1.2345678901234568e-300
            h_count 1.234567e+06

            """)
    }
}
