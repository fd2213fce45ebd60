#if canImport(Glibc)
import Glibc
#endif
import Foundation
import CLinux
import EgressSync

/// What a waiter wants from a file descriptor.
public enum Interest: Sendable {
    case readable
    case writable

    var epollEvents: UInt32 {
        switch self {
        case .readable: return UInt32(EPOLLIN.rawValue) | UInt32(EPOLLRDHUP.rawValue)
        case .writable: return UInt32(EPOLLOUT.rawValue)
        }
    }
}

/// How a wait ended.
public enum WaitOutcome: Sendable, Equatable {
    /// The descriptor is ready (or has an error or hang-up to read; the next syscall tells which).
    case ready
    /// The deadline passed first.
    case timedOut
    /// The waiting task was cancelled.
    case cancelled
}

/// One thread on `epoll` that resumes async waiters when their descriptor is ready or their
/// deadline passes.
///
/// No thread of Swift's cooperative pool ever blocks in a syscall: sockets are non-blocking, and
/// a call that would block parks its task here. Each descriptor has at most one waiter at a time
/// (probes are straight-line code: one socket, one operation at a time). Registrations are
/// one-shot (`EPOLLONESHOT`), so a readiness event is delivered once, to the waiter that asked.
public final class Reactor: Sendable {
    /// The process-wide reactor.
    public static let shared = Reactor()

    private struct Waiter {
        let fd: Int32
        let deadline: Deadline
        let continuation: CheckedContinuation<WaitOutcome, Never>
    }

    private struct State {
        var waiters: [UInt64: Waiter] = [:]
        var nextID: UInt64 = 1
        /// When the loop plans to wake next (its epoll_wait timeout), to decide whether a new
        /// waiter with an earlier deadline must interrupt it.
        var plannedWake: UInt64 = .max
    }

    private let epollFD: Int32
    private let wakeFD: Int32
    private let state = Mutex(State())

    private init() {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))
        precondition(epollFD >= 0 && wakeFD >= 0, "epoll/eventfd unavailable: errno \(errno)")
        var ev = epoll_event()
        ev.events = UInt32(EPOLLIN.rawValue)
        ev.data.u64 = 0  // id 0 is the wake-up descriptor
        precondition(epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &ev) == 0)
        let thread = Thread { [self] in self.run() }
        thread.name = "egress-reactor"
        thread.stackSize = 256 * 1024
        thread.start()
    }

    /// Suspends until `fd` is ready for `interest`, `deadline` passes, or the task is cancelled.
    public func wait(fd: Int32, for interest: Interest, deadline: Deadline) async -> WaitOutcome {
        if deadline.hasPassed { return .timedOut }
        let id = state.withLock { s -> UInt64 in
            let id = s.nextID
            s.nextID += 1
            return id
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<WaitOutcome, Never>) in
                register(id: id, fd: fd, interest: interest, deadline: deadline, continuation: continuation)
            }
        } onCancel: {
            cancel(id: id)
        }
    }

    /// Forgets `fd` before it is closed, so a stale registration cannot fire for a reused number.
    public func deregister(fd: Int32) {
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
    }

    private func register(id: UInt64, fd: Int32, interest: Interest, deadline: Deadline,
                          continuation: CheckedContinuation<WaitOutcome, Never>) {
        let wake: Bool? = state.withLock { s -> Bool? in
            // Checked under the lock: a cancellation either happened before (seen here) or
            // after the insert (then `cancel` finds the waiter). No window in between.
            if Task.isCancelled { return nil }
            s.waiters[id] = Waiter(fd: fd, deadline: deadline, continuation: continuation)
            return deadline.nanoseconds < s.plannedWake
        }
        guard let wake else {
            continuation.resume(returning: .cancelled)
            return
        }
        var ev = epoll_event()
        ev.events = interest.epollEvents | UInt32(EPOLLONESHOT.rawValue)
        ev.data.u64 = id
        var rc = epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &ev)
        if rc != 0 && errno == ENOENT {
            rc = epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &ev)
        }
        if rc != 0 {
            // Cannot poll this descriptor (closed under us?): report ready so the caller's next
            // syscall surfaces the real error.
            resume(id: id, with: .ready)
            return
        }
        if wake { signalWake() }
    }

    private func cancel(id: UInt64) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        if let waiter {
            disarm(fd: waiter.fd)
            waiter.continuation.resume(returning: .cancelled)
        }
    }

    private func resume(id: UInt64, with outcome: WaitOutcome) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.continuation.resume(returning: outcome)
    }

    private func disarm(fd: Int32) {
        var ev = epoll_event()
        ev.events = 0
        _ = epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &ev)
    }

    private func signalWake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    private func run() {
        let capacity = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        while true {
            let timeoutMs: Int32 = state.withLock { s in
                let next = s.waiters.values.lazy.map(\.deadline.nanoseconds).min() ?? UInt64.max
                s.plannedWake = next
                if next == .max { return -1 }
                let now = MonotonicClock.nanoseconds()
                if next <= now { return 0 }
                // Round up so we never wake before the deadline and spin.
                return Int32(min((next - now + 999_999) / 1_000_000, 60_000))
            }
            let n = epoll_wait(epollFD, events, Int32(capacity), timeoutMs)
            if n < 0 && errno != EINTR {
                fatalError("epoll_wait failed: errno \(errno)")
            }
            var ready: [CheckedContinuation<WaitOutcome, Never>] = []
            var expired: [CheckedContinuation<WaitOutcome, Never>] = []
            state.withLock { s in
                if n > 0 {
                    for i in 0..<Int(n) {
                        let id = events[i].data.u64
                        if id == 0 { continue }
                        if let w = s.waiters.removeValue(forKey: id) { ready.append(w.continuation) }
                    }
                }
                let now = MonotonicClock.nanoseconds()
                if !s.waiters.isEmpty {
                    for (id, w) in s.waiters where w.deadline.nanoseconds <= now {
                        s.waiters.removeValue(forKey: id)
                        expired.append(w.continuation)
                        // Leave the one-shot registration armed: the fd owner closes or re-arms it.
                    }
                }
                s.plannedWake = 0  // recomputed at the top of the loop
            }
            if n > 0 {
                for i in 0..<Int(n) where events[i].data.u64 == 0 {
                    var value: UInt64 = 0
                    _ = Glibc.read(wakeFD, &value, 8)
                }
            }
            for c in ready { c.resume(returning: .ready) }
            for c in expired { c.resume(returning: .timedOut) }
        }
    }

    /// How many waiters are parked (for tests and the scale benchmark).
    public var waiterCount: Int { state.withLock { $0.waiters.count } }
}
