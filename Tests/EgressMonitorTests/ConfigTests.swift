import Foundation
import Testing
@testable import EgressMonitor
import EgressNet

@Suite struct ConfigTests {
    static func decode(_ json: String) throws(ConfigError) -> AgentConfig {
        try ConfigLoader.decode(Data(json.utf8))
    }

    @Test func decodesTheDesignExample() throws {
        let caFile = FileManager.default.temporaryDirectory.appendingPathComponent("ca-\(UUID()).pem").path
        FileManager.default.createFile(atPath: caFile, contents: Data("x".utf8))
        defer { try? FileManager.default.removeItem(atPath: caFile) }
        let config = try Self.decode("""
        {
          "listen": "0.0.0.0:9469", "interval_seconds": 30, "timeout_seconds": 10,
          "resolvers": [{"name": "system"}, {"name": "lab", "address": "127.0.0.1:5353"}],
          "paths": [{"name": "direct"}, {"name": "vpn", "interface": "tun0"},
                    {"name": "corp", "proxy": "http://proxy.corp:3128"},
                    {"name": "clash", "proxy": "socks5h://127.0.0.1:7890"}],
          "targets": [{"name": "dockerhub", "kind": "dockerhub"},
                      {"name": "lab", "kind": "registry", "url": "https://registry.lab.test:5443",
                       "ca_file": "\(caFile)", "resolver": "lab", "image": "library/alpine:latest"}]
        }
        """)
        #expect(config.listen.description == "0.0.0.0:9469")
        #expect(config.intervalSeconds == 30)
        #expect(config.timeoutSeconds == 10)
        #expect(config.resolvers.map(\.name) == ["system", "lab"])
        #expect(config.resolvers[1].address?.description == "127.0.0.1:5353")
        #expect(config.paths.map(\.kind) == [.direct, .interface("tun0"),
                                             .proxy(EndpointURL(scheme: "http", host: "proxy.corp", port: 3128)),
                                             .proxy(EndpointURL(scheme: "socks5h", host: "127.0.0.1", port: 7890))])
        #expect(config.targets[0].url.description == "https://registry-1.docker.io")
        #expect(config.targets[0].images.map(\.description) == ["library/alpine:latest"])
        #expect(config.targets[1].url.port == 5443)
        #expect(config.targets[1].caFile == caFile)
        #expect(config.pairs.count == 8)
    }

    @Test func defaultsWhenFieldsAreLeftOut() throws {
        let config = try Self.decode(#"{"targets": [{"name": "hub", "kind": "dockerhub"}]}"#)
        #expect(config.listen == ConfigDefaults.listen)
        #expect(config.intervalSeconds == 30)
        #expect(config.timeoutSeconds == 10)
        #expect(config.paths == [.direct])
        #expect(config.resolvers == [.system])
        #expect(config.timeout(for: .dns) == 10)
    }

    @Test func phaseTimeoutsAreCappedByTheOverallTimeout() throws {
        let config = try Self.decode(#"{"timeout_seconds": 5, "phase_timeouts_seconds": {"dns": 2, "http": 9}, "targets": [{"name": "hub", "kind": "dockerhub"}]}"#)
        #expect(config.timeout(for: .dns) == 2)
        #expect(config.timeout(for: .http) == 5)
        #expect(config.timeout(for: .tls) == 5)
    }

    @Test func aTargetCanNarrowItsPaths() throws {
        let config = try Self.decode("""
        {"paths": [{"name": "direct"}, {"name": "vpn", "interface": "wg0"}],
         "targets": [{"name": "a", "kind": "dockerhub", "paths": ["vpn"]}, {"name": "b", "kind": "tcp", "url": "tcp://10.0.0.1:22"}]}
        """)
        #expect(config.pairs.map { "\($0.target.name)/\($0.path.name)" } == ["a/vpn", "b/direct", "b/vpn"])
    }

    /// `ip_family` pins a path; `validate` shows it, and says where a proxy resolves the target
    /// itself so the pin cannot apply to it.
    @Test func pathsPinnedToAFamily() throws {
        let config = try Self.decode("""
        {"paths": [{"name": "direct-v4", "ip_family": "ipv4"}, {"name": "direct-v6", "ip_family": "ipv6"},
                   {"name": "corp-v6", "proxy": "http://proxy.corp:3128", "ip_family": "ipv6"},
                   {"name": "clash-v6", "proxy": "socks5h://127.0.0.1:7890", "ip_family": "ipv4"},
                   {"name": "socks-v6", "proxy": "socks5://proxy.corp:1080", "ip_family": "ipv6"}, {"name": "both"}],
         "targets": [{"name": "hub", "kind": "dockerhub"}]}
        """)
        #expect(config.paths.map(\.ipFamily) == [.ipv4, .ipv6, .ipv6, .ipv4, .ipv6, nil])
        #expect(config.paths.map(\.ipFamilyNote) == [
            nil, nil, "note: ip_family pins only the proxy's own name; the HTTP proxy resolves the target itself",
            "note: ip_family ipv4 cannot apply: the proxy is an address and the SOCKS5 proxy resolves the target itself",
            nil, nil,
        ])
        let summary = ValidateCommand.summary(config, source: "c.json")
        #expect(summary.contains("direct-v6  direct, ipv6 only"), "\(summary)")
        #expect(summary.contains("cannot apply: the proxy is an address"), "\(summary)")
    }

    /// Through an HTTP proxy or socks5h:// the proxy resolves the target: `validate` says the
    /// target's resolver is not asked there (not for a socks5:// path, which this host resolves
    /// for, nor for a target that is an IP address, nor one without a resolver).
    @Test func aResolverCannotApplyWhereTheProxyResolves() throws {
        let config = try Self.decode("""
        {"resolvers": [{"name": "ali-dot", "dot": "223.5.5.5", "tls_name": "dns.alidns.com"}],
         "paths": [{"name": "direct"}, {"name": "corp", "proxy": "http://proxy.corp:3128"},
                   {"name": "clash", "proxy": "socks5h://127.0.0.1:7890"}, {"name": "socks", "proxy": "socks5://127.0.0.1:1080"}],
         "targets": [{"name": "hub", "kind": "dockerhub", "resolver": "ali-dot"},
                     {"name": "ip", "kind": "tcp", "url": "tcp://10.0.0.1:22", "resolver": "ali-dot"},
                     {"name": "mirror", "kind": "mirror", "url": "https://mirror.example", "resolver": "ali-dot", "paths": ["direct", "socks"]},
                     {"name": "plain", "kind": "tcp", "url": "tcp://host.example:22"}]}
        """)
        let note = "note: target hub's resolver ali-dot (dot) is not asked on paths corp, clash: the proxy is sent the name and resolves it, as it does for docker pull"
        #expect(config.resolverNotes == [note])
        let summary = ValidateCommand.summary(config, source: "c.json")
        #expect(summary.contains(note), "\(summary)")
    }

    /// DoT and DoH resolvers: defaults (port 853, the DoH URL's port and path) and what
    /// `validate` prints, each resolver with its kind.
    @Test func encryptedResolvers() throws {
        let config = try Self.decode("""
        {"resolvers": [{"name": "isp", "address": "223.5.5.5"},
                       {"name": "ali-dot", "dot": "223.5.5.5", "tls_name": "dns.alidns.com", "trusted": true},
                       {"name": "ali-doh", "doh": "https://dns.alidns.com/dns-query", "address": "223.6.6.6"},
                       {"name": "bare-doh", "doh": "https://doh.example:8443"}],
         "targets": [{"name": "hub", "kind": "dockerhub"}]}
        """)
        let dot = try #require(config.resolver(named: "ali-dot")?.encrypted)
        #expect(dot.kind == .dot && dot.connectAddress?.description == "223.5.5.5:853" && dot.serverName == "dns.alidns.com")
        let doh = try #require(config.resolver(named: "ali-doh")?.encrypted)
        #expect(doh.connectAddress?.description == "223.6.6.6:443" && doh.serverName == "dns.alidns.com" && doh.url?.path == "/dns-query")
        let bare = try #require(config.resolver(named: "bare-doh")?.encrypted)
        #expect(bare.connectAddress == nil && bare.url?.port == 8443 && bare.url?.path == "/dns-query")
        let summary = ValidateCommand.summary(config, source: "c.json")
        #expect(summary.contains("resolvers: system, isp (plain 223.5.5.5:53), ali-dot (dot 223.5.5.5:853 dns.alidns.com, trusted), ali-doh (doh https://dns.alidns.com/dns-query at 223.6.6.6), bare-doh (doh https://doh.example:8443/dns-query)"), "\(summary)")
    }

    /// Bad configs, each with the exact message a person sees: the JSON path, then what was expected.
    @Test(arguments: [
        (#"{"targets": [{"name": "x", "kind": "registry"}]}"#, ["targets[0].url: required for kind registry"]),
        (#"{"targets": [{"name": "x", "kind": "registry", "url": "ftp://a.b"}]}"#,
         [#"targets[0].url: scheme "ftp" is not one of https, http for kind registry"#]),
        (#"{"targets": [{"name": "x", "kind": "quay"}]}"#,
         [#"targets[0].kind: "quay" is not one of dockerhub, mirror, registry, tcp, tls, https"#]),
        (#"{"targets": [{"name": "x", "kind": "dockerhub", "colour": "red"}]}"#,
         ["targets[0].colour: unknown field (expected one of: name, kind, url, ca_file, resolver, image, images, paths, upstream, manifest_get_interval_seconds, blob_interval_seconds, blob_bytes, min_throughput_bytes_per_second, blob_digest, public)"]),
        (#"{"targets": [{"name": "x", "kind": "mirror", "url": "https://m.example", "upstream": "hub"}]}"#,
         [#"targets[0].upstream: "hub" is not another target named in targets"#]),
        (#"{"targets": [{"name": "x", "kind": "registry", "url": "https://m.example", "upstream": "x"}]}"#,
         ["targets[0].upstream: only a mirror has an upstream"]),
        (#"{"targets": [{"name": "x", "kind": "dockerhub", "blob_bytes": 10}]}"#,
         ["targets[0].blob_bytes: 10 is out of range (1024 to 1073741824)"]),
        (#"{"targets": [{"name": "x", "kind": "dockerhub", "blob_digest": "md5"}]}"#,
         [#"targets[0].blob_digest: "md5" is not a digest (algorithm:hex, e.g. sha256:...)"#]),
        (#"{"credentials_file": "/nonexistent/creds.json", "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         ["credentials_file: cannot read /nonexistent/creds.json"]),
        (#"{"interval": 30, "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         ["interval: unknown field (expected one of: listen, interval_seconds, timeout_seconds, phase_timeouts_seconds, concurrency, resolvers, paths, targets, discovery, credentials_file, web, manage, metrics, actions)"]),
        (#"{"discovery": {"env": false}, "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         ["discovery.env: unknown field (expected one of: environment, daemon_json, systemd_dropins, hosts_toml)"]),
        (#"{"paths": [{"name": "p", "proxy": "ftp://u:secret@proxy:21"}], "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         [#"paths[0].proxy: scheme "ftp" is not one of http, https, socks5, socks5h"#]),
        (#"{"paths": [{"name": "p", "proxy": "http://u:secret@proxy:99999"}], "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         [#"paths[0].proxy: "http://u:***@proxy:99999" has an invalid port "99999""#]),
        (#"{"paths": [{"name": "p", "interface": "tun0", "proxy": "http://p:3128"}], "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         ["paths[0]: give at most one of interface, source_address and proxy"]),
        (#"{"paths": [{"name": "p", "source_address": "10.0.0.300"}], "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         [#"paths[0].source_address: "10.0.0.300" is not an IP address"#]),
        (#"{"targets": [{"name": "x", "kind": "dockerhub", "resolver": "lab"}]}"#,
         [#"targets[0].resolver: "lab" is not a resolver named in resolvers (system)"#]),
        (#"{"targets": [{"name": "x", "kind": "dockerhub", "paths": ["vpn"]}]}"#,
         [#"targets[0].paths[0]: "vpn" is not a path named in paths (direct)"#]),
        (#"{"targets": [{"name": "x", "kind": "dockerhub"}, {"name": "x", "kind": "dockerhub"}]}"#,
         [#"targets[1].name: "x" is used twice"#]),
        (#"{"targets": [{"name": "a b", "kind": "dockerhub"}]}"#,
         [#"targets[0].name: "a b" is not a valid name (letters, digits, '.', '_' and '-', at most 64 characters)"#]),
        (#"{"interval_seconds": 0, "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         ["interval_seconds: 0 is out of range (1 to 86400)"]),
        (#"{"interval_seconds": "30", "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         ["interval_seconds: expected a number, found a string"]),
        (#"{"interval_seconds": 5, "timeout_seconds": 10, "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         ["timeout_seconds: 10 is longer than interval_seconds (5): a probe must end before the next round of its pair"]),
        (#"{"listen": "localhost", "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         [#"listen: "localhost" is not HOST:PORT with an IP address host (e.g. 0.0.0.0:9469, [::]:9469, 127.0.0.1:9469)"#]),
        (#"{"resolvers": [{"name": "lab"}], "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         [#"resolvers[0].address: required for a resolver other than "system" (e.g. "223.5.5.5" or "127.0.0.1:5353"), unless it has "dot" or "doh""#]),
        (#"{"resolvers": [{"name": "lab", "address": "dns.example"}], "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         [#"resolvers[0].address: "dns.example" is not an IP address with an optional port (e.g. 223.5.5.5, 127.0.0.1:5353, [2400:3200::1]:53)"#]),
        (#"{"targets": [{"name": "x", "kind": "registry", "url": "https://user:pw@reg.example"}]}"#,
         ["targets[0].url: must not carry credentials (user:password@); they would show wherever the URL is printed"]),
        (#"{"targets": [{"name": "x", "kind": "mirror", "url": "https://m.example/v2/"}]}"#,
         [#"targets[0].url: a mirror URL has no path, query or fragment (found "/v2/")"#]),
        (#"{"targets": [{"name": "x", "kind": "dockerhub", "image": "Alpine"}]}"#,
         [#"targets[0].image: "Alpine" has an invalid repository name "Alpine" (lower-case letters, digits, . _ - and /)"#]),
        (#"{"targets": [{"name": "x", "kind": "tcp", "url": "tcp://h:22", "image": "alpine"}]}"#,
         ["targets[0].image: only registry targets (dockerhub, mirror, registry) probe images"]),
        (#"{"targets": [{"name": "x", "kind": "registry", "url": "https://r.example", "ca_file": "/nonexistent/ca.pem"}]}"#,
         ["targets[0].ca_file: cannot read /nonexistent/ca.pem"]),
        (#"{"paths": [{"name": "p", "ip_family": "inet6"}], "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         [#"paths[0].ip_family: "inet6" is not "ipv4" or "ipv6""#]),
        (#"{"paths": [{"name": "p", "source_address": "10.0.0.2", "ip_family": "ipv6"}], "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         ["paths[0].ip_family: ipv6 cannot be dialed from source_address 10.0.0.2"]),
        (#"{"paths": [{"name": "p", "proxy": "http://10.0.0.1:3128", "ip_family": "ipv6"}], "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         ["paths[0].ip_family: ipv6 cannot be dialed to the proxy's address 10.0.0.1"]),
        (#"{"resolvers": [{"name": "d", "dot": "dns.example"}], "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         [#"resolvers[0].dot: "dns.example" is not an IP address with an optional port (e.g. 223.5.5.5, 1.12.12.12:853, [2400:3200::1]:853)"#]),
        (#"{"resolvers": [{"name": "d", "doh": "http://dns.example/dns-query"}], "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         [#"resolvers[0].doh: "http://dns.example/dns-query" is not an https:// URL without credentials (e.g. https://dns.alidns.com/dns-query)"#]),
        (#"{"resolvers": [{"name": "d", "dot": "1.1.1.1", "doh": "https://d.example/dns-query"}], "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         ["resolvers[0]: give one of dot and doh"]),
        (#"{"resolvers": [{"name": "d", "address": "1.1.1.1", "tls_name": "d.example"}], "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         [#"resolvers[0].tls_name: only a DNS-over-TLS resolver ("dot") has a tls_name"#]),
        (#"{"resolvers": [{"name": "d", "dot": "1.1.1.1", "ca_file": "/nonexistent/ca.pem"}], "targets": [{"name": "x", "kind": "dockerhub"}]}"#,
         ["resolvers[0].ca_file: cannot read /nonexistent/ca.pem"]),
        (#"{"targets": []}"#, ["targets: must name at least one target"]),
        (#"{}"#, ["targets: required"]),
        (#"[]"#, ["expected an object, found an array"]),
    ])
    func rejectsBadConfigsNamingTheField(json: String, expected: [String]) {
        do {
            _ = try Self.decode(json)
            Issue.record("accepted a bad config: \(json)")
        } catch {
            #expect(error.issues.map(\.description) == expected)
        }
    }

    @Test func mirrorsGetDockerHubAsUpstreamAndItProbesTheirImages() throws {
        let config = try Self.decode("""
        {"targets": [{"name": "hub", "kind": "dockerhub"},
                     {"name": "m", "kind": "mirror", "url": "https://m.example", "images": ["alpine", "library/busybox:1.36"]}]}
        """)
        #expect(config.targets[1].registry.upstream == "hub")
        // The hub's own image stays its own; the mirror's others are read for the comparison only.
        #expect(config.targets[0].images.map(\.description) == ["library/alpine:latest"])
        #expect(config.targets[0].registry.referenceImages.map(\.description) == ["library/busybox:1.36"])
        #expect(ValidateCommand.summary(config, source: "x.json").contains("image library/alpine:latest; reads library/busybox:1.36 for its mirrors' comparison only"),
                "validate shows what the hub reads on its mirrors' behalf")
        #expect(config.targets[0].registry.manifestGetIntervalSeconds == 21_600)
        #expect(config.targets[0].registry.blobIntervalSeconds == 600)
        #expect(config.targets[0].registry.blobBytes == 4 * 1024 * 1024)
    }

    /// Issue 14 §0: a mirror configured as the README shows (no image) is compared on its
    /// upstream's images. Break: dropping the default leaves `m` without images (red here).
    @Test func aMirrorWithoutImageIsComparedOnItsUpstreamsImages() throws {
        let config = try Self.decode("""
        {"targets": [{"name": "hub", "kind": "dockerhub", "images": ["alpine:3.20", "busybox"]},
                     {"name": "m", "kind": "mirror", "url": "https://m.example"},
                     {"name": "lone", "kind": "mirror", "url": "https://lone.example", "upstream": "own"},
                     {"name": "own", "kind": "registry", "url": "https://own.example"}]}
        """)
        #expect(config.targets[1].images.map(\.description) == ["library/alpine:3.20", "library/busybox:latest"])
        #expect(config.targets[0].registry.referenceImages.isEmpty)
        #expect(config.targets[2].images.isEmpty, "an upstream without images gives none")
        let hubless = try Self.decode(#"{"targets": [{"name": "m", "kind": "mirror", "url": "https://m.example"}]}"#)
        #expect(hubless.targets[0].images.map(\.description) == [ConfigDefaults.dockerHubImage])
    }

    @Test func reportsEveryErrorAtOnce() {
        do {
            _ = try Self.decode(#"{"interval_seconds": -1, "targets": [{"name": "x", "kind": "registry"}, {"kind": "nope"}]}"#)
            Issue.record("accepted a bad config")
        } catch {
            #expect(error.issues.map(\.path) == ["interval_seconds", "targets[0].url", "targets[1].name", "targets[1].kind"])
        }
    }

    @Test func syntaxErrorsSayTheDocumentIsNotJSON() {
        do {
            _ = try Self.decode(#"{"targets": [}"#)
            Issue.record("accepted broken JSON")
        } catch {
            #expect(error.issues.count == 1)
            #expect(error.issues[0].path == "")
            #expect(error.issues[0].message.hasPrefix("not valid JSON"))
        }
    }

    @Test func passwordsNeverAppearInErrorsOrDescriptions() throws {
        let url = try EndpointURL.parse("http://alice:s3cret@proxy.corp:3128", defaultPorts: EndpointURL.wellKnownPorts).get()
        #expect(url.password == "s3cret")
        #expect(url.description == "http://alice:***@proxy.corp:3128")
        do {
            _ = try Self.decode(#"{"paths": [{"name": "p", "proxy": "gopher://alice:s3cret@proxy"}], "targets": [{"name": "x", "kind": "dockerhub"}]}"#)
        } catch {
            #expect(!error.description.contains("s3cret"))
        }
    }

    @Test(arguments: [
        ("alpine", true, "library/alpine:latest"), ("alpine:3.20", true, "library/alpine:3.20"),
        ("bitnami/redis", true, "bitnami/redis:latest"), ("alpine", false, "alpine:latest"),
        ("library/alpine@sha256:" + String(repeating: "a", count: 64), true, "library/alpine@sha256:" + String(repeating: "a", count: 64)),
    ])
    func parsesImageReferences(text: String, official: Bool, expected: String) throws {
        #expect(try ImageReference.parse(text, officialPrefix: official).get().description == expected)
    }

    @Test func embeddedDefaultProbesDockerHubAndTheMirrorsOfDaemonJSON() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("daemon-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let daemon = dir + "/daemon.json"
        try #"{"registry-mirrors": ["https://docker.m.daocloud.io", "https://mirror.ccs.tencentyun.com", "ftp://bad", 7], "log-driver": "json-file"}"#
            .write(toFile: daemon, atomically: true, encoding: .utf8)
        var warnings: [String] = []
        func sources(_ daemonJSON: String) -> DiscoverySources {
            DiscoverySources(environment: [:], daemonJSONPath: daemonJSON, dropInDirectory: dir + "/none",
                             hostsTOMLPaths: [])
        }
        let config = DefaultConfig.make(sources: sources(daemon)) { warnings.append($0) }
        #expect(config.targets.map(\.name) == ["dockerhub", "mirror-docker.m.daocloud.io", "mirror-mirror.ccs.tencentyun.com"])
        #expect(config.targets[1].kind == .mirror)
        #expect(config.targets[1].discoveredFrom == daemon)
        #expect(config.paths == [.direct])
        #expect(warnings.count == 2)

        let missing = DefaultConfig.make(sources: sources(dir + "/none.json")) { warnings.append($0) }
        #expect(missing.targets.map(\.name) == ["dockerhub"])

        try "{not json".write(toFile: daemon, atomically: true, encoding: .utf8)
        var broken: [String] = []
        let fallback = DefaultConfig.make(sources: sources(daemon)) { broken.append($0) }
        #expect(fallback.targets.map(\.name) == ["dockerhub"])
        #expect(broken.count == 1 && broken[0].contains(daemon))
    }
}
