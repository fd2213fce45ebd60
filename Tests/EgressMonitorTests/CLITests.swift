import Foundation
import Testing
@testable import EgressMonitor
import EgressNet
import EgressTestSupport

/// The `egress-monitor` binary as a person runs it: exit statuses, usage, `--help` and
/// `--version`, `validate`'s messages, `check` (table, JSON, colour only on a terminal) and
/// `suggest` against lab peers on 127.0.0.1; then the status page and `/api/v1/status` of a
/// running agent.
@Suite struct CLITests {
    static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/egress-monitor"
    }

    struct Run: CustomStringConvertible {
        let status: Int32
        let stdout: String
        let stderr: String
        var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
    }

    /// Runs the binary with `arguments`, its stdout and stderr apart, without blocking the pool.
    static func cli(_ arguments: [String], environment: [String: String] = [:]) async throws -> Run {
        let dir = try Lab.makeDirectory("cli")
        defer { Lab.removeDirectory(dir) }
        // sh -c SCRIPT sh BINARY ARGS...: "$@" is the command line, quoted as it is.
        let script = #""$@" >"$EGRESS_OUT/out" 2>"$EGRESS_OUT/err"; echo $?"#
        let status = try await Lab.runAsync("sh", ["-c", script, "sh", binary] + arguments,
                                            environment: environment.merging(["EGRESS_OUT": dir]) { a, _ in a })
        func read(_ name: String) -> String { (try? String(contentsOfFile: "\(dir)/\(name)", encoding: .utf8)) ?? "" }
        return Run(status: Int32(status.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1,
                   stdout: read("out"), stderr: read("err"))
    }

    /// Runs the binary on a pseudo-terminal (util-linux `script`), stdout and stderr together.
    static func cliOnTerminal(_ arguments: [String], environment: [String: String]) async throws -> Run {
        let quoted = ([binary] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: #"'\''"#) + "'" }.joined(separator: " ")
        let dir = try Lab.makeDirectory("pty")
        defer { Lab.removeDirectory(dir) }
        let output = try await Lab.runAsync("sh", ["-c", #"script -qec "$1" /dev/null; echo "exit=$?" >"$2""#, "sh", quoted, "\(dir)/status"],
                                            environment: environment)
        let status = (try? String(contentsOfFile: "\(dir)/status", encoding: .utf8)) ?? ""
        return Run(status: Int32(status.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1, stdout: output, stderr: "")
    }

    /// Writes `text` to a fresh config file.
    static func configFile(_ text: String) throws -> (path: String, dir: String) {
        let dir = try Lab.makeDirectory("config")
        let path = dir + "/config.json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return (path, dir)
    }

    /// SGR escape sequences (colour, bold).
    static func hasColour(_ s: String) -> Bool { s.range(of: "\u{1B}\\[[0-9;]*m", options: .regularExpression) != nil }

    static var haveBinary: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    // MARK: usage

    @Test(.enabled(if: haveBinary, "no egress-monitor binary next to the tests"))
    func versionAndHelpOnEveryCommand() async throws {
        let version = try await Self.cli(["--version"])
        #expect(version.status == 0 && version.stdout == "egress-monitor \(EgressMonitorVersion.current)\n", "\(version)")
        for (args, first) in [(["--help"], "usage: egress-monitor [--config FILE]"), (["-h"], "usage: egress-monitor [--config FILE]"),
                              (["check", "--help"], "usage: egress-monitor check [--config FILE] [--json] [--target NAME] [--path NAME]"),
                              (["validate", "--help"], "usage: egress-monitor validate [--config FILE]"),
                              (["suggest", "--help"], "usage: egress-monitor suggest [--config FILE]"),
                              (["help", "check"], "usage: egress-monitor check"),
                              (["check", "--json", "--help"], "usage: egress-monitor check")] {
            let run = try await Self.cli(args)
            #expect(run.status == 0, "\(args): \(run)")
            #expect(run.stdout.hasPrefix(first), "\(args): \(run)")
            #expect(run.stderr.isEmpty, "\(args): \(run)")
        }
        let help = try await Self.cli(["check", "--help"])
        #expect(help.stdout.contains("Exit status: 0 every target is reachable on some path, 1 one is not, 2 a usage or"))
        #expect(help.stdout.contains("NO_COLOR"))
    }

    /// Bad command lines: exit 2, the problem and the command's usage on stderr, nothing on stdout.
    @Test(.enabled(if: haveBinary, "no egress-monitor binary next to the tests"), arguments: [
        (["--bogus"], #"unknown option "--bogus" for the agent"#, "usage: egress-monitor [--config FILE]"),
        (["check", "--bogus"], #"unknown option "--bogus" for check"#, "usage: egress-monitor check"),
        (["validate", "--json"], #"unknown option "--json" for validate"#, "usage: egress-monitor validate"),
        (["suggest", "--target", "x"], #"unknown option "--target" for suggest"#, "usage: egress-monitor suggest"),
        (["check", "--listen", "127.0.0.1:1"], #"unknown option "--listen" for check"#, "usage: egress-monitor check"),
        (["chek"], #"unknown command "chek" (commands: check, validate, suggest, apply)"#, "usage: egress-monitor [--config FILE]"),
        (["check", "--config"], "--config needs a value", "usage: egress-monitor check"),
        (["check", "--config", "--json"], "--config needs a value", "usage: egress-monitor check"),
        (["check", "--json=yes"], "--json takes no value", "usage: egress-monitor check"),
        (["check", "--target", "a", "--target=b"], "--target is given twice", "usage: egress-monitor check"),
        (["--log-level", "loud"], #"--log-level: "loud" is not one of debug, info, warn, error"#, "usage: egress-monitor [--config FILE]"),
        (["check", "extra"], #"unexpected argument "extra""#, "usage: egress-monitor check"),
        (["--listen", "nowhere"], #"--listen: "nowhere" is not HOST:PORT"#, "usage: egress-monitor [--config FILE]"),
    ])
    func badCommandLinesExitTwoWithTheUsage(arguments: [String], message: String, usage: String) async throws {
        let run = try await Self.cli(arguments)
        #expect(run.status == 2, "\(run)")
        #expect(run.stderr.hasPrefix("egress-monitor: \(message)"), "\(run)")
        #expect(run.stderr.contains("\n\(usage)"), "\(run)")
        #expect(run.stdout.isEmpty, "\(run)")
    }

    @Test(.enabled(if: haveBinary, "no egress-monitor binary next to the tests"))
    func configProblemsOfCheckAndSuggestExitTwo() async throws {
        let missing = try await Self.cli(["check", "--config", "/nonexistent/egress.json"])
        #expect(missing.status == 2 && missing.stderr.contains("cannot read config file /nonexistent/egress.json"), "\(missing)")
        let (bad, badDir) = try Self.configFile(#"{"targets": [{"name": "x", "kind": "registry"}]}"#)
        defer { Lab.removeDirectory(badDir) }
        for command in ["check", "suggest"] {
            let run = try await Self.cli([command, "--config", bad])
            #expect(run.status == 2, "\(run)")
            #expect(run.stderr.contains("targets[0].url: required for kind registry"), "\(run)")
        }
        let (good, goodDir) = try Self.configFile("""
            {"discovery": false, "paths": [{"name": "direct"}, {"name": "other", "interface": "lo"}],
             "targets": [{"name": "a", "kind": "tcp", "url": "tcp://127.0.0.1:9", "paths": ["direct"]}]}
            """)
        defer { Lab.removeDirectory(goodDir) }
        let target = try await Self.cli(["check", "--config", good, "--target", "nope"])
        #expect(target.status == 2 && target.stderr.contains(#"--target: no target named "nope" (targets: a)"#), "\(target)")
        let path = try await Self.cli(["check", "--config", good, "--path", "nope"])
        #expect(path.status == 2 && path.stderr.contains(#"--path: no path named "nope" (paths: direct, other)"#), "\(path)")
        let narrowed = try await Self.cli(["check", "--config", good, "--target", "a", "--path", "other"])
        #expect(narrowed.status == 2 && narrowed.stderr.contains(#"target "a" is not probed over path "other""#), "\(narrowed)")
    }

    /// The agent's own shortage is reported as such, not as the network's: `check` run with its
    /// descriptor limit lowered (prlimit) until the probe's socket cannot be had (EMFILE, for
    /// real) fails `connect/local_resource_exhausted`; the same probe with room succeeds.
    ///
    /// The child starts with descriptors 0-2 only. How many the runtime and the reactor take
    /// at start varies from run to run (libdispatch's threads open theirs concurrently), so
    /// the test walks the limit up and asks that a run without room reports the new reason
    /// and none reports the network's.
    @Test(.enabled(if: haveBinary && Lab.has("prlimit") && Lab.has("bash"), "needs util-linux prlimit and bash"))
    func descriptorExhaustionIsTheHostsFaultNotTheNetworks() async throws {
        let listener = try Socket.listen(on: SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0))
        defer { listener.close() }
        let port = listener.localAddress!.port
        let (config, dir) = try Self.configFile("""
            {"discovery": false, "paths": [{"name": "direct"}],
             "targets": [{"name": "local", "kind": "tcp", "url": "tcp://127.0.0.1:\(port)"}]}
            """)
        defer { Lab.removeDirectory(dir) }
        // Closes every inherited descriptor above 2, then runs the binary under the limit.
        let script = #"for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done; "#
            + #"prlimit --nofile=$1:$1 "$2" check --config "$3" >"$4/out" 2>"$4/err"; echo $?"#
        func check(limit: Int) async throws -> Run {
            let status = try await Lab.runAsync("bash", ["-c", script, "bash", "\(limit)", Self.binary, config, dir],
                                                environment: ["SWIFT_BACKTRACE": "enable=no"])
            func read(_ name: String) -> String { (try? String(contentsOfFile: "\(dir)/\(name)", encoding: .utf8)) ?? "" }
            return Run(status: Int32(status.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1,
                       stdout: read("out"), stderr: read("err"))
        }
        let roomy = try await check(limit: 256)
        #expect(roomy.status == 0 && roomy.stdout.contains("1 of 1 target reachable"), "\(roomy)")
        // Limits upwards from none, three runs each, until one has room enough to pass: each run
        // that started (0 or 1; a start that crashed for want of a descriptor, or a loader that
        // could not open the binary's libraries, is no answer) says what it met.
        var ran: [Run] = []
        search: for limit in 3...64 {
            for _ in 0..<3 {
                let run = try await check(limit: limit)
                guard run.status == 0 || run.status == 1 else { continue }
                ran.append(run)
                if run.status == 0 { break search }
            }
        }
        let exhausted = ran.filter { $0.stdout.contains("FAIL connect/local_resource_exhausted") }
        #expect(!exhausted.isEmpty, "no run met EMFILE: \(ran)")
        #expect(exhausted.allSatisfy { $0.status == 1 && $0.stdout.contains("The fault is on this host") }, "\(exhausted)")
        for run in ran where run.status == 1 {
            #expect(!run.stdout.contains("net_unreachable") && !run.stdout.contains("path_setup_failed"), "\(run)")
        }
    }

    // MARK: validate

    @Test(.enabled(if: haveBinary, "no egress-monitor binary next to the tests"))
    func validatePrintsEveryErrorWithItsJSONPath() async throws {
        let json = """
            {"interval": 30, "timeout_seconds": 0,
             "resolvers": [{"name": "lab"}],
             "paths": [{"name": "p", "proxy": "ftp://u:secret@proxy:21"}, {"name": "q", "interface": "eth0", "proxy": "http://127.0.0.1:1"},
                       {"name": "r", "proxy": "http://u:secret@proxy:99999"}],
             "targets": [{"name": "x", "kind": "registry"}, {"name": "y", "kind": "quay"},
                         {"name": "bad name!", "kind": "dockerhub"}, {"name": "z", "kind": "tcp", "url": "tcp://127.0.0.1:1", "resolver": "nope", "colour": "red"},
                         {"name": "x", "kind": "mirror", "url": "ftp://127.0.0.1", "paths": ["nowhere"]}]}
            """
        // What the loader finds, in-process; every one of them must reach the person.
        var expected: [ConfigIssue] = []
        do { _ = try ConfigLoader.decode(Data(json.utf8)) } catch { expected = error.issues }
        #expect(expected.count >= 10, "\(expected)")
        let (path, dir) = try Self.configFile(json)
        defer { Lab.removeDirectory(dir) }
        let run = try await Self.cli(["validate", "--config", path])
        #expect(run.status == 1, "\(run)")
        #expect(run.stdout.isEmpty, "\(run)")
        let lines = run.stderr.split(separator: "\n").map(String.init)
        #expect(lines.first == "\(path): \(expected.count) errors", "\(run)")
        for issue in expected {
            #expect(lines.contains("  \(issue)"), "missing: \(issue)\n\(run)")
        }
        // The messages the issue names, word for word.
        #expect(lines.contains(#"  paths[0].proxy: scheme "ftp" is not one of http, https, socks5, socks5h"#))
        #expect(lines.contains("  targets[0].url: required for kind registry"))
        #expect(!run.stderr.contains("secret"), "a password in a bad URL is never printed")

        let (broken, brokenDir) = try Self.configFile(#"{"targets": [}"#)
        defer { Lab.removeDirectory(brokenDir) }
        let syntax = try await Self.cli(["validate", "--config", broken])
        #expect(syntax.status == 1 && syntax.stderr.contains("not valid JSON"), "\(syntax)")
        let missing = try await Self.cli(["validate", "--config", "/nonexistent/egress.json"])
        #expect(missing.status == 1 && missing.stderr.contains("cannot read config file"), "\(missing)")
    }

    @Test(.enabled(if: haveBinary, "no egress-monitor binary next to the tests"))
    func validateSummarisesWhatWouldBeProbed() async throws {
        let (path, dir) = try Self.configFile("""
            {"discovery": false, "interval_seconds": 60, "timeout_seconds": 5,
             "resolvers": [{"name": "lab", "address": "127.0.0.1:5353"}],
             "paths": [{"name": "direct"}, {"name": "corp", "proxy": "http://alice:s3cret@127.0.0.1:3128"}],
             "targets": [{"name": "hub", "kind": "dockerhub"},
                         {"name": "lab", "kind": "registry", "url": "https://registry.lab.test:5443", "resolver": "lab", "paths": ["direct"]}]}
            """)
        defer { Lab.removeDirectory(dir) }
        let run = try await Self.cli(["validate", "--config", path])
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout.hasPrefix("\(path): valid\n"), "\(run)")
        #expect(run.stdout.contains("a round every 60 s per pair, timeout 5 s"))
        #expect(run.stdout.contains("resolvers: system, lab (plain 127.0.0.1:5353)"))
        #expect(run.stdout.contains("corp    proxy http://alice:***@127.0.0.1:3128"), "\(run)")
        #expect(run.stdout.contains("would probe 3 pairs (2 targets × 2 paths, narrowed by targets' paths):"), "\(run)")
        #expect(run.stdout.contains("    hub  on direct, corp\n"), "\(run)")
        #expect(run.stdout.contains("    lab  on direct\n"), "\(run)")
        #expect(!run.stdout.contains("s3cret"))
    }

    @Test(.enabled(if: haveBinary, "no egress-monitor binary next to the tests"))
    func validateMarksDiscoveredMirrorsAndProxies() async throws {
        // Discovery reads the agent's own environment: a proxy there becomes a path.
        let (path, dir) = try Self.configFile("""
            {"discovery": {"environment": true, "daemon_json": false, "systemd_dropins": false, "hosts_toml": false},
             "targets": [{"name": "hub", "kind": "dockerhub"}]}
            """)
        defer { Lab.removeDirectory(dir) }
        let run = try await Self.cli(["validate", "--config", path],
                                     environment: ["HTTPS_PROXY": "http://bob:pw@127.0.0.1:3128", "https_proxy": "", "HTTP_PROXY": "",
                                                   "http_proxy": "", "ALL_PROXY": "", "all_proxy": "", "NO_PROXY": "", "no_proxy": ""])
        #expect(run.status == 0, "\(run)")
        let line = run.stdout.split(separator: "\n").first { $0.contains("proxy http://bob:***@127.0.0.1:3128") }
        #expect(line?.contains("discovered from") == true, "\(run)")
        #expect(!run.stdout.contains("bob:pw"))
    }

    // MARK: check and suggest against the lab

    /// A registry that works, a TLS reset right after the ClientHello, a 429 mirror, a closed port.
    struct CheckLab {
        static let blobDigest = "sha256:" + String(repeating: "b", count: 64)
        let certs: LabCertificates
        let nginx: LabNginx
        let sni: LabTCPServer
        let closedPort: UInt16
        var registryPort: UInt16 { nginx.ports[0] }
        var busyPort: UInt16 { nginx.ports[1] }

        static func start() async throws -> CheckLab {
            let certs = try await LabCertificates.shared()
            let nginx = try await LabNginx.start(servers: [
                // Deep enough for a dockerhub-kind target: /v2/, the default image's manifest, a blob.
                NginxServer(tls: certs.good, locations: [
                    .registryV2(),
                    NginxLocation("/v2/library/alpine/manifests/latest", status: 200, body: "{}",
                                  headers: [("Content-Type", "application/vnd.docker.distribution.manifest.v2+json"),
                                            ("Docker-Content-Digest", "sha256:" + String(repeating: "a", count: 64))]),
                    .file("/v2/library/alpine/blobs/\(blobDigest)", contents: [UInt8](repeating: 7, count: 64 * 1024)),
                ]),
                NginxServer(tls: certs.good, locations: [NginxLocation("/v2/", status: 429, body: #"{"errors":[{"code":"TOOMANYREQUESTS"}]}"#)]),
            ])
            let sni = try LabTCPServer.start(.resetAfterRead)
            let closed = try Socket.listen(on: SocketAddress(ip: IPAddress(Lab.loopback)!, port: 0))
            let closedPort = closed.localAddress!.port
            closed.close()
            return CheckLab(certs: certs, nginx: nginx, sni: sni, closedPort: closedPort)
        }

        func stop() {
            nginx.stop()
            sni.stop()
        }

        /// A config of `targets` (by name: registry, sni, busy, closed).
        func config(_ targets: [String]) -> String {
            let all = [
                "registry": #"{"name": "registry", "kind": "registry", "url": "https://127.0.0.1:\#(registryPort)", "ca_file": "\#(certs.caFile)"}"#,
                "sni": #"{"name": "sni", "kind": "registry", "url": "https://127.0.0.1:\#(sni.port)", "ca_file": "\#(certs.caFile)"}"#,
                "busy": #"{"name": "busy", "kind": "mirror", "url": "https://127.0.0.1:\#(busyPort)", "ca_file": "\#(certs.caFile)"}"#,
                "closed": #"{"name": "closed", "kind": "tcp", "url": "tcp://127.0.0.1:\#(closedPort)"}"#,
            ]
            return #"{"discovery": false, "timeout_seconds": 3, "targets": [\#(targets.map { all[$0]! }.joined(separator: ", "))]}"#
        }
    }

    static let hasLab = Lab.has("nginx") && Lab.has("openssl")

    @Test(.enabled(if: haveBinary && hasLab, "needs nginx and openssl"))
    func checkPrintsTheTableHintsAndRecommendationAndExitsByReachability() async throws {
        let lab = try await CheckLab.start()
        defer { lab.stop() }
        let (failing, dir) = try Self.configFile(lab.config(["registry", "sni", "busy", "closed"]))
        defer { Lab.removeDirectory(dir) }
        let run = try await Self.cli(["check", "--config", failing, "--log-level", "warn"], environment: ["NO_COLOR": "", "TERM": "xterm"])
        #expect(run.status == 1, "\(run)")
        let lines = run.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first?.split(separator: " ").map(String.init) == ["TARGET", "PATH", "CONNECT", "TLS", "HTTP", "TOTAL", "RESULT"], "IP-literal URLs: no dns column\n\(run)")
        #expect(lines.contains { $0.hasPrefix("registry ") && $0.hasSuffix(" ok") }, "\(run)")
        #expect(lines.contains { $0.hasPrefix("sni ") && $0.contains("FAILED") && $0.hasSuffix("FAIL tls/tls_reset") }, "\(run)")
        #expect(lines.contains { $0.hasPrefix("busy ") && $0.hasSuffix("FAIL http/http_rate_limited") }, "\(run)")
        #expect(lines.contains { $0.hasPrefix("closed ") && $0.hasSuffix("FAIL connect/tcp_refused") }, "\(run)")
        #expect(run.stdout.contains("tls/tls_reset: The TLS handshake was reset right after the ClientHello: typical of SNI"), "\(run)")
        #expect(run.stdout.contains("sni over direct: "), "\(run)")
        #expect(run.stdout.contains("http/http_rate_limited: Too many requests (429): the anonymous pull quota is exhausted."))
        #expect(run.stdout.contains("Try: authenticate (docker login) for a higher quota, or use a mirror."))
        #expect(run.stdout.contains("  registry  direct ("), "\(run)")
        #expect(run.stdout.contains("  sni       none: unreachable on every path probed (direct)"), "\(run)")
        #expect(run.stdout.hasSuffix("1 of 4 targets reachable.\n"), "\(run)")
        // Not a terminal: no colour, no progress line.
        #expect(!Self.hasColour(run.stdout) && !run.stdout.contains("\r") && !run.stdout.contains("probing"), "\(run)")

        let one = try await Self.cli(["check", "--config", failing, "--target", "registry"])
        #expect(one.status == 0, "\(one)")
        #expect(!one.stdout.contains("sni"), "\(one)")
        #expect(one.stdout.hasSuffix("1 of 1 target reachable.\n"), "\(one)")
    }

    @Test(.enabled(if: haveBinary && hasLab, "needs nginx and openssl"))
    func checkJSONIsTheSameRoundAsData() async throws {
        let lab = try await CheckLab.start()
        defer { lab.stop() }
        let (path, dir) = try Self.configFile(lab.config(["registry", "sni"]))
        defer { Lab.removeDirectory(dir) }
        let run = try await Self.cli(["check", "--config", path, "--json"])
        #expect(run.status == 1, "\(run)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run)")
        #expect(Set(document.keys) == ["results", "recommendations", "paths", "targets"])
        #expect(document["recommendations"] as? [String: String] == ["registry": "direct"])
        // One path, so no target finding; one target failing on it, so no path finding.
        let verdictPaths = try #require(document["paths"] as? [String: [String: Any]])
        #expect(verdictPaths["direct"]?["up"] as? Bool == true && verdictPaths["direct"]?["reason"] is NSNull, "\(verdictPaths)")
        let verdictTargets = try #require(document["targets"] as? [String: [String: Any]])
        #expect(verdictTargets["sni"]?["up"] as? Bool == false && verdictTargets["sni"]?["finding"] as? Bool == false, "\(verdictTargets)")
        #expect(verdictTargets["registry"]?["up"] as? Bool == true)
        let results = try #require(document["results"] as? [[String: Any]])
        #expect(results.map { $0["target"] as? String } == ["registry", "sni"])
        let registry = results[0], sni = results[1]
        #expect(registry["success"] as? Bool == true && registry["path"] as? String == "direct")
        #expect(registry["phase"] is NSNull && registry["reason"] is NSNull)
        let phases = try #require(registry["phases"] as? [String: Double])
        #expect(Set(phases.keys) == ["connect", "tls", "http"], "an IP literal URL has no dns phase: \(phases)")
        #expect(phases.values.allSatisfy { $0 >= 0 && $0 < 3 })
        #expect(registry["address"] as? String == "127.0.0.1:\(lab.registryPort)")
        #expect((registry["tls_version"] as? String)?.hasPrefix("TLSv1.") == true)
        #expect(registry["http_status"] as? Int == 200)
        #expect(sni["success"] as? Bool == false)
        #expect(sni["phase"] as? String == "tls" && sni["reason"] as? String == "tls_reset")
        #expect((sni["hint"] as? String)?.contains("SNI filtering") == true)
        #expect(Set(sni.keys) == Set(registry.keys))
    }

    @Test(.enabled(if: haveBinary && hasLab && Lab.has("script"), "needs nginx, openssl and util-linux script"))
    func colourAndProgressOnlyOnATerminalAndNeverWithNoColor() async throws {
        let lab = try await CheckLab.start()
        defer { lab.stop() }
        let (path, dir) = try Self.configFile(lab.config(["registry", "sni"]))
        defer { Lab.removeDirectory(dir) }
        let terminal = try await Self.cliOnTerminal(["check", "--config", path], environment: ["NO_COLOR": "", "TERM": "xterm"])
        #expect(terminal.status == 1, "\(terminal)")
        #expect(Self.hasColour(terminal.stdout), "\(terminal)")
        #expect(terminal.stdout.contains("probing 2 pairs…"), "\(terminal)")
        #expect(terminal.stdout.contains("\r\u{1B}[K"), "the progress line is cleared before the table")

        let noColour = try await Self.cliOnTerminal(["check", "--config", path], environment: ["NO_COLOR": "1", "TERM": "xterm"])
        #expect(noColour.status == 1, "\(noColour)")
        #expect(!Self.hasColour(noColour.stdout), "\(noColour)")
        #expect(noColour.stdout.contains("FAIL tls/tls_reset"))

        let json = try await Self.cliOnTerminal(["check", "--config", path, "--json"], environment: ["NO_COLOR": "", "TERM": "xterm"])
        #expect(!Self.hasColour(json.stdout) && !json.stdout.contains("probing"), "JSON stays JSON on a terminal: \(json)")
    }

    static let hasSuggestLab = hasLab && Lab.has("dnsmasq") && Lab.has("tinyproxy")

    /// Docker Hub's name is refused by the lab resolver on the direct path but resolved by the
    /// proxy (from /etc/hosts: localhost); one mirror answers on both paths, one only directly
    /// (the proxy cannot resolve registry.lab.test), one is rate-limited everywhere.
    @Test(.enabled(if: haveBinary && hasSuggestLab, "needs nginx, openssl, dnsmasq and tinyproxy"))
    func suggestPrintsMirrorsByHealthAndTheProxyDropIn() async throws {
        let lab = try await CheckLab.start()
        defer { lab.stop() }
        let dns = try await LabDnsmasq.start(records: [.host(name: "registry.lab.test", ips: ["127.0.0.1"])])
        defer { dns.stop() }
        let proxy = try await LabTinyproxy.start(basicAuth: (user: "alice", password: "s3cret"))
        defer { proxy.stop() }
        let ca = lab.certs.caFile
        let (path, dir) = try Self.configFile("""
            {"discovery": false, "timeout_seconds": 3,
             "resolvers": [{"name": "lab", "address": "\(dns.address)"}],
             "paths": [{"name": "direct"}, {"name": "corp", "proxy": "\(proxy.url(user: "alice", password: "s3cret"))"}],
             "targets": [
               {"name": "dockerhub", "kind": "dockerhub", "url": "https://localhost:\(lab.registryPort)", "ca_file": "\(ca)", "resolver": "lab",
                "blob_digest": "\(CheckLab.blobDigest)"},
               {"name": "mirror-both", "kind": "mirror", "url": "https://127.0.0.1:\(lab.registryPort)", "ca_file": "\(ca)",
                "blob_digest": "\(CheckLab.blobDigest)"},
               {"name": "mirror-direct", "kind": "mirror", "url": "https://registry.lab.test:\(lab.registryPort)", "ca_file": "\(ca)", "resolver": "lab",
                "blob_digest": "\(CheckLab.blobDigest)"},
               {"name": "mirror-busy", "kind": "mirror", "url": "https://127.0.0.1:\(lab.busyPort)", "ca_file": "\(ca)"}]}
            """)
        defer { Lab.removeDirectory(dir) }
        let run = try await Self.cli(["suggest", "--config", path, "--log-level", "warn"])
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout.contains("""
            {
              "registry-mirrors": [
                "https://127.0.0.1:\(lab.registryPort)",
                "https://registry.lab.test:\(lab.registryPort)"
              ]
            }
            """), "\(run)")
        #expect(run.stdout.contains("Left out, answered on no path: mirror-busy."), "\(run)")
        #expect(run.stdout.contains("Docker Hub (dockerhub) fails directly (direct: dns/dns_refused) but works through proxy path corp"), "\(run)")
        #expect(run.stdout.contains("""
            [Service]
            Environment="HTTP_PROXY=http://alice:<password>@127.0.0.1:\(proxy.port)"
            Environment="HTTPS_PROXY=http://alice:<password>@127.0.0.1:\(proxy.port)"
            Environment="NO_PROXY=localhost,127.0.0.1,registry.lab.test"
            """), "\(run)")
        #expect(run.stdout.contains("/etc/systemd/system/docker.service.d/http-proxy.conf"))
        #expect(!run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"), "the proxy password is never printed")
    }

    // MARK: the status page and the API

    @Test(.enabled(if: hasLab && Lab.has("curl"), "needs nginx, openssl and curl"))
    func statusPageAndAPIOfARunningAgent() async throws {
        let lab = try await CheckLab.start()
        defer { lab.stop() }
        // A captive portal whose Content-Type carries markup: it reaches the page only escaped.
        let portal = try await LabNginx.start(tls: nil, locations: [
            NginxLocation("/", match: .prefix, status: 200, body: "<html>log in</html>",
                          headers: [("Content-Type", #"text/html; x="<script>alert(1)</script>""#)]),
        ])
        defer { portal.stop() }
        let config = lab.config(["registry", "sni"]).replacingOccurrences(of: #""timeout_seconds": 3,"#, with: #""timeout_seconds": 1, "interval_seconds": 1,"#)
            .replacingOccurrences(of: "]}", with: #", {"name": "portal", "kind": "registry", "url": "http://127.0.0.1:\#(portal.port)"}]}"#)
        let (path, dir) = try Self.configFile(config)
        defer { Lab.removeDirectory(dir) }
        let agent = try Agent.start(source: .file(path), listenOverride: SocketAddress(ip: IPAddress(Lab.loopback)!, port: 0), jitter: false)
        let base = "http://\(agent.server.boundAddress)"

        // Wait for a round of every pair.
        var api: [String: Any] = [:]
        let deadline = Deadline.after(seconds: 15)
        while !deadline.hasPassed {
            let text = try await Lab.runAsync("curl", ["-sS", "--max-time", "5", base + "/api/v1/status"])
            api = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
            let results = api["results"] as? [[String: Any]] ?? []
            if results.count == 3 && results.allSatisfy({ !($0["success"] is NSNull) }) { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        let results = try #require(api["results"] as? [[String: Any]], "\(api)")
        #expect(results.map { $0["target"] as? String } == ["registry", "sni", "portal"], "config order")
        #expect(results.map { $0["reason"] as? String } == [nil, "tls_reset", "http_not_registry"])
        #expect(api["recommendations"] as? [String: String] == ["registry": "direct"])
        #expect((api["generated_at"] as? Double).map { abs($0 - Date().timeIntervalSince1970) < 60 } == true)
        #expect((results[0]["last_success_at"] as? Double) != nil)
        #expect(results[1]["last_success_at"] is NSNull)
        let agentState = try #require(api["agent"] as? [String: Any])
        #expect(agentState["config_source"] as? String == path)
        #expect(agentState["last_reload_successful"] as? Bool == true)
        #expect(agentState["version"] as? String == EgressMonitorVersion.current)
        // The same result shape as `check --json`.
        let check = try JSONSerialization.jsonObject(with: Data(CheckCommand.json([
            ProbeResult(target: "a", path: "b", startedAt: 0, duration: 0, phases: [:], failure: nil)]))) as? [String: Any]
        let checkKeys = Set((check?["results"] as? [[String: Any]])?.first?.keys.map { $0 } ?? [])
        for r in results { #expect(Set(r.keys) == checkKeys) }

        let headers = try await Lab.runAsync("curl", ["-sS", "-D", "-", "-o", "/dev/null", base + "/"])
        #expect(headers.lowercased().contains("content-type: text/html; charset=utf-8"))
        #expect(headers.lowercased().contains("cache-control: no-store"))
        let page = try await Lab.runAsync("curl", ["-sS", "--max-time", "5", base + "/"])
        #expect(page.contains("<meta http-equiv=\"refresh\" content=\"5\">"), "refreshes itself")
        #expect(page.contains("1 of 3 targets reachable; unreachable on every path: sni, portal."))
        #expect(page.contains("<th scope=\"row\">registry<span class=\"use\">use direct</span></th>"))
        #expect(page.contains("<td class=\"ok preferred\"><a href=\"#registry:direct\">✓ ok</a>"))
        #expect(page.contains("✗ tls / tls_reset"))
        #expect(page.contains("The TLS handshake was reset right after the ClientHello: typical of SNI filtering on this path."))
        #expect(page.contains("<b>Try:</b>"))
        #expect(page.contains("<td>registry</td><td>direct <span class=\"badge pref\">★ preferred</span></td>"))
        #expect(page.contains("config <code>\(path)</code>"))
        #expect(page.contains("config loaded"))
        #expect(!page.contains("<script"), "markup from a probed server is escaped")
        #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))

        // A bad reload shows on the page; the old config keeps running.
        try #"{"targets": [{"name": "x", "kind": "registry"}]}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(await agent.reload() != nil)
        let after = try await Lab.runAsync("curl", ["-sS", "--max-time", "5", base + "/"])
        #expect(after.contains("last reload failed: the previous config keeps running"))
        #expect(after.contains("<td>registry</td>"))
        await agent.stop()
    }
}
