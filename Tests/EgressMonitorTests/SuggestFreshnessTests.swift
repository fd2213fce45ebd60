import Testing
@testable import EgressMonitor
@testable import EgressNet

/// `FreshnessJudge` and `suggest`'s use of it (issue 14 §0): a mirror that was not compared is
/// never "up to date"; the upstream's digest counts over any path that read it; when no path
/// reaches the upstream, mirrors are compared among themselves by build time. No network here;
/// `DockerJudgeTests` pulls the advice through a real dockerd.
@Suite struct SuggestFreshnessTests {
    static let image = "library/alpine:latest"

    static func ok(_ target: String, _ path: String, _ duration: Double, digest: String? = nil, created: Double? = nil) -> ProbeResult {
        var registry = RegistryObservation()
        if let digest { registry.digests[image] = digest }
        if let created { registry.created[image] = created }
        return ProbeResult(target: target, path: path, startedAt: ReportTests.t0, duration: duration, phases: [.http: duration],
                           failure: nil, registry: registry)
    }

    static func mirror(_ name: String) -> Target {
        var t = Target(name: name, kind: .mirror, url: ReportTests.url("https://\(name).example"))
        t.registry.upstream = "dockerhub"
        return t
    }

    static let config = ReportTests.config(
        targets: [Target(name: "dockerhub", kind: .dockerhub, url: ReportTests.url("https://registry-1.docker.io")),
                  mirror("stale"), mirror("fresh"), mirror("other")],
        paths: [.direct, EgressPath(name: "corp", kind: .proxy(ReportTests.url("http://proxy.corp:3128")))])

    /// Break: `reference[image].map { $0 != digest } ?? false` (today's rule) lists `stale` first.
    @Test func hubBlockedDirectlyButReadThroughAProxyIsTheReference() {
        let results = [
            ReportTests.fail("dockerhub", "direct", .tls, .tlsReset),
            Self.ok("dockerhub", "corp", 0.3, digest: "sha256:new"),
            Self.ok("stale", "direct", 0.001, digest: "sha256:old"),
            Self.ok("fresh", "direct", 0.2, digest: "sha256:new"),
        ]
        let f = FreshnessJudge.judge(config: Self.config, results: results)
        #expect(f["stale"]?.freshness == .behind)
        #expect(f["fresh"]?.freshness == .current)
        #expect(f["other"]?.freshness == .unknown, "no result, never current")
        let s = SuggestCommand.analyse(Self.config, results)
        #expect(s.mirrors.map(\.target.name) == ["fresh"])
        #expect(s.behindMirrors.map(\.target.name) == ["stale"])
    }

    /// No path reaches the hub: the newest build the mirrors serve is the reference.
    /// Break: treating an image without the upstream's digest as current puts `stale` first.
    @Test func hubUnreachableMirrorsComparedByBuildTime() {
        let results = [
            ReportTests.fail("dockerhub", "direct", .tls, .tlsReset),
            ReportTests.fail("dockerhub", "corp", .proxy, .proxyRefused),
            Self.ok("stale", "direct", 0.001, digest: "sha256:old", created: 1_600_000_000),
            Self.ok("fresh", "direct", 0.2, digest: "sha256:new", created: 1_700_000_000),
            Self.ok("other", "direct", 0.3, digest: "sha256:new", created: 1_700_000_000),
        ]
        let f = FreshnessJudge.judge(config: Self.config, results: results)
        #expect(f["stale"]?.freshness == .behind)
        #expect(f["stale"]?.detail.contains("1 of 3 mirrors serve sha256:old") == true, "\(f["stale"]?.detail ?? "")")
        #expect(f["fresh"]?.freshness == .current)
        #expect(f["fresh"]?.detail.contains("2 of 3 mirrors serve sha256:new") == true)
        #expect(f["fresh"]?.detail.contains("dockerhub not read on any path") == true)
        let s = SuggestCommand.analyse(Self.config, results)
        #expect(s.mirrors.map(\.target.name) == ["fresh", "other"])
        #expect(s.behindMirrors.map(\.target.name) == ["stale"])
        #expect(SuggestCommand.render(s).contains("Left out, behind: stale"))
    }

    /// Mirrors disagree and no build time was read: nobody can say who is behind, so all are
    /// unknown — listed after any current one, labelled so, never as "up to date".
    @Test func disagreementWithoutBuildTimesIsUnknownAndLabelled() {
        let results = [
            ReportTests.fail("dockerhub", "direct", .tls, .tlsReset),
            Self.ok("stale", "direct", 0.001, digest: "sha256:old"),
            Self.ok("fresh", "direct", 0.2, digest: "sha256:new"),
        ]
        let f = FreshnessJudge.judge(config: Self.config, results: results)
        #expect(f["stale"]?.freshness == .unknown)
        #expect(f["fresh"]?.freshness == .unknown)
        #expect(f["fresh"]?.detail.contains("mirrors disagree") == true)
        let text = SuggestCommand.render(SuggestCommand.analyse(Self.config, results))
        #expect(text.contains("NOT COMPARED, freshness unknown"))
        #expect(!text.contains("; current:"))
    }

    /// A current mirror is listed before an unknown one however much faster the unknown one is.
    @Test func currentBeforeUnknownWhateverTheSpeed() {
        let results = [
            Self.ok("dockerhub", "direct", 0.3, digest: "sha256:new"),
            Self.ok("stale", "direct", 0.001),  // answered /v2/, no digest read
            Self.ok("fresh", "direct", 0.5, digest: "sha256:new"),
        ]
        let s = SuggestCommand.analyse(Self.config, results)
        #expect(s.mirrors.map(\.target.name) == ["fresh", "stale"])
        #expect(s.mirrors.map(\.freshness.freshness) == [.current, .unknown])
    }

    /// The hub answered but could not read a mirror's image (private, mistyped): the detail
    /// says so rather than "not read on any path".
    @Test func anUpstreamThatLacksTheImageIsNamedInTheDetail() {
        var hub = RegistryObservation()
        hub.referenceFailures[Self.image] = "manifest/http_not_found: HEAD library/alpine:latest answered 404 Not Found"
        let results = [
            ProbeResult(target: "dockerhub", path: "direct", startedAt: ReportTests.t0, duration: 0.1, phases: [:], failure: nil, registry: hub),
            Self.ok("fresh", "direct", 0.2, digest: "sha256:new"),
        ]
        let f = FreshnessJudge.judge(config: Self.config, results: results)
        #expect(f["fresh"]?.freshness == .unknown)
        #expect(f["fresh"]?.detail.contains("dockerhub could not read it (manifest/http_not_found") == true, "\(f["fresh"]?.detail ?? "")")
    }

    // MARK: the proxy scheme Docker understands

    @Test func socks5hIsWrittenAsSocks5UnlessDockersGoKnowsIt() {
        let go119 = DockerEngineInfo(version: "20.10.24+dfsg1", goVersion: "go1.19.8")
        #expect(go119.goMajorMinor! == (1, 19))
        let old = SuggestCommand.dockerProxyScheme("socks5h", docker: .success(go119))
        #expect(old.scheme == "socks5")
        #expect(old.why?.contains("Docker 20.10.24+dfsg1 is built with go1.19.8") == true)
        let new = SuggestCommand.dockerProxyScheme("socks5h", docker: .success(DockerEngineInfo(version: "27.3.1", goVersion: "go1.23.2")))
        #expect(new.scheme == "socks5h" && new.why == nil)
        let unknown = SuggestCommand.dockerProxyScheme("socks5h", docker: .failure(DockerEngineProblem("cannot connect to /var/run/docker.sock: connection refused")))
        #expect(unknown.scheme == "socks5")
        #expect(unknown.why?.contains("could not be learned (cannot connect to /var/run/docker.sock") == true)
        #expect(SuggestCommand.dockerProxyScheme("socks5h", docker: nil).scheme == "socks5")
        #expect(SuggestCommand.dockerProxyScheme("http", docker: nil) == ("http", nil))
        #expect(SuggestCommand.dockerProxyScheme("socks5", docker: .success(go119)).why == nil)
        #expect(DockerEngineInfo(version: nil, goVersion: "devel").goMajorMinor == nil)
        #expect(DockerEngine.socketPath(environment: ["DOCKER_HOST": "unix:///run/user/1000/docker.sock"]) == "/run/user/1000/docker.sock")
        #expect(DockerEngine.socketPath(environment: ["DOCKER_HOST": "tcp://10.0.0.1:2375"]) == "/var/run/docker.sock")
    }
}
