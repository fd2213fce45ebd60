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
///   test's namespace                               remote namespace (dial-<pid>)
///   egd-<pid>  10.214.A.B+1/30      ─── veth ───   egdr-<pid> 10.214.A.B+2/30
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
        try await offPool { try build() }
    }

    private static func build() throws -> LabDualStackSite {
        let pid = getpid()
        let block = Int(pid) % 16_384
        let v4Base = "10.214.\(block / 64).\((block % 64) * 4)"
        let v4 = IPAddress(v4Base)!.bytes
        let v6Prefix = "2001:db8:214:\(String(block, radix: 16))"
        let name = namespacePrefix + "\(pid)"
        // A namespace or veth of this name is an earlier process's with the same pid.
        LabNetns.delete(name: name)
        _ = try? Lab.run("ip", ["link", "del", "egd-\(pid)"])
        let netns = try LabNetns.create(name)
        let site = LabDualStackSite(netns: netns, interface: "egd-\(pid)", peer: "egdr-\(pid)",
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
        let ns = netns.name
        try Lab.run("ip", ["link", "add", interface, "type", "veth", "peer", "name", peer, "netns", ns])
        try Lab.run("ip", ["addr", "add", "\(localV4)/30", "dev", interface])
        try Lab.run("ip", ["-6", "addr", "add", "\(localV6)/64", "dev", interface, "nodad"])
        try Lab.run("ip", ["link", "set", interface, "up"])
        try Lab.run("ip", ["-n", ns, "addr", "add", "\(remoteV4)/30", "dev", peer])
        try Lab.run("ip", ["-n", ns, "-6", "addr", "add", "\(remoteV6)/64", "dev", peer, "nodad"])
        try Lab.run("ip", ["-n", ns, "link", "set", peer, "up"])
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
        let file = try Lab.makeDirectory("nft-dial") + "/ruleset.nft"
        try ruleset.write(toFile: file, atomically: true, encoding: .utf8)
        try netns.run("nft", ["-f", file])
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
        let directory = try Lab.makeDirectory("nginx-dual")
        try FileManager.default.createDirectory(atPath: directory + "/tmp", withIntermediateDirectories: true)
        let config = LabNginx.renderConfig(servers: [NginxServer(port: port, tls: tls, locations: locations)], directory: directory)
            .replacingOccurrences(of: "listen \(Lab.loopback):\(port) ssl;",
                                  with: "listen \(remoteV4):\(port) ssl;\n        listen [\(remoteV6)]:\(port) ssl;")
        try config.write(toFile: directory + "/nginx.conf", atomically: true, encoding: .utf8)
        let process = try netns.spawn("nginx", arguments: [
            "-p", directory + "/", "-c", directory + "/nginx.conf", "-e", directory + "/error.log",
            "-g", "daemon off; pid \(directory)/nginx.pid;",
        ], directory: directory, name: "nginx")
        for ip in [remoteV4, remoteV6] {
            try await waitForTCP(SocketAddress(ip: ip, port: port), process: process)
        }
        return process
    }

    /// Waits until `process` (run in the namespace) accepts connections on `address`.
    func waitForTCP(_ address: SocketAddress, process: LabProcess, timeout: Double = 30) async throws {
        let deadline = Deadline.after(seconds: timeout)
        var lastError = "not tried"
        while true {
            if !process.isRunning {
                throw LabError("\(process.name) exited before listening on \(address)\n\(process.logTail())")
            }
            do {
                let socket = try SocketBinding.none.makeSocket(for: address)
                defer { socket.close() }
                try await socket.connect(to: address, deadline: deadline.capped(atSecondsFromNow: 0.5))
                return
            } catch {
                lastError = "\(error)"
            }
            if deadline.hasPassed {
                throw LabError("\(process.name) did not listen on \(address) within \(timeout)s (last connect: \(lastError))\n\(process.logTail())")
            }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
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

    private static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            Thread { c.resume(with: Result { try body() }) }.start()
        }
    }

    /// Builds a site, runs `body` with it, and destroys it whether `body` returned or threw.
    public static func with<T: Sendable>(_ body: (LabDualStackSite) async throws -> T) async throws -> T {
        let site = try await create()
        let result: Result<T, any Error>
        do { result = .success(try await body(site)) } catch { result = .failure(error) }
        _ = try? await offPool { site.destroy() }
        return try result.get()
    }
}
