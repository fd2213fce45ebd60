import EgressNet
import EgressSync

/// The listener's optional TLS and basic auth, in the spirit of Prometheus's web config.
public struct WebSettings: Sendable {
    /// Serve HTTPS with this context.
    public var tls: TLSContext?
    /// user → bcrypt hash; empty for no authentication.
    public var basicAuthUsers: [String: String]

    public init(tls: TLSContext? = nil, basicAuthUsers: [String: String] = [:]) {
        self.tls = tls
        self.basicAuthUsers = basicAuthUsers
    }
}

/// What the listener answers: a status, headers, and a body that says what it is — bytes
/// known before the head goes out, or a stream written in pieces as it is produced.
///
/// A stream is for answers too large to build whole: the exposition of 2,000 target x path
/// pairs is about 14 MB. An HTTP/1.1 client gets it with chunked transfer coding; an HTTP/1.0
/// client gets the pieces as they are, the end of the body marked by closing the connection;
/// an answer to HEAD has the head only.
public struct ServerResponse: Sendable {
    /// Writes one piece; the bytes are valid only during the call.
    public typealias Write = (UnsafeBufferPointer<UInt8>) async throws(NetError) -> Void
    /// Produces a streamed body by calling `write` for each piece.
    public typealias Producer = @Sendable (_ write: Write) async throws(NetError) -> Void

    public enum Body: Sendable {
        /// The whole body, sent with its `Content-Length`.
        case bytes([UInt8])
        /// A body produced while it is sent.
        case stream(Producer)
    }

    public var status: Int
    public var headers: HTTPHeaders
    public var body: Body

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: Body) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response whose body is `bytes`.
    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body bytes: [UInt8] = []) {
        self.init(status: status, headers: headers, body: .bytes(bytes))
    }

    /// The body's bytes, or nil for a stream.
    public var bytes: [UInt8]? {
        if case .bytes(let b) = body { return b }
        return nil
    }
}

/// The agent's small HTTP/1.1 listener. Bounded everywhere: connections, request line and
/// header size, time to read a request head, idle keep-alive time, requests per connection.
///
/// Slow or hostile clients cannot keep a scrape from being answered: each connection is its own
/// task parked on the reactor (a client that sends nothing costs a descriptor, no thread), a
/// head must arrive within `headerReadTimeout`, and at `maxConnections` the oldest connection
/// still waiting for a request is closed to make room for the new one.
public final class HTTPServer: Sendable {
    public struct Limits: Sendable {
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

    public typealias Handler = @Sendable (HTTPRequestMessage) async -> ServerResponse

    private let listener: Socket
    private let limits: Limits
    private let handler: Handler
    private struct Connection {
        let task: Task<Void, Never>
        let acceptedAt: UInt64
        var busy = false
    }
    private struct State {
        var acceptTask: Task<Void, Never>?
        var connections: [UInt64: Connection] = [:]
        var nextID: UInt64 = 0
        var evicted = 0
        var web = WebSettings()
        /// Authorization header values that passed a bcrypt check (bcrypt is slow on purpose).
        var goodCredentials: Set<String> = []
    }
    private let state = Mutex(State())

    /// The address the listener really bound (port 0 picks one).
    public let boundAddress: SocketAddress

    /// Binds `address` now, so a busy port is reported before anything else starts.
    public init(listenOn address: SocketAddress, limits: Limits = Limits(), web: WebSettings = WebSettings(),
                handler: @escaping Handler) throws(NetError) {
        listener = try Socket.listen(on: address, backlog: 1024)
        boundAddress = listener.localAddress ?? address
        self.limits = limits
        self.handler = handler
        state.withLock { $0.web = web }
    }

    /// Replaces TLS and authentication settings (a reload); new connections use them.
    public func setWeb(_ web: WebSettings) {
        state.withLock { s in
            s.web = web
            s.goodCredentials = []
        }
    }

    public func start() {
        let task = Task { [self] in await acceptLoop() }
        state.withLock { $0.acceptTask = task }
    }

    /// Stops accepting and closes every connection.
    public func stop() async {
        let (accept, conns) = state.withLock { s in (s.acceptTask, s.connections.values.map(\.task)) }
        accept?.cancel()
        for c in conns { c.cancel() }
        await accept?.value
        for c in conns { await c.value }
        listener.close()
    }

    public var connectionCount: Int { state.withLock { $0.connections.count } }
    /// Connections closed to make room for new ones.
    public var evictedCount: Int { state.withLock { $0.evicted } }

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
            let admitted: (id: UInt64, evict: Task<Void, Never>?)? = state.withLock { s in
                var evict: Task<Void, Never>?
                if s.connections.count >= limits.maxConnections {
                    guard let oldest = s.connections.filter({ !$0.value.busy }).min(by: { $0.value.acceptedAt < $1.value.acceptedAt }) else {
                        return nil
                    }
                    evict = oldest.value.task
                    s.connections.removeValue(forKey: oldest.key)
                    s.evicted += 1
                }
                s.nextID += 1
                return (s.nextID, evict)
            }
            guard let admitted else {
                conn.close()
                continue
            }
            admitted.evict?.cancel()
            // Answers go out in several writes (head, chunks): no Nagle wait on the last one.
            conn.setNoDelay()
            let id = admitted.id
            let task = Task { [self] in
                await serve(conn, id: id)
                conn.close()
                _ = state.withLock { $0.connections.removeValue(forKey: id) }
            }
            state.withLock { s in
                // The task may already have finished and removed itself; don't resurrect it.
                if !task.isCancelled { s.connections[id] = Connection(task: task, acceptedAt: MonotonicClock.nanoseconds()) }
            }
        }
    }

    private func setBusy(_ id: UInt64, _ busy: Bool) {
        state.withLock { s in s.connections[id]?.busy = busy }
    }

    private func serve(_ conn: Socket, id: UInt64) async {
        let web = state.withLock { $0.web }
        var stream: any ByteStream = conn
        if let tls = web.tls {
            do {
                stream = try await TLSConnection.accept(over: conn, context: tls, deadline: .after(seconds: limits.headerReadTimeout))
            } catch {
                return
            }
        }
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
                    let chunk = try await stream.read(maxBytes: 16 * 1024, deadline: headDeadline ?? idleDeadline)
                    if chunk.isEmpty { return }
                    if headDeadline == nil { headDeadline = .after(seconds: limits.headerReadTimeout) }
                    request = try parser.feed(chunk)
                }
            } catch let error as HTTPParseError {
                var response = HTTPResponse(status: error.suggestedStatus, body: Array("\(error)\n".utf8))
                response.headers.add("Connection", "close")
                try? await stream.write(response.serialize(), deadline: .after(seconds: 1))
                return
            } catch {
                return  // timeout, reset, cancellation: drop the connection
            }
            guard let request else { return }
            served += 1
            setBusy(id, true)
            var response: ServerResponse
            if await authorized(request, web: web) {
                response = await handler(request)
            } else {
                response = ServerResponse(status: 401, headers: ["WWW-Authenticate": #"Basic realm="egress-monitor""#,
                                                                  "Content-Type": "text/plain; charset=utf-8"],
                                          body: Array("authentication required\n".utf8))
            }
            // A streamed answer to an HTTP/1.0 client has no chunked coding: its body ends
            // where the connection does.
            let streamsUntilClose = response.bytes == nil && request.head.version == .http1_0
            let keepAlive = request.head.keepAlive && served < limits.maxRequestsPerConnection && !streamsUntilClose
            if !keepAlive { response.headers.add("Connection", "close") }
            let includeBody = request.head.method != "HEAD"
            let deadline = Deadline.after(seconds: limits.writeTimeout)
            do {
                try await Self.write(response, includeBody: includeBody, chunked: !streamsUntilClose, to: stream, deadline: deadline)
            } catch {
                return
            }
            setBusy(id, false)
            if !keepAlive { return }
        }
    }

    /// Writes a response. A large body of bytes goes out as its own write after the head rather
    /// than copied behind it: one copy of a multi-megabyte answer in memory, not two. A stream's
    /// pieces are sent from the producer's buffer, their chunk framing around them ("\r\n"
    /// ending the previous chunk and the next one's size) unless `chunked` is false.
    static func write(_ response: ServerResponse, includeBody: Bool, chunked: Bool, to stream: any ByteStream,
                      deadline: Deadline) async throws(NetError) {
        var head = HTTPResponse(status: response.status, headers: response.headers)
        switch response.body {
        case .bytes(let bytes):
            head.body = bytes
            if includeBody && bytes.count >= 64 * 1024 {
                try await stream.write(head.serialize(includeBody: false), deadline: deadline)
                try await stream.write(bytes, deadline: deadline)
            } else {
                try await stream.write(head.serialize(includeBody: includeBody), deadline: deadline)
            }
        case .stream(let produce):
            try await stream.write(head.serializeHead(framing: chunked ? .chunked : .untilClose), deadline: deadline)
            guard includeBody else { return }
            var first = true
            try await produce { piece throws(NetError) in
                if chunked {
                    try await stream.write(Self.chunkHead(piece.count, first: first), deadline: deadline)
                    first = false
                }
                try await stream.write(piece, deadline: deadline)
            }
            if chunked {
                try await stream.write(Array((first ? "0\r\n\r\n" : "\r\n0\r\n\r\n").utf8), deadline: deadline)
            }
        }
    }

    /// What goes before a chunk's bytes: the CRLF that ends the previous chunk (unless `first`),
    /// the size in hex, CRLF.
    static func chunkHead(_ size: Int, first: Bool) -> [UInt8] {
        Array(((first ? "" : "\r\n") + String(size, radix: 16) + "\r\n").utf8)
    }

    /// Basic auth against bcrypt hashes; a header that passed once is remembered (bounded).
    private func authorized(_ request: HTTPRequestMessage, web: WebSettings) async -> Bool {
        if web.basicAuthUsers.isEmpty { return true }
        guard let header = request.head.headers["Authorization"], header.lowercased().hasPrefix("basic ") else { return false }
        if state.withLock({ $0.goodCredentials.contains(header) }) { return true }
        guard let decoded = Base64.decode(header.dropFirst(6).trimmingWhitespace),
              let text = String(validating: decoded, as: UTF8.self), let colon = text.firstIndex(of: ":") else { return false }
        let user = String(text[..<colon])
        let password = String(text[text.index(after: colon)...])
        guard let hash = web.basicAuthUsers[user], await PasswordHash.check(password: password, hash: hash) else { return false }
        state.withLock { s in
            if s.goodCredentials.count >= 64 { s.goodCredentials.removeAll() }
            s.goodCredentials.insert(header)
        }
        return true
    }
}
