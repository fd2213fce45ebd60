import EgressNet

/// How requests to a registry authenticate, decided by its `/v2/` answer.
enum RegistryAuth {
    /// `/v2/` answered 200: no credentials needed.
    case none
    /// A Basic challenge: the configured login, if any.
    case basic(realm: String?)
    /// A Bearer challenge: tokens from `realm` for `service`.
    case bearer(realm: String, service: String?)

    static func from(_ head: HTTPResponseHead) -> RegistryAuth {
        guard head.status == 401 else { return .none }
        let challenges = head.headers.values("WWW-Authenticate").flatMap { WWWAuthenticate.parse($0) }
        if let bearer = challenges.first(where: { $0.scheme == "bearer" }), let realm = bearer.realm {
            return .bearer(realm: realm, service: bearer.service)
        }
        if let basic = challenges.first(where: { $0.scheme == "basic" }) { return .basic(realm: basic.realm) }
        return .none
    }
}

/// The `auth` phase: an anonymous (or logged-in) pull token for one repository, from the realm
/// the registry named — never a hard-coded one (mirrors rewrite it, IPv6 hosts get another).
/// Tokens are reused until `expires_in` (default 60 s) runs out.
struct TokenFlow {
    let session: RegistrySession

    /// The `Authorization` header value for pulling `repository`, or nil when none is needed.
    func authorization(_ auth: RegistryAuth, repository: String) async throws(ProbeFailure) -> String? {
        let run = session.run
        let login = session.steps.credentials.login(for: run.target.url)
        switch auth {
        case .none:
            return nil
        case .basic:
            guard let login else {
                throw ProbeFailure(.auth, .httpUnauthorized, "the registry asks for a Basic login and credentials_file has none for \(run.target.url.host)")
            }
            return "Basic " + Base64.encode("\(login.username):\(login.password)".utf8)
        case .bearer(let realm, let service):
            let scope = "repository:\(repository):pull"
            let key = [realm, service ?? "", scope, login?.username ?? ""].joined(separator: "|")
            if let cached = session.steps.registryState.token(key) { return "Bearer \(cached)" }
            let (token, expiresIn) = try await fetch(realm: realm, service: service, scope: scope, login: login)
            session.steps.registryState.store(token: token, key: key, expiresIn: expiresIn)
            return "Bearer \(token)"
        }
    }

    private func fetch(realm: String, service: String?, scope: String,
                       login: RegistryCredentials.Login?) async throws(ProbeFailure) -> (String, Double) {
        let run = session.run
        guard case .success(let url) = EndpointURL.parse(realm, defaultPorts: ["https": 443, "http": 80]),
              url.scheme == "https" || url.scheme == "http" else {
            throw ProbeFailure(.auth, .httpBadResponse, "the registry's token realm is not an http(s) URL")
        }
        var query = [("scope", scope)]
        if let service { query.insert(("service", service), at: 0) }
        let separator = url.path.contains("?") ? "&" : "?"
        let path = (url.path.isEmpty ? "/" : url.path) + separator
            + query.map { "\($0.0)=\(Self.percentEncode($0.1))" }.joined(separator: "&")
        var headers: [(String, String)] = [("Accept", "application/json")]
        if let login {
            headers.append(("Authorization", "Basic " + Base64.encode("\(login.username):\(login.password)".utf8)))
        }
        let response: HTTPClientResponse = try await run.phase(.auth) { _ throws(ProbeFailure) in
            let stream = try await session.open(url, countedAs: .auth)
            defer { stream.close() }
            return try await session.steps.request(path, over: stream, phase: .auth, headers: headers, url: url,
                                                   bodyLimit: 256 * 1024, run: run)
        }
        let status = response.head.status
        guard status == 200 else {
            let reason = HTTPStatusClass.reason(for: status) ?? .httpUnexpectedStatus
            throw ProbeFailure(.auth, reason, "the token endpoint \(url.scheme)://\(url.host) answered \(status) \(response.head.reason)")
        }
        guard let object = (try? JSONValue.parse(response.body, duplicateKeys: .lastWins))?.objectValue else {
            throw ProbeFailure(.auth, .httpBadResponse, "the token endpoint's answer is not a JSON object")
        }
        let token = object["token"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            ?? object["access_token"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        guard let token else {
            throw ProbeFailure(.auth, .httpBadResponse, "the token endpoint's answer has neither token nor access_token")
        }
        var expiresIn = 60.0
        if let e = object["expires_in"]?.numberValue, e > 0 { expiresIn = e }
        return (token, expiresIn)
    }

    static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if b.isASCIIAlnum || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "~") {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += "%" + TextFormat.hex(b, 2, uppercase: true)
            }
        }
        return out
    }
}
