/// How actions show in `/api/v1/status`, `check --json`, the status page and `validate`: one
/// compact block, apart from the pairs.
enum ActionsReport {
    /// `"actions": [{"name", "on", "targets", "running", "pending", "last_event", "last_result",
    /// "last_exit", "last_run_at", "last_duration", "runs": {"ok": n, ...}}]`; every key always
    /// there, `null` before the first run.
    static func json(_ statuses: [ActionStatus]) -> JSONValue {
        .array(statuses.map { s in
            .object([
                "name": .string(s.name),
                "on": .array(s.on.map { .string($0.rawValue) }),
                "targets": s.targets.map { .array($0.map { .string($0) }) } ?? .null,
                "running": .bool(s.running),
                "pending": .bool(s.pending),
                "last_event": s.lastEvent.json,
                "last_result": (s.lastResult?.rawValue).json,
                "last_exit": s.lastExit.json,
                "last_run_at": s.lastRunAt.json,
                "last_duration": s.lastDuration.json,
                "runs": .object(Dictionary(uniqueKeysWithValues: ActionResult.allCases.map { ($0.rawValue, .number(Double(s.runs[$0] ?? 0))) })),
            ])
        })
    }

    /// `{"actions": [...]}` when there are actions, else nothing: merged into a report's document.
    static func block(_ statuses: [ActionStatus]) -> [String: JSONValue] {
        statuses.isEmpty ? [:] : ["actions": json(statuses)]
    }

    /// The configured actions before any run (`check --json`: a one-shot round runs none).
    static func configured(_ actions: [ActionConfig]) -> [ActionStatus] {
        actions.map { ActionStatus(name: $0.name, on: $0.on, targets: $0.targets) }
    }

    /// The status page's section: one row per action, its last run and result.
    static func html(_ statuses: [ActionStatus], now: Double) -> String {
        guard !statuses.isEmpty else { return "" }
        let e = StatusPage.escape
        var html = "<h2 id=\"actions\">Actions</h2>\n<div class=\"scroll\"><table class=\"actions\">\n"
        html += "<thead><tr><th>action</th><th>runs on</th><th>last run</th><th>result</th><th>runs</th></tr></thead>\n<tbody>\n"
        for s in statuses {
            var on = s.on.map(\.rawValue).joined(separator: ", ")
            if let t = s.targets { on += " (targets: \(t.joined(separator: ", ")))" }
            var last = s.lastRunAt.map { "\(Format.age(now - $0)) ago" } ?? "never"
            if let event = s.lastEvent { last += " · \(event)" }
            if s.running { last += s.pending ? " · running, one more event waiting" : " · running" }
            let result: String
            switch s.lastResult {
            case .ok?: result = "ok"
            case let r?: result = "<b class=\"bad\">\(e(r.rawValue))</b>" + (s.lastExit.map { " <span class=\"small\">\(e($0))</span>" } ?? "")
            case nil: result = ""
            }
            let runs = ActionResult.allCases.compactMap { r in s.runs[r].map { "\(r.rawValue) \($0)" } }.joined(separator: " · ")
            html += "<tr><td><code>\(e(s.name))</code></td><td>\(e(on))</td><td>\(e(last))</td><td>\(result)</td><td>\(e(runs))</td></tr>\n"
        }
        return html + "</tbody></table></div>\n"
    }

    /// `validate`'s lines for the actions.
    static func summary(_ actions: [ActionConfig]) -> String {
        guard !actions.isEmpty else { return "" }
        return "  actions (run without a shell, environment EGRESS_* and PATH only):\n"
            + ValidateCommand.columns(actions.map { a in
                ["\(a.name)", "on " + a.on.map(\.rawValue).joined(separator: ", "),
                 a.targets.map { "targets " + $0.joined(separator: ", ") } ?? "all targets",
                 "runs " + a.command.map { ActionRunner.redact($0, secrets: []) }.joined(separator: " "),
                 "timeout \(ValidateCommand.seconds(a.timeoutSeconds))"]
            }, indent: "    ")
    }
}
