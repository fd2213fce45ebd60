import EgressMetrics
import EgressNet
import EgressSync

/// Runs every target × path pair once per interval.
///
/// A pair is either waiting for its next round on a reactor timer (a heap entry, no task) or
/// running one round in its own task; the next round is only scheduled when the round ends, so
/// two runs of the same pair never overlap. The first round of each pair starts at a random
/// offset (jitter, see `jitterWindow`), so a thousand pairs do not all fire at once. At most
/// `concurrency` probes run at a time; a round that must wait for a slot counts that wait as
/// scheduler lag. A round that would start more than an interval late is skipped, keeping the
/// pair on its grid.
///
/// Rounds run on the reactor (`Task(executorPreference: Reactor.shared)`): a probe that waits
/// for its socket continues on the reactor thread when the socket is ready, and a round starts
/// when the reactor's timer fires, with no other thread woken. Idle pairs hold no task (a
/// suspended task keeps the memory its deepest await needed). Both keep the scheduling of 2,000
/// pairs to a few megabytes and a small part of a core; the probes' TLS handshakes cost the rest
/// (about 11 % of a core at 2,000 pairs every 30 s; see the README's Performance section).
public final class Scheduler: Sendable {
    private let store: ResultStore
    private let slots: ProbeSlots
    private let reactor = Reactor.shared
    /// Time, timers and the first rounds' random offsets: the reactor's in the agent, a manual
    /// clock in tests of the jitter window, the grid and lag without wall time.
    private let clock: any SchedulerClock

    private struct Pair {
        /// Tells this pair from a later one with the same key (removed, then added by reloads).
        let generation: UInt64
        /// When the next (or running) round is due, monotonic nanoseconds.
        var due: UInt64
        /// The timer of the next round, while waiting for it.
        var timer: SchedulerTimer?
        /// The round in progress.
        var round: Task<Void, Never>?
    }
    private struct State {
        var engine: ProbeEngine
        /// Each pair's target and path, as configured (a round looks its pair up when it starts;
        /// `AgentConfig.pairs` builds every pair, too slow to call per round at 2,000 pairs).
        var configured: [PairKey: (target: Target, path: EgressPath)] = [:]
        var pairs: [PairKey: Pair] = [:]
        var nextGeneration: UInt64 = 0
        var stopped = false
    }
    private let state: Mutex<State>

    public init(engine: ProbeEngine, store: ResultStore, clock: any SchedulerClock = ReactorClock()) {
        self.store = store
        self.clock = clock
        self.slots = ProbeSlots(limit: engine.config.concurrency)
        self.state = Mutex(State(engine: engine))
    }

    /// Starts (or, after a reload, reconciles) the pairs: pairs that stayed keep their schedule
    /// and their counters, new pairs start with jitter, removed pairs stop and lose their series.
    public func apply(_ engine: ProbeEngine, jitter: Bool = true) {
        let config = engine.config
        let configured = config.pairs
        let keys = configured.map { PairKey(target: $0.target.name, path: $0.path.name) }
        store.setPairs(keys)
        store.setUpstreams(Dictionary(config.targets.compactMap { t in t.registry.upstream.map { (t.name, $0) } },
                                      uniquingKeysWith: { a, _ in a }))
        slots.setLimit(config.concurrency)
        let gone: [Pair] = state.withLock { s in
            guard !s.stopped else { return [] }
            s.engine = engine
            s.configured = Dictionary(zip(keys, configured), uniquingKeysWith: { a, _ in a })
            let wanted = Set(keys)
            var gone: [Pair] = []
            for (key, pair) in s.pairs where !wanted.contains(key) {
                gone.append(pair)
                s.pairs.removeValue(forKey: key)
            }
            let window = Self.jitterWindow(pairs: keys.count, interval: config.intervalSeconds)
            let now = clock.now()
            for key in keys where s.pairs[key] == nil {
                let offset = jitter ? clock.randomOffset(below: window) : 0
                s.nextGeneration += 1
                var pair = Pair(generation: s.nextGeneration, due: now + UInt64(offset * 1e9))
                pair.timer = schedule(key, pair)
                s.pairs[key] = pair
            }
            return gone
        }
        for pair in gone {
            pair.timer?.cancel()
            pair.round?.cancel()
        }
    }

    /// When the round after one due at `due` is due: an interval later, or, when that has passed
    /// already (the round fell behind by more than an interval), the first point of the same
    /// grid still ahead of `now`: missed rounds are skipped, not run back to back.
    static func nextDue(after due: UInt64, interval: UInt64, now: UInt64) -> UInt64 {
        var next = due + interval
        if next < now {
            next += ((now - next) / interval + 1) * interval
        }
        return next
    }

    /// The first rounds start spread over this many seconds: about a hundred starts a second at
    /// most, at least 2 s, never more than the interval. A few pairs report within seconds of
    /// start; thousands spread over their interval.
    static func jitterWindow(pairs: Int, interval: Double) -> Double {
        min(interval, max(2, Double(pairs) * 0.01))
    }

    /// Stops every pair; probes in flight are cancelled and end at once (their waits see the
    /// cancellation), and their results are not recorded. Returns when all rounds have ended.
    public func stop() async {
        let pairs = state.withLock { s -> [Pair] in
            s.stopped = true
            let p = Array(s.pairs.values)
            s.pairs.removeAll()
            return p
        }
        for pair in pairs {
            pair.timer?.cancel()
            pair.round?.cancel()
        }
        for pair in pairs { await pair.round?.value }
    }

    /// Sets the timer for `pair`'s next round, at `pair.due`.
    private func schedule(_ key: PairKey, _ pair: Pair) -> SchedulerTimer {
        let generation = pair.generation
        return clock.schedule(at: pair.due) { [self] in start(key, generation) }
    }

    /// The timer fired: start the round, unless the pair went away meanwhile.
    private func start(_ key: PairKey, _ generation: UInt64) {
        state.withLock { s in
            guard !s.stopped, var pair = s.pairs[key], pair.generation == generation, pair.round == nil else { return }
            let due = pair.due
            pair.timer = nil
            pair.round = Task(executorPreference: reactor) { [self] in await round(key, generation, due: due) }
            s.pairs[key] = pair
        }
    }

    /// One round: a slot, the probe, the result, then the timer of the next round.
    private func round(_ key: PairKey, _ generation: UInt64, due: UInt64) async {
        guard await slots.acquire() else { return }
        let lag = clock.now() &- due
        store.metrics.observe(Catalogue.schedulerLag, max(0, Double(Int64(bitPattern: lag)) / 1e9))
        let (engine, configured) = state.withLock { ($0.engine, $0.configured[key]) }
        guard let pair = configured else {
            slots.release()
            return
        }
        let result = await engine.probe(target: pair.target, path: pair.path)
        slots.release()
        if Task.isCancelled { return }
        store.record(result)
        let next = Self.nextDue(after: due, interval: UInt64(engine.config.intervalSeconds * 1e9), now: clock.now())
        state.withLock { s in
            guard !s.stopped, var pair = s.pairs[key], pair.generation == generation else { return }
            pair.round = nil
            pair.due = next
            pair.timer = schedule(key, pair)
            s.pairs[key] = pair
        }
    }
}

/// A counting semaphore for probes, FIFO, whose waiters leave when their task is cancelled.
final class ProbeSlots: Sendable {
    private struct State {
        var limit: Int
        var inUse = 0
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Bool, Never>)] = []
        var nextID: UInt64 = 0
    }
    private let state: Mutex<State>

    init(limit: Int) { state = Mutex(State(limit: max(1, limit))) }

    func setLimit(_ limit: Int) {
        let wake = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            s.limit = max(1, limit)
            var woken: [CheckedContinuation<Bool, Never>] = []
            while s.inUse < s.limit, !s.waiters.isEmpty {
                s.inUse += 1
                woken.append(s.waiters.removeFirst().continuation)
            }
            return woken
        }
        for c in wake { c.resume(returning: true) }
    }

    /// Takes a slot; false if the task was cancelled while waiting.
    func acquire() async -> Bool {
        let id = state.withLock { s -> UInt64 in s.nextID += 1; return s.nextID }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                let granted = state.withLock { s -> Bool? in
                    if Task.isCancelled { return false }
                    if s.inUse < s.limit { s.inUse += 1; return true }
                    s.waiters.append((id, c))
                    return nil
                }
                if let granted { c.resume(returning: granted) }
            }
        } onCancel: {
            let c = state.withLock { s -> CheckedContinuation<Bool, Never>? in
                guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: i).continuation
            }
            c?.resume(returning: false)
        }
    }

    /// Slots taken and tasks waiting for one (what tests of the FIFO and the limit watch).
    var counts: (inUse: Int, waiting: Int) { state.withLock { ($0.inUse, $0.waiters.count) } }

    func release() {
        let next = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            if !s.waiters.isEmpty, s.inUse <= s.limit { return s.waiters.removeFirst().continuation }
            s.inUse -= 1
            return nil
        }
        next?.resume(returning: true)
    }
}

/// What the scheduler needs of time: a monotonic now, one-shot timers, and the random offsets
/// that spread the first rounds.
public protocol SchedulerClock: Sendable {
    /// Monotonic nanoseconds (CLOCK_MONOTONIC in the agent).
    func now() -> UInt64
    /// Runs `action` once `now()` reaches `at`, unless cancelled first.
    func schedule(at: UInt64, _ action: @escaping @Sendable () -> Void) -> SchedulerTimer
    /// A random offset in `0..<window` seconds.
    func randomOffset(below window: Double) -> Double
}

/// A timer set by a ``SchedulerClock``; `cancel()` stops it if it has not run.
public struct SchedulerTimer: Sendable {
    let cancelAction: @Sendable () -> Void
    public init(cancel: @escaping @Sendable () -> Void) { cancelAction = cancel }
    func cancel() { cancelAction() }
}

/// The agent's clock: the reactor's timers on CLOCK_MONOTONIC, offsets from the system's
/// random source.
public struct ReactorClock: SchedulerClock {
    public init() {}
    public func now() -> UInt64 { MonotonicClock.nanoseconds() }
    public func schedule(at: UInt64, _ action: @escaping @Sendable () -> Void) -> SchedulerTimer {
        let timer = Reactor.shared.schedule(at: Deadline(nanoseconds: at), action)
        return SchedulerTimer { _ = Reactor.shared.cancel(timer) }
    }
    public func randomOffset(below window: Double) -> Double { Double.random(in: 0..<window) }
}
