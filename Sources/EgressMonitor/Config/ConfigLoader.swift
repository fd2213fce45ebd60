import EgressNet

/// Reads and validates config files. Every problem is reported at once, each with the JSON
/// path of the field (`targets[2].url: ...`); unknown fields are errors, not silently ignored.
/// Validation checks the document's shape only: the TLS files it names are noted in
/// `AgentConfig.tlsFiles`, and opened by the separate step `TLSMaterial.load`.
public enum ConfigLoader {
    /// Loads and validates the config file at `path`.
    public static func load(path: String) throws(ConfigError) -> AgentConfig {
        guard let data = SystemFile.read(path) else {
            throw ConfigError([ConfigIssue(path: "", message: "cannot read config file \(path)")])
        }
        return try decode(data)
    }

    /// Validates a JSON document.
    public static func decode(_ data: some Collection<UInt8>) throws(ConfigError) -> AgentConfig {
        let json = try JSONValue.parse(data)
        var v = Validator()
        let config = v.agentConfig(json)
        if !v.issues.isEmpty || config == nil {
            throw ConfigError(v.issues.isEmpty ? [ConfigIssue(path: "", message: "invalid config")] : v.issues)
        }
        return config!
    }
}

/// Walks a JSON document, collecting issues with their paths.
struct Validator {
    var issues: [ConfigIssue] = []
    /// The TLS files met so far, with their field paths; noted, never opened here (a pure
    /// validation can run anywhere, and `TLSMaterial.load` opens them once, where they are used).
    var tlsFiles: [TLSFileReference] = []

    static let namePattern = "letters, digits, '.', '_' and '-', at most 64 characters"

    mutating func fail(_ path: String, _ message: String) {
        issues.append(ConfigIssue(path: path, message: message))
    }

    /// The object at `path`, with unknown keys reported.
    mutating func object(_ value: JSONValue, at path: String, fields: [String]) -> [String: JSONValue]? {
        guard case .object(let dict) = value else {
            fail(path, "expected an object, found \(value.kindName)")
            return nil
        }
        for key in dict.keys.sorted() where !fields.contains(key) {
            fail(join(path, key), "unknown field (expected one of: \(fields.joined(separator: ", ")))")
        }
        return dict
    }

    func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    mutating func string(_ dict: [String: JSONValue], _ key: String, at path: String, required: Bool = false) -> String? {
        guard let value = dict[key] else {
            if required { fail(join(path, key), "required") }
            return nil
        }
        guard case .string(let s) = value else {
            fail(join(path, key), "expected a string, found \(value.kindName)")
            return nil
        }
        return s
    }

    mutating func number(_ dict: [String: JSONValue], _ key: String, at path: String, range: ClosedRange<Double>) -> Double? {
        guard let value = dict[key] else { return nil }
        guard case .number(let n) = value else {
            fail(join(path, key), "expected a number, found \(value.kindName)")
            return nil
        }
        guard range.contains(n) else {
            fail(join(path, key), "\(format(n)) is out of range (\(format(range.lowerBound)) to \(format(range.upperBound)))")
            return nil
        }
        return n
    }

    mutating func bool(_ dict: [String: JSONValue], _ key: String, at path: String) -> Bool? {
        guard let value = dict[key] else { return nil }
        guard case .bool(let b) = value else {
            fail(join(path, key), "expected true or false, found \(value.kindName)")
            return nil
        }
        return b
    }

    mutating func array(_ dict: [String: JSONValue], _ key: String, at path: String) -> [JSONValue]? {
        guard let value = dict[key] else { return nil }
        guard case .array(let a) = value else {
            fail(join(path, key), "expected an array, found \(value.kindName)")
            return nil
        }
        return a
    }

    func format(_ n: Double) -> String { n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n) }

    static func isValidName(_ s: String) -> Bool {
        (1...64).contains(s.utf8.count) && s.utf8.allSatisfy { $0.isASCIIAlnum || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    mutating func name(_ dict: [String: JSONValue], at path: String, seen: inout Set<String>) -> String? {
        guard let name = string(dict, "name", at: path, required: true) else { return nil }
        guard Self.isValidName(name) else {
            fail(join(path, "name"), "\"\(name)\" is not a valid name (\(Self.namePattern))")
            return nil
        }
        guard seen.insert(name).inserted else {
            fail(join(path, "name"), "\"\(name)\" is used twice")
            return nil
        }
        return name
    }

    // MARK: the document

    static let topFields = ["listen", "interval_seconds", "timeout_seconds", "phase_timeouts_seconds",
                            "concurrency", "resolvers", "paths", "targets", "discovery", "credentials_file", "web",
                            "manage", "metrics"]
        + ["actions"]
    static let discoveryFields = ["environment", "daemon_json", "systemd_dropins", "hosts_toml"]

    mutating func agentConfig(_ json: JSONValue) -> AgentConfig? {
        guard let top = object(json, at: "", fields: Self.topFields) else { return nil }
        var listen = ConfigDefaults.listen
        if let text = string(top, "listen", at: "") {
            if let a = Self.parseListen(text) { listen = a } else {
                fail("listen", "\"\(text)\" is not HOST:PORT with an IP address host (e.g. 0.0.0.0:9469, [::]:9469, 127.0.0.1:9469)")
            }
        }
        let interval = number(top, "interval_seconds", at: "", range: 1...86_400) ?? ConfigDefaults.intervalSeconds
        var timeout = number(top, "timeout_seconds", at: "", range: 0.05...3_600) ?? ConfigDefaults.timeoutSeconds
        if timeout > interval {
            if top["timeout_seconds"] != nil {
                fail("timeout_seconds", "\(format(timeout)) is longer than interval_seconds (\(format(interval))): a probe must end before the next round of its pair")
            }
            timeout = interval
        }
        var phaseTimeouts: [Phase: Double] = [:]
        if let value = top["phase_timeouts_seconds"],
           let dict = object(value, at: "phase_timeouts_seconds", fields: Phase.allCases.map(\.rawValue)) {
            for phase in Phase.allCases {
                if let t = number(dict, phase.rawValue, at: "phase_timeouts_seconds", range: 0.01...3_600) {
                    phaseTimeouts[phase] = t
                }
            }
        }
        let concurrency = number(top, "concurrency", at: "", range: 1...4096).map { Int($0) } ?? ConfigDefaults.concurrency

        var resolvers: [ResolverConfig] = []
        var resolverNames: Set<String> = []
        if let list = array(top, "resolvers", at: "") {
            for (i, item) in list.enumerated() {
                if let r = resolver(item, at: "resolvers[\(i)]", seen: &resolverNames) { resolvers.append(r) }
            }
        }
        if !resolverNames.contains("system") {
            resolvers.insert(.system, at: 0)
            resolverNames.insert("system")
        }

        var paths: [EgressPath] = []
        var pathNames: Set<String> = []
        if let list = array(top, "paths", at: "") {
            if list.isEmpty { fail("paths", "must name at least one path (or be left out for direct)") }
            for (i, item) in list.enumerated() {
                if let p = path(item, at: "paths[\(i)]", seen: &pathNames) { paths.append(p) }
            }
        } else {
            paths = [.direct]
            pathNames = ["direct"]
        }

        var targets: [Target] = []
        var targetNames: Set<String> = []
        if let list = array(top, "targets", at: "") {
            if list.isEmpty { fail("targets", "must name at least one target") }
            for (i, item) in list.enumerated() {
                if let t = target(item, at: "targets[\(i)]", seen: &targetNames,
                                  resolvers: resolverNames, paths: pathNames) {
                    targets.append(t)
                }
            }
        } else {
            fail("targets", "required")
        }
        let discovery = discoverySettings(top["discovery"])
        for (i, t) in targets.enumerated() {
            guard let up = t.registry.upstream else { continue }
            if t.kind != .mirror {
                fail("targets[\(i)].upstream", "only a mirror has an upstream")
            } else if up == t.name || !targetNames.contains(up) {
                fail("targets[\(i)].upstream", "\"\(up)\" is not another target named in targets")
            }
        }
        var credentials = RegistryCredentials()
        if let file = string(top, "credentials_file", at: "") {
            switch RegistryCredentials.load(path: file, warn: { Log.warn($0) }) {
            case .success(let c): credentials = c
            case .failure(let p): fail("credentials_file", p.message)
            }
        }
        let web = webConfig(top["web"])
        let manage = manage(top["manage"])
        let metricsSection = metricsConfig(top["metrics"])
        let actions = self.actions(top["actions"], targets: targetNames)
        guard issues.isEmpty else { return nil }
        var config = AgentConfig(listen: listen, intervalSeconds: interval, timeoutSeconds: timeout,
                                 phaseTimeouts: phaseTimeouts, concurrency: concurrency,
                                 resolvers: resolvers, paths: paths, targets: targets, discovery: discovery)
        config.credentials = credentials
        config.web = web
        config.manage = manage
        config.metrics = metricsSection
        config.actions = actions
        config.tlsFiles = tlsFiles
        config.linkMirrorsToUpstreams()
        return config
    }

    /// `"web": {"tls_cert_file", "tls_key_file", "basic_auth_users": {"user": "$2y$..."}}`.
    mutating func webConfig(_ value: JSONValue?) -> WebConfig {
        var web = WebConfig()
        guard let value, let dict = object(value, at: "web", fields: ["tls_cert_file", "tls_key_file", "basic_auth_users"]) else { return web }
        web.tlsCertFile = string(dict, "tls_cert_file", at: "web")
        web.tlsKeyFile = string(dict, "tls_key_file", at: "web")
        switch (web.tlsCertFile, web.tlsKeyFile) {
        case (let cert?, let key?):
            tlsFiles.append(TLSFileReference(field: "web.tls_cert_file", file: .serverCertificate(certFile: cert, keyFile: key)))
        case (nil, nil):
            break
        case (nil, _):
            fail("web.tls_cert_file", "required with tls_key_file")
        case (_, nil):
            fail("web.tls_key_file", "required with tls_cert_file")
        }
        if let users = dict["basic_auth_users"] {
            guard case .object(let map) = users else {
                fail("web.basic_auth_users", "expected an object of user → bcrypt hash, found \(users.kindName)")
                return web
            }
            for (user, hash) in map.sorted(by: { $0.key < $1.key }) {
                guard case .string(let h) = hash, PasswordHash.isBcrypt(h) else {
                    fail("web.basic_auth_users.\(user)", "expected a bcrypt hash ($2y$..., e.g. from htpasswd -nBC 10 \(user))")
                    continue
                }
                guard !user.isEmpty, !user.contains(":") else {
                    fail("web.basic_auth_users", "\"\(user)\" is not a user name (non-empty, no ':')")
                    continue
                }
                web.basicAuthUsers[user] = h
            }
        }
        return web
    }

    /// `"discovery": true | false | {"environment": false, ...}`; every source on by default.
    mutating func discoverySettings(_ value: JSONValue?) -> DiscoverySettings {
        guard let value else { return DiscoverySettings() }
        if case .bool(let on) = value { return on ? DiscoverySettings() : .none }
        guard let dict = object(value, at: "discovery", fields: Self.discoveryFields) else { return DiscoverySettings() }
        var s = DiscoverySettings()
        s.environment = bool(dict, "environment", at: "discovery") ?? true
        s.daemonJSON = bool(dict, "daemon_json", at: "discovery") ?? true
        s.systemdDropIns = bool(dict, "systemd_dropins", at: "discovery") ?? true
        s.hostsTOML = bool(dict, "hosts_toml", at: "discovery") ?? true
        return s
    }

    /// "0.0.0.0:9469", "[::]:9469", "127.0.0.1:9469", ":9469" (all IPv4 addresses), "localhost:9469".
    static func parseListen(_ text: String) -> SocketAddress? {
        if text.hasPrefix(":"), let p = UInt16(text.dropFirst()) { return SocketAddress(ip: IPAddress("0.0.0.0")!, port: p) }
        if text.hasPrefix("localhost:"), let p = UInt16(text.dropFirst("localhost:".count)) {
            return SocketAddress(ip: IPAddress("127.0.0.1")!, port: p)
        }
        return SocketAddress(parsing: text, defaultPort: nil)
    }

    // MARK: resolvers

    mutating func resolver(_ item: JSONValue, at path: String, seen: inout Set<String>) -> ResolverConfig? {
        guard let dict = object(item, at: path, fields: ["name", "address", "trusted", "dot", "tls_name", "doh", "ca_file"]) else { return nil }
        let name = self.name(dict, at: path, seen: &seen)
        let trusted = bool(dict, "trusted", at: path) ?? false
        let addressText = string(dict, "address", at: path)
        guard let name else { return nil }
        if name == "system" {
            if addressText != nil { fail(join(path, "address"), "the system resolver reads /etc/resolv.conf; give another name to a resolver with an address") }
            return ResolverConfig(name: name, address: nil, trusted: trusted)
        }
        let dot = string(dict, "dot", at: path), doh = string(dict, "doh", at: path)
        let tlsName = string(dict, "tls_name", at: path)
        let caFile = string(dict, "ca_file", at: path)
        if let f = caFile { tlsFiles.append(TLSFileReference(field: join(path, "ca_file"), file: .caFile(f))) }
        if dot == nil && doh == nil {
            if tlsName != nil { fail(join(path, "tls_name"), "only a DNS-over-TLS resolver (\"dot\") has a tls_name") }
            if caFile != nil { fail(join(path, "ca_file"), "only an encrypted resolver (\"dot\" or \"doh\") has a ca_file") }
        }
        if dot != nil && doh != nil {
            fail(path, "give one of dot and doh")
            return nil
        }
        if let dot {
            if addressText != nil { fail(join(path, "address"), "a DNS-over-TLS resolver's address is its \"dot\"") }
            guard let address = SocketAddress(parsing: dot, defaultPort: 853) else {
                fail(join(path, "dot"), "\"\(dot)\" is not an IP address with an optional port (e.g. 223.5.5.5, 1.12.12.12:853, [2400:3200::1]:853)")
                return nil
            }
            if let tlsName, tlsName.isEmpty || tlsName.contains(" ") || tlsName.contains("/") {
                fail(join(path, "tls_name"), "\"\(tlsName)\" is not a host name")
                return nil
            }
            return ResolverConfig(name: name, address: nil, trusted: trusted,
                                  encrypted: EncryptedResolver(kind: .dot, connectAddress: address, serverName: tlsName, caFile: caFile))
        }
        if let doh {
            if tlsName != nil { fail(join(path, "tls_name"), "a DNS-over-HTTPS resolver's certificate name is its URL's host") }
            let url: EndpointURL
            if Self.scheme(of: doh) != "https" {
                fail(join(path, "doh"), "\(Self.redacted(doh)) is not an https:// URL without credentials (e.g. https://dns.alidns.com/dns-query)")
                return nil
            }
            switch EndpointURL.parse(doh, defaultPorts: ["https": 443]) {
            case .failure(let p):
                fail(join(path, "doh"), "\(Self.redacted(doh)) \(p.message)")
                return nil
            case .success(let u): url = u
            }
            guard url.scheme == "https", url.username == nil else {
                fail(join(path, "doh"), "\(Self.redacted(doh)) is not an https:// URL without credentials (e.g. https://dns.alidns.com/dns-query)")
                return nil
            }
            var connect: SocketAddress?
            if let addressText {
                guard let ip = IPAddress(addressText) else {
                    fail(join(path, "address"), "\"\(addressText)\" is not an IP address (where to reach the DoH host without asking a resolver)")
                    return nil
                }
                connect = SocketAddress(ip: ip, port: url.port)
            }
            let normalized = EndpointURL(scheme: url.scheme, host: url.host, port: url.port, path: url.path.isEmpty ? "/dns-query" : url.path)
            return ResolverConfig(name: name, address: nil, trusted: trusted,
                                  encrypted: EncryptedResolver(kind: .doh, connectAddress: connect, serverName: url.ipLiteral == nil ? url.host : nil,
                                                               url: normalized, caFile: caFile))
        }
        guard let addressText else {
            fail(join(path, "address"), "required for a resolver other than \"system\" (e.g. \"223.5.5.5\" or \"127.0.0.1:5353\"), unless it has \"dot\" or \"doh\"")
            return nil
        }
        guard let address = SocketAddress(parsing: addressText, defaultPort: 53) else {
            fail(join(path, "address"), "\"\(addressText)\" is not an IP address with an optional port (e.g. 223.5.5.5, 127.0.0.1:5353, [2400:3200::1]:53)")
            return nil
        }
        return ResolverConfig(name: name, address: address, trusted: trusted)
    }

    // MARK: paths

    static let proxySchemes = ["http", "https", "socks5", "socks5h"]

    mutating func path(_ item: JSONValue, at path: String, seen: inout Set<String>) -> EgressPath? {
        guard let dict = object(item, at: path, fields: ["name", "interface", "source_address", "proxy", "ip_family"]) else { return nil }
        var family: IPFamily?
        if let text = string(dict, "ip_family", at: path) {
            guard let f = IPFamily(rawValue: text) else {
                fail(join(path, "ip_family"), "\"\(text)\" is not \"ipv4\" or \"ipv6\"")
                return nil
            }
            family = f
        }
        guard let kind = pathKind(dict, at: path, seen: &seen) else { return nil }
        if let family, case .sourceAddress(let ip) = kind.kind, !family.contains(ip) {
            fail(join(path, "ip_family"), "\(family.rawValue) cannot be dialed from source_address \(ip)")
            return nil
        }
        if let family, case .proxy(let url) = kind.kind, let ip = url.ipLiteral, !family.contains(ip) {
            fail(join(path, "ip_family"), "\(family.rawValue) cannot be dialed to the proxy's address \(ip)")
            return nil
        }
        return EgressPath(name: kind.name, kind: kind.kind, ipFamily: family)
    }

    private mutating func pathKind(_ dict: [String: JSONValue], at path: String, seen: inout Set<String>) -> (name: String, kind: EgressPath.Kind)? {
        let name = self.name(dict, at: path, seen: &seen)
        let interface = string(dict, "interface", at: path)
        let source = string(dict, "source_address", at: path)
        let proxy = string(dict, "proxy", at: path)
        let given = [interface, source, proxy].compactMap { $0 }
        if given.count > 1 {
            fail(path, "give at most one of interface, source_address and proxy")
            return nil
        }
        guard let name else { return nil }
        if let interface {
            guard (1...15).contains(interface.utf8.count), !interface.contains("/"), !interface.contains(" ") else {
                fail(join(path, "interface"), "\"\(interface)\" is not an interface name (1 to 15 characters, no '/' or spaces)")
                return nil
            }
            return (name, .interface(interface))
        }
        if let source {
            guard let ip = IPAddress(source) else {
                fail(join(path, "source_address"), "\"\(source)\" is not an IP address")
                return nil
            }
            return (name, .sourceAddress(ip))
        }
        if let proxy {
            if let scheme = Self.scheme(of: proxy), !Self.proxySchemes.contains(scheme) {
                fail(join(path, "proxy"), "scheme \"\(scheme)\" is not one of \(Self.proxySchemes.joined(separator: ", "))")
                return nil
            }
            switch EndpointURL.parse(proxy, defaultPorts: EndpointURL.wellKnownPorts) {
            case .failure(let p):
                fail(join(path, "proxy"), "\(Self.redacted(proxy)) \(p.message)")
                return nil
            case .success(let url):
                guard Self.proxySchemes.contains(url.scheme) else {
                    fail(join(path, "proxy"), "scheme \"\(url.scheme)\" is not one of \(Self.proxySchemes.joined(separator: ", "))")
                    return nil
                }
                guard url.path.isEmpty || url.path == "/" else {
                    fail(join(path, "proxy"), "a proxy URL has no path (found \"\(url.path)\")")
                    return nil
                }
                return (name, .proxy(url))
            }
        }
        return (name, .direct)
    }

    /// The lower-cased scheme of a URL written as text, if it has one.
    static func scheme(of text: String) -> String? {
        guard let sep = text.firstOccurrence(of: "://"), sep.lowerBound > text.startIndex else { return nil }
        return text[..<sep.lowerBound].lowercased()
    }

    /// A URL as text with its password hidden, for error messages.
    static func redacted(_ text: String) -> String {
        guard let sep = text.firstOccurrence(of: "://"), let at = text[sep.upperBound...].lastIndex(of: "@") else { return "\"\(text)\"" }
        let userinfo = text[sep.upperBound..<at]
        let user = userinfo.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        let hidden = userinfo.contains(":") ? "\(user):***" : user
        return "\"\(text[..<sep.upperBound])\(hidden)\(text[at...])\""
    }

    // MARK: targets

    /// Every target's own keys, then each kind's section (`ProbeKind.configKeys`).
    static let targetFields = ["name", "kind", "url", "ca_file", "resolver", "image", "images", "paths"]
        + ProbeKinds.configKeys + ["public"]

    mutating func target(_ item: JSONValue, at path: String, seen: inout Set<String>,
                         resolvers: Set<String>, paths: Set<String>) -> Target? {
        guard let dict = object(item, at: path, fields: Self.targetFields) else { return nil }
        let name = self.name(dict, at: path, seen: &seen)
        var kind: TargetKind?
        if let k = string(dict, "kind", at: path, required: true) {
            kind = TargetKind(rawValue: k)
            if kind == nil {
                fail(join(path, "kind"), "\"\(k)\" is not one of \(TargetKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        var url: EndpointURL?
        let urlText = string(dict, "url", at: path)
        if let kind {
            url = targetURL(urlText, kind: kind, at: join(path, "url"))
        }
        let caFile = string(dict, "ca_file", at: path)
        if let f = caFile { tlsFiles.append(TLSFileReference(field: join(path, "ca_file"), file: .caFile(f))) }
        let resolver = string(dict, "resolver", at: path)
        if let r = resolver, !resolvers.contains(r) {
            fail(join(path, "resolver"), "\"\(r)\" is not a resolver named in resolvers (\(resolvers.sorted().joined(separator: ", ")))")
        }
        var images: [ImageReference] = []
        let official = kind == .dockerhub || kind == .mirror
        if let image = string(dict, "image", at: path) {
            if let ref = imageReference(image, at: join(path, "image"), official: official) { images.append(ref) }
        }
        if let list = array(dict, "images", at: path) {
            if dict["image"] != nil { fail(join(path, "images"), "give image or images, not both") }
            for (i, item) in list.enumerated() {
                guard case .string(let s) = item else {
                    fail("\(join(path, "images"))[\(i)]", "expected a string, found \(item.kindName)")
                    continue
                }
                if let ref = imageReference(s, at: "\(join(path, "images"))[\(i)]", official: official) { images.append(ref) }
            }
        }
        if kind == .dockerhub && dict["image"] == nil && dict["images"] == nil {
            images = [try! ImageReference.parse(ConfigDefaults.dockerHubImage, officialPrefix: true).get()]
        }
        if let kind, !kind.isRegistry, !images.isEmpty {
            fail(join(path, dict["image"] != nil ? "image" : "images"), "only registry targets (dockerhub, mirror, registry) probe images")
        }
        var targetPaths: [String]?
        if let list = array(dict, "paths", at: path) {
            targetPaths = []
            if list.isEmpty { fail(join(path, "paths"), "must name at least one path (or be left out for all)") }
            for (i, item) in list.enumerated() {
                guard case .string(let s) = item else {
                    fail("\(join(path, "paths"))[\(i)]", "expected a string, found \(item.kindName)")
                    continue
                }
                if !paths.contains(s) {
                    fail("\(join(path, "paths"))[\(i)]", "\"\(s)\" is not a path named in paths (\(paths.sorted().joined(separator: ", ")))")
                }
                targetPaths?.append(s)
            }
        }
        // Each kind's section: read and checked for every target, refused on another kind's.
        var sections = KindSections()
        for module in ProbeKinds.all {
            module.decodeSection(dict, at: path, into: &sections, validator: &self)
            if let kind, !module.targetKinds.contains(kind) {
                for key in module.configKeys where dict[key] != nil { fail(join(path, key), module.foreignKeyMessage) }
            }
        }
        guard let name, let kind, let url else { return nil }
        var target = Target(name: name, kind: kind, url: url, caFile: caFile, resolver: resolver,
                            images: images, paths: targetPaths)
        target.sections = sections
        if let isPublic = bool(dict, "public", at: path) { target.isPublic = isPublic }
        return target
    }

    mutating func imageReference(_ text: String, at path: String, official: Bool) -> ImageReference? {
        switch ImageReference.parse(text, officialPrefix: official) {
        case .success(let r): return r
        case .failure(let p):
            fail(path, "\"\(text)\" \(p.message)")
            return nil
        }
    }

    mutating func targetURL(_ text: String?, kind: TargetKind, at path: String) -> EndpointURL? {
        let module = ProbeKinds.module(for: kind)
        let expected = module.urlSchemes
        guard let text = text ?? (kind == .dockerhub ? ConfigDefaults.dockerHubRegistry : nil) else {
            fail(path, "required for kind \(kind.rawValue)")
            return nil
        }
        if let scheme = Self.scheme(of: text), !expected.contains(scheme) {
            fail(path, "scheme \"\(scheme)\" is not one of \(expected.joined(separator: ", ")) for kind \(kind.rawValue)")
            return nil
        }
        switch EndpointURL.parse(text, defaultPorts: ["https": 443, "http": 80]) {
        case .failure(let p):
            fail(path, "\(Self.redacted(text)) \(p.message)")
            return nil
        case .success(let url):
            guard expected.contains(url.scheme) else {
                fail(path, "scheme \"\(url.scheme)\" is not one of \(expected.joined(separator: ", ")) for kind \(kind.rawValue)")
                return nil
            }
            guard url.username == nil else {
                fail(path, "must not carry credentials (user:password@); they would show wherever the URL is printed")
                return nil
            }
            if !module.urlHasPath {
                guard url.path.isEmpty || url.path == "/" else {
                    fail(path, "a \(kind.rawValue) URL has no path, query or fragment (found \"\(url.path)\")")
                    return nil
                }
            }
            return url
        }
    }
}
