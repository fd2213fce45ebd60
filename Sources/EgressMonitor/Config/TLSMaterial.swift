import EgressNet

/// A TLS file that a config names, with the field that names it (`targets[2].ca_file`).
public struct TLSFileReference: Sendable, Equatable {
    public enum File: Sendable, Equatable {
        /// A CA bundle a probe (or an encrypted resolver) trusts.
        case caFile(String)
        /// The agent's own listener certificate and key (`web`).
        case serverCertificate(certFile: String, keyFile: String)
    }
    /// The JSON path of the field, as config errors name it.
    public let field: String
    public let file: File
}

/// The TLS material of a config, opened and parsed: the listener's context and one client
/// context per CA file. Loading it is its own step, apart from validation, so that parsing a
/// config stays pure (no file is opened, no SSL_CTX is built) and the files are read once, where
/// the agent starts or reloads and where `validate` checks them on purpose.
public struct TLSMaterial: Sendable {
    /// The listener's context, when `web` names a certificate and key.
    public let server: TLSContext?
    /// One context per CA file the config names, in config order.
    public let clients: [TLSContext]

    /// Opens every file in `config.tlsFiles`. Every problem is reported at once, each with the
    /// field path of the file, as validation reports its own.
    public static func load(_ config: AgentConfig) throws(ConfigError) -> TLSMaterial {
        var issues: [ConfigIssue] = []
        var server: TLSContext?
        var clients: [String: TLSContext] = [:]
        var order: [String] = []
        for ref in config.tlsFiles {
            switch ref.file {
            case .caFile(let file):
                // Readability first: "cannot read" is the line a person acts on, before OpenSSL's detail.
                guard SystemFile.isReadable(file) else {
                    issues.append(ConfigIssue(path: ref.field, message: "cannot read \(file)"))
                    continue
                }
                if clients[file] != nil { continue }
                do {
                    clients[file] = try TLSContext.loading(caFile: file)
                    order.append(file)
                } catch {
                    issues.append(ConfigIssue(path: ref.field, message: error.detail))
                }
            case .serverCertificate(let cert, let key):
                do { server = try TLSContext.server(certFile: cert, keyFile: key) } catch {
                    issues.append(ConfigIssue(path: ref.field, message: error.detail))
                }
            }
        }
        if !issues.isEmpty { throw ConfigError(issues) }
        return TLSMaterial(server: server, clients: order.compactMap { clients[$0] })
    }

    /// Makes the client contexts the ones every handshake uses (the cache of `TLSContext.client`),
    /// dropping those of an earlier config: a changed CA file takes effect with the reload.
    public func install() {
        TLSContext.replaceCache(with: clients)
    }
}
