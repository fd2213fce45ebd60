#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
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
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            return .success(path)
        } catch {
            return .failure(LabError("cannot create the lab root \(path): \(error)"))
        }
    }()

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

    /// Runs `program` to completion (a short tool such as `openssl`) and returns its combined
    /// output. Throws with that output when it exits non-zero.
    ///
    /// This blocks the calling thread while the tool runs: use it for tools that finish in
    /// milliseconds, never for servers (use `LabProcess`).
    @discardableResult
    public static func run(_ program: String, _ arguments: [String],
                           environment: [String: String] = [:],
                           currentDirectory: String? = nil) throws -> String {
        guard let executable = path(of: program) else { throw LabError("\(program) is not installed") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if let currentDirectory {
            process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory)
        }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw LabError("cannot run \(program): \(error)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw LabError("\(program) \(arguments.joined(separator: " ")) failed "
                + "(status \(process.terminationStatus)):\n\(output)")
        }
        return output
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
