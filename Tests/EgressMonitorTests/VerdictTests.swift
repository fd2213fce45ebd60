import Foundation
import Testing
@testable import EgressMonitor
import EgressNet
import EgressTestSupport

/// The rule of `Attribution` on its own (issue 19, "say it once"): which paths and targets are
/// down, and which failures a finding already explains. No network.
@Suite struct AttributionTests {
    static func ok(_ target: String, _ path: String) -> Attribution.Outcome {
        Attribution.Outcome(target: target, path: path, failure: nil)
    }

    static func fail(_ target: String, _ path: String, _ phase: Phase, _ reason: FailureReason,
                     _ detail: String = "detail") -> Attribution.Outcome {
        Attribution.Outcome(target: target, path: path, failure: ProbeFailure(phase, reason, detail))
    }

    @Test func aPathWhoseTargetsAllFailBeforeTheirServerIsDown() {
        for phase in [Phase.dns, .connect, .proxy] {
            let reason: FailureReason = phase == .dns ? .dnsTimeout : phase == .connect ? .tcpRefused : .proxyConnectFailed
            let v = Attribution.judge([Self.ok("a", "direct"), Self.fail("a", "corp", phase, reason, "first"),
                                       Self.ok("b", "direct"), Self.fail("b", "corp", phase, reason, "second")])
            #expect(v.path("corp")?.down == true, "\(phase)")
            #expect(v.path("corp")?.failure == ProbeFailure(phase, reason, "first"))
            #expect(v.path("direct")?.up == true)
            #expect(v.targets.allSatisfy { $0.up == true && !$0.isFinding })
            #expect(v.explanation(target: "b", path: "corp") == .pathDown("corp"))
            #expect(v.explanation(target: "b", path: "direct") == nil)
        }
    }

    /// Edge cases the README lists beside the rule.
    @Test func edgeCases() {
        // One target on the path: its failure is the pair's, not the path's.
        let one = Attribution.judge([Self.fail("a", "corp", .proxy, .proxyConnectFailed)])
        #expect(one.path("corp")?.down == false && one.path("corp")?.up == true)
        #expect(one.target("a")?.up == false && one.target("a")?.isFinding == false, "one path: no target finding")
        #expect(one.explanation(target: "a", path: "corp") == nil)
        // Failures after the path's own phases (TLS resets, 429s) are each target's.
        let late = Attribution.judge([Self.fail("a", "direct", .tls, .tlsReset), Self.fail("b", "direct", .tls, .tlsReset)])
        #expect(late.path("direct")?.down == false)
        // Mixed phases: not the path.
        let mixed = Attribution.judge([Self.fail("a", "corp", .proxy, .proxyRefused), Self.fail("b", "corp", .connect, .tcpTimeout)])
        #expect(mixed.path("corp")?.down == false)
        // Mixed reasons in one phase: down, under the most frequent reason, every reason kept.
        let reasons = Attribution.judge([Self.fail("a", "corp", .proxy, .proxyRefused, "a"),
                                         Self.fail("b", "corp", .proxy, .proxyConnectFailed, "b"),
                                         Self.fail("c", "corp", .proxy, .proxyConnectFailed, "c")])
        #expect(reasons.path("corp")?.failure == ProbeFailure(.proxy, .proxyConnectFailed, "b"))
        #expect(reasons.path("corp")?.reasons == [.proxyConnectFailed, .proxyRefused])
        // One target that works keeps the path up.
        let oneWorks = Attribution.judge([Self.fail("a", "corp", .proxy, .proxyRefused), Self.ok("b", "corp"),
                                          Self.fail("c", "corp", .proxy, .proxyRefused)])
        #expect(oneWorks.path("corp")?.down == false)
        // No round yet: neither up nor down.
        #expect(Attribution.judge([Attribution.Outcome]()).paths.isEmpty)
        #expect(Attribution.targetUp([]) == nil)
    }

    @Test func aTargetThatFailsOnEveryPathIsOneFinding() {
        let v = Attribution.judge([Self.fail("m", "direct", .connect, .tcpTimeout), Self.fail("m", "corp", .proxy, .proxyRefused),
                                   Self.ok("a", "direct"), Self.ok("a", "corp")])
        #expect(v.paths.allSatisfy { !$0.down })
        let m = try! #require(v.target("m"))
        #expect(m.up == false && m.isFinding && m.commonFailure == nil, "mixed reasons across paths")
        #expect(v.targetFindings.map(\.target) == ["m"])
        #expect(v.explanation(target: "m", path: "direct") == .targetDown("m"))
        #expect(v.explanation(target: "a", path: "direct") == nil)
        // The same reason on every path: the finding names it.
        let same = Attribution.judge([Self.fail("m", "direct", .http, .httpRateLimited, "429"), Self.fail("m", "corp", .http, .httpRateLimited)])
        #expect(same.target("m")?.commonFailure == ProbeFailure(.http, .httpRateLimited, "429"))
    }

    @Test func aTargetDownOnlyBecauseItsPathsAreDownIsNotSaidAgain() {
        // Both targets use only corp, which is down: one path finding, no target findings.
        let v = Attribution.judge([Self.fail("a", "corp", .proxy, .proxyConnectFailed), Self.fail("b", "corp", .proxy, .proxyConnectFailed),
                                   Self.fail("a", "vpn", .connect, .netUnreachable), Self.fail("b", "vpn", .connect, .netUnreachable)])
        #expect(v.downPaths.map(\.path) == ["corp", "vpn"])
        #expect(v.targets.allSatisfy { $0.up == false && !$0.isFinding })
        #expect(v.explanation(target: "a", path: "vpn") == .pathDown("vpn"))
        // One path down, the other failing for the target's own reason: a target finding too.
        let w = Attribution.judge([Self.fail("a", "corp", .proxy, .proxyConnectFailed), Self.fail("b", "corp", .proxy, .proxyConnectFailed),
                                   Self.fail("a", "direct", .tls, .tlsReset), Self.ok("b", "direct")])
        #expect(w.target("a")?.isFinding == true && w.target("a")?.downPaths == ["corp"])
        #expect(w.target("a")?.commonFailure?.reason == .tlsReset)
        #expect(w.explanation(target: "a", path: "corp") == .pathDown("corp"), "the path's finding comes first")
    }

    @Test func theStoreSetsPathUpAndTargetUp() {
        let metrics = Catalogue.makeStore()
        let store = ResultStore(metrics: metrics)
        store.setPairs(["a", "b"].flatMap { t in ["direct", "corp"].map { PairKey(target: t, path: $0) } })
        func result(_ t: String, _ p: String, _ failure: ProbeFailure?) -> ProbeResult {
            ProbeResult(target: t, path: p, startedAt: 0, duration: 0.1, phases: [:], failure: failure)
        }
        #expect(metrics.value(Catalogue.pathUp, ["corp"]) == nil, "no series before a round")
        store.record(result("a", "corp", ProbeFailure(.proxy, .proxyConnectFailed, "refused")))
        #expect(metrics.value(Catalogue.pathUp, ["corp"]) == 1, "one target probed is not enough")
        #expect(metrics.value(Catalogue.targetUp, ["a"]) == 0)
        #expect(store.targetUp("a") == false)
        store.record(result("b", "corp", ProbeFailure(.proxy, .proxyConnectFailed, "refused")))
        #expect(metrics.value(Catalogue.pathUp, ["corp"]) == 0)
        store.record(result("a", "direct", nil))
        #expect(metrics.value(Catalogue.targetUp, ["a"]) == 1)
        #expect(metrics.value(Catalogue.pathUp, ["direct"]) == 1)
        #expect(store.targetUp("b") == false && store.targetUp("a") == true && store.targetUp("zz") == nil)
        store.record(result("b", "corp", nil))
        #expect(metrics.value(Catalogue.pathUp, ["corp"]) == 1)
        store.record(result("b", "corp", ProbeFailure(.proxy, .proxyRefused, "403")))
        #expect(metrics.value(Catalogue.pathUp, ["corp"]) == 0, "a round replaces the pair's last one")
        // A reload that drops b over corp leaves one target on corp: not enough to be down.
        store.setPairs([PairKey(target: "a", path: "direct"), PairKey(target: "a", path: "corp"), PairKey(target: "b", path: "direct")])
        #expect(metrics.value(Catalogue.pathUp, ["corp"]) == 1)
        #expect(metrics.value(Catalogue.targetUp, ["b"]) == nil, "b has no finished round left")
        #expect(store.targetUp("b") == nil)
        // A reload that drops corp drops its series.
        store.setPairs([PairKey(target: "a", path: "direct")])
        #expect(metrics.value(Catalogue.pathUp, ["corp"]) == nil)
        #expect(metrics.value(Catalogue.targetUp, ["b"]) == nil)
        #expect(metrics.value(Catalogue.targetUp, ["a"]) == 1)
    }
}

/// The findings against real peers (issue 19's "Done when"): a stopped tinyproxy in front of 15
/// targets is one path finding; a mirror blackholed (nft, in a namespace) on every path is one
/// target finding; a single failing pair is neither. `check` as a person runs it, the JSON, and
/// the metrics and status page of a running agent. Everything on 127.0.0.1 and the namespace.
@Suite(.serialized) struct VerdictTests {
    static var binary: String { CLITests.binary }
    static var canRun: Bool { CLITests.haveBinary && Lab.has("tinyproxy") && Lab.has("curl") }

    /// `check` and `check --json` of `config`.
    static func check(_ config: String) async throws -> (text: CLITests.Run, json: [String: Any], dir: String) {
        let (path, dir) = try CLITests.configFile(config)
        let text = try await CLITests.cli(["check", "--config", path])
        let json = try await CLITests.cli(["check", "--json", "--config", path])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json)")
        return (text, document, dir)
    }

    static func lines(_ text: String, containing needle: String) -> [Substring] {
        text.split(separator: "\n").filter { $0.contains(needle) }
    }

    static func targets(_ names: [String], url: String) -> String {
        names.map { #"{"name": "\#($0)", "kind": "tcp", "url": "\#(url)"}"# }.joined(separator: ", ")
    }

    @Test(.enabled(if: canRun, "needs the binary, tinyproxy and curl: SKIPPED, not passed"), .timeLimit(.minutes(2)))
    func aStoppedProxyIsOnePathFinding() async throws {
        let server = try LabTCPServer.start(.closeImmediately)
        defer { server.stop() }
        let proxy = try await LabTinyproxy.start()
        try await proxy.stopAndWait()
        let names = (1...15).map { $0 < 10 ? "t0\($0)" : "t\($0)" }
        let config = """
            {"discovery": false, "interval_seconds": 1, "timeout_seconds": 1,
             "paths": [{"name": "direct"}, {"name": "corp", "proxy": "\(proxy.url())"}],
             "targets": [\(Self.targets(names, url: "tcp://127.0.0.1:\(server.port)"))]}
            """
        let (run, json, dir) = try await Self.check(config)
        defer { Lab.removeDirectory(dir) }

        // check: one finding, then the table, and no line per target for those 15 failures.
        #expect(run.status == 0, "every target works direct: \(run)")
        let findings = Self.lines(run.stdout, containing: "proxy_connect_failed")
        #expect(findings.count == 1, "\(run)")
        #expect(findings.first?.hasPrefix("  path corp: down — proxy/proxy_connect_failed (") == true, "\(run)")
        #expect(findings.first?.contains("— all 15 targets fail on it") == true, "\(run)")
        #expect(run.stdout.hasPrefix("Findings:\n"), "check leads with the findings: \(run)")
        #expect(Self.lines(run.stdout, containing: "FAIL, path corp down").count == 15, "\(run)")
        #expect(!run.stdout.contains("Why they failed"), "no failure left unexplained: \(run)")
        #expect(!run.stdout.contains("target t"), "no target finding: \(run)")

        // check --json: "paths" and "targets" beside "results", null where nothing applies.
        let paths = try #require(json["paths"] as? [String: [String: Any]], "\(json)")
        let corp = try #require(paths["corp"])
        #expect(corp["up"] as? Bool == false && corp["phase"] as? String == "proxy" && corp["reason"] as? String == "proxy_connect_failed")
        #expect((corp["detail"] as? String)?.contains("127.0.0.1:\(proxy.port)") == true, "\(corp)")
        #expect(corp["targets_probed"] as? Int == 15 && corp["targets_failed"] as? Int == 15)
        let direct = try #require(paths["direct"])
        #expect(direct["up"] as? Bool == true && direct["phase"] is NSNull && direct["reason"] is NSNull && direct["detail"] is NSNull)
        let targets = try #require(json["targets"] as? [String: [String: Any]])
        #expect(Set(targets.keys) == Set(names))
        for (name, t) in targets {
            #expect(t["up"] as? Bool == true && t["finding"] as? Bool == false && t["phase"] is NSNull, "\(name): \(t)")
        }
        #expect((json["results"] as? [Any])?.count == 30)

        // The agent: egress_path_up{path="corp"} 0, the status page's one finding.
        let (file, agentDir) = try CLITests.configFile(config)
        defer { Lab.removeDirectory(agentDir) }
        let agent = try Agent.start(source: .file(file), listenOverride: SocketAddress(ip: IPAddress(Lab.loopback)!, port: 0), jitter: false)
        let base = "http://\(agent.server.boundAddress)"
        var metrics = ""
        let deadline = Deadline.after(seconds: 20)
        while !deadline.hasPassed {
            metrics = try await Lab.runAsync("curl", ["-sS", "--noproxy", "*", "--max-time", "5", base + "/metrics"])
            if metrics.contains("egress_path_up{path=\"corp\"} 0") && Self.lines(metrics, containing: "egress_target_up{").count == 15 { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        #expect(metrics.contains("egress_path_up{path=\"corp\"} 0\n"), "\(metrics.prefix(3000))")
        #expect(metrics.contains("egress_path_up{path=\"direct\"} 1\n"))
        #expect(Self.lines(metrics, containing: "egress_target_up{").allSatisfy { $0.hasSuffix(" 1") })
        let page = try await Lab.runAsync("curl", ["-sS", "--noproxy", "*", "--max-time", "5", base + "/"])
        #expect(page.components(separatedBy: "class=\"card finding\"").count - 1 == 1, "one finding card")
        #expect(page.contains("✗ path corp: down"))
        #expect(page.components(separatedBy: "✗ path down").count - 1 == 15, "every corp cell points at the finding")
        #expect(!page.contains("Why pairs fail"), "no failure card repeats it")
        let findingAt = try #require(page.range(of: "id=\"findings\"")).lowerBound
        #expect(findingAt < (page.range(of: "Targets × paths")?.lowerBound ?? page.startIndex), "the page leads with the finding")
        await agent.stop()
    }

    @Test(.enabled(if: canRun && Lab.isRoot && Lab.has("ip") && Lab.has("nft"),
                   "needs root, ip, nft, the binary, tinyproxy and curl: SKIPPED, not passed"),
          .timeLimit(.minutes(2)))
    func aMirrorBlackholedOnEveryPathIsOneTargetFinding() async throws {
        let server = try LabTCPServer.start(.closeImmediately)
        defer { server.stop() }
        let proxy = try await LabTinyproxy.start()
        defer { proxy.stop() }
        let blackholed: UInt16 = 7461
        try await LabRemoteSite.with(blackholedPorts: [blackholed]) { site in
            // The main table routes the site's service address through the uplink whose
            // remote end drops the port: directly and from tinyproxy alike.
            let config = """
                {"discovery": false, "timeout_seconds": 2, "phase_timeouts_seconds": {"connect": 1, "proxy": 1},
                 "paths": [{"name": "direct"}, {"name": "corp", "proxy": "\(proxy.url())"}],
                 "targets": [\(Self.targets(["a", "b"], url: "tcp://127.0.0.1:\(server.port)")),
                             {"name": "mirror", "kind": "tcp", "url": "tcp://\(site.serviceAddress):\(blackholed)"}]}
                """
            let (run, json, dir) = try await Self.check(config)
            defer { Lab.removeDirectory(dir) }
            #expect(run.status == 1, "mirror is unreachable: \(run)")
            let findings = Self.lines(run.stdout, containing: ": down — ")
            #expect(findings.count == 1, "\(run)")
            #expect(findings.first?.hasPrefix("  target mirror: down — fails on both paths") == true, "\(run)")
            #expect(findings.first?.contains("direct: connect/tcp_timeout") == true, "\(run)")
            #expect(Self.lines(run.stdout, containing: "FAIL, target mirror down").count == 2, "\(run)")
            #expect(!run.stdout.contains("Why they failed"), "\(run)")
            #expect(!run.stdout.contains("path direct: down") && !run.stdout.contains("path corp: down"), "\(run)")

            let targets = try #require(json["targets"] as? [String: [String: Any]], "\(json)")
            #expect(targets["mirror"]?["up"] as? Bool == false && targets["mirror"]?["finding"] as? Bool == true, "\(targets)")
            #expect(targets["mirror"]?["paths_failed"] as? Int == 2)
            #expect(targets["a"]?["up"] as? Bool == true && targets["a"]?["finding"] as? Bool == false)
            let paths = try #require(json["paths"] as? [String: [String: Any]])
            #expect(paths["direct"]?["up"] as? Bool == true && paths["corp"]?["up"] as? Bool == true, "\(paths)")
            #expect(paths["corp"]?["reason"] is NSNull)
        }
    }

    @Test(.enabled(if: canRun, "needs the binary, tinyproxy and curl: SKIPPED, not passed"), .timeLimit(.minutes(2)))
    func aSingleFailingPairIsNeither() async throws {
        let server = try LabTCPServer.start(.closeImmediately)
        defer { server.stop() }
        let proxy = try await LabTinyproxy.start()
        defer { proxy.stop() }
        // "flaky" asks a resolver that is not there: it fails direct at dns, and works through
        // the proxy, which resolves the name itself.
        let config = """
            {"discovery": false, "timeout_seconds": 2,
             "resolvers": [{"name": "dead", "address": "127.0.0.1:\(FreePort.next())"}],
             "paths": [{"name": "direct"}, {"name": "corp", "proxy": "\(proxy.url())"}],
             "targets": [\(Self.targets(["a", "b"], url: "tcp://127.0.0.1:\(server.port)")),
                         {"name": "flaky", "kind": "tcp", "url": "tcp://localhost:\(server.port)", "resolver": "dead"}]}
            """
        let (run, json, dir) = try await Self.check(config)
        defer { Lab.removeDirectory(dir) }
        #expect(run.status == 0, "\(run)")
        #expect(!run.stdout.contains("Findings:"), "\(run)")
        #expect(run.stdout.contains("Why they failed, and what to try:"), "listed as a pair failure: \(run)")
        #expect(Self.lines(run.stdout, containing: "flaky over direct:").count == 1, "\(run)")
        #expect(Self.lines(run.stdout, containing: "FAIL dns/").count == 1, "\(run)")
        let paths = try #require(json["paths"] as? [String: [String: Any]], "\(json)")
        #expect(paths.values.allSatisfy { $0["up"] as? Bool == true && $0["phase"] is NSNull }, "\(paths)")
        let targets = try #require(json["targets"] as? [String: [String: Any]])
        #expect(targets.values.allSatisfy { $0["up"] as? Bool == true && $0["finding"] as? Bool == false }, "\(targets)")
    }
    // MARK: Alertmanager's inhibition

    /// The shipped `inhibit_rules` (dashboards/alertmanager-inhibit.yml) in a real Alertmanager
    /// (Debian's prometheus-alertmanager, on 127.0.0.1): sent the alerts as Prometheus would,
    /// it holds back exactly the per-pair alerts a path or target alert explains.
    @Test(.enabled(if: Lab.has("prometheus-alertmanager") && Lab.has("curl"),
                   "needs prometheus-alertmanager and curl (Debian prometheus-alertmanager): SKIPPED, not passed"),
          .timeLimit(.minutes(1)))
    func alertmanagerInhibitsThePairAlertsAPathOrTargetAlertExplains() async throws {
        let dir = try Lab.makeDirectory("alertmanager")
        defer { Lab.removeDirectory(dir) }
        let inhibit = try OpsTests.read(OpsTests.root + "/dashboards/alertmanager-inhibit.yml")
        try ("route:\n  receiver: \"null\"\n  group_wait: 1h\nreceivers:\n  - name: \"null\"\n" + inhibit)
            .write(toFile: dir + "/alertmanager.yml", atomically: true, encoding: .utf8)
        let port = FreePort.next()
        let process = try LabProcess("prometheus-alertmanager", arguments: [
            "--config.file=\(dir)/alertmanager.yml", "--storage.path=\(dir)/data", "--web.listen-address=127.0.0.1:\(port)",
            "--cluster.listen-address=", "--log.level=warn"], directory: dir, name: "alertmanager")
        defer { process.stop() }
        try await process.waitForTCPPort(port, timeout: 20)
        let base = "http://127.0.0.1:\(port)/api/v2/alerts"

        // name, labels; and whether the shipped rules must hold it back.
        let alerts: [(labels: [String: String], inhibited: Bool)] = [
            (["alertname": "EgressPathDown", "severity": "critical", "site": "a", "path": "corp"], false),
            (["alertname": "MirrorFailureRateSpike", "severity": "warning", "site": "a", "target": "m1", "path": "corp"], true),
            (["alertname": "MirrorFailureRateSpike", "severity": "warning", "site": "a", "target": "m1", "path": "direct"], false),
            (["alertname": "MirrorFailureRateSpike", "severity": "warning", "site": "b", "target": "m1", "path": "corp"], false),
            (["alertname": "EgressTargetDown", "severity": "warning", "site": "a", "target": "m2"], false),
            (["alertname": "MirrorFailureRateSpike", "severity": "warning", "site": "a", "target": "m2", "path": "vpn"], true),
            (["alertname": "EgressPathDown", "severity": "critical", "site": "c", "path": "direct"], false),
            (["alertname": "DirectPathDegradedEgressHealthy", "severity": "warning", "site": "c", "target": "m1", "path": "corp"], true),
            (["alertname": "DirectPathDegradedEgressHealthy", "severity": "warning", "site": "a", "target": "m1", "path": "corp"], false),
            (["alertname": "DockerHubUnreachableOnAllPaths", "severity": "critical", "site": "d", "target": "dockerhub"], false),
            (["alertname": "EgressTargetDown", "severity": "warning", "site": "d", "target": "dockerhub"], true),
        ]
        let body = try JSONSerialization.data(withJSONObject: alerts.map { ["labels": $0.labels, "annotations": ["summary": "test"]] })
        try String(decoding: body, as: UTF8.self).write(toFile: dir + "/alerts.json", atomically: true, encoding: .utf8)
        _ = try await Lab.runAsync("curl", ["-sSf", "--noproxy", "*", "--max-time", "5", "-H", "Content-Type: application/json",
                                            "--data-binary", "@\(dir)/alerts.json", base])

        func key(_ labels: [String: String]) -> String { labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") }
        let expected = Dictionary(uniqueKeysWithValues: alerts.map { (key($0.labels), $0.inhibited) })
        var seen: [String: Bool] = [:]
        let deadline = Deadline.after(seconds: 15)
        while !deadline.hasPassed {
            let text = try await Lab.runAsync("curl", ["-sSf", "--noproxy", "*", "--max-time", "5", base])
            let list = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]]) ?? []
            seen = Dictionary(list.map { a in
                (key(a["labels"] as? [String: String] ?? [:]),
                 !(((a["status"] as? [String: Any])?["inhibitedBy"] as? [Any]) ?? []).isEmpty)
            }, uniquingKeysWith: { a, _ in a })
            if seen == expected { break }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        #expect(seen == expected, "inhibited per alert: \(seen.sorted { $0.key < $1.key })")
    }
}
