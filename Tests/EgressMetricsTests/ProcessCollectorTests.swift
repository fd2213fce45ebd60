import Foundation
import Testing
@testable import EgressMetrics

@Suite("process_* metrics")
struct ProcessCollectorTests {
    @Test("values read from /proc/self are plausible")
    func plausible() throws {
        let store = MetricStore(families: ProcessCollector.families)
        ProcessCollector.install(into: store)
        let text = store.render()
        for family in ProcessCollector.families {
            #expect(text.contains("# TYPE \(family.name) \(family.type.rawValue)\n"))
        }
        let resident = try #require(store.value(ProcessCollector.residentMemory, []))
        let virtual = try #require(store.value(ProcessCollector.virtualMemory, []))
        let openFDs = try #require(store.value(ProcessCollector.openFDs, []))
        let maxFDs = try #require(store.value(ProcessCollector.maxFDs, []))
        let cpu = try #require(store.value(ProcessCollector.cpuSeconds, []))
        let start = try #require(store.value(ProcessCollector.startTime, []))
        let now = Date().timeIntervalSince1970
        #expect(resident > 1_000_000)
        #expect(virtual >= resident)
        #expect(openFDs >= 3) // stdin, stdout, stderr at least
        #expect(maxFDs >= openFDs)
        #expect(cpu > 0)
        #expect(start <= now + 1)
        #expect(start > now - 86_400)
    }

    @Test("open fds follow descriptors opened and closed")
    func openFDsTrack() throws {
        let before = try #require(ProcSelf.openFileDescriptors())
        let fds = (0..<100).map { _ in open("/dev/null", O_RDONLY) }
        defer { for fd in fds where fd >= 0 { close(fd) } }
        #expect(fds.allSatisfy { $0 >= 0 })
        let after = try #require(ProcSelf.openFileDescriptors())
        // Tests run in parallel and open and close files too; leave them a margin.
        #expect(after >= before + 100 - 30)
    }

    @Test("install registers its families in a store built without them")
    func installRegisters() {
        let store = MetricStore(families: [Fixture.reloadOK])
        ProcessCollector.install(into: store)
        #expect(store.render().contains("process_resident_memory_bytes "))
    }

    @Test("stat parsing counts fields after the last parenthesis")
    func parseStat() throws {
        // Fields 1-24 of proc(5); the command name holds spaces and a parenthesis.
        let line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 4 0 123456 104857600 2560 18446744073709551615\n"
        let stat = try #require(ProcSelf.parseStat(line, ticksPerSecond: 100, pageSize: 4096))
        #expect(stat == ProcSelf.Stat(cpuSeconds: 3, residentBytes: 2560 * 4096, virtualBytes: 104_857_600, startTicks: 123_456))
        #expect(ProcSelf.parseStat("garbage", ticksPerSecond: 100, pageSize: 4096) == nil)
        #expect(ProcSelf.parseStat("1 (x) S 1 2", ticksPerSecond: 100, pageSize: 4096) == nil)
    }
}
