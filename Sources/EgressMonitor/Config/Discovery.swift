import EgressNet

/// Which sources discovery reads; each can be switched off in the config (`"discovery"`).
public struct DiscoverySettings: Sendable, Equatable {
    /// HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY of the agent's environment.
    public var environment = true
    /// `proxies` and `registry-mirrors` of Docker's daemon.json.
    public var daemonJSON = true
    /// `Environment=` lines of Docker's systemd drop-ins.
    public var systemdDropIns = true
    /// Mirrors from containerd/dockerd `hosts.toml` for docker.io.
    public var hostsTOML = true

    public init() {}
    public static let none: DiscoverySettings = {
        var s = DiscoverySettings()
        s.environment = false; s.daemonJSON = false; s.systemdDropIns = false; s.hostsTOML = false
        return s
    }()
}

/// Where discovery looks. Tests point these at sample files.
public struct DiscoverySources: Sendable {
    public var environment: [String: String]
    public var daemonJSONPath: String
    public var dropInDirectory: String
    public var hostsTOMLPaths: [String]

    public init(environment: [String: String] = SystemFile.environment(),
                daemonJSONPath: String = "/etc/docker/daemon.json",
                dropInDirectory: String = "/etc/systemd/system/docker.service.d",
                hostsTOMLPaths: [String] = ["/etc/containerd/certs.d/docker.io/hosts.toml",
                                            "/etc/docker/certs.d/docker.io/hosts.toml"]) {
        self.environment = environment
        self.daemonJSONPath = daemonJSONPath
        self.dropInDirectory = dropInDirectory
        self.hostsTOMLPaths = hostsTOMLPaths
    }
}

/// Finds the proxies and mirrors a Docker host is already set up with, so the agent probes
/// what Docker will actually use. Discovered items get stable names, say where they came from,
/// and never replace configured ones. A file that cannot be parsed is reported and skipped.
public struct Discovery {
    public let sources: DiscoverySources
    public let warn: (String) -> Void

    public init(sources: DiscoverySources = DiscoverySources(), warn: @escaping (String) -> Void) {
        self.sources = sources
        self.warn = warn
    }

    /// A proxy found somewhere, with the NO_PROXY list that goes with it.
    struct FoundProxy {
        let name: String
        let url: EndpointURL
        let noProxy: NoProxy
        let origin: String
    }

    /// Adds discovered paths and mirrors to `config`.
    public func apply(_ settings: DiscoverySettings, to config: AgentConfig) -> AgentConfig {
        var config = config
        var proxies: [FoundProxy] = []
        if settings.environment { proxies += environmentProxies() }
        var dockerProxies: [FoundProxy] = []
        if settings.daemonJSON { dockerProxies = daemonJSONProxies() }
        // daemon.json's proxies take precedence over the systemd environment, as in dockerd.
        if dockerProxies.isEmpty && settings.systemdDropIns { dockerProxies = dropInProxies() }
        proxies += dockerProxies

        var pathNames = Set(config.paths.map(\.name))
        var noProxyByPath: [String: NoProxy] = [:]
        for found in proxies {
            let already = config.paths.contains { if case .proxy(let u) = $0.kind { return u == found.url }; return false }
            if already { continue }
            let name = DockerDaemonConfig.uniqueName(found.name, used: &pathNames)
            config.paths.append(EgressPath(name: name, kind: .proxy(found.url), discoveredFrom: found.origin))
            noProxyByPath[name] = found.noProxy
        }

        var mirrors: [Target] = []
        var targetNames = Set(config.targets.map(\.name))
        if settings.daemonJSON, !config.targets.contains(where: { $0.discoveredFrom == sources.daemonJSONPath }) {
            mirrors += DockerDaemonConfig.mirrors(path: sources.daemonJSONPath, warn: warn)
        }
        if settings.hostsTOML {
            for path in sources.hostsTOMLPaths { mirrors += hostsTOMLMirrors(path) }
        }
        for mirror in mirrors {
            if config.targets.contains(where: { $0.url == mirror.url }) { continue }
            let name = DockerDaemonConfig.uniqueName(mirror.name, used: &targetNames)
            var target = Target(name: name, kind: mirror.kind, url: mirror.url, caFile: mirror.caFile,
                                resolver: nil, images: mirror.images, paths: nil, discoveredFrom: mirror.discoveredFrom)
            target.registry.apiRoot = mirror.registry.apiRoot  // override_path, from hosts.toml
            config.targets.append(target)
        }
        config.linkMirrorsToUpstreams()

        // NO_PROXY, honoured as Docker honours it: a target it matches is not probed through
        // that discovered proxy.
        if !noProxyByPath.isEmpty {
            let allPaths = config.paths.map(\.name)
            config.targets = config.targets.map { t in
                let excluded = noProxyByPath.filter { $0.value.bypasses(host: t.url.host, port: t.url.port) }.map(\.key)
                guard !excluded.isEmpty else { return t }
                var t = t
                t.paths = (t.paths ?? allPaths).filter { !excluded.contains($0) }
                return t
            }
        }
        return config
    }

    // MARK: environment

    func environmentProxies() -> [FoundProxy] {
        let env = sources.environment
        func value(_ name: String) -> String? {
            let v = env[name] ?? env[name.lowercased()]
            return (v?.isEmpty ?? true) ? nil : v
        }
        let noProxy = NoProxy(value("NO_PROXY") ?? "")
        var found: [FoundProxy] = []
        for (variable, name) in [("HTTPS_PROXY", "env-https-proxy"), ("HTTP_PROXY", "env-http-proxy"), ("ALL_PROXY", "env-all-proxy")] {
            guard let text = value(variable) else { continue }
            if let url = proxyURL(text, origin: "environment variable \(variable)"), !found.contains(where: { $0.url == url }) {
                found.append(FoundProxy(name: name, url: url, noProxy: noProxy, origin: "environment (\(variable))"))
            }
        }
        return found
    }

    /// A proxy URL as Docker reads one: a bare `host:port` means http://.
    func proxyURL(_ text: String, origin: String) -> EndpointURL? {
        let full = text.containsOccurrence(of: "://") ? text : "http://" + text
        switch EndpointURL.parse(full, defaultPorts: EndpointURL.wellKnownPorts) {
        case .success(let url) where Validator.proxySchemes.contains(url.scheme):
            return url
        case .success(let url):
            warn("\(origin): proxy scheme \"\(url.scheme)\" is not one of \(Validator.proxySchemes.joined(separator: ", ")); skipped")
        case .failure(let p):
            warn("\(origin): proxy \(Validator.redacted(full)) \(p.message); skipped")
        }
        return nil
    }

    // MARK: Docker's daemon.json

    func daemonJSONProxies() -> [FoundProxy] {
        let path = sources.daemonJSONPath
        guard SystemFile.exists(path), let data = SystemFile.read(path) else { return [] }
        guard let json = try? JSONValue.parse(data, duplicateKeys: .lastWins) else { return [] }  // reported by the mirror reader
        guard case .object(let top) = json, let proxiesValue = top["proxies"] else { return [] }
        guard case .object(let proxies) = proxiesValue else {
            warn("\(path): proxies is not an object; skipped")
            return []
        }
        func string(_ key: String) -> String? {
            if case .string(let s)? = proxies[key], !s.isEmpty { return s }
            return nil
        }
        let noProxy = NoProxy(string("no-proxy") ?? "")
        var found: [FoundProxy] = []
        for (key, name) in [("https-proxy", "docker-https-proxy"), ("http-proxy", "docker-http-proxy")] {
            guard let text = string(key), let url = proxyURL(text, origin: "\(path) proxies.\(key)") else { continue }
            if !found.contains(where: { $0.url == url }) {
                found.append(FoundProxy(name: name, url: url, noProxy: noProxy, origin: "\(path) (proxies.\(key))"))
            }
        }
        return found
    }

    // MARK: systemd drop-ins

    func dropInProxies() -> [FoundProxy] {
        let dir = sources.dropInDirectory
        guard let files = SystemFile.directoryEntries(dir) else { return [] }
        var env: [String: String] = [:]
        var origins: [String: String] = [:]
        for file in files.sorted() where file.hasSuffix(".conf") {
            let path = dir + "/" + file
            guard let text = SystemFile.readText(path) else {
                warn("cannot read \(path); skipped")
                continue
            }
            for (k, v) in SystemdUnit.environment(text) {
                env[k] = v
                origins[k] = path
            }
        }
        func value(_ name: String) -> (String, String)? {
            for key in [name, name.lowercased()] {
                if let v = env[key], !v.isEmpty { return (v, origins[key] ?? dir) }
            }
            return nil
        }
        let noProxy = NoProxy(value("NO_PROXY")?.0 ?? "")
        var found: [FoundProxy] = []
        for (variable, name) in [("HTTPS_PROXY", "docker-https-proxy"), ("HTTP_PROXY", "docker-http-proxy")] {
            guard let (text, origin) = value(variable), let url = proxyURL(text, origin: "\(origin) \(variable)") else { continue }
            if !found.contains(where: { $0.url == url }) {
                found.append(FoundProxy(name: name, url: url, noProxy: noProxy, origin: "\(origin) (\(variable))"))
            }
        }
        return found
    }

    // MARK: hosts.toml

    func hostsTOMLMirrors(_ path: String) -> [Target] {
        guard SystemFile.exists(path) else { return [] }
        guard let text = SystemFile.readText(path) else {
            warn("cannot read \(path); skipped")
            return []
        }
        let hosts: [HostsTOML.Host]
        do { hosts = try HostsTOML.parse(text) } catch {
            warn("\(path): \(error); skipped")
            return []
        }
        let dir = SystemFile.directoryName(path)
        var used: Set<String> = []
        var targets: [Target] = []
        for host in hosts {
            guard case .success(let url) = EndpointURL.parse(host.url, defaultPorts: ["https": 443, "http": 80]),
                  url.scheme == "https" || url.scheme == "http" else {
                warn("\(path): host \"\(host.url)\" is not an http(s) URL; skipped")
                continue
            }
            if url.host == "registry-1.docker.io" || url.host == "docker.io" { continue }  // upstream, not a mirror
            if !host.capabilities.isEmpty && !host.capabilities.contains("pull") { continue }
            var caFile = host.ca.map { $0.hasPrefix("/") ? $0 : dir + "/" + $0 }
            if let f = caFile, !SystemFile.isReadable(f) {
                warn("\(path): ca \(f) of \(url) cannot be read; the system trust store is used")
                caFile = nil
            }
            let name = DockerDaemonConfig.uniqueName("mirror-" + DockerDaemonConfig.sanitize(url.host), used: &used)
            var target = Target(name: name, kind: .mirror, url: EndpointURL(scheme: url.scheme, host: url.host, port: url.port),
                                caFile: caFile,
                                images: [],  // its upstream's, given by linkMirrorsToUpstreams
                                discoveredFrom: path)
            // As containerd builds its requests: the URL's path then `/v2`, or with
            // override_path the path alone.
            let urlPath = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
            target.registry.apiRoot = host.overridePath ? urlPath : urlPath + "/v2"
            targets.append(target)
        }
        return targets
    }
}

/// The `Environment=` assignments of a systemd unit or drop-in, in its `[Service]` section:
/// space-separated, optionally quoted, `%%` for `%`, lines continued with a backslash.
enum SystemdUnit {
    static func environment(_ text: String) -> [(String, String)] {
        var out: [(String, String)] = []
        var section = ""
        var logical: [String] = []
        var pending = ""
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" }) {
            var line = String(raw)
            if line.hasSuffix("\r") { line.removeLast() }
            if line.hasSuffix("\\") {
                pending += line.dropLast() + " "
                continue
            }
            logical.append(pending + line)
            pending = ""
        }
        if !pending.isEmpty { logical.append(pending) }
        for line in logical {
            let trimmed = line.trimmingWhitespace
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix(";") { continue }
            if trimmed.hasPrefix("[") { section = trimmed; continue }
            guard section == "[Service]", let eq = trimmed.firstIndex(of: "=") else { continue }
            let key = trimmed[..<eq].trimmingWhitespace
            guard key == "Environment" else { continue }
            for word in words(String(trimmed[trimmed.index(after: eq)...])) {
                guard let e = word.firstIndex(of: "="), e != word.startIndex else { continue }
                out.append((String(word[..<e]), String(word[word.index(after: e)...]).replacingOccurrences(of: "%%", with: "%")))
            }
        }
        return out
    }

    /// Splits on whitespace, honouring double and single quotes and backslash escapes.
    static func words(_ s: String) -> [String] {
        var words: [String] = []
        var current = ""
        var quote: Character?
        var inWord = false
        var escape = false
        for c in s {
            if escape { current.append(c); escape = false; continue }
            if c == "\\" { escape = true; inWord = true; continue }
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
                continue
            }
            if c == "\"" || c == "'" { quote = c; inWord = true; continue }
            if c == " " || c == "\t" {
                if inWord { words.append(current); current = ""; inWord = false }
                continue
            }
            current.append(c)
            inWord = true
        }
        if inWord { words.append(current) }
        return words
    }
}

/// The part of containerd's `hosts.toml` the agent needs: `[host."URL"]` tables with their
/// `capabilities` and `ca`. Other keys are read past; anything that is not TOML as hosts.toml
/// writes it is an error, and the file is skipped.
enum HostsTOML {
    struct Host: Equatable {
        var url: String
        var capabilities: [String] = []
        var ca: String?
        /// `override_path = true`: the URL's path replaces `/v2` (Harbor proxy-cache projects).
        var overridePath = false
    }

    struct ParseError: Error, CustomStringConvertible {
        let line: Int
        let message: String
        var description: String { "line \(line): \(message)" }
    }

    static func parse(_ text: String) throws -> [Host] {
        var hosts: [Host] = []
        var current: Int?  // index of the host whose table we are in; nil at top level or in a subtable
        for (i, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" }).enumerated() {
            let n = i + 1
            let line = stripComment(String(raw)).trimmingWhitespace
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { throw ParseError(line: n, message: "unclosed table header") }
                let inner = line.dropFirst().dropLast().trimmingWhitespace
                let parts = try splitKey(inner, line: n)
                if parts.count == 2 && parts[0] == "host" {
                    hosts.append(Host(url: parts[1]))
                    current = hosts.count - 1
                } else {
                    current = nil  // [host."...".header] and the like
                }
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw ParseError(line: n, message: "expected key = value") }
            let key = line[..<eq].trimmingWhitespace
            let value = line[line.index(after: eq)...].trimmingWhitespace
            guard !key.isEmpty, !value.isEmpty else { throw ParseError(line: n, message: "expected key = value") }
            guard let h = current else { continue }
            switch key {
            case "capabilities":
                hosts[h].capabilities = try stringArray(value, line: n)
            case "ca":
                hosts[h].ca = value.hasPrefix("[") ? try stringArray(value, line: n).first : try string(value, line: n)
            case "override_path":
                hosts[h].overridePath = value == "true"
            default:
                break
            }
        }
        return hosts
    }

    static func stripComment(_ line: String) -> String {
        var inString = false
        for (i, c) in line.enumerated() {
            if c == "\"" { inString.toggle() }
            if c == "#" && !inString { return String(line.prefix(i)) }
        }
        return line
    }

    /// `host."https://m.example"` → ["host", "https://m.example"].
    static func splitKey(_ s: String, line: Int) throws -> [String] {
        var parts: [String] = []
        var current = ""
        var inString = false
        for c in s {
            if c == "\"" { inString.toggle(); continue }
            if c == "." && !inString {
                parts.append(current.trimmingWhitespace)
                current = ""
                continue
            }
            current.append(c)
        }
        if inString { throw ParseError(line: line, message: "unclosed quote in table name") }
        parts.append(current.trimmingWhitespace)
        return parts
    }

    static func string(_ v: String, line: Int) throws -> String {
        guard v.count >= 2, (v.hasPrefix("\"") && v.hasSuffix("\"")) || (v.hasPrefix("'") && v.hasSuffix("'")) else {
            throw ParseError(line: line, message: "expected a quoted string")
        }
        return String(v.dropFirst().dropLast())
    }

    static func stringArray(_ v: String, line: Int) throws -> [String] {
        guard v.hasPrefix("["), v.hasSuffix("]") else { throw ParseError(line: line, message: "expected an array of strings") }
        return try v.dropFirst().dropLast().split(separator: ",").map(\.trimmingWhitespace)
            .filter { !$0.isEmpty }.map { try string($0, line: line) }
    }
}
