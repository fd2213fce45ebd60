#if canImport(Glibc)
import Glibc
#endif
import EgressMetrics
import EgressNet
import EgressSync

/// How one run of an action ended (`egress_action_runs_total{result}`).
public enum ActionResult: String, Sendable, Equatable, CaseIterable {
    /// The command exited 0.
    case ok
    /// It exited with another status, or a signal it did not get from us ended it.
    case failed
    /// It was still running at `timeout_seconds`: its process group got SIGTERM, then SIGKILL.
    case timeout
    /// It could not be started (not found, not executable, no memory for a process).
    case spawnError = "spawn_error"
}

/// The last run of an action and what is going on now, for the status page and the JSON.
public struct ActionStatus: Sendable, Equatable {
    public let name: String
    public let on: [ActionEventKind]
    public let targets: [String]?
    /// Whether a run is in progress, and whether an event waits for it to end.
    public var running = false
    public var pending = false
    public var lastEvent: String?
    public var lastResult: ActionResult?
    /// Exit status text (`exit 3`, `signal 9`) or the spawn error.
    public var lastExit: String?
    /// Unix time the last run ended, and how long it took.
    public var lastRunAt: Double?
    public var lastDuration: Double?
    /// Runs by result since start.
    public var runs: [ActionResult: Int] = [:]

    public init(name: String, on: [ActionEventKind], targets: [String]?) {
        self.name = name
        self.on = on
        self.targets = targets
    }
}

/// Runs the operator's actions when events arrive, as keepalived runs notify scripts.
///
/// - The command is exec'd without a shell (`posix_spawn`), in a process group of its own, with
///   stdin from /dev/null and exactly the environment of DESIGN.md: `EGRESS_*` and `PATH`,
///   nothing else of the agent's (no proxy variable, no secret).
/// - Its stdout and stderr are logged line by line under the action's name, with any password
///   in a URL and any password the config holds replaced by `***`.
/// - One run per action at a time: events arriving during a run are coalesced to the latest,
///   which runs once the current run ends.
/// - Past `timeout_seconds` the whole group gets SIGTERM, and SIGKILL `terminationGrace`
///   seconds later. When the command exits, what it left running in its group is ended the
///   same way: nothing of a run outlives it, so runs of one action never overlap.
/// - The child is always reaped. No thread blocks: the output pipe and the child's pidfd are
///   waited on by the reactor.
public final class ActionRunner: Sendable {
    private struct Slot {
        var config: ActionConfig
        var status: ActionStatus
        /// The run in progress, with its id.
        var running: (id: UInt64, task: Task<Void, Never>)?
        var pending: ActionEvent?
    }
    private struct State {
        var slots: [String: Slot] = [:]
        var order: [String] = []
        var paths: [String: EgressPath] = [:]
        /// Passwords the config holds (proxy URLs, registry credentials), hidden in logged output.
        var secrets: [String] = []
        var nextRun: UInt64 = 0
        var stopped = false
    }
    private let state = Mutex(State())
    private let metrics: MetricStore
    /// Seconds between SIGTERM and SIGKILL.
    let terminationGrace: Double
    /// `PATH` for the commands: the agent's own, or Debian's default when it has none.
    let searchPath: String

    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    public init(metrics: MetricStore, terminationGrace: Double = 5, searchPath: String? = nil) {
        self.metrics = metrics
        self.terminationGrace = terminationGrace
        self.searchPath = searchPath ?? SystemFile.environment()["PATH"].flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultPath
    }

    /// Takes the actions of `config` (at start and at each reload). An action that stays keeps
    /// its counters and its run in progress; one removed loses its series (a run in progress
    /// ends by itself, its pending event is dropped).
    public func apply(_ config: AgentConfig) {
        let secrets = Self.secrets(of: config)
        let removed: [String] = state.withLock { s in
            s.paths = Dictionary(config.paths.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            s.secrets = secrets
            let wanted = Set(config.actions.map(\.name))
            let gone = s.order.filter { !wanted.contains($0) }
            for name in gone { s.slots.removeValue(forKey: name) }
            for action in config.actions {
                if var slot = s.slots[action.name] {
                    slot.config = action
                    slot.status = Self.restatus(slot.status, action)
                    s.slots[action.name] = slot
                } else {
                    s.slots[action.name] = Slot(config: action, status: ActionStatus(name: action.name, on: action.on, targets: action.targets))
                }
            }
            s.order = config.actions.map(\.name)
            return gone
        }
        for name in removed {
            metrics.removeSeries { $0["action"] == name }
        }
        // The series exist from the first scrape, each result at 0.
        for action in config.actions {
            for result in ActionResult.allCases { metrics.touch(Catalogue.actionRuns, [action.name, result.rawValue]) }
        }
    }

    private static func restatus(_ old: ActionStatus, _ action: ActionConfig) -> ActionStatus {
        var s = ActionStatus(name: action.name, on: action.on, targets: action.targets)
        s.running = old.running
        s.pending = old.pending
        s.lastEvent = old.lastEvent
        s.lastResult = old.lastResult
        s.lastExit = old.lastExit
        s.lastRunAt = old.lastRunAt
        s.lastDuration = old.lastDuration
        s.runs = old.runs
        return s
    }

    /// Runs every action that wants `event`, or queues it behind a run in progress (replacing
    /// any event queued before it).
    public func deliver(_ event: ActionEvent) {
        state.withLock { s in
            guard !s.stopped else { return }
            for name in s.order {
                guard var slot = s.slots[name], slot.config.wants(event) else { continue }
                if slot.running != nil {
                    if let dropped = slot.pending {
                        Log.info("action busy; a newer event replaces the one waiting", ["action": name, "dropped": dropped.summary, "event": event.summary])
                    }
                    slot.pending = event
                    slot.status.pending = true
                } else {
                    slot.running = start(&s, slot.config, event)
                    slot.status.running = true
                }
                s.slots[name] = slot
            }
        }
    }

    /// The hook for the managed files: `file` was written and lists `mirrors`.
    public func mirrorsWritten(file: String, mirrors: [String]) {
        deliver(ActionEvent(kind: .mirrorsWritten, file: file, mirrors: mirrors))
    }

    /// Starts a run (called with the lock held; the task cannot finish before it is stored,
    /// since `finished` takes the same lock).
    private func start(_ s: inout State, _ action: ActionConfig, _ event: ActionEvent) -> (UInt64, Task<Void, Never>) {
        s.nextRun += 1
        let id = s.nextRun
        let environment = environment(for: event, paths: s.paths)
        let secrets = s.secrets
        let task = Task { [self] in
            let outcome = await run(action, event: event, environment: environment, secrets: secrets)
            finished(action.name, id: id, event: event, outcome: outcome)
        }
        return (id, task)
    }

    private func finished(_ name: String, id: UInt64, event: ActionEvent, outcome: RunOutcome) {
        metrics.increment(Catalogue.actionRuns, [name, outcome.result.rawValue])
        metrics.set(Catalogue.actionLastRun, [name], outcome.endedAt)
        state.withLock { s in
            guard var slot = s.slots[name], slot.running?.id == id else { return }
            slot.status.lastEvent = event.summary
            slot.status.lastResult = outcome.result
            slot.status.lastExit = outcome.exit
            slot.status.lastRunAt = outcome.endedAt
            slot.status.lastDuration = outcome.duration
            slot.status.runs[outcome.result, default: 0] += 1
            slot.running = nil
            slot.status.running = false
            if let next = slot.pending, !s.stopped {
                slot.pending = nil
                slot.status.pending = false
                slot.running = start(&s, slot.config, next)
                slot.status.running = true
            }
            s.slots[name] = slot
        }
    }

    /// Each action's state, in config order.
    public var status: [ActionStatus] {
        state.withLock { s in s.order.compactMap { s.slots[$0]?.status } }
    }

    /// Waits until no action runs and none has an event waiting (for tests, and `stop`).
    public func waitUntilIdle() async {
        while true {
            let tasks = state.withLock { s in s.slots.values.compactMap { $0.running?.task } }
            if tasks.isEmpty { return }
            for t in tasks { await t.value }
        }
    }

    /// No new runs; runs in progress are ended (their groups get SIGTERM, then SIGKILL).
    public func stop() async {
        let tasks = state.withLock { s -> [Task<Void, Never>] in
            s.stopped = true
            for name in s.order { s.slots[name]?.pending = nil }
            return s.slots.values.compactMap { $0.running?.task }
        }
        for t in tasks { t.cancel() }
        for t in tasks { await t.value }
    }

    // MARK: one run

    struct RunOutcome {
        var result: ActionResult
        var exit: String?
        var endedAt: Double
        var duration: Double
    }

    private func run(_ action: ActionConfig, event: ActionEvent, environment: [String], secrets: [String]) async -> RunOutcome {
        let name = action.name
        let started = MonotonicClock.nanoseconds()
        func outcome(_ result: ActionResult, _ exit: String?) -> RunOutcome {
            RunOutcome(result: result, exit: exit, endedAt: wallClockSeconds(),
                       duration: Double(MonotonicClock.nanoseconds() - started) / 1e9)
        }
        let process: SpawnedProcess
        switch SpawnedProcess.spawn(executable: action.command[0], arguments: Array(action.command.dropFirst()), environment: environment) {
        case .failure(let error):
            Log.error("action could not be started", ["action": name, "event": event.summary, "command": action.command[0], "error": error.description])
            return outcome(.spawnError, error.description)
        case .success(let p):
            process = p
        }
        Log.info("action started", ["action": name, "event": event.summary, "pid": "\(process.pid)"])
        let reader = Task { await Self.logOutput(process, action: name, secrets: secrets) }
        let timedOut = await supervise(process, action: action)
        // The command and its group are gone. A descendant that left the group (setsid) may still
        // hold the pipe: its output is read for a moment more, then no longer.
        let tail = Task {
            _ = await Reactor.shared.sleep(until: .after(seconds: 0.5))
            reader.cancel()
        }
        await reader.value
        tail.cancel()
        process.closeOutput()
        let status = process.reap()
        let exitText = status?.description
        let result: ActionResult = timedOut ? .timeout : (status == .exited(0) ? .ok : .failed)
        let done = outcome(result, exitText)
        let fields: KeyValuePairs<String, String> = ["action": name, "result": result.rawValue, "exit": exitText ?? "unknown",
                                                     "seconds": Format.decimal(done.duration, places: 3)]
        if result == .ok { Log.info("action finished", fields) } else { Log.warn("action finished", fields) }
        return done
    }

    /// Waits for the command to exit, ending its group at the timeout; then ends what it left
    /// behind in its group. Returns whether the timeout struck.
    private func supervise(_ process: SpawnedProcess, action: ActionConfig) async -> Bool {
        var timedOut = false
        if !(await process.waitForExit(deadline: .after(seconds: action.timeoutSeconds))) {
            if Task.isCancelled {
                Log.warn("agent stopping; terminating the action's process group", ["action": action.name])
            } else {
                timedOut = true
                Log.warn("action timed out; terminating its process group", ["action": action.name, "timeout_seconds": Format.decimal(action.timeoutSeconds, places: 1)])
            }
            await terminateGroup(process)
        }
        // Reaped before looking for the rest of the group: then the group's id answers `kill`
        // only while other members live (the common case costs one kill(2), not a /proc scan),
        // and a group with members keeps its id from being reused.
        _ = process.reap()
        // Descendants still in the group (a background job of a script): ended with it.
        if !process.liveGroupMembers().isEmpty {
            Log.warn("action left processes running; terminating them", ["action": action.name])
            await terminateGroup(process)
        }
        return timedOut
    }

    /// SIGTERM to the group; SIGKILL after the grace period to whatever of it still runs. At a
    /// timeout the leader is not reaped before, so its pid (the group's id) cannot be reused.
    private func terminateGroup(_ process: SpawnedProcess) async {
        // In a task of its own: a cancelled run (the agent stopping) must still wait the grace
        // period out, and its own waits would end at once.
        let grace = terminationGrace
        await Task { await Self.terminate(process, grace: grace) }.value
    }

    private static func terminate(_ process: SpawnedProcess, grace terminationGrace: Double) async {
        process.signalGroup(SIGTERM)
        let grace = Deadline.after(seconds: terminationGrace)
        while !grace.hasPassed {
            if process.hasExited && process.liveGroupMembers().isEmpty { return }
            _ = await Reactor.shared.sleep(until: .after(seconds: 0.02))
        }
        process.signalGroup(SIGKILL)
        // SIGKILL cannot be caught; a process in uninterruptible sleep still ends when it wakes.
        _ = await process.waitForExit(deadline: .after(seconds: 5))
    }

    /// Logs the command's output, line by line, until the pipe's end or cancellation.
    private static func logOutput(_ process: SpawnedProcess, action: String, secrets: [String]) async {
        var pending: [UInt8] = []
        let longest = 4096
        // A command that floods its output cannot flood the agent's log: past this many lines
        // of one run, the rest is read and dropped, and that is said once.
        let most = 1000
        var logged = 0
        func emit(_ bytes: some Collection<UInt8>) {
            logged += 1
            if logged > most {
                if logged == most + 1 { Log.warn("action output: more than \(most) lines; the rest of this run's output is not logged", ["action": action]) }
                return
            }
            var text = String(decoding: bytes, as: UTF8.self)
            if text.hasSuffix("\r") { text.removeLast() }
            Log.info("action output", ["action": action, "line": redact(text, secrets: secrets)])
        }
        while let chunk = await process.read(deadline: .distantFuture), !chunk.isEmpty {
            pending += chunk
            while let nl = pending.firstIndex(of: 10) {
                emit(pending[..<nl])
                pending.removeSubrange(...nl)
            }
            // A line without end is cut into pieces rather than held without bound.
            while pending.count >= longest {
                emit(pending.prefix(longest))
                pending.removeFirst(longest)
            }
        }
        if !pending.isEmpty { emit(pending) }
    }

    // MARK: environment and secrets

    /// The command's environment: every `EGRESS_*` variable of DESIGN.md (empty where the event
    /// has no value for it) and `PATH`. Nothing else of the agent's environment.
    func environment(for event: ActionEvent, paths: [String: EgressPath]) -> [String] {
        let path = event.path
        var kind = "", interface = "", source = "", proxy = ""
        switch path?.kind {
        case .direct?: kind = "direct"
        case .interface(let name)?: kind = "interface"; interface = name
        case .sourceAddress(let ip)?: kind = "source_address"; source = "\(ip)"
        case .proxy(let url)?: kind = "proxy"; proxy = Self.withoutPassword(url)
        case nil: break
        }
        let variables: KeyValuePairs<String, String> = [
            "EGRESS_EVENT": event.kind.rawValue,
            "EGRESS_TARGET": event.target ?? "",
            "EGRESS_PATH": path?.name ?? "",
            "EGRESS_PREVIOUS_PATH": event.previousPath ?? "",
            "EGRESS_PATH_KIND": kind,
            "EGRESS_PATH_INTERFACE": interface,
            "EGRESS_PATH_SOURCE_ADDRESS": source,
            "EGRESS_PATH_PROXY": proxy,
            "EGRESS_FILE": event.file ?? "",
            "EGRESS_MIRRORS": event.mirrors.joined(separator: ","),
            "PATH": searchPath,
        ]
        return variables.map { "\($0.key)=\($0.value)" }
    }

    /// `scheme://user@host:port`: the proxy URL with its user name and without its password.
    static func withoutPassword(_ url: EndpointURL) -> String {
        "\(url.scheme)://" + (url.username.map { "\($0)@" } ?? "") + url.authority
    }

    static func secrets(of config: AgentConfig) -> [String] {
        var out: [String] = []
        for path in config.paths {
            if case .proxy(let url) = path.kind, let p = url.password, !p.isEmpty { out.append(p) }
        }
        out += config.credentials.logins.values.map(\.password).filter { !$0.isEmpty }
        // Longest first, so a password containing another is hidden whole.
        return Array(Set(out)).sorted { $0.count > $1.count }
    }

    /// `line` with the password of any `scheme://user:password@` URL, and every known secret,
    /// replaced by `***`.
    static func redact(_ line: String, secrets: [String]) -> String {
        var out = ""
        var rest = Substring(line)
        while let sep = rest.firstOccurrence(of: "://") {
            out += rest[..<sep.upperBound]
            rest = rest[sep.upperBound...]
            // The authority ends at the first '/', whitespace or quote; its userinfo at the last '@'.
            let end = rest.firstIndex { $0 == "/" || $0 == " " || $0 == "\t" || $0 == "\"" || $0 == "'" } ?? rest.endIndex
            if let at = rest[..<end].lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") {
                out += rest[..<colon] + ":***"
                rest = rest[at...]
            }
        }
        out += rest
        for secret in secrets where out.containsOccurrence(of: secret) {
            out = out.replacingOccurrences(of: secret, with: "***")
        }
        return out
    }
}
