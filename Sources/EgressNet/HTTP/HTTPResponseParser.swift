// The incremental HTTP/1.1 response parser (RFC 9112) fed by the socket/TLS layer.
//
// It is a byte-driven state machine: every byte is looked at once, nothing is re-scanned, memory
// is bounded by the limits, and no input can make it trap or read out of bounds. It is safe to
// point a fuzzer at `feed`.

/// Why bytes could not be parsed as an HTTP/1.1 message. Shared by the response and request
/// parsers. Cases carry no peer data, so they are safe to log and to map to a failure reason.
public enum HTTPParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The peer closed the connection before sending a single byte of a response.
    case noResponse
    /// The first line is not `HTTP/1.x SP 3DIGIT [SP reason]`.
    case badStatusLine
    /// The first line of a request is not `method SP target SP HTTP/1.x`.
    case badRequestLine
    /// An `HTTP/` version other than 1.x (or not `DIGIT.DIGIT`).
    case badVersion
    /// A field line that is not `token ":" OWS value OWS`: whitespace before the colon, obs-fold,
    /// an empty name, control characters in the value.
    case badHeader
    /// The request line exceeds `maxRequestLineBytes`.
    case requestLineTooLarge
    /// The head (or a chunked body's trailer section) exceeds `maxHeaderBytes`.
    case headerTooLarge
    /// More than `maxHeaderCount` field lines.
    case tooManyHeaders
    /// An HTTP/1.1 request without exactly one `Host` field (RFC 9112 §3.2).
    case badHost
    /// `Content-Length` is not a non-negative decimal number that fits in an `Int`.
    case badContentLength
    /// Several `Content-Length` values that differ.
    case conflictingContentLength
    /// `Transfer-Encoding` is empty or applies `chunked` other than once and last.
    case badTransferEncoding
    /// A request with `Transfer-Encoding` (the agent's listener accepts `Content-Length` bodies only).
    case unsupportedTransferEncoding
    /// A malformed chunk: bad or overflowing hex size, bad extension, missing CRLF after the data.
    case badChunk
    /// The body exceeds `maxBodyBytes` (and the parser was not told to truncate).
    case bodyTooLarge
    /// The connection closed in the middle of a head.
    case incompleteHead
    /// The connection closed before the body that the framing announced was complete.
    case incompleteBody
    /// The request parser was fed more bytes while earlier, complete requests were still buffered,
    /// beyond what one request may take: the caller must drain `next()` before feeding more.
    case pipelineOverflow

    public var description: String {
        switch self {
        case .noResponse: "connection closed before any response"
        case .badStatusLine: "malformed status line"
        case .badRequestLine: "malformed request line"
        case .badVersion: "unsupported HTTP version"
        case .badHeader: "malformed header field"
        case .requestLineTooLarge: "request line too large"
        case .headerTooLarge: "header section too large"
        case .tooManyHeaders: "too many header fields"
        case .badHost: "missing or repeated Host header"
        case .badContentLength: "invalid Content-Length"
        case .conflictingContentLength: "conflicting Content-Length values"
        case .badTransferEncoding: "invalid Transfer-Encoding"
        case .unsupportedTransferEncoding: "unsupported Transfer-Encoding"
        case .badChunk: "malformed chunked encoding"
        case .bodyTooLarge: "body too large"
        case .incompleteHead: "connection closed in the middle of the header section"
        case .incompleteBody: "connection closed before the end of the body"
        case .pipelineOverflow: "too many pipelined bytes buffered"
        }
    }
}

/// The status line and header fields of a response.
public struct HTTPResponseHead: Sendable, Equatable {
    public var version: HTTPVersion
    public var status: Int
    /// The reason phrase as sent (may be empty); bytes that are not UTF-8 are replaced by U+FFFD.
    public var reason: String
    public var headers: HTTPHeaders

    public init(version: HTTPVersion = .http1_1, status: Int, reason: String = "", headers: HTTPHeaders = HTTPHeaders()) {
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
    }

    /// Whether the server intends to keep the connection open after this response
    /// (RFC 9112 §9.3: HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `keep-alive`).
    public var keepAlive: Bool { HTTPSyntax.keepAlive(version: version, headers: headers) }
}

/// An incremental HTTP/1.1 response parser: feed it bytes as they arrive from the connection and
/// it returns the events those bytes complete.
///
/// ```
/// var parser = HTTPResponseParser(requestMethod: "GET")
/// for try await chunk in connection { for event in try parser.feed(chunk) { ... } }
/// let last = try parser.finish()   // the peer closed
/// ```
///
/// Framing follows RFC 9112 §6.3: no body for `HEAD` requests, 1xx, 204 and 304; none for a 2xx
/// answer to `CONNECT` or a 101, after which the bytes belong to the tunnel (`takeTunnelBytes()`);
/// `Transfer-Encoding` with `chunked` last wins over `Content-Length`; another final coding, or no
/// framing field at all, means the body runs until the peer closes. Interim 1xx responses (100,
/// 102, 103) are skipped: the events describe the final response only.
///
/// Leniency, deliberately like curl: a bare LF ends a line as CRLF does (in heads, chunk lines and
/// trailers); `HTTP/1.1 200` without a space and reason is accepted. Strictness: whitespace before
/// a header's colon, obs-fold, control characters in fields, differing `Content-Length` values and
/// chunk sizes past `Int.max` are errors.
///
/// Errors: a call that throws produced no events. When an error is found after a call already
/// completed events (say the head, then a bad chunk), that call returns its events and the error is
/// thrown by the next call to `feed` or `finish`; once failed, every call throws the same error.
/// Invalid framing fields (`Content-Length`, `Transfer-Encoding`) fail before the head is
/// delivered, since such a head does not describe a message; a valid `Content-Length` above
/// `maxBodyBytes` (a local limit) fails right after the head, so the status is still known.
/// Feeding the same bytes split in any way yields the same events, except that consecutive `.body`
/// events are coalesced within one call and so may be split differently.
public struct HTTPResponseParser: Sendable {
    /// Bounds on what a peer can make the parser hold or deliver.
    public struct Limits: Sendable, Equatable {
        /// Bytes of the head, status line and final empty line included (interim 1xx heads count
        /// too); separately, bytes of a chunked body's trailer section.
        public var maxHeaderBytes: Int
        /// Field lines in the head; separately, in the trailer section.
        public var maxHeaderCount: Int
        /// Body bytes delivered at most. Past it the parser throws `bodyTooLarge`, or with
        /// `truncateBody` ends the body there.
        public var maxBodyBytes: Int

        public init(maxHeaderBytes: Int = 64 * 1024, maxHeaderCount: Int = 100, maxBodyBytes: Int = 1024 * 1024) {
            self.maxHeaderBytes = max(0, maxHeaderBytes)
            self.maxHeaderCount = max(0, maxHeaderCount)
            self.maxBodyBytes = max(0, maxBodyBytes)
        }
    }

    /// What the bytes fed so far completed, in order: one `.head`, zero or more `.body`, one `.end`.
    public enum Event: Sendable, Equatable {
        case head(HTTPResponseHead)
        /// Body bytes, transfer coding removed (chunk framing stripped; content codings untouched).
        case body([UInt8])
        /// The response is complete (or was cut at `maxBodyBytes` in truncate mode; see
        /// `bodyTruncated`).
        case end
    }

    /// Longest chunk-size line (size, extensions, CRLF) accepted.
    public static let maxChunkLineBytes = 4096

    public let limits: Limits
    /// The method of the request this response answers (`HEAD` and `CONNECT` change framing).
    public let requestMethod: String
    /// When true, a body longer than `maxBodyBytes` is delivered up to that many bytes and then
    /// `.end` follows with `bodyTruncated` set, instead of throwing `bodyTooLarge`. The connection
    /// then holds unread body bytes and must not be reused.
    public let truncateBody: Bool

    /// The final response head, once parsed.
    public private(set) var head: HTTPResponseHead?
    /// Body bytes delivered so far.
    public private(set) var bodyBytesReceived = 0
    /// True when `.end` came because `maxBodyBytes` were delivered in truncate mode before the
    /// framing said the body ended (a chunked or close-delimited body of exactly `maxBodyBytes`
    /// bytes also reports true: the parser stops without waiting to learn that).
    public private(set) var bodyTruncated = false
    /// Bytes received after a complete, non-tunnel response; they are discarded.
    public private(set) var excessByteCount = 0

    private enum State: Sendable, Equatable {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkSizeWhitespace
        case chunkExtension
        case chunkSizeLF
        case chunkData(remaining: Int)
        case chunkDataCR
        case chunkDataLF
        case trailer
        case untilClose
        case tunnel
        case done
    }

    private var state = State.head
    private var failure: HTTPParseError?
    private var receivedAny = false
    private let isHeadRequest: Bool
    private let isConnectRequest: Bool
    private var framingAllowsReuse = true

    // A line of the head or trailer section being collected, and the section's running totals.
    private var line: [UInt8] = []
    private var sectionBytes = 0
    private var sectionFields = 0
    private var statusLine: (version: HTTPVersion, status: Int, reason: String)?
    private var fields = HTTPHeaders()

    // The chunk-size line being read.
    private var chunkSize = 0
    private var chunkSizeDigits = 0
    private var chunkLineBytes = 0

    private var tunnel: [UInt8] = []

    /// - Parameters:
    ///   - limits: bounds on head and body.
    ///   - requestMethod: the method sent; `HEAD` responses have no body, a 2xx to `CONNECT`
    ///     starts a tunnel.
    ///   - truncateBody: deliver at most `maxBodyBytes` of a longer body, then `.end`, instead of
    ///     failing with `bodyTooLarge` (to read the first N bytes of a blob and stop).
    public init(limits: Limits = Limits(), requestMethod: String = "GET", truncateBody: Bool = false) {
        // Re-clamp: the fields are `var`, so a caller may have set a negative one after init.
        self.limits = Limits(maxHeaderBytes: limits.maxHeaderBytes, maxHeaderCount: limits.maxHeaderCount, maxBodyBytes: limits.maxBodyBytes)
        self.requestMethod = requestMethod
        self.truncateBody = truncateBody
        self.isHeadRequest = requestMethod == "HEAD"
        self.isConnectRequest = requestMethod == "CONNECT"
    }

    /// True once `.end` was returned (the tunnel, if any, follows).
    public var isComplete: Bool { state == .done || state == .tunnel }

    /// True when the response is complete, nothing extra arrived, and its framing and headers let
    /// the connection carry another request.
    public var canReuseConnection: Bool {
        state == .done && failure == nil && !bodyTruncated && framingAllowsReuse && excessByteCount == 0
            && head?.keepAlive == true
    }

    /// Feeds bytes received from the peer; returns the events they complete.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(HTTPParseError) -> [Event] {
        let contiguous = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(HTTPParseError) -> [Event] in try self.feed(buffer: buffer) }
        }
        if let contiguous { return try contiguous.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBufferPointer { buffer in
            Result { () throws(HTTPParseError) -> [Event] in try self.feed(buffer: buffer) }
        }.get()
    }

    /// Feeds bytes received from the peer straight from a read buffer; returns the events they complete.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) throws(HTTPParseError) -> [Event] {
        try bytes.withMemoryRebound(to: UInt8.self) { buffer in
            Result { () throws(HTTPParseError) -> [Event] in try self.feed(buffer: buffer) }
        }.get()
    }

    /// The peer closed the connection. Completes a close-delimited body with `.end`; throws
    /// `noResponse`, `incompleteHead` or `incompleteBody` when the response was cut short.
    /// Returns nothing when the response was already complete.
    public mutating func finish() throws(HTTPParseError) -> [Event] {
        if let failure { throw failure }
        switch state {
        case .head:
            let error: HTTPParseError = receivedAny ? .incompleteHead : .noResponse
            failure = error
            throw error
        case .untilClose:
            state = .done
            return [.end]
        case .tunnel, .done:
            return []
        case .fixedBody, .chunkSize, .chunkSizeWhitespace, .chunkExtension, .chunkSizeLF, .chunkData,
            .chunkDataCR, .chunkDataLF, .trailer:
            failure = .incompleteBody
            throw .incompleteBody
        }
    }

    /// Returns and forgets the bytes that followed the head of a tunnel-opening response (2xx to
    /// `CONNECT`, or 101): they are the first bytes of the tunnel, e.g. a TLS ServerHello.
    public mutating func takeTunnelBytes() -> [UInt8] {
        defer { tunnel = [] }
        return tunnel
    }

    // MARK: - The state machine

    private struct EventSink {
        var events: [Event] = []
        var body: [UInt8] = []

        mutating func appendBody(_ input: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
            if !range.isEmpty { body.append(contentsOf: UnsafeBufferPointer(rebasing: input[range])) }
        }

        mutating func append(_ event: Event) {
            flushBody()
            events.append(event)
        }

        mutating func flushBody() {
            if !body.isEmpty {
                events.append(.body(body))
                body = []
            }
        }
    }

    private mutating func feed(buffer input: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> [Event] {
        if let failure { throw failure }
        var sink = EventSink()
        do throws(HTTPParseError) {
            try run(input, &sink)
        } catch {
            failure = error
            sink.flushBody()
            if sink.events.isEmpty { throw error }
            // Events were completed before the error: hand them over now, throw on the next call.
        }
        sink.flushBody()
        return sink.events
    }

    private mutating func run(_ input: UnsafeBufferPointer<UInt8>, _ sink: inout EventSink) throws(HTTPParseError) {
        let count = input.count
        if count > 0 { receivedAny = true }
        var i = 0
        while i < count {
            switch state {
            case .head:
                if try takeLine(input, &i) { try headLine(&sink) }

            case .fixedBody(let remaining):
                let take = min(remaining, count - i)
                state = .fixedBody(remaining: remaining - take)
                let range = i..<(i + take)
                i += take
                if try deliver(input, range, &sink), remaining == take { endMessage(&sink) }

            case .chunkSize:
                let byte = input[i]
                i += 1
                try countChunkLineByte()
                if let digit = HTTPSyntax.hexValue(byte) {
                    guard chunkSize <= Int.max >> 4 else { throw .badChunk }
                    chunkSize = chunkSize << 4 | digit
                    chunkSizeDigits += 1
                } else if chunkSizeDigits == 0 {
                    throw .badChunk
                } else if byte == UInt8(ascii: ";") {
                    state = .chunkExtension
                } else if HTTPSyntax.isOWS(byte) {
                    state = .chunkSizeWhitespace
                } else if byte == HTTPSyntax.cr {
                    state = .chunkSizeLF
                } else if byte == HTTPSyntax.lf {
                    chunkSizeLineDone(&sink)
                } else {
                    throw .badChunk
                }

            case .chunkSizeWhitespace:
                let byte = input[i]
                i += 1
                try countChunkLineByte()
                if HTTPSyntax.isOWS(byte) {
                    // BWS before ";" or trailing whitespace: keep going.
                } else if byte == UInt8(ascii: ";") {
                    state = .chunkExtension
                } else if byte == HTTPSyntax.cr {
                    state = .chunkSizeLF
                } else if byte == HTTPSyntax.lf {
                    chunkSizeLineDone(&sink)
                } else {
                    throw .badChunk
                }

            case .chunkExtension:
                // Extensions are ignored; only their bytes are checked.
                let byte = input[i]
                i += 1
                try countChunkLineByte()
                if byte == HTTPSyntax.cr {
                    state = .chunkSizeLF
                } else if byte == HTTPSyntax.lf {
                    chunkSizeLineDone(&sink)
                } else if !HTTPSyntax.isFieldValueByte(byte) || byte == 0x7F {
                    throw .badChunk
                }

            case .chunkSizeLF:
                let byte = input[i]
                i += 1
                guard byte == HTTPSyntax.lf else { throw .badChunk }
                chunkSizeLineDone(&sink)

            case .chunkData(let remaining):
                let take = min(remaining, count - i)
                state = remaining == take ? .chunkDataCR : .chunkData(remaining: remaining - take)
                let range = i..<(i + take)
                i += take
                _ = try deliver(input, range, &sink)

            case .chunkDataCR:
                let byte = input[i]
                i += 1
                if byte == HTTPSyntax.cr {
                    state = .chunkDataLF
                } else if byte == HTTPSyntax.lf {
                    state = .chunkSize
                } else {
                    throw .badChunk
                }

            case .chunkDataLF:
                let byte = input[i]
                i += 1
                guard byte == HTTPSyntax.lf else { throw .badChunk }
                state = .chunkSize

            case .trailer:
                if try takeLine(input, &i) { try trailerLine(&sink) }

            case .untilClose:
                let range = i..<count
                i = count
                _ = try deliver(input, range, &sink)

            case .tunnel:
                tunnel.append(contentsOf: UnsafeBufferPointer(rebasing: input[i..<count]))
                i = count

            case .done:
                excessByteCount += count - i
                i = count
            }
        }
    }

    /// Moves the bytes of the current line from `input[i...]` into `line`, counting them against
    /// `maxHeaderBytes` before copying. Returns true when the line's LF was consumed (`line` then
    /// holds the line without its LF).
    private mutating func takeLine(_ input: UnsafeBufferPointer<UInt8>, _ i: inout Int) throws(HTTPParseError) -> Bool {
        var end = i
        while end < input.count, input[end] != HTTPSyntax.lf { end += 1 }
        let found = end < input.count
        let consumed = end - i + (found ? 1 : 0)
        guard consumed <= limits.maxHeaderBytes - sectionBytes else { throw .headerTooLarge }
        sectionBytes += consumed
        line.append(contentsOf: UnsafeBufferPointer(rebasing: input[i..<end]))
        i += consumed
        return found
    }

    /// Handles a complete line of the head: the status line, a field line, or the empty line.
    private mutating func headLine(_ sink: inout EventSink) throws(HTTPParseError) {
        defer { line.removeAll(keepingCapacity: true) }
        if let status = statusLine {
            if Self.isEmptyLine(line) {
                try headComplete(status, &sink)
                return
            }
            guard fields.count < limits.maxHeaderCount else { throw .tooManyHeaders }
            let field = line.withUnsafeBufferPointer { HTTPSyntax.parseFieldLine(Self.withoutCR($0)) }
            guard let field else { throw .badHeader }
            fields.add(field.name, field.value)
        } else {
            let parsed = line.withUnsafeBufferPointer { Self.parseStatusLine(Self.withoutCR($0)) }
            statusLine = try parsed.get()
        }
    }

    private mutating func headComplete(
        _ status: (version: HTTPVersion, status: Int, reason: String), _ sink: inout EventSink
    ) throws(HTTPParseError) {
        let headers = fields
        statusLine = nil
        fields = HTTPHeaders()
        line = []
        if status.status < 200 && status.status != 101 {
            return  // An interim response: the final one follows. Its bytes still count toward the limit.
        }
        // Framing is decided before the head is delivered: a head whose framing fields are invalid
        // is not a response (only the body limit, a local choice, fails after the head).
        enum Framing { case none, tunnel, chunked, length(Int), untilClose }
        let framing: Framing
        let codings = HTTPSyntax.transferCodings(headers)
        if status.status == 101 || (isConnectRequest && (200...299).contains(status.status)) {
            framing = .tunnel
        } else if isHeadRequest || status.status == 204 || status.status == 304 || status.status < 200 {
            framing = .none
        } else if let codings {
            guard let last = codings.last else { throw .badTransferEncoding }
            if last == "chunked" {
                guard !codings.dropLast().contains("chunked") else { throw .badTransferEncoding }
                framing = .chunked
            } else {
                guard !codings.contains("chunked") else { throw .badTransferEncoding }
                framing = .untilClose
            }
            if headers.contains("Content-Length") { framingAllowsReuse = false }  // a smuggling smell
        } else if let length = try HTTPSyntax.contentLength(headers) {
            framing = length == 0 ? .none : .length(length)
        } else {
            framing = .untilClose
        }

        let head = HTTPResponseHead(version: status.version, status: status.status, reason: status.reason, headers: headers)
        self.head = head
        sink.append(.head(head))

        switch framing {
        case .tunnel:
            state = .tunnel
            sink.append(.end)
            return
        case .none:
            endMessage(&sink)
            return
        case .chunked:
            state = .chunkSize
        case .untilClose:
            state = .untilClose
            framingAllowsReuse = false
        case .length(let length):
            if length > limits.maxBodyBytes && !truncateBody { throw .bodyTooLarge }
            state = .fixedBody(remaining: length)
        }
        if truncateBody && limits.maxBodyBytes == 0 { truncatedEnd(&sink) }
    }

    private mutating func trailerLine(_ sink: inout EventSink) throws(HTTPParseError) {
        defer { line.removeAll(keepingCapacity: true) }
        if Self.isEmptyLine(line) {
            line = []
            endMessage(&sink)
            return
        }
        let valid = line.withUnsafeBufferPointer { HTTPSyntax.parseFieldLine(Self.withoutCR($0)) != nil }
        guard valid else { throw .badHeader }
        sectionFields += 1
        guard sectionFields <= limits.maxHeaderCount else { throw .tooManyHeaders }
        // Trailer fields are parsed and dropped.
    }

    private mutating func chunkSizeLineDone(_ sink: inout EventSink) {
        let size = chunkSize
        chunkSize = 0
        chunkSizeDigits = 0
        chunkLineBytes = 0
        if size == 0 {
            state = .trailer
            sectionBytes = 0
            sectionFields = 0
        } else {
            state = .chunkData(remaining: size)
        }
    }

    private mutating func countChunkLineByte() throws(HTTPParseError) {
        chunkLineBytes += 1
        guard chunkLineBytes <= Self.maxChunkLineBytes else { throw .badChunk }
    }

    /// Delivers body bytes within `maxBodyBytes`. Returns false when the message ended here
    /// (truncate mode reached the limit); throws `bodyTooLarge` past the limit otherwise.
    private mutating func deliver(
        _ input: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ sink: inout EventSink
    ) throws(HTTPParseError) -> Bool {
        let room = limits.maxBodyBytes - bodyBytesReceived
        if range.count > room {
            sink.appendBody(input, range.lowerBound..<(range.lowerBound + room))
            bodyBytesReceived += room
            guard truncateBody else { throw .bodyTooLarge }
            truncatedEnd(&sink)
            return false
        }
        sink.appendBody(input, range)
        bodyBytesReceived += range.count
        if truncateBody, bodyBytesReceived == limits.maxBodyBytes, state != .fixedBody(remaining: 0) {
            truncatedEnd(&sink)
            return false
        }
        return true
    }

    private mutating func endMessage(_ sink: inout EventSink) {
        state = .done
        sink.append(.end)
    }

    private mutating func truncatedEnd(_ sink: inout EventSink) {
        bodyTruncated = true
        endMessage(&sink)
    }

    // MARK: - Line syntax

    private static func withoutCR(_ line: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        if let last = line.last, last == HTTPSyntax.cr {
            return UnsafeBufferPointer(rebasing: line[0..<(line.count - 1)])
        }
        return line
    }

    private static func isEmptyLine(_ line: [UInt8]) -> Bool {
        line.isEmpty || (line.count == 1 && line[0] == HTTPSyntax.cr)
    }

    /// `HTTP-version SP 3DIGIT SP reason-phrase` (RFC 9112 §4); the SP before an empty reason may
    /// be missing. The status must be 100...999.
    static func parseStatusLine(
        _ line: UnsafeBufferPointer<UInt8>
    ) -> Result<(version: HTTPVersion, status: Int, reason: String), HTTPParseError> {
        guard HTTPSyntax.hasHTTPPrefix(line) else { return .failure(.badStatusLine) }
        var versionEnd = 5
        while versionEnd < line.count, line[versionEnd] != HTTPSyntax.space { versionEnd += 1 }
        guard let version = HTTPSyntax.parseVersion(UnsafeBufferPointer(rebasing: line[0..<versionEnd])),
            version.major == 1
        else { return .failure(.badVersion) }
        let codeStart = versionEnd + 1
        guard codeStart + 3 <= line.count,
            let d0 = HTTPSyntax.digitValue(line[codeStart]), d0 > 0,
            let d1 = HTTPSyntax.digitValue(line[codeStart + 1]),
            let d2 = HTTPSyntax.digitValue(line[codeStart + 2])
        else { return .failure(.badStatusLine) }
        let status = d0 * 100 + d1 * 10 + d2
        let codeEnd = codeStart + 3
        if codeEnd == line.count { return .success((version, status, "")) }
        guard line[codeEnd] == HTTPSyntax.space else { return .failure(.badStatusLine) }
        let reason = UnsafeBufferPointer(rebasing: line[(codeEnd + 1)...])
        guard reason.allSatisfy(HTTPSyntax.isFieldValueByte) else { return .failure(.badStatusLine) }
        return .success((version, status, String(decoding: reason, as: UTF8.self)))
    }
}
