#if canImport(Glibc)
import Glibc
#endif
import EgressNet

/// What the Docker in front of us is, asked of its Engine API (`GET /version` on its socket),
/// so advice for it is written in what it understands.
public struct DockerEngineInfo: Sendable, Equatable {
    /// `20.10.24+dfsg1`.
    public let version: String?
    /// The Go its server was built with: `go1.19.8`.
    public let goVersion: String?

    public init(version: String?, goVersion: String?) {
        self.version = version
        self.goVersion = goVersion
    }

    /// `(1, 19)` from `go1.19.8`; nil when absent or not in that form.
    public var goMajorMinor: (Int, Int)? {
        guard let go = goVersion, go.hasPrefix("go") else { return nil }
        let parts = go.dropFirst(2).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 2, let major = Int(parts[0]),
              let minor = Int(parts[1].prefix { $0.isASCII && $0.isNumber }) else { return nil }
        return (major, minor)
    }
}

public enum DockerEngine {
    /// The Engine API socket: `DOCKER_HOST` when it names a `unix://` path, else Docker's default.
    public static func socketPath(environment: [String: String]) -> String {
        if let host = environment["DOCKER_HOST"], host.hasPrefix("unix://") { return String(host.dropFirst("unix://".count)) }
        return "/var/run/docker.sock"
    }

    /// `GET /version` over the socket at `path`, within `seconds`. A failure is a sentence for
    /// people (no socket, no permission, not Docker), never a throw.
    public static func version(socketPath path: String, seconds: Double = 3) async -> Result<DockerEngineInfo, DockerEngineProblem> {
        let socket: Socket
        do { socket = try Socket.connectUnix(path: path) } catch {
            return .failure(DockerEngineProblem("cannot connect to \(path): \(error)"))
        }
        defer { socket.close() }
        var headers = HTTPHeaders()
        headers.add("Host", "docker")
        headers.add("Connection", "close")
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.send(HTTPRequest(target: "/version", headers: headers), over: socket,
                                                 deadline: .after(seconds: seconds))
        } catch {
            return .failure(DockerEngineProblem("GET /version on \(path): \(error)"))
        }
        guard response.head.status == 200,
              let object = (try? JSONValue.parse(response.body, duplicateKeys: .lastWins))?.objectValue else {
            return .failure(DockerEngineProblem("GET /version on \(path) answered \(response.head.status), not Docker's version"))
        }
        return .success(DockerEngineInfo(version: object["Version"]?.stringValue, goVersion: object["GoVersion"]?.stringValue))
    }
}

/// Why the Docker Engine could not be asked.
public struct DockerEngineProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
