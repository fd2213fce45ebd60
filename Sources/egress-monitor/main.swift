#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import EgressMonitor
import EgressNet

// egress-monitor: arguments, signals, wiring. Everything testable lives in EgressMonitor.

let usage = """
usage: egress-monitor [--config FILE] [--listen HOST:PORT] [--log-level debug|info|warn|error]
       egress-monitor check [--config FILE] [--json] [--target NAME] [--path NAME]
       egress-monitor validate --config FILE
       egress-monitor --version | --help

Probes Docker Hub and registry mirrors over every egress path, phase by phase, and serves
Prometheus metrics on /metrics (default listen 0.0.0.0:9469). With no --config it probes Docker
Hub plus the registry-mirrors of /etc/docker/daemon.json over the direct path.
"""

func fail(_ message: String, status: Int32 = 2) -> Never {
    var line = Array("egress-monitor: \(message)\n".utf8)
    _ = line.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    exit(status)
}

func printOut(_ s: String) {
    var bytes = Array(s.utf8)
    _ = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress, $0.count) }
}

struct Arguments {
    var command = "run"
    var config: String?
    var listen: SocketAddress?
    var json = false
    var target: String?
    var path: String?
    var logLevel: Log.Level = .info

    init(_ argv: [String]) {
        var args = argv[...]
        if let first = args.first, ["run", "check", "validate"].contains(first) {
            command = first
            args = args.dropFirst()
        }
        func value(_ flag: String) -> String {
            guard let v = args.popFirst() else { fail("\(flag) needs a value\n\(usage)") }
            return v
        }
        while let arg = args.popFirst() {
            switch arg {
            case "--help", "-h":
                printOut(usage + "\n")
                exit(0)
            case "--version":
                printOut("egress-monitor \(EgressMonitorVersion.current)\n")
                exit(0)
            case "--config", "-c":
                config = value(arg)
            case "--listen":
                let text = value(arg)
                guard let a = SocketAddress(parsing: text, defaultPort: nil) ?? (text.hasPrefix(":") ? UInt16(text.dropFirst()).map { SocketAddress(ip: IPAddress("0.0.0.0")!, port: $0) } : nil) else {
                    fail("--listen: \"\(text)\" is not HOST:PORT with an IP address host (e.g. 127.0.0.1:9469)")
                }
                listen = a
            case "--log-level":
                switch value(arg) {
                case "debug": logLevel = .debug
                case "info": logLevel = .info
                case "warn": logLevel = .warn
                case "error": logLevel = .error
                case let other: fail("--log-level: \"\(other)\" is not one of debug, info, warn, error")
                }
            case "--json" where command == "check":
                json = true
            case "--target" where command == "check":
                target = value(arg)
            case "--path" where command == "check":
                path = value(arg)
            default:
                fail("unknown argument \"\(arg)\" for \(command)\n\(usage)")
            }
        }
    }

    var source: ConfigSource {
        config.map { .file($0) } ?? .embedded(daemonJSONPath: "/etc/docker/daemon.json")
    }
}

signal(SIGPIPE, SIG_IGN)
let arguments = Arguments(Array(CommandLine.arguments.dropFirst()))
Log.setLevel(arguments.logLevel)

func loadConfigOrExit(_ source: ConfigSource) -> AgentConfig {
    do {
        return try source.load()
    } catch {
        fail("invalid config \(source.description):\n" + error.issues.map { "  \($0)" }.joined(separator: "\n"))
    }
}

/// Delivers `signals` as an async sequence, from a dispatch queue (never an async-signal
/// handler). Not main-actor isolated: the handlers run on the signal queue.
func signalStream(_ signals: [Int32]) -> (AsyncStream<Int32>, [any DispatchSourceSignal]) {
    let queue = DispatchQueue(label: "signals")
    let (stream, continuation) = AsyncStream<Int32>.makeStream()
    let sources = signals.map { s in
        let src = DispatchSource.makeSignalSource(signal: s, queue: queue)
        src.setEventHandler { continuation.yield(s) }
        src.resume()
        return src
    }
    return (stream, sources)
}

/// Raises the soft open-files limit to the hard one: the listener and probes use one fd each.
func raiseFileLimit() {
    var limit = rlimit()
    if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

switch arguments.command {
case "validate":
    guard let path = arguments.config else { fail("validate needs --config FILE\n\(usage)") }
    do {
        let config = try ConfigLoader.load(path: path)
        printOut("\(path): valid; \(config.targets.count) targets × \(config.paths.count) paths = \(config.pairs.count) probes every \(Int(config.intervalSeconds))s\n")
        exit(0)
    } catch {
        printOut(error.issues.map { "\(path): \($0)" }.joined(separator: "\n") + "\n")
        exit(1)
    }

case "check":
    let config = loadConfigOrExit(arguments.source)
    var options = CheckCommand.Options()
    options.json = arguments.json
    options.target = arguments.target
    options.path = arguments.path
    if let t = options.target, !config.targets.contains(where: { $0.name == t }) { fail("--target: no target named \"\(t)\"") }
    if let p = options.path, !config.paths.contains(where: { $0.name == p }) { fail("--path: no path named \"\(p)\"") }
    raiseFileLimit()
    let results = await CheckCommand.runRound(config, options: options)
    if options.json {
        var bytes = CheckCommand.json(results)
        _ = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress, $0.count) }
    } else {
        printOut(CheckCommand.table(results))
    }
    exit(CheckCommand.exitStatus(results))

default:
    raiseFileLimit()
    // Signals arrive on a dispatch queue, never as async-signal handlers.
    for s in [SIGTERM, SIGINT, SIGHUP] { signal(s, SIG_IGN) }
    let agent: Agent
    do {
        agent = try Agent.start(source: arguments.source, listenOverride: arguments.listen)
    } catch let error as ConfigError {
        fail("invalid config \(arguments.source.description):\n" + error.issues.map { "  \($0)" }.joined(separator: "\n"))
    } catch {
        fail("\(error)", status: 1)
    }
    let (stopSignal, signalSources) = signalStream([SIGTERM, SIGINT, SIGHUP])
    for await s in stopSignal {
        if s == SIGHUP {
            Log.info("SIGHUP: reloading config")
            await agent.reload()
            continue
        }
        Log.info("stopping", ["signal": s == SIGTERM ? "SIGTERM" : "SIGINT"])
        break
    }
    withExtendedLifetime(signalSources) {}
    await agent.stop()
    Log.info("stopped")
    exit(0)
}
