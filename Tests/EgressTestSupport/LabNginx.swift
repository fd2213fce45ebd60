import Foundation

/// What one nginx `location` does: answer with a fixed status, body and headers (a registry's
/// `/v2/`, a captive portal's HTML page, a 429 from a rate-limited mirror...).
public struct NginxLocation: Sendable {
    /// How `path` matches a request URI.
    public enum Match: Sendable {
        /// `location = /v2/`: this URI only.
        case exact
        /// `location /v2/`: every URI that starts with it.
        case prefix
    }

    public var path: String
    public var match: Match
    /// The status `return` answers with; nil for a location made only of `directives`.
    public var status: Int?
    /// The body, sent verbatim (`$` is not expanded). For 301, 302, 303, 307 and 308 nginx
    /// takes this text as the `Location` URL instead.
    public var body: String?
    /// Extra response headers, in order, sent whatever the status (`add_header ... always`).
    /// A `Content-Type` entry sets the body's type (nginx's `default_type`) instead of adding a
    /// second header; without one it is `text/plain`.
    public var headers: [(name: String, value: String)]
    /// Raw nginx directives added inside the location, each without its trailing `;`.
    public var directives: [String]
    /// Bytes served as a static file (`200`, with Content-Length, ETag and range support),
    /// instead of a `return`: for bodies larger than nginx's 4 KB limit on a config string,
    /// such as blobs.
    public var fileContents: [UInt8]?

    public init(_ path: String, match: Match = .exact, status: Int?, body: String? = nil,
                headers: [(name: String, value: String)] = [], directives: [String] = []) {
        self.path = path
        self.match = match
        self.status = status
        self.body = body
        self.headers = headers
        self.directives = directives
    }

    /// `contents` served as a static file at exactly `path`, with `headers` (a `Content-Type`
    /// entry sets its type; without one it is application/octet-stream).
    public static func file(_ path: String, contents: [UInt8],
                            headers: [(name: String, value: String)] = []) -> NginxLocation {
        var location = NginxLocation(path, status: nil, headers: headers)
        if !headers.contains(where: { $0.name.lowercased() == "content-type" }) {
            location.headers.append(("Content-Type", "application/octet-stream"))
        }
        location.fileContents = contents
        return location
    }

    /// A distribution registry's `/v2/`: `200 {}` with `Docker-Distribution-API-Version`.
    public static func registryV2(status: Int = 200, body: String = "{}",
                                  extraHeaders: [(name: String, value: String)] = []) -> NginxLocation {
        NginxLocation("/v2/", status: status, body: body,
                      headers: [("Content-Type", "application/json; charset=utf-8"),
                                ("Docker-Distribution-API-Version", "registry/2.0")] + extraHeaders)
    }

    /// A captive portal: `200` with an HTML page on every path.
    public static func captivePortal(body: String = "<html><body>Please log in to the network</body></html>")
        -> NginxLocation {
        NginxLocation("/", match: .prefix, status: 200, body: body,
                      headers: [("Content-Type", "text/html; charset=utf-8")])
    }
}

/// One nginx `server` block on 127.0.0.1.
public struct NginxServer: Sendable {
    /// The port it listens on, on 127.0.0.1.
    public var port: UInt16
    /// The certificate it serves; nil for plain HTTP.
    public var tls: CertPair?
    /// `ssl_protocols` (nginx's names: "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3").
    public var protocols: [String]
    /// `ssl_ciphers`, when not nginx's default (e.g. "DEFAULT:@SECLEVEL=0" to allow TLS 1.0).
    public var ciphers: String?
    /// Its locations, in order. A request no location matches gets `404`.
    public var locations: [NginxLocation]
    /// Raw nginx directives added to the server block, each without its trailing `;`.
    public var directives: [String]

    public init(port: UInt16 = FreePort.next(), tls: CertPair?, protocols: [String] = ["TLSv1.2", "TLSv1.3"],
                ciphers: String? = nil, locations: [NginxLocation], directives: [String] = []) {
        self.port = port
        self.tls = tls
        self.protocols = protocols
        self.ciphers = ciphers
        self.locations = locations
        self.directives = directives
    }
}

/// nginx serving fixed answers over TLS or plain HTTP on loopback.
///
/// Runs `nginx -p DIR/ -c DIR/nginx.conf -g 'daemon off; pid DIR/nginx.pid;'` with its error
/// log and every temp path inside its lab directory, so it never touches /var/lib/nginx or
/// /run. As root, workers run as root too (`user root;`) so they can use the lab directory.
public final class LabNginx: Sendable {
    /// The server blocks it serves.
    public let servers: [NginxServer]
    public let daemon: LabDaemon
    /// The lab directory (config, logs, pid file, temp paths).
    public var directory: String { daemon.directory }
    /// The nginx process.
    public var process: LabProcess { daemon.process }

    /// The ports of `servers`, in order.
    public var ports: [UInt16] { servers.map(\.port) }
    /// The first server's port.
    public var port: UInt16 { servers[0].port }

    /// Writes the config, starts nginx and waits until every server's port accepts connections.
    ///
    /// - Parameter httpDirectives: raw directives for the `http` block, each without its
    ///   trailing `;` (e.g. a `log_format` that a server's `access_log` names; relative log
    ///   paths are inside the lab directory).
    /// - Throws: `LabError` (with nginx's last log lines) when nginx is missing, rejects the
    ///   config, or does not listen within `timeout` seconds.
    public static func start(servers: [NginxServer], httpDirectives: [String] = [],
                             timeout: Double = 30) async throws -> LabNginx {
        precondition(!servers.isEmpty, "LabNginx needs at least one server")
        let daemon = try await LabDaemon.launch("nginx", ports: servers.map(\.port), timeout: timeout) { directory in
            try FileManager.default.createDirectory(atPath: directory + "/tmp", withIntermediateDirectories: true)
            let config = renderConfig(servers: servers, directory: directory, httpDirectives: httpDirectives)
            try config.write(toFile: directory + "/nginx.conf", atomically: true, encoding: .utf8)
            for (s, server) in servers.enumerated() {
                for (l, location) in server.locations.enumerated() {
                    guard let contents = location.fileContents else { continue }
                    try FileManager.default.createDirectory(atPath: directory + "/files", withIntermediateDirectories: true)
                    try Data(contents).write(to: URL(fileURLWithPath: fileName(directory: directory, server: s, location: l)))
                }
            }
            return try LabProcess("nginx", arguments: [
                "-p", directory + "/", "-c", directory + "/nginx.conf", "-e", directory + "/error.log",
                "-g", "daemon off; pid \(directory)/nginx.pid;",
            ], directory: directory, name: "nginx", otherLogFiles: [directory + "/error.log"])
        }
        return LabNginx(servers: servers, daemon: daemon)
    }

    /// One server with TLS: the usual case.
    public static func start(tls: CertPair?, locations: [NginxLocation],
                             protocols: [String] = ["TLSv1.2", "TLSv1.3"], ciphers: String? = nil) async throws -> LabNginx {
        try await start(servers: [NginxServer(tls: tls, protocols: protocols, ciphers: ciphers, locations: locations)])
    }

    private init(servers: [NginxServer], daemon: LabDaemon) {
        self.servers = servers
        self.daemon = daemon
    }

    /// Stops nginx (SIGTERM, then SIGKILL); does not wait.
    public func stop() { daemon.stop() }

    /// The last lines of nginx's stderr and of its error log.
    public func logTail(lines: Int = 20) -> String { process.logTail(lines: lines) }

    // MARK: config

    /// The nginx.conf for `servers`, with every path inside `directory`.
    public static func renderConfig(servers: [NginxServer], directory: String, httpDirectives: [String] = []) -> String {
        var lines: [String] = []
        if Lab.isRoot { lines.append("user root;") }
        lines += [
            "worker_processes 1;",
            "error_log \(directory)/error.log info;",
            "events { worker_connections 256; }",
            "http {",
            "    access_log \(directory)/access.log;",
            "    client_body_temp_path \(directory)/tmp/body;",
            "    proxy_temp_path \(directory)/tmp/proxy;",
            "    fastcgi_temp_path \(directory)/tmp/fastcgi;",
            "    uwsgi_temp_path \(directory)/tmp/uwsgi;",
            "    scgi_temp_path \(directory)/tmp/scgi;",
            "    server_tokens off;",
            "    default_type text/plain;",
            // nginx strings have no escape for `$`; "${dollar}" expands to a literal one.
            "    geo $dollar { default \"$\"; }",
        ]
        for directive in httpDirectives { lines.append("    \(directive);") }
        for (serverIndex, server) in servers.enumerated() {
            lines.append("    server {")
            if let tls = server.tls {
                lines.append("        listen \(Lab.loopback):\(server.port) ssl;")
                lines.append("        ssl_certificate \(tls.certFile);")
                lines.append("        ssl_certificate_key \(tls.keyFile);")
                lines.append("        ssl_protocols \(server.protocols.joined(separator: " "));")
                if let ciphers = server.ciphers { lines.append("        ssl_ciphers \(quoted(ciphers));") }
            } else {
                lines.append("        listen \(Lab.loopback):\(server.port);")
            }
            lines.append("        server_name _;")
            // A directory that does not exist: an unmatched URI answers 404.
            lines.append("        root \(directory)/no-such-docroot;")
            for directive in server.directives { lines.append("        \(directive);") }
            for (locationIndex, location) in server.locations.enumerated() {
                let match = location.match == .exact ? "= " : ""
                lines.append("        location \(match)\(location.path) {")
                for (name, value) in location.headers {
                    if name.lowercased() == "content-type" {
                        lines.append("            default_type \(quoted(value));")
                    } else {
                        lines.append("            add_header \(name) \(quoted(value)) always;")
                    }
                }
                for directive in location.directives { lines.append("            \(directive);") }
                if location.fileContents != nil {
                    lines.append("            alias \(fileName(directory: directory, server: serverIndex, location: locationIndex));")
                }
                if let status = location.status {
                    if let body = location.body {
                        lines.append("            return \(status) \(quoted(body));")
                    } else {
                        lines.append("            return \(status);")
                    }
                }
                lines.append("        }")
            }
            lines.append("    }")
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Where a location's `fileContents` are written.
    static func fileName(directory: String, server: Int, location: Int) -> String {
        "\(directory)/files/\(server)-\(location)"
    }

    /// An nginx double-quoted string whose content is taken literally.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for ch in text {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "$": out += "${dollar}"
            default: out.append(ch)
            }
        }
        return out + "\""
    }
}
