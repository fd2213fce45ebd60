#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import EgressMonitor
import EgressMetrics
import EgressSync
import EgressTestSupport

/// The manager of the running agent, fed rounds through the result store as the scheduler
/// feeds it, with its clock in the test's hand: when it writes, when it holds, what it counts,
/// what it remembers, and that it never touches a file it cannot parse.
@Suite(.serialized) struct ManageLoopTests {
    final class Clock: Sendable {
        let t = Mutex(1_000_000.0)
        var now: Double { t.withLock { $0 } }
        func advance(_ s: Double) { t.withLock { $0 += s } }
    }

    final class Writes: Sendable {
        let list = Mutex<[(String, String, [String])]>([])
    }

    struct Setup {
        let dir: String
        let config: AgentConfig
        let store: ResultStore
        let manager: MirrorManager
        let clock: Clock
        let writes: Writes
        var daemonJSON: String { dir + "/daemon.json" }
        var hostsTOML: String { dir + "/hosts.toml" }

        func round(_ target: String, ok: Bool, duration: Double = 0.1, path: String = "direct") {
            store.record(ProbeResult(target: target, path: path, startedAt: clock.now, duration: duration, phases: [.http: duration],
                                     failure: ok ? nil : ProbeFailure(.connect, .tcpTimeout, "timed out")))
        }
        func rounds(_ n: Int, _ outcomes: [String: Bool]) {
            for _ in 0..<n {
                for (t, ok) in outcomes.sorted(by: { $0.key < $1.key }) { round(t, ok: ok, duration: t == "m1" ? 0.1 : 0.2) }
            }
        }
        func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "<missing>" }
        func metric(_ family: MetricFamily, _ labels: [String]) -> Double? { store.metrics.value(family, labels) }
    }

    static func setup(_ name: String, daemon: String, hosts: String? = nil, dwell: Double = 600, extra: String = "") throws -> Setup {
        let dir = try Lab.makeDirectory(name)
        try daemon.write(toFile: dir + "/daemon.json", atomically: false, encoding: .utf8)
        if let hosts { try hosts.write(toFile: dir + "/hosts.toml", atomically: false, encoding: .utf8) }
        let json = """
        {"discovery": false, "targets": [{"name": "hub", "kind": "dockerhub", "url": "https://127.0.0.1:1"},
          {"name": "m1", "kind": "mirror", "url": "https://127.0.0.1:5001"},
          {"name": "m2", "kind": "mirror", "url": "https://127.0.0.1:5002"}],
         "manage": {"daemon_json": "\(dir)/daemon.json", \(hosts != nil ? "\"hosts_toml\": \"\(dir)/hosts.toml\"," : "")
                    "docker_pid_file": "\(dir)/docker.pid", "state_dir": "\(dir)/state", "min_dwell_seconds": \(dwell)\(extra)}}
        """
        let config = try ConfigLoader.decode(Data(json.utf8))
        let store = ResultStore(metrics: Catalogue.makeStore())
        store.setPairs(config.pairs.map { PairKey(target: $0.target.name, path: $0.path.name) })
        let clock = Clock()
        let writes = Writes()
        let manager = MirrorManager(results: store, config: { config }, now: { clock.now }) { file, kind, mirrors in
            writes.list.withLock { $0.append((file, kind, mirrors)) }
        }
        return Setup(dir: dir, config: config, store: store, manager: manager, clock: clock, writes: writes)
    }

    static let m1 = "https://127.0.0.1:5001", m2 = "https://127.0.0.1:5002"

    @Test func writesTheWorkingMirrorsHoldsForTheDwellAndActsAtOnceWhenTheFirstDies() throws {
        let s = try Self.setup("manage-agent", daemon: "{\n  \"debug\": true,\n  \"registry-mirrors\": [\"\(Self.m2)\"]\n}\n")
        defer { Lab.removeDirectory(s.dir) }
        // Warming up: seven rounds are not enough to judge anyone.
        s.rounds(7, ["hub": true, "m1": true, "m2": true])
        s.manager.tick()
        #expect(s.text(s.daemonJSON).contains("[\"\(Self.m2)\"]"))
        #expect(s.manager.status.first?.holding?.hasPrefix("warming up") == true)
        // Both answer in 8 of 8; m1 is faster: m1 first.
        s.rounds(1, ["hub": true, "m1": true, "m2": true])
        s.manager.tick()
        #expect(s.text(s.daemonJSON) == "{\n  \"debug\": true,\n  \"registry-mirrors\": [\"\(Self.m1)\", \"\(Self.m2)\"]\n}\n")
        #expect(s.text(s.daemonJSON + ".egress-monitor.orig").contains("[\"\(Self.m2)\"]"))
        #expect(s.metric(Catalogue.manageWrites, ["daemon_json", "written"]) == 1)
        #expect(s.metric(Catalogue.manageMirrors, ["daemon_json"]) == 2)
        #expect(s.metric(Catalogue.manageLastWrite, ["daemon_json"]) == s.clock.now)
        #expect(s.writes.list.withLock { $0.map(\.2) } == [[Self.m1, Self.m2]])
        #expect(s.writes.list.withLock { $0.map(\.1) } == ["daemon_json"])
        // No dockerd at the pid file: the reload fails, counted; the write stands.
        #expect(s.metric(Catalogue.dockerReloads, ["failed"]) == 1)

        // m1 fails three rounds: 7 of its last 10, out; but it still answers now and then, and
        // the last write was a minute ago: held.
        s.clock.advance(60)
        s.rounds(3, ["hub": true, "m1": false, "m2": true])
        s.manager.tick()
        #expect(s.text(s.daemonJSON).contains("[\"\(Self.m1)\", \"\(Self.m2)\"]"))
        #expect(s.manager.status.first?.holding?.contains("min_dwell_seconds") == true)
        #expect(s.manager.status.first?.wouldWrite == [Self.m2])
        // m1 has no success left in its window: written at once, the dwell notwithstanding.
        s.clock.advance(60)
        s.rounds(7, ["hub": true, "m1": false, "m2": true])
        s.manager.tick()
        #expect(s.text(s.daemonJSON).contains("[\"\(Self.m2)\"]"))
        #expect(s.metric(Catalogue.manageWrites, ["daemon_json", "written"]) == 2)
        // m1, taken out, is remembered, so it is still probed after a restart.
        #expect(ManageState.removed(stateDir: s.dir + "/state") == [Self.m1])
        var forgotten = s.config
        forgotten.targets.removeAll { $0.name == "m1" }
        let restored = ManageState.addRemembered(to: forgotten)
        #expect(restored.targets.contains { $0.kind == .mirror && MirrorURL.text($0.url) == Self.m1 && $0.registry.upstream == "hub" })
        // A tick with nothing new writes nothing.
        s.manager.tick()
        #expect(s.metric(Catalogue.manageWrites, ["daemon_json", "written"]) == 2)
        // m1 recovers: back in the list once the dwell has passed, and forgotten by the state.
        s.rounds(10, ["hub": true, "m1": true, "m2": true])
        s.manager.tick()
        #expect(s.text(s.daemonJSON).contains("[\"\(Self.m2)\"]"), "held: the first listed still answers")
        s.clock.advance(600)
        s.manager.tick()
        #expect(s.text(s.daemonJSON).contains("[\"\(Self.m1)\", \"\(Self.m2)\"]"))
        #expect(ManageState.removed(stateDir: s.dir + "/state") == [])
    }

    @Test func nothingQualifyingWithTheHubDownLeavesTheFileWithTheHubUpEmptiesIt() throws {
        let s = try Self.setup("manage-none", daemon: "{\"registry-mirrors\": [\"\(Self.m1)\"]}", dwell: 0)
        defer { Lab.removeDirectory(s.dir) }
        s.rounds(10, ["hub": false, "m1": false, "m2": false])
        s.manager.tick()
        #expect(s.text(s.daemonJSON) == "{\"registry-mirrors\": [\"\(Self.m1)\"]}")
        s.rounds(1, ["hub": true])
        s.manager.tick()
        #expect(s.text(s.daemonJSON) == "{\"registry-mirrors\": []}")
    }

    @Test func aBehindMirrorIsLeftOut() throws {
        let s = try Self.setup("manage-behind", daemon: "{}", dwell: 0)
        defer { Lab.removeDirectory(s.dir) }
        s.store.setUpstreams(["m1": "hub", "m2": "hub"])
        func withDigest(_ target: String, _ digest: String) -> ProbeResult {
            var obs = RegistryObservation()
            obs.digests = ["library/alpine:latest": digest]
            return ProbeResult(target: target, path: "direct", startedAt: s.clock.now, duration: 0.1, phases: [:], failure: nil, registry: obs)
        }
        for _ in 0..<10 {
            s.store.record(withDigest("hub", "sha256:new"))
            s.store.record(withDigest("m1", "sha256:old"))
            s.store.record(withDigest("m2", "sha256:new"))
        }
        s.manager.tick()
        #expect(s.text(s.daemonJSON) == "{\n  \"registry-mirrors\": [\n    \"\(Self.m2)\"\n  ]\n}")
    }

    @Test func aFileThatIsNotJSONIsNeverTouchedButCountedAndShown() throws {
        let bad = "{\"registry-mirrors\": [\"https://x\",], // a comment\n}"
        let s = try Self.setup("manage-bad", daemon: bad, dwell: 0, extra: ", \"reload_docker\": false")
        defer { Lab.removeDirectory(s.dir) }
        s.rounds(10, ["hub": true, "m1": true, "m2": true])
        s.manager.tick()
        s.manager.tick()
        #expect(s.text(s.daemonJSON) == bad)
        #expect(!FileManager.default.fileExists(atPath: s.daemonJSON + ".egress-monitor.orig"))
        #expect(s.metric(Catalogue.manageWrites, ["daemon_json", "failed"]) == 2)
        #expect(s.manager.status.first?.lastError?.contains("not valid JSON") == true)
        #expect(s.writes.list.withLock { $0.isEmpty })
        // The agent keeps going: fixed by a person, written at the next tick.
        try "{}".write(toFile: s.daemonJSON, atomically: false, encoding: .utf8)
        s.manager.tick()
        #expect(try DaemonJSONEdit.mirrors(in: Array(s.text(s.daemonJSON).utf8)) == [Self.m1, Self.m2])
        #expect(s.manager.status.first?.lastError == nil)
    }

    @Test func hostsTOMLTablesFollowTheSelectionAndDockerdIsReloaded() async throws {
        let hosts = LabConfig.hostsTOML([(Self.m2, []), ("https://127.0.0.1:5009", []), (Self.m1, ["skip_verify = true"])])
        let s = try Self.setup("manage-hosts", daemon: "{}", hosts: hosts, dwell: 0)
        defer { Lab.removeDirectory(s.dir) }
        // A process whose comm is dockerd (a copy of sleep): SIGHUP kills it, the proof it was sent.
        try FileManager.default.copyItem(atPath: Lab.path(of: "sleep")!, toPath: s.dir + "/dockerd")
        let dockerd = try LabProcess(s.dir + "/dockerd", arguments: ["300"], directory: s.dir, name: "dockerd")
        defer { dockerd.stop(grace: 1) }
        try "\(dockerd.pid)\n".write(toFile: s.dir + "/docker.pid", atomically: false, encoding: .utf8)
        try await Task.sleep(nanoseconds: 100_000_000)
        s.rounds(10, ["hub": true, "m1": true, "m2": true])
        s.manager.tick()
        #expect(try HostsTOMLEdit.hosts(in: s.text(s.hostsTOML)) == [Self.m1, Self.m2, "https://127.0.0.1:5009"])
        #expect(s.text(s.hostsTOML).contains("[host.\"\(Self.m1)\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n"))
        #expect(s.metric(Catalogue.manageWrites, ["hosts_toml", "written"]) == 1)
        #expect(s.metric(Catalogue.dockerReloads, ["ok"]) == 1)
        #expect(await dockerd.waitForExit(timeout: 5) == "signal \(SIGHUP)")
        #expect(Set(s.writes.list.withLock { $0.map(\.1) }) == ["daemon_json", "hosts_toml"])
        #expect(s.manager.status.map(\.kind) == [.daemonJSON, .hostsTOML])
    }

    /// A fresh Docker host has no daemon.json: the agent creates it (mode 0644) with the key, and
    /// keeps no original of a file that was not there. One that appears between the agent's look
    /// and its write is not overwritten.
    @Test func anAbsentDaemonJSONIsCreatedButNeverOverAFileThatAppeared() throws {
        let s = try Self.setup("manage-absent", daemon: "{}", dwell: 0, extra: ", \"reload_docker\": false")
        defer { Lab.removeDirectory(s.dir) }
        try FileManager.default.removeItem(atPath: s.daemonJSON)
        s.rounds(10, ["hub": true, "m1": true, "m2": false])
        s.manager.tick()
        #expect(s.text(s.daemonJSON) == "{\n  \"registry-mirrors\": [\n    \"\(Self.m1)\"\n  ]\n}\n")
        var info = stat()
        lstat(s.daemonJSON, &info)
        #expect(info.st_mode & 0o7777 == 0o644)
        #expect(!FileManager.default.fileExists(atPath: s.daemonJSON + ".egress-monitor.orig"))
        #expect(s.metric(Catalogue.manageWrites, ["daemon_json", "written"]) == 1)

        let other = s.dir + "/other.json"
        let plan = FilePlan.make(.daemonJSON, path: other, proposed: [Self.m1])
        #expect(plan.changes && plan.snapshot?.exists == false)
        try "{\"debug\": true}".write(toFile: other, atomically: false, encoding: .utf8)
        guard case .failure(.changedSinceRead) = ManagedFileWriter.write(plan.newBytes!, over: plan.snapshot!) else {
            Issue.record("a file that appeared was overwritten")
            return
        }
        #expect(s.text(other) == "{\"debug\": true}")
        // Nothing qualifying: an absent file stays absent.
        let none = FilePlan.make(.daemonJSON, path: s.dir + "/none.json", proposed: [])
        #expect(!none.changes)
        // Nor is a file created in a directory that does not exist.
        #expect(FilePlan.make(.daemonJSON, path: s.dir + "/no/such/daemon.json", proposed: [Self.m1]).error != nil)
    }
}
