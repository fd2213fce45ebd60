import Foundation
import Testing
import EgressTestSupport

/// The agent as a new user runs it, on its embedded default config (Docker Hub), inside a
/// network namespace with nothing but loopback: `/metrics` answers and Docker Hub is reported
/// as a DNS failure, not a crash or a hang. Needs root for `unshare -n`; skipped otherwise.
@Suite struct NamespaceTests {
    static var binary: String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        return dir + "/egress-monitor"
    }

    static let canRun = Lab.isRoot && Lab.has("unshare") && Lab.has("curl") && Lab.has("ip")

    @Test(.enabled(if: canRun, "needs root, unshare, ip and curl: the namespace test is SKIPPED, not passed"))
    func embeddedDefaultInAnEmptyNetworkNamespace() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary), "no agent binary at \(Self.binary)")
        let script = """
        set -u
        ip link set lo up
        "\(Self.binary)" --listen 127.0.0.1:9469 2>/tmp/egress-ns-$$.log &
        pid=$!
        i=0
        while [ $i -lt 150 ]; do
          if curl -s --max-time 1 127.0.0.1:9469/metrics | grep -q 'egress_probe_runs_total{target="dockerhub",path="direct"} [1-9]'; then break; fi
          sleep 0.1; i=$((i+1))
        done
        curl -s --max-time 2 127.0.0.1:9469/metrics
        kill -TERM $pid
        wait $pid
        echo "agent-exit=$?"
        cat /tmp/egress-ns-$$.log; rm -f /tmp/egress-ns-$$.log
        """
        let output = try await Lab.runAsync("unshare", ["-n", "sh", "-c", script])
        #expect(output.contains(#"egress_probe_runs_total{target="dockerhub",path="direct"} "#), "\(output)")
        let failure = output.split(separator: "\n").first {
            $0.hasPrefix(#"egress_probe_failures_total{target="dockerhub",path="direct",phase="dns""#)
        }
        #expect(failure != nil, "Docker Hub not reported as a DNS failure:\n\(output)")
        #expect(output.contains(#"egress_probe_success{target="dockerhub",path="direct"} 0"#))
        #expect(output.contains("agent-exit=0"), "\(output)")
        #expect(output.contains("msg=stopped"))
    }
}
