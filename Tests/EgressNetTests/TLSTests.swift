#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import EgressNet
import EgressTestSupport

/// TLSConnection against real servers on loopback: nginx and docker-registry with the lab's
/// certificates, `LabTCPServer` for the failures real servers do not produce on demand.
/// Every failure must come out as the `TLSError.Kind` the probe's `tls_*` reason is made from.
@Suite struct TLSTests {
    /// The name the lab certificates are issued for; connections go to 127.0.0.1 regardless.
    static let labHost = "registry.lab.test"

    /// A certificate served by nginx, and the failure it must produce.
    enum ServedCertificate: String, Sendable, CaseIterable, CustomTestStringConvertible {
        case good, expired, wrongName, selfSigned

        func pair(_ certs: LabCertificates) -> CertPair {
            switch self {
            case .good: return certs.good
            case .expired: return certs.expired
            case .wrongName: return certs.wrongName
            case .selfSigned: return certs.selfSigned
            }
        }

        var testDescription: String { rawValue }
    }

    // MARK: helpers

    static func connect(port: UInt16) async throws -> Socket {
        let socket = try Socket.tcp(family: AF_INET)
        do {
            try await socket.connect(to: SocketAddress(ip: IPAddress(Lab.loopback)!, port: port),
                                     deadline: .after(seconds: 5))
        } catch {
            socket.close()
            throw error
        }
        return socket
    }

    /// Connects to 127.0.0.1:`port` and runs a handshake trusting the lab CA; the outcome.
    static func handshake(port: UInt16, serverName: String?, ipAddress: IPAddress? = nil,
                          deadline: Deadline = .after(seconds: 5), socket: Socket? = nil,
                          context: TLSContext? = nil) async throws -> Result<TLSConnection, TLSError> {
        let caFile = try await LabCertificates.shared().caFile
        let context = try context ?? TLSContext.client(caFile: caFile)
        let transport: Socket
        if let socket { transport = socket } else { transport = try await connect(port: port) }
        do {
            let connection = try await TLSConnection.handshake(over: transport, context: context, serverName: serverName,
                                                               ipAddress: ipAddress, deadline: deadline)
            return .success(connection)
        } catch {
            transport.close()
            return .failure(error)
        }
    }

    /// The failure of a handshake that must fail; records an issue if it succeeded.
    static func failure(_ result: Result<TLSConnection, TLSError>,
                        sourceLocation: SourceLocation = #_sourceLocation) -> TLSError? {
        switch result {
        case .success(let connection):
            Issue.record("the handshake succeeded (\(String(describing: connection.info))) but must fail",
                         sourceLocation: sourceLocation)
            connection.close()
            return nil
        case .failure(let error):
            return error
        }
    }

    /// The system trust store: for servers that never get as far as a certificate, so those
    /// tests need no lab CA (nor openssl).
    static func systemTrust() throws -> TLSContext { try TLSContext.client(caFile: nil) }

    struct HTTPAnswer {
        var statusLine: String
        var headers: [(name: String, value: String)]
        var bodyBytes: [UInt8]
        var body: String { String(decoding: bodyBytes, as: UTF8.self) }

        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    /// Sends a hand-written HTTP/1.1 GET over `stream` and reads the answer to the end (the
    /// request asks the server to close).
    static func get(_ path: String, host: String, over stream: any ByteStream) async throws -> HTTPAnswer {
        let request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: egress-monitor-tests\r\n"
            + "Accept: */*\r\nConnection: close\r\n\r\n"
        let deadline = Deadline.after(seconds: 5)
        try await stream.write(Array(request.utf8), deadline: deadline)
        var received: [UInt8] = []
        while true {
            let chunk = try await stream.read(maxBytes: 16 * 1024, deadline: deadline)
            if chunk.isEmpty { break }
            received += chunk
        }
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        guard let split = received.indices.dropLast(end.count - 1).first(where: {
            received[$0..<$0 + end.count].elementsEqual(end)
        }) else {
            throw LabError("no end of headers in \(String(decoding: received.prefix(2000), as: UTF8.self).debugDescription)")
        }
        let lines = String(decoding: received[..<split], as: UTF8.self).components(separatedBy: "\r\n")
        let headers = lines.dropFirst().compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return HTTPAnswer(statusLine: lines[0], headers: headers, bodyBytes: Array(received[(split + end.count)...]))
    }

    // MARK: real certificates

    @Test(.enabled(if: Lab.has("nginx") && Lab.has("openssl")))
    func goodCertificateNegotiatesTLS13AndCarriesHTTP() async throws {
        let certs = try await LabCertificates.shared()
        let realm = #"Bearer realm="https://auth.lab.test/token",service="registry.lab.test""#
        let nginx = try await LabNginx.start(tls: certs.good, locations: [
            .registryV2(status: 401, body: #"{"errors":[{"code":"UNAUTHORIZED","message":"$authenticate"}]}"#,
                        extraHeaders: [("WWW-Authenticate", realm)]),
        ])
        defer { nginx.stop() }

        let connection = try await Self.handshake(port: nginx.port, serverName: Self.labHost).get()
        defer { connection.close() }
        let info = try #require(connection.info)
        #expect(info.version == "TLSv1.3")
        #expect(info.cipher.hasPrefix("TLS_"), "a TLS 1.3 suite, got \(info.cipher)")
        let notAfter = try certs.good.notAfter()
        let served = try #require(info.earliestNotAfter)
        #expect(abs(served - notAfter) < 1, "served chain's notAfter \(served), openssl says \(notAfter)")
        #expect(served > Date().timeIntervalSince1970)

        let answer = try await Self.get("/v2/", host: Self.labHost, over: connection)
        #expect(answer.statusLine == "HTTP/1.1 401 Unauthorized")
        #expect(answer.header("Docker-Distribution-API-Version") == "registry/2.0")
        #expect(answer.header("WWW-Authenticate") == realm)
        #expect(answer.header("Content-Type") == "application/json; charset=utf-8")
        #expect(answer.body == #"{"errors":[{"code":"UNAUTHORIZED","message":"$authenticate"}]}"#)
    }

    @Test(.enabled(if: Lab.has("nginx") && Lab.has("openssl")))
    func largeBinaryBodyArrivesWhole() async throws {
        // Many TLS records, every byte value: the read loop and the memory BIOs must lose,
        // duplicate or reorder nothing.
        let contents = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
        let certs = try await LabCertificates.shared()
        let nginx = try await LabNginx.start(tls: certs.good, locations: [.file("/blob", contents: contents)])
        defer { nginx.stop() }

        let connection = try await Self.handshake(port: nginx.port, serverName: Self.labHost).get()
        defer { connection.close() }
        let answer = try await Self.get("/blob", host: Self.labHost, over: connection)
        #expect(answer.statusLine == "HTTP/1.1 200 OK")
        #expect(answer.header("Content-Length") == "\(contents.count)")
        #expect(answer.bodyBytes.count == contents.count)
        #expect(answer.bodyBytes == contents)
    }

    @Test(.enabled(if: Lab.has("nginx") && Lab.has("openssl")), arguments: [
        (ServedCertificate.expired, TLSError.Kind.certificateExpired, "expired"),
        (ServedCertificate.wrongName, TLSError.Kind.hostnameMismatch, "mismatch"),
        (ServedCertificate.selfSigned, TLSError.Kind.certificateUntrusted, "self-signed"),
    ])
    func badCertificateIsClassified(served: ServedCertificate, expected: TLSError.Kind, detailMentions: String) async throws {
        let certs = try await LabCertificates.shared()
        let nginx = try await LabNginx.start(tls: served.pair(certs), locations: [.registryV2()])
        defer { nginx.stop() }

        let error = Self.failure(try await Self.handshake(port: nginx.port, serverName: Self.labHost))
        #expect(error?.kind == expected, "got \(String(describing: error))")
        #expect(error?.detail.lowercased().contains(detailMentions) == true,
                "OpenSSL's verify text should say \(detailMentions): \(String(describing: error))")
    }

    @Test(.enabled(if: Lab.has("nginx") && Lab.has("openssl")))
    func ipLiteralIsCheckedAgainstTheCertificatesAddresses() async throws {
        let certs = try await LabCertificates.shared()
        let loopback = IPAddress(Lab.loopback)!
        let good = try await LabNginx.start(tls: certs.good, locations: [.registryV2()])
        defer { good.stop() }
        let wrong = try await LabNginx.start(tls: certs.wrongName, locations: [.registryV2()])
        defer { wrong.stop() }

        // The good certificate names IP:127.0.0.1.
        let connection = try await Self.handshake(port: good.port, serverName: nil, ipAddress: loopback).get()
        defer { connection.close() }
        #expect(connection.info?.version == "TLSv1.3")
        let answer = try await Self.get("/v2/", host: Lab.loopback, over: connection)
        #expect(answer.statusLine == "HTTP/1.1 200 OK")

        // wrongName names only DNS:other.example: no IP SAN matches.
        let error = Self.failure(try await Self.handshake(port: wrong.port, serverName: nil, ipAddress: loopback))
        #expect(error?.kind == .hostnameMismatch, "got \(String(describing: error))")
    }

    @Test(.enabled(if: Lab.has("nginx") && Lab.has("openssl")))
    func tls10OnlyServerIsAProtocolError() async throws {
        let certs = try await LabCertificates.shared()
        // OpenSSL 3 allows TLS 1.0 only at security level 0.
        let nginx = try await LabNginx.start(tls: certs.good, locations: [.registryV2()],
                                             protocols: ["TLSv1"], ciphers: "DEFAULT:@SECLEVEL=0")
        defer { nginx.stop() }

        // The server does speak TLS 1.0: openssl's own client, allowed TLS 1.0, gets a session.
        let legacy = try Lab.run("openssl", ["s_client", "-connect", "\(Lab.loopback):\(nginx.port)",
                                             "-servername", Self.labHost, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0",
                                             "-CAfile", certs.caFile])
        #expect(legacy.contains("Protocol  : TLSv1\n"), "openssl s_client -tls1 did not get TLS 1.0:\n\(legacy)")

        // Ours asks for TLS 1.2 at least: no common version.
        let error = Self.failure(try await Self.handshake(port: nginx.port, serverName: Self.labHost))
        #expect(error?.kind == .protocolError, "got \(String(describing: error))")
    }

    // MARK: misbehaving servers

    @Test func stalledHandshakeTimesOutAtTheDeadline() async throws {
        let server = try LabTCPServer.start(.stallAfterAccept)
        defer { server.stop() }
        let socket = try await Self.connect(port: server.port)
        let timeout = 0.5
        let start = MonotonicClock.nanoseconds()
        let deadline = Deadline.after(seconds: timeout)
        let error = Self.failure(try await Self.handshake(port: server.port, serverName: Self.labHost,
                                                          deadline: deadline, socket: socket,
                                                          context: Self.systemTrust()))
        let elapsed = MonotonicClock.seconds(since: start)
        #expect(error?.kind == .timeout, "got \(String(describing: error))")
        #expect(elapsed >= timeout, "gave up after \(elapsed)s, before the \(timeout)s deadline")
        #expect(elapsed < timeout + 2, "gave up \(elapsed)s after start, long past the \(timeout)s deadline")
        // The server got a ClientHello (a TLS handshake record) and simply never answered.
        #expect(await server.waitForConnections(1) == 1)
        #expect(await server.waitForFirstReads(1).first?.first == 0x16)
    }

    @Test func resetAfterClientHelloIsAReset() async throws {
        let server = try LabTCPServer.start(.resetAfterRead)
        defer { server.stop() }
        let error = Self.failure(try await Self.handshake(port: server.port, serverName: Self.labHost,
                                                          context: Self.systemTrust()))
        #expect(error?.kind == .reset, "got \(String(describing: error))")
        // The reset came after the ClientHello, as SNI filtering does it.
        #expect(await server.waitForFirstReads(1).first?.first == 0x16)
    }

    @Test func closeBeforeAnyAnswerIsAReset() async throws {
        let server = try LabTCPServer.start(.closeImmediately)
        defer { server.stop() }
        let error = Self.failure(try await Self.handshake(port: server.port, serverName: Self.labHost,
                                                          context: Self.systemTrust()))
        #expect(error?.kind == .reset, "got \(String(describing: error))")
        #expect(await server.waitForConnections(1) == 1)
    }

    @Test func plainHTTPAnswerIsAProtocolError() async throws {
        let server = try LabTCPServer.start(.respond(Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8)))
        defer { server.stop() }
        let error = Self.failure(try await Self.handshake(port: server.port, serverName: Self.labHost,
                                                          context: Self.systemTrust()))
        #expect(error?.kind == .protocolError, "got \(String(describing: error))")
        #expect(await server.waitForFirstReads(1).first?.first == 0x16)
    }

    // MARK: a real registry

    @Test(.enabled(if: Lab.has("docker-registry") && Lab.has("openssl")))
    func registryAnswersV2OverTLS() async throws {
        let certs = try await LabCertificates.shared()
        let registry = try await LabRegistry.start(tls: certs.good)
        defer { registry.stop() }

        let connection = try await Self.handshake(port: registry.port, serverName: Self.labHost).get()
        defer { connection.close() }
        #expect(connection.info?.version == "TLSv1.3")
        let answer = try await Self.get("/v2/", host: "\(Self.labHost):\(registry.port)", over: connection)
        #expect(answer.statusLine == "HTTP/1.1 200 OK")
        #expect(answer.header("Docker-Distribution-API-Version") == "registry/2.0")
        #expect(answer.header("Content-Type")?.hasPrefix("application/json") == true)
        #expect(answer.body == "{}")
    }
}
