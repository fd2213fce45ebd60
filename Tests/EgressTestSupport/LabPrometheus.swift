import Foundation
import EgressNet

/// A Prometheus for a test, started through the lab's one launcher (`LabDaemon`): it scrapes
/// each site's agent every second (the site as a `site` target label), evaluates `rulesFile`
/// every second, and keeps its TSDB in its lab directory. The one place the tests write a
/// Prometheus config (RegistryTests' alert rules, OpsTests' fleet, ScrapeFormatsTests' formats).
public final class LabPrometheus: Sendable {
    public let daemon: LabDaemon
    /// Where its HTTP API listens on 127.0.0.1.
    public let port: UInt16
    /// `http://127.0.0.1:<port>`.
    public var base: String { "http://127.0.0.1:\(port)" }
    /// The running program.
    public var process: LabProcess { daemon.process }

    private init(daemon: LabDaemon, port: UInt16) {
        self.daemon = daemon
        self.port = port
    }

    /// The `prometheus.yml`: 1 s scrape and evaluation, `rulesFile` (nil: no rules), one static
    /// config per site (none: `[]`, for a Prometheus that only receives remote writes).
    public static func config(rulesFile: String?, sites: [(site: String, address: String)]) -> String {
        let targets = sites.isEmpty ? "        []" : sites.map { site, address in
            "      - targets: [\"\(address)\"]\n        labels: {site: \"\(site)\"}"
        }.joined(separator: "\n")
        return """
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
          evaluation_interval: 1s
        rule_files:
        \(rulesFile.map { "  - \"\($0)\"" } ?? "  []")
        scrape_configs:
          - job_name: egress-monitor
            static_configs:
        \(targets)

        """
    }

    /// Starts Prometheus with ``config(rulesFile:sites:)`` plus `arguments` (e.g.
    /// `--web.enable-remote-write-receiver`), and returns once it listens and its storage is
    /// ready (until then, listening, its API answers 503), each within `timeout` seconds.
    public static func start(rulesFile: String?, sites: [(site: String, address: String)], arguments: [String] = [],
                             timeout: Double = 20) async throws -> LabPrometheus {
        let port = FreePort.next()
        let daemon = try await LabDaemon.launch("prometheus", ports: [port], timeout: timeout) { directory in
            try config(rulesFile: rulesFile, sites: sites).write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
            return try LabProcess("prometheus", arguments: [
                "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data"] + arguments + [
                "--storage.tsdb.retention.time=1h", "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn"],
                directory: directory)
        }
        let prometheus = LabPrometheus(daemon: daemon, port: port)
        let deadline = Deadline.after(seconds: timeout)
        var lastError = "not asked"
        while true {
            do {
                _ = try await Lab.runAsync("curl", ["-sf", "--noproxy", "*", "--max-time", "2", prometheus.base + "/-/ready"])
                return prometheus
            } catch {
                lastError = "\(error)"
            }
            if deadline.hasPassed { throw LabError("Prometheus was not ready within \(timeout)s: \(lastError)\n\(daemon.process.logTail())") }
            try await Task.sleep(nanoseconds: 250_000_000)
        }
    }

    /// Stops the program (SIGTERM, then SIGKILL after a grace period); does not wait.
    public func stop() { daemon.stop() }
}
