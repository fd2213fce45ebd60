import EgressMetrics
import EgressNet
import EgressSync

/// Where the agent's config comes from: a file, or the embedded default (Docker Hub plus the
/// mirrors of Docker's daemon.json).
public enum ConfigSource: Sendable {
    case file(String)
    case embedded

    /// Loads the config and adds what discovery finds (as the config's `discovery` allows).
    public func load(sources: DiscoverySources = DiscoverySources()) throws(ConfigError) -> AgentConfig {
        switch self {
        case .file(let path):
            let config = try ConfigLoader.load(path: path)
            let discovered = Discovery(sources: sources, warn: { Log.warn($0) }).apply(config.discovery, to: config)
            // Managed mode: the mirrors it took out of daemon.json are probed still.
            let managed = ManageState.addRemembered(to: discovered)
            try ManageConfig.check(managed)
            return managed
        case .embedded:
            return DefaultConfig.make(sources: sources) { Log.warn($0) }
        }
    }

    public var description: String {
        switch self {
        case .file(let path): return path
        case .embedded: return "embedded default"
        }
    }
}

/// The running agent: scheduler → probes → result store → `/metrics`, wired together.
///
/// ```
///  Scheduler ──(pair, deadline)──▶ ProbeEngine ──ProbeResult──▶ ResultStore ──▶ MetricStore
///  (interval, jitter,               dns→connect→proxy            (last result,     │ render
///   concurrency slots)              →tls→http, one deadline)      per pair)        ▼
///                                                                        HTTPServer: /metrics
/// ```
public final class Agent: Sendable {
    public let results: ResultStore
    public let server: HTTPServer
    /// The operator's `actions[]`, run on the changes `ViewChanges` sees in recorded results.
    public let actions: ActionRunner
    private let changes: ViewChanges
    /// Managed mode: keeps daemon.json's and hosts.toml's mirrors right (idle without `manage`).
    public let manager: MirrorManager
    private let scheduler: Scheduler
    private let source: ConfigSource
    private let current: Mutex<AgentConfig>
    private let resolution = NameResolution()
    private let registryState = RegistryState()
    /// Unix time the agent started, for its uptime on the status page.
    private let startedAt = wallClockSeconds()

    /// Loads the config, binds the listener (the `listen` override wins over the config's),
    /// and starts probing and serving.
    public static func start(source: ConfigSource, listenOverride: SocketAddress? = nil, jitter: Bool = true) throws -> Agent {
        let config = try source.load()
        let tls = try TLSMaterial.load(config)
        tls.install()
        let metrics = Catalogue.makeStore()
        metrics.set(Catalogue.configReloadSuccessful, 1)
        metrics.set(Catalogue.configReloadTimestamp, wallClockSeconds())
        return try Agent(source: source, config: config, tls: tls, metrics: metrics, listen: listenOverride ?? config.listen, jitter: jitter)
    }

    private init(source: ConfigSource, config: AgentConfig, tls: TLSMaterial, metrics: MetricStore, listen: SocketAddress, jitter: Bool) throws {
        self.source = source
        self.current = Mutex(config)
        let results = ResultStore(metrics: metrics)
        results.applyMetricsConfig(config.metrics)
        self.results = results
        let actions = ActionRunner(metrics: metrics)
        self.actions = actions
        self.changes = ViewChanges { actions.deliver($0) }
        actions.apply(config)
        changes.apply(config)
        results.observe(changes)
        let engine = ProbeEngine(config: config, resolution: resolution, registryState: registryState)
        self.scheduler = Scheduler(engine: engine, store: results)
        // Reload is wired through a box so the route can call back into the agent once built.
        let box = ReloadBox()
        self.manager = MirrorManager(results: results, config: { box.agent?.config })
        // Each write of a managed file is a `mirrors_written` event for the actions.
        manager.setOnWrite { file, _, mirrors in actions.mirrorsWritten(file: file, mirrors: mirrors) }
        let web = Self.webSettings(config.web, tls: tls)
        do throws(NetError) {
            self.server = try HTTPServer(listenOn: listen, web: web) { request in
                await Routes(results: results, reload: { await box.agent?.reload() }, agent: { box.agent?.status }).handle(request)
            }
        } catch {
            throw AgentStartError.listen(listen, error)
        }
        box.set(self)
        server.start()
        scheduler.apply(engine, jitter: jitter)
        manager.start()
        Log.info("egress-monitor started", ["version": EgressMonitorVersion.current, "listen": "\(server.boundAddress)",
                                             "config": source.description, "pairs": "\(config.pairs.count)"])
    }

    public var config: AgentConfig { current.withLock { $0 } }

    /// The agent's own state, as the status page and `/api/v1/status` show it.
    public var status: AgentStatus {
        var status = AgentStatus(configSource: source.description, startedAt: startedAt, config: config, metrics: results.metrics)
        status.actions = actions.status
        status.managed = manager.status
        return status
    }

    /// Reads the config again. On error the running config stays, the error is logged with its
    /// field paths and `egress_config_last_reload_successful` becomes 0. Returns the error text.
    @discardableResult
    public func reload() async -> String? {
        let config: AgentConfig
        let tls: TLSMaterial
        do {
            // Validated and its TLS files loaded before anything is swapped: a bad ca_file keeps
            // the running config as a bad field does.
            config = try source.load()
            tls = try TLSMaterial.load(config)
        } catch {
            for issue in error.issues { Log.error("config reload failed; keeping the running config", ["field": issue.path, "error": issue.message]) }
            results.metrics.set(Catalogue.configReloadSuccessful, 0)
            return error.description
        }
        let old = current.withLock { c -> AgentConfig in
            let old = c
            c = config
            return old
        }
        if config.listen != old.listen {
            Log.warn("listen changed in the config; it takes effect at the next restart", ["listen": "\(config.listen)"])
        }
        tls.install()
        server.setWeb(Self.webSettings(config.web, tls: tls))
        results.applyMetricsConfig(config.metrics)
        scheduler.apply(ProbeEngine(config: config, resolution: resolution, registryState: registryState))
        actions.apply(config)
        changes.apply(config)
        results.metrics.set(Catalogue.configReloadSuccessful, 1)
        results.metrics.set(Catalogue.configReloadTimestamp, wallClockSeconds())
        Log.info("config reloaded", ["config": source.description, "pairs": "\(config.pairs.count)"])
        return nil
    }

    /// The listener's settings: `web`'s users, and the certificate `TLSMaterial.load` opened.
    static func webSettings(_ web: WebConfig, tls: TLSMaterial) -> WebSettings {
        WebSettings(tls: tls.server, basicAuthUsers: web.basicAuthUsers)
    }

    /// `mirrors_written`: the hook the managed-file writer calls after writing `file`.
    public func mirrorsWritten(file: String, mirrors: [String]) {
        actions.mirrorsWritten(file: file, mirrors: mirrors)
    }

    /// Stops probing (probes in flight are cancelled), ends running actions and closes the listener.
    public func stop() async {
        manager.stop()
        await scheduler.stop()
        await actions.stop()
        await server.stop()
    }
}

public enum AgentStartError: Error, CustomStringConvertible {
    case listen(SocketAddress, NetError)

    public var description: String {
        switch self {
        case .listen(let a, let e): return "cannot listen on \(a): \(e)"
        }
    }
}

/// Lets the HTTP handler reach the agent that owns it. The reference is weak: the agent owns the
/// server, the server its handler, the handler this box — a strong reference back would be a
/// cycle, and a stopped agent (its store, scheduler, server, resolver caches) would never be
/// freed. LeakSanitizer found that cycle (Tests/Sanitizers/run.sh with EGRESS_SAN_LEAKS=1).
private final class ReloadBox: Sendable {
    private struct Weak { weak var agent: Agent? }
    private let ref = Mutex(Weak())
    var agent: Agent? { ref.withLock { $0.agent } }
    func set(_ a: Agent) { ref.withLock { $0.agent = a } }
}
