#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind a `pthread_mutex_t`, with the API of the standard library's
/// `Synchronization.Mutex` (`init(_:)`, `withLock`, `withLockIfAvailable`), which it replaces in
/// this package.
///
/// Why not `Synchronization.Mutex`: on Linux its contended path parks and hands over the lock in
/// the kernel (`FUTEX_LOCK_PI` / `FUTEX_UNLOCK_PI`, in the uninstrumented
/// libswiftSynchronization.so), so ThreadSanitizer sees no release/acquire between two holders
/// and reports every access inside `withLock` that ever met contention as a race — 160 false
/// reports on this package's test suite, which would hide a real one. ThreadSanitizer intercepts
/// `pthread_mutex_lock`/`unlock`, so with this lock it checks our locking for real (and its
/// lock-order-inversion detector works). Uncontended, glibc's mutex is one atomic exchange each
/// way, as the standard library's is. See Tests/Sanitizers/README.md.
public struct Mutex<Value>: ~Copyable, @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let value: UnsafeMutablePointer<Value>

    public init(_ initialValue: sending Value) {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(lock, nil)
        precondition(rc == 0, "pthread_mutex_init: \(rc)")
        value = .allocate(capacity: 1)
        value.initialize(to: initialValue)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    public borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return try body(&value.pointee)
    }

    /// Runs `body` with exclusive access to the value if the lock is free now; nil otherwise.
    public borrowing func withLockIfAvailable<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result? {
        guard pthread_mutex_trylock(lock) == 0 else { return nil }
        defer { pthread_mutex_unlock(lock) }
        return try body(&value.pointee)
    }
}
