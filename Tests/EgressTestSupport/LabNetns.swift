#if canImport(Glibc)
import Glibc
#endif
import Foundation
import EgressSync
import EgressNet

/// A network namespace made for a test (`ip netns add`), and programs run inside it
/// (`ip netns exec`). Needs root.
///
/// Names carry the test process's pid (`egress-lab-<pid>`), so a namespace left behind by a
/// crashed run is recognised as stale — its pid is no longer alive — and removed by the next
/// run (`LabRemoteSite.removeStale()`), while a concurrent run's namespace is left alone.
public final class LabNetns: Sendable {
    /// The namespace's name, as `ip netns` knows it.
    public let name: String
    private let deleted = Mutex(false)

    /// Creates the namespace and brings its loopback up.
    public static func create(_ name: String) throws -> LabNetns {
        try Lab.run("ip", ["netns", "add", name])
        let netns = LabNetns(name: name)
        do {
            try Lab.run("ip", ["-n", name, "link", "set", "lo", "up"])
        } catch {
            netns.delete()
            throw error
        }
        return netns
    }

    private init(name: String) { self.name = name }

    deinit { delete() }

    /// Runs a short tool (`nft`, `ip`) inside the namespace to completion; its output.
    @discardableResult
    public func run(_ program: String, _ arguments: [String]) throws -> String {
        guard let executable = Lab.path(of: program) else { throw LabError("\(program) is not installed") }
        return try Lab.run("ip", ["netns", "exec", name, executable] + arguments)
    }

    /// `run`, on a thread of its own: the caller's task waits without holding a thread of the
    /// cooperative pool.
    @discardableResult
    public func runAsync(_ program: String, _ arguments: [String]) async throws -> String {
        guard let executable = Lab.path(of: program) else { throw LabError("\(program) is not installed") }
        return try await Lab.runAsync("ip", ["netns", "exec", name, executable] + arguments)
    }

    /// Starts a server program inside the namespace. `ip netns exec` execs the program, so the
    /// `LabProcess` is the program itself: `stop()` signals it, not a wrapper.
    public func spawn(_ program: String, arguments: [String], directory: String, name: String) throws -> LabProcess {
        guard let executable = Lab.path(of: program) else { throw LabError("\(name): \(program) is not installed") }
        return try LabProcess("ip", arguments: ["netns", "exec", self.name, executable] + arguments,
                              directory: directory, name: name)
    }

    /// Adds a veth pair from the test's namespace into this one and brings both ends up:
    /// `interface` (here) gets `local`, its `peer` (inside) gets `remote`. Addresses are as
    /// `ip addr add` takes them ("10.213.0.1/30", "2001:db8::1/64"); an IPv6 one is added
    /// `nodad`, usable at once. The caller deletes `interface` (the peer goes with it).
    public func addVeth(_ interface: String, peer: String, local: [String], remote: [String]) throws {
        func add(_ address: String, dev: String, inside: Bool) throws {
            let v6 = address.contains(":")
            try Lab.run("ip", (inside ? ["-n", name] : []) + (v6 ? ["-6"] : []) + ["addr", "add", address, "dev", dev]
                        + (v6 ? ["nodad"] : []))
        }
        try Lab.run("ip", ["link", "add", interface, "type", "veth", "peer", "name", peer, "netns", name])
        for address in local { try add(address, dev: interface, inside: false) }
        try Lab.run("ip", ["link", "set", interface, "up"])
        for address in remote { try add(address, dev: peer, inside: true) }
        try Lab.run("ip", ["-n", name, "link", "set", peer, "up"])
    }

    /// Loads an nft ruleset (the text `nft -f` reads) inside the namespace, from a file in a lab
    /// directory of its own.
    public func loadNftRuleset(_ ruleset: String) throws {
        let file = try Lab.makeDirectory("nft") + "/ruleset.nft"
        try ruleset.write(toFile: file, atomically: true, encoding: .utf8)
        try run("nft", ["-f", file])
    }

    /// Spawns nginx inside the namespace, serving `locations` over TLS on `port` of each of
    /// `addresses` (in place of the lab's loopback), from a lab directory named after `name`.
    /// Does not wait: the caller waits for it the way its addresses are reached (`waitForTCP`).
    public func spawnNginx(tls: CertPair, locations: [NginxLocation], port: UInt16, on addresses: [IPAddress],
                           name: String) throws -> LabProcess {
        let directory = try Lab.makeDirectory(name)
        try FileManager.default.createDirectory(atPath: directory + "/tmp", withIntermediateDirectories: true)
        let listen = addresses.map { "listen \($0.isIPv6 ? "[\($0)]" : "\($0)"):\(port) ssl;" }.joined(separator: "\n        ")
        let config = LabNginx.renderConfig(servers: [NginxServer(port: port, tls: tls, locations: locations)], directory: directory)
            .replacingOccurrences(of: "listen \(Lab.loopback):\(port) ssl;", with: listen)
        try config.write(toFile: directory + "/nginx.conf", atomically: true, encoding: .utf8)
        return try spawn("nginx", arguments: [
            "-p", directory + "/", "-c", directory + "/nginx.conf", "-e", directory + "/error.log",
            "-g", "daemon off; pid \(directory)/nginx.pid;",
        ], directory: directory, name: "nginx")
    }

    /// Waits until `address` accepts a TCP connection from a socket bound by `binding` (how a
    /// server inside a namespace is reached from the test's), within `timeout` seconds; throws
    /// with the server's log when `process` exits first or the time runs out.
    public static func waitForTCP(_ address: SocketAddress, binding: SocketBinding, process: LabProcess,
                                  timeout: Double = 30) async throws {
        let deadline = Deadline.after(seconds: timeout)
        var lastError = "not tried"
        while true {
            if !process.isRunning {
                throw LabError("\(process.name) exited before listening on \(address)\n\(process.logTail())")
            }
            do {
                let socket = try binding.makeSocket(for: address)
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

    /// Kills whatever still runs inside (SIGKILL, by pid: only the lab's own programs live
    /// there) and deletes the namespace. Later calls do nothing.
    public func delete() {
        let first = deleted.withLock { wasDeleted -> Bool in
            defer { wasDeleted = true }
            return !wasDeleted
        }
        guard first else { return }
        Self.delete(name: name)
    }

    static func delete(name: String) {
        if let pids = try? Lab.run("ip", ["netns", "pids", name]) {
            for pid in pids.split(whereSeparator: \.isNewline).compactMap({ pid_t($0) }) where pid > 1 {
                _ = kill(pid, SIGKILL)
            }
        }
        _ = try? Lab.run("ip", ["netns", "del", name])
    }
}

/// A "remote site" for path tests: a network namespace holding the lab's servers on a service
/// address, reached from the test's own namespace through two veth uplinks.
///
/// ```
///   test's namespace                                   remote namespace (egress-lab-<pid>)
///   eg1-<pid>  10.213.A.B+1/30 ─── veth ─── eg1r-<pid> 10.213.A.B+2/30
///   eg2-<pid>  10.213.A.B+5/30 ─── veth ─── eg2r-<pid> 10.213.A.B+6/30   nft: drops and counts
///                                                                        `blackholedPorts` arriving on eg2r
///                                             lo: service address 10.213.A.B+9/32 (servers listen here)
///
///   routes to the service address:  main table  via up2 (metric 100), via up1 (metric 200)
///                                   table `policyTable` via up1, used `from` up1's address (ip rule)
/// ```
///
/// So the routing table alone sends traffic for the service through the blackholed uplink:
/// only a socket bound to up1 (SO_BINDTODEVICE), or bound to up1's address (source-based policy
/// routing), gets through. Each success proves the binding took effect.
///
/// Addresses are in 10.213.0.0/16, a 16-address block chosen by the pid; only the namespace's
/// own addresses are ever routed, and nothing is routed or NATed beyond it. `destroy()` removes
/// the namespace, both veth pairs (their routes go with them) and the ip rule; it runs on
/// deinit too.
public final class LabRemoteSite: Sendable {
    /// One uplink: the test-side end of a veth pair and its peer inside the namespace.
    public struct Uplink: Sendable {
        /// The interface in the test's namespace (what an `interface` path names).
        public let interface: String
        /// Its peer inside the remote namespace.
        public let peer: String
        /// The test side's address (what a `source_address` path names).
        public let localAddress: IPAddress
        /// The remote side's address (the gateway for routes through this uplink).
        public let remoteAddress: IPAddress
    }

    public let netns: LabNetns
    /// Reaches the service; nothing dropped.
    public let up1: Uplink
    /// Reaches the service, but the remote drops `blackholedPorts` arriving here.
    public let up2: Uplink
    /// On the remote's loopback, routed through both uplinks: where its servers listen.
    public let serviceAddress: IPAddress
    /// The routing table the policy rule for up1's address points at.
    public let policyTable: UInt32
    /// TCP and UDP ports the remote drops when they arrive through up2.
    public let blackholedPorts: [UInt16]
    private let destroyed = Mutex(false)

    static let namespacePrefix = "egress-lab-"
    static let tableBase: UInt32 = 1_000_000
    static let rulePriority = 31_000

    /// Builds the site: namespace, uplinks, addresses, routes, the policy rule and the nft
    /// blackhole. Stale leftovers of crashed runs are removed first. Runs the `ip`/`nft` tools
    /// on a thread of its own, off the cooperative pool.
    public static func create(blackholedPorts: [UInt16]) async throws -> LabRemoteSite {
        try await Lab.offPool {
            removeStale()
            return try build(blackholedPorts: blackholedPorts)
        }
    }

    private static func build(blackholedPorts: [UInt16]) throws -> LabRemoteSite {
        let pid = getpid()
        let base = try freeBlock(pid: pid)
        let up1 = Uplink(interface: "eg1-\(pid)", peer: "eg1r-\(pid)", localAddress: base.adding(1), remoteAddress: base.adding(2))
        let up2 = Uplink(interface: "eg2-\(pid)", peer: "eg2r-\(pid)", localAddress: base.adding(5), remoteAddress: base.adding(6))
        let netns = try LabNetns.create(namespacePrefix + "\(pid)")
        let site = LabRemoteSite(netns: netns, up1: up1, up2: up2, serviceAddress: base.adding(9),
                                 policyTable: tableBase + UInt32(pid), blackholedPorts: blackholedPorts)
        do {
            try site.configure()
        } catch {
            site.destroyNow()
            throw error
        }
        return site
    }

    private init(netns: LabNetns, up1: Uplink, up2: Uplink, serviceAddress: IPAddress, policyTable: UInt32,
                 blackholedPorts: [UInt16]) {
        self.netns = netns
        self.up1 = up1
        self.up2 = up2
        self.serviceAddress = serviceAddress
        self.policyTable = policyTable
        self.blackholedPorts = blackholedPorts
    }

    deinit { destroyNow() }

    private func configure() throws {
        let ns = netns.name
        for uplink in [up1, up2] {
            try netns.addVeth(uplink.interface, peer: uplink.peer, local: ["\(uplink.localAddress)/30"],
                              remote: ["\(uplink.remoteAddress)/30"])
        }
        try Lab.run("ip", ["-n", ns, "addr", "add", "\(serviceAddress)/32", "dev", "lo"])
        let service = "\(serviceAddress)/32"
        // The main table prefers the blackholed uplink; up1 is a worse route the kernel only
        // takes for a socket bound to it.
        try Lab.run("ip", ["route", "add", service, "via", "\(up2.remoteAddress)", "dev", up2.interface, "metric", "100"])
        try Lab.run("ip", ["route", "add", service, "via", "\(up1.remoteAddress)", "dev", up1.interface, "metric", "200"])
        // Source-based policy routing, as a VPN client sets it up: from up1's address, via up1.
        try Lab.run("ip", ["route", "add", service, "via", "\(up1.remoteAddress)", "dev", up1.interface,
                           "table", "\(policyTable)"])
        try Lab.run("ip", ["rule", "add", "priority", "\(Self.rulePriority)", "from", "\(up1.localAddress)",
                           "lookup", "\(policyTable)"])
        let ports = blackholedPorts.map(String.init).joined(separator: ", ")
        let rules = blackholedPorts.isEmpty ? "" : """
                    iifname "\(up2.peer)" tcp dport { \(ports) } counter drop
                    iifname "\(up2.peer)" udp dport { \(ports) } counter drop

            """
        let ruleset = """
            table inet egress_lab {
                chain input {
                    type filter hook input priority 0; policy accept;
            \(rules)    }
            }

            """
        try netns.loadNftRuleset(ruleset)
    }

    /// Removes everything the site made: the policy rule, both veth pairs (and so every route
    /// through them), the namespace and whatever still runs in it. Later calls do nothing.
    /// Blocks for a few `ip` runs (milliseconds).
    public func destroy() { destroyNow() }

    private func destroyNow() {
        let first = destroyed.withLock { was -> Bool in
            defer { was = true }
            return !was
        }
        guard first else { return }
        _ = try? Lab.run("ip", ["rule", "del", "priority", "\(Self.rulePriority)", "from", "\(up1.localAddress)",
                                "lookup", "\(policyTable)"])
        for uplink in [up1, up2] {
            _ = try? Lab.run("ip", ["link", "del", uplink.interface])
        }
        netns.delete()
    }

    // MARK: servers inside

    /// nginx inside the namespace, serving `locations` with TLS on serviceAddress:`port`.
    /// Returns once it accepts connections through up1.
    public func startNginx(tls: CertPair, locations: [NginxLocation], port: UInt16 = 5443) async throws -> LabProcess {
        let process = try netns.spawnNginx(tls: tls, locations: locations, port: port, on: [serviceAddress], name: "nginx-remote")
        try await waitForTCP(port, process: process)
        return process
    }

    /// dnsmasq inside the namespace, answering `records` on serviceAddress:`port` (UDP and
    /// TCP; see `LabDnsmasq` for what it answers). Returns once it accepts connections through up1.
    public func startDnsmasq(records: [LabDnsmasq.Record], port: UInt16 = 53) async throws -> LabProcess {
        let directory = try Lab.makeDirectory("dnsmasq-remote")
        let configFile = directory + "/dnsmasq.conf"
        try Data().write(to: URL(fileURLWithPath: configFile))
        let arguments = LabDnsmasq.arguments(records: records, unknownNames: .refused, port: port,
                                             pidFile: directory + "/dnsmasq.pid", configFile: configFile)
            .map { $0 == "--listen-address=\(Lab.loopback)" ? "--listen-address=\(serviceAddress)" : $0 }
        let process = try netns.spawn("dnsmasq", arguments: arguments, directory: directory, name: "dnsmasq")
        try await waitForTCP(port, process: process)
        return process
    }

    /// Waits until serviceAddress:`port` accepts a TCP connection through up1.
    public func waitForTCP(_ port: UInt16, process: LabProcess, timeout: Double = 30) async throws {
        try await LabNetns.waitForTCP(SocketAddress(ip: serviceAddress, port: port), binding: .interface(up1.interface),
                                      process: process, timeout: timeout)
    }

    // MARK: names, addresses, leftovers

    /// The first 16-address block of 10.213.0.0/16 from the pid's that no interface of this
    /// namespace uses (a concurrent run's), as its base address.
    private static func freeBlock(pid: pid_t) throws -> IPAddress {
        let inUse = (try? Lab.run("ip", ["-o", "-4", "addr", "show"])) ?? ""
        for attempt in 0..<16 {
            let block = (Int(pid) + attempt * 257) % 4096
            let base = IPAddress("10.213.\(block / 16).\((block % 16) * 16)")!
            let prefix = "10.213.\(block / 16)."
            let taken = (1...15).contains { inUse.contains(" \(prefix)\((block % 16) * 16 + $0)/") }
            if !taken { return base }
        }
        throw LabError("no free address block in 10.213.0.0/16")
    }

    /// Removes what crashed runs left: namespaces `egress-lab-<pid>`, veths `eg1-<pid>` and
    /// `eg2-<pid>`, and ip rules pointing at table 1000000+<pid>, whose pid no longer runs (or
    /// is this process's own: left by an earlier process that had the same pid).
    public static func removeStale() {
        func isStale(_ pidText: Substring) -> Bool {
            guard let pid = pid_t(pidText), pid > 0 else { return false }
            if pid == getpid() { return true }
            return kill(pid, 0) != 0 && errno == ESRCH
        }
        if let list = try? Lab.run("ip", ["netns", "list"]) {
            for line in list.split(whereSeparator: \.isNewline) {
                let name = line.split(separator: " ").first.map(String.init) ?? ""
                guard name.hasPrefix(namespacePrefix), isStale(name.dropFirst(namespacePrefix.count)) else { continue }
                LabNetns.delete(name: name)
            }
        }
        if let links = try? Lab.run("ip", ["-o", "link", "show"]) {
            for line in links.split(whereSeparator: \.isNewline) {
                // "12: eg1-4242@if11: <BROADCAST,..."
                let fields = line.split(separator: " ")
                guard fields.count > 1 else { continue }
                let name = fields[1].split(separator: "@").first.map(String.init)?.trimmingCharacters(in: [":"]) ?? ""
                for prefix in ["eg1-", "eg2-"] where name.hasPrefix(prefix) && isStale(name.dropFirst(prefix.count)) {
                    _ = try? Lab.run("ip", ["link", "del", name])
                }
            }
        }
        if let rules = try? Lab.run("ip", ["rule", "show"]) {
            for line in rules.split(whereSeparator: \.isNewline) {
                // "31000:\tfrom 10.213.1.17 lookup 1004242"
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard fields.count == 5, fields[0] == "\(rulePriority):", fields[1] == "from", fields[3] == "lookup",
                      let table = UInt32(fields[4]), table > tableBase, isStale(Substring("\(table - tableBase)")) else { continue }
                _ = try? Lab.run("ip", ["rule", "del", "priority", "\(rulePriority)", "from", String(fields[2]),
                                        "lookup", String(fields[4])])
            }
        }
    }

}

extension LabRemoteSite {
    /// Builds a site, runs `body` with it, and destroys the site afterwards whether `body`
    /// returned or threw (the teardown runs off the cooperative pool). A process that dies
    /// mid-test leaves it behind for the next run's `removeStale()`.
    public static func with<T: Sendable>(blackholedPorts: [UInt16],
                                         _ body: (LabRemoteSite) async throws -> T) async throws -> T {
        let site = try await create(blackholedPorts: blackholedPorts)
        let result: Result<T, any Error>
        do { result = .success(try await body(site)) } catch { result = .failure(error) }
        _ = try? await Lab.offPool { site.destroy() }
        return try result.get()
    }
}

extension IPAddress {
    /// An IPv4 address plus `n` in its last octet (the lab's blocks never cross an octet).
    fileprivate func adding(_ n: UInt8) -> IPAddress {
        let b = bytes
        return IPAddress("\(b[0]).\(b[1]).\(b[2]).\(b[3] + n)")!
    }
}
