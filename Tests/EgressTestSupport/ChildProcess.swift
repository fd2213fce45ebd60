#if canImport(Glibc)
import Glibc
#endif
import Foundation
import EgressSync

/// A child process started with `posix_spawn`, which this type reaps itself.
///
/// Why not Foundation's `Process`: on Linux (swift-corelibs-foundation, Swift 6.3) it failed the
/// lab in two ways, both seen here with tests running in parallel:
/// - It learns of a child's exit from a socketpair created *without* CLOEXEC, and closes the
///   parent's other descriptors in the child by a list made before the spawn. A second launch
///   from another thread in that window inherits the first child's socketpair end; the first
///   child's exit is then never noticed (it stays a zombie, `isRunning` stays true, and
///   `waitUntilExit()` hangs until the *other* child exits — an nginx that lives for the whole
///   test).
/// - The child inherits the signal mask of the spawning thread. Swift's cooperative-pool
///   threads block almost every signal, so dnsmasq and `sleep` started from a test ignored
///   SIGTERM (nginx happens to reset its mask).
///
/// Here the child gets an empty signal mask and default dispositions, its own process group,
/// stdin from /dev/null, stdout and stderr on the given descriptor, and every other descriptor
/// closed (`posix_spawn_file_actions_addclosefrom_np`, so nothing opened concurrently by another
/// thread can leak in). The parent's own descriptors here are all CLOEXEC.
final class ChildProcess: Sendable {
    /// How a child ended.
    enum Exit: Sendable, Equatable, CustomStringConvertible {
        case status(Int32)
        case signal(Int32)

        var description: String {
            switch self {
            case .status(let code): return "status \(code)"
            case .signal(let signal): return "signal \(signal)"
            }
        }
    }

    let pid: pid_t
    private let exit = Mutex<Exit?>(nil)

    /// Spawns `executable` (an absolute path) with `arguments` (argv[1...]) and `environment`
    /// (the whole environment), in `directory`, its stdout and stderr going to `outputFD`.
    init(executable: String, arguments: [String], environment: [String: String],
         directory: String?, outputFD: Int32) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard devNull >= 0 else { throw LabError("open /dev/null: \(String(cString: strerror(errno)))") }
        defer { Glibc.close(devNull) }
        posix_spawn_file_actions_adddup2(&actions, devNull, STDIN_FILENO)
        posix_spawn_file_actions_adddup2(&actions, outputFD, STDOUT_FILENO)
        posix_spawn_file_actions_adddup2(&actions, outputFD, STDERR_FILENO)
        if let closeFrom = Self.addCloseFrom {
            _ = closeFrom(&actions, 3)
        }
        if let directory, let addChdir = Self.addChdir {
            _ = directory.withCString { addChdir(&actions, $0) }
        }

        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD, SIGALRM] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        if rc != 0 {
            throw LabError("posix_spawn \(executable): \(String(cString: strerror(rc)))")
        }
        self.pid = pid
    }

    deinit {
        // Owners stop children explicitly; never leave one behind.
        if exit.withLock({ $0 }) == nil {
            _ = kill(-pid, SIGKILL)
            _ = kill(pid, SIGKILL)
            _ = waitUntilExit(timeout: 5)
        }
    }

    /// How it ended, or nil while it runs. Reaps it when it has ended.
    var exitStatus: Exit? {
        exit.withLock { exit in
            if let exit { return exit }
            var status: Int32 = 0
            let rc = waitpid(pid, &status, WNOHANG)
            if rc == pid {
                let low = status & 0x7f
                exit = low == 0 ? .status((status >> 8) & 0xff) : .signal(low)
            } else if rc < 0 && errno == ECHILD {
                exit = .status(-1)  // reaped by someone else: gone all the same
            }
            return exit
        }
    }

    var isRunning: Bool { exitStatus == nil }

    /// Sends `signal` to the child (and, with `group`, to its whole process group).
    func send(_ signal: Int32, group: Bool = false) {
        if exitStatus != nil { return }
        _ = kill(group ? -pid : pid, signal)
    }

    /// Polls until the child has exited or `timeout` seconds pass; its exit, or nil.
    func waitUntilExit(timeout: Double) -> Exit? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let exit = exitStatus { return exit }
            if Date() >= deadline { return nil }
            usleep(2_000)
        }
    }

    /// Blocks until the child exits (for short tools); its exit.
    func waitUntilExit() -> Exit {
        while true {
            if let exit = exitStatus { return exit }
            var status: Int32 = 0
            let rc = exit.withLock { exit -> Int32 in
                if exit != nil { return 0 }
                let rc = waitpid(pid, &status, 0)
                if rc == pid {
                    let low = status & 0x7f
                    exit = low == 0 ? .status((status >> 8) & 0xff) : .signal(low)
                }
                return rc
            }
            if rc < 0 && errno != EINTR { return exitStatus ?? .status(-1) }
        }
    }

    // glibc ≥ 2.34 has both, declared only under _GNU_SOURCE, which Swift's Glibc module does
    // not define: looked up at run time instead.
    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private static let addCloseFrom: AddCloseFrom? = lookup("posix_spawn_file_actions_addclosefrom_np")
    private static let addChdir: AddChdir? = lookup("posix_spawn_file_actions_addchdir_np")

    private static func lookup<F>(_ name: String) -> F? {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, name) else { return nil }
        return unsafeBitCast(symbol, to: F.self)
    }
}
