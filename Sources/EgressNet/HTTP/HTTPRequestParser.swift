// Server side, for the agent's own listener (/metrics, /healthz, /, /api/v1/status, /-/reload):
// a request parser that keeps pipelined bytes, and a response serializer.

/// The request line and header fields of a received request.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: String
    /// The request-target as sent: origin-form `path?query` (or `*`, or absolute-form).
    public var target: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    /// Whether the connection stays open after the response (RFC 9112 §9.3): HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    public var keepAlive: Bool

    public init(method: String, target: String, version: HTTPVersion = .http1_1, headers: HTTPHeaders = HTTPHeaders(), keepAlive: Bool? = nil) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.keepAlive = keepAlive ?? HTTPSyntax.keepAlive(version: version, headers: headers)
    }

    /// The target up to `?` (not percent-decoded).
    public var path: String {
        String(decoding: target.utf8.prefix { $0 != UInt8(ascii: "?") }, as: UTF8.self)
    }

    /// The target after the first `?`, or nil when there is none (not percent-decoded).
    public var query: String? {
        guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return nil }
        return String(decoding: target.utf8[target.utf8.index(after: mark)...], as: UTF8.self)
    }
}

/// A complete received request: its head and its `Content-Length` body (empty when none).
public struct HTTPRequestMessage: Sendable, Equatable {
    public var head: HTTPRequestHead
    public var body: [UInt8]

    public init(head: HTTPRequestHead, body: [UInt8] = []) {
        self.head = head
        self.body = body
    }
}

/// Parses the requests arriving on one server connection.
///
/// ```
/// var parser = HTTPRequestParser()
/// while let bytes = try await connection.read() {
///     var request = try parser.feed(bytes)
///     while let message = request {
///         try await connection.write(respond(to: message).serialize(includeBody: message.head.method != "HEAD"))
///         guard message.head.keepAlive else { return close() }
///         request = try parser.next()          // a pipelined request already buffered
///     }
/// }
/// ```
///
/// Requests are returned one at a time, in order; bytes after a complete request stay buffered
/// for `next()`. Drain `next()` until it returns nil before feeding more (feeding more than one
/// request's limits on top of undrained requests throws `pipelineOverflow`), so memory stays within
/// the limits plus one read.
///
/// Accepts: `token SP target SP HTTP/1.x` with single spaces; empty lines before a request line
/// (RFC 9112 §2.2); bare LF line endings; bodies framed by `Content-Length`. Refuses: any
/// `Transfer-Encoding` (`unsupportedTransferEncoding`), an HTTP/1.1 request without exactly one
/// `Host` (`badHost`), and everything the response parser refuses in fields. Errors are final:
/// the connection should get `suggestedStatus` and be closed. Each error is one `HTTPParseError`.
public struct HTTPRequestParser: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Bytes of the request line, CRLF not counted.
        public var maxRequestLineBytes: Int
        /// Bytes of the field lines and the final empty line.
        public var maxHeaderBytes: Int
        public var maxHeaderCount: Int
        public var maxBodyBytes: Int

        public init(maxRequestLineBytes: Int = 8 * 1024, maxHeaderBytes: Int = 16 * 1024, maxHeaderCount: Int = 64, maxBodyBytes: Int = 64 * 1024) {
            self.maxRequestLineBytes = max(0, maxRequestLineBytes)
            self.maxHeaderBytes = max(0, maxHeaderBytes)
            self.maxHeaderCount = max(0, maxHeaderCount)
            self.maxBodyBytes = max(0, maxBodyBytes)
        }
    }

    public let limits: Limits

    private var buffer: [UInt8] = []
    /// Index in `buffer` of the first byte not yet consumed; the offsets below are relative to it.
    private var start = 0
    private var scanned = 0
    private var lineStart = 0
    private var requestLineEnd: Int?
    private var methodEnded = false
    private var pending: (head: HTTPRequestHead, bodyLength: Int)?
    private var failure: HTTPParseError?

    public init(limits: Limits = Limits()) {
        // Re-clamp: the fields are `var`, so a caller may have set a negative one after init.
        self.limits = Limits(
            maxRequestLineBytes: limits.maxRequestLineBytes, maxHeaderBytes: limits.maxHeaderBytes,
            maxHeaderCount: limits.maxHeaderCount, maxBodyBytes: limits.maxBodyBytes)
    }

    /// What one request may occupy in the buffer (saturating, so `Int.max` limits cannot trap).
    private var oneRequestBytes: Int {
        var total = 4  // the request line's CRLF and slack
        for part in [limits.maxRequestLineBytes, limits.maxHeaderBytes, limits.maxBodyBytes] {
            let (sum, overflow) = total.addingReportingOverflow(part)
            total = overflow ? Int.max : sum
        }
        return total
    }

    /// Bytes received but not yet returned as part of a request.
    public var bufferedByteCount: Int { buffer.count - start }

    /// Whether part of a request has been received (so a close now would cut it).
    public var hasPartialRequest: Bool { pending != nil || buffer.count > start }

    /// Appends received bytes and returns the next complete request, if there is one.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(HTTPParseError) -> HTTPRequestMessage? {
        if let failure { throw failure }
        guard buffer.count - start <= oneRequestBytes else {
            failure = .pipelineOverflow
            throw .pipelineOverflow
        }
        buffer.append(contentsOf: bytes)
        return try next()
    }

    /// Returns the next complete request from bytes already received, or nil until more arrive.
    public mutating func next() throws(HTTPParseError) -> HTTPRequestMessage? {
        if let failure { throw failure }
        do throws(HTTPParseError) {
            return try parseNext()
        } catch {
            failure = error
            throw error
        }
    }

    /// The peer closed its side: throws `incompleteHead` or `incompleteBody` when a request was cut
    /// short (nothing to answer then, but worth a log line).
    public mutating func finish() throws(HTTPParseError) {
        if let failure { throw failure }
        if pending != nil {
            failure = .incompleteBody
        } else if buffer.count > start {
            failure = .incompleteHead
        }
        if let failure { throw failure }
    }

    private mutating func parseNext() throws(HTTPParseError) -> HTTPRequestMessage? {
        if pending == nil {
            if scanned == 0 {
                // RFC 9112 §2.2: ignore empty lines before the request line.
                while start < buffer.count, buffer[start] == HTTPSyntax.cr || buffer[start] == HTTPSyntax.lf {
                    start += 1
                }
            }
            guard let headLength = try scanForEndOfHead() else {
                compact()
                return nil
            }
            let parsed = buffer.withUnsafeBufferPointer { whole in
                Self.parseHead(
                    UnsafeBufferPointer(rebasing: whole[start..<(start + headLength)]),
                    requestLineEnd: requestLineEnd ?? 0, limits: limits)
            }
            let head = try parsed.get()
            start += headLength
            scanned = 0
            lineStart = 0
            requestLineEnd = nil
            methodEnded = false
            pending = (head, try Self.bodyLength(head, limits: limits))
        }
        guard let (head, bodyLength) = pending, buffer.count - start >= bodyLength else {
            compact()
            return nil
        }
        let body = Array(buffer[start..<(start + bodyLength)])
        start += bodyLength
        pending = nil
        compact()
        return HTTPRequestMessage(head: head, body: body)
    }

    /// Scans newly received bytes for the empty line that ends the head, enforcing the line and
    /// header limits as it goes. Returns the head's length (through the empty line's LF) once found.
    private mutating func scanForEndOfHead() throws(HTTPParseError) -> Int? {
        let available = buffer.count - start
        while scanned < available {
            let byte = buffer[start + scanned]
            scanned += 1
            if let requestLineEnd {
                guard scanned - (requestLineEnd + 1) <= limits.maxHeaderBytes else { throw .headerTooLarge }
                if byte == HTTPSyntax.lf {
                    let length = scanned - 1 - lineStart
                    if length == 0 || (length == 1 && buffer[start + lineStart] == HTTPSyntax.cr) {
                        return scanned
                    }
                    lineStart = scanned
                }
            } else if byte == HTTPSyntax.lf {
                var length = scanned - 1
                if length > 0, buffer[start + length - 1] == HTTPSyntax.cr { length -= 1 }
                guard length <= limits.maxRequestLineBytes else { throw .requestLineTooLarge }
                requestLineEnd = scanned - 1
                lineStart = scanned
            } else {
                // Not ended yet: allow one more byte for a CR before the LF.
                guard scanned - 1 <= limits.maxRequestLineBytes else { throw .requestLineTooLarge }
                // Refuse a non-token method at once (a TLS ClientHello, say) rather than wait for a LF.
                if !methodEnded {
                    if byte == HTTPSyntax.space {
                        methodEnded = true
                    } else if !HTTPSyntax.isTokenChar(byte) {
                        throw .badRequestLine
                    }
                }
            }
        }
        return nil
    }

    /// Parses a complete head: `requestLineEnd` is the offset of the request line's LF.
    private static func parseHead(
        _ head: UnsafeBufferPointer<UInt8>, requestLineEnd: Int, limits: Limits
    ) -> Result<HTTPRequestHead, HTTPParseError> {
        guard requestLineEnd < head.count else { return .failure(.badRequestLine) }
        let requestLine: (method: String, target: String, version: HTTPVersion)
        switch parseRequestLine(withoutCR(UnsafeBufferPointer(rebasing: head[0..<requestLineEnd]))) {
        case .success(let parsed): requestLine = parsed
        case .failure(let error): return .failure(error)
        }
        var headers = HTTPHeaders()
        var lineStart = requestLineEnd + 1
        var index = lineStart
        while index < head.count {
            if head[index] == HTTPSyntax.lf {
                let line = withoutCR(UnsafeBufferPointer(rebasing: head[lineStart..<index]))
                if line.isEmpty { break }  // the empty line that ends the head
                guard headers.count < limits.maxHeaderCount else { return .failure(.tooManyHeaders) }
                guard let field = HTTPSyntax.parseFieldLine(line) else { return .failure(.badHeader) }
                headers.add(field.name, field.value)
                lineStart = index + 1
            }
            index += 1
        }
        let hosts = headers.values("Host").count
        if hosts > 1 || (hosts == 0 && requestLine.version != .http1_0) { return .failure(.badHost) }
        return .success(HTTPRequestHead(method: requestLine.method, target: requestLine.target, version: requestLine.version, headers: headers))
    }

    private static func bodyLength(_ head: HTTPRequestHead, limits: Limits) throws(HTTPParseError) -> Int {
        if head.headers.contains("Transfer-Encoding") { throw .unsupportedTransferEncoding }
        let length = try HTTPSyntax.contentLength(head.headers) ?? 0
        guard length <= limits.maxBodyBytes else { throw .bodyTooLarge }
        return length
    }

    /// `method SP request-target SP HTTP-version` (RFC 9112 §3), single spaces.
    static func parseRequestLine(
        _ line: UnsafeBufferPointer<UInt8>
    ) -> Result<(method: String, target: String, version: HTTPVersion), HTTPParseError> {
        var methodEnd = 0
        while methodEnd < line.count, line[methodEnd] != HTTPSyntax.space {
            guard HTTPSyntax.isTokenChar(line[methodEnd]) else { return .failure(.badRequestLine) }
            methodEnd += 1
        }
        guard methodEnd > 0, methodEnd < line.count else { return .failure(.badRequestLine) }
        var targetEnd = methodEnd + 1
        while targetEnd < line.count, line[targetEnd] != HTTPSyntax.space {
            guard HTTPSyntax.isTargetByte(line[targetEnd]) else { return .failure(.badRequestLine) }
            targetEnd += 1
        }
        guard targetEnd > methodEnd + 1, targetEnd < line.count else { return .failure(.badRequestLine) }
        let versionBytes = UnsafeBufferPointer(rebasing: line[(targetEnd + 1)...])
        guard let version = HTTPSyntax.parseVersion(versionBytes) else {
            // `HTTP/` and digits and dots: a version we do not speak (505); anything else is junk.
            let looksLikeVersion = HTTPSyntax.hasHTTPPrefix(versionBytes) && versionBytes.count > 5
                && versionBytes.dropFirst(5).allSatisfy { HTTPSyntax.digitValue($0) != nil || $0 == UInt8(ascii: ".") }
            return .failure(looksLikeVersion ? .badVersion : .badRequestLine)
        }
        guard version.major == 1 else { return .failure(.badVersion) }
        let method = String(decoding: UnsafeBufferPointer(rebasing: line[0..<methodEnd]), as: UTF8.self)
        let target = String(decoding: UnsafeBufferPointer(rebasing: line[(methodEnd + 1)..<targetEnd]), as: UTF8.self)
        return .success((method, target, version))
    }

    private static func withoutCR(_ line: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        if let last = line.last, last == HTTPSyntax.cr {
            return UnsafeBufferPointer(rebasing: line[0..<(line.count - 1)])
        }
        return line
    }

    /// Drops consumed bytes once they are most of the buffer, keeping the copy cost linear.
    private mutating func compact() {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 64 * 1024)
            start = 0
        } else if start >= 4096, start * 2 >= buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
    }
}

extension HTTPParseError {
    /// The status a server should answer a request that failed this way with, before closing:
    /// 400, 413 (body), 414 (request line), 431 (header fields), 501 (transfer coding) or 505
    /// (version).
    public var suggestedStatus: Int {
        switch self {
        case .requestLineTooLarge: 414
        case .headerTooLarge, .tooManyHeaders: 431
        case .bodyTooLarge: 413
        case .unsupportedTransferEncoding: 501
        case .badVersion: 505
        default: 400
        }
    }
}

/// A response from the agent's listener.
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var reason: String
    public var headers: HTTPHeaders
    public var body: [UInt8]

    /// - Parameter reason: defaults to the standard phrase for `status`.
    public init(status: Int, reason: String? = nil, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.reason = reason ?? Self.reasonPhrase(for: status)
        self.headers = headers
        self.body = body
    }

    /// The response's bytes: `HTTP/1.1 status reason`, the headers in order, `Content-Length`
    /// (replacing any given, and any `Transfer-Encoding`), then the body unless `includeBody` is
    /// false (answers to `HEAD` keep the `Content-Length` of the body they omit). 1xx, 204 and 304
    /// get neither `Content-Length` nor body.
    ///
    /// Never traps and never lets a field split a line: a status outside 100...999 is sent as 500,
    /// headers whose names are not tokens are dropped, and control characters in the reason or a
    /// value are replaced by spaces (these come from the agent's own code, not from peers).
    public func serialize(includeBody: Bool = true) -> [UInt8] {
        var out = serializeHead(framing: .contentLength(body.count), reserving: includeBody ? body.count : 0)
        if includeBody && Self.allowsBody(status) {
            out.append(contentsOf: body)
        }
        return out
    }

    /// How a receiver finds the end of the body that follows a head serialized alone.
    public enum BodyFraming: Sendable, Equatable {
        /// `Content-Length: n`.
        case contentLength(Int)
        /// `Transfer-Encoding: chunked` (HTTP/1.1 clients).
        case chunked
        /// Neither: the body ends where the connection does (HTTP/1.0 clients).
        case untilClose
    }

    /// The head alone, as ``serialize(includeBody:)`` writes it but with the body's `framing`
    /// said in place of this response's own `Content-Length`: for a body sent after it in
    /// pieces. `body` is not looked at.
    public func serializeHead(framing: BodyFraming, reserving extra: Int = 0) -> [UInt8] {
        let code = Self.wireStatus(status)
        let bodyAllowed = Self.allowsBody(code)
        var out: [UInt8] = []
        out.reserveCapacity(128 + headers.count * 32 + (bodyAllowed ? extra : 0))
        out.append(contentsOf: "HTTP/1.1 ".utf8)
        out.append(contentsOf: String(code).utf8)
        out.append(HTTPSyntax.space)
        Self.appendSanitized(reason, to: &out)
        out.append(HTTPSyntax.cr)
        out.append(HTTPSyntax.lf)
        for field in headers where HTTPSyntax.isToken(field.name) {
            if HTTPSyntax.equalsIgnoringASCIICase(field.name, "Content-Length")
                || HTTPSyntax.equalsIgnoringASCIICase(field.name, "Transfer-Encoding")
            {
                continue
            }
            out.append(contentsOf: field.name.utf8)
            out.append(HTTPSyntax.colon)
            out.append(HTTPSyntax.space)
            Self.appendSanitized(field.value, to: &out)
            out.append(HTTPSyntax.cr)
            out.append(HTTPSyntax.lf)
        }
        if bodyAllowed {
            switch framing {
            case .contentLength(let count): HTTPSyntax.appendField("Content-Length", String(count), to: &out)
            case .chunked: HTTPSyntax.appendField("Transfer-Encoding", "chunked", to: &out)
            case .untilClose: break
            }
        }
        out.append(HTTPSyntax.cr)
        out.append(HTTPSyntax.lf)
        return out
    }

    /// The status sent: one outside 100...999 goes out as 500.
    private static func wireStatus(_ status: Int) -> Int { (100...999).contains(status) ? status : 500 }

    /// 1xx, 204 and 304 have neither body nor `Content-Length`.
    private static func allowsBody(_ status: Int) -> Bool {
        let code = wireStatus(status)
        return code >= 200 && code != 204 && code != 304
    }

    private static func appendSanitized(_ text: String, to out: inout [UInt8]) {
        for byte in text.utf8 {
            out.append(HTTPSyntax.isFieldValueByte(byte) && byte != 0x7F ? byte : HTTPSyntax.space)
        }
    }

    /// The standard reason phrase (RFC 9110 §15), or an empty string for unknown codes.
    public static func reasonPhrase(for status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 407: "Proxy Authentication Required"
        case 408: "Request Timeout"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: ""
        }
    }
}
