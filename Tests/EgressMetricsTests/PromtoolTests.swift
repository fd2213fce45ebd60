import Foundation
import Testing
@testable import EgressMetrics

/// `promtool` from the Debian `prometheus` package, if it is on PATH.
private let promtool: String? = {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    return path.split(separator: ":")
        .map { "\($0)/promtool" }
        .first { FileManager.default.isExecutableFile(atPath: $0) }
}()

@Suite("promtool check metrics")
struct PromtoolTests {
    // Skipped, never passed, where promtool is not installed (apt-get install prometheus).
    @Test("a populated store passes promtool's parser and linter", .enabled(if: promtool != nil, "promtool is not on PATH"))
    func promtoolAccepts() throws {
        let store = MetricStore(families: Fixture.all + ProcessCollector.families)
        ProcessCollector.install(into: store)
        let odd = #"we"ird\ value"# + "\nwith newline"
        for target in ["hub", "lab", odd] {
            for path in ["direct", "vpn"] {
                store.increment(Fixture.runs, [target, path], by: 3)
                store.increment(Fixture.failures, [target, path, "tls", "tls_reset"])
                store.set(Fixture.success, [target, path], 1)
                for v in [0.1, 0.7, 3.2] { store.observe(Fixture.duration, [target, path], v) }
            }
        }
        store.set(Fixture.buildInfo, ["1.0.0"], 1)
        store.set(Fixture.reloadOK, 1)
        store.observe(Fixture.lag, 0.004)

        let (status, output) = try runPromtool(input: store.renderBytes())
        #expect(status == 0, "promtool said: \(output)")
    }

    @Test("promtool rejects broken input, so the test above can fail", .enabled(if: promtool != nil, "promtool is not on PATH"))
    func promtoolRejects() throws {
        let (status, _) = try runPromtool(input: Array("# TYPE x counter\nx{a=\"b} 1\n".utf8))
        #expect(status != 0)
    }

    /// Runs `promtool check metrics` with `input` on stdin. Input and output go through
    /// temporary files rather than pipes, so no read or write of ours can be cut short by a
    /// signal.
    private func runPromtool(input: [UInt8]) throws -> (Int32, String) {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("egress-metrics-promtool-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let inputURL = directory.appendingPathComponent("metrics.txt")
        let outputURL = directory.appendingPathComponent("promtool.out")
        try Data(input).write(to: inputURL)
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: promtool!)
        process.arguments = ["check", "metrics"]
        process.standardInput = try FileHandle(forReadingFrom: inputURL)
        let output = try FileHandle(forWritingTo: outputURL)
        process.standardOutput = output
        process.standardError = output
        try process.run()
        process.waitUntilExit()
        let text = try String(decoding: Data(contentsOf: outputURL), as: UTF8.self)
        return (process.terminationStatus, text)
    }
}
