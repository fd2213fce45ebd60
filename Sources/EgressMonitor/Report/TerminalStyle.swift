#if canImport(Glibc)
import Glibc
#endif

/// How `check` and `suggest` dress their output: colour and a progress line only for a person at
/// a terminal. Colour never when `NO_COLOR` is set to anything but the empty string
/// (no-color.org) or `TERM=dumb`; never into a pipe or a file.
public struct TerminalStyle: Sendable, Equatable {
    public let colour: Bool
    public let progress: Bool

    public init(colour: Bool, progress: Bool) {
        self.colour = colour
        self.progress = progress
    }

    public static let plain = TerminalStyle(colour: false, progress: false)

    /// The style for writing to `fd` (standard output by default) in this process's environment.
    public static func detect(fd: Int32 = 1) -> TerminalStyle {
        var environment: [String: String] = [:]
        for name in ["NO_COLOR", "TERM"] {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        return detect(fd: fd, environment: environment)
    }

    /// The style for writing to `fd` in `environment`.
    public static func detect(fd: Int32, environment: [String: String]) -> TerminalStyle {
        style(terminal: isatty(fd) == 1, environment: environment)
    }

    static func style(terminal: Bool, environment: [String: String]) -> TerminalStyle {
        let noColour = !(environment["NO_COLOR"] ?? "").isEmpty || environment["TERM"] == "dumb"
        return TerminalStyle(colour: terminal && !noColour, progress: terminal)
    }

    public func green(_ s: String) -> String { paint(s, "32") }
    public func red(_ s: String) -> String { paint(s, "31") }
    public func yellow(_ s: String) -> String { paint(s, "33") }
    public func bold(_ s: String) -> String { paint(s, "1") }
    public func dim(_ s: String) -> String { paint(s, "2") }

    private func paint(_ s: String, _ code: String) -> String {
        colour && !s.isEmpty ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s
    }

    /// Moves back to the start of the line and clears it (for the progress line).
    public var clearLine: String { progress ? "\r\u{1B}[K" : "" }
}
