import EgressNet
#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Tells dockerd to read daemon.json again: SIGHUP, which reloads `registry-mirrors` live.
/// Docker is never restarted (that would stop every container without live-restore).
///
/// The pid comes from `docker_pid_file`, and is signalled only when `/proc/PID/comm` is
/// `dockerd`: a stale pid file whose number now belongs to another process must never send
/// that process a SIGHUP (most programs die of it).
public enum DockerReload {
    /// Sends SIGHUP to the dockerd of `pidFile`; the pid signalled, or why none was.
    public static func reload(pidFile: String, procRoot: String = "/proc") -> Result<Int32, ManageError> {
        guard let text = SystemFile.readText(pidFile) else {
            return .failure(.io("cannot read the pid file \(pidFile)"))
        }
        let trimmed = text.trimmingWhitespace.split(separator: "\n").first.map(String.init) ?? ""
        guard let pid = Int32(trimmed), pid > 1 else {
            return .failure(.io("\(pidFile) does not hold a process id (found \"\(trimmed.prefix(20))\")"))
        }
        // Pinned first: the comm read below is then the comm of the process signalled (a pid
        // reused in between makes the signal fail with ESRCH). Kernels before 5.3: kill(2).
        let pidfd = egress_pidfd_open(pid)
        if pidfd < 0 && errno != ENOSYS {
            return .failure(.io("no process \(pid) (from \(pidFile)): dockerd is not running; not signalled"))
        }
        defer { if pidfd >= 0 { _ = close(pidfd) } }
        guard let comm = SystemFile.readText("\(procRoot)/\(pid)/comm") else {
            return .failure(.io("no process \(pid) (from \(pidFile)): dockerd is not running; not signalled"))
        }
        let name = comm.hasSuffix("\n") ? String(comm.dropLast()) : comm
        guard name == "dockerd" else {
            return .failure(.io("process \(pid) (from \(pidFile)) is \"\(name)\", not dockerd: the pid file is stale; not signalled"))
        }
        let sent = pidfd >= 0 ? egress_pidfd_send_signal(pidfd, SIGHUP) : kill(pid, SIGHUP)
        guard sent == 0 else {
            return .failure(.io("cannot signal dockerd (pid \(pid)): \(String(cString: strerror(errno)))"))
        }
        return .success(pid)
    }
}
