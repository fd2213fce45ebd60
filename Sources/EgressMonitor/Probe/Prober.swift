import EgressNet

/// The one prober contract: run the phases of one kind of target over an opened run, and throw
/// the first failure. The work common to every probe — deadline, timing, success, the result
/// value — lives in `ProbeEngine`, not here. A kind's module (`Kinds/`) names its prober.
protocol Prober: Sendable {
    func probe(_ run: ProbeRun, steps: ProbeSteps) async throws(ProbeFailure)
}

/// Runs probes: builds the run with its deadline, calls the kind's prober, and turns what
/// happened into a `ProbeResult`.
public struct ProbeEngine: Sendable {
    public let config: AgentConfig
    let resolution: NameResolution
    let registryState: RegistryState

    public init(config: AgentConfig, resolution: NameResolution = NameResolution(),
                registryState: RegistryState = RegistryState()) {
        self.config = config
        self.resolution = resolution
        self.registryState = registryState
    }

    public func probe(target: Target, path: EgressPath) async -> ProbeResult {
        let startedAt = wallClockSeconds()
        let start = MonotonicClock.nanoseconds()
        let deadline = Deadline(nanoseconds: start + UInt64(config.timeoutSeconds * 1e9))
        let run = ProbeRun(target: target, path: path, deadline: deadline, phaseTimeouts: config.phaseTimeouts)
        let steps = ProbeSteps(dialer: Dialer(resolution: resolution, resolvers: config.resolvers),
                               registryState: registryState, credentials: config.credentials)
        var failure: ProbeFailure?
        do {
            try await ProbeKinds.module(for: target.kind).probe(run, steps: steps)
        } catch {
            failure = error
        }
        return ProbeResult(target: target.name, path: path.name, startedAt: startedAt,
                           duration: MonotonicClock.seconds(since: start), phases: run.phases,
                           failure: failure, address: run.address, tls: run.tls, httpStatus: run.httpStatus,
                           observation: run.observation, ipProtocol: run.ipProtocol)
    }
}

/// The steps probers compose: open a stream over the path, wrap it in TLS, send a request.
struct ProbeSteps: Sendable {
    let dialer: Dialer
    let registryState: RegistryState
    let credentials: RegistryCredentials

    func open(_ run: ProbeRun) async throws(ProbeFailure) -> any ByteStream {
        try await dialer.open(host: run.target.url.host, port: run.target.url.port,
                              resolverName: run.target.resolver, run: run, countedAs: nil)
    }

    /// The `tls` phase: SNI and hostname check for a name, IP check for an IP literal. `url`
    /// is the host being reached (the target's, or a token realm's or CDN's), trusted as the
    /// target is trusted.
    func tls(over stream: any ByteStream, _ run: ProbeRun, url: EndpointURL? = nil,
             countedAs outer: Phase? = nil) async throws(ProbeFailure) -> TLSConnection {
        let target = run.target
        let url = url ?? target.url
        let context: TLSContext
        do { context = try TLSContext.client(caFile: target.caFile) } catch {
            throw ProbeFailure(.tls, .tlsCertUntrusted, error.detail)
        }
        let ip = url.ipLiteral
        return try await run.phase(.tls, countedAs: outer) { deadline throws(ProbeFailure) in
            do throws(TLSError) {
                let conn = try await TLSConnection.handshake(over: stream, context: context,
                                                             serverName: ip == nil ? url.host : nil,
                                                             ipAddress: ip, deadline: deadline)
                if run.tls == nil { run.tls = conn.info }
                return conn
            } catch {
                throw Self.failure(for: error)
            }
        }
    }

    static func failure(for error: TLSError) -> ProbeFailure {
        let reason: FailureReason
        switch error.kind {
        case .timeout: reason = .tlsTimeout
        case .reset: reason = .tlsReset
        case .certificateUntrusted: reason = .tlsCertUntrusted
        case .certificateExpired: reason = .tlsCertExpired
        case .hostnameMismatch: reason = .tlsHostnameMismatch
        case .protocolError: reason = .tlsProtocolError
        }
        return ProbeFailure(.tls, reason, error.detail)
    }

    /// The Host header value for `url`: the port only when it is not the scheme's default.
    static func hostHeader(_ url: EndpointURL) -> String {
        let defaultPort: UInt16 = url.scheme == "http" ? 80 : 443
        let host = url.host.contains(":") ? "[\(url.host)]" : url.host
        return url.port == defaultPort ? host : "\(host):\(url.port)"
    }

    /// Sends a request for `pathAndQuery` to `url`'s host (the target's by default) and reads
    /// the answer within `phase`'s deadline.
    ///
    /// - Parameters:
    ///   - bodyLimit: bytes of body accepted; with `truncate`, reading stops there instead.
    ///   - keepBody: false only counts the body's bytes (a blob read).
    func request(_ pathAndQuery: String, method: String = "GET", over stream: any ByteStream,
                 phase: Phase, headers extra: [(String, String)] = [], keepAlive: Bool = false,
                 url: EndpointURL? = nil, bodyLimit: Int = 1024 * 1024, truncate: Bool = false,
                 keepBody: Bool = true, run: ProbeRun) async throws(ProbeFailure) -> HTTPClientResponse {
        var headers = HTTPHeaders()
        headers.add("Host", Self.hostHeader(url ?? run.target.url))
        headers.add("User-Agent", "egress-monitor/\(EgressMonitorVersion.current)")
        if !extra.contains(where: { $0.0.lowercased() == "accept" }) { headers.add("Accept", "*/*") }
        for (name, value) in extra { headers.add(name, value) }
        if !keepAlive { headers.add("Connection", "close") }
        let request = HTTPRequest(method: method, target: pathAndQuery, headers: headers)
        return try await run.phase(phase) { deadline throws(ProbeFailure) in
            do throws(HTTPClientError) {
                let response = try await HTTPClient.send(request, over: stream, deadline: deadline,
                                                         limits: .init(maxBodyBytes: bodyLimit),
                                                         truncateBody: truncate, keepBody: keepBody)
                // http_status is the target's own last answer, as blackbox_exporter's
                // probe_http_status_code is the final response to its request: for a registry,
                // the registry's (its 401 challenge, its 307 to the CDN). A token realm's or a
                // CDN's status belongs to the failure's detail, not to the registry.
                if phase != .auth, url.map({ $0.scheme == run.target.url.scheme && $0.host == run.target.url.host
                                               && $0.port == run.target.url.port }) ?? true {
                    run.httpStatus = response.head.status
                }
                return response
            } catch {
                switch error {
                case .timeout(let gotHead):
                    throw ProbeFailure(phase, .httpTimeout, gotHead ? "the answer stalled mid-body" : "no answer before the deadline (awaiting headers)")
                case .reset(let s): throw ProbeFailure(phase, .httpReset, s)
                case .badResponse(let e): throw ProbeFailure(phase, .httpBadResponse, "\(e)")
                case .badRequest(let s): throw ProbeFailure(phase, .httpBadResponse, s)
                }
            }
        }
    }
}

/// Status codes as failure reasons, the same in every HTTP phase.
enum HTTPStatusClass {
    static func reason(for status: Int) -> FailureReason? {
        switch status {
        case 200..<300: return nil
        case 401: return .httpUnauthorized
        case 403: return .httpForbidden
        case 404: return .httpNotFound
        case 429: return .httpRateLimited
        case 500..<600: return .httpServerError
        default: return .httpUnexpectedStatus
        }
    }
}
