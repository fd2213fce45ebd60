import CLinux
import EgressSync
#if canImport(Glibc)
import Glibc
#endif

/// Why a program could not be started.
public struct SpawnError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The failing call (`posix_spawn`, `pipe2`, `pidfd_open`).
    public let call: String
    public let errno: Int32

    public var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// How a child process ended.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    public var description: String {
        switch self {
        case .exited(let code): return "exit \(code)"
        case .signalled(let signo): return "signal \(signo)"
        }
    }
}

/// A program started with `posix_spawn`, without a shell, in a process group of its own, with
/// stdin from /dev/null and stdout and stderr together on one non-blocking pipe; every other
/// descriptor of this process is closed in the child.
///
/// Nothing here blocks a thread: the output is read when the reactor says the pipe is readable,
/// and the child's exit is awaited on a pidfd (Linux 5.3), which becomes readable when the child
/// exits. The child is reaped by ``reap()`` (a `waitpid` that cannot block then).
public final class SpawnedProcess: Sendable {
    public let pid: pid_t
    /// The read end of the output pipe (non-blocking), or -1 once closed.
    private let output: Mutex<Int32>
    private let pidfd: Int32
    private let reaped = Mutex<ExitStatus?>(nil)

    private init(pid: pid_t, output: Int32, pidfd: Int32) {
        self.pid = pid
        self.output = Mutex(output)
        self.pidfd = pidfd
    }

    deinit {
        let fd = output.withLock { $0 }
        if fd >= 0 {
            Reactor.shared.deregister(fd: fd)
            close(fd)
        }
        Reactor.shared.deregister(fd: pidfd)
        close(pidfd)
    }

    /// Starts `executable` (an absolute path, not searched in PATH) with `arguments` (argv[1...];
    /// argv[0] is `executable`) and exactly `environment` (`NAME=value` strings). The child
    /// gets default signal dispositions and an empty signal mask, whatever the agent set.
    public static func spawn(executable: String, arguments: [String], environment: [String]) -> Result<SpawnedProcess, SpawnError> {
        var fds: [Int32] = [-1, -1]
        guard pipe2(&fds, O_CLOEXEC) == 0 else { return .failure(SpawnError(call: "pipe2", errno: errno)) }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        // Sockets and files of the agent are opened close-on-exec; this closes any that are not.
        posix_spawn_file_actions_addclosefrom_np(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group (pgid = its pid), so a timeout can signal everything it started.
        posix_spawnattr_setpgroup(&attributes, 0)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        // SIGPIPE is ignored by the agent; an ignored signal stays ignored across exec.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGPIPE, SIGHUP, SIGTERM, SIGINT, SIGCHLD] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        let flags = Int32(POSIX_SPAWN_SETPGROUP) | Int32(POSIX_SPAWN_SETSIGMASK) | Int32(POSIX_SPAWN_SETSIGDEF)
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        // glibc's posix_spawn reports a failed exec (ENOENT, EACCES, ENOEXEC) as its result.
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        close(writeEnd)
        guard rc == 0 else {
            close(readEnd)
            return .failure(SpawnError(call: "posix_spawn", errno: rc))
        }
        let pidfd = egress_pidfd_open(pid)
        guard pidfd >= 0 else {
            let e = errno
            // Without a pidfd the exit cannot be awaited without blocking: end it now.
            kill(-pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            close(readEnd)
            return .failure(SpawnError(call: "pidfd_open", errno: e))
        }
        return .success(SpawnedProcess(pid: pid, output: readEnd, pidfd: pidfd))
    }

    /// Reads what the child wrote, up to `limit` bytes: bytes, `[]` at end of file (every writer
    /// closed it), or nil when `deadline` passed or the task was cancelled first.
    public func read(limit: Int = 4096, deadline: Deadline) async -> [UInt8]? {
        while true {
            let fd = output.withLock { $0 }
            guard fd >= 0 else { return [] }
            var buffer = [UInt8](repeating: 0, count: limit)
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, limit) }
            if n > 0 { return Array(buffer[..<n]) }
            if n == 0 { return [] }
            if errno == EINTR { continue }
            guard errno == EAGAIN || errno == EWOULDBLOCK else { return [] }
            if await Reactor.shared.wait(fd: fd, for: .readable, deadline: deadline) != .ready { return nil }
        }
    }

    /// Suspends until the child exits (true), or `deadline` passes or the task is cancelled
    /// (false). The child is not reaped: its pid, and its process group, stay reserved.
    public func waitForExit(deadline: Deadline) async -> Bool {
        while true {
            if hasExited { return true }
            if await Reactor.shared.wait(fd: pidfd, for: .readable, deadline: deadline) != .ready { return hasExited }
        }
    }

    /// Whether the child has exited (it may still be unreaped), without blocking.
    public var hasExited: Bool {
        if reaped.withLock({ $0 }) != nil { return true }
        var info = siginfo_t()
        // WNOWAIT: look without reaping, so the pid cannot be reused while the group is signalled.
        return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && egress_siginfo_pid(&info) == pid
    }

    /// Sends `signal` to every process of the child's group. False when none is left.
    @discardableResult
    public func signalGroup(_ signal: Int32) -> Bool {
        kill(-pid, signal) == 0
    }

    /// Whether some process of the child's group is still alive (a zombie leader counts, until
    /// it is reaped).
    public var groupIsAlive: Bool { kill(-pid, 0) == 0 }

    /// Reaps the exited child and returns how it ended; nil while it has not exited.
    public func reap() -> ExitStatus? {
        if let done = reaped.withLock({ $0 }) { return done }
        var status: Int32 = 0
        var rc: pid_t
        repeat { rc = waitpid(pid, &status, WNOHANG) } while rc < 0 && errno == EINTR
        guard rc == pid else { return nil }
        // WIFEXITED/WEXITSTATUS are macros: decoded by hand (wait(2)).
        let result: ExitStatus = status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
        reaped.withLock { $0 = result }
        return result
    }

    /// Closes the output pipe (a reader blocked on it sees the end).
    public func closeOutput() {
        let fd = output.withLock { fd -> Int32 in
            let old = fd
            fd = -1
            return old
        }
        guard fd >= 0 else { return }
        Reactor.shared.deregister(fd: fd)
        close(fd)
    }
}

extension SpawnedProcess {
    /// The pids of the processes of the child's group that still run (zombies, which only wait
    /// for their parent to reap them, left out), read from /proc. Only called when `kill` says
    /// the group exists, at the end of a run.
    public func liveGroupMembers() -> [pid_t] {
        guard kill(-pid, 0) == 0, let entries = SystemFile.directoryEntries("/proc") else { return [] }
        var members: [pid_t] = []
        for entry in entries {
            guard let candidate = pid_t(entry), let stat = SystemFile.readText("/proc/\(entry)/stat"),
                  let close = stat.lastIndex(of: ")") else { continue }
            // After "pid (comm)": state, ppid, pgrp. comm may hold spaces and parentheses.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, fields[0] != "Z", fields[0] != "X", pid_t(fields[2]) == pid else { continue }
            members.append(candidate)
        }
        return members
    }
}
