/// What a failure reason means to the person reading `check` or the status page, and what to
/// try. Written in the problem's words: a TLS reset right after the ClientHello is "typical of
/// SNI filtering", not "ECONNRESET in SSL_connect".
public struct Hint: Sendable, Equatable {
    /// The reason in words: what happened and what usually causes it.
    public let meaning: String
    /// What to change or try next.
    public let advice: String

    public init(meaning: String, advice: String) {
        self.meaning = meaning
        self.advice = advice
    }

    /// Meaning and advice as one line, for the JSON.
    public var text: String { "\(meaning) Try: \(advice)" }
}

/// The one table of hints, keyed by failure reason. Every `FailureReason` has an entry
/// (`ReportTests` checks it); a reason added without one gets `fallback` until it does.
public enum Hints {
    public static func hint(for reason: FailureReason) -> Hint {
        table[reason] ?? fallback
    }

    /// The hint of one failure: its reason's, except where the failure carries what it rests on
    /// (`dns_suspicious_answer`), whose hint then says what was proven and names the answers.
    public static func hint(for failure: ProbeFailure) -> Hint {
        guard failure.reason == .dnsSuspiciousAnswer, let evidence = failure.evidence else { return hint(for: failure.reason) }
        return suspiciousAnswer(evidence)
    }

    /// What a suspicious answer proves depends on what contradicted it. Only an answer that
    /// travelled encrypted is out of an on-path injector's reach (the injector answers plain
    /// queries first, to any resolver); a bogon proves the answer false but not who forged it.
    static func suspiciousAnswer(_ evidence: PoisonEvidence) -> Hint {
        let remote = "a proxy path that resolves at the proxy (socks5h://, or an HTTP CONNECT proxy, which is sent the name)"
        switch evidence {
        case .impossibleAddress(let host, let resolver, let answer, let publicHost):
            let which = publicHost ? "an address a public host cannot have (private, loopback, link-local or reserved)"
                : "an address no host can be reached at"
            return Hint(
                meaning: "\(resolver) answered \(answer.joined(separator: ", ")) for \(host): \(which). That proves the answer false (DNS poisoning, or a filtering resolver sinkholing the name), not who forged it: nothing here says what the true address is.",
                advice: "mark an encrypted resolver (dot or doh) trusted to learn the true answer and prove where it was forged; meanwhile use \(remote), or a mirror.")
        case .disagreement(let d):
            let got = "\(d.resolver) (\(d.resolverTransport)) answered \(d.answer.joined(separator: ", "))"
            let truth = "\(d.trusted) (\(d.trustedTransport)) answered \(d.trustedAnswer.joined(separator: ", "))"
            let hosts = "an /etc/hosts entry (\(d.trustedAnswer.first ?? "") \(d.host)) on this host for dockerd"
            if d.trustedEncrypted && !d.resolverEncrypted {
                return Hint(
                    meaning: "Poisoning proven, not suspected: for \(d.host), \(got), contradicted by the trusted \(truth), an answer that travelled encrypted, out of an on-path injector's reach. The plain answer was injected on the way or \(d.resolver) lies.",
                    advice: "resolve \(d.host) with \(d.trusted) (the target's resolver; for dockerd, a local stub that forwards over \(d.trustedTransport)), or use \(remote), or \(hosts).")
            }
            if d.trustedEncrypted {
                return Hint(
                    meaning: "Two encrypted resolvers disagree for \(d.host): \(got); the trusted \(truth). Neither answer can have been injected on the way, so \(d.resolver) itself answers otherwise (it filters the name, or a CDN gives it other addresses).",
                    advice: "resolve \(d.host) with \(d.trusted), or use \(remote), or \(hosts).")
            }
            return Hint(
                meaning: "The answers disagree for \(d.host): \(got); the trusted \(truth). Both travelled as plain DNS, which an on-path injector can answer first for any resolver, so this is a suspicion, not a proof: either answer may be forged, and a CDN may answer differently per resolver.",
                advice: "make the trusted resolver a DNS over TLS or HTTPS one (dot, doh) to prove it; meanwhile use \(remote), or \(hosts).")
        }
    }

    static let fallback = Hint(
        meaning: "The probe failed in a way this version has no explanation for yet.",
        advice: "read the detail; compare with the other paths of this target.")

    static let table: [FailureReason: Hint] = [
        // dns
        .dnsNXDomain: Hint(
            meaning: "The resolver says the name does not exist (NXDOMAIN).",
            advice: "check the host name in the URL; if it resolves elsewhere, this resolver filters it: use another resolver or a socks5h:// proxy path, which resolves at the proxy."),
        .dnsServFail: Hint(
            meaning: "The resolver failed to find an answer (SERVFAIL): its upstream is failing or refusing it.",
            advice: "use another resolver, or a socks5h:// proxy path, which resolves at the proxy."),
        .dnsRefused: Hint(
            meaning: "The resolver refused to answer (REFUSED): it does not serve this client or this name.",
            advice: "check the resolver's address; use a resolver that recurses for this host."),
        .dnsTimeout: Hint(
            meaning: "No DNS answer came before the timeout: the resolver is down, or queries to it are dropped on this path.",
            advice: "check that this path reaches the resolver (UDP and TCP port 53); try another resolver."),
        .dnsNoAddress: Hint(
            meaning: "The name exists but has no address (no A or AAAA record).",
            advice: "check the host name in the URL; the registry may be published under another name."),
        .dnsSuspiciousAnswer: Hint(
            meaning: "The DNS answer looks poisoned: a bogon or unroutable address, or answers that disagree across resolvers the way DNS poisoning makes them.",
            advice: "do not trust this resolver for this name: use a trusted resolver, a socks5h:// proxy path (the proxy resolves), or a mirror."),
        .dnsError: Hint(
            meaning: "The resolver could not be asked, or its answer could not be read (unreachable resolver, malformed or mismatched answer).",
            advice: "check the resolver's address and that this path reaches it."),
        // connect
        .tcpTimeout: Hint(
            meaning: "The TCP connect got no answer before the timeout: packets to this address are dropped (a blocked IP, a firewall, a black-holed route).",
            advice: "if another path connects, the block is on this one: use that path. Otherwise check the address and port."),
        .tcpRefused: Hint(
            meaning: "The connection was refused: nothing listens on that port, or a firewall rejects it.",
            advice: "check the port in the URL and that the service runs."),
        .tcpReset: Hint(
            meaning: "The connection was reset while it was being set up: something on the way actively rejects connections to this address.",
            advice: "use another path for this target (a proxy or VPN that gets past the block)."),
        .netUnreachable: Hint(
            meaning: "There is no route to that network from this path (network unreachable).",
            advice: "check the path's routing: an interface that is down, no default route, or no IPv6 route for an IPv6 address."),
        .hostUnreachable: Hint(
            meaning: "The host is unreachable: no neighbour answered, or a router sent host-unreachable.",
            advice: "check the address and the path's routing."),
        .pathSetupFailed: Hint(
            meaning: "The socket could not be set up for this path: the interface is missing or down, the source address is not on this host, or the agent lacks CAP_NET_RAW to bind to an interface.",
            advice: "fix the path's interface or source_address in the config, or give the agent CAP_NET_RAW (AmbientCapabilities= in its unit)."),
        .localResourceExhausted: Hint(
            meaning: "The fault is on this host, not the network: the agent could not open or connect a socket for want of file descriptors, memory, socket buffers or local ports (EMFILE, ENFILE, ENOBUFS, EADDRNOTAVAIL).",
            advice: "raise the agent's descriptor limit (LimitNOFILE= in its unit), lower probe concurrency, or look for what else on this host uses up descriptors or ports."),
        // proxy
        .proxyConnectFailed: Hint(
            meaning: "The proxy could not be reached, or did not answer.",
            advice: "check that the proxy runs and listens at the configured address (Clash and v2ray usually listen on 127.0.0.1:7890)."),
        .proxyAuthRequired: Hint(
            meaning: "The proxy wants credentials (HTTP 407, or SOCKS5 user and password refused).",
            advice: "put user:password in the proxy URL, or check the ones there."),
        .proxyRefused: Hint(
            meaning: "The proxy refused to connect to the target (CONNECT not answered 2xx, or a SOCKS5 failure reply): its rules or its own way out block this host.",
            advice: "check the proxy's rules or allowlist for this host and port, and the proxy's own upstream."),
        .socksError: Hint(
            meaning: "The SOCKS5 exchange failed: the server does not speak SOCKS5, or broke the protocol.",
            advice: "check the proxy URL's scheme: http:// for an HTTP proxy, socks5:// or socks5h:// for SOCKS5."),
        // tls
        .tlsTimeout: Hint(
            meaning: "No answer to the TLS ClientHello before the timeout: the handshake is silently dropped, typical of SNI filtering that black-holes.",
            advice: "use another path for this target (a proxy or VPN that gets past the filter), or a mirror."),
        .tlsReset: Hint(
            meaning: "The TLS handshake was reset right after the ClientHello: typical of SNI filtering on this path.",
            advice: "use another path for this target (a proxy or VPN that gets past the filter), or a mirror."),
        .tlsCertUntrusted: Hint(
            meaning: "The server's certificate is not trusted: a self-signed or private CA, or something on this path intercepting TLS.",
            advice: "for a private registry, set ca_file to its CA; if a public registry shows this, do not trust this path."),
        .tlsCertExpired: Hint(
            meaning: "The server's certificate has expired, or is not valid yet.",
            advice: "check this host's clock; otherwise tell the registry's operator."),
        .tlsHostnameMismatch: Hint(
            meaning: "The certificate does not name the host in the URL: another server answered (a poisoned DNS answer or a hijack), or the URL uses a name the certificate lacks.",
            advice: "check the URL's host against the certificate, and compare the DNS answers of other resolvers."),
        .tlsProtocolError: Hint(
            meaning: "The TLS handshake failed on the protocol: no version or cipher in common, or the server does not speak TLS on that port.",
            advice: "check the URL's scheme and port (https:// to a plain-HTTP port?)."),
        // http, auth, manifest, blob
        .httpTimeout: Hint(
            meaning: "The request went out but no complete answer came before the timeout: the server or this path is overloaded or throttled.",
            advice: "use another path or mirror, or raise phase_timeouts_seconds for this phase."),
        .httpReset: Hint(
            meaning: "The connection was reset or closed in the middle of the HTTP exchange: cut on the way, or the server failed.",
            advice: "try another path; if every path shows it, the server is at fault."),
        .httpBadResponse: Hint(
            meaning: "The answer was not valid HTTP.",
            advice: "check the URL's scheme and port."),
        .httpNotRegistry: Hint(
            meaning: "Something answered, but not as a registry: a captive portal, a web page, or a redirect away.",
            advice: "log in to the network's captive portal, or point the URL at the registry's API endpoint."),
        .httpUnauthorized: Hint(
            meaning: "The registry answered 401 without saying how to authenticate.",
            advice: "the registry wants credentials the agent lacks, or its auth is misconfigured."),
        .httpForbidden: Hint(
            meaning: "The registry answered 403: it refuses this client (public mirrors often serve only their own cloud's networks or an allowlist).",
            advice: "use a mirror that serves this network, or authenticate."),
        .httpNotFound: Hint(
            meaning: "The registry answered 404: the endpoint or the image is not there.",
            advice: "check the URL and the image name; a mirror may not carry this image."),
        .httpRateLimited: Hint(
            meaning: "Too many requests (429): the anonymous pull quota is exhausted.",
            advice: "authenticate (docker login) for a higher quota, or use a mirror."),
        .httpServerError: Hint(
            meaning: "The registry answered with a server error (5xx): it is failing.",
            advice: "use another mirror or path until it recovers."),
        .httpUnexpectedStatus: Hint(
            meaning: "The registry answered with a status a registry does not use here.",
            advice: "check the URL; the detail has the status."),
        .blobTooSlow: Hint(
            meaning: "Layers download too slowly on this path: pulls of large images will crawl.",
            advice: "use a faster path or mirror for large images."),
    ]
}
