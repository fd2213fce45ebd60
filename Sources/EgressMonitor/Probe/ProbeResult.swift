import EgressNet

/// Why a probe failed: its first failing phase, one reason, and a detail for people (logs,
/// `check`, the status page). The detail never becomes a metric label.
public struct ProbeFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public let phase: Phase
    public let reason: FailureReason
    public let detail: String
    /// For `dns_suspicious_answer` from a disagreement with the trusted resolver: the resolver
    /// whose answer disagreed (`egress_dns_answers_disagree_total`'s label).
    public var disagreeingResolver: String?
    /// For `dns_suspicious_answer`: what the verdict rests on, so its hint says what was proven.
    public var evidence: PoisonEvidence?

    public init(_ phase: Phase, _ reason: FailureReason, _ detail: String, disagreeingResolver: String? = nil,
                evidence: PoisonEvidence? = nil) {
        self.phase = phase
        self.reason = reason
        self.detail = detail
        self.disagreeingResolver = disagreeingResolver
        self.evidence = evidence
    }

    public var description: String { "\(phase.rawValue)/\(reason.rawValue): \(detail)" }
}

/// The outcome of one probe round of one target over one path. The single value that feeds the
/// metrics, `check`, the status page and the JSON API alike.
public struct ProbeResult: Sendable {
    public let target: String
    public let path: String
    /// Wall-clock start, Unix seconds.
    public let startedAt: Double
    /// Seconds the whole round took.
    public let duration: Double
    /// Seconds each completed phase took.
    public let phases: [Phase: Double]
    /// nil when the probe succeeded.
    public let failure: ProbeFailure?
    /// The address connected to (the proxy's, on a proxy path), for people only.
    public let address: String?
    /// 4 or 6: the family of the connection that carried the probe (``ProbeRun/ipProtocol``).
    public let ipProtocol: Int?
    /// What the TLS handshake established, when one completed.
    public let tls: TLSSessionInfo?
    /// The status of the last HTTP answer, when one arrived.
    public let httpStatus: Int?
    /// What the probe's kind observed beyond this common core (`Kinds/`); nil for a result
    /// not made by a probe.
    public let observation: Observation?

    /// What the registry phases saw (rate limits, digests, blob throughput), for a registry kind.
    public var registry: RegistryObservation? {
        if case .registry(let o) = observation { return o }
        return nil
    }

    public var success: Bool { failure == nil }

    public init(target: String, path: String, startedAt: Double, duration: Double, phases: [Phase: Double],
                failure: ProbeFailure?, address: String? = nil, tls: TLSSessionInfo? = nil, httpStatus: Int? = nil,
                observation: Observation? = nil, ipProtocol: Int? = nil) {
        self.target = target
        self.path = path
        self.startedAt = startedAt
        self.duration = duration
        self.phases = phases
        self.failure = failure
        self.address = address
        self.tls = tls
        self.httpStatus = httpStatus
        self.observation = observation
        self.ipProtocol = ipProtocol
    }
}
