/// How an encrypted resolver is spoken to.
public enum EncryptedDNSProtocol: Sendable, Equatable {
    /// DNS over TLS (RFC 7858): each message framed by a two-byte length, as DNS over TCP.
    case tls
    /// DNS over HTTPS (RFC 8484): HTTP/1.1 POST of `application/dns-message` to `host` `path`.
    case https(host: String, path: String)
}

/// A stub client of one DNS-over-TLS or DNS-over-HTTPS resolver.
///
/// `connect` opens the byte stream to the resolver (over the probe's path: a bound socket, or a
/// tunnel through a proxy); this client runs the TLS handshake over it (certificate checked for
/// `serverName`, or for `serverAddress` when the resolver is known by its address only), then
/// asks the questions.
///
/// Connection reuse: one connection per lookup carries both its questions (A and AAAA), one
/// after the other: over DoT on the one TLS connection (RFC 7858 section 3.3 allows it), over
/// DoH on a keep-alive connection (HTTP/1.1 has no usable pipelining), and a DoH server that
/// closes after the first gets a second connection. The
/// connection is closed when the lookup ends: a probe's lookups are seconds apart and each
/// must be measured over the path as it is then, as a stub resolver without a cache would.
public struct EncryptedDNSClient: Sendable {
    public let transport: EncryptedDNSProtocol
    public let context: TLSContext
    /// SNI and the name the certificate must carry (DoT's `tls_name`, DoH's URL host).
    public let serverName: String?
    /// For a resolver known by address only: the address its certificate must name.
    public let serverAddress: IPAddress?

    public init(transport: EncryptedDNSProtocol, context: TLSContext, serverName: String?, serverAddress: IPAddress? = nil) {
        self.transport = transport
        self.context = context
        self.serverName = serverName
        self.serverAddress = serverAddress
    }

    /// Resolves `name` (A and AAAA, or the `family`'s type only), IPv4 first.
    public func resolve(_ name: String, family: IPFamily? = nil, deadline: Deadline,
                        connect: (Deadline) async throws(DNSLookupError) -> any ByteStream) async throws(DNSLookupError) -> [IPAddress] {
        var types: [DNSRecordType] = []
        if family != .ipv6 { types.append(.a) }
        if family != .ipv4 { types.append(.aaaa) }
        var stream: (any ByteStream)? = try await handshake(connect, deadline: deadline)
        defer { stream?.close() }
        var outcomes: [DNSRecordType: Result<[IPAddress], DNSLookupError>] = [:]
        switch transport {
        case .tls:
            // One question at a time on the one connection (dnsdist 1.7 did not answer the
            // second of two pipelined queries in the lab).
            for type in types {
                let answers = try await Self.dotExchange(name, types: [type], over: stream!, deadline: deadline)
                outcomes[type] = answers[type].map { Self.outcome($0, name: name, type: type) } ?? .failure(.timeout)
            }
        case .https(let host, let path):
            for type in types {
                if stream == nil { stream = try await handshake(connect, deadline: deadline) }
                let (message, reusable) = try await Self.dohExchange(name, type: type, host: host, path: path,
                                                                     over: stream!, deadline: deadline)
                outcomes[type] = Self.outcome(message, name: name, type: type)
                if !reusable {
                    stream?.close()
                    stream = nil
                }
            }
        }
        return try DNSClient.combine(types.map { outcomes[$0] ?? .success([]) })
    }

    /// Connects and runs the TLS handshake; TLS failures say what a person can act on.
    private func handshake(_ connect: (Deadline) async throws(DNSLookupError) -> any ByteStream,
                           deadline: Deadline) async throws(DNSLookupError) -> any ByteStream {
        let raw = try await connect(deadline)
        do {
            return try await TLSConnection.handshake(over: raw, context: context, serverName: serverName,
                                                     ipAddress: serverName == nil ? serverAddress : nil, deadline: deadline)
        } catch {
            raw.close()
            throw Self.failure(for: error, name: serverName ?? serverAddress?.description ?? "the resolver")
        }
    }

    static func failure(for error: TLSError, name: String) -> DNSLookupError {
        switch error.kind {
        // A resolver that accepts and then says nothing is silent, as one that never answers.
        case .timeout: return .timeout
        case .reset: return .transport("its TLS was reset during the handshake (\(error.detail)): an on-path filter or a server that does not speak TLS on this port")
        case .hostnameMismatch: return .transport("its certificate is not for \(name) (\(error.detail)): check tls_name, or an interceptor answered")
        case .certificateUntrusted: return .transport("its certificate is not trusted (\(error.detail)): give the resolver's ca_file, or an interceptor answered")
        case .certificateExpired: return .transport("its certificate is expired or not yet valid (\(error.detail))")
        case .protocolError: return .transport("TLS failed (\(error.detail))")
        }
    }

    private static func outcome(_ message: DNSMessage, name: String, type: DNSRecordType) -> Result<[IPAddress], DNSLookupError> {
        switch message.header.responseCode {
        case .noError: return .success(message.addresses(for: name, type: type))
        case .nxDomain: return .failure(.nxdomain)
        case .servFail: return .failure(.servfail)
        case .refused: return .failure(.refused)
        default: return .failure(.malformed("rcode \(message.header.responseCode)"))
        }
    }

    // MARK: DNS over TLS

    /// Sends every question at once and reads the length-framed answers, matched by id.
    public static func dotExchange(_ name: String, types: [DNSRecordType], over stream: any ByteStream,
                            deadline: Deadline) async throws(DNSLookupError) -> [DNSRecordType: DNSMessage] {
        var pending: [UInt16: DNSRecordType] = [:]
        var out: [UInt8] = []
        for type in types {
            var id = UInt16.random(in: 0...UInt16.max)
            while pending[id] != nil { id &+= 1 }
            pending[id] = type
            let bytes: [UInt8]
            do { bytes = try DNSMessage.query(id: id, name: name, type: type).encode() } catch {
                throw DNSLookupError.malformed("cannot encode \(name): \(error)")
            }
            out += [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xff)] + bytes
        }
        do { try await stream.write(out, deadline: deadline) } catch { throw Self.streamFailure(error, gotAnswer: false) }
        var answers: [DNSRecordType: DNSMessage] = [:]
        var buffer: [UInt8] = []
        while !pending.isEmpty {
            while let (message, used) = try Self.nextFrame(buffer) {
                buffer.removeFirst(used)
                let m: DNSMessage
                do { m = try DNSMessage.decode(message) } catch { throw DNSLookupError.malformed("\(error)") }
                guard let type = pending[m.header.id], DNSClient.matches(m, id: m.header.id, name: name, type: type) else {
                    throw DNSLookupError.malformed("an answer over TLS does not match any question asked (id \(m.header.id))")
                }
                pending[m.header.id] = nil
                answers[type] = m
            }
            if pending.isEmpty { break }
            let chunk: [UInt8]
            do { chunk = try await stream.read(maxBytes: 65_537, deadline: deadline) } catch {
                throw Self.streamFailure(error, gotAnswer: !answers.isEmpty || !buffer.isEmpty)
            }
            if chunk.isEmpty {
                throw DNSLookupError.transport(buffer.isEmpty ? "it closed the connection without answering"
                                                              : "it closed the connection in the middle of an answer (truncated)")
            }
            buffer += chunk
        }
        return answers
    }

    /// A complete length-framed message at the start of `buffer`, and the bytes it used.
    static func nextFrame(_ buffer: [UInt8]) throws(DNSLookupError) -> ([UInt8], Int)? {
        guard buffer.count >= 2 else { return nil }
        let length = Int(buffer[0]) << 8 | Int(buffer[1])
        if length < 12 { throw DNSLookupError.malformed("a \(length)-byte message over TLS is shorter than a DNS header") }
        guard buffer.count >= 2 + length else { return nil }
        return (Array(buffer[2..<(2 + length)]), 2 + length)
    }

    static func streamFailure(_ error: NetError, gotAnswer: Bool) -> DNSLookupError {
        switch error {
        case .timedOut: return gotAnswer ? .transport("an answer stalled before its end") : .timeout
        case .reset, .closed: return .transport("it reset the connection (\(error))")
        default: return .network(error)
        }
    }

    // MARK: DNS over HTTPS

    /// Limits of a DoH answer: a DNS message fits in 64 KiB; headers as for any response.
    static let dohLimits = HTTPResponseParser.Limits(maxBodyBytes: 65_535)

    /// One POST; the answer and whether the connection may carry another request.
    public static func dohExchange(_ name: String, type: DNSRecordType, host: String, path: String, over stream: any ByteStream,
                            deadline: Deadline) async throws(DNSLookupError) -> (DNSMessage, Bool) {
        // Id 0, as RFC 8484 section 4.1 asks (caches then see one request for one question).
        let query: [UInt8]
        do { query = try DNSMessage.query(id: 0, name: name, type: type).encode() } catch {
            throw DNSLookupError.malformed("cannot encode \(name): \(error)")
        }
        let request = HTTPRequest(method: "POST", target: path, headers: [
            "Host": host, "Accept": "application/dns-message", "Content-Type": "application/dns-message",
        ], body: query)
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.send(request, over: stream, deadline: deadline, limits: dohLimits)
        } catch {
            switch error {
            case .timeout(let gotHead): throw gotHead ? DNSLookupError.transport("its HTTP answer stalled before its end") : .timeout
            case .reset(let s): throw DNSLookupError.transport("it closed or reset the HTTPS connection (\(s))")
            case .badResponse(let e): throw DNSLookupError.transport("it did not answer valid HTTP/1.1 (\(e))")
            case .badRequest(let s): throw DNSLookupError.malformed(s)
            }
        }
        let message = try decodeDoHResponse(status: response.head.status, contentType: response.head.headers["content-type"],
                                            body: response.body, name: name, type: type)
        return (message, response.reusable)
    }

    /// Judges a DoH answer: HTTP 200 with `application/dns-message` carrying the answer to the
    /// question asked (id 0). Anything else is a failure that says what came instead.
    public static func decodeDoHResponse(status: Int, contentType: String?, body: [UInt8],
                                         name: String, type: DNSRecordType) throws(DNSLookupError) -> DNSMessage {
        let mediaType = contentType?.split(separator: ";").first.map { $0.trimmingSpaces.lowercased() }
        guard status == 200 else {
            let page = mediaType == "text/html" ? " with an HTML page (a block page or captive portal?)" : ""
            throw DNSLookupError.transport("it answered HTTP \(status)\(page) instead of a DNS message")
        }
        guard mediaType == "application/dns-message" else {
            throw DNSLookupError.transport("it answered HTTP 200 with \(mediaType ?? "no content type") instead of application/dns-message (not a DoH endpoint?)")
        }
        let message: DNSMessage
        do { message = try DNSMessage.decode(body) } catch { throw DNSLookupError.malformed("\(error)") }
        guard DNSClient.matches(message, id: 0, name: name, type: type) else {
            throw DNSLookupError.malformed("the DoH answer does not match the question asked")
        }
        return message
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return String(s)
    }
}
