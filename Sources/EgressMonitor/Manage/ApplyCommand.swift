import EgressNet

/// `egress-monitor apply [--config FILE] [--write]`: after one round, the change the agent
/// would make to each managed file as a unified diff (stdout carries only the diffs, so it can
/// go to `patch`); with `--write`, the change made as the agent makes it, and dockerd reloaded.
/// Exit 0: nothing to change, a diff shown, or all written; 1: a file could not be read, parsed
/// or written; 2: usage or config (main.swift).
public enum ApplyCommand {
    /// The managed files: the config's `manage`, else the standard ones that exist.
    public static func manage(_ config: AgentConfig, environment: [String: String] = SystemFile.environment()) -> ManageConfig {
        config.manage ?? ManageConfig.applyDefault(environment: environment)
    }

    /// What one round says each file should be, judged on that round alone.
    public static func plans(_ config: AgentConfig, _ results: [ProbeResult], manage: ManageConfig) -> [FilePlan] {
        let dockerPath = manage.dockerPath(in: config)
        func last(_ target: String) -> ProbeResult? { results.first { $0.target == target && $0.path == dockerPath } }
        let freshness = ManagePlanner.freshness(config, results: results)
        let candidates = ManagePlanner.candidates(config, dockerPath: dockerPath, lastResults: results, freshness: freshness) { target in
            last(target).map { [$0.success] } ?? []
        }
        let hub = ManagePlanner.hubWorks(config, dockerPath: dockerPath) { last($0)?.success }
        return ManagePlanner.plans(manage, proposed: MirrorSelection.choose(candidates, hubWorks: hub, oneRound: true))
    }

    public struct Output: Sendable {
        public var stdout = ""
        public var stderr = ""
        public var status: Int32 = 0
    }

    /// The diffs (and with `write`, the writes and the reload).
    public static func run(_ plans: [FilePlan], manage: ManageConfig, write: Bool) -> Output {
        var out = Output()
        if plans.isEmpty {
            out.stderr += "nothing to manage: no manage section, and neither \(ManageConfig.defaultDaemonJSON) nor \(ManageConfig.defaultHostsTOML) exists\n"
        }
        for plan in plans {
            if let e = plan.error {
                out.stderr += "\(plan.path): \(e)\n"
                out.status = 1
                continue
            }
            guard plan.changes else {
                let why = plan.proposed == nil ? "no mirror qualifies and Docker Hub fails on the docker path: left as it is" : "already as it should be"
                out.stderr += "\(plan.path): unchanged (\(why))\n"
                continue
            }
            out.stdout += plan.diff
            guard write else { continue }
            let outcome = ManagedFileCommit.commit(plan, manage: manage)
            if let e = outcome.error {
                out.stderr += "\(plan.path): not written: \(e)\n"
                out.status = 1
                continue
            }
            out.stderr += "\(plan.path): written (\(outcome.plan.written.count) mirror\(outcome.plan.written.count == 1 ? "" : "s")); the original is kept as \(plan.path)\(ManagedFileWriter.originalSuffix)\n"
            switch outcome.reload {
            case .success(let pid)?: out.stderr += "dockerd (pid \(pid)) reloaded with SIGHUP\n"
            case .failure(let e)?: out.stderr += "dockerd not reloaded: \(e)\n"
            case nil: break
            }
        }
        return out
    }

    /// What `check --json` and the status page show of one plan.
    public static func status(_ plan: FilePlan, stateDir: String) -> ManagedFileStatus {
        var s = ManagedFileStatus(kind: plan.kind, path: plan.path)
        s.listed = plan.current
        s.wouldWrite = plan.proposed
        s.pendingChange = plan.changes
        s.lastError = plan.error?.description
        if let last = ManageState.lastWrite(plan.kind, stateDir: stateDir) {
            s.lastWriteAt = last.at
            s.lastWritten = last.mirrors
        }
        return s
    }
}

extension CheckCommand {
    /// `check --json` with, when the config has a `manage` section, what is managed, what was
    /// last written and when (from `state_dir`), and what would be written now.
    public static func json(_ results: [ProbeResult], config: AgentConfig) -> [UInt8] {
        guard let manage = config.manage else { return json(results, actions: config.actions) }
        let statuses = ApplyCommand.plans(config, results, manage: manage).map { ApplyCommand.status($0, stateDir: manage.stateDir) }
        // check's own document, with the block added: whatever else check prints stays as it is.
        let plain = json(results, actions: config.actions)
        guard case .object(var o)? = try? JSONValue.parse(plain) else { return plain }
        o["manage"] = .array(statuses.map(\.json))
        return (JSONValue.object(o).prettyPrinted() ?? plain.dropLast()) + [10]
    }
}

extension CheckCommand {
    /// `check`'s text after the table, when the config has a `manage` section: per managed file,
    /// the mirrors it lists, what managed mode would write after this round, and the agent's
    /// last write of it (from `state_dir`). The same facts as `check --json`'s "manage" block;
    /// `egress-monitor apply` shows the change as a diff.
    public static func managedText(_ results: [ProbeResult], config: AgentConfig, style: TerminalStyle = .plain) -> String {
        guard let manage = config.manage else { return "" }
        let statuses = ApplyCommand.plans(config, results, manage: manage).map { ApplyCommand.status($0, stateDir: manage.stateDir) }
        guard !statuses.isEmpty else { return "" }
        func list(_ mirrors: [String]) -> String { mirrors.isEmpty ? "no mirror" : mirrors.joined(separator: ", ") }
        var out = "\n" + style.bold("Managed files") + " (egress-monitor apply shows the change as a diff):\n"
        for s in statuses {
            out += "  \(s.kind.rawValue) \(s.path)\n"
            if let error = s.lastError {
                out += "    " + style.red("cannot be managed: \(error)") + "\n"
                continue
            }
            out += "    lists now:   \(list(s.listed))\n"
            if let next = s.wouldWrite {
                out += "    would write: \(list(next))" + (s.pendingChange ? " " + style.yellow("(a change)") : " (as it is)") + "\n"
            } else {
                out += "    would write: nothing, the file is left as it is (no mirror qualifies on path \(manage.dockerPath(in: config)) this round)\n"
            }
            if let at = s.lastWriteAt {
                out += "    last written by egress-monitor at \(Format.utc(at)): \(list(s.lastWritten ?? []))\n"
            } else {
                out += "    never written by egress-monitor\n"
            }
        }
        return out
    }
}

/// The managed files as the status page shows them: one row per file.
enum ManagedFilesSection {
    static func html(_ files: [ManagedFileStatus], now: Double) -> String {
        guard !files.isEmpty else { return "" }
        var html = "<h2 id=\"managed\">Managed files</h2>\n<div class=\"scroll\"><table class=\"list\">\n"
        html += "<thead><tr><th>file</th><th>lists now</th><th>last written</th><th>would write now</th><th>state</th></tr></thead>\n<tbody>\n"
        for f in files {
            let written = f.lastWriteAt.map { "\(Format.age(now - $0)) ago: " + (f.lastWritten ?? []).joined(separator: ", ") } ?? "never by this agent"
            let would = f.wouldWrite.map { $0.isEmpty ? "[] (Docker Hub directly)" : $0.joined(separator: ", ") } ?? "leave as it is"
            let state = f.lastError.map { "<span class=\"bad\">\(StatusPage.escape($0))</span>" }
                ?? f.holding.map { "held: " + StatusPage.escape($0) } ?? (f.pendingChange ? "change due" : "as it should be")
            html += "<tr><td><code>\(StatusPage.escape(f.path))</code> (\(f.kind.rawValue))</td><td>\(StatusPage.escape(f.listed.joined(separator: ", ")))</td>"
            html += "<td>\(StatusPage.escape(written))</td><td>\(StatusPage.escape(would))</td><td>\(state)</td></tr>\n"
        }
        return html + "</tbody></table></div>\n"
    }
}

extension ManageState {
    static let writesFileName = "last-writes.json"

    /// Records a write of `kind`, for `check` and the agent after a restart (its dwell).
    static func recordWrite(_ kind: ManagedFileKind, at: Double, mirrors: [String], stateDir: String) {
        var all: [String: JSONValue] = [:]
        if let data = SystemFile.read(stateDir + "/" + writesFileName),
           let json = try? JSONValue.parse(data, duplicateKeys: .lastWins), let o = json.objectValue { all = o }
        all[kind.rawValue] = .object(["at": .number(at), "mirrors": .array(mirrors.map { .string($0) })])
        let bytes = (JSONValue.object(all).prettyPrinted() ?? Array("{}".utf8)) + [10]
        if case .failure(let e) = ManagedFileWriter.writeOwn(bytes, to: stateDir + "/" + writesFileName) {
            Log.warn("cannot record the write in the state directory", ["state_dir": stateDir, "error": e.description])
        }
    }

    /// The last write of `kind` recorded in `stateDir`.
    public static func lastWrite(_ kind: ManagedFileKind, stateDir: String) -> (at: Double, mirrors: [String])? {
        guard let data = SystemFile.read(stateDir + "/" + writesFileName),
              let json = try? JSONValue.parse(data, duplicateKeys: .lastWins),
              let entry = json[kind.rawValue], let at = entry["at"]?.numberValue else { return nil }
        return (at, entry["mirrors"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }
}
