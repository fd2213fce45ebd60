import EgressMetrics
import EgressNet
import EgressSync

/// Runs every target × path pair once per interval.
///
/// Each pair has one loop task, so two runs of the same pair never overlap. The first round of
/// each pair starts at a random offset (jitter, see `jitterWindow`), so a thousand pairs do not
/// all fire at once. At most `concurrency` probes run at a time; a round that must wait for a
/// slot counts that wait as scheduler lag. A round that would start more than an interval late
/// is skipped, keeping the pair on its grid.
public final class Scheduler: Sendable {
    private let store: ResultStore
    private let slots: ProbeSlots
    private struct State {
        var engine: ProbeEngine
        var loops: [PairKey: Task<Void, Never>] = [:]
        var stopped = false
    }
    private let state: Mutex<State>

    public init(engine: ProbeEngine, store: ResultStore) {
        self.store = store
        self.slots = ProbeSlots(limit: engine.config.concurrency)
        self.state = Mutex(State(engine: engine))
    }

    /// Starts (or, after a reload, reconciles) the loops: pairs that stayed keep running and
    /// their counters, new pairs start with jitter, removed pairs stop and lose their series.
    public func apply(_ engine: ProbeEngine, jitter: Bool = true) {
        let config = engine.config
        let keys = config.pairs.map { PairKey(target: $0.target.name, path: $0.path.name) }
        store.setPairs(keys)
        store.setUpstreams(Dictionary(config.targets.compactMap { t in t.registry.upstream.map { (t.name, $0) } },
                                      uniquingKeysWith: { a, _ in a }))
        slots.setLimit(config.concurrency)
        let cancelled: [Task<Void, Never>] = state.withLock { s in
            guard !s.stopped else { return [] }
            s.engine = engine
            let wanted = Set(keys)
            var gone: [Task<Void, Never>] = []
            for (key, task) in s.loops where !wanted.contains(key) {
                gone.append(task)
                s.loops.removeValue(forKey: key)
            }
            let window = Self.jitterWindow(pairs: keys.count, interval: config.intervalSeconds)
            for key in keys where s.loops[key] == nil {
                let offset = jitter ? Double.random(in: 0..<window) : 0
                s.loops[key] = Task { [self] in await self.loop(key, firstDelay: offset) }
            }
            return gone
        }
        for task in cancelled { task.cancel() }
    }

    /// The first rounds start spread over this many seconds: about a hundred starts a second at
    /// most, at least 2 s, never more than the interval. A few pairs report within seconds of
    /// start; thousands spread over their interval.
    static func jitterWindow(pairs: Int, interval: Double) -> Double {
        min(interval, max(2, Double(pairs) * 0.01))
    }

    /// Stops every loop; probes in flight are cancelled and end at once (their waits see the
    /// cancellation), and their results are not recorded. Returns when all loops have ended.
    public func stop() async {
        let tasks = state.withLock { s -> [Task<Void, Never>] in
            s.stopped = true
            let t = Array(s.loops.values)
            s.loops.removeAll()
            return t
        }
        for t in tasks { t.cancel() }
        for t in tasks { await t.value }
    }

    private func currentEngine() -> ProbeEngine { state.withLock { $0.engine } }

    private func loop(_ key: PairKey, firstDelay: Double) async {
        var next = MonotonicClock.nanoseconds() + UInt64(firstDelay * 1e9)
        while !Task.isCancelled {
            let now = MonotonicClock.nanoseconds()
            if next > now {
                do { try await Task.sleep(nanoseconds: next - now) } catch { return }
            }
            guard await slots.acquire() else { return }
            let lag = MonotonicClock.nanoseconds() &- next
            store.metrics.observe(Catalogue.schedulerLag, max(0, Double(Int64(bitPattern: lag)) / 1e9))
            let engine = currentEngine()
            guard let pair = engine.config.pairs.first(where: { $0.target.name == key.target && $0.path.name == key.path }) else {
                slots.release()
                return
            }
            let result = await engine.probe(target: pair.target, path: pair.path)
            slots.release()
            if Task.isCancelled { return }
            store.record(result)
            let interval = UInt64(engine.config.intervalSeconds * 1e9)
            next += interval
            let after = MonotonicClock.nanoseconds()
            if next < after {
                // Fell behind by more than an interval: skip the missed rounds, stay on the grid.
                next += ((after - next) / interval + 1) * interval
            }
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

    func release() {
        let next = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            if !s.waiters.isEmpty, s.inUse <= s.limit { return s.waiters.removeFirst().continuation }
            s.inUse -= 1
            return nil
        }
        next?.resume(returning: true)
    }
}
