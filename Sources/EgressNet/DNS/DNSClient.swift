/// Why a lookup failed. Probes map these one to one onto the `dns_*` failure reasons.
public enum DNSLookupError: Error, Sendable, Equatable, CustomStringConvertible {
    /// NXDOMAIN: the name does not exist.
    case nxdomain
    /// SERVFAIL from every server asked.
    case servfail
    /// REFUSED from every server asked.
    case refused
    /// No answer from any server by the deadline.
    case timeout
    /// The name exists but has no A or AAAA record.
    case noAddress
    /// Only undecodable answers arrived, or an unexpected rcode; the text is for logs.
    case malformed(String)
    /// The query could not be sent (resolver port unreachable, binding refused); for logs.
    case network(NetError)
    /// An encrypted resolver's connection failed (TLS reset, a certificate for another name,
    /// HTTP 403 from a DoH server...); the text says what a person can act on.
    case transport(String)

    public var description: String {
        switch self {
        case .nxdomain: return "NXDOMAIN: the name does not exist"
        case .servfail: return "SERVFAIL from the resolver"
        case .refused: return "the resolver REFUSED the query"
        case .timeout: return "no answer from the resolver"
        case .noAddress: return "the name has no A or AAAA record"
        case .malformed(let s): return "bad answer: \(s)"
        case .network(let e): return "cannot reach the resolver: \(e)"
        case .transport(let s): return s
        }
    }
}

/// The project's own stub resolver client: UDP with retries, TCP when an answer is truncated.
///
/// Servers are asked in order, `attempts` rounds, each try bounded by `timeoutPerTry` and all of
/// it by the caller's deadline (glibc's algorithm, with deadlines). NXDOMAIN and NOERROR answers
/// are final; SERVFAIL and REFUSED move on to the next server. Answers are matched by id,
/// question and source (a connected UDP socket), so a stray or spoofed datagram is ignored.
public struct DNSClient: Sendable {
    public let servers: [SocketAddress]
    public let timeoutPerTry: Double
    public let attempts: Int
    /// How queries leave (DNS follows the egress path), except to servers on loopback.
    public let binding: SocketBinding

    public init(servers: [SocketAddress], timeoutPerTry: Double = 2, attempts: Int = 2, binding: SocketBinding = .none) {
        self.servers = servers
        self.timeoutPerTry = timeoutPerTry
        self.attempts = max(1, attempts)
        self.binding = binding
    }

    /// Resolves `name` to its addresses, asking A and AAAA at once; IPv4 first. A `family`
    /// asks only its own type (a path pinned to IPv4 or IPv6 never sees the other).
    public func resolve(_ name: String, family: IPFamily? = nil, deadline: Deadline) async throws(DNSLookupError) -> [IPAddress] {
        let skipped: Result<[IPAddress], DNSLookupError> = .success([])
        async let v4 = family == .ipv6 ? skipped : outcome(name, .a, deadline: deadline)
        async let v6 = family == .ipv4 ? skipped : outcome(name, .aaaa, deadline: deadline)
        let (a, aaaa) = await (v4, v6)
        return try Self.combine([a, aaaa])
    }

    /// The addresses of the questions that were answered, in order; when there is none, the
    /// most telling failure.
    static func combine(_ outcomes: [Result<[IPAddress], DNSLookupError>]) throws(DNSLookupError) -> [IPAddress] {
        var addresses: [IPAddress] = []
        for case .success(let list) in outcomes { addresses += list }
        if !addresses.isEmpty { return addresses }
        let errors = outcomes.compactMap { r -> DNSLookupError? in
            if case .failure(let e) = r { return e }
            return nil
        }
        // Most telling first: a definite answer outranks silence.
        for wanted in [DNSLookupError.nxdomain, .servfail, .refused] where errors.contains(wanted) { throw wanted }
        if let m = errors.first(where: { if case .malformed = $0 { return true }; return false }) { throw m }
        if errors.contains(.timeout) { throw DNSLookupError.timeout }
        if let other = errors.first { throw other }
        throw DNSLookupError.noAddress
    }

    private func outcome(_ name: String, _ type: DNSRecordType, deadline: Deadline) async -> Result<[IPAddress], DNSLookupError> {
        do {
            let answer = try await query(name, type: type, deadline: deadline)
            return .success(answer.addresses(for: name, type: type))
        } catch {
            return .failure(error)
        }
    }

    /// Asks one question; returns the first final answer (NOERROR) or throws.
    public func query(_ name: String, type: DNSRecordType, deadline: Deadline) async throws(DNSLookupError) -> DNSMessage {
        guard !servers.isEmpty else { throw DNSLookupError.network(.system(call: "no nameserver configured", errno: 0)) }
        var last: DNSLookupError = .timeout
        for _ in 0..<attempts {
            for server in servers {
                if deadline.hasPassed { throw last == .timeout ? .timeout : last }
                let tryDeadline = deadline.capped(atSecondsFromNow: timeoutPerTry)
                let answer: DNSMessage
                do {
                    answer = try await exchange(name, type: type, server: server, deadline: tryDeadline)
                } catch {
                    // A timeout must not hide a definite answer another server gave.
                    if error != .timeout || last == .timeout { last = error }
                    continue
                }
                switch answer.header.responseCode {
                case .noError: return answer
                case .nxDomain: throw DNSLookupError.nxdomain
                case .servFail: last = .servfail
                case .refused: last = .refused
                default: last = .malformed("rcode \(answer.header.responseCode)")
                }
            }
        }
        throw last
    }

    /// One query to one server: UDP, then TCP if the answer came back truncated.
    func exchange(_ name: String, type: DNSRecordType, server: SocketAddress, deadline: Deadline) async throws(DNSLookupError) -> DNSMessage {
        let id = UInt16.random(in: 0...UInt16.max)
        let query = DNSMessage.query(id: id, name: name, type: type)
        let bytes: [UInt8]
        do { bytes = try query.encode() } catch { throw DNSLookupError.malformed("cannot encode \(name): \(error)") }
        let binding: SocketBinding = server.ip.isLoopback ? .none : self.binding
        let answer = try await udpExchange(bytes, id: id, name: name, type: type, server: server, binding: binding, deadline: deadline)
        if !answer.header.truncated { return answer }
        return try await tcpExchange(bytes, id: id, name: name, type: type, server: server, binding: binding, deadline: deadline)
    }

    static func matches(_ m: DNSMessage, id: UInt16, name: String, type: DNSRecordType) -> Bool {
        guard m.header.isResponse, m.header.id == id, let q = m.questions.first, m.questions.count == 1 else { return false }
        return q.type == type.rawValue && q.name.lowercased().trimmingDot == name.lowercased().trimmingDot
    }

    private func udpExchange(_ query: [UInt8], id: UInt16, name: String, type: DNSRecordType, server: SocketAddress,
                             binding: SocketBinding, deadline: Deadline) async throws(DNSLookupError) -> DNSMessage {
        let socket: Socket
        do {
            socket = try binding.makeSocket(for: server, udp: true)
            try await socket.connect(to: server, deadline: deadline)
        } catch {
            throw DNSLookupError.network(error)
        }
        defer { socket.close() }
        var malformed: String?
        do {
            try await socket.write(query, deadline: deadline)
            while true {
                let datagram = try await socket.read(maxBytes: 65_535, deadline: deadline)
                do {
                    let m = try DNSMessage.decode(datagram)
                    if Self.matches(m, id: id, name: name, type: type) { return m }
                } catch {
                    malformed = "\(error)"
                }
            }
        } catch .timedOut {
            throw malformed.map { DNSLookupError.malformed($0) } ?? .timeout
        } catch {
            throw DNSLookupError.network(error)
        }
    }

    private func tcpExchange(_ query: [UInt8], id: UInt16, name: String, type: DNSRecordType, server: SocketAddress,
                             binding: SocketBinding, deadline: Deadline) async throws(DNSLookupError) -> DNSMessage {
        do {
            let socket = try binding.makeSocket(for: server)
            defer { socket.close() }
            try await socket.connect(to: server, deadline: deadline)
            try await socket.write([UInt8(query.count >> 8), UInt8(query.count & 0xff)] + query, deadline: deadline)
            var buffer: [UInt8] = []
            var expected: Int?
            while true {
                if expected == nil, buffer.count >= 2 {
                    expected = Int(buffer[0]) << 8 | Int(buffer[1])
                }
                if let n = expected, buffer.count >= n + 2 {
                    let m: DNSMessage
                    do { m = try DNSMessage.decode(Array(buffer[2..<(n + 2)])) } catch {
                        throw DNSLookupError.malformed("\(error)")
                    }
                    guard Self.matches(m, id: id, name: name, type: type) else {
                        throw DNSLookupError.malformed("TCP answer does not match the question")
                    }
                    return m
                }
                let chunk = try await socket.read(maxBytes: 65_537, deadline: deadline)
                if chunk.isEmpty { throw DNSLookupError.malformed("TCP answer cut short") }
                buffer += chunk
            }
        } catch let e as DNSLookupError {
            throw e
        } catch let e as NetError {
            throw e == .timedOut ? DNSLookupError.timeout : .network(e)
        } catch {
            throw DNSLookupError.malformed("\(error)")
        }
    }
}

extension String {
    var trimmingDot: Substring { hasSuffix(".") ? dropLast() : Substring(self) }
}
