#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import CLinux

/// A non-blocking socket that owns its file descriptor and closes it exactly once.
///
/// Every operation that could block takes a `Deadline` and parks the task on the `Reactor`
/// instead of a thread. A socket is used by one task at a time (probes are straight-line code);
/// the descriptor itself is held in an atomic so `close()` from another task is safe.
public final class Socket: Sendable {
    private let descriptor: Atomic<Int32>
    private let reactor: Reactor

    /// The descriptor, or -1 once closed.
    public var fd: Int32 { descriptor.load(ordering: .acquiring) }

    init(adopting fd: Int32, reactor: Reactor = .shared) {
        self.descriptor = Atomic(fd)
        self.reactor = reactor
    }

    deinit {
        // Owners close explicitly (swift-nio's BaseSocket asserts the same): a socket freed open
        // is a leak on some path, which a debug build names here. A release build still closes
        // it, so an early exit cannot leak the descriptor in production.
        let fd = descriptor.exchange(-1, ordering: .acquiringAndReleasing)
        assert(fd < 0, "socket \(fd) was freed without close(): a leak on some path")
        if fd >= 0 {
            reactor.deregister(fd: fd)
            _ = Glibc.close(fd)
        }
    }

    /// Creates a TCP socket for `family` (AF_INET or AF_INET6).
    public static func tcp(family: Int32) throws(NetError) -> Socket {
        try make(family: family, type: Int32(SOCK_STREAM.rawValue))
    }

    /// Creates a UDP socket for `family`.
    public static func udp(family: Int32) throws(NetError) -> Socket {
        try make(family: family, type: Int32(SOCK_DGRAM.rawValue))
    }

    private static func make(family: Int32, type: Int32) throws(NetError) -> Socket {
        let fd = try Syscall.check("socket") {
            Int(Glibc.socket(family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0))
        }
        return Socket(adopting: Int32(fd))
    }

    /// Closes the descriptor; later calls do nothing.
    public func close() {
        let fd = descriptor.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 {
            reactor.deregister(fd: fd)
            _ = Glibc.close(fd)
        }
    }

    /// Whether `close()` has run, from any task. The I/O calls give it to the syscall wrapper
    /// as `closedMeanwhile`: `close()` marks the socket closed before it closes the descriptor,
    /// so an EBADF that a concurrent close explains fails the call as `.closed`, and only one
    /// that a bug explains traps (TLSTests crashed in a fresh-clone CI run when LabTCPServer's
    /// stop() closed a connection its handler task was reading).
    public var isClosed: Bool { fd < 0 }

    // MARK: options

    /// Binds the socket to a network interface (SO_BINDTODEVICE), so its packets leave by it.
    public func bindToDevice(_ name: String) throws(NetError) {
        let fd = self.fd
        let outcome = name.withCString { ptr in
            Syscall.run("SO_BINDTODEVICE") { Int(setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ptr, socklen_t(strlen(ptr) + 1))) }
        }
        guard case .failure(let e) = outcome else { return }
        if e == EPERM {
            throw NetError.permissionDenied("binding to interface \(name) needs CAP_NET_RAW on this kernel")
        }
        if e == ENODEV { throw NetError.system(call: "SO_BINDTODEVICE(\(name)): no such interface", errno: e) }
        throw NetError.from(errno: e, call: "SO_BINDTODEVICE")
    }

    public func setReuseAddress() {
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    public func setNoDelay() {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Binds the local end (a source address, or a listener's address; port 0 picks one).
    public func bind(to address: SocketAddress) throws(NetError) {
        let fd = self.fd
        let outcome = address.withSockAddr { sa, len in Syscall.run("bind \(address)") { Int(Glibc.bind(fd, sa, len)) } }
        if case .failure(let e) = outcome { throw NetError.from(errno: e, call: "bind \(address)") }
    }

    public var localAddress: SocketAddress? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return rc == 0 ? SocketAddress(storage: storage) : nil
    }

    // MARK: waiting

    /// Waits until the descriptor is ready for `interest`.
    public func wait(for interest: Interest, deadline: Deadline) async throws(NetError) {
        let fd = self.fd
        if fd < 0 { throw NetError.closed }
        switch await reactor.wait(fd: fd, for: interest, deadline: deadline) {
        case .ready: return
        case .timedOut: throw NetError.timedOut
        case .cancelled: throw NetError.cancelled
        }
    }

    /// The one I/O primitive (tokio's `Registration::async_io`): runs `attempt` on the
    /// descriptor and, while the kernel says would-block, parks on the reactor until the
    /// descriptor is ready for `interest` and tries again. Every read, write and accept goes
    /// through here, each attempt a ``Syscall`` call, so there is one retry policy.
    func io<T>(_ interest: Interest, deadline: Deadline, _ attempt: (Int32) -> IOAttempt<T>) async throws(NetError) -> T {
        while true {
            let fd = self.fd
            if fd < 0 { throw NetError.closed }
            switch attempt(fd) {
            case .done(let value): return value
            case .failed(let error): throw error
            case .wouldBlock: try await wait(for: interest, deadline: deadline)
            }
        }
    }

    // MARK: connect

    /// Connects to `address` by `deadline`. The outcome is read from SO_ERROR after EINPROGRESS.
    public func connect(to address: SocketAddress, deadline: Deadline) async throws(NetError) {
        let fd = self.fd
        // EINTR on a non-blocking connect leaves the connection in progress, as EINPROGRESS
        // does: calling connect again would only say EALREADY.
        let started = address.withSockAddr { sa, len in
            Syscall.nonBlocking("connect", wouldBlock: { $0 == EINPROGRESS || $0 == EINTR }, closedMeanwhile: { self.isClosed }) { Int(Glibc.connect(fd, sa, len)) }
        }
        switch started {
        case .done: return
        case .failed(let error): throw error
        case .wouldBlock: break
        }
        try await wait(for: .writable, deadline: deadline)
        var soError: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        try Syscall.check("getsockopt(SO_ERROR)", closedMeanwhile: { self.isClosed }) { Int(getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)) }
        if soError != 0 { throw NetError.from(errno: soError, call: "connect") }
    }

    // MARK: read and write

    /// Reads up to `maxBytes`; returns an empty array at end of stream.
    ///
    /// Receives into scratch space and returns exactly the bytes read: no zeroed 16 KB buffer
    /// per call, and a short answer does not keep a large allocation alive.
    public func read(maxBytes: Int = 16 * 1024, deadline: Deadline) async throws(NetError) -> [UInt8] {
        try await io(.readable, deadline: deadline) { fd in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxBytes) { scratch in
                Syscall.nonBlocking("recv", closedMeanwhile: { self.isClosed }) { Glibc.recv(fd, scratch.baseAddress, scratch.count, 0) }
                    .map { Array(UnsafeBufferPointer(rebasing: scratch[..<$0])) }
            }
        }
    }

    /// Reads into `buffer`, returning the count (0 at end of stream).
    public func read(into buffer: inout [UInt8], deadline: Deadline) async throws(NetError) -> Int {
        try await io(.readable, deadline: deadline) { fd in
            buffer.withUnsafeMutableBytes { raw in
                Syscall.nonBlocking("recv", closedMeanwhile: { self.isClosed }) { Glibc.recv(fd, raw.baseAddress, raw.count, 0) }
            }
        }
    }

    /// Writes all of `bytes` by `deadline`.
    public func write(_ bytes: [UInt8], deadline: Deadline) async throws(NetError) {
        try await writeAll(count: bytes.count, deadline: deadline) { fd, offset in
            bytes.withUnsafeBytes { raw in
                Syscall.nonBlocking("send", closedMeanwhile: { self.isClosed }) { Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL)) }
            }
        }
    }

    /// Writes all of `buffer` (valid until this returns) by `deadline`, without copying it.
    public func write(_ buffer: UnsafeBufferPointer<UInt8>, deadline: Deadline) async throws(NetError) {
        guard let base = buffer.baseAddress else { return }
        try await writeAll(count: buffer.count, deadline: deadline) { fd, offset in
            Syscall.nonBlocking("send", closedMeanwhile: { self.isClosed }) { Glibc.send(fd, base + offset, buffer.count - offset, Int32(MSG_NOSIGNAL)) }
        }
    }

    /// Sends until `count` bytes are out, each send starting at the offset reached so far.
    private func writeAll(count: Int, deadline: Deadline,
                          _ send: (_ fd: Int32, _ offset: Int) -> IOAttempt<Int>) async throws(NetError) {
        var offset = 0
        while offset < count {
            let from = offset
            offset += try await io(.writable, deadline: deadline) { fd in send(fd, from) }
        }
    }

    /// Half-closes the sending side.
    public func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    // MARK: listening

    /// A listening TCP socket on `address` (port 0 picks a free one; read it from `localAddress`).
    public static func listen(on address: SocketAddress, backlog: Int32 = 128) throws(NetError) -> Socket {
        let s = try tcp(family: address.family)
        do throws(NetError) {
            s.setReuseAddress()
            if !address.ip.isIPv4 {
                var one: Int32 = 1  // an IPv6 listener serves IPv6 only; bind "0.0.0.0" for IPv4
                _ = setsockopt(s.fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            try s.bind(to: address)
            try Syscall.check("listen") { Int(Glibc.listen(s.fd, backlog)) }
        } catch {
            s.close()
            throw error
        }
        return s
    }

    /// Accepts the next connection. A connection aborted before it was accepted is skipped.
    public func accept(deadline: Deadline = .distantFuture) async throws(NetError) -> (Socket, SocketAddress?) {
        var storage = sockaddr_storage()
        let fd = try await io(.readable, deadline: deadline) { listener in
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            return withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    Syscall.nonBlocking("accept", alsoRetrying: { $0 == ECONNABORTED || $0 == EPROTO }, closedMeanwhile: { self.isClosed }) {
                        Int(accept4(listener, sa, &len, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)))
                    }
                }
            }
        }
        return (Socket(adopting: Int32(fd), reactor: reactor), SocketAddress(storage: storage))
    }
}
