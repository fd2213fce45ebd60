import EgressNet
/// The `manage` section: which of Docker's and containerd's files the agent keeps right, and
/// how (DESIGN.md, "Acting on what it measures"). Off unless configured.
public struct ManageConfig: Sendable, Equatable {
    /// Docker's daemon.json, whose `registry-mirrors` the agent writes.
    public var daemonJSON: String?
    /// containerd's `certs.d/docker.io/hosts.toml`, whose host tables the agent reorders.
    public var hostsTOML: String?
    /// The path whose results stand for Docker's own way out; nil: the discovered
    /// `docker-https-proxy` path when there is one, else `direct` (`dockerPath(in:)`).
    public var dockerPath: String?
    /// SIGHUP to dockerd after a daemon.json write.
    public var reloadDocker: Bool
    public var dockerPidFile: String
    /// No two writes of a file closer than this, unless its first mirror has no success left.
    public var minDwellSeconds: Double
    /// Where the mirrors the agent took out of daemon.json are remembered across restarts.
    public var stateDir: String

    public static let defaultPidFile = "/var/run/docker.pid"
    public static let defaultMinDwellSeconds: Double = 600
    public static let defaultStateDir = "/var/lib/egress-monitor"
    /// The files `apply` manages when the config has no `manage` section (where they exist).
    public static let defaultDaemonJSON = "/etc/docker/daemon.json"
    public static let defaultHostsTOML = "/etc/containerd/certs.d/docker.io/hosts.toml"

    public init(daemonJSON: String? = nil, hostsTOML: String? = nil, dockerPath: String? = nil, reloadDocker: Bool? = nil,
                dockerPidFile: String = defaultPidFile, minDwellSeconds: Double = defaultMinDwellSeconds,
                stateDir: String = defaultStateDir) {
        self.daemonJSON = daemonJSON
        self.hostsTOML = hostsTOML
        self.dockerPath = dockerPath
        self.reloadDocker = reloadDocker ?? (daemonJSON != nil)
        self.dockerPidFile = dockerPidFile
        self.minDwellSeconds = minDwellSeconds
        self.stateDir = stateDir
    }

    /// The path that stands for Docker's way out in `config`.
    public func dockerPath(in config: AgentConfig) -> String {
        if let dockerPath { return dockerPath }
        if config.paths.contains(where: { $0.name == "docker-https-proxy" && $0.discoveredFrom != nil }) { return "docker-https-proxy" }
        return "direct"
    }

    /// The section `apply` uses when the config has none: the two standard files where they
    /// exist (`EGRESS_MANAGE_DAEMON_JSON` / `EGRESS_MANAGE_HOSTS_TOML` name others, for tests).
    public static func applyDefault(environment: [String: String] = SystemFile.environment()) -> ManageConfig {
        let daemon = environment["EGRESS_MANAGE_DAEMON_JSON"] ?? defaultDaemonJSON
        let hosts = environment["EGRESS_MANAGE_HOSTS_TOML"] ?? defaultHostsTOML
        return ManageConfig(daemonJSON: SystemFile.exists(daemon) ? daemon : nil,
                            hostsTOML: SystemFile.exists(hosts) ? hosts : nil,
                            dockerPidFile: environment["EGRESS_MANAGE_DOCKER_PID_FILE"] ?? defaultPidFile,
                            stateDir: environment["EGRESS_MANAGE_STATE_DIR"] ?? defaultStateDir)
    }
}

extension Validator {
    static let manageFields = ["daemon_json", "hosts_toml", "docker_path", "reload_docker", "docker_pid_file",
                               "min_dwell_seconds", "state_dir"]

    /// `"manage": {...}`, every field checked with its path (`manage.min_dwell_seconds: ...`).
    mutating func manage(_ value: JSONValue?) -> ManageConfig? {
        guard let value, let dict = object(value, at: "manage", fields: Self.manageFields) else { return nil }
        func absolutePath(_ key: String) -> String? {
            guard let s = string(dict, key, at: "manage") else { return nil }
            guard s.hasPrefix("/"), s.count > 1 else {
                fail("manage.\(key)", "\"\(s)\" is not an absolute path")
                return nil
            }
            return s
        }
        let daemon = absolutePath("daemon_json")
        let hosts = absolutePath("hosts_toml")
        if dict["daemon_json"] == nil && dict["hosts_toml"] == nil {
            fail("manage", "name daemon_json, hosts_toml or both (or leave manage out)")
        }
        var dockerPath = string(dict, "docker_path", at: "manage")
        if let p = dockerPath, !Self.isValidName(p) {
            fail("manage.docker_path", "\"\(p)\" is not a valid name (\(Self.namePattern))")
            dockerPath = nil
        }
        // Whether it names a path is checked once discovery has run (`ManageConfig.check`):
        // the default names a discovered one.
        let reload = bool(dict, "reload_docker", at: "manage")
        if reload == true, dict["daemon_json"] == nil {
            fail("manage.reload_docker", "reloads dockerd after a daemon.json write: needs daemon_json")
        }
        let pidFile = absolutePath("docker_pid_file") ?? ManageConfig.defaultPidFile
        let dwell = number(dict, "min_dwell_seconds", at: "manage", range: 0...86_400) ?? ManageConfig.defaultMinDwellSeconds
        let stateDir = absolutePath("state_dir") ?? ManageConfig.defaultStateDir
        return ManageConfig(daemonJSON: daemon, hostsTOML: hosts, dockerPath: dockerPath, reloadDocker: reload,
                            dockerPidFile: pidFile, minDwellSeconds: dwell, stateDir: stateDir)
    }
}

extension ManageConfig {
    /// What can only be checked once discovery has added its paths: `docker_path` names a path.
    public static func check(_ config: AgentConfig) throws(ConfigError) {
        guard let manage = config.manage, let p = manage.dockerPath else { return }
        if config.path(named: p) == nil {
            throw ConfigError([ConfigIssue(path: "manage.docker_path",
                                           message: "\"\(p)\" is not a path named in paths or discovered (\(config.paths.map(\.name).joined(separator: ", ")))")])
        }
    }
}
