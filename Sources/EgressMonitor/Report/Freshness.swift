/// Whether a mirror serves what its upstream serves now (DESIGN.md, "Acting on what it
/// measures"): the one judgement `suggest`, `apply` and the managed files share.
public enum Freshness: String, Sendable, Equatable {
    /// Its digests equal the upstream's, read over any path that reaches the upstream; or, when
    /// none does, it is among the newest the mirrors agree on.
    case current
    /// Shown older: another digest than the upstream's, or an older build than other mirrors.
    case behind
    /// Nothing to compare with. Never treated as current.
    case unknown
}

/// The freshness of one mirror target and how it was decided.
public struct MirrorFreshness: Sendable, Equatable {
    /// The mirror target's name.
    public let target: String
    public let freshness: Freshness
    /// For people: how it was decided and how sure.
    public let detail: String

    public init(target: String, freshness: Freshness, detail: String) {
        self.target = target
        self.freshness = freshness
        self.detail = detail
    }
}

public enum FreshnessJudge {
    /// Judges every mirror target of `config` from one set of results (the last result of each
    /// target × path pair, all paths): current / behind / unknown, per DESIGN's freshness rule.
    ///
    /// Image by image: against the upstream's digest when any path read it; otherwise against
    /// the other mirrors of the same upstream, the newest build (image config `created`) they
    /// serve being the reference. A mirror is behind when one image is, current when every
    /// image it answered for is, unknown otherwise.
    public static func judge(config: AgentConfig, results: [ProbeResult]) -> [String: MirrorFreshness] {
        let mirrors = config.targets.filter { $0.kind == .mirror }
        var observed: [String: (digests: [String: String], created: [String: Double])] = [:]
        var unreadable: [String: [String: String]] = [:]  // target → image → why it could not be read
        for r in results {
            guard let registry = r.registry else { continue }
            for (image, why) in registry.referenceFailures { unreadable[r.target, default: [:]][image] = why }
            for (image, digest) in registry.digests { observed[r.target, default: ([:], [:])].digests[image] = digest }
            for (image, time) in registry.created { observed[r.target, default: ([:], [:])].created[image] = time }
        }
        var out: [String: MirrorFreshness] = [:]
        for mirror in mirrors {
            let mine = observed[mirror.name]?.digests ?? [:]
            guard !mine.isEmpty else {
                out[mirror.name] = MirrorFreshness(target: mirror.name, freshness: .unknown,
                                                   detail: "no manifest digest read from it this round: nothing to compare")
                continue
            }
            let upstream = mirror.registry.upstream
            let reference = upstream.flatMap { observed[$0]?.digests } ?? [:]
            let peers = mirrors.filter { $0.name != mirror.name && $0.registry.upstream == upstream }
            var verdicts: [(image: String, freshness: Freshness, detail: String)] = []
            for (image, digest) in mine.sorted(by: { $0.key < $1.key }) {
                if let up = reference[image] {
                    verdicts.append(up == digest
                        ? (image, .current, "\(image): the same digest as \(upstream!)")
                        : (image, .behind, "\(image): \(short(digest)), but \(upstream!) serves \(short(up))"))
                    continue
                }
                let upstreamFailure = upstream.flatMap { unreadable[$0]?[image] }
                verdicts.append(amongPeers(mirror: mirror.name, image: image, digest: digest, upstream: upstream,
                                           upstreamFailure: upstreamFailure,
                                           peers: peers.map { ($0.name, observed[$0.name]) }
                                               .compactMap { name, o in o.map { (name, $0.digests[image], $0.created[image]) } }
                                               .compactMap { name, d, c in d.map { (name, $0, c) } },
                                           created: observed[mirror.name]?.created[image]))
            }
            let freshness: Freshness
            if verdicts.contains(where: { $0.freshness == .behind }) {
                freshness = .behind
            } else if verdicts.allSatisfy({ $0.freshness == .current }) {
                freshness = .current
            } else {
                freshness = .unknown
            }
            let shown = verdicts.filter { freshness == .unknown || $0.freshness == freshness }
            out[mirror.name] = MirrorFreshness(target: mirror.name, freshness: freshness,
                                               detail: shown.map(\.detail).joined(separator: "; "))
        }
        return out
    }

    /// One image of a mirror judged against the other mirrors of its upstream, for when no
    /// path read the upstream's own digest.
    static func amongPeers(mirror: String, image: String, digest: String, upstream: String?, upstreamFailure: String? = nil,
                           peers: [(name: String, digest: String, created: Double?)],
                           created: Double?) -> (image: String, freshness: Freshness, detail: String) {
        let why = upstream.map { up in upstreamFailure.map { "\(up) could not read it (\($0))" } ?? "\(up) not read on any path" } ?? "no upstream"
        guard !peers.isEmpty else {
            return (image, .unknown, "\(image): \(why) and no other mirror to compare with")
        }
        let all = [(name: mirror, digest: digest, created: created)] + peers
        let agreeing = all.filter { $0.digest == digest }.count
        let agreement = "\(agreeing) of \(all.count) mirrors serve \(short(digest))"
        // By build time when every mirror's was read: the newest build is the reference.
        if all.allSatisfy({ $0.created != nil }) {
            let newest = all.max { ($0.created!, $0.digest) < ($1.created!, $1.digest) }!
            if newest.digest == digest || newest.created! == created! {
                return (image, .current, "\(image): \(why); the newest build the mirrors serve (created \(Format.utc(created!))), \(agreement)")
            }
            return (image, .behind, "\(image): \(why); built \(Format.utc(created!)), older than \(short(newest.digest)) (created \(Format.utc(newest.created!))) served by \(all.filter { $0.digest == newest.digest }.map(\.name).joined(separator: ", ")); \(agreement)")
        }
        // Without build times, only unanimity says something: every mirror serving the same
        // digest. A split with unknown build times cannot say which side is older.
        if agreeing == all.count {
            return (image, .current, "\(image): \(why); all \(all.count) mirrors serve \(short(digest))")
        }
        return (image, .unknown, "\(image): \(why); mirrors disagree (\(agreement)) and their build times were not read")
    }

    /// `sha256:0123456789ab` — enough of a digest for people.
    static func short(_ digest: String) -> String {
        guard let colon = digest.firstIndex(of: ":") else { return digest }
        let hex = digest[digest.index(after: colon)...]
        return String(digest[...colon]) + String(hex.prefix(12))
    }
}
