import EgressNet
import Synchronization

/// The agent's small HTTP/1.1 listener. Bounded everywhere: connections, request line and
/// header size, time to read a request head, idle keep-alive time, requests per connection.
public final class HTTPServer: Sendable {
    public struct Limits: Sendable {
        /// Connections served at once; more are accepted and closed at once, so the backlog
        /// cannot fill with clients nobody will serve.
        public var maxConnections = 512
        /// Seconds a client has to send a whole request head once it started one.
        public var headerReadTimeout: Double = 5
        /// Seconds an idle keep-alive connection is kept.
        public var idleTimeout: Double = 30
        /// Seconds to write a response.
        public var writeTimeout: Double = 10
        public var maxRequestsPerConnection = 1000
        public var parser = HTTPRequestParser.Limits()
        public init() {}
    }

    public typealias Handler = @Sendable (HTTPRequestMessage) async -> HTTPResponse

    private let listener: Socket
    private let limits: Limits
    private let handler: Handler
    private struct State {
        var acceptTask: Task<Void, Never>?
        var connections: [UInt64: Task<Void, Never>] = [:]
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())

    /// The address the listener really bound (port 0 picks one).
    public let boundAddress: SocketAddress

    /// Binds `address` now, so a busy port is reported before anything else starts.
    public init(listenOn address: SocketAddress, limits: Limits = Limits(), handler: @escaping Handler) throws(NetError) {
        listener = try Socket.listen(on: address, backlog: 1024)
        boundAddress = listener.localAddress ?? address
        self.limits = limits
        self.handler = handler
    }

    public func start() {
        let task = Task { [self] in await acceptLoop() }
        state.withLock { $0.acceptTask = task }
    }

    /// Stops accepting and closes every connection.
    public func stop() async {
        let (accept, conns) = state.withLock { s in (s.acceptTask, Array(s.connections.values)) }
        accept?.cancel()
        for c in conns { c.cancel() }
        await accept?.value
        for c in conns { await c.value }
        listener.close()
    }

    public var connectionCount: Int { state.withLock { $0.connections.count } }

    private func acceptLoop() async {
        while !Task.isCancelled {
            let conn: Socket
            do {
                (conn, _) = try await listener.accept()
            } catch .cancelled {
                return
            } catch {
                // EMFILE and the like: back off briefly rather than spin.
                Log.warn("accept failed", ["error": "\(error)"])
                try? await Task.sleep(nanoseconds: 100_000_000)
                continue
            }
            let id: UInt64? = state.withLock { s in
                guard s.connections.count < limits.maxConnections else { return nil }
                s.nextID += 1
                return s.nextID
            }
            guard let id else {
                conn.close()
                continue
            }
            let task = Task { [self] in
                await serve(conn)
                conn.close()
                _ = state.withLock { $0.connections.removeValue(forKey: id) }
            }
            state.withLock { s in
                // The task may already have finished and removed itself; don't resurrect it.
                if !task.isCancelled { s.connections[id] = task }
            }
        }
    }

    private func serve(_ conn: Socket) async {
        var parser = HTTPRequestParser(limits: limits.parser)
        var served = 0
        while served < limits.maxRequestsPerConnection && !Task.isCancelled {
            // Idle until the first byte, then the whole head must arrive within headerReadTimeout.
            var headDeadline: Deadline? = parser.hasPartialRequest ? .after(seconds: limits.headerReadTimeout) : nil
            let idleDeadline = Deadline.after(seconds: limits.idleTimeout)
            var request: HTTPRequestMessage?
            do {
                request = try parser.next()
                while request == nil {
                    let chunk = try await conn.read(maxBytes: 16 * 1024, deadline: headDeadline ?? idleDeadline)
                    if chunk.isEmpty { return }
                    if headDeadline == nil { headDeadline = .after(seconds: limits.headerReadTimeout) }
                    request = try parser.feed(chunk)
                }
            } catch let error as HTTPParseError {
                let response = HTTPResponse(status: error.suggestedStatus, body: Array("\(error)\n".utf8))
                var headers = response.headers
                headers.add("Connection", "close")
                var r = response
                r.headers = headers
                try? await conn.write(r.serialize(), deadline: .after(seconds: 1))
                return
            } catch {
                return  // timeout, reset, cancellation: drop the connection
            }
            guard let request else { return }
            served += 1
            var response = await handler(request)
            let keepAlive = request.head.keepAlive && served < limits.maxRequestsPerConnection
            if !keepAlive { response.headers.add("Connection", "close") }
            let bytes = response.serialize(includeBody: request.head.method != "HEAD")
            do { try await conn.write(bytes, deadline: .after(seconds: limits.writeTimeout)) } catch { return }
            if !keepAlive { return }
        }
    }
}
