#if canImport(Glibc)
import Glibc
#endif
import Foundation
import EgressNet

/// A real dockerd 20.10 (Debian `docker.io`) pulling `docker.io/library/...` from a LAB Docker
/// Hub, for tests where Docker itself judges the agent's advice. Needs root.
///
/// ```
///   test's namespace (host)                              namespace advice-dj-<pid>
///   advh<pid> H = 10.217.x.y+1/30 ──── veth ──── advn<pid> H+1
///     nginx (TLS, lab CA, "registry-1.docker.io" + IP:H):    dockerd (own --data-root, --exec-root,
///       H:443   hub    → docker-registry A (token auth)        socket, pidfile, config file; vfs;
///       H:pb    current → docker-registry B (pull-through        no iptables, no bridge) and its
///                          of H:443)                            containerd; the agent and ctr run
///       H:pc    stale   → docker-registry C (older build)        here too.
///       H:pf    403 on everything                            /etc/hosts (bind-mounted in a mount
///       H:pd    dead (nothing listens)                        namespace of their own):
///       H:tp    token realm → LabTokenServer                    H registry-1.docker.io
///     microsocks on H:ps (resolves with the same hosts file)   nft: `blockHub` rejects H:443
/// ```
///
/// Nothing here resolves a name through DNS: every process that resolves Docker Hub's name
/// (dockerd, ctr, microsocks) sees the lab's hosts file in a mount namespace of its own, so the
/// host's `/etc/hosts` is never touched; the namespace has no route but its veth. dockerd is
/// started once and reloaded (SIGHUP) for each mirror list; `restartDocker` gives it a proxy
/// environment, as a systemd drop-in would.
public final class LabDocker: @unchecked Sendable {
    public static let hasPrograms = ["dockerd", "docker", "ctr", "nginx", "docker-registry", "openssl", "microsocks",
                                     "unshare", "nsenter", "nft", "ip", "tar", "gzip"].allSatisfy(Lab.has)
    public static let service = "egress-lab-docker-hub"
    public static let issuer = "egress-lab-docker-issuer"
    /// The repository and tag every test pulls.
    public static let repository = "library/alpine"
    public static let tag = "3.20"

    public let directory: String
    public let netns: LabNetns
    /// The host side of the veth: where every lab server listens.
    public let hostAddress: String
    public let hostInterface: String
    public let certs: LabCertificates
    /// The certificate of every TLS front: `registry-1.docker.io` and IP:`hostAddress`.
    public let serverCert: CertPair
    public let tokens: LabTokenServer
    public let upstream: LabRegistry
    public let pullThrough: LabRegistry
    public let staleRegistry: LabRegistry
    public let nginx: LabNginx
    public let socks: LabProcess
    /// The build the hub serves now, and the older one the stale mirror serves.
    public let current: LabImage
    public let old: LabImage
    public let ports: Ports
    /// The hosts file dockerd, ctr and the proxy see as /etc/hosts.
    public let hostsFile: String
    private var dockerd: LabProcess?
    private var dockerEnvironment: [String: String] = [:]

    public struct Ports: Sendable {
        public let hub: UInt16 = 443
        public let current, stale, forbidden, dead, token, socks, overridePath: UInt16
    }

    /// `https://H:port`.
    public func url(_ port: UInt16) -> String { "https://\(hostAddress):\(port)" }
    public var currentMirror: String { url(ports.current) }
    public var staleMirror: String { url(ports.stale) }
    public var forbiddenMirror: String { url(ports.forbidden) }
    public var deadMirror: String { url(ports.dead) }
    public var hubURL: String { url(ports.hub) }
    /// A Harbor-style proxy-cache project: `/v2/proxy-project/...` is the current mirror's `/v2/...`.
    public var overridePathMirror: String { url(ports.overridePath) + "/v2/proxy-project" }
    public var socksAddress: String { "\(hostAddress):\(ports.socks)" }
    public var dockerSocket: String { directory + "/docker.sock" }
    public var containerdSocket: String { directory + "/exec/containerd/containerd.sock" }
    public var dockerPidFile: String { directory + "/docker.pid" }
    public var daemonJSON: String { directory + "/daemon.json" }
    /// The reference dockerd pulls: `docker.io/library/alpine:3.20`.
    public var reference: String { "docker.io/\(Self.repository):\(Self.tag)" }

    // MARK: start and stop

    public static func start() async throws -> LabDocker {
        let pid = getpid()
        let directory = try Lab.makeDirectory("docker")
        removeStale()
        let netns = try LabNetns.create("\(namespacePrefix)\(pid)")
        func ip(_ n: Int) -> String { "\(n >> 24 & 255).\(n >> 16 & 255).\(n >> 8 & 255).\(n & 255)" }
        // A /30 in 10.217.0.0/16 chosen by the pid, moved on while another lab holds it.
        var base = (10 << 24) | (217 << 16) | ((Int(pid) & 0x3fff) << 2)
        for _ in 0..<64 {
            let held = (try? Lab.run("ip", ["-o", "-4", "addr", "show", "to", "\(ip(base))/30"])) ?? ""
            if held.isEmpty { break }
            base = (10 << 24) | (217 << 16) | ((base + 4) & 0xffff)
        }
        let host = ip(base + 1), peer = ip(base + 2)
        let hostInterface = "advh\(pid)", peerInterface = "advn\(pid)"
        var cleanup: [() -> Void] = [{ netns.delete() }, { _ = try? Lab.run("ip", ["link", "del", hostInterface]) }]
        do {
            try Lab.run("ip", ["link", "add", hostInterface, "type", "veth", "peer", "name", peerInterface, "netns", netns.name])
            try Lab.run("ip", ["addr", "add", "\(host)/30", "dev", hostInterface])
            try Lab.run("ip", ["link", "set", hostInterface, "up"])
            try Lab.run("ip", ["-n", netns.name, "addr", "add", "\(peer)/30", "dev", peerInterface])
            try Lab.run("ip", ["-n", netns.name, "link", "set", peerInterface, "up"])
            let hostsFile = directory + "/hosts"
            try "127.0.0.1 localhost\n\(host) registry-1.docker.io\n".write(toFile: hostsFile, atomically: true, encoding: .utf8)

            let certs = try await LabCertificates.shared()
            let (serverCert, signing) = try await onOwnThreadD {
                (try certs.issue("docker-hub-lab", commonName: "registry-1.docker.io",
                                 subjectAltNames: ["DNS:registry-1.docker.io", "IP:\(host)"]),
                 try certs.issue("docker-token-signer", commonName: "egress-lab docker token signer", subjectAltNames: ["DNS:token.lab.test"]))
            }
            let tokens = try LabTokenServer.start(signing: signing, untrusted: certs.selfSigned, issuer: issuer)
            cleanup.append(tokens.stop)
            let ports = Ports(current: FreePort.next(), stale: FreePort.next(), forbidden: FreePort.next(), dead: FreePort.next(),
                              token: FreePort.next(), socks: FreePort.next(), overridePath: FreePort.next())
            let upstream = try await LabRegistry.start(RegistryConfig(tls: nil, additionalSections: [
                tokens.registryAuthSection(service: service, caFile: certs.caFile, realm: "http://\(host):\(ports.token)/token")]))
            cleanup.append(upstream.stop)
            let now = Date().timeIntervalSince1970.rounded(.down)
            let current = try await onOwnThreadD { try realImage(directory: directory, name: "current", created: now) }
            let old = try await onOwnThreadD { try realImage(directory: directory, name: "old", created: now - 30 * 86_400) }
            let toA = tokens.pusher(port: upstream.port, service: service)
            try await toA.push(current, repository: repository, tag: tag)

            let staleRegistry = try await LabRegistry.start(tls: nil)
            cleanup.append(staleRegistry.stop)
            try await LabPusher(port: staleRegistry.port).push(old, repository: repository, tag: tag)

            func front(_ port: UInt16, to backend: UInt16, tls: Bool = true, extra: [NginxLocation] = []) -> NginxServer {
                NginxServer(tls: tls ? serverCert : nil, locations: extra + [
                    NginxLocation("/", match: .prefix, status: nil, directives: ["proxy_pass http://127.0.0.1:\(backend)"]),
                ], directives: ["listen \(host):\(port)\(tls ? " ssl" : "")", "client_max_body_size 0"])
            }
            // The pull-through mirror reads the hub's /v2/ challenge when it starts: nginx first,
            // its front of the mirror answering 502 until the mirror listens.
            let pullThroughConfig = RegistryConfig(tls: nil, additionalSections: ["proxy:\n  remoteurl: https://\(host):443\n"],
                                                   environment: ["SSL_CERT_FILE": certs.caFile])
            let pullThroughPort = pullThroughConfig.port
            let nginx = try await LabNginx.start(servers: [
                front(443, to: upstream.port),
                front(ports.token, to: tokens.port, tls: false),
                front(ports.current, to: pullThroughPort),
                front(ports.stale, to: staleRegistry.port),
                NginxServer(tls: serverCert, locations: [
                    NginxLocation("/", match: .prefix, status: 403, body: #"{"errors":[{"code":"DENIED","message":"not on the allowlist"}]}"#,
                                  headers: [("Content-Type", "application/json")]),
                ], directives: ["listen \(host):\(ports.forbidden) ssl"]),
                // Harbor's proxy-cache project: the project's path in place of /v2.
                NginxServer(tls: serverCert, locations: [
                    NginxLocation("/v2/proxy-project/", match: .prefix, status: nil,
                                  directives: ["proxy_pass http://127.0.0.1:\(pullThroughPort)/v2/"]),
                ], directives: ["listen \(host):\(ports.overridePath) ssl"]),
            ])
            cleanup.append(nginx.stop)
            try await waitForTCP(host, 443)
            let pullThrough = try await LabRegistry.start(pullThroughConfig)
            cleanup.append(pullThrough.stop)
            let socks = try LabProcess("unshare", arguments: inHostsNamespace(hostsFile, ["microsocks", "-i", host, "-p", "\(ports.socks)"]),
                                       directory: directory, name: "microsocks")
            cleanup.append { socks.stop() }
            try await waitForTCP(host, ports.socks)
            let lab = LabDocker(directory: directory, netns: netns, hostAddress: host, hostInterface: hostInterface, certs: certs,
                                serverCert: serverCert, tokens: tokens, upstream: upstream, pullThrough: pullThrough,
                                staleRegistry: staleRegistry, nginx: nginx, socks: socks, current: current, old: old,
                                ports: ports, hostsFile: hostsFile)
            try lab.writeDaemonJSON(mirrors: [])
            try await lab.startDocker(environment: [:])
            return lab
        } catch {
            for step in cleanup.reversed() { step() }
            throw error
        }
    }

    private init(directory: String, netns: LabNetns, hostAddress: String, hostInterface: String, certs: LabCertificates,
                 serverCert: CertPair, tokens: LabTokenServer, upstream: LabRegistry, pullThrough: LabRegistry,
                 staleRegistry: LabRegistry, nginx: LabNginx, socks: LabProcess, current: LabImage, old: LabImage,
                 ports: Ports, hostsFile: String) {
        self.directory = directory
        self.netns = netns
        self.hostAddress = hostAddress
        self.hostInterface = hostInterface
        self.certs = certs
        self.serverCert = serverCert
        self.tokens = tokens
        self.upstream = upstream
        self.pullThrough = pullThrough
        self.staleRegistry = staleRegistry
        self.nginx = nginx
        self.socks = socks
        self.current = current
        self.old = old
        self.ports = ports
        self.hostsFile = hostsFile
    }

    deinit { stop() }

    /// Stops dockerd (and its containerd), the servers, and removes the namespace and the veth.
    public func stop() {
        dockerd?.stopAndWait(grace: 10)
        dockerd = nil
        socks.stop()
        nginx.stop()
        pullThrough.stop()
        staleRegistry.stop()
        upstream.stop()
        tokens.stop()
        netns.delete()
        _ = try? Lab.run("ip", ["link", "del", hostInterface])
        // dockerd's vfs layers are root-owned copies; the lab directory goes with them.
        Lab.removeDirectory(directory)
    }

    static let namespacePrefix = "advice-dj-"

    /// Removes what a crashed run left behind: namespaces named after a pid that is no longer
    /// alive (and whatever still runs in them), and their veth ends. A concurrent run's lab
    /// (a live pid) is left alone.
    static func removeStale() {
        let names = ((try? Lab.run("ip", ["netns", "list"])) ?? "").split(separator: "\n")
            .compactMap { $0.split(separator: " ").first.map(String.init) }
            .filter { $0.hasPrefix(namespacePrefix) }
        for name in names {
            guard let pid = pid_t(name.dropFirst(namespacePrefix.count)), pid != getpid(),
                  kill(pid, 0) != 0 && errno == ESRCH else { continue }
            LabNetns.delete(name: name)
            _ = try? Lab.run("ip", ["link", "del", "advh\(pid)"])
        }
    }

    /// `unshare -m` arguments that run `command` with `hostsFile` bind-mounted on /etc/hosts,
    /// in a mount namespace of its own (the host's file is never changed).
    static func inHostsNamespace(_ hostsFile: String, _ command: [String], netns: String? = nil) -> [String] {
        let enter = netns.map { ["nsenter", "--net=/run/netns/\($0)"] } ?? []
        return ["-m", "--propagation", "private", "sh", "-c", #"mount --bind "$0" /etc/hosts && exec "$@""#, hostsFile]
            + enter + command
    }

    /// Arguments for `unshare` that run `command` inside the lab: its network namespace and its hosts file.
    public func insideArguments(_ command: [String]) -> [String] {
        Self.inHostsNamespace(hostsFile, command, netns: netns.name)
    }

    /// Runs a short command inside the lab (the agent, ctr, nft) to completion; its output.
    @discardableResult
    public func runInside(_ command: [String], environment: [String: String] = [:]) async throws -> String {
        try await Lab.runAsync("unshare", insideArguments(command), environment: environment)
    }

    // MARK: dockerd

    /// Starts dockerd inside the lab with `environment` added (a proxy, as a drop-in gives it)
    /// and waits until its API answers.
    public func startDocker(environment: [String: String]) async throws {
        dockerEnvironment = environment
        let flags = ["--storage-driver=vfs", "--iptables=false", "--ip6tables=false", "--bridge=none",
                     "--data-root", directory + "/data", "--exec-root", directory + "/exec",
                     "-H", "unix://" + dockerSocket, "--pidfile", dockerPidFile, "--config-file", daemonJSON]
        let process = try LabProcess("unshare", arguments: insideArguments([Lab.path(of: "dockerd")!] + flags),
                                     environment: environment.merging(["SSL_CERT_FILE": certs.caFile]) { $1 },
                                     directory: directory, name: "dockerd", logName: "dockerd-\(Int(Date().timeIntervalSince1970 * 1000)).log")
        dockerd = process
        let deadline = Deadline.after(seconds: 60)
        while true {
            if let exit = process.exitDescription { throw LabError("dockerd exited (\(exit))\n\(process.logTail())") }
            if (try? await engineGET("/_ping")).map({ $0.status == 200 }) == true { return }
            if deadline.hasPassed { throw LabError("dockerd did not answer on \(dockerSocket) within 60 s\n\(process.logTail())") }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    /// Restarts dockerd with another environment (a proxy drop-in needs a restart).
    public func restartDocker(environment: [String: String]) async throws {
        dockerd?.stopAndWait(grace: 10)
        try await startDocker(environment: environment)
    }

    /// dockerd's pid, as its pid file says.
    public var dockerPid: Int32? {
        (try? String(contentsOfFile: dockerPidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    public var dockerLog: String { dockerd?.logTail(lines: 40) ?? "no dockerd" }

    /// Writes dockerd's config file with `mirrors` as `registry-mirrors`.
    public func writeDaemonJSON(mirrors: [String]) throws {
        let list = mirrors.map { "\"\($0)\"" }.joined(separator: ", ")
        try """
        {"deprecated-key-path": "\(directory)/key.json", "registry-mirrors": [\(list)]}

        """.write(toFile: daemonJSON, atomically: true, encoding: .utf8)
    }

    /// Writes `mirrors` and reloads dockerd (SIGHUP), waiting until `/info` shows them.
    public func setMirrors(_ mirrors: [String]) async throws {
        try writeDaemonJSON(mirrors: mirrors)
        guard let pid = dockerPid else { throw LabError("no dockerd pid in \(dockerPidFile)") }
        kill(pid, SIGHUP)
        let expected = mirrors.map { $0.hasSuffix("/") ? $0 : $0 + "/" }
        let deadline = Deadline.after(seconds: 10)
        while true {
            if try await self.mirrors() == expected { return }
            if deadline.hasPassed { throw LabError("dockerd did not reload registry-mirrors \(expected)\n\(dockerLog)") }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
    }

    /// The mirrors dockerd uses now (`/info` → RegistryConfig.Mirrors).
    public func mirrors() async throws -> [String] {
        let info = try await engineGET("/info")
        let object = try JSONSerialization.jsonObject(with: Data(info.body)) as? [String: Any]
        return ((object?["RegistryConfig"] as? [String: Any])?["Mirrors"] as? [String]) ?? []
    }

    /// Whether dockerd may reach the hub directly: an nft rule in the namespace rejects H:443
    /// while blocked (the common case behind a firewall). The agent, run inside, sees the same.
    public func blockHub(_ blocked: Bool) async throws {
        _ = try? await runInside(["nft", "delete", "table", "inet", "advice_lab"])
        guard blocked else { return }
        let file = directory + "/block.nft"
        try """
        table inet advice_lab {
            chain output {
                type filter hook output priority 0; policy accept;
                ip daddr \(hostAddress) tcp dport 443 reject with tcp reset
            }
        }

        """.write(toFile: file, atomically: true, encoding: .utf8)
        try await runInside(["nft", "-f", file])
    }

    /// `docker pull` of `reference` after removing any copy, then the digest dockerd got
    /// (`RepoDigests`); throws with docker's output when the pull fails.
    public func pull() async throws -> String {
        _ = try? await Lab.runAsync("docker", ["-H", "unix://" + dockerSocket, "rmi", "-f", reference])
        // Bounded: a pull that hangs is a failure of this lab, never a hung suite.
        try await Lab.runAsync("timeout", ["60", Lab.path(of: "docker")!, "-H", "unix://" + dockerSocket, "pull", reference])
        let digests = try await Lab.runAsync("docker", ["-H", "unix://" + dockerSocket, "image", "inspect",
                                                       "--format", "{{index .RepoDigests 0}}", reference])
        guard let at = digests.firstIndex(of: "@") else { throw LabError("no repo digest: \(digests)") }
        return String(digests[digests.index(after: at)...]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `ctr content fetch --hosts-dir DIR` of `reference` through dockerd's containerd, inside
    /// the lab; the manifest digest it resolved (from `ctr`'s verbose resolve line).
    public func ctrFetch(hostsDirectory: String) async throws -> String {
        let output = try await runInside(["timeout", "60", Lab.path(of: "ctr")!, "--address", containerdSocket, "--namespace", "advice-lab", "content", "fetch",
                                          "--hosts-dir", hostsDirectory, reference],
                                         environment: ["SSL_CERT_FILE": certs.caFile])
        // "docker.io/library/alpine:3.20: resolved |...|" then lines "manifest-sha256:...: done".
        for line in output.split(separator: "\n") {
            if let r = line.range(of: "manifest-sha256:") {
                let hex = line[r.upperBound...].prefix { $0.isHexDigit }
                if hex.count == 64 { return "sha256:" + hex }
            }
        }
        throw LabError("ctr printed no manifest digest:\n\(output)")
    }

    /// A GET on the Engine API socket.
    public func engineGET(_ path: String) async throws -> (status: Int, body: [UInt8]) {
        let socket = try Socket.connectUnix(path: dockerSocket)
        defer { socket.close() }
        var headers = HTTPHeaders()
        headers.add("Host", "docker")
        headers.add("Connection", "close")
        let response = try await HTTPClient.send(HTTPRequest(target: path, headers: headers), over: socket, deadline: .after(seconds: 10))
        return (response.head.status, response.body)
    }

    // MARK: helpers

    /// An image dockerd can unpack: one gzip'd tar layer holding a file with random bytes (so two
    /// builds differ), its diff ID the tar's digest, its config's `created` the given time.
    static func realImage(directory: String, name: String, created: Double) throws -> LabImage {
        let dir = directory + "/image-\(name)"
        try FileManager.default.createDirectory(atPath: dir + "/root", withIntermediateDirectories: true)
        try Data(LabImage.randomBytes(4096)).write(to: URL(fileURLWithPath: dir + "/root/build-\(name)"))
        try Lab.run("tar", ["--format=ustar", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner",
                            "-cf", dir + "/layer.tar", "-C", dir + "/root", "."])
        try Lab.run("gzip", ["-n", "-k", dir + "/layer.tar"])
        let tar = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/layer.tar")))
        let gz = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/layer.tar.gz")))
        return LabImage.assemble(layers: [gz], layerDigests: [LabDigest.sha256(gz)], diffIDs: [LabDigest.sha256(tar)], created: created)
    }

    static func waitForTCP(_ host: String, _ port: UInt16, timeout: Double = 20) async throws {
        let deadline = Deadline.after(seconds: timeout)
        while true {
            do {
                let socket = try Socket.tcp(family: AF_INET)
                defer { socket.close() }
                try await socket.connect(to: SocketAddress(ip: IPAddress(host)!, port: port), deadline: deadline.capped(atSecondsFromNow: 1))
                return
            } catch {
                if deadline.hasPassed { throw LabError("nothing listens on \(host):\(port) after \(timeout) s: \(error)") }
                try await Task.sleep(nanoseconds: 50_000_000)
            }
        }
    }
}

/// Runs `body` on a thread of its own (openssl, tar), so the cooperative pool stays free.
private func onOwnThreadD<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        Thread { c.resume(with: Result { try body() }) }.start()
    }
}
