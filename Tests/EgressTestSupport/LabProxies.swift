import Foundation

/// tinyproxy (Debian's 1.11) as an HTTP CONNECT proxy on 127.0.0.1:`port`, in the foreground
/// (`tinyproxy -d -c CONFIG`), its config, log and pid file in its lab directory, no syslog.
/// It accepts clients from 127.0.0.1 only.
///
/// What tinyproxy 1.11.1 answers a CONNECT (checked by hand; `PathTests` keeps checking it):
/// - open, target reachable: `HTTP/1.0 200 Connection established`, then the tunnel.
/// - `BasicAuth` set, no `Proxy-Authorization`: `HTTP/1.0 407 Proxy Authentication Required`
///   with `Proxy-Authenticate: Basic realm="Tinyproxy"`, HTML body, `Connection: close`.
/// - `BasicAuth` set, wrong credentials: **`HTTP/1.0 401 Unauthorized`** (not 407) with
///   `WWW-Authenticate: Basic realm="Tinyproxy"`.
/// - a port no `ConnectPort` line allows: `HTTP/1.1 403 Access violation` ("The CONNECT method
///   not allowed with the port you tried to use."). With no `ConnectPort` line every port is allowed.
/// - target refuses or its name does not resolve: `HTTP/1.1 500 Unable to connect`.
/// Every refusal closes the connection after its HTML body (no Content-Length).
public final class LabTinyproxy: Sendable {
    public let port: UInt16
    public let daemon: LabDaemon
    public var directory: String { daemon.directory }
    public var process: LabProcess { daemon.process }

    /// "http://127.0.0.1:PORT", with `user:password@` when given.
    public func url(user: String? = nil, password: String? = nil) -> String {
        let userinfo = user.map { u in password.map { "\(u):\($0)@" } ?? "\(u)@" } ?? ""
        return "http://\(userinfo)\(Lab.loopback):\(port)"
    }

    /// Starts tinyproxy and waits until it listens.
    ///
    /// - Parameters:
    ///   - basicAuth: `BasicAuth user password`: every request must carry these credentials.
    ///   - connectPorts: `ConnectPort` lines: CONNECT only to these ports (none: any port).
    public static func start(basicAuth: (user: String, password: String)? = nil, connectPorts: [UInt16] = [],
                             port: UInt16 = FreePort.next(), timeout: Double = 30) async throws -> LabTinyproxy {
        let daemon = try await LabDaemon.launch("tinyproxy", ports: [port], timeout: timeout) { directory in
            var lines = [
                "Port \(port)",
                "Listen \(Lab.loopback)",
                "Timeout 30",
                "Allow \(Lab.loopback)",
                "MaxClients 64",
                "LogLevel Info",
                "LogFile \"\(directory)/tinyproxy.log\"",
                "PidFile \"\(directory)/tinyproxy.pid\"",
                "Syslog Off",
            ]
            if let auth = basicAuth { lines.append("BasicAuth \(auth.user) \(auth.password)") }
            lines += connectPorts.map { "ConnectPort \($0)" }
            let configFile = directory + "/tinyproxy.conf"
            try (lines.joined(separator: "\n") + "\n").write(toFile: configFile, atomically: true, encoding: .utf8)
            return try LabProcess("tinyproxy", arguments: ["-d", "-c", configFile], directory: directory,
                                  name: "tinyproxy", logName: "stderr.log",
                                  otherLogFiles: [directory + "/tinyproxy.log"])
        }
        return LabTinyproxy(port: port, daemon: daemon)
    }

    private init(port: UInt16, daemon: LabDaemon) {
        self.port = port
        self.daemon = daemon
    }

    /// Stops tinyproxy (SIGTERM, then SIGKILL); does not wait.
    public func stop() { daemon.stop() }

    /// Stops tinyproxy and waits until it has exited (its port is closed then).
    public func stopAndWait(timeout: Double = 30) async throws {
        process.stop()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() >= deadline { throw LabError("tinyproxy did not exit within \(timeout)s") }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
    }
}

/// microsocks (Debian's 1.0.3) as a SOCKS5 proxy on 127.0.0.1:`port`
/// (`microsocks -i 127.0.0.1 -p PORT [-u USER -P PASSWORD]`).
///
/// What microsocks 1.0.3 answers (checked by hand; `PathTests` keeps checking it):
/// - without `-u/-P`: method 0x00 (no authentication) to a greeting offering it.
/// - with `-u/-P`: method 0x02 (username/password) when offered; to a greeting offering only
///   0x00, `05 FF` (no acceptable method) and it closes; wrong credentials: RFC 1929 status
///   `01 02` (failure) and it closes; right ones: `01 00`.
/// - CONNECT to a port nothing listens on: reply 0x05 (connection refused).
/// - a name (ATYP 3) is resolved with getaddrinfo: `localhost` comes from /etc/hosts.
public final class LabMicrosocks: Sendable {
    public let port: UInt16
    public let daemon: LabDaemon
    public var directory: String { daemon.directory }
    public var process: LabProcess { daemon.process }

    /// "SCHEME://127.0.0.1:PORT", with `user:password@` when given.
    public func url(scheme: String = "socks5", user: String? = nil, password: String? = nil) -> String {
        let userinfo = user.map { u in password.map { "\(u):\($0)@" } ?? "\(u)@" } ?? ""
        return "\(scheme)://\(userinfo)\(Lab.loopback):\(port)"
    }

    /// Starts microsocks (with `-u user -P password` when `credentials` are given) and waits
    /// until it listens.
    public static func start(credentials: (user: String, password: String)? = nil,
                             port: UInt16 = FreePort.next(), timeout: Double = 30) async throws -> LabMicrosocks {
        var arguments = ["-i", Lab.loopback, "-p", "\(port)"]
        if let c = credentials { arguments += ["-u", c.user, "-P", c.password] }
        let daemon = try await LabDaemon.launch("microsocks", ports: [port], timeout: timeout) { directory in
            try LabProcess("microsocks", arguments: arguments, directory: directory, name: "microsocks")
        }
        return LabMicrosocks(port: port, daemon: daemon)
    }

    private init(port: UInt16, daemon: LabDaemon) {
        self.port = port
        self.daemon = daemon
    }

    /// Stops microsocks; does not wait.
    public func stop() { daemon.stop() }
}
