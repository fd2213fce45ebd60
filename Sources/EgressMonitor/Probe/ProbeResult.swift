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

    public init(_ phase: Phase, _ reason: FailureReason, _ detail: String, disagreeingResolver: String? = nil) {
        self.phase = phase
        self.reason = reason
        self.detail = detail
        self.disagreeingResolver = disagreeingResolver
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
    /// What the registry phases saw (rate limits, digests, blob throughput), when they ran.
    public let registry: RegistryObservation?

    public var success: Bool { failure == nil }

    public init(target: String, path: String, startedAt: Double, duration: Double, phases: [Phase: Double],
                failure: ProbeFailure?, address: String? = nil, tls: TLSSessionInfo? = nil, httpStatus: Int? = nil,
                registry: RegistryObservation? = nil, ipProtocol: Int? = nil) {
        self.target = target
        self.path = path
        self.startedAt = startedAt
        self.duration = duration
        self.phases = phases
        self.failure = failure
        self.address = address
        self.tls = tls
        self.httpStatus = httpStatus
        self.registry = registry
        self.ipProtocol = ipProtocol
    }
}

/// What the registry phases of one round saw.
public struct RegistryObservation: Sendable, Equatable {
    /// Docker Hub's pull limit headers (`ratelimit-*` or `x-ratelimit-*`), last seen this round.
    public var rateLimit: RateLimit?
    /// Manifest digest per image (`ImageReference.description`), from `Docker-Content-Digest`.
    public var digests: [String: String] = [:]
    /// The blob read this round, when one was due.
    public var blob: BlobMeasurement?
    /// Manifest requests sent this round, by method ("HEAD", "GET").
    public var manifestRequests: [String: Int] = [:]
    /// When each image's build was made (the `created` time of its image config, Unix
    /// seconds), read on mirrors so mirrors can be compared among themselves when no path
    /// reaches their upstream. Absent when not read (Docker Hub's pull quota is never spent on it).
    public var created: [String: Double] = [:]
    /// Images read on a mirror's behalf (for the digest comparison) that the registry could not
    /// answer for, with why (`manifest/http_not_found: ...`). They never fail this target's
    /// round: the comparison they were for is absent instead.
    public var referenceFailures: [String: String] = [:]

    public init() {}
}

/// `ratelimit-limit: 100;w=21600` and `ratelimit-remaining: 76;w=21600`.
public struct RateLimit: Sendable, Equatable {
    public var limit: Double?
    public var remaining: Double?
    public var windowSeconds: Double?

    public init(limit: Double? = nil, remaining: Double? = nil, windowSeconds: Double? = nil) {
        self.limit = limit
        self.remaining = remaining
        self.windowSeconds = windowSeconds
    }
}

/// A bounded read of a blob.
public struct BlobMeasurement: Sendable, Equatable {
    public let bytes: Int
    /// Seconds from the first body byte to the last.
    public let seconds: Double
    /// bytes / seconds; nil when too little arrived to time.
    public let bytesPerSecond: Double?
    /// Hosts the request was redirected through (a CDN), for people only.
    public let redirectedTo: String?
}
