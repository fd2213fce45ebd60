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
        /// Told of each result (Act/Events.swift), under this lock.
        var observer: (any ResultObserver)?
    }
    private let preference = Mutex(Preference())

    /// The registry kind's digests across rounds, and its mirror comparisons (`RegistryKind`).
    let registryDigests = RegistryDigests()

    /// Phases whose duration histograms are recorded (the config's `metrics.phase_histograms`).
    private let phaseHistograms = Mutex<Set<Phase>>(Set(Phase.allCases))

    /// What `egress_path_up` and `egress_target_up` need of the pairs' last rounds, kept as
    /// counts that each round moves by its own change (its previous last round out, the new one
    /// in): a round never reads the other pairs of its path (500 targets at the scale of the
    /// benchmark), so its cost does not grow with them.
    private struct Tallies {
        /// path → its pairs with a finished round, and their failures by first failing phase.
        var paths: [String: Attribution.PathTally] = [:]
        /// target → its pairs with a finished round, and how many of those succeeded.
        var targets: [String: (probed: Int, succeeded: Int)] = [:]
    }
    private let tallies = Mutex(Tallies())

    public init(metrics: MetricStore) {
        self.metrics = metrics
    }

    /// Applies the config's `metrics` section: the buckets exported, and the phase histograms
    /// recorded; series of phases no longer wanted are dropped.
    public func applyMetricsConfig(_ config: MetricsConfig) {
        config.apply(to: metrics)
        phaseHistograms.withLock { $0 = config.phaseHistograms }
        let dropped = Set(Phase.allCases).subtracting(config.phaseHistograms).map(\.rawValue)
        guard !dropped.isEmpty else { return }
        metrics.removeSeries(of: Catalogue.phaseDuration) { $0["phase"].map(dropped.contains) == true }
    }

    /// Declares the pairs to be probed: their series exist from the first scrape (runs at 0,
    /// duration histograms empty), and pairs no longer configured lose theirs.
    /// Declares which targets are mirrors of which upstream, for the digest comparison.
    public func setUpstreams(_ map: [String: String]) {
        registryDigests.setUpstreams(map)
    }

    public func setPairs(_ keys: [PairKey]) {
        let wanted = Set(keys)
        let removed: [(key: PairKey, last: ProbeResult?)] = pairs.withLock { state in
            let gone = state.keys.filter { !wanted.contains($0) }
            let out = gone.map { ($0, state[$0]?.last) }
            for key in gone { state.removeValue(forKey: key) }
            for key in keys where state[key] == nil { state[key] = PairState() }
            return out
        }
        preference.withLock { p in
            p.choice.retain(wanted)
            p.order = [:]
            for key in keys { p.order[key.target, default: []].append(key.path) }
        }
        for (key, _) in removed {
            metrics.removeSeries { $0["target"] == key.target && $0["path"] == key.path }
        }
        registryDigests.forget(removed.map(\.key))
        retallied(keys: keys, removed: removed)
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
        let known: (stale: [String]?, known: Bool, previous: ProbeResult?) = pairs.withLock { state in
            guard var s = state[key] else { return (nil, false, nil) }
            let previous = s.last
            s.last = result
            if result.success { s.lastSuccessAt = endedAt }
            var stale: [String]?
            if let tls = result.tls {
                let newLabels = labels + [tls.version, tls.cipher]
                if let old = s.tlsLabels, old != newLabels { stale = old }
                s.tlsLabels = newLabels
            }
            state[key] = s
            return (stale, true, previous)
        }
        // A result for a pair dropped by a reload while it ran is discarded.
        guard known.known else { return }
        metrics.increment(Catalogue.probeRuns, labels)
        metrics.set(Catalogue.probeSuccess, labels, result.success ? 1 : 0)
        if let resolver = result.failure?.disagreeingResolver {
            metrics.increment(Catalogue.dnsAnswersDisagree, labels + [resolver])
        }
        if let family = result.ipProtocol { metrics.set(Catalogue.probeIPProtocol, labels, Double(family)) }
        metrics.observe(Catalogue.probeDuration, labels, result.duration)
        let histogramPhases = phaseHistograms.withLock { $0 }
        for (phase, seconds) in result.phases.sorted(by: { $0.key < $1.key }) where histogramPhases.contains(phase) {
            metrics.observe(Catalogue.phaseDuration, labels + [phase.rawValue], seconds)
        }
        if let failure = result.failure {
            metrics.increment(Catalogue.probeFailures, labels + [failure.phase.rawValue, failure.reason.rawValue])
        } else {
            metrics.set(Catalogue.lastSuccess, labels, endedAt)
        }
        let (chosen, paths) = preference.withLock { p -> (String?, [String]) in
            let order = p.order[result.target] ?? [result.path]
            let chosen = p.choice.record(result, pathOrder: order)
            p.observer?.resultRecorded(result, preferredPath: chosen, targetPaths: order)
            return (chosen, order.filter { p.choice.histories[result.target]?[$0] != nil })
        }
        if let chosen {
            for path in paths { metrics.set(Catalogue.pathPreferred, [result.target, path], path == chosen ? 1 : 0) }
        }
        tally(out: known.previous, in: result)
        // The kind's own series: its observation's projection into metrics.
        result.observation?.record(result, labels: labels, into: self)
        if let tls = result.tls {
            if let stale = known.stale { metrics.remove(Catalogue.tlsInfo, stale) }
            metrics.set(Catalogue.tlsInfo, labels + [tls.version, tls.cipher], 1)
            if let notAfter = tls.earliestNotAfter { metrics.set(Catalogue.certNotAfter, labels, notAfter) }
        }
    }

    /// Sets the one observer told of every recorded result (the agent's `ViewChanges`).
    public func observe(_ observer: (any ResultObserver)?) {
        preference.withLock { $0.observer = observer }
    }

    // MARK: verdicts per path and per target

    /// Moves the tallies of a pair's path and target from its previous last round (`out`) to
    /// its new one (`in`), then sets their gauges.
    private func tally(out old: ProbeResult?, in new: ProbeResult?) {
        guard let any = new ?? old else { return }
        tallies.withLock { t in
            var path = t.paths[any.path] ?? Attribution.PathTally()
            var target = t.targets[any.target] ?? (0, 0)
            if let old {
                path.remove(old.failure)
                target.probed -= 1
                if old.success { target.succeeded -= 1 }
            }
            if let new {
                path.add(new.failure)
                target.probed += 1
                if new.success { target.succeeded += 1 }
            }
            t.paths[any.path] = path
            t.targets[any.target] = target
            // Set under the lock: two rounds of one path finishing together cannot leave the
            // gauge at the older one's verdict.
            setGauges(path: any.path, target: any.target, t)
        }
    }

    /// No finished round left (a reload dropped them): no series, as before the first round.
    private func setGauges(path: String?, target: String?, _ t: Tallies) {
        if let path, let tally = t.paths[path] {
            if tally.targetsProbed > 0 {
                metrics.set(Catalogue.pathUp, [path], tally.down ? 0 : 1)
            } else {
                metrics.remove(Catalogue.pathUp, [path])
            }
        }
        if let target, let tally = t.targets[target] {
            if let up = Attribution.targetUp(probed: tally.probed, succeeded: tally.succeeded) {
                metrics.set(Catalogue.targetUp, [target], up ? 1 : 0)
            } else {
                metrics.remove(Catalogue.targetUp, [target])
            }
        }
    }

    /// After a reload: the removed pairs' last rounds leave the tallies; paths and targets no
    /// longer configured lose them and their series.
    private func retallied(keys: [PairKey], removed: [(key: PairKey, last: ProbeResult?)]) {
        for (_, last) in removed { tally(out: last, in: nil) }
        let paths = Set(keys.map(\.path)), targets = Set(keys.map(\.target))
        tallies.withLock { t in
            for path in t.paths.keys where !paths.contains(path) {
                t.paths[path] = nil
                metrics.remove(Catalogue.pathUp, [path])
            }
            for target in t.targets.keys where !targets.contains(target) {
                t.targets[target] = nil
                metrics.remove(Catalogue.targetUp, [target])
            }
        }
    }

    /// Whether `target` is up by `egress_target_up`'s rule: some path of it succeeded in its
    /// last round (nil before any round finished, or for a target not configured).
    public func targetUp(_ target: String) -> Bool? {
        tallies.withLock { t in t.targets[target].flatMap { Attribution.targetUp(probed: $0.probed, succeeded: $0.succeeded) } }
    }

    /// The verdicts per path and per target of the last rounds now held.
    public func verdicts() -> Attribution.Verdicts {
        Attribution.judge(snapshot().compactMap(\.last))
    }

    /// The last digest read for `image` on `target`, over any path.
    public func digest(target: String, image: String) -> String? {
        registryDigests.digest(target: target, image: image)
    }

    /// The outcomes of the last rounds (`PathPreference.window`) of a pair, oldest first; empty
    /// before its first round. Managed mode's 8-of-10 rule reads them.
    public func outcomes(target: String, path: String) -> [Bool] {
        preference.withLock { $0.choice.histories[target]?[path]?.outcomes ?? [] }
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
