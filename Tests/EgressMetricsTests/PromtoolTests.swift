import Foundation
import Testing
@testable import EgressMetrics
import EgressTestSupport

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
    func promtoolAccepts() async throws {
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

        let (status, output) = try await runPromtool(input: store.renderBytes())
        #expect(status == 0, "promtool said: \(output)")
    }

    @Test("promtool rejects broken input, so the test above can fail", .enabled(if: promtool != nil, "promtool is not on PATH"))
    func promtoolRejects() async throws {
        let (status, _) = try await runPromtool(input: Array("# TYPE x counter\nx{a=\"b} 1\n".utf8))
        #expect(status != 0)
    }

    /// Runs `promtool check metrics` with `input` on stdin (from a file), on a thread of its
    /// own (`Lab.runAsync`), so the cooperative pool is never blocked waiting for it.
    private func runPromtool(input: [UInt8]) async throws -> (Int32, String) {
        let directory = try Lab.makeDirectory("promtool")
        defer { Lab.removeDirectory(directory) }
        let inputPath = directory + "/metrics.txt"
        try Data(input).write(to: URL(fileURLWithPath: inputPath))
        let output = try await Lab.runAsync("sh", ["-c", "promtool check metrics < '\(inputPath)' 2>&1; echo \"exit=$?\""])
        let status = output.split(separator: "\n").last.flatMap { $0.hasPrefix("exit=") ? Int32($0.dropFirst(5)) : nil } ?? -1
        return (status, output)
    }
}
