import Foundation
@testable import EgressMonitor
import EgressNet
import EgressTestSupport

/// Builds configs for tests against the lab.
enum LabConfig {
    /// A containerd `hosts.toml` for Docker Hub: one table per mirror, in order, each with
    /// `capabilities = ["pull", "resolve"]` and then its own lines (`ca = "ca.pem"`).
    static func hostsTOML(_ hosts: [(url: String, lines: [String])]) -> String {
        "server = \"https://registry-1.docker.io\"\n\n" + hosts.map { url, lines in
            "[host.\"\(url)\"]\n  capabilities = [\"pull\", \"resolve\"]\n" + lines.map { "  \($0)\n" }.joined()
        }.joined(separator: "\n")
    }

    static func url(_ text: String) -> EndpointURL {
        try! EndpointURL.parse(text, defaultPorts: ["https": 443, "http": 80]).get()
    }

    static func target(_ name: String = "t", kind: TargetKind = .registry, url text: String,
                       caFile: String? = nil, resolver: String? = nil) -> Target {
        Target(name: name, kind: kind, url: url(text), caFile: caFile, resolver: resolver)
    }

    static func config(targets: [Target], resolvers: [ResolverConfig] = [], paths: [EgressPath] = [.direct],
                       timeout: Double = 3, interval: Double = 30, phaseTimeouts: [Phase: Double] = [:]) -> AgentConfig {
        AgentConfig(listen: SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0), intervalSeconds: interval,
                    timeoutSeconds: timeout, phaseTimeouts: phaseTimeouts, resolvers: [.system] + resolvers,
                    paths: paths, targets: targets)
    }

    /// Probes one target once over `path`, on the reactor as the agent does.
    static func probe(_ target: Target, resolvers: [ResolverConfig] = [], path: EgressPath = .direct,
                      timeout: Double = 3, phaseTimeouts: [Phase: Double] = [:]) async -> ProbeResult {
        let config = config(targets: [target], resolvers: resolvers, paths: [path], timeout: timeout, phaseTimeouts: phaseTimeouts)
        return await ProbeEngine(config: config).probeOnReactor(target: target, path: path)
    }

    static var openFDs: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
    }
}

extension ProbeEngine {
    /// One probe where the agent's scheduler and `check` run theirs: on the reactor's executor
    /// (`Reactor.shared`), so the probe's code between its waits runs on the reactor thread.
    /// On Swift's global pool instead, a probe that blocked that thread, or a wake-up that
    /// depended on it being free, would pass here and stall the agent.
    func probeOnReactor(target: Target, path: EgressPath) async -> ProbeResult {
        await withTaskExecutorPreference(Reactor.shared) {
            await probe(target: target, path: path)
        }
    }
}
