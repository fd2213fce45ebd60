#if canImport(Glibc)
import Glibc
#endif
import EgressSync
import EgressNet

/// A TCP server in Swift that misbehaves on purpose, for the failures real servers do not
/// produce on demand: a handshake that never gets an answer, a reset right after the
/// ClientHello (what SNI filtering looks like), bytes that are not TLS.
///
/// It listens on 127.0.0.1 on a port the kernel picks, serves every connection with one
/// `Behaviour`, and keeps accepted sockets open until `stop()` (or deinit).
public final class LabTCPServer: Sendable {
    /// What the server does with each connection.
    public enum Behaviour: Sendable {
        /// Accepts and reads whatever comes, never answers, never closes.
        case stallAfterAccept
        /// Reads the first bytes (a ClientHello), then closes with SO_LINGER {1, 0}, which sends
        /// an RST instead of a FIN.
        case resetAfterRead
        /// Reads the first bytes, sends these bytes, half-closes (FIN), then closes once the
        /// client does. Reading first means unread data never turns the close into an RST.
        case respond([UInt8])
        /// Accepts and closes at once (FIN), before reading anything.
        case closeImmediately
        /// Hands the connection to `handler` (nothing read yet) for behaviour scripted by the
        /// test: an answer that drips, stalls after its head, never ends. The server closes the
        /// connection when the handler returns; `stop()` cancels the handler.
        case custom(@Sendable (Socket) async -> Void)
    }

    public let behaviour: Behaviour
    /// The port it listens on, on 127.0.0.1.
    public let port: UInt16
    private let listener: Socket
    private let state: SharedState

    /// 127.0.0.1:`port`.
    public var address: SocketAddress { SocketAddress(ip: IPAddress(Lab.loopback)!, port: port) }

    /// The shared bookkeeping of the accept loop and the connection handlers.
    private final class SharedState: Sendable {
        struct Contents {
            var connections: [Socket] = []
            var tasks: [Task<Void, Never>] = []
            var firstReads: [[UInt8]] = []
            var accepted = 0
            var stopped = false
        }
        let contents = Mutex(Contents())
    }

    /// Starts listening on 127.0.0.1:0 and serving connections with `behaviour`.
    public static func start(_ behaviour: Behaviour) throws -> LabTCPServer {
        try LabTCPServer(behaviour)
    }

    private init(_ behaviour: Behaviour) throws {
        let listener = try Socket.listen(on: SocketAddress(ip: IPAddress(Lab.loopback)!, port: 0))
        guard let port = listener.localAddress?.port else {
            listener.close()
            throw LabError("LabTCPServer: no local port after bind")
        }
        self.behaviour = behaviour
        self.port = port
        self.listener = listener
        let state = SharedState()
        self.state = state
        let acceptLoop = Task {
            while !Task.isCancelled {
                let connection: Socket
                do {
                    (connection, _) = try await listener.accept(deadline: .distantFuture)
                } catch {
                    return  // cancelled or closed by stop()
                }
                // Counted and kept before its handler starts, so a client that sees the
                // handler's answer (or its close) also sees the count.
                let kept = state.contents.withLock { c -> Bool in
                    if c.stopped { return false }
                    c.accepted += 1
                    c.connections.append(connection)
                    c.tasks.append(Task { await Self.serve(connection, behaviour: behaviour, state: state) })
                    return true
                }
                if !kept { connection.close() }
            }
        }
        state.contents.withLock { $0.tasks.append(acceptLoop) }
    }

    deinit { stop() }

    /// How many connections were accepted so far.
    public var acceptedCount: Int { state.contents.withLock { $0.accepted } }

    /// The first bytes read on each connection that was read from, in the order they arrived
    /// (e.g. to check that a ClientHello — first byte 0x16 — really came before the reset).
    public var firstReads: [[UInt8]] { state.contents.withLock { $0.firstReads } }

    /// Waits up to `timeout` seconds until `count` connections were accepted; the count then.
    /// (The server accepts and reads on its own tasks, which may run after the client is done.)
    @discardableResult
    public func waitForConnections(_ count: Int, timeout: Double = 5) async -> Int {
        let deadline = Deadline.after(seconds: timeout)
        while acceptedCount < count && !deadline.hasPassed {
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        return acceptedCount
    }

    /// Waits up to `timeout` seconds until `count` connections were read from; `firstReads` then.
    public func waitForFirstReads(_ count: Int, timeout: Double = 5) async -> [[UInt8]] {
        let deadline = Deadline.after(seconds: timeout)
        while firstReads.count < count && !deadline.hasPassed {
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        return firstReads
    }

    /// Stops accepting, cancels the handlers and closes every socket. Later calls do nothing.
    public func stop() {
        let (tasks, connections) = state.contents.withLock { c -> ([Task<Void, Never>], [Socket]) in
            if c.stopped { return ([], []) }
            c.stopped = true
            defer { c.tasks = []; c.connections = [] }
            return (c.tasks, c.connections)
        }
        // Cancel first: a task parked on the reactor is resumed by its cancellation handler,
        // so no wait is left on a descriptor that is about to be closed.
        for task in tasks { task.cancel() }
        listener.close()
        for connection in connections { connection.close() }
    }

    private static func serve(_ connection: Socket, behaviour: Behaviour, state: SharedState) async {
        func readFirst() async -> [UInt8]? {
            guard let bytes = try? await connection.read(maxBytes: 16 * 1024, deadline: .after(seconds: 30)) else {
                return nil
            }
            state.contents.withLock { $0.firstReads.append(bytes) }
            return bytes
        }
        switch behaviour {
        case .stallAfterAccept:
            guard let first = await readFirst(), !first.isEmpty else { return }
            while !Task.isCancelled {
                guard let more = try? await connection.read(maxBytes: 16 * 1024, deadline: .distantFuture),
                      !more.isEmpty else { return }
            }
        case .resetAfterRead:
            _ = await readFirst()
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(connection.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            connection.close()
        case .respond(let bytes):
            guard await readFirst() != nil else { return }
            try? await connection.write(bytes, deadline: .after(seconds: 10))
            connection.shutdownWrite()
            // Drain until the client closes, so the final close is a FIN, not an RST.
            let deadline = Deadline.after(seconds: 10)
            while let more = try? await connection.read(maxBytes: 16 * 1024, deadline: deadline), !more.isEmpty {}
            connection.close()
        case .closeImmediately:
            connection.close()
        case .custom(let handler):
            await handler(connection)
            connection.close()
        }
    }
}
