#if canImport(Glibc)
import Glibc
#endif
import Foundation
import EgressSync
import EgressNet

/// A dual-stack "remote site" for dialing tests: one network namespace reached from the test's
/// own namespace through one veth pair that carries both families.
///
/// ```
///   test's namespace                               remote namespace (dial-<pid>-<n>)
///   egd<pid>-<n>  10.214.A.B+1/30   ─── veth ───   egdr<pid>-<n> 10.214.A.B+2/30
///              2001:db8:214:N::1/64                            2001:db8:214:N::2/64
///                                                  nft: drops (and counts) TCP to `port` of one
///                                                  family at a time (`blackhole(_:)`)
/// ```
///
/// IPv6 comes from the documentation prefix 2001:db8::/32, a global address for RFC 6724 (a
/// ULA would rank below IPv4 and never be tried first). Both are connected routes on the veth;
/// nothing is routed beyond it. DAD is off (`nodad`) so the addresses are usable at once.
public final class LabDualStackSite: Sendable {
    public let netns: LabNetns
    public let interface: String
    public let peer: String
    public let localV4: IPAddress
    public let remoteV4: IPAddress
    public let localV6: IPAddress
    public let remoteV6: IPAddress
    private let destroyed = Mutex(false)

    static let namespacePrefix = "dial-"
    /// How many sites this process has built: `<n>` in the names and part of the address block,
    /// so two suites of one `swift test` process (DialTests, EncryptedDNSTests) never share them.
    private static let built = Mutex(0)

    private init(netns: LabNetns, interface: String, peer: String, localV4: IPAddress, remoteV4: IPAddress,
                 localV6: IPAddress, remoteV6: IPAddress) {
        self.netns = netns
        self.interface = interface
        self.peer = peer
        self.localV4 = localV4
        self.remoteV4 = remoteV4
        self.localV6 = localV6
        self.remoteV6 = remoteV6
    }

    deinit { destroyNow() }

    /// Builds the site on a thread of its own (the `ip` runs block).
    public static func create() async throws -> LabDualStackSite {
        try await Lab.offPool { try build() }
    }

    private static func build() throws -> LabDualStackSite {
        let pid = getpid()
        // 1000 sites a process, 7-digit pids: "egdr<pid>-<n>" stays within IFNAMSIZ-1 (15).
        let n = built.withLock { count -> Int in
            defer { count += 1 }
            return count % 1000
        }
        // 4 blocks a pid: sites of one process at once get their own (n % 4).
        let block = (Int(pid) * 4 + n % 4) % 16_384
        let v4Base = "10.214.\(block / 64).\((block % 64) * 4)"
        let v4 = IPAddress(v4Base)!.bytes
        let v6Prefix = "2001:db8:214:\(String(block, radix: 16))"
        let name = namespacePrefix + "\(pid)-\(n)"
        let interface = "egd\(pid)-\(n)"
        // A namespace or veth of this name is an earlier process's with the same pid.
        LabNetns.delete(name: name)
        _ = try? Lab.run("ip", ["link", "del", interface])
        let netns = try LabNetns.create(name)
        let site = LabDualStackSite(netns: netns, interface: interface, peer: "egdr\(pid)-\(n)",
                                    localV4: IPAddress.v4(v4[0], v4[1], v4[2], v4[3] + 1),
                                    remoteV4: IPAddress.v4(v4[0], v4[1], v4[2], v4[3] + 2),
                                    localV6: IPAddress("\(v6Prefix)::1")!, remoteV6: IPAddress("\(v6Prefix)::2")!)
        do {
            try site.configure()
        } catch {
            site.destroyNow()
            throw error
        }
        return site
    }

    private func configure() throws {
        try netns.addVeth(interface, peer: peer, local: ["\(localV4)/30", "\(localV6)/64"],
                          remote: ["\(remoteV4)/30", "\(remoteV6)/64"])
        try blackhole(nil, port: 0)
    }

    /// Drops TCP to `port` arriving in the remote namespace over `family` (nil: nothing dropped).
    public func blackhole(_ family: IPFamily?, port: UInt16) throws {
        let rule: String
        switch family {
        case nil: rule = ""
        case .ipv4?: rule = "        meta nfproto ipv4 tcp dport \(port) counter drop\n"
        case .ipv6?: rule = "        meta nfproto ipv6 tcp dport \(port) counter drop\n"
        }
        let ruleset = """
            table inet dial_lab
            delete table inet dial_lab
            table inet dial_lab {
                chain input {
                    type filter hook input priority 0; policy accept;
            \(rule)    }
            }

            """
        try netns.loadNftRuleset(ruleset)
    }

    /// Packets the blackhole dropped so far.
    public func dropped() throws -> Int {
        let listing = try netns.run("nft", ["list", "table", "inet", "dial_lab"])
        return listing.split(separator: "\n").filter { $0.contains("drop") }.reduce(0) { total, line in
            let fields = line.split(separator: " ")
            guard let i = fields.firstIndex(of: "packets"), i + 1 < fields.count, let n = Int(fields[i + 1]) else { return total }
            return total + n
        }
    }

    /// nginx inside the namespace on both remote addresses, serving `locations` over TLS.
    /// Returns once it accepts connections on both.
    public func startNginx(tls: CertPair, locations: [NginxLocation], port: UInt16) async throws -> LabProcess {
        let process = try netns.spawnNginx(tls: tls, locations: locations, port: port, on: [remoteV4, remoteV6], name: "nginx-dual")
        for ip in [remoteV4, remoteV6] {
            try await waitForTCP(SocketAddress(ip: ip, port: port), process: process)
        }
        return process
    }

    /// Waits until `process` (run in the namespace) accepts connections on `address`.
    func waitForTCP(_ address: SocketAddress, process: LabProcess, timeout: Double = 30) async throws {
        try await LabNetns.waitForTCP(address, binding: .none, process: process, timeout: timeout)
    }

    /// Removes the veth pair (and its routes), the namespace and whatever runs in it.
    public func destroy() { destroyNow() }

    private func destroyNow() {
        let first = destroyed.withLock { was -> Bool in
            defer { was = true }
            return !was
        }
        guard first else { return }
        _ = try? Lab.run("ip", ["link", "del", interface])
        netns.delete()
    }


    /// Builds a site, runs `body` with it, and destroys it whether `body` returned or threw.
    public static func with<T: Sendable>(_ body: (LabDualStackSite) async throws -> T) async throws -> T {
        let site = try await create()
        let result: Result<T, any Error>
        do { result = .success(try await body(site)) } catch { result = .failure(error) }
        _ = try? await Lab.offPool { site.destroy() }
        return try result.get()
    }
}
