import Foundation
import EgressNet

/// dnsdist in front of a plain lab resolver (a dnsmasq on loopback), serving DNS over TLS and
/// DNS over HTTPS (HTTP/1.1 at `/dns-query`) on 127.0.0.1 with a lab certificate, or inside a
/// `LabDualStackSite`'s namespace on its far veth address (`start(in:)`).
///
/// The config turns off the security poll (`setSecurityPollSuffix("")`: no query to a public
/// name) and sets its own plain listener (without one dnsdist listens on port 53); it is checked
/// with `dnsdist --check-config` before dnsdist starts.
public final class LabDnsdist: Sendable {
    public let dotPort: UInt16
    public let dohPort: UInt16
    /// The address its DoT and DoH listeners are on (127.0.0.1, or a namespace's veth address).
    public let listen: IPAddress
    private let configFile: String
    private let netns: LabNetns?
    private let process: LabProcess
    /// Owns the lab directory and the program when it runs in this namespace.
    private let daemon: LabDaemon?

    public var dotAddress: SocketAddress { SocketAddress(ip: listen, port: dotPort) }

    /// Its config: the plain, DoT and DoH listeners, the backend, and a console on the
    /// namespace's own 127.0.0.1 (`queries()` reads its counters there).
    static func config(listen: IPAddress, backend: SocketAddress, tls: CertPair,
                       ports: (dot: UInt16, doh: UInt16, plain: UInt16, console: UInt16)) -> String {
        var key = [UInt8](repeating: 0, count: 32)
        for i in key.indices { key[i] = UInt8.random(in: 0...255) }
        return """
            setSecurityPollSuffix("")
            setLocal("\(listen):\(ports.plain)")
            newServer({address="\(backend)", healthCheckMode="up"})
            addTLSLocal("\(listen):\(ports.dot)", "\(tls.certFile)", "\(tls.keyFile)")
            addDOHLocal("\(listen):\(ports.doh)", "\(tls.certFile)", "\(tls.keyFile)", "/dns-query")
            controlSocket("127.0.0.1:\(ports.console)")
            setKey("\(Data(key).base64EncodedString())")

            """
    }

    /// Starts dnsdist forwarding to `backend` (a plain resolver) with `tls` as its certificate.
    public static func start(backend: SocketAddress, tls: CertPair, timeout: Double = 30) async throws -> LabDnsdist {
        let dotPort = FreePort.next(), dohPort = FreePort.next(), plainPort = FreePort.next(), consolePort = FreePort.next()
        var file = ""
        let daemon = try await LabDaemon.launch("dnsdist", ports: [dotPort, dohPort], timeout: timeout) { directory in
            file = directory + "/dnsdist.conf"
            try config(listen: IPAddress(Lab.loopback)!, backend: backend, tls: tls,
                       ports: (dotPort, dohPort, plainPort, consolePort)).write(toFile: file, atomically: true, encoding: .utf8)
            try Lab.run("dnsdist", ["--check-config", "-C", file])
            return try LabProcess("dnsdist", arguments: ["--supervised", "--disable-syslog", "-C", file],
                                  directory: directory, name: "dnsdist")
        }
        return LabDnsdist(dotPort: dotPort, dohPort: dohPort, listen: IPAddress(Lab.loopback)!, configFile: file,
                          netns: nil, process: daemon.process, daemon: daemon)
    }

    /// Starts dnsdist inside `site`'s namespace, listening only on its far veth address (IPv4):
    /// from this namespace it is reached over the veth and nothing else.
    public static func start(in site: LabDualStackSite, backend: SocketAddress, tls: CertPair) async throws -> LabDnsdist {
        let dotPort = FreePort.next(), dohPort = FreePort.next(), plainPort = FreePort.next(), consolePort = FreePort.next()
        let directory = try Lab.makeDirectory("dnsdist-netns")
        let file = directory + "/dnsdist.conf"
        try config(listen: site.remoteV4, backend: backend, tls: tls,
                   ports: (dotPort, dohPort, plainPort, consolePort)).write(toFile: file, atomically: true, encoding: .utf8)
        try Lab.run("dnsdist", ["--check-config", "-C", file])
        let process = try site.netns.spawn("dnsdist", arguments: ["--supervised", "--disable-syslog", "-C", file],
                                           directory: directory, name: "dnsdist")
        for port in [dotPort, dohPort] {
            try await site.waitForTCP(SocketAddress(ip: site.remoteV4, port: port), process: process)
        }
        return LabDnsdist(dotPort: dotPort, dohPort: dohPort, listen: site.remoteV4, configFile: file,
                          netns: site.netns, process: process, daemon: nil)
    }

    private init(dotPort: UInt16, dohPort: UInt16, listen: IPAddress, configFile: String, netns: LabNetns?,
                 process: LabProcess, daemon: LabDaemon?) {
        self.dotPort = dotPort
        self.dohPort = dohPort
        self.listen = listen
        self.configFile = configFile
        self.netns = netns
        self.process = process
        self.daemon = daemon
    }

    /// The queries it has received on any listener (DoT, DoH, plain) since it started: its
    /// `queries` counter, read over its console (`dnsdist -c -e 'dumpStats()'`).
    public func queries() throws -> Int {
        let arguments = ["-C", configFile, "-c", "-e", "dumpStats()"]
        let dump = try netns.map { try $0.run("dnsdist", arguments) } ?? Lab.run("dnsdist", arguments)
        // Two columns of "name<TAB>value" per line.
        let fields = dump.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
        guard let i = fields.firstIndex(of: "queries"), i + 1 < fields.count, let n = Int(fields[i + 1]) else {
            throw LabError("dnsdist: no 'queries' counter in dumpStats():\n\(dump)")
        }
        return n
    }

    /// The TLS handshakes its listener on `port` (DoT or DoH) has completed since it started,
    /// new and resumed: one per connection. `showTCPStats()`'s "TLS new sessions" and "TLS
    /// Resumptions" columns (the 12th and 13th fields) of that frontend's row.
    public func tlsHandshakes(port: UInt16) throws -> Int {
        let arguments = ["-C", configFile, "-c", "-e", "showTCPStats()"]
        let table = try netns.map { try $0.run("dnsdist", arguments) } ?? Lab.run("dnsdist", arguments)
        let address = "\(listen):\(port)"
        for line in table.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count > 12, fields[1] == address else { continue }
            guard let new = Int(fields[11]), let resumed = Int(fields[12]) else { break }
            return new + resumed
        }
        throw LabError("dnsdist: no TLS counters for \(address) in showTCPStats():\n\(table)")
    }

    public func stop() { process.stop() }
}

/// unbound serving DNS over TLS (and plain DNS) on 127.0.0.1, or in a `LabDualStackSite`'s
/// namespace, from local data only (it forwards nowhere).
public final class LabUnbound: Sendable {
    public let dotPort: UInt16
    /// Its plain DNS port (UDP and TCP), on the same address.
    public let plainPort: UInt16
    public let listen: IPAddress
    private let process: LabProcess
    private let daemon: LabDaemon?

    public var dotAddress: SocketAddress { SocketAddress(ip: listen, port: dotPort) }
    public var plainAddress: SocketAddress { SocketAddress(ip: listen, port: plainPort) }

    static func config(listen: IPAddress, dotPort: UInt16, plainPort: UInt16, records: [(name: String, ip: String)],
                       tls: CertPair, directory: String) -> String {
        let data = records.map { r in
            "    local-data: \"\(r.name). 60 IN \(r.ip.contains(":") ? "AAAA" : "A") \(r.ip)\""
        }.joined(separator: "\n")
        let zones = Set(records.map { $0.name }).map { "    local-zone: \"\($0).\" static" }.joined(separator: "\n")
        return """
            server:
                interface: \(listen)@\(dotPort)
                interface: \(listen)@\(plainPort)
                tls-port: \(dotPort)
                tls-service-key: "\(tls.keyFile)"
                tls-service-pem: "\(tls.certFile)"
                username: ""
                chroot: ""
                directory: "\(directory)"
                pidfile: "\(directory)/unbound.pid"
                use-syslog: no
                logfile: ""
                do-daemonize: no
                do-ip6: no
                access-control: 0.0.0.0/0 allow
                module-config: "iterator"
                root-hints: ""
                do-not-query-localhost: yes
                local-zone: "." refuse
            \(zones)
            \(data)
            remote-control:
                control-enable: no

            """
    }

    /// `records`: (name, address) pairs it answers authoritatively (A or AAAA by the address).
    public static func start(records: [(name: String, ip: String)], tls: CertPair, timeout: Double = 30) async throws -> LabUnbound {
        let dotPort = FreePort.next(), plainPort = FreePort.next()
        let listen = IPAddress(Lab.loopback)!
        let daemon = try await LabDaemon.launch("unbound", ports: [dotPort, plainPort], timeout: timeout) { directory in
            let file = directory + "/unbound.conf"
            try config(listen: listen, dotPort: dotPort, plainPort: plainPort, records: records, tls: tls, directory: directory)
                .write(toFile: file, atomically: true, encoding: .utf8)
            try Lab.run("unbound-checkconf", [file])
            return try LabProcess("unbound", arguments: ["-d", "-c", file], directory: directory, name: "unbound")
        }
        return LabUnbound(dotPort: dotPort, plainPort: plainPort, listen: listen, process: daemon.process, daemon: daemon)
    }

    /// unbound inside `site`'s namespace, listening only on its far veth address (IPv4).
    public static func start(in site: LabDualStackSite, records: [(name: String, ip: String)], tls: CertPair) async throws -> LabUnbound {
        let dotPort = FreePort.next(), plainPort = FreePort.next()
        let directory = try Lab.makeDirectory("unbound-netns")
        let file = directory + "/unbound.conf"
        try config(listen: site.remoteV4, dotPort: dotPort, plainPort: plainPort, records: records, tls: tls, directory: directory)
            .write(toFile: file, atomically: true, encoding: .utf8)
        try Lab.run("unbound-checkconf", [file])
        let process = try site.netns.spawn("unbound", arguments: ["-d", "-c", file], directory: directory, name: "unbound")
        for port in [dotPort, plainPort] {
            try await site.waitForTCP(SocketAddress(ip: site.remoteV4, port: port), process: process)
        }
        return LabUnbound(dotPort: dotPort, plainPort: plainPort, listen: site.remoteV4, process: process, daemon: nil)
    }

    private init(dotPort: UInt16, plainPort: UInt16, listen: IPAddress, process: LabProcess, daemon: LabDaemon?) {
        self.dotPort = dotPort
        self.plainPort = plainPort
        self.listen = listen
        self.process = process
        self.daemon = daemon
    }

    public func stop() { process.stop() }
}
