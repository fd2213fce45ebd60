import Foundation
import Testing
@testable import EgressMonitor
import EgressNet
import EgressTestSupport

/// The agent binary as an operator runs it: SIGHUP with a bad config keeps the old one, a good
/// one is taken and counters keep rising, SIGTERM exits 0 — and no password it was given ever
/// shows in its logs, metrics, pages, JSON or errors.
@Suite struct ProcessTests {
    static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/egress-monitor"
    }

    static func get(_ url: String) async throws -> String {
        try await Lab.runAsync("curl", ["-sS", "--max-time", "5", url])
    }

    static func sample(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test(.enabled(if: Lab.has("curl"), "needs curl"))
    func reloadBySIGHUPAndSecretsStayHidden() async throws {
        let server = try LabTCPServer.start(.closeImmediately)
        defer { server.stop() }
        let dir = try Lab.makeDirectory("process")
        defer { Lab.removeDirectory(dir) }
        let secret = "hunter2-SECRET"
        let registrySecret = "registry-PASSWORD-42"
        let credentials = dir + "/credentials.json"
        try #"{"127.0.0.1": {"username": "robot", "password": "\#(registrySecret)"}}"#
            .write(toFile: credentials, atomically: true, encoding: .utf8)
        chmod(credentials, 0o600)
        let port = FreePort.next()
        let configPath = dir + "/config.json"
        func config(interval: Int, extraTarget: Bool) -> String {
            let extra = extraTarget ? #", {"name": "b", "kind": "tcp", "url": "tcp://127.0.0.1:\#(server.port)", "paths": ["direct"]}"# : ""
            return """
            {"listen": "127.0.0.1:\(port)", "interval_seconds": \(interval), "timeout_seconds": 1, "discovery": false,
             "credentials_file": "\(credentials)",
             "paths": [{"name": "direct"}, {"name": "corp", "proxy": "http://alice:\(secret)@127.0.0.1:1"}],
             "targets": [{"name": "a", "kind": "tcp", "url": "tcp://127.0.0.1:\(server.port)", "paths": ["direct"]},
                         {"name": "reg", "kind": "registry", "url": "https://127.0.0.1:1", "image": "x/y:1"}\(extra)]}
            """
        }
        try config(interval: 1, extraTarget: true).write(toFile: configPath, atomically: true, encoding: .utf8)
        let agent = try LabProcess(Self.binary, arguments: ["--config", configPath], directory: dir, name: "egress-monitor")
        defer { agent.stop() }
        try await agent.waitForTCPPort(port, timeout: 30)
        let base = "http://127.0.0.1:\(port)"
        let runsA = #"egress_probe_runs_total{target="a",path="direct"}"#

        var metrics = ""
        let ready = Deadline.after(seconds: 10)
        repeat {
            try await Task.sleep(nanoseconds: 200_000_000)
            metrics = try await Self.get(base + "/metrics")
        } while (Self.sample(metrics, runsA) ?? 0) < 2 && !ready.hasPassed
        #expect((Self.sample(metrics, runsA) ?? 0) >= 2)
        #expect(metrics.contains(#"egress_probe_failures_total{target="reg",path="corp",phase="proxy",reason="proxy_connect_failed"}"#))

        // A bad config by SIGHUP: the old one keeps running, the error names the field.
        try #"{"listen": "127.0.0.1:\#(port)", "targets": [{"name": "a", "kind": "tcp"}]}"#
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        agent.send(SIGHUP)
        var afterBad = ""
        let reloaded = Deadline.after(seconds: 5)
        repeat {
            try await Task.sleep(nanoseconds: 100_000_000)
            afterBad = try await Self.get(base + "/metrics")
        } while Self.sample(afterBad, "egress_config_last_reload_successful") != 0 && !reloaded.hasPassed
        #expect(Self.sample(afterBad, "egress_config_last_reload_successful") == 0)
        #expect(agent.logTail(lines: 50).contains("field=targets[0].url"))
        #expect(agent.isRunning)
        let before = Self.sample(afterBad, runsA) ?? 0

        // A good one: taken, a's counter keeps rising, b's series go. Every scrape after the
        // SIGHUP must read at least the last value before it: a counter reset to zero climbs past
        // `before + 1` within seconds, so only the scrapes around the reload can see the reset.
        try config(interval: 1, extraTarget: false).write(toFile: configPath, atomically: true, encoding: .utf8)
        let justBefore = Self.sample(try await Self.get(base + "/metrics"), runsA) ?? 0
        agent.send(SIGHUP)
        var afterGood = ""
        var lowestAfter = Double.infinity
        let rising = Deadline.after(seconds: 10)
        repeat {
            try await Task.sleep(nanoseconds: 100_000_000)
            afterGood = try await Self.get(base + "/metrics")
            lowestAfter = min(lowestAfter, Self.sample(afterGood, runsA) ?? -1)
        } while !((Self.sample(afterGood, runsA) ?? 0) > before + 1 && Self.sample(afterGood, "egress_config_last_reload_successful") == 1)
            && !rising.hasPassed
        #expect(Self.sample(afterGood, "egress_config_last_reload_successful") == 1)
        #expect((Self.sample(afterGood, runsA) ?? 0) > before + 1)
        #expect(lowestAfter >= justBefore, "runs of a fell from \(justBefore) to \(lowestAfter) across the reload")
        #expect(!afterGood.contains(#"target="b""#))

        // No secret anywhere a person or a scraper can see.
        let page = try await Self.get(base + "/")
        let status = try await Self.get(base + "/api/v1/status")
        // `check` exits 1 here (the proxy path fails): its output is read whatever the status,
        // and must be the report, or the search for the password below would search nothing.
        let (checkExit, check) = try await Lab.runAsyncAnyStatus(Self.binary, ["check", "--json", "--config", configPath])
        #expect(checkExit == "status 1", "\(check)")
        #expect(check.contains(#""reason""#) && check.contains("proxy_connect_failed"), "check --json printed no report: \(check)")
        let logs = agent.logTail(lines: 1000)
        #expect(status.contains("proxy_connect_failed"), "the proxy failure is reported")
        #expect(status.contains("alice:***@") || page.contains("alice:***@") || logs.contains("alice:***@"))
        for (name, text) in [("metrics", afterGood), ("page", page), ("status", status), ("check", check), ("logs", logs)] {
            #expect(!text.contains(secret), "\(name) shows the proxy password")
            #expect(!text.contains(registrySecret), "\(name) shows the registry password")
        }

        agent.send(SIGTERM)
        let exit = await agent.waitForExit(timeout: 10)
        #expect(exit == "status 0")
        #expect(agent.logTail(lines: 5).contains("msg=stopped"))
    }
}
