// libFuzzer harness: the DNS message decoder (`DNSMessage.decode`), as the DNS client runs it on
// every datagram a resolver (or an injector) sends.
//
// Beyond "never traps": a message that decodes must re-encode, and decode again to the same
// message (the codec keeps compressed names inside rdata decompressed so the bytes stand alone);
// the answer helpers the client uses must not trap on it either.
import EgressNet

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let message = try? DNSMessage.decode(bytes) else { return 0 }
    let name = message.questions.first?.name ?? "example.com"
    for type in [DNSRecordType.a, .aaaa] {
        _ = message.addresses(for: name, type: type)
        _ = message.minimumTTL(for: name, type: type)
    }
    _ = message.cnameChain(for: name)
    _ = message.description
    guard let encoded = try? message.encode() else { return 0 }  // e.g. a name made longer by escaping: refused, not trapped
    guard let again = try? DNSMessage.decode(encoded) else {
        fatalError("re-encoded message does not decode: \(message)")
    }
    if again != message {
        fatalError("round trip changed the message:\n\(message)\n---\n\(again)")
    }
    return 0
}
