/// What a scrape asked for, read from its `Accept` and `Accept-Encoding` headers as
/// client_golang's `promhttp` reads them (expfmt.Negotiate, goautoneg): the acceptable media
/// range with the highest `q` wins, ties in the order listed; anything malformed is skipped;
/// nothing acceptable means text 0.0.4. Never an error: a scrape always gets an answer.
public struct ScrapeRequest: Sendable, Hashable {
    public let format: ExpositionFormat
    public let gzip: Bool

    public init(format: ExpositionFormat, gzip: Bool) {
        self.format = format
        self.gzip = gzip
    }

    /// Reads `accept` and `acceptEncoding` (either may be absent).
    public init(accept: String?, acceptEncoding: String?) {
        format = Self.negotiate(accept ?? "")
        gzip = Self.acceptsGzip(acceptEncoding ?? "")
    }

    /// Headers longer than this are not read (a scrape's is ~200 bytes): text 0.0.4, no gzip.
    static let maxHeaderLength = 4096

    /// One media range of `Accept`: `type/subtype;k=v;q=0.5`.
    struct Range {
        let type: Substring
        let parameters: [(key: String, value: String)]
        let q: Double
    }

    static func negotiate(_ accept: String) -> ExpositionFormat {
        guard accept.utf8.count <= maxHeaderLength else { return .prometheusText }
        let ranges = accept.split(separator: ",").compactMap(parseRange)
        // Stable: highest q first, equal q in the order given.
        let ordered = ranges.enumerated().sorted { a, b in
            a.element.q != b.element.q ? a.element.q > b.element.q : a.offset < b.offset
        }
        for (_, range) in ordered where range.q > 0 {
            if let format = format(of: range) { return format }
        }
        return .prometheusText
    }

    /// The format `range` names, if the agent serves it.
    static func format(of range: Range) -> ExpositionFormat? {
        func parameter(_ key: String) -> String? { range.parameters.first { $0.key == key }?.value }
        switch range.type.lowercased() {
        case "application/vnd.google.protobuf":
            guard parameter("proto") == "io.prometheus.client.MetricFamily", parameter("encoding") == "delimited" else { return nil }
            return .protobuf
        case "application/openmetrics-text":
            guard let version = parameter("version") else { return .openMetrics }
            return version == "1.0.0" || version == "0.0.1" ? .openMetrics : nil
        case "text/plain":
            guard let version = parameter("version") else { return .prometheusText }
            return version == "0.0.4" ? .prometheusText : nil
        case "*/*", "text/*":
            return .prometheusText
        default:
            return nil
        }
    }

    /// `type/subtype` and its parameters; nil when malformed (no slash, a bad `q`, a parameter
    /// without `=`), so the range is skipped.
    static func parseRange(_ text: Substring) -> Range? {
        let parts = text.split(separator: ";", omittingEmptySubsequences: false)
        let type = trim(parts[0])
        guard let slash = type.firstIndex(of: "/"), slash != type.startIndex, type.index(after: slash) != type.endIndex,
              type.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "\"" }) else { return nil }
        var parameters: [(key: String, value: String)] = []
        var q = 1.0
        for part in parts.dropFirst() {
            guard let eq = part.firstIndex(of: "=") else { return nil }
            let key = trim(part[..<eq]).lowercased()
            var value = trim(part[part.index(after: eq)...])
            if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
            guard !key.isEmpty else { return nil }
            if key == "q" {
                guard let parsed = Double(value), parsed >= 0, parsed <= 1 else { return nil }
                q = parsed
            } else {
                parameters.append((key, String(value)))
            }
        }
        return Range(type: type, parameters: parameters, q: q)
    }

    /// Whether `Accept-Encoding` lists `gzip` (or `*`) with a `q` above zero.
    static func acceptsGzip(_ header: String) -> Bool {
        guard header.utf8.count <= maxHeaderLength else { return false }
        var star: Bool?
        for item in header.split(separator: ",") {
            let parts = item.split(separator: ";", omittingEmptySubsequences: false)
            let coding = trim(parts[0]).lowercased()
            var q = 1.0
            var malformed = false
            for part in parts.dropFirst() {
                let kv = part.split(separator: "=", maxSplits: 1)
                guard kv.count == 2 else { malformed = true; break }
                if trim(kv[0]).lowercased() == "q" {
                    guard let parsed = Double(trim(kv[1])), parsed >= 0, parsed <= 1 else { malformed = true; break }
                    q = parsed
                }
            }
            if malformed { continue }
            if coding == "gzip" || coding == "x-gzip" { return q > 0 }
            if coding == "*" { star = q > 0 }
        }
        return star ?? false
    }

    static func trim(_ s: Substring) -> Substring {
        var s = s
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }
}
