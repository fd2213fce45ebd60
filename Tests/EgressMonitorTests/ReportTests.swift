#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import EgressMonitor
@testable import EgressNet

/// The reports people read, built from `ProbeResult` values: hints, the `check` table and JSON,
/// `suggest`, the `validate` summary and the status page. No network here; `CLITests` runs the
/// same against lab peers.
@Suite struct ReportTests {
    // MARK: fixtures

    static let t0 = 1_700_000_000.0

    /// A success whose phases add up to `duration`: dns a tenth, connect a tenth, tls 3/10, http half.
    static func ok(_ target: String, _ path: String, _ duration: Double, digests: [String: String] = [:]) -> ProbeResult {
        var registry = RegistryObservation()
        registry.digests = digests
        return ProbeResult(target: target, path: path, startedAt: t0, duration: duration,
                           phases: [.dns: duration / 10, .connect: duration / 10, .tls: duration * 3 / 10, .http: duration / 2],
                           failure: nil, address: "127.0.0.1:5443",
                           tls: TLSSessionInfo(version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256", earliestNotAfter: t0 + 86_400 * 30),
                           httpStatus: 200, registry: digests.isEmpty ? nil : registry)
    }

    static func fail(_ target: String, _ path: String, _ phase: Phase, _ reason: FailureReason,
                     _ detail: String = "detail", duration: Double = 0.05) -> ProbeResult {
        let before = Phase.allCases.filter { $0 < phase && $0 != .proxy }
        return ProbeResult(target: target, path: path, startedAt: t0, duration: duration,
                           phases: Dictionary(uniqueKeysWithValues: before.map { ($0, 0.001) }),
                           failure: ProbeFailure(phase, reason, detail))
    }

    static func url(_ text: String) -> EndpointURL {
        try! EndpointURL.parse(text, defaultPorts: EndpointURL.wellKnownPorts).get()
    }

    static func config(targets: [Target], paths: [EgressPath]) -> AgentConfig {
        AgentConfig(listen: SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0), intervalSeconds: 30, timeoutSeconds: 5,
                    resolvers: [.system], paths: paths, targets: targets)
    }

    /// SGR escape sequences (colour, bold).
    static func hasColour(_ s: String) -> Bool { s.range(of: "\u{1B}\\[[0-9;]*m", options: .regularExpression) != nil }

    // MARK: hints

    @Test(arguments: FailureReason.allCases)
    func everyFailureReasonHasAHint(_ reason: FailureReason) {
        let hint = Hints.table[reason]
        #expect(hint != nil, "no hint for \(reason.rawValue): add one to Hints.table")
        #expect(hint?.meaning.hasSuffix(".") == true)
        #expect((hint?.advice.count ?? 0) > 10)
        #expect(Hints.hint(for: reason) != Hints.fallback)
    }

    /// The registry kind's metric projection keeps track of its own digest-match series: an
    /// image a mirror answered before and could not answer this round loses its comparison;
    /// the images it did answer keep theirs. A tcp round projects nothing of the kind's.
    @Test func aMirrorRoundWithoutAnImageDropsOnlyThatImagesComparison() {
        let store = ResultStore(metrics: Catalogue.makeStore())
        store.setPairs(["hub", "mirror", "port"].map { PairKey(target: $0, path: "direct") })
        store.setUpstreams(["mirror": "hub"])
        func round(_ target: String, _ digests: [String: String], failure: ProbeFailure? = nil) -> ProbeResult {
            var registry = RegistryObservation()
            registry.digests = digests
            return ProbeResult(target: target, path: "direct", startedAt: Self.t0, duration: 0.1, phases: [:],
                               failure: failure, observation: .registry(registry))
        }
        func match(_ image: String) -> Double? { store.metrics.value(Catalogue.manifestDigestMatch, ["mirror", "direct", image]) }
        store.record(round("hub", ["a:1": "sha256:aa", "b:1": "sha256:bb"]))
        store.record(round("mirror", ["a:1": "sha256:aa", "b:1": "sha256:00"]))
        #expect(match("a:1") == 1)
        #expect(match("b:1") == 0)
        store.record(round("mirror", ["a:1": "sha256:aa"], failure: ProbeFailure(.manifest, .httpNotFound, "b:1 missing")))
        #expect(match("a:1") == 1, "what it answered still compares")
        #expect(match("b:1") == nil, "what it could not answer has no comparison")
        store.record(ProbeResult(target: "port", path: "direct", startedAt: Self.t0, duration: 0.1, phases: [:],
                                 failure: nil, observation: .tcp))
        #expect(match("a:1") == 1)
        #expect(store.metrics.value(Catalogue.probeRuns, ["port", "direct"]) == 1)
    }

    @Test func hintsAreDistinctAndSayWhatTheIssueAsks() {
        let meanings = FailureReason.allCases.map { Hints.hint(for: $0).meaning }
        #expect(Set(meanings).count == meanings.count, "two reasons share a meaning")
        #expect(Hints.hint(for: .tlsReset).meaning.contains("right after the ClientHello"))
        #expect(Hints.hint(for: .tlsReset).meaning.contains("SNI filtering"))
        #expect(Hints.hint(for: .tlsReset).advice.contains("proxy"))
        #expect(Hints.hint(for: .httpRateLimited).meaning.contains("anonymous pull quota"))
        #expect(Hints.hint(for: .httpRateLimited).advice.contains("authenticate"))
        #expect(Hints.hint(for: .httpRateLimited).advice.contains("mirror"))
        #expect(Hints.hint(for: .dnsSuspiciousAnswer).meaning.contains("poisoned"))
    }

    /// Two encrypted resolvers disagreeing prove no injection (neither answer can have been
    /// forged on the way): the hint says the resolver itself answers otherwise. A failure
    /// without evidence keeps the reason's hint. (The other three texts: EncryptedDNSTests.)
    @Test func suspiciousAnswerBetweenTwoEncryptedResolvers() {
        let d = PoisonEvidence.Disagreement(host: "registry-1.docker.io", resolver: "isp-doh", resolverTransport: "DNS over HTTPS",
                                            answer: ["198.51.100.9"], trusted: "ali-dot", trustedTransport: "DNS over TLS",
                                            trustedAnswer: ["203.0.113.4"])
        let hint = Hints.hint(for: ProbeFailure(.dns, .dnsSuspiciousAnswer, "d", evidence: .disagreement(d)))
        #expect(hint.meaning.contains("Two encrypted resolvers disagree") && hint.meaning.contains("isp-doh itself answers otherwise"))
        #expect(hint.meaning.contains("198.51.100.9") && hint.meaning.contains("203.0.113.4"))
        #expect(!hint.meaning.contains("proven"))
        #expect(Hints.hint(for: ProbeFailure(.dns, .dnsSuspiciousAnswer, "d")) == Hints.hint(for: .dnsSuspiciousAnswer))
    }

    /// The agent's status report judges its findings from its entries: a path where every
    /// target got a poisoned answer is down, and the finding's hint says what was proven, as
    /// `check`'s does (red while the entries dropped the failure's evidence: the generic hint).
    @Test func aFindingOfPoisonedAnswersSaysWhatWasProvenInTheAgentsReport() throws {
        let d = PoisonEvidence.Disagreement(host: "registry-1.docker.io", resolver: "system", resolverTransport: "plain DNS",
                                            answer: ["198.51.100.9"], trusted: "ali-dot", trustedTransport: "DNS over TLS",
                                            trustedAnswer: ["203.0.113.4"])
        let results = ["hub", "hub-v6"].map {
            ProbeResult(target: $0, path: "isp", startedAt: Self.t0, duration: 0.05, phases: [:],
                        failure: ProbeFailure(.dns, .dnsSuspiciousAnswer, "d", evidence: .disagreement(d)))
        }
        let report = StatusReport(generatedAt: Self.t0, agent: nil, results: results.map {
            StatusReport.Entry(target: $0.target, path: $0.path, last: $0, lastSuccessAt: nil)
        }, recommendations: [:])
        let down = try #require(report.verdicts.downPaths.first, "the path where every target was poisoned is down")
        let inReport = Findings.hint(down)
        #expect(inReport?.meaning.contains("Poisoning proven") == true, "\(String(describing: inReport))")
        #expect(inReport == Attribution.judge(results).downPaths.first.flatMap { Findings.hint($0) })
    }

    // MARK: the README's contract

    /// The README is what dashboards and scripts are written against: every `egress_` family of
    /// the catalogue has a row in its Metrics table, and every key a `check --json` result has is
    /// in its list of those keys (red while the registry families or `ip_protocol` were missing).
    @Test func readmeDocumentsEveryMetricAndResultKey() throws {
        let readme = try String(contentsOfFile: OpsTests.root + "/README.md", encoding: .utf8)
        let names = Catalogue.all.map(\.name).filter { $0.hasPrefix("egress_") }
        #expect(names.count > 20)
        let undocumented = names.filter { !readme.contains("\n| `\($0)` |") }
        #expect(undocumented.isEmpty, "README's Metrics table has no row for \(undocumented)")
        let list = try #require(readme.range(of: "\"results\": [{").flatMap { start in
            readme[start.upperBound...].range(of: "}]").map { readme[start.upperBound..<$0.lowerBound] }
        }, "README has no check --json key list")
        let keys = try #require(StatusReport.Entry(target: "t", path: "p", last: Self.ok("t", "p", 0.1), lastSuccessAt: nil)
            .json.objectValue?.keys)
        #expect(keys.count > 15)
        let unlisted = keys.filter { !list.contains("\"\($0)\"") }.sorted()
        #expect(unlisted.isEmpty, "README's check --json list lacks \(unlisted)")
    }

    // MARK: check

    static let roundResults = [
        ok("lab", "direct", 0.020),
        ok("lab", "corp", 0.012),
        fail("hub", "direct", .tls, .tlsReset, "connection reset by peer during the handshake"),
        ok("hub", "corp", 0.180),
        fail("busy", "direct", .http, .httpRateLimited, "GET /v2/ answered 429 Too Many Requests"),
        fail("busy", "corp", .http, .httpRateLimited, "GET /v2/ answered 429 Too Many Requests"),
    ]

    @Test func recommendationIsTheFastestWorkingPathAndNoneWhereNothingWorks() {
        #expect(CheckCommand.recommendations(Self.roundResults) == ["lab": "corp", "hub": "corp"])
        // A tie goes to the path named first in the config (results come in config order).
        #expect(CheckCommand.recommendations([Self.ok("a", "zeta", 0.1), Self.ok("a", "alpha", 0.1)]) == ["a": "zeta"])
        // Time to the registry's answer decides, not the whole round.
        let slowBlob = ProbeResult(target: "a", path: "alpha", startedAt: Self.t0, duration: 5,
                                   phases: [.connect: 0.001, .http: 0.001, .blob: 4.9], failure: nil)
        #expect(CheckCommand.recommendations([Self.ok("a", "zeta", 0.1), slowBlob]) == ["a": "alpha"])
    }

    @Test func exitStatusIsZeroOnlyWhenEveryTargetIsReachableSomewhere() {
        #expect(CheckCommand.exitStatus(Self.roundResults) == 1)
        #expect(CheckCommand.exitStatus(Self.roundResults.filter { $0.target != "busy" }) == 0)
        #expect(CheckCommand.exitStatus([Self.fail("a", "direct", .dns, .dnsTimeout)]) == 1)
    }

    @Test func tableShowsPhasesResultsHintsAndTheRecommendation() {
        let table = CheckCommand.table(Self.roundResults)
        // busy fails on both paths the same way: one finding, said first, instead of two lines.
        #expect(table.hasPrefix("""
            Findings:
              target busy: down — fails on both paths: http/http_rate_limited (GET /v2/ answered 429 Too Many Requests)
                Too many requests (429): the anonymous pull quota is exhausted.
                Try: authenticate (docker login) for a higher quota, or use a mirror.

            TARGET
            """), "\(table)")
        let lines = table.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            .drop { !$0.hasPrefix("TARGET") }.map { $0 }
        #expect(lines[0].split(separator: " ").map(String.init) == ["TARGET", "PATH", "DNS", "CONNECT", "TLS", "HTTP", "TOTAL", "RESULT"])
        let hubDirect = lines.first { $0.hasPrefix("hub ") && $0.contains("direct") } ?? ""
        #expect(hubDirect.contains("FAILED"), "the failing phase's column says so: \(hubDirect)")
        #expect(hubDirect.hasSuffix("FAIL tls/tls_reset"))
        #expect(lines.contains { $0.hasPrefix("lab ") && $0.contains("corp") && $0.contains("12 ms") && $0.hasSuffix("ok") })
        // Columns line up: RESULT starts at the same column on every row.
        let resultColumn = lines[0].range(of: "RESULT")!.lowerBound.utf16Offset(in: lines[0])
        for line in lines[1...6] {
            let cell = line.range(of: "ok") ?? line.range(of: "FAIL ") ?? line.range(of: "FAIL,")
            #expect(cell.map { $0.lowerBound.utf16Offset(in: line) } == resultColumn, "\(line)")
        }
        // Each reason once, in words, with what to try, and every pair that failed that way.
        #expect(table.contains("tls/tls_reset: The TLS handshake was reset right after the ClientHello: typical of SNI"))
        #expect(table.contains("hub over direct: connection reset by peer during the handshake"))
        #expect(table.components(separatedBy: "anonymous pull quota is exhausted").count == 2)
        #expect(!table.contains("busy over direct"), "the finding explains it")
        #expect(lines.filter { $0.hasPrefix("busy ") }.allSatisfy { $0.hasSuffix("FAIL, target busy down") })
        #expect(table.contains("Why they failed (other failures), and what to try:"))
        #expect(table.contains("Recommended path per target:"))
        #expect(table.contains("  lab   corp (12 ms; also ok: direct)"))
        #expect(table.contains("  hub   corp (180 ms)"))
        #expect(table.contains("  busy  none: unreachable on every path probed (direct, corp)"))
        #expect(table.hasSuffix("2 of 3 targets reachable.\n"))
        #expect(!Self.hasColour(table))
    }

    @Test func colourOnlyWhenTheStyleSaysSo() {
        let coloured = CheckCommand.table(Self.roundResults, style: TerminalStyle(colour: true, progress: true))
        #expect(Self.hasColour(coloured))
        #expect(coloured.contains("\u{1B}[31mFAIL tls/tls_reset\u{1B}[0m"))
        // Stripped of colour, the coloured table is the plain one.
        let stripped = coloured.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
        #expect(stripped == CheckCommand.table(Self.roundResults))
        let progress = CheckCommand.progressLine(done: 2, total: 6, last: Self.roundResults[2], style: .plain)
        #expect(progress == "probing 2/6… hub over direct: tls/tls_reset")
    }

    @Test func terminalStyleFollowsIsattyAndNoColor() {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        #expect(TerminalStyle.detect(fd: fds[1], environment: [:]) == .plain)
        #expect(TerminalStyle.style(terminal: false, environment: [:]) == .plain)
        #expect(TerminalStyle.style(terminal: true, environment: [:]) == TerminalStyle(colour: true, progress: true))
        #expect(TerminalStyle.style(terminal: true, environment: ["NO_COLOR": "1"]) == TerminalStyle(colour: false, progress: true))
        #expect(TerminalStyle.style(terminal: true, environment: ["TERM": "dumb"]).colour == false)
        // no-color.org: an empty NO_COLOR does not count. (CLITests runs the binary on a real pty.)
        #expect(TerminalStyle.style(terminal: true, environment: ["NO_COLOR": ""]).colour == true)
    }

    @Test func checkJSONHasOneShapeForEveryResult() throws {
        let json = try JSONSerialization.jsonObject(with: Data(CheckCommand.json(Self.roundResults))) as? [String: Any]
        let document = try #require(json)
        #expect(Set(document.keys) == ["results", "recommendations", "paths", "targets"])
        let targets = try #require(document["targets"] as? [String: [String: Any]])
        #expect(targets["busy"]?["up"] as? Bool == false && targets["busy"]?["finding"] as? Bool == true)
        #expect(targets["busy"]?["reason"] as? String == "http_rate_limited")
        #expect(targets["hub"]?["up"] as? Bool == true && targets["hub"]?["reason"] is NSNull)
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        #expect(paths["direct"]?["up"] as? Bool == true && paths["direct"]?["phase"] is NSNull, "tls and http failures are the targets'")
        #expect(document["recommendations"] as? [String: String] == ["lab": "corp", "hub": "corp"])
        let results = try #require(document["results"] as? [[String: Any]])
        #expect(results.count == 6)
        let keys: Set<String> = ["target", "path", "success", "phase", "reason", "detail", "hint", "phases", "duration",
                                 "address", "ip_protocol", "tls_version", "tls_cipher", "cert_not_after", "http_status", "rate_limit_limit",
                                 "rate_limit_remaining", "digests", "blob_bytes_per_second", "started_at", "last_success_at"]
        for r in results { #expect(Set(r.keys) == keys) }

        let labDirect = results[0]
        #expect(labDirect["target"] as? String == "lab" && labDirect["path"] as? String == "direct")
        #expect(labDirect["success"] as? Bool == true)
        #expect(labDirect["phase"] is NSNull && labDirect["reason"] is NSNull && labDirect["hint"] is NSNull)
        let d = 0.02
        let expectedPhases: [String: Double] = ["dns": d / 10, "connect": d / 10, "tls": d * 3 / 10, "http": d / 2]
        #expect(labDirect["phases"] as? [String: Double] == expectedPhases)
        #expect(labDirect["digests"] as? [String: String] == [:])
        #expect(labDirect["rate_limit_remaining"] is NSNull)
        #expect(labDirect["tls_version"] as? String == "TLSv1.3")
        #expect(labDirect["address"] as? String == "127.0.0.1:5443")
        #expect(labDirect["http_status"] as? Int == 200)

        let hubDirect = results[2]
        #expect(hubDirect["success"] as? Bool == false)
        #expect(hubDirect["phase"] as? String == "tls")
        #expect(hubDirect["reason"] as? String == "tls_reset")
        #expect((hubDirect["hint"] as? String)?.contains("SNI filtering") == true)
        #expect(hubDirect["tls_version"] is NSNull)
        #expect(hubDirect["last_success_at"] is NSNull)
    }

    // MARK: suggest

    static let staleMirror: Target = {
        var t = Target(name: "stale", kind: .mirror, url: url("https://stale.example"))
        t.registry.upstream = "dockerhub"
        return t
    }()

    static let suggestConfig = config(
        targets: [
            Target(name: "dockerhub", kind: .dockerhub, url: url("https://registry-1.docker.io")),
            staleMirror,
            Target(name: "slow", kind: .mirror, url: url("https://slow.example")),
            Target(name: "fast-half", kind: .mirror, url: url("https://half.example")),
            Target(name: "fast", kind: .mirror, url: url("https://fast.example:5000")),
            Target(name: "limited", kind: .mirror, url: url("https://limited.example")),
            Target(name: "own", kind: .registry, url: url("https://own.example")),
        ],
        paths: [.direct, EgressPath(name: "corp", kind: .proxy(url("http://alice:s3cr%40t@proxy.corp:3128"))),
                EgressPath(name: "vpn", kind: .interface("tun0"))])

    @Test func suggestListsHealthyMirrorsByHealthThenSpeedAndTheProxyDropIn() {
        let results = [
            Self.fail("dockerhub", "direct", .tls, .tlsReset),
            Self.ok("dockerhub", "corp", 0.300, digests: ["library/alpine:latest": "sha256:new"]),
            Self.ok("stale", "direct", 0.001, digests: ["library/alpine:latest": "sha256:old"]),
            Self.fail("dockerhub", "vpn", .connect, .pathSetupFailed),
            Self.ok("slow", "direct", 0.400), Self.ok("slow", "corp", 0.500), Self.ok("slow", "vpn", 0.450),
            Self.ok("fast-half", "direct", 0.010), Self.fail("fast-half", "corp", .proxy, .proxyRefused), Self.fail("fast-half", "vpn", .connect, .tcpTimeout),
            Self.fail("fast", "direct", .tls, .tlsReset), Self.ok("fast", "corp", 0.050), Self.ok("fast", "vpn", 0.060),
            Self.fail("limited", "direct", .http, .httpRateLimited), Self.fail("limited", "corp", .http, .httpRateLimited),
            Self.fail("limited", "vpn", .http, .httpRateLimited),
            Self.ok("own", "direct", 0.001),
        ]
        let s = SuggestCommand.analyse(Self.suggestConfig, results)
        #expect(s.mirrors.map(\.target.name) == ["slow", "fast", "fast-half"])
        #expect(s.failedMirrors == ["limited"])
        #expect(s.behindMirrors.map(\.target.name) == ["stale"])
        #expect(s.behindMirrors.first?.freshness.freshness == .behind)
        #expect(s.mirrors.allSatisfy { $0.freshness.freshness == .unknown }, "no digests read: none compared")
        #expect(s.proxy?.path.name == "corp")
        #expect(SuggestCommand.exitStatus(s) == 0)

        let text = SuggestCommand.render(s)
        #expect(text.contains("""
        {
          "registry-mirrors": [
            "https://slow.example",
            "https://fast.example:5000",
            "https://half.example"
          ]
        }
        """))
        #expect(!text.contains("own.example"), "a registry of its own is not a mirror")
        #expect(text.contains("Left out, answered on no path: limited."))
        #expect(text.contains("Left out, behind: stale (library/alpine:latest: sha256:old, but dockerhub serves sha256:new)."))
        #expect(text.contains("NOT COMPARED, freshness unknown"))
        #expect(!text.contains("\"https://stale.example\""))
        #expect(text.contains("fails directly (direct: tls/tls_reset) but works through proxy path corp (300 ms)"))
        #expect(text.contains("write /etc/systemd/system/docker.service.d/http-proxy.conf"))
        #expect(text.contains("""
        [Service]
        Environment="HTTP_PROXY=http://alice:<password>@proxy.corp:3128"
        Environment="HTTPS_PROXY=http://alice:<password>@proxy.corp:3128"
        Environment="NO_PROXY=localhost,127.0.0.1,slow.example,half.example"
        """))
        #expect(text.contains("Replace <password> with the password of alice"))
        #expect(!text.contains("s3cr"), "the proxy password is never printed")
        #expect(text.contains("sudo systemctl daemon-reload && sudo systemctl restart docker"))
    }

    @Test func suggestWithoutADropInWhenDockerHubWorksDirectly() {
        let results = [Self.ok("dockerhub", "direct", 0.2), Self.ok("dockerhub", "corp", 0.1),
                       Self.fail("slow", "direct", .dns, .dnsNXDomain), Self.fail("slow", "corp", .proxy, .proxyRefused)]
        let s = SuggestCommand.analyse(Self.suggestConfig, results)
        #expect(s.proxy == nil)
        let text = SuggestCommand.render(s)
        #expect(!text.contains("[Service]"))
        #expect(!text.contains("registry-mirrors"))
        #expect(text.contains("none answered (slow)"))
        #expect(text.contains("Docker Hub (dockerhub) answers directly (path direct): Docker needs no proxy for it."))
        #expect(SuggestCommand.exitStatus(s) == 0)
    }

    @Test func suggestFailsWhenNothingDockerUsesAnswers() {
        let results = [Self.fail("dockerhub", "direct", .dns, .dnsSuspiciousAnswer), Self.fail("dockerhub", "corp", .proxy, .proxyConnectFailed),
                       Self.fail("limited", "direct", .http, .httpRateLimited)]
        let s = SuggestCommand.analyse(Self.suggestConfig, results)
        #expect(SuggestCommand.exitStatus(s) == 1)
        #expect(SuggestCommand.render(s).contains("Docker Hub (dockerhub) fails on every path probed."))
    }

    @Test func proxyURLForDockerKeepsTheUserAndHidesThePassword() {
        #expect(SuggestCommand.proxyURLForDocker(Self.url("socks5h://127.0.0.1:7890")) == "socks5h://127.0.0.1:7890")
        #expect(SuggestCommand.proxyURLForDocker(Self.url("http://proxy.corp")) == "http://proxy.corp:80")
        #expect(SuggestCommand.proxyURLForDocker(Self.url("http://d%40m:pw@[::1]:3128")) == "http://d%40m:<password>@[::1]:3128")
        #expect(SuggestCommand.proxyURLForDocker(Self.url("http://bob@proxy:3128")) == "http://bob@proxy:3128")
    }

    // MARK: validate

    @Test func validateSummaryShowsPairsAndMarksDiscoveredItems() {
        let config = Self.config(
            targets: [Target(name: "dockerhub", kind: .dockerhub, url: Self.url("https://registry-1.docker.io"),
                             images: [try! ImageReference.parse("alpine", officialPrefix: true).get()]),
                      Target(name: "mirror-x", kind: .mirror, url: Self.url("https://x.example"), paths: ["direct"],
                             discoveredFrom: "/etc/docker/daemon.json")],
            paths: [.direct, EgressPath(name: "env-https", kind: .proxy(Self.url("http://u:pw@proxy:3128")), discoveredFrom: "environment")])
        let text = ValidateCommand.summary(config, source: "lab.json")
        #expect(text.hasPrefix("lab.json: valid\n"))
        #expect(text.contains("    env-https  proxy http://u:***@proxy:3128  discovered from environment\n"))
        #expect(text.contains("mirror-x   mirror     https://x.example"))
        #expect(text.contains("discovered from /etc/docker/daemon.json"))
        #expect(text.contains("image library/alpine:latest"))
        #expect(text.contains("would probe 3 pairs (2 targets × 2 paths, narrowed by targets' paths):"))
        #expect(text.contains("    dockerhub  on direct, env-https\n"))
        #expect(text.contains("    mirror-x   on direct\n"))
        #expect(!text.contains("pw@"))
    }

    @Test func validateErrorsNameEveryFieldOnItsOwnLine() {
        let error = ConfigError([ConfigIssue(path: "targets[0].url", message: "required for kind registry"),
                                 ConfigIssue(path: "", message: "not valid JSON: x")])
        #expect(ValidateCommand.errors(error, source: "c.json") == "c.json: 2 errors\n  targets[0].url: required for kind registry\n  not valid JSON: x\n")
    }

    // MARK: status page and API

    static func report(_ results: [ProbeResult], pending: [PairKey] = [], config: AgentConfig? = nil,
                       reloadOK: Bool? = true) -> StatusReport {
        let store = ResultStore(metrics: Catalogue.makeStore())
        store.setPairs(results.map { PairKey(target: $0.target, path: $0.path) } + pending)
        for r in results { store.record(r) }
        let agent = config.map {
            AgentStatus(configSource: "/etc/egress-monitor/config.json", startedAt: t0 - 3700, config: $0,
                        lastReloadSuccessful: reloadOK, lastReloadSuccessAt: t0 - 60)
        }
        return StatusReport(store: store, agent: agent, now: t0 + 5)
    }

    static let pageConfig = config(
        targets: [Target(name: "lab", kind: .registry, url: url("https://lab.example")),
                  Target(name: "hub", kind: .dockerhub, url: url("https://registry-1.docker.io")),
                  Target(name: "busy", kind: .mirror, url: url("https://busy.example"))],
        paths: [.direct, EgressPath(name: "corp", kind: .proxy(url("http://proxy:3128")))])

    @Test func pageShowsTheMatrixReasonsHintsAndAgentState() {
        let page = String(decoding: StatusPage.render(Self.report(Self.roundResults, config: Self.pageConfig)), as: UTF8.self)
        #expect(page.hasPrefix("<!DOCTYPE html>"))
        #expect(page.contains("<meta http-equiv=\"refresh\" content=\"30\">"))
        #expect(page.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"))
        #expect(page.contains("<title>egress-monitor: 2/3 targets reachable</title>"))
        // Config order, not alphabetical: lab, hub, busy; direct, corp.
        let lab = page.range(of: "<th scope=\"row\">lab")!.lowerBound, hub = page.range(of: "<th scope=\"row\">hub")!.lowerBound
        #expect(lab < hub)
        #expect(page.contains("<th scope=\"col\">direct</th><th scope=\"col\">corp</th>"))
        #expect(page.contains("<th scope=\"row\">hub<span class=\"use\">use corp</span></th>"))
        #expect(page.contains("<span class=\"use bad\">no path works</span>"))
        #expect(page.contains("<td class=\"ok preferred\"><a href=\"#lab:corp\">✓ ok</a>"))
        #expect(page.contains("<td class=\"fail\" title=\"The TLS handshake was reset right after the ClientHello: typical of SNI filtering on this path.\"><a href=\"#hub:direct\">✗ tls</a>"))
        // Reasons grouped, in words, with what to try.
        // busy fails on both paths: one finding card, before the matrix, and no reason card.
        #expect(page.contains("<section class=\"card finding\" id=\"target-busy\">\n<h3><span class=\"badge fail\">✗ target busy: down</span>"))
        #expect(!page.contains("✗ http / http_rate_limited"))
        #expect(page.contains("<a href=\"#target-busy\">✗ target down</a>"))
        #expect(page.contains("<b>Try:</b> authenticate (docker login) for a higher quota, or use a mirror."))
        #expect(page.contains("<li id=\"hub:direct\"><b>hub</b> <span class=\"over\">over</span> <b>direct</b>: <code>connection reset by peer during the handshake</code>"))
        #expect(page.contains("never a success since the agent started"))
        // Working pairs with phase times, age of the last success, the preferred path.
        #expect(page.contains("<tr id=\"lab:corp\"><td>lab</td><td>corp <span class=\"badge pref\">★ preferred</span></td><td>12 ms</td>"))
        #expect(page.contains("dns 1.2 ms · connect 1.2 ms · tls 3.6 ms · http 6.0 ms"))
        #expect(page.contains("certificate valid 29 more days"))
        // The agent's own state.
        #expect(page.contains("config <code>/etc/egress-monitor/config.json</code>"))
        #expect(page.contains("up 1 h 1 min"))
        #expect(page.contains("config loaded 1 min ago"))
        #expect(page.contains("version \(EgressMonitorVersion.current)"))
        // Self-contained: no script, no external asset.
        #expect(!page.contains("<script"))
        #expect(!page.contains("src="))
        #expect(!page.contains("http://") && !page.contains("https://"))
    }

    @Test func pageEscapesEverythingAProbeBringsBack() {
        let hostile = #"GET /v2/ answered 200 (text/html; x="<script>alert('x')</script>" & more) without Docker-Distribution-API-Version"#
        let page = String(decoding: StatusPage.render(Self.report([Self.fail("lab", "direct", .http, .httpNotRegistry, hostile)],
                                                                  config: Self.pageConfig)), as: UTF8.self)
        #expect(!page.contains("<script"))
        #expect(page.contains("x=&quot;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot; &amp; more"))
        #expect(StatusPage.escape(#"<a href="x">'&'</a>"#) == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
    }

    @Test func pageBeforeTheFirstRoundAndAfterAFailedReload() {
        let pending = Self.report([], pending: [PairKey(target: "lab", path: "direct")], config: Self.pageConfig, reloadOK: false)
        let page = String(decoding: StatusPage.render(pending), as: UTF8.self)
        #expect(page.contains("The first round is running"))
        #expect(page.contains("<td class=\"pending\">… pending</td>"))
        #expect(page.contains("last reload failed: the previous config keeps running"))
        // Without an agent around the store (a bare Routes), the page still renders.
        let bare = String(decoding: StatusPage.render(Self.report(Self.roundResults)), as: UTF8.self)
        #expect(bare.contains("<meta http-equiv=\"refresh\" content=\"15\">"))
        #expect(!bare.contains("config <code>"))
    }

    @Test func apiIsTheCheckJSONPlusTimestampsAndTheAgent() throws {
        let report = Self.report(Self.roundResults, config: Self.pageConfig)
        let api = try #require(try JSONSerialization.jsonObject(with: Data(report.json())) as? [String: Any])
        let check = try #require(try JSONSerialization.jsonObject(with: Data(CheckCommand.json(Self.roundResults))) as? [String: Any])
        #expect(Set(check.keys).isSubset(of: Set(api.keys)))
        #expect(Set(api.keys) == ["version", "generated_at", "agent", "results", "recommendations", "paths", "targets"])
        #expect((api["targets"] as? NSDictionary) == (check["targets"] as? NSDictionary))
        #expect((api["paths"] as? NSDictionary) == (check["paths"] as? NSDictionary))
        #expect(api["generated_at"] as? Double == Self.t0 + 5)
        #expect(api["recommendations"] as? [String: String] == check["recommendations"] as? [String: String])
        let apiResults = try #require(api["results"] as? [[String: Any]])
        let checkResults = try #require(check["results"] as? [[String: Any]])
        #expect(Set(apiResults[0].keys) == Set(checkResults[0].keys))
        #expect(apiResults.map { "\($0["target"]!)/\($0["path"]!)" } == ["lab/direct", "lab/corp", "hub/direct", "hub/corp", "busy/direct", "busy/corp"])
        #expect(apiResults[0]["last_success_at"] as? Double == Self.t0 + 0.02)
        let agent = try #require(api["agent"] as? [String: Any])
        #expect(agent["config_source"] as? String == "/etc/egress-monitor/config.json")
        #expect(agent["uptime_seconds"] as? Double == 3705)
        #expect(agent["last_reload_successful"] as? Bool == true)
        #expect(agent["interval_seconds"] as? Double == 30)
    }

    // MARK: formats

    @Test(arguments: [(0.00042, "0.4 ms"), (0.0123, "12 ms"), (0.999, "999 ms"), (1.254, "1.25 s"), (12.34, "12.3 s"), (0.00999, "10 ms"), (0.9996, "1.00 s")])
    func durations(seconds: Double, text: String) {
        #expect(Format.duration(seconds) == text)
    }

    @Test(arguments: [(4.9, "4 s"), (61, "1 min"), (3600, "1 h"), (3725, "1 h 2 min"), (90_000, "1 d 1 h"), (-3, "0 s")])
    func ages(seconds: Double, text: String) {
        #expect(Format.age(seconds) == text)
    }

    @Test func utcTimes() {
        #expect(Format.utc(Self.t0) == "2023-11-14 22:13:20 UTC")
    }
}
