import EgressMetrics
import EgressNet

/// The agent's own state, for the status page and `/api/v1/status`.
public struct AgentStatus: Sendable {
    public let version: String
    /// Where the config came from: a file path, or "embedded default".
    public let configSource: String
    /// Unix time the agent started.
    public let startedAt: Double
    /// The config running now: its order of targets and paths is the page's order.
    public let config: AgentConfig
    /// Whether the last load or reload of the config succeeded (nil when unknown).
    public let lastReloadSuccessful: Bool?
    /// Unix time of the last successful load or reload.
    public let lastReloadSuccessAt: Double?
    /// Managed mode's files (empty without `manage`).
    public var managed: [ManagedFileStatus] = []
    /// The actions' last runs (Act/ActionRunner.swift); empty without actions.
    public var actions: [ActionStatus] = []

    public init(version: String = EgressMonitorVersion.current, configSource: String, startedAt: Double,
                config: AgentConfig, lastReloadSuccessful: Bool?, lastReloadSuccessAt: Double?) {
        self.version = version
        self.configSource = configSource
        self.startedAt = startedAt
        self.config = config
        self.lastReloadSuccessful = lastReloadSuccessful
        self.lastReloadSuccessAt = lastReloadSuccessAt
    }

    /// The reload state as the metrics carry it (`egress_config_last_reload_*`).
    public init(configSource: String, startedAt: Double, config: AgentConfig, metrics: MetricStore) {
        self.init(configSource: configSource, startedAt: startedAt, config: config,
                  lastReloadSuccessful: metrics.value(Catalogue.configReloadSuccessful, []).map { $0 == 1 },
                  lastReloadSuccessAt: metrics.value(Catalogue.configReloadTimestamp, []))
    }
}

/// The status of every pair as one value: what `/api/v1/status`, `check --json` and the status
/// page show. Built from the same `ProbeResult`s that feed the metrics.
public struct StatusReport: Sendable {
    /// One target × path pair: its last result, or nothing yet.
    public struct Entry: JSONRepresentable, Sendable {
        public let target: String
        public let path: String
        /// nil until the pair's first round finished.
        public let success: Bool?
        public let phase: String?
        public let reason: String?
        /// What went wrong, for people (never a metric label).
        public let detail: String?
        /// The reason in words and what to try.
        public let hint: Hint?
        /// Seconds per completed phase.
        public let phases: [String: Double]
        public let duration: Double?
        public let address: String?
        /// 4 or 6: the family of the connection that carried the probe.
        public let ipProtocol: Int?
        public let tlsVersion: String?
        public let tlsCipher: String?
        public let certNotAfter: Double?
        public let httpStatus: Int?
        /// Docker Hub's pull limit and what is left of it, when the registry sent them.
        public let rateLimitLimit: Double?
        public let rateLimitRemaining: Double?
        /// Manifest digest per image, as read this round.
        public let digests: [String: String]
        /// Blob throughput, when a blob was read this round.
        public let blobBytesPerSecond: Double?
        public let startedAt: Double?
        public let lastSuccessAt: Double?
        /// The failure as the probe gave it, evidence included (not in the JSON): the findings
        /// judged from these entries then give the same hint as `check` does.
        let failure: ProbeFailure?

        enum CodingKeys: String {
            case target, path, success, phase, reason, detail, hint, phases, duration, address
            case tlsVersion = "tls_version", tlsCipher = "tls_cipher", certNotAfter = "cert_not_after"
            case httpStatus = "http_status", startedAt = "started_at", lastSuccessAt = "last_success_at"
            case rateLimitLimit = "rate_limit_limit", rateLimitRemaining = "rate_limit_remaining", digests
            case blobBytesPerSecond = "blob_bytes_per_second"
            case ipProtocol = "ip_protocol"
        }

        public init(target: String, path: String, last r: ProbeResult?, lastSuccessAt: Double?) {
            self.target = target
            self.path = path
            success = r?.success
            phase = r?.failure?.phase.rawValue
            reason = r?.failure?.reason.rawValue
            detail = r?.failure?.detail
            failure = r?.failure
            hint = r?.failure.map { Hints.hint(for: $0) }
            phases = Dictionary(uniqueKeysWithValues: (r?.phases ?? [:]).map { ($0.key.rawValue, $0.value) })
            duration = r?.duration
            address = r?.address
            ipProtocol = r?.ipProtocol
            tlsVersion = r?.tls?.version
            tlsCipher = r?.tls?.cipher
            certNotAfter = r?.tls?.earliestNotAfter
            httpStatus = r?.httpStatus
            // The kind's own fields: its observation's projection into the report.
            let kind = r?.observation?.report ?? KindReport()
            rateLimitLimit = kind.rateLimitLimit
            rateLimitRemaining = kind.rateLimitRemaining
            digests = kind.digests
            blobBytesPerSecond = kind.blobBytesPerSecond
            startedAt = r?.startedAt
            self.lastSuccessAt = lastSuccessAt
        }

        /// Every key is always there, `null` when it does not apply, so a reader of the JSON
        /// sees one shape.
        var json: JSONValue {
            .object([
                CodingKeys.target.rawValue: .string(target),
                CodingKeys.path.rawValue: .string(path),
                CodingKeys.success.rawValue: success.json,
                CodingKeys.phase.rawValue: phase.json,
                CodingKeys.reason.rawValue: reason.json,
                CodingKeys.detail.rawValue: detail.json,
                CodingKeys.hint.rawValue: (hint?.text).json,
                CodingKeys.phases.rawValue: .object(phases.mapValues { .number($0) }),
                CodingKeys.duration.rawValue: duration.json,
                CodingKeys.address.rawValue: address.json,
                CodingKeys.ipProtocol.rawValue: ipProtocol.json,
                CodingKeys.tlsVersion.rawValue: tlsVersion.json,
                CodingKeys.tlsCipher.rawValue: tlsCipher.json,
                CodingKeys.certNotAfter.rawValue: certNotAfter.json,
                CodingKeys.httpStatus.rawValue: httpStatus.json,
                CodingKeys.rateLimitLimit.rawValue: rateLimitLimit.json,
                CodingKeys.rateLimitRemaining.rawValue: rateLimitRemaining.json,
                CodingKeys.digests.rawValue: .object(digests.mapValues { .string($0) }),
                CodingKeys.blobBytesPerSecond.rawValue: blobBytesPerSecond.json,
                CodingKeys.startedAt.rawValue: startedAt.json,
                CodingKeys.lastSuccessAt.rawValue: lastSuccessAt.json,
            ])
        }

        /// The round as `Attribution` judges it; nil before the first round finished.
        var outcome: Attribution.Outcome? {
            guard let success else { return nil }
            if success { return Attribution.Outcome(target: target, path: path, failure: nil) }
            if let failure { return Attribution.Outcome(target: target, path: path, failure: failure) }
            guard let phase = phase.flatMap(Phase.init(rawValue:)), let reason = reason.flatMap(FailureReason.init(rawValue:)) else { return nil }
            return Attribution.Outcome(target: target, path: path, failure: ProbeFailure(phase, reason, detail ?? ""))
        }

        /// Seconds the phase took, when it completed.
        func seconds(_ phase: Phase) -> Double? { phases[phase.rawValue] }
    }

    public let version: String
    public let generatedAt: Double
    public let agent: AgentStatus?
    /// Target then path, in config order when the config is known.
    public let results: [Entry]
    /// The path to use per target.
    public let recommendations: [String: String]
    /// Which paths and targets are down (`Attribution`), from the same last rounds.
    public let verdicts: Attribution.Verdicts

    public init(version: String = EgressMonitorVersion.current, generatedAt: Double, agent: AgentStatus?,
                results: [Entry], recommendations: [String: String], verdicts: Attribution.Verdicts? = nil) {
        self.version = version
        self.generatedAt = generatedAt
        self.agent = agent
        self.results = results
        self.recommendations = recommendations
        self.verdicts = verdicts ?? Attribution.judge(results.compactMap(\.outcome))
    }

    /// The report of a running agent: the last result of every pair in `store`.
    public init(store: ResultStore, agent: AgentStatus? = nil, now: Double = wallClockSeconds()) {
        var snapshot = store.snapshot()
        if let config = agent?.config {
            let targetOrder = Dictionary(config.targets.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
            let pathOrder = Dictionary(config.paths.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
            snapshot.sort { a, b in
                (targetOrder[a.key.target] ?? .max, pathOrder[a.key.path] ?? .max, a.key)
                    < (targetOrder[b.key.target] ?? .max, pathOrder[b.key.path] ?? .max, b.key)
            }
        }
        // The preferred path as `egress_path_preferred` has it (with its hysteresis), where that
        // path has worked at least once: a target nothing ever worked for has none.
        let everWorked = Set(snapshot.filter { $0.lastSuccessAt != nil }.map(\.key))
        self.init(generatedAt: now, agent: agent,
                  results: snapshot.map { Entry(target: $0.key.target, path: $0.key.path, last: $0.last, lastSuccessAt: $0.lastSuccessAt) },
                  recommendations: store.preferredPaths().filter { everWorked.contains(PairKey(target: $0.key, path: $0.value)) })
    }

    /// Whether `target`'s last round succeeded on some path.
    func reachable(_ target: String) -> Bool {
        results.contains { $0.target == target && $0.success == true }
    }

    /// The targets in the order they are shown.
    var targets: [String] { results.map(\.target).uniqued() }
    /// The paths in the order they are shown.
    var paths: [String] {
        if let config = agent?.config {
            let used = Set(results.map(\.path))
            return config.paths.map(\.name).filter { used.contains($0) } + results.map(\.path).uniqued().filter { p in !config.paths.contains { $0.name == p } }
        }
        return results.map(\.path).uniqued()
    }

    /// `/api/v1/status`: the JSON of `check --json` plus the timestamps and the agent's state.
    public func json() -> [UInt8] {
        ReportJSON.encode(APIDocument(report: self))
    }
}

/// `/api/v1/status`.
struct APIDocument: JSONRepresentable {
    struct Agent: JSONRepresentable {
        let version: String
        let configSource: String
        let startedAt: Double
        let uptimeSeconds: Double
        let intervalSeconds: Double
        let lastReloadSuccessful: Bool?
        let lastReloadSuccessAt: Double?

        enum CodingKeys: String {
            case version
            case configSource = "config_source", startedAt = "started_at", uptimeSeconds = "uptime_seconds"
            case intervalSeconds = "interval_seconds", lastReloadSuccessful = "last_reload_successful"
            case lastReloadSuccessAt = "last_reload_success_at"
        }

        var json: JSONValue {
            .object([
                CodingKeys.version.rawValue: .string(version),
                CodingKeys.configSource.rawValue: .string(configSource),
                CodingKeys.startedAt.rawValue: .number(startedAt),
                CodingKeys.uptimeSeconds.rawValue: .number(uptimeSeconds),
                CodingKeys.intervalSeconds.rawValue: .number(intervalSeconds),
                CodingKeys.lastReloadSuccessful.rawValue: lastReloadSuccessful.json,
                CodingKeys.lastReloadSuccessAt.rawValue: lastReloadSuccessAt.json,
            ])
        }
    }

    let version: String
    let generatedAt: Double
    let agent: Agent?
    let results: [StatusReport.Entry]
    let recommendations: [String: String]
    /// Managed mode's files; the "manage" key appears only when there are some.
    let managed: [ManagedFileStatus]
    let verdicts: Attribution.Verdicts
    /// Shown (as "actions") when the config has actions.
    let actions: [ActionStatus]

    enum CodingKeys: String {
        case version, agent, results, recommendations, paths, targets
        case generatedAt = "generated_at"
    }

    init(report: StatusReport) {
        version = report.version
        generatedAt = report.generatedAt
        agent = report.agent.map {
            Agent(version: $0.version, configSource: $0.configSource, startedAt: $0.startedAt,
                  uptimeSeconds: max(0, report.generatedAt - $0.startedAt), intervalSeconds: $0.config.intervalSeconds,
                  lastReloadSuccessful: $0.lastReloadSuccessful, lastReloadSuccessAt: $0.lastReloadSuccessAt)
        }
        results = report.results
        recommendations = report.recommendations
        managed = report.agent?.managed ?? []
        verdicts = report.verdicts
        actions = report.agent?.actions ?? []
    }

    var json: JSONValue {
        var o: [String: JSONValue] = [
            CodingKeys.version.rawValue: .string(version),
            CodingKeys.generatedAt.rawValue: .number(generatedAt),
            CodingKeys.agent.rawValue: agent?.json ?? .null,
            CodingKeys.results.rawValue: .array(results.map(\.json)),
            CodingKeys.recommendations.rawValue: .object(recommendations.mapValues { .string($0) }),
            CodingKeys.paths.rawValue: Findings.pathsJSON(verdicts),
            CodingKeys.targets.rawValue: Findings.targetsJSON(verdicts),
        ]
        if !managed.isEmpty { o["manage"] = .array(managed.map(\.json)) }
        o.merge(ActionsReport.block(actions)) { a, _ in a }
        return .object(o)
    }
}

/// JSON as `check --json` and the API print it: keys sorted, indented, one trailing newline.
enum ReportJSON {
    static func encode(_ value: some JSONRepresentable) -> [UInt8] {
        // A non-finite number has no JSON form: the document is `{}` then, as it was with
        // Foundation's JSONEncoder.
        (value.json.prettyPrinted() ?? Array("{}".utf8)) + [10]
    }
}

extension Sequence where Element: Hashable {
    /// The elements in order, each once.
    func uniqued() -> [Element] {
        var seen: Set<Element> = []
        return filter { seen.insert($0).inserted }
    }
}
