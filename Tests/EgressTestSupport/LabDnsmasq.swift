import Foundation
import EgressNet

/// dnsmasq as an authoritative-looking resolver on 127.0.0.1:`port`, UDP and TCP, answering
/// only from the records given — it never forwards anywhere (`--no-resolv`, no `--server`).
///
/// What dnsmasq 2.90 answers, checked with dig:
/// - a name given by `.address` or `.host`, for its own type(s): NOERROR with the address(es),
///   TTL 0.
/// - an `.address` name asked for another type (AAAA of a v4-only name, MX...): dnsmasq ≥ 2.86
///   would *forward* such a query, and with no upstream answer REFUSED; the lab adds
///   `--local=/domain/` for every `.address` domain, so it answers NOERROR with no records
///   (NODATA), as an authoritative server would. A `.host` name asked for another type: NODATA.
/// - any other name, with `unknownNames: .refused` (the default): **REFUSED** (rcode 5, with an
///   extended DNS error "not ready"), because there is no upstream server to forward it to. That
///   is not what a real resolver says for a missing name.
/// - any other name, with `unknownNames: .nxdomain`: **NXDOMAIN** (rcode 3). This passes
///   `--local=/#/`, which tells dnsmasq every domain is local: answered from its own data or
///   NXDOMAIN. (`--address=/#/` and `--server=/#/` with no address behave the same in 2.90;
///   `--address=/#/1.2.3.4`, with an address, is a wildcard *answer* instead, and
///   `--address=/#/#` answers 0.0.0.0 / ::.)
///
/// It runs with `--keep-in-foreground` rather than `--no-daemon`, because `--no-daemon` does
/// not write the pid file; `--log-facility=-` sends the log (with every query,
/// `--log-queries`) to stderr, which is the lab log file. `--conf-file=/dev/null` keeps a host's
/// /etc/dnsmasq.conf out of it. Readiness is checked on its TCP port (it serves UDP on the same
/// port number).
public final class LabDnsmasq: Sendable {
    /// A name dnsmasq answers for.
    public enum Record: Sendable, Hashable {
        /// `--address=/domain/ip`: `ip` (v4 or v6) for `domain` **and every name under it**. Repeat
        /// for several addresses or both families. Queries of other types get NOERROR with no answer
        /// (see `LabDnsmasq`).
        case address(domain: String, ip: String)
        /// `--host-record=name,ip,...`: A and AAAA answers for exactly `name` (not its subdomains),
        /// from v4 and v6 addresses mixed in `ips`.
        case host(name: String, ips: [String])
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
    /// The lab directory (log, pid file).
    public let directory: String
    public let process: LabProcess

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
                             timeout: Double = 10) async throws -> LabDnsmasq {
        let directory = try Lab.makeDirectory("dnsmasq")
        let arguments = Self.arguments(records: records, unknownNames: unknownNames, port: port,
                                       pidFile: directory + "/dnsmasq.pid") + extraArguments
        let process = try LabProcess("dnsmasq", arguments: arguments, directory: directory, name: "dnsmasq")
        let dnsmasq = LabDnsmasq(port: port, records: records, directory: directory, process: process)
        try await process.waitForTCPPort(port, timeout: timeout)
        try process.checkRunning()
        return dnsmasq
    }

    /// The command line for `records` (without the program name).
    public static func arguments(records: [Record], unknownNames: UnknownNames, port: UInt16,
                                 pidFile: String) -> [String] {
        var arguments = [
            "--keep-in-foreground", "--log-facility=-", "--log-queries",
            "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
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
            case .nxdomain(let domain):
                arguments.append("--address=/\(domain)/")
            }
        }
        arguments += localDomains.map { "--local=/\($0)/" }
        if unknownNames == .nxdomain { arguments.append("--local=/#/") }
        return arguments
    }

    private init(port: UInt16, records: [Record], directory: String, process: LabProcess) {
        self.port = port
        self.records = records
        self.directory = directory
        self.process = process
    }

    deinit {
        process.stop()
        Lab.removeDirectory(directory)
    }

    /// Stops dnsmasq and waits for it to exit.
    public func stop() { process.stop() }
}
