import EgressNet

/// The human status page at `/`: server-rendered HTML with its CSS inline, no external assets,
/// no JavaScript; it reloads itself. A target × path table of coloured cells (✓/✗ as well as
/// colour), then one card per pair with the reason in words, the hint, the phase times and the
/// age of the last success. Every value from config or probes is HTML-escaped. Below 40em wide
/// (a phone) the cards stack and the table scrolls sideways.
enum StatusPage {
    static func render(_ report: StatusReport) -> [UInt8] {
        let now = report.generatedAt
        let targets = report.targets
        let paths = report.paths
        let entries = Dictionary(report.results.map { (PairKey(target: $0.target, path: $0.path), $0) }, uniquingKeysWith: { a, _ in a })
        let reachable = targets.filter { report.recommendations[$0] != nil }.count
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
            let unreachable = targets.filter { report.recommendations[$0] == nil }
            let cls = unreachable.isEmpty ? "ok" : "fail"
            var text = "\(reachable) of \(targets.count) target\(targets.count == 1 ? "" : "s") reachable"
            if !unreachable.isEmpty { text += "; unreachable on every path: " + unreachable.map(escape).joined(separator: ", ") }
            html += "<p class=\"verdict \(cls)\">\(text).</p>\n"
        }

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
                    html += matrixCell(e, preferred: preferred == p, now: now)
                }
                html += "</tr>\n"
            }
            html += "</tbody></table></div>\n"
        }

        // One card per pair.
        if !report.results.isEmpty {
            html += "<h2>Each pair</h2>\n"
            for e in report.results { html += card(e, preferred: report.recommendations[e.target] == e.path, now: now) }
        }

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

    static func matrixCell(_ e: StatusReport.Entry, preferred: Bool, now: Double) -> String {
        let star = preferred ? " <span class=\"pref\" title=\"preferred path\">★</span>" : ""
        switch e.success {
        case .none:
            return "<td class=\"pending\"><a href=\"#\(anchor(e))\">… pending</a></td>"
        case .some(true):
            let time = e.duration.map { "<span class=\"small\">\(Format.duration($0))</span>" } ?? ""
            return "<td class=\"ok\(preferred ? " preferred" : "")\"><a href=\"#\(anchor(e))\">✓ ok</a>\(star)\(time)</td>"
        case .some(false):
            let lastOK = e.lastSuccessAt.map { "ok \(Format.age(now - $0)) ago" } ?? "never ok"
            return "<td class=\"fail\"><a href=\"#\(anchor(e))\">✗ \(escape(e.phase ?? "?"))</a>"
                + "<span class=\"small\">\(escape(e.reason ?? "?"))</span><span class=\"small\">\(lastOK)</span></td>"
        }
    }

    static func card(_ e: StatusReport.Entry, preferred: Bool, now: Double) -> String {
        let cls = e.success.map { $0 ? "ok" : "fail" } ?? "pending"
        var html = "<section class=\"card \(cls)\" id=\"\(anchor(e))\">\n<h3>\(escape(e.target)) <span class=\"over\">over</span> \(escape(e.path))"
        switch e.success {
        case .some(true): html += " <span class=\"badge ok\">✓ ok</span>"
        case .some(false): html += " <span class=\"badge fail\">✗ \(escape(e.phase ?? "?")) / \(escape(e.reason ?? "?"))</span>"
        case .none: html += " <span class=\"badge pending\">pending</span>"
        }
        if preferred { html += " <span class=\"badge pref\">★ preferred</span>" }
        html += "</h3>\n"
        if let hint = e.hint {
            html += "<p class=\"meaning\">\(escape(hint.meaning))</p>\n"
            html += "<p class=\"advice\"><b>Try:</b> \(escape(hint.advice))</p>\n"
        }
        if let detail = e.detail { html += "<p class=\"detail\"><code>\(escape(detail))</code></p>\n" }
        guard e.success != nil else {
            return html + "<p class=\"small\">No round has finished yet.</p>\n</section>\n"
        }
        var facts: [(String, String)] = []
        let phaseTimes = Phase.allCases.compactMap { p -> String? in
            if let s = e.seconds(p) { return "\(p.rawValue) \(Format.duration(s))" }
            if e.phase == p.rawValue { return "\(p.rawValue) <b class=\"bad\">failed</b>" }
            return nil
        }
        if !phaseTimes.isEmpty { facts.append(("phases", phaseTimes.joined(separator: " · "))) }
        if let d = e.duration { facts.append(("round", Format.duration(d) + (e.startedAt.map { ", \(Format.age(now - $0)) ago" } ?? ""))) }
        facts.append(("last success", e.lastSuccessAt.map { "\(Format.age(now - $0)) ago" } ?? "never, since the agent started"))
        if let a = e.address { facts.append(("address", "<code>\(escape(a))</code>")) }
        if let v = e.tlsVersion {
            facts.append(("TLS", escape(v) + (e.tlsCipher.map { " <code>\(escape($0))</code>" } ?? "")))
        }
        if let notAfter = e.certNotAfter {
            let days = (notAfter - now) / 86_400
            let text = days < 0 ? "<b class=\"bad\">expired \(Format.utc(notAfter))</b>"
                : "\(Format.utc(notAfter)) (in \(Int(days)) day\(Int(days) == 1 ? "" : "s"))"
            facts.append(("certificate until", text))
        }
        if let status = e.httpStatus { facts.append(("HTTP status", "\(status)")) }
        html += "<dl>" + facts.map { "<dt>\($0.0)</dt><dd>\($0.1)</dd>" }.joined() + "</dl>\n</section>\n"
        return html
    }

    static let css = """
    :root{--ok:#dcf5e0;--ok-ink:#14532d;--fail:#fde0df;--fail-ink:#7f1d1d;--pend:#eceff3;--line:#d0d5dc;--ink:#1f2328;--muted:#59636e}
    *{box-sizing:border-box}
    body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:var(--ink);background:#fff}
    header{background:#24292f;color:#fff;padding:.6rem 1rem}header h1{font-size:1.2rem;margin:0}
    .agent{margin:.2rem 0 0;font-size:.85rem;color:#d0d7de}.agent code{color:#fff}
    .agent .good{color:#8ddb8c}.agent .bad{color:#ffaba8;font-weight:600}
    main{padding:0 1rem 1rem;max-width:72rem}
    h2{font-size:1.05rem;margin:1.2rem 0 .5rem}
    .verdict{margin:1rem 0 0;padding:.6rem .8rem;border-radius:6px;font-weight:600}
    .verdict.ok{background:var(--ok);color:var(--ok-ink)}.verdict.fail{background:var(--fail);color:var(--fail-ink)}.verdict.none{background:var(--pend)}
    .scroll{overflow-x:auto}
    table.matrix{border-collapse:collapse}
    .matrix th,.matrix td{border:1px solid var(--line);padding:.35rem .6rem;text-align:left;vertical-align:top}
    .matrix thead th{background:#f6f8fa;font-weight:600}
    .matrix tbody th{background:#f6f8fa;font-weight:600;white-space:nowrap}
    .matrix td{min-width:7.5rem}
    .matrix td a{color:inherit;text-decoration:none;font-weight:600}
    .matrix td.ok{background:var(--ok);color:var(--ok-ink)}.matrix td.fail{background:var(--fail);color:var(--fail-ink)}
    .matrix td.pending,.matrix td.none{background:var(--pend);color:var(--muted)}
    .matrix td.preferred{box-shadow:inset 0 0 0 2px var(--ok-ink)}
    .use{display:block;font-weight:400;font-size:.8rem;color:var(--ok-ink)}.use.bad{color:var(--fail-ink)}
    .small{display:block;font-size:.8rem;overflow-wrap:anywhere}
    .pref{color:#9a6700}
    .card{border:1px solid var(--line);border-left:6px solid var(--line);border-radius:6px;padding:.5rem .8rem;margin:.6rem 0}
    .card.ok{border-left-color:#2da44e}.card.fail{border-left-color:#cf222e}
    .card h3{font-size:1rem;margin:0 0 .3rem}.over{font-weight:400;color:var(--muted)}
    .badge{display:inline-block;font-size:.8rem;font-weight:600;padding:0 .45rem;border-radius:1rem;white-space:nowrap}
    .badge.ok{background:var(--ok);color:var(--ok-ink)}.badge.fail{background:var(--fail);color:var(--fail-ink)}
    .badge.pending{background:var(--pend)}.badge.pref{background:#fff8c5;color:#7d4e00}
    .meaning{margin:.2rem 0}.advice{margin:.2rem 0}.detail{margin:.2rem 0;color:var(--muted);overflow-wrap:anywhere}
    dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem;margin:.4rem 0 0;font-size:.9rem}
    dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
    .bad{color:var(--fail-ink)}
    code{font:.85em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
    footer{padding:.5rem 1rem 1rem;font-size:.85rem;color:var(--muted)}
    @media (max-width:40em){main{padding:0 .6rem .6rem}dl{grid-template-columns:1fr}dt{margin-top:.2rem}}
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
