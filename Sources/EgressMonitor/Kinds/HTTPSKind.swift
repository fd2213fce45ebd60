import EgressNet

/// `kind: https` — an HTTPS URL, probed up to an HTTP answer below 400 (`http` phase). The
/// answer's status is in the common core. No config section.
struct HTTPSKind: ProbeKind {
    static let targetKinds: [TargetKind] = [.https]
    static let urlSchemes = ["https"]
    static let urlHasPath = true
    static let initialObservation = Observation.https

    static func probe(_ run: ProbeRun, steps: ProbeSteps) async throws(ProbeFailure) {
        let raw = try await steps.open(run)
        defer { raw.close() }
        let stream: any ByteStream = run.target.usesTLS ? try await steps.tls(over: raw, run) : raw
        let path = run.target.url.path.isEmpty ? "/" : run.target.url.path
        let response = try await steps.request(path, over: stream, phase: .http, run: run)
        if let reason = HTTPStatusClass.reason(for: response.head.status), response.head.status >= 400 {
            throw ProbeFailure(.http, reason, "HTTP \(response.head.status) \(response.head.reason)")
        }
    }
}
