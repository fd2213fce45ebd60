import EgressNet

/// The human status page at `/`: server-rendered HTML, no external assets, no JavaScript.
enum StatusPage {
    static func render(_ report: StatusReport) -> [UInt8] {
        var rows = ""
        for e in report.results {
            let state: String
            let cls: String
            switch e.success {
            case .some(true): state = "ok"; cls = "ok"
            case .some(false): state = "\(e.phase ?? "?") / \(e.reason ?? "?")"; cls = "fail"
            case .none: state = "pending"; cls = "pending"
            }
            let phases = Phase.allCases.compactMap { p in e.phases[p.rawValue].map { "\(p.rawValue) \(ms($0))" } }
                .joined(separator: ", ")
            let age = e.lastSuccessAt.map { "\(Int(report.generatedAt - $0))s ago" } ?? "never"
            rows += "<tr class=\"\(cls)\"><td>\(escape(e.target))</td><td>\(escape(e.path))</td><td>\(escape(state))</td>"
                + "<td>\(escape(phases))</td><td>\(age)</td><td>\(escape(e.detail ?? ""))</td></tr>\n"
        }
        let html = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta http-equiv="refresh" content="15">
        <title>egress-monitor</title>
        <style>
        body{font-family:system-ui,sans-serif;margin:1rem;color:#222}
        table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
        tr.ok td:nth-child(3){background:#d4f7d4}tr.fail td:nth-child(3){background:#f9d0d0}tr.pending td:nth-child(3){background:#eee}
        .scroll{overflow-x:auto}
        </style></head><body>
        <h1>egress-monitor \(escape(report.version))</h1>
        <p><a href="/metrics">metrics</a> · <a href="/api/v1/status">status JSON</a></p>
        <div class="scroll"><table><thead><tr><th>target</th><th>path</th><th>result</th><th>phases</th><th>last success</th><th>detail</th></tr></thead>
        <tbody>
        \(rows)</tbody></table></div>
        </body></html>

        """
        return Array(html.utf8)
    }

    static func ms(_ seconds: Double) -> String {
        let v = seconds * 1000
        return v < 10 ? "\((v * 10).rounded() / 10) ms" : "\(Int(v.rounded())) ms"
    }

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
