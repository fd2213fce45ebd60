import Foundation
import Testing
@testable import EgressMonitor
import EgressNet
import EgressTestSupport

/// Probes against real peers on loopback: docker-registry, nginx, dnsmasq, and raw TCP servers
/// that stall or reset. Each case asserts the phase and reason, and that the probe ended by
/// its deadline. Serialized: run all at once, some thirty cases start their peers (nginx,
/// docker-registry, dnsmasq) together on two cores, and a probe's resumption waited 3 s for a
/// pool thread in one CI run (a 1 s DNS deadline seen to end at 3.99 s); one at a time, each
/// probe's end measures the probe, not its neighbours' start-up.
@Suite(.serialized) struct ProbeTests {
    static let hasPeers = Lab.has("nginx") && Lab.has("dnsmasq") && Lab.has("docker-registry") && Lab.has("openssl")

    /// How far past its deadline a probe may be seen to end. Not slack in the probe: the suite
    /// shares Swift's cooperative pool (two threads on these machines) with CPU-bound tests
    /// (parsers fed byte by byte, float round trips), so a resumed task can wait for a thread.
    /// A hang would overrun by the length of the stall, far more than this. Scaled by
    /// `EGRESS_TEST_TIME_SCALE` under the sanitizers (Tests/Sanitizers/run.sh).
    static let schedulingAllowance = TestTime.allowance(2.0)

    /// How long a failure that needs no waiting may take: a refused connection, an rcode, a bad
    /// certificate, garbage. What the user sees is the time to the verdict, so it is bounded
    /// well under a second, not by the deadline (3 s plus `schedulingAllowance`), which would
    /// let a refusal that took five seconds pass.
    static let fastFailureBound = TestTime.allowance(0.5)

    /// Whether a failure with `reason` under the default deadline needs no waiting: every reason
    /// but the timeouts and `blob_too_slow`. Cases that stall on purpose pass a shorter timeout.
    static func isFast(_ reason: FailureReason, timeout: Double) -> Bool {
        timeout == 3 && !reason.rawValue.hasSuffix("_timeout") && reason != .blobTooSlow
    }

    /// Asserts a failure's phase and reason, and that the probe respected its deadline; a fast
    /// failure (`isFast`, unless `fast` says otherwise) within `fastFailureBound`.
    static func expectFailure(_ result: ProbeResult, _ phase: Phase, _ reason: FailureReason, timeout: Double = 3,
                              fast: Bool? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.failure?.phase == phase, "\(result.failure.map(String.init(describing:)) ?? "success")", sourceLocation: sourceLocation)
        #expect(result.failure?.reason == reason, "\(result.failure.map(String.init(describing:)) ?? "success")", sourceLocation: sourceLocation)
        #expect(result.duration < timeout + schedulingAllowance, "probe ran \(result.duration)s past a \(timeout)s deadline", sourceLocation: sourceLocation)
        if fast ?? isFast(reason, timeout: timeout) {
            #expect(result.duration < fastFailureBound, "a \(reason.rawValue) took \(result.duration)s", sourceLocation: sourceLocation)
        }
        #expect(!result.success, sourceLocation: sourceLocation)
    }

    @Test(.enabled(if: hasPeers, "needs docker-registry, dnsmasq and openssl"))
    func healthyTLSRegistryResolvedThroughDnsmasq() async throws {
        let certs = try await LabCertificates.shared()
        let registry = try await LabRegistry.start(tls: certs.good)
        defer { registry.stop() }
        let dns = try await LabDnsmasq.start(records: [.host(name: "registry.lab.test", ips: ["127.0.0.1"])])
        defer { dns.stop() }
        let lab = ResolverConfig(name: "lab", address: dns.address)
        let target = LabConfig.target(url: "https://registry.lab.test:\(registry.port)", caFile: certs.caFile, resolver: "lab")
        let result = await LabConfig.probe(target, resolvers: [lab])
        #expect(result.failure == nil, "\(String(describing: result.failure))")
        #expect(result.success)
        #expect(Set(result.phases.keys) == [.dns, .connect, .tls, .http])
        #expect(result.phases.values.allSatisfy { $0 > 0 && $0 < 3 })
        #expect(result.address == "127.0.0.1:\(registry.port)")
        #expect(result.tls?.version == "TLSv1.3")
        #expect(result.httpStatus == 200)
        let notAfter = try certs.good.notAfter()
        #expect(result.tls?.earliestNotAfter.map { abs($0 - notAfter) < 1 } == true)
    }

    @Test(.enabled(if: hasPeers, "needs docker-registry and openssl"))
    func ipLiteralURLSkipsDNSAndChecksTheCertificateIP() async throws {
        let certs = try await LabCertificates.shared()
        let registry = try await LabRegistry.start(tls: certs.good)
        defer { registry.stop() }
        let result = await LabConfig.probe(LabConfig.target(url: registry.url, caFile: certs.caFile))
        #expect(result.success, "\(String(describing: result.failure))")
        #expect(result.phases[.dns] == nil)
        #expect(result.phases[.connect] != nil && result.phases[.tls] != nil && result.phases[.http] != nil)
    }

    @Test func closedPortIsTCPRefused() async throws {
        let probe = try Socket.listen(on: SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0))
        let port = probe.localAddress!.port
        probe.close()
        let result = await LabConfig.probe(LabConfig.target(kind: .tcp, url: "tcp://127.0.0.1:\(port)"))
        Self.expectFailure(result, .connect, .tcpRefused)
        #expect(result.phases.isEmpty)
    }

    @Test func tcpTargetSucceedsOnAListeningPort() async throws {
        let server = try LabTCPServer.start(.closeImmediately)
        defer { server.stop() }
        let result = await LabConfig.probe(LabConfig.target(kind: .tcp, url: "tcp://127.0.0.1:\(server.port)"))
        #expect(result.success)
        #expect(Set(result.phases.keys) == [.connect])
    }

    // MARK: TLS

    enum BadCert: String, CaseIterable, Sendable { case expired, wrongName, selfSigned }

    @Test(.enabled(if: hasPeers, "needs nginx and openssl"), arguments: BadCert.allCases)
    func certificateProblemsAreClassified(_ bad: BadCert) async throws {
        let certs = try await LabCertificates.shared()
        let pair: CertPair
        let reason: FailureReason
        switch bad {
        case .expired: (pair, reason) = (certs.expired, .tlsCertExpired)
        case .wrongName: (pair, reason) = (certs.wrongName, .tlsHostnameMismatch)
        case .selfSigned: (pair, reason) = (certs.selfSigned, .tlsCertUntrusted)
        }
        let nginx = try await LabNginx.start(tls: pair, locations: [.registryV2()])
        defer { nginx.stop() }
        let target = LabConfig.target(url: "https://localhost:\(nginx.port)", caFile: certs.caFile)
        let result = await LabConfig.probe(target)
        Self.expectFailure(result, .tls, reason)
        #expect(result.phases[.connect] != nil)
    }

    @Test(.enabled(if: hasPeers, "needs nginx and openssl"))
    func systemTrustStoreDoesNotTrustTheLabCA() async throws {
        let certs = try await LabCertificates.shared()
        let nginx = try await LabNginx.start(tls: certs.good, locations: [.registryV2()])
        defer { nginx.stop() }
        let result = await LabConfig.probe(LabConfig.target(url: "https://localhost:\(nginx.port)"))
        Self.expectFailure(result, .tls, .tlsCertUntrusted)
    }

    @Test func serverHelloThatNeverComesIsTLSTimeout() async throws {
        let server = try LabTCPServer.start(.stallAfterAccept)
        defer { server.stop() }
        let result = await LabConfig.probe(LabConfig.target(url: "https://127.0.0.1:\(server.port)"), timeout: 1)
        Self.expectFailure(result, .tls, .tlsTimeout, timeout: 1)
        #expect(result.duration >= 0.99)
    }

    @Test func resetAfterClientHelloIsTLSReset() async throws {
        let server = try LabTCPServer.start(.resetAfterRead)
        defer { server.stop() }
        let result = await LabConfig.probe(LabConfig.target(url: "https://127.0.0.1:\(server.port)"))
        Self.expectFailure(result, .tls, .tlsReset)
    }

    @Test func garbageInsteadOfServerHelloIsTLSProtocolError() async throws {
        let server = try LabTCPServer.start(.respond(Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".utf8)))
        defer { server.stop() }
        let result = await LabConfig.probe(LabConfig.target(url: "https://127.0.0.1:\(server.port)"))
        Self.expectFailure(result, .tls, .tlsProtocolError)
    }

    // MARK: HTTP /v2/

    struct HTTPCase: Sendable, CustomTestStringConvertible {
        let name: String
        let location: NginxLocation
        let reason: FailureReason?
        var testDescription: String { name }
    }

    static let httpCases: [HTTPCase] = [
        HTTPCase(name: "registry 200", location: .registryV2(), reason: nil),
        HTTPCase(name: "registry 401 with Bearer challenge",
                 location: .registryV2(status: 401, body: #"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
                                       extraHeaders: [("WWW-Authenticate", #"Bearer realm="https://auth.lab.test/token",service="registry.lab.test""#)]),
                 reason: nil),
        HTTPCase(name: "401 without challenge", location: NginxLocation("/v2/", status: 401, body: "no"), reason: .httpUnauthorized),
        HTTPCase(name: "403 allowlist", location: NginxLocation("/v2/", status: 403, body: "not in the allowlist"), reason: .httpForbidden),
        HTTPCase(name: "404", location: NginxLocation("/v2/", status: 404, body: "nope"), reason: .httpNotFound),
        HTTPCase(name: "429", location: NginxLocation("/v2/", status: 429, body: #"{"detail": "Rate limit exceeded"}"#), reason: .httpRateLimited),
        HTTPCase(name: "500", location: NginxLocation("/v2/", status: 500, body: "boom"), reason: .httpServerError),
        HTTPCase(name: "503", location: NginxLocation("/v2/", status: 503, body: "busy"), reason: .httpServerError),
        HTTPCase(name: "captive portal", location: .captivePortal(), reason: .httpNotRegistry),
        HTTPCase(name: "redirect to a login page", location: NginxLocation("/v2/", status: 302, body: "https://login.portal.example/?next=x"), reason: .httpNotRegistry),
        HTTPCase(name: "418", location: NginxLocation("/v2/", status: 418, body: "teapot"), reason: .httpUnexpectedStatus),
    ]

    @Test(.enabled(if: hasPeers, "needs nginx and openssl"), arguments: httpCases)
    func v2AnswersAreClassified(_ c: HTTPCase) async throws {
        let certs = try await LabCertificates.shared()
        let nginx = try await LabNginx.start(tls: certs.good, locations: [c.location])
        defer { nginx.stop() }
        let result = await LabConfig.probe(LabConfig.target(url: "https://localhost:\(nginx.port)", caFile: certs.caFile))
        if let reason = c.reason {
            Self.expectFailure(result, .http, reason)
            #expect(result.phases[.tls] != nil)
        } else {
            #expect(result.success, "\(String(describing: result.failure))")
            #expect(result.phases[.http] != nil)
        }
    }

    @Test(.enabled(if: hasPeers, "needs nginx and openssl"))
    func headersThatNeverComeAreHTTPTimeout() async throws {
        let certs = try await LabCertificates.shared()
        let backend = try LabTCPServer.start(.stallAfterAccept)
        defer { backend.stop() }
        let nginx = try await LabNginx.start(tls: certs.good, locations: [
            NginxLocation("/v2/", status: nil, directives: ["proxy_pass http://127.0.0.1:\(backend.port)", "proxy_read_timeout 60s"]),
        ])
        defer { nginx.stop() }
        let result = await LabConfig.probe(LabConfig.target(url: "https://localhost:\(nginx.port)", caFile: certs.caFile),
                                           timeout: 1.5)
        Self.expectFailure(result, .http, .httpTimeout, timeout: 1.5)
        #expect(result.failure?.detail.contains("awaiting headers") == true)
    }

    @Test func plainHTTPRegistryWithoutTLS() async throws {
        let response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDocker-Distribution-API-Version: registry/2.0\r\nContent-Length: 2\r\n\r\n{}"
        let server = try LabTCPServer.start(.respond(Array(response.utf8)))
        defer { server.stop() }
        let result = await LabConfig.probe(LabConfig.target(url: "http://127.0.0.1:\(server.port)"))
        #expect(result.success, "\(String(describing: result.failure))")
        #expect(Set(result.phases.keys) == [.connect, .http])
    }

    @Test func connectionClosedMidHeadersIsHTTPReset() async throws {
        let server = try LabTCPServer.start(.respond(Array("HTTP/1.1 200 OK\r\nContent-Ty".utf8)))
        defer { server.stop() }
        let result = await LabConfig.probe(LabConfig.target(url: "http://127.0.0.1:\(server.port)"))
        Self.expectFailure(result, .http, .httpReset)
    }

    @Test func garbageInsteadOfHTTPIsBadResponse() async throws {
        let server = try LabTCPServer.start(.respond(Array("SSH-2.0-OpenSSH_9.2\r\n".utf8)))
        defer { server.stop() }
        let result = await LabConfig.probe(LabConfig.target(url: "http://127.0.0.1:\(server.port)"))
        Self.expectFailure(result, .http, .httpBadResponse)
    }

    // MARK: DNS

    @Test(.enabled(if: Lab.has("dnsmasq"), "needs dnsmasq"))
    func dnsAnswersAreClassified() async throws {
        let dns = try await LabDnsmasq.start(records: [.nxdomain(domain: "gone.lab.test"), .txt(name: "txt.lab.test", text: "hello")])
        defer { dns.stop() }
        let lab = ResolverConfig(name: "lab", address: dns.address)
        let cases: [(String, FailureReason)] = [
            ("gone.lab.test", .dnsNXDomain), ("unknown.example", .dnsRefused), ("txt.lab.test", .dnsNoAddress),
        ]
        for (host, reason) in cases {
            let result = await LabConfig.probe(LabConfig.target(url: "https://\(host)", resolver: "lab"), resolvers: [lab])
            Self.expectFailure(result, .dns, reason)
        }
    }

    @Test(.enabled(if: Lab.has("dnsmasq"), "needs dnsmasq"))
    func poisonedAnswersAreSuspicious() async throws {
        let poisoned = try await LabDnsmasq.start(records: [
            .host(name: "registry-1.docker.io", ips: ["127.0.0.1"]),
            .host(name: "mirror.lab.test", ips: ["127.0.0.2"]),
            .host(name: "zero.lab.test", ips: ["0.0.0.0"]),
        ])
        let reference = try await LabDnsmasq.start(records: [.host(name: "mirror.lab.test", ips: ["127.0.0.1"])])
        defer { poisoned.stop(); reference.stop() }
        let local = ResolverConfig(name: "local", address: poisoned.address)
        let trusted = ResolverConfig(name: "trusted", address: reference.address, trusted: true)

        // Docker Hub (public) answered with loopback: a poisoned answer.
        let hub = Target(name: "hub", kind: .dockerhub, url: LabConfig.url("https://registry-1.docker.io"), resolver: "local")
        #expect(hub.isPublic)
        let r1 = await LabConfig.probe(hub, resolvers: [local])
        Self.expectFailure(r1, .dns, .dnsSuspiciousAnswer)
        #expect(r1.failure?.detail.contains("127.0.0.1") == true)

        // 0.0.0.0 is suspicious for any target.
        Self.expectFailure(await LabConfig.probe(LabConfig.target(url: "https://zero.lab.test", resolver: "local"), resolvers: [local]),
                           .dns, .dnsSuspiciousAnswer)

        // A private target may resolve to loopback, but not against the trusted resolver's answer.
        let mirror = LabConfig.target(kind: .tcp, url: "tcp://mirror.lab.test:1", resolver: "local")
        Self.expectFailure(await LabConfig.probe(mirror, resolvers: [local, trusted]), .dns, .dnsSuspiciousAnswer)
        // Without a trusted resolver the same answer is taken (and the closed port refuses).
        Self.expectFailure(await LabConfig.probe(mirror, resolvers: [local]), .connect, .tcpRefused)
    }

    @Test func silentResolverIsDNSTimeout() async throws {
        // A UDP socket that is bound but never answers.
        let silent = try Socket.udp(family: SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0).addressFamily)
        defer { silent.close() }
        try silent.bind(to: SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0))
        let resolver = ResolverConfig(name: "silent", address: silent.localAddress!)
        let result = await LabConfig.probe(LabConfig.target(url: "https://registry.lab.test", resolver: "silent"),
                                           resolvers: [resolver], timeout: 1)
        Self.expectFailure(result, .dns, .dnsTimeout, timeout: 1)
        #expect(result.duration >= 0.99)
    }

    @Test func unreachableResolverPortIsDNSError() async throws {
        let probe = try Socket.udp(family: SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0).addressFamily)
        try probe.bind(to: SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0))
        let address = probe.localAddress!
        probe.close()
        let result = await LabConfig.probe(LabConfig.target(url: "https://registry.lab.test", resolver: "gone"),
                                           resolvers: [ResolverConfig(name: "gone", address: address)])
        Self.expectFailure(result, .dns, .dnsError)
    }

    // MARK: hygiene

    @Test func probesLeakNoFileDescriptors() async throws {
        let stall = try LabTCPServer.start(.stallAfterAccept)
        let reset = try LabTCPServer.start(.resetAfterRead)
        defer { stall.stop(); reset.stop() }
        for _ in 0..<20 {
            _ = await LabConfig.probe(LabConfig.target(url: "https://127.0.0.1:\(reset.port)"))
            _ = await LabConfig.probe(LabConfig.target(url: "https://127.0.0.1:\(stall.port)"), timeout: 0.05)
        }
        // The servers accepted every connection; the probes' own ends must all be closed.
        #expect(await stall.waitForConnections(20) == 20)
        #expect(Lab.openConnections(toPort: stall.port) == 0)
        #expect(Lab.openConnections(toPort: reset.port) == 0)
    }
}
