import EgressMetrics

/// Every metric the agent exposes: name, help, type, labels and buckets, declared once.
/// No metric name string appears anywhere else (DESIGN.md, "Metrics": a contract with
/// dashboards and alert rules). Labels are bounded: target and path come from config, phase and
/// reason from enums; no address, URL or error text ever becomes a label value.
public enum Catalogue {
    static let pair = ["target", "path"]

    /// Histogram buckets for network phases and whole probes: from 1 ms up to a minute, so any
    /// configured timeout falls inside them.
    public static let durationBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                   1, 2.5, 5, 10, 20, 30, 60]

    public static let probeRuns = MetricFamily(
        name: "egress_probe_runs_total", help: "Probe rounds finished, per target and path.",
        type: .counter, labelNames: pair)
    public static let probeFailures = MetricFamily(
        name: "egress_probe_failures_total",
        help: "Failed probe rounds, counted once under the first failing phase and its reason.",
        type: .counter, labelNames: pair + ["phase", "reason"])
    public static let probeSuccess = MetricFamily(
        name: "egress_probe_success", help: "1 if the last probe round of this target over this path succeeded, else 0.",
        type: .gauge, labelNames: pair)
    public static let probeDuration = MetricFamily(
        name: "egress_probe_duration_seconds", help: "Duration of whole probe rounds, failed ones included.",
        type: .histogram, labelNames: pair, buckets: durationBuckets)
    public static let phaseDuration = MetricFamily(
        name: "egress_phase_duration_seconds", help: "Duration of each probe phase that completed.",
        type: .histogram, labelNames: pair + ["phase"], buckets: durationBuckets)
    public static let lastSuccess = MetricFamily(
        name: "egress_last_success_timestamp_seconds", help: "Unix time of the last successful probe round.",
        type: .gauge, labelNames: pair)
    public static let certNotAfter = MetricFamily(
        name: "egress_tls_cert_not_after_timestamp_seconds",
        help: "Earliest notAfter (Unix time) in the certificate chain the server last presented.",
        type: .gauge, labelNames: pair)
    public static let tlsInfo = MetricFamily(
        name: "egress_tls_info", help: "TLS version and cipher of the last handshake; always 1.",
        type: .gauge, labelNames: pair + ["version", "cipher"])

    public static let pathPreferred = MetricFamily(
        name: "egress_path_preferred",
        help: "1 on the path the agent recommends for this target, 0 on its other paths (see the README's rule).",
        type: .gauge, labelNames: pair)

    // Verdicts said once (Attribution): per path and per target rather than per pair.
    public static let pathUp = MetricFamily(
        name: "egress_path_up",
        help: "0 while every target probed on this path (at least two) failed its last round in the same phase among dns, connect and proxy, else 1.",
        type: .gauge, labelNames: ["path"])
    public static let targetUp = MetricFamily(
        name: "egress_target_up",
        help: "1 when some path of this target succeeded in its last round, 0 when every path failed.",
        type: .gauge, labelNames: ["target"])

    public static let rateLimitLimit = MetricFamily(
        name: "egress_registry_ratelimit_limit",
        help: "Pull limit the registry announced (ratelimit-limit), last seen on a manifest answer.",
        type: .gauge, labelNames: pair)
    public static let rateLimitRemaining = MetricFamily(
        name: "egress_registry_ratelimit_remaining",
        help: "Pulls left in the window the registry announced (ratelimit-remaining).",
        type: .gauge, labelNames: pair)
    public static let rateLimitWindow = MetricFamily(
        name: "egress_registry_ratelimit_window_seconds",
        help: "Length of the pull-limit window the registry announced (w=).",
        type: .gauge, labelNames: pair)
    public static let manifestDigestMatch = MetricFamily(
        name: "egress_registry_manifest_digest_match",
        help: "1 where the mirror's manifest digest equals its upstream's last known one, 0 where it differs; absent while the upstream's is unknown.",
        type: .gauge, labelNames: pair + ["image"])
    public static let manifestRequests = MetricFamily(
        name: "egress_registry_manifest_requests_total",
        help: "Manifest requests sent, by method: HEADs are free on Docker Hub, GETs count as pulls.",
        type: .counter, labelNames: pair + ["method"])
    public static let blobThroughput = MetricFamily(
        name: "egress_blob_throughput_bytes_per_second",
        help: "Throughput of the last bounded blob read.",
        type: .gauge, labelNames: pair)
    public static let blobBytes = MetricFamily(
        name: "egress_blob_bytes_total",
        help: "Blob bytes read by the blob phase.",
        type: .counter, labelNames: pair)
    public static let dnsAnswersDisagree = MetricFamily(
        name: "egress_dns_answers_disagree_total",
        help: "Lookups whose answer shared no address with the trusted resolver's; resolver is the one that disagreed.",
        type: .counter, labelNames: pair + ["resolver"])
    public static let probeIPProtocol = MetricFamily(
        name: "egress_probe_ip_protocol",
        help: "4 or 6: the IP family of the connection that carried the last probe round (as blackbox_exporter's probe_ip_protocol).",
        type: .gauge, labelNames: pair)

    public static let referenceFailures = MetricFamily(
        name: "egress_registry_reference_failures_total",
        help: "Reads of a mirror's image on its upstream, for the digest comparison, that failed (the comparison is then absent; the upstream's own success is unaffected).",
        type: .counter, labelNames: pair + ["image"])

    public static let buildInfo = MetricFamily(
        name: "egress_build_info", help: "The agent's version; always 1.", type: .gauge, labelNames: ["version"])
    public static let configReloadSuccessful = MetricFamily(
        name: "egress_config_last_reload_successful", help: "1 if the last config load or reload succeeded, else 0.",
        type: .gauge)
    public static let configReloadTimestamp = MetricFamily(
        name: "egress_config_last_reload_success_timestamp_seconds",
        help: "Unix time of the last successful config load or reload.", type: .gauge)
    public static let schedulerLag = MetricFamily(
        name: "egress_scheduler_lag_seconds",
        help: "How late probe rounds started against their schedule (waiting for a concurrency slot included).",
        type: .histogram, buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])

    public static let actionRuns = MetricFamily(
        name: "egress_action_runs_total",
        help: "Runs of each configured action, by result: ok (exit 0), failed (other exit or a signal), timeout (killed past timeout_seconds), spawn_error (could not start).",
        type: .counter, labelNames: ["action", "result"])
    public static let actionLastRun = MetricFamily(
        name: "egress_action_last_run_timestamp_seconds", help: "Unix time the last run of each action ended.",
        type: .gauge, labelNames: ["action"])
    // Managed mode (DESIGN.md, "Acting on what it measures"); `file` is daemon_json or hosts_toml.
    public static let manageWrites = MetricFamily(
        name: "egress_manage_writes_total",
        help: "Writes of a managed file by result: written, or failed (unreadable, not valid, changed meanwhile, not writable).",
        type: .counter, labelNames: ["file", "result"])
    public static let manageLastWrite = MetricFamily(
        name: "egress_manage_last_write_timestamp_seconds", help: "Unix time of the agent's last write of a managed file.",
        type: .gauge, labelNames: ["file"])
    public static let manageMirrors = MetricFamily(
        name: "egress_manage_mirrors", help: "Mirrors a managed file lists, as the agent last wrote it.",
        type: .gauge, labelNames: ["file"])
    public static let dockerReloads = MetricFamily(
        name: "egress_docker_reloads_total",
        help: "SIGHUPs to dockerd after a daemon.json write: ok, or failed (no dockerd at the pid file's pid).",
        type: .counter, labelNames: ["result"])

    /// The families of the agent, process metrics included.
    public static let all: [MetricFamily] = [
        probeRuns, probeFailures, probeSuccess, probeDuration, phaseDuration, lastSuccess, certNotAfter, tlsInfo,
        pathPreferred, pathUp, targetUp, rateLimitLimit, rateLimitRemaining, rateLimitWindow, manifestDigestMatch, manifestRequests,
        blobThroughput, blobBytes, referenceFailures, probeIPProtocol, dnsAnswersDisagree,
        buildInfo, configReloadSuccessful, configReloadTimestamp, schedulerLag,
        manageWrites, manageLastWrite, manageMirrors, dockerReloads,
    ] + [actionRuns, actionLastRun] + ProcessCollector.families

    /// A metric store with every family registered and the process collector installed.
    public static func makeStore() -> MetricStore {
        let store = MetricStore(families: all)
        ProcessCollector.install(into: store)
        store.set(buildInfo, [EgressMonitorVersion.current], 1)
        return store
    }
}
