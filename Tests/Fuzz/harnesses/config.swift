// libFuzzer harness: the config decoder (`ConfigLoader.decode`): JSON parsing, then validation
// of every field with its JSON path.
//
// Beyond "never traps": a rejected config names at least one problem, each with a message; an
// accepted one has at least one target and path, and a deadline no longer than its interval.
import EgressMonitor

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let config = try ConfigLoader.decode(bytes)
        precondition(!config.targets.isEmpty && !config.paths.isEmpty, "accepted a config without targets or paths")
        precondition(config.timeoutSeconds <= config.intervalSeconds, "accepted a timeout longer than the interval")
        _ = config.pairs
    } catch {
        precondition(!error.issues.isEmpty, "rejected without naming a problem")
        _ = error.description
    }
    return 0
}
