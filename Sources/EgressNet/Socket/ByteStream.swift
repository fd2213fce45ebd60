/// A bidirectional byte stream with deadlines: a TCP socket, a TLS session over one, or a
/// tunnel through a proxy. HTTP and the proxy handshakes are written against this.
public protocol ByteStream: AnyObject, Sendable {
    /// Reads up to `maxBytes`; an empty array means the peer closed its side.
    func read(maxBytes: Int, deadline: Deadline) async throws(NetError) -> [UInt8]
    /// Writes every byte by `deadline`.
    func write(_ bytes: [UInt8], deadline: Deadline) async throws(NetError)
    /// Writes every byte of `buffer`, which stays valid until this returns, by `deadline`.
    func write(_ buffer: UnsafeBufferPointer<UInt8>, deadline: Deadline) async throws(NetError)
    /// Closes the stream and whatever it runs over.
    func close()
}

extension ByteStream {
    /// A copy into an array; ``Socket`` sends from the buffer itself.
    public func write(_ buffer: UnsafeBufferPointer<UInt8>, deadline: Deadline) async throws(NetError) {
        try await write(Array(buffer), deadline: deadline)
    }
}

extension Socket: ByteStream {}

/// A stream that first returns bytes already read past a handshake (a proxy's reply followed
/// by the first tunnelled bytes), then reads from the stream beneath.
public final class PrefixedStream: ByteStream, @unchecked Sendable {
    // @unchecked Sendable: used by one task at a time like every stream; `prefix` is only
    // touched from that task.
    private var prefix: [UInt8]
    private let base: any ByteStream

    public init(prefix: [UInt8], base: any ByteStream) {
        self.prefix = prefix
        self.base = base
    }

    public func read(maxBytes: Int, deadline: Deadline) async throws(NetError) -> [UInt8] {
        if !prefix.isEmpty {
            let n = min(maxBytes, prefix.count)
            let out = Array(prefix[..<n])
            prefix.removeFirst(n)
            return out
        }
        return try await base.read(maxBytes: maxBytes, deadline: deadline)
    }

    public func write(_ bytes: [UInt8], deadline: Deadline) async throws(NetError) {
        try await base.write(bytes, deadline: deadline)
    }

    public func close() { base.close() }
}
