// `WWW-Authenticate` / `Proxy-Authenticate` challenges (RFC 9110 §11.6.1, §11.7.1).

/// One authentication challenge: `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`.
public struct AuthChallenge: Sendable, Equatable {
    /// The auth-scheme, lower-cased: `bearer`, `basic`, `negotiate`.
    public var scheme: String
    /// The auth-params, keys lower-cased, values unquoted and unescaped as sent. When a name is
    /// repeated (invalid), the first value is kept.
    public var parameters: [String: String]
    /// The token68 form (`Negotiate YII...==`), when the challenge used it instead of parameters.
    public var token68: String?

    /// Lower-cases `scheme` and the parameter names (ASCII).
    public init(scheme: String, parameters: [String: String] = [:], token68: String? = nil) {
        self.scheme = WWWAuthenticate.asciiLowercased(scheme)
        var lowered: [String: String] = [:]
        for (name, value) in parameters {
            let key = WWWAuthenticate.asciiLowercased(name)
            if lowered[key] == nil { lowered[key] = value }
        }
        self.parameters = lowered
        self.token68 = token68
    }

    /// `realm`: for Bearer, the token endpoint (`https://auth.docker.io/token`).
    public var realm: String? { parameters["realm"] }
    /// `service`: for Bearer, the service to name in the token request.
    public var service: String? { parameters["service"] }
    /// `scope`: for Bearer, the scope the resource needs (`repository:library/busybox:pull`).
    public var scope: String? { parameters["scope"] }
}

/// Parser for the challenge list of `WWW-Authenticate` and `Proxy-Authenticate` fields.
public enum WWWAuthenticate {
    /// Parses one field value into its challenges, in order.
    ///
    /// Grammar (RFC 9110 §11.6.1): `#challenge`, `challenge = auth-scheme [ 1*SP ( token68 /
    /// #auth-param ) ]`, `auth-param = token BWS "=" BWS ( token / quoted-string )`. Parameters
    /// may come in any order with whitespace around `=` and `,`; quoted-strings take backslash
    /// escapes; several challenges may share a field (`Basic realm="x", Bearer realm="y"`): a
    /// token not followed by `=` starts the next challenge. Malformed parts are skipped up to the
    /// next comma; a parameter whose quoted-string is unterminated is dropped. Never traps.
    public static func parse(_ header: String) -> [AuthChallenge] {
        var cursor = Cursor(bytes: Array(header.utf8))
        var challenges: [AuthChallenge] = []
        while true {
            cursor.skip { $0 == comma || HTTPSyntax.isOWS($0) }
            guard !cursor.atEnd else { break }
            guard let scheme = cursor.readToken() else {
                cursor.skipPastComma()
                continue
            }
            var parameters: [String: String] = [:]
            var token68: String?
            let hadSpace = cursor.skip(HTTPSyntax.isOWS) > 0
            if !cursor.atEnd, cursor.peek != comma {
                if !hadSpace {
                    cursor.skipPastComma()  // `Bearer"x"`: a scheme glued to junk is no challenge
                    continue
                } else if let value = cursor.readToken68() {
                    token68 = value
                } else {
                    readParameters(&cursor, into: &parameters)
                }
            }
            challenges.append(AuthChallenge(scheme: scheme, parameters: parameters, token68: token68))
        }
        return challenges
    }

    /// Parses several field lines (`headers.values("WWW-Authenticate")`) as one list.
    public static func parse(_ fieldValues: [String]) -> [AuthChallenge] {
        fieldValues.flatMap { parse($0) }
    }

    /// Reads `#auth-param` until the end or a token that starts the next challenge.
    private static func readParameters(_ cursor: inout Cursor, into parameters: inout [String: String]) {
        while true {
            cursor.skip { $0 == comma || HTTPSyntax.isOWS($0) }
            guard !cursor.atEnd else { return }
            let nameStart = cursor.index
            guard let name = cursor.readToken() else {
                cursor.skipPastComma()
                continue
            }
            cursor.skip(HTTPSyntax.isOWS)
            guard !cursor.atEnd, cursor.peek == equals else {
                cursor.index = nameStart  // the next challenge's scheme
                return
            }
            cursor.index += 1
            cursor.skip(HTTPSyntax.isOWS)
            let value: String?
            if !cursor.atEnd, cursor.peek == quote {
                value = cursor.readQuotedString()
            } else {
                value = cursor.readToken() ?? ""
            }
            guard let value else { return }  // unterminated quoted-string: nothing left to read
            let key = asciiLowercased(name)
            if parameters[key] == nil { parameters[key] = value }
            cursor.skip(HTTPSyntax.isOWS)
            if !cursor.atEnd, cursor.peek != comma {
                cursor.skipPastComma()  // junk after a value
            }
        }
    }

    static func asciiLowercased(_ string: String) -> String {
        String(decoding: string.utf8.map(HTTPSyntax.lowercased), as: UTF8.self)
    }

    private static let comma = UInt8(ascii: ",")
    private static let equals = UInt8(ascii: "=")
    private static let quote = UInt8(ascii: "\"")

    private struct Cursor {
        let bytes: [UInt8]
        var index = 0

        var atEnd: Bool { index >= bytes.count }
        /// The current byte; only read after checking `atEnd`.
        var peek: UInt8 { bytes[index] }

        @discardableResult
        mutating func skip(_ predicate: (UInt8) -> Bool) -> Int {
            let from = index
            while index < bytes.count, predicate(bytes[index]) { index += 1 }
            return index - from
        }

        mutating func skipPastComma() {
            while index < bytes.count, bytes[index] != WWWAuthenticate.comma { index += 1 }
            if index < bytes.count { index += 1 }
        }

        mutating func readToken() -> String? {
            let from = index
            skip(HTTPSyntax.isTokenChar)
            guard index > from else { return nil }
            return String(decoding: bytes[from..<index], as: UTF8.self)
        }

        /// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` followed only by OWS and
        /// then a comma or the end; otherwise the cursor is left where it was and nil is returned.
        mutating func readToken68() -> String? {
            let from = index
            let length = skip { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                    UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                    return true
                default:
                    return false
                }
            }
            guard length > 0 else { return nil }
            skip { $0 == WWWAuthenticate.equals }
            let end = index
            skip(HTTPSyntax.isOWS)
            guard atEnd || peek == WWWAuthenticate.comma else {
                index = from
                return nil
            }
            return String(decoding: bytes[from..<end], as: UTF8.self)
        }

        /// A quoted-string starting at `"`: returns its content with `\` escapes removed, or nil
        /// (cursor at the end) when the closing quote is missing.
        mutating func readQuotedString() -> String? {
            index += 1  // the opening quote
            var content: [UInt8] = []
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if byte == WWWAuthenticate.quote {
                    return String(decoding: content, as: UTF8.self)
                }
                if byte == UInt8(ascii: "\\") {
                    guard index < bytes.count else { break }
                    content.append(bytes[index])
                    index += 1
                } else {
                    content.append(byte)
                }
            }
            return nil
        }
    }
}
