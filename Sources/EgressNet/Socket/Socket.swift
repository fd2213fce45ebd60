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
        // Owners close explicitly; this is the safety net so an early exit cannot leak an fd.
        let fd = descriptor.exchange(-1, ordering: .acquiringAndReleasing)
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
        let fd = Glibc.socket(family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw NetError.from(errno: errno, call: "socket") }
        return Socket(adopting: fd)
    }

    /// Closes the descriptor; later calls do nothing.
    public func close() {
        let fd = descriptor.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 {
            reactor.deregister(fd: fd)
            _ = Glibc.close(fd)
        }
    }

    public var isClosed: Bool { fd < 0 }

    // MARK: options

    /// Binds the socket to a network interface (SO_BINDTODEVICE), so its packets leave by it.
    public func bindToDevice(_ name: String) throws(NetError) {
        let rc = name.withCString { ptr in
            setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ptr, socklen_t(strlen(ptr) + 1))
        }
        if rc != 0 {
            let e = errno
            if e == EPERM {
                throw NetError.permissionDenied("binding to interface \(name) needs CAP_NET_RAW on this kernel")
            }
            if e == ENODEV { throw NetError.system(call: "SO_BINDTODEVICE(\(name)): no such interface", errno: e) }
            throw NetError.from(errno: e, call: "SO_BINDTODEVICE")
        }
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
        let rc = address.withSockAddr { Glibc.bind(fd, $0, $1) }
        if rc != 0 { throw NetError.from(errno: errno, call: "bind \(address)") }
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

    // MARK: connect

    /// Connects to `address` by `deadline`. The outcome is read from SO_ERROR after EINPROGRESS.
    public func connect(to address: SocketAddress, deadline: Deadline) async throws(NetError) {
        let rc = address.withSockAddr { Glibc.connect(fd, $0, $1) }
        if rc == 0 { return }
        let e = errno
        guard e == EINPROGRESS || e == EINTR else { throw NetError.from(errno: e, call: "connect") }
        try await wait(for: .writable, deadline: deadline)
        var soError: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len) != 0 {
            throw NetError.from(errno: errno, call: "getsockopt(SO_ERROR)")
        }
        if soError != 0 { throw NetError.from(errno: soError, call: "connect") }
    }

    // MARK: read and write

    /// Reads up to `maxBytes`; returns an empty array at end of stream.
    ///
    /// Receives into scratch space and returns exactly the bytes read: no zeroed 16 KB buffer
    /// per call, and a short answer does not keep a large allocation alive.
    public func read(maxBytes: Int = 16 * 1024, deadline: Deadline) async throws(NetError) -> [UInt8] {
        while true {
            let fd = self.fd
            var error: Int32 = 0
            let bytes = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxBytes) { scratch -> [UInt8]? in
                let n = Glibc.recv(fd, scratch.baseAddress, scratch.count, 0)
                if n >= 0 { return Array(UnsafeBufferPointer(rebasing: scratch[..<n])) }
                error = errno
                return nil
            }
            if let bytes { return bytes }
            switch error {
            case EAGAIN, EWOULDBLOCK: try await wait(for: .readable, deadline: deadline)
            case EINTR: continue
            default: throw NetError.from(errno: error, call: "recv")
            }
        }
    }

    /// Reads into `buffer`, returning the count (0 at end of stream).
    public func read(into buffer: inout [UInt8], deadline: Deadline) async throws(NetError) -> Int {
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            if n >= 0 { return n }
            let e = errno
            switch e {
            case EAGAIN, EWOULDBLOCK: try await wait(for: .readable, deadline: deadline)
            case EINTR: continue
            default: throw NetError.from(errno: e, call: "recv")
            }
        }
    }

    /// Writes all of `bytes` by `deadline`.
    public func write(_ bytes: [UInt8], deadline: Deadline) async throws(NetError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { buf in
                Glibc.send(fd, buf.baseAddress! + offset, buf.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n >= 0 { offset += n; continue }
            let e = errno
            switch e {
            case EAGAIN, EWOULDBLOCK: try await wait(for: .writable, deadline: deadline)
            case EINTR: continue
            default: throw NetError.from(errno: e, call: "send")
            }
        }
    }

    /// Writes all of `buffer` (valid until this returns) by `deadline`, without copying it.
    public func write(_ buffer: UnsafeBufferPointer<UInt8>, deadline: Deadline) async throws(NetError) {
        guard let base = buffer.baseAddress else { return }
        var offset = 0
        while offset < buffer.count {
            let n = Glibc.send(fd, base + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
            if n >= 0 { offset += n; continue }
            let e = errno
            switch e {
            case EAGAIN, EWOULDBLOCK: try await wait(for: .writable, deadline: deadline)
            case EINTR: continue
            default: throw NetError.from(errno: e, call: "send")
            }
        }
    }

    /// Half-closes the sending side.
    public func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    // MARK: listening

    /// A listening TCP socket on `address` (port 0 picks a free one; read it from `localAddress`).
    public static func listen(on address: SocketAddress, backlog: Int32 = 128) throws(NetError) -> Socket {
        let s = try tcp(family: address.family)
        s.setReuseAddress()
        if !address.ip.isIPv4 {
            var one: Int32 = 1  // an IPv6 listener serves IPv6 only; bind "0.0.0.0" for IPv4
            _ = setsockopt(s.fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        try s.bind(to: address)
        if Glibc.listen(s.fd, backlog) != 0 { throw NetError.from(errno: errno, call: "listen") }
        return s
    }

    /// Accepts the next connection.
    public func accept(deadline: Deadline = .distantFuture) async throws(NetError) -> (Socket, SocketAddress?) {
        while true {
            var storage = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    accept4(self.fd, $0, &len, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                }
            }
            if fd >= 0 { return (Socket(adopting: fd, reactor: reactor), SocketAddress(storage: storage)) }
            let e = errno
            switch e {
            case EAGAIN, EWOULDBLOCK: try await wait(for: .readable, deadline: deadline)
            case EINTR, ECONNABORTED, EPROTO: continue
            default: throw NetError.from(errno: e, call: "accept")
            }
        }
    }
}
