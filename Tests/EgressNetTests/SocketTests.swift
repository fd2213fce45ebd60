import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import EgressNet

@Suite struct SocketTests {
    static let loopback = SocketAddress(ip: IPAddress("127.0.0.1")!, port: 0)

    /// EBADF from a socket call: when `close()` (from another task, which Socket allows) has
    /// marked the socket closed, the call fails as `.closed`; when nothing closed it, it is a
    /// bug and traps. (recv on descriptor -1 fails with EBADF as a recv does whose descriptor
    /// another task closed between the load and the call.)
    @Test func ebadfAfterAConcurrentCloseIsClosedElseATrap() async {
        let attempt = Syscall.nonBlocking("recv", closedMeanwhile: { true }) { Glibc.recv(-1, nil, 0, 0) }
        guard case .failed(.closed) = attempt else {
            Issue.record("EBADF after a close: expected .failed(.closed), got \(attempt)")
            return
        }
        let trapped = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Syscall.nonBlocking("recv", closedMeanwhile: { false }) { Glibc.recv(-1, nil, 0, 0) }
        }
        #if DEBUG
        let stderr = trapped.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
        #expect(stderr.contains("recv: Bad file descriptor (errno 9)"), "stderr: \(stderr)")
        #endif
    }

    @Test func echoOverLoopback() async throws {
        let listener = try Socket.listen(on: Self.loopback)
        defer { listener.close() }
        let address = try #require(listener.localAddress)
        #expect(address.port != 0)
        async let server: Void = {
            let (conn, _) = try await listener.accept(deadline: .after(seconds: 5))
            defer { conn.close() }
            let got = try await conn.read(deadline: .after(seconds: 5))
            try await conn.write(got.reversed(), deadline: .after(seconds: 5))
        }()
        let client = try Socket.tcp(family: address.family)
        defer { client.close() }
        try await client.connect(to: address, deadline: .after(seconds: 5))
        try await client.write(Array("hello".utf8), deadline: .after(seconds: 5))
        let answer = try await client.read(deadline: .after(seconds: 5))
        try await server
        #expect(answer == Array("olleh".utf8))
        let eof = try await client.read(deadline: .after(seconds: 5))
        #expect(eof.isEmpty)
    }

    @Test func connectToClosedPortIsRefused() async throws {
        // Bind then close a listener: its port is known free and refuses.
        let probe = try Socket.listen(on: Self.loopback)
        let address = try #require(probe.localAddress)
        probe.close()
        let client = try Socket.tcp(family: address.family)
        defer { client.close() }
        await #expect(throws: NetError.refused) {
            try await client.connect(to: address, deadline: .after(seconds: 5))
        }
    }

    @Test func readFromSilentPeerTimesOutAtTheDeadline() async throws {
        let listener = try Socket.listen(on: Self.loopback)
        defer { listener.close() }
        let address = try #require(listener.localAddress)
        let client = try Socket.tcp(family: address.family)
        defer { client.close() }
        try await client.connect(to: address, deadline: .after(seconds: 5))
        let start = MonotonicClock.nanoseconds()
        await #expect(throws: NetError.timedOut) {
            _ = try await client.read(deadline: .after(seconds: 0.2))
        }
        let elapsed = MonotonicClock.seconds(since: start)
        #expect(elapsed >= 0.2)
        // Bounded, not exact: the suite shares the cooperative pool with CPU-bound tests.
        #expect(elapsed < 2.5, "the wait ended \(elapsed)s after a 0.2s deadline")
    }

    @Test func manyConcurrentWaitersEachEndOnTheirOwnDeadline() async throws {
        let listener = try Socket.listen(on: Self.loopback, backlog: 512)
        defer { listener.close() }
        let address = try #require(listener.localAddress)
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let s = try Socket.tcp(family: address.family)
                    defer { s.close() }
                    try await s.connect(to: address, deadline: .after(seconds: 5))
                    do {
                        _ = try await s.read(deadline: .after(seconds: 0.05 + Double(i % 10) * 0.01))
                        return false
                    } catch NetError.timedOut {
                        return true
                    }
                }
            }
            var all: [Bool] = []
            for try await o in group { all.append(o) }
            return all
        }
        #expect(outcomes.count == 200)
        #expect(outcomes.allSatisfy { $0 })
    }

    @Test func cancellationWakesAParkedRead() async throws {
        let listener = try Socket.listen(on: Self.loopback)
        defer { listener.close() }
        let address = try #require(listener.localAddress)
        let client = try Socket.tcp(family: address.family)
        defer { client.close() }
        try await client.connect(to: address, deadline: .after(seconds: 5))
        let deadline = Deadline.after(seconds: 30)
        let task = Task { () -> NetError? in
            do { _ = try await client.read(deadline: deadline); return nil } catch let e as NetError { return e } catch { return nil }
        }
        // Cancelled once the read is parked in the reactor (not before it got there, which the
        // check before parking would catch instead): only the reactor's cancellation wakes it.
        try await SocketTests.waitUntil("the read is parked") { Reactor.shared.hasParkedTask(fd: client.fd, deadline: deadline) }
        let start = MonotonicClock.nanoseconds()
        task.cancel()
        let error = await task.value
        #expect(error == .cancelled)
        #expect(MonotonicClock.seconds(since: start) < 2, "the cancelled read ended at its deadline, not at the cancellation")
    }

    /// Polls `condition` (every millisecond, for at most 10 s); records an issue and throws if
    /// it never holds. A bound on waiting for a state, never a delay standing in for it.
    static func waitUntil(_ what: String, sourceLocation: SourceLocation = #_sourceLocation,
                          _ condition: () -> Bool) async throws {
        let limit = Deadline.after(seconds: 10)
        while !condition() {
            try #require(!limit.hasPassed, "never: \(what)", sourceLocation: sourceLocation)
            try await Task.sleep(nanoseconds: 1_000_000)
        }
    }

    @Test(arguments: [
        ("127.0.0.1:53", "127.0.0.1:53"), ("[::1]:5353", "[::1]:5353"), ("10.0.0.1", "10.0.0.1:53"),
        ("::1", "[::1]:53"),
    ])
    func parsesSocketAddresses(text: String, expected: String) throws {
        let a = try #require(SocketAddress(parsing: text, defaultPort: 53))
        #expect(a.description == expected)
    }

    @Test(arguments: ["", "1.2.3.4:99999", "host:53", "[::1", "1.2.3:53"])
    func rejectsBadSocketAddresses(text: String) {
        #expect(SocketAddress(parsing: text, defaultPort: nil) == nil)
    }
}
