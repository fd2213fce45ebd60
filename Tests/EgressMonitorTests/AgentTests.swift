import Foundation
import Testing
@testable import EgressMonitor
import EgressNet
import EgressTestSupport

/// The agent end to end: config file → scheduler → probes against the lab → `/metrics`,
/// scraped by curl and checked by promtool.
@Suite struct AgentTests {
    static let hasPeers = Lab.has("nginx") && Lab.has("dnsmasq") && Lab.has("docker-registry")
        && Lab.has("openssl") && Lab.has("curl") && Lab.has("promtool")

    static func scrape(_ agent: Agent, _ path: String = "/metrics") async throws -> String {
        try await Lab.runAsync("curl", ["-sS", "--max-time", "5", "http://\(agent.server.boundAddress)\(path)"])
    }

    /// The value of one sample line, by its exact series text.
    static func sample(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    /// Polls until `condition` holds on a scrape, within `seconds`.
    static func waitForScrape(_ agent: Agent, seconds: Double = 15, until condition: (String) -> Bool) async throws -> String {
        let deadline = Deadline.after(seconds: seconds)
        var text = ""
        while !deadline.hasPassed {
            text = try await scrape(agent)
            if condition(text) { return text }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        return text
    }

    @Test(.enabled(if: hasPeers, "needs docker-registry, dnsmasq, openssl, curl and promtool"))
    func agentProbesTheLabAndServesCleanMetrics() async throws {
        let certs = try await LabCertificates.shared()
        let registry = try await LabRegistry.start(tls: certs.good)
        defer { registry.stop() }
        let dns = try await LabDnsmasq.start(records: [.host(name: "registry.lab.test", ips: ["127.0.0.1"])])
        defer { dns.stop() }
        let closed = try Socket.listen(on: SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0))
        let closedPort = closed.localAddress!.port
        closed.close()

        let dir = try Lab.makeDirectory("agent")
        defer { Lab.removeDirectory(dir) }
        let configPath = dir + "/config.json"
        try """
        {"listen": "127.0.0.1:0", "interval_seconds": 1, "timeout_seconds": 1,
         "resolvers": [{"name": "lab", "address": "\(dns.address)"}],
         "targets": [
           {"name": "lab", "kind": "registry", "url": "https://registry.lab.test:\(registry.port)",
            "ca_file": "\(certs.caFile)", "resolver": "lab"},
           {"name": "closed", "kind": "tcp", "url": "tcp://127.0.0.1:\(closedPort)"}]}
        """.write(toFile: configPath, atomically: true, encoding: .utf8)

        let agent = try Agent.start(source: .file(configPath),
                                    listenOverride: SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0), jitter: false)
        let lab = #"target="lab",path="direct""#
        let closedPair = #"target="closed",path="direct""#

        // Series exist before the first round finishes.
        let first = try await Self.scrape(agent)
        #expect(first.contains("egress_probe_runs_total{\(lab)}") || first.contains("egress_probe_success{\(lab)}"))

        let text = try await Self.waitForScrape(agent) {
            (Self.sample($0, "egress_probe_runs_total{\(lab)}") ?? 0) >= 2
                && (Self.sample($0, "egress_probe_runs_total{\(closedPair)}") ?? 0) >= 2
        }
        #expect(Self.sample(text, "egress_probe_success{\(lab)}") == 1)
        #expect(Self.sample(text, "egress_probe_success{\(closedPair)}") == 0)
        for phase in ["dns", "connect", "tls", "http"] {
            let count = Self.sample(text, "egress_phase_duration_seconds_count{\(lab),phase=\"\(phase)\"}") ?? 0
            #expect(count >= 2, "phase \(phase) histogram count \(count)")
        }
        #expect((Self.sample(text, "egress_probe_failures_total{\(closedPair),phase=\"connect\",reason=\"tcp_refused\"}") ?? 0) >= 2)
        #expect(Self.sample(text, "egress_probe_failures_total{\(lab),phase=\"connect\",reason=\"tcp_refused\"}") == nil)
        #expect((Self.sample(text, "egress_last_success_timestamp_seconds{\(lab)}") ?? 0) > Date().timeIntervalSince1970 - 60)
        let notAfter = try certs.good.notAfter()
        #expect(Self.sample(text, "egress_tls_cert_not_after_timestamp_seconds{\(lab)}").map { abs($0 - notAfter) < 1 } == true)
        #expect(text.contains("egress_tls_info{\(lab),version=\"TLSv1.3\",cipher=\"TLS_"))
        #expect(Self.sample(text, "egress_build_info{version=\"\(EgressMonitorVersion.current)\"}") == 1)
        #expect(Self.sample(text, "egress_config_last_reload_successful") == 1)
        #expect((Self.sample(text, "process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((Self.sample(text, "process_open_fds") ?? 0) > 3)
        #expect((Self.sample(text, "egress_scheduler_lag_seconds_count") ?? 0) >= 4)

        // promtool reads the live scrape from curl.
        let lint = try await Lab.runAsync("sh", ["-c", "curl -sS --max-time 5 http://\(agent.server.boundAddress)/metrics | promtool check metrics; echo exit=$?"])
        #expect(lint.hasSuffix("exit=0\n"), "promtool: \(lint)")

        let headers = try await Lab.runAsync("curl", ["-sS", "-D", "-", "-o", "/dev/null", "http://\(agent.server.boundAddress)/metrics"])
        #expect(headers.lowercased().contains("content-type: text/plain; version=0.0.4; charset=utf-8"))

        let health = try await Self.scrape(agent, "/healthz")
        #expect(health == "ok\n")
        let status = try await Self.scrape(agent, "/api/v1/status")
        let json = try JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any]
        let results = json?["results"] as? [[String: Any]] ?? []
        #expect(Set(results.compactMap { $0["target"] as? String }) == ["closed", "lab"])
        #expect(results.first { $0["target"] as? String == "closed" }?["reason"] as? String == "tcp_refused")
        #expect(results.first { $0["target"] as? String == "lab" }?["success"] as? Bool == true)
        let page = try await Self.scrape(agent, "/")
        #expect(page.contains("<td>lab</td>") && page.contains("connect / tcp_refused"))
        let missing = try await Lab.runAsync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://\(agent.server.boundAddress)/nope"])
        #expect(missing == "404")

        await agent.stop()
    }

    /// A stopped agent is freed: nothing it owns (the server's handler, the scheduler's tasks)
    /// keeps a strong reference back to it. The handler once did, through the box that lets the
    /// reload route reach the agent, and every agent leaked with its store and server.
    @Test(.enabled(if: Lab.has("curl"), "needs curl"))
    func aStoppedAgentIsFreed() async throws {
        let closed = try LabTCPServer.start(.closeImmediately)
        defer { closed.stop() }
        let dir = try Lab.makeDirectory("freed")
        defer { Lab.removeDirectory(dir) }
        let path = dir + "/config.json"
        try #"{"interval_seconds": 1, "timeout_seconds": 1, "targets": [{"name": "a", "kind": "tcp", "url": "tcp://127.0.0.1:\#(closed.port)"}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        weak var weakAgent: Agent?
        do {
            let agent = try Agent.start(source: .file(path), listenOverride: SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0), jitter: false)
            weakAgent = agent
            // Serve a request through the handler (which holds the box) and run a probe round.
            _ = try await Self.waitForScrape(agent) { (Self.sample($0, #"egress_probe_runs_total{target="a",path="direct"}"#) ?? 0) >= 1 }
            let code = try await Lab.runAsync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "http://\(agent.server.boundAddress)/-/reload"])
            #expect(code == "200")
            await agent.stop()
        }
        // Tasks the agent started may still be unwinding on the pool; give them a moment.
        let deadline = Deadline.after(seconds: TestTime.allowance(5))
        while weakAgent != nil && !deadline.hasPassed { try await Task.sleep(nanoseconds: 20_000_000) }
        #expect(weakAgent == nil, "the agent outlived its last reference after stop()")
    }

    /// A reload whose ca_file cannot be read keeps the running config, and the error names the
    /// field; once the file is there, the same config loads. Validation opens no file, so this
    /// is the load step at work (break: dropping TLSMaterial.load from reload() swaps the bad config in).
    @Test func reloadWithAnUnreadableCAFileKeepsTheRunningConfig() async throws {
        let dir = try Lab.makeDirectory("reload-ca")
        defer { Lab.removeDirectory(dir) }
        let path = dir + "/config.json", ca = dir + "/ca.pem"
        func write(_ targets: String) throws {
            try #"{"interval_seconds": 60, "timeout_seconds": 1, "discovery": false, "targets": [\#(targets)]}"#
                .write(toFile: path, atomically: true, encoding: .utf8)
        }
        try write(#"{"name": "a", "kind": "tcp", "url": "tcp://127.0.0.1:1"}"#)
        let agent = try Agent.start(source: .file(path), listenOverride: SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0), jitter: false)
        try write(#"{"name": "b", "kind": "tls", "url": "tls://127.0.0.1:1", "ca_file": "\#(ca)"}"#)
        let error = await agent.reload()
        #expect(error == "targets[0].ca_file: cannot read \(ca)")
        #expect(agent.config.targets.map(\.name) == ["a"], "the running config stays")
        try FileManager.default.copyItem(atPath: "/etc/ssl/certs/ca-certificates.crt", toPath: ca)
        #expect(await agent.reload() == nil)
        #expect(agent.config.targets.map(\.name) == ["b"])
        await agent.stop()
    }

    @Test(.enabled(if: Lab.has("curl"), "needs curl"))
    func reloadKeepsCountersAndDropsRemovedPairs() async throws {
        let closedA = try LabTCPServer.start(.closeImmediately)
        let closedB = try LabTCPServer.start(.closeImmediately)
        defer { closedA.stop(); closedB.stop() }
        let dir = try Lab.makeDirectory("reload")
        defer { Lab.removeDirectory(dir) }
        let path = dir + "/config.json"
        func write(_ targets: String) throws {
            try #"{"interval_seconds": 1, "timeout_seconds": 1, "targets": [\#(targets)]}"#
                .write(toFile: path, atomically: true, encoding: .utf8)
        }
        let a = #"{"name": "a", "kind": "tcp", "url": "tcp://127.0.0.1:\#(closedA.port)"}"#
        let b = #"{"name": "b", "kind": "tcp", "url": "tcp://127.0.0.1:\#(closedB.port)"}"#
        try write("\(a), \(b)")
        let agent = try Agent.start(source: .file(path), listenOverride: SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0), jitter: false)
        let runsA = #"egress_probe_runs_total{target="a",path="direct"}"#
        let runsB = #"egress_probe_runs_total{target="b",path="direct"}"#
        let before = try await Self.waitForScrape(agent) { (Self.sample($0, runsA) ?? 0) >= 2 }
        let countBefore = Self.sample(before, runsA) ?? 0
        #expect(Self.sample(before, runsB) != nil)

        // A bad config keeps the old one running and says so.
        try #"{"interval_seconds": 1, "targets": [{"name": "a", "kind": "tcp"}]}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let error = await agent.reload()
        #expect(error?.contains("targets[0].url: required for kind tcp") == true)
        let afterBad = try await Self.scrape(agent)
        #expect(Self.sample(afterBad, "egress_config_last_reload_successful") == 0)
        #expect(Self.sample(afterBad, runsB) != nil)

        // A good one without b: a keeps counting, b's series go. Continuity is read across the
        // reload itself, a scrape just before and one just after: a counter reset to zero would
        // climb past any earlier value within seconds, so only this comparison sees it.
        try write(a)
        let roundsA = #"egress_probe_duration_seconds_count{target="a",path="direct"}"#
        let justBefore = try await Self.scrape(agent)
        #expect(await agent.reload() == nil)
        let justAfter = try await Self.scrape(agent)
        for series in [runsA, roundsA] {
            let (was, now) = (Self.sample(justBefore, series), Self.sample(justAfter, series))
            #expect(was != nil && now != nil && now! >= was!, "\(series): \(String(describing: was)) before the reload, \(String(describing: now)) after")
        }
        let after = try await Self.waitForScrape(agent) { (Self.sample($0, runsA) ?? 0) > countBefore + 1 }
        #expect((Self.sample(after, runsA) ?? 0) > countBefore)
        #expect(Self.sample(after, runsB) == nil)
        #expect(!after.contains(#"target="b""#))
        #expect(Self.sample(after, "egress_config_last_reload_successful") == 1)

        // The HTTP reload route answers the same way.
        let code = try await Lab.runAsync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "http://\(agent.server.boundAddress)/-/reload"])
        #expect(code == "200")
        await agent.stop()
    }
}
