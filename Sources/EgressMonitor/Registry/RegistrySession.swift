import EgressNet

/// The connections of one registry probe: one to the registry, reused across `/v2/`, token and
/// manifest requests while the server keeps it alive, and fresh ones over the same path to
/// other hosts (the token realm, a blob CDN).
final class RegistrySession {
    let run: ProbeRun
    let steps: ProbeSteps
    private var registryStream: (any ByteStream)?

    init(run: ProbeRun, steps: ProbeSteps) {
        self.run = run
        self.steps = steps
    }

    deinit { registryStream?.close() }

    func close() {
        registryStream?.close()
        registryStream = nil
    }

    /// Opens the first connection: the probe's `dns`, `connect`, `proxy` and `tls` phases.
    func connect() async throws(ProbeFailure) {
        registryStream = try await open(run.target.url, countedAs: nil)
    }

    /// A stream to `url`'s host over the probe's path (TLS for https), trusting what the target
    /// trusts. Opened inside a phase (`countedAs`), its steps count as that phase
    /// (see `ProbeRun.phase`).
    func open(_ url: EndpointURL, countedAs outer: Phase?) async throws(ProbeFailure) -> any ByteStream {
        let raw = try await steps.dialer.open(host: url.host, port: url.port, resolverName: run.target.resolver,
                                              run: run, countedAs: outer)
        guard url.scheme == "https" else { return raw }
        do {
            return try await steps.tls(over: raw, run, url: url, countedAs: outer)
        } catch {
            raw.close()
            throw error
        }
    }

    /// A request to the registry on the kept connection (reopened when the server closed it).
    func request(_ pathAndQuery: String, method: String = "GET", phase: Phase, headers: [(String, String)] = [],
                 bodyLimit: Int = 1024 * 1024, truncate: Bool = false,
                 keepBody: Bool = true) async throws(ProbeFailure) -> HTTPClientResponse {
        try await run.phase(phase) { _ throws(ProbeFailure) in
            // The server closed the kept connection: a new one, its steps counted as this phase.
            if registryStream == nil { registryStream = try await open(run.target.url, countedAs: phase) }
            let response = try await steps.request(pathAndQuery, method: method, over: registryStream!, phase: phase,
                                                   headers: headers, keepAlive: true, url: run.target.url,
                                                   bodyLimit: bodyLimit, truncate: truncate, keepBody: keepBody, run: run)
            if !response.reusable { close() }
            return response
        }
    }
}
