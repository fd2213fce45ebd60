import EgressNet

/// `egress-monitor check`: one round of every pair, printed as a table (or JSON), with the
/// recommended path per target. Exit status 0 when every target is reachable on some path.
public enum CheckCommand {
    public struct Options: Sendable {
        public var json = false
        public var target: String?
        public var path: String?
        public init() {}
    }

    /// Runs one round and returns the results in config order.
    public static func runRound(_ config: AgentConfig, options: Options) async -> [ProbeResult] {
        let pairs = config.pairs.filter { p in
            (options.target == nil || p.target.name == options.target) && (options.path == nil || p.path.name == options.path)
        }
        let engine = ProbeEngine(config: config)
        let slots = ProbeSlots(limit: config.concurrency)
        return await withTaskGroup(of: (Int, ProbeResult).self) { group in
            for (i, pair) in pairs.enumerated() {
                group.addTask {
                    _ = await slots.acquire()
                    defer { slots.release() }
                    return (i, await engine.probe(target: pair.target, path: pair.path))
                }
            }
            var out: [(Int, ProbeResult)] = []
            for await r in group { out.append(r) }
            return out.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// The path to use per target: the successful one with the shortest round, by name on a tie.
    public static func recommendations(_ results: [ProbeResult]) -> [String: String] {
        var best: [String: ProbeResult] = [:]
        for r in results where r.success {
            if let b = best[r.target], (b.duration, b.path) <= (r.duration, r.path) { continue }
            best[r.target] = r
        }
        return best.mapValues(\.path)
    }

    /// The table a person reads.
    public static func table(_ results: [ProbeResult]) -> String {
        let phaseColumns = Phase.allCases.filter { p in results.contains { $0.phases[p] != nil } }
        var rows: [[String]] = [["TARGET", "PATH"] + phaseColumns.map { $0.rawValue.uppercased() } + ["RESULT"]]
        for r in results {
            let cells = phaseColumns.map { p in r.phases[p].map(StatusPage.ms) ?? "-" }
            let outcome = r.failure.map { "FAIL \($0.phase.rawValue)/\($0.reason.rawValue): \($0.detail)" } ?? "ok"
            rows.append([r.target, r.path] + cells + [outcome])
        }
        let widths = (0..<rows[0].count - 1).map { c in rows.map { $0[c].count }.max() ?? 0 }
        var out = ""
        for row in rows {
            var line = ""
            for (c, cell) in row.enumerated() {
                line += c < widths.count ? cell.padding(toLength: widths[c] + 2, withPad: " ", startingAt: 0) : cell
            }
            out += line + "\n"
        }
        let recs = recommendations(results)
        let targets = results.map(\.target).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        out += "\n"
        for t in targets {
            out += recs[t].map { "\(t): use path \($0)\n" } ?? "\(t): unreachable on every path probed\n"
        }
        return out
    }

    /// 0 when every target probed is reachable on at least one path, else 1.
    public static func exitStatus(_ results: [ProbeResult]) -> Int32 {
        let targets = Set(results.map(\.target))
        let reachable = Set(results.filter(\.success).map(\.target))
        return targets.isSubset(of: reachable) ? 0 : 1
    }

    public static func json(_ results: [ProbeResult]) -> [UInt8] {
        CheckJSON(results: results.map { StatusReport.Entry(key: PairKey(target: $0.target, path: $0.path), last: $0, lastSuccessAt: $0.success ? $0.startedAt + $0.duration : nil) },
                  recommendations: recommendations(results)).encoded()
    }
}

import Foundation

struct CheckJSON: Encodable {
    let results: [StatusReport.Entry]
    let recommendations: [String: String]

    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return Array((try? encoder.encode(self)) ?? Data("{}".utf8)) + [10]
    }
}
