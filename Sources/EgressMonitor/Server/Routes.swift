import EgressMetrics
import EgressNet

/// What the listener serves: `/metrics`, `/healthz`, `/`, `/api/v1/status`, `POST /-/reload`.
public struct Routes: Sendable {
    let results: ResultStore
    /// Reloads the config; returns nil on success or the error text.
    let reload: @Sendable () async -> String?
    /// The agent's own state (version, config source, uptime, last reload) for `/` and the API;
    /// nil where there is no agent around the store.
    let agent: @Sendable () -> AgentStatus?

    public init(results: ResultStore, reload: @escaping @Sendable () async -> String?,
                agent: @escaping @Sendable () -> AgentStatus? = { nil }) {
        self.results = results
        self.reload = reload
        self.agent = agent
    }

    public func handle(_ request: HTTPRequestMessage) async -> ServerResponse {
        let method = request.head.method
        let path = request.head.path
        let readOnly = method == "GET" || method == "HEAD"
        switch path {
        case "/metrics":
            guard readOnly else { return Self.methodNotAllowed("GET, HEAD") }
            // The format and compression the scrape asked for; a malformed or hostile header
            // gets text 0.0.4, uncompressed (ScrapeRequest never fails).
            let scrape = ScrapeRequest(accept: request.head.headers["Accept"],
                                       acceptEncoding: request.head.headers["Accept-Encoding"])
            var headers: HTTPHeaders = ["Content-Type": scrape.format.contentType, "Vary": "Accept, Accept-Encoding"]
            if scrape.gzip { headers.add("Content-Encoding", GzipStream.contentEncoding) }
            // Formatted (and compressed) and sent in pieces, never whole in memory. A small
            // exposition is kept, compressed when it was, and answers again while no series
            // changes (at most a second: the process_* gauges).
            let metrics = results.metrics
            if let recent = metrics.recentRender(maxAge: 1, as: scrape.format, gzip: scrape.gzip) {
                return ServerResponse(status: 200, headers: headers, body: recent)
            }
            return ServerResponse(status: 200, headers: headers, body: .stream { write throws(NetError) in
                try await metrics.render(as: scrape.format, gzip: scrape.gzip, keepUpTo: 1 << 20, write)
            })
        case "/healthz":
            guard readOnly else { return Self.methodNotAllowed("GET, HEAD") }
            return Self.ok(Array("ok\n".utf8), type: "text/plain; charset=utf-8")
        case "/api/v1/status":
            guard readOnly else { return Self.methodNotAllowed("GET, HEAD") }
            return Self.ok(StatusReport(store: results, agent: agent()).json(), type: "application/json", cache: false)
        case "/":
            guard readOnly else { return Self.methodNotAllowed("GET, HEAD") }
            return Self.ok(StatusPage.render(StatusReport(store: results, agent: agent())), type: "text/html; charset=utf-8", cache: false)
        case "/-/reload":
            guard method == "POST" || method == "PUT" else { return Self.methodNotAllowed("POST, PUT") }
            if let error = await reload() {
                return ServerResponse(status: 500, headers: ["Content-Type": "text/plain; charset=utf-8"],
                                    body: Array("reload failed, the previous config keeps running:\n\(error)\n".utf8))
            }
            return Self.ok(Array("config reloaded\n".utf8), type: "text/plain; charset=utf-8")
        default:
            return ServerResponse(status: 404, headers: ["Content-Type": "text/plain; charset=utf-8"],
                                body: Array("not found; try /metrics, /healthz, /api/v1/status or /\n".utf8))
        }
    }

    /// A 200. `cache: false` for what changes every round (the page, the JSON).
    static func ok(_ body: [UInt8], type: String, cache: Bool = true) -> ServerResponse {
        var headers: HTTPHeaders = ["Content-Type": type]
        if !cache { headers.add("Cache-Control", "no-store") }
        return ServerResponse(status: 200, headers: headers, body: body)
    }

    static func methodNotAllowed(_ allow: String) -> ServerResponse {
        ServerResponse(status: 405, headers: ["Allow": allow, "Content-Type": "text/plain; charset=utf-8"],
                     body: Array("method not allowed\n".utf8))
    }
}
