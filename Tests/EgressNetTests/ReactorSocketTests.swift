import Foundation
import Testing
@testable import EgressNet
import CLinux
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The reactor's timers (`schedule(at:)`, `sleep(until:)`) and the reactor as a task executor,
/// which the scheduler runs its rounds on.
@Suite struct ReactorSocketTests {
    @Test func timersFireInDeadlineOrderAndNotBefore() async throws {
        let fired = Mutex<[(Int, UInt64)]>([])
        let start = MonotonicClock.nanoseconds()
        let offsets: [UInt64] = [120, 30, 90, 60, 0, 150].map { $0 * 1_000_000 }
        for (i, offset) in offsets.enumerated() {
            let due = start + 20_000_000 + offset
            _ = Reactor.shared.schedule(at: Deadline(nanoseconds: due)) {
                fired.withLock { $0.append((i, MonotonicClock.nanoseconds())) }
            }
        }
        let cancelled = Reactor.shared.schedule(at: Deadline(nanoseconds: start + 50_000_000)) {
            fired.withLock { $0.append((-1, 0)) }
        }
        #expect(Reactor.shared.cancel(cancelled))
        _ = await Reactor.shared.sleep(until: Deadline(nanoseconds: start + 400_000_000))
        let got = fired.withLock { $0 }
        #expect(got.map(\.0) == [4, 1, 3, 2, 0, 5])
        for (i, at) in got {
            #expect(at >= start + 20_000_000 + offsets[i], "timer \(i) fired early")
        }
    }

    @Test func sleepEndsAtItsDeadlineOrOnCancellation() async throws {
        let start = MonotonicClock.nanoseconds()
        #expect(await Reactor.shared.sleep(until: .after(seconds: 0.05)) == .timedOut)
        #expect(MonotonicClock.seconds(since: start) >= 0.05)
        let far = Deadline.after(seconds: 30)
        let sleeper = Task { await Reactor.shared.sleep(until: far) }
        // Cancelled once parked on the reactor's timer, so the reactor's wake-up is what ends it.
        try await SocketTests.waitUntil("the sleep is parked") { Reactor.shared.hasParkedTask(fd: -1, deadline: far) }
        let cancelledAt = MonotonicClock.nanoseconds()
        sleeper.cancel()
        #expect(await sleeper.value == .cancelled)
        #expect(MonotonicClock.seconds(since: cancelledAt) < 2, "the cancelled sleep was not woken at once")
        _ = start
    }

    @Test func tasksOnTheReactorDoSocketIOAndSleep() async throws {
        let listener = try Socket.listen(on: SocketTests.loopback)
        defer { listener.close() }
        let address = try #require(listener.localAddress)
        let echo = Task(executorPreference: Reactor.shared) { () async throws -> [UInt8] in
            let (conn, _) = try await listener.accept(deadline: .after(seconds: 5))
            defer { conn.close() }
            let got = try await conn.read(deadline: .after(seconds: 5))
            _ = await Reactor.shared.sleep(until: .after(seconds: 0.01))
            try await conn.write(got.reversed(), deadline: .after(seconds: 5))
            return got
        }
        let client = Task(executorPreference: Reactor.shared) { () async throws -> [UInt8] in
            let s = try Socket.tcp(family: address.family)
            defer { s.close() }
            try await s.connect(to: address, deadline: .after(seconds: 5))
            try await s.write(Array("ping".utf8), deadline: .after(seconds: 5))
            return try await s.read(deadline: .after(seconds: 5))
        }
        #expect(try await client.value == Array("gnip".utf8))
        #expect(try await echo.value == Array("ping".utf8))
    }

    /// Many waiters at once, in the heap in random order: a thousand sleepers (every other one
    /// cancelled), and UDP sockets of which half get a datagram and half time out. Each ends
    /// once, with its own outcome, never before its deadline.
    @Test func manyWaitersEachEndOnceWithTheirOutcome() async throws {
        let start = MonotonicClock.nanoseconds()
        // The odd sleepers are cancelled and due far away: `.cancelled` is the only right
        // outcome for them, however late the cancellation comes on a loaded machine.
        let sleepers = (0..<1000).map { i -> (Task<WaitOutcome, Never>, UInt64) in
            let due = start + (i % 2 == 1 ? 60_000_000_000 : UInt64.random(in: 10_000_000...300_000_000))
            return (Task { await Reactor.shared.sleep(until: Deadline(nanoseconds: due)) }, due)
        }
        for (i, s) in sleepers.enumerated() where i % 2 == 1 { s.0.cancel() }
        // Sockets: a receiver per waiter, a datagram sent to the even ones.
        var receivers: [Socket] = []
        for _ in 0..<200 {
            let r = try Socket.udp(family: AF_INET)
            try r.bind(to: SocketTests.loopback)
            receivers.append(r)
        }
        defer { for r in receivers { r.close() } }
        let sender = try Socket.udp(family: AF_INET)
        defer { sender.close() }
        // Far enough that the datagrams arrive first even on a loaded machine.
        let socketDeadline = Deadline(nanoseconds: start + 2_000_000_000)
        let readers = receivers.map { r in
            Task { () -> (WaitOutcome, UInt64) in
                let outcome = await Reactor.shared.wait(fd: r.fd, for: .readable, deadline: socketDeadline)
                return (outcome, MonotonicClock.nanoseconds())
            }
        }
        for (i, r) in receivers.enumerated() where i % 2 == 0 {
            let address = try #require(r.localAddress)
            let sent = address.withSockAddr { sa, len in Glibc.sendto(sender.fd, "x", 1, 0, sa, len) }
            #expect(sent == 1)
        }
        for (i, s) in sleepers.enumerated() {
            let outcome = await s.0.value
            if i % 2 == 0 {
                #expect(outcome == .timedOut)
                #expect(MonotonicClock.nanoseconds() >= s.1, "sleeper \(i) woke early")
            } else {
                #expect(outcome == .cancelled, "sleeper \(i)")
            }
        }
        for (i, r) in readers.enumerated() {
            let (outcome, at) = await r.value
            if i % 2 == 0 {
                #expect(outcome == .ready, "receiver \(i)")
            } else {
                #expect(outcome == .timedOut, "receiver \(i)")
                #expect(at >= socketDeadline.nanoseconds, "receiver \(i) timed out early")
            }
        }
    }

    /// A timer's action may set another timer (the scheduler does, through a round); a timer
    /// cancelled after it ran reports so.
    @Test func aTimerActionCanSetTheNextTimer() async throws {
        final class Chain: Sendable {
            let count = Mutex(0)
            let done = Mutex<CheckedContinuation<Void, Never>?>(nil)
            func next(_ left: Int) {
                _ = Reactor.shared.schedule(at: .after(seconds: 0.002)) { [self] in
                    count.withLock { $0 += 1 }
                    if left > 1 { next(left - 1) } else { done.withLock { $0?.resume(); $0 = nil } }
                }
            }
        }
        let chain = Chain()
        await withCheckedContinuation { c in
            chain.done.withLock { $0 = c }
            chain.next(20)
        }
        #expect(chain.count.withLock { $0 } == 20)
        let ran = Reactor.shared.schedule(at: .after(seconds: 0)) {}
        _ = await Reactor.shared.sleep(until: .after(seconds: 0.05))
        #expect(!Reactor.shared.cancel(ran))
    }

    /// Tasks that prefer the reactor run on its thread, whichever thread resumed or started
    /// them; jobs enqueued from many threads at once all run (no lost wake-up of a sleeping loop).
    @Test func executorJobsFromManyThreadsAllRunOnTheReactorThread() async throws {
        final class Seen: Sendable {
            let reactorThread = Mutex<pthread_t?>(nil)
            let off = Mutex(0)
        }
        let seen = Seen()
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<2000 {
                group.addTask(executorPreference: Reactor.shared) {
                    let me = pthread_self()
                    let same = seen.reactorThread.withLock { t -> Bool in
                        if t == nil { t = me }
                        return pthread_equal(t!, me) != 0
                    }
                    if !same { seen.off.withLock { $0 += 1 } }
                    if i % 3 == 0 { await Task.yield() }
                    if i % 7 == 0 { _ = await Reactor.shared.sleep(until: .after(seconds: 0.001)) }
                    if pthread_equal(seen.reactorThread.withLock { $0! }, pthread_self()) == 0 { seen.off.withLock { $0 += 1 } }
                }
            }
        }
        #expect(seen.off.withLock { $0 } == 0)
        // From a thread outside Swift's pool, while the loop is idle in epoll_wait.
        for _ in 0..<50 {
            _ = await Reactor.shared.sleep(until: .after(seconds: 0.001))
            let value = await withCheckedContinuation { (c: CheckedContinuation<Int, Never>) in
                let t = Thread { c.resume(returning: 1) }
                t.start()
            }
            let onReactor = await Task(executorPreference: Reactor.shared) { value + 1 }.value
            #expect(onReactor == 2)
        }
    }
}

/// SystemThread's threads and SerialWorker, which stand in for Dispatch in the product.
@Suite struct SystemThreadTests {
    @Test func serialWorkerRunsJobsInSubmissionOrderOnOneNamedThread() async {
        let worker = SerialWorker(name: "egress-test-w")
        let seen = Mutex<[(Int, String)]>([])
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            for i in 0..<200 {
                worker.submit {
                    var name = [CChar](repeating: 0, count: 32)
                    pthread_getname_np(pthread_self(), &name, name.count)
                    seen.withLock { $0.append((i, String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))) }
                    if i == 199 { c.resume() }
                }
            }
        }
        let all = seen.withLock { $0 }
        #expect(all.map(\.0) == Array(0..<200))
        #expect(Set(all.map(\.1)) == ["egress-test-w"])
    }

    /// Sent to the process, as `kill` and systemd send them: whichever thread does not block
    /// SIGUSR2 runs the handler (libdispatch's workers, Swift's pool, block every signal).
    @Test(.timeLimit(.minutes(1))) func signalsArriveThroughThePipe() async {
        let stream = signalStream([SIGUSR2])
        var it = stream.makeAsyncIterator()
        for _ in 0..<3 {
            kill(getpid(), SIGUSR2)
            let s = await it.next()
            #expect(s == SIGUSR2)
        }
    }
}
