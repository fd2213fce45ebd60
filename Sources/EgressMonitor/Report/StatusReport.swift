import Foundation
import EgressNet

/// The status of every pair as one value: what `/api/v1/status` and `check --json` print.
/// Built from the same `ProbeResult`s that feed the metrics.
public struct StatusReport: Encodable, Sendable {
    public struct Entry: Encodable, Sendable {
        public let target: String
        public let path: String
        /// nil until the pair's first round finished.
        public let success: Bool?
        public let phase: String?
        public let reason: String?
        public let detail: String?
        /// Seconds per completed phase.
        public let phases: [String: Double]
        public let duration: Double?
        public let address: String?
        public let tlsVersion: String?
        public let tlsCipher: String?
        public let certNotAfter: Double?
        public let httpStatus: Int?
        public let startedAt: Double?
        public let lastSuccessAt: Double?

        enum CodingKeys: String, CodingKey {
            case target, path, success, phase, reason, detail, phases, duration, address
            case tlsVersion = "tls_version", tlsCipher = "tls_cipher", certNotAfter = "cert_not_after"
            case httpStatus = "http_status", startedAt = "started_at", lastSuccessAt = "last_success_at"
        }

        init(key: PairKey, last r: ProbeResult?, lastSuccessAt: Double?) {
            target = key.target
            path = key.path
            success = r?.success
            phase = r?.failure?.phase.rawValue
            reason = r?.failure?.reason.rawValue
            detail = r?.failure?.detail
            phases = Dictionary(uniqueKeysWithValues: (r?.phases ?? [:]).map { ($0.key.rawValue, $0.value) })
            duration = r?.duration
            address = r?.address
            tlsVersion = r?.tls?.version
            tlsCipher = r?.tls?.cipher
            certNotAfter = r?.tls?.earliestNotAfter
            httpStatus = r?.httpStatus
            startedAt = r?.startedAt
            self.lastSuccessAt = lastSuccessAt
        }
    }

    public let version: String
    public let generatedAt: Double
    public let results: [Entry]

    enum CodingKeys: String, CodingKey {
        case version, results
        case generatedAt = "generated_at"
    }

    public init(store: ResultStore) {
        version = EgressMonitorVersion.current
        generatedAt = wallClockSeconds()
        results = store.snapshot().map { Entry(key: $0.key, last: $0.last, lastSuccessAt: $0.lastSuccessAt) }
    }

    public func json() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return Array((try? encoder.encode(self)) ?? Data("{}".utf8)) + [10]
    }
}
