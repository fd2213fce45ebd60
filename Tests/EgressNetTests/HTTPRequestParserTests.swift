// Server side of the HTTP/1.1 codec: the request parser of the agent's listener and the response
// serializer. Requests are the bytes Prometheus, curl and people send to /metrics, /healthz, /,
// /api/v1/status and /-/reload.

import Testing

@testable import EgressNet

private func wire(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Feeds `bytes` in pieces of `size` and drains `next()` after each, like a server loop would.
private func requests(_ bytes: [UInt8], size: Int? = nil, limits: HTTPRequestParser.Limits = .init()) -> (messages: [HTTPRequestMessage], error: HTTPParseError?, parser: HTTPRequestParser) {
    var parser = HTTPRequestParser(limits: limits)
    var messages: [HTTPRequestMessage] = []
    let step = max(1, size ?? bytes.count)
    do throws(HTTPParseError) {
        var at = 0
        repeat {
            var message = try parser.feed(bytes[at..<min(bytes.count, at + step)])
            while let complete = message {
                messages.append(complete)
                message = try parser.next()
            }
            at += step
        } while at < bytes.count
    } catch {
        return (messages, error, parser)
    }
    return (messages, nil, parser)
}

struct HTTPRequestErrorCase: Sendable, CustomTestStringConvertible {
    let name: String
    let wire: [UInt8]
    var limits = HTTPRequestParser.Limits()
    let error: HTTPParseError
    var status: Int
    var testDescription: String { name }
}

private let host = "Host: 127.0.0.1:9469\r\n"

private let errorCases: [HTTPRequestErrorCase] = [
    HTTPRequestErrorCase(name: "double space", wire: wire("GET  /metrics HTTP/1.1\r\n\(host)\r\n"), error: .badRequestLine, status: 400),
    HTTPRequestErrorCase(name: "no version", wire: wire("GET /metrics\r\n\(host)\r\n"), error: .badRequestLine, status: 400),
    HTTPRequestErrorCase(name: "trailing junk", wire: wire("GET /metrics HTTP/1.1 x\r\n\(host)\r\n"), error: .badRequestLine, status: 400),
    HTTPRequestErrorCase(name: "bad method character", wire: wire("G@T /metrics HTTP/1.1\r\n\(host)\r\n"), error: .badRequestLine, status: 400),
    HTTPRequestErrorCase(name: "empty method", wire: wire(" /metrics HTTP/1.1\r\n\(host)\r\n"), error: .badRequestLine, status: 400),
    HTTPRequestErrorCase(name: "non-ASCII target", wire: wire("GET /caf") + [0xE9] + wire(" HTTP/1.1\r\n\(host)\r\n"), error: .badRequestLine, status: 400),
    HTTPRequestErrorCase(name: "control byte in target", wire: wire("GET /a\u{1}b HTTP/1.1\r\n\(host)\r\n"), error: .badRequestLine, status: 400),
    HTTPRequestErrorCase(name: "not HTTP", wire: wire("GET / FTP/1.1\r\n\(host)\r\n"), error: .badRequestLine, status: 400),
    HTTPRequestErrorCase(name: "TLS ClientHello to a plain port", wire: [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x0a], error: .badRequestLine, status: 400),
    HTTPRequestErrorCase(name: "HTTP/2 preface", wire: wire("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), error: .badVersion, status: 505),
    HTTPRequestErrorCase(name: "HTTP/1.10", wire: wire("GET / HTTP/1.10\r\n\(host)\r\n"), error: .badVersion, status: 505),
    HTTPRequestErrorCase(name: "missing Host in HTTP/1.1", wire: wire("GET /metrics HTTP/1.1\r\n\r\n"), error: .badHost, status: 400),
    HTTPRequestErrorCase(name: "two Host fields", wire: wire("GET /metrics HTTP/1.1\r\n\(host)Host: other\r\n\r\n"), error: .badHost, status: 400),
    HTTPRequestErrorCase(name: "two Host fields in HTTP/1.0", wire: wire("GET /metrics HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), error: .badHost, status: 400),
    HTTPRequestErrorCase(name: "space before colon", wire: wire("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), error: .badHeader, status: 400),
    HTTPRequestErrorCase(name: "obs-fold", wire: wire("GET / HTTP/1.1\r\n\(host)X-A: b\r\n c\r\n\r\n"), error: .badHeader, status: 400),
    HTTPRequestErrorCase(name: "NUL in value", wire: wire("GET / HTTP/1.1\r\n\(host)X-A: \u{0}\r\n\r\n"), error: .badHeader, status: 400),
    HTTPRequestErrorCase(
        name: "chunked body", wire: wire("POST /-/reload HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        error: .unsupportedTransferEncoding, status: 501),
    HTTPRequestErrorCase(
        name: "Content-Length and Transfer-Encoding (smuggling shape)",
        wire: wire("POST /-/reload HTTP/1.1\r\n\(host)Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        error: .unsupportedTransferEncoding, status: 501),
    HTTPRequestErrorCase(
        name: "conflicting Content-Length", wire: wire("POST /-/reload HTTP/1.1\r\n\(host)Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        error: .conflictingContentLength, status: 400),
    HTTPRequestErrorCase(name: "bad Content-Length", wire: wire("POST /-/reload HTTP/1.1\r\n\(host)Content-Length: 1e3\r\n\r\n"), error: .badContentLength, status: 400),
    HTTPRequestErrorCase(
        name: "body over 64 KiB", wire: wire("POST /-/reload HTTP/1.1\r\n\(host)Content-Length: 65537\r\n\r\n"), error: .bodyTooLarge, status: 413),
    HTTPRequestErrorCase(
        name: "request line over 8 KiB", wire: wire("GET /" + String(repeating: "a", count: 8192) + " HTTP/1.1\r\n\(host)\r\n"),
        error: .requestLineTooLarge, status: 414),
    HTTPRequestErrorCase(
        name: "request line over 8 KiB, still unterminated", wire: wire("GET /" + String(repeating: "a", count: 9000)),
        error: .requestLineTooLarge, status: 414),
    HTTPRequestErrorCase(
        name: "header section over 16 KiB", wire: wire("GET / HTTP/1.1\r\n\(host)X-Big: " + String(repeating: "b", count: 16 * 1024) + "\r\n\r\n"),
        error: .headerTooLarge, status: 431),
    HTTPRequestErrorCase(
        name: "header section over 16 KiB, still unterminated", wire: wire("GET / HTTP/1.1\r\n\(host)X-Big: " + String(repeating: "b", count: 17 * 1024)),
        error: .headerTooLarge, status: 431),
    HTTPRequestErrorCase(
        name: "65 header fields", wire: wire("GET / HTTP/1.1\r\n\(host)" + String(repeating: "X-A: b\r\n", count: 64) + "\r\n"),
        error: .tooManyHeaders, status: 431),
    HTTPRequestErrorCase(
        name: "small limits: request line", wire: wire("GET /12345 HTTP/1.1\r\n\(host)\r\n"), limits: .init(maxRequestLineBytes: 18),
        error: .requestLineTooLarge, status: 414),
]

@Suite("HTTPRequestParser")
struct HTTPRequestParserTests {
    /// ```
    /// GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9469\r\nUser-Agent: Prometheus/2.42.0\r\nAccept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\nAccept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n
    /// ```
    static let prometheusScrape = wire(
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9469\r\nUser-Agent: Prometheus/2.42.0\r\n"
            + "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
            + "Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n")

    @Test("a Prometheus scrape")
    func scrape() throws {
        let result = requests(Self.prometheusScrape)
        #expect(result.error == nil)
        let message = try #require(result.messages.first)
        #expect(result.messages.count == 1)
        #expect(message.head.method == "GET")
        #expect(message.head.target == "/metrics")
        #expect(message.head.path == "/metrics")
        #expect(message.head.query == nil)
        #expect(message.head.version == .http1_1)
        #expect(message.head.keepAlive)
        #expect(message.head.headers["user-agent"] == "Prometheus/2.42.0")
        #expect(message.head.headers.count == 5)
        #expect(message.body.isEmpty)
        #expect(!result.parser.hasPartialRequest)
    }

    @Test("every split gives the same requests")
    func splitEquivalence() {
        let stream = Self.prometheusScrape + wire("POST /-/reload HTTP/1.1\r\n\(host)Content-Length: 5\r\n\r\nhello")
            + wire("\r\nGET /healthz HTTP/1.0\n\n")
        let whole = requests(stream)
        #expect(whole.error == nil)
        #expect(whole.messages.count == 3)
        for size in 1...stream.count {
            let split = requests(stream, size: size)
            #expect(split.messages == whole.messages, "pieces of \(size)")
            #expect(split.error == nil)
        }
    }

    @Test("POST /-/reload with an empty body, and with a body")
    func reload() throws {
        let empty = requests(wire("POST /-/reload HTTP/1.1\r\n\(host)Content-Length: 0\r\n\r\n"))
        #expect(empty.messages.map(\.body) == [[]])
        let noLength = requests(wire("POST /-/reload HTTP/1.1\r\n\(host)\r\n"))
        #expect(noLength.messages.map(\.body) == [[]])
        let body = requests(wire("POST /-/reload HTTP/1.1\r\n\(host)Content-Length: 3\r\n\r\nabc"))
        #expect(body.messages.map(\.body) == [wire("abc")])
    }

    @Test("pipelined requests: the second one's bytes are kept")
    func pipelined() throws {
        var parser = HTTPRequestParser()
        let first = try parser.feed(wire("GET /healthz HTTP/1.1\r\n\(host)\r\nGET /metrics?x=1 HTTP/1.1\r\n\(host)\r\nGET /api/v1/st"))
        #expect(first?.head.target == "/healthz")
        #expect(parser.hasPartialRequest)
        let second = try parser.next()
        #expect(second?.head.target == "/metrics?x=1")
        #expect(second?.head.query == "x=1")
        #expect(try parser.next() == nil)
        #expect(parser.bufferedByteCount == 14)
        let third = try parser.feed(wire("atus HTTP/1.1\r\n\(host)\r\n"))
        #expect(third?.head.target == "/api/v1/status")
        #expect(try parser.next() == nil)
        #expect(parser.bufferedByteCount == 0)
        try parser.finish()
    }

    @Test("a body split from its head, then a pipelined request")
    func bodyThenPipelined() throws {
        var parser = HTTPRequestParser()
        #expect(try parser.feed(wire("POST /-/reload HTTP/1.1\r\n\(host)Content-Length: 4\r\n\r\nab")) == nil)
        #expect(throws: HTTPParseError.incompleteBody) {
            var copy = parser
            try copy.finish()
        }
        let message = try parser.feed(wire("cdGET / HTTP/1.1\r\n\(host)\r\n"))
        #expect(message?.body == wire("abcd"))
        #expect(try parser.next()?.head.target == "/")
    }

    struct KeepAliveCase: Sendable, CustomTestStringConvertible {
        let version: String
        let connection: String?
        let keepAlive: Bool
        var testDescription: String { "\(version) Connection: \(connection ?? "-")" }
    }

    @Test(
        "keep-alive rules",
        arguments: [
            KeepAliveCase(version: "HTTP/1.1", connection: nil, keepAlive: true),
            KeepAliveCase(version: "HTTP/1.1", connection: "close", keepAlive: false),
            KeepAliveCase(version: "HTTP/1.1", connection: "Close", keepAlive: false),
            KeepAliveCase(version: "HTTP/1.1", connection: "keep-alive", keepAlive: true),
            KeepAliveCase(version: "HTTP/1.1", connection: "Upgrade, close", keepAlive: false),
            KeepAliveCase(version: "HTTP/1.1", connection: "closed", keepAlive: true),
            KeepAliveCase(version: "HTTP/1.0", connection: nil, keepAlive: false),
            KeepAliveCase(version: "HTTP/1.0", connection: "keep-alive", keepAlive: true),
            KeepAliveCase(version: "HTTP/1.0", connection: "Keep-Alive", keepAlive: true),
            KeepAliveCase(version: "HTTP/1.0", connection: "keep-alive, close", keepAlive: false),
        ])
    func keepAlive(_ testCase: KeepAliveCase) throws {
        var text = "GET / \(testCase.version)\r\n\(host)"
        if let connection = testCase.connection { text += "Connection: \(connection)\r\n" }
        let message = try #require(requests(wire(text + "\r\n")).messages.first)
        #expect(message.head.keepAlive == testCase.keepAlive)
    }

    @Test("HTTP/1.0 without Host is fine")
    func http10WithoutHost() throws {
        let message = try #require(requests(wire("GET /healthz HTTP/1.0\r\n\r\n")).messages.first)
        #expect(message.head.version == .http1_0)
        #expect(!message.head.keepAlive)
    }

    @Test("lenient: empty lines before the request line, bare LF, HTAB around values")
    func lenient() throws {
        let message = try #require(requests(wire("\r\n\n\r\nGET /x HTTP/1.1\nHost:\t127.0.0.1 \nX-A: b\n\n")).messages.first)
        #expect(message.head.target == "/x")
        #expect(message.head.headers["host"] == "127.0.0.1")
        #expect(message.head.headers["x-a"] == "b")
    }

    @Test("other request-target forms are passed through")
    func targetForms() throws {
        let absolute = try #require(requests(wire("GET http://127.0.0.1:9469/metrics HTTP/1.1\r\n\(host)\r\n")).messages.first)
        #expect(absolute.head.target == "http://127.0.0.1:9469/metrics")
        let asterisk = try #require(requests(wire("OPTIONS * HTTP/1.1\r\n\(host)\r\n")).messages.first)
        #expect(asterisk.head.target == "*")
        let emptyQuery = try #require(requests(wire("GET /metrics? HTTP/1.1\r\n\(host)\r\n")).messages.first)
        #expect(emptyQuery.head.path == "/metrics")
        #expect(emptyQuery.head.query == "")
    }

    @Test("refused requests and the status to answer them with", arguments: errorCases)
    func refused(_ testCase: HTTPRequestErrorCase) {
        let whole = requests(testCase.wire, limits: testCase.limits)
        #expect(whole.messages.isEmpty)
        #expect(whole.error == testCase.error)
        #expect(whole.error?.suggestedStatus == testCase.status)
        // Byte at a time fails the same way.
        let bytewise = requests(testCase.wire, size: 1, limits: testCase.limits)
        #expect(bytewise.error == testCase.error)
    }

    @Test("limits are inclusive")
    func limitBoundaries() throws {
        let limits = HTTPRequestParser.Limits(maxRequestLineBytes: 20, maxHeaderBytes: 16, maxHeaderCount: 2, maxBodyBytes: 3)
        // "GET /123456 HTTP/1.1" is 20 bytes; "Host: a\r\n" + "X:1\r\n" + "\r\n" is 16.
        #expect(requests(wire("GET /123456 HTTP/1.1\r\nHost: a\r\nX:1\r\n\r\n"), limits: limits).messages.count == 1)
        #expect(requests(wire("GET /123456 HTTP/1.1\r\nHost: a\r\nX:1\r\n\r\n"), size: 1, limits: limits).messages.count == 1)
        #expect(requests(wire("GET /123456 HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\n"), limits: limits).error == .headerTooLarge)
        #expect(requests(wire("GET /123456 HTTP/1.1\r\nHost: a\r\nX: 123\r\n"), limits: limits).error == .headerTooLarge)
        #expect(requests(wire("GET /123456 HTTP/1.1\r\nHost: a\r\nX: 1\r\n"), limits: limits).error == nil)
        #expect(requests(wire("GET /1234567 HTTP/1.1\r\nHost: a\r\n\r\n"), limits: limits).error == .requestLineTooLarge)
        #expect(requests(wire("GET /1234567 HTTP/1.1\r\nHost: a\r\n\r\n"), size: 1, limits: limits).error == .requestLineTooLarge)
        #expect(requests(wire("GET /123456 HTTP/1.1\nHost: a\n\n"), size: 1, limits: limits).messages.count == 1)

        let counted = HTTPRequestParser.Limits(maxHeaderCount: 2, maxBodyBytes: 3)
        #expect(requests(wire("GET / HTTP/1.1\r\nHost: a\r\nB: c\r\n\r\n"), limits: counted).messages.count == 1)
        #expect(requests(wire("GET / HTTP/1.1\r\nHost: a\r\nB: c\r\nD: e\r\n\r\n"), limits: counted).error == .tooManyHeaders)
        #expect(requests(wire("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"), limits: counted).messages.count == 1)
        #expect(requests(wire("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd"), limits: counted).error == .bodyTooLarge)
    }

    @Test("extreme limits never trap")
    func extremeLimits() throws {
        let huge = HTTPRequestParser.Limits(maxRequestLineBytes: .max, maxHeaderBytes: .max, maxHeaderCount: .max, maxBodyBytes: .max)
        #expect(requests(Self.prometheusScrape + Self.prometheusScrape, limits: huge).messages.count == 2)
        #expect(requests(Self.prometheusScrape, size: 1, limits: huge).messages.count == 1)
        var negative = HTTPRequestParser.Limits()
        negative.maxRequestLineBytes = -1
        #expect(requests(Self.prometheusScrape, limits: negative).error == .requestLineTooLarge)
        negative = HTTPRequestParser.Limits()
        negative.maxBodyBytes = .min
        #expect(requests(wire("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx"), limits: negative).error == .bodyTooLarge)
        #expect(requests(wire("POST / HTTP/1.1\r\nHost: a\r\n\r\n"), limits: negative).messages.count == 1)
    }

    @Test("errors are final")
    func sticky() {
        var parser = HTTPRequestParser()
        #expect(throws: HTTPParseError.badRequestLine) { try parser.feed(wire("NOT HTTP AT ALL\r\n\r\n")) }
        #expect(throws: HTTPParseError.badRequestLine) { try parser.feed(wire("GET / HTTP/1.1\r\n\(host)\r\n")) }
        #expect(throws: HTTPParseError.badRequestLine) { try parser.next() }
        #expect(throws: HTTPParseError.badRequestLine) { try parser.finish() }
    }

    @Test("finish: clean, or cut in a head")
    func finish() throws {
        var clean = HTTPRequestParser()
        _ = try clean.feed(wire("GET / HTTP/1.1\r\n\(host)\r\n"))
        try clean.finish()
        var cut = HTTPRequestParser()
        _ = try cut.feed(wire("GET / HTTP/1.1\r\nHo"))
        #expect(throws: HTTPParseError.incompleteHead) { try cut.finish() }
    }

    @Test("undrained pipelined requests past the limits are refused, memory stays bounded")
    func pipelineOverflow() throws {
        let limits = HTTPRequestParser.Limits(maxRequestLineBytes: 64, maxHeaderBytes: 64, maxHeaderCount: 4, maxBodyBytes: 0)
        var parser = HTTPRequestParser(limits: limits)
        let request = wire("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        var failure: HTTPParseError?
        for _ in 0..<100 {
            do throws(HTTPParseError) {
                _ = try parser.feed(request + request)
            } catch {
                failure = error
                break
            }
        }
        #expect(failure == .pipelineOverflow)
        #expect(parser.bufferedByteCount <= 64 + 64 + 0 + 4 + 2 * request.count)
    }

    @Test("arbitrary bytes never trap and split the same way")
    func fuzz() {
        var state: UInt64 = 0xC0FFEE
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(max(1, bound)))
        }
        let seeds = [Self.prometheusScrape, wire("POST /-/reload HTTP/1.1\r\n\(host)Content-Length: 2\r\n\r\nok")] + errorCases.map(\.wire).filter { $0.count < 2048 }
        let alphabet = Array("\r\n :0Gg/H1.".utf8)
        let limits = HTTPRequestParser.Limits(maxRequestLineBytes: 40, maxHeaderBytes: 80, maxHeaderCount: 3, maxBodyBytes: 8)
        for iteration in 0..<1500 {
            var bytes = seeds[next(seeds.count)]
            if iteration % 7 == 0 { bytes = (0..<next(200)).map { _ in UInt8(truncatingIfNeeded: next(256)) } }
            for _ in 0..<(1 + next(4)) where !bytes.isEmpty {
                let index = next(bytes.count)
                switch next(3) {
                case 0: bytes[index] = UInt8(truncatingIfNeeded: next(256))
                case 1: bytes.remove(at: index)
                default: bytes.insert(alphabet[next(alphabet.count)], at: index)
                }
            }
            bytes += bytes.prefix(next(bytes.count + 1))  // a pipelined copy
            for useLimits in [false, true] {
                let chosen = useLimits ? limits : HTTPRequestParser.Limits()
                let whole = requests(bytes, limits: chosen)
                let bytewise = requests(bytes, size: 1, limits: chosen)
                if whole.messages != bytewise.messages || whole.error != bytewise.error {
                    Issue.record("split differs for \(bytes): \(whole.error.map { "\($0)" } ?? "ok") vs \(bytewise.error.map { "\($0)" } ?? "ok")")
                    return
                }
            }
        }
    }
}

@Suite("HTTPResponse serialization")
struct HTTPResponseSerializationTests {
    /// `HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 6\r\n\r\nup 1\n\n`
    @Test("exact bytes, Content-Length added")
    func ok() {
        let response = HTTPResponse(status: 200, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"], body: wire("up 1\n\n"))
        #expect(response.reason == "OK")
        #expect(response.serialize() == wire("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 6\r\n\r\nup 1\n\n"))
    }

    @Test("HEAD: Content-Length of the omitted body")
    func head() {
        let response = HTTPResponse(status: 200, body: wire("hello"))
        #expect(response.serialize(includeBody: false) == wire("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"))
    }

    @Test("204 and 304 have neither Content-Length nor body; an empty 200 says 0")
    func bodiless() {
        #expect(HTTPResponse(status: 204, body: wire("x")).serialize() == wire("HTTP/1.1 204 No Content\r\n\r\n"))
        #expect(HTTPResponse(status: 304).serialize() == wire("HTTP/1.1 304 Not Modified\r\n\r\n"))
        #expect(HTTPResponse(status: 200).serialize() == wire("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    }

    @Test("the caller's framing fields are replaced")
    func framingReplaced() {
        let response = HTTPResponse(status: 404, headers: ["content-length": "99", "Transfer-Encoding": "chunked", "Connection": "close"], body: wire("no"))
        #expect(response.serialize() == wire("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno"))
    }

    @Test("nothing can split a line; odd statuses are sent as 500")
    func sanitized() {
        let response = HTTPResponse(
            status: 503, reason: "Down\r\nX-Injected: 1", headers: ["X-Target": "lab\r\nSet-Cookie: a=b", "Bad Name": "x", "X-Tab": "a\tb"])
        #expect(response.serialize() == wire("HTTP/1.1 503 Down  X-Injected: 1\r\nX-Target: lab  Set-Cookie: a=b\r\nX-Tab: a\tb\r\nContent-Length: 0\r\n\r\n"))
        #expect(HTTPResponse(status: 42).serialize() == wire("HTTP/1.1 500 \r\nContent-Length: 0\r\n\r\n"))
        #expect(HTTPResponse(status: 799).reason == "")
    }

    @Test("round trip through the response parser")
    func roundTrip() throws {
        let response = HTTPResponse(status: 429, headers: ["Retry-After": "30"], body: wire("{\"errors\":[]}"))
        var parser = HTTPResponseParser()
        let events = try parser.feed(response.serialize())
        #expect(events == [.head(HTTPResponseHead(status: 429, reason: "Too Many Requests", headers: ["Retry-After": "30", "Content-Length": "13"])), .body(wire("{\"errors\":[]}")), .end])
        #expect(parser.canReuseConnection)
    }
}
