import EgressNet
/// The two files managed mode writes; the raw value is the `file` label of its metrics.
public enum ManagedFileKind: String, Sendable, Equatable, CaseIterable {
    case daemonJSON = "daemon_json"
    case hostsTOML = "hosts_toml"
}

/// What the agent (or `apply`) would do to one file now: its text, and the new text, or why
/// it cannot be touched.
public struct FilePlan: Sendable {
    public let kind: ManagedFileKind
    public let path: String
    /// The file as read; nil when it could not be read.
    public let snapshot: ManagedFileWriter.Snapshot?
    /// The mirrors it lists now, in order (daemon.json's list, hosts.toml's host tables).
    public let current: [String]
    /// The mirrors selection wants listed; nil: leave the file as it is.
    public let proposed: [String]?
    /// The new content; nil when unchanged or on error.
    public let newBytes: [UInt8]?
    public let error: ManageError?

    public var changes: Bool { newBytes != nil }

    /// The unified diff of the change, "" when none.
    public var diff: String {
        guard let snapshot, let newBytes else { return "" }
        return UnifiedDiff.render(old: String(decoding: snapshot.bytes, as: UTF8.self), new: String(decoding: newBytes, as: UTF8.self),
                                  oldLabel: path, newLabel: path)
    }

    /// Reads the file and works out the new content for `proposed` mirrors.
    public static func make(_ kind: ManagedFileKind, path: String, proposed: [String]?) -> FilePlan {
        let snapshot: ManagedFileWriter.Snapshot
        switch ManagedFileWriter.read(path) {
        case .failure where kind == .daemonJSON && !SystemFile.exists(path) && SystemFile.exists(SystemFile.directoryName(path)):
            // No daemon.json yet (a fresh Docker host): written as "{}" with the key added.
            snapshot = .absent(path)
        case .failure(let e): return FilePlan(kind: kind, path: path, snapshot: nil, current: [], proposed: proposed, newBytes: nil, error: e)
        case .success(let s): snapshot = s
        }
        do throws(ManageError) {
            switch kind {
            case .daemonJSON:
                let bytes = snapshot.exists ? snapshot.bytes : Array("{}\n".utf8)
                let current = try DaemonJSONEdit.mirrors(in: bytes) ?? []
                guard let proposed else { return FilePlan(kind: kind, path: path, snapshot: snapshot, current: current, proposed: nil, newBytes: nil, error: nil) }
                let out = try DaemonJSONEdit.edit(bytes, mirrors: proposed)
                // An absent file is created only to list mirrors ([] would change nothing for dockerd).
                let unchanged = snapshot.exists ? out == snapshot.bytes : proposed.isEmpty
                return FilePlan(kind: kind, path: path, snapshot: snapshot, current: current, proposed: proposed,
                                newBytes: unchanged ? nil : out, error: nil)
            case .hostsTOML:
                guard let text = String(validating: snapshot.bytes, as: UTF8.self) else { throw .unparsable("\(path) is not UTF-8 text") }
                let current = try HostsTOMLEdit.hosts(in: text)
                guard let proposed else { return FilePlan(kind: kind, path: path, snapshot: snapshot, current: current, proposed: nil, newBytes: nil, error: nil) }
                let out = try HostsTOMLEdit.edit(text, order: proposed)
                return FilePlan(kind: kind, path: path, snapshot: snapshot, current: current, proposed: proposed,
                                newBytes: out == text ? nil : Array(out.utf8), error: nil)
            }
        } catch {
            return FilePlan(kind: kind, path: path, snapshot: snapshot, current: [], proposed: proposed, newBytes: nil,
                            error: .unparsable("\(path): \(error.description); not touched"))
        }
    }

    /// The mirrors the file lists after the write: for hosts.toml, its tables in the new order.
    public var written: [String] {
        guard let newBytes else { return current }
        switch kind {
        case .daemonJSON: return (try? DaemonJSONEdit.mirrors(in: newBytes)) ?? []
        case .hostsTOML: return (try? HostsTOMLEdit.hosts(in: String(decoding: newBytes, as: UTF8.self))) ?? []
        }
    }
}

/// Writes a plan as the contract says: atomically, the original kept, a file changed since it
/// was read planned again (once) instead of overwritten, then dockerd reloaded after a
/// daemon.json write, and the mirrors taken out of daemon.json remembered.
public enum ManagedFileCommit {
    public struct Outcome: Sendable {
        public let plan: FilePlan
        /// nil when nothing was written (no change, or the error below).
        public let writtenAt: Double?
        public let error: ManageError?
        /// The reload after a daemon.json write: the pid signalled, or why none was; nil when not tried.
        public let reload: Result<Int32, ManageError>?
    }

    public static func commit(_ plan: FilePlan, manage: ManageConfig, now: () -> Double = wallClockSeconds) -> Outcome {
        var plan = plan
        for attempt in 0..<2 {
            if let e = plan.error { return Outcome(plan: plan, writtenAt: nil, error: e, reload: nil) }
            guard let bytes = plan.newBytes, let snapshot = plan.snapshot else { return Outcome(plan: plan, writtenAt: nil, error: nil, reload: nil) }
            switch ManagedFileWriter.write(bytes, over: snapshot) {
            case .success:
                var reload: Result<Int32, ManageError>?
                let at = now()
                ManageState.recordWrite(plan.kind, at: at, mirrors: plan.written, stateDir: manage.stateDir)
                if plan.kind == .daemonJSON {
                    ManageState.remember(removed: plan.current, kept: plan.written, stateDir: manage.stateDir)
                    if manage.reloadDocker { reload = DockerReload.reload(pidFile: manage.dockerPidFile) }
                }
                return Outcome(plan: plan, writtenAt: at, error: nil, reload: reload)
            case .failure(.changedSinceRead(let m)) where attempt == 0:
                Log.info("managed file changed since it was read; reading it again", ["file": plan.path, "detail": m])
                plan = FilePlan.make(plan.kind, path: plan.path, proposed: plan.proposed)
            case .failure(let e):
                return Outcome(plan: plan, writtenAt: nil, error: e, reload: nil)
            }
        }
        return Outcome(plan: plan, writtenAt: nil, error: .changedSinceRead("\(plan.path) kept changing while the agent wrote it; not written"), reload: nil)
    }
}

/// The mirrors the agent took out of daemon.json, kept in `state_dir` so they are still probed
/// after a restart (discovery no longer finds them in the file) and come back when they recover.
public enum ManageState {
    public static let fileName = "removed-mirrors.json"

    public static func removed(stateDir: String) -> [String] {
        guard let data = SystemFile.read(stateDir + "/" + fileName),
              let json = try? JSONValue.parse(data, duplicateKeys: .lastWins),
              let list = json["removed_mirrors"]?.arrayValue else { return [] }
        return list.compactMap(\.stringValue)
    }

    /// Adds the mirrors `removed` has and `kept` has not, and forgets those `kept` lists again.
    static func remember(removed: [String], kept: [String], stateDir: String) {
        let keptSet = Set(kept.map(MirrorURL.normalized))
        var list = self.removed(stateDir: stateDir).filter { !keptSet.contains(MirrorURL.normalized($0)) }
        for url in removed.map(MirrorURL.normalized) where !keptSet.contains(url) && !list.contains(url) { list.append(url) }
        let text = "{\"removed_mirrors\": [" + list.map { "\"\(SuggestCommand.jsonEscaped($0))\"" }.joined(separator: ", ") + "]}\n"
        if case .failure(let e) = ManagedFileWriter.writeOwn(Array(text.utf8), to: stateDir + "/" + fileName) {
            Log.warn("cannot remember the mirrors taken out of daemon.json", ["state_dir": stateDir, "error": e.description])
        }
    }

    /// The config with a mirror target for each remembered mirror it does not probe yet.
    public static func addRemembered(to config: AgentConfig) -> AgentConfig {
        guard let manage = config.manage, manage.daemonJSON != nil else { return config }
        var config = config
        var names = Set(config.targets.map(\.name))
        let path = manage.stateDir + "/" + fileName
        for text in removed(stateDir: manage.stateDir) {
            guard case .success(let url) = EndpointURL.parse(text, defaultPorts: ["https": 443, "http": 80]),
                  url.scheme == "https" || url.scheme == "http" else { continue }
            if config.targets.contains(where: { $0.kind == .mirror && MirrorURL.text($0.url) == MirrorURL.text(url) }) { continue }
            let name = DockerDaemonConfig.uniqueName("mirror-" + DockerDaemonConfig.sanitize(url.host), used: &names)
            config.targets.append(Target(name: name, kind: .mirror, url: url,
                                         images: [try! ImageReference.parse(ConfigDefaults.dockerHubImage, officialPrefix: true).get()],
                                         discoveredFrom: path))
        }
        config.linkMirrorsToUpstreams()
        return config
    }
}
