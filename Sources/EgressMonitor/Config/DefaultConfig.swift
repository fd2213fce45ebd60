import EgressNet

/// The config the agent runs with when given none: Docker Hub, plus every `registry-mirrors`
/// entry of Docker's daemon.json, over the direct path, asking the system resolver.
public enum DefaultConfig {
    /// Docker Hub over the direct path, plus whatever discovery finds: mirrors from daemon.json
    /// and hosts.toml, proxies from the environment, daemon.json and Docker's systemd drop-ins.
    public static func make(sources: DiscoverySources = DiscoverySources(),
                            warn: @escaping (String) -> Void = { _ in }) -> AgentConfig {
        let base = AgentConfig(
            listen: ConfigDefaults.listen, intervalSeconds: ConfigDefaults.intervalSeconds,
            timeoutSeconds: ConfigDefaults.timeoutSeconds, resolvers: [.system], paths: [.direct],
            targets: [Target(
                name: "dockerhub", kind: .dockerhub,
                url: try! EndpointURL.parse(ConfigDefaults.dockerHubRegistry, defaultPorts: ["https": 443]).get(),
                images: [try! ImageReference.parse(ConfigDefaults.dockerHubImage, officialPrefix: true).get()]
            )],
            discovery: DiscoverySettings())
        return Discovery(sources: sources, warn: warn).apply(base.discovery, to: base)
    }
}

/// What the agent reads from Docker's own `daemon.json`.
public enum DockerDaemonConfig {
    /// The `registry-mirrors` of daemon.json as mirror targets named `mirror-<host>`. A missing
    /// file yields none; a file that cannot be parsed is reported through `warn` and skipped.
    public static func mirrors(path: String, warn: (String) -> Void) -> [Target] {
        guard SystemFile.exists(path) else { return [] }
        guard let data = SystemFile.read(path) else {
            warn("cannot read \(path); its registry-mirrors are skipped")
            return []
        }
        let json: JSONValue
        do { json = try JSONValue.parse(data, duplicateKeys: .lastWins) } catch {
            warn("\(path) is not valid JSON (\(error.description)); its registry-mirrors are skipped")
            return []
        }
        guard case .object(let top) = json, let list = top["registry-mirrors"] else { return [] }
        guard case .array(let items) = list else {
            warn("\(path): registry-mirrors is not an array; skipped")
            return []
        }
        var targets: [Target] = []
        var used: Set<String> = ["dockerhub"]
        for (i, item) in items.enumerated() {
            guard case .string(let text) = item else {
                warn("\(path): registry-mirrors[\(i)] is not a string; skipped")
                continue
            }
            switch EndpointURL.parse(text, defaultPorts: ["https": 443, "http": 80]) {
            case .failure(let p):
                warn("\(path): registry-mirrors[\(i)] \(Validator.redacted(text)) \(p.message); skipped")
            case .success(let url):
                guard url.scheme == "https" || url.scheme == "http", url.username == nil,
                      url.path.isEmpty || url.path == "/" else {
                    warn("\(path): registry-mirrors[\(i)] must be an http(s) URL without credentials or path; skipped")
                    continue
                }
                let name = uniqueName("mirror-" + sanitize(url.host), used: &used)
                targets.append(Target(name: name, kind: .mirror, url: url,
                                      images: [],  // its upstream's, given by linkMirrorsToUpstreams
                                      discoveredFrom: path))
            }
        }
        return targets
    }

    /// A host name made into a valid target name.
    static func sanitize(_ host: String) -> String {
        String(host.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") ? $0 : "_" }.prefix(56))
    }

    static func uniqueName(_ base: String, used: inout Set<String>) -> String {
        var name = base
        var n = 2
        while !used.insert(name).inserted {
            name = "\(base)-\(n)"
            n += 1
        }
        return name
    }
}
