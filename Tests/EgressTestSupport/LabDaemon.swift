/// A lab server program together with its lab directory: the one launcher the lab's daemons
/// (tinyproxy, microsocks, docker-registry, dnsmasq, nginx) start through.
///
/// `launch` makes the directory, lets the caller write its config there and start the program,
/// waits until it listens on every port and checks that it still runs. Whatever happens, the
/// daemon owns both: when it is freed (a test that threw early included) the program is stopped
/// and the directory removed, so no caller repeats that init/deinit/stop block.
public final class LabDaemon: Sendable {
    /// The lab directory: config, logs, pid file, storage.
    public let directory: String
    /// The running program.
    public let process: LabProcess

    /// Makes a lab directory named after `name`, runs `start` in it (write the config, return the
    /// started `LabProcess`), then waits up to `timeout` seconds until the program listens on
    /// each of `ports` on 127.0.0.1 and checks that it still runs.
    ///
    /// - Throws: what `start` throws, or `LabError` with the program's last log lines when it
    ///   exits or does not listen in time. The directory is removed and the program stopped.
    public static func launch(_ name: String, ports: [UInt16], timeout: Double = 30,
                              _ start: (_ directory: String) throws -> LabProcess) async throws -> LabDaemon {
        let directory = try Lab.makeDirectory(name)
        let process: LabProcess
        do {
            process = try start(directory)
        } catch {
            Lab.removeDirectory(directory)
            throw error
        }
        let daemon = LabDaemon(directory: directory, process: process)
        for port in ports {
            try await process.waitForTCPPort(port, timeout: timeout)
        }
        try process.checkRunning()
        return daemon
    }

    private init(directory: String, process: LabProcess) {
        self.directory = directory
        self.process = process
    }

    deinit {
        process.stop()
        Lab.removeDirectory(directory)
    }

    /// Stops the program (SIGTERM, then SIGKILL after a grace period); does not wait.
    public func stop() { process.stop() }
}
