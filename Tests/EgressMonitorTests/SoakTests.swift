#if canImport(Glibc)
import Glibc
#endif
import Foundation
import EgressSync
import Testing
@testable import EgressMonitor
import EgressNet
import EgressTestSupport

/// The soak (issue 5): a million probes or more, back to back with bounded concurrency, across a
/// subset of the fault matrix, printing this process's resident memory, open descriptors and
/// parked reactor waiters at the start, the middle and the end (each taken with no probe in
/// flight). They must stay flat.
///
/// Not part of the normal runs: enabled by `EGRESS_SOAK_PROBES` (see Tests/Soak/run.sh, which
/// builds in release mode first). `EGRESS_SOAK_CONCURRENCY` sets the probes in flight (32).
///
/// The peers that run in this process (the misbehaving TCP servers, the DNS servers) keep no
/// state per connection once it is closed, so what is measured is the agent's probing.
@Suite(.enabled(if: SoakSettings.probeCount != nil, "soak only: set EGRESS_SOAK_PROBES (Tests/Soak/run.sh)"))
struct SoakTests {
    static var probeCount: Int? { SoakSettings.probeCount }
    static var concurrency: Int { SoakSettings.concurrency }

    struct Scenario: Sendable {
        let name: String
        let engine: ProbeEngine
        let target: Target
        /// nil: success expected.
        let expected: FailureReason?
    }

    struct Sample: CustomStringConvertible {
        let label: String
        let probes: Int
        let rssKiB: Int
        let fds: Int
        let waiters: Int
        var description: String {
            "\(label.padding(toLength: 8, withPad: " ", startingAt: 0)) probes \(String(probes).leftPad(9))  "
                + "rss \(String(format: "%7.1f", Double(rssKiB) / 1024)) MiB  fds \(String(fds).leftPad(4))  reactor waiters \(waiters)"
        }
    }

    /// Writes a line at once (`print` is fully buffered when stdout is a pipe, as under `swift test`).
    static func report(_ line: String) {
        FileHandle.standardOutput.write(Data(("soak: " + line + "\n").utf8))
    }

    static func sample(_ label: String, probes: Int) -> Sample {
        let status = Lab.readProcFile("/proc/self/status") ?? ""
        let rss = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") } ?? -1
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
        return Sample(label: label, probes: probes, rssKiB: rss, fds: fds, waiters: Reactor.shared.waiterCount)
    }

    @Test func millionProbes() async throws {
        let total = Self.probeCount ?? 0
        let certs = try await LabCertificates.shared()

        // The peers.
        let reset = try SoakServer.start(.resetAfterRead)
        let stall = try SoakServer.start(.stall)
        let garbage = try SoakServer.start(.respond(Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".utf8)))
        let nxdomain = try LabDNSServer.start(always: .rcode(.nxDomain))
        let servfail = try LabDNSServer.start(always: .rcode(.servFail))
        let quiet = ["access_log off", "error_log /dev/null crit"]
        let nginx = try await LabNginx.start(servers: [
            NginxServer(tls: certs.expired, locations: [.registryV2()], directives: quiet),
            NginxServer(tls: certs.good, locations: [NginxLocation("/v2/", status: 429, body: #"{"detail": "Rate limit exceeded"}"#)],
                        directives: quiet),
            NginxServer(tls: nil, locations: [NginxLocation("/v2/", status: 503, body: "busy")], directives: quiet),
        ])
        let registry = try await LabRegistry.start(tls: certs.good)
        defer {
            reset.stop(); stall.stop(); garbage.stop(); nxdomain.stop(); servfail.stop()
            nginx.stop(); registry.stop()
        }

        func scenario(_ name: String, _ url: String, kind: TargetKind = .registry, resolver: ResolverConfig? = nil,
                      timeout: Double = 3, expected: FailureReason?) -> Scenario {
            let target = LabConfig.target(kind: kind, url: url, caFile: certs.caFile, resolver: resolver?.name)
            let config = LabConfig.config(targets: [target], resolvers: resolver.map { [$0] } ?? [], timeout: timeout)
            return Scenario(name: name, engine: ProbeEngine(config: config), target: target, expected: expected)
        }
        let scenarios = [
            // Port 1 (tcpmux) on loopback: nothing listens there, and nothing will start to.
            scenario("refused", "tcp://127.0.0.1:1", kind: .tcp, expected: .tcpRefused),
            scenario("reset after ClientHello", "https://127.0.0.1:\(reset.port)", expected: .tlsReset),
            scenario("stall, 50 ms timeout", "https://127.0.0.1:\(stall.port)", timeout: 0.05, expected: .tlsTimeout),
            scenario("NXDOMAIN", "https://registry.lab.test", resolver: ResolverConfig(name: "nx", address: nxdomain.address),
                     expected: .dnsNXDomain),
            scenario("SERVFAIL", "https://registry.lab.test", resolver: ResolverConfig(name: "sf", address: servfail.address),
                     expected: .dnsServFail),
            scenario("garbage for ServerHello", "https://127.0.0.1:\(garbage.port)", expected: .tlsProtocolError),
            scenario("expired certificate", "https://localhost:\(nginx.ports[0])", expected: .tlsCertExpired),
            scenario("HTTP 429", "https://localhost:\(nginx.ports[1])", expected: .httpRateLimited),
            scenario("HTTP 503", "http://127.0.0.1:\(nginx.ports[2])", expected: .httpServerError),
            scenario("healthy registry", registry.url, expected: nil),
        ]

        let tally = Mutex<[String: [String: Int]]>([:])
        let started = MonotonicClock.nanoseconds()
        func run(_ range: Range<Int>) async {
            await withTaskGroup(of: (Int, String).self) { group in
                var next = range.lowerBound
                func add() {
                    let i = next
                    next += 1
                    let s = scenarios[i % scenarios.count]
                    group.addTask {
                        let result = await s.engine.probeOnReactor(target: s.target, path: .direct)
                        return (i % scenarios.count, result.failure?.reason.rawValue ?? "success")
                    }
                }
                while next < range.upperBound && next - range.lowerBound < Self.concurrency { add() }
                var done = 0
                for await (index, outcome) in group {
                    tally.withLock { $0[scenarios[index].name, default: [:]][outcome, default: 0] += 1 }
                    done += 1
                    if (range.lowerBound + done) % 100_000 == 0 {
                        let seconds = MonotonicClock.seconds(since: started)
                        Self.report("\(Self.sample("running", probes: range.lowerBound + done))  "
                                + "\(Int(Double(range.lowerBound + done) / seconds)) probes/s")
                    }
                    if next < range.upperBound { add() }
                }
            }
            // Let the in-process servers see the last closes.
            try? await Task.sleep(nanoseconds: 200_000_000)
        }

        let warmUp = min(10_000, total / 10)
        await run(0..<warmUp)
        let start = Self.sample("start", probes: warmUp)
        Self.report("\(start)")
        await run(warmUp..<(total / 2))
        let middle = Self.sample("middle", probes: total / 2)
        Self.report("\(middle)")
        await run((total / 2)..<total)
        let end = Self.sample("end", probes: total)
        Self.report("\(end)")
        let seconds = MonotonicClock.seconds(since: started)
        Self.report("\(total) probes in \(Int(seconds)) s (\(Int(Double(total) / seconds)) probes/s), concurrency \(Self.concurrency)")

        var unexpected = 0
        for s in scenarios {
            let counts = tally.withLock { $0[s.name] ?? [:] }
            let wanted = s.expected?.rawValue ?? "success"
            let other = counts.filter { $0.key != wanted }
            unexpected += other.values.reduce(0, +)
            Self.report("  \(s.name.padding(toLength: 26, withPad: " ", startingAt: 0)) \(wanted): \(counts[wanted] ?? 0)"
                  + (other.isEmpty ? "" : "  other: \(other.sorted { $0.key < $1.key })"))
        }
        // Flat: descriptors back where they started, no waiter left parked, memory within noise
        // (a leak of one small object per probe would add tens of MiB over a million probes).
        #expect(end.fds <= start.fds + 2, "descriptors grew: \(start.fds) -> \(end.fds)")
        // The parked waiters left are the in-process servers' accept and receive loops.
        #expect(end.waiters <= start.waiters, "reactor waiters grew: \(start.waiters) -> \(end.waiters)")
        #expect(end.rssKiB - middle.rssKiB < 16 * 1024, "resident memory grew in the second half: \(middle) -> \(end)")
        #expect(unexpected <= total / 1000, "\(unexpected) probes ended with another outcome than expected")
    }
}

/// The soak's settings, from the environment (outside the suite: its trait cannot refer to it).
enum SoakSettings {
    static let probeCount: Int? = ProcessInfo.processInfo.environment["EGRESS_SOAK_PROBES"].flatMap { Int($0) }
    static let concurrency = ProcessInfo.processInfo.environment["EGRESS_SOAK_CONCURRENCY"].flatMap { Int($0) } ?? 32
}

/// A TCP server for the soak that keeps nothing per connection once it is closed: the lab's
/// `LabTCPServer` keeps every accepted socket until it stops, which a million probes would turn
/// into a leak of the test's own making.
final class SoakServer: Sendable {
    enum Behaviour: Sendable {
        /// Reads until the client closes; never answers.
        case stall
        /// Reads the first bytes, then closes with an RST (SO_LINGER 0).
        case resetAfterRead
        /// Reads the first bytes, sends these, closes.
        case respond([UInt8])
    }

    let port: UInt16
    private let listener: Socket
    private let open = Mutex<[ObjectIdentifier: Socket]>([:])
    private let acceptLoop = Mutex<Task<Void, Never>?>(nil)

    static func start(_ behaviour: Behaviour) throws -> SoakServer {
        let listener = try Socket.listen(on: SocketAddress(ip: IPAddress(Lab.loopback)!, port: 0), backlog: 1024)
        let server = SoakServer(listener: listener, port: listener.localAddress!.port)
        let task = Task { [server] in
            while !Task.isCancelled {
                guard let (connection, _) = try? await listener.accept() else { return }
                server.open.withLock { $0[ObjectIdentifier(connection)] = connection }
                Task { await server.serve(connection, behaviour) }
            }
        }
        server.acceptLoop.withLock { $0 = task }
        return server
    }

    private init(listener: Socket, port: UInt16) {
        self.listener = listener
        self.port = port
    }

    private func serve(_ connection: Socket, _ behaviour: Behaviour) async {
        defer {
            connection.close()
            _ = open.withLock { $0.removeValue(forKey: ObjectIdentifier(connection)) }
        }
        let deadline = Deadline.after(seconds: 30)
        guard let first = try? await connection.read(maxBytes: 16 * 1024, deadline: deadline), !first.isEmpty else { return }
        switch behaviour {
        case .stall:
            while let more = try? await connection.read(maxBytes: 16 * 1024, deadline: deadline), !more.isEmpty {}
        case .resetAfterRead:
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(connection.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        case .respond(let bytes):
            try? await connection.write(bytes, deadline: deadline)
        }
    }

    func stop() {
        acceptLoop.withLock { $0 }?.cancel()
        listener.close()
        for connection in open.withLock({ Array($0.values) }) { connection.close() }
    }
}

extension String {
    fileprivate func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
