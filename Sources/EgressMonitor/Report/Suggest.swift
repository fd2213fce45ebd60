/// `egress-monitor suggest`: after one round, what to change in Docker's own setup. Prints,
/// never writes: a `registry-mirrors` list for daemon.json of the mirrors that answered, judged by
/// `FreshnessJudge` — current ones (the upstream's digests) first, healthiest and fastest first,
/// then the ones that could not be compared, labelled so; behind ones left out with the reason.
/// And, where Docker Hub fails directly but works through a proxy path, the systemd drop-in that
/// sends Docker through that proxy, in a proxy scheme the Docker in front of it understands.
public enum SuggestCommand {
    /// A mirror that answered on at least one path.
    public struct HealthyMirror: Sendable, Equatable {
        public let target: Target
        /// The paths it answered on, in config order.
        public let okPaths: [String]
        /// How many paths it was probed on.
        public let probedPaths: Int
        /// Its fastest successful round and the path it took.
        public let fastest: Double
        public let fastestPath: String
        /// Whether it answered on a direct path (Docker reaches it without any proxy).
        public let okDirect: Bool
        /// Whether it serves what its upstream serves now, and how that was decided.
        public var freshness = MirrorFreshness(target: "", freshness: .unknown, detail: "not judged")

        var health: Double { Double(okPaths.count) / Double(max(probedPaths, 1)) }
    }

    /// Docker Hub failing directly but answering through a proxy path.
    public struct ProxyAdvice: Sendable, Equatable {
        public let target: String
        public let path: EgressPath
        public let proxy: EndpointURL
        public let duration: Double
        /// How it failed directly: `direct: tls/tls_reset`, one per direct path.
        public let directFailures: [String]
    }

    public struct Suggestion: Sendable, Equatable {
        /// Current ones first, then unknown ones; in each, healthiest first (the share of paths
        /// it answered on), then fastest.
        public var mirrors: [HealthyMirror] = []
        /// Mirrors that answered but serve older builds than their upstream or other mirrors.
        public var behindMirrors: [HealthyMirror] = []
        /// Mirror targets probed that answered on no path.
        public var failedMirrors: [String] = []
        public var proxy: ProxyAdvice?
        /// Docker Hub targets and how they fared, for the closing words.
        public var dockerHubDirectOK: [String: String] = [:]
        public var dockerHubOtherOK: [String: String] = [:]
        public var dockerHubUnreachable: [String] = []
        /// What the local Docker Engine said of itself (its Go version decides the proxy
        /// scheme written for it); nil when it was not asked.
        public var docker: Result<DockerEngineInfo, DockerEngineProblem>?
    }

    public static let dropInPath = "/etc/systemd/system/docker.service.d/http-proxy.conf"

    /// What the results say Docker should use.
    public static func analyse(_ config: AgentConfig, _ results: [ProbeResult]) -> Suggestion {
        var s = Suggestion()
        let freshness = FreshnessJudge.judge(config: config, results: results)
        let pathsByName = Dictionary(config.paths.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        func isDirect(_ path: String) -> Bool { pathsByName[path]?.kind == .direct }

        for target in config.targets where target.kind == .mirror {
            let mine = results.filter { $0.target == target.name }
            guard !mine.isEmpty else { continue }
            let ok = mine.filter(\.success)
            guard let fastest = ok.min(by: { ($0.duration, $0.path) < ($1.duration, $1.path) }) else {
                s.failedMirrors.append(target.name)
                continue
            }
            var mirror = HealthyMirror(target: target, okPaths: ok.map(\.path), probedPaths: mine.count,
                                       fastest: fastest.duration, fastestPath: fastest.path,
                                       okDirect: ok.contains { isDirect($0.path) })
            mirror.freshness = freshness[target.name] ?? mirror.freshness
            if mirror.freshness.freshness == .behind { s.behindMirrors.append(mirror) } else { s.mirrors.append(mirror) }
        }
        // An unknown mirror is never ranked with the current ones, however fast.
        s.mirrors.sort { a, b in
            (a.freshness.freshness == .current ? 0 : 1, -a.health, a.fastest, a.target.name)
                < (b.freshness.freshness == .current ? 0 : 1, -b.health, b.fastest, b.target.name)
        }

        for target in config.targets where target.kind == .dockerhub {
            let mine = results.filter { $0.target == target.name }
            guard !mine.isEmpty else { continue }
            let fastestFirst = mine.filter(\.success).sorted { ($0.duration, $0.path) < ($1.duration, $1.path) }
            if let direct = fastestFirst.first(where: { isDirect($0.path) }) {
                s.dockerHubDirectOK[target.name] = direct.path
                continue
            }
            let directTried = mine.filter { isDirect($0.path) }
            let viaProxy = fastestFirst.first { if case .proxy = pathsByName[$0.path]?.kind { return true }; return false }
            if s.proxy == nil, !directTried.isEmpty, let viaProxy, let path = pathsByName[viaProxy.path],
               case .proxy(let url) = path.kind {
                s.proxy = ProxyAdvice(target: target.name, path: path, proxy: url, duration: viaProxy.duration,
                                      directFailures: directTried.compactMap { r in r.failure.map { "\(r.path): \($0.phase.rawValue)/\($0.reason.rawValue)" } })
            }
            if let other = fastestFirst.first {
                s.dockerHubOtherOK[target.name] = other.path
            } else {
                s.dockerHubUnreachable.append(target.name)
            }
        }
        return s
    }

    /// 0 when Docker can pull some way (Docker Hub answers on some path, or a mirror does), or
    /// when nothing Docker uses was probed; 1 when neither Docker Hub nor any mirror answered.
    public static func exitStatus(_ s: Suggestion) -> Int32 {
        let probedSomething = !s.mirrors.isEmpty || !s.failedMirrors.isEmpty || !s.behindMirrors.isEmpty || !s.dockerHubDirectOK.isEmpty
            || !s.dockerHubOtherOK.isEmpty || !s.dockerHubUnreachable.isEmpty
        let works = !s.mirrors.isEmpty || !s.dockerHubDirectOK.isEmpty || !s.dockerHubOtherOK.isEmpty
        return !probedSomething || works ? 0 : 1
    }

    /// The advice as a person reads it; the daemon.json fragment and the drop-in are ready to
    /// paste.
    public static func render(_ s: Suggestion, style: TerminalStyle = .plain) -> String {
        var out = ""
        // Mirrors.
        let behind = s.behindMirrors.map { m in
            "  Left out, behind: \(m.target.name) (\(m.freshness.detail)).\n"
        }.joined()
        if s.mirrors.isEmpty {
            if !s.behindMirrors.isEmpty {
                out += style.bold("Registry mirrors:") + " none up to date.\n" + behind
            } else if s.failedMirrors.isEmpty {
                out += style.bold("Registry mirrors:") + " none probed. Add candidate mirrors to the config as targets of kind \"mirror\" and run suggest again.\n"
            } else {
                out += style.bold("Registry mirrors:") + " " + style.red("none answered") + " (\(s.failedMirrors.joined(separator: ", "))): `egress-monitor check` says why.\n"
            }
        } else {
            out += style.bold("Registry mirrors that answered, up to date ones first, healthiest and fastest first:") + "\n"
            out += ValidateCommand.columns(s.mirrors.map { m in
                var note = "ok on \(m.okPaths.count) of \(m.probedPaths) path\(m.probedPaths == 1 ? "" : "s") (\(m.okPaths.joined(separator: ", "))), fastest \(Format.duration(m.fastest)) over \(m.fastestPath)"
                if !m.okDirect { note += "; not directly: Docker reaches it only through a proxy" }
                note += m.freshness.freshness == .current ? "; current: " : "; NOT COMPARED, freshness unknown: "
                note += m.freshness.detail
                return [m.target.name, m.target.url.description, note]
            }, indent: "  ")
            if !s.failedMirrors.isEmpty {
                out += "  Left out, answered on no path: \(s.failedMirrors.joined(separator: ", ")).\n"
            }
            out += behind
            out += "\nIn /etc/docker/daemon.json (merged with the keys already there), then restart Docker\n"
            out += "(sudo systemctl restart docker):\n\n"
            out += daemonJSON(s.mirrors.map(\.target.url.description))
        }

        // Docker Hub and the proxy.
        if let p = s.proxy {
            out += "\n" + style.bold("Docker Hub (\(p.target))") + " fails directly (\(p.directFailures.joined(separator: "; "))) but works through proxy path "
                + style.green(p.path.name) + " (\(Format.duration(p.duration))).\n"
            out += "To send Docker through that proxy, write \(dropInPath):\n\n"
            let scheme = dockerProxyScheme(p.proxy.scheme, docker: s.docker)
            out += dropIn(proxy: p.proxy, scheme: scheme.scheme,
                          noProxy: ["localhost", "127.0.0.1"] + s.mirrors.filter(\.okDirect).map(\.target.url.host))
            if let why = scheme.why { out += "\n\(why)\n" }
            if let user = p.proxy.username, p.proxy.password != nil {
                out += "\nReplace <password> with the password of \(user) on the proxy: egress-monitor never prints it.\n"
                out += "Environment= lines can be read by any local user (systemctl show docker); to keep the\n"
                out += "password private put the variables in a file of mode 600 named by EnvironmentFile= instead.\n"
            }
            out += "Then: sudo systemctl daemon-reload && sudo systemctl restart docker\n"
        }
        for (target, path) in s.dockerHubDirectOK.sorted(by: { $0.key < $1.key }) {
            out += "\nDocker Hub (\(target)) answers directly (path \(path)): Docker needs no proxy for it.\n"
        }
        for (target, path) in s.dockerHubOtherOK.sorted(by: { $0.key < $1.key }) where s.proxy?.target != target {
            out += "\nDocker Hub (\(target)) fails directly but answers over path \(path); no proxy path answered, so no drop-in can help: route Docker's traffic through that path (for a VPN interface, policy routing).\n"
        }
        for target in s.dockerHubUnreachable {
            out += "\n" + style.red("Docker Hub (\(target)) fails on every path probed") + (s.mirrors.isEmpty ? ".\n" : ": pull through the mirrors above.\n")
        }
        return out
    }

    /// `{"registry-mirrors": [...]}`, indented.
    static func daemonJSON(_ urls: [String]) -> String {
        "{\n  \"registry-mirrors\": [\n" + urls.map { "    \"\(jsonEscaped($0))\"" }.joined(separator: ",\n") + "\n  ]\n}\n"
    }

    /// The proxy scheme to write for the Docker in front of us, and why when it is not the one
    /// configured. Go's proxy code knew no `socks5h` before Go 1.23 (dockerd 20.10 is built
    /// with 1.19 and fails `proxyconnect tcp: dial tcp: lookup socks5h`), while its `socks5`
    /// has always let the proxy resolve names: so `socks5` unless Docker's Go is known to be
    /// 1.23 or later.
    public static func dockerProxyScheme(_ scheme: String, docker: Result<DockerEngineInfo, DockerEngineProblem>?) -> (scheme: String, why: String?) {
        guard scheme == "socks5h" else { return (scheme, nil) }
        let learned: String
        switch docker {
        case .success(let info)?:
            if let (major, minor) = info.goMajorMinor {
                if (major, minor) >= (1, 23) { return (scheme, nil) }
                return ("socks5", "socks5h:// written as socks5://: Docker \(info.version ?? "") is built with \(info.goVersion!), whose proxy code knows no socks5h (Go 1.23 added it as a synonym); in Go, socks5:// already lets the proxy resolve names.")
            }
            learned = "Docker did not say which Go it is built with"
        case .failure(let problem)?:
            learned = "Docker's Go version could not be learned (\(problem))"
        case nil:
            learned = "Docker's Go version was not asked"
        }
        return ("socks5", "socks5h:// written as socks5://: \(learned); Go before 1.23 rejects socks5h, and in Go socks5:// already lets the proxy resolve names.")
    }

    /// The drop-in that sends dockerd through `proxy`, with the password left for the user.
    static func dropIn(proxy: EndpointURL, scheme: String? = nil, noProxy: [String]) -> String {
        var url = proxyURLForDocker(proxy)
        if let scheme { url = scheme + url.drop { $0 != ":" } }
        return """
        [Service]
        Environment="HTTP_PROXY=\(url)"
        Environment="HTTPS_PROXY=\(url)"
        Environment="NO_PROXY=\(noProxy.uniqued().joined(separator: ","))"

        """
    }

    /// The proxy URL as configured, the password replaced by `<password>`, the port always
    /// written out.
    static func proxyURLForDocker(_ url: EndpointURL) -> String {
        var s = "\(url.scheme)://"
        if let user = url.username {
            s += percentEncoded(user)
            if url.password != nil { s += ":<password>" }
            s += "@"
        }
        s += url.host.contains(":") ? "[\(url.host)]" : url.host
        return s + ":\(url.port)"
    }

    /// Userinfo as a URL carries it: unreserved characters as they are, others %-encoded.
    static func percentEncoded(_ s: String) -> String {
        var out = ""
        for byte in s.utf8 {
            if byte.isASCIIAlnum || "-._~".utf8.contains(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
            }
        }
        return out
    }

    static func jsonEscaped(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if c.value < 0x20 { out += "\\u00" + (c.value < 16 ? "0" : "") + String(c.value, radix: 16) } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }
}
