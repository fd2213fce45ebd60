import EgressNet
#if canImport(Glibc)
import Glibc
#endif

/// Writes a file other programs own (Docker's daemon.json, containerd's hosts.toml) the way an
/// operator would demand: nothing lost, nothing half-written, nobody's change overwritten.
///
/// - Atomic: the new content goes to a temporary file in the same directory, is fsynced, renamed
///   over the file, and the directory is fsynced: a reader sees the old file or the new one.
/// - The file keeps its mode and owner; a symbolic link is followed, not replaced.
/// - `<file>.egress-monitor.orig` keeps the original: written once, before the first write,
///   never overwritten (it is linked into place, which fails when the name exists).
/// - A file changed since it was read (content, size, mtime or inode) is not written:
///   `.changedSinceRead`, and the caller reads it again.
/// - A read-only file (no write bit for anyone — root could write it, the operator said not to)
///   or a directory that refuses the temporary file is a failure value; nothing throws past it.
public enum ManagedFileWriter {
    /// The suffix of the kept original.
    public static let originalSuffix = ".egress-monitor.orig"

    /// A file as read: its bytes and what identifies that version of it.
    public struct Snapshot: Sendable, Equatable {
        /// The path written to (a symbolic link resolved).
        public let path: String
        public let bytes: [UInt8]
        let device: UInt64
        let inode: UInt64
        let size: Int64
        let mtimeSeconds: Int
        let mtimeNanoseconds: Int
        let mode: UInt32
        let owner: UInt32
        let group: UInt32
        /// false for a file that does not exist yet (`absent`): written only by creating it.
        public var exists = true

        /// A file not there yet, in an existing directory: created with mode 0644 and the agent's
        /// owner (root under the systemd drop-in), as dockerd's own config file is.
        public static func absent(_ path: String) -> Snapshot {
            var s = Snapshot(path: path, bytes: [], device: 0, inode: 0, size: 0, mtimeSeconds: 0, mtimeNanoseconds: 0,
                             mode: 0o644, owner: geteuid(), group: getegid())
            s.exists = false
            return s
        }
    }

    /// Reads the file at `path` (following a link) with its identity.
    public static func read(_ path: String) -> Result<Snapshot, ManageError> {
        let real = resolved(path)
        let fd = open(real, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(.io("cannot open \(path): \(errnoText())")) }
        defer { _ = close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(.io("cannot stat \(path): \(errnoText())")) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return .failure(.io("\(path) is not a regular file")) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(.io("cannot read \(path): \(errnoText())"))
            }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return .success(Snapshot(path: real, bytes: bytes, device: UInt64(info.st_dev), inode: UInt64(info.st_ino),
                                 size: Int64(info.st_size), mtimeSeconds: info.st_mtim.tv_sec, mtimeNanoseconds: info.st_mtim.tv_nsec,
                                 mode: info.st_mode & 0o7777, owner: info.st_uid, group: info.st_gid))
    }

    /// Replaces the file `snapshot` was read from with `bytes`, keeping the original once.
    public static func write(_ bytes: [UInt8], over snapshot: Snapshot) -> Result<Void, ManageError> {
        let path = snapshot.path
        if !snapshot.exists {
            // Created only where nothing is: linked into place, which fails if the name appeared.
            switch place(bytes, at: path, like: snapshot, replace: false, mustCreate: true) {
            case .failure(.changedSinceRead): return .failure(.changedSinceRead("\(path) appeared since it was found absent; read again, not overwritten"))
            case let other: return other
            }
        }
        // Someone else's edit since the read is never overwritten blindly.
        switch read(path) {
        case .failure(let e): return .failure(e)
        case .success(let now):
            if now.bytes != snapshot.bytes || now.inode != snapshot.inode || now.device != snapshot.device
                || now.size != snapshot.size || now.mtimeSeconds != snapshot.mtimeSeconds
                || now.mtimeNanoseconds != snapshot.mtimeNanoseconds {
                return .failure(.changedSinceRead("\(path) changed since it was read; read again, not overwritten"))
            }
        }
        if snapshot.mode & 0o222 == 0 {
            return .failure(.io("\(path) is read-only (mode \(octal(snapshot.mode))); not written"))
        }
        let original = path + originalSuffix
        if !SystemFile.exists(original) {
            if case .failure(let e) = place(snapshot.bytes, at: original, like: snapshot, replace: false) { return .failure(e) }
        }
        return place(bytes, at: path, like: snapshot, replace: true)
    }

    /// Writes `bytes` to a temporary file next to `target` with `like`'s mode and owner, fsyncs
    /// it, then renames it over `target` (`replace`) or links it there only when the name is free.
    static func place(_ bytes: [UInt8], at target: String, like snapshot: Snapshot, replace: Bool,
                      mustCreate: Bool = false) -> Result<Void, ManageError> {
        let dir = SystemFile.directoryName(target)
        let base = target.split(separator: "/").last.map(String.init) ?? target
        var template = Array(((dir.isEmpty ? "" : (dir == "/" ? "/" : dir + "/")) + "." + base + ".egress-monitor.XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { return .failure(.io("cannot create a temporary file in \(dir.isEmpty ? "." : dir): \(errnoText())")) }
        // (mkostemp is not in Swift's Glibc module: close-on-exec set right after.)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let temp = String(cString: template)
        var ok = false
        defer { if !ok { _ = unlink(temp) } }
        defer { if fd >= 0 { _ = close(fd) } }
        var rest = bytes[...]
        while !rest.isEmpty {
            let n = rest.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(.io("cannot write \(temp): \(errnoText())"))
            }
            rest = rest.dropFirst(n)
        }
        // Mode and owner of the file it replaces; a file the agent cannot give its owner back is not written.
        if fchown(fd, snapshot.owner, snapshot.group) != 0 {
            var info = stat()
            if fstat(fd, &info) != 0 || info.st_uid != snapshot.owner || info.st_gid != snapshot.group {
                return .failure(.io("cannot keep the owner \(snapshot.owner):\(snapshot.group) of \(target): \(errnoText())"))
            }
        }
        guard fchmod(fd, mode_t(snapshot.mode)) == 0 else { return .failure(.io("cannot set the mode of \(temp): \(errnoText())")) }
        guard fsync(fd) == 0 else { return .failure(.io("cannot fsync \(temp): \(errnoText())")) }
        if replace {
            guard rename(temp, target) == 0 else { return .failure(.io("cannot rename \(temp) to \(target): \(errnoText())")) }
        } else {
            if link(temp, target) != 0 {
                if errno == EEXIST && mustCreate { return .failure(.changedSinceRead("\(target) exists")) }
                guard errno == EEXIST else { return .failure(.io("cannot create \(target): \(errnoText())")) }
            }
            _ = unlink(temp)
        }
        ok = true
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            _ = close(dfd)
        }
        return .success(())
    }

    /// Replaces a file of the agent's own (its state), mode 0644, creating its directory (0755)
    /// when missing; atomic like the rest.
    public static func writeOwn(_ bytes: [UInt8], to path: String) -> Result<Void, ManageError> {
        let dir = SystemFile.directoryName(path)
        if !dir.isEmpty, !SystemFile.exists(dir), mkdir(dir, 0o755) != 0, errno != EEXIST {
            return .failure(.io("cannot create \(dir): \(errnoText())"))
        }
        let own = Snapshot(path: path, bytes: [], device: 0, inode: 0, size: 0, mtimeSeconds: 0, mtimeNanoseconds: 0,
                           mode: 0o644, owner: geteuid(), group: getegid())
        return place(bytes, at: path, like: own, replace: true)
    }

    /// `path` with symbolic links resolved (itself when it cannot be).
    static func resolved(_ path: String) -> String {
        guard let p = realpath(path, nil) else { return path }
        defer { free(p) }
        return String(cString: p)
    }

    static func octal(_ mode: UInt32) -> String {
        let s = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
