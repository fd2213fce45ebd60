import Foundation
import Testing
@testable import EgressMonitor
import EgressNet
import EgressTestSupport

/// Egress paths against real peers: interface and source-address paths through network
/// namespaces the tests build (two veth uplinks to a "remote" namespace, one of them
/// blackholed by nft), HTTP CONNECT through tinyproxy, SOCKS5 through microsocks. Every case
/// asserts the phase and reason, and that the probe ended by its deadline.
@Suite struct PathTests {
    /// Asserts success, the phases that ran, and that the probe ended by its deadline.
    static func expectSuccess(_ result: ProbeResult, phases: Set<Phase>, timeout: Double = 3,
                              sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.success, "\(result.failure.map(String.init(describing:)) ?? "success")", sourceLocation: sourceLocation)
        #expect(Set(result.phases.keys) == phases, "phases \(result.phases.keys.sorted())", sourceLocation: sourceLocation)
        #expect(result.duration < timeout + ProbeTests.schedulingAllowance,
                "probe ran \(result.duration)s past a \(timeout)s deadline", sourceLocation: sourceLocation)
    }

    static func path(_ name: String, proxy: String) -> EgressPath {
        EgressPath(name: name, kind: .proxy(LabConfig.url(proxy)))
    }

    // MARK: paths bound to an interface or a source address, in network namespaces

    /// Needs root for `ip netns`, veth pairs, `ip rule` and nft in a namespace. Serialized: its
    /// tests build the same namespace (named after the pid) one after the other.
    @Suite(.serialized, .enabled(if: Lab.isRoot && Lab.has("ip") && Lab.has("nft") && Lab.has("nginx")
                                 && Lab.has("dnsmasq") && Lab.has("openssl"),
                                 "needs root, ip, nft, nginx, dnsmasq and openssl: SKIPPED, not passed"))
    struct Namespaces {
        static let registryPort: UInt16 = 5443
        static let dnsPort: UInt16 = 53
        /// The connect (and dns) phase timeout of probes expected to be blackholed.
        static let phaseTimeouts: [Phase: Double] = [.connect: 1, .dns: 1]

        static func vpn(_ uplink: LabRemoteSite.Uplink) -> EgressPath {
            EgressPath(name: "vpn-\(uplink.interface)", kind: .interface(uplink.interface))
        }

        static func source(_ uplink: LabRemoteSite.Uplink) -> EgressPath {
            EgressPath(name: "src-\(uplink.interface)", kind: .sourceAddress(uplink.localAddress))
        }

        /// Packets the remote's nft rule dropped (TCP and UDP) so far.
        static func dropped(_ site: LabRemoteSite) async throws -> Int {
            let listing = try await site.netns.runAsync("nft", ["list", "table", "inet", "egress_lab"])
            return listing.split(separator: "\n").filter { $0.contains("drop") }.reduce(0) { total, line in
                let fields = line.split(separator: " ")
                guard let i = fields.firstIndex(of: "packets"), i + 1 < fields.count, let n = Int(fields[i + 1]) else { return total }
                return total + n
            }
        }

        /// The registry on the remote's service address, named registry.lab.test by a dnsmasq on
        /// loopback (a local stub: asked directly whatever the path's binding), probed over the
        /// good uplink, the blackholed one, and the routing table's own choice.
        @Test func interfacePathLeavesThroughItsInterface() async throws {
            let certs = try await LabCertificates.shared()
            try await LabRemoteSite.with(blackholedPorts: [Self.registryPort, Self.dnsPort]) { site in
                let nginx = try await site.startNginx(tls: certs.good, locations: [.registryV2()], port: Self.registryPort)
                defer { nginx.stop() }
                let dns = try await LabDnsmasq.start(records: [.host(name: "registry.lab.test", ips: ["\(site.serviceAddress)"])])
                defer { dns.stop() }
                let stub = ResolverConfig(name: "stub", address: dns.address)
                let target = LabConfig.target(url: "https://registry.lab.test:\(Self.registryPort)", caFile: certs.caFile, resolver: "stub")

                async let viaUp1 = LabConfig.probe(target, resolvers: [stub], path: Self.vpn(site.up1), phaseTimeouts: Self.phaseTimeouts)
                async let viaUp2 = LabConfig.probe(target, resolvers: [stub], path: Self.vpn(site.up2), phaseTimeouts: Self.phaseTimeouts)
                let (up1, up2) = await (viaUp1, viaUp2)

                Self.expectSuccessOnSite(up1, site, phases: [.dns, .connect, .tls, .http])
                ProbeTests.expectFailure(up2, .connect, .tcpTimeout)
                // The loopback stub answered although the socket of this path is bound to eg2.
                #expect(up2.phases[.dns] != nil)
                #expect(up2.duration >= 0.99, "the connect phase timeout is 1 s")
                // Only up2's SYNs could have met the drop rule: the failure is the blackhole's.
                #expect(try await Self.dropped(site) > 0)
            }
        }

        /// `source_address` with source-based policy routing: an `ip rule` sends what comes from
        /// up1's address through up1, while the main table prefers the blackholed up2.
        @Test func sourceAddressPathFollowsPolicyRouting() async throws {
            let certs = try await LabCertificates.shared()
            try await LabRemoteSite.with(blackholedPorts: [Self.registryPort, Self.dnsPort]) { site in
                let nginx = try await site.startNginx(tls: certs.good, locations: [.registryV2()], port: Self.registryPort)
                defer { nginx.stop() }
                let dns = try await LabDnsmasq.start(records: [.host(name: "registry.lab.test", ips: ["\(site.serviceAddress)"])])
                defer { dns.stop() }
                let stub = ResolverConfig(name: "stub", address: dns.address)
                let target = LabConfig.target(url: "https://registry.lab.test:\(Self.registryPort)", caFile: certs.caFile, resolver: "stub")

                async let fromUp1 = LabConfig.probe(target, resolvers: [stub], path: Self.source(site.up1), phaseTimeouts: Self.phaseTimeouts)
                async let fromUp2 = LabConfig.probe(target, resolvers: [stub], path: Self.source(site.up2), phaseTimeouts: Self.phaseTimeouts)
                async let unbound = LabConfig.probe(target, resolvers: [stub], path: .direct, phaseTimeouts: Self.phaseTimeouts)
                let (up1, up2, direct) = await (fromUp1, fromUp2, unbound)

                Self.expectSuccessOnSite(up1, site, phases: [.dns, .connect, .tls, .http])
                ProbeTests.expectFailure(up2, .connect, .tcpTimeout)
                // Without a binding the main table picks up2: the success above is the rule's.
                ProbeTests.expectFailure(direct, .connect, .tcpTimeout)
                #expect(try await Self.dropped(site) > 0)
            }
        }

        /// A resolver reachable only through the VPN (dnsmasq on the remote's service address,
        /// its port blackholed on up2): DNS queries leave the way the path says, as connects do.
        @Test func dnsFollowsThePath() async throws {
            let certs = try await LabCertificates.shared()
            try await LabRemoteSite.with(blackholedPorts: [Self.registryPort, Self.dnsPort]) { site in
                let nginx = try await site.startNginx(tls: certs.good, locations: [.registryV2()], port: Self.registryPort)
                defer { nginx.stop() }
                let dns = try await site.startDnsmasq(records: [.host(name: "registry.lab.test", ips: ["\(site.serviceAddress)"])],
                                                      port: Self.dnsPort)
                defer { dns.stop() }
                let vpnDNS = ResolverConfig(name: "vpn-dns", address: SocketAddress(ip: site.serviceAddress, port: Self.dnsPort))
                let target = LabConfig.target(url: "https://registry.lab.test:\(Self.registryPort)", caFile: certs.caFile, resolver: "vpn-dns")
                let before = try await Self.dropped(site)

                async let ifUp1 = LabConfig.probe(target, resolvers: [vpnDNS], path: Self.vpn(site.up1), phaseTimeouts: Self.phaseTimeouts)
                async let ifUp2 = LabConfig.probe(target, resolvers: [vpnDNS], path: Self.vpn(site.up2), phaseTimeouts: Self.phaseTimeouts)
                async let srcUp1 = LabConfig.probe(target, resolvers: [vpnDNS], path: Self.source(site.up1), phaseTimeouts: Self.phaseTimeouts)
                async let srcUp2 = LabConfig.probe(target, resolvers: [vpnDNS], path: Self.source(site.up2), phaseTimeouts: Self.phaseTimeouts)
                let (i1, i2, s1, s2) = await (ifUp1, ifUp2, srcUp1, srcUp2)

                Self.expectSuccessOnSite(i1, site, phases: [.dns, .connect, .tls, .http])
                Self.expectSuccessOnSite(s1, site, phases: [.dns, .connect, .tls, .http])
                for result in [i2, s2] {
                    ProbeTests.expectFailure(result, .dns, .dnsTimeout)
                    #expect(result.phases.isEmpty)
                    #expect(result.duration >= 0.99, "the dns phase timeout is 1 s")
                }
                #expect(try await Self.dropped(site) > before)
            }
        }

        /// An interface that does not exist: the path cannot be set up, whichever socket finds
        /// out first — the DNS query's (a resolver that is not on loopback follows the path) or
        /// the connect's.
        @Test func missingInterfaceWithARemoteResolverIsPathSetupFailed() async throws {
            let certs = try await LabCertificates.shared()
            try await LabRemoteSite.with(blackholedPorts: []) { site in
                let dns = try await site.startDnsmasq(records: [.host(name: "registry.lab.test", ips: ["\(site.serviceAddress)"])],
                                                      port: Self.dnsPort)
                defer { dns.stop() }
                let vpnDNS = ResolverConfig(name: "vpn-dns", address: SocketAddress(ip: site.serviceAddress, port: Self.dnsPort))
                let missing = "egnone-\(getpid() % 100_000)"
                let target = LabConfig.target(url: "https://registry.lab.test:\(Self.registryPort)", caFile: certs.caFile, resolver: "vpn-dns")
                let result = await LabConfig.probe(target, resolvers: [vpnDNS],
                                                   path: EgressPath(name: "vpn", kind: .interface(missing)))
                ProbeTests.expectFailure(result, .connect, .pathSetupFailed)
                #expect(result.failure?.detail.contains(missing) == true, "\(result.failure?.detail ?? "")")
                #expect(result.failure?.detail.contains("no such interface") == true, "\(result.failure?.detail ?? "")")
            }
        }

        static func expectSuccessOnSite(_ result: ProbeResult, _ site: LabRemoteSite, phases: Set<Phase>,
                                        sourceLocation: SourceLocation = #_sourceLocation) {
            PathTests.expectSuccess(result, phases: phases, sourceLocation: sourceLocation)
            #expect(result.address == "\(site.serviceAddress):\(registryPort)", sourceLocation: sourceLocation)
            #expect(result.httpStatus == 200, sourceLocation: sourceLocation)
        }
    }

    // MARK: paths that cannot be set up (no root, no packet sent)

    @Test func missingInterfaceIsPathSetupFailed() async throws {
        let server = try LabTCPServer.start(.closeImmediately)
        defer { server.stop() }
        let missing = "egnone-\(getpid() % 100_000)"
        let result = await LabConfig.probe(LabConfig.target(kind: .tcp, url: "tcp://127.0.0.1:\(server.port)"),
                                           path: EgressPath(name: "vpn", kind: .interface(missing)))
        ProbeTests.expectFailure(result, .connect, .pathSetupFailed)
        #expect(result.failure?.detail.contains("path vpn") == true, "\(result.failure?.detail ?? "")")
        #expect(result.failure?.detail.contains("SO_BINDTODEVICE(\(missing)): no such interface") == true,
                "\(result.failure?.detail ?? "")")
        #expect(result.phases.isEmpty)
    }

    @Test func sourceAddressNotOfThisHostIsPathSetupFailed() async throws {
        let server = try LabTCPServer.start(.closeImmediately)
        defer { server.stop() }
        // TEST-NET-3: never an address of this host, so bind fails before any packet is sent.
        let result = await LabConfig.probe(LabConfig.target(kind: .tcp, url: "tcp://127.0.0.1:\(server.port)"),
                                           path: EgressPath(name: "src", kind: .sourceAddress(IPAddress("203.0.113.7")!)))
        ProbeTests.expectFailure(result, .connect, .pathSetupFailed)
        #expect(result.failure?.detail.contains("203.0.113.7") == true, "\(result.failure?.detail ?? "")")
        #expect(result.phases.isEmpty)
    }
}

// MARK: HTTP CONNECT through tinyproxy

extension PathTests {
    static let hasTinyproxy = Lab.has("tinyproxy") && Lab.has("docker-registry") && Lab.has("dnsmasq") && Lab.has("openssl")
    static let hasMicrosocks = Lab.has("microsocks") && Lab.has("docker-registry") && Lab.has("dnsmasq") && Lab.has("openssl")

    /// A TLS registry on loopback, and a lab resolver that knows registry.lab.test but REFUSES
    /// `localhost`: a target named `localhost` that succeeds through a proxy was resolved by
    /// the proxy (from its /etc/hosts), not by the agent.
    struct Upstream {
        let certs: LabCertificates
        let registry: LabRegistry
        let dns: LabDnsmasq
        var lab: ResolverConfig { ResolverConfig(name: "lab", address: dns.address) }

        static func start() async throws -> Upstream {
            let certs = try await LabCertificates.shared()
            let registry = try await LabRegistry.start(tls: certs.good)
            let dns = try await LabDnsmasq.start(records: [.host(name: "registry.lab.test", ips: ["127.0.0.1"])])
            return Upstream(certs: certs, registry: registry, dns: dns)
        }

        /// `https://HOST:PORT` of the registry, with the lab CA and resolver.
        func target(host: String = "localhost", port: UInt16? = nil) -> Target {
            LabConfig.target(url: "https://\(host):\(port ?? registry.port)", caFile: certs.caFile, resolver: "lab")
        }

        func probe(_ target: Target, over path: EgressPath) async -> ProbeResult {
            await LabConfig.probe(target, resolvers: [lab], path: path)
        }

        func stop() {
            registry.stop()
            dns.stop()
        }
    }

    @Test(.enabled(if: hasTinyproxy, "needs tinyproxy, docker-registry, dnsmasq and openssl"))
    func openHTTPProxyTunnelsTLSAndV2() async throws {
        let upstream = try await Upstream.start()
        defer { upstream.stop() }
        let proxy = try await LabTinyproxy.start()
        defer { proxy.stop() }
        let path = Self.path("corp", proxy: proxy.url())

        // Control: the agent itself cannot resolve `localhost` with the lab resolver.
        let control = await upstream.probe(upstream.target(), over: .direct)
        ProbeTests.expectFailure(control, .dns, .dnsRefused)

        let result = await upstream.probe(upstream.target(), over: path)
        Self.expectSuccess(result, phases: [.connect, .proxy, .tls, .http])
        #expect(result.address == "127.0.0.1:\(proxy.port)", "the connect phase reaches the proxy")
        #expect(result.httpStatus == 200)
        #expect(result.tls?.version == "TLSv1.3")

        // The proxy cannot reach the target: tinyproxy answers `500 Unable to connect`.
        let closed = FreePort.next()
        let refused = await upstream.probe(upstream.target(port: closed), over: path)
        ProbeTests.expectFailure(refused, .proxy, .proxyRefused)
        #expect(refused.failure?.detail.contains("500") == true, "\(refused.failure?.detail ?? "")")
        #expect(refused.phases[.connect] != nil && refused.phases[.proxy] == nil)
    }

    @Test(.enabled(if: hasTinyproxy, "needs tinyproxy, docker-registry, dnsmasq and openssl"))
    func httpProxyWithBasicAuth() async throws {
        let upstream = try await Upstream.start()
        defer { upstream.stop() }
        let proxy = try await LabTinyproxy.start(basicAuth: ("egress", "s3cret-pw"))
        defer { proxy.stop() }

        async let right = upstream.probe(upstream.target(), over: Self.path("corp", proxy: proxy.url(user: "egress", password: "s3cret-pw")))
        async let none = upstream.probe(upstream.target(), over: Self.path("corp", proxy: proxy.url()))
        async let wrong = upstream.probe(upstream.target(), over: Self.path("corp", proxy: proxy.url(user: "egress", password: "wr0ng-pw")))
        let (withCredentials, without, wrongPassword) = await (right, none, wrong)

        Self.expectSuccess(withCredentials, phases: [.connect, .proxy, .tls, .http])
        // No Proxy-Authorization: `407 Proxy Authentication Required`.
        ProbeTests.expectFailure(without, .proxy, .proxyAuthRequired)
        #expect(without.failure?.detail.contains("407") == true, "\(without.failure?.detail ?? "")")
        // Wrong credentials: tinyproxy 1.11 answers `401 Unauthorized`, not 407.
        ProbeTests.expectFailure(wrongPassword, .proxy, .proxyAuthRequired)
        #expect(wrongPassword.failure?.detail.contains("401") == true, "\(wrongPassword.failure?.detail ?? "")")
        for failed in [without, wrongPassword] {
            #expect(Set(failed.phases.keys) == [.connect])
            #expect(failed.failure?.detail.contains("s3cret-pw") == false && failed.failure?.detail.contains("wr0ng-pw") == false,
                    "a proxy password must never appear in a detail")
        }
    }

    @Test(.enabled(if: hasTinyproxy, "needs tinyproxy, docker-registry, dnsmasq and openssl"))
    func httpProxyConnectPortRefusesTheTargetPort() async throws {
        let upstream = try await Upstream.start()
        defer { upstream.stop() }
        // Only 443 allowed; the registry is on another port.
        let proxy = try await LabTinyproxy.start(connectPorts: [443])
        defer { proxy.stop() }
        let result = await upstream.probe(upstream.target(), over: Self.path("corp", proxy: proxy.url()))
        ProbeTests.expectFailure(result, .proxy, .proxyRefused)
        #expect(result.failure?.detail.contains("403 Access violation") == true, "\(result.failure?.detail ?? "")")
        #expect(Set(result.phases.keys) == [.connect])
    }

    @Test(.enabled(if: hasTinyproxy, "needs tinyproxy, docker-registry, dnsmasq and openssl"))
    func stoppedHTTPProxyIsProxyConnectFailed() async throws {
        let upstream = try await Upstream.start()
        defer { upstream.stop() }
        let proxy = try await LabTinyproxy.start()
        try await proxy.stopAndWait()
        let result = await upstream.probe(upstream.target(), over: Self.path("corp", proxy: proxy.url()))
        ProbeTests.expectFailure(result, .proxy, .proxyConnectFailed)
        #expect(result.failure?.detail.contains("connection refused") == true, "\(result.failure?.detail ?? "")")
        #expect(result.phases.isEmpty)
    }
}

// MARK: SOCKS5 through microsocks

extension PathTests {
    @Test(.enabled(if: hasMicrosocks, "needs microsocks, docker-registry, dnsmasq and openssl"))
    func socks5ResolvesLocallyAndSocks5hLetsTheProxyResolve() async throws {
        let upstream = try await Upstream.start()
        defer { upstream.stop() }
        let proxy = try await LabMicrosocks.start()
        defer { proxy.stop() }

        // socks5://: the agent resolves registry.lab.test with the lab resolver, then asks the
        // proxy for the address (microsocks could not resolve that name).
        async let local = upstream.probe(upstream.target(host: "registry.lab.test"), over: Self.path("socks", proxy: proxy.url(scheme: "socks5")))
        // socks5h://: the proxy resolves `localhost`, which the lab resolver would refuse.
        async let remote = upstream.probe(upstream.target(host: "localhost"), over: Self.path("clash", proxy: proxy.url(scheme: "socks5h")))
        // socks5h:// to a port nothing listens on: microsocks replies 0x05, connection refused.
        async let refused = upstream.probe(upstream.target(host: "localhost", port: FreePort.next()),
                                           over: Self.path("clash", proxy: proxy.url(scheme: "socks5h")))
        let (socks5, socks5h, closed) = await (local, remote, refused)

        Self.expectSuccess(socks5, phases: [.dns, .connect, .proxy, .tls, .http])
        Self.expectSuccess(socks5h, phases: [.connect, .proxy, .tls, .http])
        for result in [socks5, socks5h] {
            #expect(result.address == "127.0.0.1:\(proxy.port)")
            #expect(result.httpStatus == 200)
        }
        ProbeTests.expectFailure(closed, .proxy, .proxyRefused)
        #expect(closed.failure?.detail.contains("connection refused") == true, "\(closed.failure?.detail ?? "")")
    }

    @Test(.enabled(if: hasMicrosocks, "needs microsocks, docker-registry, dnsmasq and openssl"))
    func socks5WithUsernameAndPassword() async throws {
        let upstream = try await Upstream.start()
        defer { upstream.stop() }
        let proxy = try await LabMicrosocks.start(credentials: ("egress", "s3cret-pw"))
        defer { proxy.stop() }

        async let socks5 = upstream.probe(upstream.target(host: "registry.lab.test"),
                                          over: Self.path("socks", proxy: proxy.url(scheme: "socks5", user: "egress", password: "s3cret-pw")))
        async let socks5h = upstream.probe(upstream.target(host: "localhost"),
                                           over: Self.path("clash", proxy: proxy.url(scheme: "socks5h", user: "egress", password: "s3cret-pw")))
        async let none = upstream.probe(upstream.target(host: "localhost"), over: Self.path("clash", proxy: proxy.url(scheme: "socks5h")))
        async let wrong = upstream.probe(upstream.target(host: "localhost"),
                                         over: Self.path("clash", proxy: proxy.url(scheme: "socks5h", user: "egress", password: "wr0ng-pw")))
        let (okLocal, okRemote, without, wrongPassword) = await (socks5, socks5h, none, wrong)

        Self.expectSuccess(okLocal, phases: [.dns, .connect, .proxy, .tls, .http])
        Self.expectSuccess(okRemote, phases: [.connect, .proxy, .tls, .http])
        // Only "no authentication" offered: microsocks answers 05 FF and closes.
        ProbeTests.expectFailure(without, .proxy, .proxyAuthRequired)
        #expect(without.failure?.detail.contains("accepts none of the offered methods") == true, "\(without.failure?.detail ?? "")")
        // Username/password offered and refused: RFC 1929 status 01 02.
        ProbeTests.expectFailure(wrongPassword, .proxy, .proxyAuthRequired)
        #expect(wrongPassword.failure?.detail.contains("refused the username and password") == true,
                "\(wrongPassword.failure?.detail ?? "")")
        for failed in [without, wrongPassword] {
            #expect(Set(failed.phases.keys) == [.connect])
        }
    }
}
