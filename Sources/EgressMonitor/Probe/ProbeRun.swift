import EgressNet

/// One probe in progress: the overall deadline, each phase's own timeout inside it, and the
/// phase timings recorded so far. This is the one place where deadlines are combined.
///
/// Used by one task (the probe's own); a class so probers can hand it down without `inout`.
public final class ProbeRun {
    public let target: Target
    public let path: EgressPath
    /// The probe's overall deadline: nothing it does runs past this.
    public let deadline: Deadline
    private let phaseTimeouts: [Phase: Double]
    public private(set) var phases: [Phase: Double] = [:]
    /// The address the probe's first connection to its target reached (the proxy's on a proxy
    /// path); later connections (token realm, CDN, encrypted resolver) leave it as it is.
    public var address: String?
    /// 4 or 6: the family of that first connection to the target (on a proxy path, the
    /// target's when this host resolved it for SOCKS5, else the proxy's).
    public var ipProtocol: Int?
    public var tls: TLSSessionInfo?
    /// The status of the target's own last answer (a registry's, never its token realm's or
    /// CDN's): see `ProbeSteps.request`.
    public var httpStatus: Int?
    /// What the kind observed so far (`ProbeKind.initialObservation` at the start).
    public var observation: Observation

    /// What the registry phases saw, on a registry kind's run (nil on another kind's).
    public var registry: RegistryObservation? {
        get {
            if case .registry(let o) = observation { return o }
            return nil
        }
        set {
            guard let newValue, case .registry = observation else { return }
            observation = .registry(newValue)
        }
    }

    public init(target: Target, path: EgressPath, deadline: Deadline, phaseTimeouts: [Phase: Double]) {
        self.target = target
        self.path = path
        self.deadline = deadline
        self.phaseTimeouts = phaseTimeouts
        self.observation = ProbeKinds.module(for: target.kind).initialObservation
    }

    /// The deadline of a phase starting now: its own timeout, capped by the overall deadline.
    public func deadline(for phase: Phase) -> Deadline {
        guard let t = phaseTimeouts[phase] else { return deadline }
        return deadline.capped(atSecondsFromNow: t)
    }

    /// The phase running now, while a step inside it (a second connection for a token or a
    /// redirect) runs steps of its own.
    private var enclosing: (phase: Phase, deadline: Deadline)?

    /// Runs one phase with its deadline and records how long it took when it completes.
    ///
    /// A phase may run inside another in two ways, and the call site says which:
    /// - the same phase again (a request of the `blob` phase inside the `blob` phase): it is
    ///   part of the phase that runs;
    /// - a step of a new connection opened inside a phase (the `auth` phase reaching the token
    ///   realm, the `blob` phase following a redirect to a CDN): the caller passes
    ///   `countedAs: outer`, and the step gets the earlier of its own and the enclosing phase's
    ///   deadline, records no time of its own (it is the enclosing phase's) and fails as the
    ///   enclosing phase with its own reason: `auth`/`tcp_timeout` says the token host could not
    ///   be reached.
    /// Any other nesting is a bug and traps, so no failure is relabelled behind a caller's back.
    public func phase<T>(_ phase: Phase, countedAs outer: Phase? = nil,
                         _ body: (Deadline) async throws(ProbeFailure) -> T) async throws(ProbeFailure) -> T {
        if let enclosing {
            precondition(phase == enclosing.phase || outer == enclosing.phase,
                         "phase \(phase) inside \(enclosing.phase) without countedAs: .\(enclosing.phase)")
            do {
                return try await body(min(deadline(for: phase), enclosing.deadline))
            } catch {
                throw ProbeFailure(enclosing.phase, error.reason, error.detail)
            }
        }
        precondition(outer == nil, "phase \(phase) counted as \(outer!) outside it")
        let start = MonotonicClock.nanoseconds()
        let phaseDeadline = deadline(for: phase)
        enclosing = (phase, phaseDeadline)
        defer { enclosing = nil }
        let value = try await body(phaseDeadline)
        record(phase, seconds: MonotonicClock.seconds(since: start))
        return value
    }

    /// Adds time to a phase (a phase that runs in several steps, such as connect on a retry).
    public func record(_ phase: Phase, seconds: Double) {
        phases[phase, default: 0] += seconds
    }
}
