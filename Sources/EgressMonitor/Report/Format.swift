#if canImport(Glibc)
import Glibc
#endif

/// Numbers and times as people read them, the same in `check`, `suggest` and the status page.
enum Format {
    /// `0.4 ms`, `12 ms`, `1.25 s`, `12.5 s`.
    static func duration(_ seconds: Double) -> String {
        // Each bound is where rounding would carry the value into the next format.
        let ms = seconds * 1000
        if ms < 9.95 { return "\(decimal(ms, places: 1)) ms" }
        if ms < 999.5 { return "\(Int(ms.rounded())) ms" }
        if seconds < 9.995 { return "\(decimal(seconds, places: 2)) s" }
        return "\(decimal(seconds, places: 1)) s"
    }

    /// `850 kB/s`, `12.3 MB/s` (decimal units, as network speeds are given).
    static func throughput(_ bytesPerSecond: Double) -> String {
        if bytesPerSecond < 1_000 { return "\(Int(bytesPerSecond)) B/s" }
        if bytesPerSecond < 1_000_000 { return "\(Int((bytesPerSecond / 1_000).rounded())) kB/s" }
        return "\(decimal(bytesPerSecond / 1_000_000, places: 1)) MB/s"
    }

    /// An age or uptime: `4 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
    static func age(_ seconds: Double) -> String {
        let s = max(0, Int(seconds.rounded(.down)))
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min" }
        if s < 86_400 { return s % 3600 / 60 == 0 ? "\(s / 3600) h" : "\(s / 3600) h \(s % 3600 / 60) min" }
        return s % 86_400 / 3600 == 0 ? "\(s / 86_400) d" : "\(s / 86_400) d \(s % 86_400 / 3600) h"
    }

    /// `2024-11-23 09:12:03 UTC`.
    static func utc(_ unixSeconds: Double) -> String {
        var t = time_t(unixSeconds.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) UTC"
    }

    /// `value` rounded to `places` decimals, without trailing noise (`0.4`, `1.25`).
    static func decimal(_ value: Double, places: Int) -> String {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = Int((value * scale).rounded())
        let whole = scaled / Int(scale)
        var fraction = String(scaled % Int(scale))
        while fraction.count < places { fraction = "0" + fraction }
        return "\(whole).\(fraction)"
    }

    /// `text` broken into lines of at most `width` columns (words longer than that stand alone),
    /// each line after the first prefixed with `indent`.
    static func wrap(_ text: String, width: Int, indent: String) -> String {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && line.count + 1 + word.count > width {
                lines.append(line)
                line = String(word)
            } else {
                line += line.isEmpty ? String(word) : " " + word
            }
        }
        if !line.isEmpty { lines.append(line) }
        return lines.joined(separator: "\n" + indent)
    }
}
