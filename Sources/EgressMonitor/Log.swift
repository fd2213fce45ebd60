#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Logs to stderr as logfmt lines: `ts=... level=info msg="..." key=value`.
/// One `write(2)` per line, so lines from concurrent tasks never interleave.
public enum Log {
    public enum Level: Int, Sendable, Comparable {
        case debug, info, warn, error
        var name: String { ["debug", "info", "warn", "error"][rawValue] }
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    private static let minimum = Atomic<Int>(Level.info.rawValue)

    public static func setLevel(_ level: Level) { minimum.store(level.rawValue, ordering: .relaxed) }

    public static func debug(_ msg: String, _ fields: KeyValuePairs<String, String> = [:]) { emit(.debug, msg, fields) }
    public static func info(_ msg: String, _ fields: KeyValuePairs<String, String> = [:]) { emit(.info, msg, fields) }
    public static func warn(_ msg: String, _ fields: KeyValuePairs<String, String> = [:]) { emit(.warn, msg, fields) }
    public static func error(_ msg: String, _ fields: KeyValuePairs<String, String> = [:]) { emit(.error, msg, fields) }

    static func emit(_ level: Level, _ msg: String, _ fields: KeyValuePairs<String, String>) {
        guard level.rawValue >= minimum.load(ordering: .relaxed) else { return }
        var line = "ts=\(timestamp()) level=\(level.name) msg=\(quote(msg))"
        for (k, v) in fields { line += " \(k)=\(quote(v))" }
        line += "\n"
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    /// logfmt quoting: bare when safe, else double-quoted with `\"`, `\\`, `\n` escaped.
    static func quote(_ s: String) -> String {
        let safe = !s.isEmpty && s.utf8.allSatisfy { $0 > 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "=") && $0 != UInt8(ascii: "\\") && $0 < 0x7f }
        if safe { return s }
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if c.value < 0x20 { out += "\\u" + TextFormat.hex(c.value, 4) } else { out.unicodeScalars.append(c) }
            }
        }
        return out + "\""
    }

    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func p(_ value: some BinaryInteger, _ width: Int) -> String { TextFormat.zeroPadded(value, width) }
        return "\(p(tmv.tm_year + 1900, 4))-\(p(tmv.tm_mon + 1, 2))-\(p(tmv.tm_mday, 2))T\(p(tmv.tm_hour, 2)):\(p(tmv.tm_min, 2)):\(p(tmv.tm_sec, 2)).\(p(Int(ts.tv_nsec / 1_000_000), 3))Z"
    }
}
