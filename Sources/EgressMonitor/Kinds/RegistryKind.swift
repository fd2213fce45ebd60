import EgressMetrics
import EgressNet
import EgressSync

/// `kind: dockerhub | mirror | registry` — a registry endpoint, probed as `docker pull` goes:
/// `/v2/` (`http`), then for each image a pull token (`auth`), the manifest's digest
/// (`manifest`) and, every `blob_interval_seconds`, a bounded read of a layer (`blob`).
/// The steps themselves are in `Registry/` (RegistryProber, TokenFlow, Manifests, BlobRead).
struct RegistryKind: ProbeKind {
    static let targetKinds: [TargetKind] = [.dockerhub, .mirror, .registry]
    static let urlSchemes = ["https", "http"]
    static let urlHasPath = false
    static var initialObservation: Observation { .registry(RegistryObservation()) }

    static func probe(_ run: ProbeRun, steps: ProbeSteps) async throws(ProbeFailure) {
        try await RegistryProber().probe(run, steps: steps)
    }

    // MARK: config section

    static let configKeys = ["upstream", "manifest_get_interval_seconds", "blob_interval_seconds", "blob_bytes",
                             "min_throughput_bytes_per_second", "blob_digest"]
    static let foreignKeyMessage = "only registry targets (dockerhub, mirror, registry) have registry settings"

    static func decodeSection(_ dict: [String: JSONValue], at path: String, into sections: inout KindSections,
                              validator v: inout Validator) {
        var registry = RegistryOptions()
        registry.upstream = v.string(dict, "upstream", at: path)
        if let x = v.number(dict, "manifest_get_interval_seconds", at: path, range: 60...604_800) { registry.manifestGetIntervalSeconds = x }
        if let x = v.number(dict, "blob_interval_seconds", at: path, range: 1...604_800) { registry.blobIntervalSeconds = x }
        if let x = v.number(dict, "blob_bytes", at: path, range: 1_024...1_073_741_824) { registry.blobBytes = Int(x) }
        registry.minThroughputBytesPerSecond = v.number(dict, "min_throughput_bytes_per_second", at: path, range: 1...1e12)
        if let digest = v.string(dict, "blob_digest", at: path) {
            if case .success = ImageReference.parse("x@" + digest, officialPrefix: false) {
                registry.blobDigest = digest
            } else {
                v.fail(v.join(path, "blob_digest"), "\"\(digest)\" is not a digest (algorithm:hex, e.g. sha256:...)")
            }
        }
        sections.registry = registry
    }

    // MARK: projections

    /// Into metrics: pull limits, manifest requests, blob bytes and throughput, and a mirror's
    /// digests against its upstream's last known ones.
    static func record(_ registry: RegistryObservation, result: ProbeResult, labels: [String], into store: ResultStore) {
        let metrics = store.metrics
        if let limits = registry.rateLimit {
            if let v = limits.limit { metrics.set(Catalogue.rateLimitLimit, labels, v) }
            if let v = limits.remaining { metrics.set(Catalogue.rateLimitRemaining, labels, v) }
            if let v = limits.windowSeconds { metrics.set(Catalogue.rateLimitWindow, labels, v) }
        }
        for (method, count) in registry.manifestRequests.sorted(by: { $0.key < $1.key }) {
            metrics.increment(Catalogue.manifestRequests, labels + [method], by: Double(count))
        }
        for image in registry.referenceFailures.keys.sorted() {
            metrics.increment(Catalogue.referenceFailures, labels + [image])
        }
        if let blob = registry.blob {
            metrics.increment(Catalogue.blobBytes, labels, by: Double(blob.bytes))
            if let rate = blob.bytesPerSecond { metrics.set(Catalogue.blobThroughput, labels, rate) }
        }
        store.registryDigests.record(registry, result: result, labels: labels, metrics: metrics)
    }

    /// The entry keys of a registry round: Docker Hub's pull limit and what is left of it (when
    /// the registry sent them), the manifest digest per image, the blob throughput (when a blob
    /// was read this round).
    static let reportKeys: [String: JSONValue] = [
        "rate_limit_limit": .null, "rate_limit_remaining": .null, "digests": .object([:]), "blob_bytes_per_second": .null,
    ]

    /// Into the report: the entry's registry fields, and the status page's facts of them.
    static func report(_ registry: RegistryObservation) -> KindReport {
        let limit = registry.rateLimit?.limit, remaining = registry.rateLimit?.remaining
        let rate = registry.blob?.bytesPerSecond
        var facts: [String] = []
        if let remaining {
            facts.append("pull limit: \(Int(remaining))" + (limit.map { " of \(Int($0))" } ?? "") + " left")
        }
        if let rate { facts.append("blob \(Format.throughput(rate))") }
        return KindReport(fields: ["rate_limit_limit": limit.json, "rate_limit_remaining": remaining.json,
                                   "digests": .object(registry.digests.mapValues { .string($0) }),
                                   "blob_bytes_per_second": rate.json],
                          facts: facts)
    }
}

/// The registry phases' settings of one target (its config section; the defaults are here).
public struct RegistryOptions: Sendable, Equatable {
    /// For a mirror: the target whose digests it must match (by default the `dockerhub` target).
    public var upstream: String?
    /// Docker Hub counts manifest GETs against the pull limit (HEADs are free): a GET at most
    /// this often, and only when a layer digest is needed.
    public var manifestGetIntervalSeconds: Double = 21_600
    /// How often a blob is read to measure throughput.
    public var blobIntervalSeconds: Double = 600
    /// How much of the blob is read, at most.
    public var blobBytes: Int = 4 * 1024 * 1024
    /// Below this, the blob phase fails with `blob_too_slow`.
    public var minThroughputBytesPerSecond: Double?
    /// The blob to read, instead of a layer taken from the manifest.
    public var blobDigest: String?
    /// For an upstream: images its mirrors probe that it does not probe itself, read only so the
    /// mirrors' digests can be compared. Their failures never fail this target's round (they
    /// are the comparison's: `RegistryObservation.referenceFailures`).
    public var referenceImages: [ImageReference] = []
    /// Where the registry API is rooted on the target's host: `/v2`, or for a containerd
    /// `hosts.toml` host, its URL path followed by `/v2`, or with `override_path = true` the
    /// URL path alone (Harbor proxy-cache projects).
    public var apiRoot = "/v2"

    public init() {}
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

/// The digests read per target, across rounds and paths, and the comparison of a mirror's with
/// its upstream's (`egress_manifest_digest_match`). Its own series are tracked by pair, so
/// removing them never has to guess a metric family from label shapes.
final class RegistryDigests: Sendable {
    private struct State {
        /// The last manifest digest read per target and image, over any path, with when.
        var digests: [String: [String: (digest: String, at: Double)]] = [:]
        /// mirror target → its upstream target.
        var upstreams: [String: String] = [:]
        /// The images of each pair that have a digest-match series.
        var compared: [PairKey: Set<String>] = [:]
    }
    private let state = Mutex(State())

    func setUpstreams(_ map: [String: String]) {
        state.withLock { $0.upstreams = map }
    }

    /// Forgets the comparisons of pairs no longer probed (their series go with the pair's).
    func forget(_ pairs: [PairKey]) {
        state.withLock { s in for key in pairs { s.compared.removeValue(forKey: key) } }
    }

    func digest(target: String, image: String) -> String? {
        state.withLock { $0.digests[target]?[image]?.digest }
    }

    func record(_ registry: RegistryObservation, result: ProbeResult, labels: [String], metrics: MetricStore) {
        let key = PairKey(target: result.target, path: result.path)
        let now = wallClockSeconds()
        let (upstream, reference) = state.withLock { s -> (String?, [String: (digest: String, at: Double)]) in
            for (image, digest) in registry.digests { s.digests[result.target, default: [:]][image] = (digest, now) }
            let up = s.upstreams[result.target]
            return (up, up.flatMap { s.digests[$0] } ?? [:])
        }
        guard upstream != nil else { return }
        var compared: [String] = []
        var uncompared: [String] = []
        for (image, digest) in registry.digests {
            if let up = reference[image] {
                metrics.set(Catalogue.manifestDigestMatch, labels + [image], up.digest == digest ? 1 : 0)
                compared.append(image)
            } else {
                metrics.remove(Catalogue.manifestDigestMatch, labels + [image])
                uncompared.append(image)
            }
        }
        // An image the mirror could not answer for this round has no comparison.
        let dropUnanswered = !result.success && result.failure?.phase == .manifest
        let stale: [String] = state.withLock { s in
            var images = s.compared[key] ?? []
            images.formUnion(compared)
            images.subtract(uncompared)
            var stale: [String] = []
            if dropUnanswered {
                stale = images.filter { registry.digests[$0] == nil }.sorted()
                images.subtract(stale)
            }
            s.compared[key] = images
            return stale
        }
        for image in stale { metrics.remove(Catalogue.manifestDigestMatch, labels + [image]) }
    }
}

extension ProbeResult {
    /// A registry round's result: its observation is `.registry(registry)` (nil: none).
    public init(target: String, path: String, startedAt: Double, duration: Double, phases: [Phase: Double],
                failure: ProbeFailure?, address: String? = nil, tls: TLSSessionInfo? = nil, httpStatus: Int? = nil,
                registry: RegistryObservation?, ipProtocol: Int? = nil) {
        self.init(target: target, path: path, startedAt: startedAt, duration: duration, phases: phases, failure: failure,
                  address: address, tls: tls, httpStatus: httpStatus, observation: registry.map { .registry($0) },
                  ipProtocol: ipProtocol)
    }
}
