#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import EgressMetrics
import EgressMonitor
import EgressNet
import EgressTestSupport

/// The operations kit (`dashboards/`, `systemd/`): the alert and recording rules with their
/// promtool unit tests, the Grafana dashboard, and the hardened unit.
///
/// The live test runs a real Prometheus scraping a fleet of three real agents (sites a, b and c,
/// set as target labels in the scrape config) that probe lab peers on loopback, and evaluates
/// every PromQL expression of the rules and the dashboard through Prometheus's HTTP API.
@Suite struct OpsTests {
    // MARK: files

    /// The repository root, from this file's place in it (Tests/EgressMonitorTests/OpsTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path
    static let rulesFile = root + "/dashboards/egress-monitor.rules.yml"
    static let dashboardFile = root + "/dashboards/egress-monitor.json"
    static let runbookFile = root + "/dashboards/README.md"
    static let unitFile = root + "/systemd/egress-monitor.service"
    static let dropInFile = root + "/systemd/cap-net-raw.conf"
    static let sampleConfig = root + "/systemd/config.json"

    static var ruleTestFiles: [String] {
        let dir = root + "/dashboards/tests"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasSuffix(".yml") }.sorted().map { dir + "/" + $0 }
    }

    /// The agent binary, built next to the test bundle.
    static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/egress-monitor"
    }

    static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw LabError("cannot read \(path)") }
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: metric names

    /// The metrics only a registry feeds: the fleet's peers are plain tcp and tls servers, so its
    /// queries on these must parse and return nothing there; RegistryTests
    /// .registryAlertsAndPanelsAgainstLiveAgents checks each returns its series against the
    /// registry lab (a Docker Hub front's rate-limit headers, a stale mirror, blobs).
    static let metricsWithoutLabData: Set<String> = [
        "egress_registry_ratelimit_limit", "egress_registry_ratelimit_remaining",
        "egress_registry_manifest_digest_match",
        "egress_blob_throughput_bytes_per_second",
    ]

    /// Every series name the agent exposes, from the catalogue (histograms by their three series).
    static var catalogueSeriesNames: Set<String> {
        var names = Set<String>()
        for family in Catalogue.all {
            if family.type == .histogram {
                // The bare name is the native histogram (protobuf scrapes with native histograms).
                for suffix in ["_bucket", "_sum", "_count", ""] { names.insert(family.name + suffix) }
            } else {
                names.insert(family.name)
            }
        }
        return names
    }

    /// The agent's metric names an expression mentions: `egress_*` and `process_*` identifiers
    /// that are not part of a recording rule's `level:metric:operations` name.
    static func metricNames(in expression: String) -> Set<String> {
        let regex = try! NSRegularExpression(pattern: #"(?<![A-Za-z0-9_:])(?:egress|process)_[a-z0-9_]+(?![A-Za-z0-9_:])"#)
        let range = NSRange(expression.startIndex..., in: expression)
        return Set(regex.matches(in: expression, range: range).compactMap {
            Range($0.range, in: expression).map { String(expression[$0]) }
        })
    }

    /// Whether the live test accepts an empty answer (it must still parse).
    static func mayLackLabData(_ expression: String) -> Bool {
        !metricNames(in: expression).isDisjoint(with: metricsWithoutLabData)
    }

    // MARK: rules file, read as text

    /// The names after `- alert:` in the rules file, in order.
    static func alertNames(_ rules: String) -> [String] {
        rules.split(separator: "\n").compactMap { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("- alert:") else { return nil }
            return trimmed.dropFirst("- alert:".count).trimmingCharacters(in: .whitespaces)
        }
    }

    /// The text of one alert's entry, from its `- alert:` line to the next rule.
    static func alertBlock(_ rules: String, _ name: String) -> String {
        let lines = rules.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "- alert: \(name)" }) else { return "" }
        var end = start + 1
        while end < lines.count {
            let trimmed = lines[end].trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("- alert:") || trimmed.hasPrefix("- record:") || trimmed.hasPrefix("- name:") { break }
            end += 1
        }
        return lines[start..<end].joined(separator: "\n")
    }

    /// From the promtool test files: for each alert name, how many checks expect it to fire
    /// and how many expect silence (`exp_alerts: []`).
    static func alertChecks(_ testFiles: [String]) throws -> [String: (fires: Int, silent: Int)] {
        var checks: [String: (fires: Int, silent: Int)] = [:]
        for file in testFiles {
            var current: String?
            for line in try read(file).split(separator: "\n") {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("alertname:") {
                    current = trimmed.dropFirst("alertname:".count).trimmingCharacters(in: .whitespaces)
                } else if trimmed.hasPrefix("exp_alerts:"), let name = current {
                    var entry = checks[name] ?? (0, 0)
                    if trimmed.hasSuffix("[]") { entry.silent += 1 } else { entry.fires += 1 }
                    checks[name] = entry
                    current = nil
                }
            }
        }
        return checks
    }

    // MARK: static checks (no program needed)

    @Test func everyAlertHasSummaryDescriptionRunbookAndUnitTests() throws {
        let rules = try Self.read(Self.rulesFile)
        let alerts = Self.alertNames(rules)
        let required = ["MirrorFailureRateSpike", "DockerHubUnreachableOnAllPaths", "DirectPathDegradedEgressHealthy",
                        "MirrorStale", "DockerHubRateLimitLow", "CertificateExpiringSoon", "ProbeSchedulerLagging",
                        "AgentConfigReloadFailed", "AgentDown", "EgressPathDown", "EgressTargetDown"]
        #expect(Set(alerts).isSuperset(of: required), "missing alerts: \(Set(required).subtracting(alerts))")
        #expect(Set(alerts).count == alerts.count, "an alert name is used twice")

        let runbook = try Self.read(Self.runbookFile)
        let checks = try Self.alertChecks(Self.ruleTestFiles)
        for alert in alerts {
            let block = Self.alertBlock(rules, alert)
            #expect(block.contains("summary:"), "\(alert) has no summary")
            #expect(block.contains("description:"), "\(alert) has no description")
            #expect(block.contains("severity:"), "\(alert) has no severity label")
            let anchor = alert.lowercased()
            #expect(block.contains("runbook: \"dashboards/README.md#\(anchor)\""), "\(alert) does not link its runbook")
            #expect(runbook.contains("\n### \(alert)\n"), "dashboards/README.md has no runbook section for \(alert)")
            let check = checks[alert] ?? (0, 0)
            #expect(check.fires > 0, "no promtool test makes \(alert) fire")
            #expect(check.silent > 0, "no promtool test keeps \(alert) silent in a near miss")
        }
    }

    @Test func rulesAndDashboardUseOnlyCatalogueMetrics() throws {
        let rules = try Self.read(Self.rulesFile)
        // Comments are left out; annotations name no metric.
        let ruleText = rules.split(separator: "\n").map { line -> Substring in
            line.trimmingCharacters(in: .whitespaces).hasPrefix("#") ? "" : line
        }.joined(separator: "\n")
        let dashboard = try Dashboard(path: Self.dashboardFile)
        let known = Self.catalogueSeriesNames
        var used = Self.metricNames(in: ruleText)
        for query in dashboard.queries { used.formUnion(Self.metricNames(in: query.expression)) }
        for variable in dashboard.variables { used.formUnion(Self.metricNames(in: variable.query)) }
        #expect(!used.isEmpty)
        #expect(used.subtracting(known).isEmpty, "not in Catalogue.swift: \(used.subtracting(known).sorted())")

        // Every recording rule the dashboard reads is defined in the rules file.
        let recorded = Set(rules.split(separator: "\n").compactMap { line -> String? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("- record:") else { return nil }
            return trimmed.dropFirst("- record:".count).trimmingCharacters(in: .whitespaces)
        })
        let recordingName = try NSRegularExpression(pattern: #"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+"#)
        for query in dashboard.queries {
            let text = query.expression
            for match in recordingName.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let name = String(text[Range(match.range, in: text)!])
                #expect(recorded.contains(name), "\(query.name) reads \(name), which no rule records")
            }
        }
    }

    @Test func dashboardHasItsVariablesAndPanels() throws {
        let dashboard = try Dashboard(path: Self.dashboardFile)
        #expect(dashboard.variables.map(\.name) == ["site", "instance", "target", "path"])
        #expect(dashboard.datasourceVariable == "prometheus", "no datasource variable of type prometheus")
        for title in ["Success ratio by target × path", "Failures by phase and reason", "Phase latency (p50, p90, p99)",
                      "Preferred path per target", "Docker Hub pulls left", "Mirror digest matches upstream",
                      "Blob throughput", "Certificate days left", "Agents up", "Config reload",
                      "Scheduler lag (p90, p99)", "Resident memory", "Paths up", "Targets up"] {
            #expect(dashboard.panelTitles.contains(title), "no panel \(title)")
        }
        // Every panel and every query reads the datasource the variable picks.
        #expect(dashboard.datasourceUIDs == ["${datasource}"], "datasources: \(dashboard.datasourceUIDs)")
        for query in dashboard.queries where query.panelType != "row" {
            for variable in ["$site", "$instance"] {
                #expect(query.expression.contains(variable), "\(query.name) ignores \(variable)")
            }
        }
    }

    @Test func sampleConfigValidates() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary), "no agent binary at \(Self.binary)")
        let output = try await Lab.runAsync(Self.binary, ["validate", "--config", Self.sampleConfig])
        #expect(output.contains("valid"), "\(output)")
    }

    // MARK: promtool

    @Test(.enabled(if: Lab.has("promtool"), "needs promtool (Debian prometheus): SKIPPED, not passed"))
    func promtoolChecksTheRules() async throws {
        let output = try await Lab.runAsync("promtool", ["check", "rules", Self.rulesFile])
        #expect(output.contains("SUCCESS"), "\(output)")
        #expect(!output.contains("WARNING"), "\(output)")
    }

    @Test(.enabled(if: Lab.has("promtool"), "needs promtool (Debian prometheus): SKIPPED, not passed"))
    func promtoolUnitTestsPass() async throws {
        let files = Self.ruleTestFiles
        #expect(files.count >= 2, "no rule unit tests in dashboards/tests")
        // Throws with promtool's report when a test fails.
        let output = try await Lab.runAsync("promtool", ["test", "rules"] + files)
        #expect(output.components(separatedBy: "SUCCESS").count - 1 == files.count, "\(output)")
    }

    // MARK: systemd

    /// The overall exposure `systemd-analyze security` prints ("→ Overall exposure level for
    /// egress-monitor.service: 1.1 OK").
    static func exposure(_ output: String) -> Double? {
        guard let line = output.split(separator: "\n").first(where: { $0.contains("Overall exposure level") }),
              let value = line.split(separator: ":").last?.split(separator: " ").first else { return nil }
        return Double(value)
    }

    @Test(.enabled(if: Lab.has("systemd-analyze"), "needs systemd-analyze (Debian systemd): SKIPPED, not passed"))
    func unitExposureIsAtMostOnePointFive() async throws {
        let output = try await Lab.runAsync("systemd-analyze", ["security", "--offline=true", "--no-pager", Self.unitFile])
        let score = Self.exposure(output)
        #expect(score != nil, "no exposure in:\n\(output)")
        #expect((score ?? 99) <= 1.5, "exposure \(score ?? -1):\n\(output)")
        print("systemd-analyze security egress-monitor.service: exposure \(score ?? -1)")

        let unit = try Self.read(Self.unitFile)
        for line in ["DynamicUser=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n", "ExecReload=/bin/kill -HUP $MAINPID",
                     "--config /etc/egress-monitor/config.json", "MemoryMax=", "RestrictAddressFamilies=AF_INET AF_INET6",
                     "SystemCallFilter=@system-service"] {
            #expect(unit.contains(line), "the unit lacks \(line)")
        }
    }

    @Test(.enabled(if: Lab.has("systemd-analyze"), "needs systemd-analyze (Debian systemd): SKIPPED, not passed"))
    func capNetRawDropInStaysUnderOnePointFive() async throws {
        // The unit and its drop-in installed under a scratch root, as on a host.
        let rootDir = try Lab.makeDirectory("systemd-root")
        defer { Lab.removeDirectory(rootDir) }
        let unitDir = rootDir + "/etc/systemd/system"
        try FileManager.default.createDirectory(atPath: unitDir + "/egress-monitor.service.d", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.unitFile, toPath: unitDir + "/egress-monitor.service")
        try FileManager.default.copyItem(atPath: Self.dropInFile, toPath: unitDir + "/egress-monitor.service.d/cap-net-raw.conf")
        let output = try await Lab.runAsync("systemd-analyze", ["security", "--offline=true", "--no-pager", "--root=\(rootDir)",
                                                     "egress-monitor.service"])
        let score = Self.exposure(output)
        #expect(output.contains("CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)"), "\(output)")
        #expect(output.split(separator: "\n").contains { $0.hasPrefix("✗ AmbientCapabilities=") }, "drop-in not applied:\n\(output)")
        #expect((score ?? 99) <= 1.5, "exposure with CAP_NET_RAW \(score ?? -1):\n\(output)")
        print("systemd-analyze security egress-monitor.service + cap-net-raw.conf: exposure \(score ?? -1)")
    }

    // MARK: the live fleet

    static let canRunFleet = Lab.has("prometheus") && Lab.has("tinyproxy") && Lab.has("socat")
        && Lab.has("openssl") && Lab.has("curl")

    /// Three times: one Prometheus scraping the three agents (the `site` label set on each target),
    /// the fleet as issue 18 runs it, a Prometheus in agent mode per site (`site` in its
    /// `external_labels`) remote-writing to a central one that evaluates the rules, and that
    /// fleet with native histograms only (the shipped rules' native halves). One after
    /// the other: both fleets issue the same lab certificate, and two fleets at once would
    /// share two cores.
    @Test(.enabled(if: canRunFleet, "needs prometheus, tinyproxy, socat, openssl and curl: SKIPPED, not passed"),
          .timeLimit(.minutes(3)), .serialized, arguments: [OpsFleet.Topology.central, .agentMode, .agentModeNative])
    func everyQueryRunsAgainstAFleetOfAgents(topology: OpsFleet.Topology) async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary), "no agent binary at \(Self.binary)")
        let fleet = try await OpsFleet.start(binary: Self.binary, rulesFile: Self.rulesFile, topology: topology)
        defer { fleet.stop() }
        let prometheus = fleet.api

        // Agent c rejects a reload: AgentConfigReloadFailed has something to find.
        try await fleet.breakReload(of: "c")

        // Wait for the rules to have data from all three agents: 3 sites × 3 targets × 2 paths.
        try await prometheus.waitFor("recorded ratios for every agent, pending alerts", seconds: 30) {
            let pairs = try await prometheus.query("instance_target_path:egress_probe_success:ratio_rate5m").series.count
            let sitePairs = try await prometheus.query("site_target_path:egress_probe_success:ratio_rate5m").series.count
            let latencies = try await prometheus.query("site_target_path_phase:egress_phase_duration_seconds:quantile_rate5m").series.count
            let pending = try await prometheus.query(#"ALERTS{alertstate="pending"}"#).series.compactMap { $0["alertname"] }
            return pairs == 18 && sitePairs == 18 && latencies > 0
                && Set(pending).isSuperset(of: ["DockerHubUnreachableOnAllPaths", "DirectPathDegradedEgressHealthy",
                                                "CertificateExpiringSoon", "AgentConfigReloadFailed", "EgressTargetDown"])
        }

        // Native-only: the central Prometheus holds the native histograms and no classic bucket,
        // so the quantile rules above recorded their series from their native halves.
        if topology == .agentModeNative {
            #expect(try await prometheus.query("egress_phase_duration_seconds_bucket").isEmpty)
            #expect(try await !prometheus.query("histogram_count(egress_phase_duration_seconds)").isEmpty)
        }

        // --- every rule, as Prometheus loaded it ---
        let rules = try await prometheus.rules()
        let ruleLines = try Self.read(Self.rulesFile).split(separator: "\n").filter {
            let trimmed = $0.trimmingCharacters(in: .whitespaces)
            return trimmed.hasPrefix("- record:") || trimmed.hasPrefix("- alert:")
        }
        #expect(rules.count == ruleLines.count, "Prometheus loaded \(rules.count) of \(ruleLines.count) rules")
        for rule in rules {
            #expect(rule.health == "ok", "\(rule.name): health \(rule.health) \(rule.lastError)")
            let answer = try await prometheus.query(rule.query)
            if rule.type == "recording" {
                if Self.mayLackLabData(rule.query) { continue }
                #expect(!answer.isEmpty, "recording rule \(rule.name) returns no data: \(rule.query)")
                let expected: Int? = rule.name.hasPrefix("instance_target_path:") || rule.name.hasPrefix("site_target_path:") ? 18
                    : rule.name.hasPrefix("instance:") ? 3 : nil
                if let expected { #expect(answer.series.count == expected, "\(rule.name): \(answer.series.count) series") }
            } else {
                Self.check(alert: rule.name, answer: answer, expectation: Self.alertExpectations[rule.name])
            }
        }
        // Annotations render (a template error shows as "<error expanding template").
        for alert in try await prometheus.alerts() {
            for (key, value) in alert.annotations {
                #expect(!value.contains("error expanding template"), "\(alert.name) \(key): \(value)")
                #expect(!value.contains("<no value>"), "\(alert.name) \(key): \(value)")
            }
        }

        // --- the dashboard: variables, then every panel's queries ---
        let dashboard = try Dashboard(path: Self.dashboardFile)
        let all = ["site": ".*", "instance": ".*", "target": ".*", "path": ".*"]
        var variableValues: [String: [String]] = [:]
        for variable in dashboard.variables {
            let values = try await prometheus.labelValues(variable.query, substituting: all)
            variableValues[variable.name] = values
        }
        #expect(variableValues["site"] == ["a", "b", "c"])
        #expect(variableValues["instance"]?.count == 3)
        #expect(variableValues["target"] == ["dockerhub", "mirror", "mirror-tls"])
        #expect(variableValues["path"] == ["corp", "direct"])
        let siteB = try await prometheus.labelValues(dashboard.variables[1].query, substituting: all.merging(["site": "b"]) { $1 })
        #expect(siteB == [fleet.agents["b"]!.address], "instances of site b: \(siteB)")

        var report: [String] = []
        for query in dashboard.queries {
            let answer = try await prometheus.query(Dashboard.substitute(query.expression, all))
            report.append("\(query.name): \(answer.summary)")
            if Self.mayLackLabData(query.expression) {
                // Rate limits, digest matches, blob throughput: the fleet probes no registry, so
                // they parse (query() throws on a parse error) and find nothing here; against
                // the registry lab, RegistryTests checks their series.
                #expect(answer.isEmpty, "\(query.name) finds data in a fleet without registries: \(answer.summary)")
                continue
            }
            #expect(!answer.isEmpty, "\(query.name) returns no data: \(query.expression)")
            Self.check(panel: query.panelTitle, answer: answer)

            // The site variable narrows every series to that site.
            let narrowed = try await prometheus.query(Dashboard.substitute(query.expression, all.merging(["site": "b"]) { $1 }))
            #expect(!narrowed.isEmpty, "\(query.name) with site=b returns no data")
            #expect(narrowed.series.allSatisfy { $0["site"] == "b" }, "\(query.name) with site=b: \(narrowed.series)")
        }
        print("Dashboard queries against the lab fleet:\n  " + report.joined(separator: "\n  "))

        // --- AgentDown: stop agent c, and the alert's expression finds it ---
        fleet.stopAgent("c")
        let agentDown = try #require(rules.first { $0.name == "AgentDown" })
        try await prometheus.waitFor("AgentDown for site c", seconds: 15) {
            try await Self.labelKeys(prometheus.query(agentDown.query)) == ["c//"]
        }

        // --- EgressPathDown: stop tinyproxy, and corp is one finding at sites a and b ---
        // (c is stopped). Every target then fails at proxy/proxy_connect_failed over corp.
        let tinyproxy = try #require(fleet.peers.first { $0.name == "tinyproxy" })
        tinyproxy.stop()
        let pathDown = try #require(rules.first { $0.name == "EgressPathDown" })
        try await prometheus.waitFor("EgressPathDown for corp at sites a and b", seconds: 20) {
            try await Self.labelKeys(prometheus.query(pathDown.query)) == ["a//corp", "b//corp"]
        }
        let corpUp = try await prometheus.query(#"egress_path_up{path="corp", site=~"a|b"}"#)
        #expect(corpUp.samples.count == 2 && corpUp.samples.allSatisfy { $0.value == 0 }, "\(corpUp.samples)")
        let directUp = try await prometheus.query(#"egress_path_up{path="direct", site=~"a|b"}"#)
        #expect(directUp.samples.count == 2 && directUp.samples.allSatisfy { $0.value == 1 }, "\(directUp.samples)")
        // The annotation's reason query, as Alertmanager would get it: dockerhub failed at
        // proxy/proxy_refused over corp all along, the three targets now fail to reach the
        // proxy. A new reason's counter needs a few scrapes to show an increase (the alert's
        // `for: 2m` gives it them); here rounds and scrapes are a second apart.
        try await prometheus.waitFor("the reason query to name proxy_connect_failed", seconds: 15) {
            let reason = try await prometheus.query(
                #"topk(1, count by (phase, reason) (increase(egress_probe_failures_total{site="a",path="corp"}[5m]) > 0))"#)
            return reason.series.first?["reason"] == "proxy_connect_failed"
        }
    }

    // MARK: expectations

    enum Expectation {
        /// Must return exactly these series, written "site/target/path".
        case series(Set<String>)
        /// Must return nothing: the lab holds a near miss, or nothing that could fire it.
        case nothing(String)
    }

    static let sites = ["a", "b", "c"]
    static func everySite(_ target: String, _ paths: [String]) -> Set<String> {
        Set(sites.flatMap { site in paths.map { "\(site)/\(target)/\($0)" } })
    }

    /// What each alert's expression returns in the lab, with all three agents up.
    static let alertExpectations: [String: Expectation] = [
        // The lab's mirror fails on the direct path from the first round on: chronic, not a spike.
        "MirrorFailureRateSpike": .nothing("the lab's failures are chronic, which is no spike"),
        // dockerhub is a closed port: refused direct, refused by the proxy.
        "DockerHubUnreachableOnAllPaths": .series(everySite("dockerhub", [""])),
        // mirror's name only resolves through the proxy: direct fails at DNS, corp works.
        "DirectPathDegradedEgressHealthy": .series(everySite("mirror", ["corp"])),
        // Fired against the registry lab: RegistryTests.registryAlertsAndPanelsAgainstLiveAgents.
        "MirrorStale": .nothing("the fleet probes no registry, so no digest to compare"),
        "DockerHubRateLimitLow": .nothing("the fleet probes no registry, so no rate-limit headers"),
        // mirror-tls serves a certificate that expires in 7 days.
        "CertificateExpiringSoon": .series(everySite("mirror-tls", ["corp", "direct"])),
        // Six pairs, 64 slots, 1 s rounds: no round waits 2 s (the lagging agent is in RegistryTests).
        "ProbeSchedulerLagging": .nothing("the fleet's agents keep their schedule"),
        "AgentConfigReloadFailed": .series(["c//"]),
        "AgentDown": .nothing("all three agents are up"),
        // Until tinyproxy stops (the end of the test), no path has every target failing early.
        "EgressPathDown": .nothing("direct and corp each carry a target that works"),
        // dockerhub fails on both paths, which work for mirror-tls.
        "EgressTargetDown": .series(everySite("dockerhub", [""])),
    ]

    /// "site/target/path" of a series (empty where a label is missing).
    static func key(_ labels: [String: String]) -> String {
        "\(labels["site"] ?? "")/\(labels["target"] ?? "")/\(labels["path"] ?? "")"
    }

    static func labelKeys(_ answer: QueryAnswer) -> Set<String> {
        Set(answer.series.map(key))
    }

    static func check(alert: String, answer: QueryAnswer, expectation: Expectation?) {
        switch expectation {
        case nil:
            Issue.record("no live expectation for alert \(alert): add it to OpsTests.alertExpectations")
        case .series(let keys):
            #expect(labelKeys(answer) == keys, "\(alert): \(answer.series)")
        case .nothing(let why):
            #expect(answer.isEmpty, "\(alert) should find nothing (\(why)): \(answer.series)")
        }
    }

    /// What some panels must show in the lab, beyond "some data".
    static func check(panel: String, answer: QueryAnswer) {
        let byKey = Dictionary(answer.samples.map { (key($0.labels), $0.value) }, uniquingKeysWith: { a, _ in a })
        switch panel {
        case "Success ratio by target × path":
            for site in sites {
                #expect(byKey["\(site)/mirror/corp"] == 1 && byKey["\(site)/mirror-tls/direct"] == 1, "\(byKey)")
                #expect(byKey["\(site)/mirror/direct"] == 0 && byKey["\(site)/dockerhub/corp"] == 0, "\(byKey)")
            }
        case "Failures by phase and reason":
            let phases = Set(answer.series.compactMap { $0["phase"] })
            #expect(phases.isSubset(of: Set(Phase.allCases.map(\.rawValue))) && phases.contains("dns") && phases.contains("connect"),
                    "phases: \(phases)")
            #expect(answer.series.contains { $0["target"] == "dockerhub" && $0["reason"] == "tcp_refused" }, "\(answer.series)")
        case "Certificate days left":
            #expect(answer.samples.count == 6 && answer.samples.allSatisfy { $0.value > 6.9 && $0.value <= 7 }, "\(answer.samples)")
        case "Preferred path per target":
            // mirror only gets through the proxy; mirror-tls works on both paths.
            for site in sites {
                #expect(answer.series.filter { $0["site"] == site && $0["target"] == "mirror" }.map { $0["path"] } == ["corp"],
                        "\(answer.series)")
                #expect(answer.series.filter { $0["site"] == site && $0["target"] == "mirror-tls" }.count == 1, "\(answer.series)")
            }
        case "Paths up":
            #expect(answer.samples.count == 6 && answer.samples.allSatisfy { $0.value == 1 }, "\(answer.samples)")
        case "Targets up":
            #expect(answer.samples.count == 9, "\(answer.samples)")
            for sample in answer.samples {
                #expect(sample.value == (sample.labels["target"] == "dockerhub" ? 0 : 1), "\(sample)")
            }
        case "Agents up":
            #expect(answer.samples.count == 3 && answer.samples.allSatisfy { $0.value == 1 })
        case "Config reload":
            #expect(Dictionary(answer.samples.map { ($0.labels["site"] ?? "", $0.value) }, uniquingKeysWith: { a, _ in a })
                    == ["a": 1, "b": 1, "c": 0], "\(answer.samples)")
        default:
            break
        }
    }
}

// MARK: - the dashboard file

/// The parts of the Grafana dashboard JSON the tests read.
struct Dashboard {
    struct Query {
        let panelTitle: String
        let panelType: String
        let refId: String
        let expression: String
        var name: String { "\(panelTitle) [\(refId)]" }
    }
    struct Variable {
        let name: String
        /// `label_values(selector, label)`.
        let query: String
    }

    var queries: [Query] = []
    var variables: [Variable] = []
    var panelTitles: [String] = []
    var datasourceVariable: String?
    var datasourceUIDs: Set<String> = []

    init(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw LabError("\(path): not a JSON object")
        }
        for variable in (json["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? [] {
            let name = variable["name"] as? String ?? ""
            if variable["type"] as? String == "datasource" {
                datasourceVariable = variable["query"] as? String
                continue
            }
            if let ds = variable["datasource"] as? [String: Any], let uid = ds["uid"] as? String { datasourceUIDs.insert(uid) }
            let query = (variable["query"] as? [String: Any])?["query"] as? String ?? variable["query"] as? String ?? ""
            variables.append(Variable(name: name, query: query))
        }
        func walk(_ panels: [[String: Any]]) {
            for panel in panels {
                let title = panel["title"] as? String ?? ""
                let type = panel["type"] as? String ?? ""
                panelTitles.append(title)
                if let ds = panel["datasource"] as? [String: Any], let uid = ds["uid"] as? String { datasourceUIDs.insert(uid) }
                for target in panel["targets"] as? [[String: Any]] ?? [] {
                    if let ds = target["datasource"] as? [String: Any], let uid = ds["uid"] as? String { datasourceUIDs.insert(uid) }
                    queries.append(Query(panelTitle: title, panelType: type, refId: target["refId"] as? String ?? "?",
                                         expression: target["expr"] as? String ?? ""))
                }
                walk(panel["panels"] as? [[String: Any]] ?? [])
            }
        }
        walk(json["panels"] as? [[String: Any]] ?? [])
    }

    /// Replaces Grafana's variables as Grafana would: `$site` by the chosen value (".*" for All,
    /// the variables' allValue) and `$__rate_interval` by a window that holds several of the
    /// lab's 1 s scrapes.
    static func substitute(_ expression: String, _ values: [String: String]) -> String {
        var text = expression.replacingOccurrences(of: "$__rate_interval", with: "30s")
        for (name, value) in values {
            text = text.replacingOccurrences(of: "${\(name)}", with: value).replacingOccurrences(of: "$\(name)", with: value)
        }
        return text
    }
}

// MARK: - Prometheus's HTTP API

struct QueryAnswer {
    struct Sample { let labels: [String: String]; let value: Double }
    /// The label sets of the answer's series (a scalar answer has one, empty).
    let series: [[String: String]]
    let samples: [Sample]
    var isEmpty: Bool { series.isEmpty }

    init(series: [[String: String]], samples: [Sample]) {
        self.series = series
        self.samples = samples
    }

    /// "N series" plus a few of them with their values, for the test log.
    var summary: String {
        if samples.isEmpty { return "no data" }
        let shown = samples.prefix(4).map { sample -> String in
            let labels = sample.labels.filter { !["job", "instance", "__name__"].contains($0.key) }
                .sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            return "{\(labels)} \(String(format: "%.4g", sample.value))"
        }
        return "\(samples.count) series: " + shown.joined(separator: "; ") + (samples.count > 4 ? "; …" : "")
    }
}

struct PrometheusAPI: Sendable {
    let base: String

    struct Rule { let name: String; let type: String; let query: String; let health: String; let lastError: String }
    struct Alert { let name: String; let state: String; let annotations: [String: String] }

    /// GETs `path` with URL-encoded parameters; the `data` of a `"status": "success"` answer.
    /// Throws with Prometheus's error (a parse error, say) otherwise.
    func get(_ path: String, _ parameters: [(String, String)] = []) async throws -> Any {
        // --noproxy: a proxy in the environment must never see these loopback requests.
        var arguments = ["-sS", "--noproxy", "*", "--max-time", "10", "--get"]
        for (key, value) in parameters { arguments += ["--data-urlencode", "\(key)=\(value)"] }
        let text = try await Lab.runAsync("curl", arguments + [base + path])
        guard let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw LabError("\(path) \(parameters): not JSON: \(text.prefix(500))")
        }
        guard json["status"] as? String == "success", let data = json["data"] else {
            throw LabError("\(path) \(parameters.map(\.1)): \(json["errorType"] ?? "") \(json["error"] ?? text)")
        }
        return data
    }

    /// An instant query at "now". A parse error throws.
    func query(_ expression: String) async throws -> QueryAnswer {
        guard let data = try await get("/api/v1/query", [("query", expression)]) as? [String: Any] else {
            throw LabError("query \(expression): no data object")
        }
        switch data["resultType"] as? String {
        case "vector", "matrix":
            var series: [[String: String]] = []
            var samples: [QueryAnswer.Sample] = []
            for item in data["result"] as? [[String: Any]] ?? [] {
                let labels = item["metric"] as? [String: String] ?? [:]
                series.append(labels)
                let pair = item["value"] as? [Any] ?? (item["values"] as? [[Any]])?.last ?? []
                let value = (pair.last as? String).flatMap(Double.init) ?? .nan
                samples.append(.init(labels: labels, value: value))
            }
            return QueryAnswer(series: series, samples: samples)
        case "scalar":
            let pair = data["result"] as? [Any] ?? []
            let value = (pair.last as? String).flatMap(Double.init) ?? .nan
            return QueryAnswer(series: [[:]], samples: [.init(labels: [:], value: value)])
        default:
            throw LabError("query \(expression): unexpected answer \(data)")
        }
    }

    /// What Grafana asks for a `label_values(selector, label)` variable: the label's values
    /// among the series the selector matches.
    func labelValues(_ variableQuery: String, substituting values: [String: String]) async throws -> [String] {
        let text = Dashboard.substitute(variableQuery, values)
        let pattern = try NSRegularExpression(pattern: #"^label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\)$"#)
        guard let match = pattern.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
              let selector = Range(match.range(at: 1), in: text), let label = Range(match.range(at: 2), in: text) else {
            throw LabError("variable query \(variableQuery) is not label_values(selector, label)")
        }
        let data = try await get("/api/v1/label/\(text[label])/values", [("match[]", String(text[selector]))])
        return (data as? [String] ?? []).sorted()
    }

    func rules() async throws -> [Rule] {
        guard let data = try await get("/api/v1/rules") as? [String: Any] else { throw LabError("rules: no data") }
        return (data["groups"] as? [[String: Any]] ?? []).flatMap { group in
            (group["rules"] as? [[String: Any]] ?? []).map {
                Rule(name: $0["name"] as? String ?? "", type: $0["type"] as? String ?? "",
                     query: $0["query"] as? String ?? "", health: $0["health"] as? String ?? "",
                     lastError: $0["lastError"] as? String ?? "")
            }
        }
    }

    func alerts() async throws -> [Alert] {
        guard let data = try await get("/api/v1/alerts") as? [String: Any] else { throw LabError("alerts: no data") }
        return (data["alerts"] as? [[String: Any]] ?? []).map {
            Alert(name: ($0["labels"] as? [String: String])?["alertname"] ?? "", state: $0["state"] as? String ?? "",
                  annotations: $0["annotations"] as? [String: String] ?? [:])
        }
    }

    /// Polls `condition` every 250 ms until it holds; throws after `seconds`.
    func waitFor(_ what: String, seconds: Double, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        var lastError = ""
        while Date() < deadline {
            do {
                if try await condition() { return }
            } catch {
                lastError = "\(error)"
            }
            try await Task.sleep(nanoseconds: 250_000_000)
        }
        throw LabError("waited \(seconds)s for \(what) \(lastError)")
    }
}

// MARK: - the lab fleet

/// Three agents (sites a, b, c) probing loopback peers, scraped by one Prometheus that loads
/// the rules. Every process listens on 127.0.0.1; every probe goes to 127.0.0.1.
///
/// | target       | what it is                                        | direct                    | corp (tinyproxy)      |
/// |--------------|---------------------------------------------------|---------------------------|-----------------------|
/// | `dockerhub`  | tcp to a closed port                              | connect / tcp_refused     | proxy / proxy_refused |
/// | `mirror`     | tcp to `localhost:<open>`, resolver on a dead port | dns fails                 | ok (proxy resolves)   |
/// | `mirror-tls` | tls to socat, a certificate expiring in 7 days     | ok                        | ok                    |
final class OpsFleet: @unchecked Sendable {
    // @unchecked: used from one test task only; the processes it holds are Sendable.
    struct Agent {
        let process: LabProcess
        let address: String
        let configFile: String
    }

    let directory: String
    var peers: [LabProcess] = []
    let openServer: LabTCPServer
    var agents: [String: Agent] = [:]
    var prometheus: LabPrometheus?
    /// The per-site Prometheus agents of ``Topology/agentMode``.
    var siteAgents: [LabProcess] = []
    var api = PrometheusAPI(base: "")

    /// How the agents' metrics reach the Prometheus that evaluates the rules.
    enum Topology: Sendable, CustomTestStringConvertible {
        /// One Prometheus scrapes all three agents; `site` is a target label.
        case central
        /// Per site, a Prometheus in agent mode (`--enable-feature=agent`) scrapes its agent and
        /// remote-writes to the central Prometheus (`--web.enable-remote-write-receiver`),
        /// `site` being its `external_labels`.
        case agentMode
        /// ``agentMode`` with native histograms end to end: the site Prometheus scrape protobuf
        /// (`--enable-feature=native-histograms`) and remote-write the native histograms
        /// (`send_native_histograms: true`; 2.42 drops them from remote write without it) to a
        /// central Prometheus with the feature, which then holds no `_bucket` series at all.
        case agentModeNative

        var testDescription: String {
            switch self {
            case .central: "one central Prometheus"
            case .agentMode: "agent mode + remote write"
            case .agentModeNative: "agent mode + remote write, native histograms only"
            }
        }
    }

    private init(directory: String, openServer: LabTCPServer) {
        self.directory = directory
        self.openServer = openServer
    }

    static func start(binary: String, rulesFile: String, topology: Topology = .central) async throws -> OpsFleet {
        let directory = try Lab.makeDirectory("ops-fleet")
        let fleet = OpsFleet(directory: directory, openServer: try LabTCPServer.start(.closeImmediately))
        do {
            try await fleet.startPeersAndAgents(binary: binary)
            try await fleet.startPrometheus(rulesFile: rulesFile, scraping: topology == .central, native: topology == .agentModeNative)
            if topology != .central { try await fleet.startSiteAgents(native: topology == .agentModeNative) }
        } catch {
            fleet.stop()
            throw error
        }
        return fleet
    }

    private func startPeersAndAgents(binary: String) async throws {
        let certs = try await LabCertificates.shared()
        // openssl runs on a thread of its own, not on the cooperative pool.
        let expiring = try await Lab.offPool {
            try certs.issue("ops-expiring", commonName: "localhost", subjectAltNames: LabCertificates.labNames,
                            notAfter: Date().addingTimeInterval(7 * 86_400))
        }

        let tlsPort = FreePort.next()
        let socat = try LabProcess("socat", arguments: [
            "OPENSSL-LISTEN:\(tlsPort),bind=127.0.0.1,reuseaddr,fork,cert=\(expiring.certFile),key=\(expiring.keyFile),verify=0",
            "/dev/null"], directory: directory, name: "socat-tls")
        peers.append(socat)
        try await socat.waitForTCPPort(tlsPort, timeout: 10)

        let proxyPort = FreePort.next()
        let proxyConfig = directory + "/tinyproxy.conf"
        try """
        Port \(proxyPort)
        Listen 127.0.0.1
        Timeout 5
        Allow 127.0.0.1
        MaxClients 50
        LogLevel Info

        """.write(toFile: proxyConfig, atomically: true, encoding: .utf8)
        let tinyproxy = try LabProcess("tinyproxy", arguments: ["-d", "-c", proxyConfig], directory: directory)
        peers.append(tinyproxy)
        try await tinyproxy.waitForTCPPort(proxyPort, timeout: 10)

        let closedPort = FreePort.next()
        let deadResolverPort = FreePort.next()
        let config = """
        {"interval_seconds": 1, "timeout_seconds": 1, "discovery": false,
         "resolvers": [{"name": "dead", "address": "127.0.0.1:\(deadResolverPort)"}],
         "paths": [{"name": "direct"}, {"name": "corp", "proxy": "http://127.0.0.1:\(proxyPort)"}],
         "targets": [
           {"name": "dockerhub", "kind": "tcp", "url": "tcp://127.0.0.1:\(closedPort)"},
           {"name": "mirror", "kind": "tcp", "url": "tcp://localhost:\(openServer.port)", "resolver": "dead"},
           {"name": "mirror-tls", "kind": "tls", "url": "tls://127.0.0.1:\(tlsPort)", "ca_file": "\(certs.caFile)"}]}

        """
        for site in ["a", "b", "c"] {
            let configFile = directory + "/agent-\(site).json"
            try config.write(toFile: configFile, atomically: true, encoding: .utf8)
            let port = FreePort.next()
            let process = try LabProcess(binary, arguments: ["--config", configFile, "--listen", "127.0.0.1:\(port)"],
                                         directory: directory, name: "agent-\(site)")
            agents[site] = Agent(process: process, address: "127.0.0.1:\(port)", configFile: configFile)
        }
        for agent in agents.values {
            try await agent.process.waitForTCPPort(UInt16(agent.address.split(separator: ":").last!)!, timeout: 10)
        }
    }

    private func startPrometheus(rulesFile: String, scraping: Bool, native: Bool = false) async throws {
        let server = try await LabPrometheus.start(rulesFile: rulesFile,
                                                   sites: scraping ? agents.keys.sorted().map { ($0, agents[$0]!.address) } : [],
                                                   arguments: ["--web.enable-remote-write-receiver"]
                                                       + (native ? ["--enable-feature=native-histograms"] : []))
        prometheus = server
        api = PrometheusAPI(base: server.base)
    }

    /// One Prometheus in agent mode per site: scrapes that site's agent every second, writes
    /// ahead to its own WAL and remote-writes to the central Prometheus (``api``). The same
    /// configuration the README's Operations section shows.
    private func startSiteAgents(native: Bool = false) async throws {
        for site in agents.keys.sorted() {
            let configFile = directory + "/prometheus-agent-\(site).yml"
            try """
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
              external_labels: {site: "\(site)"}
            scrape_configs:
              - job_name: egress-monitor
                static_configs:
                  - targets: ["\(agents[site]!.address)"]
            remote_write:
              - url: "\(api.base)/api/v1/write"
                queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}
                send_native_histograms: \(native)

            """.write(toFile: configFile, atomically: true, encoding: .utf8)
            let port = FreePort.next()
            let process = try LabProcess("prometheus", arguments: [
                "--enable-feature=agent" + (native ? ",native-histograms" : ""), "--config.file=\(configFile)", "--storage.agent.path=\(directory)/agent-\(site)",
                "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn"],
                directory: directory, name: "prometheus-agent-\(site)")
            siteAgents.append(process)
            try await process.waitForTCPPort(port, timeout: 20)
        }
    }

    /// Writes a config the agent rejects and sends it SIGHUP, until its metrics say the reload failed.
    func breakReload(of site: String) async throws {
        let agent = agents[site]!
        try #"{"interval_seconds": 1, "targets": [{"name": "broken", "kind": "tcp"}]}"#
            .write(toFile: agent.configFile, atomically: true, encoding: .utf8)
        try await api.waitFor("agent \(site) to reject its reload", seconds: 10) {
            // Resent while it has not taken: a signal that arrives before the agent's handler
            // is installed is ignored.
            kill(agent.process.pid, SIGHUP)
            try await Task.sleep(nanoseconds: 200_000_000)
            let metrics = try await Lab.runAsync("curl", ["-sS", "--noproxy", "*", "--max-time", "2", "http://\(agent.address)/metrics"])
            return metrics.split(separator: "\n").contains("egress_config_last_reload_successful 0")
        }
    }

    func stopAgent(_ site: String) {
        agents[site]?.process.stop()
    }

    /// Stops every process of the lab: SIGTERM to each now, SIGKILL after a grace period (from
    /// LabProcess's own threads, so the caller in async code does not wait). The lab directory
    /// goes once they have exited (or with the lab root when the test process ends).
    func stop() {
        let processes = [prometheus?.process].compactMap { $0 } + siteAgents + agents.values.map(\.process) + peers
        for process in processes { process.stop() }
        openServer.stop()
        let directory = self.directory
        Thread {
            let deadline = Date().addingTimeInterval(10)
            while processes.contains(where: \.isRunning) && Date() < deadline { usleep(20_000) }
            Lab.removeDirectory(directory)
        }.start()
    }
}
