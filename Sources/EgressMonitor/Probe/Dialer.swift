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

    func open(host: String, port: UInt16, resolverName: String?, run: ProbeRun) async throws(ProbeFailure) -> any ByteStream {
        let binding = Self.binding(for: run.path)
        switch run.path.kind {
        case .proxy(let proxy):
            throw ProbeFailure(.proxy, .proxyConnectFailed, "proxy paths (\(proxy)) are not supported by this build yet")
        case .direct, .interface, .sourceAddress:
            let resolver = resolverName.flatMap { n in resolvers.first { $0.name == n } } ?? .system
            let addresses: [IPAddress]
            if let literal = IPAddress(host) {
                addresses = [literal]
            } else {
                addresses = try await run.phase(.dns) { deadline throws(ProbeFailure) in
                    try await resolution.resolve(host, resolver: resolver, binding: binding, deadline: deadline)
                }
            }
            return try await run.phase(.connect) { deadline throws(ProbeFailure) in
                try await connect(addresses.map { SocketAddress(ip: $0, port: port) }, binding: binding,
                                  deadline: deadline, run: run)
            }
        }
    }

    /// Tries the addresses in order; each attempt gets an equal share of the time left, so one
    /// blackholed address cannot use up the whole phase. The last failure is the one reported.
    func connect(_ addresses: [SocketAddress], binding: SocketBinding, deadline: Deadline,
                 run: ProbeRun) async throws(ProbeFailure) -> Socket {
        var last = ProbeFailure(.connect, .tcpTimeout, "no address to connect to")
        for (i, address) in addresses.enumerated() {
            let share = deadline.remainingSeconds / Double(addresses.count - i)
            let attemptDeadline = deadline.capped(atSecondsFromNow: share)
            let socket: Socket
            do {
                socket = try binding.makeSocket(for: address)
            } catch {
                throw ProbeFailure(.connect, .pathSetupFailed, "cannot set up a socket for path \(run.path.name): \(error)")
            }
            do {
                try await socket.connect(to: address, deadline: attemptDeadline)
                socket.setNoDelay()
                run.address = address.description
                return socket
            } catch {
                socket.close()
                last = Self.failure(for: error, address: address)
                if case .cancelled = error { throw last }
            }
        }
        throw last
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
        case .protocolFailure, .system: return ProbeFailure(.connect, .netUnreachable, detail)
        }
    }
}
