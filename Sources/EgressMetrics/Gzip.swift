import CZlib

/// A gzip stream (RFC 1952) through the system zlib: input goes in piece by piece, compressed
/// bytes come out as they are ready, so a scrape is compressed as it is formatted and never
/// held whole, uncompressed.
///
/// Level 1 (zlib's fastest): an exposition is so repetitive (the same names and labels on every
/// line) that the fastest level already shrinks it by more than eight times, and a scrape's CPU
/// is what a 2,000-pair agent must keep small; `Tests/Bench` measures both.
public final class GzipStream {
    /// The `Content-Encoding` value of this stream's output.
    public static let contentEncoding = "gzip"

    private let stream: UnsafeMutablePointer<z_stream>
    private var finished = false
    /// Where deflate writes; its contents are copied out after each call.
    private var window = [UInt8](repeating: 0, count: 64 * 1024)

    /// Starts a stream at `level` (0-9). zlib's init fails only when memory runs out, which
    /// traps here as any other allocation would.
    public init(level: Int32 = 1) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = CZlib_deflateInitGzip(stream, level)
        precondition(status == Z_OK, "deflateInit2 failed: \(status)")
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compresses `input` and returns the compressed bytes ready so far (often none: deflate
    /// keeps up to its window before it emits).
    public func compress(_ input: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        run(input, flush: Z_NO_FLUSH)
    }

    /// Ends the stream: the last compressed bytes and the gzip trailer (CRC-32, length).
    public func finish() -> [UInt8] {
        precondition(!finished, "gzip stream finished twice")
        finished = true
        return run(UnsafeBufferPointer(start: nil, count: 0), flush: Z_FINISH)
    }

    /// All of `bytes`, compressed in one go.
    public static func compress(_ bytes: [UInt8], level: Int32 = 1) -> [UInt8] {
        let gzip = GzipStream(level: level)
        var out = bytes.withUnsafeBufferPointer { gzip.compress($0) }
        out += gzip.finish()
        return out
    }

    private func run(_ input: UnsafeBufferPointer<UInt8>, flush: Int32) -> [UInt8] {
        precondition(!finished || flush == Z_FINISH, "gzip stream used after finish")
        var out: [UInt8] = []
        // zlib does not write through next_in; the cast only satisfies its C signature.
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
        stream.pointee.avail_in = UInt32(input.count)
        window.withUnsafeMutableBufferPointer { window in
            while true {
                stream.pointee.next_out = window.baseAddress
                stream.pointee.avail_out = UInt32(window.count)
                let status = deflate(stream, flush)
                precondition(status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR, "deflate failed: \(status)")
                let produced = window.count - Int(stream.pointee.avail_out)
                out.append(contentsOf: UnsafeBufferPointer(rebasing: window[..<produced]))
                if flush == Z_FINISH {
                    if status == Z_STREAM_END { break }
                } else if stream.pointee.avail_out != 0 {
                    break   // all input consumed, nothing more pending
                }
            }
        }
        stream.pointee.next_in = nil
        return out
    }
}

/// Decompresses gzip (or zlib) data: for tests, and for anything that reads what
/// ``GzipStream`` wrote. Nil when the data is not a complete, valid stream.
public func gunzip(_ bytes: [UInt8]) -> [UInt8]? {
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    defer { inflateEnd(stream); stream.deinitialize(count: 1); stream.deallocate() }
    guard CZlib_inflateInitAuto(stream) == Z_OK else { return nil }
    var out: [UInt8] = []
    var window = [UInt8](repeating: 0, count: 64 * 1024)
    return bytes.withUnsafeBufferPointer { input -> [UInt8]? in
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
        stream.pointee.avail_in = UInt32(input.count)
        while true {
            let status = window.withUnsafeMutableBufferPointer { w -> Int32 in
                stream.pointee.next_out = w.baseAddress
                stream.pointee.avail_out = UInt32(w.count)
                let status = inflate(stream, Z_NO_FLUSH)
                out.append(contentsOf: UnsafeBufferPointer(rebasing: w[..<(w.count - Int(stream.pointee.avail_out))]))
                return status
            }
            if status == Z_STREAM_END { return out }
            guard status == Z_OK else { return nil }
        }
    }
}
