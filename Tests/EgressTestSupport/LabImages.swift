#if canImport(Glibc)
import Glibc
#endif
import Foundation
import EgressNet

/// A small image made at test time: random layer blobs (not real tarballs — a registry stores
/// blobs by digest and never opens them), a config blob naming them, and a Docker v2 schema 2
/// manifest. Two builds with the same sizes still differ: the bytes are random.
public struct LabImage: Sendable {
    public static let manifestType = "application/vnd.docker.distribution.manifest.v2+json"

    public let layers: [[UInt8]]
    public let layerDigests: [String]
    public let config: [UInt8]
    public let configDigest: String
    /// The manifest's exact bytes, as pushed.
    public let manifest: [UInt8]
    /// `sha256:` of `manifest`: what `Docker-Content-Digest` says for it.
    public let digest: String

    /// An image whose layers have `layerSizes` random bytes each, built at `created` (Unix
    /// seconds, whole; now by default), which its config records as image configs do.
    public static func random(layerSizes: [Int], created: Double = Date().timeIntervalSince1970) -> LabImage {
        let layers = layerSizes.map(randomBytes)
        let layerDigests = layers.map(LabDigest.sha256)
        return assemble(layers: layers, layerDigests: layerDigests, diffIDs: layerDigests, created: created)
    }

    /// The config and manifest for `layers` (gzip blobs) whose uncompressed digests are `diffIDs`.
    public static func assemble(layers: [[UInt8]], layerDigests: [String], diffIDs: [String], created: Double) -> LabImage {
        let diffIDs = diffIDs.map { "\"\($0)\"" }.joined(separator: ",")
        let config = Array("""
            {"architecture":"amd64","os":"linux","created":"\(rfc3339(created))","config":{},"rootfs":{"type":"layers","diff_ids":[\(diffIDs)]}}
            """.utf8)
        let configDigest = LabDigest.sha256(config)
        let layerEntries = zip(layers, layerDigests).map { layer, digest in
            #"{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":\#(layer.count),"digest":"\#(digest)"}"#
        }.joined(separator: ",")
        let manifest = Array("""
            {"schemaVersion":2,"mediaType":"\(manifestType)",\
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":\(config.count),"digest":"\(configDigest)"},\
            "layers":[\(layerEntries)]}
            """.utf8)
        return LabImage(layers: layers, layerDigests: layerDigests, config: config, configDigest: configDigest,
                        manifest: manifest, digest: LabDigest.sha256(manifest))
    }

    /// `2024-05-22T18:18:12Z`.
    public static func rfc3339(_ seconds: Double) -> String {
        var t = time_t(seconds.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    /// The largest layer's digest: the one a probe reads for throughput.
    public var largestLayerDigest: String {
        zip(layers, layerDigests).max { $0.0.count < $1.0.count }!.1
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        guard let random = FileHandle(forReadingAtPath: "/dev/urandom") else { fatalError("cannot open /dev/urandom") }
        defer { try? random.close() }
        let bytes = [UInt8](random.readData(ofLength: count))
        precondition(bytes.count == count, "short read from /dev/urandom")
        return bytes
    }
}

/// Pushes images over the registry API, as `docker push` does: each blob with a `POST` to
/// `/v2/NAME/blobs/uploads/` and a monolithic `PUT` of the upload location with `?digest=`, then
/// the manifest with `PUT /v2/NAME/manifests/TAG`. Plain HTTP to a registry on 127.0.0.1.
public struct LabPusher: Sendable {
    /// The registry's port on 127.0.0.1 (plain HTTP).
    public let port: UInt16
    /// The `Authorization` value for pushing to a repository (nil: the registry has no auth).
    public let authorization: @Sendable (_ repository: String) throws -> String?

    public init(port: UInt16, authorization: @escaping @Sendable (_ repository: String) throws -> String? = { _ in nil }) {
        self.port = port
        self.authorization = authorization
    }

    /// Pushes `image` as `repository:tag`; returns the digest the registry answered with.
    @discardableResult
    public func push(_ image: LabImage, repository: String, tag: String) async throws -> String {
        let auth = try authorization(repository)
        for (blob, digest) in zip(image.layers + [image.config], image.layerDigests + [image.configDigest]) {
            try await upload(blob, digest: digest, repository: repository, authorization: auth)
        }
        let response = try await send("PUT", "/v2/\(repository)/manifests/\(tag)", authorization: auth,
                                      headers: [("Content-Type", LabImage.manifestType)], body: image.manifest)
        guard response.head.status == 201 else {
            throw LabError("manifest PUT \(repository):\(tag) answered \(response.head.status): \(String(decoding: response.body, as: UTF8.self))")
        }
        let digest = response.head.headers["Docker-Content-Digest"] ?? ""
        guard digest == image.digest else {
            throw LabError("the registry stored \(repository):\(tag) as \(digest), not \(image.digest)")
        }
        return digest
    }

    private func upload(_ blob: [UInt8], digest: String, repository: String, authorization: String?) async throws {
        let start = try await send("POST", "/v2/\(repository)/blobs/uploads/", authorization: authorization)
        guard start.head.status == 202, let location = start.head.headers["Location"] else {
            throw LabError("upload POST for \(repository) answered \(start.head.status): \(String(decoding: start.body, as: UTF8.self))")
        }
        // Location is absolute (distribution builds it from the Host header) or a path.
        var target = location
        if let scheme = target.range(of: "://") {
            let rest = target[scheme.upperBound...]
            target = rest.firstIndex(of: "/").map { String(rest[$0...]) } ?? "/"
        }
        target += (target.contains("?") ? "&" : "?") + "digest=" + digest.replacingOccurrences(of: ":", with: "%3A")
        let put = try await send("PUT", target, authorization: authorization,
                                 headers: [("Content-Type", "application/octet-stream")], body: blob)
        guard put.head.status == 201 else {
            throw LabError("upload PUT of \(digest) to \(repository) answered \(put.head.status): \(String(decoding: put.body, as: UTF8.self))")
        }
    }

    private func send(_ method: String, _ target: String, authorization: String?,
                      headers extra: [(String, String)] = [], body: [UInt8] = []) async throws -> HTTPClientResponse {
        var headers = HTTPHeaders()
        headers.add("Host", "\(Lab.loopback):\(port)")
        headers.add("Connection", "close")
        if let authorization { headers.add("Authorization", authorization) }
        for (name, value) in extra { headers.add(name, value) }
        if body.isEmpty && (method == "POST" || method == "PUT") { headers.add("Content-Length", "0") }
        let socket = try Socket.tcp(family: AF_INET)
        defer { socket.close() }
        let deadline = Deadline.after(seconds: 30)
        try await socket.connect(to: SocketAddress(ip: IPAddress(Lab.loopback)!, port: port), deadline: deadline)
        return try await HTTPClient.send(HTTPRequest(method: method, target: target, headers: headers, body: body),
                                         over: socket, deadline: deadline)
    }
}
