import EgressNet

/// The whole configuration of an agent, validated. Built by `ConfigLoader` from JSON or from the
/// embedded default; every field here has passed validation.
public struct AgentConfig: Sendable, Equatable {
    /// Where the HTTP listener binds.
    public var listen: SocketAddress
    /// Seconds between the starts of two rounds of the same target × path pair.
    public var intervalSeconds: Double
    /// A probe's overall deadline, in seconds.
    public var timeoutSeconds: Double
    /// Each phase's own timeout, inside the overall deadline. Phases not named use the overall one.
    public var phaseTimeouts: [Phase: Double]
    /// At most this many probes run at once.
    public var concurrency: Int
    public var resolvers: [ResolverConfig]
    /// Registry credentials by host, from `credentials_file`; never printed.
    public var credentials = RegistryCredentials()
    public var paths: [EgressPath]
    public var targets: [Target]
    /// Which sources of proxies and mirrors are read at load (all, by default).
    public var discovery: DiscoverySettings
    /// The listener's TLS and basic auth.
    public var web = WebConfig()
    /// Commands run when the agent's view changes (`actions[]`; Act/ActionRunner.swift).
    public var actions: [ActionConfig] = []
    /// The files the agent keeps right (`manage`); nil: it only measures.
    public var manage: ManageConfig?
    /// Which duration histograms are exported, and their buckets (the `metrics` section).
    public var metrics = MetricsConfig()

    public init(listen: SocketAddress, intervalSeconds: Double, timeoutSeconds: Double,
                phaseTimeouts: [Phase: Double] = [:], concurrency: Int = ConfigDefaults.concurrency,
                resolvers: [ResolverConfig], paths: [EgressPath], targets: [Target],
                discovery: DiscoverySettings = .none) {
        self.listen = listen
        self.intervalSeconds = intervalSeconds
        self.timeoutSeconds = timeoutSeconds
        self.phaseTimeouts = phaseTimeouts
        self.concurrency = concurrency
        self.resolvers = resolvers
        self.paths = paths
        self.targets = targets
        self.discovery = discovery
    }

    /// The timeout of `phase`: its own if configured, never longer than the overall one.
    public func timeout(for phase: Phase) -> Double {
        min(phaseTimeouts[phase] ?? timeoutSeconds, timeoutSeconds)
    }

    public func resolver(named name: String) -> ResolverConfig? { resolvers.first { $0.name == name } }
    public func path(named name: String) -> EgressPath? { paths.first { $0.name == name } }

    /// Every target × path pair to probe, in config order.
    public var pairs: [(target: Target, path: EgressPath)] {
        targets.flatMap { target in
            paths.filter { target.paths?.contains($0.name) ?? true }.map { (target, $0) }
        }
    }

    /// Where a target's resolver cannot apply (`validate` prints it): through an HTTP proxy
    /// (CONNECT) or socks5h:// the proxy is sent the target's name and resolves it itself, as
    /// it does for `docker pull` through it (Go's client sends the name too), so the agent asks
    /// no resolver for the target there: neither the target's own nor the trusted one, so no
    /// dns_suspicious_answer either. (The proxy's own name is resolved by the system resolver.)
    public var resolverNotes: [String] {
        targets.compactMap { target -> String? in
            guard let name = target.resolver, name != ResolverConfig.system.name, IPAddress(target.url.host) == nil else { return nil }
            let remote = pairs.filter { $0.target.name == target.name }.compactMap { pair -> String? in
                guard case .proxy(let proxy) = pair.path.kind, proxy.scheme != "socks5" else { return nil }
                return pair.path.name
            }
            guard !remote.isEmpty else { return nil }
            let kind = resolver(named: name).map { " (\($0.kindName))" } ?? ""
            return "note: target \(target.name)'s resolver \(name)\(kind) is not asked on path\(remote.count == 1 ? "" : "s") \(remote.joined(separator: ", ")): "
                + "the proxy is sent the name and resolves it, as it does for docker pull"
        }
    }
}

public enum ConfigDefaults {
    public static let listen = SocketAddress(ip: IPAddress("0.0.0.0")!, port: 9469)
    public static let intervalSeconds: Double = 30
    public static let timeoutSeconds: Double = 10
    public static let concurrency = 64
    /// The image probed on Docker Hub when the config names none (issue 4 goes that deep).
    public static let dockerHubImage = "library/alpine:latest"
    public static let dockerHubRegistry = "https://registry-1.docker.io"
}

/// A DNS resolver: the system's (resolv.conf and /etc/hosts), one at an address (plain DNS),
/// or an encrypted one (DNS over TLS or HTTPS).
public struct ResolverConfig: Sendable, Equatable {
    public let name: String
    /// A plain resolver's address; nil for `system` and encrypted resolvers.
    public let address: SocketAddress?
    /// Answers from a trusted resolver are the reference other resolvers' answers are compared with.
    public let trusted: Bool
    /// DNS over TLS or HTTPS; nil for plain resolvers.
    public let encrypted: EncryptedResolver?

    public init(name: String, address: SocketAddress?, trusted: Bool = false, encrypted: EncryptedResolver? = nil) {
        self.name = name
        self.address = address
        self.trusted = trusted
        self.encrypted = encrypted
    }

    /// "system", "plain", "dot" or "doh" (what `validate` prints).
    public var kindName: String { encrypted?.kind.rawValue ?? (address == nil ? "system" : "plain") }

    /// Where the resolver is, for details and `validate`.
    public var location: String? {
        if let address { return address.description }
        guard let e = encrypted else { return nil }
        switch e.kind {
        case .dot: return e.connectAddress?.description
        case .doh: return e.url?.description
        }
    }

    public static let system = ResolverConfig(name: "system", address: nil)
}

/// A DNS-over-TLS (`"dot": "IP[:853]"`, `"tls_name"`) or DNS-over-HTTPS (`"doh":
/// "https://host[:port]/dns-query"`, optional `"address"`) resolver.
public struct EncryptedResolver: Sendable, Equatable {
    public enum Kind: String, Sendable { case dot, doh }
    public let kind: Kind
    /// DoT: the resolver's address. DoH: `address` with the URL's port, or nil when the URL's
    /// host is resolved by the system resolver.
    public let connectAddress: SocketAddress?
    /// The name its certificate must carry and SNI: DoT's `tls_name` (nil: the certificate must
    /// name the address), DoH's URL host.
    public let serverName: String?
    /// DoH's URL.
    public let url: EndpointURL?
    /// A CA bundle for its certificate; nil: the system's trust store.
    public let caFile: String?

    public init(kind: Kind, connectAddress: SocketAddress?, serverName: String?, url: EndpointURL? = nil, caFile: String? = nil) {
        self.kind = kind
        self.connectAddress = connectAddress
        self.serverName = serverName
        self.url = url
        self.caFile = caFile
    }

    /// The host and port a connection to it opens (an address, or the DoH URL's host).
    public var endpoint: (host: String, port: UInt16) {
        if let connectAddress { return (connectAddress.ip.description, connectAddress.port) }
        return (url?.host ?? "", url?.port ?? 443)
    }
}

/// A way out of the host.
public struct EgressPath: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case direct
        /// Sockets bound to this interface with SO_BINDTODEVICE (tun0, wg0).
        case interface(String)
        /// Sockets bound to this source address before connecting (policy routing).
        case sourceAddress(IPAddress)
        /// Through an HTTP CONNECT or SOCKS5 proxy.
        case proxy(EndpointURL)
    }

    public let name: String
    public let kind: Kind
    /// Where a discovered path came from ("environment", a file path); nil when configured.
    public let discoveredFrom: String?
    /// `"ip_family"`: the names this host resolves for the path are asked, and dialed, in this
    /// family only (nil: both, as Go's dialer). Through an HTTP proxy or socks5h:// the proxy
    /// resolves the target, so it pins only the proxy's own name.
    public let ipFamily: IPFamily?

    public init(name: String, kind: Kind, discoveredFrom: String? = nil, ipFamily: IPFamily? = nil) {
        self.name = name
        self.kind = kind
        self.discoveredFrom = discoveredFrom
        self.ipFamily = ipFamily
    }

    public static let direct = EgressPath(name: "direct", kind: .direct)

    /// Where `ip_family` cannot apply on this path (`validate` prints it): the proxy resolves
    /// the target's name itself, so only the proxy's own name is pinned, or nothing is.
    public var ipFamilyNote: String? {
        guard let family = ipFamily, case .proxy(let proxy) = kind else { return nil }
        if proxy.scheme == "socks5" { return nil }  // this host resolves the target: pinned
        let resolver = proxy.scheme == "socks5h" ? "the SOCKS5 proxy" : "the HTTP proxy"
        if proxy.ipLiteral != nil {
            return "note: ip_family \(family.rawValue) cannot apply: the proxy is an address and \(resolver) resolves the target itself"
        }
        return "note: ip_family pins only the proxy's own name; \(resolver) resolves the target itself"
    }
}

/// What a target is, which decides how deep its probe goes.
public enum TargetKind: String, Sendable, Equatable, CaseIterable {
    /// registry-1.docker.io with auth.docker.io tokens.
    case dockerhub
    /// A mirror of another registry (Docker Hub by default).
    case mirror
    /// A registry in its own right (Harbor, Nexus, a lab registry).
    case registry
    /// A TCP endpoint: probed up to connect.
    case tcp
    /// A TLS endpoint: probed up to the handshake.
    case tls
    /// An HTTPS URL: probed up to an HTTP answer below 400.
    case https

    /// Whether the probe speaks the registry API (`/v2/`).
    public var isRegistry: Bool { self == .dockerhub || self == .mirror || self == .registry }
}

/// A registry endpoint or plain endpoint to probe.
public struct Target: Sendable, Equatable {
    public let name: String
    public let kind: TargetKind
    public let url: EndpointURL
    /// CA bundle to trust instead of the system store.
    public let caFile: String?
    /// Name of the resolver to ask; nil for `system`.
    public let resolver: String?
    /// Images probed past `/v2/`: token, manifest, blob.
    public var images: [ImageReference]
    /// The paths this target is probed on; nil for all.
    public var paths: [String]?
    /// The config sections of the kinds (`Kinds/`); a target uses its own kind's.
    public var sections = KindSections()
    /// How deep and how often the registry phases go (`RegistryKind`'s section).
    public var registry: RegistryOptions {
        get { sections.registry }
        set { sections.registry = newValue }
    }
    /// A public host (Docker Hub, a public mirror): DNS answers in private, loopback,
    /// link-local or reserved ranges are then `dns_suspicious_answer`. Default: `dockerhub` only.
    public var isPublic: Bool
    /// Where a discovered target came from; nil when configured.
    public let discoveredFrom: String?

    public init(name: String, kind: TargetKind, url: EndpointURL, caFile: String? = nil, resolver: String? = nil,
                images: [ImageReference] = [], paths: [String]? = nil, discoveredFrom: String? = nil) {
        self.name = name
        self.kind = kind
        self.url = url
        self.caFile = caFile
        self.resolver = resolver
        self.images = images
        self.paths = paths
        self.discoveredFrom = discoveredFrom
        self.isPublic = kind == .dockerhub
    }

    /// Whether the probe needs TLS.
    public var usesTLS: Bool {
        switch kind {
        case .tcp: return false
        case .tls: return true
        default: return url.scheme == "https"
        }
    }
}

/// TLS and basic auth for the agent's own listener, as Prometheus's web config has them.
public struct WebConfig: Sendable, Equatable {
    public var tlsCertFile: String?
    public var tlsKeyFile: String?
    /// user → bcrypt hash (`htpasswd -nBC 10 user`, or Prometheus's own hashes).
    public var basicAuthUsers: [String: String] = [:]
    public init() {}
}

/// `[namespace/]name[:tag][@digest]`, as a registry path names it.
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// The repository path, `library/alpine`.
    public let repository: String
    /// A tag, or a digest (`sha256:...`).
    public let reference: String

    public var description: String {
        reference.contains(":") ? "\(repository)@\(reference)" : "\(repository):\(reference)"
    }

    /// Parses an image name. Docker Hub's official images get their `library/` prefix when
    /// `officialPrefix` is set (Docker Hub and its mirrors need it).
    public static func parse(_ text: String, officialPrefix: Bool) -> Result<ImageReference, URLProblem> {
        var name = Substring(text)
        var reference = "latest"
        if let at = name.firstIndex(of: "@") {
            let digest = name[name.index(after: at)...]
            let parts = digest.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty, parts[1].count >= 32,
                  parts[1].allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                return .failure(URLProblem("has an invalid digest \"\(digest)\""))
            }
            reference = String(digest)
            name = name[..<at]
        } else if let colon = name.lastIndex(of: ":"), !name[colon...].contains("/") {
            let tag = name[name.index(after: colon)...]
            guard (1...128).contains(tag.count), tag.first != ".", tag.first != "-",
                  tag.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }) else {
                return .failure(URLProblem("has an invalid tag \"\(tag)\""))
            }
            reference = String(tag)
            name = name[..<colon]
        }
        let components = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, components.allSatisfy({ c in
            !c.isEmpty && c.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || "._-".contains($0)) })
                && c.first!.isASCII && (c.first!.isLowercase || c.first!.isNumber)
        }) else {
            return .failure(URLProblem("has an invalid repository name \"\(name)\" (lower-case letters, digits, . _ - and /)"))
        }
        let repository = officialPrefix && components.count == 1 ? "library/\(name)" : String(name)
        return .success(ImageReference(repository: repository, reference: reference))
    }
}
