#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import EgressMonitor
import EgressNet
import EgressTestSupport

/// Managed mode seen from outside, against nginx registries on loopback: `apply` (its diff, its
/// writes, its exit statuses), `check --json`'s manage block, and a running agent that writes
/// daemon.json on its own and shows it in /metrics, /api/v1/status and on the status page.
/// Every file it writes is in the test's own directory.
@Suite(.serialized) struct ManageApplyTests {
    static let hasLab = CLITests.haveBinary && Lab.has("nginx") && Lab.has("openssl")
    static let blob = "sha256:" + String(repeating: "b", count: 64)
    static let fresh = "sha256:" + String(repeating: "a", count: 64)
    static let stale = "sha256:" + String(repeating: "c", count: 64)

    /// Docker Hub (digest fresh), a fresh mirror, a stale mirror, a 429 mirror.
    struct ManageLab {
        let certs: LabCertificates
        let nginx: LabNginx
        var hub: UInt16 { nginx.ports[0] }
        var good: UInt16 { nginx.ports[1] }
        var stale: UInt16 { nginx.ports[2] }
        var busy: UInt16 { nginx.ports[3] }
        var goodURL: String { "https://127.0.0.1:\(good)" }
        var staleURL: String { "https://127.0.0.1:\(stale)" }
        var busyURL: String { "https://127.0.0.1:\(busy)" }

        static func registry(_ certs: LabCertificates, digest: String) -> NginxServer {
            NginxServer(tls: certs.good, locations: [
                .registryV2(),
                NginxLocation("/v2/library/alpine/manifests/latest", status: 200, body: "{}",
                              headers: [("Content-Type", "application/vnd.docker.distribution.manifest.v2+json"),
                                        ("Docker-Content-Digest", digest)]),
                .file("/v2/library/alpine/blobs/\(ManageApplyTests.blob)", contents: [UInt8](repeating: 7, count: 16 * 1024)),
            ])
        }

        static func start() async throws -> ManageLab {
            let certs = try await LabCertificates.shared()
            let nginx = try await LabNginx.start(servers: [
                registry(certs, digest: ManageApplyTests.fresh), registry(certs, digest: ManageApplyTests.fresh),
                registry(certs, digest: ManageApplyTests.stale),
                NginxServer(tls: certs.good, locations: [NginxLocation("/v2/", status: 429, body: #"{"errors":[{"code":"TOOMANYREQUESTS"}]}"#)]),
            ])
            return ManageLab(certs: certs, nginx: nginx)
        }

        func targets() -> String {
            let ca = certs.caFile
            return """
            {"name": "hub", "kind": "dockerhub", "url": "https://127.0.0.1:\(hub)", "ca_file": "\(ca)", "blob_digest": "\(ManageApplyTests.blob)"},
            {"name": "good", "kind": "mirror", "url": "\(goodURL)", "ca_file": "\(ca)", "image": "alpine", "blob_digest": "\(ManageApplyTests.blob)"},
            {"name": "stale", "kind": "mirror", "url": "\(staleURL)", "ca_file": "\(ca)", "image": "alpine", "blob_digest": "\(ManageApplyTests.blob)"},
            {"name": "busy", "kind": "mirror", "url": "\(busyURL)", "ca_file": "\(ca)"}
            """
        }

        /// A config managing `dir`'s daemon.json and hosts.toml.
        func config(dir: String, extra: String = "", manage: Bool = true) -> String {
            let m = manage ? #", "manage": {"daemon_json": "\#(dir)/daemon.json", "hosts_toml": "\#(dir)/hosts.toml", "docker_pid_file": "\#(dir)/docker.pid", "state_dir": "\#(dir)/state"}"# : ""
            return #"{"discovery": false, "timeout_seconds": 3\#(extra), "targets": [\#(targets())]\#(m)}"#
        }

        func hostsTOML() -> String {
            LabConfig.hostsTOML([(busyURL, []), (staleURL, []), (goodURL, [#"ca = "ca.pem""#])])
        }
    }

    static func files(_ lab: ManageLab, daemon: String) throws -> String {
        let dir = try Lab.makeDirectory("manage-cli")
        try daemon.write(toFile: dir + "/daemon.json", atomically: false, encoding: .utf8)
        try lab.hostsTOML().write(toFile: dir + "/hosts.toml", atomically: false, encoding: .utf8)
        try lab.config(dir: dir).write(toFile: dir + "/config.json", atomically: false, encoding: .utf8)
        return dir
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "<missing>" }

    @Test(.enabled(if: hasLab, "needs the binary, nginx and openssl: SKIPPED, not passed"))
    func applyShowsTheDiffThenWritesAndReloads() async throws {
        let lab = try await ManageLab.start()
        defer { lab.nginx.stop() }
        let daemon = "{\n  \"log-level\": \"warn\",\n  \"registry-mirrors\": [\n    \"\(lab.busyURL)\",\n    \"\(lab.staleURL)/\"\n  ]\n}\n"
        let dir = try Self.files(lab, daemon: daemon)
        defer { Lab.removeDirectory(dir) }

        // The diff: the stale and the busy mirror out, the good one in; tables reordered.
        let show = try await CLITests.cli(["apply", "--config", dir + "/config.json", "--log-level", "warn"])
        #expect(show.status == 0, "\(show)")
        #expect(show.stdout.hasPrefix("""
            --- \(dir)/daemon.json
            +++ \(dir)/daemon.json
            @@ -1,7 +1,6 @@
             {
               "log-level": "warn",
               "registry-mirrors": [
            -    "\(lab.busyURL)",
            -    "\(lab.staleURL)/"
            +    "\(lab.goodURL)"
               ]
             }

            """), "\(show)")
        #expect(show.stdout.contains("+++ \(dir)/hosts.toml\n"), "\(show)")
        #expect(Self.read(dir + "/daemon.json") == daemon, "apply without --write writes nothing")
        #expect(!FileManager.default.fileExists(atPath: dir + "/daemon.json.egress-monitor.orig"))
        // The diff is what GNU diff says about the file apply --write then writes.
        let dockerd = try ManageFileTests.sleeper(named: "dockerd", in: dir)
        defer { dockerd.stop(grace: 1) }
        try "\(dockerd.pid)\n".write(toFile: dir + "/docker.pid", atomically: false, encoding: .utf8)
        try await Task.sleep(nanoseconds: 100_000_000)
        let write = try await CLITests.cli(["apply", "--config", dir + "/config.json", "--write", "--log-level", "warn"])
        #expect(write.status == 0, "\(write)")
        #expect(Self.read(dir + "/daemon.json") == "{\n  \"log-level\": \"warn\",\n  \"registry-mirrors\": [\n    \"\(lab.goodURL)\"\n  ]\n}\n")
        #expect(Self.read(dir + "/daemon.json.egress-monitor.orig") == daemon)
        let gnu = try Lab.run("sh", ["-c", "diff -u --label \(dir)/daemon.json --label \(dir)/daemon.json daemon.json.egress-monitor.orig daemon.json; true"], currentDirectory: dir)
        #expect(write.stdout.hasPrefix(gnu), "\(write)\nGNU diff:\n\(gnu)")
        #expect(try HostsTOMLEdit.hosts(in: Self.read(dir + "/hosts.toml")) == [lab.goodURL, lab.busyURL, lab.staleURL])
        #expect(Self.read(dir + "/hosts.toml").contains("[host.\"\(lab.goodURL)\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"ca.pem\"\n"))
        #expect(write.stderr.contains("dockerd (pid \(dockerd.pid)) reloaded with SIGHUP"), "\(write)")
        #expect(await dockerd.waitForExit(timeout: 5) == "signal \(SIGHUP)")
        // The stale and busy mirrors are remembered, to be probed still.
        #expect(Set(ManageState.removed(stateDir: dir + "/state")) == [lab.busyURL, lab.staleURL])

        // Again: nothing to change, nothing printed, exit 0.
        let again = try await CLITests.cli(["apply", "--config", dir + "/config.json", "--write", "--log-level", "warn"])
        #expect(again.status == 0 && again.stdout.isEmpty, "\(again)")
        #expect(again.stderr.contains("unchanged (already as it should be)"), "\(again)")

        // check --json: what is managed, last written when, what would be written now.
        let check = try await CLITests.cli(["check", "--config", dir + "/config.json", "--json", "--log-level", "warn"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any], "\(check)")
        let manage = try #require(document["manage"] as? [[String: Any]], "\(check)")
        #expect(manage.map { $0["file"] as? String } == ["daemon_json", "hosts_toml"])
        #expect(manage[0]["would_write"] as? [String] == [lab.goodURL])
        #expect(manage[0]["last_written"] as? [String] == [lab.goodURL])
        #expect(manage[0]["pending_change"] as? Bool == false)
        #expect((manage[0]["last_write_timestamp_seconds"] as? Double).map { abs($0 - Date().timeIntervalSince1970) < 120 } == true)

        // check's text says the same after its table: what is listed, would be written, was written.
        let text = try await CLITests.cli(["check", "--config", dir + "/config.json", "--log-level", "warn"])
        #expect(!text.stdout.isEmpty, "\(text)")
        #expect(text.stdout.contains("""
            Managed files (egress-monitor apply shows the change as a diff):
              daemon_json \(dir)/daemon.json
                lists now:   \(lab.goodURL)
                would write: \(lab.goodURL) (as it is)
                last written by egress-monitor at
            """), "\(text)")
        #expect(text.stdout.contains(":   \(lab.goodURL)\n") && text.stdout.contains("  hosts_toml \(dir)/hosts.toml\n"), "\(text)")
    }

    @Test(.enabled(if: hasLab, "needs the binary, nginx and openssl: SKIPPED, not passed"))
    func applyExitStatuses() async throws {
        let lab = try await ManageLab.start()
        defer { lab.nginx.stop() }
        let bad = "{\"registry-mirrors\": [\"https://x\",]}\n"
        let dir = try Self.files(lab, daemon: bad)
        defer { Lab.removeDirectory(dir) }
        let run = try await CLITests.cli(["apply", "--config", dir + "/config.json", "--write", "--log-level", "warn"])
        #expect(run.status == 1, "\(run)")
        #expect(run.stderr.contains("\(dir)/daemon.json: \(dir)/daemon.json: not valid JSON"), "\(run)")
        #expect(Self.read(dir + "/daemon.json") == bad)
        // hosts.toml is still written: one bad file does not stop the other.
        #expect(try HostsTOMLEdit.hosts(in: Self.read(dir + "/hosts.toml")).first == lab.goodURL)

        for (args, message) in [(["apply", "--json"], #"unknown option "--json" for apply"#),
                                (["apply", "--write=yes"], "--write takes no value"),
                                (["apply", "--config", dir + "/none.json"], "cannot read config file")] {
            let usage = try await CLITests.cli(args)
            #expect(usage.status == 2 && usage.stderr.contains(message), "\(usage)")
        }

        // Without a manage section: the standard files where they exist (here pointed elsewhere).
        try "{}".write(toFile: dir + "/plain.json", atomically: false, encoding: .utf8)
        try lab.config(dir: dir, manage: false).write(toFile: dir + "/nomanage.json", atomically: false, encoding: .utf8)
        let plain = try await CLITests.cli(["apply", "--config", dir + "/nomanage.json", "--log-level", "warn"],
                                           environment: ["EGRESS_MANAGE_DAEMON_JSON": dir + "/plain.json",
                                                         "EGRESS_MANAGE_HOSTS_TOML": dir + "/absent.toml"])
        #expect(plain.status == 0, "\(plain)")
        #expect(plain.stdout == "--- \(dir)/plain.json\n+++ \(dir)/plain.json\n@@ -1 +1,5 @@\n-{}\n\\ No newline at end of file\n+{\n+  \"registry-mirrors\": [\n+    \"\(lab.goodURL)\"\n+  ]\n+}\n\\ No newline at end of file\n", "\(plain)")
    }

    /// The drop-in of "Letting it act", installed with the unit under a scratch root.
    @Test(.enabled(if: Lab.has("systemd-analyze"), "needs systemd-analyze (Debian systemd): SKIPPED, not passed"))
    func manageDropInExposureIsAtMostOnePointSix() async throws {
        let rootDir = try Lab.makeDirectory("systemd-manage")
        defer { Lab.removeDirectory(rootDir) }
        let unitDir = rootDir + "/etc/systemd/system"
        try FileManager.default.createDirectory(atPath: unitDir + "/egress-monitor.service.d", withIntermediateDirectories: true)
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        try FileManager.default.copyItem(atPath: repo + "/systemd/egress-monitor.service", toPath: unitDir + "/egress-monitor.service")
        try FileManager.default.copyItem(atPath: repo + "/systemd/manage.conf", toPath: unitDir + "/egress-monitor.service.d/manage.conf")
        let output = try await Lab.runAsync("systemd-analyze", ["security", "--offline=true", "--no-pager", "--root=\(rootDir)", "egress-monitor.service"])
        let score = OpsTests.exposure(output)
        #expect(output.split(separator: "\n").contains { $0.hasPrefix("✗ User=/DynamicUser=") }, "drop-in not applied:\n\(output)")
        #expect(output.split(separator: "\n").contains { $0.hasPrefix("✓ CapabilityBoundingSet=~CAP_KILL") }, "no capability granted:\n\(output)")
        #expect((score ?? 99) <= 1.6, "exposure with manage.conf \(score ?? -1):\n\(output)")
        print("systemd-analyze security egress-monitor.service + manage.conf: exposure \(score ?? -1)")
    }

    static let canDropCapabilities = hasLab && geteuid() == 0 && Lab.has("setpriv")

    /// What systemd/manage.conf claims: root with no capability at all (setpriv empties the
    /// bounding set, so exec grants none; no new privileges) writes root's files in a 0700
    /// directory and signals root's dockerd; a file owned by another user is a failure instead
    /// of a file handed to root.
    @Test(.enabled(if: canDropCapabilities, "needs root, setpriv, nginx and openssl: SKIPPED, not passed"))
    func applyWritesAsRootWithoutAnyCapability() async throws {
        let lab = try await ManageLab.start()
        defer { lab.nginx.stop() }
        let dir = try Self.files(lab, daemon: "{}\n")
        defer { Lab.removeDirectory(dir) }
        chmod(dir, 0o700)
        let dockerd = try ManageFileTests.sleeper(named: "dockerd", in: dir)
        defer { dockerd.stop(grace: 1) }
        try "\(dockerd.pid)\n".write(toFile: dir + "/docker.pid", atomically: false, encoding: .utf8)
        try await Task.sleep(nanoseconds: 100_000_000)
        func capless(_ args: [String]) async throws -> CLITests.Run {
            let script = #""$@" >"$EGRESS_OUT/out" 2>"$EGRESS_OUT/err"; echo $?"#
            let status = try await Lab.runAsync("sh", ["-c", script, "sh", "setpriv", "--no-new-privs", "--inh-caps=-all",
                                                       "--ambient-caps=-all", "--bounding-set=-all", "--", CLITests.binary] + args,
                                                environment: ["EGRESS_OUT": dir])
            return CLITests.Run(status: Int32(status.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1,
                                stdout: Self.read(dir + "/out"), stderr: Self.read(dir + "/err"))
        }
        let run = try await capless(["apply", "--config", dir + "/config.json", "--write", "--log-level", "warn"])
        #expect(run.status == 0, "\(run)")
        #expect(try DaemonJSONEdit.mirrors(in: Array(Self.read(dir + "/daemon.json").utf8)) == [lab.goodURL])
        #expect(await dockerd.waitForExit(timeout: 5) == "signal \(SIGHUP)")
        // The control: the same, on a daemon.json another user owns.
        try "{}\n".write(toFile: dir + "/daemon.json", atomically: false, encoding: .utf8)
        chown(dir + "/daemon.json", 1234, 1234)
        let other = try await capless(["apply", "--config", dir + "/config.json", "--write", "--log-level", "warn"])
        #expect(other.status == 1, "\(other)")
        #expect(other.stderr.contains("cannot keep the owner 1234:1234"), "\(other)")
        #expect(Self.read(dir + "/daemon.json") == "{}\n")
    }

    @Test(.enabled(if: hasLab && Lab.has("curl"), "needs nginx, openssl and curl: SKIPPED, not passed"))
    func theAgentWritesOnItsOwnAndShowsIt() async throws {
        let lab = try await ManageLab.start()
        defer { lab.nginx.stop() }
        let dir = try Self.files(lab, daemon: "{\"registry-mirrors\": [\"\(lab.staleURL)\"]}\n")
        defer { Lab.removeDirectory(dir) }
        try lab.config(dir: dir, extra: #", "interval_seconds": 1"#)
            .replacingOccurrences(of: #""timeout_seconds": 3"#, with: #""timeout_seconds": 1"#)
            .replacingOccurrences(of: #""state_dir""#, with: #""reload_docker": false, "state_dir""#)
            .write(toFile: dir + "/config.json", atomically: false, encoding: .utf8)
        let agent = try Agent.start(source: .file(dir + "/config.json"), listenOverride: SocketAddress(ip: IPAddress(Lab.loopback)!, port: 0), jitter: false)
        let base = "http://\(agent.server.boundAddress)"
        let written = Mutex<[String]>([])
        agent.manager.setOnWrite { file, kind, mirrors in written.withLock { $0.append("\(kind) \(mirrors.joined(separator: ","))") } }
        // Eight rounds to qualify, then a tick: well inside 30 s.
        let deadline = Deadline.after(seconds: 30)
        while !deadline.hasPassed, written.withLock({ $0.isEmpty }) {
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        #expect(Self.read(dir + "/daemon.json") == "{\"registry-mirrors\": [\"\(lab.goodURL)\"]}\n")
        #expect(written.withLock { $0 }.contains("daemon_json \(lab.goodURL)"))
        let metrics = try await Lab.runAsync("curl", ["-sS", "--max-time", "5", base + "/metrics"])
        #expect(metrics.contains("egress_manage_writes_total{file=\"daemon_json\",result=\"written\"} 1"), "\(metrics)")
        #expect(metrics.contains("egress_manage_mirrors{file=\"daemon_json\"} 1"))
        #expect(metrics.contains("egress_manage_last_write_timestamp_seconds{file=\"daemon_json\"}"))
        let api = try await Lab.runAsync("curl", ["-sS", "--max-time", "5", base + "/api/v1/status"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(api.utf8)) as? [String: Any])
        let manage = try #require(document["manage"] as? [[String: Any]], "\(api)")
        #expect(manage.first?["last_written"] as? [String] == [lab.goodURL])
        let page = try await Lab.runAsync("curl", ["-sS", "--max-time", "5", base + "/"])
        #expect(page.contains("<h2 id=\"managed\">Managed files</h2>"))
        #expect(page.contains("<code>\(dir)/daemon.json</code> (daemon_json)"))
        await agent.stop()
    }
}

import EgressSync
