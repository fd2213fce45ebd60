import EgressNet

/// `egress-monitor check`: one round of every pair, printed as a table (or JSON), with the
/// failing phase and reason in words, a hint per failure, and the recommended path per target.
/// Exit status 0 when every target is reachable on some path, 1 when one is not.
public enum CheckCommand {
    public struct Options: Sendable {
        public var json = false
        public var target: String?
        public var path: String?
        public init() {}
    }

    /// The pairs a round probes: the config's, narrowed by `--target` and `--path`.
    public static func pairs(_ config: AgentConfig, options: Options) -> [(target: Target, path: EgressPath)] {
        config.pairs.filter { p in
            (options.target == nil || p.target.name == options.target) && (options.path == nil || p.path.name == options.path)
        }
    }

    /// Runs one round and returns the results in config order. `progress` is called as each
    /// probe ends, with the number ended so far, the number in the round and the result.
    public static func runRound(_ config: AgentConfig, options: Options,
                                progress: (_ done: Int, _ total: Int, _ result: ProbeResult) -> Void = { _, _, _ in }) async -> [ProbeResult] {
        let pairs = pairs(config, options: options)
        let engine = ProbeEngine(config: config)
        let slots = ProbeSlots(limit: config.concurrency)
        return await withTaskGroup(of: (Int, ProbeResult).self) { group in
            for (i, pair) in pairs.enumerated() {
                // On the reactor, as the agent's rounds run: `check` times phases the same way.
                group.addTask(executorPreference: Reactor.shared) {
                    _ = await slots.acquire()
                    defer { slots.release() }
                    return (i, await engine.probe(target: pair.target, path: pair.path))
                }
            }
            var out: [(Int, ProbeResult)] = []
            for await r in group {
                out.append(r)
                progress(out.count, pairs.count, r.1)
            }
            return out.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// The path to use per target, by the agent's rule for `egress_path_preferred` applied to
    /// this one round (README, "Preferred path"): a path that worked, the shortest time to the
    /// registry's answer, the path named first in the config on a tie. Results come in config
    /// order. A target no path worked for has none.
    public static func recommendations(_ results: [ProbeResult]) -> [String: String] {
        var histories: [String: [String: PathPreference.History]] = [:]
        var order: [String: [String]] = [:]
        for r in results {
            histories[r.target, default: [:]][r.path, default: PathPreference.History()]
                .add(success: r.success, time: PathPreference.timeToAnswer(r))
            if !(order[r.target]?.contains(r.path) ?? false) { order[r.target, default: []].append(r.path) }
        }
        var out: [String: String] = [:]
        for (target, paths) in histories {
            if let best = PathPreference.choose(paths, order: order[target] ?? [], current: nil), (paths[best]?.ratio ?? 0) > 0 {
                out[target] = best
            }
        }
        return out
    }

    /// 0 when every target probed is reachable on at least one path, else 1.
    public static func exitStatus(_ results: [ProbeResult]) -> Int32 {
        let targets = Set(results.map(\.target))
        let reachable = Set(results.filter(\.success).map(\.target))
        return targets.isSubset(of: reachable) ? 0 : 1
    }

    /// `check --json`: `{"results": [...], "recommendations": {"target": "path"}, "paths": {...},
    /// "targets": {...}}`, and `"actions"` (the config's, listed, never run) when there are any.
    public static func json(_ results: [ProbeResult], actions: [ActionConfig] = []) -> [UInt8] {
        ReportJSON.encode(CheckJSON(
            results: results.map { StatusReport.Entry(target: $0.target, path: $0.path, last: $0,
                                                      lastSuccessAt: $0.success ? $0.startedAt + $0.duration : nil) },
            recommendations: recommendations(results), verdicts: Attribution.judge(results),
            actions: ActionsReport.configured(actions)))
    }

    /// The progress line shown on a terminal while the round runs.
    public static func progressLine(done: Int, total: Int, last: ProbeResult, style: TerminalStyle) -> String {
        let outcome = last.failure.map { style.red("\($0.phase.rawValue)/\($0.reason.rawValue)") } ?? style.green("ok")
        return "\(style.clearLine)probing \(done)/\(total)… \(last.target) over \(last.path): \(outcome)"
    }

    // MARK: the table

    /// The report a person reads: the table, why each failure happened and what to try, and
    /// the recommended path per target.
    public static func table(_ results: [ProbeResult], style: TerminalStyle = .plain) -> String {
        guard !results.isEmpty else { return "nothing to probe\n" }
        // Findings first: a down path or target said once, its pairs not again below.
        let verdicts = Attribution.judge(results)
        var out = Findings.text(verdicts, style: style)
        // A column for every phase that ran or failed somewhere in this round.
        let phaseColumns = Phase.allCases.filter { p in results.contains { $0.phases[p] != nil || $0.failure?.phase == p } }
        let header = ["TARGET", "PATH"] + phaseColumns.map { $0.rawValue.uppercased() } + ["TOTAL", "RESULT"]
        // Cells as (text, colour): widths come from the plain text, colour goes on after padding.
        typealias Cell = (text: String, paint: (String) -> String)
        let plain: (String) -> String = { $0 }
        var rows: [[Cell]] = [header.map { ($0, style.bold) }]
        for r in results {
            var cells: [Cell] = [(r.target, plain), (r.path, plain)]
            for p in phaseColumns {
                if let s = r.phases[p] {
                    cells.append((Format.duration(s), plain))
                } else if r.failure?.phase == p {
                    cells.append(("FAILED", style.red))
                } else {
                    cells.append(("-", style.dim))
                }
            }
            cells.append((Format.duration(r.duration), plain))
            if r.failure != nil, let why = verdicts.explanation(target: r.target, path: r.path) {
                cells.append((Findings.resultCell(why), style.red))
            } else if let f = r.failure {
                cells.append(("FAIL \(f.phase.rawValue)/\(f.reason.rawValue)", style.red))
            } else {
                cells.append(("ok", style.green))
            }
            rows.append(cells)
        }
        let widths = header.indices.map { c in rows.map { $0[c].text.count }.max() ?? 0 }
        for row in rows {
            var line = ""
            for (c, cell) in row.enumerated() {
                let last = c == row.count - 1
                line += cell.paint(cell.text) + (last ? "" : String(repeating: " ", count: widths[c] + 2 - cell.text.count))
            }
            out += line + "\n"
        }

        // Failures grouped by phase and reason: what it means and what to try, said once.
        var groups: [(failure: ProbeFailure, results: [ProbeResult])] = []
        // Only the failures no finding explains.
        for r in results {
            guard let f = r.failure, verdicts.explanation(target: r.target, path: r.path) == nil else { continue }
            // One group per hint: suspicious answers resting on different evidence say different things.
            if let i = groups.firstIndex(where: { $0.failure.phase == f.phase && $0.failure.reason == f.reason
                                                  && Hints.hint(for: $0.failure) == Hints.hint(for: f) }) {
                groups[i].results.append(r)
            } else {
                groups.append((f, [r]))
            }
        }
        if !groups.isEmpty {
            let others = verdicts.downPaths.isEmpty && verdicts.targetFindings.isEmpty ? "" : " (other failures)"
            out += "\n" + style.bold("Why they failed\(others), and what to try:") + "\n"
            for g in groups {
                let hint = Hints.hint(for: g.failure)
                let key = "\(g.failure.phase.rawValue)/\(g.failure.reason.rawValue)"
                // Wrapped as if the key were plain text, then the key painted.
                let meaning = Format.wrap("\(key): \(hint.meaning)", width: 94, indent: "    ")
                out += "\n  " + style.red(key) + meaning.dropFirst(key.count) + "\n"
                let labels = g.results.map { "\($0.target) over \($0.path):" }
                let width = labels.map(\.count).max() ?? 0
                for (label, r) in zip(labels, g.results) {
                    out += "    " + label.paddedWithSpaces(to: width + 1) + (r.failure?.detail ?? "") + "\n"
                }
                out += "    " + Format.wrap("Try: " + hint.advice, width: 92, indent: "    ") + "\n"
            }
        }

        let recs = recommendations(results)
        let targets = results.map(\.target).uniqued()
        let nameWidth = targets.map(\.count).max() ?? 0
        out += "\n" + style.bold("Recommended path per target:") + "\n"
        for t in targets {
            let name = t.paddedWithSpaces(to: nameWidth + 2)
            if let p = recs[t], let best = results.first(where: { $0.target == t && $0.path == p }) {
                let others = results.filter { $0.target == t && $0.success && $0.path != p }.map(\.path)
                let also = others.isEmpty ? "" : "; also ok: \(others.joined(separator: ", "))"
                out += "  \(name)" + style.green(p) + " (\(Format.duration(best.duration))\(also))\n"
            } else {
                let probed = results.filter { $0.target == t }.map(\.path)
                out += "  \(name)" + style.red("none") + ": unreachable on every path probed (\(probed.joined(separator: ", ")))\n"
            }
        }
        let reachable = targets.filter { recs[$0] != nil }.count
        let summary = "\(reachable) of \(targets.count) target\(targets.count == 1 ? "" : "s") reachable."
        out += "\n" + (reachable == targets.count ? style.green(summary) : style.red(summary)) + "\n"
        return out
    }
}

/// `check --json`.
struct CheckJSON: JSONRepresentable {
    let results: [StatusReport.Entry]
    let recommendations: [String: String]
    let verdicts: Attribution.Verdicts
    var actions: [ActionStatus] = []

    var json: JSONValue {
        .object(["results": .array(results.map(\.json)), "recommendations": .object(recommendations.mapValues { .string($0) }),
                 "paths": Findings.pathsJSON(verdicts), "targets": Findings.targetsJSON(verdicts)]
            .merging(ActionsReport.block(actions)) { a, _ in a })
    }
}
