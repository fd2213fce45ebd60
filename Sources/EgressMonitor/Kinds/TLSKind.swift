import EgressNet

/// `kind: tls` — a TLS endpoint (`tls://host:port`), probed up to the handshake: the common
/// core keeps what it established (version, cipher, certificate expiry). No config section.
struct TLSKind: ProbeKind {
    static let targetKinds: [TargetKind] = [.tls]
    static let urlSchemes = ["tls"]
    static let urlHasPath = false
    static let initialObservation = Observation.tls

    static func probe(_ run: ProbeRun, steps: ProbeSteps) async throws(ProbeFailure) {
        let stream = try await steps.open(run)
        defer { stream.close() }
        _ = try await steps.tls(over: stream, run)
    }
}
