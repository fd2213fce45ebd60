import EgressNet

/// Probes a registry (Docker Hub, a mirror, any distribution registry) up to `GET /v2/`.
/// Token, manifest and blob phases build on this for targets that name an image.
struct RegistryProber: Prober {
    func probe(_ run: ProbeRun, steps: ProbeSteps) async throws(ProbeFailure) {
        let raw = try await steps.open(run)
        defer { raw.close() }
        let stream: any ByteStream = run.target.usesTLS ? try await steps.tls(over: raw, run) : raw
        let response = try await steps.request("/v2/", over: stream, phase: .http, run: run)
        try RegistryAPICheck.checkV2(response.head)
    }
}

/// What a `/v2/` answer says about the endpoint (distribution spec; REFERENCE.md).
enum RegistryAPICheck {
    /// A registry answers 200 or 401 and identifies itself: `Docker-Distribution-API-Version`,
    /// or on 401 a Bearer/Basic `WWW-Authenticate` challenge. A 200 that does neither (a captive
    /// portal, an HTML page, a CDN's default site) is not a registry, nor is a redirect away.
    static func checkV2(_ head: HTTPResponseHead) throws(ProbeFailure) {
        let status = head.status
        let apiVersion = head.headers["Docker-Distribution-API-Version"]
        let declaresRegistry = apiVersion.map { $0.lowercased().hasPrefix("registry/2.") } ?? false
        let challenges = head.headers.values("WWW-Authenticate").flatMap { WWWAuthenticate.parse($0) }
        let hasChallenge = challenges.contains { $0.scheme == "bearer" || $0.scheme == "basic" }
        switch status {
        case 200:
            if declaresRegistry { return }
            let type = head.headers["Content-Type"] ?? "no content type"
            throw ProbeFailure(.http, .httpNotRegistry,
                               "GET /v2/ answered 200 (\(type)) without Docker-Distribution-API-Version: not a registry (captive portal or web page?)")
        case 401:
            if hasChallenge { return }
            throw ProbeFailure(.http, .httpUnauthorized, "GET /v2/ answered 401 without a Bearer or Basic challenge")
        case 300..<400:
            let location = head.headers["Location"].map { " to \(Self.hostOnly($0))" } ?? ""
            throw ProbeFailure(.http, .httpNotRegistry, "GET /v2/ answered \(status), a redirect\(location): not a registry (captive portal?)")
        default:
            let reason = HTTPStatusClass.reason(for: status) ?? .httpUnexpectedStatus
            throw ProbeFailure(.http, reason, "GET /v2/ answered \(status) \(head.reason)")
        }
    }

    /// The scheme and host of a URL, never its query (which can carry tokens).
    static func hostOnly(_ url: String) -> String {
        guard let sep = url.range(of: "://") else { return "a relative location" }
        let rest = url[sep.upperBound...]
        let host = rest.prefix { $0 != "/" && $0 != "?" }
        let withoutUser = host.split(separator: "@").last.map(String.init) ?? String(host)
        return "\(url[..<sep.upperBound])\(withoutUser)"
    }
}
