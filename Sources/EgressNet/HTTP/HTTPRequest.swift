// Client side: an HTTP/1.1 request and its exact bytes on the wire.

/// Why a request could not be serialized. Nothing is written for such a request: these are the
/// checks that keep a CR/LF in a config value or a redirect from splitting the request (header
/// injection). Header values are not echoed back, since they may hold credentials.
public enum HTTPSerializationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The method is not a token (RFC 9110 §9.1).
    case invalidMethod
    /// The request-target is empty or holds a byte outside visible ASCII (SP, CTL, CR, LF, non-ASCII).
    case invalidTarget
    /// A header name is not a token.
    case invalidHeaderName(String)
    /// A header value holds CR, LF, NUL, DEL or another control character (HTAB is allowed).
    case invalidHeaderValue(name: String)
    /// A body was given together with a `Content-Length` or `Transfer-Encoding` header: the
    /// serializer frames bodies itself.
    case conflictingFraming

    public var description: String {
        switch self {
        case .invalidMethod: "invalid request method"
        case .invalidTarget: "invalid request target"
        case .invalidHeaderName(let name): "invalid header name \(name.debugDescription)"
        case .invalidHeaderValue(let name): "invalid value for header \(name.debugDescription)"
        case .conflictingFraming: "body given with an explicit Content-Length or Transfer-Encoding"
        }
    }
}

/// An HTTP/1.1 request to send.
///
/// `target` is the request-target as it goes on the wire: origin-form (`/v2/library/alpine/manifests/latest?ns=docker.io`)
/// for a server, authority-form (`registry-1.docker.io:443`) for `CONNECT`, absolute-form for a
/// plain-HTTP proxy. The caller supplies `Host` (it is not added, since only the caller knows
/// whether the port belongs in it).
public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    public var target: String
    public var headers: HTTPHeaders
    /// Sent with a `Content-Length` the serializer adds when non-empty.
    public var body: [UInt8]

    public init(method: String = "GET", target: String, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
    }

    /// The request's bytes: `METHOD SP target SP HTTP/1.1 CRLF`, each header `name: value CRLF`
    /// in order, `Content-Length` when there is a body, `CRLF`, then the body.
    ///
    /// Throws instead of writing anything that would let a name, value or target end a line.
    public func serialize() throws(HTTPSerializationError) -> [UInt8] {
        try validate()
        var out: [UInt8] = []
        out.reserveCapacity(256 + body.count)
        out.append(contentsOf: method.utf8)
        out.append(HTTPSyntax.space)
        out.append(contentsOf: target.utf8)
        out.append(contentsOf: " HTTP/1.1\r\n".utf8)
        for field in headers {
            HTTPSyntax.appendField(field.name, field.value, to: &out)
        }
        if !body.isEmpty {
            HTTPSyntax.appendField("Content-Length", String(body.count), to: &out)
        }
        out.append(HTTPSyntax.cr)
        out.append(HTTPSyntax.lf)
        out.append(contentsOf: body)
        return out
    }

    /// Checks what `serialize()` checks, without building the bytes.
    public func validate() throws(HTTPSerializationError) {
        guard HTTPSyntax.isToken(method) else { throw .invalidMethod }
        guard !target.utf8.isEmpty, target.utf8.allSatisfy(HTTPSyntax.isTargetByte) else { throw .invalidTarget }
        for field in headers {
            guard HTTPSyntax.isToken(field.name) else { throw .invalidHeaderName(field.name) }
            guard field.value.utf8.allSatisfy({ HTTPSyntax.isFieldValueByte($0) && $0 != 0x7F }) else {
                throw .invalidHeaderValue(name: field.name)
            }
        }
        if !body.isEmpty && (headers.contains("Content-Length") || headers.contains("Transfer-Encoding")) {
            throw .conflictingFraming
        }
    }
}
