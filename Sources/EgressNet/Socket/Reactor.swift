#if canImport(Glibc)
import Glibc
#endif
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
///
/// Deadlines sit in a min-heap and one `timerfd` (in the same epoll set) is armed for the
/// earliest. A new waiter re-arms the timer only when its deadline is earlier than the armed
/// one, from its own thread: registering never wakes the reactor thread, and the loop costs
/// O(log n) per waiter rather than a scan of every waiter per wake-up. A waiter that is resumed
/// or cancelled leaves its heap entry behind; stale entries are dropped when they reach the top.
///
/// The reactor is also a `TaskExecutor`. A task that prefers it (the scheduler's probe loops:
/// `Task(executorPreference: Reactor.shared)`) runs on the reactor thread, so when its
/// descriptor becomes ready it continues right there, in the same loop iteration, instead of
/// waking a thread of the cooperative pool: one thread wake-up per I/O event rather than two
/// or three. Such tasks must not block; probes do not (every wait parks here). Tasks without
/// the preference (the HTTP listener and its /metrics render) run on the pool as before.
///
/// The price: a probe's CPU work (a TLS handshake, about 1 ms; hashing a 16 KB blob read; a
/// manifest's JSON) runs on this one thread, so an event that arrives meanwhile is seen when
/// that job ends, and a phase that ends then is timed that much longer. At 60 probes a second
/// the thread is busy a few percent of the time; a probe alone (`check`) is never delayed.
public final class Reactor: TaskExecutor, Sendable {
    /// The process-wide reactor.
    public static let shared = Reactor()

    /// What happens when a waiter is due: a suspended task resumes, or a timer runs an action.
    private enum Resumption {
        case task(CheckedContinuation<WaitOutcome, Never>)
        case action(@Sendable () -> Void)
    }

    private struct Waiter {
        /// The descriptor, or -1 for a sleep or a timer.
        let fd: Int32
        let deadline: Deadline
        let resumption: Resumption
    }

    private struct State {
        var waiters: [UInt64: Waiter] = [:]
        var nextID: UInt64 = 1
        /// (deadline, waiter id) of every waiter with a finite deadline, plus stale entries.
        var deadlines = DeadlineHeap()
        /// The deadline the timer is armed for; `.max` when disarmed. Changed only under the
        /// lock, together with the timer itself, so the two always agree.
        var armed: UInt64 = .max
    }

    /// Jobs of tasks that prefer this executor, run by the loop after each batch of events.
    private struct Jobs {
        var queue: [UnownedJob] = []
        /// The loop is in (or about to enter) an unbounded epoll_wait.
        var sleeping = false
        /// The wake-up descriptor was written and not read back yet.
        var wakePending = false
    }

    private let epollFD: Int32
    private let timerFD: Int32
    /// An eventfd that wakes the loop for jobs enqueued from other threads.
    private let wakeFD: Int32
    private let state = Mutex(State())
    private let jobs = Mutex(Jobs())
    private static let wakeID = UInt64.max

    private init() {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        timerFD = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_CLOEXEC) | Int32(TFD_NONBLOCK))
        precondition(epollFD >= 0 && timerFD >= 0, "epoll/timerfd unavailable: errno \(errno)")
        var ev = epoll_event()
        ev.events = UInt32(EPOLLIN.rawValue)
        ev.data.u64 = 0  // id 0 is the deadline timer
        precondition(epoll_ctl(epollFD, EPOLL_CTL_ADD, timerFD, &ev) == 0)
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))
        precondition(wakeFD >= 0, "eventfd unavailable: errno \(errno)")
        ev.data.u64 = Self.wakeID
        precondition(epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &ev) == 0)
        // Probe rounds run here (TLS handshakes, JSON): room for OpenSSL's deepest calls. Only the
        // pages touched count towards RSS.
        SystemThread.start(name: "egress-reactor", stackSize: 1024 * 1024) { [self] in run() }
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

    /// Runs `job` on the reactor thread (TaskExecutor). From the reactor thread itself this only
    /// queues it: the loop drains the queue before it waits again.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let wake = jobs.withLock { j -> Bool in
            j.queue.append(job)
            guard j.sleeping, !j.wakePending else { return false }
            j.wakePending = true
            return true
        }
        if wake {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }
    }

    /// Suspends until `deadline` passes (`.timedOut`) or the task is cancelled (`.cancelled`):
    /// a sleep on the reactor's timer, without a thread of its own.
    public func sleep(until deadline: Deadline) async -> WaitOutcome {
        await wait(fd: -1, for: .readable, deadline: deadline)
    }

    /// A timer set with ``schedule(at:_:)``.
    public struct Timer: Hashable, Sendable {
        fileprivate let id: UInt64
    }

    /// Runs `action` on the reactor thread once `deadline` passes, unless ``cancel(_:)`` comes
    /// first. Costs a heap entry, not a suspended task: the scheduler keeps one per idle pair.
    /// The action must be short (starting a task, say); it runs outside the reactor's lock.
    public func schedule(at deadline: Deadline, _ action: @escaping @Sendable () -> Void) -> Timer {
        let id = state.withLock { s -> UInt64 in
            let id = s.nextID
            s.nextID += 1
            s.waiters[id] = Waiter(fd: -1, deadline: deadline, resumption: .action(action))
            s.deadlines.push(deadline.nanoseconds, id)
            if deadline.nanoseconds < s.armed { arm(&s, deadline.nanoseconds) }
            return id
        }
        return Timer(id: id)
    }

    /// Cancels a timer; false if it already ran (or is running).
    @discardableResult
    public func cancel(_ timer: Timer) -> Bool {
        state.withLock { $0.waiters.removeValue(forKey: timer.id) } != nil
    }

    /// Whether a task is suspended in ``wait(fd:for:deadline:)`` on `fd` (-1: in
    /// ``sleep(until:)``) with `deadline`: lets a test wake a wait it knows was parked, rather
    /// than one that may not have reached the reactor yet.
    func hasParkedTask(fd: Int32, deadline: Deadline) -> Bool {
        state.withLock { s in
            s.waiters.values.contains { w in
                guard case .task = w.resumption else { return false }
                return w.fd == fd && w.deadline.nanoseconds == deadline.nanoseconds
            }
        }
    }

    /// Forgets `fd` before it is closed, so a stale registration cannot fire for a reused number.
    public func deregister(fd: Int32) {
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
    }

    private func register(id: UInt64, fd: Int32, interest: Interest, deadline: Deadline,
                          continuation: CheckedContinuation<WaitOutcome, Never>) {
        let registered = state.withLock { s -> Bool in
            // Checked under the lock: a cancellation either happened before (seen here) or
            // after the insert (then `cancel` finds the waiter). No window in between.
            if Task.isCancelled { return false }
            s.waiters[id] = Waiter(fd: fd, deadline: deadline, resumption: .task(continuation))
            if deadline < .distantFuture {
                s.deadlines.push(deadline.nanoseconds, id)
                if deadline.nanoseconds < s.armed { arm(&s, deadline.nanoseconds) }
            }
            return true
        }
        guard registered else {
            continuation.resume(returning: .cancelled)
            return
        }
        if fd < 0 { return }  // a sleep: the timer alone resumes it
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
        }
    }

    /// Arms the timer for `deadline` (absolute, CLOCK_MONOTONIC ns), or disarms it for `.max`.
    /// Called with the lock held, so the timer and `armed` change together.
    private func arm(_ s: inout State, _ deadline: UInt64) {
        s.armed = deadline
        var spec = itimerspec()
        if deadline != .max {
            let at = max(deadline, 1)  // an all-zero value would disarm
            spec.it_value.tv_sec = Int(at / 1_000_000_000)
            spec.it_value.tv_nsec = Int(at % 1_000_000_000)
        }
        _ = timerfd_settime(timerFD, Int32(TFD_TIMER_ABSTIME), &spec, nil)
    }

    private func cancel(id: UInt64) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        if let waiter {
            disarm(fd: waiter.fd)
            Self.resume(waiter, with: .cancelled)
        }
    }

    private func resume(id: UInt64, with outcome: WaitOutcome) {
        if let waiter = state.withLock({ $0.waiters.removeValue(forKey: id) }) {
            Self.resume(waiter, with: outcome)
        }
    }

    /// Resumes a task with `outcome`, or runs a timer's action when it is due.
    private static func resume(_ waiter: Waiter, with outcome: WaitOutcome) {
        switch waiter.resumption {
        case .task(let continuation): continuation.resume(returning: outcome)
        case .action(let action): if outcome == .timedOut { action() }
        }
    }

    private func disarm(fd: Int32) {
        guard fd >= 0 else { return }
        var ev = epoll_event()
        ev.events = 0
        _ = epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &ev)
    }

    private func run() {
        let capacity = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        var ready: [Waiter] = []
        var expired: [Waiter] = []
        var batch: [UnownedJob] = []
        let executor = asUnownedTaskExecutor()
        while true {
            // Sleep without a timeout (deadlines arrive as the timer's readiness), unless jobs
            // are queued: then only collect what is ready.
            let idle = jobs.withLock { j -> Bool in
                j.sleeping = j.queue.isEmpty
                return j.sleeping
            }
            let n = epoll_wait(epollFD, events, Int32(capacity), idle ? -1 : 0)
            if idle { jobs.withLock { $0.sleeping = false } }
            if n < 0 {
                if errno == EINTR { continue }
                fatalError("epoll_wait failed: errno \(errno)")
            }
            var timerFired = false
            for i in 0..<Int(n) {
                switch events[i].data.u64 {
                case 0:
                    // Read before looking at the heap: an expiry armed after this read stays
                    // readable for the next epoll_wait.
                    var ticks: UInt64 = 0
                    _ = Glibc.read(timerFD, &ticks, 8)
                    timerFired = true
                case Self.wakeID:
                    var value: UInt64 = 0
                    _ = Glibc.read(wakeFD, &value, 8)
                    jobs.withLock { $0.wakePending = false }
                default:
                    break
                }
            }
            state.withLock { s in
                for i in 0..<Int(n) {
                    let id = events[i].data.u64
                    if id == 0 || id == Self.wakeID { continue }
                    if let w = s.waiters.removeValue(forKey: id) { ready.append(w) }
                }
                guard timerFired else { return }
                let now = MonotonicClock.nanoseconds()
                // Expire what is due; drop entries of waiters already resumed or cancelled.
                while let top = s.deadlines.min {
                    let live = s.waiters[top.id] != nil
                    guard top.deadline <= now || !live else { break }
                    s.deadlines.removeMin()
                    if live, let w = s.waiters.removeValue(forKey: top.id) {
                        // Leave the one-shot registration armed: the fd owner closes or re-arms it.
                        expired.append(w)
                    }
                }
                arm(&s, s.deadlines.min?.deadline ?? .max)
            }
            for w in ready { Self.resume(w, with: .ready) }
            for w in expired { Self.resume(w, with: .timedOut) }
            ready.removeAll(keepingCapacity: true)
            expired.removeAll(keepingCapacity: true)
            // Run the jobs queued so far (those just resumed among them); jobs they queue in
            // turn wait for the next iteration, after a look at the descriptors.
            jobs.withLock { swap(&$0.queue, &batch) }
            for job in batch { job.runSynchronously(on: executor) }
            batch.removeAll(keepingCapacity: true)
        }
    }

    /// How many waiters are parked (for tests and the scale benchmark).
    public var waiterCount: Int { state.withLock { $0.waiters.count } }
}

/// A binary min-heap of (deadline, waiter id), ordered by deadline.
private struct DeadlineHeap {
    private var items: [(deadline: UInt64, id: UInt64)] = []

    var min: (deadline: UInt64, id: UInt64)? { items.first }

    mutating func push(_ deadline: UInt64, _ id: UInt64) {
        items.append((deadline, id))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].deadline < items[parent].deadline else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func removeMin() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var i = 0
        while true {
            let left = 2 * i + 1, right = left + 1
            var smallest = i
            if left < items.count && items[left].deadline < items[smallest].deadline { smallest = left }
            if right < items.count && items[right].deadline < items[smallest].deadline { smallest = right }
            if smallest == i { return }
            items.swapAt(i, smallest)
            i = smallest
        }
    }
}
