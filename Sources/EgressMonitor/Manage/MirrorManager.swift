import EgressNet
import EgressMetrics
import EgressSync

/// Turns probe results into the inputs of `MirrorSelection`: the candidates (every mirror
/// target: configured, discovered, remembered), their freshness, their rounds on
/// `docker_path`, and whether Docker Hub works there.
public enum ManagePlanner {
    /// Each mirror's freshness (current, behind, unknown) as `FreshnessJudge` decides it from
    /// the last result of every pair: the judgement `suggest` makes too.
    public static func freshness(_ config: AgentConfig, results: [ProbeResult]) -> [String: Freshness] {
        FreshnessJudge.judge(config: config, results: results).mapValues(\.freshness)
    }

    /// The candidates, ranked in `suggest`'s order of `lastResults` (mirrors that answered
    /// nowhere in their last round after them, by name).
    public static func candidates(_ config: AgentConfig, dockerPath: String, lastResults: [ProbeResult],
                                  freshness: [String: Freshness], outcomes: (String) -> [Bool]) -> [MirrorCandidate] {
        let suggestion = SuggestCommand.analyse(config, lastResults)
        let order = suggestion.mirrors.map(\.target.name) + suggestion.behindMirrors.map(\.target.name)
        return config.targets.filter { $0.kind == .mirror }.map { t in
            MirrorCandidate(target: t.name, url: MirrorURL.text(t.url), freshness: freshness[t.name] ?? .unknown,
                            outcomes: outcomes(t.name), rank: order.firstIndex(of: t.name) ?? order.count)
        }
    }

    /// Whether some Docker Hub target's last round on `docker_path` succeeded.
    public static func hubWorks(_ config: AgentConfig, dockerPath: String, lastOutcome: (String) -> Bool?) -> Bool {
        config.targets.filter { $0.kind == .dockerhub }.contains { lastOutcome($0.name) == true }
    }

    /// The plans for every managed file, given the mirrors selection chose (nil: unchanged).
    public static func plans(_ manage: ManageConfig, proposed: [String]?) -> [FilePlan] {
        var out: [FilePlan] = []
        if let p = manage.daemonJSON { out.append(FilePlan.make(.daemonJSON, path: p, proposed: proposed)) }
        // containerd's file: nothing qualifying leaves it as it is (its tables are never dropped).
        if let p = manage.hostsTOML { out.append(FilePlan.make(.hostsTOML, path: p, proposed: proposed.flatMap { $0.isEmpty ? nil : $0 })) }
        return out
    }
}

/// What managed mode shows about one file: on the status page, `/api/v1/status`, `check --json`.
public struct ManagedFileStatus: Sendable, Equatable {
    public let kind: ManagedFileKind
    public let path: String
    /// The mirrors it lists, as last read.
    public var listed: [String] = []
    /// What would be written now (nil: leave it), and whether that differs from the file.
    public var wouldWrite: [String]?
    public var pendingChange = false
    /// Unix time and mirrors of the agent's last write of it.
    public var lastWriteAt: Double?
    public var lastWritten: [String]?
    /// The last failure (read, parse, write, reload), nil after a success.
    public var lastError: String?
    /// Why no write happened although the list differs (dwell, warming up).
    public var holding: String?

    public init(kind: ManagedFileKind, path: String) {
        self.kind = kind
        self.path = path
    }

    /// The block `/api/v1/status` and `check --json` carry under "manage".
    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "file": .string(kind.rawValue), "path": .string(path),
            "listed": .array(listed.map { .string($0) }),
            "would_write": wouldWrite.map { .array($0.map { .string($0) }) } ?? .null,
            "pending_change": .bool(pendingChange),
        ]
        o["last_write_timestamp_seconds"] = lastWriteAt.map { .number($0) } ?? .null
        o["last_written"] = lastWritten.map { .array($0.map { .string($0) }) } ?? .null
        o["last_error"] = lastError.map { .string($0) } ?? .null
        o["holding"] = holding.map { .string($0) } ?? .null
        return .object(o)
    }
}

/// Managed mode in the running agent: once per interval it reads the result store, decides
/// with `MirrorSelection`, writes the files (hysteresis: `min_dwell_seconds`), reloads dockerd,
/// counts everything in the catalogue's metrics, and reports each write through `onWrite`.
public final class MirrorManager: Sendable {
    /// Called after each write: the file's path, its kind (`daemon_json`, `hosts_toml`) and the
    /// mirrors it lists now. The hook for the `mirrors_written` event of `actions[]`.
    public typealias WriteHook = @Sendable (_ file: String, _ kind: String, _ mirrors: [String]) -> Void

    private let results: ResultStore
    private let config: @Sendable () -> AgentConfig?
    private let now: @Sendable () -> Double
    private let onWrite: Mutex<WriteHook?>
    private let state = Mutex<[ManagedFileKind: ManagedFileStatus]>([:])
    private let loop = Mutex<Task<Void, Never>?>(nil)

    public init(results: ResultStore, config: @escaping @Sendable () -> AgentConfig?,
                now: @escaping @Sendable () -> Double = wallClockSeconds, onWrite: WriteHook? = nil) {
        self.results = results
        self.config = config
        self.now = now
        self.onWrite = Mutex(onWrite)
    }

    /// The counters of the managed files exist at 0 from the first scrape.
    private func declareSeries(_ manage: ManageConfig) {
        let metrics = results.metrics
        for kind in ManagedFileKind.allCases where (kind == .daemonJSON ? manage.daemonJSON : manage.hostsTOML) != nil {
            metrics.touch(Catalogue.manageWrites, [kind.rawValue, "written"])
            metrics.touch(Catalogue.manageWrites, [kind.rawValue, "failed"])
        }
        if manage.reloadDocker {
            metrics.touch(Catalogue.dockerReloads, ["ok"])
            metrics.touch(Catalogue.dockerReloads, ["failed"])
        }
    }

    /// Sets the write hook (the lead connects it to the `mirrors_written` action event).
    public func setOnWrite(_ hook: WriteHook?) { onWrite.withLock { $0 = hook } }

    /// The state of each managed file, in `ManagedFileKind` order.
    public var status: [ManagedFileStatus] {
        state.withLock { s in ManagedFileKind.allCases.compactMap { s[$0] } }
    }

    /// Ticks every `interval` seconds until `stop`.
    public func start() {
        if let manage = config()?.manage { declareSeries(manage) }
        let task = Task { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                let seconds = max(1, self.config()?.intervalSeconds ?? 30)
                try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                if Task.isCancelled { return }
                self.tick()
            }
        }
        loop.withLock { $0 = task }
    }

    public func stop() {
        loop.withLock { $0?.cancel(); $0 = nil }
    }

    /// One decision over every managed file.
    public func tick() {
        guard let config = self.config(), let manage = config.manage else { return }
        let dockerPath = manage.dockerPath(in: config)
        let last = results.snapshot()
        let lastResults = last.compactMap(\.last)
        let freshness = ManagePlanner.freshness(config, results: lastResults)
        let candidates = ManagePlanner.candidates(config, dockerPath: dockerPath, lastResults: lastResults, freshness: freshness) {
            self.results.outcomes(target: $0, path: dockerPath)
        }
        let hub = ManagePlanner.hubWorks(config, dockerPath: dockerPath) { name in
            last.first { $0.key.target == name && $0.key.path == dockerPath }?.last?.success
        }
        // Warming up: until every mirror probed on docker_path has had enough rounds to qualify,
        // and the hub its first, no decision (an empty window would empty the list at start).
        let probed = candidates.filter { c in config.pairs.contains { $0.target.name == c.target && $0.path.name == dockerPath } }
        let hubSeen = config.targets.contains { t in t.kind == .dockerhub && !results.outcomes(target: t.name, path: dockerPath).isEmpty }
        let warm = probed.allSatisfy { $0.outcomes.count >= MirrorSelection.needed } && (hubSeen || !config.targets.contains { $0.kind == .dockerhub })
        let proposed = MirrorSelection.choose(candidates, hubWorks: hub, oneRound: false)
        let at = now()
        for plan in ManagePlanner.plans(manage, proposed: proposed) {
            var s = state.withLock { $0[plan.kind] } ?? {
                // The last write before a restart still counts for the dwell.
                var fresh = ManagedFileStatus(kind: plan.kind, path: plan.path)
                if let last = ManageState.lastWrite(plan.kind, stateDir: manage.stateDir) {
                    fresh.lastWriteAt = last.at
                    fresh.lastWritten = last.mirrors
                }
                return fresh
            }()
            s.listed = plan.current
            s.wouldWrite = plan.proposed
            s.pendingChange = plan.changes
            s.holding = nil
            defer { state.withLock { $0[plan.kind] = s } }
            if let e = plan.error {
                fail(&s, plan, e)
                continue
            }
            guard plan.changes else { continue }
            guard warm else {
                s.holding = "warming up: fewer than \(MirrorSelection.needed) rounds on \(dockerPath) for some mirror"
                continue
            }
            let first = plan.current.first.map(MirrorURL.normalized)
            let firstOutcomes = first.flatMap { f in candidates.first { MirrorURL.normalized($0.url) == f }?.outcomes }
            guard MirrorSelection.shouldWrite(current: plan.current, proposed: plan.written, lastWriteAt: s.lastWriteAt, now: at,
                                              minDwell: manage.minDwellSeconds, firstListedOutcomes: firstOutcomes) else {
                s.holding = "min_dwell_seconds (\(Int(manage.minDwellSeconds)) s) since the last write; the first mirror listed still answers"
                continue
            }
            let outcome = ManagedFileCommit.commit(plan, manage: manage, now: now)
            if let e = outcome.error {
                fail(&s, outcome.plan, e)
                continue
            }
            guard let writtenAt = outcome.writtenAt else { continue }
            let mirrors = outcome.plan.written
            s.lastWriteAt = writtenAt
            s.lastWritten = mirrors
            s.listed = mirrors
            s.pendingChange = false
            s.lastError = nil
            let metrics = results.metrics
            metrics.increment(Catalogue.manageWrites, [plan.kind.rawValue, "written"])
            metrics.set(Catalogue.manageLastWrite, [plan.kind.rawValue], writtenAt)
            metrics.set(Catalogue.manageMirrors, [plan.kind.rawValue], Double(mirrors.count))
            Log.info("managed file written", ["file": plan.path, "mirrors": mirrors.joined(separator: ",")])
            switch outcome.reload {
            case .success(let pid)?:
                metrics.increment(Catalogue.dockerReloads, ["ok"])
                Log.info("dockerd reloaded (SIGHUP)", ["pid": "\(pid)"])
            case .failure(let e)?:
                metrics.increment(Catalogue.dockerReloads, ["failed"])
                s.lastError = "written, but dockerd was not reloaded: \(e)"
                Log.error("dockerd not reloaded", ["error": e.description])
            case nil:
                break
            }
            onWrite.withLock { $0 }?(plan.path, plan.kind.rawValue, mirrors)
        }
    }

    private func fail(_ s: inout ManagedFileStatus, _ plan: FilePlan, _ e: ManageError) {
        results.metrics.increment(Catalogue.manageWrites, [plan.kind.rawValue, "failed"])
        // Logged when it starts or changes, not every interval.
        if s.lastError != e.description { Log.error("managed file not written", ["file": plan.path, "error": e.description]) }
        s.lastError = e.description
    }
}
