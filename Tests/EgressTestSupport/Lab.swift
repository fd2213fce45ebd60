#if canImport(Glibc)
import Glibc
#endif
import Foundation
import EgressSync
import EgressNet

/// The interop lab: real peers from Debian packages (nginx, dnsmasq, docker-registry, openssl,
/// ...) and small Swift servers, all on loopback. Nothing here ever sends a packet to any address
/// other than 127.0.0.1 (or ::1).
///
/// Every server gets its own directory under one per-process root in the temp directory
/// (`/tmp/egress-lab-<pid>/`), holding its config, its log and its pid file. Set
/// `EGRESS_LAB_KEEP=1` to keep those directories after the servers stop (to read the logs).
public enum Lab {
    /// The loopback address every lab server listens on.
    public static let loopback = "127.0.0.1"

    /// Whether `program` can be run: found on `PATH`, or in `/usr/sbin` or `/sbin` (where
    /// Debian puts nginx and dnsmasq, which a non-root `PATH` often leaves out).
    public static func has(_ program: String) -> Bool { path(of: program) != nil }

    /// The absolute path of `program` (searched like `has`), or nil.
    public static func path(of program: String) -> String? {
        if program.contains("/") {
            return access(program, X_OK) == 0 ? program : nil
        }
        let pathVariable = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        var directories = pathVariable.split(separator: ":").map(String.init)
        for extra in ["/usr/local/sbin", "/usr/sbin", "/sbin"] where !directories.contains(extra) {
            directories.append(extra)
        }
        for directory in directories where !directory.isEmpty {
            let candidate = directory + "/" + program
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory),
               !isDirectory.boolValue, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }

    /// Whether the tests run as root (network namespaces, binding low ports, nginx's `user`).
    public static var isRoot: Bool { geteuid() == 0 }

    /// Whether lab directories are kept after their servers stop (`EGRESS_LAB_KEEP=1`).
    public static var keepsDirectories: Bool {
        ProcessInfo.processInfo.environment["EGRESS_LAB_KEEP"] == "1"
    }

    /// The per-process root of all lab directories, created on first use.
    public static func rootDirectory() throws -> String {
        try root.get()
    }

    private static let root: Result<String, LabError> = {
        let path = NSTemporaryDirectory() + "egress-lab-\(getpid())"
        removeStaleRoots(in: NSTemporaryDirectory())
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            // Certificates and any directory a server left behind go when the test process exits.
            atexit { Lab.removeRootDirectory() }
            return .success(path)
        } catch {
            return .failure(LabError("cannot create the lab root \(path): \(error)"))
        }
    }()

    /// Removes the roots of test processes that are gone without their atexit (killed by a
    /// timeout or a signal): `egress-lab-PID` whose PID no longer exists and that nothing
    /// touched for `minimumAge` seconds. The age spares a live process of another PID namespace
    /// (no suite runs an hour); a PID reused since only keeps its directory a while longer.
    public static func removeStaleRoots(in parent: String, minimumAge: Double = 3600) {
        guard !keepsDirectories, let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return }
        let now = Date()
        for name in names where name.hasPrefix("egress-lab-") {
            guard let pid = pid_t(name.dropFirst("egress-lab-".count)), pid > 0, pid != getpid(),
                  kill(pid, 0) != 0, errno == ESRCH else { continue }
            let path = (parent.hasSuffix("/") ? parent : parent + "/") + name
            guard let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                  now.timeIntervalSince(modified) >= minimumAge else { continue }
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    private static func removeRootDirectory() {
        if case .success(let path) = root { removeDirectory(path) }
    }

    /// Creates a fresh, empty directory for one server (`<root>/<name>-XXXXXX`).
    public static func makeDirectory(_ name: String) throws -> String {
        let template = try rootDirectory() + "/\(name)-XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else {
            throw LabError("mkdtemp \(template): \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }

    /// Removes a lab directory, unless `EGRESS_LAB_KEEP=1`.
    public static func removeDirectory(_ path: String) {
        if keepsDirectories { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Runs `program` to completion (a short tool such as `openssl` or `dig`) and returns its
    /// combined stdout and stderr. Throws with that output when it exits non-zero.
    ///
    /// This blocks the calling thread while the tool runs: use it for tools that finish in
    /// milliseconds, never for servers (use `LabProcess`).
    @discardableResult
    public static func run(_ program: String, _ arguments: [String],
                           environment: [String: String] = [:],
                           currentDirectory: String? = nil) throws -> String {
        let (exit, text) = try runToExit(program, arguments, environment: environment, currentDirectory: currentDirectory)
        guard exit == .status(0) else {
            throw LabError("\(program) \(arguments.joined(separator: " ")) failed (\(exit)):\n\(text)")
        }
        return text
    }

    /// Like `run`, but returns the output whatever the exit status, with that status
    /// (`"status 1"`, `"signal 9"`): for a command whose failure is the case under test.
    public static func runAnyStatus(_ program: String, _ arguments: [String],
                                    environment: [String: String] = [:]) throws -> (exit: String, output: String) {
        let (exit, text) = try runToExit(program, arguments, environment: environment, currentDirectory: nil)
        return (exit.description, text)
    }

    private static func runToExit(_ program: String, _ arguments: [String], environment: [String: String],
                                  currentDirectory: String?) throws -> (ChildProcess.Exit, String) {
        guard let executable = path(of: program) else { throw LabError("\(program) is not installed") }
        var fds: [Int32] = [-1, -1]
        // A socketpair rather than a pipe: it can be made CLOEXEC atomically (pipe2 is hidden
        // from Swift's Glibc module).
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw LabError("socketpair: \(String(cString: strerror(errno)))")
        }
        let child: ChildProcess
        do {
            defer { Glibc.close(fds[1]) }
            child = try ChildProcess(executable: executable, arguments: arguments,
                                     environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
                                     directory: currentDirectory, outputFD: fds[1])
        } catch {
            Glibc.close(fds[0])
            throw error
        }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fds[0], $0.baseAddress, $0.count) }
            if n > 0 { output += buffer[..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        Glibc.close(fds[0])
        let exit = child.waitUntilExit()
        return (exit, String(decoding: output, as: UTF8.self))
    }
}

/// A lab set-up failure: a program missing, a server that did not start (with the last lines
/// of its log), a tool that failed.
public struct LabError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Free TCP ports on loopback, for servers that take a port number in their config.
public enum FreePort {
    /// A port that was free a moment ago: binds 127.0.0.1:0, reads the port the kernel chose,
    /// closes. (Another process could take it before the server binds it; the kernel picks
    /// ephemeral ports spread over a wide range, so in practice this does not collide.)
    public static func next() -> UInt16 {
        do {
            let socket = try Socket.listen(on: SocketAddress(ip: IPAddress(Lab.loopback)!, port: 0), backlog: 1)
            defer { socket.close() }
            guard let port = socket.localAddress?.port, port != 0 else {
                fatalError("getsockname on a bound loopback socket returned no port")
            }
            return port
        } catch {
            // Binding 127.0.0.1:0 cannot fail on a working host; a test cannot go on without it.
            fatalError("cannot bind 127.0.0.1:0: \(error)")
        }
    }
}

extension Lab {
    /// `run`, on a thread of its own: the caller's task waits without holding one of the few
    /// threads of Swift's cooperative pool (two on these machines). A test that blocks the pool
    /// delays every other test's timers and socket wake-ups, and turns timing checks into noise.
    @discardableResult
    public static func runAsync(_ program: String, _ arguments: [String],
                                environment: [String: String] = [:]) async throws -> String {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<String, any Error>) in
            let thread = Thread {
                do { c.resume(returning: try run(program, arguments, environment: environment)) } catch { c.resume(throwing: error) }
            }
            thread.start()
        }
    }

    /// `runAnyStatus`, on a thread of its own (see `runAsync`).
    public static func runAsyncAnyStatus(_ program: String, _ arguments: [String],
                                         environment: [String: String] = [:]) async throws -> (exit: String, output: String) {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<(exit: String, output: String), any Error>) in
            let thread = Thread {
                do { c.resume(returning: try runAnyStatus(program, arguments, environment: environment)) } catch { c.resume(throwing: error) }
            }
            thread.start()
        }
    }

    /// The whole of a /proc file, read to its end. Foundation's `String(contentsOfFile:)`,
    /// `Data(contentsOf:)` and `FileManager.contents(atPath:)` stop after the first read of a
    /// file whose size reads as 0, which for /proc/net/tcp is about 4 KB: some 27 sockets. Past
    /// that, a listener or a leaked socket is simply not seen.
    public static func readProcFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// TCP sockets of this process connected to 127.0.0.1:`port` (read from /proc): what a
    /// leak check counts, unaffected by other tests' descriptors.
    public static func openConnections(toPort port: UInt16) -> Int {
        var inodes: Set<String> = []
        let fdDir = "/proc/self/fd"
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: fdDir)) ?? [] {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: fdDir + "/" + fd),
               target.hasPrefix("socket:["), target.hasSuffix("]") {
                inodes.insert(String(target.dropFirst(8).dropLast()))
            }
        }
        guard let table = readProcFile("/proc/net/tcp") else { return 0 }
        let wanted = String(format: "%04X", port)
        var count = 0
        for line in table.split(separator: "\n").dropFirst() {
            let cols = line.split(separator: " ", omittingEmptySubsequences: true)
            guard cols.count > 9 else { continue }
            let remote = cols[2].split(separator: ":")
            if remote.count == 2, remote[1] == wanted, inodes.contains(String(cols[9])) { count += 1 }
        }
        return count
    }
}
