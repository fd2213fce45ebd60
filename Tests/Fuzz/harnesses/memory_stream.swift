// An in-memory `ByteStream` for the proxy-handshake harnesses: reads return the fuzz input in
// pieces of a chosen size, then end of stream; writes are kept (and ignored). It never waits,
// so the handshakes run without sockets or the reactor.
import EgressNet
import Dispatch
import Synchronization

final class MemoryStream: ByteStream {
    private struct State {
        var input: [UInt8]
        var offset = 0
        var written = 0
        var closed = false
    }
    private let state: Mutex<State>
    private let pieceSize: Int

    init(_ input: [UInt8], pieceSize: Int) {
        state = Mutex(State(input: input))
        self.pieceSize = max(1, pieceSize)
    }

    func read(maxBytes: Int, deadline: Deadline) async throws(NetError) -> [UInt8] {
        state.withLock { s in
            let n = min(maxBytes, pieceSize, s.input.count - s.offset)
            defer { s.offset += n }
            return Array(s.input[s.offset..<(s.offset + n)])
        }
    }

    func write(_ bytes: [UInt8], deadline: Deadline) async throws(NetError) {
        state.withLock { $0.written += bytes.count }
    }

    func close() { state.withLock { $0.closed = true } }
}

/// Runs `body` to completion from the fuzzer's (synchronous) entry point.
func runBlocking(_ body: @escaping @Sendable () async -> Void) {
    let done = DispatchSemaphore(value: 0)
    Task {
        await body()
        done.signal()
    }
    done.wait()
}

/// The input layout the stream harnesses share: byte 0 the harness's own choices, byte 1 the size
/// of the pieces (1 to `maxPiece` - 1 bytes) the rest arrives in, the rest what the peer sends.
/// nil for an input shorter than two bytes.
struct PiecedInput {
    let control: UInt8
    let pieceSize: Int
    let bytes: [UInt8]

    init?(_ data: UnsafePointer<UInt8>, _ size: Int, maxPiece: Int = 64) {
        guard size >= 2 else { return nil }
        control = data[0]
        pieceSize = max(1, Int(data[1]) % maxPiece)
        bytes = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))
    }
}
