/// The verdicts of `Attribution` as people and programs read them: the findings `check` and the
/// status page lead with ("path corp: down — …"), and the `"paths"` and `"targets"` objects of
/// `check --json` and `/api/v1/status`.
enum Findings {
    // MARK: words

    /// "path corp: down".
    static func title(_ v: Attribution.PathVerdict) -> String { "path \(v.path): down" }
    static func title(_ v: Attribution.TargetVerdict) -> String { "target \(v.target): down" }

    /// "proxy/proxy_connect_failed (detail) — all 15 targets fail on it".
    static func summary(_ v: Attribution.PathVerdict) -> String {
        guard let f = v.failure else { return "" }
        let all = v.targetsProbed == 2 ? "both targets" : "all \(v.targetsProbed) targets"
        if v.reasons.count > 1 {
            return "\(f.phase.rawValue) fails (" + v.reasons.map(\.rawValue).joined(separator: ", ")
                + "; first: \(f.detail)) — \(all) fail on it"
        }
        return "\(f.phase.rawValue)/\(f.reason.rawValue) (\(f.detail)) — \(all) fail on it"
    }

    /// "fails on both paths: connect/tcp_timeout (detail)", or each path's failure when they differ.
    static func summary(_ v: Attribution.TargetVerdict) -> String {
        let all = v.pathsProbed == 2 ? "both paths" : "all \(v.pathsProbed) paths"
        if let f = v.commonFailure, v.downPaths.isEmpty {
            return "fails on \(all): \(f.phase.rawValue)/\(f.reason.rawValue) (\(f.detail))"
        }
        if let f = v.commonFailure {
            // The same failure on every path that is not down: said once, the down paths after.
            let own = v.failures.map(\.path).filter { !v.downPaths.contains($0) }
            return "fails on \(all) — \(own.joined(separator: ", ")): \(f.phase.rawValue)/\(f.reason.rawValue) (\(f.detail)); "
                + v.downPaths.map { "\($0): path down" }.joined(separator: "; ")
        }
        let each = v.failures.map { p -> String in
            v.downPaths.contains(p.path) ? "\(p.path): path down"
                : "\(p.path): \(p.failure.phase.rawValue)/\(p.failure.reason.rawValue) (\(p.failure.detail))"
        }
        return "fails on \(all) — " + each.joined(separator: "; ")
    }

    /// The hint of a finding: its reason's, when it has one reason.
    static func hint(_ v: Attribution.PathVerdict) -> Hint? { v.failure.map { Hints.hint(for: $0) } }
    static func hint(_ v: Attribution.TargetVerdict) -> Hint? {
        v.commonFailure.map { Hints.hint(for: $0) }
    }

    /// What the `check` table shows instead of the reason for a failure a finding explains.
    static func resultCell(_ e: Attribution.Explanation) -> String {
        switch e {
        case .pathDown(let p): return "FAIL, path \(p) down"
        case .targetDown(let t): return "FAIL, target \(t) down"
        }
    }

    // MARK: check

    /// The findings block `check` starts with; empty when there is none.
    static func text(_ v: Attribution.Verdicts, style: TerminalStyle) -> String {
        let paths = v.downPaths, targets = v.targetFindings
        guard !paths.isEmpty || !targets.isEmpty else { return "" }
        var out = style.bold("Findings:") + "\n"
        func finding(_ title: String, _ summary: String, _ hint: Hint?) {
            // One line per finding, however long: it is what a person greps for.
            out += "  " + style.red(title) + " — \(summary)\n"
            if let hint {
                out += "    " + Format.wrap(hint.meaning, width: 92, indent: "    ") + "\n"
                out += "    " + Format.wrap("Try: " + hint.advice, width: 92, indent: "    ") + "\n"
            }
        }
        for p in paths { finding(title(p), summary(p), hint(p)) }
        for t in targets { finding(title(t), summary(t), hint(t)) }
        return out + "\n"
    }

    // MARK: JSON

    /// `"paths": {"corp": {"up": false, "phase": …, "reason": …, "detail": …, …}}`: every key
    /// always there, `null` where it does not apply (an up path has no phase).
    static func pathsJSON(_ v: Attribution.Verdicts) -> JSONValue {
        .object(Dictionary(v.paths.map { p in
            (p.path, JSONValue.object([
                "up": p.up.json,
                "phase": (p.failure?.phase.rawValue).json,
                "reason": (p.failure?.reason.rawValue).json,
                "reasons": .array(p.reasons.map { .string($0.rawValue) }),
                "detail": (p.failure?.detail).json,
                "hint": (hint(p)?.text).json,
                "targets_probed": .number(Double(p.targetsProbed)),
                "targets_failed": .number(Double(p.targetsFailed)),
            ]))
        }, uniquingKeysWith: { a, _ in a }))
    }

    /// `"targets": {"mirror": {"up": false, "finding": true, "phase": …, …}}`. `phase`, `reason`
    /// and `detail` are the failure its paths share (those not down), `null` when they differ.
    static func targetsJSON(_ v: Attribution.Verdicts) -> JSONValue {
        .object(Dictionary(v.targets.map { t in
            let common = t.up == false ? t.commonFailure : nil
            return (t.target, JSONValue.object([
                "up": t.up.json,
                "finding": .bool(t.isFinding),
                "phase": (common?.phase.rawValue).json,
                "reason": (common?.reason.rawValue).json,
                "detail": (common?.detail).json,
                "hint": (t.up == false ? hint(t)?.text : nil).json,
                "paths_probed": .number(Double(t.pathsProbed)),
                "paths_failed": .number(Double(t.pathsFailed)),
                "down_paths": .array(t.downPaths.map { .string($0) }),
            ]))
        }, uniquingKeysWith: { a, _ in a }))
    }

    // MARK: the status page

    /// The findings section of the status page; empty when there is none.
    static func html(_ v: Attribution.Verdicts) -> String {
        let paths = v.downPaths, targets = v.targetFindings
        guard !paths.isEmpty || !targets.isEmpty else { return "" }
        var html = "<h2 id=\"findings\">Findings</h2>\n"
        func card(_ id: String, _ title: String, _ summary: String, _ hint: Hint?) {
            html += "<section class=\"card finding\" id=\"\(StatusPage.escape(id))\">\n<h3><span class=\"badge fail\">✗ "
                + StatusPage.escape(title) + "</span></h3>\n<p class=\"meaning\">\(StatusPage.escape(summary))</p>\n"
            if let hint {
                html += "<p class=\"meaning\">\(StatusPage.escape(hint.meaning))</p>\n"
                html += "<p class=\"advice\"><b>Try:</b> \(StatusPage.escape(hint.advice))</p>\n"
            }
            html += "</section>\n"
        }
        for p in paths { card("path-\(p.path)", title(p), summary(p), hint(p)) }
        for t in targets { card("target-\(t.target)", title(t), summary(t), hint(t)) }
        return html
    }
}
