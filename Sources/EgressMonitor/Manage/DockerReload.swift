import EgressNet
#if canImport(Glibc)
import Glibc
#endif

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
        guard let comm = SystemFile.readText("\(procRoot)/\(pid)/comm") else {
            return .failure(.io("no process \(pid) (from \(pidFile)): dockerd is not running; not signalled"))
        }
        let name = comm.hasSuffix("\n") ? String(comm.dropLast()) : comm
        guard name == "dockerd" else {
            return .failure(.io("process \(pid) (from \(pidFile)) is \"\(name)\", not dockerd: the pid file is stale; not signalled"))
        }
        guard kill(pid, SIGHUP) == 0 else {
            return .failure(.io("cannot signal dockerd (pid \(pid)): \(String(cString: strerror(errno)))"))
        }
        return .success(pid)
    }
}
