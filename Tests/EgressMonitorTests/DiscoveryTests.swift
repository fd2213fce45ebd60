import Foundation
import Testing
@testable import EgressMonitor
import EgressNet
import EgressTestSupport

/// Discovery from sample daemon.json, systemd drop-ins, hosts.toml and environments, the
/// malformed ones included: each is reported and skipped, and the agent still gets a config.
@Suite struct DiscoveryTests {
    final class Warnings: @unchecked Sendable {
        var lines: [String] = []
    }

    struct Files {
        let dir: String
        var daemonJSON: String { dir + "/daemon.json" }
        var dropIns: String { dir + "/docker.service.d" }
        var containerdTOML: String { dir + "/containerd/hosts.toml" }
        var dockerTOML: String { dir + "/docker/hosts.toml" }

        init() throws {
            dir = try Lab.makeDirectory("discovery")
            for d in [dropIns, dir + "/containerd", dir + "/docker"] {
                try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            }
        }

        func write(_ path: String, _ text: String) throws {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }

        func sources(_ env: [String: String] = [:]) -> DiscoverySources {
            DiscoverySources(environment: env, daemonJSONPath: daemonJSON, dropInDirectory: dropIns,
                             hostsTOMLPaths: [containerdTOML, dockerTOML])
        }
    }

    static func base(paths: [EgressPath] = [.direct], targets: [Target]? = nil) -> AgentConfig {
        LabConfig.config(targets: targets ?? [Target(name: "dockerhub", kind: .dockerhub, url: LabConfig.url("https://registry-1.docker.io"))],
                         paths: paths)
    }

    @Test func environmentProxiesBecomePathsAndNoProxyIsHonoured() throws {
        let files = try Files()
        defer { Lab.removeDirectory(files.dir) }
        let warnings = Warnings()
        let config = Discovery(sources: files.sources([
            "HTTPS_PROXY": "http://alice:s3cret@proxy.corp:3128", "http_proxy": "proxy.corp:3128",
            "ALL_PROXY": "socks5h://127.0.0.1:7890", "NO_PROXY": "localhost,.internal.corp,10.0.0.0/8,harbor.corp",
        ]), warn: { warnings.lines.append($0) }).apply(DiscoverySettings(), to: Self.base(targets: [
            Target(name: "dockerhub", kind: .dockerhub, url: LabConfig.url("https://registry-1.docker.io")),
            Target(name: "harbor", kind: .registry, url: LabConfig.url("https://harbor.corp")),
            Target(name: "sub", kind: .registry, url: LabConfig.url("https://r.internal.corp")),
            Target(name: "ip", kind: .registry, url: LabConfig.url("https://10.1.2.3:5000")),
        ]))
        // HTTP_PROXY names the same proxy without credentials: a path of its own, so the
        // difference the credentials make shows.
        #expect(config.paths.map(\.name) == ["direct", "env-https-proxy", "env-http-proxy", "env-all-proxy"])
        #expect(config.paths[1].kind == .proxy(EndpointURL(scheme: "http", host: "proxy.corp", port: 3128, username: "alice", password: "s3cret")))
        #expect(config.paths[1].discoveredFrom == "environment (HTTPS_PROXY)")
        #expect(config.paths[3].kind == .proxy(EndpointURL(scheme: "socks5h", host: "127.0.0.1", port: 7890)))
        #expect(warnings.lines.isEmpty)
        #expect(config.targets[0].paths == nil)
        #expect(config.targets[1].paths == ["direct"])
        #expect(config.targets[2].paths == ["direct"])
        #expect(config.targets[3].paths == ["direct"])
        #expect(config.pairs.count == 4 + 3)
    }

    @Test func aConfiguredProxyIsNotDiscoveredTwice() throws {
        let files = try Files()
        defer { Lab.removeDirectory(files.dir) }
        let corp = EgressPath(name: "corp", kind: .proxy(EndpointURL(scheme: "http", host: "proxy.corp", port: 3128)))
        let config = Discovery(sources: files.sources(["HTTPS_PROXY": "http://proxy.corp:3128"]), warn: { _ in })
            .apply(DiscoverySettings(), to: Self.base(paths: [.direct, corp]))
        #expect(config.paths.map(\.name) == ["direct", "corp"])
    }

    @Test func daemonJSONProxiesTakePrecedenceOverTheSystemdDropIn() throws {
        let files = try Files()
        defer { Lab.removeDirectory(files.dir) }
        try files.write(files.dropIns + "/http-proxy.conf", """
        [Service]
        Environment="HTTPS_PROXY=http://dropin.corp:3128" "NO_PROXY=localhost"
        """)
        try files.write(files.daemonJSON, #"{"proxies": {"https-proxy": "http://daemon.corp:8080", "no-proxy": "*.lab"}, "registry-mirrors": ["https://m.daocloud.io"]}"#)
        let config = Discovery(sources: files.sources(), warn: { _ in }).apply(DiscoverySettings(), to: Self.base())
        #expect(config.paths.map(\.name) == ["direct", "docker-https-proxy"])
        #expect(config.paths[1].kind == .proxy(EndpointURL(scheme: "http", host: "daemon.corp", port: 8080)))
        #expect(config.paths[1].discoveredFrom == "\(files.daemonJSON) (proxies.https-proxy)")
        #expect(config.targets.map(\.name) == ["dockerhub", "mirror-m.daocloud.io"])
        #expect(config.targets[1].discoveredFrom == files.daemonJSON)
    }

    @Test func systemdDropInEnvironmentIsParsedAsSystemdDoes() throws {
        let files = try Files()
        defer { Lab.removeDirectory(files.dir) }
        try files.write(files.dropIns + "/10-proxy.conf", """
        # Docker's documented drop-in
        [Unit]
        Environment="HTTPS_PROXY=http://wrong-section:1"
        [Service]
        Environment="HTTP_PROXY=http://proxy.example.com:3128" \\
            "HTTPS_PROXY=http://user:p%%40ss@proxy.example.com:3129"
        Environment=NO_PROXY=localhost,127.0.0.1,.example.com
        """)
        try files.write(files.dropIns + "/notes.txt", "Environment=HTTPS_PROXY=http://ignored:1")
        let env = SystemdUnit.environment(try String(contentsOfFile: files.dropIns + "/10-proxy.conf", encoding: .utf8))
        #expect(env.map(\.0) == ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"])
        #expect(env[1].1 == "http://user:p%40ss@proxy.example.com:3129")
        let config = Discovery(sources: files.sources(), warn: { _ in }).apply(DiscoverySettings(), to: Self.base())
        #expect(config.paths.map(\.name) == ["direct", "docker-https-proxy", "docker-http-proxy"])
        #expect(config.paths[1].kind == .proxy(EndpointURL(scheme: "http", host: "proxy.example.com", port: 3129, username: "user", password: "p@ss")))
        #expect(config.paths[1].discoveredFrom?.hasPrefix(files.dropIns + "/10-proxy.conf") == true)
    }

    @Test func hostsTOMLMirrorsAreDiscoveredAndMalformedFilesSkipped() throws {
        let files = try Files()
        defer { Lab.removeDirectory(files.dir) }
        try files.write(files.dir + "/containerd/mirror.crt", "x")
        try files.write(files.containerdTOML, """
        server = "https://registry-1.docker.io"

        [host."https://mirror.example.com"]
          capabilities = ["pull", "resolve"]
          ca = "mirror.crt"  # next to hosts.toml

        [host."https://mirror.example.com".header]
          x-custom = ["1"]

        [host."https://push-only.example.com"]
          capabilities = ["push"]

        [host."http://10.0.0.5:5000"]
          capabilities = ["pull"]
          skip_verify = true
        """)
        try files.write(files.dockerTOML, "[host.\"https://broken.example.com\"\ncapabilities = [\"pull\"]\n")
        let warnings = Warnings()
        let config = Discovery(sources: files.sources(), warn: { warnings.lines.append($0) }).apply(DiscoverySettings(), to: Self.base())
        #expect(config.targets.map(\.name) == ["dockerhub", "mirror-mirror.example.com", "mirror-10.0.0.5"])
        #expect(config.targets[1].caFile == files.dir + "/containerd/mirror.crt")
        #expect(config.targets[1].kind == .mirror)
        #expect(config.targets[2].url.description == "http://10.0.0.5:5000")
        #expect(config.targets[1].discoveredFrom == files.containerdTOML)
        #expect(warnings.lines.count == 1)
        #expect(warnings.lines.first?.contains(files.dockerTOML) == true)
        #expect(warnings.lines.first?.contains("line 1") == true)
    }

    @Test func malformedFilesAreReportedAndTheAgentStillGetsAConfig() throws {
        let files = try Files()
        defer { Lab.removeDirectory(files.dir) }
        try files.write(files.daemonJSON, #"{"proxies": "yes", "registry-mirrors": "https://x"}"#)
        try files.write(files.dropIns + "/bad.conf", "[Service]\nEnvironment=\"HTTPS_PROXY=ftp://x:21\"\n")
        let warnings = Warnings()
        let config = DefaultConfig.make(sources: files.sources(["HTTPS_PROXY": "http://[::1"]), warn: { warnings.lines.append($0) })
        #expect(config.targets.map(\.name) == ["dockerhub"])
        #expect(config.paths.map(\.name) == ["direct"])
        #expect(warnings.lines.count == 4, "\(warnings.lines)")
        #expect(warnings.lines.allSatisfy { !$0.isEmpty })
    }

    @Test func eachSourceCanBeSwitchedOff() throws {
        let files = try Files()
        defer { Lab.removeDirectory(files.dir) }
        try files.write(files.daemonJSON, #"{"registry-mirrors": ["https://m.example"]}"#)
        var settings = DiscoverySettings()
        settings.environment = false
        settings.daemonJSON = false
        let config = Discovery(sources: files.sources(["HTTPS_PROXY": "http://p:1"]), warn: { _ in }).apply(settings, to: Self.base())
        #expect(config.paths.map(\.name) == ["direct"])
        #expect(config.targets.map(\.name) == ["dockerhub"])
        #expect(Discovery(sources: files.sources(["HTTPS_PROXY": "http://p:1"]), warn: { _ in })
            .apply(.none, to: Self.base()).paths.count == 1)
    }

    @Test(arguments: [
        ("*", "anything.example", 443, true), ("example.com", "example.com", 443, true),
        ("example.com", "registry.example.com", 443, true), ("example.com", "notexample.com", 443, false),
        (".example.com", "example.com", 443, false), (".example.com", "a.example.com", 443, true),
        ("example.com:5000", "example.com", 443, false), ("example.com:5000", "example.com", 5000, true),
        ("10.0.0.0/8", "10.2.3.4", 443, true), ("10.0.0.0/8", "11.2.3.4", 443, false),
        ("192.168.1.5", "192.168.1.5", 5000, true), ("", "localhost", 443, true), ("", "127.0.0.1", 443, true),
        ("", "registry-1.docker.io", 443, false), ("*.corp", "harbor.corp", 443, true),
    ])
    func noProxyMatchesAsDockerDoes(list: String, host: String, port: Int, bypass: Bool) {
        #expect(NoProxy(list).bypasses(host: host, port: UInt16(port)) == bypass)
    }
}
