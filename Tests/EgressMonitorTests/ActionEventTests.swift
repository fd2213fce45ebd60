import Foundation
import Testing
@testable import EgressMonitor
import EgressMetrics
import EgressNet
import EgressSync
import EgressTestSupport

/// Which changes in recorded results are events (DESIGN.md): results go through a real
/// ResultStore (its preferred-path rule and hysteresis) into ViewChanges; the events come out.
@Suite struct ActionEventTests {
    final class Recorder: Sendable {
        let events = Mutex<[ActionEvent]>([])
        func add(_ e: ActionEvent) { events.withLock { $0.append(e) } }
        var summaries: [String] { events.withLock { $0.map(\.summary) } }
    }

    static let paths = [EgressPath.direct, EgressPath(name: "vpn", kind: .interface("wg0"))]

    /// A store and its observer for targets `hub` and `mirror` over direct and vpn, with one
    /// action listening to every target event.
    static func setUp(actions: [ActionConfig] = [ActionConfig(name: "a", on: [.targetUp, .targetDown, .preferredPathChanged], command: ["/bin/true"])])
        -> (ResultStore, Recorder) {
        let store = ResultStore(metrics: Catalogue.makeStore())
        let recorder = Recorder()
        let changes = ViewChanges { recorder.add($0) }
        var config = LabConfig.config(targets: [LabConfig.target("hub", kind: .tcp, url: "tcp://127.0.0.1:1"),
                                                LabConfig.target("mirror", kind: .tcp, url: "tcp://127.0.0.1:2")], paths: paths)
        config.actions = actions
        changes.apply(config)
        store.observe(changes)
        store.setPairs(config.pairs.map { PairKey(target: $0.target.name, path: $0.path.name) })
        return (store, recorder)
    }

    static func result(_ target: String, _ path: String, ok: Bool, time: Double = 0.05) -> ProbeResult {
        ProbeResult(target: target, path: path, startedAt: Date().timeIntervalSince1970, duration: time,
                    phases: ok ? [.connect: time] : [:], failure: ok ? nil : ProbeFailure(.connect, .tcpRefused, "refused"))
    }

    @Test func theFirstVerdictAndTheFirstPreferredPathAreNoEvents() {
        let (store, recorder) = Self.setUp()
        store.record(Self.result("hub", "direct", ok: false))
        store.record(Self.result("hub", "vpn", ok: true))
        store.record(Self.result("mirror", "direct", ok: false))
        store.record(Self.result("mirror", "vpn", ok: false))
        store.record(Self.result("hub", "direct", ok: false))
        #expect(recorder.summaries == [], "hub is first up on vpn and mirror first down: no change yet")
    }

    @Test func aTargetGoesDownWhenNoPathWorkedInItsLastRoundAndUpWhenOneDoes() {
        let (store, recorder) = Self.setUp()
        // The preferred path moves too, when direct fails; only the verdicts are looked at here.
        var verdicts: [String] { recorder.summaries.filter { !$0.hasPrefix("preferred_path_changed") } }
        store.record(Self.result("hub", "direct", ok: true))
        store.record(Self.result("hub", "vpn", ok: true))
        store.record(Self.result("hub", "direct", ok: false))
        #expect(verdicts == [], "vpn still worked in its last round")
        store.record(Self.result("hub", "vpn", ok: false))
        #expect(verdicts == ["target_down hub (vpn)"])
        store.record(Self.result("hub", "direct", ok: false))
        #expect(verdicts.count == 1, "down stays down: one event")
        store.record(Self.result("hub", "vpn", ok: true))
        #expect(verdicts == ["target_down hub (vpn)", "target_up hub (vpn)"])
    }

    /// A verdict needs every path's round: at start, a failed first path with the other still on
    /// its way is no verdict (so the other's success is no "target_up").
    @Test func noVerdictBeforeEveryPathHasARound() {
        #expect(ViewChanges.targetUp(lastRounds: [false, nil]) == nil)
        #expect(ViewChanges.targetUp(lastRounds: [nil, true]) == true)
        #expect(ViewChanges.targetUp(lastRounds: [false, false]) == false)
        #expect(ViewChanges.targetUp(lastRounds: []) == nil)
    }

    @Test func thePreferredPathMovingIsAnEventWithBothPaths() throws {
        let (store, recorder) = Self.setUp()
        store.record(Self.result("hub", "direct", ok: true, time: 0.05))
        store.record(Self.result("hub", "vpn", ok: true, time: 0.2))
        store.record(Self.result("hub", "direct", ok: true, time: 0.05))
        store.record(Self.result("hub", "vpn", ok: true, time: 0.2))
        #expect(store.preferredPaths()["hub"] == "direct")
        // vpn is 25 % faster now, but not by its median yet: hysteresis, no event.
        store.record(Self.result("hub", "vpn", ok: true, time: 0.04))
        #expect(store.preferredPaths()["hub"] == "direct")
        #expect(recorder.summaries == [])
        // direct fails: its ratio falls two rounds in ten below vpn's, the preference moves.
        store.record(Self.result("hub", "direct", ok: false))
        #expect(store.preferredPaths()["hub"] == "vpn")
        #expect(recorder.summaries == ["preferred_path_changed hub direct→vpn"])
        let event = try #require(recorder.events.withLock { $0.first })
        #expect(event.path == Self.paths[1] && event.previousPath == "direct")
        // A path that never worked is never "preferred" for events (as on the status page).
        store.record(Self.result("mirror", "direct", ok: false))
        store.record(Self.result("mirror", "vpn", ok: true))
        #expect(recorder.summaries.count == 1, "mirror's first working path is its first choice, no event")
    }

    /// `targets` filters the target events; `mirrors_written` is never filtered by it.
    @Test func targetsFiltersTargetEventsOnly() {
        let action = ActionConfig(name: "a", on: [.targetDown, .mirrorsWritten], targets: ["hub"], command: ["/bin/true"])
        #expect(action.wants(ActionEvent(kind: .targetDown, target: "hub")))
        #expect(!action.wants(ActionEvent(kind: .targetDown, target: "mirror")))
        #expect(!action.wants(ActionEvent(kind: .targetUp, target: "hub")), "not subscribed")
        #expect(action.wants(ActionEvent(kind: .mirrorsWritten, file: "/etc/docker/daemon.json")))
        let all = ActionConfig(name: "b", on: [.targetDown], command: ["/bin/true"])
        #expect(all.wants(ActionEvent(kind: .targetDown, target: "mirror")))
    }

    /// Without an action on target events, recording results builds no state and fires nothing.
    @Test func withoutActionsNothingIsTracked() {
        let (store, recorder) = Self.setUp(actions: [ActionConfig(name: "m", on: [.mirrorsWritten], command: ["/bin/true"])])
        store.record(Self.result("hub", "direct", ok: true))
        store.record(Self.result("hub", "vpn", ok: true))
        store.record(Self.result("hub", "direct", ok: false))
        store.record(Self.result("hub", "vpn", ok: false))
        #expect(recorder.summaries == [])
    }
}

/// `actions[]` in the config: each bad field named with its JSON path.
@Suite struct ActionConfigTests {
    static func issues(_ actions: String, dir: String) -> [String] {
        let json = #"{"targets": [{"name": "hub", "kind": "dockerhub"}], "actions": \#(actions)}"#
        do {
            _ = try ConfigLoader.decode(Array(json.utf8))
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

    @Test func badActionsAreNamedByField() throws {
        let dir = try Lab.makeDirectory("action-config")
        defer { Lab.removeDirectory(dir) }
        try writeActionScript(dir + "/ok", "exit 0")
        try writeActionScript(dir + "/noexec", "exit 0")
        chmod(dir + "/noexec", 0o644)
        let ok = dir + "/ok"
        let cases: [(String, String)] = [
            (#"{}"#, "actions: expected an array, found an object"),
            (#"[{"name": "a", "command": ["\#(ok)"]}]"#, "actions[0].on: required (one or more of preferred_path_changed, target_down, target_up, mirrors_written)"),
            (#"[{"name": "a", "on": ["down"], "command": ["\#(ok)"]}]"#, #"actions[0].on[0]: "down" is not one of preferred_path_changed, target_down, target_up, mirrors_written"#),
            (#"[{"name": "a", "on": [], "command": ["\#(ok)"]}]"#, "actions[0].on: must name at least one event"),
            (#"[{"name": "a", "on": ["target_up"], "targets": ["nope"], "command": ["\#(ok)"]}]"#, #"actions[0].targets[0]: "nope" is not a target named in targets (hub)"#),
            (#"[{"name": "a", "on": ["target_up"]}]"#, #"actions[0].command: required: ["/absolute/path/to/program", "arguments", ...]; it runs without a shell"#),
            (#"[{"name": "a", "on": ["target_up"], "command": []}]"#, "actions[0].command: must name the program to run (an absolute path), then its arguments"),
            (#"[{"name": "a", "on": ["target_up"], "command": ["ok.sh"]}]"#, #"actions[0].command[0]: "ok.sh" is not an absolute path (no shell and no PATH search: name the program as /usr/local/bin/...)"#),
            (#"[{"name": "a", "on": ["target_up"], "command": ["\#(dir)/missing"]}]"#, "actions[0].command[0]: \(dir)/missing does not exist"),
            (#"[{"name": "a", "on": ["target_up"], "command": ["\#(dir)/noexec"]}]"#, "actions[0].command[0]: \(dir)/noexec is not executable (chmod +x)"),
            (#"[{"name": "a", "on": ["target_up"], "command": ["\#(dir)"]}]"#, "actions[0].command[0]: \(dir) is not a regular file"),
            (#"[{"name": "a", "on": ["target_up"], "command": ["\#(ok)"], "timeout_seconds": 0}]"#, "actions[0].timeout_seconds: 0 is out of range (0.1 to 3600)"),
            (#"[{"name": "a", "on": ["target_up"], "command": ["\#(ok)"], "shell": true}]"#, "actions[0].shell: unknown field (expected one of: name, on, targets, command, timeout_seconds)"),
            (#"[{"name": "a", "on": ["target_up"], "command": ["\#(ok)"]}, {"name": "a", "on": ["target_up"], "command": ["\#(ok)"]}]"#, #"actions[1].name: "a" is used twice"#),
        ]
        for (actions, message) in cases {
            #expect(Self.issues(actions, dir: dir) == [message], "\(actions)")
        }
        // validate lists the actions (a URL password in an argument hidden); check --json lists
        // them with no run; without actions neither shows a block.
        var withActions = LabConfig.config(targets: [LabConfig.target("hub", kind: .dockerhub, url: "https://registry-1.docker.io")])
        withActions.actions = [ActionConfig(name: "hook", on: [.targetDown], targets: ["hub"], command: [ok, "https://u:pw@hook.example"], timeoutSeconds: 5)]
        let summary = ValidateCommand.summary(withActions, source: "c.json")
        #expect(summary.contains("  actions (run without a shell, environment EGRESS_* and PATH only):\n    hook  on target_down  targets hub  runs \(ok) https://u:***@hook.example  timeout 5 s\n"), "\(summary)")
        #expect(!ValidateCommand.summary(LabConfig.config(targets: withActions.targets), source: "c.json").contains("actions"))
        let check = try JSONSerialization.jsonObject(with: Data(CheckCommand.json([], actions: withActions.actions))) as? [String: Any]
        let block = check?["actions"] as? [[String: Any]] ?? []
        #expect(block.count == 1 && block.first?["name"] as? String == "hook" && block.first?["last_result"] is NSNull
                && (block.first?["runs"] as? [String: Any])?["timeout"] as? Int == 0 && block.first?["targets"] as? [String] == ["hub"])
        #expect(!String(decoding: CheckCommand.json([]), as: UTF8.self).contains("actions"))
        let config = try ConfigLoader.decode(Array(#"{"targets": [{"name": "hub", "kind": "dockerhub"}], "actions": [{"name": "a", "on": ["target_down", "mirrors_written"], "targets": ["hub"], "command": ["\#(ok)", "--quiet"]}]}"#.utf8))
        #expect(config.actions == [ActionConfig(name: "a", on: [.targetDown, .mirrorsWritten], targets: ["hub"], command: [ok, "--quiet"], timeoutSeconds: 30)])
    }
}
