#if canImport(Glibc)
import Glibc
#endif

/// What one attempt of a non-blocking operation came to.
enum IOAttempt<Value> {
    /// The call completed with this value.
    case done(Value)
    /// The kernel has nothing to give or take yet (EAGAIN, EINPROGRESS): wait for readiness.
    case wouldBlock
    /// The call failed, classified.
    case failed(NetError)

    /// The completed value transformed; would-block and failure pass through.
    func map<T>(_ transform: (Value) -> T) -> IOAttempt<T> {
        switch self {
        case .done(let value): return .done(transform(value))
        case .wouldBlock: return .wouldBlock
        case .failed(let error): return .failed(error)
        }
    }
}

/// The system-call wrappers every socket and file operation of EgressNet goes through, with one
/// errno policy (as swift-nio's `NIOPosix/System.swift`):
/// - errno is read here, right after the call returns and before any other code runs, so
///   nothing in between (a deallocation, a log line) can overwrite it;
/// - EINTR is retried (and any other errno the caller names, e.g. ECONNABORTED for accept);
/// - EBADF and EFAULT trap: a descriptor that is not open or a buffer that is not mapped can
///   only be this program's bug, and carrying on would read or write someone else's descriptor —
///   except EBADF on a socket that `close()` (from another task, which `Socket` allows) has
///   already marked closed: `closedMeanwhile` says so, and the call fails as `NetError.closed`;
/// - anything else is returned to the caller to classify (``NetError/from(errno:call:)``).
enum Syscall {
    /// How a call ended: its non-negative result, or the errno it failed with.
    enum Outcome: Equatable {
        case success(Int)
        case failure(errno: Int32)
    }

    /// Runs `call` (a libc call returning -1 and setting errno on failure) until it does not fail
    /// with EINTR or one of `more`. `name` names the call in the trap message.
    @inline(__always)
    static func run(_ name: @autoclosure () -> String, alsoRetrying more: (Int32) -> Bool = { _ in false },
                    closedMeanwhile: () -> Bool = { false }, _ call: () -> Int) -> Outcome {
        while true {
            let result = call()
            if result >= 0 { return .success(result) }
            let code = errno
            if code == EINTR || more(code) { continue }
            if code == EBADF && closedMeanwhile() { return .failure(errno: code) }
            if code == EBADF || code == EFAULT {
                preconditionFailure("\(name()): \(String(cString: strerror(code))) (errno \(code)): a descriptor or buffer this program does not own")
            }
            return .failure(errno: code)
        }
    }

    /// ``run(_:alsoRetrying:_:)`` for a call on a non-blocking descriptor: `wouldBlock`
    /// errnos (EAGAIN by default; EINPROGRESS for connect) become `.wouldBlock`, other failures
    /// a classified ``NetError``.
    @inline(__always)
    static func nonBlocking(_ name: @autoclosure () -> String, wouldBlock: (Int32) -> Bool = Syscall.isWouldBlock,
                            alsoRetrying more: (Int32) -> Bool = { _ in false }, closedMeanwhile: () -> Bool = { false },
                            _ call: () -> Int) -> IOAttempt<Int> {
        switch run(name(), alsoRetrying: more, closedMeanwhile: closedMeanwhile, call) {
        case .success(let n): return .done(n)
        case .failure(EBADF): return .failed(.closed)
        case .failure(let code) where wouldBlock(code): return .wouldBlock
        case .failure(let code): return .failed(NetError.from(errno: code, call: name()))
        }
    }

    /// EAGAIN (EWOULDBLOCK): the usual would-block. Predicates rather than errno lists, so a
    /// call on the I/O path allocates nothing.
    static func isWouldBlock(_ code: Int32) -> Bool { code == EAGAIN || code == EWOULDBLOCK }

    /// ``run(_:alsoRetrying:_:)`` for a call that cannot block; a failure is thrown as a
    /// classified ``NetError``.
    @discardableResult @inline(__always)
    static func check(_ name: @autoclosure () -> String, closedMeanwhile: () -> Bool = { false },
                      _ call: () -> Int) throws(NetError) -> Int {
        switch run(name(), closedMeanwhile: closedMeanwhile, call) {
        case .success(let n): return n
        case .failure(EBADF): throw .closed
        case .failure(let code): throw NetError.from(errno: code, call: name())
        }
    }
}
