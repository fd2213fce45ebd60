import EgressNet

/// Opens a byte stream to a host and port over an egress path: the `dns` and `connect`
/// phases (and, on a proxy path, `proxy`). Every prober starts here.
struct Dialer {
    let resolution: NameResolution
    let resolvers: [ResolverConfig]

    /// The binding every socket of this path gets, DNS included.
    static func binding(for path: EgressPath) -> SocketBinding {
        switch path.kind {
        case .direct, .proxy: return .none
        case .interface(let name): return .interface(name)
        case .sourceAddress(let ip): return .sourceAddress(ip)
        }
    }

    /// A stream to `host`:`port` over the probe's path. `countedAs` is the phase this runs
    /// inside when it is a second connection (the token realm's, a CDN's): its steps are then
    /// counted as that phase (`ProbeRun.phase`). `pinned: false` ignores the path's
    /// `ip_family` (an encrypted resolver is reached in its own family, as a resolver in
    /// resolv.conf is).
    func open(host: String, port: UInt16, resolverName: String?, run: ProbeRun,
              countedAs outer: Phase?, pinned: Bool = true) async throws(ProbeFailure) -> any ByteStream {
        let binding = Self.binding(for: run.path)
        let family = pinned ? run.path.ipFamily : nil
        switch run.path.kind {
        case .proxy(let proxy):
            return try await openThroughProxy(proxy, host: host, port: port, resolverName: resolverName, run: run,
                                              countedAs: outer, family: family)
        case .direct, .interface, .sourceAddress:
            // A path that cannot be set up fails as such, before its DNS query (which follows
            // the path) could report the same cause as a resolver failure.
            do { try binding.check() } catch {
                throw Self.setupFailure(error, path: run.path)
            }
            let resolver = resolverName.flatMap { n in resolvers.first { $0.name == n } } ?? .system
            let addresses: [IPAddress]
            if let literal = IPAddress(host) {
                if pinned { try Self.checkFamily(of: literal, host: host, path: run.path) }
                addresses = [literal]
            } else {
                let trusted = resolvers.first { $0.trusted }
                let publicHost = host == run.target.url.host && run.target.isPublic
                addresses = try await run.phase(.dns, countedAs: outer) { deadline throws(ProbeFailure) in
                    try await resolution.resolveForProbe(host, resolver: resolver, trusted: trusted, publicHost: publicHost,
                                                         binding: binding, family: family, deadline: deadline,
                                                         opener: resolverOpener(run))
                }
            }
            return try await run.phase(.connect, countedAs: outer) { deadline throws(ProbeFailure) in
                try await connect(addresses.map { SocketAddress(ip: $0, port: port) }, binding: binding,
                                  deadline: deadline, run: run, records: outer == nil)
            }
        }
    }

    /// Through a proxy, in three steps, each in the phase named where it runs. What fails on the
    /// way to the proxy itself (its name, its port, its TLS) is the path's proxy being down:
    /// `proxy`/`proxy_connect_failed`, whichever phase was timing it.
    func openThroughProxy(_ proxy: EndpointURL, host: String, port: UInt16, resolverName: String?,
                          run: ProbeRun, countedAs outer: Phase?, family: IPFamily?) async throws(ProbeFailure) -> any ByteStream {
        // 1. dns: what this host must resolve itself: the proxy's name unless it is an IP
        //    literal, and for socks5:// the target's (socks5h:// and CONNECT send the name).
        var proxyAddresses = proxy.ipLiteral.map { [$0] } ?? []
        var targetAddress = IPAddress(host)
        let resolveProxy = proxyAddresses.isEmpty
        let resolveTarget = proxy.scheme == "socks5" && targetAddress == nil
        if resolveProxy || resolveTarget {
            let resolver = resolverName.flatMap { n in resolvers.first { $0.name == n } } ?? .system
            try await run.phase(.dns, countedAs: outer) { deadline throws(ProbeFailure) in
                if resolveProxy {
                    do throws(ProbeFailure) {
                        proxyAddresses = try await resolution.resolve(proxy.host, resolver: .system, binding: .none,
                                                                      family: family, deadline: deadline)
                    } catch {
                        throw ProbeFailure(.proxy, .proxyConnectFailed, "cannot resolve the proxy \(proxy): \(error.detail)")
                    }
                }
                if resolveTarget {
                    targetAddress = try await resolution.resolveForProbe(
                        host, resolver: resolver, trusted: resolvers.first { $0.trusted },
                        publicHost: host == run.target.url.host && run.target.isPublic, binding: .none,
                        family: family, deadline: deadline, opener: resolverOpener(run)).first
                }
            }
        }
        // 2. connect: to the proxy.
        let socket: Socket
        do throws(ProbeFailure) {
            socket = try await run.phase(.connect, countedAs: outer) { deadline throws(ProbeFailure) in
                try await connect(proxyAddresses.map { SocketAddress(ip: $0, port: proxy.port) }, binding: .none,
                                  deadline: deadline, run: run, records: outer == nil)
            }
        } catch {
            throw ProbeFailure(.proxy, .proxyConnectFailed, "cannot reach the proxy \(proxy): \(error.detail)")
        }
        // The family toward the target where this host knows it (socks5://), else the proxy's.
        if let targetAddress, outer == nil { run.ipProtocol = IPFamily(of: targetAddress).number }
        // 3. proxy: TLS to an https:// proxy, then the CONNECT or SOCKS5 exchange.
        let destination: SOCKS5Tunnel.Destination = targetAddress.map { .address($0) } ?? .name(host)
        return try await run.phase(.proxy, countedAs: outer) { deadline throws(ProbeFailure) in
            let toProxy: any ByteStream
            do throws(ProbeFailure) {
                toProxy = try await proxyTLS(over: socket, proxy: proxy, deadline: deadline)
            } catch {
                socket.close()
                throw error
            }
            do throws(ProxyError) {
                return try await Self.tunnel(over: toProxy, proxy: proxy, destination: destination, host: host, port: port,
                                             deadline: deadline)
            } catch {
                toProxy.close()
                throw Self.failure(for: error, proxy: proxy)
            }
        }
    }

    /// TLS to an https:// proxy (trusted as the system trusts); the socket itself for others.
    private func proxyTLS(over socket: Socket, proxy: EndpointURL, deadline: Deadline) async throws(ProbeFailure) -> any ByteStream {
        guard proxy.scheme == "https" else { return socket }
        do {
            let context = try TLSContext.client(caFile: nil)
            return try await TLSConnection.handshake(over: socket, context: context,
                                                     serverName: proxy.ipLiteral == nil ? proxy.host : nil,
                                                     ipAddress: proxy.ipLiteral, deadline: deadline)
        } catch {
            throw ProbeFailure(.proxy, .proxyConnectFailed, "TLS to the proxy \(proxy): \(error)")
        }
    }

    /// The SOCKS5 or CONNECT exchange that turns the stream to the proxy into one to the target.
    private static func tunnel(over toProxy: any ByteStream, proxy: EndpointURL, destination: SOCKS5Tunnel.Destination,
                               host: String, port: UInt16, deadline: Deadline) async throws(ProxyError) -> any ByteStream {
        let credentials = proxy.username.map { ProxyCredentials(username: $0, password: proxy.password ?? "") }
        switch proxy.scheme {
        case "socks5", "socks5h":
            return try await SOCKS5Tunnel.open(over: toProxy, to: destination, port: port,
                                               credentials: credentials, deadline: deadline)
        default:
            let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            return try await HTTPConnectTunnel.open(over: toProxy, authority: authority,
                                                    credentials: credentials, deadline: deadline)
        }
    }

    static func failure(for error: ProxyError, proxy: EndpointURL) -> ProbeFailure {
        let detail = "proxy \(proxy): \(error)"
        switch error {
        case .authRequired: return ProbeFailure(.proxy, .proxyAuthRequired, detail)
        case .refused: return ProbeFailure(.proxy, .proxyRefused, detail)
        case .socks: return ProbeFailure(.proxy, .socksError, detail)
        // The exchange did not finish (no answer by the deadline, reset): the proxy did not
        // answer, whatever its protocol. socks_error is for a proxy that broke SOCKS5.
        case .failed: return ProbeFailure(.proxy, .proxyConnectFailed, detail)
        }
    }

    /// Connections to an encrypted resolver follow the probe's path like the probe's own
    /// (binding, proxy), their steps counted in the `dns` phase that asks.
    func resolverOpener(_ run: ProbeRun) -> ResolverStreamOpener {
        { host, port throws(ProbeFailure) in
            try await open(host: host, port: port, resolverName: nil, run: run, countedAs: .dns, pinned: false)
        }
    }

    /// Dials as Go's net.Dialer does (``HappyEyeballs``: RFC 6724 order, the other family 300 ms
    /// later, first connection wins). With `records`, the address that won and its family become
    /// the probe's `address` and `ip_protocol`: only for the probe's first connection to its
    /// target (`countedAs: nil`). The others (an encrypted resolver's, the token realm's, a
    /// CDN's, a reopened registry connection) say nothing about how the target was reached, and
    /// a realm or CDN on another family must not turn an IPv4 probe into an IPv6 one.
    func connect(_ addresses: [SocketAddress], binding: SocketBinding, deadline: Deadline,
                 run: ProbeRun, records: Bool) async throws(ProbeFailure) -> Socket {
        do {
            let dialed = try await HappyEyeballs(binding: binding).connect(addresses, deadline: deadline)
            if records {
                run.address = dialed.address.description
                run.ipProtocol = IPFamily(of: dialed.address.ip).number
            }
            return dialed.socket
        } catch {
            switch error {
            case .setup(let e): throw Self.setupFailure(e, path: run.path)
            case .noSuitableAddress(let why):
                throw ProbeFailure(.connect, .pathSetupFailed, "cannot connect over path \(run.path.name): \(why)")
            case .connect(let address, let e): throw Self.failure(for: e, address: address)
            }
        }
    }

    /// A literal address of the family the path is not pinned to fails before any packet.
    static func checkFamily(of literal: IPAddress, host: String, path: EgressPath) throws(ProbeFailure) {
        guard let family = path.ipFamily, !family.contains(literal) else { return }
        throw ProbeFailure(.dns, .dnsNoAddress, "\(host) is not an \(family == .ipv4 ? "IPv4" : "IPv6") address, and path \(path.name) is pinned to \(family.rawValue)")
    }

    static func failure(for error: NetError, address: SocketAddress) -> ProbeFailure {
        let detail = "connect to \(address): \(error)"
        switch error {
        case .timedOut: return ProbeFailure(.connect, .tcpTimeout, detail)
        case .refused: return ProbeFailure(.connect, .tcpRefused, detail)
        case .reset, .closed: return ProbeFailure(.connect, .tcpReset, detail)
        case .networkUnreachable: return ProbeFailure(.connect, .netUnreachable, detail)
        case .hostUnreachable: return ProbeFailure(.connect, .hostUnreachable, detail)
        case .permissionDenied: return ProbeFailure(.connect, .pathSetupFailed, detail)
        case .cancelled: return ProbeFailure(.connect, .tcpTimeout, detail)
        // What NetError.from leaves as .system is not the network's answer (that is refused,
        // reset, unreachable or timed out): it is this host that could not connect, most often
        // for want of descriptors, buffers or local ports (EADDRNOTAVAIL).
        case .protocolFailure, .system: return ProbeFailure(.connect, .localResourceExhausted, detail)
        }
    }

    /// A socket for the path could not be made: this host's shortage (EMFILE...) or the path's
    /// own setup (a missing interface, a source address that is not local, no CAP_NET_RAW).
    static func setupFailure(_ error: NetError, path: EgressPath) -> ProbeFailure {
        let detail = "cannot set up a socket for path \(path.name): \(error)"
        return ProbeFailure(.connect, error.isLocalResourceShortage ? .localResourceExhausted : .pathSetupFailed, detail)
    }
}
