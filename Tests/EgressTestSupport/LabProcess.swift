#if canImport(Glibc)
import Glibc
#endif
import Foundation
import EgressSync
import EgressNet

/// A server program run for a test: nginx, dnsmasq, docker-registry, `openssl s_server`...
///
/// Its stdout and stderr go to `logFile` in its lab directory; a start that fails, or a server
/// that never becomes ready, throws a `LabError` carrying the last lines of that log. `stop()`
/// sends SIGTERM, then SIGKILL to its process group after a grace period, and waits for the
/// exit; it also runs on deinit, so a test that throws early does not leave a server behind.
///
/// Started with `posix_spawn`, not Foundation's `Process`; `ChildProcess` says why.
public final class LabProcess: Sendable {
    /// A short name for messages ("nginx").
    public let name: String
    /// The lab directory the program runs in (its working directory).
    public let directory: String
    /// Where its stdout and stderr go.
    public let logFile: String
    /// Other logs the program writes (nginx's error.log), shown with `logFile` in failures.
    public let otherLogFiles: [String]
    private let child: ChildProcess
    private let stopped = Mutex(false)

    /// The process id (also its process group id).
    public var pid: Int32 { child.pid }

    /// Whether the program is still running.
    public var isRunning: Bool { child.isRunning }

    /// "status N" or "signal N" once it has exited; nil while it runs.
    public var exitDescription: String? { child.exitStatus.map(\.description) }

    /// Sends `signal` to the program (not its group).
    public func send(_ signal: Int32) { child.send(signal) }

    /// Waits without blocking the cooperative pool until the program exits, up to `timeout`
    /// seconds; its exit then, or nil.
    public func waitForExit(timeout: Double) async -> String? {
        let deadline = Deadline.after(seconds: timeout)
        while child.exitStatus == nil && !deadline.hasPassed {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return exitDescription
    }

    /// Starts `program` (a name looked up like `Lab.has`, or a path) with `arguments`, in
    /// `directory` (its working directory), with `environment` added to this process's own.
    ///
    /// - Throws: `LabError` when the program is missing or cannot be executed.
    public init(_ program: String, arguments: [String], environment: [String: String] = [:],
                directory: String, name: String? = nil, logName: String? = nil,
                otherLogFiles: [String] = []) throws {
        let name = name ?? (program as NSString).lastPathComponent
        guard let executable = Lab.path(of: program) else {
            throw LabError("\(name): \(program) is not installed")
        }
        self.name = name
        self.directory = directory
        self.logFile = directory + "/" + (logName ?? "\(name).log")
        self.otherLogFiles = otherLogFiles
        let log = open(logFile, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        guard log >= 0 else {
            throw LabError("\(name): cannot create its log file \(logFile): \(String(cString: strerror(errno)))")
        }
        defer { Glibc.close(log) }
        do {
            child = try ChildProcess(executable: executable, arguments: arguments,
                                     environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
                                     directory: directory, outputFD: log)
        } catch {
            throw LabError("\(name): cannot start \(executable): \(error)")
        }
    }

    deinit { stop() }

    /// The last `lines` lines of the program's log (and of its other logs).
    public func logTail(lines: Int = 20) -> String {
        ([logFile] + otherLogFiles).map { file in
            guard let data = FileManager.default.contents(atPath: file) else { return "--- \(file): none ---" }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
            if text.isEmpty { return "--- \(file): empty ---" }
            let tail = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines)
            return "--- last lines of \(file) ---\n" + tail.joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// Waits until this program listens on TCP port `port` and a connection to 127.0.0.1:`port`
    /// succeeds.
    ///
    /// "This program" is checked: the listening socket must be one of its descriptors (from
    /// /proc/net/tcp{,6} and /proc/PID/fd), so a server that lost a port race to another
    /// process is never taken for ready. Where /proc cannot tell, a connection is enough.
    ///
    /// - Throws: `LabError` with the log's last lines if the program exits first or `timeout`
    ///   seconds pass.
    public func waitForTCPPort(_ port: UInt16, timeout: Double = 30) async throws {
        let deadline = Deadline.after(seconds: timeout)
        let address = SocketAddress(ip: IPAddress(Lab.loopback)!, port: port)
        var lastError = "not tried"
        while true {
            if let exit = child.exitStatus {
                throw LabError("\(name) exited (\(exit)) before listening on port \(port)\n\(logTail())")
            }
            switch ListeningSockets.owner(ofPort: port, candidate: child.pid) {
            case .candidate, .unknown:
                do {
                    let socket = try Socket.tcp(family: AF_INET)
                    defer { socket.close() }
                    try await socket.connect(to: address, deadline: deadline.capped(atSecondsFromNow: 1))
                    return
                } catch {
                    lastError = "\(error)"
                }
            case .otherProcess:
                lastError = "port \(port) is held by another process"
            case .nobody:
                lastError = "nothing listens on port \(port) yet"
            }
            if deadline.hasPassed {
                throw LabError("\(name) did not listen on 127.0.0.1:\(port) within \(timeout)s "
                    + "(last connect: \(lastError))\n\(logTail())")
            }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
    }

    /// Throws with the log's last lines unless the program is still running (for a check after
    /// readiness: a server that listens and then dies on a config error).
    public func checkRunning() throws {
        if let exit = child.exitStatus {
            throw LabError("\(name) exited (\(exit))\n\(logTail())")
        }
    }

    /// Stops the program without blocking the caller: SIGTERM now; a thread of its own then
    /// waits up to `grace` seconds, SIGKILLs the whole process group if needed, and reaps it.
    /// Tests call this from `defer` inside async code, where blocking would hold one of the
    /// cooperative pool's two threads and stall every other test's timers.
    public func stop(grace: Double = 5) {
        guard markStopped() else { return }
        child.send(SIGTERM)
        let child = self.child
        let reaper = Thread { Self.finish(child, grace: grace) }
        reaper.start()
    }

    /// Stops the program and returns once it has exited and been reaped (blocking the calling
    /// thread: not for async code on the cooperative pool). Later calls do nothing.
    public func stopAndWait(grace: Double = 5) {
        guard markStopped() else { return }
        child.send(SIGTERM)
        Self.finish(child, grace: grace)
    }

    private func markStopped() -> Bool {
        stopped.withLock { wasStopped -> Bool in
            defer { wasStopped = true }
            return !wasStopped
        }
    }

    private static func finish(_ child: ChildProcess, grace: Double) {
        if child.waitUntilExit(timeout: grace) == nil {
            child.send(SIGKILL, group: true)
            _ = child.waitUntilExit(timeout: 10)
        }
        // Whatever it left in its group (nginx workers after a SIGKILLed master) goes too.
        _ = kill(-child.pid, SIGKILL)
    }
}

/// Who listens on a TCP port, from /proc (Linux).
enum ListeningSockets {
    enum Owner: Equatable {
        /// The candidate process holds the listening socket.
        case candidate
        /// Some other process does.
        case otherProcess
        /// No socket listens on the port.
        case nobody
        /// /proc could not be read.
        case unknown
    }

    static func owner(ofPort port: UInt16, candidate pid: pid_t) -> Owner {
        var inodes: Set<String> = []
        var readAny = false
        let suffix = ":" + String(format: "%04X", port)
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = Lab.readProcFile(table) else { continue }
            readAny = true
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                guard fields.count > 9, fields[1].hasSuffix(suffix), fields[3] == "0A" else { continue }
                inodes.insert(String(fields[9]))
            }
        }
        if !readAny { return .unknown }
        if inodes.isEmpty { return .nobody }
        let fdDirectory = "/proc/\(pid)/fd"
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: fdDirectory) else { return .unknown }
        for fd in fds {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: fdDirectory + "/" + fd),
                  target.hasPrefix("socket:[") else { continue }
            if inodes.contains(String(target.dropFirst("socket:[".count).dropLast())) { return .candidate }
        }
        return .otherProcess
    }
}
