/// Says a failure once: from the last round of every target × path pair, which paths are down
/// (one broken proxy is one finding, not one per target) and which targets are down (one
/// blackholed mirror is one finding, not one per path). The one place this rule lives: the
/// metrics `egress_path_up` and `egress_target_up`, `check`, the status page and the JSON API
/// all read it from here.
///
/// The rule (README, "Paths and targets down"):
/// - A **path is down** when at least `minimumTargets` (2) targets were probed on it, every one
///   of them failed its last round, and all failed in the same phase, one of `dns`, `connect`,
///   `proxy`: the failure happened before any of them reached its own server, so it is the
///   path's. Reasons may differ within that phase (a proxy refusing some connections and timing
///   out on others is still one broken proxy); the finding names the most frequent reason. A
///   path all of whose targets fail later (TLS resets, 429s) stays up: those failures are each
///   target's own, as SNI filtering is per name.
/// - A **target is up** when some path of it succeeded in its last round (`targetUp`), down when
///   every path probed failed. It is a *finding* (said once, instead of per path) when it was
///   probed on at least two paths and at least one of its failing paths is not itself down;
///   a target whose failures are all explained by down paths is not said again.
/// - With one target on a path, its failure is that pair's; with one path for a target, its
///   failure is that pair's (its `egress_target_up` is still 0).
public enum Attribution {
    /// A path needs this many targets probed on it to be judged down.
    public static let minimumTargets = 2
    /// A target needs this many paths probed to be a finding of its own.
    public static let minimumPaths = 2
    /// The phases a failure of the path itself shows up in: nothing of the target was reached yet.
    public static let pathPhases: Set<Phase> = [.dns, .connect, .proxy]

    /// The last round of one pair, as the rule needs it.
    public struct Outcome: Sendable, Equatable {
        public let target: String
        public let path: String
        /// nil when the round succeeded.
        public let failure: ProbeFailure?

        public init(target: String, path: String, failure: ProbeFailure?) {
            self.target = target
            self.path = path
            self.failure = failure
        }

        public init(_ result: ProbeResult) {
            self.init(target: result.target, path: result.path, failure: result.failure)
        }
    }

    /// One path's verdict.
    public struct PathVerdict: Sendable, Equatable {
        public let path: String
        /// Targets with a finished round on this path, and how many of them failed it.
        public let targetsProbed: Int
        public let targetsFailed: Int
        /// When the path is down: the shared phase, its most frequent reason and that reason's
        /// first detail. nil when it is up.
        public let failure: ProbeFailure?
        /// When the path is down: every reason seen, most frequent first.
        public let reasons: [FailureReason]

        public var down: Bool { failure != nil }
        /// nil before any round finished on the path (as `egress_path_up`, it is then not shown).
        public var up: Bool? { targetsProbed == 0 ? nil : !down }
    }

    /// One target's verdict.
    public struct TargetVerdict: Sendable, Equatable {
        public let target: String
        /// Paths with a finished round of this target, and how many of them failed it.
        public let pathsProbed: Int
        public let pathsFailed: Int
        /// Each failing path with its failure, in the order the results came.
        public let failures: [(path: String, failure: ProbeFailure)]
        /// The failing paths that are down themselves.
        public let downPaths: [String]

        /// Some path worked in its last round (`egress_target_up`); nil before any round finished.
        public var up: Bool? { pathsProbed == 0 ? nil : pathsFailed < pathsProbed }
        /// Said once as a finding: down on at least two paths, not all of them explained by
        /// down paths.
        public var isFinding: Bool {
            up == false && pathsProbed >= Attribution.minimumPaths && downPaths.count < failures.count
        }
        /// The failure shared by every path not down, when they all failed in the same phase and
        /// reason (the first one's detail); nil when they differ.
        public var commonFailure: ProbeFailure? {
            let own = failures.filter { !downPaths.contains($0.path) }.map(\.failure)
            guard let first = own.first, own.allSatisfy({ $0.phase == first.phase && $0.reason == first.reason }) else { return nil }
            return first
        }

        public static func == (a: TargetVerdict, b: TargetVerdict) -> Bool {
            a.target == b.target && a.pathsProbed == b.pathsProbed && a.pathsFailed == b.pathsFailed
                && a.downPaths == b.downPaths && a.failures.map(\.path) == b.failures.map(\.path)
                && a.failures.map(\.failure) == b.failures.map(\.failure)
        }
    }

    /// Why a failed pair needs no line of its own.
    public enum Explanation: Sendable, Equatable {
        case pathDown(String)
        case targetDown(String)
    }

    /// The verdicts of one set of last rounds.
    public struct Verdicts: Sendable, Equatable {
        /// In the order paths and targets first appear in the results.
        public let paths: [PathVerdict]
        public let targets: [TargetVerdict]
        private let pathIndex: [String: Int]
        private let targetIndex: [String: Int]

        init(paths: [PathVerdict], targets: [TargetVerdict]) {
            self.paths = paths
            self.targets = targets
            pathIndex = Dictionary(paths.enumerated().map { ($1.path, $0) }, uniquingKeysWith: { a, _ in a })
            targetIndex = Dictionary(targets.enumerated().map { ($1.target, $0) }, uniquingKeysWith: { a, _ in a })
        }

        public func path(_ name: String) -> PathVerdict? { pathIndex[name].map { paths[$0] } }
        public func target(_ name: String) -> TargetVerdict? { targetIndex[name].map { targets[$0] } }

        /// The paths that are down, and the targets that are findings: what a report leads with.
        public var downPaths: [PathVerdict] { paths.filter(\.down) }
        public var targetFindings: [TargetVerdict] { targets.filter(\.isFinding) }

        /// Whether a finding already says why this pair failed: its path is down, or its
        /// target is a finding. nil for a failure that needs its own line.
        public func explanation(target: String, path: String) -> Explanation? {
            if self.path(path)?.down == true { return .pathDown(path) }
            if self.target(target)?.isFinding == true { return .targetDown(target) }
            return nil
        }
    }

    /// `egress_target_up`'s rule, for anyone who needs a target's up/down (actions, reports):
    /// true when some path of the target succeeded in its last round, false when every path
    /// probed failed, nil before any round finished. `lastRounds` are the target's pairs' last
    /// results (one per path).
    public static func targetUp(_ lastRounds: [ProbeResult]) -> Bool? {
        targetUp(probed: lastRounds.count, succeeded: lastRounds.filter(\.success).count)
    }

    /// The same rule from counts: `probed` paths with a finished round, `succeeded` of them.
    public static func targetUp(probed: Int, succeeded: Int) -> Bool? {
        probed == 0 ? nil : succeeded > 0
    }

    /// What the path rule needs of a path's last rounds: how many targets finished one, and the
    /// failed ones by first failing phase. `ResultStore` keeps one per path, moved by each round.
    public struct PathTally: Sendable, Equatable {
        public private(set) var targetsProbed = 0
        public private(set) var failuresByPhase: [Phase: Int] = [:]

        public init() {}

        mutating func add(_ failure: ProbeFailure?) {
            targetsProbed += 1
            if let failure { failuresByPhase[failure.phase, default: 0] += 1 }
        }

        mutating func remove(_ failure: ProbeFailure?) {
            targetsProbed -= 1
            if let failure {
                let n = (failuresByPhase[failure.phase] ?? 1) - 1
                failuresByPhase[failure.phase] = n > 0 ? n : nil
            }
        }

        /// The path rule: at least `minimumTargets` probed, every one failed, all in one phase
        /// among `pathPhases`.
        public var down: Bool {
            guard targetsProbed >= Attribution.minimumTargets, failuresByPhase.count == 1,
                  let (phase, failed) = failuresByPhase.first else { return false }
            return failed == targetsProbed && Attribution.pathPhases.contains(phase)
        }
    }

    /// One path's verdict from the last rounds of the targets probed on it (outcomes of other
    /// paths are ignored).
    public static func pathVerdict(_ path: String, _ outcomes: [Outcome]) -> PathVerdict {
        let mine = outcomes.filter { $0.path == path }
        let failures = mine.compactMap(\.failure)
        var tally = PathTally()
        for o in mine { tally.add(o.failure) }
        var down: ProbeFailure?
        var reasons: [FailureReason] = []
        if tally.down {
            // The most frequent reason; on a tie, the one seen first.
            var counts: [FailureReason: Int] = [:]
            for f in failures { counts[f.reason, default: 0] += 1 }
            let best = counts.values.max()!
            let reason = failures.map(\.reason).first { counts[$0] == best }!
            down = failures.first { $0.reason == reason }
            reasons = failures.map(\.reason).uniqued().sorted { counts[$0]! > counts[$1]! }
        }
        return PathVerdict(path: path, targetsProbed: mine.count, targetsFailed: failures.count, failure: down, reasons: reasons)
    }

    /// Every verdict from the last round of every pair (pairs with no finished round left out).
    public static func judge(_ outcomes: [Outcome]) -> Verdicts {
        // Grouped once: a status page of 2,000 pairs must not filter them per path and per target.
        var byPath: [String: [Outcome]] = [:], byTarget: [String: [Outcome]] = [:]
        for o in outcomes {
            byPath[o.path, default: []].append(o)
            byTarget[o.target, default: []].append(o)
        }
        let paths = outcomes.map(\.path).uniqued().map { pathVerdict($0, byPath[$0]!) }
        let down = Set(paths.filter(\.down).map(\.path))
        let targets = outcomes.map(\.target).uniqued().map { target -> TargetVerdict in
            let mine = byTarget[target]!
            let failures = mine.compactMap { o in o.failure.map { (path: o.path, failure: $0) } }
            return TargetVerdict(target: target, pathsProbed: mine.count, pathsFailed: failures.count,
                                 failures: failures, downPaths: failures.map(\.path).filter(down.contains))
        }
        return Verdicts(paths: paths, targets: targets)
    }

    public static func judge(_ results: [ProbeResult]) -> Verdicts {
        judge(results.map(Outcome.init))
    }
}
