import Foundation
import EgressSync
internal import COpenSSL
import EgressNet

/// A registry token service (the `realm` of a distribution registry's `auth: token:` config),
/// in Swift, on plain HTTP on 127.0.0.1: `GET /token?service=S&scope=repository:NAME:pull` →
/// `{"token": JWT, "access_token": JWT, "expires_in": N, "issued_at": ...}`.
///
/// The JWT is what distribution 2.8 verifies (registry/auth/token/token.go): compact JWS, header
/// `{"typ":"JWT","alg":"ES256","x5c":[signing certificate]}` — the registry takes the signing key
/// from the first `x5c` certificate once that certificate verifies against its
/// `rootcertbundle` (the lab CA), so no libtrust `kid` is needed — and claims `iss` (its
/// `issuer`), `aud` (its `service`), `exp`/`nbf` (checked with 60 s of leeway), `iat`, `jti`,
/// `sub` and `access` (`[{type, name, actions}]`, what the token allows). The signature is
/// ECDSA P-256 over SHA-256 in JOSE form: r‖s, 32 bytes each, not DER.
///
/// Access is granted as asked: every `scope` parameter (`repository:NAME:pull,push`) becomes an
/// `access` entry. `mode` makes it misbehave on demand, and it counts what it was asked.
public final class LabTokenServer: Sendable {
    /// How the next requests are answered.
    public enum Mode: Sendable, Equatable {
        /// A signed token, trusted by the registry.
        case normal
        /// `403 Forbidden` (a mirror's token endpoint during an outage).
        case forbidden
        /// `200` with a body that is not JSON.
        case badJSON
        /// A well-formed token signed by a key whose certificate the registry does not trust.
        case untrustedSigner
    }

    /// One request the server answered.
    public struct Request: Sendable {
        public let service: String?
        /// Every `scope` parameter, percent-decoded.
        public let scopes: [String]
        /// Whether the request carried an `Authorization` header.
        public let hadAuthorization: Bool
    }

    /// The JWT `iss` claim; the registry's `auth.token.issuer` must say the same.
    public let issuer: String
    public let port: UInt16
    /// The loopback address it listens on (127.0.0.1 unless `start(bind:)` said ::1).
    public let bind: IPAddress
    /// `http://127.0.0.1:PORT/token` (or `http://[::1]:PORT/token`): the registry's `auth.token.realm`.
    public var realm: String {
        let host = bind.isIPv6 ? "[\(bind)]" : "\(bind)"
        return "http://\(host):\(port)/token"
    }

    private let signer: ES256Signer
    private let untrusted: ES256Signer
    private let listener: Socket
    private let state = Mutex(State())

    private struct State {
        var mode: Mode = .normal
        var expiresIn = 300
        var requests: [Request] = []
        var tasks: [Task<Void, Never>] = []
        var connections: [Socket] = []
        var stopped = false
    }

    /// Starts the server. `signing` is a certificate issued by the CA the registry trusts (its
    /// key signs the tokens); `untrusted` one it does not trust (for `.untrustedSigner`).
    public static func start(signing: CertPair, untrusted: CertPair,
                             issuer: String = "egress-lab-token-issuer",
                             bind: IPAddress = IPAddress(Lab.loopback)!) throws -> LabTokenServer {
        try LabTokenServer(signing: signing, untrusted: untrusted, issuer: issuer, bind: bind)
    }

    private init(signing: CertPair, untrusted: CertPair, issuer: String, bind: IPAddress) throws {
        self.signer = try ES256Signer(pair: signing)
        self.untrusted = try ES256Signer(pair: untrusted)
        self.issuer = issuer
        self.bind = bind
        let listener = try Socket.listen(on: SocketAddress(ip: bind, port: 0))
        guard let port = listener.localAddress?.port else {
            listener.close()
            throw LabError("LabTokenServer: no local port after bind")
        }
        self.listener = listener
        self.port = port
        let acceptLoop = Task { [weak self] in
            while !Task.isCancelled {
                guard let (connection, _) = try? await listener.accept(deadline: .distantFuture) else { return }
                guard let self else { connection.close(); return }
                let kept = self.state.withLock { s -> Bool in
                    if s.stopped { return false }
                    s.connections.append(connection)
                    s.tasks.append(Task { await self.serve(connection) })
                    return true
                }
                if !kept { connection.close() }
            }
        }
        state.withLock { $0.tasks.append(acceptLoop) }
    }

    deinit { stop() }

    /// How requests are answered from now on.
    public var mode: Mode {
        get { state.withLock { $0.mode } }
        set { state.withLock { $0.mode = newValue } }
    }

    /// The `expires_in` of the tokens it issues (seconds; also their `exp`).
    public var expiresIn: Int {
        get { state.withLock { $0.expiresIn } }
        set { state.withLock { $0.expiresIn = newValue } }
    }

    /// Every request answered so far, in order.
    public var requests: [Request] { state.withLock { $0.requests } }

    /// Stops accepting and closes every connection. Later calls do nothing.
    public func stop() {
        let (tasks, connections) = state.withLock { s -> ([Task<Void, Never>], [Socket]) in
            if s.stopped { return ([], []) }
            s.stopped = true
            defer { s.tasks = []; s.connections = [] }
            return (s.tasks, s.connections)
        }
        for task in tasks { task.cancel() }
        listener.close()
        for connection in connections { connection.close() }
    }

    /// A token for `repository` with `actions`, without a request (the test's own pushes, which
    /// must not count as the probe's token requests).
    public func mint(repository: String, actions: [String], service: String) throws -> String {
        try token(access: [(type: "repository", name: repository, actions: actions)], audience: service,
                  signer: signer, expiresIn: 600)
    }

    /// The `auth: token:` section of a docker-registry config (`RegistryConfig.additionalSections`)
    /// that sends clients to this server's realm and trusts its tokens (`caFile`: the CA that
    /// issued its signing certificate). `realm`: where clients reach it when that is not where
    /// it listens (a port forwarded into a network namespace).
    public func registryAuthSection(service: String, caFile: String, realm: String? = nil) -> String {
        """
        auth:
          token:
            realm: \(realm ?? self.realm)
            service: \(service)
            issuer: \(issuer)
            rootcertbundle: \(caFile)
        """
    }

    /// A pusher to the registry on `port` whose every push carries a token minted here.
    public func pusher(port: UInt16, service: String) -> LabPusher {
        LabPusher(port: port) { repository in
            "Bearer " + (try self.mint(repository: repository, actions: ["pull", "push"], service: service))
        }
    }

    /// A signed JWT granting `access`, for the registry whose `service` is `audience`.
    func token(access: [(type: String, name: String, actions: [String])], audience: String,
               signer: ES256Signer, expiresIn: Int) throws -> String {
        let now = Int(Date().timeIntervalSince1970)
        let header: [String: Any] = ["typ": "JWT", "alg": "ES256", "x5c": [signer.certificateBase64]]
        let claims: [String: Any] = [
            "iss": issuer, "sub": "", "aud": audience, "exp": now + expiresIn, "nbf": now - 1, "iat": now,
            "jti": UUID().uuidString,
            "access": access.map { ["type": $0.type, "name": $0.name, "actions": $0.actions] as [String: Any] },
        ]
        let signingInput = try Self.base64URL(JSONSerialization.data(withJSONObject: header))
            + "." + Self.base64URL(JSONSerialization.data(withJSONObject: claims))
        let signature = try signer.sign(Array(signingInput.utf8))
        return signingInput + "." + Self.base64URL(Data(signature))
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    // MARK: serving

    private func serve(_ connection: Socket) async {
        var parser = HTTPRequestParser()
        let deadline = Deadline.after(seconds: 10)
        var message: HTTPRequestMessage?
        while message == nil {
            guard let bytes = try? await connection.read(maxBytes: 16 * 1024, deadline: deadline), !bytes.isEmpty else {
                connection.close()
                return
            }
            do { message = try parser.feed(bytes) } catch {
                try? await connection.write(HTTPResponse(status: error.suggestedStatus).serialize(), deadline: deadline)
                connection.close()
                return
            }
        }
        let response = answer(message!.head)
        var headers = response.headers
        headers.add("Connection", "close")
        let bytes = HTTPResponse(status: response.status, headers: headers, body: response.body)
            .serialize(includeBody: message!.head.method != "HEAD")
        try? await connection.write(bytes, deadline: deadline)
        connection.shutdownWrite()
        // Drain until the client closes, so the close is a FIN, not an RST.
        while let more = try? await connection.read(maxBytes: 16 * 1024, deadline: deadline), !more.isEmpty {}
        connection.close()
    }

    private func answer(_ head: HTTPRequestHead) -> HTTPResponse {
        guard head.path == "/token" else { return HTTPResponse(status: 404) }
        var service: String?
        var scopes: [String] = []
        for pair in (head.query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            let value = (parts.count > 1 ? parts[1] : "").replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            switch parts[0] {
            case "service": service = value
            case "scope": scopes.append(value)
            default: break
            }
        }
        let (mode, expiresIn) = state.withLock { s -> (Mode, Int) in
            s.requests.append(Request(service: service, scopes: scopes, hadAuthorization: head.headers["Authorization"] != nil))
            return (s.mode, s.expiresIn)
        }
        let json: HTTPHeaders = ["Content-Type": "application/json"]
        switch mode {
        case .forbidden:
            return HTTPResponse(status: 403, headers: json, body: Array(#"{"details":"token service unavailable"}"#.utf8))
        case .badJSON:
            return HTTPResponse(status: 200, headers: json, body: Array("<html>upstream error</html>".utf8))
        case .normal, .untrustedSigner:
            // `repository:NAME:ACTIONS`; NAME may hold a port-free host path, never a colon here.
            let access = scopes.compactMap { scope -> (type: String, name: String, actions: [String])? in
                let parts = scope.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                guard parts.count == 3 else { return nil }
                return (parts[0], parts[1], parts[2].split(separator: ",").map(String.init))
            }
            do {
                let token = try token(access: access, audience: service ?? "",
                                      signer: mode == .normal ? signer : untrusted, expiresIn: expiresIn)
                let issuedAt = ISO8601DateFormatter().string(from: Date())
                let body: [String: Any] = ["token": token, "access_token": token, "expires_in": expiresIn,
                                           "issued_at": issuedAt]
                return HTTPResponse(status: 200, headers: json, body: Array(try JSONSerialization.data(withJSONObject: body)))
            } catch {
                return HTTPResponse(status: 500, headers: json, body: Array("\(error)".utf8))
            }
        }
    }
}

/// ES256 (ECDSA P-256, SHA-256) signing with OpenSSL's EVP API, over a key made by
/// `LabCertificates` (an `openssl genpkey` PEM), with its certificate for the JWS `x5c` header.
final class ES256Signer: @unchecked Sendable {
    // @unchecked Sendable: the EVP_PKEY is only read after init (EVP_DigestSign* on a fresh
    // EVP_MD_CTX per signature), which OpenSSL 3 allows from several threads at once.
    private let key: OpaquePointer
    /// The certificate's DER, base64 (standard alphabet, padded): an `x5c` entry.
    let certificateBase64: String

    init(pair: CertPair) throws {
        guard let bio = BIO_new_file(pair.keyFile, "r") else { throw LabError("cannot open \(pair.keyFile)") }
        defer { BIO_free(bio) }
        guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else {
            throw LabError("cannot read the private key \(pair.keyFile)")
        }
        self.key = key
        // A PEM certificate's body is the base64 of its DER.
        let pem = try String(contentsOfFile: pair.certFile, encoding: .utf8)
        let lines = pem.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(of: "-----BEGIN CERTIFICATE-----"),
              let end = lines[begin...].firstIndex(of: "-----END CERTIFICATE-----") else {
            EVP_PKEY_free(key)
            throw LabError("no certificate in \(pair.certFile)")
        }
        certificateBase64 = lines[(begin + 1)..<end].joined()
    }

    deinit { EVP_PKEY_free(key) }

    /// The JOSE signature of `data`: r‖s, 32 bytes each.
    func sign(_ data: [UInt8]) throws -> [UInt8] {
        guard let ctx = EVP_MD_CTX_new() else { throw LabError("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestSignInit(ctx, nil, EVP_sha256(), nil, key) == 1 else { throw LabError("EVP_DigestSignInit failed") }
        var length = 0
        guard EVP_DigestSign(ctx, nil, &length, data, data.count) == 1 else { throw LabError("EVP_DigestSign (size) failed") }
        var der = [UInt8](repeating: 0, count: length)
        guard EVP_DigestSign(ctx, &der, &length, data, data.count) == 1 else { throw LabError("EVP_DigestSign failed") }
        guard let jose = Self.joseSignature(fromDER: Array(der[..<length]), size: 32) else {
            throw LabError("cannot read OpenSSL's DER ECDSA signature")
        }
        return jose
    }

    /// `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (DER) → r‖s, each left-padded to
    /// `size` bytes (the sign byte DER adds to a high-bit integer dropped).
    static func joseSignature(fromDER der: [UInt8], size: Int) -> [UInt8]? {
        var i = 0
        func length() -> Int? {
            guard i < der.count else { return nil }
            let first = Int(der[i]); i += 1
            if first < 0x80 { return first }
            let count = first & 0x7F
            guard count <= 2, i + count <= der.count else { return nil }
            var value = 0
            for _ in 0..<count { value = value << 8 | Int(der[i]); i += 1 }
            return value
        }
        func integer() -> [UInt8]? {
            guard i < der.count, der[i] == 0x02 else { return nil }
            i += 1
            guard let n = length(), i + n <= der.count else { return nil }
            var bytes = Array(der[i..<(i + n)])
            i += n
            while bytes.count > size, bytes.first == 0 { bytes.removeFirst() }
            guard bytes.count <= size else { return nil }
            return [UInt8](repeating: 0, count: size - bytes.count) + bytes
        }
        guard der.first == 0x30 else { return nil }
        i = 1
        guard length() != nil, let r = integer(), let s = integer() else { return nil }
        return r + s
    }
}

/// SHA-256 with OpenSSL's EVP API: registry digests (`sha256:<hex>`).
public enum LabDigest {
    public static func sha256(_ bytes: [UInt8]) -> String {
        var md = [UInt8](repeating: 0, count: 32)
        var size: UInt32 = 0
        let ok = bytes.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &md, &size, EVP_sha256(), nil) }
        precondition(ok == 1 && size == 32, "EVP_Digest(sha256) failed")
        return "sha256:" + md.map { String(format: "%02x", $0) }.joined()
    }
}
