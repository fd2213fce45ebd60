/// `egress-monitor validate`: what a valid config would probe, discovered items marked; or every
/// error at once, each with the JSON path of its field.
public enum ValidateCommand {
    /// The summary of a valid config. `source` names it ("config.json", "embedded default").
    public static func summary(_ config: AgentConfig, source: String) -> String {
        var out = "\(source): valid\n"
        var timing = "  a round every \(seconds(config.intervalSeconds)) per pair, timeout \(seconds(config.timeoutSeconds))"
        let phaseTimeouts = Phase.allCases.compactMap { p in config.phaseTimeouts[p].map { "\(p.rawValue) \(seconds($0))" } }
        if !phaseTimeouts.isEmpty { timing += " (\(phaseTimeouts.joined(separator: ", ")))" }
        out += timing + ", at most \(config.concurrency) probes at once; listens on \(config.listen)\n"
        out += "  resolvers: " + config.resolvers.map(describe).joined(separator: ", ") + "\n"

        out += "  paths:\n"
        out += columns(config.paths.map { p in
            [p.name, describe(p.kind) + (p.ipFamily.map { ", \($0.rawValue) only" } ?? ""),
             p.discoveredFrom.map { "discovered from \($0)" } ?? "", p.ipFamilyNote ?? ""]
        }, indent: "    ")
        out += "  targets:\n"
        out += columns(config.targets.map { t in
            var about: [String] = []
            if let r = t.resolver { about.append("resolver \(r)") }
            if let ca = t.caFile { about.append("CA \(ca)") }
            if !t.images.isEmpty { about.append((t.images.count == 1 ? "image " : "images ") + t.images.map(\.description).joined(separator: ", ")) }
            if !t.registry.referenceImages.isEmpty {
                about.append("reads " + t.registry.referenceImages.map(\.description).joined(separator: ", ") + " for its mirrors' comparison only")
            }
            return [t.name, t.kind.rawValue, t.url.description, about.joined(separator: "; "),
                    t.discoveredFrom.map { "discovered from \($0)" } ?? ""]
        }, indent: "    ")
        out += config.resolverNotes.map { "    \($0)\n" }.joined()

        let pairs = config.pairs
        out += "  would probe \(pairs.count) pair\(pairs.count == 1 ? "" : "s") (\(config.targets.count) target\(config.targets.count == 1 ? "" : "s") × \(config.paths.count) path\(config.paths.count == 1 ? "" : "s")"
        out += pairs.count < config.targets.count * config.paths.count ? ", narrowed by targets' paths):\n" : "):\n"
        out += columns(config.targets.map { t in
            [t.name, "on " + pairs.filter { $0.target.name == t.name }.map(\.path.name).joined(separator: ", ")]
        }, indent: "    ")
        out += manageSummary(config)
        out += ActionsReport.summary(config.actions)
        return out
    }

    /// The `manage` section as `validate` prints it; "" without one.
    static func manageSummary(_ config: AgentConfig) -> String {
        guard let m = config.manage else { return "" }
        var out = "  manage (writes these files):\n"
        var rows: [[String]] = []
        if let f = m.daemonJSON {
            rows.append(["daemon_json", f, m.reloadDocker ? "then SIGHUP to the dockerd of \(m.dockerPidFile)" : "dockerd not reloaded (reload_docker false)"])
        }
        if let f = m.hostsTOML { rows.append(["hosts_toml", f, "host tables reordered, none removed"]) }
        out += columns(rows, indent: "    ")
        out += "    judged on path \(m.dockerPath(in: config))\(m.dockerPath == nil ? " (default)" : ""); at most one write per \(seconds(m.minDwellSeconds)) unless the first mirror fails; state in \(m.stateDir)\n"
        return out
    }

    /// The errors of an invalid config, one per line, each `SOURCE: json.path: message`.
    public static func errors(_ error: ConfigError, source: String) -> String {
        let count = error.issues.count
        return "\(source): \(count) error\(count == 1 ? "" : "s")\n"
            + error.issues.map { "  \($0)\n" }.joined()
    }

    /// "lab (plain 127.0.0.1:5353)", "ali (dot 223.5.5.5:853 dns.alidns.com, trusted)".
    static func describe(_ r: ResolverConfig) -> String {
        guard let location = r.location else { return r.name + (r.trusted ? " (trusted)" : "") }
        var about = "\(r.kindName) \(location)"
        if let e = r.encrypted {
            if e.kind == .dot, let name = e.serverName { about += " \(name)" }
            if e.kind == .doh, let a = e.connectAddress { about += " at \(a.ip)" }
            if let ca = e.caFile { about += ", CA \(ca)" }
        }
        return "\(r.name) (\(about)\(r.trusted ? ", trusted" : ""))"
    }

    static func describe(_ kind: EgressPath.Kind) -> String {
        switch kind {
        case .direct: return "direct"
        case .interface(let name): return "interface \(name)"
        case .sourceAddress(let ip): return "source address \(ip)"
        // The URL's description never shows a password.
        case .proxy(let url): return "proxy \(url)"
        }
    }

    static func seconds(_ s: Double) -> String {
        s == s.rounded() ? "\(Int(s)) s" : "\(Format.decimal(s, places: 2)) s"
    }

    /// Rows of cells as aligned columns; empty trailing cells are dropped.
    static func columns(_ rows: [[String]], indent: String) -> String {
        let count = rows.map(\.count).max() ?? 0
        let widths = (0..<count).map { c in rows.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
        return rows.map { row in
            var cells = row
            while let last = cells.last, last.isEmpty { cells.removeLast() }
            let line = cells.enumerated().map { c, cell in
                c == cells.count - 1 ? cell : cell.paddedWithSpaces(to: widths[c] + 2)
            }.joined()
            return indent + line + "\n"
        }.joined()
    }
}
