import Foundation

/// The settings of a lab docker-registry (distribution 2.8), rendered into its config.yml.
///
/// The builder covers what every lab registry needs; later features (token auth, proxy mode)
/// are top-level sections of distribution's config, so they can be added as new properties that
/// render their own section, or meanwhile through `additionalSections`.
public struct RegistryConfig: Sendable {
    /// The port on 127.0.0.1 (`http.addr`).
    public var port: UInt16
    /// The certificate it serves (`http.tls`); nil for plain HTTP.
    public var tls: CertPair?
    /// `log.level`: error, warn, info or debug.
    public var logLevel: String
    /// Top-level YAML sections appended verbatim, e.g. an `auth:` or `proxy:` block.
    public var additionalSections: [String]
    /// Environment for the registry process, e.g. `SSL_CERT_FILE` for the CA of an upstream.
    public var environment: [String: String]

    public init(port: UInt16 = FreePort.next(), tls: CertPair?, logLevel: String = "warn",
                additionalSections: [String] = [], environment: [String: String] = [:]) {
        self.port = port
        self.tls = tls
        self.logLevel = logLevel
        self.additionalSections = additionalSections
        self.environment = environment
    }

    /// The config.yml text, with storage under `directory`/storage.
    public func render(directory: String) -> String {
        var yaml = """
            version: 0.1
            log:
              level: \(logLevel)
              formatter: text
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: \(directory)/storage
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(port)
              secret: egress-lab-not-a-secret

            """
        if let tls {
            yaml += """
                  tls:
                    certificate: \(tls.certFile)
                    key: \(tls.keyFile)

                """
        }
        for section in additionalSections {
            yaml += section.hasSuffix("\n") ? section : section + "\n"
        }
        return yaml
    }
}

/// A real distribution registry (`docker-registry serve config.yml`) on loopback, with
/// filesystem storage in its lab directory.
public final class LabRegistry: Sendable {
    public let config: RegistryConfig
    public let daemon: LabDaemon
    /// The lab directory (config.yml, storage/, log).
    public var directory: String { daemon.directory }
    public var process: LabProcess { daemon.process }

    public var port: UInt16 { config.port }
    /// "https://127.0.0.1:PORT" (or http:// without TLS).
    public var url: String { "\(config.tls == nil ? "http" : "https")://\(Lab.loopback):\(config.port)" }
    /// Where blobs and manifests are stored.
    public var storageDirectory: String { directory + "/storage" }

    /// Writes config.yml, starts the registry and waits until its port accepts connections.
    ///
    /// - Throws: `LabError` with the registry's last log lines when it is missing, rejects
    ///   the config, or does not listen within `timeout` seconds.
    public static func start(_ config: RegistryConfig, timeout: Double = 30) async throws -> LabRegistry {
        let daemon = try await LabDaemon.launch("registry", ports: [config.port], timeout: timeout) { directory in
            try config.render(directory: directory).write(toFile: directory + "/config.yml", atomically: true, encoding: .utf8)
            return try LabProcess("docker-registry", arguments: ["serve", directory + "/config.yml"],
                                  environment: config.environment, directory: directory, name: "docker-registry")
        }
        return LabRegistry(config: config, daemon: daemon)
    }

    /// A registry serving `tls` (nil: plain HTTP) on a free port.
    public static func start(tls: CertPair?) async throws -> LabRegistry {
        try await start(RegistryConfig(tls: tls))
    }

    private init(config: RegistryConfig, daemon: LabDaemon) {
        self.config = config
        self.daemon = daemon
    }

    /// Stops the registry; does not wait.
    public func stop() { daemon.stop() }
}
