// libFuzzer harness: what an encrypted resolver sends back, as EncryptedDNSClient reads it.
//
// Input: byte 0 picks DoH or DoT and the question type (A or AAAA); byte 1 the size of the
// pieces the rest arrives in; the rest is the server's bytes. DoH runs the whole exchange over an
// in-memory stream: the HTTP/1.1 response parser, then the DoH judgement (status, media type,
// DNS message, question matched); DoT the length framing and message matching. Beyond "never
// traps", an answer that is accepted must be a response to the question asked (id 0 for DoH).
import EgressNet

let name = "registry-1.docker.io"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let input = PiecedInput(data, size) else { return 0 }
    let control = input.control
    let type: DNSRecordType = control & 2 == 0 ? .a : .aaaa
    runBlocking {
        let stream = MemoryStream(input.bytes, pieceSize: input.pieceSize)
        if control & 1 == 0 {
            guard let (message, _) = try? await EncryptedDNSClient.dohExchange(
                name, type: type, host: "dns.example", path: "/dns-query", over: stream, deadline: .after(seconds: 5)) else { return }
            precondition(message.header.isResponse && message.header.id == 0, "a DoH answer that is not the response to id 0")
            precondition(message.questions.count == 1 && message.questions[0].type == type.rawValue, "a DoH answer to another question")
        } else {
            guard let answers = try? await EncryptedDNSClient.dotExchange(name, types: [type], over: stream,
                                                                          deadline: .after(seconds: 5)) else { return }
            precondition(answers.keys.allSatisfy { $0 == type }, "a DoT answer for a question not asked")
        }
    }
    return 0
}
