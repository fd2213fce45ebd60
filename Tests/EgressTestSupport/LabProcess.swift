#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import EgressNet

/// A server program run for a test: nginx, dnsmasq, docker-registry, `openssl s_server`...
///
/// Its stdout and stderr go to `logFile` in its lab directory; a start that fails, or a server
/// that never becomes ready, throws a `LabError` carrying the last lines of that log. `stop()`
/// sends SIGTERM, then SIGKILL after a grace period, and waits for the exit; it also runs on
/// deinit, so a test that throws early does not leave a server behind.
public final class LabProcess: @unchecked Sendable {
    // @unchecked Sendable: `process` is only started in init and afterwards only signalled and
    // queried (isRunning, terminationStatus), which Foundation's Process allows from any
    // thread; the one mutable flag is behind a Mutex.
    /// A short name for messages ("nginx").
    public let name: String
    /// The lab directory the program runs in.
    public let directory: String
    /// Where its stdout and stderr go.
    public let logFile: String
    private let process: Process
    private let stopped = Mutex(false)

    /// The process id.
    public var pid: Int32 { process.processIdentifier }

    /// Whether the program is still running.
    public var isRunning: Bool { process.isRunning }

    /// Starts `program` (a name looked up like `Lab.has`, or a path) with `arguments`, in
    /// `directory` (its working directory), with `environment` added to this process's own.
    ///
    /// - Throws: `LabError` when the program is missing or cannot be executed.
    public init(_ program: String, arguments: [String], environment: [String: String] = [:],
                directory: String, name: String? = nil, logName: String? = nil) throws {
        let name = name ?? (program as NSString).lastPathComponent
        guard let executable = Lab.path(of: program) else {
            throw LabError("\(name): \(program) is not installed")
        }
        self.name = name
        self.directory = directory
        self.logFile = directory + "/" + (logName ?? "\(name).log")
        guard FileManager.default.createFile(atPath: logFile, contents: nil),
              let log = FileHandle(forWritingAtPath: logFile) else {
            throw LabError("\(name): cannot create its log file \(logFile)")
        }
        defer { try? log.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        self.process = process
        do {
            try process.run()
        } catch {
            stopped.withLock { $0 = true }
            throw LabError("\(name): cannot start \(executable): \(error)\n\(logTail())")
        }
    }

    deinit { stop() }

    /// The last `lines` lines of the program's log.
    public func logTail(lines: Int = 20) -> String {
        guard let data = FileManager.default.contents(atPath: logFile) else { return "(no log)" }
        let text = String(decoding: data, as: UTF8.self)
        let all = text.split(separator: "\n", omittingEmptySubsequences: false)
        let tail = all.suffix(lines + 1).joined(separator: "\n")
        return tail.isEmpty ? "(empty log)" : "--- last lines of \(logFile) ---\n" + tail
    }

    /// Waits until something accepts TCP connections on 127.0.0.1:`port`.
    ///
    /// - Throws: `LabError` with the log's last lines if the program exits first or `timeout`
    ///   seconds pass.
    public func waitForTCPPort(_ port: UInt16, timeout: Double = 10) async throws {
        let deadline = Deadline.after(seconds: timeout)
        let address = SocketAddress(ip: IPAddress(Lab.loopback)!, port: port)
        var lastError = "not tried"
        while true {
            if !process.isRunning {
                throw LabError("\(name) exited (\(exitDescription)) before listening on port \(port)\n\(logTail())")
            }
            do {
                let socket = try Socket.tcp(family: AF_INET)
                defer { socket.close() }
                try await socket.connect(to: address, deadline: deadline.capped(atSecondsFromNow: 1))
                return
            } catch {
                lastError = "\(error)"
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
        if !process.isRunning {
            throw LabError("\(name) exited (\(exitDescription))\n\(logTail())")
        }
    }

    private var exitDescription: String {
        if process.isRunning { return "running" }
        switch process.terminationReason {
        case .exit: return "status \(process.terminationStatus)"
        case .uncaughtSignal: return "signal \(process.terminationStatus)"
        @unknown default: return "status \(process.terminationStatus)"
        }
    }

    /// Stops the program: SIGTERM, up to `grace` seconds for it to exit, then SIGKILL; returns
    /// once it has exited. Later calls do nothing.
    ///
    /// Blocks the calling thread for as long as the program takes to exit (milliseconds for
    /// the lab's servers).
    public func stop(grace: Double = 5) {
        let first = stopped.withLock { wasStopped -> Bool in
            defer { wasStopped = true }
            return !wasStopped
        }
        guard first else { return }
        let pid = process.processIdentifier
        guard pid > 0 else { return }
        if process.isRunning {
            _ = kill(pid, SIGTERM)
            let deadline = Deadline.after(seconds: grace)
            while process.isRunning && !deadline.hasPassed { usleep(5_000) }
            if process.isRunning { _ = kill(pid, SIGKILL) }
        }
        process.waitUntilExit()
    }
}
