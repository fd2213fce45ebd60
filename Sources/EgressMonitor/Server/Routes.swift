import EgressMetrics
import EgressNet

/// What the listener serves: `/metrics`, `/healthz`, `/`, `/api/v1/status`, `POST /-/reload`.
public struct Routes: Sendable {
    let results: ResultStore
    /// Reloads the config; returns nil on success or the error text.
    let reload: @Sendable () async -> String?

    public init(results: ResultStore, reload: @escaping @Sendable () async -> String?) {
        self.results = results
        self.reload = reload
    }

    public func handle(_ request: HTTPRequestMessage) async -> HTTPResponse {
        let method = request.head.method
        let path = request.head.path
        let readOnly = method == "GET" || method == "HEAD"
        switch path {
        case "/metrics":
            guard readOnly else { return Self.methodNotAllowed("GET, HEAD") }
            return Self.ok(results.metrics.renderBytes(), type: MetricStore.contentType)
        case "/healthz":
            guard readOnly else { return Self.methodNotAllowed("GET, HEAD") }
            return Self.ok(Array("ok\n".utf8), type: "text/plain; charset=utf-8")
        case "/api/v1/status":
            guard readOnly else { return Self.methodNotAllowed("GET, HEAD") }
            return Self.ok(StatusReport(store: results).json(), type: "application/json")
        case "/":
            guard readOnly else { return Self.methodNotAllowed("GET, HEAD") }
            return Self.ok(StatusPage.render(StatusReport(store: results)), type: "text/html; charset=utf-8")
        case "/-/reload":
            guard method == "POST" || method == "PUT" else { return Self.methodNotAllowed("POST, PUT") }
            if let error = await reload() {
                return HTTPResponse(status: 500, headers: ["Content-Type": "text/plain; charset=utf-8"],
                                    body: Array("reload failed, the previous config keeps running:\n\(error)\n".utf8))
            }
            return Self.ok(Array("config reloaded\n".utf8), type: "text/plain; charset=utf-8")
        default:
            return HTTPResponse(status: 404, headers: ["Content-Type": "text/plain; charset=utf-8"],
                                body: Array("not found; try /metrics, /healthz, /api/v1/status or /\n".utf8))
        }
    }

    static func ok(_ body: [UInt8], type: String) -> HTTPResponse {
        HTTPResponse(status: 200, headers: ["Content-Type": type], body: body)
    }

    static func methodNotAllowed(_ allow: String) -> HTTPResponse {
        HTTPResponse(status: 405, headers: ["Allow": allow, "Content-Type": "text/plain; charset=utf-8"],
                     body: Array("method not allowed\n".utf8))
    }
}
