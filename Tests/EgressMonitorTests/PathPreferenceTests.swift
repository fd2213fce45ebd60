import Testing
@testable import EgressMonitor
import EgressMetrics

@Suite struct PathPreferenceTests {
    static func result(_ path: String, ok: Bool, time: Double = 0.1, target: String = "hub") -> ProbeResult {
        ProbeResult(target: target, path: path, startedAt: 0, duration: time,
                    phases: ok ? [.connect: time / 2, .http: time / 2] : [:],
                    failure: ok ? nil : ProbeFailure(.connect, .tcpTimeout, "blackholed"))
    }

    @Test func picksTheWorkingPathWhenTheOtherIsBlackholed() {
        var p = PathPreference()
        for _ in 0..<3 {
            p.record(Self.result("direct", ok: false, time: 5), pathOrder: ["direct", "corp"])
            p.record(Self.result("corp", ok: true, time: 0.3), pathOrder: ["direct", "corp"])
        }
        #expect(p.preferred["hub"] == "corp")
    }

    @Test func doesNotFlapBetweenTwoHealthyPathsOfNearEqualSpeed() {
        var p = PathPreference()
        var choices: [String] = []
        for round in 0..<40 {
            // Each path is a little faster than the other every other round.
            let a = round % 2 == 0 ? 0.100 : 0.110
            let b = round % 2 == 0 ? 0.108 : 0.098
            p.record(Self.result("a", ok: true, time: a), pathOrder: ["a", "b"])
            p.record(Self.result("b", ok: true, time: b), pathOrder: ["a", "b"])
            choices.append(p.preferred["hub"]!)
        }
        let switches = zip(choices, choices.dropFirst()).filter { $0 != $1 }.count
        #expect(switches == 0, "\(choices)")
    }

    @Test func switchesWhenTheCurrentPathDegradesByTwoRoundsInTen() {
        var p = PathPreference()
        let order = ["a", "b"]
        for _ in 0..<10 {
            p.record(Self.result("a", ok: true, time: 0.1), pathOrder: order)
            p.record(Self.result("b", ok: true, time: 0.2), pathOrder: order)
        }
        #expect(p.preferred["hub"] == "a")
        p.record(Self.result("a", ok: false), pathOrder: order)
        #expect(p.preferred["hub"] == "a", "one failure in ten is within the margin")
        p.record(Self.result("a", ok: false), pathOrder: order)
        #expect(p.preferred["hub"] == "b")
    }

    @Test func switchesToAPathAQuarterFaster() {
        var p = PathPreference()
        let order = ["slow", "fast"]
        p.record(Self.result("slow", ok: true, time: 1.0), pathOrder: order)
        #expect(p.preferred["hub"] == "slow")
        p.record(Self.result("fast", ok: true, time: 0.8), pathOrder: order)
        #expect(p.preferred["hub"] == "slow", "20 % faster is not enough")
        p.record(Self.result("fast", ok: true, time: 0.5), pathOrder: order)
        p.record(Self.result("fast", ok: true, time: 0.5), pathOrder: order)
        #expect(p.preferred["hub"] == "fast")
    }

    @Test func leavesAPathWithNoSuccessAtOnce() {
        var p = PathPreference()
        let order = ["a", "b"]
        p.record(Self.result("a", ok: false), pathOrder: order)
        p.record(Self.result("b", ok: false), pathOrder: order)
        #expect(p.preferred["hub"] == "a", "config order when nothing works")
        p.record(Self.result("b", ok: true), pathOrder: order)
        #expect(p.preferred["hub"] == "b")
    }

    @Test func theGaugeIsOneOnExactlyOnePathPerTarget() {
        let store = ResultStore(metrics: Catalogue.makeStore())
        let keys = ["direct", "vpn", "corp"].map { PairKey(target: "hub", path: $0) } + [PairKey(target: "lab", path: "direct")]
        store.setPairs(keys)
        store.record(Self.result("direct", ok: false))
        store.record(Self.result("vpn", ok: true, time: 0.4))
        store.record(Self.result("corp", ok: true, time: 0.2))
        store.record(Self.result("direct", ok: true, target: "lab"))
        let values = ["direct", "vpn", "corp"].map { store.metrics.value(Catalogue.pathPreferred, ["hub", $0]) }
        #expect(values == [0, 0, 1])
        #expect(store.metrics.value(Catalogue.pathPreferred, ["lab", "direct"]) == 1)
        #expect(store.preferredPaths() == ["hub": "corp", "lab": "direct"])
        // A reload that drops corp moves the choice.
        store.setPairs(Array(keys.filter { $0.path != "corp" }))
        store.record(Self.result("vpn", ok: true, time: 0.4))
        #expect(store.metrics.value(Catalogue.pathPreferred, ["hub", "vpn"]) == 1)
        #expect(store.metrics.value(Catalogue.pathPreferred, ["hub", "corp"]) == nil)
    }
}
