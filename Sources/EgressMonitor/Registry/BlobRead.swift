import EgressNet

/// The `blob` phase: GET a layer blob, following redirects to the CDN host over the same path
/// with fresh DNS, TCP and TLS, never sending `Authorization` to another host; read at most
/// `blob_bytes` and stop.
enum BlobRead {
    static let maxRedirects = 5

    static func measure(_ image: ImageReference, digest: String, authorization: String?,
                        session: RegistrySession) async throws(ProbeFailure) -> BlobMeasurement {
        let run = session.run
        let origin = run.target.url
        let limit = run.target.registry.blobBytes
        return try await run.phase(.blob) { _ throws(ProbeFailure) in
            var url = origin
            var pathAndQuery = "\(run.target.registry.apiRoot)/\(image.repository)/blobs/\(digest)"
            var redirectedTo: String?
            for _ in 0...maxRedirects {
                let sameOrigin = url.scheme == origin.scheme && url.host == origin.host && url.port == origin.port
                var headers: [(String, String)] = []
                if sameOrigin, let authorization { headers.append(("Authorization", authorization)) }
                let response: HTTPClientResponse
                if sameOrigin {
                    response = try await session.request(pathAndQuery, phase: .blob, headers: headers, bodyLimit: limit,
                                                         truncate: true, keepBody: false)
                } else {
                    let stream = try await session.open(url, countedAs: .blob)
                    defer { stream.close() }
                    response = try await session.steps.request(pathAndQuery, over: stream, phase: .blob, url: url,
                                                               bodyLimit: limit, truncate: true, keepBody: false, run: run)
                }
                let status = response.head.status
                if status == 200 || status == 206 {
                    let rate = response.bodyTime > 0 && response.bodyByteCount >= 16 * 1024
                        ? Double(response.bodyByteCount) / response.bodyTime : nil
                    return BlobMeasurement(bytes: response.bodyByteCount, seconds: response.bodyTime,
                                           bytesPerSecond: rate, redirectedTo: redirectedTo)
                }
                guard [301, 302, 303, 307, 308].contains(status) else {
                    throw ProbeFailure(.blob, HTTPStatusClass.reason(for: status) ?? .httpUnexpectedStatus,
                                       "blob GET answered \(status) \(response.head.reason)")
                }
                guard let location = response.head.headers["Location"], let next = resolve(location, against: url) else {
                    throw ProbeFailure(.blob, .httpBadResponse, "blob redirect \(status) without a usable Location")
                }
                url = next.url
                pathAndQuery = next.pathAndQuery
                if !(url.scheme == origin.scheme && url.host == origin.host && url.port == origin.port) {
                    redirectedTo = "\(url.scheme)://\(url.host)"
                }
            }
            throw ProbeFailure(.blob, .httpBadResponse, "more than \(maxRedirects) redirects for a blob")
        }
    }

    /// An absolute or origin-relative Location, as a URL and the request target.
    static func resolve(_ location: String, against base: EndpointURL) -> (url: EndpointURL, pathAndQuery: String)? {
        if location.hasPrefix("/") { return (base, location) }
        guard case .success(let url) = EndpointURL.parse(location, defaultPorts: ["https": 443, "http": 80]),
              url.scheme == "https" || url.scheme == "http", url.username == nil else { return nil }
        return (EndpointURL(scheme: url.scheme, host: url.host, port: url.port), url.path.isEmpty ? "/" : url.path)
    }
}
