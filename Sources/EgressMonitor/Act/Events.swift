import EgressNet
import EgressSync

/// A change in the agent's view that can run actions (DESIGN.md, "Acting on what it measures").
public struct ActionEvent: Sendable, Equatable {
    public let kind: ActionEventKind
    /// The target, for the target events.
    public var target: String?
    /// For `preferred_path_changed` the new preferred path; for `target_up` / `target_down` the
    /// path whose round changed the verdict (the one that worked again / the last one to fail).
    public var path: EgressPath?
    /// For `preferred_path_changed`: the path preferred before.
    public var previousPath: String?
    /// For `mirrors_written`: the file written.
    public var file: String?
    /// For `mirrors_written`: the mirrors listed in it, in order.
    public var mirrors: [String]

    public init(kind: ActionEventKind, target: String? = nil, path: EgressPath? = nil, previousPath: String? = nil,
                file: String? = nil, mirrors: [String] = []) {
        self.kind = kind
        self.target = target
        self.path = path
        self.previousPath = previousPath
        self.file = file
        self.mirrors = mirrors
    }

    /// `preferred_path_changed dockerhub direct→vpn`, for logs and the status page.
    public var summary: String {
        var s = kind.rawValue
        if let target { s += " \(target)" }
        if kind == .preferredPathChanged, let previousPath, let path { s += " \(previousPath)→\(path.name)" }
        else if let path { s += " (\(path.name))" }
        if let file { s += " \(file)" }
        return s
    }
}

/// Told of every result the store records, inside the store's preference lock (so results of
/// one target arrive in the order their preferred paths were computed). Must be quick and must
/// not call back into the store.
public protocol ResultObserver: Sendable {
    /// `result` was recorded; `preferredPath` is the target's preferred path afterwards and
    /// `targetPaths` every path the target is probed on.
    func resultRecorded(_ result: ProbeResult, preferredPath: String?, targetPaths: [String])
}

/// Watches recorded results for the changes actions run on: a target's preferred path moving
/// (`preferred_path_changed`), a target going down or coming back (`target_down`/`target_up`).
/// The first preferred path and the first verdict after start are not events.
public final class ViewChanges: ResultObserver {
    private struct State {
        /// target → the preferred path last seen (only a path that has worked counts).
        var preferred: [String: String] = [:]
        /// target → path → whether its last round succeeded.
        var lastRound: [String: [String: Bool]] = [:]
        /// Pairs that have succeeded at least once since start.
        var everWorked: Set<PairKey> = []
        /// target → the last verdict (true: up).
        var up: [String: Bool] = [:]
        /// The configured paths, by name, for the events' environment.
        var paths: [String: EgressPath] = [:]
        var enabled = false
    }
    private let state = Mutex(State())
    private let deliver: @Sendable (ActionEvent) -> Void

    /// `deliver` receives each event (quickly: it runs under the store's lock).
    public init(deliver: @escaping @Sendable (ActionEvent) -> Void) {
        self.deliver = deliver
    }

    /// Takes the running config's paths, and whether any action listens to target events at
    /// all (without one, recording a result costs one lock here and nothing more).
    public func apply(_ config: AgentConfig) {
        let enabled = config.actions.contains { $0.on.contains { $0.isTargetEvent } }
        let paths = Dictionary(config.paths.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        state.withLock { s in
            // Turned off, it forgets what it saw: turned on again, it starts as at start.
            if !enabled && s.enabled { s = State() }
            s.paths = paths
            s.enabled = enabled
        }
    }

    public func resultRecorded(_ result: ProbeResult, preferredPath: String?, targetPaths: [String]) {
        let events: [ActionEvent] = state.withLock { s in
            guard s.enabled else { return [] }
            var events: [ActionEvent] = []
            let target = result.target
            let key = PairKey(target: target, path: result.path)
            if result.success { s.everWorked.insert(key) }
            s.lastRound[target, default: [:]][result.path] = result.success
            // Paths no longer configured for the target do not vote.
            let rounds = targetPaths.map { s.lastRound[target]?[$0] }
            if let up = Self.targetUp(lastRounds: rounds) {
                if let before = s.up[target], before != up {
                    events.append(ActionEvent(kind: up ? .targetUp : .targetDown, target: target, path: s.paths[result.path]))
                }
                s.up[target] = up
            }
            // The preferred path as the status page recommends it: a path that has worked.
            if let chosen = preferredPath, s.everWorked.contains(PairKey(target: target, path: chosen)) {
                if let before = s.preferred[target], before != chosen {
                    events.append(ActionEvent(kind: .preferredPathChanged, target: target, path: s.paths[chosen], previousPath: before))
                }
                s.preferred[target] = chosen
            }
            return events
        }
        for e in events { deliver(e) }
    }

    /// A target's verdict from the last round of each of its paths (nil: no round yet):
    /// `egress_target_up`'s rule (`Attribution.targetUp`: up when some path's last round
    /// succeeded, down when every path probed failed), with one guard of its own: "down" waits
    /// until every path has finished a round, so at start a path that failed first while the
    /// others are still on their first round does not make a first verdict of "down" that the
    /// next result would turn into a false `target_up`. Once every path has a round, the two agree.
    public static func targetUp(lastRounds: [Bool?]) -> Bool? {
        if lastRounds.contains(nil) && !lastRounds.contains(true) { return nil }
        let finished = lastRounds.compactMap { $0 }
        return Attribution.targetUp(probed: finished.count, succeeded: finished.filter { $0 }.count)
    }
}
