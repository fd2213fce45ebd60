#if canImport(Glibc)
import Glibc
#endif
import EgressSync
import EgressNet

/// A scriptable DNS server in Swift on 127.0.0.1, UDP and TCP on the same port, for the answers
/// dnsmasq will not give on demand: SERVFAIL, a truncated UDP answer (TC=1) whose full answer
/// comes over TCP, garbage or malformed bytes, silence, a poisoned address.
///
/// Each query is decoded with EgressNet's `DNSMessage` codec and answered as `script` says for
/// its question and the transport it came on. Undecodable queries are ignored. Every socket is
/// non-blocking and parked on the reactor, so the server holds no thread.
///
/// ```
/// let dns = try LabDNSServer.start { question, transport in
///     transport == .udp ? .truncated : .addresses([IPAddress("127.0.0.1")!])
/// }
/// defer { dns.stop() }
/// ```
public final class LabDNSServer: Sendable {
    /// Where a query arrived.
    public enum Transport: Sendable, Equatable {
        case udp, tcp
    }

    /// What the server answers one query with.
    public enum Reply: Sendable {
        /// NOERROR with the addresses of the question's type (A gets the IPv4 ones, AAAA the
        /// IPv6 ones; none of that type is a NODATA answer).
        case addresses([IPAddress], ttl: UInt32 = 60)
        /// NOERROR with no answer: the name exists, but has no address.
        case noData
        /// An answer with this rcode and no records (SERVFAIL, REFUSED, NXDOMAIN, ...).
        case rcode(DNSResponseCode)
        /// NOERROR, TC=1, no records: "ask again over TCP".
        case truncated
        /// A reply with the query's id and QR set that claims one answer record and then ends:
        /// a malformed answer that passes the id check.
        case malformed
        /// These bytes, verbatim (over TCP with the 2-byte length prefix).
        case bytes([UInt8])
        /// No answer at all (over TCP: the connection stays open and silent).
        case silence
    }

    /// Decides the reply for a question arriving over a transport.
    public typealias Script = @Sendable (_ question: DNSQuestion, _ transport: Transport) -> Reply

    /// The port on 127.0.0.1, for UDP and TCP.
    public let port: UInt16
    private let udp: Socket
    private let tcp: Socket
    private let script: Script
    private let state = Mutex(State())

    private struct State {
        var tasks: [Task<Void, Never>] = []
        var connections: [Socket] = []
        var udpQueries = 0
        var tcpQueries = 0
        var stopped = false
    }

    /// 127.0.0.1:`port`, as a resolver address.
    public var address: SocketAddress { SocketAddress(ip: IPAddress(Lab.loopback)!, port: port) }

    /// Queries received so far over UDP and over TCP.
    public var queryCounts: (udp: Int, tcp: Int) { state.withLock { ($0.udpQueries, $0.tcpQueries) } }

    /// Binds UDP and TCP on the same free port of 127.0.0.1 and starts answering with `script`.
    public static func start(_ script: @escaping Script) throws -> LabDNSServer {
        var lastError: any Error = LabError("no port tried")
        for _ in 0..<20 {
            do {
                let udp = try Socket.udp(family: AF_INET)
                do {
                    try udp.bind(to: SocketAddress(ip: IPAddress(Lab.loopback)!, port: 0))
                    guard let port = udp.localAddress?.port else { throw LabError("LabDNSServer: no UDP port") }
                    let tcp = try Socket.listen(on: SocketAddress(ip: IPAddress(Lab.loopback)!, port: port))
                    return LabDNSServer(port: port, udp: udp, tcp: tcp, script: script)
                } catch {
                    udp.close()
                    throw error
                }
            } catch {
                lastError = error  // the TCP port of that number was taken: try another
            }
        }
        throw LabError("LabDNSServer: cannot bind UDP and TCP on one port: \(lastError)")
    }

    /// A server that answers every name with `reply`, whatever the transport.
    public static func start(always reply: Reply) throws -> LabDNSServer {
        try start { _, _ in reply }
    }

    private init(port: UInt16, udp: Socket, tcp: Socket, script: @escaping Script) {
        self.port = port
        self.udp = udp
        self.tcp = tcp
        self.script = script
        let udpLoop = Task { [self] in await self.serveUDP() }
        let tcpLoop = Task { [self] in await self.acceptTCP() }
        state.withLock { $0.tasks += [udpLoop, tcpLoop] }
    }

    deinit { stop() }

    /// Stops answering and closes every socket. Later calls do nothing.
    public func stop() {
        let (tasks, connections) = state.withLock { s -> ([Task<Void, Never>], [Socket]) in
            if s.stopped { return ([], []) }
            s.stopped = true
            defer { s.tasks = []; s.connections = [] }
            return (s.tasks, s.connections)
        }
        for task in tasks { task.cancel() }
        udp.close()
        tcp.close()
        for connection in connections { connection.close() }
    }

    // MARK: answering

    /// The bytes answering `query` (without a TCP length prefix), or nil for silence.
    private func answer(_ query: DNSMessage, transport: Transport) -> [UInt8]? {
        guard !query.header.isResponse, let question = query.questions.first else { return nil }
        let message: DNSMessage
        switch script(question, transport) {
        case .silence:
            return nil
        case .bytes(let bytes):
            return bytes
        case .malformed:
            let id = query.header.id
            var bytes = [UInt8](repeating: 0, count: DNSHeader.byteCount)
            bytes[0] = UInt8(id >> 8)
            bytes[1] = UInt8(id & 0xff)
            bytes[2] = 0x81  // QR, RD
            bytes[3] = 0x80  // RA, NOERROR
            bytes[7] = 1     // ANCOUNT 1, and nothing follows the header
            return bytes
        case .addresses(let ips, let ttl):
            let wanted = ips.filter { question.type == DNSRecordType.a.rawValue ? $0.isIPv4
                : question.type == DNSRecordType.aaaa.rawValue ? !$0.isIPv4 : false }
            message = .response(to: query, answers: wanted.map { .address(question.name, $0, ttl: ttl) })
        case .noData:
            message = .response(to: query)
        case .rcode(let rcode):
            message = .response(to: query, rcode: rcode)
        case .truncated:
            message = .response(to: query, truncated: true)
        }
        return try? message.encode()
    }

    private func count(_ transport: Transport) {
        state.withLock { s in
            if transport == .udp { s.udpQueries += 1 } else { s.tcpQueries += 1 }
        }
    }

    // MARK: UDP

    private func serveUDP() async {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !Task.isCancelled {
            var from = sockaddr_in()
            var fromLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            let fd = udp.fd
            if fd < 0 { return }
            let n = buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &fromLength)
                    }
                }
            }
            if n < 0 {
                let e = errno
                if e == EAGAIN || e == EWOULDBLOCK {
                    do { try await udp.wait(for: .readable, deadline: .distantFuture) } catch { return }
                    continue
                }
                if e == EINTR { continue }
                return
            }
            guard let query = try? DNSMessage.decode(Array(buffer[..<n])) else { continue }
            count(.udp)
            guard let reply = answer(query, transport: .udp) else { continue }
            _ = reply.withUnsafeBytes { raw in
                withUnsafePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL), $0, fromLength)
                    }
                }
            }
        }
    }

    // MARK: TCP

    private func acceptTCP() async {
        while !Task.isCancelled {
            let connection: Socket
            do { (connection, _) = try await tcp.accept() } catch { return }
            let kept = state.withLock { s -> Bool in
                if s.stopped { return false }
                s.connections.append(connection)
                s.tasks.append(Task { [self] in await self.serveTCP(connection) })
                return true
            }
            if !kept { connection.close() }
        }
    }

    /// Answers length-prefixed queries on one connection until the client closes it.
    private func serveTCP(_ connection: Socket) async {
        var buffer: [UInt8] = []
        while !Task.isCancelled {
            if buffer.count >= 2 {
                let length = Int(buffer[0]) << 8 | Int(buffer[1])
                if buffer.count >= length + 2 {
                    let bytes = Array(buffer[2..<(length + 2)])
                    buffer.removeFirst(length + 2)
                    guard let query = try? DNSMessage.decode(bytes) else { continue }
                    count(.tcp)
                    guard let reply = answer(query, transport: .tcp) else { continue }
                    let framed = [UInt8(reply.count >> 8 & 0xff), UInt8(reply.count & 0xff)] + reply
                    do { try await connection.write(framed, deadline: .after(seconds: 5)) } catch { break }
                    continue
                }
            }
            guard let chunk = try? await connection.read(maxBytes: 4096, deadline: .distantFuture), !chunk.isEmpty else { break }
            buffer += chunk
        }
        connection.close()
    }
}
