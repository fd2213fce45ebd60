/// How a socket leaves the host: the part of an egress path that applies to every socket the
/// probe opens on it, the DNS queries' included.
public enum SocketBinding: Sendable, Equatable {
    /// The routing table decides.
    case none
    /// SO_BINDTODEVICE to this interface (tun0, wg0).
    case interface(String)
    /// Bind to this local address before connecting (source-based policy routing).
    case sourceAddress(IPAddress)

    /// Opens a TCP or UDP socket of the address's family, bound as this binding says.
    /// Throws `.permissionDenied` or `.system` when the binding itself cannot be applied.
    public func makeSocket(for destination: SocketAddress, udp: Bool = false) throws(NetError) -> Socket {
        let family = destination.family
        let socket = udp ? try Socket.udp(family: family) : try Socket.tcp(family: family)
        do throws(NetError) {
            switch self {
            case .none:
                break
            case .interface(let name):
                try socket.bindToDevice(name)
            case .sourceAddress(let ip):
                guard ip.isIPv4 == destination.ip.isIPv4 else {
                    throw NetError.system(call: "bind: source address \(ip) is not of the destination's family", errno: 97 /* EAFNOSUPPORT */)
                }
                try socket.bind(to: SocketAddress(ip: ip, port: 0))
            }
        } catch {
            socket.close()
            throw error
        }
        return socket
    }
}

extension SocketBinding {
    /// Checks that the binding can be applied at all (the interface exists and may be bound,
    /// the source address is local) by applying it to a throwaway UDP socket; sends nothing.
    /// Lets a probe report a broken path as such before any socket of it (a DNS query's
    /// included) fails for that reason. Throws what `makeSocket` would.
    public func check() throws(NetError) {
        let probeDestination: SocketAddress
        switch self {
        case .none: return
        case .interface: probeDestination = SocketAddress(ip: .anyIPv4, port: 0)
        case .sourceAddress(let ip): probeDestination = SocketAddress(ip: ip, port: 0)
        }
        try makeSocket(for: probeDestination, udp: true).close()
    }
}

extension SocketAddress {
    /// AF_INET or AF_INET6.
    public var addressFamily: Int32 { family }
}
