// `WWW-Authenticate` / `Proxy-Authenticate` challenge parsing (RFC 9110 §11.6.1).

import Testing

@testable import EgressNet

struct AuthChallengeCase: Sendable, CustomTestStringConvertible {
    let header: String
    let expected: [AuthChallenge]
    var testDescription: String { header.debugDescription }
}

private func bearer(_ parameters: [String: String]) -> AuthChallenge {
    AuthChallenge(scheme: "bearer", parameters: parameters)
}

private let dockerHub = ["realm": "https://auth.docker.io/token", "service": "registry.docker.io"]

private let challengeCases: [AuthChallengeCase] = [
    // Docker Hub's /v2/ answer, as sent.
    AuthChallengeCase(header: #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#, expected: [bearer(dockerHub)]),
    // A resource endpoint adds the scope.
    AuthChallengeCase(
        header: #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        expected: [bearer(dockerHub.merging(["scope": "repository:library/busybox:pull"]) { $1 })]),
    // Docker Hub over IPv6.
    AuthChallengeCase(
        header: #"Bearer realm="https://auth.ipv6.docker.com/token",service="registry.docker.io""#,
        expected: [bearer(["realm": "https://auth.ipv6.docker.com/token", "service": "registry.docker.io"])]),
    // Parameters in another order, with whitespace around "=" and ",".
    AuthChallengeCase(
        header: #"Bearer service = "registry.docker.io" ,  realm= "https://auth.docker.io/token""#, expected: [bearer(dockerHub)]),
    AuthChallengeCase(header: "Bearer\trealm=\"https://auth.docker.io/token\",\tservice=\"registry.docker.io\"", expected: [bearer(dockerHub)]),
    // Case-insensitive scheme and parameter names; values keep their case.
    AuthChallengeCase(header: #"BEARER Realm="https://Auth.Docker.io/token""#, expected: [bearer(["realm": "https://Auth.Docker.io/token"])]),
    // Token values instead of quoted-strings.
    AuthChallengeCase(header: "Bearer realm=lab, service=registry.lab.test", expected: [bearer(["realm": "lab", "service": "registry.lab.test"])]),
    // Backslash escapes in quoted-strings, commas and "=" inside quotes.
    AuthChallengeCase(header: #"Bearer realm="a\"b\\c", error="x,y=z""#, expected: [bearer(["realm": #"a"b\c"#, "error": "x,y=z"])]),
    AuthChallengeCase(header: #"Bearer realm="""#, expected: [bearer(["realm": ""])]),
    // Several challenges in one field.
    AuthChallengeCase(
        header: #"Basic realm="x", Bearer realm="y""#,
        expected: [AuthChallenge(scheme: "basic", parameters: ["realm": "x"]), bearer(["realm": "y"])]),
    AuthChallengeCase(
        header: #"Basic realm="Tinyproxy", charset="UTF-8", Bearer realm="y", service="s""#,
        expected: [AuthChallenge(scheme: "basic", parameters: ["realm": "Tinyproxy", "charset": "UTF-8"]), bearer(["realm": "y", "service": "s"])]),
    AuthChallengeCase(
        header: #"Negotiate, Basic realm="corp""#,
        expected: [AuthChallenge(scheme: "negotiate"), AuthChallenge(scheme: "basic", parameters: ["realm": "corp"])]),
    AuthChallengeCase(header: "Basic", expected: [AuthChallenge(scheme: "basic")]),
    AuthChallengeCase(header: "  Basic  ,, ", expected: [AuthChallenge(scheme: "basic")]),
    // token68.
    AuthChallengeCase(header: "Negotiate YIIBhgYGKwYBBQUC+/ab==", expected: [AuthChallenge(scheme: "negotiate", token68: "YIIBhgYGKwYBBQUC+/ab==")]),
    AuthChallengeCase(
        header: "NTLM TlRMTVNTUAACAAAA, Basic realm=x",
        expected: [AuthChallenge(scheme: "ntlm", token68: "TlRMTVNTUAACAAAA"), AuthChallenge(scheme: "basic", parameters: ["realm": "x"])]),
    // A repeated parameter keeps its first value.
    AuthChallengeCase(header: #"Bearer realm="first", REALM="second""#, expected: [bearer(["realm": "first"])]),
    // A realm rewritten by a mirror.
    AuthChallengeCase(
        header: #"Bearer realm="https://mirror.example.com/token",service="registry.docker.io""#,
        expected: [bearer(["realm": "https://mirror.example.com/token", "service": "registry.docker.io"])]),
    // Garbage: skipped, never trapped on.
    AuthChallengeCase(header: "", expected: []),
    AuthChallengeCase(header: " ", expected: []),
    AuthChallengeCase(header: ",,,", expected: []),
    AuthChallengeCase(header: "\"", expected: []),
    AuthChallengeCase(header: "=", expected: []),
    AuthChallengeCase(header: "\u{0}", expected: []),
    AuthChallengeCase(header: #"Bearer realm="unterminated"#, expected: [bearer([:])]),
    AuthChallengeCase(header: #"Bearer realm="unterminated\"#, expected: [bearer([:])]),
    AuthChallengeCase(header: #"Bearer service="s", realm="unterminated"#, expected: [bearer(["service": "s"])]),
    AuthChallengeCase(header: "Bearer =x", expected: [bearer([:])]),
    AuthChallengeCase(header: "Bearer realm=, service=s", expected: [AuthChallenge(scheme: "bearer", token68: "realm=")]),
    AuthChallengeCase(header: #"Bearer realm="a" junk, service="s""#, expected: [bearer(["realm": "a", "service": "s"])]),
    AuthChallengeCase(header: #"Bearer"x", Basic"#, expected: [AuthChallenge(scheme: "basic")]),
    AuthChallengeCase(header: #"Bearer @@@, realm="r""#, expected: [bearer(["realm": "r"])]),
    AuthChallengeCase(header: "Bearer r\u{e9}alm=\"x\", Basic", expected: [bearer([:]), AuthChallenge(scheme: "basic")]),
]

@Suite("WWWAuthenticate")
struct WWWAuthenticateTests {
    @Test("challenges", arguments: challengeCases)
    func parse(_ testCase: AuthChallengeCase) {
        #expect(WWWAuthenticate.parse(testCase.header) == testCase.expected)
    }

    @Test("convenience accessors")
    func accessors() throws {
        let challenge = try #require(WWWAuthenticate.parse(#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#).first)
        #expect(challenge.scheme == "bearer")
        #expect(challenge.realm == "https://auth.docker.io/token")
        #expect(challenge.service == "registry.docker.io")
        #expect(challenge.scope == "repository:library/busybox:pull")
        #expect(challenge.token68 == nil)
    }

    @Test("several field lines")
    func fieldLines() {
        var headers = HTTPHeaders()
        headers.add("Proxy-Authenticate", "Negotiate")
        headers.add("proxy-authenticate", #"Basic realm="corp""#)
        #expect(WWWAuthenticate.parse(headers.values("Proxy-Authenticate")) == [
            AuthChallenge(scheme: "negotiate"), AuthChallenge(scheme: "basic", parameters: ["realm": "corp"]),
        ])
    }

    @Test("the initializer lower-cases scheme and parameter names")
    func normalized() {
        #expect(AuthChallenge(scheme: "Bearer", parameters: ["Realm": "x"]) == AuthChallenge(scheme: "bearer", parameters: ["realm": "x"]))
    }

    @Test("random bytes never trap")
    func fuzz() {
        var state: UInt64 = 42
        let alphabet = Array("Bearer realm=\"\\, \t=abc/+~".utf8) + [0, 0xC3, 0xA9, 0xFF]
        for _ in 0..<5000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let length = Int(state >> 58)
            var bytes: [UInt8] = []
            for _ in 0..<length {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                bytes.append(alphabet[Int((state >> 33) % UInt64(alphabet.count))])
            }
            let challenges = WWWAuthenticate.parse(String(decoding: bytes, as: UTF8.self))
            #expect(challenges.allSatisfy { !$0.scheme.isEmpty })
        }
    }
}
