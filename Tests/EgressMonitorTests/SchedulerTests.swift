import Testing
@testable import EgressMonitor
import EgressMetrics
import EgressNet
import EgressSync
import EgressTestSupport

/// A clock the test moves by hand: timers run only when `advance(to:)` passes them, and the
/// first rounds' offsets are scripted fractions of the window.
final class ManualClock: SchedulerClock {
    private struct State {
        var now: UInt64
        var timers: [UInt64: (at: UInt64, action: @Sendable () -> Void)] = [:]
        var nextID: UInt64 = 0
        var windows: [Double] = []
        var offsetCalls = 0
    }
    private let state: Mutex<State>
    /// Fractions of the window handed out in turn as offsets.
    private let fractions: [Double]

    init(now: UInt64 = 1_000_000_000_000, fractions: [Double] = [0.5]) {
        state = Mutex(State(now: now))
        self.fractions = fractions
    }

    func now() -> UInt64 { state.withLock { $0.now } }

    func schedule(at: UInt64, _ action: @escaping @Sendable () -> Void) -> SchedulerTimer {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            s.timers[s.nextID] = (at, action)
            return s.nextID
        }
        return SchedulerTimer { [self] in _ = state.withLock { $0.timers.removeValue(forKey: id) } }
    }

    func randomOffset(below window: Double) -> Double {
        state.withLock { s in
            s.windows.append(window)
            defer { s.offsetCalls += 1 }
            return fractions[s.offsetCalls % fractions.count] * window
        }
    }

    /// When the pending timers are due, earliest first.
    var pending: [UInt64] { state.withLock { $0.timers.values.map(\.at).sorted() } }
    /// The windows the scheduler asked offsets in.
    var windows: [Double] { state.withLock { $0.windows } }

    /// Moves the clock to `t` and runs every timer due by then, earliest first.
    func advance(to t: UInt64) {
        let due = state.withLock { s -> [@Sendable () -> Void] in
            s.now = t
            let ready = s.timers.filter { $0.value.at <= t }.sorted { $0.value.at < $1.value.at }
            for (id, _) in ready { s.timers.removeValue(forKey: id) }
            return ready.map(\.value.action)
        }
        for action in due { action() }
    }
}

/// The scheduler without wall time (issue 17, item 9): the jitter window of the first rounds,
/// the grid a late round returns to, the lag it records, and the probe slots.
@Suite struct SchedulerTests {
    static let second: UInt64 = 1_000_000_000

    @Test(arguments: [(1, 30.0, 2.0), (150, 30.0, 2.0), (500, 30.0, 5.0), (2_000, 30.0, 20.0), (5_000, 30.0, 30.0), (10, 1.0, 1.0)])
    func jitterWindowIsAHundredStartsASecondAtLeastTwoSecondsAtMostTheInterval(pairs: Int, interval: Double, window: Double) {
        #expect(Scheduler.jitterWindow(pairs: pairs, interval: interval) == window)
    }

    /// A round's successor: an interval after it, or the first point of its grid still ahead.
    @Test(arguments: [
        (UInt64(0), UInt64(10), UInt64(5), UInt64(10)),   // on time
        (0, 10, 10, 10),                                  // ends exactly at the next: kept
        (0, 10, 11, 20),                                  // one round missed: skipped
        (0, 10, 35, 40),                                  // three missed: back on the grid
        (7, 10, 100, 107),                                // the grid is the pair's own offset
    ])
    func nextRoundStaysOnTheGridAndSkipsMissedRounds(due: UInt64, interval: UInt64, now: UInt64, next: UInt64) {
        #expect(Scheduler.nextDue(after: due * Self.second, interval: interval * Self.second, now: now * Self.second) == next * Self.second)
    }

    static func config(pairs: Int, interval: Double, port: UInt16, concurrency: Int = 8) -> AgentConfig {
        var config = LabConfig.config(targets: (0..<pairs).map { LabConfig.target("t\($0)", kind: .tcp, url: "tcp://127.0.0.1:\(port)") },
                                      timeout: 1, interval: interval)
        config.concurrency = concurrency
        return config
    }

    /// Waits (bounded) until `condition` holds: a round runs a real probe, on the reactor.
    static func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        let limit = Deadline.after(seconds: 10)
        while !condition() {
            try #require(!limit.hasPassed, "never: \(what)")
            try await Task.sleep(nanoseconds: 1_000_000)
        }
    }

    /// 500 pairs every 30 s: the first rounds spread over 5 s from now, each at its offset;
    /// without jitter all are due now.
    @Test func firstRoundsSpreadOverTheJitterWindow() async throws {
        let pairs = 500
        let clock = ManualClock(fractions: (0..<pairs).map { Double($0) / Double(pairs) })
        let engine = ProbeEngine(config: Self.config(pairs: pairs, interval: 30, port: 9))
        let scheduler = Scheduler(engine: engine, store: ResultStore(metrics: Catalogue.makeStore()), clock: clock)
        let t0 = clock.now()
        scheduler.apply(engine, jitter: true)
        #expect(clock.windows.count == pairs && clock.windows.allSatisfy { $0 == 5 })
        let expected = (0..<pairs).map { t0 + UInt64(Double($0) / Double(pairs) * 5 * 1e9) }
        #expect(clock.pending == expected.sorted())
        #expect(clock.pending.allSatisfy { $0 >= t0 && $0 < t0 + 5 * Self.second })
        await scheduler.stop()
        #expect(clock.pending.isEmpty, "stop cancels every timer")

        let plain = ManualClock()
        let unjittered = Scheduler(engine: engine, store: ResultStore(metrics: Catalogue.makeStore()), clock: plain)
        unjittered.apply(engine, jitter: false)
        #expect(plain.windows.isEmpty)
        #expect(plain.pending == Array(repeating: plain.now(), count: pairs))
        await unjittered.stop()
    }

    /// One pair every 10 s against a closed port: a round started 2.5 s late records a lag of
    /// 2.5 s and sets the next round on the grid (t0 + 10 s); one that starts 25 s late skips
    /// the rounds it missed (next at t0 + 40 s), with a lag of 25 s.
    @Test func lateRoundsRecordTheirLagAndReturnToTheGrid() async throws {
        let closed = FreePort.next()
        let clock = ManualClock()
        let engine = ProbeEngine(config: Self.config(pairs: 1, interval: 10, port: closed))
        let store = ResultStore(metrics: Catalogue.makeStore())
        let scheduler = Scheduler(engine: engine, store: store, clock: clock)
        let t0 = clock.now()
        scheduler.apply(engine, jitter: false)
        #expect(clock.pending == [t0])

        clock.advance(to: t0 + 5 * Self.second / 2)
        try await Self.waitUntil("the next round is set") { clock.pending == [t0 + 10 * Self.second] }
        var lag = try #require(store.metrics.histogramSnapshot(Catalogue.schedulerLag, []))
        #expect(lag.count == 1 && lag.sum == 2.5)

        clock.advance(to: t0 + 35 * Self.second)
        try await Self.waitUntil("the round after the missed ones is set") { clock.pending == [t0 + 40 * Self.second] }
        lag = try #require(store.metrics.histogramSnapshot(Catalogue.schedulerLag, []))
        #expect(lag.count == 2 && lag.sum == 2.5 + 25)
        #expect(store.metrics.value(Catalogue.probeRuns, ["t0", "direct"]) == 2)
        await scheduler.stop()
    }

    /// The probe slots: at most `limit` at once, waiters served first come first served, a
    /// raised limit wakes waiters at once, and a cancelled waiter leaves without a slot.
    @Test func probeSlotsAreBoundedFIFOAndCancellable() async throws {
        let slots = ProbeSlots(limit: 2)
        #expect(await slots.acquire())
        #expect(await slots.acquire())
        #expect(slots.counts == (2, 0))
        let order = Mutex<[Int]>([])
        var waiters: [Task<Bool, Never>] = []
        for i in 0..<3 {
            waiters.append(Task { @Sendable [i] in
                let got = await slots.acquire()
                if got { order.withLock { $0.append(i) } }
                return got
            })
            // Queued in this order: each is waiting before the next starts.
            try await Self.waitUntil("waiter \(i) queued") { slots.counts.waiting == i + 1 }
        }
        slots.release()
        #expect(await waiters[0].value)
        #expect(slots.counts == (2, 2))
        waiters[1].cancel()
        #expect(await waiters[1].value == false)
        #expect(slots.counts == (2, 1))
        slots.setLimit(3)
        #expect(await waiters[2].value)
        #expect(slots.counts == (3, 0))
        #expect(order.withLock { $0 } == [0, 2])
    }
}
