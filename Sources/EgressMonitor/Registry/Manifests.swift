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

    static func path(_ image: ImageReference, reference: String? = nil, apiRoot: String) -> String {
        "\(apiRoot)/\(image.repository)/manifests/\(reference ?? image.reference)"
    }

    /// A manifest request; a non-200 answer fails the phase with its status's reason.
    static func fetch(_ image: ImageReference, reference: String? = nil, method: String, authorization: String?,
                      session: RegistrySession) async throws(ProbeFailure) -> HTTPClientResponse {
        var headers: [(String, String)] = [("Accept", accept)]
        if let authorization { headers.append(("Authorization", authorization)) }
        let response = try await session.request(path(image, reference: reference, apiRoot: session.run.target.registry.apiRoot), method: method, phase: .manifest,
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

    /// The image config's digest of an image manifest (`config.digest`); nil for an index.
    static func configDigest(of body: [UInt8]) -> String? {
        guard let object = (try? JSONValue.parse(body, duplicateKeys: .lastWins))?.objectValue else { return nil }
        return object["config"]?.objectValue?["digest"]?.stringValue
    }

    /// The `created` time of an image config, Unix seconds (RFC 3339, as the OCI image spec
    /// writes it: `2024-05-22T18:18:12.052034407Z`, or with a `+hh:mm` offset).
    static func created(ofConfig body: [UInt8]) -> Double? {
        guard let object = (try? JSONValue.parse(body, duplicateKeys: .lastWins))?.objectValue,
              let text = object["created"]?.stringValue else { return nil }
        return RFC3339.seconds(text)
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

/// RFC 3339 date-times, as image configs carry them.
enum RFC3339 {
    /// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` as Unix seconds; nil for anything else.
    static func seconds(_ text: String) -> Double? {
        let b = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var n = 0
            for c in b[from..<from + count] {
                guard c >= 48, c <= 57 else { return nil }
                n = n * 10 + Int(c - 48)
            }
            return n
        }
        guard b.count >= 20, let year = num(0, 4), b[4] == 45, let month = num(5, 2), b[7] == 45, let day = num(8, 2),
              b[10] == 84 || b[10] == 116 || b[10] == 32, let hour = num(11, 2), b[13] == 58, let minute = num(14, 2),
              b[16] == 58, let second = num(17, 2), (1...12).contains(month), (1...31).contains(day),
              hour < 24, minute < 60, second < 61 else { return nil }
        var i = 19
        var fraction = 0.0
        if b[i] == 46 {
            var scale = 0.1
            i += 1
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                fraction += Double(b[i] - 48) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == 90 || b[i] == 122 {
            i += 1
        } else if b[i] == 43 || b[i] == 45, let oh = num(i + 1, 2), b.count > i + 3, b[i + 3] == 58, let om = num(i + 4, 2) {
            offset = (oh * 60 + om) * 60 * (b[i] == 43 ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        // Days from the civil date (Howard Hinnant's algorithm), proleptic Gregorian.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Double(days * 86_400 + hour * 3600 + minute * 60 + second - offset) + fraction
    }
}
