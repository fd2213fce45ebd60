import Foundation
import Testing
@testable import EgressMonitor
@testable import EgressNet
import EgressTestSupport

/// DNS over TLS and DNS over HTTPS resolvers against real servers (dnsdist in front of a
/// dnsmasq, unbound), over a direct path, an interface path and a SOCKS5 proxy, and a poisoning
/// plain resolver caught by a trusted encrypted one. Each way an encrypted resolver fails is a
/// row of the fault matrix (`FaultMatrixTests.encryptedResolverFault`).
@Suite(.serialized, .enabled(if: Lab.has("dnsdist") && Lab.has("unbound") && Lab.has("dnsmasq") && Lab.has("openssl")
                             && Lab.has("nginx") && Lab.has("microsocks"),
                             "needs dnsdist, unbound, dnsmasq, openssl, nginx and microsocks: SKIPPED, not passed"))
struct EncryptedDNSTests {
    static let appName = "app.lab.test"
    static let phaseTimeouts: [Phase: Double] = [.dns: 1.5]

    struct Peers: Sendable {
        let app: LabTCPServer
        let dns: LabDnsmasq
        let dnsdist: LabDnsdist
        let unbound: LabUnbound
        let cert: CertPair
        let caFile: String

        var target: Target { LabConfig.target(kind: .tcp, url: "tcp://\(EncryptedDNSTests.appName):\(app.port)", resolver: "enc") }

        func dot(_ address: SocketAddress, tlsName: String? = "dns.lab.test", trusted: Bool = false) -> ResolverConfig {
            ResolverConfig(name: "enc", address: nil, trusted: trusted,
                           encrypted: EncryptedResolver(kind: .dot, connectAddress: address, serverName: tlsName, caFile: caFile))
        }

        func doh(port: UInt16, path: String = "/dns-query", trusted: Bool = false, name: String = "enc") -> ResolverConfig {
            let url = EndpointURL(scheme: "https", host: "dns.lab.test", port: port, path: path)
            return ResolverConfig(name: name, address: nil, trusted: trusted,
                                  encrypted: EncryptedResolver(kind: .doh, connectAddress: SocketAddress(ip: .loopbackIPv4, port: port),
                                                               serverName: "dns.lab.test", url: url, caFile: caFile))
        }

        func probe(_ resolver: ResolverConfig, path: EgressPath = .direct) async -> ProbeResult {
            await LabConfig.probe(target, resolvers: [resolver], path: path, phaseTimeouts: EncryptedDNSTests.phaseTimeouts)
        }
    }

    static func withPeers(_ body: (Peers) async throws -> Void) async throws {
        let certs = try await LabCertificates.shared()
        let cert = try certs.issue("dns", commonName: "dns.lab.test", subjectAltNames: ["DNS:dns.lab.test", "IP:127.0.0.1"])
        let app = try LabTCPServer.start(.stallAfterAccept)
        defer { app.stop() }
        // ::1 too, where nothing listens: a path pinned to IPv6 gets it and fails to connect.
        let dns = try await LabDnsmasq.start(records: [.host(name: appName, ips: ["127.0.0.1", "::1"])])
        defer { dns.stop() }
        let dnsdist = try await LabDnsdist.start(backend: dns.address, tls: cert)
        defer { dnsdist.stop() }
        let unbound = try await LabUnbound.start(records: [(appName, "127.0.0.1")], tls: cert)
        defer { unbound.stop() }
        try await body(Peers(app: app, dns: dns, dnsdist: dnsdist, unbound: unbound, cert: cert, caFile: certs.caFile))
    }

    static func expectSuccess(_ r: ProbeResult, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.success, "\(r.failure.map(String.init(describing:)) ?? "")", sourceLocation: sourceLocation)
        #expect(r.phases[.dns] != nil, sourceLocation: sourceLocation)
        #expect(r.address == "127.0.0.1:\(r.address?.split(separator: ":").last ?? "")", sourceLocation: sourceLocation)
    }

    /// DoT (dnsdist, unbound) and DoH (dnsdist, HTTP/1.1) answer over a direct path and through
    /// microsocks (socks5://: this host resolves, so the resolver's connection goes through the
    /// proxy). An interface path is `OverAVeth`; an HTTP CONNECT path `NotAskedThroughCONNECT`.
    @Test func dotAndDoHOverEveryKindOfPath() async throws {
        try await Self.withPeers { p in
            let socks = try await LabMicrosocks.start()
            defer { socks.stop() }
            let paths = [EgressPath.direct,
                         EgressPath(name: "socks", kind: .proxy(LabConfig.url("socks5://127.0.0.1:\(socks.port)")))]
            for path in paths {
                Self.expectSuccess(await p.probe(p.dot(p.dnsdist.dotAddress), path: path))
                Self.expectSuccess(await p.probe(p.doh(port: p.dnsdist.dohPort), path: path))
                Self.expectSuccess(await p.probe(p.dot(p.unbound.dotAddress), path: path))
            }
        }
    }

    /// The resolver's connection really goes through the path's proxy: with a SOCKS5 proxy that
    /// refuses the path's credentials, the lookup fails in the dns phase, naming the proxy (a
    /// direct connection to the resolver would have succeeded).
    @Test func theResolverConnectionGoesThroughTheProxy() async throws {
        try await Self.withPeers { p in
            let socks = try await LabMicrosocks.start(credentials: (user: "u", password: "right"))
            defer { socks.stop() }
            let good = EgressPath(name: "socks", kind: .proxy(LabConfig.url("socks5://u:right@127.0.0.1:\(socks.port)")))
            let bad = EgressPath(name: "socks", kind: .proxy(LabConfig.url("socks5://u:wrong@127.0.0.1:\(socks.port)")))
            for resolver in [p.dot(p.dnsdist.dotAddress), p.doh(port: p.dnsdist.dohPort)] {
                Self.expectSuccess(await p.probe(resolver, path: good))
                let r = await p.probe(resolver, path: bad)
                #expect(r.failure?.phase == .dns, "\(String(describing: r.failure))")
                #expect(r.failure?.reason == .dnsError, "\(String(describing: r.failure))")
                #expect(r.failure?.detail.contains("proxy socks5://u:***@127.0.0.1:\(socks.port)") == true, "\(r.failure?.detail ?? "success")")
            }
        }
    }

    /// Connection reuse as the README states it: a lookup opens one TLS connection to a DoT or
    /// DoH resolver and asks both its questions (A, then AAAA) on it; the next lookup opens a new
    /// one and asks both again: no connection kept and no answer cached between lookups. Counted
    /// at dnsdist: TLS handshakes (new or resumed) on its DoT or DoH listener, and queries. (The
    /// CPU this costs is measured by the benchmark, `Tests/Bench/run.sh --only dns`.)
    @Test func oneConnectionPerLookupCarriesBothQuestions() async throws {
        try await Self.withPeers { p in
            let resolvers = [("DoT", p.dot(p.dnsdist.dotAddress), p.dnsdist.dotPort),
                             ("DoH", p.doh(port: p.dnsdist.dohPort), p.dnsdist.dohPort)]
            for (label, resolver, port) in resolvers {
                for lookup in 1...3 {
                    let handshakes = try p.dnsdist.tlsHandshakes(port: port), queries = try p.dnsdist.queries()
                    Self.expectSuccess(await p.probe(resolver))
                    #expect(try p.dnsdist.tlsHandshakes(port: port) - handshakes == 1, "\(label), lookup \(lookup): TLS connections")
                    #expect(try p.dnsdist.queries() - queries == 2, "\(label), lookup \(lookup): queries (A and AAAA)")
                }
            }
        }
    }

    // MARK: poisoning proven

    /// A lab injector: the plain resolver the target uses answers a forged public address,
    /// while the trusted DoT (and then DoH) resolver answers the true one. The probe fails as
    /// dns_suspicious_answer with both answers and what was proven in the detail and on the
    /// status page, and the disagreement counter rises, labelled with the plain resolver.
    @Test func aPlainAnswerTheTrustedEncryptedOneContradictsIsPoisoning() async throws {
        try await Self.withPeers { p in
            let forged = "104.244.43.6"
            let injector = try await LabDnsmasq.start(records: [.host(name: Self.appName, ips: [forged])])
            defer { injector.stop() }
            let isp = ResolverConfig(name: "isp", address: injector.address)
            let target = LabConfig.target(kind: .tcp, url: "tcp://\(Self.appName):\(p.app.port)", resolver: "isp")
            let store = ResultStore(metrics: Catalogue.makeStore())
            store.setPairs([PairKey(target: target.name, path: "direct")])
            let trustedOnes = [p.dot(p.dnsdist.dotAddress, trusted: true), p.doh(port: p.dnsdist.dohPort, trusted: true)]
            for (round, trusted) in trustedOnes.enumerated() {
                let r = await LabConfig.probe(target, resolvers: [isp, trusted], phaseTimeouts: Self.phaseTimeouts)
                #expect(r.failure?.phase == .dns && r.failure?.reason == .dnsSuspiciousAnswer, "\(String(describing: r.failure))")
                let detail = r.failure?.detail ?? ""
                #expect(detail.contains("isp answered \(forged)") && detail.contains("trusted resolver enc answered 127.0.0.1"), "\(detail)")
                #expect(detail.contains(trusted.kindName == "dot" ? "over DNS over TLS" : "over DNS over HTTPS"), "\(detail)")
                #expect(r.failure?.disagreeingResolver == "isp")
                store.record(r)
                #expect(store.metrics.value(Catalogue.dnsAnswersDisagree, [target.name, "direct", "isp"]) == Double(round + 1))
                let transport = trusted.kindName == "dot" ? "DNS over TLS" : "DNS over HTTPS"
                Self.expectHint(r, says: ["Poisoning proven, not suspected", "isp (plain DNS) answered \(forged)",
                                          "trusted enc (\(transport)) answered 127.0.0.1", "travelled encrypted",
                                          "resolve \(Self.appName) with enc", "socks5h://", "/etc/hosts entry (127.0.0.1 \(Self.appName))"],
                                not: ["suspicion, not a proof"])
            }
            // The trusted resolver asked alone agrees with itself: no disagreement, no count.
            let alone = await LabConfig.probe(p.target, resolvers: [p.dot(p.dnsdist.dotAddress, trusted: true)], phaseTimeouts: Self.phaseTimeouts)
            #expect(alone.success, "\(String(describing: alone.failure))")
            #expect(alone.failure?.disagreeingResolver == nil)

            // The same disagreement with a trusted PLAIN resolver (the dnsmasq behind dnsdist):
            // the injector could have answered either query, so the hint says it suspects.
            let plainTrusted = ResolverConfig(name: "plain-trusted", address: p.dns.address, trusted: true)
            let suspected = await LabConfig.probe(target, resolvers: [isp, plainTrusted], phaseTimeouts: Self.phaseTimeouts)
            #expect(suspected.failure?.reason == .dnsSuspiciousAnswer, "\(String(describing: suspected.failure))")
            Self.expectHint(suspected, says: ["suspicion, not a proof", "isp (plain DNS) answered \(forged)",
                                              "trusted plain-trusted (plain DNS) answered 127.0.0.1", "dot, doh"],
                            not: ["proven"])

            // A bogon alone: the answer is proven false, not who forged it nor the true address.
            let sinkhole = try await LabDnsmasq.start(records: [.host(name: Self.appName, ips: ["0.0.0.0"])])
            defer { sinkhole.stop() }
            let filtering = ResolverConfig(name: "filtering", address: sinkhole.address)
            let bogon = await LabConfig.probe(LabConfig.target(kind: .tcp, url: "tcp://\(Self.appName):\(p.app.port)", resolver: "filtering"),
                                              resolvers: [filtering], phaseTimeouts: Self.phaseTimeouts)
            #expect(bogon.failure?.reason == .dnsSuspiciousAnswer, "\(String(describing: bogon.failure))")
            Self.expectHint(bogon, says: ["filtering answered 0.0.0.0", "proves the answer false", "not who forged it",
                                          "mark an encrypted resolver"],
                            not: ["proven, not suspected", "suspicion, not a proof"])
        }
    }

    /// The hint of `r`'s failure says each of `words` and none of `not`, the same in `check`'s
    /// table and on the status page (whitespace folded: both wrap lines).
    static func expectHint(_ r: ProbeResult, says words: [String], not: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        func folded(_ s: String) -> String { s.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        let check = folded(CheckCommand.table([r]))
        let page = folded(String(decoding: StatusPage.render(ReportTests.report([r])), as: UTF8.self))
        for (name, text) in [("check", check), ("status page", page)] {
            for w in words {
                let shown = name == "check" ? w : StatusPage.escape(w)
                #expect(text.contains(shown), "\(name) lacks '\(w)':\n\(text)", sourceLocation: sourceLocation)
            }
            for w in not { #expect(!text.contains(w), "\(name) says '\(w)'", sourceLocation: sourceLocation) }
        }
    }

    /// `ip_family` pins what the probe resolves and dials, not the resolver's own connection: an
    /// IPv6-pinned path still asks the DoT/DoH resolver at 127.0.0.1, gets only the AAAA answer
    /// (::1), and fails to connect there; the IPv4-pinned one connects to 127.0.0.1.
    @Test func aPinnedFamilyDoesNotPinTheResolver() async throws {
        try await Self.withPeers { p in
            let v6 = EgressPath(name: "direct-v6", kind: .direct, ipFamily: .ipv6)
            let v4 = EgressPath(name: "direct-v4", kind: .direct, ipFamily: .ipv4)
            for resolver in [p.dot(p.dnsdist.dotAddress), p.doh(port: p.dnsdist.dohPort)] {
                let r6 = await p.probe(resolver, path: v6)
                #expect(r6.failure?.phase == .connect && r6.failure?.reason == .tcpRefused, "\(String(describing: r6.failure))")
                #expect(r6.failure?.detail.contains("[::1]") == true)
                let r4 = await p.probe(resolver, path: v4)
                Self.expectSuccess(r4)
                #expect(r4.ipProtocol == 4)
            }
        }
    }

    // The ways an encrypted resolver fails are rows of the fault matrix
    // (FaultMatrixTests.encryptedResolverFault), asserted as every other row.

    // MARK: through an HTTP CONNECT proxy, nobody is asked

    /// On a tinyproxy (CONNECT) path the agent sends the target's name to the proxy, as Go's
    /// client does for `docker pull` through HTTPS_PROXY: the target's DoT or DoH resolver, and
    /// a trusted DoT one, are never asked (dnsdist's own `queries` counter does not move), the
    /// probe succeeds with no `dns` phase; so on a socks5h:// path (microsocks). The same target
    /// on the direct path and through socks5:// does ask (the counter rises), so the zero is the
    /// agent's choice and not a counter that cannot count.
    /// The target is `localhost` (in /etc/hosts), so tinyproxy resolves it without any network.
    @Test(.enabled(if: Lab.has("tinyproxy"), "needs tinyproxy: SKIPPED, not passed"))
    func aResolverIsNotAskedThroughCONNECT() async throws {
        let certs = try await LabCertificates.shared()
        let cert = try certs.issue("dns", commonName: "dns.lab.test", subjectAltNames: ["DNS:dns.lab.test", "IP:127.0.0.1"])
        let app = try LabTCPServer.start(.stallAfterAccept)
        defer { app.stop() }
        let dns = try await LabDnsmasq.start(records: [.host(name: "localhost", ips: ["127.0.0.1"])])
        defer { dns.stop() }
        let dnsdist = try await LabDnsdist.start(backend: dns.address, tls: cert)
        defer { dnsdist.stop() }
        let tinyproxy = try await LabTinyproxy.start()
        defer { tinyproxy.stop() }
        let connect = EgressPath(name: "tinyproxy", kind: .proxy(LabConfig.url(tinyproxy.url())))
        let target = LabConfig.target(kind: .tcp, url: "tcp://localhost:\(app.port)", resolver: "enc")
        let dohURL = EndpointURL(scheme: "https", host: "dns.lab.test", port: dnsdist.dohPort, path: "/dns-query")
        func dot(_ name: String, trusted: Bool = false) -> ResolverConfig {
            ResolverConfig(name: name, address: nil, trusted: trusted, encrypted: EncryptedResolver(
                kind: .dot, connectAddress: dnsdist.dotAddress, serverName: "dns.lab.test", caFile: certs.caFile))
        }
        let doh = ResolverConfig(name: "enc", address: nil, encrypted: EncryptedResolver(
            kind: .doh, connectAddress: SocketAddress(ip: .loopbackIPv4, port: dnsdist.dohPort), serverName: "dns.lab.test",
            url: dohURL, caFile: certs.caFile))
        // socks5h:// resolves at the proxy too; socks5:// (microsocks) is resolved here, so asks.
        let socks = try await LabMicrosocks.start()
        defer { socks.stop() }
        let socks5h = EgressPath(name: "socks5h", kind: .proxy(LabConfig.url("socks5h://127.0.0.1:\(socks.port)")))
        let socks5 = EgressPath(name: "socks5", kind: .proxy(LabConfig.url("socks5://127.0.0.1:\(socks.port)")))
        for (label, resolvers) in [("DoT", [dot("enc"), dot("ref", trusted: true)]), ("DoH", [doh, dot("ref", trusted: true)])] {
            for path in [connect, socks5h] {
                let before = try dnsdist.queries()
                let r = await LabConfig.probe(target, resolvers: resolvers, path: path, phaseTimeouts: Self.phaseTimeouts)
                #expect(r.success, "\(label) through \(path.name): \(String(describing: r.failure))")
                #expect(r.phases[.dns] == nil, "\(label) through \(path.name): nothing resolved for the target: \(r.phases)")
                #expect(r.phases[.proxy] != nil)
                #expect(try dnsdist.queries() == before, "\(label): dnsdist was asked on path \(path.name)")
            }
            for path in [EgressPath.direct, socks5] {
                let before = try dnsdist.queries()
                let r = await LabConfig.probe(target, resolvers: resolvers, path: path, phaseTimeouts: Self.phaseTimeouts)
                #expect(r.success, "\(label) over \(path.name): \(String(describing: r.failure))")
                #expect(r.phases[.dns] != nil)
                #expect(try dnsdist.queries() > before, "\(label): on path \(path.name) dnsdist was asked")
            }
        }
    }

    // MARK: an interface path, for real

    /// The resolvers run in a network namespace behind a veth and listen only on its far
    /// address (10.214.x.y+2), routed only over the veth: a path bound to the veth asks them
    /// (DoT to dnsdist and unbound, DoH to dnsdist; dnsdist's own counter rises) and the probe
    /// succeeds; a path bound to another interface (lo) cannot reach them and fails in the
    /// `dns` phase (dns_timeout: nothing answers there), naming the resolver. The target is unbound's own DoT port there, so the probe's connection
    /// follows the same veth.
    @Suite(.serialized, .enabled(if: Lab.isRoot && Lab.has("ip") && Lab.has("nft"), "needs root, ip and nft: SKIPPED, not passed"))
    struct OverAVeth {
        @Test func dotAndDoHOverAnInterfacePathAndNotOverAnother() async throws {
            let certs = try await LabCertificates.shared()
            let cert = try certs.issue("dns", commonName: "dns.lab.test", subjectAltNames: ["DNS:dns.lab.test", "IP:127.0.0.1"])
            try await LabDualStackSite.with { site in
                let unbound = try await LabUnbound.start(in: site, records: [(EncryptedDNSTests.appName, "\(site.remoteV4)")], tls: cert)
                defer { unbound.stop() }
                let dnsdist = try await LabDnsdist.start(in: site, backend: unbound.plainAddress, tls: cert)
                defer { dnsdist.stop() }
                let target = LabConfig.target(kind: .tcp, url: "tcp://\(EncryptedDNSTests.appName):\(unbound.dotPort)", resolver: "enc")
                let url = EndpointURL(scheme: "https", host: "dns.lab.test", port: dnsdist.dohPort, path: "/dns-query")
                let resolvers = [
                    ("dnsdist DoT", EncryptedResolver(kind: .dot, connectAddress: dnsdist.dotAddress, serverName: "dns.lab.test", caFile: certs.caFile)),
                    ("dnsdist DoH", EncryptedResolver(kind: .doh, connectAddress: SocketAddress(ip: site.remoteV4, port: dnsdist.dohPort),
                                                      serverName: "dns.lab.test", url: url, caFile: certs.caFile)),
                    ("unbound DoT", EncryptedResolver(kind: .dot, connectAddress: unbound.dotAddress, serverName: "dns.lab.test", caFile: certs.caFile)),
                ]
                let veth = EgressPath(name: "veth", kind: .interface(site.interface))
                let other = EgressPath(name: "lo", kind: .interface("lo"))
                for (label, encrypted) in resolvers {
                    let resolver = ResolverConfig(name: "enc", address: nil, encrypted: encrypted)
                    let before = label.hasPrefix("dnsdist") ? try dnsdist.queries() : 0
                    let r = await LabConfig.probe(target, resolvers: [resolver], path: veth, phaseTimeouts: EncryptedDNSTests.phaseTimeouts)
                    #expect(r.success, "\(label) over \(site.interface): \(String(describing: r.failure))")
                    #expect(r.address == "\(site.remoteV4):\(unbound.dotPort)", "\(label): \(r.address ?? "-")")
                    if label.hasPrefix("dnsdist") { #expect(try dnsdist.queries() > before, "\(label): dnsdist was asked") }

                    let failed = await LabConfig.probe(target, resolvers: [resolver], path: other, phaseTimeouts: EncryptedDNSTests.phaseTimeouts)
                    // Bound to lo, the SYNs to the veth's far address go nowhere: no answer by
                    // the dns phase's timeout.
                    ProbeTests.expectFailure(failed, .dns, .dnsTimeout, timeout: 3)
                    #expect(failed.duration >= 0.95 * (EncryptedDNSTests.phaseTimeouts[.dns] ?? 0))
                    let detail = failed.failure?.detail ?? ""
                    let location = label.hasSuffix("DoH") ? "\(url)" : "\(site.remoteV4):"
                    #expect(detail.contains("resolver enc (\(location)") && detail.contains("no answer from the resolver"),
                            "\(label) over lo: \(detail)")
                }
            }
        }
    }
}
