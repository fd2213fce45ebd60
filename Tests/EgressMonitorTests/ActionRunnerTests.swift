import Foundation
import Testing
@testable import EgressMonitor
import EgressMetrics
import EgressNet
import EgressTestSupport

/// Writes an executable shell script; the tests' actions are real programs.
func writeActionScript(_ path: String, _ body: String) throws {
    try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    chmod(path, 0o755)
}

/// Whether `pid` still runs: gone from /proc, or a zombie waiting for its parent (this
/// container's init does not reap), is not running.
func isRunning(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(close, offsetBy: 2)]
    return state != "Z" && state != "X"
}

/// The action runner against real programs: what a command gets (argv, environment, stdin,
/// process group), how runs end (ok, failed, timeout, spawn_error), coalescing, and the kill of
/// a hanging command with everything it started.
@Suite(.serialized) struct ActionRunnerTests {
    static let proxyPath = EgressPath(name: "corp", kind: .proxy(LabConfig.url("http://alice:s3cret-PW@127.0.0.1:3128")))

    static func config(_ actions: [ActionConfig]) -> AgentConfig {
        var c = LabConfig.config(targets: [LabConfig.target("hub", kind: .tcp, url: "tcp://127.0.0.1:1")],
                                 paths: [.direct, proxyPath, EgressPath(name: "vpn", kind: .interface("wg0"))])
        c.actions = actions
        return c
    }

    static func runner(_ actions: [ActionConfig], grace: Double = 1) -> (ActionRunner, MetricStore) {
        let metrics = Catalogue.makeStore()
        let runner = ActionRunner(metrics: metrics, terminationGrace: grace)
        runner.apply(config(actions))
        return (runner, metrics)
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// argv as given (no shell: spaces, `$HOME` and `*` arrive as they are), exactly the
    /// contract's environment (the agent's own variables, a secret among them, are not passed),
    /// stdin /dev/null, a process group of its own.
    @Test func theCommandGetsItsArgvTheContractsEnvironmentAndNothingElse() async throws {
        setenv("EGRESS_TEST_AGENT_SECRET", "agent-only-secret", 1)
        setenv("https_proxy", "http://alice:s3cret-PW@127.0.0.1:3128", 1)
        defer { unsetenv("EGRESS_TEST_AGENT_SECRET"); unsetenv("https_proxy") }
        let dir = try Lab.makeDirectory("action-env")
        defer { Lab.removeDirectory(dir) }
        let script = dir + "/record"
        try writeActionScript(script, """
        out="$1"; shift
        for a in "$@"; do printf 'arg=%s\\n' "$a"; done > "$out.argv"
        tr '\\0' '\\n' < /proc/$$/environ | sort > "$out.env"
        readlink /proc/$$/fd/0 > "$out.stdin"
        cut -d' ' -f5 /proc/$$/stat > "$out.pgid"
        echo $$ > "$out.pid"
        for f in /proc/$$/fd/*; do readlink "$f"; done > "$out.fds"
        exit 0
        """)
        // A descriptor of the agent opened without O_CLOEXEC does not reach the command.
        let leaky = open(dir + "/agent-file", O_WRONLY | O_CREAT, 0o600)
        defer { close(leaky) }
        let action = ActionConfig(name: "record", on: [.preferredPathChanged], command: [script, dir + "/run", "a b", "$HOME", "*"])
        let (runner, metrics) = Self.runner([action])
        let event = ActionEvent(kind: .preferredPathChanged, target: "hub", path: Self.proxyPath, previousPath: "direct")
        runner.deliver(event)
        await runner.waitUntilIdle()

        #expect(Self.read(dir + "/run.argv") == "arg=a b\narg=$HOME\narg=*\n")
        let expected = [
            "EGRESS_EVENT=preferred_path_changed", "EGRESS_FILE=", "EGRESS_MIRRORS=", "EGRESS_PATH=corp",
            "EGRESS_PATH_INTERFACE=", "EGRESS_PATH_KIND=proxy", "EGRESS_PATH_PROXY=http://alice@127.0.0.1:3128",
            "EGRESS_PATH_SOURCE_ADDRESS=", "EGRESS_PREVIOUS_PATH=direct", "EGRESS_TARGET=hub",
            "PATH=\(ProcessInfo.processInfo.environment["PATH"] ?? ActionRunner.defaultPath)",
        ]
        #expect(Self.read(dir + "/run.env").split(separator: "\n").map(String.init) == expected)
        #expect(!Self.read(dir + "/run.env").contains("s3cret") && !Self.read(dir + "/run.env").contains("agent-only-secret"))
        #expect(Self.read(dir + "/run.stdin") == "/dev/null\n")
        #expect(!Self.read(dir + "/run.fds").contains("agent-file") && Self.read(dir + "/run.fds").contains("pipe:"), "\(Self.read(dir + "/run.fds"))")
        #expect(Self.read(dir + "/run.pgid") == Self.read(dir + "/run.pid"), "the command leads a process group of its own")
        #expect(metrics.value(Catalogue.actionRuns, ["record", "ok"]) == 1)
        #expect((metrics.value(Catalogue.actionLastRun, ["record"]) ?? 0) > Date().timeIntervalSince1970 - 60)
        let status = try #require(runner.status.first)
        #expect(status.lastResult == .ok && status.lastExit == "exit 0" && status.runs[.ok] == 1 && !status.running)
        #expect(status.lastEvent == "preferred_path_changed hub direct→corp")

        // An interface path and mirrors_written fill their own variables.
        let vpn = ActionEvent(kind: .preferredPathChanged, target: "hub", path: EgressPath(name: "vpn", kind: .interface("wg0")), previousPath: "corp")
        let env = runner.environment(for: vpn, paths: [:])
        #expect(env.contains("EGRESS_PATH_KIND=interface") && env.contains("EGRESS_PATH_INTERFACE=wg0") && env.contains("EGRESS_PATH_PROXY="))
        let written = runner.environment(for: ActionEvent(kind: .mirrorsWritten, file: "/etc/docker/daemon.json", mirrors: ["https://a", "https://b:5000"]), paths: [:])
        #expect(written.contains("EGRESS_FILE=/etc/docker/daemon.json") && written.contains("EGRESS_MIRRORS=https://a,https://b:5000") && written.contains("EGRESS_TARGET="))
        #expect(written.count == 11)
    }

    /// Exit 3 is `failed`; a program that is not executable (any more: validate checked it
    /// once) or gone is `spawn_error`, and the runner goes on.
    @Test func resultsAreCountedByHowTheRunEnded() async throws {
        let dir = try Lab.makeDirectory("action-results")
        defer { Lab.removeDirectory(dir) }
        try writeActionScript(dir + "/fail", "exit 3")
        try writeActionScript(dir + "/noexec", "exit 0")
        chmod(dir + "/noexec", 0o644)
        let actions = [
            ActionConfig(name: "fail", on: [.targetDown], command: [dir + "/fail"]),
            ActionConfig(name: "noexec", on: [.targetDown], command: [dir + "/noexec"]),
            ActionConfig(name: "gone", on: [.targetDown], command: [dir + "/missing"]),
        ]
        let (runner, metrics) = Self.runner(actions)
        // Pidfds only: suites running beside this one open pipes and sockets of their own.
        func pidfds() -> Int {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
            return fds.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == "anon_inode:[pidfd]" }.count
        }
        let before = pidfds()
        runner.deliver(ActionEvent(kind: .targetDown, target: "hub", path: .direct))
        await runner.waitUntilIdle()
        #expect(pidfds() == before, "every run closes its pidfd")
        #expect(metrics.value(Catalogue.actionRuns, ["fail", "failed"]) == 1)
        #expect(metrics.value(Catalogue.actionRuns, ["fail", "ok"]) == 0, "every result's series exists from the start")
        #expect(metrics.value(Catalogue.actionRuns, ["noexec", "spawn_error"]) == 1)
        #expect(metrics.value(Catalogue.actionRuns, ["gone", "spawn_error"]) == 1)
        let status = runner.status
        #expect(status.map(\.lastResult) == [.failed, .spawnError, .spawnError])
        #expect(status[0].lastExit == "exit 3")
        #expect(status[1].lastExit?.contains("Permission denied") == true, "\(status[1])")
        #expect(status[2].lastExit?.contains("No such file") == true, "\(status[2])")
    }

    /// A command that hangs, with a child it forked, is ended at its timeout with the child:
    /// SIGTERM to the group; one that ignores SIGTERM gets SIGKILL after the grace period.
    @Test(arguments: [false, true])
    func aHangingCommandIsKilledWithItsChildrenAtTheTimeout(ignoresTERM: Bool) async throws {
        let dir = try Lab.makeDirectory("action-hang")
        defer { Lab.removeDirectory(dir) }
        try writeActionScript(dir + "/hang", """
        \(ignoresTERM ? "trap '' TERM" : "")
        sleep 1000 &
        echo $! > "\(dir)/child"
        echo $$ > "\(dir)/leader"
        exec sleep 1000
        """)
        let (runner, metrics) = Self.runner([ActionConfig(name: "hang", on: [.targetDown], command: [dir + "/hang"], timeoutSeconds: 1)], grace: 1)
        let started = Date()
        runner.deliver(ActionEvent(kind: .targetDown, target: "hub", path: .direct))
        await runner.waitUntilIdle()
        let took = Date().timeIntervalSince(started)
        let child = try #require(Int32(Self.read(dir + "/child").trimmingCharacters(in: .whitespacesAndNewlines)))
        let leader = try #require(Int32(Self.read(dir + "/leader").trimmingCharacters(in: .whitespacesAndNewlines)))
        // Should the runner fail to end them, the test does, so no sleep outlives it.
        defer { for pid in [leader, child] where isRunning(pid) { kill(pid, SIGKILL) } }
        #expect(!isRunning(leader), "the command still runs")
        #expect(!isRunning(child), "the child the command forked still runs")
        #expect(metrics.value(Catalogue.actionRuns, ["hang", "timeout"]) == 1)
        // 1 s timeout, plus the 1 s grace when TERM is ignored; bounds, with room for load.
        #expect(took >= (ignoresTERM ? 2 : 1) - 0.05, "ended after \(took) s")
        #expect(took < TestTime.allowance(ignoresTERM ? 6 : 5), "ended after \(took) s")
        #expect(runner.status.first?.lastExit == (ignoresTERM ? "signal 9" : "signal 15"))
    }

    /// When the agent stops, a run in progress is ended (its group terminated) rather than left
    /// behind, and no event starts another.
    @Test func stoppingEndsARunInProgress() async throws {
        let dir = try Lab.makeDirectory("action-stop")
        defer { Lab.removeDirectory(dir) }
        try writeActionScript(dir + "/hang", """
        echo $$ > "\(dir)/leader"
        exec sleep 1000
        """)
        let (runner, metrics) = Self.runner([ActionConfig(name: "hang", on: [.targetDown], command: [dir + "/hang"], timeoutSeconds: 100)], grace: 1)
        runner.deliver(ActionEvent(kind: .targetDown, target: "hub", path: .direct))
        let deadline = Date().addingTimeInterval(TestTime.allowance(5))
        while Self.read(dir + "/leader").isEmpty && Date() < deadline { try await Task.sleep(nanoseconds: 10_000_000) }
        let leader = try #require(Int32(Self.read(dir + "/leader").trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { if isRunning(leader) { kill(leader, SIGKILL) } }
        runner.deliver(ActionEvent(kind: .targetDown, target: "t2", path: .direct))
        let started = Date()
        await runner.stop()
        #expect(Date().timeIntervalSince(started) < TestTime.allowance(3), "stop waited \(Date().timeIntervalSince(started)) s")
        #expect(!isRunning(leader))
        #expect(metrics.value(Catalogue.actionRuns, ["hang", "failed"]) == 1)
        runner.deliver(ActionEvent(kind: .targetDown, target: "t3", path: .direct))
        await runner.waitUntilIdle()
        #expect(metrics.value(Catalogue.actionRuns, ["hang", "ok"]) == 0 && metrics.value(Catalogue.actionRuns, ["hang", "failed"]) == 1,
                "nothing ran after stop: the waiting event was dropped")
    }

    /// A command that exits leaving a background job in its group: the job is ended with the
    /// run, so runs of an action never overlap.
    @Test func whatACommandLeavesRunningInItsGroupEndsWithTheRun() async throws {
        let dir = try Lab.makeDirectory("action-leftover")
        defer { Lab.removeDirectory(dir) }
        try writeActionScript(dir + "/leave", """
        sleep 1000 > /dev/null 2>&1 &
        echo $! > "\(dir)/child"
        exit 0
        """)
        let (runner, metrics) = Self.runner([ActionConfig(name: "leave", on: [.targetDown], command: [dir + "/leave"])], grace: 1)
        runner.deliver(ActionEvent(kind: .targetDown, target: "hub", path: .direct))
        await runner.waitUntilIdle()
        let child = try #require(Int32(Self.read(dir + "/child").trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { if isRunning(child) { kill(child, SIGKILL) } }
        #expect(!isRunning(child))
        #expect(metrics.value(Catalogue.actionRuns, ["leave", "ok"]) == 1)
    }

    /// One run at a time: events arriving during a run are coalesced to the latest, which runs
    /// once the first run ends — two runs, never overlapping.
    @Test func eventsDuringARunAreCoalescedToTheLatest() async throws {
        let dir = try Lab.makeDirectory("action-coalesce")
        defer { Lab.removeDirectory(dir) }
        try writeActionScript(dir + "/slow", """
        mkdir "\(dir)/lock" 2>/dev/null || echo OVERLAP >> "\(dir)/runs"
        echo "start $EGRESS_TARGET" >> "\(dir)/runs"
        sleep 1
        echo "end $EGRESS_TARGET" >> "\(dir)/runs"
        rmdir "\(dir)/lock"
        """)
        let (runner, metrics) = Self.runner([ActionConfig(name: "slow", on: [.targetDown], command: [dir + "/slow"])])
        runner.deliver(ActionEvent(kind: .targetDown, target: "t1", path: .direct))
        // The first run has started when its line is there.
        let deadline = Date().addingTimeInterval(TestTime.allowance(5))
        while !Self.read(dir + "/runs").contains("start t1") && Date() < deadline { try await Task.sleep(nanoseconds: 10_000_000) }
        for t in ["t2", "t3", "t4"] { runner.deliver(ActionEvent(kind: .targetDown, target: t, path: .direct)) }
        #expect(runner.status.first?.pending == true)
        await runner.waitUntilIdle()
        #expect(Self.read(dir + "/runs") == "start t1\nend t1\nstart t4\nend t4\n")
        #expect(metrics.value(Catalogue.actionRuns, ["slow", "ok"]) == 2)
    }

    /// A reload keeps an action that stays (its counters, its new command), and drops the
    /// series of one removed.
    @Test func aReloadKeepsStayingActionsAndDropsRemovedOnes() async throws {
        let dir = try Lab.makeDirectory("action-reload")
        defer { Lab.removeDirectory(dir) }
        try writeActionScript(dir + "/one", "echo one >> \"\(dir)/ran\"")
        try writeActionScript(dir + "/two", "echo two >> \"\(dir)/ran\"")
        let (runner, metrics) = Self.runner([ActionConfig(name: "keep", on: [.targetDown], command: [dir + "/one"]),
                                             ActionConfig(name: "gone", on: [.targetDown], command: [dir + "/one"])])
        runner.deliver(ActionEvent(kind: .targetDown, target: "hub", path: .direct))
        await runner.waitUntilIdle()
        runner.apply(Self.config([ActionConfig(name: "keep", on: [.targetDown], command: [dir + "/two"])]))
        #expect(metrics.value(Catalogue.actionRuns, ["gone", "ok"]) == nil && metrics.value(Catalogue.actionLastRun, ["gone"]) == nil)
        runner.deliver(ActionEvent(kind: .targetDown, target: "hub", path: .direct))
        await runner.waitUntilIdle()
        #expect(metrics.value(Catalogue.actionRuns, ["keep", "ok"]) == 2)
        #expect(Self.read(dir + "/ran") == "one\none\ntwo\n")
        #expect(runner.status.map(\.name) == ["keep"] && runner.status.first?.runs[.ok] == 2)
    }

    /// Output is logged line by line (a last line without its newline too, a line longer than
    /// 4 KiB in pieces), with the password of any URL and every password the config holds hidden.
    @Test func secretsInOutputAreRedacted() {
        let secrets = ["s3cret-PW", "registry-pass"]
        #expect(ActionRunner.redact("via http://alice:s3cret-PW@127.0.0.1:3128 ok", secrets: secrets) == "via http://alice:***@127.0.0.1:3128 ok")
        #expect(ActionRunner.redact("socks5h://u:other@h:1/x and https://x:y@z", secrets: []) == "socks5h://u:***@h:1/x and https://x:***@z")
        #expect(ActionRunner.redact("password is s3cret-PW; registry-pass too", secrets: secrets) == "password is ***; *** too")
        #expect(ActionRunner.redact("http://user@host/ stays, so does a:b", secrets: []) == "http://user@host/ stays, so does a:b")
        #expect(ActionRunner.withoutPassword(LabConfig.url("socks5h://bob:pw@[::1]:1080")) == "socks5h://bob@[::1]:1080")
        #expect(ActionRunner.secrets(of: Self.config([])) == ["s3cret-PW"])
    }
}
