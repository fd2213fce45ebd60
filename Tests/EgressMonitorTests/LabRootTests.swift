#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import EgressTestSupport

/// The lab's own hygiene: a test process killed before its atexit leaves its lab root
/// (`egress-lab-PID`) behind; the next test process removes it, and nothing else.
@Suite struct LabRootTests {
    /// In a directory of its own: the root of a dead process, untouched for two hours, goes; a
    /// dead one touched a minute ago (maybe a live process of another PID namespace), a live
    /// process's and an unrelated directory stay.
    @Test func theRootsOfDeadTestProcessesAreRemoved() throws {
        let parent = try Lab.makeDirectory("stale-roots")
        defer { Lab.removeDirectory(parent) }
        let dead = try deadPID()
        let fm = FileManager.default
        let old = Date().addingTimeInterval(-7200)
        func make(_ name: String, modified: Date) throws -> String {
            let path = parent + "/" + name
            try fm.createDirectory(atPath: path + "/certs", withIntermediateDirectories: true)
            try fm.setAttributes([.modificationDate: modified], ofItemAtPath: path)
            return path
        }
        let stale = try make("egress-lab-\(dead)", modified: old)
        let recent = try make("egress-lab-\(dead + 1 == getpid() ? dead + 2 : dead + 1)", modified: Date())
        let live = try make("egress-lab-\(getpid())", modified: old)
        let other = try make("egress-labs-\(dead)", modified: old)
        Lab.removeStaleRoots(in: parent)
        #expect(!fm.fileExists(atPath: stale), "the dead process's root is still there")
        #expect(fm.fileExists(atPath: live) && fm.fileExists(atPath: other))
        // Only when the neighbouring pid is not alive does this say anything about the age rule.
        if kill(pid_t(recent.split(separator: "-").last!)!, 0) != 0 {
            #expect(fm.fileExists(atPath: recent), "a root touched a minute ago was removed")
        }
    }

    /// The PID of a child that has exited and been reaped.
    func deadPID() throws -> pid_t {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let pid = child.processIdentifier
        try #require(kill(pid, 0) != 0 && errno == ESRCH, "pid \(pid) was reused at once")
        return pid
    }
}
