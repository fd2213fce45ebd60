import CLinux
import EgressSync
#if canImport(Glibc)
import Glibc
#endif

/// Named, detached pthreads for the few jobs that must block a thread of their own (the reactor's
/// epoll loop, bcrypt, reading the signal pipe), so that neither Swift's cooperative pool nor
/// libdispatch's threads are ever held. The product imports neither Dispatch nor Foundation.
public enum SystemThread {
    /// Starts a detached thread named `name` (at most 15 bytes show in /proc) running `body`.
    /// Only the stack pages a thread touches count towards RSS.
    public static func start(name: String, stackSize: Int = 256 * 1024, _ body: @escaping @Sendable () -> Void) {
        final class Start: @unchecked Sendable {
            let name: String
            let body: @Sendable () -> Void
            init(_ name: String, _ body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
        }
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, stackSize)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        let started = pthread_create(&thread, &attributes, { context in
            let start = Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
            pthread_setname_np(pthread_self(), String(start.name.utf8.prefix(15))!)
            start.body()
            return nil
        }, Unmanaged.passRetained(Start(name, body)).toOpaque())
        precondition(started == 0, "cannot start thread \(name): error \(started)")
    }
}

/// One thread running submitted jobs in order, for blocking work (bcrypt) that must not hold a
/// thread of Swift's cooperative pool. The thread is started by `init` and lives as long as the
/// process: keep a worker in a `static let`, which also starts it only at first use.
public final class SerialWorker: @unchecked Sendable {  // the jobs behind a Mutex; sem_t is thread-safe
    private let jobs = Mutex([@Sendable () -> Void]())
    private let ready: UnsafeMutablePointer<sem_t>

    public init(name: String) {
        ready = .allocate(capacity: 1)
        precondition(sem_init(ready, 0, 0) == 0, "sem_init: errno \(errno)")
        SystemThread.start(name: name) { [self] in
            while true {
                while sem_wait(ready) != 0 {}  // EINTR: wait again
                jobs.withLock { $0.removeFirst() }()
            }
        }
    }

    /// Runs `job` on the worker's thread after the jobs submitted before it.
    public func submit(_ job: @escaping @Sendable () -> Void) {
        jobs.withLock { $0.append(job) }
        sem_post(ready)
    }
}

/// Delivers the process's `signals` as an async sequence: a handler writes each signal's number
/// to a pipe (CLinux's egress_signal_forward, async-signal-safe) and a thread of its own reads
/// it, so nothing Swift runs in signal context. For the executable; call it once.
public func signalStream(_ signals: [Int32]) -> AsyncStream<Int32> {
    var fds: [Int32] = [-1, -1]
    precondition(pipe(&fds) == 0, "pipe: errno \(errno)")
    let (readFD, writeFD) = (fds[0], fds[1])
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    // The handler's end never blocks: a full pipe (thousands of unread signals) drops one.
    _ = fcntl(writeFD, F_SETFL, fcntl(writeFD, F_GETFL) | O_NONBLOCK)
    let (stream, continuation) = AsyncStream<Int32>.makeStream()
    SystemThread.start(name: "egress-signals", stackSize: 128 * 1024) {
        var byte: UInt8 = 0
        while true {
            let n = read(readFD, &byte, 1)
            if n == 1 { continuation.yield(Int32(byte)) } else if n < 0 && errno == EINTR { continue } else { break }
        }
        continuation.finish()
    }
    for s in signals {
        precondition(egress_signal_forward(s, writeFD) == 0, "sigaction(\(s)): errno \(errno)")
    }
    return stream
}
