import EgressNet

/// One kind of probe, whole in one file (`Kinds/<Kind>Kind.swift`): the config section it adds
/// to a target, the probe steps, the observation it makes beyond the common core of a result,
/// and that observation's two projections — into metrics and into the report.
///
/// What every kind shares stays common: the phases and their timings, the failure, the address,
/// TLS and the last HTTP status (`ProbeResult`), the deadlines (`ProbeRun`), the dialing
/// (`ProbeSteps`). Adding a kind: one file conforming to this protocol, an entry in
/// ``ProbeKinds/all``, a case in ``Observation`` and one in `TargetKind`, catalogue entries and
/// hints; every exhaustive switch the compiler then names is the rest.
protocol ProbeKind: Sendable {
    /// The config `kind` values this module probes.
    static var targetKinds: [TargetKind] { get }
    /// The schemes its targets' `url` may have.
    static var urlSchemes: [String] { get }
    /// Whether its `url` may carry a path (an HTTPS page may; a registry's is its root).
    static var urlHasPath: Bool { get }
    /// The keys of its config section, beside every target's own (name, kind, url, ...).
    static var configKeys: [String] { get }
    /// What a target of another kind is told when it has one of ``configKeys``.
    static var foreignKeyMessage: String { get }
    /// Reads and validates its section of a target's object (errors carry their JSON path).
    /// Runs for every target, so the section's own errors show whatever the kind.
    static func decodeSection(_ dict: [String: JSONValue], at path: String, into sections: inout KindSections,
                              validator: inout Validator)
    /// The observation a round of this kind starts with.
    static var initialObservation: Observation { get }
    /// The keys its observation adds to a status entry's JSON, each with its value when a round
    /// did not set it (`null`, `{}`): every entry carries every kind's keys, one shape for readers.
    static var reportKeys: [String: JSONValue] { get }
    /// The phases of one round: throw the first failure.
    static func probe(_ run: ProbeRun, steps: ProbeSteps) async throws(ProbeFailure)
}

extension ProbeKind {
    static var reportKeys: [String: JSONValue] { [:] }
    static var configKeys: [String] { [] }
    static var foreignKeyMessage: String { "" }
    static func decodeSection(_ dict: [String: JSONValue], at path: String, into sections: inout KindSections,
                              validator: inout Validator) {}
}

/// The one table of probe kinds.
enum ProbeKinds {
    static let all: [any ProbeKind.Type] = [RegistryKind.self, TCPKind.self, TLSKind.self, HTTPSKind.self]

    /// The module that probes `kind`.
    static func module(for kind: TargetKind) -> any ProbeKind.Type {
        switch kind {
        case .dockerhub, .mirror, .registry: return RegistryKind.self
        case .tcp: return TCPKind.self
        case .tls: return TLSKind.self
        case .https: return HTTPSKind.self
        }
    }

    /// Every kind's section keys, for the config's list of known target fields.
    static var configKeys: [String] { all.flatMap { $0.configKeys } }

    /// Every kind's report keys with their unset values (`KindReport.json` starts from these).
    static let reportKeys: [String: JSONValue] = all.reduce(into: [:]) { keys, kind in
        keys.merge(kind.reportKeys) { first, _ in first }
    }
}

/// The config sections of the kinds, as a target carries them (defaults in each section's type).
public struct KindSections: Sendable, Equatable {
    /// The registry phases' settings (`RegistryKind`).
    public var registry = RegistryOptions()

    public init() {}
}

/// What a round observed beyond the common core of a result, one case per kind: every switch
/// over it is exhaustive, so a new kind is named by the compiler wherever it must be handled.
public enum Observation: Sendable, Equatable {
    /// Rate limits, digests, manifest requests and a blob read (`RegistryKind`).
    case registry(RegistryObservation)
    /// A TCP connect observes nothing of its own (`TCPKind`).
    case tcp
    /// A TLS handshake's facts are in the common core (`TLSKind`).
    case tls
    /// An HTTPS answer's status is in the common core (`HTTPSKind`).
    case https

    /// The projection into metrics: the kind's own series for one recorded round.
    func record(_ result: ProbeResult, labels: [String], into store: ResultStore) {
        switch self {
        case .registry(let o): RegistryKind.record(o, result: result, labels: labels, into: store)
        case .tcp, .tls, .https: break
        }
    }

    /// The projection into the report: the kind's own fields of a status entry.
    var report: KindReport {
        switch self {
        case .registry(let o): return RegistryKind.report(o)
        case .tcp, .tls, .https: return KindReport()
        }
    }
}

/// The kind-specific part of a status entry, as the kind projects its observation (JSON,
/// `check --json`, the status page). It is data, not fields: a new kind adds its keys in its own
/// file (`ProbeKind.reportKeys`, its `report`), and `StatusReport.Entry` does not change.
public struct KindReport: Sendable {
    /// The JSON keys this round set; the others of ``ProbeKinds/reportKeys`` are there unset.
    var fields: [String: JSONValue] = [:]
    /// Plain-text facts for the status page's connection column ("pull limit: 76 of 100 left").
    var facts: [String] = []

    /// Every kind's keys, this round's values where it set them.
    var json: [String: JSONValue] { ProbeKinds.reportKeys.merging(fields) { _, set in set } }
}
