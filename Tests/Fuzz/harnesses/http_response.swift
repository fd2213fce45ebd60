// libFuzzer harness: the HTTP/1.1 response parser (`HTTPResponseParser.feed` / `finish`), as the
// probes run it on whatever a registry, a captive portal or a proxy sends.
//
// Input: byte 0 picks the request method (GET, HEAD, CONNECT), truncate mode and small or
// larger limits; byte 1 the size of the pieces the rest is fed in; the rest is the response.
// Beyond "never traps", it checks the parser's documented contract: the same bytes fed whole
// and in pieces give the same events (consecutive bodies merged) and the same error; at most
// one head, `.end` last, no more body than `maxBodyBytes`.
import EgressNet

typealias Event = HTTPResponseParser.Event

struct Outcome: Equatable {
    var events: [Event] = []
    var error: HTTPParseError?
    var tunnel: [UInt8] = []
}

func merged(_ events: [Event]) -> [Event] {
    var out: [Event] = []
    for event in events {
        if case .body(let more) = event, case .body(let earlier)? = out.last {
            out[out.count - 1] = .body(earlier + more)
        } else if case .body(let b) = event, b.isEmpty {
            continue
        } else {
            out.append(event)
        }
    }
    return out
}

func parse(_ input: [UInt8], pieceSize: Int, method: String, truncate: Bool,
           limits: HTTPResponseParser.Limits) -> Outcome {
    var parser = HTTPResponseParser(limits: limits, requestMethod: method, truncateBody: truncate)
    var outcome = Outcome()
    var offset = 0
    do {
        while offset < input.count {
            let end = min(input.count, offset + pieceSize)
            outcome.events += try parser.feed(input[offset..<end])
            offset = end
        }
        outcome.events += try parser.finish()
    } catch {
        outcome.error = error
    }
    outcome.events = merged(outcome.events)
    outcome.tunnel = parser.takeTunnelBytes()
    var heads = 0
    var body = 0
    for (i, event) in outcome.events.enumerated() {
        switch event {
        case .head: heads += 1
        case .body(let b): body += b.count
        case .end: precondition(i == outcome.events.count - 1, ".end is not the last event")
        }
    }
    precondition(heads <= 1, "more than one head")
    precondition(body <= limits.maxBodyBytes, "\(body) body bytes delivered past the \(limits.maxBodyBytes) limit")
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 2 else { return 0 }
    let control = data[0]
    let pieceSize = max(1, Int(data[1]) % 64)
    let input = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))
    let method = ["GET", "HEAD", "CONNECT", "GET"][Int(control & 3)]
    let truncate = control & 4 != 0
    let limits = control & 8 != 0
        ? HTTPResponseParser.Limits(maxHeaderBytes: 128, maxHeaderCount: 4, maxBodyBytes: 32)
        : HTTPResponseParser.Limits(maxHeaderBytes: 4096, maxHeaderCount: 32, maxBodyBytes: 4096)
    let whole = parse(input, pieceSize: max(1, input.count), method: method, truncate: truncate, limits: limits)
    let pieces = parse(input, pieceSize: pieceSize, method: method, truncate: truncate, limits: limits)
    if whole != pieces {
        fatalError("fed whole and in \(pieceSize)-byte pieces, the parser disagrees:\n\(whole)\n---\n\(pieces)")
    }
    return 0
}
