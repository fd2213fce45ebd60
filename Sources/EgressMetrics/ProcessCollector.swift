#if canImport(Glibc)
import Glibc
#endif

/// The standard `process_*` metrics, read from `/proc/self` at every render, with the Go
/// client's names and help texts.
///
/// ```swift
/// let store = MetricStore(families: Catalogue.all + ProcessCollector.families)
/// ProcessCollector.install(into: store)
/// ```
/// Where `/proc` is missing or unreadable, the affected series are simply not exported.
public struct ProcessCollector {
    /// `process_cpu_seconds_total`: user + system time of this process.
    public static let cpuSeconds = MetricFamily(
        name: "process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.", type: .counter)
    /// `process_resident_memory_bytes`.
    public static let residentMemory = MetricFamily(
        name: "process_resident_memory_bytes", help: "Resident memory size in bytes.", type: .gauge)
    /// `process_virtual_memory_bytes`.
    public static let virtualMemory = MetricFamily(
        name: "process_virtual_memory_bytes", help: "Virtual memory size in bytes.", type: .gauge)
    /// `process_open_fds`: entries of `/proc/self/fd`.
    public static let openFDs = MetricFamily(
        name: "process_open_fds", help: "Number of open file descriptors.", type: .gauge)
    /// `process_max_fds`: the soft `RLIMIT_NOFILE`.
    public static let maxFDs = MetricFamily(
        name: "process_max_fds", help: "Maximum number of open file descriptors.", type: .gauge)
    /// `process_start_time_seconds`: Unix time the process started.
    public static let startTime = MetricFamily(
        name: "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.", type: .gauge)

    /// Every family this collector exports; include them in ``MetricStore/init(families:)``.
    public static let families: [MetricFamily] = [cpuSeconds, residentMemory, virtualMemory, openFDs, maxFDs, startTime]

    /// Registers ``families`` in `store` where they are not registered yet (identical
    /// descriptors already there are fine), and adds a collector that refreshes them on every
    /// render.
    public static func install(into store: MetricStore) {
        store.registerIfAbsent(families)
        let start = ProcSelf.startTimeSeconds()
        store.addCollector { store in
            if let stat = ProcSelf.stat() {
                store.setCounter(cpuSeconds, to: stat.cpuSeconds)
                store.set(residentMemory, stat.residentBytes)
                store.set(virtualMemory, stat.virtualBytes)
            }
            if let n = ProcSelf.openFileDescriptors() { store.set(openFDs, Double(n)) }
            if let n = ProcSelf.maxFileDescriptors() { store.set(maxFDs, n) }
            if let start { store.set(startTime, start) }
        }
    }
}

/// Readers for `/proc/self`, `/proc/stat` and `getrlimit`.
enum ProcSelf {
    struct Stat: Equatable {
        var cpuSeconds: Double
        var residentBytes: Double
        var virtualBytes: Double
        /// Clock ticks after boot at which the process started.
        var startTicks: Double
    }

    static var clockTicksPerSecond: Double { Double(sysconf(Int32(_SC_CLK_TCK))) }
    static var pageSize: Double { Double(sysconf(Int32(_SC_PAGESIZE))) }

    static func stat() -> Stat? {
        readFile("/proc/self/stat").flatMap { parseStat($0, ticksPerSecond: clockTicksPerSecond, pageSize: pageSize) }
    }

    /// Parses `/proc/<pid>/stat` (proc(5)). The command name, field 2, is in parentheses and may
    /// itself contain spaces and parentheses, so fields are counted after the last `)`.
    static func parseStat(_ text: String, ticksPerSecond: Double, pageSize: Double) -> Stat? {
        guard let close = text.utf8.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // After ")": field 3 (state) is at index 0, so field N is at index N - 3.
        let fields = text[text.utf8.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        func field(_ n: Int) -> Double? {
            n - 3 < fields.count ? Double(fields[n - 3]) : nil
        }
        guard let utime = field(14), let stime = field(15), let start = field(22),
              let vsize = field(23), let rss = field(24), ticksPerSecond > 0 else { return nil }
        return Stat(cpuSeconds: (utime + stime) / ticksPerSecond, residentBytes: rss * pageSize,
                    virtualBytes: vsize, startTicks: start)
    }

    /// Boot time, Unix seconds: the `btime` line of `/proc/stat`.
    static func bootTime() -> Double? {
        guard let text = readFile("/proc/stat") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst("btime ".count).trimmingSpaces())
        }
        return nil
    }

    static func startTimeSeconds() -> Double? {
        guard let stat = stat(), let boot = bootTime() else { return nil }
        return boot + stat.startTicks / clockTicksPerSecond
    }

    /// Entries of `/proc/self/fd`, which includes the descriptor used to read it, as the Go
    /// client counts.
    static func openFileDescriptors() -> Int? {
        guard let dir = opendir("/proc/self/fd") else { return nil }
        defer { closedir(dir) }
        var n = 0
        while let entry = readdir(dir) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { name in
                name[0] == UInt8(ascii: ".") && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0))
            }
            if !isDot { n += 1 }
        }
        return n
    }

    /// The soft limit on open files; `RLIM_INFINITY` comes out as 2^64 - 1, as in Go.
    static func maxFileDescriptors() -> Double? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return Double(limit.rlim_cur)
    }

    /// The whole of a small file; procfs reports a size of 0, so read until end of file.
    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " || s.last == "\r" { s.removeLast() }
        return s
    }
}
