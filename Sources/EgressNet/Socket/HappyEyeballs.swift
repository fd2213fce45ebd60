/// An address family a path may be pinned to (`"ip_family"` in the config).
public enum IPFamily: String, Sendable, Equatable, CaseIterable {
    case ipv4
    case ipv6

    /// Whether `address` is of this family.
    public func contains(_ address: IPAddress) -> Bool { (self == .ipv4) == address.isIPv4 }

    /// 4 or 6, as blackbox_exporter's `probe_ip_protocol`.
    public var number: Int { self == .ipv4 ? 4 : 6 }

    public init(of address: IPAddress) { self = address.isIPv4 ? .ipv4 : .ipv6 }
}

/// Why a dial failed.
public enum DialError: Error, Sendable, Equatable {
    /// No socket could be made for the path: the binding cannot be applied, or this host is
    /// short of descriptors or buffers. Not the network's answer.
    case setup(NetError)
    /// None of the addresses fits the binding (a source address of the other family).
    case noSuitableAddress(String)
    /// Every attempt failed; this is the first failure of the family tried first (Go reports
    /// the primaries' first error).
    case connect(SocketAddress, NetError)
}

/// Dials a list of addresses as Go's `net.Dialer` does, which is what dockerd and containerd do
/// (`dialParallel`, `dialSerial`, `partialDeadline` in Go's src/net/dial.go; RFC 6555/8305):
///
/// - the addresses are sorted by RFC 6724 (``AddressSelection``), then split into primaries (the
///   family of the first address) and fallbacks (the other family), each in that order;
/// - the primaries are tried one after another; the fallbacks start `fallbackDelay` (300 ms)
///   after the first attempt, or at once when the primaries have all failed before then;
/// - within one family, each attempt gets an equal share of the time left, but at least 2 s
///   when that much is left (`partialDeadline`): a blackholed first address cannot use it all;
/// - the first connection wins; the racing attempt is cancelled and a connection it may have
///   made meanwhile is closed, so no descriptor outlives the dial.
public struct HappyEyeballs: Sendable {
    /// Go's `FallbackDelay` default (net.Dialer, RFC 6555's recommendation).
    public static let defaultFallbackDelay = 0.3
    /// Go's `saneMinimum` in `partialDeadline`.
    static let saneMinimumSeconds = 2.0

    public let binding: SocketBinding
    public let fallbackDelay: Double

    public init(binding: SocketBinding = .none, fallbackDelay: Double = HappyEyeballs.defaultFallbackDelay) {
        self.binding = binding
        self.fallbackDelay = fallbackDelay
    }

    /// A connection and the address it reached.
    public struct Dialed: Sendable {
        public let socket: Socket
        public let address: SocketAddress
    }

    /// Sorts `addresses` (RFC 6724, as seen from this binding) and dials them; returns the
    /// winning connection, with TCP_NODELAY set.
    public func connect(_ addresses: [SocketAddress], deadline: Deadline) async throws(DialError) -> Dialed {
        var candidates = addresses
        // A source address decides the family (Go filters the list by the local address's).
        if case .sourceAddress(let source) = binding {
            candidates = candidates.filter { $0.ip.isIPv4 == source.isIPv4 }
            if candidates.isEmpty, let first = addresses.first {
                throw .noSuitableAddress("source address \(source) is \(source.isIPv4 ? "IPv4" : "IPv6") and \(first.ip) (of \(addresses.count) address\(addresses.count == 1 ? "" : "es")) is not")
            }
        }
        guard !candidates.isEmpty else { throw .noSuitableAddress("no address to connect to") }
        let sorted = await AddressSelection.sorted(candidates.map(\.ip), binding: binding)
        let ordered = sorted.map { ip in SocketAddress(ip: ip, port: candidates.first { $0.ip == ip }!.port) }
        let primaryIsIPv4 = ordered[0].ip.isIPv4
        let primaries = ordered.filter { $0.ip.isIPv4 == primaryIsIPv4 }
        let fallbacks = ordered.filter { $0.ip.isIPv4 != primaryIsIPv4 }
        return try await dialParallel(primaries, fallbacks, deadline: deadline).get()
    }

    private enum Event: Sendable {
        case fallbackTimer
        case dialed(primary: Bool, Result<Dialed, DialError>)
    }

    /// Go's `dialParallel`: races the primaries against the fallbacks started later.
    func dialParallel(_ primaries: [SocketAddress], _ fallbacks: [SocketAddress],
                      deadline: Deadline) async -> Result<Dialed, DialError> {
        if fallbacks.isEmpty { return await dialSerial(primaries, deadline: deadline) }
        return await withTaskGroup(of: Event.self) { group in
            group.addTask { .dialed(primary: true, await dialSerial(primaries, deadline: deadline)) }
            let timerEnd = min(Deadline.after(seconds: fallbackDelay), deadline)
            group.addTask {
                _ = await Reactor.shared.sleep(until: timerEnd)
                return .fallbackTimer
            }
            var fallbackStarted = false
            var primaryError: DialError?
            var fallbackError: DialError?
            var winner: Dialed?
            func startFallback() {
                guard !fallbackStarted, winner == nil else { return }
                fallbackStarted = true
                group.addTask { .dialed(primary: false, await dialSerial(fallbacks, deadline: deadline)) }
            }
            while let event = await group.next() {
                switch event {
                case .fallbackTimer:
                    startFallback()
                case .dialed(_, .success(let dialed)):
                    if winner == nil {
                        winner = dialed
                        group.cancelAll()
                    } else {
                        dialed.socket.close()  // the race was won meanwhile: no descriptor left behind
                    }
                case .dialed(let primary, .failure(let error)):
                    if primary {
                        primaryError = error
                        startFallback()  // Go: the primaries failed, start the fallbacks now
                    } else {
                        fallbackError = error
                    }
                    if primaryError != nil && fallbackError != nil { group.cancelAll() }
                }
            }
            if let winner { return .success(winner) }
            return .failure(primaryError ?? fallbackError ?? .noSuitableAddress("no address to connect to"))
        }
    }

    /// Go's `dialSerial`: one address after another, each with its `partialDeadline`; the first
    /// error is the one returned.
    func dialSerial(_ addresses: [SocketAddress], deadline: Deadline) async -> Result<Dialed, DialError> {
        var firstError: DialError?
        for (i, address) in addresses.enumerated() {
            if Task.isCancelled {
                return .failure(firstError ?? .connect(address, .cancelled))
            }
            guard let attemptDeadline = Self.partialDeadline(now: .now(), deadline: deadline, addressesRemaining: addresses.count - i) else {
                return .failure(firstError ?? .connect(address, .timedOut))
            }
            let socket: Socket
            do {
                socket = try binding.makeSocket(for: address)
            } catch {
                return .failure(.setup(error))
            }
            do {
                try await socket.connect(to: address, deadline: attemptDeadline)
                socket.setNoDelay()
                return .success(Dialed(socket: socket, address: address))
            } catch {
                socket.close()
                if firstError == nil { firstError = .connect(address, error) }
                if case .cancelled = error { break }
            }
        }
        return .failure(firstError ?? .noSuitableAddress("no address to connect to"))
    }

    /// Go's `partialDeadline`: the deadline of one attempt with `addressesRemaining` addresses
    /// still to try. nil when the deadline has passed.
    static func partialDeadline(now: Deadline, deadline: Deadline, addressesRemaining: Int) -> Deadline? {
        guard deadline > now else { return nil }
        let remaining = Double(deadline.nanoseconds - now.nanoseconds) / 1e9
        var timeout = remaining / Double(max(1, addressesRemaining))
        // Too short a share steals from the end of the list, as Go does.
        if timeout < saneMinimumSeconds {
            timeout = remaining < saneMinimumSeconds ? remaining : saneMinimumSeconds
        }
        return min(deadline, Deadline(nanoseconds: now.nanoseconds + UInt64(timeout * 1e9)))
    }
}

/// RFC 6724 destination address selection as Go's resolver does it (src/net/addrselect.go):
/// each destination's source address is learned by a UDP connect() (no packet is sent), and
/// rules 1 (unusable last), 2 (matching scope), 5 (matching label), 6 (precedence), 8 (smaller
/// scope), 9 (longest matching prefix, IPv6 only) and 10 (stable) order them. So a global IPv6
/// address goes before IPv4 only where this host has a route and a source address for it, and a
/// ULA (fc00::/7, precedence 3) goes after IPv4 (precedence 35).
public enum AddressSelection {
    struct Attributes: Equatable {
        var scope: UInt8 = 0
        var precedence: UInt8 = 0
        var label: UInt8 = 0
    }

    /// The order to dial `addresses` from a socket with `binding`.
    public static func sorted(_ addresses: [IPAddress], binding: SocketBinding) async -> [IPAddress] {
        guard addresses.count > 1 else { return addresses }
        var sources: [IPAddress?] = []
        for address in addresses { sources.append(await source(for: address, binding: binding)) }
        return sorted(addresses, sources: sources)
    }

    /// The local address the kernel would send from to reach `destination`, or nil when it has
    /// no route (or the binding excludes it): Go's `srcAddrs`.
    static func source(for destination: IPAddress, binding: SocketBinding) async -> IPAddress? {
        let peer = SocketAddress(ip: destination, port: 9)
        guard let socket = try? binding.makeSocket(for: peer, udp: true) else { return nil }
        defer { socket.close() }
        // A UDP connect only picks a route and a source address: it completes at once.
        do { try await socket.connect(to: peer, deadline: .after(seconds: 1)) } catch { return nil }
        return socket.localAddress?.ip
    }

    /// Sorts with known source addresses (nil: unusable). Stable.
    static func sorted(_ addresses: [IPAddress], sources: [IPAddress?]) -> [IPAddress] {
        let entries = addresses.indices.map { i in
            (index: i, address: addresses[i], source: sources[i],
             attributes: attributes(of: addresses[i]), sourceAttributes: sources[i].map(attributes(of:)) ?? Attributes())
        }
        let ordered = entries.sorted { a, b in
            switch prefer(a.address, a.source, a.attributes, a.sourceAttributes,
                          b.address, b.source, b.attributes, b.sourceAttributes) {
            case .some(let first): return first
            case .none: return a.index < b.index  // rule 10: leave the order unchanged
            }
        }
        return ordered.map(\.address)
    }

    /// true: DA first; false: DB first; nil: equal (RFC 6724 section 6).
    static func prefer(_ da: IPAddress, _ sourceDA: IPAddress?, _ attrDA: Attributes, _ attrSourceDA: Attributes,
                       _ db: IPAddress, _ sourceDB: IPAddress?, _ attrDB: Attributes, _ attrSourceDB: Attributes) -> Bool? {
        // Rule 1: avoid unusable destinations.
        guard let sourceDA else { return sourceDB == nil ? nil : false }
        guard let sourceDB else { return true }
        // Rule 2: prefer matching scope.
        if attrDA.scope == attrSourceDA.scope && attrDB.scope != attrSourceDB.scope { return true }
        if attrDA.scope != attrSourceDA.scope && attrDB.scope == attrSourceDB.scope { return false }
        // Rules 3, 4 (deprecated, home addresses) are left out, as Go leaves them out.
        // Rule 5: prefer matching label.
        if attrSourceDA.label == attrDA.label && attrSourceDB.label != attrDB.label { return true }
        if attrSourceDA.label != attrDA.label && attrSourceDB.label == attrDB.label { return false }
        // Rule 6: prefer higher precedence.
        if attrDA.precedence != attrDB.precedence { return attrDA.precedence > attrDB.precedence }
        // Rule 7 (native transport) is left out, as Go leaves it out.
        // Rule 8: prefer smaller scope.
        if attrDA.scope != attrDB.scope { return attrDA.scope < attrDB.scope }
        // Rule 9: longest matching prefix, for IPv6 only (Go issues 13283, 18518).
        if !da.isIPv4 && !db.isIPv4 {
            let a = commonPrefixLength(sourceDA, da), b = commonPrefixLength(sourceDB, db)
            if a != b { return a > b }
        }
        return nil
    }

    /// The RFC 6724 section 2.1 policy table, longest prefix first; IPv4 is seen as ::ffff:0:0/96.
    private static let policyTable: [(prefix: IPPrefix, precedence: UInt8, label: UInt8)] = [
        (IPPrefix("::1/128")!, 50, 0),
        (IPPrefix("::ffff:0:0/96")!, 35, 4),
        (IPPrefix("::/96")!, 1, 3),
        (IPPrefix("2001::/32")!, 5, 5),
        (IPPrefix("2002::/16")!, 30, 2),
        (IPPrefix("3ffe::/16")!, 1, 12),
        (IPPrefix("fec0::/10")!, 1, 11),
        (IPPrefix("fc00::/7")!, 3, 13),
        (IPPrefix("::/0")!, 40, 1),
    ]

    static func attributes(of address: IPAddress) -> Attributes {
        let scope = Self.scope(of: address)
        if address.isIPv4 || address.ipv4Mapped != nil { return Attributes(scope: scope, precedence: 35, label: 4) }
        for entry in policyTable where entry.prefix.contains(address) {
            return Attributes(scope: scope, precedence: entry.precedence, label: entry.label)
        }
        return Attributes(scope: scope)
    }

    /// RFC 6724 section 3.1 scopes: link-local 0x2, site-local 0x5, global 0xe.
    static func scope(of address: IPAddress) -> UInt8 {
        if address.isLoopback || address.isLinkLocal { return 0x2 }
        if !address.isIPv4 && address.ipv4Mapped == nil {
            let b = address.bytes
            if b[0] == 0xff { return b[1] & 0x0f }
            if b[0] == 0xfe && b[1] & 0xc0 == 0xc0 { return 0x5 }
        }
        return 0xe
    }

    /// Leading bits in common, up to the 64-bit prefix for IPv6; 0 across families.
    static func commonPrefixLength(_ a: IPAddress, _ b: IPAddress) -> Int {
        var x = a.ipv4Mapped?.bytes ?? a.bytes, y = b.ipv4Mapped?.bytes ?? b.bytes
        guard x.count == y.count else { return 0 }
        if x.count > 8 { x = Array(x[..<8]); y = Array(y[..<8]) }
        var length = 0
        for (p, q) in zip(x, y) {
            if p == q { length += 8; continue }
            return length + (p ^ q).leadingZeroBitCount
        }
        return length
    }
}
