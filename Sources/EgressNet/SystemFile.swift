#if canImport(Glibc)
import Glibc
#endif

/// The file system and environment calls the agent needs, on Glibc directly.
public enum SystemFile {
    /// The whole file's bytes (at most `maxBytes` of them), or nil when it cannot be opened or
    /// read (a directory cannot).
    public static func read(_ path: String, maxBytes: Int = .max) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = close(fd) }
        var content: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while content.count < maxBytes {
            let outcome = buffer.withUnsafeMutableBytes { raw in Syscall.run("read \(path)") { Glibc.read(fd, raw.baseAddress, raw.count) } }
            guard case .success(let n) = outcome else { return nil }
            if n == 0 { break }
            content.append(contentsOf: buffer[0..<n])
        }
        return content.count > maxBytes ? Array(content.prefix(maxBytes)) : content
    }

    /// The file as UTF-8 text, or nil when it cannot be read or is not valid UTF-8.
    public static func readText(_ path: String) -> String? {
        read(path).flatMap { String(validating: $0, as: UTF8.self) }
    }

    /// Whether something exists at `path` (symbolic links followed).
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    /// Whether this process may read `path`.
    public static func isReadable(_ path: String) -> Bool {
        access(path, R_OK) == 0
    }

    /// The names in directory `path` (without `.` and `..`), or nil when it cannot be listed.
    public static func directoryEntries(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// `path` without its last component: `/a/b/c` → `/a/b`, `/c` → `/`, `c` → empty.
    public static func directoryName(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "" }
        if slash == p.startIndex { return "/" }
        var dir = p[..<slash]
        while dir.count > 1 && dir.hasSuffix("/") { dir = dir.dropLast() }
        return String(dir)
    }

    /// The process's environment (`environ`): name → value.
    public static func environment() -> [String: String] {
        var env: [String: String] = [:]
        var p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = environ
        while let entry = p?.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                env[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            p = p! + 1
        }
        return env
    }
}

/// Base64 (RFC 4648, the standard alphabet with padding), for Basic authorization headers.
public enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ input: some Collection<UInt8>) -> String {
        let bytes = Array(input)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            let b0 = UInt32(bytes[i])
            let b1 = n > 1 ? UInt32(bytes[i + 1]) : 0
            let b2 = n > 2 ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(n > 1 ? alphabet[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(n > 2 ? alphabet[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of padded base64 text, or nil when it is not that (wrong length, a character
    /// outside the alphabet, padding anywhere but the end).
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 4 * 3)
        var i = 0
        while i < chars.count {
            var v: UInt32 = 0
            var padding = 0
            for k in 0..<4 {
                let c = chars[i + k]
                let d: UInt32
                switch c {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): d = UInt32(c - UInt8(ascii: "A"))
                case UInt8(ascii: "a")...UInt8(ascii: "z"): d = UInt32(c - UInt8(ascii: "a")) + 26
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0")) + 52
                case UInt8(ascii: "+"): d = 62
                case UInt8(ascii: "/"): d = 63
                case UInt8(ascii: "="):
                    // Only the last one or two characters of the last group.
                    guard i + 4 == chars.count, k >= 2 else { return nil }
                    padding += 1
                    d = 0
                default: return nil
                }
                if padding > 0 && c != UInt8(ascii: "=") { return nil }
                v = v << 6 | d
            }
            out.append(UInt8(v >> 16 & 0xFF))
            if padding < 2 { out.append(UInt8(v >> 8 & 0xFF)) }
            if padding < 1 { out.append(UInt8(v & 0xFF)) }
            i += 4
        }
        return out
    }
}
