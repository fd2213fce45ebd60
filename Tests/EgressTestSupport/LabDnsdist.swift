import Foundation
import EgressNet

/// dnsdist in front of a plain lab resolver (a dnsmasq on loopback), serving DNS over TLS and
/// DNS over HTTPS (HTTP/1.1 at `/dns-query`) on 127.0.0.1 with a lab certificate.
///
/// The config turns off the security poll (`setSecurityPollSuffix("")`: no query to a public
/// name) and sets its own plain listener (without one dnsdist listens on port 53); it is checked
/// with `dnsdist --check-config` before dnsdist starts.
public final class LabDnsdist: Sendable {
    public let dotPort: UInt16
    public let dohPort: UInt16
    private let daemon: LabDaemon

    public var dotAddress: SocketAddress { SocketAddress(ip: IPAddress(Lab.loopback)!, port: dotPort) }

    /// Starts dnsdist forwarding to `backend` (a plain resolver) with `tls` as its certificate.
    public static func start(backend: SocketAddress, tls: CertPair, timeout: Double = 30) async throws -> LabDnsdist {
        let dotPort = FreePort.next(), dohPort = FreePort.next(), plainPort = FreePort.next()
        let daemon = try await LabDaemon.launch("dnsdist", ports: [dotPort, dohPort], timeout: timeout) { directory in
            let config = """
                setSecurityPollSuffix("")
                setLocal("127.0.0.1:\(plainPort)")
                newServer({address="\(backend)", healthCheckMode="up"})
                addTLSLocal("127.0.0.1:\(dotPort)", "\(tls.certFile)", "\(tls.keyFile)")
                addDOHLocal("127.0.0.1:\(dohPort)", "\(tls.certFile)", "\(tls.keyFile)", "/dns-query")

                """
            let file = directory + "/dnsdist.conf"
            try config.write(toFile: file, atomically: true, encoding: .utf8)
            try Lab.run("dnsdist", ["--check-config", "-C", file])
            return try LabProcess("dnsdist", arguments: ["--supervised", "--disable-syslog", "-C", file],
                                  directory: directory, name: "dnsdist")
        }
        return LabDnsdist(dotPort: dotPort, dohPort: dohPort, daemon: daemon)
    }

    private init(dotPort: UInt16, dohPort: UInt16, daemon: LabDaemon) {
        self.dotPort = dotPort
        self.dohPort = dohPort
        self.daemon = daemon
    }

    public func stop() { daemon.stop() }
}

/// unbound serving DNS over TLS on 127.0.0.1 from local data only (it forwards nowhere).
public final class LabUnbound: Sendable {
    public let dotPort: UInt16
    private let daemon: LabDaemon

    public var dotAddress: SocketAddress { SocketAddress(ip: IPAddress(Lab.loopback)!, port: dotPort) }

    /// `records`: (name, address) pairs it answers authoritatively (A or AAAA by the address).
    public static func start(records: [(name: String, ip: String)], tls: CertPair, timeout: Double = 30) async throws -> LabUnbound {
        let dotPort = FreePort.next()
        let daemon = try await LabDaemon.launch("unbound", ports: [dotPort], timeout: timeout) { directory in
            let data = records.map { r in
                "    local-data: \"\(r.name). 60 IN \(r.ip.contains(":") ? "AAAA" : "A") \(r.ip)\""
            }.joined(separator: "\n")
            let zones = Set(records.map { $0.name }).map { "    local-zone: \"\($0).\" static" }.joined(separator: "\n")
            let config = """
                server:
                    interface: 127.0.0.1@\(dotPort)
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
                    access-control: 127.0.0.0/8 allow
                    module-config: "iterator"
                    root-hints: ""
                    do-not-query-localhost: yes
                    local-zone: "." refuse
                \(zones)
                \(data)
                remote-control:
                    control-enable: no

                """
            let file = directory + "/unbound.conf"
            try config.write(toFile: file, atomically: true, encoding: .utf8)
            try Lab.run("unbound-checkconf", [file])
            return try LabProcess("unbound", arguments: ["-d", "-c", file], directory: directory, name: "unbound")
        }
        return LabUnbound(dotPort: dotPort, daemon: daemon)
    }

    private init(dotPort: UInt16, daemon: LabDaemon) {
        self.dotPort = dotPort
        self.daemon = daemon
    }

    public func stop() { daemon.stop() }
}
