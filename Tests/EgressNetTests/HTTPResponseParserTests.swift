// Client side of the HTTP/1.1 codec: the response parser, request serialization and HTTPHeaders.
//
// Fixtures marked "captured" are the exact bytes real servers sent on loopback (docker-registry
// 2.8, nginx 1.22, tinyproxy 1.11, Debian packages); the Docker Hub one is rebuilt from the capture
// quoted in shared/REFERENCE.md. Every fixture is also fed split at every byte boundary, one byte
// at a time, and in odd-sized pieces, and must give the same events each way.

import Testing

@testable import EgressNet

// MARK: - Fixtures

private func wire(_ text: String) -> [UInt8] { Array(text.utf8) }

private enum Wire {
    /// Docker Hub, `GET /v2/` without a token (REFERENCE.md; Docker Hub sends lower-case names):
    /// ```
    /// HTTP/1.1 401 Unauthorized\r\n
    /// content-type: application/json; charset=utf-8\r\n
    /// docker-distribution-api-version: registry/2.0\r\n
    /// www-authenticate: Bearer realm="https://auth.docker.io/token",service="registry.docker.io"\r\n
    /// date: Mon, 23 Nov 2026 08:00:00 GMT\r\n
    /// content-length: 87\r\n
    /// strict-transport-security: max-age=31536000\r\n
    /// \r\n
    /// {"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}\n
    /// ```
    static let dockerHub401 = wire(
        "HTTP/1.1 401 Unauthorized\r\n"
            + "content-type: application/json; charset=utf-8\r\n"
            + "docker-distribution-api-version: registry/2.0\r\n"
            + "www-authenticate: Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\"\r\n"
            + "date: Mon, 23 Nov 2026 08:00:00 GMT\r\n"
            + "content-length: 87\r\n"
            + "strict-transport-security: max-age=31536000\r\n"
            + "\r\n"
            + "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":null}]}\n")
    static let unauthorizedBody = "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":null}]}\n"

    /// Captured: docker-registry 2.8 (no auth) answering `GET /v2/`.
    /// ```
    /// HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json; charset=utf-8\r\n
    /// Docker-Distribution-Api-Version: registry/2.0\r\nX-Content-Type-Options: nosniff\r\n
    /// Date: Mon, 23 Nov 2026 08:38:43 GMT\r\nConnection: close\r\n\r\n{}
    /// ```
    static let distribution200 = wire(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json; charset=utf-8\r\n"
            + "Docker-Distribution-Api-Version: registry/2.0\r\nX-Content-Type-Options: nosniff\r\n"
            + "Date: Mon, 23 Nov 2026 08:38:43 GMT\r\nConnection: close\r\n\r\n{}")

    /// Captured: docker-registry 2.8 with token auth, `GET /v2/library/busybox/manifests/latest`.
    static let distributionScoped401 = wire(
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json; charset=utf-8\r\n"
            + "Docker-Distribution-Api-Version: registry/2.0\r\n"
            + "Www-Authenticate: Bearer realm=\"https://auth.lab.test/token\",service=\"registry.lab.test\",scope=\"repository:library/busybox:pull\"\r\n"
            + "Date: Mon, 23 Nov 2026 08:38:43 GMT\r\nContent-Length: 158\r\nConnection: close\r\n\r\n"
            + "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":[{\"Type\":\"repository\",\"Class\":\"\",\"Name\":\"library/busybox\",\"Action\":\"pull\"}]}]}\n")

    /// Captured: docker-registry 2.8, `HEAD /v2/library/busybox/manifests/latest` (Content-Length, no body).
    static let distributionHead404 = wire(
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json; charset=utf-8\r\n"
            + "Docker-Distribution-Api-Version: registry/2.0\r\nX-Content-Type-Options: nosniff\r\n"
            + "Date: Mon, 23 Nov 2026 08:38:43 GMT\r\nContent-Length: 96\r\nConnection: close\r\n\r\n")

    /// Captured: the same as a `GET`.
    static let distributionGet404 = distributionHead404
        + wire("{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\",\"detail\":{\"Tag\":\"latest\"}}]}\n")

    /// Captured: nginx 1.22 with sub_filter (so chunked), HTTP/1.1 request.
    /// `...Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n11\r\nhello from NGINX\n\r\n0\r\n\r\n`
    static let nginxChunked = wire(
        "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 23 Nov 2026 08:38:55 GMT\r\n"
            + "Content-Type: text/html\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + "11\r\nhello from NGINX\n\r\n0\r\n\r\n")

    /// Captured: the same nginx, HTTP/1.0 request: no Content-Length, body until close.
    static let nginxCloseDelimited = wire(
        "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 23 Nov 2026 08:38:55 GMT\r\n"
            + "Content-Type: text/html\r\nConnection: close\r\n\r\nhello from NGINX\n")

    /// Captured: nginx `return 204`.
    static let nginx204 = wire(
        "HTTP/1.1 204 No Content\r\nServer: nginx/1.22.1\r\nDate: Mon, 23 Nov 2026 08:38:55 GMT\r\nConnection: close\r\n\r\n")

    /// Captured: tinyproxy 1.11 with BasicAuth answering `CONNECT` without credentials: HTTP/1.0,
    /// no Content-Length, so the body runs until close.
    static let tinyproxy407Body =
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.1//EN\" \"http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd\">\n<html>\n<head><title>407 Proxy Authentication Required</title></head>\n<body>\n<h1>Proxy Authentication Required</h1>\n<p>This proxy requires authentication.</p>\n<hr />\n<p><em>Generated by tinyproxy version 1.11.1.</em></p>\n</body>\n</html>\n"
    static let tinyproxy407 = wire(
        "HTTP/1.0 407 Proxy Authentication Required\r\nServer: tinyproxy/1.11.1\r\nContent-Type: text/html\r\n"
            + "Proxy-Authenticate: Basic realm=\"Tinyproxy\"\r\nConnection: close\r\n\r\n" + tinyproxy407Body)

    /// Captured: tinyproxy's `CONNECT 127.0.0.1:15000` answer, followed in the same read by the
    /// first bytes through the tunnel (a plain-HTTP registry's answer).
    static let tunnelled = wire(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json; charset=utf-8\r\n"
            + "Docker-Distribution-Api-Version: registry/2.0\r\nX-Content-Type-Options: nosniff\r\n"
            + "Date: Mon, 23 Nov 2026 08:38:50 GMT\r\nConnection: close\r\n\r\n{}")
    static let tinyproxyConnect200 = wire("HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n") + tunnelled

    /// Chunked with extensions (with BWS and a quoted value), upper- and lower-case hex, leading
    /// zeros, and two trailer fields that are parsed and dropped:
    /// ```
    /// 5;name=value\r\nhello\r\n7 ; ext="a b"\r\n, world\r\n00A\r\n and more\r\n0;last\r\nX-Trailer: done\r\nX-Checksum: 1\r\n\r\n
    /// ```
    static let chunkedExtensionsTrailers = wire(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
            + "5;name=value\r\nhello\r\n7 ; ext=\"a b\"\r\n, world\r\n00A\r\n and more!\r\n"
            + "0;last\r\nX-Trailer: done\r\nX-Checksum: 1\r\n\r\n")
}

// MARK: - Driving the parser

/// What a parser made of a whole exchange; consecutive `.body` events are merged, since how body
/// bytes are grouped depends on how the input was split.
private struct Outcome: Equatable, CustomStringConvertible {
    var events: [HTTPResponseParser.Event] = []
    var error: HTTPParseError?
    var tunnel: [UInt8] = []
    var truncated = false

    var head: HTTPResponseHead? {
        for case .head(let head) in events { return head }
        return nil
    }
    var body: [UInt8] { events.flatMap { event -> [UInt8] in if case .body(let bytes) = event { bytes } else { [] } } }
    var bodyText: String { String(decoding: body, as: UTF8.self) }
    var ended: Bool { events.contains(.end) }

    /// One head first, bodies, one end last; never an empty body event.
    var isWellFormed: Bool {
        var sawHead = false
        var sawEnd = false
        for event in events {
            switch event {
            case .head: if sawHead || sawEnd { return false } else { sawHead = true }
            case .body(let bytes): if !sawHead || sawEnd || bytes.isEmpty { return false }
            case .end: if !sawHead || sawEnd { return false } else { sawEnd = true }
            }
        }
        return true
    }

    var description: String {
        "Outcome(status: \(head.map { String($0.status) } ?? "nil"), body: \(bodyText.debugDescription), ended: \(ended), error: \(error.map { "\($0)" } ?? "nil"), tunnel: \(tunnel.count) bytes, truncated: \(truncated))"
    }
}

private func merged(_ events: [HTTPResponseParser.Event]) -> [HTTPResponseParser.Event] {
    var out: [HTTPResponseParser.Event] = []
    for event in events {
        if case .body(let more) = event, case .body(let previous)? = out.last {
            out[out.count - 1] = .body(previous + more)
        } else {
            out.append(event)
        }
    }
    return out
}

private func parse(
    _ pieces: [ArraySlice<UInt8>], method: String = "GET", limits: HTTPResponseParser.Limits = .init(),
    truncate: Bool = false, finish: Bool = true
) -> Outcome {
    var parser = HTTPResponseParser(limits: limits, requestMethod: method, truncateBody: truncate)
    var raw: [HTTPResponseParser.Event] = []
    var outcome = Outcome()
    do throws(HTTPParseError) {
        for piece in pieces { raw += try parser.feed(piece) }
        if finish { raw += try parser.finish() }
    } catch {
        outcome.error = error
    }
    outcome.events = merged(raw)
    outcome.tunnel = parser.takeTunnelBytes()
    outcome.truncated = parser.bodyTruncated
    return outcome
}

private func pieces(_ bytes: [UInt8], size: Int) -> [ArraySlice<UInt8>] {
    stride(from: 0, to: bytes.count, by: size).map { bytes[$0..<min($0 + size, bytes.count)] }
}

/// The same bytes split every way worth trying: whole, one byte at a time, odd sizes, and in two
/// at every boundary.
private func splittings(_ bytes: [UInt8]) -> [(name: String, pieces: [ArraySlice<UInt8>])] {
    var result: [(String, [ArraySlice<UInt8>])] = [("whole", [bytes[...]])]
    for size in [1, 2, 3, 7, 64] { result.append(("pieces of \(size)", pieces(bytes, size: size))) }
    for cut in 0...bytes.count { result.append(("cut at \(cut)", [bytes[..<cut], bytes[cut...]])) }
    return result
}

// MARK: - Cases

struct HTTPResponseFixture: Sendable, CustomTestStringConvertible {
    let name: String
    let wire: [UInt8]
    var method = "GET"
    var limits = HTTPResponseParser.Limits()
    var truncate = false
    /// Expected:
    let status: Int?
    var body = ""
    var ended = true
    var error: HTTPParseError?
    var tunnel: [UInt8] = []
    var truncated = false

    var testDescription: String { name }
}

private let successCases: [HTTPResponseFixture] = [
    HTTPResponseFixture(name: "Docker Hub /v2/ 401", wire: Wire.dockerHub401, status: 401, body: Wire.unauthorizedBody),
    HTTPResponseFixture(name: "distribution /v2/ 200 {}", wire: Wire.distribution200, status: 200, body: "{}"),
    HTTPResponseFixture(
        name: "distribution scoped 401", wire: Wire.distributionScoped401, status: 401,
        body: "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":[{\"Type\":\"repository\",\"Class\":\"\",\"Name\":\"library/busybox\",\"Action\":\"pull\"}]}]}\n"),
    HTTPResponseFixture(name: "HEAD 404 with Content-Length, no body", wire: Wire.distributionHead404, method: "HEAD", status: 404),
    HTTPResponseFixture(
        name: "GET 404 manifest unknown", wire: Wire.distributionGet404, status: 404,
        body: "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\",\"detail\":{\"Tag\":\"latest\"}}]}\n"),
    HTTPResponseFixture(name: "nginx chunked", wire: Wire.nginxChunked, status: 200, body: "hello from NGINX\n"),
    HTTPResponseFixture(name: "nginx close-delimited", wire: Wire.nginxCloseDelimited, status: 200, body: "hello from NGINX\n"),
    HTTPResponseFixture(name: "nginx 204", wire: Wire.nginx204, status: 204),
    HTTPResponseFixture(name: "tinyproxy 407 to CONNECT, close-delimited", wire: Wire.tinyproxy407, method: "CONNECT", status: 407, body: Wire.tinyproxy407Body),
    HTTPResponseFixture(name: "tinyproxy CONNECT 200 then tunnel bytes", wire: Wire.tinyproxyConnect200, method: "CONNECT", status: 200, tunnel: Wire.tunnelled),
    HTTPResponseFixture(name: "chunked with extensions and trailers", wire: Wire.chunkedExtensionsTrailers, status: 200, body: "hello, world and more!"),
    HTTPResponseFixture(
        name: "chunked wins over Content-Length",
        wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        status: 200, body: "abc"),
    HTTPResponseFixture(
        name: "Transfer-Encoding list, chunked last, case-insensitive",
        wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\ntransfer-encoding: CHUNKED\r\n\r\n2\r\nxy\r\n0\r\n\r\n"),
        status: 200, body: "xy"),
    HTTPResponseFixture(
        name: "Transfer-Encoding without chunked: until close",
        wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 1\r\n\r\nzipped"),
        status: 200, body: "zipped"),
    HTTPResponseFixture(
        name: "bare LF line endings everywhere (lenient)",
        wire: wire("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nX-A: b\n\n4\nwxyz\n0\nX-T: 1\n\n"),
        status: 200, body: "wxyz"),
    HTTPResponseFixture(
        name: "chunk size with trailing whitespace",
        wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4  \r\nwxyz\r\n0\t\r\n\r\n"),
        status: 200, body: "wxyz"),
    HTTPResponseFixture(
        name: "repeated identical Content-Length",
        wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\nabc"),
        status: 200, body: "abc"),
    HTTPResponseFixture(
        name: "Content-Length: 0",
        wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), status: 200),
    HTTPResponseFixture(
        name: "304 with Content-Length has no body",
        wire: wire("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 1234\r\n\r\n"), status: 304),
    HTTPResponseFixture(
        name: "204 with Transfer-Encoding has no body",
        wire: wire("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"), status: 204),
    HTTPResponseFixture(
        name: "HEAD with chunked has no body",
        wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), method: "HEAD", status: 200),
    HTTPResponseFixture(
        name: "HEAD with neither framing field has no body",
        wire: wire("HTTP/1.0 200 OK\r\n\r\n"), method: "HEAD", status: 200),
    HTTPResponseFixture(
        name: "100 Continue is skipped",
        wire: wire("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"),
        status: 201, body: "ok"),
    HTTPResponseFixture(
        name: "103 Early Hints with fields is skipped",
        wire: wire("HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        status: 200),
    HTTPResponseFixture(
        name: "101 Switching Protocols starts a tunnel",
        wire: wire("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n\u{1}\u{2}"),
        status: 101, tunnel: [1, 2]),
    HTTPResponseFixture(
        name: "CONNECT 200 ignores Content-Length and Transfer-Encoding",
        wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") + [0x16, 0x03, 0x03, 0x00, 0x7a, 0x02],
        method: "CONNECT", status: 200, tunnel: [0x16, 0x03, 0x03, 0x00, 0x7a, 0x02]),
    HTTPResponseFixture(
        name: "CONNECT 407 with Content-Length body",
        wire: wire("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 6\r\n\r\ndenied"),
        method: "CONNECT", status: 407, body: "denied"),
    HTTPResponseFixture(name: "status line without reason or space", wire: wire("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx"), status: 200, body: "x"),
    HTTPResponseFixture(name: "status line with empty reason", wire: wire("HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\nx"), status: 200, body: "x"),
    HTTPResponseFixture(name: "HTTP/1.0 status line", wire: wire("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx"), status: 200, body: "x"),
    HTTPResponseFixture(
        name: "reason with obs-text and HTAB, value with UTF-8",
        wire: wire("HTTP/1.1 200 \u{e9}t\u{e9}\tok\r\nX-Note: caf\u{e9}\r\nContent-Length: 0\r\n\r\n"), status: 200),
    HTTPResponseFixture(
        name: "header value whitespace trimmed, empty value",
        wire: wire("HTTP/1.1 200 OK\r\nX-Pad:  \t padded \t \r\nX-Empty:\r\nContent-Length:2\r\n\r\nok"),
        status: 200, body: "ok"),
]

private func repeated(_ text: String, _ count: Int) -> String { String(repeating: text, count: count) }

private let errorCases: [HTTPResponseFixture] = [
    HTTPResponseFixture(name: "no bytes at all", wire: [], status: nil, ended: false, error: .noResponse),
    HTTPResponseFixture(name: "cut in the head", wire: wire("HTTP/1.1 200 OK\r\nContent-"), status: nil, ended: false, error: .incompleteHead),
    HTTPResponseFixture(name: "cut after the status line", wire: wire("HTTP/1.1 200 OK\r\n"), status: nil, ended: false, error: .incompleteHead),
    HTTPResponseFixture(name: "interim response only", wire: wire("HTTP/1.1 100 Continue\r\n\r\n"), status: nil, ended: false, error: .incompleteHead),
    HTTPResponseFixture(name: "SSH banner", wire: wire("SSH-2.0-OpenSSH_9.6\r\n"), status: nil, ended: false, error: .badStatusLine),
    HTTPResponseFixture(name: "TLS alert bytes", wire: [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28, 0x0a], status: nil, ended: false, error: .badStatusLine),
    HTTPResponseFixture(name: "lower-case http", wire: wire("http/1.1 200 OK\r\n\r\n"), status: nil, ended: false, error: .badStatusLine),
    HTTPResponseFixture(name: "two-digit status", wire: wire("HTTP/1.1 20 OK\r\n\r\n"), status: nil, ended: false, error: .badStatusLine),
    HTTPResponseFixture(name: "four-digit status", wire: wire("HTTP/1.1 2000 OK\r\n\r\n"), status: nil, ended: false, error: .badStatusLine),
    HTTPResponseFixture(name: "status below 100", wire: wire("HTTP/1.1 099 Low\r\n\r\n"), status: nil, ended: false, error: .badStatusLine),
    HTTPResponseFixture(name: "no space after status", wire: wire("HTTP/1.1 200OK\r\n\r\n"), status: nil, ended: false, error: .badStatusLine),
    HTTPResponseFixture(name: "two spaces before status", wire: wire("HTTP/1.1  200 OK\r\n\r\n"), status: nil, ended: false, error: .badStatusLine),
    HTTPResponseFixture(name: "empty line before status line", wire: wire("\r\nHTTP/1.1 200 OK\r\n\r\n"), status: nil, ended: false, error: .badStatusLine),
    HTTPResponseFixture(name: "NUL in reason", wire: wire("HTTP/1.1 200 O\u{0}K\r\n\r\n"), status: nil, ended: false, error: .badStatusLine),
    HTTPResponseFixture(name: "bare CR in reason", wire: wire("HTTP/1.1 200 O\rK\r\n\r\n"), status: nil, ended: false, error: .badStatusLine),
    HTTPResponseFixture(name: "HTTP/2", wire: wire("HTTP/2 200\r\n\r\n"), status: nil, ended: false, error: .badVersion),
    HTTPResponseFixture(name: "HTTP/2.0", wire: wire("HTTP/2.0 200 OK\r\n\r\n"), status: nil, ended: false, error: .badVersion),
    HTTPResponseFixture(name: "HTTP/1.10", wire: wire("HTTP/1.10 200 OK\r\n\r\n"), status: nil, ended: false, error: .badVersion),
    HTTPResponseFixture(name: "HTTP/0.9", wire: wire("HTTP/0.9 200 OK\r\n\r\n"), status: nil, ended: false, error: .badVersion),
    HTTPResponseFixture(name: "space before colon", wire: wire("HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"), status: nil, ended: false, error: .badHeader),
    HTTPResponseFixture(name: "obs-fold", wire: wire("HTTP/1.1 200 OK\r\nX-A: b\r\n  continued\r\n\r\n"), status: nil, ended: false, error: .badHeader),
    HTTPResponseFixture(name: "no colon", wire: wire("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n"), status: nil, ended: false, error: .badHeader),
    HTTPResponseFixture(name: "empty name", wire: wire("HTTP/1.1 200 OK\r\n: value\r\n\r\n"), status: nil, ended: false, error: .badHeader),
    HTTPResponseFixture(name: "space in name", wire: wire("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"), status: nil, ended: false, error: .badHeader),
    HTTPResponseFixture(name: "NUL in value", wire: wire("HTTP/1.1 200 OK\r\nX: a\u{0}b\r\n\r\n"), status: nil, ended: false, error: .badHeader),
    HTTPResponseFixture(name: "bare CR in value", wire: wire("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"), status: nil, ended: false, error: .badHeader),
    HTTPResponseFixture(
        name: "1 MiB header", wire: wire("HTTP/1.1 200 OK\r\nX-Big: " + repeated("a", 1 << 20) + "\r\n\r\n"),
        status: nil, ended: false, error: .headerTooLarge),
    HTTPResponseFixture(
        name: "1 MiB of header lines", wire: wire("HTTP/1.1 200 OK\r\n" + repeated("X-A: b\r\n", (1 << 20) / 8) + "\r\n"),
        limits: .init(maxHeaderCount: 1 << 20), status: nil, ended: false, error: .headerTooLarge),
    HTTPResponseFixture(
        name: "head one byte over a small limit", wire: wire("HTTP/1.1 200 OK\r\nA: b\r\n\r\n"),
        limits: .init(maxHeaderBytes: 24), status: nil, ended: false, error: .headerTooLarge),
    HTTPResponseFixture(
        name: "101 header lines", wire: wire("HTTP/1.1 200 OK\r\n" + repeated("X-A: b\r\n", 101) + "\r\n"),
        status: nil, ended: false, error: .tooManyHeaders),
    HTTPResponseFixture(
        name: "differing Content-Length fields", wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
        status: nil, ended: false, error: .conflictingContentLength),
    HTTPResponseFixture(
        name: "differing Content-Length list", wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!"),
        status: nil, ended: false, error: .conflictingContentLength),
    HTTPResponseFixture(name: "negative Content-Length", wire: wire("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), status: nil, ended: false, error: .badContentLength),
    HTTPResponseFixture(name: "signed Content-Length", wire: wire("HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx"), status: nil, ended: false, error: .badContentLength),
    HTTPResponseFixture(name: "hex Content-Length", wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n"), status: nil, ended: false, error: .badContentLength),
    HTTPResponseFixture(name: "empty Content-Length", wire: wire("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"), status: nil, ended: false, error: .badContentLength),
    HTTPResponseFixture(name: "empty Content-Length list element", wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 1,\r\n\r\nx"), status: nil, ended: false, error: .badContentLength),
    HTTPResponseFixture(
        name: "Content-Length past Int.max", wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"),
        status: nil, ended: false, error: .badContentLength),
    HTTPResponseFixture(
        name: "chunked not last", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
        status: nil, ended: false, error: .badTransferEncoding),
    HTTPResponseFixture(
        name: "chunked twice", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
        status: nil, ended: false, error: .badTransferEncoding),
    HTTPResponseFixture(
        name: "empty Transfer-Encoding", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n"),
        status: nil, ended: false, error: .badTransferEncoding),
    // Errors found after the head: the head is delivered first.
    HTTPResponseFixture(name: "bad chunk size", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), status: 200, ended: false, error: .badChunk),
    HTTPResponseFixture(name: "empty chunk size", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n"), status: 200, ended: false, error: .badChunk),
    HTTPResponseFixture(name: "junk after chunk size", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1x\r\n"), status: 200, ended: false, error: .badChunk),
    HTTPResponseFixture(name: "junk after chunk size whitespace", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1 x\r\n"), status: 200, ended: false, error: .badChunk),
    HTTPResponseFixture(name: "negative chunk size", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n"), status: 200, ended: false, error: .badChunk),
    HTTPResponseFixture(name: "CR without LF after chunk size", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\rx"), status: 200, ended: false, error: .badChunk),
    HTTPResponseFixture(
        name: "chunk data not followed by CRLF",
        wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n"), status: 200, body: "hello", ended: false, error: .badChunk),
    HTTPResponseFixture(
        name: "chunk data followed by CR junk",
        wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\rX"), status: 200, body: "hello", ended: false, error: .badChunk),
    HTTPResponseFixture(
        name: "chunk size hex overflow (17 digits)",
        wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n"), status: 200, ended: false, error: .badChunk),
    HTTPResponseFixture(
        name: "chunk size hex overflow (Int.max + 1)",
        wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\n"), status: 200, ended: false, error: .badChunk),
    HTTPResponseFixture(
        name: "chunk size Int.max parses, then the body is too large",
        wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\n") + [UInt8](repeating: 0x61, count: 16),
        limits: .init(maxBodyBytes: 8), status: 200, body: "aaaaaaaa", ended: false, error: .bodyTooLarge),
    HTTPResponseFixture(
        name: "chunk size Int.max, cut short", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\nabc"),
        status: 200, body: "abc", ended: false, error: .incompleteBody),
    HTTPResponseFixture(
        name: "NUL in chunk extension", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;a\u{0}\r\nx\r\n0\r\n\r\n"),
        status: 200, ended: false, error: .badChunk),
    HTTPResponseFixture(
        name: "chunk extension past 4 KiB", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + repeated("e", 5000) + "\r\nx\r\n0\r\n\r\n"),
        status: 200, ended: false, error: .badChunk),
    HTTPResponseFixture(
        name: "zero-padded chunk size past 4 KiB", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + repeated("0", 5000) + "1\r\nx\r\n0\r\n\r\n"),
        status: 200, ended: false, error: .badChunk),
    HTTPResponseFixture(
        name: "malformed trailer", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nBad Trailer\r\n\r\n"),
        status: 200, body: "x", ended: false, error: .badHeader),
    HTTPResponseFixture(
        name: "trailer section past maxHeaderBytes",
        wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-T: " + repeated("t", 100) + "\r\n\r\n"),
        limits: .init(maxHeaderBytes: 64), status: 200, body: "x", ended: false, error: .headerTooLarge),
    HTTPResponseFixture(
        name: "too many trailer fields",
        wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + repeated("X-T: 1\r\n", 3) + "\r\n"),
        limits: .init(maxHeaderCount: 2), status: 200, ended: false, error: .tooManyHeaders),
    HTTPResponseFixture(
        name: "Content-Length over the default 1 MiB body limit",
        wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 2097152\r\n\r\nxx"), status: 200, ended: false, error: .bodyTooLarge),
    HTTPResponseFixture(
        name: "chunked body over the limit", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"),
        limits: .init(maxBodyBytes: 4), status: 200, body: "hell", ended: false, error: .bodyTooLarge),
    HTTPResponseFixture(
        name: "close-delimited body over the limit", wire: wire("HTTP/1.0 200 OK\r\n\r\nhello"),
        limits: .init(maxBodyBytes: 4), status: 200, body: "hell", ended: false, error: .bodyTooLarge),
    HTTPResponseFixture(
        name: "Content-Length body cut short", wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"),
        status: 200, body: "hello", ended: false, error: .incompleteBody),
    HTTPResponseFixture(
        name: "chunked cut inside a chunk", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"),
        status: 200, body: "hel", ended: false, error: .incompleteBody),
    HTTPResponseFixture(
        name: "chunked cut before the last chunk", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
        status: 200, body: "hello", ended: false, error: .incompleteBody),
    HTTPResponseFixture(
        name: "chunked cut in the trailer section", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n"),
        status: 200, ended: false, error: .incompleteBody),
]

private let truncateCases: [HTTPResponseFixture] = [
    HTTPResponseFixture(
        name: "Content-Length longer than the limit", wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz"),
        limits: .init(maxBodyBytes: 10), truncate: true, status: 200, body: "abcdefghij", truncated: true),
    HTTPResponseFixture(
        name: "Content-Length longer than the limit, rest never sent", wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\nabcdefghijkl"),
        limits: .init(maxBodyBytes: 10), truncate: true, status: 200, body: "abcdefghij", truncated: true),
    HTTPResponseFixture(
        name: "Content-Length equal to the limit", wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcdefghij"),
        limits: .init(maxBodyBytes: 10), truncate: true, status: 200, body: "abcdefghij"),
    HTTPResponseFixture(
        name: "chunked longer than the limit", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"),
        limits: .init(maxBodyBytes: 7), truncate: true, status: 200, body: "hello, ", truncated: true),
    HTTPResponseFixture(
        name: "chunked shorter than the limit", wire: wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        limits: .init(maxBodyBytes: 7), truncate: true, status: 200, body: "hello"),
    HTTPResponseFixture(
        name: "close-delimited longer than the limit ends before the close", wire: wire("HTTP/1.0 200 OK\r\n\r\nhello"),
        limits: .init(maxBodyBytes: 4), truncate: true, status: 200, body: "hell", truncated: true),
    HTTPResponseFixture(
        name: "limit 0: the head only", wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        limits: .init(maxBodyBytes: 0), truncate: true, status: 200, truncated: true),
    HTTPResponseFixture(
        name: "limit 0 with an empty body", wire: wire("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        limits: .init(maxBodyBytes: 0), truncate: true, status: 200),
    HTTPResponseFixture(
        name: "truncate mode does not excuse a bad head", wire: wire("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\nhello"),
        limits: .init(maxBodyBytes: 4), truncate: true, status: nil, ended: false, error: .badContentLength),
]

// MARK: - Tests

@Suite("HTTPResponseParser")
struct HTTPResponseParserTests {
    private func check(_ testCase: HTTPResponseFixture) {
        let outcome = parse([testCase.wire[...]], method: testCase.method, limits: testCase.limits, truncate: testCase.truncate)
        #expect(outcome.isWellFormed, "\(outcome)")
        #expect(outcome.head?.status == testCase.status, "\(outcome)")
        #expect(outcome.bodyText == testCase.body)
        #expect(outcome.ended == testCase.ended)
        #expect(outcome.error == testCase.error)
        #expect(outcome.tunnel == testCase.tunnel)
        #expect(outcome.truncated == testCase.truncated)
    }

    @Test("parses", arguments: successCases)
    func parses(_ testCase: HTTPResponseFixture) { check(testCase) }

    @Test("fails", arguments: errorCases)
    func fails(_ testCase: HTTPResponseFixture) { check(testCase) }

    @Test("truncates", arguments: truncateCases)
    func truncates(_ testCase: HTTPResponseFixture) { check(testCase) }

    /// Byte-at-a-time, odd pieces and every two-way cut give the whole-message events.
    @Test("split feeding equals whole feeding", arguments: successCases + errorCases.filter { $0.wire.count < 4096 } + truncateCases)
    func splitEquivalence(_ testCase: HTTPResponseFixture) {
        let whole = parse([testCase.wire[...]], method: testCase.method, limits: testCase.limits, truncate: testCase.truncate)
        for (name, pieces) in splittings(testCase.wire) {
            let split = parse(pieces, method: testCase.method, limits: testCase.limits, truncate: testCase.truncate)
            #expect(split == whole, "\(name): \(split) vs \(whole)")
            if split != whole { return }
        }
    }

    @Test("large fixtures fed one byte at a time equal whole feeding")
    func largeByteAtATime() {
        for testCase in errorCases where testCase.wire.count >= 4096 {
            let whole = parse([testCase.wire[...]], method: testCase.method, limits: testCase.limits)
            let bytewise = parse(pieces(testCase.wire, size: 1), method: testCase.method, limits: testCase.limits)
            #expect(bytewise == whole, "\(testCase.name)")
        }
    }

    @Test("Docker Hub's 401: fields by any case, challenge, body")
    func dockerHubHead() throws {
        let outcome = parse([Wire.dockerHub401[...]])
        let head = try #require(outcome.head)
        #expect(head.version == .http1_1)
        #expect(head.reason == "Unauthorized")
        #expect(head.headers.count == 6)
        #expect(head.headers["Content-Type"] == "application/json; charset=utf-8")
        #expect(head.headers["Docker-Distribution-API-Version"] == "registry/2.0")
        #expect(head.headers["CONTENT-LENGTH"] == "87")
        let challenges = WWWAuthenticate.parse(head.headers.values("WWW-Authenticate"))
        #expect(challenges == [
            AuthChallenge(scheme: "bearer", parameters: ["realm": "https://auth.docker.io/token", "service": "registry.docker.io"])
        ])
        // The names keep the case they were sent in.
        #expect(head.headers.map(\.name).first == "content-type")
        #expect(outcome.body.count == 87)
    }

    @Test("field values: OWS trimmed, UTF-8 kept, empty values kept")
    func fieldValues() throws {
        let outcome = parse([wire("HTTP/1.1 200 \u{e9}t\u{e9}\tok\r\nX-Pad:  \t padded \t \r\nX-Empty:\r\nX-Note: caf\u{e9}\r\nContent-Length: 0\r\n\r\n")[...]])
        let head = try #require(outcome.head)
        #expect(head.reason == "\u{e9}t\u{e9}\tok")
        #expect(head.headers["x-pad"] == "padded")
        #expect(head.headers["x-empty"] == "")
        #expect(head.headers["x-note"] == "caf\u{e9}")
        // Latin-1 obs-text is not UTF-8: it is replaced, never trapped on.
        let latin1 = parse([wire("HTTP/1.1 200 OK\r\nX-L: ") + [0xE9, 0xFF] + wire("\r\nContent-Length: 0\r\n\r\n")][...].map { $0[...] })
        #expect(latin1.head?.headers["X-L"] == "\u{FFFD}\u{FFFD}")
    }

    @Test("the tunnelled bytes parse as the next response")
    func tunnelThenInnerResponse() throws {
        var proxy = HTTPResponseParser(requestMethod: "CONNECT")
        let events = try proxy.feed(Wire.tinyproxyConnect200)
        #expect(events.count == 2)
        #expect(proxy.isComplete)
        let early = proxy.takeTunnelBytes()
        #expect(early == Wire.tunnelled)
        #expect(proxy.takeTunnelBytes().isEmpty)
        // Bytes fed after the tunnel opened are kept for it too.
        _ = try proxy.feed([1, 2, 3])
        #expect(proxy.takeTunnelBytes() == [1, 2, 3])

        var inner = HTTPResponseParser()
        let innerEvents = try inner.feed(early)
        #expect(innerEvents.count == 3)
        #expect(innerEvents.last == .end)
        #expect(innerEvents.contains(.body(wire("{}"))))
    }

    @Test("an error after events: events now, the error on the next call")
    func deferredError() throws {
        var parser = HTTPResponseParser()
        let events = try parser.feed(wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX"))
        #expect(events.count == 2)
        #expect(events.last == .body(wire("ok")))
        #expect(throws: HTTPParseError.badChunk) { try parser.feed(wire("more")) }
        #expect(throws: HTTPParseError.badChunk) { try parser.finish() }
        #expect(throws: HTTPParseError.badChunk) { try parser.feed([UInt8]()) }
    }

    @Test("an error before any event is thrown at once and stays")
    func immediateError() {
        var parser = HTTPResponseParser()
        #expect(throws: HTTPParseError.badStatusLine) { try parser.feed(wire("HELLO\r\n")) }
        #expect(throws: HTTPParseError.badStatusLine) { try parser.feed(wire("HTTP/1.1 200 OK\r\n\r\n")) }
        #expect(throws: HTTPParseError.badStatusLine) { try parser.finish() }
    }

    @Test("close-delimited body ends only on finish")
    func closeDelimited() throws {
        var parser = HTTPResponseParser()
        var events = try parser.feed(Wire.nginxCloseDelimited)
        #expect(!events.contains(.end))
        #expect(!parser.isComplete)
        events = try parser.finish()
        #expect(events == [.end])
        #expect(parser.isComplete)
        #expect(!parser.canReuseConnection)
        #expect(try parser.finish().isEmpty)
    }

    @Test("connection reuse: complete, framed, keep-alive, nothing extra")
    func connectionReuse() throws {
        var parser = HTTPResponseParser()
        _ = try parser.feed(wire("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        #expect(parser.canReuseConnection)
        #expect(parser.head?.keepAlive == true)
        _ = try parser.feed(wire("junk"))
        #expect(parser.excessByteCount == 4)
        #expect(!parser.canReuseConnection)

        var closing = HTTPResponseParser()
        _ = try closing.feed(Wire.distribution200)
        #expect(closing.isComplete)
        #expect(!closing.canReuseConnection)  // Connection: close

        var old = HTTPResponseParser()
        _ = try old.feed(wire("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"))
        #expect(old.canReuseConnection)

        var truncated = HTTPResponseParser(limits: .init(maxBodyBytes: 1), truncateBody: true)
        _ = try truncated.feed(wire("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        #expect(truncated.bodyTruncated)
        #expect(truncated.bodyBytesReceived == 1)
        #expect(!truncated.canReuseConnection)
    }

    @Test("truncate mode ignores what follows the cut")
    func truncatedThenMore() throws {
        var parser = HTTPResponseParser(limits: .init(maxBodyBytes: 3), truncateBody: true)
        let events = try parser.feed(wire("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"))
        #expect(merged(events).suffix(2) == [.body(wire("hel")), .end])
        #expect(try parser.feed(wire("lo\r\n0\r\n\r\n")).isEmpty)
        #expect(try parser.feed(wire("not even HTTP")).isEmpty)
        #expect(try parser.finish().isEmpty)
        #expect(parser.bodyTruncated)
    }

    @Test("extreme limits never trap")
    func extremeLimits() {
        let huge = HTTPResponseParser.Limits(maxHeaderBytes: .max, maxHeaderCount: .max, maxBodyBytes: .max)
        #expect(parse([Wire.nginxChunked[...]], limits: huge).bodyText == "hello from NGINX\n")
        #expect(parse([Wire.nginxChunked[...]], limits: huge, truncate: true).bodyText == "hello from NGINX\n")
        var negative = HTTPResponseParser.Limits()
        negative.maxBodyBytes = -5
        negative.maxHeaderCount = -1
        #expect(HTTPResponseParser(limits: negative).limits.maxBodyBytes == 0)
        #expect(parse([Wire.distribution200[...]], limits: negative).error == .tooManyHeaders)
        negative.maxHeaderCount = 10
        #expect(parse([Wire.distribution200[...]], limits: negative).error == .bodyTooLarge)
        #expect(parse([Wire.distribution200[...]], limits: negative, truncate: true).truncated)
    }

    @Test("feeding a raw buffer or a non-contiguous collection")
    func inputKinds() throws {
        var raw = HTTPResponseParser()
        let events = try Wire.distribution200.withUnsafeBytes { buffer throws(HTTPParseError) in try raw.feed(buffer) }
        #expect(events.last == .end)

        var lazy = HTTPResponseParser()
        let lazyEvents = try lazy.feed(Wire.distribution200.lazy.map { $0 })
        #expect(lazyEvents == events)

        var empty = HTTPResponseParser()
        #expect(try empty.feed(UnsafeRawBufferPointer(start: nil, count: 0)).isEmpty)
    }

    @Test("events as documented for a chunked response")
    func chunkedEvents() throws {
        var parser = HTTPResponseParser()
        let events = try parser.feed(Wire.chunkedExtensionsTrailers)
        guard events.count == 3, case .head(let head) = events[0] else {
            Issue.record("unexpected events \(events)")
            return
        }
        #expect(head.headers["transfer-encoding"] == "chunked")
        #expect(events[1] == .body(wire("hello, world and more!")))
        #expect(events[2] == .end)
        #expect(parser.bodyBytesReceived == 22)
    }

    /// Arbitrary and mutated bytes: never a trap, always well-formed events, and the same outcome
    /// whole, byte by byte and in random pieces. Deterministic (fixed seed) so failures reproduce.
    @Test("mutated and random input is safe and split-independent")
    func mutationFuzz() {
        var random = SplitMix64(seed: 0x5EED_0F_E6E55)
        let seeds = (successCases + errorCases + truncateCases).map(\.wire).filter { $0.count < 4096 && !$0.isEmpty }
        for iteration in 0..<1500 {
            var bytes: [UInt8]
            if iteration % 10 == 0 {
                bytes = (0..<random.next(upTo: 300)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            } else {
                bytes = seeds[random.next(upTo: seeds.count)]
                for _ in 0...random.next(upTo: 4) {
                    let index = random.next(upTo: bytes.count)
                    switch random.next(upTo: 4) {
                    case 0: bytes[index] = UInt8(truncatingIfNeeded: random.next())
                    case 1: bytes.remove(at: index)
                    case 2: bytes.insert(Array("\r\n:; 0fF\"".utf8)[random.next(upTo: 9)], at: index)
                    default: bytes.insert(contentsOf: bytes[index..<min(bytes.count, index + 8)], at: index)
                    }
                    if bytes.isEmpty { break }
                }
            }
            let method = ["GET", "HEAD", "CONNECT"][random.next(upTo: 3)]
            let limits = HTTPResponseParser.Limits(maxHeaderBytes: 64 + random.next(upTo: 400), maxHeaderCount: 1 + random.next(upTo: 8), maxBodyBytes: random.next(upTo: 64))
            let truncate = random.next(upTo: 2) == 0
            let whole = parse([bytes[...]], method: method, limits: limits, truncate: truncate)
            #expect(whole.isWellFormed)
            var cuts: [ArraySlice<UInt8>] = []
            var at = 0
            while at < bytes.count {
                let size = 1 + random.next(upTo: 16)
                cuts.append(bytes[at..<min(bytes.count, at + size)])
                at += size
            }
            for pieces in [pieces(bytes, size: 1), cuts] {
                let split = parse(pieces, method: method, limits: limits, truncate: truncate)
                if split != whole {
                    Issue.record("split differs for \(bytes) (\(method), \(limits), truncate \(truncate)): \(split) vs \(whole)")
                    return
                }
            }
        }
    }
}

/// A small deterministic PRNG for the fuzz-style tests.
private struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(upTo bound: Int) -> Int { bound <= 0 ? 0 : Int(next() % UInt64(bound)) }
}

// MARK: - Request serialization (client side)

struct HTTPInjectionCase: Sendable, CustomTestStringConvertible {
    let name: String
    let request: HTTPRequest
    let error: HTTPSerializationError
    var testDescription: String { name }
}

private let injectionCases: [HTTPInjectionCase] = [
    HTTPInjectionCase(name: "CRLF in method", request: HTTPRequest(method: "GET / HTTP/1.1\r\nX:", target: "/"), error: .invalidMethod),
    HTTPInjectionCase(name: "space in method", request: HTTPRequest(method: "GE T", target: "/"), error: .invalidMethod),
    HTTPInjectionCase(name: "empty method", request: HTTPRequest(method: "", target: "/"), error: .invalidMethod),
    HTTPInjectionCase(name: "CRLF in target", request: HTTPRequest(target: "/v2/\r\nEvil: 1"), error: .invalidTarget),
    HTTPInjectionCase(name: "LF in target", request: HTTPRequest(target: "/v2/\nEvil: 1"), error: .invalidTarget),
    HTTPInjectionCase(name: "space in target", request: HTTPRequest(target: "/v2/ HTTP/1.0"), error: .invalidTarget),
    HTTPInjectionCase(name: "non-ASCII in target", request: HTTPRequest(target: "/v2/caf\u{e9}"), error: .invalidTarget),
    HTTPInjectionCase(name: "empty target", request: HTTPRequest(target: ""), error: .invalidTarget),
    HTTPInjectionCase(
        name: "CRLF in header name", request: HTTPRequest(target: "/", headers: ["X-Evil\r\nInjected": "1"]),
        error: .invalidHeaderName("X-Evil\r\nInjected")),
    HTTPInjectionCase(name: "colon in header name", request: HTTPRequest(target: "/", headers: ["X:Y": "1"]), error: .invalidHeaderName("X:Y")),
    HTTPInjectionCase(name: "empty header name", request: HTTPRequest(target: "/", headers: ["": "1"]), error: .invalidHeaderName("")),
    HTTPInjectionCase(
        name: "CRLF in header value", request: HTTPRequest(target: "/", headers: ["Authorization": "Bearer x\r\nInjected: 1"]),
        error: .invalidHeaderValue(name: "Authorization")),
    HTTPInjectionCase(name: "LF in header value", request: HTTPRequest(target: "/", headers: ["X": "a\nb"]), error: .invalidHeaderValue(name: "X")),
    HTTPInjectionCase(name: "CR in header value", request: HTTPRequest(target: "/", headers: ["X": "a\rb"]), error: .invalidHeaderValue(name: "X")),
    HTTPInjectionCase(name: "NUL in header value", request: HTTPRequest(target: "/", headers: ["X": "a\u{0}b"]), error: .invalidHeaderValue(name: "X")),
    HTTPInjectionCase(
        name: "body with a caller's Content-Length", request: HTTPRequest(method: "POST", target: "/", headers: ["Content-Length": "9"], body: [1]),
        error: .conflictingFraming),
]

@Suite("HTTPRequest serialization")
struct HTTPRequestSerializationTests {
    /// ```
    /// GET /v2/ HTTP/1.1\r\nHost: registry-1.docker.io\r\nUser-Agent: egress-monitor/0.1\r\nAccept: */*\r\n\r\n
    /// ```
    @Test("GET /v2/: exact bytes")
    func getV2() throws {
        let request = HTTPRequest(
            method: "GET", target: "/v2/",
            headers: ["Host": "registry-1.docker.io", "User-Agent": "egress-monitor/0.1", "Accept": "*/*"])
        #expect(try request.serialize() == wire("GET /v2/ HTTP/1.1\r\nHost: registry-1.docker.io\r\nUser-Agent: egress-monitor/0.1\r\nAccept: */*\r\n\r\n"))
    }

    @Test("HEAD manifest with the Accept list and a bearer token, header order kept")
    func headManifest() throws {
        let accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
        var headers: HTTPHeaders = ["Host": "mirror.example.com"]
        headers.add("Accept", accept)
        headers.add("Authorization", "Bearer abc.def.ghi")
        let request = HTTPRequest(method: "HEAD", target: "/v2/library/alpine/manifests/latest?ns=docker.io", headers: headers)
        #expect(
            try request.serialize()
                == wire("HEAD /v2/library/alpine/manifests/latest?ns=docker.io HTTP/1.1\r\nHost: mirror.example.com\r\nAccept: \(accept)\r\nAuthorization: Bearer abc.def.ghi\r\n\r\n"))
    }

    /// `CONNECT registry-1.docker.io:443 HTTP/1.1\r\nHost: registry-1.docker.io:443\r\nProxy-Authorization: Basic dXNlcjpzZWNyZXQ=\r\n\r\n`
    @Test("CONNECT in authority-form")
    func connect() throws {
        let request = HTTPRequest(
            method: "CONNECT", target: "registry-1.docker.io:443",
            headers: ["Host": "registry-1.docker.io:443", "Proxy-Authorization": "Basic dXNlcjpzZWNyZXQ="])
        #expect(
            try request.serialize()
                == wire("CONNECT registry-1.docker.io:443 HTTP/1.1\r\nHost: registry-1.docker.io:443\r\nProxy-Authorization: Basic dXNlcjpzZWNyZXQ=\r\n\r\n"))
    }

    @Test("a body gets Content-Length")
    func body() throws {
        let request = HTTPRequest(method: "POST", target: "/token", headers: ["Host": "auth.lab.test"], body: wire("a=b"))
        #expect(try request.serialize() == wire("POST /token HTTP/1.1\r\nHost: auth.lab.test\r\nContent-Length: 3\r\n\r\na=b"))
    }

    @Test("header injection is refused", arguments: injectionCases)
    func injection(_ testCase: HTTPInjectionCase) {
        #expect(throws: testCase.error) { try testCase.request.serialize() }
        #expect(throws: testCase.error) { try testCase.request.validate() }
    }

    @Test("HTAB and UTF-8 are allowed in values")
    func allowedValueBytes() throws {
        let request = HTTPRequest(target: "/", headers: ["Host": "h", "X-Note": "a\tcaf\u{e9}"])
        #expect(try request.serialize() == wire("GET / HTTP/1.1\r\nHost: h\r\nX-Note: a\tcaf\u{e9}\r\n\r\n"))
    }

    @Test("a serialized request parses back on the server side")
    func roundTrip() throws {
        let request = HTTPRequest(method: "POST", target: "/-/reload?x=1", headers: ["Host": "127.0.0.1:9469", "X-A": "b"], body: wire("{}"))
        var parser = HTTPRequestParser()
        let message = try #require(try parser.feed(try request.serialize()))
        #expect(message.head.method == "POST")
        #expect(message.head.target == "/-/reload?x=1")
        #expect(message.head.path == "/-/reload")
        #expect(message.head.query == "x=1")
        #expect(message.head.headers == ["Host": "127.0.0.1:9469", "X-A": "b", "Content-Length": "2"])
        #expect(message.body == wire("{}"))
    }
}

@Suite("HTTPHeaders")
struct HTTPHeadersTests {
    @Test("lookup is case-insensitive, order and case are kept")
    func lookup() {
        var headers = HTTPHeaders([("Content-Type", "a"), ("X-Dup", "1")])
        headers.add("x-dup", "2")
        #expect(headers["content-type"] == "a")
        #expect(headers["CONTENT-TYPE"] == "a")
        #expect(headers["X-DUP"] == "1")
        #expect(headers.values("x-Dup") == ["1", "2"])
        #expect(headers["missing"] == nil)
        #expect(headers.values("missing").isEmpty)
        #expect(headers.count == 3)
        #expect(headers.map(\.name) == ["Content-Type", "X-Dup", "x-dup"])
        #expect(headers.contains("X-DUP"))
        #expect(!headers.contains("X-Du"))
        #expect(headers["Content-Typ"] == nil)
    }

    @Test("replaceOrAdd and remove")
    func edit() {
        var headers: HTTPHeaders = ["A": "1", "B": "2"]
        headers.add("a", "3")
        headers.replaceOrAdd("A", "9")
        #expect(headers == ["A": "9", "B": "2"])
        headers.replaceOrAdd("C", "4")
        #expect(headers == ["A": "9", "B": "2", "C": "4"])
        headers.remove("b")
        #expect(headers == ["A": "9", "C": "4"])
        #expect(headers != ["a": "9", "C": "4"])  // equality is exact
    }

    @Test("list elements across fields")
    func list() {
        let headers: HTTPHeaders = ["Connection": " keep-alive ,, Upgrade", "connection": "close"]
        #expect(headers.listElements("Connection") == ["keep-alive", "Upgrade", "close"])
        #expect(HTTPHeaders().listElements("Connection").isEmpty)
    }

    @Test("description redacts credentials")
    func redacted() {
        let headers: HTTPHeaders = ["Host": "h", "authorization": "Bearer secret", "Proxy-Authorization": "Basic c2VjcmV0"]
        #expect(headers.description == "[Host: h, authorization: <redacted>, Proxy-Authorization: <redacted>]")
    }

    @Test("non-ASCII names never match ASCII ones by accident")
    func nonASCII() {
        let headers: HTTPHeaders = ["\u{212A}ey": "kelvin"]  // KELVIN SIGN lower-cases to "k" in Unicode
        #expect(headers["key"] == nil)
        #expect(headers["\u{212A}ey"] == "kelvin")
    }
}
