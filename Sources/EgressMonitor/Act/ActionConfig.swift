#if canImport(Glibc)
import Glibc
#endif

/// What an action can be run on (DESIGN.md, "Acting on what it measures").
public enum ActionEventKind: String, Sendable, Equatable, CaseIterable {
    /// A target's preferred path (`egress_path_preferred`) moved from one path to another.
    case preferredPathChanged = "preferred_path_changed"
    /// No path of the target succeeded in its last round, after some did.
    case targetDown = "target_down"
    /// Some path of the target succeeded in its last round, after none did.
    case targetUp = "target_up"
    /// A managed file (daemon.json, hosts.toml) was written.
    case mirrorsWritten = "mirrors_written"

    /// Whether the event is about one target (and so filtered by an action's `targets`).
    public var isTargetEvent: Bool { self != .mirrorsWritten }
}

/// One entry of `actions[]`: a command the operator names, run when the agent's view changes.
public struct ActionConfig: Sendable, Equatable {
    public static let defaultTimeoutSeconds: Double = 30
    public static let timeoutRange: ClosedRange<Double> = 0.1...3_600

    public let name: String
    /// The events that run it.
    public let on: [ActionEventKind]
    /// The targets whose events run it; nil for all. Never filters `mirrors_written`.
    public let targets: [String]?
    /// argv: `command[0]` is an absolute path to an executable file; no shell is involved.
    public let command: [String]
    /// Past this, the command's process group gets SIGTERM, then SIGKILL.
    public let timeoutSeconds: Double

    public init(name: String, on: [ActionEventKind], targets: [String]? = nil, command: [String],
                timeoutSeconds: Double = ActionConfig.defaultTimeoutSeconds) {
        self.name = name
        self.on = on
        self.targets = targets
        self.command = command
        self.timeoutSeconds = timeoutSeconds
    }

    /// Whether `event` runs this action.
    public func wants(_ event: ActionEvent) -> Bool {
        guard on.contains(event.kind) else { return false }
        guard event.kind.isTargetEvent, let targets else { return true }
        return event.target.map { targets.contains($0) } ?? false
    }
}

extension Validator {
    static let actionFields = ["name", "on", "targets", "command", "timeout_seconds"]

    /// `"actions": [{"name", "on": [...], "targets": [...], "command": ["/abs/path", ...],
    /// "timeout_seconds"}]`. `targets` must name targets of the config.
    mutating func actions(_ value: JSONValue?, targets: Set<String>) -> [ActionConfig] {
        guard let value else { return [] }
        guard case .array(let list) = value else {
            fail("actions", "expected an array, found \(value.kindName)")
            return []
        }
        var seen: Set<String> = []
        var out: [ActionConfig] = []
        for (i, item) in list.enumerated() {
            if let a = action(item, at: "actions[\(i)]", seen: &seen, targets: targets) { out.append(a) }
        }
        return out
    }

    mutating func action(_ item: JSONValue, at path: String, seen: inout Set<String>, targets: Set<String>) -> ActionConfig? {
        guard let dict = object(item, at: path, fields: Self.actionFields) else { return nil }
        let name = self.name(dict, at: path, seen: &seen)
        var events: [ActionEventKind] = []
        if let list = array(dict, "on", at: path) {
            if list.isEmpty { fail(join(path, "on"), "must name at least one event") }
            for (i, item) in list.enumerated() {
                let at = "\(join(path, "on"))[\(i)]"
                guard case .string(let s) = item else {
                    fail(at, "expected a string, found \(item.kindName)")
                    continue
                }
                guard let kind = ActionEventKind(rawValue: s) else {
                    fail(at, "\"\(s)\" is not one of \(ActionEventKind.allCases.map(\.rawValue).joined(separator: ", "))")
                    continue
                }
                if events.contains(kind) { fail(at, "\"\(s)\" is named twice") } else { events.append(kind) }
            }
        } else if dict["on"] == nil {
            fail(join(path, "on"), "required (one or more of \(ActionEventKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var actionTargets: [String]?
        if let list = array(dict, "targets", at: path) {
            actionTargets = []
            if list.isEmpty { fail(join(path, "targets"), "must name at least one target (or be left out for all)") }
            for (i, item) in list.enumerated() {
                let at = "\(join(path, "targets"))[\(i)]"
                guard case .string(let s) = item else {
                    fail(at, "expected a string, found \(item.kindName)")
                    continue
                }
                if !targets.contains(s) {
                    fail(at, "\"\(s)\" is not a target named in targets (\(targets.sorted().joined(separator: ", ")))")
                }
                actionTargets?.append(s)
            }
        }
        var command: [String] = []
        if let list = array(dict, "command", at: path) {
            for (i, item) in list.enumerated() {
                guard case .string(let s) = item else {
                    fail("\(join(path, "command"))[\(i)]", "expected a string, found \(item.kindName)")
                    continue
                }
                command.append(s)
            }
            if list.isEmpty {
                fail(join(path, "command"), "must name the program to run (an absolute path), then its arguments")
            } else if command.count == list.count, let problem = Self.executableProblem(command[0]) {
                fail("\(join(path, "command"))[0]", problem)
            }
        } else if dict["command"] == nil {
            fail(join(path, "command"), "required: [\"/absolute/path/to/program\", \"arguments\", ...]; it runs without a shell")
        }
        let timeout = number(dict, "timeout_seconds", at: path, range: ActionConfig.timeoutRange) ?? ActionConfig.defaultTimeoutSeconds
        guard let name, !events.isEmpty, !command.isEmpty else { return nil }
        return ActionConfig(name: name, on: events, targets: actionTargets, command: command, timeoutSeconds: timeout)
    }

    /// Why `path` cannot be an action's program, or nil when it is an absolute path to an
    /// executable regular file.
    static func executableProblem(_ path: String) -> String? {
        guard path.hasPrefix("/") else {
            return "\"\(path)\" is not an absolute path (no shell and no PATH search: name the program as /usr/local/bin/...)"
        }
        var st = stat()
        guard stat(path, &st) == 0 else { return "\(path) does not exist" }
        guard st.st_mode & S_IFMT == S_IFREG else { return "\(path) is not a regular file" }
        guard access(path, X_OK) == 0 else { return "\(path) is not executable (chmod +x)" }
        return nil
    }
}
