import EgressNet
/// A mirror the agent could list, with what the selection rule needs to know about it.
public struct MirrorCandidate: Sendable, Equatable {
    /// The target's name.
    public let target: String
    /// As written in the file: `MirrorURL.text`.
    public let url: String
    public let freshness: Freshness
    /// Its rounds on `docker_path`, oldest first (the last `PathPreference.window`; for `apply`,
    /// its one round).
    public let outcomes: [Bool]
    /// Its place in `suggest`'s order (healthiest, then fastest, first); lower first.
    public let rank: Int

    public init(target: String, url: String, freshness: Freshness, outcomes: [Bool], rank: Int) {
        self.target = target
        self.url = url
        self.freshness = freshness
        self.outcomes = outcomes
        self.rank = rank
    }
}

/// Which mirrors qualify, in which order, and when a file is written (DESIGN.md, "Acting on
/// what it measures"). Pure: every input is explicit, so each rule has its own test.
public enum MirrorSelection {
    /// Successes needed in the last `window` rounds on `docker_path` (the agent's rule).
    public static let needed = 8
    public static let window = 10

    /// Whether a mirror qualifies: not behind, and it succeeded on `docker_path` in at least 8
    /// of its last 10 rounds (`oneRound`: in its one round, as `apply` judges).
    public static func qualifies(_ c: MirrorCandidate, oneRound: Bool) -> Bool {
        guard c.freshness != .behind else { return false }
        if oneRound { return c.outcomes.last == true }
        return c.outcomes.suffix(window).filter { $0 }.count >= needed
    }

    /// The list to write: qualifying current mirrors in suggest's order, then qualifying unknown
    /// ones. nil means "leave the file as it is": nothing qualifies and Docker Hub fails on
    /// `docker_path` too (an empty list would leave Docker nothing); nothing qualifies while Docker
    /// Hub works gives `[]` (Docker goes to the hub, which answers).
    public static func choose(_ candidates: [MirrorCandidate], hubWorks: Bool, oneRound: Bool) -> [String]? {
        let ok = candidates.filter { qualifies($0, oneRound: oneRound) }
        guard !ok.isEmpty else { return hubWorks ? [] : nil }
        func ordered(_ f: Freshness) -> [MirrorCandidate] {
            ok.filter { $0.freshness == f }.sorted { ($0.rank, $0.target) < ($1.rank, $1.target) }
        }
        var urls: [String] = []
        for c in ordered(.current) + ordered(.unknown) where !urls.contains(c.url) { urls.append(c.url) }
        return urls
    }

    /// Hysteresis: whether the agent writes `proposed` over `current` now. Never when nothing
    /// changes; otherwise once `minDwell` seconds have passed since its last write of the file,
    /// or at once when the mirror listed first has no success left in its window (Docker is
    /// pulling through a dead mirror first).
    public static func shouldWrite(current: [String], proposed: [String], lastWriteAt: Double?, now: Double,
                                   minDwell: Double, firstListedOutcomes: [Bool]?) -> Bool {
        guard current.map(MirrorURL.normalized) != proposed.map(MirrorURL.normalized) else { return false }
        guard let last = lastWriteAt, now - last < minDwell else { return true }
        guard !current.isEmpty else { return false }
        // The first listed mirror: no success left in its window (or not probed at all).
        return !(firstListedOutcomes ?? []).contains(true)
    }
}
