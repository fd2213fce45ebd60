@testable import EgressMetrics

/// A small catalogue shaped like the product's, for the tests.
enum Fixture {
    static let runs = MetricFamily(
        name: "egress_probe_runs_total", help: "Probe rounds finished.", type: .counter,
        labelNames: ["target", "path"])
    static let failures = MetricFamily(
        name: "egress_probe_failures_total", help: "Probe rounds that failed, by first failing phase and reason.",
        type: .counter, labelNames: ["target", "path", "phase", "reason"])
    static let success = MetricFamily(
        name: "egress_probe_success", help: "1 if the last probe round succeeded, else 0.", type: .gauge,
        labelNames: ["target", "path"])
    static let duration = MetricFamily(
        name: "egress_probe_duration_seconds", help: "Duration of a whole probe round.", type: .histogram,
        labelNames: ["target", "path"], buckets: [0.25, 1, 2.5])
    static let buildInfo = MetricFamily(
        name: "egress_build_info", help: "Build information; always 1.", type: .gauge, labelNames: ["version"])
    static let reloadOK = MetricFamily(
        name: "egress_config_last_reload_successful", help: "1 if the last config reload succeeded.", type: .gauge)
    static let lag = MetricFamily(
        name: "egress_scheduler_lag_seconds", help: "How late probe rounds start.", type: .histogram,
        buckets: [0.01, 0.1])

    static let all = [runs, failures, success, duration, buildInfo, reloadOK, lag]
}
