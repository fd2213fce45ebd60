#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import EgressNet
import EgressTestSupport

/// The lab itself: the certificates are what they claim (checked by openssl, not by our TLS
/// code), servers start, stop and report failures, and dnsmasq answers as `LabDnsmasq`
/// documents (checked with dig).
@Suite struct LabTests {
    // MARK: certificates

    @Test(.enabled(if: Lab.has("openssl")))
    func certificatesAreWhatTheyClaim() async throws {
        let certs = try await LabCertificates.shared()
        func verify(_ pair: CertPair, _ extra: [String] = []) -> String {
            do {
                return try Lab.run("openssl", ["verify", "-CAfile", certs.caFile] + extra + [pair.certFile])
            } catch {
                return "\(error)"
            }
        }
        #expect(verify(certs.good, ["-verify_hostname", "registry.lab.test"]).contains(": OK"))
        #expect(verify(certs.good, ["-verify_ip", "127.0.0.1"]).contains(": OK"))
        #expect(verify(certs.good, ["-verify_ip", "::1"]).contains(": OK"))
        #expect(verify(certs.expired).contains("certificate has expired"))
        #expect(verify(certs.expired, ["-no_check_time", "-verify_hostname", "registry.lab.test"]).contains(": OK"),
                "apart from its dates, the expired certificate is good")
        #expect(verify(certs.wrongName).contains(": OK"), "wrongName is otherwise valid")
        #expect(verify(certs.wrongName, ["-verify_hostname", "registry.lab.test"]).contains("hostname mismatch"))
        #expect(verify(certs.selfSigned).contains("self-signed certificate"))

        let goodNotAfter = try certs.good.notAfter()
        let now = Date().timeIntervalSince1970
        #expect(goodNotAfter > now + 29 * 86_400 && goodNotAfter < now + 31 * 86_400)
        #expect(try certs.expired.notAfter() < now - 29 * 86_400)
        let key = try Lab.run("openssl", ["pkey", "-in", certs.good.keyFile, "-noout", "-text"])
        #expect(key.contains("P-256"))
    }

    // MARK: processes

    /// The one launcher of the lab's daemons: freeing a daemon stops its program and removes its
    /// directory; a daemon that never listens fails its launch with its log, and leaves nothing.
    @Test(.enabled(if: Lab.has("microsocks"), "needs microsocks"))
    func aLabDaemonOwnsItsProgramAndItsDirectory() async throws {
        var proxy: LabMicrosocks? = try await LabMicrosocks.start()
        let directory = proxy!.directory
        let process = proxy!.process
        #expect(FileManager.default.fileExists(atPath: directory))
        #expect(process.isRunning)
        proxy = nil
        #expect(!FileManager.default.fileExists(atPath: directory), "freed: its directory is gone")
        #expect(await process.waitForExit(timeout: 10) != nil, "freed: its program was stopped")

        var failedDirectory: String?
        do {
            _ = try await LabDaemon.launch("never-listens", ports: [FreePort.next()], timeout: 5) { directory in
                failedDirectory = directory
                return try LabProcess("sh", arguments: ["-c", "echo about to give up; exit 3"], directory: directory, name: "quitter")
            }
            Issue.record("a daemon that exits without listening was launched")
        } catch {
            #expect("\(error)".contains("quitter exited (status 3)"), "\(error)")
            #expect("\(error)".contains("about to give up"), "\(error)")
        }
        let failed = try #require(failedDirectory)
        #expect(!FileManager.default.fileExists(atPath: failed), "a failed launch leaves no directory")
    }

    @Test func serverThatExitsReportsItsLastLogLines() async throws {
        let directory = try Lab.makeDirectory("failing")
        defer { Lab.removeDirectory(directory) }
        let process = try LabProcess("sh", arguments: ["-c", "echo 'bind() failed: lab-marker' >&2; exit 3"],
                                     directory: directory, name: "failing")
        do {
            try await process.waitForTCPPort(FreePort.next(), timeout: 5)
            Issue.record("a program that exited was reported ready")
        } catch let error as LabError {
            #expect(error.message.contains("lab-marker"), "\(error)")
            #expect(error.message.contains("status 3"), "\(error)")
        }
    }

    @Test func missingProgramIsReportedAndSkippable() throws {
        #expect(!Lab.has("egress-no-such-program"))
        #expect(Lab.has("sh"))
        let directory = try Lab.makeDirectory("missing")
        defer { Lab.removeDirectory(directory) }
        #expect(throws: LabError.self) {
            _ = try LabProcess("egress-no-such-program", arguments: [], directory: directory)
        }
    }

    @Test func stopTerminatesAndReapsTheProcess() throws {
        let directory = try Lab.makeDirectory("sleeper")
        defer { Lab.removeDirectory(directory) }
        let process = try LabProcess("sleep", arguments: ["600"], directory: directory)
        let pid = process.pid
        #expect(process.isRunning)
        let start = MonotonicClock.nanoseconds()
        process.stopAndWait()
        #expect(MonotonicClock.seconds(since: start) < 2, "sleep dies on SIGTERM")
        #expect(!process.isRunning)
        #expect(kill(pid, 0) == -1 && errno == ESRCH, "the process is gone and reaped")
        process.stopAndWait()  // a second stop does nothing
    }

    @Test func freePortCanBeBound() throws {
        let port = FreePort.next()
        #expect(port != 0)
        let listener = try Socket.listen(on: SocketAddress(ip: IPAddress(Lab.loopback)!, port: port))
        defer { listener.close() }
        #expect(listener.localAddress?.port == port)
    }

    // MARK: nginx

    @Test(.enabled(if: Lab.has("nginx")))
    func nginxServesConfiguredAnswersOverPlainHTTP() async throws {
        let portal = "<html><body>Log in to the guest Wi-Fi ($5 a day)</body></html>"
        let nginx = try await LabNginx.start(servers: [
            NginxServer(tls: nil, locations: [
                .captivePortal(body: portal),
                NginxLocation("/v2/", status: 429, body: #"{"detail": "Rate limit exceeded"}"#,
                              headers: [("Content-Type", "application/json"), ("Retry-After", "60")]),
            ]),
        ])
        defer { nginx.stop() }

        let portalAnswer = try await Self.plainGet("/anything", port: nginx.port)
        #expect(portalAnswer.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(portalAnswer.contains("\r\nContent-Type: text/html; charset=utf-8\r\n"))
        #expect(portalAnswer.hasSuffix("\r\n\r\n" + portal), "the body is sent verbatim, $ included")

        let limited = try await Self.plainGet("/v2/", port: nginx.port)
        #expect(limited.hasPrefix("HTTP/1.1 429 "))
        #expect(limited.contains("\r\nRetry-After: 60\r\n"))
        #expect(limited.contains("\r\nContent-Type: application/json\r\n"))
        #expect(limited.hasSuffix(#"{"detail": "Rate limit exceeded"}"#))

        // nginx keeps everything in its lab directory.
        #expect(FileManager.default.fileExists(atPath: nginx.directory + "/nginx.pid"))
        #expect(FileManager.default.fileExists(atPath: nginx.directory + "/access.log"))
    }

    @Test(.enabled(if: Lab.has("nginx")))
    func nginxWithABadConfigFailsWithItsError() async throws {
        let server = NginxServer(tls: nil, locations: [], directives: ["no_such_directive on"])
        do {
            let nginx = try await LabNginx.start(servers: [server])
            nginx.stop()
            Issue.record("nginx started with an unknown directive")
        } catch let error as LabError {
            #expect(error.message.contains("no_such_directive"), "\(error)")
        }
    }

    @Test(.enabled(if: Lab.has("nginx")))
    func nginxThatLosesItsPortIsNeverTakenForReady() async throws {
        // Another server already listens on the port nginx is told to use.
        let squatter = try LabTCPServer.start(.closeImmediately)
        defer { squatter.stop() }
        do {
            let nginx = try await LabNginx.start(servers: [
                NginxServer(port: squatter.port, tls: nil, locations: [.captivePortal()]),
            ])
            nginx.stop()
            Issue.record("nginx was reported ready on a port another process holds")
        } catch let error as LabError {
            #expect(error.message.contains("Address already in use"), "\(error)")
        }
        #expect(squatter.acceptedCount == 0, "readiness must not be decided by connecting to the squatter")
    }

    /// GET over plain TCP, read to the end.
    static func plainGet(_ path: String, port: UInt16) async throws -> String {
        let socket = try Socket.tcp(family: AF_INET)
        defer { socket.close() }
        let deadline = Deadline.after(seconds: 5)
        try await socket.connect(to: SocketAddress(ip: IPAddress(Lab.loopback)!, port: port), deadline: deadline)
        try await socket.write(Array("GET \(path) HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n".utf8), deadline: deadline)
        var received: [UInt8] = []
        while true {
            let chunk = try await socket.read(deadline: deadline)
            if chunk.isEmpty { break }
            received += chunk
        }
        return String(decoding: received, as: UTF8.self)
    }

    // MARK: dnsmasq

    /// dig's rcode and answer records for `name`/`type`, over UDP or TCP.
    static func dig(_ name: String, _ type: String, port: UInt16, tcp: Bool = false) throws -> (rcode: String, answers: [String]) {
        let output = try Lab.run("dig", ["@\(Lab.loopback)", "-p", "\(port)", name, type, "+tries=1", "+time=3",
                                         tcp ? "+tcp" : "+notcp", "+noall", "+comments", "+answer"])
        guard let range = output.range(of: #"status: [A-Z]+"#, options: .regularExpression) else {
            throw LabError("no status in dig's output:\n\(output)")
        }
        let rcode = String(output[range].dropFirst("status: ".count))
        let answers = output.split(separator: "\n")
            .filter { !$0.hasPrefix(";") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            .compactMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).last.map(String.init) }
        return (rcode, answers)
    }

    @Test(.enabled(if: Lab.has("dnsmasq") && Lab.has("dig")))
    func dnsmasqAnswersItsRecordsAndRefusesOtherNames() async throws {
        let dns = try await LabDnsmasq.start(records: [
            .address(domain: "registry.lab.test", ip: "127.0.0.1"),
            .host(name: "dual.lab.test", ips: ["127.0.0.2", "::1"]),
            .host(name: "v4only.lab.test", ips: ["127.0.0.3"]),
            .txt(name: "txt.lab.test", text: "hello"),
            .nxdomain(domain: "gone.lab.test"),
        ])
        defer { dns.stop() }
        #expect(FileManager.default.fileExists(atPath: dns.pidFile))

        for tcp in [false, true] {
            let a = try Self.dig("registry.lab.test", "A", port: dns.port, tcp: tcp)
            #expect(a.rcode == "NOERROR" && a.answers == ["127.0.0.1"], "tcp=\(tcp): \(a)")
        }
        let sub = try Self.dig("mirror.registry.lab.test", "A", port: dns.port)
        #expect(sub.rcode == "NOERROR" && sub.answers == ["127.0.0.1"], "--address covers subdomains: \(sub)")
        let noData = try Self.dig("registry.lab.test", "AAAA", port: dns.port)
        #expect(noData.rcode == "NOERROR" && noData.answers.isEmpty, "\(noData)")
        let dual4 = try Self.dig("dual.lab.test", "A", port: dns.port)
        let dual6 = try Self.dig("dual.lab.test", "AAAA", port: dns.port)
        #expect(dual4.rcode == "NOERROR" && dual4.answers == ["127.0.0.2"], "\(dual4)")
        #expect(dual6.rcode == "NOERROR" && dual6.answers == ["::1"], "\(dual6)")
        let v4only = try Self.dig("v4only.lab.test", "AAAA", port: dns.port)
        #expect(v4only.rcode == "NOERROR" && v4only.answers.isEmpty, "\(v4only)")
        let underHost = try Self.dig("www.dual.lab.test", "A", port: dns.port)
        #expect(underHost.rcode == "NXDOMAIN", "\(underHost)")
        let txt = try Self.dig("txt.lab.test", "TXT", port: dns.port)
        #expect(txt.rcode == "NOERROR" && txt.answers == ["\"hello\""], "\(txt)")
        let txtAddress = try Self.dig("txt.lab.test", "A", port: dns.port)
        #expect(txtAddress.rcode == "NOERROR" && txtAddress.answers.isEmpty, "\(txtAddress)")
        let gone = try Self.dig("www.gone.lab.test", "A", port: dns.port)
        #expect(gone.rcode == "NXDOMAIN", "\(gone)")
        // No upstream to forward to: dnsmasq refuses names it has no record for.
        let unknown = try Self.dig("unknown.lab.test", "A", port: dns.port)
        #expect(unknown.rcode == "REFUSED", "\(unknown)")
    }

    @Test(.enabled(if: Lab.has("dnsmasq") && Lab.has("dig")))
    func dnsmasqCanAnswerNXDOMAINForOtherNames() async throws {
        let dns = try await LabDnsmasq.start(records: [
            .address(domain: "registry.lab.test", ip: "127.0.0.1"),
            .host(name: "dual.lab.test", ips: ["127.0.0.2", "::1"]),
        ], unknownNames: .nxdomain)
        defer { dns.stop() }

        let known = try Self.dig("registry.lab.test", "A", port: dns.port)
        #expect(known.rcode == "NOERROR" && known.answers == ["127.0.0.1"], "\(known)")
        let noData = try Self.dig("registry.lab.test", "AAAA", port: dns.port)
        #expect(noData.rcode == "NOERROR" && noData.answers.isEmpty, "\(noData)")
        let dual6 = try Self.dig("dual.lab.test", "AAAA", port: dns.port)
        #expect(dual6.rcode == "NOERROR" && dual6.answers == ["::1"], "\(dual6)")
        for name in ["unknown.lab.test", "registry-1.docker.io"] {
            let unknown = try Self.dig(name, "A", port: dns.port)
            #expect(unknown.rcode == "NXDOMAIN", "\(name): \(unknown)")
        }
    }
}

/// The lab's own hygiene: a test process killed before its atexit leaves its lab root
/// (`egress-lab-PID`) behind; the next test process removes it, and nothing else.
extension LabTests {
    /// In a directory of its own: the root of a dead process, untouched for two hours, goes; a
    /// dead one touched a minute ago (maybe a live process of another PID namespace), a live
    /// process's and an unrelated directory stay.
    @Test func theRootsOfDeadTestProcessesAreRemoved() throws {
        let parent = try Lab.makeDirectory("stale-roots")
        defer { Lab.removeDirectory(parent) }
        let dead = try deadPID()
        let fm = FileManager.default
        let old = Date().addingTimeInterval(-7200)
        func make(_ name: String, modified: Date) throws -> String {
            let path = parent + "/" + name
            try fm.createDirectory(atPath: path + "/certs", withIntermediateDirectories: true)
            try fm.setAttributes([.modificationDate: modified], ofItemAtPath: path)
            return path
        }
        let stale = try make("egress-lab-\(dead)", modified: old)
        let recent = try make("egress-lab-\(dead + 1 == getpid() ? dead + 2 : dead + 1)", modified: Date())
        let live = try make("egress-lab-\(getpid())", modified: old)
        let other = try make("egress-labs-\(dead)", modified: old)
        Lab.removeStaleRoots(in: parent)
        #expect(!fm.fileExists(atPath: stale), "the dead process's root is still there")
        #expect(fm.fileExists(atPath: live) && fm.fileExists(atPath: other))
        // Only when the neighbouring pid is not alive does this say anything about the age rule.
        if kill(pid_t(recent.split(separator: "-").last!)!, 0) != 0 {
            #expect(fm.fileExists(atPath: recent), "a root touched a minute ago was removed")
        }
    }

    /// The PID of a child that has exited and been reaped.
    func deadPID() throws -> pid_t {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let pid = child.processIdentifier
        try #require(kill(pid, 0) != 0 && errno == ESRCH, "pid \(pid) was reused at once")
        return pid
    }
}
