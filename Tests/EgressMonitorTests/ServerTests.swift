import Foundation
import Testing
@testable import EgressMonitor
import EgressNet
import EgressTestSupport

/// The listener under hostile clients: half-sent requests, garbage, floods past the
/// connection limit, oversized heads — and its optional TLS and basic auth, checked with curl.
@Suite struct ServerTests {
    static let loopback = SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0)

    static func server(limits: HTTPServer.Limits = .init(), web: WebSettings = .init()) throws -> HTTPServer {
        let server = try HTTPServer(listenOn: loopback, limits: limits, web: web) { request in
            ServerResponse(status: 200, headers: ["Content-Type": "text/plain"], body: Array("scraped \(request.head.path)\n".utf8))
        }
        server.start()
        return server
    }

    /// curl's view of one request: status code and seconds taken.
    static func curl(_ args: [String]) async throws -> (code: String, seconds: Double) {
        let out = try await Lab.runAsync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "--max-time", "10"] + args)
        let parts = out.split(separator: " ")
        return (String(parts.first ?? ""), Double(parts.last ?? "") ?? -1)
    }

    @Test(.enabled(if: Lab.has("curl"), "needs curl"))
    func aScrapeIsAnsweredWhile400ClientsHoldHalfSentRequestsAndGarbage() async throws {
        let server = try Self.server()
        defer { Task { await server.stop() } }
        var hostile: [Socket] = []
        defer { for s in hostile { s.close() } }
        for i in 0..<400 {
            let s = try Socket.tcp(family: server.boundAddress.addressFamily)
            try await s.connect(to: server.boundAddress, deadline: .after(seconds: 5))
            let bytes: [UInt8] = i % 2 == 0 ? Array("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8)
                                            : (0..<200).map { _ in UInt8.random(in: 0...255) }
            try? await s.write(bytes, deadline: .after(seconds: 5))
            hostile.append(s)
        }
        let result = try await Self.curl(["http://\(server.boundAddress)/metrics"])
        #expect(result.code == "200")
        #expect(result.seconds < 2, "scrape took \(result.seconds)s")
    }

    @Test(.enabled(if: Lab.has("curl"), "needs curl"))
    func aFloodPastTheConnectionLimitEvictsIdleClientsNotTheScrape() async throws {
        var limits = HTTPServer.Limits()
        limits.maxConnections = 20
        let server = try Self.server(limits: limits)
        defer { Task { await server.stop() } }
        var idle: [Socket] = []
        defer { for s in idle { s.close() } }
        for _ in 0..<60 {
            let s = try Socket.tcp(family: server.boundAddress.addressFamily)
            try await s.connect(to: server.boundAddress, deadline: .after(seconds: 5))
            idle.append(s)
        }
        // Let the accept loop take them all in (it evicts as it goes).
        let deadline = Deadline.after(seconds: 5)
        while server.evictedCount < 40 && !deadline.hasPassed { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(server.connectionCount <= 20)
        let result = try await Self.curl(["http://\(server.boundAddress)/metrics"])
        #expect(result.code == "200")
        #expect(server.evictedCount >= 40)
    }

    @Test func aHeadThatDoesNotArriveInTimeIsDropped() async throws {
        var limits = HTTPServer.Limits()
        limits.headerReadTimeout = 0.3
        let server = try Self.server(limits: limits)
        defer { Task { await server.stop() } }
        let s = try Socket.tcp(family: server.boundAddress.addressFamily)
        defer { s.close() }
        try await s.connect(to: server.boundAddress, deadline: .after(seconds: 5))
        try await s.write(Array("GET /metrics HTTP/1.1\r\nHost:".utf8), deadline: .after(seconds: 5))
        let start = MonotonicClock.nanoseconds()
        let answer = try await s.read(deadline: .after(seconds: 5))
        #expect(answer.isEmpty, "the server closed without answering")
        #expect(MonotonicClock.seconds(since: start) < 3)
    }

    @Test(arguments: [
        ("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 20_000) + "\r\n\r\n", "431"),
        ("GET /" + String(repeating: "a", count: 10_000) + " HTTP/1.1\r\nHost: x\r\n\r\n", "414"),
        ("\u{1}\u{2}garbage\r\n\r\n", "400"),
        ("GET /metrics HTTP/1.1\r\n\r\n", "400"),
    ])
    func badRequestsGetTheirStatusAndAClose(request: String, status: String) async throws {
        let server = try Self.server()
        defer { Task { await server.stop() } }
        let s = try Socket.tcp(family: server.boundAddress.addressFamily)
        defer { s.close() }
        try await s.connect(to: server.boundAddress, deadline: .after(seconds: 5))
        try? await s.write(Array(request.utf8), deadline: .after(seconds: 5))
        var answer: [UInt8] = []
        while true {
            let chunk = try await s.read(deadline: .after(seconds: 5))
            if chunk.isEmpty { break }
            answer += chunk
        }
        #expect(String(decoding: answer, as: UTF8.self).hasPrefix("HTTP/1.1 \(status) "))
    }

    @Test(.enabled(if: Lab.has("curl") && Lab.has("openssl"), "needs curl and openssl"))
    func tlsAndBasicAuthAsPrometheusWebConfigHasThem() async throws {
        let certs = try await LabCertificates.shared()
        let hash = try #require(PasswordHash.bcrypt("s3cret", cost: 5))
        #expect(PasswordHash.isBcrypt(hash))
        #expect(PasswordHash.matches(password: "s3cret", hash: hash))
        #expect(!PasswordHash.matches(password: "wrong", hash: hash))
        let web = WebSettings(tls: try TLSContext.server(certFile: certs.good.certFile, keyFile: certs.good.keyFile),
                              basicAuthUsers: ["prometheus": hash])
        let server = try Self.server(web: web)
        defer { Task { await server.stop() } }
        let url = "https://localhost:\(server.boundAddress.port)/metrics"
        let ok = try await Self.curl(["--cacert", certs.caFile, "-u", "prometheus:s3cret", url])
        #expect(ok.code == "200")
        // Again: a remembered credential, no second bcrypt.
        #expect(try await Self.curl(["--cacert", certs.caFile, "-u", "prometheus:s3cret", url]).code == "200")
        #expect(try await Self.curl(["--cacert", certs.caFile, "-u", "prometheus:wrong", url]).code == "401")
        #expect(try await Self.curl(["--cacert", certs.caFile, url]).code == "401")
        #expect(try await Self.curl(["--cacert", certs.caFile, "-u", "nobody:s3cret", url]).code == "401")
        // Plain HTTP to the TLS listener gets nothing useful.
        let plain = try? await Self.curl(["-u", "prometheus:s3cret", "http://localhost:\(server.boundAddress.port)/metrics"])
        #expect(plain?.code != "200")
    }

    /// /metrics as the agent serves it, formatted and sent in pieces: to HTTP/1.1 in chunked
    /// coding (curl checks the framing, promtool the exposition), to HTTP/1.0 as a body that
    /// ends with the connection, and to HEAD as the head alone. Each GET gets exactly the bytes
    /// the store renders whole.
    @Test(.enabled(if: Lab.has("curl") && Lab.has("promtool"), "needs curl and promtool"))
    func streamedMetricsReachCurlAndPromtoolWhole() async throws {
        let results = ResultStore(metrics: Catalogue.makeStore())
        results.setPairs((0..<400).flatMap { i in ["direct", "vpn"].map { PairKey(target: "t\(i)", path: $0) } })
        for i in 0..<400 {
            for path in ["direct", "vpn"] {
                let ok = i % 4 != 0
                results.record(ProbeResult(target: "t\(i)", path: path, startedAt: 1_700_000_000, duration: 0.05 + Double(i) / 1000,
                                           phases: [.dns: 0.001, .connect: 0.002, .tls: 0.01, .http: 0.02],
                                           failure: ok ? nil : ProbeFailure(.tls, .tlsReset, "reset")))
            }
        }
        let routes = Routes(results: results, reload: { nil })
        let server = try HTTPServer(listenOn: Self.loopback) { request in await routes.handle(request) }
        server.start()
        defer { Task { await server.stop() } }
        let url = "http://127.0.0.1:\(server.boundAddress.port)/metrics"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("streamed-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, flag) in [("http11", "--http1.1"), ("http10", "--http1.0")] {
            _ = try await Lab.runAsync("curl", ["-sS", "--fail", "--max-time", "10", flag, "-D", "\(dir)/\(name).head",
                                                "-o", "\(dir)/\(name).body", url])
        }
        // Rendered after the scrapes: no probe runs in between, so only the process_* lines
        // (CPU, memory) may differ.
        let whole = results.metrics.renderBytes()
        #expect(whole.count > 256 * 1024, "more than one piece")
        func withoutProcess(_ bytes: [UInt8]) -> [Substring] {
            String(decoding: bytes, as: UTF8.self).split(separator: "\n").filter { !$0.contains("process_") }
        }
        for name in ["http11", "http10"] {
            let body = try #require(FileManager.default.contents(atPath: "\(dir)/\(name).body"))
            #expect(withoutProcess(Array(body)) == withoutProcess(whole), "\(name): \(body.count) bytes, rendered \(whole.count)")
            #expect(body.last == UInt8(ascii: "\n"))
        }
        let head11 = try String(contentsOfFile: "\(dir)/http11.head", encoding: .utf8).lowercased()
        #expect(head11.hasPrefix("http/1.1 200"))
        #expect(head11.contains("transfer-encoding: chunked"))
        #expect(!head11.contains("content-length"))
        let head10 = try String(contentsOfFile: "\(dir)/http10.head", encoding: .utf8).lowercased()
        #expect(head10.contains(" 200 "))
        #expect(!head10.contains("transfer-encoding"))
        #expect(!head10.contains("content-length"))
        #expect(head10.contains("connection: close"))
        // HEAD: the head, no body; the connection stays usable (curl reuses it for the GET).
        let headAndGet = try await Lab.runAsync("curl", ["-sS", "--max-time", "10", "-I", url, "--next", "-sS", "-o", "\(dir)/after-head.body",
                                                         "-w", "%{http_code} %{size_download} %{num_connects}", url])
        #expect(headAndGet.lowercased().hasPrefix("http/1.1 200"))
        let got = headAndGet.split(whereSeparator: \.isNewline).last?.split(separator: " ") ?? []
        #expect(got.first == "200" && got.last == "0", "\(headAndGet)")
        #expect(abs((Int(got.dropFirst().first ?? "") ?? 0) - whole.count) < 200, "\(headAndGet)")
        let lint = try await Lab.runAsync("sh", ["-c", "curl -sS --max-time 10 \(url) | promtool check metrics; echo exit=$?"])
        #expect(lint.hasSuffix("exit=0\n"), "promtool: \(lint)")
    }

    @Test func webConfigIsValidatedWithFieldPaths() throws {
        let bad = #"{"web": {"tls_key_file": "/nonexistent", "basic_auth_users": {"u": "plain"}}, "targets": [{"name": "x", "kind": "dockerhub"}]}"#
        do {
            _ = try ConfigLoader.decode(Data(bad.utf8))
            Issue.record("accepted a bad web config")
        } catch {
            #expect(error.issues.map(\.description) == [
                "web.tls_cert_file: required with tls_key_file",
                "web.basic_auth_users.u: expected a bcrypt hash ($2y$..., e.g. from htpasswd -nBC 10 u)",
            ])
        }
    }
}
