import EgressSync

/// Thread-safe storage for every series of a fixed set of metric families, and their text
/// exposition.
///
/// A series is one family plus one tuple of label values. Label values are positional: they
/// follow the family's ``MetricFamily/labelNames``, and a count mismatch traps. Using a family
/// that was not registered, or using it as the wrong type (``increment(_:_:by:)`` on a gauge),
/// traps too: those are programmer errors, caught the first time the code runs.
///
/// All state sits behind one `Mutex` (EgressSync's), held for the few instructions of
/// an update. The class is `Sendable` without `@unchecked`: its only stored property is that
/// mutex, whose value is itself `Sendable`.
///
/// ``render()`` takes a copy-on-write snapshot under the lock and formats it outside, so a
/// scrape never holds up the probes that update the store for long: the lock is held for the
/// snapshot, for sorting a family whose set of series changed since the last render, and, for
/// the first writer to touch a family during a render, for one copy of that family's series.
///
/// Under `--sanitize=thread` (Tests/Sanitizers/run.sh) ThreadSanitizer checks this locking: the
/// mutex is EgressSync's, on `pthread_mutex_t`, and a render hands its snapshot back under the
/// lock (``handBack(_:)``).
public final class MetricStore: Sendable {
    /// The `Content-Type` of ``render()``'s output: Prometheus text exposition 0.0.4.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private let state: Mutex<StoreState>

    /// Creates a store for `families`. A name registered twice traps, even with an identical
    /// descriptor: the catalogue declares each family once. A histogram whose `_bucket`, `_sum`
    /// or `_count` line would collide with another family's name traps as well.
    public init(families: [MetricFamily]) {
        var s = StoreState()
        s.register(families, allowIdentical: false)
        state = Mutex(s)
    }

    // MARK: Updates

    /// Adds `amount` to a counter series, creating it at 0 first if needed.
    ///
    /// A negative (or NaN) amount is a programmer error: it asserts in debug builds and is
    /// ignored in release builds, so a counter never goes down.
    public func increment(_ family: MetricFamily, _ labelValues: [String] = [], by amount: Double = 1) {
        assert(amount >= 0, "counter \(family.name) cannot be incremented by \(amount)")
        guard amount >= 0 else { return }
        state.withLock { s in
            s.update(family, .counter, labelValues) { $0.value += amount }
        }
    }

    /// Sets a gauge series to `value`, creating it if needed.
    public func set(_ family: MetricFamily, _ labelValues: [String] = [], _ value: Double) {
        state.withLock { s in
            s.update(family, .gauge, labelValues) { $0.value = value }
        }
    }

    /// Sets a gauge without labels to `value`: `store.set(configReloadOK, 1)`.
    public func set(_ family: MetricFamily, _ value: Double) {
        set(family, [], value)
    }

    /// Records one observation in a histogram series, creating it if needed. The observation
    /// lands in the first bucket whose upper bound is `>= value` (or only in `+Inf`), and is
    /// added to the sum and count.
    public func observe(_ family: MetricFamily, _ labelValues: [String] = [], _ value: Double) {
        state.withLock { s in
            s.update(family, .histogram, labelValues) { $0.observe(value, bounds: family.buckets) }
        }
    }

    /// Records one observation in a histogram without labels.
    public func observe(_ family: MetricFamily, _ value: Double) {
        observe(family, [], value)
    }

    /// Makes a counter or histogram series exist, at zero, if it does not already; an existing
    /// series is left as it is. Exporting zeros before the first event lets `rate()` and
    /// `increase()` see the first one.
    ///
    /// For a gauge this does nothing: a gauge has no natural zero, so it exists once it is set.
    public func touch(_ family: MetricFamily, _ labelValues: [String]) {
        state.withLock { s in
            guard s.family(family).layout.family.type != .gauge else {
                s.checkArity(family, labelValues)
                return
            }
            s.update(family, family.type, labelValues) { _ in }
        }
    }

    /// Sets a counter series to an absolute `value` that is counted elsewhere (the kernel's CPU
    /// time, say). The caller guarantees it does not go down.
    func setCounter(_ family: MetricFamily, _ labelValues: [String] = [], to value: Double) {
        state.withLock { s in
            s.update(family, .counter, labelValues) { $0.value = value }
        }
    }

    /// Chooses which buckets of histogram `family` are exported: `classic` (its bounds, in every
    /// format) and `native` (the sparse exponential buckets, in protobuf only). At least one.
    /// Both are always recorded, so switching back loses nothing. A family that is not a
    /// histogram traps.
    public func setHistogramExport(_ family: MetricFamily, classic: Bool, native: Bool) {
        precondition(classic || native, "\(family.name): a histogram exports classic or native buckets or both")
        state.withLock { s in
            guard let i = s.families.index(forKey: family.name) else {
                preconditionFailure("metric family \(family.name) is not registered in this store")
            }
            let layout = s.families.values[i].layout
            precondition(layout.family.type == .histogram, "\(family.name) is not a histogram")
            guard layout.classic != classic || layout.native != native else { return }
            s.families.values[i].layout = FamilyLayout(layout.family, classic: classic, native: native)
            s.version &+= 1
        }
    }

    // MARK: Removal

    /// Drops one series. Does nothing if it does not exist.
    public func remove(_ family: MetricFamily, _ labelValues: [String]) {
        state.withLock { s in
            s.checkArity(family, labelValues)
            s.families[family.name]!.remove(labelValues)
            s.version &+= 1
        }
    }

    /// Drops, across all families, every series whose label set (label name to value) makes
    /// `predicate` return true. Used when a config reload removes a target × path pair:
    /// `store.removeSeries { $0["target"] == "hub" && $0["path"] == "vpn" }`.
    ///
    /// `predicate` runs on a snapshot, outside the store's lock, so it may itself read the store.
    /// A series created while it runs is not considered.
    public func removeSeries(where predicate: ([String: String]) -> Bool) {
        let snapshot = state.withLock { s in Array(s.families.values) }
        var doomed: [(name: String, labelValues: [String])] = []
        for family in snapshot {
            let names = family.layout.family.labelNames
            for series in family.series {
                var labels: [String: String] = [:]
                labels.reserveCapacity(names.count)
                for (name, value) in zip(names, series.labelValues) { labels[name] = value }
                if predicate(labels) { doomed.append((family.layout.family.name, series.labelValues)) }
            }
        }
        handBack(snapshot)
        guard !doomed.isEmpty else { return }
        state.withLock { s in
            for (name, labelValues) in doomed { s.families[name]!.remove(labelValues) }
            s.version &+= 1
        }
    }

    /// Drops the series of `family` whose label set makes `predicate` return true.
    public func removeSeries(of family: MetricFamily, where predicate: ([String: String]) -> Bool) {
        let doomed: [[String]] = state.withLock { s in
            let names = s.family(family).layout.family.labelNames
            return s.family(family).series.compactMap { series in
                var labels: [String: String] = [:]
                for (name, value) in zip(names, series.labelValues) { labels[name] = value }
                return predicate(labels) ? series.labelValues : nil
            }
        }
        for labelValues in doomed { remove(family, labelValues) }
    }

    // MARK: Reading

    /// The current value of a counter or gauge series, or nil if the series does not exist.
    /// Traps for a histogram; use ``histogramSnapshot(_:_:)``.
    public func value(_ family: MetricFamily, _ labelValues: [String]) -> Double? {
        state.withLock { s in
            let type = s.family(family).layout.family.type
            precondition(type != .histogram, "value(_:_:) on histogram \(family.name); use histogramSnapshot")
            return s.family(family).lookup(labelValues)?.value
        }
    }

    /// The count, sum and cumulative bucket counts of a histogram series, or nil if the series
    /// does not exist. Traps for a counter or gauge.
    public func histogramSnapshot(_ family: MetricFamily, _ labelValues: [String]) -> HistogramSnapshot? {
        state.withLock { s -> HistogramSnapshot? in
            precondition(s.family(family).layout.family.type == .histogram, "\(family.name) is not a histogram")
            guard let series = s.family(family).lookup(labelValues) else { return nil }
            var cumulative: UInt64 = 0
            var buckets: [HistogramSnapshot.Bucket] = []
            buckets.reserveCapacity(family.buckets.count)
            for (bound, n) in zip(family.buckets, series.bucketCounts) {
                cumulative += n
                buckets.append(HistogramSnapshot.Bucket(upperBound: bound, cumulativeCount: cumulative))
            }
            return HistogramSnapshot(count: series.count, sum: series.value, buckets: buckets)
        }
    }

    // MARK: Collectors and rendering

    /// Adds a function called at the start of every ``render()``, outside the store's lock, to
    /// refresh values that are read rather than counted (process memory, say). It receives this
    /// store and updates it through the ordinary methods. Collectors run in the order added.
    public func addCollector(_ collector: @escaping @Sendable (MetricStore) -> Void) {
        state.withLock { $0.collectors.append(collector) }
    }

    /// The full text exposition (format 0.0.4): families sorted by name, series sorted by label
    /// values, a family without series omitted (promtool accepts either; omitting keeps a
    /// catalogue's unused families out of every scrape). Serve it with ``contentType``.
    ///
    /// A listener serving large stores should prefer ``render(into:)`` with a kept buffer.
    public func render() -> String {
        let families = prepareRender()
        let bound = Exposition.sizeBound(families)
        let text = String(unsafeUninitializedCapacity: bound) { buffer in
            Exposition.write(families, into: buffer)
        }
        handBack(families)
        return text
    }

    /// ``render()`` as UTF-8 bytes, ready for a socket, without building a `String`; or the
    /// exposition in another `format`.
    public func renderBytes(_ format: ExpositionFormat = .prometheusText) -> [UInt8] {
        let families = prepareRender()
        defer { handBack(families) }
        switch format {
        case .prometheusText: break
        case .openMetrics:
            let bound = Exposition.sizeBound(families)
            var bytes = [UInt8](unsafeUninitializedCapacity: bound) { buffer, count in
                count = Exposition.write(families, format: .openMetrics, into: buffer)
            }
            bytes += OpenMetrics.eof
            return bytes
        case .protobuf:
            return families.reduce(into: []) { $0 += Protobuf.delimitedFamily($1) }
        }
        let bound = Exposition.sizeBound(families)
        let bytes = [UInt8](unsafeUninitializedCapacity: bound) { buffer, count in
            count = Exposition.write(families, into: buffer)
        }
        return bytes
    }

    /// ``render()`` into `buffer`, replacing its contents and reusing its capacity.
    ///
    /// At the design's scale the exposition is tens of megabytes (30 MB for 2,000 target x path
    /// pairs). glibc serves an allocation above its mmap threshold (at most 32 MiB) with fresh
    /// pages, and faulting those in costs more than the formatting: at 3,000 pairs, about 40 ms
    /// for ``render()`` against 20 ms here. A listener that keeps one buffer and renders into it
    /// on every scrape pays the faults once.
    public func render(into buffer: inout [UInt8]) {
        let families = prepareRender()
        let bound = Exposition.sizeBound(families)
        if buffer.count < bound {
            buffer.append(contentsOf: repeatElement(0, count: bound - buffer.count))
        }
        let written = buffer.withUnsafeMutableBufferPointer { Exposition.write(families, into: $0) }
        handBack(families)
        buffer.removeLast(buffer.count - written)
    }

    /// ``render()`` in pieces: formats about `chunkSize` bytes at a time into one buffer and
    /// hands each piece to `write` (valid only during the call) before formatting the next.
    ///
    /// The exposition of 2,000 target x path pairs is about 14 MB; built whole, a scrape held
    /// it (and the listener a serialized copy), and glibc kept the pages afterwards. In pieces,
    /// a scrape holds one buffer and the snapshot, which shares its storage with the store.
    ///
    /// An exposition of at most `keepUpTo` bytes is also kept, whole, for ``recentRender(maxAge:)``.
    ///
    /// `format` chooses the exposition (text 0.0.4 by default), and `gzip` compresses it as it
    /// goes: the pieces handed to `write` are then gzip bytes, and what is kept is compressed.
    public func render<E: Error>(as format: ExpositionFormat = .prometheusText, gzip: Bool = false,
                                 chunkSize: Int = 256 * 1024, keepUpTo keepLimit: Int = 0,
                                 _ write: (UnsafeBufferPointer<UInt8>) async throws(E) -> Void) async throws(E) {
        let (families, version) = prepareRenderWithVersion()
        defer { handBack(families) }
        var sink = RenderSink(gzip: gzip ? GzipStream() : nil, keepLimit: keepLimit)
        switch format {
        case .prometheusText, .openMetrics:
            let textFormat: TextFormat = format == .openMetrics ? .openMetrics : .prometheus
            let capacity = max(chunkSize, Exposition.largestPiece(families))
            let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: capacity)
            defer { buffer.deallocate() }
            var cursor = Exposition.Cursor()
            while !cursor.isDone(families) {
                let n = Exposition.fill(families, format: textFormat, from: &cursor, into: buffer)
                guard n > 0 else { continue }
                try await sink.emit(UnsafeBufferPointer(rebasing: buffer[..<n]), write)
            }
            if format == .openMetrics {
                try await withCopy(OpenMetrics.eof) { eof async throws(E) in try await sink.emit(eof, write) }
            }
        case .protobuf:
            // One family at a time: a delimited message needs its length before its bytes.
            var pending: [UInt8] = []
            for family in families {
                pending += Protobuf.delimitedFamily(family)
                if pending.count >= chunkSize || family.layout === families.last?.layout {
                    let piece = pending
                    pending.removeAll(keepingCapacity: true)
                    try await withCopy(piece) { p async throws(E) in try await sink.emit(p, write) }
                }
            }
        }
        try await sink.finish(write)
        if let kept = sink.kept {
            let at = ContinuousClock.now
            let key = RenderKey(format: format, gzip: gzip)
            state.withLock { s in
                // A newer render may have been kept meanwhile; keep the newest.
                if s.recent[key].map({ $0.version <= version }) ?? true {
                    s.recent[key] = RecentRender(version: version, at: at, bytes: kept)
                }
            }
        }
    }

    /// The exposition kept by the last ``render(chunkSize:keepUpTo:_:)``, if no series changed
    /// since and it is at most `maxAge` seconds old (the process_* gauges, refreshed only by a
    /// render, are that stale at most). Lets a small agent answer a burst of scrapes without
    /// formatting each; a large one (above `keepUpTo`) always renders afresh.
    ///
    /// Kept per `format` and `gzip`, as rendered: a gzip render is kept compressed.
    public func recentRender(maxAge: Double, as format: ExpositionFormat = .prometheusText, gzip: Bool = false) -> [UInt8]? {
        let now = ContinuousClock.now
        return state.withLock { s in
            guard let r = s.recent[RenderKey(format: format, gzip: gzip)], r.version == s.version, r.at.duration(to: now) <= .seconds(maxAge) else { return nil }
            return r.bytes
        }
    }

    /// Passes the store's lock once after a snapshot was last read, while the snapshot is still
    /// held; the caller drops it afterwards.
    ///
    /// A writer updates a series in place only once the snapshot's reference to its buffer is
    /// gone (copy-on-write). Without this, what orders the snapshot's reads before that in-place
    /// write is the buffer's reference count alone — correct, but inside libswiftCore, which
    /// ThreadSanitizer does not see, so it reports the write as racing with the render's reads.
    /// With it, a writer that can see the buffer unique took the lock after this call, and the
    /// lock orders the reads before the write in a way ThreadSanitizer (and a reader) can follow.
    /// One uncontended lock per render or removal.
    private func handBack(_ snapshot: [FamilyState]) {
        state.withLock { _ in withExtendedLifetime(snapshot) {} }
    }

    /// Runs the collectors, then returns a snapshot of the families that have series, in name
    /// order, each with its series order computed.
    private func prepareRender() -> [FamilyState] { prepareRenderWithVersion().families }

    /// ``prepareRender()``, and the version of the state the snapshot was taken from.
    private func prepareRenderWithVersion() -> (families: [FamilyState], version: UInt64) {
        let collectors = state.withLock { $0.collectors }
        for collect in collectors { collect(self) }
        return state.withLock { s in
            var out: [FamilyState] = []
            out.reserveCapacity(s.familyNames.count)
            for name in s.familyNames {
                let i = s.families.index(forKey: name)!
                guard !s.families.values[i].series.isEmpty else { continue }
                s.families.values[i].sortIfNeeded()
                out.append(s.families.values[i])
            }
            return (out, s.version)
        }
    }

    /// Registers the families in `families` that are not registered yet. One already registered
    /// with an identical descriptor is skipped; one with a different descriptor traps.
    func registerIfAbsent(_ families: [MetricFamily]) {
        state.withLock { $0.register(families, allowIdentical: true) }
    }
}

/// A histogram series at one instant, as returned by ``MetricStore/histogramSnapshot(_:_:)``.
public struct HistogramSnapshot: Sendable, Equatable {
    /// One finite bucket: the number of observations `<= upperBound`.
    public struct Bucket: Sendable, Equatable {
        public let upperBound: Double
        public let cumulativeCount: UInt64
        public init(upperBound: Double, cumulativeCount: UInt64) {
            self.upperBound = upperBound
            self.cumulativeCount = cumulativeCount
        }
    }
    /// Number of observations; also the count of the implicit `+Inf` bucket.
    public let count: UInt64
    /// Sum of the observations.
    public let sum: Double
    /// The finite buckets in the family's order, cumulative. `+Inf` is not listed: it is `count`.
    public let buckets: [Bucket]

    public init(count: UInt64, sum: Double, buckets: [Bucket]) {
        self.count = count
        self.sum = sum
        self.buckets = buckets
    }
}

// MARK: - State behind the lock

/// Everything the store holds. Value types throughout, so a snapshot is a cheap copy-on-write.
struct StoreState: Sendable {
    var families: [String: FamilyState] = [:]
    /// Registered family names, sorted.
    var familyNames: [String] = []
    var collectors: [@Sendable (MetricStore) -> Void] = []
    /// Bumped by every change to a series, so a kept render knows it is current.
    var version: UInt64 = 0
    var recent: [RenderKey: RecentRender] = [:]

    mutating func register(_ new: [MetricFamily], allowIdentical: Bool) {
        for family in new {
            if let existing = families[family.name] {
                precondition(allowIdentical, "metric family \(family.name) registered twice")
                precondition(existing.layout.family == family, "metric family \(family.name) registered twice with different descriptors")
                continue
            }
            families[family.name] = FamilyState(layout: FamilyLayout(family))
        }
        familyNames = families.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        // A histogram prints name_bucket, name_sum and name_count; none may be another family.
        var sampleNames: [String: String] = [:]
        for name in familyNames {
            for sample in families[name]!.layout.family.sampleNames {
                if let other = sampleNames.updateValue(name, forKey: sample) {
                    preconditionFailure("metric families \(other) and \(name) both print samples named \(sample)")
                }
            }
        }
    }

    /// The registered state of `family`; traps if it is not registered.
    func family(_ family: MetricFamily) -> FamilyState {
        guard let state = families[family.name] else {
            preconditionFailure("metric family \(family.name) is not registered in this store")
        }
        assert(state.layout.family == family, "metric family \(family.name) used with a descriptor other than the registered one")
        return state
    }

    func checkArity(_ family: MetricFamily, _ labelValues: [String]) {
        let registered = self.family(family).layout.family
        precondition(labelValues.count == registered.labelNames.count,
                     "\(family.name) takes \(registered.labelNames.count) label values \(registered.labelNames), got \(labelValues.count)")
    }

    /// Applies `body` to the series, creating it at zero if absent, after checking that
    /// `family` is registered, has type `type` and takes as many label values as given.
    mutating func update(_ family: MetricFamily, _ type: MetricType, _ labelValues: [String], _ body: (inout Series) -> Void) {
        guard let i = families.index(forKey: family.name) else {
            preconditionFailure("metric family \(family.name) is not registered in this store")
        }
        families.values[i].update(checking: family, type, labelValues, body)
        version &+= 1
    }
}

/// Which rendering a kept one is.
struct RenderKey: Hashable, Sendable {
    let format: ExpositionFormat
    let gzip: Bool
}

/// A whole exposition kept for ``MetricStore/recentRender(maxAge:as:gzip:)``.
struct RecentRender: Sendable {
    let version: UInt64
    /// When it was rendered.
    let at: ContinuousClock.Instant
    let bytes: [UInt8]
}

/// One family's series, and an index from label values to position.
///
/// At render time `series` is put in label-value order, in place, with fresh copies of each
/// series' arrays, so the exposition walks memory front to back (at 2,000 target x path pairs
/// that is the difference between cache hits and a miss per line). Adding a series appends it
/// and removing one swaps in the last; either clears `isSorted`, so the order is recomputed once
/// per change of the set of series, not once per scrape.
struct FamilyState: Sendable {
    var layout: FamilyLayout
    var series: [Series] = []
    var index: [[String]: Int] = [:]
    /// Sum of `labelText.count` over `series`, for the output size bound.
    var labelTextBytes = 0
    /// Whether `series` is in label-value order.
    var isSorted = true

    init(layout: FamilyLayout) { self.layout = layout }

    func lookup(_ labelValues: [String]) -> Series? {
        index[labelValues].map { series[$0] }
    }

    mutating func update(checking family: MetricFamily, _ type: MetricType, _ labelValues: [String],
                         _ body: (inout Series) -> Void) {
        let registered = layout.family
        assert(registered == family, "metric family \(family.name) used with a descriptor other than the registered one")
        precondition(registered.type == type, "\(family.name) is a \(registered.type.rawValue), not a \(type.rawValue)")
        precondition(labelValues.count == registered.labelNames.count,
                     "\(family.name) takes \(registered.labelNames.count) label values \(registered.labelNames), got \(labelValues.count)")
        if let i = index[labelValues] {
            body(&series[i])
            return
        }
        let new = Series(labelValues: labelValues, family: layout.family)
        labelTextBytes += new.labelText.count
        index[labelValues] = series.count
        series.append(new)
        isSorted = false
        body(&series[series.count - 1])
    }

    mutating func remove(_ labelValues: [String]) {
        guard let i = index.removeValue(forKey: labelValues) else { return }
        labelTextBytes -= series[i].labelText.count
        let last = series.count - 1
        if i != last {
            series.swapAt(i, last)
            index[series[i].labelValues] = i
            isSorted = false
        }
        series.removeLast()
    }

    /// Puts `series` in order of label values, compared value by value as UTF-8 bytes (as Go's
    /// `sort.Strings` would), so the output is stable and diffable.
    mutating func sortIfNeeded() {
        guard !isSorted else { return }
        let old = series
        let order = old.indices.sorted { a, b in
            for (x, y) in zip(old[a].labelValues, old[b].labelValues) where x != y {
                return x.utf8.lexicographicallyPrecedes(y.utf8)
            }
            return false
        }
        series = order.map { old[$0].relocated() }
        index.removeAll(keepingCapacity: true)
        for (i, s) in series.enumerated() { index[s.labelValues] = i }
        isSorted = true
    }
}

/// One series: its label values, its label text as printed, and its value.
struct Series: Sendable {
    let labelValues: [String]
    /// `a="x",b="y"`, escaped, without braces; empty for a family without labels.
    private(set) var labelText: [UInt8]
    /// A counter's or gauge's value, or a histogram's sum.
    var value: Double = 0
    /// A histogram's observation count.
    var count: UInt64 = 0
    /// A histogram's per-bucket counts, not cumulative, one per finite bound.
    var bucketCounts: [UInt64]
    /// A histogram's native (sparse, exponential) buckets, recorded beside the classic ones.
    var native = NativeBuckets()

    init(labelValues: [String], family: MetricFamily) {
        self.labelValues = labelValues
        self.labelText = Exposition.labelText(names: family.labelNames, values: labelValues)
        self.bucketCounts = family.type == .histogram ? Array(repeating: 0, count: family.buckets.count) : []
    }

    /// A copy whose arrays are freshly allocated, so that series copied in order sit in order
    /// on the heap.
    func relocated() -> Series {
        var copy = self
        copy.labelText = labelText.withUnsafeBufferPointer { Array($0) }
        copy.bucketCounts = bucketCounts.withUnsafeBufferPointer { Array($0) }
        copy.native.positive.counts = native.positive.counts.withUnsafeBufferPointer { Array($0) }
        return copy
    }

    mutating func observe(_ v: Double, bounds: [Double]) {
        // First bound >= v, as Prometheus' `le`; NaN compares false and lands only in +Inf.
        var lo = 0, hi = bounds.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if bounds[mid] >= v { hi = mid } else { lo = mid + 1 }
        }
        if lo < bounds.count { bucketCounts[lo] += 1 }
        native.observe(v)
        count += 1
        value += v
    }
}
