import Testing
@testable import EgressMetrics

private func hex(_ bytes: [UInt8]) -> String {
    bytes.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined(separator: " ")
}

private func bytes(_ hex: String) -> [UInt8] {
    hex.split(whereSeparator: { $0 == " " || $0 == "\n" }).map { UInt8($0, radix: 16)! }
}

@Suite("Native histogram buckets")
struct NativeHistogramTests {
    @Test("bucket index: schema 3, upper bound inclusive, as client_golang computes it")
    func index() {
        // (value, index): bucket i holds (2^((i-1)/8), 2^(i/8)].
        let cases: [(Double, Int32)] = [(1, 0), (1.0001, 1), (2, 8), (0.5, -8), (3, 13), (0.001, -79), (60, 48),
                                        (0.0010001, -79), (0x1p-10 * 1.0001, -79)]
        for (v, i) in cases {
            #expect(NativeHistogram.index(v) == i, "index(\(v))")
            #expect(NativeHistogram.upperBound(i) >= v && NativeHistogram.upperBound(i - 1) < v, "bounds of \(i) around \(v)")
        }
        #expect(NativeHistogram.clampedIndex(.infinity) == NativeHistogram.maxIndex)
    }

    @Test("observations: zero bucket up to 2^-10, sparse positive and negative sides, NaN nowhere")
    func observe() {
        var n = NativeBuckets()
        for v in [0.0, 0.0009, 0x1p-10, 0.5, 0.5, 3, -3, .nan] { n.observe(v) }
        #expect(n.zeroCount == 3)
        #expect(n.positive.first == -8 && n.positive.counts.count == 22 && n.positive.counts.reduce(0, +) == 3)
        #expect(n.negative.first == 13 && n.negative.counts == [1])
    }

    @Test("spans and deltas: gaps of one or two buckets stay inside a span, longer ones start a new one")
    func spans() {
        var s = SparseBuckets()
        for i: Int32 in [-8, -8, -6, 0, 0, 0] { s.add(i) }
        let (spans, deltas) = s.spansAndDeltas()
        // -8 (2), -7 (0), -6 (1) in one span; 0 (3) after a gap of five.
        #expect(spans.map(\.offset) == [-8, 5])
        #expect(spans.map(\.length) == [3, 1])
        #expect(deltas == [2, -2, 1, 2])
    }
}

@Suite("Protobuf exposition")
struct ProtobufTests {
    static let counter = MetricFamily(name: "a_total", help: "h", type: .counter)
    static let histogram = MetricFamily(name: "h_seconds", help: "d", type: .histogram, labelNames: ["p"], buckets: [1])

    @Test("a counter, byte for byte (hand-encoded from metrics.proto)")
    func counterBytes() {
        let store = MetricStore(families: [Self.counter])
        store.increment(Self.counter)
        #expect(hex(store.renderBytes(.protobuf)) == hex(bytes("""
            1b 0a 07 61 5f 74 6f 74 61 6c 12 01 68 18 00
            22 0b 1a 09 09 00 00 00 00 00 00 f0 3f
            """)))
    }

    @Test("a histogram with classic and native buckets, byte for byte")
    func histogramBytes() {
        let store = MetricStore(families: [Self.histogram])
        for v in [0.5, 0.5, 3] { store.observe(Self.histogram, ["x"], v) }
        let histogram = bytes("""
            08 03  11 00 00 00 00 00 00 10 40
            1a 0b 08 02 11 00 00 00 00 00 00 f0 3f
            28 06  31 00 00 00 00 00 00 50 3f  38 00
            62 04 08 0f 10 01  62 04 08 28 10 01  6a 02 04 01
            """)
        let label = bytes("0a 06 0a 01 70 12 01 78")
        let metric = label + [0x3a, UInt8(histogram.count)] + histogram
        let family = bytes("0a 09") + Array("h_seconds".utf8) + bytes("12 01 64 18 04 22") + [UInt8(metric.count)] + metric
        #expect(hex(store.renderBytes(.protobuf)) == hex([UInt8(family.count)] + family))
    }

    @Test("classic-only: no native fields; native-only: no classic buckets")
    func exportChoices() {
        let store = MetricStore(families: [Self.histogram])
        store.observe(Self.histogram, ["x"], 0.5)
        let both = store.renderBytes(.protobuf)
        store.setHistogramExport(Self.histogram, classic: true, native: false)
        let classic = store.renderBytes(.protobuf)
        store.setHistogramExport(Self.histogram, classic: false, native: true)
        let native = store.renderBytes(.protobuf)
        // schema = 3 is the field 5 varint 06; a bucket is field 3 (1a).
        #expect(hex(both).contains("28 06") && hex(both).contains("1a 0b"))
        #expect(!hex(classic).contains("28 06") && hex(classic).contains("1a 0b"))
        #expect(hex(native).contains("28 06") && !hex(native).contains("1a 0b"))
        // Text keeps +Inf, _sum and _count only.
        #expect(store.render() == """
            # HELP h_seconds d
            # TYPE h_seconds histogram
            h_seconds_bucket{p="x",le="+Inf"} 1
            h_seconds_sum{p="x"} 0.5
            h_seconds_count{p="x"} 1

            """)
    }

    @Test("the streamed render equals renderBytes, gzip included")
    func streamed() async {
        let store = ChunkedRenderTests.populatedStore(pairs: 50)
        for format in ExpositionFormat.allCases {
            for gzip in [false, true] {
                var out: [UInt8] = []
                await store.render(as: format, gzip: gzip, chunkSize: 1000) { (p: UnsafeBufferPointer<UInt8>) in out += p }
                let plain = gzip ? gunzip(out) : out
                #expect(plain == store.renderBytes(format), "\(format) gzip \(gzip)")
            }
        }
    }
}

@Suite("OpenMetrics 1.0 text")
struct OpenMetricsTests {
    @Test("counter families named without _total, units declared, # EOF last")
    func golden() {
        let seconds = MetricFamily(name: "egress_last_success_timestamp_seconds", help: #"Unix "time"."#, type: .gauge)
        let store = MetricStore(families: [Fixture.runs, Fixture.buildInfo, Fixture.lag, seconds])
        store.increment(Fixture.runs, ["hub", "direct"], by: 2)
        store.set(Fixture.buildInfo, ["1.0"], 1)
        store.observe(Fixture.lag, 0.05)
        store.set(seconds, 1.5)
        #expect(String(decoding: store.renderBytes(.openMetrics), as: UTF8.self) == """
            # TYPE egress_build_info gauge
            # HELP egress_build_info Build information; always 1.
            egress_build_info{version="1.0"} 1
            # TYPE egress_last_success_timestamp_seconds gauge
            # UNIT egress_last_success_timestamp_seconds seconds
            # HELP egress_last_success_timestamp_seconds Unix \\"time\\".
            egress_last_success_timestamp_seconds 1.5
            # TYPE egress_probe_runs counter
            # HELP egress_probe_runs Probe rounds finished.
            egress_probe_runs_total{target="hub",path="direct"} 2
            # TYPE egress_scheduler_lag_seconds histogram
            # UNIT egress_scheduler_lag_seconds seconds
            # HELP egress_scheduler_lag_seconds How late probe rounds start.
            egress_scheduler_lag_seconds_bucket{le="0.01"} 0
            egress_scheduler_lag_seconds_bucket{le="0.1"} 1
            egress_scheduler_lag_seconds_bucket{le="+Inf"} 1
            egress_scheduler_lag_seconds_sum 0.05
            egress_scheduler_lag_seconds_count 1
            # EOF

            """)
    }
}

@Suite("Scrape negotiation")
struct NegotiationTests {
    static let prometheus242Native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    static let prometheus242 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

    @Test("Accept as Prometheus and people send it", arguments: [
        (prometheus242Native, ExpositionFormat.protobuf),
        (prometheus242, .openMetrics),
        ("text/plain;version=0.0.4", .prometheusText),
        ("", .prometheusText),
        ("*/*", .prometheusText),
        ("application/json", .prometheusText),
        ("text/plain;version=0.0.4;q=0.3, application/openmetrics-text; version=1.0.0; q=0.9", .openMetrics),
        ("application/openmetrics-text;version=2.0.0", .prometheusText),
        ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text", .prometheusText),
        ("APPLICATION/OPENMETRICS-TEXT", .openMetrics),
        ("application/openmetrics-text;version=\"1.0.0\"", .openMetrics),
    ])
    func accept(header: String, expected: ExpositionFormat) {
        #expect(ScrapeRequest(accept: header, acceptEncoding: nil).format == expected)
    }

    @Test("malformed or hostile Accept: text 0.0.4", arguments: [
        "application/openmetrics-text;q=nan", "application/openmetrics-text;q=2", "application/openmetrics-text;q=-1",
        "application/openmetrics-text;version", ";;;,,,", "/", "a/", "/b", "application/openmetrics-text;q=0",
        String(repeating: "application/openmetrics-text,", count: 1000), "\u{0}\u{ff}", "application/openmetrics-text;=x",
        "\"application/openmetrics-text\"",
    ])
    func hostileAccept(header: String) {
        #expect(ScrapeRequest(accept: header, acceptEncoding: nil).format == .prometheusText)
    }

    @Test("Accept-Encoding", arguments: [
        ("gzip", true), ("gzip, deflate, br", true), ("br;q=1.0, gzip;q=0.8, *;q=0.1", true), ("x-gzip", true),
        ("*", true), ("identity", false), ("", false), ("gzip;q=0", false), ("gzip;q=abc", false), ("gzip;q", false),
        ("*;q=0", false), (String(repeating: "x,", count: 3000) + "gzip", false), ("deflate", false),
    ])
    func acceptEncoding(header: String, expected: Bool) {
        #expect(ScrapeRequest(accept: nil, acceptEncoding: header).gzip == expected)
    }
}

@Suite("gzip")
struct GzipTests {
    @Test("round trip through zlib, in pieces; corrupt input is nil, never a crash")
    func roundTrip() {
        let text = Array(String(repeating: "egress_probe_runs_total{target=\"hub\",path=\"direct\"} 1\n", count: 5000).utf8)
        let gzip = GzipStream()
        var out: [UInt8] = []
        for start in stride(from: 0, to: text.count, by: 7777) {
            out += text[start..<min(start + 7777, text.count)].withUnsafeBufferPointer { gzip.compress($0) }
        }
        out += gzip.finish()
        #expect(out.prefix(2) == [0x1f, 0x8b])
        #expect(gunzip(out) == text)
        #expect(out.count * 8 <= text.count)
        var corrupt = out
        corrupt[corrupt.count / 2] ^= 0xff
        #expect(gunzip(corrupt) == nil)
        #expect(gunzip(Array(out.dropLast(4))) == nil)
    }
}
