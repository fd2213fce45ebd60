import Testing
@testable import EgressMetrics

/// `render(chunkSize:_:)`, which the listener uses for /metrics: its pieces, end to end, are
/// exactly `render()`, whatever the chunk size, and no piece is larger than it needs to be.
@Suite("Rendering in pieces")
struct ChunkedRenderTests {
    static func populatedStore(pairs: Int) -> MetricStore {
        let store = MetricStore(families: Fixture.all)
        for i in 0..<pairs {
            let target = i % 7 == 0 ? "odd \"name\"\\\n\(i)" : "t\(i)"
            for path in ["direct", "vpn"] {
                store.increment(Fixture.runs, [target, path], by: Double(i))
                store.set(Fixture.success, [target, path], i % 3 == 0 ? 0 : 1)
                store.observe(Fixture.duration, [target, path], Double(i) * 0.37)
                if i % 5 == 0 { store.increment(Fixture.failures, [target, path, "tls", "tls_reset"]) }
            }
        }
        store.set(Fixture.buildInfo, ["1.0"], 1)
        store.set(Fixture.reloadOK, 1)
        store.observe(Fixture.lag, 0.004)
        return store
    }

    static func pieces(_ store: MetricStore, chunkSize: Int) async -> [[UInt8]] {
        var out: [[UInt8]] = []
        await store.render(chunkSize: chunkSize) { (piece: UnsafeBufferPointer<UInt8>) in out.append(Array(piece)) }
        return out
    }

    @Test("the pieces joined are render()'s bytes", arguments: [1, 100, 4096, 1 << 20])
    func piecesJoinedAreTheWhole(chunkSize: Int) async {
        let store = Self.populatedStore(pairs: 300)
        let whole = Array(store.render().utf8)
        let pieces = await Self.pieces(store, chunkSize: chunkSize)
        #expect(pieces.flatMap { $0 } == whole)
        #expect(!pieces.contains { $0.isEmpty })
        if chunkSize >= 4096 {
            #expect(pieces.allSatisfy { $0.count <= chunkSize })
            #expect(pieces.count >= whole.count / chunkSize)
        }
    }

    @Test("an empty store renders no piece; one family without series is skipped")
    func emptyStore() async {
        let store = MetricStore(families: Fixture.all)
        #expect(await Self.pieces(store, chunkSize: 4096).isEmpty)
        store.set(Fixture.reloadOK, 1)
        let pieces = await Self.pieces(store, chunkSize: 4096)
        #expect(pieces.flatMap { $0 } == Array(store.render().utf8))
    }

    @Test("a kept render answers until a series changes; a large one is not kept")
    func keptRender() async {
        let store = Self.populatedStore(pairs: 50)
        #expect(store.recentRender(maxAge: 60) == nil)
        var streamed: [UInt8] = []
        await store.render(chunkSize: 4096, keepUpTo: 1 << 20) { (piece: UnsafeBufferPointer<UInt8>) in streamed.append(contentsOf: piece) }
        #expect(store.recentRender(maxAge: 60) == streamed)
        #expect(store.recentRender(maxAge: 60) == Array(store.render().utf8))
        store.observe(Fixture.lag, 0.5)
        #expect(store.recentRender(maxAge: 60) == nil, "a change makes it stale")
        await store.render(chunkSize: 4096, keepUpTo: 100) { (_: UnsafeBufferPointer<UInt8>) in }
        #expect(store.recentRender(maxAge: 60) == nil, "larger than keepUpTo")
        await store.render(chunkSize: 4096, keepUpTo: 1 << 20) { (_: UnsafeBufferPointer<UInt8>) in }
        #expect(store.recentRender(maxAge: 60) != nil)
        #expect(store.recentRender(maxAge: 0) == nil, "older than maxAge")
    }
}
