/// The text formats the store writes: Prometheus text 0.0.4, or OpenMetrics 1.0.
///
/// Their sample lines are the same bytes here; they differ in the family headers and in the
/// `# EOF` that ends an OpenMetrics exposition.
public enum TextFormat: Sendable, Equatable {
    /// `text/plain; version=0.0.4`, the default.
    case prometheus
    /// `application/openmetrics-text; version=1.0.0`.
    case openMetrics

    /// The `Content-Type` to serve the format with.
    public var contentType: String {
        switch self {
        case .prometheus: "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }
}

/// OpenMetrics 1.0 family headers.
///
/// - A counter's family is named without `_total`, its samples keep it
///   (`# TYPE egress_probe_runs counter`, `egress_probe_runs_total{…} 3`).
/// - A gauge named `…_info` (`egress_build_info`, `egress_tls_info`) stays a gauge, not an
///   OpenMetrics `info` family: `promtool check metrics` (2.42) reads only text 0.0.4 and fails
///   to parse the `info` type, and Prometheus stores both the same way.
/// - `# UNIT` is written where the family name ends in a base unit (`_seconds`, `_bytes`), the
///   spec's rule being that a declared unit is the name's suffix; other names declare none.
/// - Histogram `le` values are printed as in text 0.0.4 (`le="1"`, not the canonical `"1.0"` the
///   spec recommends): a Prometheus that switches between the two formats (2.42 asks for
///   OpenMetrics first) then keeps the same `_bucket` series, and Prometheus 2.x does not
///   normalize `le`.
/// - No `_created` samples: optional in the spec, and one more series per counter.
enum OpenMetrics {
    /// `# EOF\n`, the last line of an OpenMetrics exposition.
    static let eof: [UInt8] = Array("# EOF\n".utf8)

    /// The family name and type OpenMetrics gives `family`.
    static func familyName(_ family: MetricFamily) -> (name: String, type: String) {
        switch family.type {
        case .counter: (String(family.name.dropLast("_total".count)), "counter")
        case .gauge: (family.name, "gauge")
        case .histogram: (family.name, "histogram")
        }
    }

    /// The unit `name` declares by its suffix, if it is a base unit.
    static func unit(_ name: String) -> String? {
        for unit in ["seconds", "bytes"] where name.hasSuffix("_" + unit) { return unit }
        return nil
    }

    /// `# TYPE`, optional `# UNIT`, `# HELP` (escaping `\`, `"` and newline).
    static func header(_ family: MetricFamily) -> [UInt8] {
        let (name, type) = familyName(family)
        var out = Array("# TYPE \(name) \(type)\n".utf8)
        if let unit = unit(name) { out += Array("# UNIT \(name) \(unit)\n".utf8) }
        out += Array("# HELP \(name) ".utf8)
        for byte in family.help.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): out += Array(#"\\"#.utf8)
            case UInt8(ascii: "\""): out += Array(#"\""#.utf8)
            case UInt8(ascii: "\n"): out += Array(#"\n"#.utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\n"))
        return out
    }
}

/// The expositions a scrape can ask for (``MetricStore/render(as:gzip:chunkSize:keepUpTo:_:)``).
public enum ExpositionFormat: Sendable, Hashable, CaseIterable {
    /// Prometheus text 0.0.4, the default.
    case prometheusText
    /// OpenMetrics 1.0 text.
    case openMetrics
    /// Delimited `io.prometheus.client.MetricFamily` protobuf, with native histograms.
    case protobuf

    /// The `Content-Type` to serve the format with.
    public var contentType: String {
        switch self {
        case .prometheusText: TextFormat.prometheus.contentType
        case .openMetrics: TextFormat.openMetrics.contentType
        case .protobuf: Protobuf.contentType
        }
    }
}

/// Where a render's pieces go: through gzip when asked, and into the kept copy while it stays
/// within its limit.
struct RenderSink {
    let gzip: GzipStream?
    let keepLimit: Int
    private(set) var kept: [UInt8]?

    init(gzip: GzipStream?, keepLimit: Int) {
        self.gzip = gzip
        self.keepLimit = keepLimit
        kept = keepLimit > 0 ? [] : nil
    }

    mutating func emit<E: Error>(_ piece: UnsafeBufferPointer<UInt8>,
                                 _ write: (UnsafeBufferPointer<UInt8>) async throws(E) -> Void) async throws(E) {
        if let gzip {
            let out = gzip.compress(piece)
            guard !out.isEmpty else { return }
            try await withCopy(out) { p async throws(E) in try await pass(p, write) }
        } else {
            try await pass(piece, write)
        }
    }

    mutating func finish<E: Error>(_ write: (UnsafeBufferPointer<UInt8>) async throws(E) -> Void) async throws(E) {
        guard let gzip else { return }
        let out = gzip.finish()
        try await withCopy(out) { p async throws(E) in try await pass(p, write) }
    }

    private mutating func pass<E: Error>(_ piece: UnsafeBufferPointer<UInt8>,
                                         _ write: (UnsafeBufferPointer<UInt8>) async throws(E) -> Void) async throws(E) {
        if kept != nil {
            if kept!.count + piece.count <= keepLimit { kept!.append(contentsOf: piece) } else { kept = nil }
        }
        try await write(piece)
    }
}

/// Runs `body` on a copy of `bytes` in memory of its own: `Array.withUnsafeBufferPointer`
/// takes no async closure, and a piece is written to a socket asynchronously.
func withCopy<E: Error>(_ bytes: [UInt8], _ body: (UnsafeBufferPointer<UInt8>) async throws(E) -> Void) async throws(E) {
    let copy = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count)
    defer { copy.deallocate() }
    _ = copy.initialize(from: bytes)
    try await body(UnsafeBufferPointer(copy))
}
