import EgressNet
import EgressSync

/// Turns a target's host name into addresses the way the configured resolver says: the system
/// one reads /etc/hosts then asks the nameservers of /etc/resolv.conf (as Docker's resolver
/// does); a named one asks its address directly. Queries follow the path's binding, except to a
/// resolver on loopback (a local stub), which is asked directly (DNSClient does that).
/// Opens a stream to an encrypted resolver's host and port over the probe's path (the Dialer,
/// its steps counted in the `dns` phase).
public typealias ResolverStreamOpener = (_ host: String, _ port: UInt16) async throws(ProbeFailure) -> any ByteStream

public final class NameResolution: Sendable {
    private struct SystemFiles {
        var resolvConf: ResolvConf
        var hosts: HostsFile
        var loadedAt: UInt64
    }

    private let resolvConfPath: String
    private let hostsPath: String
    private let cache: Mutex<SystemFiles?> = Mutex(nil)
    /// How long the system files are trusted before being read again.
    private let refreshNanoseconds: UInt64 = 5_000_000_000

    public init(resolvConfPath: String = "/etc/resolv.conf", hostsPath: String = "/etc/hosts") {
        self.resolvConfPath = resolvConfPath
        self.hostsPath = hostsPath
    }

    private func systemFiles() -> SystemFiles {
        let now = MonotonicClock.nanoseconds()
        if let cached = cache.withLock({ $0 }), now - cached.loadedAt < refreshNanoseconds { return cached }
        let fresh = SystemFiles(resolvConf: ResolvConf.load(path: resolvConfPath),
                                hosts: HostsFile.load(path: hostsPath), loadedAt: now)
        cache.withLock { $0 = fresh }
        return fresh
    }

    /// Resolves `host` for a probe and judges the answer (`dns_suspicious_answer`):
    ///
    /// - an address no host can be reached at — 0.0.0.0/8 or `::` — is suspicious for any
    ///   target; for a target marked public, so is anything in loopback, link-local, private
    ///   (RFC 1918, CGNAT, ULA), multicast or reserved/documentation ranges: a poisoned answer;
    /// - when a resolver is marked `trusted` (none is by default), it is asked too, over the
    ///   same path, and an answer sharing no address with the trusted one is suspicious.
    ///   (Large CDNs answer differently per resolver, so only an opt-in trusted resolver is
    ///   compared, and only complete disagreement counts.)
    public func resolveForProbe(_ host: String, resolver: ResolverConfig, trusted: ResolverConfig?,
                                publicHost: Bool, binding: SocketBinding, family: IPFamily? = nil,
                                deadline: Deadline, opener: ResolverStreamOpener? = nil) async throws(ProbeFailure) -> [IPAddress] {
        let addresses = try await resolve(host, resolver: resolver, binding: binding, family: family, deadline: deadline, opener: opener)
        let bad = addresses.filter { publicHost ? $0.isBogonForPublicHost || $0.isUnspecified : $0.isUnspecified }
        if !bad.isEmpty {
            throw ProbeFailure(.dns, .dnsSuspiciousAnswer,
                               "\(host) resolved to \(bad.map(\.description).joined(separator: ", ")), which \(publicHost ? "a public host cannot have" : "no host can be reached at") (poisoned answer?)",
                               evidence: .impossibleAddress(host: host, resolver: resolver.name, answer: bad.map(\.description),
                                                            publicHost: publicHost))
        }
        if let trusted, trusted.name != resolver.name,
           let reference = try? await resolve(host, resolver: trusted, binding: binding, family: family, deadline: deadline, opener: opener),
           !reference.isEmpty, Set(reference).isDisjoint(with: addresses) {
            let answered = addresses.map(\.description).joined(separator: ", ")
            let truth = reference.map(\.description).joined(separator: ", ")
            // An answer that came encrypted is out of an on-path injector's reach: the plain
            // one was forged on the way. Over plain DNS both could be the injector's.
            let proven = trusted.encrypted != nil && resolver.encrypted == nil
                ? ": the trusted answer came over \(trusted.kindName == "dot" ? "DNS over TLS" : "DNS over HTTPS"), out of an injector's reach, so the plain answer was forged on the way (use \(trusted.name) for this name, or a path that avoids the injector)"
                : ": no address in common (poisoned answer?)"
            let evidence = PoisonEvidence.disagreement(PoisonEvidence.Disagreement(
                host: host, resolver: resolver.name, resolverTransport: resolver.transportName, answer: addresses.map(\.description),
                trusted: trusted.name, trustedTransport: trusted.transportName, trustedAnswer: reference.map(\.description)))
            throw ProbeFailure(.dns, .dnsSuspiciousAnswer,
                               "\(host): \(resolver.name) answered \(answered), trusted resolver \(trusted.name) answered \(truth)\(proven)",
                               disagreeingResolver: resolver.name, evidence: evidence)
        }
        return addresses
    }

    /// Resolves `host` with `resolver`; with a `family`, to addresses of that family only.
    public func resolve(_ host: String, resolver: ResolverConfig, binding: SocketBinding, family: IPFamily? = nil,
                        deadline: Deadline, opener: ResolverStreamOpener? = nil) async throws(ProbeFailure) -> [IPAddress] {
        if let encrypted = resolver.encrypted {
            return try await resolveEncrypted(host, resolver: resolver, encrypted, family: family, deadline: deadline, opener: opener)
        }
        let client: DNSClient
        if let address = resolver.address {
            client = DNSClient(servers: [address], timeoutPerTry: 2, attempts: 2, binding: binding)
        } else {
            let files = systemFiles()
            let fromHosts = files.hosts.addresses(for: host).filter { family?.contains($0) ?? true }
            if !fromHosts.isEmpty { return fromHosts }
            client = DNSClient(servers: files.resolvConf.nameservers.map { SocketAddress(ip: $0, port: 53) },
                               timeoutPerTry: Double(files.resolvConf.timeoutSeconds),
                               attempts: files.resolvConf.attempts, binding: binding)
        }
        do {
            return try await client.resolve(host, family: family, deadline: deadline)
        } catch {
            throw Self.failure(for: error, host: host, resolver: resolver, family: family)
        }
    }

    /// Over DNS over TLS or HTTPS: the connection opened by `opener` (over the path), the TLS
    /// handshake and the questions by EncryptedDNSClient.
    private func resolveEncrypted(_ host: String, resolver: ResolverConfig, _ encrypted: EncryptedResolver, family: IPFamily?,
                                  deadline: Deadline, opener: ResolverStreamOpener?) async throws(ProbeFailure) -> [IPAddress] {
        guard let opener else {
            throw ProbeFailure(.dns, .dnsError, "\(host): resolver \(resolver.name) is encrypted and cannot be asked from here")
        }
        let context: TLSContext
        do { context = try TLSContext.client(caFile: encrypted.caFile) } catch {
            throw ProbeFailure(.dns, .dnsError, "\(host): resolver \(resolver.name): cannot load its CA file: \(error)")
        }
        let transport: EncryptedDNSProtocol
        switch encrypted.kind {
        case .dot: transport = .tls
        case .doh: transport = .https(host: encrypted.url.map { $0.port == 443 ? $0.host : $0.authority } ?? "", path: encrypted.url?.path ?? "/dns-query")
        }
        let client = EncryptedDNSClient(transport: transport, context: context, serverName: encrypted.serverName,
                                        serverAddress: encrypted.connectAddress?.ip ?? encrypted.url?.ipLiteral)
        let endpoint = encrypted.endpoint
        do {
            return try await client.resolve(host, family: family, deadline: deadline) { _ throws(DNSLookupError) in
                do throws(ProbeFailure) {
                    return try await opener(endpoint.host, endpoint.port)
                } catch {
                    if error.reason == .tcpTimeout || error.reason == .dnsTimeout { throw DNSLookupError.timeout }
                    throw DNSLookupError.transport("cannot connect: \(error.detail)")
                }
            }
        } catch {
            throw Self.failure(for: error, host: host, resolver: resolver, family: family)
        }
    }

    static func failure(for error: DNSLookupError, host: String, resolver: ResolverConfig, family: IPFamily? = nil) -> ProbeFailure {
        let who = resolver.location.map { "\(resolver.encrypted == nil ? "resolver" : resolver.kindName == "dot" ? "DoT resolver" : "DoH resolver") \(resolver.name) (\($0))" }
            ?? "the system resolver"
        var detail = "\(host) via \(who): \(error)"
        if let family, error == .noAddress {
            detail = "\(host) via \(who): the name has no \(family == .ipv4 ? "A" : "AAAA") record, and the path is pinned to \(family.rawValue)"
        }
        switch error {
        case .nxdomain: return ProbeFailure(.dns, .dnsNXDomain, detail)
        case .servfail: return ProbeFailure(.dns, .dnsServFail, detail)
        case .refused: return ProbeFailure(.dns, .dnsRefused, detail)
        case .timeout: return ProbeFailure(.dns, .dnsTimeout, detail)
        case .noAddress: return ProbeFailure(.dns, .dnsNoAddress, detail)
        // No socket for the query (EMFILE...): this host's trouble, not the resolver's.
        case .network(let e) where e.isLocalResourceShortage: return ProbeFailure(.dns, .localResourceExhausted, detail)
        case .malformed, .network, .transport: return ProbeFailure(.dns, .dnsError, detail)
        }
    }
}

/// What a `dns_suspicious_answer` verdict rests on, and so what it proves (its hint says it).
public enum PoisonEvidence: Sendable, Equatable {
    /// The answer holds an address the host cannot have (0.0.0.0, `::`; for a public target a
    /// private, loopback or reserved one): the answer is wrong, whoever forged it.
    case impossibleAddress(host: String, resolver: String, answer: [String], publicHost: Bool)
    /// The `trusted` resolver's answer shares no address with the one the probe got.
    case disagreement(Disagreement)

    public struct Disagreement: Sendable, Equatable {
        public let host: String
        public let resolver: String
        /// "plain DNS", "DNS over TLS", "DNS over HTTPS" (the system resolver is plain).
        public let resolverTransport: String
        public let answer: [String]
        public let trusted: String
        public let trustedTransport: String
        public let trustedAnswer: [String]

        /// The trusted answer travelled encrypted: an on-path injector could not have forged it.
        public var trustedEncrypted: Bool { trustedTransport != ResolverConfig.plainTransportName }
        public var resolverEncrypted: Bool { resolverTransport != ResolverConfig.plainTransportName }
    }
}

extension ResolverConfig {
    static let plainTransportName = "plain DNS"

    /// How its queries travel, in words.
    var transportName: String {
        switch encrypted?.kind {
        case .dot?: return "DNS over TLS"
        case .doh?: return "DNS over HTTPS"
        case nil: return Self.plainTransportName
        }
    }
}
