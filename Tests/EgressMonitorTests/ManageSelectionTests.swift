import Foundation
import Testing
@testable import EgressMonitor

/// Managed mode's rules over explicit inputs: which mirrors qualify and in which order, when
/// nothing is written, the hysteresis; and the `manage` config section with its errors.
@Suite struct ManageSelectionTests {
    static func candidate(_ name: String, _ freshness: Freshness = .current, ok: Int = 10, of: Int = 10, rank: Int = 0) -> MirrorCandidate {
        MirrorCandidate(target: name, url: "https://\(name)", freshness: freshness,
                        outcomes: Array(repeating: false, count: of - ok) + Array(repeating: true, count: ok), rank: rank)
    }

    @Test func eightOfTheLastTenRoundsQualify() {
        #expect(MirrorSelection.qualifies(Self.candidate("a", ok: 8), oneRound: false))
        #expect(!MirrorSelection.qualifies(Self.candidate("a", ok: 7), oneRound: false))
        // Only the last ten count.
        let old = MirrorCandidate(target: "a", url: "https://a", freshness: .current,
                                  outcomes: Array(repeating: true, count: 5) + Array(repeating: false, count: 3) + Array(repeating: true, count: 7), rank: 0)
        #expect(!MirrorSelection.qualifies(old, oneRound: false))
        #expect(!MirrorSelection.qualifies(Self.candidate("a", .behind), oneRound: false))
        // apply: its one round.
        #expect(MirrorSelection.qualifies(Self.candidate("a", .unknown, ok: 1, of: 1), oneRound: true))
        #expect(!MirrorSelection.qualifies(Self.candidate("a", ok: 0, of: 1), oneRound: true))
    }

    @Test func currentMirrorsFirstInSuggestsOrderUnknownOnesAfter() {
        let list = MirrorSelection.choose([
            Self.candidate("unknown-fast", .unknown, rank: 0),
            Self.candidate("current-slow", .current, rank: 3),
            Self.candidate("behind", .behind, rank: 1),
            Self.candidate("current-fast", .current, rank: 2),
            Self.candidate("flaky", .current, ok: 5, rank: 0),
        ], hubWorks: true, oneRound: false)
        #expect(list == ["https://current-fast", "https://current-slow", "https://unknown-fast"])
    }

    @Test func nothingQualifyingLeavesTheFileUnlessTheHubWorks() {
        let bad = [Self.candidate("a", ok: 2), Self.candidate("b", .behind)]
        #expect(MirrorSelection.choose(bad, hubWorks: false, oneRound: false) == nil)
        #expect(MirrorSelection.choose(bad, hubWorks: true, oneRound: false) == [])
        #expect(MirrorSelection.choose([], hubWorks: false, oneRound: true) == nil)
    }

    @Test func hysteresis() {
        let a = ["https://a", "https://b"], b = ["https://b"]
        // Nothing changes: no write, whenever.
        #expect(!MirrorSelection.shouldWrite(current: a, proposed: ["https://a/", "https://b:443"], lastWriteAt: nil, now: 0, minDwell: 0, firstListedOutcomes: []))
        // The first decision, and any after the dwell.
        #expect(MirrorSelection.shouldWrite(current: a, proposed: b, lastWriteAt: nil, now: 100, minDwell: 600, firstListedOutcomes: [true]))
        #expect(MirrorSelection.shouldWrite(current: a, proposed: b, lastWriteAt: 100, now: 700, minDwell: 600, firstListedOutcomes: [true]))
        // Within the dwell: held while the first mirror still answers sometimes ...
        #expect(!MirrorSelection.shouldWrite(current: a, proposed: b, lastWriteAt: 100, now: 699, minDwell: 600, firstListedOutcomes: [false, true, false]))
        // ... written at once when it has no success left in its window.
        #expect(MirrorSelection.shouldWrite(current: a, proposed: b, lastWriteAt: 100, now: 101, minDwell: 600, firstListedOutcomes: [false, false]))
        // An empty list gains mirrors only after the dwell.
        #expect(!MirrorSelection.shouldWrite(current: [], proposed: b, lastWriteAt: 100, now: 101, minDwell: 600, firstListedOutcomes: nil))
    }

    // MARK: config

    static let base = #""targets": [{"name": "hub", "kind": "dockerhub"}], "discovery": false"#

    @Test func theManageSectionWithItsDefaults() throws {
        let config = try ConfigLoader.decode(Data(#"{\#(Self.base), "manage": {"daemon_json": "/etc/docker/daemon.json"}}"#.utf8))
        let m = try #require(config.manage)
        #expect(m.daemonJSON == "/etc/docker/daemon.json")
        #expect(m.hostsTOML == nil)
        #expect(m.reloadDocker)
        #expect(m.dockerPidFile == "/var/run/docker.pid")
        #expect(m.minDwellSeconds == 600)
        #expect(m.stateDir == "/var/lib/egress-monitor")
        #expect(m.dockerPath(in: config) == "direct")
        let hostsOnly = try ConfigLoader.decode(Data(#"{\#(Self.base), "manage": {"hosts_toml": "/h.toml", "min_dwell_seconds": 0}}"#.utf8))
        #expect(hostsOnly.manage?.reloadDocker == false)
        #expect(hostsOnly.manage?.minDwellSeconds == 0)
        #expect(try ConfigLoader.decode(Data("{\(Self.base)}".utf8)).manage == nil)
        // The default docker_path: the discovered docker-https-proxy path when there is one.
        var discovered = config
        discovered.paths.append(EgressPath(name: "docker-https-proxy", kind: .direct, discoveredFrom: "/etc/docker/daemon.json"))
        #expect(m.dockerPath(in: discovered) == "docker-https-proxy")
    }

    @Test func badManageFieldsAreNamedByTheirPath() {
        let cases: [(String, String)] = [
            (#"{"daemon_json": "daemon.json"}"#, "manage.daemon_json: \"daemon.json\" is not an absolute path"),
            (#"{"daemon_json": "/d", "min_dwell_seconds": 86401}"#, "manage.min_dwell_seconds: 86401 is out of range (0 to 86400)"),
            (#"{"daemon_json": "/d", "min_dwell_seconds": -1}"#, "manage.min_dwell_seconds: -1 is out of range (0 to 86400)"),
            (#"{"daemon_json": "/d", "reload_docker": "yes"}"#, "manage.reload_docker: expected true or false, found a string"),
            (#"{"hosts_toml": "/h", "reload_docker": true}"#, "manage.reload_docker: reloads dockerd after a daemon.json write: needs daemon_json"),
            (#"{"daemon_json": "/d", "docker_path": "no such"}"#, "manage.docker_path: \"no such\" is not a valid name"),
            (#"{"daemon_json": "/d", "state_dir": "var/lib"}"#, "manage.state_dir: \"var/lib\" is not an absolute path"),
            (#"{"daemon_json": "/d", "docker_pid_file": 1}"#, "manage.docker_pid_file: expected a string, found a number"),
            (#"{"daemon_json": "/d", "dwell": 1}"#, "manage.dwell: unknown field"),
            (#"{}"#, "manage: name daemon_json, hosts_toml or both"),
            (#"[]"#, "manage: expected an object, found an array"),
        ]
        for (manage, message) in cases {
            do {
                _ = try ConfigLoader.decode(Data(#"{\#(Self.base), "manage": \#(manage)}"#.utf8))
                Issue.record("accepted \(manage)")
            } catch {
                #expect(error.description.contains(message), "\(manage): \(error.description)")
            }
        }
    }

    @Test func dockerPathMustNameAPathOnceDiscoveryRan() throws {
        let dir = NSTemporaryDirectory() + "manage-config-\(getpid())-\(UUID())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{\#(Self.base), "manage": {"daemon_json": "/d", "docker_path": "vpn"}}"#.write(toFile: dir + "/c.json", atomically: true, encoding: .utf8)
        do {
            _ = try ConfigSource.file(dir + "/c.json").load(sources: DiscoverySources(environment: [:], daemonJSONPath: dir + "/none", dropInDirectory: dir, hostsTOMLPaths: []))
            Issue.record("accepted a docker_path naming no path")
        } catch {
            #expect(error.description.contains("manage.docker_path: \"vpn\" is not a path named in paths or discovered (direct)"))
        }
    }

    @Test func validatePrintsTheManageSection() throws {
        let config = try ConfigLoader.decode(Data(#"{\#(Self.base), "manage": {"daemon_json": "/etc/docker/daemon.json", "hosts_toml": "/etc/containerd/certs.d/docker.io/hosts.toml", "min_dwell_seconds": 60}}"#.utf8))
        let text = ValidateCommand.summary(config, source: "c.json")
        #expect(text.contains("  manage (writes these files):\n"))
        #expect(text.contains("daemon_json  /etc/docker/daemon.json"))
        #expect(text.contains("then SIGHUP to the dockerd of /var/run/docker.pid"))
        #expect(text.contains("hosts_toml   /etc/containerd/certs.d/docker.io/hosts.toml"))
        #expect(text.contains("judged on path direct (default); at most one write per 60 s"))
    }
}
