/// The bytes of a family that never change, computed once at registration: its `# HELP` and
/// `# TYPE` lines, its sample names, and for a histogram each bucket's `le="..."} ` text.
/// A class, so that copying a family's state (snapshots, lookups) retains one reference.
final class FamilyLayout: Sendable {
    let family: MetricFamily
    /// `# HELP name text\n# TYPE name type\n`.
    let header: [UInt8]
    /// The name on a counter's or gauge's sample line, or `name_bucket`.
    let sampleName: [UInt8]
    /// `name_sum` (histograms only).
    let sumName: [UInt8]
    /// `name_count` (histograms only).
    let countName: [UInt8]
    /// `le="0.005"} ` per finite bound, then `le="+Inf"} `, end to end (histograms only).
    let leBytes: [UInt8]
    /// Where each bucket's part of `leBytes` starts; one more entry, for the end.
    let leOffsets: [Int]
    /// Sample lines per series: 1, or buckets + 1 (+Inf) + 2 (sum, count).
    let linesPerSeries: Int
    /// Of those, the lines whose value is a histogram count (buckets, +Inf, `_count`): never
    /// more than the series' count, so usually short integers.
    let countLinesPerSeries: Int
    /// An upper bound on the bytes of one series' lines, not counting its label text or values.
    let seriesBytesWithoutLabelsOrValues: Int
    /// The OpenMetrics 1.0 header: `# TYPE`, `# UNIT` (where the name ends in a base unit) and
    /// `# HELP`, naming the family as OpenMetrics does (``OpenMetrics/familyName(_:)``).
    let openMetricsHeader: [UInt8]
    /// Whether a histogram's classic buckets are exported (else only `+Inf`, `_sum`, `_count`
    /// in text, and no `bucket` in protobuf).
    let classic: Bool
    /// Whether a histogram's native buckets are exported (protobuf only).
    let native: Bool
    /// The header lines of `format`.
    func header(_ format: TextFormat) -> [UInt8] {
        format == .openMetrics ? openMetricsHeader : header
    }

    /// The classic buckets printed: the family's, or none.
    var classicBucketCount: Int { classic ? family.buckets.count : 0 }

    init(_ family: MetricFamily, classic: Bool = true, native: Bool = true) {
        self.family = family
        self.classic = classic || family.type != .histogram
        self.native = native && family.type == .histogram
        var header: [UInt8] = []
        header.append(contentsOf: "# HELP \(family.name) ".utf8)
        for byte in family.help.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): header.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\n"): header.append(contentsOf: #"\n"#.utf8)
            default: header.append(byte)
            }
        }
        header.append(contentsOf: "\n# TYPE \(family.name) \(family.type.rawValue)\n".utf8)
        self.header = header
        self.openMetricsHeader = OpenMetrics.header(family)
        let buckets = self.classic ? family.buckets : []

        // Per line: name + "{" + labels + "," + le part (if any) + "}" + " " + value + "\n".
        let perLine = 1 + 1 + 1 + 1 + 1
        switch family.type {
        case .counter, .gauge:
            sampleName = Array(family.name.utf8)
            sumName = []
            countName = []
            leBytes = []
            leOffsets = []
            linesPerSeries = 1
            countLinesPerSeries = 0
            seriesBytesWithoutLabelsOrValues = sampleName.count + perLine
        case .histogram:
            sampleName = Array((family.name + "_bucket").utf8)
            sumName = Array((family.name + "_sum").utf8)
            countName = Array((family.name + "_count").utf8)
            var leBytes: [UInt8] = []
            var leOffsets = [0]
            for bound in buckets + [Double.infinity] {
                leBytes += Array(#"le=""#.utf8) + Array(GoFloat.format(bound).utf8) + Array(#""} "#.utf8)
                leOffsets.append(leBytes.count)
            }
            self.leBytes = leBytes
            self.leOffsets = leOffsets
            let bucketLines = buckets.count + 1
            linesPerSeries = bucketLines + 2
            countLinesPerSeries = bucketLines + 1
            seriesBytesWithoutLabelsOrValues = bucketLines * (sampleName.count + perLine) + leBytes.count
                + sumName.count + perLine + countName.count + perLine
        }
    }
}

/// Prometheus text exposition 0.0.4: escaping, and the writer behind ``MetricStore/render()``.
enum Exposition {
    /// `a="x",b="y"` for `names` and `values`, values escaped (`\` `"` and newline).
    static func labelText(names: [String], values: [String]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, (name, value)) in zip(names, values).enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: #"=""#.utf8)
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
                case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
                case UInt8(ascii: "\n"): out.append(contentsOf: #"\n"#.utf8)
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        return out
    }

    /// An upper bound on the bytes `write` produces for `families`.
    static func sizeBound(_ families: [FamilyState]) -> Int {
        families.reduce(0) { total, f in
            let layout = f.layout
            // Counts are integers below 10^6 in practice; then they print as at most 6 digits.
            var countWidth = 0
            if layout.countLinesPerSeries > 0 {
                let maxCount = f.series.reduce(0) { max($0, $1.count) }
                countWidth = maxCount < 1_000_000 ? 6 : GoFloat.maxLength
            }
            let floatLines = layout.linesPerSeries - layout.countLinesPerSeries
            let perSeries = layout.seriesBytesWithoutLabelsOrValues
                + floatLines * GoFloat.maxLength + layout.countLinesPerSeries * countWidth
            return total + max(layout.header.count, layout.openMetricsHeader.count) + f.series.count * perSeries + f.labelTextBytes * layout.linesPerSeries
        }
    }

    /// Writes the exposition of `families` (sorted, each with its series sorted) into
    /// `buffer`, which holds at least `sizeBound(families)` bytes. Returns the bytes written.
    ///
    /// This is the hot loop of a scrape (hundreds of thousands of lines at the design's scale),
    /// so it reads everything through buffer pointers: no reference counting per line.
    static func write(_ families: [FamilyState], format: TextFormat = .prometheus,
                      into buffer: UnsafeMutableBufferPointer<UInt8>) -> Int {
        var w = ByteWriter(buffer)
        for family in families where !family.series.isEmpty {
            let layout = family.layout
            precondition(family.isSorted, "series of \(layout.family.name) not sorted before rendering")
            w.write(layout.header(format))
            family.series.withUnsafeBufferPointer { series in
                switch layout.family.type {
                case .counter, .gauge: writeSimple(layout, series, &w)
                case .histogram: writeHistogram(layout, series, &w)
                }
            }
        }
        return w.count
    }

    /// Where a chunked render (``fill(_:from:into:)``) stopped: the next family, and the next
    /// series in it (-1: its header first).
    struct Cursor {
        var family = 0
        var series = -1
        func isDone(_ families: [FamilyState]) -> Bool { family >= families.count }
    }

    /// An upper bound on the bytes of one series' lines.
    static func seriesBound(_ layout: FamilyLayout, labelTextCount: Int) -> Int {
        layout.seriesBytesWithoutLabelsOrValues + layout.linesPerSeries * (GoFloat.maxLength + labelTextCount)
    }

    /// The largest single piece ``fill(_:from:into:)`` ever writes: a header or one series.
    static func largestPiece(_ families: [FamilyState]) -> Int {
        families.reduce(0) { m, f in
            let longestLabels = f.series.reduce(0) { max($0, $1.labelText.count) }
            return max(m, f.layout.header.count, f.layout.openMetricsHeader.count, seriesBound(f.layout, labelTextCount: longestLabels))
        }
    }

    /// Writes the exposition of `families` (as ``write(_:into:)`` does) from `cursor` on, as far
    /// as whole headers and series fit in `buffer`, which holds at least
    /// ``largestPiece(_:)`` bytes. Returns the bytes written and advances `cursor`; calling it
    /// again until the cursor is done yields exactly ``write(_:into:)``'s bytes.
    static func fill(_ families: [FamilyState], format: TextFormat = .prometheus, from cursor: inout Cursor,
                     into buffer: UnsafeMutableBufferPointer<UInt8>) -> Int {
        var w = ByteWriter(buffer)
        while cursor.family < families.count {
            let family = families[cursor.family]
            let layout = family.layout
            precondition(family.isSorted, "series of \(layout.family.name) not sorted before rendering")
            if cursor.series < 0 {
                guard !family.series.isEmpty else { cursor.family += 1; continue }
                let header = layout.header(format)
                guard buffer.count - w.count >= header.count else { return w.count }
                w.write(header)
                cursor.series = 0
            }
            // As many series as surely fit.
            var end = cursor.series
            var room = buffer.count - w.count
            while end < family.series.count {
                let bound = seriesBound(layout, labelTextCount: family.series[end].labelText.count)
                guard bound <= room else { break }
                room -= bound
                end += 1
            }
            if end > cursor.series {
                let range = cursor.series..<end
                family.series.withUnsafeBufferPointer { all in
                    let series = UnsafeBufferPointer(rebasing: all[range])
                    switch layout.family.type {
                    case .counter, .gauge: writeSimple(layout, series, &w)
                    case .histogram: writeHistogram(layout, series, &w)
                    }
                }
            }
            if end < family.series.count {
                cursor.series = end
                return w.count
            }
            cursor.family += 1
            cursor.series = -1
        }
        return w.count
    }

    /// `name{labels} value` per series.
    private static func writeSimple(_ layout: FamilyLayout, _ series: UnsafeBufferPointer<Series>, _ w: inout ByteWriter) {
        layout.sampleName.withUnsafeBufferPointer { name in
            for i in series.indices {
                series[i].labelText.withUnsafeBufferPointer { labels in w.sampleStart(name, labels) }
                w.value(series[i].value)
            }
        }
    }

    /// Per series: `name_bucket{labels,le="..."} cumulative` per bucket and `+Inf`, then
    /// `name_sum{labels} sum` and `name_count{labels} count`.
    private static func writeHistogram(_ layout: FamilyLayout, _ series: UnsafeBufferPointer<Series>, _ w: inout ByteWriter) {
        // Borrow every array once, outside the loop over series.
        layout.leBytes.withUnsafeBufferPointer { le in
        layout.leOffsets.withUnsafeBufferPointer { leOffsets in
        layout.sampleName.withUnsafeBufferPointer { bucketName in
        layout.sumName.withUnsafeBufferPointer { sumName in
        layout.countName.withUnsafeBufferPointer { countName in
            for i in series.indices {
                series[i].labelText.withUnsafeBufferPointer { labels in
                series[i].bucketCounts.withUnsafeBufferPointer { counts in
                    var cumulative: UInt64 = 0
                    let classicCount = layout.classicBucketCount
                    for b in 0...classicCount {
                        cumulative = b < classicCount ? cumulative + counts[b] : series[i].count
                        w.write(bucketName)
                        w.write(byte: UInt8(ascii: "{"))
                        if !labels.isEmpty {
                            w.write(labels)
                            w.write(byte: UInt8(ascii: ","))
                        }
                        w.write(UnsafeBufferPointer(rebasing: le[leOffsets[b]..<leOffsets[b + 1]]))
                        w.value(Double(cumulative))
                    }
                    w.sampleStart(sumName, labels)
                    w.value(series[i].value)
                    w.sampleStart(countName, labels)
                    w.value(Double(series[i].count))
                }
                }
            }
        }
        }
        }
        }
        }
    }
}

/// Appends to a buffer sized in advance by ``Exposition/sizeBound(_:)``. Every write checks the
/// bound, so a wrong estimate traps rather than overruns.
struct ByteWriter {
    private let base: UnsafeMutablePointer<UInt8>
    private let capacity: Int
    private(set) var count = 0

    init(_ buffer: UnsafeMutableBufferPointer<UInt8>) {
        base = buffer.baseAddress ?? UnsafeMutablePointer(bitPattern: 1)!
        capacity = buffer.count
    }

    @inline(__always)
    mutating func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { write($0) }
    }

    @inline(__always)
    mutating func write(_ source: UnsafeBufferPointer<UInt8>) {
        guard let from = source.baseAddress else { return }
        precondition(count + source.count <= capacity, "exposition size bound exceeded")
        (base + count).update(from: from, count: source.count)
        count += source.count
    }

    @inline(__always)
    mutating func write(byte: UInt8) {
        precondition(count < capacity, "exposition size bound exceeded")
        base[count] = byte
        count += 1
    }

    /// `name{labels} ` or `name ` when there are no labels.
    @inline(__always)
    mutating func sampleStart(_ name: UnsafeBufferPointer<UInt8>, _ labels: UnsafeBufferPointer<UInt8>) {
        write(name)
        if !labels.isEmpty {
            write(byte: UInt8(ascii: "{"))
            write(labels)
            write(byte: UInt8(ascii: "}"))
        }
        write(byte: UInt8(ascii: " "))
    }

    /// The value as Go formats it, then a newline.
    @inline(__always)
    mutating func value(_ v: Double) {
        if capacity - count >= GoFloat.maxLength {
            count += GoFloat.write(v, to: base + count)
        } else {
            // Near the end of a tight bound: format aside, then copy with the bound checked.
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: GoFloat.maxLength) { temporary in
                let n = GoFloat.write(v, to: temporary.baseAddress!)
                write(UnsafeBufferPointer(rebasing: temporary[..<n]))
            }
        }
        write(byte: UInt8(ascii: "\n"))
    }
}
