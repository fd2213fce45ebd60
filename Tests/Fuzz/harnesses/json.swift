// libFuzzer harness: the JSON parser (`JSONValue.parse`) behind the config, the credentials
// file, tokens and manifests, and the reports' writer (`JSONValue.prettyPrinted`).
//
// Beyond "never traps": a rejection says "not valid JSON: ..." and names a byte offset; both
// duplicate-key policies agree except on duplicates; an accepted document, written, parses
// back to the same tree.
import EgressMonitor

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let lastWins: JSONValue
    do {
        lastWins = try JSONValue.parse(bytes, duplicateKeys: .lastWins)
    } catch {
        let message = error.issues.first?.message ?? ""
        precondition(message.hasPrefix("not valid JSON: ") && message.contains("(byte "), "rejected without saying where: \(message)")
        precondition((try? JSONValue.parse(bytes, duplicateKeys: .reject)) == nil, "rejecting duplicates accepted what last-wins rejected")
        return 0
    }
    if let strict = try? JSONValue.parse(bytes, duplicateKeys: .reject) {
        precondition(strict == lastWins, "the two duplicate-key policies read different trees")
    }
    guard let written = lastWins.prettyPrinted() else { preconditionFailure("a parsed value has no JSON form") }
    do {
        let again = try JSONValue.parse(written)
        precondition(again == lastWins, "written and parsed back, the value changed")
    } catch {
        preconditionFailure("the writer wrote what the parser rejects: \(error)")
    }
    return 0
}
