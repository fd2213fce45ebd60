import EgressNet

/// The human status page at `/`: server-rendered HTML with its CSS inline, no external assets,
/// no JavaScript; it reloads itself. The findings first (`Findings.html`: a path or target down,
/// said once; their pairs are not listed again below). A target × path table of coloured cells (✓/✗ as well as
/// colour, the preferred path starred); then the failures grouped by phase and reason, each
/// group with the reason in words and what to try, each pair with its detail, phase times and
/// the age of its last success; then the working pairs with their timings. Every value from
/// config or probes is HTML-escaped. Below 40em wide (a phone) the working pairs stack as cards
/// and a wide table scrolls sideways.
enum StatusPage {
    static func render(_ report: StatusReport) -> [UInt8] {
        let now = report.generatedAt
        let targets = report.targets
        let paths = report.paths
        let entries = Dictionary(report.results.map { (PairKey(target: $0.target, path: $0.path), $0) }, uniquingKeysWith: { a, _ in a })
        let reachable = targets.filter(report.reachable).count
        let pending = report.results.allSatisfy { $0.success == nil } && !report.results.isEmpty
        let refresh = report.agent.map { Int(min(max($0.config.intervalSeconds, 5), 60)) } ?? 15

        var html = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta http-equiv="refresh" content="\(refresh)">
        <title>\(pending ? "egress-monitor: first round running" : "egress-monitor: \(reachable)/\(targets.count) targets reachable")</title>
        <style>\(css)</style>
        </head><body>
        <header><h1>egress-monitor</h1>\(agentLine(report, refresh: refresh))</header>
        <main>

        """

        // The verdict first.
        if targets.isEmpty {
            html += "<p class=\"verdict none\">No target × path pairs are configured.</p>\n"
        } else if pending {
            html += "<p class=\"verdict none\">The first round is running; this page reloads every \(refresh) s.</p>\n"
        } else {
            let unreachable = targets.filter { !report.reachable($0) }
            let cls = unreachable.isEmpty ? "ok" : "fail"
            var text = "\(reachable) of \(targets.count) target\(targets.count == 1 ? "" : "s") reachable"
            if !unreachable.isEmpty { text += "; unreachable on every path: " + unreachable.map(escape).joined(separator: ", ") }
            html += "<p class=\"verdict \(cls)\">\(text).</p>\n"
        }

        // Findings next: a down path or target said once; its pairs are not listed again below.
        let verdicts = report.verdicts
        html += Findings.html(verdicts)

        // The target × path table.
        if !targets.isEmpty {
            html += "<h2>Targets × paths</h2>\n<div class=\"scroll\"><table class=\"matrix\">\n<thead><tr><th scope=\"col\">target</th>"
            for p in paths { html += "<th scope=\"col\">\(escape(p))</th>" }
            html += "</tr></thead>\n<tbody>\n"
            for t in targets {
                let preferred = report.recommendations[t]
                html += "<tr><th scope=\"row\">\(escape(t))"
                html += preferred.map { "<span class=\"use\">use \(escape($0))</span>" } ?? "<span class=\"use bad\">no path works</span>"
                html += "</th>"
                for p in paths {
                    guard let e = entries[PairKey(target: t, path: p)] else {
                        html += "<td class=\"none\"><span class=\"small\">not probed</span></td>"
                        continue
                    }
                    html += matrixCell(e, preferred: preferred == p, now: now,
                                       explained: verdicts.explanation(target: t, path: p))
                }
                html += "</tr>\n"
            }
            html += "</tbody></table></div>\n"
        }

        // Why pairs fail: one card per phase and reason, its meaning and what to try said once,
        // then the pairs that failed that way.
        let failed = report.results.filter { $0.success == false && verdicts.explanation(target: $0.target, path: $0.path) == nil }
        if !failed.isEmpty {
            let others = verdicts.downPaths.isEmpty && verdicts.targetFindings.isEmpty ? "" : " (other failures)"
            html += "<h2 id=\"failing\">Why pairs fail\(others)</h2>\n"
            var groups: [(key: String, entries: [StatusReport.Entry])] = []
            for e in failed {
                let key = "\(e.phase ?? "?") / \(e.reason ?? "?")"
                if let i = groups.firstIndex(where: { $0.key == key }) { groups[i].entries.append(e) } else { groups.append((key, [e])) }
            }
            for group in groups { html += reasonCard(group.key, group.entries, now: now) }
        }

        // Working pairs: how fast, and what they connected to.
        let working = report.results.filter { $0.success == true }
        if !working.isEmpty {
            html += "<h2 id=\"working\">Working pairs</h2>\n<div class=\"scroll\"><table class=\"list\">\n"
            html += "<thead><tr><th>target</th><th>path</th><th>round</th><th>phases</th><th>last success</th><th>connection</th></tr></thead>\n<tbody>\n"
            for e in working { html += workingRow(e, preferred: report.recommendations[e.target] == e.path, now: now) }
            html += "</tbody></table></div>\n"
        }

        // Managed mode (Manage/ApplyCommand.swift): what is written, when, and what would be now.
        html += ManagedFilesSection.html(report.agent?.managed ?? [], now: now)
        html += ActionsReport.html(report.agent?.actions ?? [], now: now)

        html += """
        </main>
        <footer><a href="/metrics">/metrics</a> · <a href="/api/v1/status">/api/v1/status</a> (this page as JSON) · <a href="/healthz">/healthz</a></footer>
        </body></html>

        """
        return Array(html.utf8)
    }

    /// version, config source, uptime, last reload, when the page was made.
    static func agentLine(_ report: StatusReport, refresh: Int) -> String {
        var parts = ["version \(escape(report.version))"]
        if let a = report.agent {
            parts.append("config <code>\(escape(a.configSource))</code>")
            parts.append("up \(Format.age(report.generatedAt - a.startedAt))")
            switch a.lastReloadSuccessful {
            case .some(true):
                let when = a.lastReloadSuccessAt.map { " \(Format.age(report.generatedAt - $0)) ago" } ?? ""
                parts.append("<span class=\"good\">config loaded\(when)</span>")
            case .some(false):
                parts.append("<span class=\"bad\">last reload failed: the previous config keeps running (see the log)</span>")
            case .none:
                break
            }
        }
        parts.append("updated \(Format.utc(report.generatedAt)), every \(refresh) s")
        return "<p class=\"agent\">" + parts.joined(separator: " · ") + "</p>"
    }

    static func anchor(_ e: StatusReport.Entry) -> String {
        // Names are letters, digits, '.', '_' and '-': a ':' keeps target and path apart.
        escape("\(e.target):\(e.path)")
    }

    static func matrixCell(_ e: StatusReport.Entry, preferred: Bool, now: Double, explained: Attribution.Explanation? = nil) -> String {
        let star = preferred ? " <span class=\"pref\" title=\"preferred path\">★</span>" : ""
        switch e.success {
        case .none:
            return "<td class=\"pending\">… pending</td>"
        case .some(true):
            let time = e.duration.map { "<span class=\"small\">\(Format.duration($0))</span>" } ?? ""
            return "<td class=\"ok\(preferred ? " preferred" : "")\"><a href=\"#\(anchor(e))\">✓ ok</a>\(star)\(time)</td>"
        case .some(false):
            let lastOK = e.lastSuccessAt.map { "ok \(Format.age(now - $0)) ago" } ?? "never ok"
            let title = e.hint.map { " title=\"\(escape($0.meaning))\"" } ?? ""
            // A failure a finding explains links to the finding rather than repeating the reason.
            switch explained {
            case .pathDown(let p):
                return "<td class=\"fail\"\(title)><a href=\"#path-\(escape(p))\">✗ path down</a><span class=\"small\">\(lastOK)</span></td>"
            case .targetDown(let t):
                return "<td class=\"fail\"\(title)><a href=\"#target-\(escape(t))\">✗ target down</a>"
                    + "<span class=\"small\">\(breakable(e.reason ?? "?"))</span><span class=\"small\">\(lastOK)</span></td>"
            case nil:
                break
            }
            return "<td class=\"fail\"\(title)><a href=\"#\(anchor(e))\">✗ \(escape(e.phase ?? "?"))</a>"
                + "<span class=\"small\">\(breakable(e.reason ?? "?"))</span><span class=\"small\">\(lastOK)</span></td>"
        }
    }

    /// Phase times as `dns 2.5 ms · connect 0.2 ms · tls failed`.
    static func phaseTimes(_ e: StatusReport.Entry) -> String {
        Phase.allCases.compactMap { p -> String? in
            if let s = e.seconds(p) { return "\(p.rawValue) \(Format.duration(s))" }
            if e.phase == p.rawValue { return "\(p.rawValue) <b class=\"bad\">failed</b>" }
            return nil
        }.joined(separator: " · ")
    }

    /// A reason code that may break after its underscores on a narrow screen.
    static func breakable(_ code: String) -> String {
        escape(code).split(separator: "_", omittingEmptySubsequences: false).joined(separator: "_<wbr>")
    }

    static func reasonCard(_ key: String, _ entries: [StatusReport.Entry], now: Double) -> String {
        var html = "<section class=\"card fail\">\n<h3><span class=\"badge fail\">✗ \(escape(key))</span> "
            + "<span class=\"over\">\(entries.count) pair\(entries.count == 1 ? "" : "s")</span></h3>\n"
        if let hint = entries.first?.hint {
            html += "<p class=\"meaning\">\(escape(hint.meaning))</p>\n"
            html += "<p class=\"advice\"><b>Try:</b> \(escape(hint.advice))</p>\n"
        }
        html += "<ul class=\"pairs\">\n"
        for e in entries {
            html += "<li id=\"\(anchor(e))\"><b>\(escape(e.target))</b> <span class=\"over\">over</span> <b>\(escape(e.path))</b>"
            if let detail = e.detail { html += ": <code>\(escape(detail))</code>" }
            var facts: [String] = []
            let phases = phaseTimes(e)
            if !phases.isEmpty { facts.append(phases) }
            if let started = e.startedAt { facts.append("last round \(Format.age(now - started)) ago") }
            facts.append(e.lastSuccessAt.map { "last success \(Format.age(now - $0)) ago" } ?? "never a success since the agent started")
            html += "<span class=\"small\">" + facts.joined(separator: " · ") + "</span></li>\n"
        }
        return html + "</ul>\n</section>\n"
    }

    static func workingRow(_ e: StatusReport.Entry, preferred: Bool, now: Double) -> String {
        var html = "<tr id=\"\(anchor(e))\"><td>\(escape(e.target))</td><td>\(escape(e.path))"
        if preferred { html += " <span class=\"badge pref\">★ preferred</span>" }
        html += "</td><td>\(e.duration.map(Format.duration) ?? "")</td><td>\(phaseTimes(e))</td>"
        html += "<td>\(e.lastSuccessAt.map { "\(Format.age(now - $0)) ago" } ?? "")</td><td>"
        var connection: [String] = []
        if let a = e.address { connection.append("<code>\(escape(a))</code>" + (e.ipProtocol.map { " IPv\($0)" } ?? "")) }
        if let v = e.tlsVersion { connection.append(escape(v)) }
        if let notAfter = e.certNotAfter {
            let days = Int(((notAfter - now) / 86_400).rounded(.down))
            connection.append(days < 0 ? "<b class=\"bad\">certificate expired</b>"
                : "certificate valid \(days) more day\(days == 1 ? "" : "s")")
        }
        if let status = e.httpStatus { connection.append("HTTP \(status)") }
        connection += e.observed.facts.map(escape)
        return html + connection.joined(separator: " · ") + "</td></tr>\n"
    }

    static let css = """
    :root{--ok:#dcf5e0;--ok-ink:#14532d;--fail:#fde0df;--fail-ink:#7f1d1d;--pend:#eceff3;--line:#d0d5dc;--ink:#1f2328;--muted:#59636e}
    *{box-sizing:border-box}
    body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:var(--ink);background:#fff}
    header{background:#24292f;color:#fff;padding:.6rem 1rem}header h1{font-size:1.2rem;margin:0}
    .agent{margin:.2rem 0 0;font-size:.85rem;color:#d0d7de;overflow-wrap:anywhere}.agent code{color:#fff}
    .agent .good{color:#8ddb8c}.agent .bad{color:#ffaba8;font-weight:600}
    main{padding:0 1rem 1rem;max-width:72rem}
    h2{font-size:1.05rem;margin:1.3rem 0 .5rem}
    .verdict{margin:1rem 0 0;padding:.6rem .8rem;border-radius:6px;font-weight:600}
    .verdict.ok{background:var(--ok);color:var(--ok-ink)}.verdict.fail{background:var(--fail);color:var(--fail-ink)}.verdict.none{background:var(--pend)}
    .scroll{overflow-x:auto}
    table{border-collapse:collapse}
    th,td{border:1px solid var(--line);padding:.35rem .6rem;text-align:left;vertical-align:top}
    thead th{background:#f6f8fa;font-weight:600}
    .matrix tbody th{background:#f6f8fa;font-weight:600;white-space:nowrap}
    .matrix td{min-width:7.5rem}
    .matrix td a{color:inherit;text-decoration:none;font-weight:600}
    .matrix td.ok{background:var(--ok);color:var(--ok-ink)}.matrix td.fail{background:var(--fail);color:var(--fail-ink)}
    .matrix td.pending,.matrix td.none{background:var(--pend);color:var(--muted)}
    .matrix td.preferred{box-shadow:inset 0 0 0 2px var(--ok-ink)}
    .use{display:block;font-weight:400;font-size:.8rem;color:var(--ok-ink)}.use.bad{color:var(--fail-ink)}
    .small{display:block;font-size:.8rem}
    .pref{color:#9a6700}
    .card{border:1px solid var(--line);border-left:6px solid #cf222e;border-radius:6px;padding:.5rem .8rem;margin:.6rem 0}
    .card h3{font-size:1rem;margin:0 0 .3rem}
    .card.finding{border-left-width:10px;background:#fff8f7}.over{font-weight:400;color:var(--muted)}
    .badge{display:inline-block;font-size:.8rem;font-weight:600;padding:0 .45rem;border-radius:1rem}
    .badge.fail{background:var(--fail);color:var(--fail-ink)}.badge.pref{background:#fff8c5;color:#7d4e00;white-space:nowrap}
    .meaning,.advice{margin:.2rem 0}
    ul.pairs{margin:.4rem 0 0;padding-left:1.1rem}ul.pairs li{margin:.25rem 0;overflow-wrap:anywhere}
    ul.pairs .small{color:var(--muted)}
    table.list{width:100%}table.list td{font-size:.9rem}table.list td:nth-child(4),table.list td:nth-child(6){font-size:.85rem}
    .bad{color:var(--fail-ink)}
    code{font:.85em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
    footer{padding:.5rem 1rem 1rem;font-size:.85rem;color:var(--muted)}
    footer a{color:inherit}
    @media (max-width:40em){
    main{padding:0 .5rem .5rem}
    .matrix th,.matrix td{padding:.3rem .35rem}.matrix td{min-width:5.5rem;font-size:.9rem}
    table.list,table.list tbody,table.list tr,table.list td{display:block;border:0}
    table.list thead{display:none}
    table.list tr{border:1px solid var(--line);border-left:6px solid #2da44e;border-radius:6px;margin:.5rem 0;padding:.3rem .6rem}
    table.list td{padding:.1rem 0}
    table.list td:nth-child(1){font-weight:600;display:inline}table.list td:nth-child(2){display:inline;padding-left:.3rem}
    table.list td:nth-child(2)::before{content:"over ";color:var(--muted)}
    table.list td:nth-child(3)::before{content:"round ";color:var(--muted)}
    table.list td:nth-child(5)::before{content:"last success ";color:var(--muted)}
    }
    """

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
