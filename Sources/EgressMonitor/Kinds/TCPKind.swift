import EgressNet

/// `kind: tcp` — a TCP endpoint (`tcp://host:port`), probed up to connect: `dns`, `connect`
/// (and `proxy` on a proxy path). No config section, no observation of its own.
struct TCPKind: ProbeKind {
    static let targetKinds: [TargetKind] = [.tcp]
    static let urlSchemes = ["tcp"]
    static let urlHasPath = false
    static let initialObservation = Observation.tcp

    static func probe(_ run: ProbeRun, steps: ProbeSteps) async throws(ProbeFailure) {
        let stream = try await steps.open(run)
        stream.close()
    }
}
