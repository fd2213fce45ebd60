#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import EgressMonitor
import EgressTestSupport

/// The file side of managed mode: daemon.json's `registry-mirrors` edited byte-exactly,
/// hosts.toml's tables reordered, the atomic writer's safety rules, dockerd's reload guard, and
/// the unified diff `apply` prints (judged by GNU diff and patch).
@Suite struct ManageFileTests {
    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
    static func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    // MARK: daemon.json

    @Test func onlyTheMirrorsValueChanges() throws {
        let file = """
        {
            "log-level":   "warn",
            "registry-mirrors": [
                "https://old.example"
            ],
            "max-concurrent-downloads": 3.0e0,
            "x-unknown": {"nested": [1, 2 ,3], "n": -0.50},
            "proxies": {"https-proxy": "http://p:3128"}
        }

        """
        let out = Self.text(try DaemonJSONEdit.edit(Self.bytes(file), mirrors: ["https://a.example", "https://b.example:5000"]))
        #expect(out == """
        {
            "log-level":   "warn",
            "registry-mirrors": [
                "https://a.example",
                "https://b.example:5000"
            ],
            "max-concurrent-downloads": 3.0e0,
            "x-unknown": {"nested": [1, 2 ,3], "n": -0.50},
            "proxies": {"https-proxy": "http://p:3128"}
        }

        """)
    }

    @Test func anInlineListStaysInline() throws {
        let file = #"{"debug":true,"registry-mirrors":["https://x","https://y"],"z":1}"#
        #expect(Self.text(try DaemonJSONEdit.edit(Self.bytes(file), mirrors: ["https://y"])) == #"{"debug":true,"registry-mirrors":["https://y"],"z":1}"#)
        #expect(Self.text(try DaemonJSONEdit.edit(Self.bytes(file), mirrors: [])) == #"{"debug":true,"registry-mirrors":[],"z":1}"#)
        let spaced = #"{ "registry-mirrors": [ "https://x" ] }"#
        #expect(Self.text(try DaemonJSONEdit.edit(Self.bytes(spaced), mirrors: ["https://a", "https://b"])) == #"{ "registry-mirrors": [ "https://a", "https://b" ] }"#)
    }

    @Test func theKeyIsAddedWhenAbsentInTheFilesStyle() throws {
        let file = "{\n  \"debug\": true,\n  \"data-root\": \"/srv/docker\"\n}\n"
        #expect(Self.text(try DaemonJSONEdit.edit(Self.bytes(file), mirrors: ["https://a", "https://b"])) ==
                "{\n  \"debug\": true,\n  \"data-root\": \"/srv/docker\",\n  \"registry-mirrors\": [\n    \"https://a\",\n    \"https://b\"\n  ]\n}\n")
        let inline = #"{"debug": true}"#
        #expect(Self.text(try DaemonJSONEdit.edit(Self.bytes(inline), mirrors: ["https://a"])) == #"{"debug": true, "registry-mirrors": ["https://a"]}"#)
        #expect(Self.text(try DaemonJSONEdit.edit(Self.bytes("{}\n"), mirrors: ["https://a"])) == "{\n  \"registry-mirrors\": [\n    \"https://a\"\n  ]\n}\n")
        // Every result is JSON that says what was meant.
        for f in [file, inline, "{}\n", "{ }"] {
            let out = try DaemonJSONEdit.edit(Self.bytes(f), mirrors: ["https://a"])
            #expect(try DaemonJSONEdit.mirrors(in: out) == ["https://a"])
        }
    }

    @Test func aTrailingSlashNamesTheSameMirrorSoNothingIsWritten() throws {
        let file = Self.bytes(#"{"registry-mirrors": ["https://A.example/", "https://b.example:443"]}"#)
        #expect(try DaemonJSONEdit.edit(file, mirrors: ["https://a.example", "https://b.example"]) == file)
        #expect(MirrorURL.normalized("https://m.example:5000/") == "https://m.example:5000")
    }

    @Test func notJSONIsAnErrorAndNothingIsProduced() {
        for bad in ["{\"registry-mirrors\": [\"https://a\",]}", "[1]", "", "{\"a\": 1} x", "{\"registry-mirrors\": \"https://a\"}"] {
            #expect(throws: ManageError.self) { try DaemonJSONEdit.edit(Self.bytes(bad), mirrors: ["https://b"]) }
        }
    }

    @Test func duplicateKeysEditTheOneDockerdReads() throws {
        let file = #"{"registry-mirrors": ["https://1"], "registry-mirrors": ["https://2"]}"#
        #expect(Self.text(try DaemonJSONEdit.edit(Self.bytes(file), mirrors: ["https://3"])) == #"{"registry-mirrors": ["https://1"], "registry-mirrors": ["https://3"]}"#)
    }

    // MARK: hosts.toml

    /// The file's pieces: what comes before the first table, then each table as the edit moves
    /// it (with the comments above it and the blank lines after it).
    static let hostsServer = """
    server = "https://registry-1.docker.io"


    """
    static let hostsTableA = """
    # A, the paid one
    [host."https://a.example"]
      capabilities = ["pull", "resolve"]
      ca = "a.crt"
      [host."https://a.example".header]
        x-token = ["t"]


    """
    static let hostsTableB = """
    [host."https://b.example:5000/v2/proxy"]
      capabilities = ["pull"]
      override_path = true
    # trailing note of b


    """
    static let hostsTableC = """
    [host."https://c.example"]
      skip_verify = true
    """
    static let hostsTOML = hostsServer + hostsTableA + hostsTableB + hostsTableC

    @Test func tablesAreReorderedWithTheirSubTablesAndComments() throws {
        let out = try HostsTOMLEdit.edit(Self.hostsTOML, order: ["https://c.example", "https://a.example"])
        // c (the last table, without a trailing newline, gets one), then a, then b not named: last.
        #expect(out == Self.hostsServer + Self.hostsTableC + "\n" + Self.hostsTableA + Self.hostsTableB)
        // Nothing lost: the same lines, only moved.
        #expect(out.split(separator: "\n").sorted() == Self.hostsTOML.split(separator: "\n").sorted())
        #expect(try HostsTOMLEdit.hosts(in: out) == ["https://c.example", "https://a.example", "https://b.example:5000/v2/proxy"])
    }

    @Test func nothingQualifyingLeavesTheFileAsItIs() throws {
        #expect(try HostsTOMLEdit.edit(Self.hostsTOML, order: []) == Self.hostsTOML)
        #expect(try HostsTOMLEdit.edit(Self.hostsTOML, order: ["https://unknown.example"]) == Self.hostsTOML)
        #expect(try HostsTOMLEdit.edit(Self.hostsTOML, order: ["https://a.example/"]) == Self.hostsTOML)
        #expect(throws: ManageError.self) { try HostsTOMLEdit.edit("[host.\"https://a\"\n", order: ["https://a"]) }
    }

    // MARK: the writer

    static func stat(_ path: String) -> Glibc.stat {
        var info = Glibc.stat()
        _ = lstat(path, &info)
        return info
    }

    /// A lab directory named after `name` holding a `daemon.json` of `contents` (with `mode`,
    /// when given); the caller removes the directory.
    static func daemonJSON(_ contents: String, in name: String, mode: mode_t? = nil) throws -> (dir: String, path: String) {
        let dir = try Lab.makeDirectory(name)
        let path = dir + "/daemon.json"
        try contents.write(toFile: path, atomically: false, encoding: .utf8)
        if let mode { chmod(path, mode) }
        return (dir, path)
    }

    @Test func aWriteIsAtomicKeepsModeOwnerAndTheOriginalOnce() throws {
        let (dir, path) = try Self.daemonJSON("{\"a\": 1}\n", in: "manage-writer", mode: 0o640)
        defer { Lab.removeDirectory(dir) }
        let isRoot = geteuid() == 0
        if isRoot { chown(path, 1234, 5678) }
        let before = Self.stat(path)

        let first = try ManagedFileWriter.read(path).get()
        try ManagedFileWriter.write(Self.bytes("{\"a\": 2}\n"), over: first).get()
        let after = Self.stat(path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"a\": 2}\n")
        #expect(after.st_ino != before.st_ino, "replaced by rename, not rewritten in place")
        #expect(after.st_mode & 0o7777 == 0o640)
        if isRoot { #expect(after.st_uid == 1234 && after.st_gid == 5678) }
        #expect(try String(contentsOfFile: path + ".egress-monitor.orig", encoding: .utf8) == "{\"a\": 1}\n")
        #expect(Self.stat(path + ".egress-monitor.orig").st_mode & 0o7777 == 0o640)

        // The original is written once: a second write keeps the first original.
        let second = try ManagedFileWriter.read(path).get()
        try ManagedFileWriter.write(Self.bytes("{\"a\": 3}\n"), over: second).get()
        #expect(try String(contentsOfFile: path + ".egress-monitor.orig", encoding: .utf8) == "{\"a\": 1}\n")
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["daemon.json", "daemon.json.egress-monitor.orig"])
    }

    @Test func aSymbolicLinkIsFollowedNotReplaced() throws {
        let dir = try Lab.makeDirectory("manage-link")
        defer { Lab.removeDirectory(dir) }
        try "x\n".write(toFile: dir + "/real.json", atomically: false, encoding: .utf8)
        symlink(dir + "/real.json", dir + "/daemon.json")
        let snap = try ManagedFileWriter.read(dir + "/daemon.json").get()
        try ManagedFileWriter.write(Self.bytes("y\n"), over: snap).get()
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir + "/daemon.json") == dir + "/real.json")
        #expect(try String(contentsOfFile: dir + "/real.json", encoding: .utf8) == "y\n")
    }

    @Test func aFileChangedSinceItWasReadIsNotOverwritten() throws {
        let (dir, path) = try Self.daemonJSON("{\"a\": 1}\n", in: "manage-race")
        defer { Lab.removeDirectory(dir) }
        let snap = try ManagedFileWriter.read(path).get()
        // Someone edits it in place, same size.
        try "{\"a\": 9}\n".write(toFile: path, atomically: false, encoding: .utf8)
        let result = ManagedFileWriter.write(Self.bytes("{\"a\": 2}\n"), over: snap)
        guard case .failure(.changedSinceRead) = result else {
            Issue.record("expected changedSinceRead, got \(result)")
            return
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"a\": 9}\n")
        // Replaced by another program's atomic write with the very same bytes: the inode tells.
        let snap2 = try ManagedFileWriter.read(path).get()
        try "{\"a\": 9}\n".write(toFile: path, atomically: true, encoding: .utf8)
        guard case .failure(.changedSinceRead) = ManagedFileWriter.write(Self.bytes("{\"a\": 2}\n"), over: snap2) else {
            Issue.record("a replaced file was overwritten")
            return
        }
    }

    @Test func aReadOnlyFileIsAFailureValue() throws {
        let (dir, path) = try Self.daemonJSON("{}\n", in: "manage-ro", mode: 0o444)
        defer { Lab.removeDirectory(dir) }
        let snap = try ManagedFileWriter.read(path).get()
        guard case .failure(.io(let message)) = ManagedFileWriter.write(Self.bytes("{\"a\": 1}\n"), over: snap) else {
            Issue.record("a read-only file was written")
            return
        }
        #expect(message.contains("read-only"))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{}\n")
        #expect(!FileManager.default.fileExists(atPath: path + ".egress-monitor.orig"))
    }

    static let canMount = geteuid() == 0 && Lab.has("mount") && Lab.has("umount")

    /// As root a mode-0555 directory is still writable; a read-only bind mount is not.
    @Test(.enabled(if: canMount, "needs root and mount: the read-only directory test is SKIPPED, not passed"))
    func aReadOnlyDirectoryIsAFailureValue() throws {
        let dir = try Lab.makeDirectory("manage-rodir")
        defer { Lab.removeDirectory(dir) }
        let sub = dir + "/docker"
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: false)
        try "{}\n".write(toFile: sub + "/daemon.json", atomically: false, encoding: .utf8)
        try Lab.run("mount", ["--bind", sub, sub])
        defer { _ = try? Lab.run("umount", [sub]) }
        try Lab.run("mount", ["-o", "remount,bind,ro", sub])
        let snap = try ManagedFileWriter.read(sub + "/daemon.json").get()
        guard case .failure(.io(let message)) = ManagedFileWriter.write(Self.bytes("{\"a\": 1}\n"), over: snap) else {
            Issue.record("wrote into a read-only directory?")
            return
        }
        #expect(message.contains("Read-only file system"), "\(message)")
        #expect(try String(contentsOfFile: sub + "/daemon.json", encoding: .utf8) == "{}\n")
    }

    // MARK: dockerd's reload

    /// A copy of `sleep` named `name`, so /proc/PID/comm says `name`.
    static func sleeper(named name: String, in dir: String) throws -> LabProcess {
        let copy = dir + "/" + name
        try FileManager.default.copyItem(atPath: Lab.path(of: "sleep")!, toPath: copy)
        return try LabProcess(copy, arguments: ["300"], directory: dir, name: name)
    }

    @Test func aStalePidFileNeverSignalsAnotherProcess() async throws {
        let dir = try Lab.makeDirectory("manage-stale")
        defer { Lab.removeDirectory(dir) }
        let other = try Self.sleeper(named: "not-dockerd", in: dir)
        defer { other.stop(grace: 1) }
        try "\(other.pid)\n".write(toFile: dir + "/docker.pid", atomically: false, encoding: .utf8)
        try await Task.sleep(nanoseconds: 100_000_000)  // exec'd, comm set
        guard case .failure(let e) = DockerReload.reload(pidFile: dir + "/docker.pid") else {
            Issue.record("signalled a process that is not dockerd")
            return
        }
        #expect(e.description.contains("not dockerd"))
        try await Task.sleep(nanoseconds: 200_000_000)
        #expect(other.isRunning, "SIGHUP would have killed sleep")
        // A pid file naming no process, or no number.
        try "999999999\n".write(toFile: dir + "/gone.pid", atomically: false, encoding: .utf8)
        #expect((try? DockerReload.reload(pidFile: dir + "/gone.pid").get()) == nil)
        try "abc\n".write(toFile: dir + "/junk.pid", atomically: false, encoding: .utf8)
        #expect((try? DockerReload.reload(pidFile: dir + "/junk.pid").get()) == nil)
        #expect((try? DockerReload.reload(pidFile: dir + "/missing.pid").get()) == nil)
    }

    @Test func aDockerdGetsSIGHUP() async throws {
        let dir = try Lab.makeDirectory("manage-hup")
        defer { Lab.removeDirectory(dir) }
        let dockerd = try Self.sleeper(named: "dockerd", in: dir)
        defer { dockerd.stop(grace: 1) }
        try "\(dockerd.pid)".write(toFile: dir + "/docker.pid", atomically: false, encoding: .utf8)
        try await Task.sleep(nanoseconds: 100_000_000)
        #expect(try DockerReload.reload(pidFile: dir + "/docker.pid").get() == dockerd.pid)
        // sleep dies of SIGHUP: that is the proof it was sent.
        #expect(await dockerd.waitForExit(timeout: 5) == "signal \(SIGHUP)")
    }

    // MARK: the unified diff, judged by GNU diff and patch

    static func gnuDiff(_ old: String, _ new: String, dir: String) throws -> String {
        try old.write(toFile: dir + "/old", atomically: false, encoding: .utf8)
        try new.write(toFile: dir + "/new", atomically: false, encoding: .utf8)
        return try Lab.run("sh", ["-c", "diff -u --label daemon.json --label daemon.json.new old new; true"], currentDirectory: dir)
    }

    @Test(.enabled(if: Lab.has("diff") && Lab.has("patch"), "needs diff and patch: SKIPPED, not passed"))
    func theDiffIsWhatGNUDiffPrints() throws {
        let dir = try Lab.makeDirectory("manage-diff")
        defer { Lab.removeDirectory(dir) }
        let long = (1...30).map { "line \($0)\n" }.joined()
        let cases: [(String, String)] = [
            ("{\n  \"registry-mirrors\": [\n    \"https://a\",\n    \"https://b\"\n  ]\n}\n",
             "{\n  \"registry-mirrors\": [\n    \"https://b\",\n    \"https://c\"\n  ]\n}\n"),
            (long, long.replacingOccurrences(of: "line 3\n", with: "line three\n").replacingOccurrences(of: "line 25\n", with: "")),
            (long, long.replacingOccurrences(of: "line 10\n", with: "x\n").replacingOccurrences(of: "line 15\n", with: "y\n")),
            ("a\nb", "a\nc"),
            ("a\nb\n", "a\nb"),
            ("", "new\n"),
            ("old\n", ""),
            (Self.hostsTOML, try HostsTOMLEdit.edit(Self.hostsTOML, order: ["https://c.example", "https://a.example"])),
        ]
        for (old, new) in cases {
            let mine = UnifiedDiff.render(old: old, new: new, oldLabel: "daemon.json", newLabel: "daemon.json.new")
            #expect(mine == (try Self.gnuDiff(old, new, dir: dir)))
        }
        // Random edits: where GNU diff picks another shortest script, the same number of lines
        // change and patch turns the old text into the new one with this diff.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let old = (0..<Int.random(in: 0...12, using: &rng)).map { _ in "l\(Int.random(in: 0...5, using: &rng))\n" }.joined()
            let new = (0..<Int.random(in: 0...12, using: &rng)).map { _ in "l\(Int.random(in: 0...5, using: &rng))\n" }.joined()
            let mine = UnifiedDiff.render(old: old, new: new, oldLabel: "daemon.json", newLabel: "daemon.json.new")
            let theirs = try Self.gnuDiff(old, new, dir: dir)
            if mine == theirs { continue }
            func changed(_ d: String) -> Int { d.split(separator: "\n").dropFirst(2).filter { $0.hasPrefix("+") || $0.hasPrefix("-") }.count }
            #expect(changed(mine) == changed(theirs), "\(mine)\nvs\n\(theirs)")
            try mine.write(toFile: dir + "/p.diff", atomically: false, encoding: .utf8)
            try Lab.run("patch", ["-s", "-o", "patched", "old", "p.diff"], currentDirectory: dir)
            #expect(try String(contentsOfFile: dir + "/patched", encoding: .utf8) == new, "\(mine)")
        }
        #expect(UnifiedDiff.render(old: "a\n", new: "a\n", oldLabel: "x", newLabel: "y") == "")
    }
}
