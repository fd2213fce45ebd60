import Foundation
import Testing
@testable import EgressMonitor
import EgressMetrics
import EgressNet
import EgressTestSupport

/// Issue 16 "wrong today (2)" and issue 14 §0 against the registry lab of `RegistryTests`
/// (started once for that suite): an upstream's success depends on its own images only; the
/// reads it does on a mirror's behalf are the comparison's; mirrors record their builds'
/// creation time so they can be compared among themselves.
extension RegistryTests {
    /// Break: reading reference images in the own-images loop (throwing) turns the hub's round
    /// into manifest/http_not_found (red: success, referenceFailures, the counter).
    @Test(.enabled(if: hasPeers, "needs docker-registry, nginx, openssl and curl"))
    func aMirrorOnlyImageNeverFailsTheUpstream() async throws {
        let lab = try lab()
        let config = try ConfigLoader.decode(Data("""
        {"targets": [
          {"name": "hub", "kind": "dockerhub", "url": "https://127.0.0.1:\(lab.ports.hub)", "ca_file": "\(lab.certs.caFile)",
           "image": "alpine:3.20", "blob_interval_seconds": 86400},
          {"name": "partial", "kind": "mirror", "url": "http://127.0.0.1:\(lab.other.port)", "images": ["lab/tool:1", "lab/typo:1"]}
        ]}
        """.utf8))
        let hub = config.targets[0]
        #expect(hub.images.map(\.description) == [Self.alpine])
        #expect(hub.registry.referenceImages.map(\.description) == [Self.tool, "lab/typo:1"])
        let engine = ProbeEngine(config: config)
        let store = RegistryLab.store(pairs: ["hub", "partial"])

        let upstream = await engine.probeOnReactor(target: hub, path: .direct)
        Self.expectSuccess(upstream, "a mirror's private or mistyped image must not fail Docker Hub")
        #expect(upstream.registry?.digests[Self.alpine] == lab.alpine.digest)
        #expect(upstream.registry?.digests[Self.tool] == lab.tool.digest, "reference images that exist are still read")
        #expect(upstream.registry?.referenceFailures["lab/typo:1"]?.hasPrefix("manifest/http_not_found") == true,
                "\(upstream.registry?.referenceFailures ?? [:])")
        // Its http_status is its own last answer (the blob's 307 to the CDN), not the 404 the
        // reference read of the typo got.
        #expect(upstream.httpStatus == 307, "http_status \(String(describing: upstream.httpStatus))")
        store.record(upstream)
        #expect(store.metrics.value(Catalogue.probeSuccess, ["hub", "direct"]) == 1)
        #expect(store.metrics.value(Catalogue.referenceFailures, ["hub", "direct", "lab/typo:1"]) == 1)

        let mirror = await engine.probeOnReactor(target: config.targets[1], path: .direct)
        store.record(mirror)
        // The mirror itself lacks the typo'd image: its own failure, its own round.
        ProbeTests.expectFailure(mirror, .manifest, .httpNotFound, timeout: lab.timeout)
        #expect(store.metrics.value(Catalogue.manifestDigestMatch, ["partial", "direct", Self.tool]) == 1)
        #expect(store.metrics.value(Catalogue.manifestDigestMatch, ["partial", "direct", "lab/typo:1"]) == nil,
                "no comparison where the upstream could not answer")
    }

    /// A mirror's round reads its build's `created` time once per manifest digest.
    /// Break: not storing it in RegistryState makes the second round GET the manifest again (red).
    @Test(.enabled(if: hasPeers, "needs docker-registry, nginx, openssl and curl"))
    func mirrorsReadTheirBuildTimeOncePerDigest() async throws {
        let lab = try lab()
        let stale = lab.target("stale", kind: .mirror, url: "http://127.0.0.1:\(lab.other.port)", images: [Self.alpine])
        let engine = lab.engine([stale])
        let first = await engine.probeOnReactor(target: stale, path: .direct)
        Self.expectSuccess(first)
        let created = try #require(first.registry?.created[Self.alpine], "no build time read")
        #expect(abs(created - Date().timeIntervalSince1970) < 86_400 * 2, "LabImage builds are made now: \(created)")
        #expect((first.registry?.manifestRequests["GET"] ?? 0) >= 1, "the manifest is read for its config")
        let second = await engine.probeOnReactor(target: stale, path: .direct)
        #expect(second.registry?.created[Self.alpine] == created)
        #expect(second.registry?.manifestRequests["GET"] == nil, "read again: \(second.registry?.manifestRequests ?? [:])")
    }
}

@Suite struct RFC3339Tests {
    @Test(arguments: [
        ("1970-01-01T00:00:00Z", 0.0),
        ("2024-05-22T18:18:12.5Z", 1_716_401_892.5),
        ("2024-05-22T20:18:12+02:00", 1_716_401_892.0),
        ("2000-02-29T00:00:00Z", 951_782_400.0),
    ])
    func parses(_ text: String, _ seconds: Double) {
        #expect(RFC3339.seconds(text) == seconds)
    }

    @Test(arguments: ["", "2024-05-22", "2024-13-01T00:00:00Z", "2024-05-22T18:18:12", "2024-05-22T18:18:12.Z", "2024-05-22T18:18:12Zjunk"])
    func rejects(_ text: String) {
        #expect(RFC3339.seconds(text) == nil)
    }
}
