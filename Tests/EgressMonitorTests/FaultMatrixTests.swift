#if canImport(Glibc)
import Glibc
#endif
import Foundation
import EgressSync
import Testing
@testable import EgressMonitor
import EgressNet
import EgressTestSupport

/// The fault matrix (issue 5): every way the field has seen `docker pull` fail, rebuilt from real
/// peers — nginx, dnsmasq, tinyproxy, microsocks, Swift servers that misbehave on purpose, and a
/// network namespace with nft rules and routes for what only a network can do (blackholes,
/// resets in flight, ICMP unreachables).
///
/// Every scenario asserts the failing phase and reason, that the probe ended by its deadline
/// (within `ProbeTests.schedulingAllowance`) or, for a failure that needs no waiting, well under
/// a second (`ProbeTests.fastFailureBound`), and that none of the probe's sockets to the peer
/// is still open afterwards (this process's TCP and UDP sockets whose remote port is the
/// peer's, read from /proc).
///
/// Serialized: run all at once, the sixty-odd scenarios start some twenty servers and their
/// handshakes in the same second, and on two cores the probes' deadlines end up measuring that
/// burst (under ASan, probes resumed seconds late). One at a time, each probe's timing is its own.
@Suite(.serialized) struct FaultMatrixTests {
    static let hasNginx = Lab.has("nginx") && Lab.has("openssl")
    static let hasProxies = Lab.has("tinyproxy") && Lab.has("microsocks")

    /// The deadline of probes that end by a timeout: short, so the matrix stays quick.
    static let stallTimeout = 1.0

    // MARK: assertions

    /// Asserts the phase, the reason, the deadline, and that no socket to `ports` is left open.
    static func expect(_ result: ProbeResult, _ phase: Phase, _ reason: FailureReason, timeout: Double = 3,
                       noSocketsTo ports: [UInt16], sourceLocation: SourceLocation = #_sourceLocation) {
        ProbeTests.expectFailure(result, phase, reason, timeout: timeout, sourceLocation: sourceLocation)
        expectNoSockets(to: ports, sourceLocation: sourceLocation)
    }

    /// Asserts success, the deadline, and that no socket to `ports` is left open.
    static func expectSuccess(_ result: ProbeResult, timeout: Double = 3, noSocketsTo ports: [UInt16],
                              sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.success, "\(result.failure.map(String.init(describing:)) ?? "success")", sourceLocation: sourceLocation)
        #expect(result.duration < timeout + ProbeTests.schedulingAllowance, sourceLocation: sourceLocation)
        expectNoSockets(to: ports, sourceLocation: sourceLocation)
    }

    static func expectNoSockets(to ports: [UInt16], sourceLocation: SourceLocation = #_sourceLocation) {
        for port in ports {
            #expect(openSockets(toPort: port) == 0, "a socket to port \(port) leaked", sourceLocation: sourceLocation)
        }
    }

    /// This process's sockets, TCP or UDP, IPv4 or IPv6, whose remote port is `port`: the ones
    /// in /proc/net/{tcp,tcp6,udp,udp6} whose inode is one of /proc/self/fd's. A socket in
    /// TIME_WAIT belongs to no descriptor and does not count.
    static func openSockets(toPort port: UInt16) -> Int {
        var inodes: Set<Substring> = []
        let fdDirectory = "/proc/self/fd"
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: fdDirectory)) ?? [] {
            guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: fdDirectory + "/" + fd),
                  link.hasPrefix("socket:[") else { continue }
            inodes.insert(Substring(link.dropFirst(8).dropLast()))
        }
        let wanted = String(format: "%04X", port)
        var count = 0
        for table in ["/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"] {
            guard let text = Lab.readProcFile(table) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 9, fields[2].split(separator: ":").last == Substring(wanted),
                      inodes.contains(fields[9]) else { continue }
                count += 1
            }
        }
        return count
    }

    /// The leak check itself: it sees every open TCP and UDP socket to a port, also past the
    /// first 4 KB of /proc/net/tcp (where Foundation's file reading stops), and none once closed.
    @Test func leakCheckSeesOpenSockets() async throws {
        let server = try LabTCPServer.start(.stallAfterAccept)
        defer { server.stop() }
        var sockets: [Socket] = []
        defer { for socket in sockets { socket.close() } }
        for _ in 0..<40 {
            let socket = try Socket.tcp(family: server.address.addressFamily)
            sockets.append(socket)
            try await socket.connect(to: server.address, deadline: .after(seconds: 3))
        }
        let udp = try Socket.udp(family: server.address.addressFamily)
        sockets.append(udp)
        try await udp.connect(to: server.address, deadline: .after(seconds: 3))
        #expect(Self.openSockets(toPort: server.port) == 41)
        for socket in sockets { socket.close() }
        #expect(Self.openSockets(toPort: server.port) == 0)
    }

    /// A port nothing listens on (bound and closed a moment ago).
    static func closedPort() -> UInt16 { FreePort.next() }

    static func registryTarget(_ url: String, caFile: String? = nil, resolver: String? = nil,
                               images: [String] = [], isPublic: Bool = false) -> Target {
        var target = Target(name: "t", kind: .registry, url: LabConfig.url(url), caFile: caFile, resolver: resolver,
                            images: images.map { try! ImageReference.parse($0, officialPrefix: false).get() })
        target.isPublic = isPublic
        return target
    }

    // MARK: - DNS

    /// What a resolver does to every query, and the reason that must follow.
    struct DNSCase: Sendable, CustomTestStringConvertible {
        enum Peer: Sendable {
            /// dnsmasq answering from these records (unknown names REFUSED).
            case dnsmasq([LabDnsmasq.Record])
            /// The scriptable server giving this reply to every query.
            case scripted(LabDNSServer.Reply)
        }
        let name: String
        let peer: Peer
        let host: String
        var isPublic = false
        let reason: FailureReason
        var timeout = 3.0
        var testDescription: String { name }
    }

    static let dnsCases: [DNSCase] = [
        DNSCase(name: "NXDOMAIN (dnsmasq)", peer: .dnsmasq([.nxdomain(domain: "gone.lab.test")]), host: "gone.lab.test",
                reason: .dnsNXDomain),
        DNSCase(name: "REFUSED (dnsmasq, no upstream)", peer: .dnsmasq([]), host: "registry.lab.test", reason: .dnsRefused),
        DNSCase(name: "SERVFAIL", peer: .scripted(.rcode(.servFail)), host: "registry.lab.test", reason: .dnsServFail),
        DNSCase(name: "REFUSED (scripted)", peer: .scripted(.rcode(.refused)), host: "registry.lab.test", reason: .dnsRefused),
        DNSCase(name: "silence", peer: .scripted(.silence), host: "registry.lab.test", reason: .dnsTimeout, timeout: stallTimeout),
        DNSCase(name: "no address (NODATA)", peer: .scripted(.noData), host: "registry.lab.test", reason: .dnsNoAddress),
        DNSCase(name: "no address (dnsmasq TXT only)", peer: .dnsmasq([.txt(name: "txt.lab.test", text: "hello")]),
                host: "txt.lab.test", reason: .dnsNoAddress),
        DNSCase(name: "malformed answer (ANCOUNT 1, no record)", peer: .scripted(.malformed), host: "registry.lab.test",
                reason: .dnsError, timeout: stallTimeout),
        DNSCase(name: "garbage bytes", peer: .scripted(.bytes(Array("SSH-2.0-OpenSSH_9.2\r\n".utf8))), host: "registry.lab.test",
                reason: .dnsError, timeout: stallTimeout),
        DNSCase(name: "poisoned: private address for a public target",
                peer: .scripted(.addresses([IPAddress("10.10.34.35")!], ttl: 10)), host: "registry-1.docker.io",
                isPublic: true, reason: .dnsSuspiciousAnswer),
        DNSCase(name: "poisoned: loopback for a public target",
                peer: .scripted(.addresses([IPAddress("127.0.0.1")!], ttl: 10)), host: "registry-1.docker.io",
                isPublic: true, reason: .dnsSuspiciousAnswer),
        DNSCase(name: "poisoned: 0.0.0.0 for any target",
                peer: .scripted(.addresses([IPAddress("0.0.0.0")!])), host: "registry.lab.test", reason: .dnsSuspiciousAnswer),
    ]

    @Test(.enabled(if: Lab.has("dnsmasq"), "needs dnsmasq"), arguments: dnsCases)
    func dnsFault(_ c: DNSCase) async throws {
        let address: SocketAddress
        var stop: () -> Void
        switch c.peer {
        case .dnsmasq(let records):
            let dns = try await LabDnsmasq.start(records: records)
            (address, stop) = (dns.address, dns.stop)
        case .scripted(let reply):
            let dns = try LabDNSServer.start(always: reply)
            (address, stop) = (dns.address, dns.stop)
        }
        defer { stop() }
        let target = Self.registryTarget("https://\(c.host)", resolver: "lab", isPublic: c.isPublic)
        let result = await LabConfig.probe(target, resolvers: [ResolverConfig(name: "lab", address: address)], timeout: c.timeout)
        Self.expect(result, .dns, c.reason, timeout: c.timeout, noSocketsTo: [address.port])
        #expect(result.phases.isEmpty, "nothing completed: \(result.phases)")
        if c.timeout == Self.stallTimeout { #expect(result.duration >= 0.95 * c.timeout) }
    }

    /// TC=1 over UDP, the full answer over TCP: the fallback must succeed and the probe go on.
    @Test(.enabled(if: hasNginx, "needs nginx and openssl"))
    func truncatedUDPAnswerFallsBackToTCP() async throws {
        let certs = try await LabCertificates.shared()
        let nginx = try await LabNginx.start(tls: certs.good, locations: [.registryV2()])
        defer { nginx.stop() }
        let dns = try LabDNSServer.start { _, transport in
            transport == .udp ? .truncated : .addresses([IPAddress("127.0.0.1")!])
        }
        defer { dns.stop() }
        let target = Self.registryTarget("https://registry.lab.test:\(nginx.port)", caFile: certs.caFile, resolver: "lab")
        let result = await LabConfig.probe(target, resolvers: [ResolverConfig(name: "lab", address: dns.address)])
        Self.expectSuccess(result, noSocketsTo: [dns.port, nginx.port])
        #expect(Set(result.phases.keys) == [.dns, .connect, .tls, .http])
        let counts = dns.queryCounts
        #expect(counts.udp >= 2 && counts.tcp >= 2, "A and AAAA over UDP, then again over TCP: \(counts)")
    }

    /// A resolver marked `trusted` answers differently from the target's resolver, sharing no
    /// address: poisoning explains that (issue 5). When they share an address, it is fine.
    @Test func answerDisagreeingWithATrustedResolverIsSuspicious() async throws {
        let server = try LabTCPServer.start(.closeImmediately)
        defer { server.stop() }
        let poisoned = try LabDNSServer.start(always: .addresses([IPAddress("127.0.0.2")!], ttl: 10))
        defer { poisoned.stop() }
        let trusted = try LabDNSServer.start(always: .addresses([IPAddress("127.0.0.1")!]))
        defer { trusted.stop() }
        let honest = try LabDNSServer.start(always: .addresses([IPAddress("127.0.0.1")!, IPAddress("127.0.0.3")!]))
        defer { honest.stop() }
        let resolvers = [ResolverConfig(name: "isp", address: poisoned.address),
                         ResolverConfig(name: "honest", address: honest.address),
                         ResolverConfig(name: "reference", address: trusted.address, trusted: true)]
        let url = "tcp://registry.lab.test:\(server.port)"

        let bad = await LabConfig.probe(LabConfig.target(kind: .tcp, url: url, resolver: "isp"), resolvers: resolvers)
        Self.expect(bad, .dns, .dnsSuspiciousAnswer, noSocketsTo: [poisoned.port, trusted.port, server.port])
        #expect(bad.failure?.detail.contains("127.0.0.2") == true, "\(bad.failure?.detail ?? "")")
        #expect(trusted.queryCounts.udp > 0, "the trusted resolver was asked")

        let good = await LabConfig.probe(LabConfig.target(kind: .tcp, url: url, resolver: "honest"), resolvers: resolvers)
        Self.expectSuccess(good, noSocketsTo: [honest.port, trusted.port, server.port])
    }

    @Test func unreachableResolverPortIsDNSError() async throws {
        let port = Self.closedPort()
        let lab = ResolverConfig(name: "gone", address: SocketAddress(ip: IPAddress(Lab.loopback)!, port: port))
        let result = await LabConfig.probe(Self.registryTarget("https://registry.lab.test", resolver: "gone"), resolvers: [lab])
        Self.expect(result, .dns, .dnsError, noSocketsTo: [port])
    }

    // MARK: - DNS over TLS and HTTPS (issue 15)

    /// What an encrypted resolver does, and the reason and words of detail that must follow.
    struct EncryptedDNSCase: Sendable, CustomTestStringConvertible {
        enum Peer: Sendable {
            /// DoT to a port nothing listens on.
            case closedPort
            /// DoT to a server that misbehaves at the TCP level.
            case misbehaving(LabTCPServer.Behaviour)
            /// DoT to a real unbound whose certificate is for dns.lab.test, asked for another tls_name.
            case unboundAskedForAnotherName
            /// DoT to a TLS server answering the first query with the bytes `reply(query)`.
            case fakeDoT(@Sendable ([UInt8]) -> [UInt8])
            /// DoH to nginx (TLS, the lab certificate) at `path`, answering `status` with an HTML page.
            case nginxHTML(path: String, status: Int)
        }
        let name: String
        let peer: Peer
        let reason: FailureReason
        /// What the detail must say, for a person to act on it.
        let words: String
        var timeout = 3.0
        var testDescription: String { name }
    }

    static let encryptedDNSCases: [EncryptedDNSCase] = [
        EncryptedDNSCase(name: "DoT: refused port", peer: .closedPort, reason: .dnsError, words: "cannot connect"),
        EncryptedDNSCase(name: "DoT: TLS reset after the ClientHello", peer: .misbehaving(.resetAfterRead), reason: .dnsError,
                         words: "its TLS was reset during the handshake"),
        EncryptedDNSCase(name: "DoT: certificate for another name (unbound)", peer: .unboundAskedForAnotherName, reason: .dnsError,
                         words: "its certificate is not for other.lab.test"),
        EncryptedDNSCase(name: "DoT: silent server (accepts, never speaks TLS)", peer: .misbehaving(.stallAfterAccept),
                         reason: .dnsTimeout, words: "no answer", timeout: stallTimeout),
        EncryptedDNSCase(name: "DoT: truncated answer (a frame announcing more than is sent)",
                         peer: .fakeDoT { _ in [0x00, 0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }, reason: .dnsError,
                         words: "in the middle of an answer (truncated)"),
        EncryptedDNSCase(name: "DoT: mismatched answer id", peer: .fakeDoT { query in
            var answer = query
            answer[0] ^= 0xff
            answer[2] |= 0x80
            return FaultMatrixTests.framed(answer)
        }, reason: .dnsError, words: "does not match any question asked"),
        EncryptedDNSCase(name: "DoT: mismatched question (same id, another name)", peer: .fakeDoT { query in
            // The first letter of the question's first label changed: app.lab.test → bpp.lab.test.
            var answer = query
            answer[2] |= 0x80
            answer[13] = answer[13] &+ 1
            return FaultMatrixTests.framed(answer)
        }, reason: .dnsError, words: "does not match any question asked"),
        EncryptedDNSCase(name: "DoH: 403 with an HTML page", peer: .nginxHTML(path: "/dns-query", status: 403), reason: .dnsError,
                         words: "it answered HTTP 403 with an HTML page"),
        EncryptedDNSCase(name: "DoH: HTML instead of a DNS message (captive portal)", peer: .nginxHTML(path: "/dns-query", status: 200),
                         reason: .dnsError, words: "instead of application/dns-message"),
    ]

    /// A tcp target named app.lab.test whose resolver `enc` is the case's encrypted resolver: the
    /// probe fails in `dns`, with the reason, by its deadline, its detail naming the resolver
    /// and saying what went wrong, and no socket to the resolver left open.
    @Test(.enabled(if: hasNginx && Lab.has("unbound"), "needs nginx, openssl and unbound"), arguments: encryptedDNSCases)
    func encryptedResolverFault(_ c: EncryptedDNSCase) async throws {
        let certs = try await LabCertificates.shared()
        let cert = try certs.issue("dns", commonName: "dns.lab.test", subjectAltNames: ["DNS:dns.lab.test", "IP:127.0.0.1"])
        let port: UInt16
        var stop: () -> Void = {}
        var kind = EncryptedResolver.Kind.dot
        var tlsName = "dns.lab.test"
        var dohPath = "/dns-query"
        switch c.peer {
        case .closedPort:
            port = Self.closedPort()
        case .misbehaving(let behaviour):
            let server = try LabTCPServer.start(behaviour)
            (port, stop) = (server.port, server.stop)
        case .unboundAskedForAnotherName:
            let unbound = try await LabUnbound.start(records: [("app.lab.test", "127.0.0.1")], tls: cert)
            (port, stop, tlsName) = (unbound.dotPort, unbound.stop, "other.lab.test")
        case .fakeDoT(let reply):
            let server = try Self.fakeDoT(cert, reply: reply)
            (port, stop) = (server.port, server.stop)
        case .nginxHTML(let path, let status):
            let nginx = try await LabNginx.start(tls: cert, locations: [
                NginxLocation(path, status: status, body: "<html><body>Log in</body></html>", headers: [("Content-Type", "text/html")]),
            ])
            (port, stop, kind, dohPath) = (nginx.port, nginx.stop, .doh, path)
        }
        defer { stop() }
        let address = SocketAddress(ip: IPAddress(Lab.loopback)!, port: port)
        let resolver = ResolverConfig(name: "enc", address: nil, encrypted: EncryptedResolver(
            kind: kind, connectAddress: address, serverName: tlsName,
            url: kind == .doh ? EndpointURL(scheme: "https", host: "dns.lab.test", port: port, path: dohPath) : nil,
            caFile: certs.caFile))
        let target = LabConfig.target(kind: .tcp, url: "tcp://app.lab.test:\(FreePort.next())", resolver: "enc")
        let result = await LabConfig.probe(target, resolvers: [resolver], timeout: c.timeout)
        Self.expect(result, .dns, c.reason, timeout: c.timeout, noSocketsTo: [port])
        let detail = result.failure?.detail ?? ""
        #expect(detail.contains("\(kind == .dot ? "DoT" : "DoH") resolver enc"), "names the resolver: \(detail)")
        #expect(detail.contains(c.words), "\(detail)")
        #expect(result.phases.isEmpty, "nothing completed: \(result.phases)")
        if c.timeout == Self.stallTimeout { #expect(result.duration >= 0.95 * c.timeout) }
    }

    /// A DNS message framed for DoT (its length first).
    static func framed(_ message: [UInt8]) -> [UInt8] { [UInt8(message.count >> 8), UInt8(message.count & 0xff)] + message }

    /// A TLS server that answers the first DoT query with the bytes `reply(query)`, then ends
    /// the stream.
    static func fakeDoT(_ cert: CertPair, reply: @escaping @Sendable ([UInt8]) -> [UInt8]) throws -> LabTCPServer {
        let context = try TLSContext.server(certFile: cert.certFile, keyFile: cert.keyFile)
        return try LabTCPServer.start(.custom { socket in
            guard let tls = try? await TLSConnection.accept(over: socket, context: context, deadline: .after(seconds: 5)) else { return }
            guard let query = try? await tls.read(maxBytes: 4096, deadline: .after(seconds: 5)), query.count > 2 else { return }
            try? await tls.write(reply(Array(query.dropFirst(2))), deadline: .after(seconds: 5))
            tls.close()  // the end of the stream right after the reply
        })
    }

    // MARK: - connect (loopback; the namespace cases are in `Network`)

    @Test func closedPortIsTCPRefused() async throws {
        let port = Self.closedPort()
        let result = await LabConfig.probe(LabConfig.target(kind: .tcp, url: "tcp://127.0.0.1:\(port)"))
        Self.expect(result, .connect, .tcpRefused, noSocketsTo: [port])
    }

    // MARK: - proxy

    static func proxyPath(_ url: String) -> EgressPath {
        EgressPath(name: "proxy", kind: .proxy(LabConfig.url(url)))
    }

    struct ProxyCase: Sendable, CustomTestStringConvertible {
        enum Peer: Sendable {
            case tinyproxy(auth: Bool, connectPorts: [UInt16])
            case microsocks(auth: Bool)
            case misbehaving(LabTCPServer.Behaviour)
            case down
        }
        let name: String
        let peer: Peer
        /// The proxy URL's scheme.
        var scheme = "http"
        /// Whether the target's port is a closed one (the proxy cannot reach it).
        var closedTarget = false
        let reason: FailureReason
        var timeout = 3.0
        /// What the detail must say: several cases share a reason, the detail tells them apart.
        var detail: String?
        var testDescription: String { name }
    }

    static let proxyCases: [ProxyCase] = [
        ProxyCase(name: "HTTP proxy down", peer: .down, reason: .proxyConnectFailed, detail: "cannot reach the proxy"),
        ProxyCase(name: "SOCKS5 proxy down", peer: .down, scheme: "socks5h", reason: .proxyConnectFailed, detail: "cannot reach the proxy"),
        ProxyCase(name: "tinyproxy: 407 auth required", peer: .tinyproxy(auth: true, connectPorts: []), reason: .proxyAuthRequired),
        ProxyCase(name: "tinyproxy: 403 port not allowed", peer: .tinyproxy(auth: false, connectPorts: [443]), reason: .proxyRefused),
        ProxyCase(name: "tinyproxy: 500 target refused", peer: .tinyproxy(auth: false, connectPorts: []), closedTarget: true,
                  reason: .proxyRefused),
        ProxyCase(name: "microsocks: auth required, none offered", peer: .microsocks(auth: true), scheme: "socks5h",
                  reason: .proxyAuthRequired),
        ProxyCase(name: "microsocks: target refused (reply 5)", peer: .microsocks(auth: false), scheme: "socks5h",
                  closedTarget: true, reason: .proxyRefused),
        ProxyCase(name: "SOCKS5 proxy answers HTTP garbage", peer: .misbehaving(.respond(Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8))),
                  scheme: "socks5h", reason: .socksError),
        ProxyCase(name: "HTTP proxy answers non-HTTP garbage", peer: .misbehaving(.respond(Array("SSH-2.0-OpenSSH_9.2\r\n".utf8))),
                  reason: .proxyConnectFailed, detail: "the proxy's answer is not HTTP"),
        ProxyCase(name: "HTTP proxy never answers CONNECT", peer: .misbehaving(.stallAfterAccept), reason: .proxyConnectFailed,
                  timeout: stallTimeout, detail: "no answer to CONNECT before the deadline"),
        ProxyCase(name: "SOCKS5 proxy never answers the greeting", peer: .misbehaving(.stallAfterAccept), scheme: "socks5h",
                  reason: .proxyConnectFailed, timeout: stallTimeout, detail: "no answer from the SOCKS5 proxy before the deadline"),
    ]

    @Test(.enabled(if: hasProxies, "needs tinyproxy and microsocks"), arguments: proxyCases)
    func proxyFault(_ c: ProxyCase) async throws {
        let port: UInt16
        var stop: () -> Void = {}
        switch c.peer {
        case .tinyproxy(let auth, let connectPorts):
            let proxy = try await LabTinyproxy.start(basicAuth: auth ? ("egress", "s3cret-pw") : nil, connectPorts: connectPorts)
            (port, stop) = (proxy.port, proxy.stop)
        case .microsocks(let auth):
            let proxy = try await LabMicrosocks.start(credentials: auth ? ("egress", "s3cret-pw") : nil)
            (port, stop) = (proxy.port, proxy.stop)
        case .misbehaving(let behaviour):
            let server = try LabTCPServer.start(behaviour)
            (port, stop) = (server.port, server.stop)
        case .down:
            port = Self.closedPort()
        }
        defer { stop() }
        // Behind the proxy: a port nothing listens on, or one that is never reached.
        let targetPort = c.closedTarget ? Self.closedPort() : 5000
        let target = Self.registryTarget("https://127.0.0.1:\(targetPort)")
        let result = await LabConfig.probe(target, path: Self.proxyPath("\(c.scheme)://127.0.0.1:\(port)"), timeout: c.timeout)
        Self.expect(result, .proxy, c.reason, timeout: c.timeout, noSocketsTo: [port])
        #expect(result.phases[.proxy] == nil)
        if let detail = c.detail {
            #expect(result.failure?.detail.contains(detail) == true, "\(result.failure.map(String.init(describing:)) ?? "success")")
        }
        if c.timeout == Self.stallTimeout {
            #expect(result.duration >= 0.95 * c.timeout, "a silent proxy fails at the deadline, not before: \(result.duration)s")
        }
    }

    // MARK: - TLS

    struct TLSCase: Sendable, CustomTestStringConvertible {
        enum Peer: Sendable {
            case misbehaving(LabTCPServer.Behaviour)
            case nginx(Cert, protocols: [String], ciphers: String?)
        }
        enum Cert: Sendable { case good, expired, wrongName, selfSigned }
        let name: String
        let peer: Peer
        let reason: FailureReason
        var timeout = 3.0
        var testDescription: String { name }
    }

    static let tlsCases: [TLSCase] = [
        TLSCase(name: "stall after ClientHello", peer: .misbehaving(.stallAfterAccept), reason: .tlsTimeout, timeout: stallTimeout),
        TLSCase(name: "reset after ClientHello", peer: .misbehaving(.resetAfterRead), reason: .tlsReset),
        TLSCase(name: "closed before ServerHello", peer: .misbehaving(.closeImmediately), reason: .tlsReset),
        TLSCase(name: "garbage instead of ServerHello",
                peer: .misbehaving(.respond(Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".utf8))),
                reason: .tlsProtocolError),
        TLSCase(name: "expired certificate", peer: .nginx(.expired, protocols: ["TLSv1.2", "TLSv1.3"], ciphers: nil),
                reason: .tlsCertExpired),
        TLSCase(name: "untrusted (self-signed) certificate", peer: .nginx(.selfSigned, protocols: ["TLSv1.2", "TLSv1.3"], ciphers: nil),
                reason: .tlsCertUntrusted),
        TLSCase(name: "certificate for another name", peer: .nginx(.wrongName, protocols: ["TLSv1.2", "TLSv1.3"], ciphers: nil),
                reason: .tlsHostnameMismatch),
        TLSCase(name: "server offering only TLS 1.0", peer: .nginx(.good, protocols: ["TLSv1"], ciphers: "DEFAULT:@SECLEVEL=0"),
                reason: .tlsProtocolError),
    ]

    @Test(arguments: tlsCases)
    func tlsFault(_ c: TLSCase) async throws {
        let certs = try await LabCertificates.shared()
        let port: UInt16
        var stop: () -> Void
        switch c.peer {
        case .misbehaving(let behaviour):
            let server = try LabTCPServer.start(behaviour)
            (port, stop) = (server.port, server.stop)
        case .nginx(let cert, let protocols, let ciphers):
            try #require(Self.hasNginx, "needs nginx and openssl")
            let pair: CertPair
            switch cert {
            case .good: pair = certs.good
            case .expired: pair = certs.expired
            case .wrongName: pair = certs.wrongName
            case .selfSigned: pair = certs.selfSigned
            }
            let nginx = try await LabNginx.start(tls: pair, locations: [.registryV2()], protocols: protocols, ciphers: ciphers)
            (port, stop) = (nginx.port, nginx.stop)
        }
        defer { stop() }
        let target = Self.registryTarget("https://localhost:\(port)", caFile: certs.caFile)
        // localhost comes from /etc/hosts; the good certificate names it.
        let result = await LabConfig.probe(target, timeout: c.timeout)
        Self.expect(result, .tls, c.reason, timeout: c.timeout, noSocketsTo: [port])
        #expect(result.phases[.connect] != nil && result.phases[.tls] == nil)
    }

    // MARK: - HTTP (`/v2/`)

    static let registryHead = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDocker-Distribution-API-Version: registry/2.0\r\n"

    /// Reads the request, then runs `body`; what `body` throws (the client went away) ends it.
    static func afterRequest(_ body: @escaping @Sendable (Socket) async throws -> Void) -> LabTCPServer.Behaviour {
        .custom { connection in
            guard let request = try? await connection.read(maxBytes: 16 * 1024, deadline: .after(seconds: 10)),
                  !request.isEmpty else { return }
            try? await body(connection)
        }
    }

    /// Waits until the client closes (or the server stops).
    static func holdOpen(_ connection: Socket) async throws {
        while try await !connection.read(maxBytes: 4096, deadline: .distantFuture).isEmpty {}
    }

    struct HTTPCase: Sendable, CustomTestStringConvertible {
        enum Peer: Sendable {
            case nginx(NginxLocation)
            case misbehaving(LabTCPServer.Behaviour)
        }
        let name: String
        let peer: Peer
        let reason: FailureReason
        var timeout = 3.0
        /// For a stall: whether the head had arrived (the detail says which).
        var detail: String?
        var testDescription: String { name }
    }

    static let httpCases: [HTTPCase] = [
        HTTPCase(name: "captive portal", peer: .nginx(.captivePortal()), reason: .httpNotRegistry),
        HTTPCase(name: "401 without challenge", peer: .nginx(NginxLocation("/v2/", status: 401, body: "login")), reason: .httpUnauthorized),
        HTTPCase(name: "403 not in the allowlist", peer: .nginx(NginxLocation("/v2/", status: 403, body: "not in the allowlist")),
                 reason: .httpForbidden),
        HTTPCase(name: "404", peer: .nginx(NginxLocation("/v2/", status: 404, body: "no")), reason: .httpNotFound),
        HTTPCase(name: "429", peer: .nginx(NginxLocation("/v2/", status: 429, body: #"{"detail": "Rate limit exceeded"}"#)),
                 reason: .httpRateLimited),
        HTTPCase(name: "500", peer: .nginx(NginxLocation("/v2/", status: 500, body: "boom")), reason: .httpServerError),
        HTTPCase(name: "503", peer: .nginx(NginxLocation("/v2/", status: 503, body: "busy")), reason: .httpServerError),
        HTTPCase(name: "no answer to the request", peer: .misbehaving(.stallAfterAccept), reason: .httpTimeout,
                 timeout: stallTimeout, detail: "awaiting headers"),
        HTTPCase(name: "headers, then a stall", peer: .misbehaving(afterRequest { c in
                    try await c.write(Array((registryHead + "Content-Length: 100\r\n\r\n{").utf8), deadline: .after(seconds: 5))
                    try await holdOpen(c)
                 }), reason: .httpTimeout, timeout: stallTimeout, detail: "stalled mid-body"),
        HTTPCase(name: "a body dripping a byte a second", peer: .misbehaving(afterRequest { c in
                    try await c.write(Array((registryHead + "Content-Length: 1000\r\n\r\n").utf8), deadline: .after(seconds: 5))
                    while true {
                        try await c.write(Array("{".utf8), deadline: .after(seconds: 5))
                        try await Task.sleep(nanoseconds: 1_000_000_000)
                    }
                 }), reason: .httpTimeout, timeout: 2.5, detail: "stalled mid-body"),
        HTTPCase(name: "an endless body", peer: .misbehaving(afterRequest { c in
                    try await c.write(Array((registryHead + "Connection: close\r\n\r\n").utf8), deadline: .after(seconds: 5))
                    let chunk = [UInt8](repeating: UInt8(ascii: " "), count: 64 * 1024)
                    while true { try await c.write(chunk, deadline: .after(seconds: 5)) }
                 }), reason: .httpBadResponse),
        HTTPCase(name: "a 1 MiB header", peer: .misbehaving(afterRequest { c in
                    let huge = registryHead + "X-Padding: " + String(repeating: "a", count: 1 << 20) + "\r\nContent-Length: 2\r\n\r\n{}"
                    try await c.write(Array(huge.utf8), deadline: .after(seconds: 5))
                    try await holdOpen(c)
                 }), reason: .httpBadResponse),
        HTTPCase(name: "garbage bytes", peer: .misbehaving(.respond(Array("SSH-2.0-OpenSSH_9.2\r\n".utf8))), reason: .httpBadResponse),
        HTTPCase(name: "closed mid-headers", peer: .misbehaving(.respond(Array((registryHead + "Content-Ty").utf8))),
                 reason: .httpReset),
        HTTPCase(name: "reset after the request", peer: .misbehaving(.resetAfterRead), reason: .httpReset),
    ]

    @Test(arguments: httpCases)
    func httpFault(_ c: HTTPCase) async throws {
        let port: UInt16
        var stop: () -> Void
        var target: Target
        switch c.peer {
        case .nginx(let location):
            try #require(Self.hasNginx, "needs nginx and openssl")
            let certs = try await LabCertificates.shared()
            let nginx = try await LabNginx.start(tls: certs.good, locations: [location])
            (port, stop) = (nginx.port, nginx.stop)
            target = Self.registryTarget("https://localhost:\(port)", caFile: certs.caFile)
        case .misbehaving(let behaviour):
            let server = try LabTCPServer.start(behaviour)
            (port, stop) = (server.port, server.stop)
            target = Self.registryTarget("http://127.0.0.1:\(port)")
        }
        defer { stop() }
        let result = await LabConfig.probe(target, timeout: c.timeout)
        Self.expect(result, .http, c.reason, timeout: c.timeout, noSocketsTo: [port])
        if let detail = c.detail {
            #expect(result.failure?.detail.contains(detail) == true, "\(result.failure.map(String.init(describing:)) ?? "success")")
            #expect(result.duration >= 0.95 * c.timeout, "a stall ends at the deadline, not before")
        }
    }

    // MARK: - registry: the token flow

    struct TokenCase: Sendable, CustomTestStringConvertible {
        enum Realm: Sendable {
            /// `/token` on the registry's own nginx, answering this.
            case nginx(NginxLocation)
            /// A realm on a port nothing listens on.
            case closedPort
            /// A realm served by a misbehaving server (plain HTTP).
            case misbehaving(LabTCPServer.Behaviour)
        }
        let name: String
        let realm: Realm
        let reason: FailureReason
        var timeout = 3.0
        var testDescription: String { name }
    }

    static let tokenCases: [TokenCase] = [
        TokenCase(name: "token endpoint answers 200 with bad JSON",
                  realm: .nginx(NginxLocation("/token", status: 200, body: "<html>token service</html>",
                                              headers: [("Content-Type", "application/json")])),
                  reason: .httpBadResponse),
        TokenCase(name: "token JSON without a token",
                  realm: .nginx(NginxLocation("/token", status: 200, body: #"{"expires_in": 300}"#,
                                              headers: [("Content-Type", "application/json")])),
                  reason: .httpBadResponse),
        TokenCase(name: "token endpoint answers 403",
                  realm: .nginx(NginxLocation("/token", status: 403, body: #"{"details":"access denied"}"#)),
                  reason: .httpForbidden),
        TokenCase(name: "realm on a closed port", realm: .closedPort, reason: .tcpRefused),
        TokenCase(name: "token endpoint never answers", realm: .misbehaving(.stallAfterAccept), reason: .httpTimeout,
                  timeout: stallTimeout),
    ]

    @Test(.enabled(if: hasNginx, "needs nginx and openssl"), arguments: tokenCases)
    func tokenFault(_ c: TokenCase) async throws {
        let certs = try await LabCertificates.shared()
        let port = FreePort.next()
        var realmServer: LabTCPServer?
        defer { realmServer?.stop() }
        var locations: [NginxLocation] = []
        let realm: String
        switch c.realm {
        case .nginx(let location):
            realm = "https://127.0.0.1:\(port)/token"
            locations.append(location)
        case .closedPort:
            realm = "https://127.0.0.1:\(Self.closedPort())/token"
        case .misbehaving(let behaviour):
            let server = try LabTCPServer.start(behaviour)
            realmServer = server
            realm = "http://127.0.0.1:\(server.port)/token"
        }
        locations.append(.registryV2(status: 401, body: #"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
                                     extraHeaders: [("WWW-Authenticate", #"Bearer realm="\#(realm)",service="registry.lab.test""#)]))
        let nginx = try await LabNginx.start(servers: [NginxServer(port: port, tls: certs.good, locations: locations)])
        defer { nginx.stop() }
        let target = Self.registryTarget("https://127.0.0.1:\(port)", caFile: certs.caFile, images: ["library/alpine:latest"])
        let result = await LabConfig.probe(target, timeout: c.timeout)
        Self.expect(result, .auth, c.reason, timeout: c.timeout, noSocketsTo: [port] + (realmServer.map { [$0.port] } ?? []))
        #expect(result.phases[.http] != nil, "/v2/ answered before the token flow")
    }

    // MARK: - phase timeouts

    /// How far past its phase's timeout a probe may be seen to end. Tight: the overall deadline
    /// in these cases is `phaseTimeoutOverall`, ten times further, so an engine that ignored
    /// the phase's timeout would end there, far outside this.
    static let phaseAllowance = TestTime.allowance(0.75)
    static let phaseTimeoutOverall = 10.0

    /// Asserts that a stalled phase ended the probe at that phase's own timeout (1 s), failed
    /// in that phase with `reason`, and left no socket open.
    static func expectEndedAtPhaseTimeout(_ result: ProbeResult, _ phase: Phase, _ reason: FailureReason, phaseTimeout: Double = 1,
                                          noSocketsTo ports: [UInt16], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.failure?.phase == phase, "\(result.failure.map(String.init(describing:)) ?? "success")", sourceLocation: sourceLocation)
        #expect(result.failure?.reason == reason, "\(result.failure.map(String.init(describing:)) ?? "success")", sourceLocation: sourceLocation)
        #expect(result.duration >= 0.95 * phaseTimeout && result.duration < phaseTimeout + phaseAllowance,
                "the \(phase.rawValue) phase's timeout is \(phaseTimeout)s (overall \(phaseTimeoutOverall)s); the probe ended after \(result.duration)s",
                sourceLocation: sourceLocation)
        expectNoSockets(to: ports, sourceLocation: sourceLocation)
    }

    /// A plain-HTTP registry that answers `/v2/` and then never answers the manifest request.
    static let answersV2ThenStalls = LabTCPServer.Behaviour.custom { connection in
        while let request = try? await connection.read(maxBytes: 16 * 1024, deadline: .after(seconds: 10)), !request.isEmpty {
            guard String(decoding: request, as: UTF8.self).hasPrefix("GET /v2/ ") else {
                try? await holdOpen(connection)
                return
            }
            try? await connection.write(Array((registryHead + "Content-Length: 2\r\n\r\n{}").utf8), deadline: .after(seconds: 5))
        }
    }

    /// Each phase that has a timeout of its own ends the probe at that timeout, with the overall
    /// deadline ten times further: a peer stalls in exactly that phase. (`connect` stalls only
    /// behind an nft drop: `Network`; `blob` behind a throttled CDN: RegistryTests.)
    @Test(arguments: [Phase.dns, .proxy, .tls, .http, .auth, .manifest])
    func aStalledPhaseEndsAtItsOwnTimeout(_ phase: Phase) async throws {
        let timeouts: [Phase: Double] = [phase: 1]
        let overall = Self.phaseTimeoutOverall
        switch phase {
        case .dns:
            let dns = try LabDNSServer.start(always: .silence)
            defer { dns.stop() }
            let result = await LabConfig.probe(Self.registryTarget("https://registry.lab.test", resolver: "lab"),
                                               resolvers: [ResolverConfig(name: "lab", address: dns.address)],
                                               timeout: overall, phaseTimeouts: timeouts)
            Self.expectEndedAtPhaseTimeout(result, .dns, .dnsTimeout, noSocketsTo: [dns.port])
        case .proxy:
            let proxy = try LabTCPServer.start(.stallAfterAccept)
            defer { proxy.stop() }
            let result = await LabConfig.probe(Self.registryTarget("https://127.0.0.1:5000"),
                                               path: Self.proxyPath("http://127.0.0.1:\(proxy.port)"),
                                               timeout: overall, phaseTimeouts: timeouts)
            Self.expectEndedAtPhaseTimeout(result, .proxy, .proxyConnectFailed, noSocketsTo: [proxy.port])
        case .tls, .http:
            let server = try LabTCPServer.start(.stallAfterAccept)
            defer { server.stop() }
            let scheme = phase == .tls ? "https" : "http"
            let result = await LabConfig.probe(Self.registryTarget("\(scheme)://127.0.0.1:\(server.port)"),
                                               timeout: overall, phaseTimeouts: timeouts)
            Self.expectEndedAtPhaseTimeout(result, phase, phase == .tls ? .tlsTimeout : .httpTimeout, noSocketsTo: [server.port])
        case .auth:
            try #require(Self.hasNginx, "needs nginx and openssl")
            let certs = try await LabCertificates.shared()
            let realmServer = try LabTCPServer.start(.stallAfterAccept)
            defer { realmServer.stop() }
            let port = FreePort.next()
            let challenge = #"Bearer realm="http://127.0.0.1:\#(realmServer.port)/token",service="registry.lab.test""#
            let nginx = try await LabNginx.start(servers: [NginxServer(port: port, tls: certs.good, locations: [
                .registryV2(status: 401, body: "{}", extraHeaders: [("WWW-Authenticate", challenge)]),
            ])])
            defer { nginx.stop() }
            let target = Self.registryTarget("https://127.0.0.1:\(port)", caFile: certs.caFile, images: ["library/alpine:latest"])
            let result = await LabConfig.probe(target, timeout: overall, phaseTimeouts: timeouts)
            Self.expectEndedAtPhaseTimeout(result, .auth, .httpTimeout, noSocketsTo: [port, realmServer.port])
        case .manifest:
            let server = try LabTCPServer.start(Self.answersV2ThenStalls)
            defer { server.stop() }
            let target = Self.registryTarget("http://127.0.0.1:\(server.port)", images: ["lab/tool:1"])
            let result = await LabConfig.probe(target, timeout: overall, phaseTimeouts: timeouts)
            Self.expectEndedAtPhaseTimeout(result, .manifest, .httpTimeout, noSocketsTo: [server.port])
            #expect(result.phases[.http] != nil, "/v2/ answered; the manifest request stalled")
        default:
            Issue.record("no stall for the \(phase.rawValue) phase")
        }
    }

    // MARK: - what only a network can do: the namespace

    /// Blackholes, resets in flight and ICMP unreachables, from nft rules and routes in a network
    /// namespace of the matrix's own (`FaultSite`). Needs root. Serialized: every case builds the
    /// same namespace, named after the pid, and removes it.
    @Suite(.serialized, .enabled(if: Lab.isRoot && Lab.has("ip") && Lab.has("nft") && FaultMatrixTests.hasNginx,
                                 "needs root, ip, nft, nginx and openssl: SKIPPED, not passed"))
    struct Network {
        struct Case: Sendable, CustomTestStringConvertible {
            let name: String
            let phase: Phase
            let reason: FailureReason?
            var timeout = 3.0
            var phaseTimeouts: [Phase: Double] = [:]
            /// What the failure's detail must say (the errno behind the reason, say).
            var detail: String?
            /// The nft rules the case relies on, as (protocol, port): each must have counted a packet.
            var rules: [(String, UInt16)] = []
            var testDescription: String { name }
        }

        static let cases: [Case] = [
            Case(name: "control: the open port connects", phase: .connect, reason: nil),
            Case(name: "connect blackholed (nft drop)", phase: .connect, reason: .tcpTimeout, timeout: FaultMatrixTests.phaseTimeoutOverall,
                 phaseTimeouts: [.connect: 1], detail: "timed out", rules: [("tcp", FaultSite.Port.drop)]),
            Case(name: "connect answered by nft `reject with tcp reset`", phase: .connect, reason: .tcpRefused,
                 detail: "connection refused", rules: [("tcp", FaultSite.Port.synReset)]),
            Case(name: "route `unreachable` (ICMP host unreachable)", phase: .connect, reason: .hostUnreachable, detail: "host unreachable"),
            Case(name: "route `prohibit` (ICMP admin prohibited)", phase: .connect, reason: .hostUnreachable, detail: "host unreachable"),
            // The detail tells ENETUNREACH from any other errno, which also maps to net_unreachable.
            Case(name: "no route beyond the namespace (ICMP net unreachable)", phase: .connect, reason: .netUnreachable,
                 detail: "network unreachable"),
            Case(name: "ClientHello reset in flight (nft, SNI filtering)", phase: .tls, reason: .tlsReset,
                 rules: [("tcp", FaultSite.Port.dataReset)]),
            Case(name: "ClientHello dropped in flight (nft)", phase: .tls, reason: .tlsTimeout, timeout: FaultMatrixTests.phaseTimeoutOverall,
                 phaseTimeouts: [.tls: 1], rules: [("tcp", FaultSite.Port.dataDrop)]),
            Case(name: "resolver blackholed (nft drop, UDP and TCP)", phase: .dns, reason: .dnsTimeout, timeout: 1,
                 rules: [("udp", FaultSite.Port.drop)]),
            Case(name: "token realm on a blackholed host", phase: .auth, reason: .tcpTimeout, timeout: FaultMatrixTests.phaseTimeoutOverall,
                 phaseTimeouts: [.connect: 1], rules: [("tcp", FaultSite.Port.drop)]),
        ]

        @Test(arguments: cases)
        func networkFault(_ c: Case) async throws {
            let certs = try await LabCertificates.shared()
            try await FaultSite.with(nginx: c.phase == .tls || c.reason == nil ? certs.good : nil) { site in
                var ports: [UInt16] = []
                let result: ProbeResult
                switch (c.phase, c.reason) {
                case (.connect, nil):
                    ports = [FaultSite.Port.open]
                    result = await LabConfig.probe(LabConfig.target(kind: .tcp, url: "tcp://\(site.service):\(FaultSite.Port.open)"))
                case (.connect, .tcpTimeout?):
                    ports = [FaultSite.Port.drop]
                    result = await LabConfig.probe(LabConfig.target(kind: .tcp, url: "tcp://\(site.service):\(FaultSite.Port.drop)"),
                                                   timeout: c.timeout, phaseTimeouts: c.phaseTimeouts)
                case (.connect, .tcpRefused?):
                    ports = [FaultSite.Port.synReset]
                    result = await LabConfig.probe(LabConfig.target(kind: .tcp, url: "tcp://\(site.service):\(FaultSite.Port.synReset)"))
                case (.connect, .hostUnreachable?):
                    let address = c.name.contains("prohibit") ? site.prohibitedRoute : site.unreachableRoute
                    ports = [80]
                    result = await LabConfig.probe(LabConfig.target(kind: .tcp, url: "tcp://\(address):80"))
                case (.connect, .netUnreachable?):
                    ports = [80]
                    result = await LabConfig.probe(LabConfig.target(kind: .tcp, url: "tcp://\(site.noRoute):80"))
                case (.tls, let reason?):
                    let port = reason == .tlsReset ? FaultSite.Port.dataReset : FaultSite.Port.dataDrop
                    ports = [port]
                    result = await LabConfig.probe(FaultMatrixTests.registryTarget("https://\(site.service):\(port)", caFile: certs.caFile),
                                                   timeout: c.timeout, phaseTimeouts: c.phaseTimeouts)
                    #expect(result.phases[.connect] != nil, "the TCP handshake passed; the ClientHello did not")
                case (.dns, _):
                    ports = [FaultSite.Port.drop]
                    let resolver = ResolverConfig(name: "far", address: SocketAddress(ip: site.service, port: FaultSite.Port.drop))
                    result = await LabConfig.probe(FaultMatrixTests.registryTarget("https://registry.lab.test", resolver: "far"),
                                                   resolvers: [resolver], timeout: c.timeout)
                case (.auth, _):
                    let port = FreePort.next()
                    let realm = "https://\(site.service):\(FaultSite.Port.drop)/token"
                    let nginx = try await LabNginx.start(servers: [NginxServer(port: port, tls: certs.good, locations: [
                        .registryV2(status: 401, body: "{}",
                                    extraHeaders: [("WWW-Authenticate", #"Bearer realm="\#(realm)",service="registry.lab.test""#)]),
                    ])])
                    defer { nginx.stop() }
                    ports = [port, FaultSite.Port.drop]
                    result = await LabConfig.probe(FaultMatrixTests.registryTarget("https://127.0.0.1:\(port)", caFile: certs.caFile,
                                                                                  images: ["library/alpine:latest"]),
                                                   timeout: c.timeout, phaseTimeouts: c.phaseTimeouts)
                default:
                    Issue.record("no set-up for \(c.name)")
                    return
                }
                if let detail = c.detail {
                    #expect(result.failure?.detail.contains(detail) == true, "\(result.failure.map(String.init(describing:)) ?? "success")")
                }
                for (proto, port) in c.rules {
                    #expect(try site.packets(proto, port: port) > 0, "the \(proto) rule for port \(port) counted no packet")
                }
                if let reason = c.reason, !c.phaseTimeouts.isEmpty {
                    // A phase's own timeout (1 s) ends it, the overall deadline (10 s) far away.
                    FaultMatrixTests.expectEndedAtPhaseTimeout(result, c.phase, reason, noSocketsTo: ports)
                } else if let reason = c.reason {
                    FaultMatrixTests.expect(result, c.phase, reason, timeout: c.timeout, noSocketsTo: ports)
                } else {
                    FaultMatrixTests.expectSuccess(result, noSocketsTo: ports)
                }
            }
        }
    }
}

/// The fault matrix's network namespace: one veth pair to the test's own namespace, and behind
/// it addresses where nft rules and routes misbehave.
///
/// ```
///   test's namespace                              egress-fm-<pid>  (ip_forward on, no ICMP rate limit)
///   egf-<pid> B+1/30 ───── veth ───── egfr-<pid> B+2/30
///   route B+8/29 via B+2                          lo: service B+9 (nginx with TLS on dataReset, dataDrop, open)
///                                                 route unreachable B+10   → ICMP host unreachable
///                                                 route prohibit    B+11   → ICMP admin prohibited
///                                                 no route to       B+12   → ICMP net unreachable
///   nft input on the service: drop (TCP and UDP) | reject with tcp reset | reset or drop the first
///   segment carrying data (PSH: the ClientHello), after a handshake that passed
/// ```
///
/// B is a 16-address block of 10.214.0.0/16 picked from the pid, away from `LabRemoteSite`'s
/// 10.213.0.0/16. Nothing is routed beyond the namespace. `destroy()` deletes the veth (and the
/// route through it) and the namespace with whatever runs in it.
final class FaultSite: Sendable {
    enum Port {
        /// TCP and UDP dropped.
        static let drop: UInt16 = 7441
        /// The SYN answered with a RST by nft.
        static let synReset: UInt16 = 7442
        /// nginx; segments with data reset by nft.
        static let dataReset: UInt16 = 7443
        /// nginx; segments with data dropped by nft.
        static let dataDrop: UInt16 = 7444
        /// nginx; nothing in the way.
        static let open: UInt16 = 7445
    }

    static let namespacePrefix = "egress-fm-"
    static let linkPrefix = "egf-"

    let netns: LabNetns
    let hostLink: String
    let base: IPAddress
    private let nginx: Mutex<LabProcess?> = Mutex(nil)
    private let destroyed = Mutex(false)

    var service: IPAddress { base.adding(9) }
    var unreachableRoute: IPAddress { base.adding(10) }
    var prohibitedRoute: IPAddress { base.adding(11) }
    var noRoute: IPAddress { base.adding(12) }

    private init(netns: LabNetns, hostLink: String, base: IPAddress) {
        self.netns = netns
        self.hostLink = hostLink
        self.base = base
    }

    deinit { destroy() }

    /// Builds the site (and nginx in it when `nginx` names a certificate), runs `body`, and
    /// destroys the site whether `body` returned or threw.
    static func with<T: Sendable>(nginx pair: CertPair? = nil, _ body: (FaultSite) async throws -> T) async throws -> T {
        let site = try await Lab.offPool { () throws -> FaultSite in
            removeStale()
            return try build()
        }
        let result: Result<T, any Error>
        do {
            if let pair { try await site.startNginx(pair) }
            result = .success(try await body(site))
        } catch {
            result = .failure(error)
        }
        _ = try? await Lab.offPool { site.destroy() }
        return try result.get()
    }

    private static func build() throws -> FaultSite {
        let pid = getpid()
        let base = try freeBlock(pid: pid)
        let netns = try LabNetns.create(namespacePrefix + "\(pid)")
        let site = FaultSite(netns: netns, hostLink: linkPrefix + "\(pid)", base: base)
        do {
            try site.configure(peer: "egfr-\(pid)")
        } catch {
            site.destroy()
            throw error
        }
        return site
    }

    private func configure(peer: String) throws {
        let ns = netns.name
        try Lab.run("ip", ["link", "add", hostLink, "type", "veth", "peer", "name", peer, "netns", ns])
        try Lab.run("ip", ["addr", "add", "\(base.adding(1))/30", "dev", hostLink])
        try Lab.run("ip", ["link", "set", hostLink, "up"])
        try Lab.run("ip", ["-n", ns, "addr", "add", "\(base.adding(2))/30", "dev", peer])
        try Lab.run("ip", ["-n", ns, "link", "set", peer, "up"])
        try Lab.run("ip", ["-n", ns, "addr", "add", "\(service)/32", "dev", "lo"])
        try Lab.run("ip", ["route", "add", "\(base.adding(8))/29", "via", "\(base.adding(2))", "dev", hostLink])
        try Lab.run("ip", ["-n", ns, "route", "add", "unreachable", "\(unreachableRoute)/32"])
        try Lab.run("ip", ["-n", ns, "route", "add", "prohibit", "\(prohibitedRoute)/32"])
        // A router answers what it cannot forward with ICMP; rate limiting off, so back-to-back
        // cases each get theirs.
        try netns.run("sysctl", ["-qw", "net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0"])
        let ruleset = """
            table inet egress_fm {
                chain input {
                    type filter hook input priority 0; policy accept;
                    ip daddr \(service) tcp dport \(Port.drop) counter drop
                    ip daddr \(service) udp dport \(Port.drop) counter drop
                    ip daddr \(service) tcp dport \(Port.synReset) counter reject with tcp reset
                    ip daddr \(service) tcp dport \(Port.dataReset) tcp flags & psh == psh counter reject with tcp reset
                    ip daddr \(service) tcp dport \(Port.dataDrop) tcp flags & psh == psh counter drop
                }
            }

            """
        let file = try Lab.makeDirectory("nft-fm") + "/ruleset.nft"
        try ruleset.write(toFile: file, atomically: true, encoding: .utf8)
        try netns.run("nft", ["-f", file])
    }

    /// Packets the rule for `proto` (`tcp`, `udp`) and `port` counted so far.
    func packets(_ proto: String, port: UInt16) throws -> Int {
        let listing = try netns.run("nft", ["list", "table", "inet", "egress_fm"])
        return listing.split(separator: "\n").filter { $0.contains("\(proto) dport \(port) ") }.reduce(0) { total, line in
            let fields = line.split(separator: " ")
            guard let i = fields.firstIndex(of: "packets"), i + 1 < fields.count, let n = Int(fields[i + 1]) else { return total }
            return total + n
        }
    }

    /// nginx inside, with `pair`, a registry `/v2/` on the three TLS ports of the service address.
    func startNginx(_ pair: CertPair) async throws {
        let directory = try Lab.makeDirectory("nginx-fm")
        try FileManager.default.createDirectory(atPath: directory + "/tmp", withIntermediateDirectories: true)
        let servers = [Port.dataReset, Port.dataDrop, Port.open].map { NginxServer(port: $0, tls: pair, locations: [.registryV2()]) }
        let config = LabNginx.renderConfig(servers: servers, directory: directory)
            .replacingOccurrences(of: "listen \(Lab.loopback):", with: "listen \(service):")
        try config.write(toFile: directory + "/nginx.conf", atomically: true, encoding: .utf8)
        let process = try netns.spawn("nginx", arguments: [
            "-p", directory + "/", "-c", directory + "/nginx.conf", "-e", directory + "/error.log",
            "-g", "daemon off; pid \(directory)/nginx.pid;",
        ], directory: directory, name: "nginx")
        nginx.withLock { $0 = process }
        // Ready when a TCP handshake completes on every port (nft lets handshakes through).
        let deadline = Deadline.after(seconds: 10)
        for port in [Port.dataReset, Port.dataDrop, Port.open] {
            let address = SocketAddress(ip: service, port: port)
            while true {
                if !process.isRunning { throw LabError("nginx exited in the namespace\n\(process.logTail())") }
                let socket = try Socket.tcp(family: address.addressFamily)
                let connected = (try? await socket.connect(to: address, deadline: deadline.capped(atSecondsFromNow: 0.5))) != nil
                socket.close()
                if connected { break }
                if deadline.hasPassed { throw LabError("nginx did not listen on \(address)\n\(process.logTail())") }
                try await Task.sleep(nanoseconds: 20_000_000)
            }
        }
    }

    /// Stops nginx, deletes the veth (its route goes with it) and the namespace. Blocks for a
    /// few `ip` runs. Later calls do nothing.
    func destroy() {
        let first = destroyed.withLock { was -> Bool in
            defer { was = true }
            return !was
        }
        guard first else { return }
        nginx.withLock { $0 }?.stop()
        _ = try? Lab.run("ip", ["link", "del", hostLink])
        netns.delete()
    }

    /// The first 16-address block of 10.214.0.0/16, from the pid's, that no interface uses.
    private static func freeBlock(pid: pid_t) throws -> IPAddress {
        let inUse = (try? Lab.run("ip", ["-o", "-4", "addr", "show"])) ?? ""
        for attempt in 0..<16 {
            let block = (Int(pid) + attempt * 257) % 4096
            let base = IPAddress("10.214.\(block / 16).\((block % 16) * 16)")!
            if !inUse.contains(" 10.214.\(block / 16).\((block % 16) * 16 + 1)/") { return base }
        }
        throw LabError("no free address block in 10.214.0.0/16")
    }

    /// Removes namespaces `egress-fm-<pid>` and links `egf-<pid>` whose pid no longer runs, or
    /// is this process's (left by an earlier process with the same pid, or a case that crashed).
    static func removeStale() {
        func isStale(_ pidText: Substring) -> Bool {
            guard let pid = pid_t(pidText), pid > 0 else { return false }
            if pid == getpid() { return true }
            return kill(pid, 0) != 0 && errno == ESRCH
        }
        if let list = try? Lab.run("ip", ["netns", "list"]) {
            for line in list.split(whereSeparator: \.isNewline) {
                let name = line.split(separator: " ").first.map(String.init) ?? ""
                if name.hasPrefix(namespacePrefix), isStale(name.dropFirst(namespacePrefix.count)) {
                    if let pids = try? Lab.run("ip", ["netns", "pids", name]) {
                        for pid in pids.split(whereSeparator: \.isNewline).compactMap({ pid_t($0) }) where pid > 1 {
                            _ = kill(pid, SIGKILL)
                        }
                    }
                    _ = try? Lab.run("ip", ["netns", "del", name])
                }
            }
        }
        if let links = try? Lab.run("ip", ["-o", "link", "show"]) {
            for line in links.split(whereSeparator: \.isNewline) {
                let fields = line.split(separator: " ")
                guard fields.count > 1 else { continue }
                let name = fields[1].split(separator: "@").first.map(String.init)?.trimmingCharacters(in: [":"]) ?? ""
                if name.hasPrefix(linkPrefix), isStale(name.dropFirst(linkPrefix.count)) {
                    _ = try? Lab.run("ip", ["link", "del", name])
                }
            }
        }
    }
}

extension IPAddress {
    /// An IPv4 address plus `n` in its last octet (the site's block never crosses an octet).
    fileprivate func adding(_ n: UInt8) -> IPAddress {
        let b = bytes
        return IPAddress("\(b[0]).\(b[1]).\(b[2]).\(b[3] + n)")!
    }
}
