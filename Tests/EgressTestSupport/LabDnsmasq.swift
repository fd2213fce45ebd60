import Foundation
import EgressNet

/// dnsmasq as an authoritative-looking resolver on 127.0.0.1:`port`, UDP and TCP, answering
/// only from the records given — it never forwards anywhere (`--no-resolv`, no `--server`).
///
/// What dnsmasq 2.90 answers here (checked with dig; `LabTests` keeps checking it):
/// - a record's name, for its own type(s): NOERROR with the record, TTL 0.
/// - a record's name, for another type (AAAA of a v4-only name, A of a TXT-only name, MX...):
///   NOERROR with no answer (NODATA), as an authoritative server would. dnsmasq on its own would
///   *forward* such a query (≥ 2.86) and, having no upstream, answer REFUSED; the lab passes
///   `--local=/name/` for every record's name to prevent that.
/// - a name under an `.address` domain: the same as the domain (`--address` covers subdomains);
///   a name under a `.host` or `.txt` name: NXDOMAIN (`--local` covers subdomains).
/// - any other name, with `unknownNames: .refused` (the default): **REFUSED** (rcode 5, with an
///   extended DNS error "not ready"), because there is no upstream server to forward it to. That
///   is not what a real resolver says for a missing name.
/// - any other name, with `unknownNames: .nxdomain`: **NXDOMAIN** (rcode 3). This passes
///   `--local=/#/`, which tells dnsmasq every domain is local: answered from its own data or
///   NXDOMAIN. (`--address=/#/` and `--server=/#/` with no address behave the same in 2.90;
///   `--address=/#/1.2.3.4`, with an address, is a wildcard *answer* instead, and
///   `--address=/#/#` answers 0.0.0.0 / ::.)
///
/// Records passed through `extraArguments` (`--txt-record`, `--cname`...) get no `--local`:
/// other types for their names are REFUSED unless `unknownNames` is `.nxdomain`. Prefer the
/// `Record` cases.
///
/// It runs with `--keep-in-foreground` rather than `--no-daemon`, because `--no-daemon` does
/// not write the pid file; `--log-facility=-` sends the log (with every query,
/// `--log-queries`) to stderr, which is the lab log file. `--conf-file=` an empty file in the
/// lab directory keeps a host's /etc/dnsmasq.conf out of it. As root, dnsmasq drops to its
/// own user after binding. Readiness is checked on its TCP port (it serves UDP on the same
/// port number).
public final class LabDnsmasq: Sendable {
    /// A name dnsmasq answers for.
    public enum Record: Sendable, Hashable {
        /// `--address=/domain/ip`: `ip` (v4 or v6) for `domain` **and every name under it**. Repeat
        /// for several addresses or both families. Other types get NODATA (see `LabDnsmasq`).
        case address(domain: String, ip: String)
        /// `--host-record=name,ip,...`: A and AAAA answers for exactly `name` (its subdomains are
        /// NXDOMAIN), from v4 and v6 addresses mixed in `ips`; a type with no address gets NODATA.
        case host(name: String, ips: [String])
        /// `--txt-record=name,text`: a TXT record for exactly `name` (a name that exists but has
        /// no address: A and AAAA get NODATA).
        case txt(name: String, text: String)
        /// `--address=/domain/`: NXDOMAIN for `domain` and every name under it.
        case nxdomain(domain: String)
    }

    /// What dnsmasq answers for names it has no record for.
    public enum UnknownNames: Sendable {
        /// REFUSED: dnsmasq's own answer when it has no upstream to forward to.
        case refused
        /// NXDOMAIN: every domain is local (`--local=/#/`).
        case nxdomain
    }

    /// The port, on 127.0.0.1, UDP and TCP.
    public let port: UInt16
    public let records: [Record]
    public let daemon: LabDaemon
    /// The lab directory (log, pid file).
    public var directory: String { daemon.directory }
    public var process: LabProcess { daemon.process }

    /// 127.0.0.1:`port`, as a resolver address.
    public var address: SocketAddress { SocketAddress(ip: IPAddress(Lab.loopback)!, port: port) }

    /// The pid file dnsmasq writes.
    public var pidFile: String { directory + "/dnsmasq.pid" }

    /// Starts dnsmasq with `records` and waits until its TCP port accepts connections.
    ///
    /// - Parameter extraArguments: more dnsmasq options, e.g. `--max-ttl=1` or `--txt-record=...`.
    /// - Throws: `LabError` with dnsmasq's last log lines when it is missing or fails to start.
    public static func start(records: [Record], unknownNames: UnknownNames = .refused,
                             port: UInt16 = FreePort.next(), extraArguments: [String] = [],
                             timeout: Double = 30) async throws -> LabDnsmasq {
        let daemon = try await LabDaemon.launch("dnsmasq", ports: [port], timeout: timeout) { directory in
            // An empty config file of its own, so a host's /etc/dnsmasq.conf plays no part.
            let configFile = directory + "/dnsmasq.conf"
            try Data().write(to: URL(fileURLWithPath: configFile))
            let arguments = Self.arguments(records: records, unknownNames: unknownNames, port: port,
                                           pidFile: directory + "/dnsmasq.pid", configFile: configFile) + extraArguments
            return try LabProcess("dnsmasq", arguments: arguments, directory: directory, name: "dnsmasq")
        }
        return LabDnsmasq(port: port, records: records, daemon: daemon)
    }

    /// The command line for `records` (without the program name).
    public static func arguments(records: [Record], unknownNames: UnknownNames, port: UInt16,
                                 pidFile: String, configFile: String) -> [String] {
        var arguments = [
            "--keep-in-foreground", "--log-facility=-", "--log-queries",
            "--conf-file=\(configFile)", "--no-resolv", "--no-hosts", "--no-poll",
            "--port=\(port)", "--listen-address=\(Lab.loopback)", "--bind-interfaces",
            "--pid-file=\(pidFile)",
        ]
        var localDomains: [String] = []
        for record in records {
            switch record {
            case .address(let domain, let ip):
                arguments.append("--address=/\(domain)/\(ip)")
                if !localDomains.contains(domain) { localDomains.append(domain) }
            case .host(let name, let ips):
                arguments.append("--host-record=" + ([name] + ips).joined(separator: ","))
                if !localDomains.contains(name) { localDomains.append(name) }
            case .txt(let name, let text):
                arguments.append("--txt-record=\(name),\(text)")
                if !localDomains.contains(name) { localDomains.append(name) }
            case .nxdomain(let domain):
                arguments.append("--address=/\(domain)/")
            }
        }
        arguments += localDomains.map { "--local=/\($0)/" }
        if unknownNames == .nxdomain { arguments.append("--local=/#/") }
        return arguments
    }

    private init(port: UInt16, records: [Record], daemon: LabDaemon) {
        self.port = port
        self.records = records
        self.daemon = daemon
    }

    /// Stops dnsmasq; does not wait.
    public func stop() { daemon.stop() }
}
