/// A response read by `HTTPClient`.
public struct HTTPClientResponse: Sendable {
    public let head: HTTPResponseHead
    /// The body as received (transfer coding removed), at most the limit asked for.
    public let body: [UInt8]
    /// Whether the body was cut at the limit (blob throughput reads stop there on purpose).
    public let bodyTruncated: Bool
    /// Seconds from the end of writing the request to the first byte of the answer.
    public let timeToFirstByte: Double
    /// Seconds from the end of writing the request to the last byte read.
    public let totalTime: Double
    /// Body bytes received (also when the body was not kept).
    public let bodyByteCount: Int
    /// Seconds from the first body byte to the last (0 for an empty body).
    public let bodyTime: Double
    /// Whether the connection may carry another request (keep-alive, body complete).
    public let reusable: Bool
}

/// Why an HTTP exchange failed. Probes map these onto `http_timeout`, `http_reset` and
/// `http_bad_response`.
public enum HTTPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The deadline passed; `gotHead` tells a silent server from one that stalled mid-body.
    case timeout(gotHead: Bool)
    /// The connection was reset or closed before the response was complete.
    case reset(String)
    /// The bytes were not a valid HTTP/1.1 response, or exceeded a limit.
    case badResponse(HTTPParseError)
    /// The request itself could not be written as HTTP (a bad header value).
    case badRequest(String)

    public var description: String {
        switch self {
        case .timeout(let gotHead): return gotHead ? "the response stalled before its end" : "no response before the deadline"
        case .reset(let s): return s
        case .badResponse(let e): return "bad HTTP response: \(e)"
        case .badRequest(let s): return "cannot send request: \(s)"
        }
    }
}

/// One HTTP/1.1 request and its response over a `ByteStream`, bounded in time and size.
public enum HTTPClient {
    /// - Parameters:
    ///   - truncateBody: stop reading once `limits.maxBodyBytes` body bytes arrived (a bounded
    ///     read of a blob) instead of failing.
    ///   - keepBody: false counts body bytes without keeping them (throughput reads).
    public static func send(_ request: HTTPRequest, over stream: any ByteStream, deadline: Deadline,
                            limits: HTTPResponseParser.Limits = .init(),
                            truncateBody: Bool = false, keepBody: Bool = true) async throws(HTTPClientError) -> HTTPClientResponse {
        let bytes: [UInt8]
        do { bytes = try request.serialize() } catch { throw HTTPClientError.badRequest("\(error)") }
        do {
            try await stream.write(bytes, deadline: deadline)
        } catch {
            throw classify(error, gotHead: false)
        }
        let sent = MonotonicClock.nanoseconds()
        var parser = HTTPResponseParser(limits: limits, requestMethod: request.method, truncateBody: truncateBody)
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        var bodyCount = 0
        var firstBodyByte: UInt64?
        var lastBodyByte: UInt64 = 0
        var firstByte: Double?
        while true {
            let chunk: [UInt8]
            do {
                chunk = try await stream.read(maxBytes: 64 * 1024, deadline: deadline)
            } catch {
                throw classify(error, gotHead: head != nil)
            }
            if firstByte == nil && !chunk.isEmpty { firstByte = MonotonicClock.seconds(since: sent) }
            let events: [HTTPResponseParser.Event]
            do {
                events = chunk.isEmpty ? try parser.finish() : try parser.feed(chunk)
            } catch {
                if chunk.isEmpty, error == .noResponse || error == .incompleteHead || error == .incompleteBody {
                    throw HTTPClientError.reset("connection closed by peer before the response was complete (\(error))")
                }
                throw HTTPClientError.badResponse(error)
            }
            for event in events {
                switch event {
                case .head(let h): head = h
                case .body(let b):
                    if keepBody { body += b }
                    bodyCount += b.count
                    let now = MonotonicClock.nanoseconds()
                    if firstBodyByte == nil { firstBodyByte = now }
                    lastBodyByte = now
                case .end:
                    guard let head else { throw HTTPClientError.badResponse(.incompleteHead) }
                    let bodyTime = firstBodyByte.map { Double(lastBodyByte - $0) / 1e9 } ?? 0
                    return HTTPClientResponse(head: head, body: body, bodyTruncated: parser.bodyTruncated,
                                              timeToFirstByte: firstByte ?? 0,
                                              totalTime: MonotonicClock.seconds(since: sent),
                                              bodyByteCount: bodyCount, bodyTime: bodyTime,
                                              reusable: !parser.bodyTruncated && parser.canReuseConnection)
                }
            }
            if chunk.isEmpty {
                // finish() returned without .end: nothing more can come.
                throw HTTPClientError.reset("connection closed by peer before the response was complete")
            }
        }
    }

    static func classify(_ error: NetError, gotHead: Bool) -> HTTPClientError {
        switch error {
        case .timedOut: return .timeout(gotHead: gotHead)
        case .reset, .closed: return .reset("\(error)")
        default: return .reset("\(error)")
        }
    }
}
