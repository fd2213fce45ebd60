import EgressNet
import EgressSync

/// What the registry phases remember between rounds: tokens until they expire, the layer
/// digests read from manifests, when a manifest was last fetched with GET (Docker Hub counts
/// those against the pull limit) and when each pair last read a blob. Kept across reloads.
public final class RegistryState: Sendable {
    struct Token {
        let value: String
        let expiresAt: UInt64  // monotonic nanoseconds
    }

    struct LayerChoice {
        let manifestDigest: String?
        let layerDigest: String
    }

    private struct State {
        var tokens: [String: Token] = [:]
        var layers: [String: LayerChoice] = [:]
        var lastManifestGet: [String: UInt64] = [:]
        var lastBlob: [PairKey: UInt64] = [:]
        /// Manifest digest → its image config's `created` time (nil: asked, none to be had).
        var created: [String: Double?] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    func token(_ key: String) -> String? {
        let now = MonotonicClock.nanoseconds()
        return state.withLock { s in
            guard let t = s.tokens[key] else { return nil }
            if t.expiresAt <= now {
                s.tokens[key] = nil
                return nil
            }
            return t.value
        }
    }

    /// Keeps a token until a little before it expires (10 % or 5 s, whichever is less).
    func store(token: String, key: String, expiresIn seconds: Double) {
        let margin = min(seconds * 0.1, 5)
        let expires = MonotonicClock.nanoseconds() + UInt64(max(0, seconds - margin) * 1e9)
        state.withLock { s in
            if s.tokens.count > 1024 { s.tokens.removeAll() }
            s.tokens[key] = Token(value: token, expiresAt: expires)
        }
    }

    func layer(target: String, image: String) -> LayerChoice? {
        state.withLock { $0.layers["\(target)|\(image)"] }
    }

    func store(layer: LayerChoice, target: String, image: String) {
        state.withLock { $0.layers["\(target)|\(image)"] = layer }
    }

    /// Whether a manifest GET of `image` on `target` is allowed now; when it is, the GET is
    /// counted as made, so concurrent rounds over other paths do not GET it too.
    func claimManifestGet(target: String, image: String, interval: Double) -> Bool {
        let now = MonotonicClock.nanoseconds()
        return state.withLock { s in
            let key = "\(target)|\(image)"
            if let last = s.lastManifestGet[key], Double(now - last) / 1e9 < interval { return false }
            s.lastManifestGet[key] = now
            return true
        }
    }

    /// nil when never asked; `.some(nil)` when asked and no time could be had.
    func created(manifestDigest: String) -> Double?? {
        state.withLock { $0.created[manifestDigest] }
    }

    func store(created: Double?, manifestDigest: String) {
        state.withLock { s in
            if s.created.count > 1024 { s.created.removeAll() }
            s.created[manifestDigest] = created
        }
    }

    /// Whether a blob read is due for this pair; when it is, it counts as started.
    func claimBlobRead(_ key: PairKey, interval: Double) -> Bool {
        let now = MonotonicClock.nanoseconds()
        return state.withLock { s in
            if let last = s.lastBlob[key], Double(now - last) / 1e9 < interval { return false }
            s.lastBlob[key] = now
            return true
        }
    }
}
