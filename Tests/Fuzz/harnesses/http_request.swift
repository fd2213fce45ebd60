// libFuzzer harness: the HTTP/1.1 request parser (`HTTPRequestParser.feed` / `next` / `finish`),
// which reads what clients send to the agent's listener — hostile ones included.
//
// Input: byte 0 picks small or default limits, byte 1 the size of the pieces the rest is fed
// in. Requests are drained with `next()` after every piece, as the listener does. Fed whole and
// in pieces, the same requests must come out, and the same error.
import EgressNet

struct Outcome: Equatable {
    var requests: [HTTPRequestMessage] = []
    var error: HTTPParseError?
}

func parse(_ input: [UInt8], pieceSize: Int, limits: HTTPRequestParser.Limits) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var outcome = Outcome()
    var offset = 0
    do {
        while offset < input.count {
            let end = min(input.count, offset + pieceSize)
            var next = try parser.feed(input[offset..<end])
            while let request = next {
                precondition(request.body.count <= limits.maxBodyBytes, "body past the limit")
                outcome.requests.append(request)
                next = try parser.next()
            }
            offset = end
        }
        try parser.finish()
    } catch {
        outcome.error = error
    }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 2 else { return 0 }
    let limits = data[0] & 1 != 0
        ? HTTPRequestParser.Limits(maxRequestLineBytes: 64, maxHeaderBytes: 128, maxHeaderCount: 4, maxBodyBytes: 32)
        : HTTPRequestParser.Limits()
    let pieceSize = max(1, Int(data[1]) % 64)
    let input = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))
    let whole = parse(input, pieceSize: max(1, input.count), limits: limits)
    let pieces = parse(input, pieceSize: pieceSize, limits: limits)
    if whole != pieces {
        fatalError("fed whole and in \(pieceSize)-byte pieces, the parser disagrees:\n\(whole)\n---\n\(pieces)")
    }
    return 0
}
