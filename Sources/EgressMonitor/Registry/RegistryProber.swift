import EgressNet

/// Probes a registry (Docker Hub, a mirror, any distribution registry): `/v2/`, then for each
/// image the target names, a pull token (`auth`), the manifest's digest (`manifest`), and every
/// `blob_interval` a bounded read of a layer (`blob`) — as far as a pull goes, without spending
/// Docker Hub's pull quota (HEADs; a GET at most every `manifest_get_interval`).
struct RegistryProber: Prober {
    func probe(_ run: ProbeRun, steps: ProbeSteps) async throws(ProbeFailure) {
        let session = RegistrySession(run: run, steps: steps)
        defer { session.close() }
        try await session.connect()
        let apiRoot = run.target.registry.apiRoot
        let v2 = try await session.request(apiRoot + "/", phase: .http)
        try RegistryAPICheck.checkV2(v2.head)
        let target = run.target
        guard !target.images.isEmpty || !target.registry.referenceImages.isEmpty else { return }
        run.registry = RegistryObservation()
        let auth = RegistryAuth.from(v2.head)
        let tokens = TokenFlow(session: session)
        for (i, image) in target.images.enumerated() {
            let (digest, authorization) = try await manifestDigest(image, auth: auth, tokens: tokens, session: session)
            // Claimed only once a round gets this far: a round that failed earlier leaves the
            // read due for the next one instead of using up a whole blob_interval.
            if i == 0, steps.registryState.claimBlobRead(PairKey(target: target.name, path: run.path.name),
                                                         interval: target.registry.blobIntervalSeconds) {
                try await readBlob(image, manifestDigest: digest, authorization: authorization, session: session)
            }
            if target.kind == .mirror, let digest {
                await readCreated(image, manifestDigest: digest, authorization: authorization, session: session)
            }
        }
        // Read for the mirrors' comparison only: a failure here is the comparison's (absent),
        // counted and logged, never this target's own (issue 16: a mirror's private or mistyped
        // image must not show Docker Hub as down).
        // Their answers (a 404 for an image only the mirror has) are not this target's http_status.
        let ownStatus = run.httpStatus
        defer { run.httpStatus = ownStatus }
        for image in target.registry.referenceImages {
            do {
                _ = try await manifestDigest(image, auth: auth, tokens: tokens, session: session)
            } catch {
                run.registry?.referenceFailures[image.description] = error.description
                Log.warn("reference read failed: a mirror's image could not be read on its upstream; its digest comparison is absent",
                         ["target": target.name, "path": run.path.name, "image": image.description, "failure": error.description])
            }
        }
    }

    /// The `auth` and `manifest` phases for one image: a token when needed, a manifest HEAD, the
    /// digest recorded in the observation. Returns the digest and the authorization used.
    private func manifestDigest(_ image: ImageReference, auth: RegistryAuth, tokens: TokenFlow,
                                session: RegistrySession) async throws(ProbeFailure) -> (String?, String?) {
        let run = session.run
        var authorization = try await tokens.authorization(auth, repository: image.repository)
        var head: HTTPClientResponse
        do {
            head = try await Manifests.fetch(image, method: "HEAD", authorization: authorization, session: session)
        } catch where error.reason == .httpUnauthorized && authorization == nil {
            // /v2/ was open but the repository is not: authenticate as its challenge says.
            let challenge = try await session.request(Manifests.path(image, apiRoot: run.target.registry.apiRoot),
                                                      method: "HEAD", phase: .manifest, headers: [("Accept", Manifests.accept)])
            guard case .bearer = RegistryAuth.from(challenge.head) else { throw error }
            authorization = try await tokens.authorization(RegistryAuth.from(challenge.head), repository: image.repository)
            head = try await Manifests.fetch(image, method: "HEAD", authorization: authorization, session: session)
        }
        let digest = head.head.headers["Docker-Content-Digest"]
        if let digest { run.registry?.digests[image.description] = digest }
        return (digest, authorization)
    }

    /// On a mirror: when the image's build was made (its config's `created`), so mirrors can be
    /// compared among themselves when no path reaches their upstream. Read once per manifest
    /// digest (content-addressed, so the answer never changes) and remembered; never on Docker
    /// Hub (its manifest GETs count as pulls). Best effort: a failure or a blob redirected to
    /// another host leaves the time unknown and the round as it was; a definite answer without
    /// a time (a redirect, no `created`) is remembered too, so such a mirror is not asked again
    /// every round. Its requests count in the `manifest` phase's time the round they are made.
    private func readCreated(_ image: ImageReference, manifestDigest: String, authorization: String?,
                             session: RegistrySession) async {
        let state = session.steps.registryState
        if let known = state.created(manifestDigest: manifestDigest) {
            if let time = known { session.run.registry?.created[image.description] = time }
            return
        }
        do throws(ProbeFailure) {
            var reference = manifestDigest
            var config: String?
            for _ in 0..<2 where config == nil {
                let manifest = try await Manifests.fetch(image, reference: reference, method: "GET",
                                                         authorization: authorization, session: session)
                if case .index(let platformManifest)? = Manifests.content(of: manifest.body) {
                    reference = platformManifest
                } else {
                    config = Manifests.configDigest(of: manifest.body)
                    if config == nil { state.store(created: nil, manifestDigest: manifestDigest); return }
                }
            }
            guard let config else { state.store(created: nil, manifestDigest: manifestDigest); return }
            var headers: [(String, String)] = []
            if let authorization { headers.append(("Authorization", authorization)) }
            let blob = try await session.request("\(session.run.target.registry.apiRoot)/\(image.repository)/blobs/\(config)",
                                                 phase: .manifest, headers: headers, bodyLimit: 1024 * 1024)
            guard blob.head.status == 200, let created = Manifests.created(ofConfig: blob.body) else {
                state.store(created: nil, manifestDigest: manifestDigest)
                return
            }
            state.store(created: created, manifestDigest: manifestDigest)
            session.run.registry?.created[image.description] = created
        } catch {
            Log.debug("build time not read", ["target": session.run.target.name, "image": image.description, "failure": error.description])
        }
    }

    /// The blob phase for `image`: picks the layer (configured, remembered, or read from the
    /// manifest with a GET when allowed), reads it, checks `min_throughput`.
    private func readBlob(_ image: ImageReference, manifestDigest: String?, authorization: String?,
                          session: RegistrySession) async throws(ProbeFailure) {
        let run = session.run
        let target = run.target
        let state = session.steps.registryState
        var layer = target.registry.blobDigest
        if layer == nil {
            let remembered = state.layer(target: target.name, image: image.description)
            if let remembered, remembered.manifestDigest == manifestDigest || target.kind == .dockerhub {
                layer = remembered.layerDigest
            }
        }
        if layer == nil {
            // Docker Hub counts manifest GETs as pulls: at most one per manifest_get_interval.
            let allowed = target.kind != .dockerhub
                || state.claimManifestGet(target: target.name, image: image.description,
                                          interval: target.registry.manifestGetIntervalSeconds)
            if !allowed { return }
            layer = try await layerDigest(image, manifestDigest: manifestDigest, authorization: authorization, session: session)
            if let layer {
                state.store(layer: .init(manifestDigest: manifestDigest, layerDigest: layer), target: target.name, image: image.description)
            }
        }
        guard let layer else { return }
        let measurement = try await BlobRead.measure(image, digest: layer, authorization: authorization, session: session)
        run.registry?.blob = measurement
        if let minimum = target.registry.minThroughputBytesPerSecond, let rate = measurement.bytesPerSecond, rate < minimum {
            throw ProbeFailure(.blob, .blobTooSlow,
                               "read \(measurement.bytes) bytes at \(Int(rate)) B/s, below min_throughput \(Int(minimum)) B/s")
        }
    }

    /// GETs the manifest (and, for an index, the linux/amd64 manifest) for its largest layer.
    private func layerDigest(_ image: ImageReference, manifestDigest: String?, authorization: String?,
                             session: RegistrySession) async throws(ProbeFailure) -> String? {
        var reference = manifestDigest ?? image.reference
        for _ in 0..<2 {
            let manifest = try await Manifests.fetch(image, reference: reference, method: "GET",
                                                     authorization: authorization, session: session)
            switch Manifests.content(of: manifest.body) {
            case .image(let layer)?: return layer
            case .index(let platformManifest)?: reference = platformManifest
            case nil:
                throw ProbeFailure(.manifest, .httpBadResponse, "the manifest of \(image) names no layers")
            }
        }
        return nil
    }
}

/// What a `/v2/` answer says about the endpoint (distribution spec; REFERENCE.md).
enum RegistryAPICheck {
    /// A registry answers 200 or 401 and identifies itself: `Docker-Distribution-API-Version`,
    /// or on 401 a Bearer/Basic `WWW-Authenticate` challenge. A 200 that does neither (a captive
    /// portal, an HTML page, a CDN's default site) is not a registry, nor is a redirect away.
    static func checkV2(_ head: HTTPResponseHead) throws(ProbeFailure) {
        let status = head.status
        let apiVersion = head.headers["Docker-Distribution-API-Version"]
        let declaresRegistry = apiVersion.map { $0.lowercased().hasPrefix("registry/2.") } ?? false
        let challenges = head.headers.values("WWW-Authenticate").flatMap { WWWAuthenticate.parse($0) }
        let hasChallenge = challenges.contains { $0.scheme == "bearer" || $0.scheme == "basic" }
        switch status {
        case 200:
            if declaresRegistry { return }
            let type = head.headers["Content-Type"] ?? "no content type"
            throw ProbeFailure(.http, .httpNotRegistry,
                               "GET /v2/ answered 200 (\(type)) without Docker-Distribution-API-Version: not a registry (captive portal or web page?)")
        case 401:
            if hasChallenge { return }
            throw ProbeFailure(.http, .httpUnauthorized, "GET /v2/ answered 401 without a Bearer or Basic challenge")
        case 300..<400:
            let location = head.headers["Location"].map { " to \(Self.hostOnly($0))" } ?? ""
            throw ProbeFailure(.http, .httpNotRegistry, "GET /v2/ answered \(status), a redirect\(location): not a registry (captive portal?)")
        default:
            let reason = HTTPStatusClass.reason(for: status) ?? .httpUnexpectedStatus
            throw ProbeFailure(.http, reason, "GET /v2/ answered \(status) \(head.reason)")
        }
    }

    /// The scheme and host of a URL, never its query (which can carry tokens).
    static func hostOnly(_ url: String) -> String {
        guard let sep = url.firstOccurrence(of: "://") else { return "a relative location" }
        let rest = url[sep.upperBound...]
        let host = rest.prefix { $0 != "/" && $0 != "?" }
        let withoutUser = host.split(separator: "@").last.map(String.init) ?? String(host)
        return "\(url[..<sep.upperBound])\(withoutUser)"
    }
}
