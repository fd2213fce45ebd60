// libFuzzer harness: the `WWW-Authenticate` / `Proxy-Authenticate` challenge parser
// (`WWWAuthenticate.parse`), fed whatever a registry, a mirror or a proxy puts in the header.
//
// Beyond "never traps": schemes come out non-empty and lower-cased, parameter names
// lower-cased. The same text is also parsed as several field lines (split at line feeds), the
// form `headers.values("WWW-Authenticate")` hands over.
import EgressNet

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let challenges = WWWAuthenticate.parse(text)
    for challenge in challenges {
        precondition(!challenge.scheme.isEmpty, "empty scheme")
        precondition(!challenge.scheme.utf8.contains { $0 >= 65 && $0 <= 90 }, "scheme not lower-cased: \(challenge.scheme)")
        for name in challenge.parameters.keys {
            precondition(!name.utf8.contains { $0 >= 65 && $0 <= 90 }, "parameter name not lower-cased: \(name)")
        }
        _ = (challenge.realm, challenge.service, challenge.scope)
    }
    _ = WWWAuthenticate.parse(text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
    return 0
}
