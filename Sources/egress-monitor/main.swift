#if canImport(Glibc)
import Glibc
#endif
import CLinux
import EgressMonitor
import EgressNet

// egress-monitor: arguments, signals, wiring. Everything testable lives in EgressMonitor.

/// The commands, each with its own usage (printed by `--help`, and on a usage error).
enum Command: String, CaseIterable {
    case run, check, validate, suggest, apply

    var usage: String {
        switch self {
        case .run: return """
            usage: egress-monitor [--config FILE] [--listen HOST:PORT] [--log-level LEVEL]
                   egress-monitor check [--config FILE] [--json] [--target NAME] [--path NAME]
                   egress-monitor validate [--config FILE]
                   egress-monitor suggest [--config FILE]
                   egress-monitor apply [--config FILE] [--write]
                   egress-monitor --version | --help | COMMAND --help

            Probes Docker Hub and registry mirrors over every egress path, phase by phase (dns,
            connect, proxy, tls, http, ...), and tells which way out works, how well, and why the
            others fail.

            commands:
              (none)     run the agent: probe on a schedule; serve /metrics, the status page on /,
                         and /api/v1/status
              check      one round now: a table of target × path, why failures failed, the path to use
              validate   check a config: every error with its JSON path, or what it would probe
              suggest    one round, then print the daemon.json mirrors and proxy drop-in for Docker
              apply      one round, then the change to daemon.json / hosts.toml as a diff (--write: made)

            options of the agent:
              -c, --config FILE      the config (JSON). Without it: Docker Hub, plus the mirrors and
                                     proxies Docker is set up with, over the direct path
                  --listen HOST:PORT where to serve HTTP (default: the config's, 0.0.0.0:9469)
                  --log-level LEVEL  debug, info, warn or error (logfmt on stderr; default info)
              -h, --help             this text; COMMAND --help for a command's
                  --version          the version

            SIGHUP or POST /-/reload reloads the config; SIGTERM or SIGINT stops the agent.
            """
        case .check: return """
            usage: egress-monitor check [--config FILE] [--json] [--target NAME] [--path NAME]

            Runs one round of probes now and prints first the findings, each said once: a path every
            target fails on early (dns, connect, proxy), a target that fails on every path. Then a
            table of target × path: each phase's time and the result; for each failure no finding
            explains, its phase and reason in words and what to try; then the path to use for each
            target.

              -c, --config FILE   the config (default: Docker Hub plus the mirrors and proxies
                                  Docker is set up with)
                  --json          JSON instead of the table:
                                  {"results": [...], "recommendations": {"TARGET": "PATH"},
                                   "paths": {"PATH": {"up", ...}}, "targets": {"TARGET": {"up", ...}}}
                                  plus "manage" and "actions" blocks when the config has them
                                  (check writes no file and runs no action)
                  --target NAME   probe only this target
                  --path NAME     probe only over this path
                  --log-level L   debug, info, warn or error (on stderr; default info)
              -h, --help          this text

            Progress and colour only on a terminal; NO_COLOR set turns colour off.
            Exit status: 0 every target is reachable on some path, 1 one is not, 2 a usage or
            config error.
            """
        case .validate: return """
            usage: egress-monitor validate [--config FILE]

            Checks a config without probing anything. Prints every error at once, each with the
            JSON path of its field (targets[0].url: required for kind registry), exit status 1;
            or what would be probed, targets × paths, discovered mirrors and proxies marked,
            exit status 0. Without --config it shows the embedded default.

              -c, --config FILE   the config to check
                  --log-level L   debug, info, warn or error (on stderr; default info)
              -h, --help          this text

            Exit status: 0 valid, 1 invalid, 2 a usage error.
            """
        case .suggest: return """
            usage: egress-monitor suggest [--config FILE]

            Runs one round, then prints (never writes) what to change in Docker's setup:
            - a daemon.json "registry-mirrors" list of the mirrors that answered, healthiest and
              fastest first;
            - where Docker Hub fails directly but works through a proxy path, the systemd drop-in
              that sends Docker through that proxy (its password left for you to fill in).

              -c, --config FILE   the config (default: Docker Hub plus the mirrors and proxies
                                  Docker is set up with)
                  --log-level L   debug, info, warn or error (on stderr; default info)
              -h, --help          this text

            Exit status: 0 Docker can pull some way (Docker Hub or a mirror answers), 1 nothing
            answered, 2 a usage or config error.
            """
        case .apply: return """
            usage: egress-monitor apply [--config FILE] [--write]

            Runs one round, then prints, as a unified diff, the change managed mode would make to
            each managed file: the mirrors that answered on the docker path this round and are not
            behind their upstream, in daemon.json's "registry-mirrors" (nothing else in the file
            changes) and as the order of hosts.toml's [host] tables (none removed). Nothing is
            printed for a file that would not change. Without a "manage" section in the config:
            /etc/docker/daemon.json and /etc/containerd/certs.d/docker.io/hosts.toml, where they exist.

              -c, --config FILE   the config (default: Docker Hub plus the mirrors and proxies
                                  Docker is set up with)
                  --write         write the files (atomically, the original kept once as
                                  FILE.egress-monitor.orig) and reload dockerd with SIGHUP
                  --log-level L   debug, info, warn or error (on stderr; default info)
              -h, --help          this text

            Exit status: 0 nothing to change, a diff shown, or everything written; 1 a file could
            not be read, parsed or written; 2 a usage or config error.
            """
        }
    }
}

func writeAll(_ fd: Int32, _ s: String) {
    var bytes = Array(s.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return }
        bytes = bytes.dropFirst(n)
    }
}

func printOut(_ s: String) { writeAll(1, s) }

/// Prints `message` on stderr and exits; status 2 is a usage or config error.
func fail(_ message: String, status: Int32 = 2) -> Never {
    writeAll(2, "egress-monitor: \(message)\n")
    exit(status)
}

/// A usage error: the message, then the command's usage, on stderr; exit status 2.
func usageError(_ message: String, _ command: Command) -> Never {
    fail("\(message)\n\n\(command.usage)")
}

struct Arguments {
    var command = Command.run
    var config: String?
    var listen: SocketAddress?
    var json = false
    var write = false
    var target: String?
    var path: String?
    var logLevel: Log.Level = .info

    init(_ argv: [String]) {
        var args = argv[...]
        if let first = args.first, !first.hasPrefix("-") {
            if first == "help" {
                let topic = args.dropFirst().first.flatMap(Command.init(rawValue:)) ?? .run
                printOut(topic.usage + "\n")
                exit(0)
            }
            guard let command = Command(rawValue: first) else {
                usageError("unknown command \"\(first)\" (commands: check, validate, suggest, apply)", .run)
            }
            self.command = command
            args = args.dropFirst()
        }
        var seen: Set<String> = []
        while let raw = args.popFirst() {
            // --flag=value is the same as --flag value.
            var arg = raw
            var inlineValue: String?
            if raw.hasPrefix("--"), let eq = raw.firstIndex(of: "=") {
                arg = String(raw[..<eq])
                inlineValue = String(raw[raw.index(after: eq)...])
            }
            func value() -> String {
                if let inlineValue { return inlineValue }
                guard let v = args.popFirst(), !v.hasPrefix("--") else { usageError("\(arg) needs a value", command) }
                return v
            }
            func once(_ name: String) {
                guard seen.insert(name).inserted else { usageError("\(name) is given twice", command) }
            }
            func flagOnly() {
                if inlineValue != nil { usageError("\(arg) takes no value", command) }
            }
            switch (arg, command) {
            case ("--help", _), ("-h", _):
                flagOnly()
                printOut(command.usage + "\n")
                exit(0)
            case ("--version", _):
                flagOnly()
                printOut("egress-monitor \(EgressMonitorVersion.current)\n")
                exit(0)
            case ("--config", _), ("-c", _):
                once("--config")
                config = value()
            case ("--log-level", _):
                once("--log-level")
                switch value() {
                case "debug": logLevel = .debug
                case "info": logLevel = .info
                case "warn": logLevel = .warn
                case "error": logLevel = .error
                case let other: usageError("--log-level: \"\(other)\" is not one of debug, info, warn, error", command)
                }
            case ("--listen", .run):
                once("--listen")
                let text = value()
                guard let a = SocketAddress(parsing: text, defaultPort: nil)
                        ?? (text.hasPrefix(":") ? UInt16(text.dropFirst()).map { SocketAddress(ip: IPAddress("0.0.0.0")!, port: $0) } : nil) else {
                    usageError("--listen: \"\(text)\" is not HOST:PORT with an IP address host (e.g. 127.0.0.1:9469)", command)
                }
                listen = a
            case ("--json", .check):
                flagOnly()
                json = true
            case ("--write", .apply):
                flagOnly()
                write = true
            case ("--target", .check):
                once("--target")
                target = value()
            case ("--path", .check):
                once("--path")
                path = value()
            default:
                if !arg.hasPrefix("-") {
                    usageError("unexpected argument \"\(raw)\"", command)
                }
                let forWhat = command == .run ? "the agent" : command.rawValue
                usageError("unknown option \"\(arg)\" for \(forWhat)", command)
            }
        }
    }

    var source: ConfigSource {
        config.map { .file($0) } ?? .embedded
    }
}

signal(SIGPIPE, SIG_IGN)
// One malloc arena for the whole process. glibc gives each thread that allocates its own arena
// (up to 8 per core), each keeping its freed pages; the agent has a handful of threads and its
// allocations are small, so the extra arenas cost resident memory (about 5 MiB at 2,000 pairs,
// Tests/Bench) and buy no throughput. MALLOC_ARENA_MAX in the environment still wins.
if getenv("MALLOC_ARENA_MAX") == nil {
    _ = mallopt(M_ARENA_MAX, 1)
}
let arguments = Arguments(Array(CommandLine.arguments.dropFirst()))
Log.setLevel(arguments.logLevel)

func loadConfigOrExit(_ source: ConfigSource) -> AgentConfig {
    do {
        let config = try source.load()
        try TLSMaterial.load(config).install()
        return config
    } catch {
        fail("invalid config \(source.description):\n" + error.issues.map { "  \($0)" }.joined(separator: "\n"))
    }
}

/// Raises the soft open-files limit to the hard one: the listener and probes use one fd each.
func raiseFileLimit() {
    var limit = rlimit()
    if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// One round of `options`' pairs, with a progress line while it runs when `style` allows.
func probeRound(_ config: AgentConfig, _ options: CheckCommand.Options, style: TerminalStyle) async -> [ProbeResult] {
    raiseFileLimit()
    let total = CheckCommand.pairs(config, options: options).count
    if style.progress { printOut("probing \(total) pair\(total == 1 ? "" : "s")…") }
    let results = await CheckCommand.runRound(config, options: options) { done, total, last in
        if style.progress { printOut(CheckCommand.progressLine(done: done, total: total, last: last, style: style)) }
    }
    if style.progress { printOut(style.clearLine) }
    return results
}

switch arguments.command {
case .validate:
    let source = arguments.source
    let config: AgentConfig
    do {
        config = try source.load()
        // validate opens the TLS files on purpose: an unreadable ca_file is a config error here.
        _ = try TLSMaterial.load(config)
    } catch {
        writeAll(2, ValidateCommand.errors(error, source: source.description))
        exit(1)
    }
    printOut(ValidateCommand.summary(config, source: source.description))
    exit(0)

case .check:
    let config = loadConfigOrExit(arguments.source)
    var options = CheckCommand.Options()
    options.json = arguments.json
    options.target = arguments.target
    options.path = arguments.path
    if let t = options.target, !config.targets.contains(where: { $0.name == t }) {
        fail("--target: no target named \"\(t)\" (targets: \(config.targets.map(\.name).joined(separator: ", ")))")
    }
    if let p = options.path, !config.paths.contains(where: { $0.name == p }) {
        fail("--path: no path named \"\(p)\" (paths: \(config.paths.map(\.name).joined(separator: ", ")))")
    }
    if CheckCommand.pairs(config, options: options).isEmpty {
        fail("target \"\(options.target ?? "")\" is not probed over path \"\(options.path ?? "")\" (its paths narrow it)")
    }
    let style = options.json ? .plain : TerminalStyle.detect(fd: 1)
    let results = await probeRound(config, options, style: style)
    if options.json {
        printOut(String(decoding: CheckCommand.json(results, config: config), as: UTF8.self))
    } else {
        printOut(CheckCommand.table(results, style: style) + CheckCommand.managedText(results, config: config, style: style))
    }
    exit(CheckCommand.exitStatus(results))

case .suggest:
    let config = loadConfigOrExit(arguments.source)
    let style = TerminalStyle.detect(fd: 1)
    let results = await probeRound(config, CheckCommand.Options(), style: style)
    var suggestion = SuggestCommand.analyse(config, results)
    if suggestion.proxy != nil {
        // The drop-in is written in what the local Docker understands (its Go version).
        var environment: [String: String] = [:]
        if let host = getenv("DOCKER_HOST") { environment["DOCKER_HOST"] = String(cString: host) }
        suggestion.docker = await DockerEngine.version(socketPath: DockerEngine.socketPath(environment: environment))
    }
    printOut(SuggestCommand.render(suggestion, style: style))
    exit(SuggestCommand.exitStatus(suggestion))

case .apply:
    let config = loadConfigOrExit(arguments.source)
    let manage = ApplyCommand.manage(config)
    let results = await probeRound(config, CheckCommand.Options(), style: .plain)  // stdout carries only diffs
    let output = ApplyCommand.run(ApplyCommand.plans(config, results, manage: manage), manage: manage, write: arguments.write)
    printOut(output.stdout)
    writeAll(2, output.stderr)
    exit(output.status)

case .run:
    raiseFileLimit()
    // Signals reach the loop below through a pipe (EgressNet's signalStream): their handler
    // only writes the number. Installed before the listener answers, so a SIGTERM right after
    // the first scrape is kept for the loop, not taken by the default action.
    let stopSignal = signalStream([SIGTERM, SIGINT, SIGHUP])
    let agent: Agent
    do {
        agent = try Agent.start(source: arguments.source, listenOverride: arguments.listen)
    } catch let error as ConfigError {
        fail("invalid config \(arguments.source.description):\n" + error.issues.map { "  \($0)" }.joined(separator: "\n"))
    } catch {
        fail("\(error)", status: 1)
    }
    for await s in stopSignal {
        if s == SIGHUP {
            Log.info("SIGHUP: reloading config")
            await agent.reload()
            continue
        }
        Log.info("stopping", ["signal": s == SIGTERM ? "SIGTERM" : "SIGINT"])
        break
    }
    await agent.stop()
    Log.info("stopped")
    exit(0)
}
