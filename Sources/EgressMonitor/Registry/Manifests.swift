import EgressNet

/// The `manifest` phase: HEAD (or, when a layer digest is needed, GET) of an image's manifest
/// with the Accept list Docker and containerd send, reading `Docker-Content-Digest` and the
/// pull-limit headers.
enum Manifests {
    /// Docker v2 manifest, manifest list, OCI manifest, OCI index — what `docker pull` accepts.
    /// Without it Docker Hub has answered with a schema-1 manifest whose digest differs.
    static let accept = [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ].joined(separator: ", ")

    static func path(_ image: ImageReference, reference: String? = nil) -> String {
        "/v2/\(image.repository)/manifests/\(reference ?? image.reference)"
    }

    /// A manifest request; a non-200 answer fails the phase with its status's reason.
    static func fetch(_ image: ImageReference, reference: String? = nil, method: String, authorization: String?,
                      session: RegistrySession) async throws(ProbeFailure) -> HTTPClientResponse {
        var headers: [(String, String)] = [("Accept", accept)]
        if let authorization { headers.append(("Authorization", authorization)) }
        let response = try await session.request(path(image, reference: reference), method: method, phase: .manifest,
                                                 headers: headers, bodyLimit: 4 * 1024 * 1024)
        let run = session.run
        var observation = run.registry ?? RegistryObservation()
        observation.manifestRequests[method, default: 0] += 1
        if let limits = rateLimit(response.head.headers) { observation.rateLimit = limits }
        run.registry = observation
        guard response.head.status == 200 else {
            let status = response.head.status
            let reason = HTTPStatusClass.reason(for: status) ?? .httpUnexpectedStatus
            throw ProbeFailure(.manifest, reason, "\(method) \(image) answered \(status) \(response.head.reason)")
        }
        return response
    }

    /// `ratelimit-limit: 100;w=21600`, `ratelimit-remaining: 76;w=21600`, or the `x-ratelimit-*`
    /// variants. Nil when the registry sends none (unlimited, or a paid account).
    static func rateLimit(_ headers: HTTPHeaders) -> RateLimit? {
        func parse(_ name: String) -> (Double, Double?)? {
            guard let value = headers[name] ?? headers["x-" + name] else { return nil }
            let parts = value.split(separator: ";").map(\.trimmingWhitespace)
            guard let first = parts.first, let count = Double(first), count >= 0 else { return nil }
            let window = parts.dropFirst().first { $0.hasPrefix("w=") }.flatMap { Double($0.dropFirst(2)) }
            return (count, window)
        }
        let limit = parse("ratelimit-limit")
        let remaining = parse("ratelimit-remaining")
        guard limit != nil || remaining != nil else { return nil }
        return RateLimit(limit: limit?.0, remaining: remaining?.0, windowSeconds: limit?.1 ?? remaining?.1)
    }

    /// From a manifest or an index: the platform manifest to follow (linux/amd64 first), or the
    /// largest layer, so a bounded blob read has enough bytes to time.
    enum Content {
        case index(platformManifest: String)
        case image(layer: String)
    }

    static func content(of body: [UInt8]) -> Content? {
        guard let object = (try? JSONValue.parse(body, duplicateKeys: .lastWins))?.objectValue else { return nil }
        // An array of objects, or nil (as a cast to [[String: Any]] was): an element of another
        // kind makes the whole list unusable.
        func objects(_ key: String) -> [[String: JSONValue]]? {
            guard let items = object[key]?.arrayValue else { return nil }
            let dicts = items.compactMap(\.objectValue)
            return dicts.count == items.count ? dicts : nil
        }
        if let manifests = objects("manifests") {
            func platform(_ m: [String: JSONValue]) -> (String, String) {
                let p = m["platform"]?.objectValue
                return (p?["os"]?.stringValue ?? "", p?["architecture"]?.stringValue ?? "")
            }
            let chosen = manifests.first { platform($0) == ("linux", "amd64") }
                ?? manifests.first { platform($0).0 != "unknown" } ?? manifests.first
            return chosen?["digest"]?.stringValue.map { .index(platformManifest: $0) }
        }
        if let layers = objects("layers") {
            let largest = layers.max { ($0["size"]?.intValue ?? 0) < ($1["size"]?.intValue ?? 0) }
            return largest?["digest"]?.stringValue.map { .image(layer: $0) }
        }
        return nil
    }
}
