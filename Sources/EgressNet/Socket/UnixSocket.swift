#if canImport(Glibc)
import Glibc
#endif
import CLinux

extension Socket {
    /// A stream socket connected to the Unix socket at `path` (the Docker Engine API's
    /// `/var/run/docker.sock`). A local connect completes at once or fails at once (EAGAIN
    /// when the listener's backlog is full: no waiting, the caller's next try is the retry),
    /// so it needs no reactor; reads and writes then go through the same primitives as TCP.
    public static func connectUnix(path: String) throws(NetError) -> Socket {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else {
            throw NetError.system(call: "connect \(path): a Unix socket path must be 1 to \(capacity - 1) bytes", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw NetError.from(errno: errno, call: "socket(AF_UNIX)") }
        let socket = Socket(adopting: fd)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            let e = errno
            socket.close()
            throw NetError.from(errno: e, call: "connect \(path)")
        }
        return socket
    }
}
