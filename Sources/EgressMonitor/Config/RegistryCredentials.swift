#if canImport(Glibc)
import Glibc
#endif
import EgressNet

/// Usernames and passwords for private registries (Harbor, Nexus), by host, read from the
/// config's `credentials_file`. Never printed: `description` shows hosts only.
public struct RegistryCredentials: Sendable, Equatable, CustomStringConvertible {
    public struct Login: Sendable, Equatable {
        public let username: String
        public let password: String
    }

    /// host (or host:port) → login.
    let logins: [String: Login]

    public init(logins: [String: Login] = [:]) { self.logins = logins }

    /// The login for a registry at `url`: by `host:port`, then by `host`.
    public func login(for url: EndpointURL) -> Login? {
        logins["\(url.host):\(url.port)"] ?? logins[url.host]
    }

    public var description: String { "credentials for \(logins.keys.sorted().joined(separator: ", "))" }

    /// Reads `{"registry.example.com": {"username": "...", "password": "..."}}`. Problems are
    /// returned as messages for the `credentials_file` field; a file others can read is
    /// allowed but reported through `warn`.
    static func load(path: String, warn: (String) -> Void) -> Result<RegistryCredentials, URLProblem> {
        var info = stat()
        guard stat(path, &info) == 0, let data = SystemFile.read(path) else {
            return .failure(URLProblem("cannot read \(path)"))
        }
        if info.st_mode & 0o077 != 0 {
            warn("credentials file \(path) can be read by group or others (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        guard let json = try? JSONValue.parse(data), case .object(let top) = json else {
            return .failure(URLProblem("\(path) is not a JSON object of host → {\"username\", \"password\"}"))
        }
        var logins: [String: Login] = [:]
        for (host, value) in top {
            guard case .object(let entry) = value, case .string(let user)? = entry["username"],
                  case .string(let pass)? = entry["password"], Set(entry.keys).isSubset(of: ["username", "password"]) else {
                return .failure(URLProblem("\(path): entry \"\(host)\" must be {\"username\": \"...\", \"password\": \"...\"}"))
            }
            logins[host.lowercased()] = Login(username: user, password: pass)
        }
        return .success(RegistryCredentials(logins: logins))
    }
}

extension AgentConfig {
    /// Gives every mirror without an upstream the `dockerhub` target as its upstream; a mirror
    /// that names no image is probed on its upstream's own images (Docker Hub's default image
    /// when it has no upstream), so its digests can always be compared; and each upstream reads
    /// the images of its mirrors it does not probe itself as reference images — for the
    /// comparison only, never for its own health (issue 16). Run again after discovery: it
    /// adds nothing twice.
    mutating func linkMirrorsToUpstreams() {
        let hub = targets.first { $0.kind == .dockerhub }?.name
        for i in targets.indices where targets[i].kind == .mirror && targets[i].registry.upstream == nil {
            targets[i].registry.upstream = hub
        }
        for i in targets.indices where targets[i].kind == .mirror && targets[i].images.isEmpty {
            let upstream = targets[i].registry.upstream.flatMap { up in targets.first { $0.name == up } }
            if let upstream {
                targets[i].images = upstream.images
            } else {
                targets[i].images = [try! ImageReference.parse(ConfigDefaults.dockerHubImage, officialPrefix: true).get()]
            }
        }
        for mirror in targets where mirror.kind == .mirror {
            guard let up = mirror.registry.upstream, let j = targets.firstIndex(where: { $0.name == up }) else { continue }
            for image in mirror.images where !targets[j].images.contains(image) && !targets[j].registry.referenceImages.contains(image) {
                targets[j].registry.referenceImages.append(image)
            }
        }
    }
}
