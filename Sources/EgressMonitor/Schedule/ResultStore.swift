import EgressMetrics
import EgressNet
import EgressSync

/// Identifies a target × path pair.
public struct PairKey: Hashable, Sendable, Comparable {
    public let target: String
    public let path: String

    public init(target: String, path: String) {
        self.target = target
        self.path = path
    }

    public static func < (a: PairKey, b: PairKey) -> Bool { (a.target, a.path) < (b.target, b.path) }
}

/// Where probe results land: the metrics (through the catalogue) and the last result of each
/// pair (for `/`, `/api/v1/status` and `check`). The one writer of probe metrics.
public final class ResultStore: Sendable {
    public let metrics: MetricStore

    private struct PairState {
        var last: ProbeResult?
        var lastSuccessAt: Double?
        var tlsLabels: [String]?
    }

    private let pairs = Mutex<[PairKey: PairState]>([:])
    private struct Preference {
        var choice = PathPreference()
        /// target → its paths in config order.
        var order: [String: [String]] = [:]
    }
    private let preference = Mutex(Preference())

    /// The registry kind's digests across rounds, and its mirror comparisons (`RegistryKind`).
    let registryDigests = RegistryDigests()

    public init(metrics: MetricStore) {
        self.metrics = metrics
    }

    /// Declares the pairs to be probed: their series exist from the first scrape (runs at 0,
    /// duration histograms empty), and pairs no longer configured lose theirs.
    /// Declares which targets are mirrors of which upstream, for the digest comparison.
    public func setUpstreams(_ map: [String: String]) {
        registryDigests.setUpstreams(map)
    }

    public func setPairs(_ keys: [PairKey]) {
        let wanted = Set(keys)
        let removed: [PairKey] = pairs.withLock { state in
            let gone = state.keys.filter { !wanted.contains($0) }
            for key in gone { state.removeValue(forKey: key) }
            for key in keys where state[key] == nil { state[key] = PairState() }
            return gone
        }
        preference.withLock { p in
            p.choice.retain(wanted)
            p.order = [:]
            for key in keys { p.order[key.target, default: []].append(key.path) }
        }
        for key in removed {
            metrics.removeSeries { $0["target"] == key.target && $0["path"] == key.path }
        }
        registryDigests.forget(removed)
        for key in keys {
            let labels = [key.target, key.path]
            metrics.touch(Catalogue.probeRuns, labels)
            metrics.touch(Catalogue.probeDuration, labels)
        }
    }

    /// Records one finished round.
    public func record(_ result: ProbeResult) {
        let key = PairKey(target: result.target, path: result.path)
        let labels = [result.target, result.path]
        let endedAt = result.startedAt + result.duration
        let known: (stale: [String]?, known: Bool) = pairs.withLock { state in
            guard var s = state[key] else { return (nil, false) }
            s.last = result
            if result.success { s.lastSuccessAt = endedAt }
            var stale: [String]?
            if let tls = result.tls {
                let newLabels = labels + [tls.version, tls.cipher]
                if let old = s.tlsLabels, old != newLabels { stale = old }
                s.tlsLabels = newLabels
            }
            state[key] = s
            return (stale, true)
        }
        // A result for a pair dropped by a reload while it ran is discarded.
        guard known.known else { return }
        metrics.increment(Catalogue.probeRuns, labels)
        metrics.set(Catalogue.probeSuccess, labels, result.success ? 1 : 0)
        metrics.observe(Catalogue.probeDuration, labels, result.duration)
        for (phase, seconds) in result.phases.sorted(by: { $0.key < $1.key }) {
            metrics.observe(Catalogue.phaseDuration, labels + [phase.rawValue], seconds)
        }
        if let failure = result.failure {
            metrics.increment(Catalogue.probeFailures, labels + [failure.phase.rawValue, failure.reason.rawValue])
        } else {
            metrics.set(Catalogue.lastSuccess, labels, endedAt)
        }
        let (chosen, paths) = preference.withLock { p -> (String?, [String]) in
            let order = p.order[result.target] ?? [result.path]
            return (p.choice.record(result, pathOrder: order), order.filter { p.choice.histories[result.target]?[$0] != nil })
        }
        if let chosen {
            for path in paths { metrics.set(Catalogue.pathPreferred, [result.target, path], path == chosen ? 1 : 0) }
        }
        // The kind's own series: its observation's projection into metrics.
        result.observation?.record(result, labels: labels, into: self)
        if let tls = result.tls {
            if let stale = known.stale { metrics.remove(Catalogue.tlsInfo, stale) }
            metrics.set(Catalogue.tlsInfo, labels + [tls.version, tls.cipher], 1)
            if let notAfter = tls.earliestNotAfter { metrics.set(Catalogue.certNotAfter, labels, notAfter) }
        }
    }

    /// The last digest read for `image` on `target`, over any path.
    public func digest(target: String, image: String) -> String? {
        registryDigests.digest(target: target, image: image)
    }

    /// The preferred path of every target that has results.
    public func preferredPaths() -> [String: String] {
        preference.withLock { $0.choice.preferred }
    }

    /// The last result of every pair, in target then path order (nil where none finished yet).
    public func snapshot() -> [(key: PairKey, last: ProbeResult?, lastSuccessAt: Double?)] {
        pairs.withLock { state in
            state.keys.sorted().map { ($0, state[$0]!.last, state[$0]!.lastSuccessAt) }
        }
    }
}
