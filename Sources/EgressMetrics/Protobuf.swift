/// The protobuf exposition: `io.prometheus.client.MetricFamily` messages (client_model's
/// `metrics.proto`, proto2), each preceded by its length as a varint ("delimited"), written by
/// hand: the handful of field types it needs do not justify a protobuf package.
///
/// The only format carrying native histograms. A histogram series carries its classic buckets
/// (`bucket`, without `+Inf`, which is `sample_count`) and its native ones (`schema`,
/// `zero_threshold`, `zero_count`, spans and deltas) side by side, as client_golang writes them:
/// a Prometheus with `--enable-feature=native-histograms` reads the native ones, an older one
/// the classic ones.
///
/// Field numbers, from metrics.proto:
///
///     MetricFamily { name = 1; help = 2; type = 3; metric = 4 }
///     Metric       { label = 1; gauge = 2; counter = 3; histogram = 7 }
///     LabelPair    { name = 1; value = 2 }       Gauge, Counter { value = 1 }
///     Histogram    { sample_count = 1; sample_sum = 2; bucket = 3; schema = 5 (sint32);
///                    zero_threshold = 6; zero_count = 7; negative_span = 9;
///                    negative_delta = 10 (sint64); positive_span = 12; positive_delta = 13 }
///     Bucket       { cumulative_count = 1; upper_bound = 2 }
///     BucketSpan   { offset = 1 (sint32); length = 2 }
///
/// Repeated deltas are packed (one length-delimited field), which proto2 parsers accept beside
/// the unpacked form.
enum Protobuf {
    static let contentType = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

    /// `MetricType` enum values.
    static func typeNumber(_ type: MetricType) -> UInt64 {
        switch type {
        case .counter: 0
        case .gauge: 1
        case .histogram: 4
        }
    }

    /// One family as a delimited message: varint length, then the `MetricFamily`.
    static func delimitedFamily(_ family: FamilyState) -> [UInt8] {
        var body = Message()
        let descriptor = family.layout.family
        body.string(1, descriptor.name)
        body.string(2, descriptor.help)
        body.varint(3, typeNumber(descriptor.type))
        for series in family.series {
            body.message(4, metric(series, family.layout))
        }
        var out = Message()
        out.rawVarint(UInt64(body.bytes.count))
        out.bytes += body.bytes
        return out.bytes
    }

    static func metric(_ series: Series, _ layout: FamilyLayout) -> Message {
        var m = Message()
        for (name, value) in zip(layout.family.labelNames, series.labelValues) {
            var pair = Message()
            pair.string(1, name)
            pair.string(2, value)
            m.message(1, pair)
        }
        switch layout.family.type {
        case .gauge:
            var g = Message()
            g.double(1, series.value)
            m.message(2, g)
        case .counter:
            var c = Message()
            c.double(1, series.value)
            m.message(3, c)
        case .histogram:
            m.message(7, histogram(series, layout))
        }
        return m
    }

    static func histogram(_ series: Series, _ layout: FamilyLayout) -> Message {
        var h = Message()
        h.varint(1, series.count)
        h.double(2, series.value)
        var cumulative: UInt64 = 0
        for b in 0..<layout.classicBucketCount {
            cumulative += series.bucketCounts[b]
            var bucket = Message()
            bucket.varint(1, cumulative)
            bucket.double(2, layout.family.buckets[b])
            h.message(3, bucket)
        }
        if layout.native {
            h.sint(5, Int64(NativeHistogram.schema))
            h.double(6, NativeHistogram.zeroThreshold)
            h.varint(7, series.native.zeroCount)
            for (spanField, deltaField, side) in [(9, 10, series.native.negative), (12, 13, series.native.positive)] {
                let (spans, deltas) = side.spansAndDeltas()
                for span in spans {
                    var s = Message()
                    s.sint(1, Int64(span.offset))
                    s.varint(2, UInt64(span.length))
                    h.message(spanField, s)
                }
                if !deltas.isEmpty {
                    var packed = Message()
                    for d in deltas { packed.rawVarint(zigzag(d)) }
                    h.bytesField(deltaField, packed.bytes)
                }
            }
        }
        return h
    }

    static func zigzag(_ v: Int64) -> UInt64 {
        UInt64(bitPattern: (v << 1) ^ (v >> 63))
    }

    /// A message being built: fields appended in order.
    struct Message {
        var bytes: [UInt8] = []

        mutating func rawVarint(_ v: UInt64) {
            var v = v
            while v >= 0x80 {
                bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
                v >>= 7
            }
            bytes.append(UInt8(v))
        }

        mutating func tag(_ field: Int, _ wireType: UInt64) {
            rawVarint(UInt64(field) << 3 | wireType)
        }

        mutating func varint(_ field: Int, _ v: UInt64) {
            tag(field, 0)
            rawVarint(v)
        }

        mutating func sint(_ field: Int, _ v: Int64) {
            tag(field, 0)
            rawVarint(zigzag(v))
        }

        mutating func double(_ field: Int, _ v: Double) {
            tag(field, 1)
            var bits = v.bitPattern
            for _ in 0..<8 {
                bytes.append(UInt8(truncatingIfNeeded: bits))
                bits >>= 8
            }
        }

        mutating func bytesField(_ field: Int, _ content: [UInt8]) {
            tag(field, 2)
            rawVarint(UInt64(content.count))
            bytes += content
        }

        mutating func string(_ field: Int, _ s: String) {
            bytesField(field, Array(s.utf8))
        }

        mutating func message(_ field: Int, _ m: Message) {
            bytesField(field, m.bytes)
        }
    }
}
