/// Which path to recommend for each target, from the last rounds of every path.
///
/// The rule (README, "Preferred path"):
/// 1. Over the last `window` rounds of each path, the success ratio; among successful rounds,
///    the median time to the registry's answer (dns + connect + proxy + tls + http).
/// 2. The best path has the highest ratio; equal ratios go to the lower median, then to the
///    path named first in the config.
/// 3. Hysteresis: the current choice stays unless the best path's ratio is higher by at least
///    `ratioMargin` (two rounds in ten), or its ratio is as high and its median at most
///    `speedFactor` of the current one's (25 % faster), or the current path has no success left.
///    Two healthy paths of near-equal speed do not flap.
public struct PathPreference: Sendable {
    public static let window = 10
    public static let ratioMargin = 0.2
    public static let speedFactor = 0.75

    public struct History: Sendable, Equatable {
        public internal(set) var outcomes: [Bool] = []
        public internal(set) var times: [Double] = []

        mutating func add(success: Bool, time: Double?) {
            outcomes.append(success)
            if outcomes.count > PathPreference.window { outcomes.removeFirst(outcomes.count - PathPreference.window) }
            if success, let time {
                times.append(time)
                if times.count > PathPreference.window { times.removeFirst(times.count - PathPreference.window) }
            }
        }

        public var ratio: Double { outcomes.isEmpty ? 0 : Double(outcomes.filter { $0 }.count) / Double(outcomes.count) }

        /// Median time of the successful rounds kept; nil with none.
        public var median: Double? {
            guard !times.isEmpty else { return nil }
            let sorted = times.sorted()
            let mid = sorted.count / 2
            return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
        }
    }

    /// target → path → history.
    public private(set) var histories: [String: [String: History]] = [:]
    /// target → preferred path.
    public private(set) var preferred: [String: String] = [:]

    public init() {}

    /// Time to the registry's answer: the phases up to and including `http`.
    public static func timeToAnswer(_ result: ProbeResult) -> Double? {
        guard result.success else { return nil }
        return [Phase.dns, .connect, .proxy, .tls, .http].compactMap { result.phases[$0] }.reduce(0, +)
    }

    /// Records a round; returns the target's preferred path afterwards.
    @discardableResult
    public mutating func record(_ result: ProbeResult, pathOrder: [String]) -> String? {
        histories[result.target, default: [:]][result.path, default: History()]
            .add(success: result.success, time: Self.timeToAnswer(result))
        let choice = Self.choose(histories[result.target] ?? [:], order: pathOrder, current: preferred[result.target])
        preferred[result.target] = choice
        return choice
    }

    /// Forgets pairs no longer configured.
    public mutating func retain(_ keys: Set<PairKey>) {
        for (target, paths) in histories {
            let kept = paths.filter { keys.contains(PairKey(target: target, path: $0.key)) }
            histories[target] = kept.isEmpty ? nil : kept
            if let p = preferred[target], kept[p] == nil { preferred[target] = nil }
        }
    }

    static func choose(_ paths: [String: History], order: [String], current: String?) -> String? {
        let candidates = order.filter { paths[$0] != nil }
        guard let best = candidates.min(by: { better(paths[$0]!, paths[$1]!) }) else { return nil }
        guard let current, let cur = paths[current], current != best else { return best }
        let challenger = paths[best]!
        if cur.ratio == 0 && challenger.ratio > 0 { return best }
        if challenger.ratio >= cur.ratio + ratioMargin - 1e-9 { return best }
        if challenger.ratio >= cur.ratio, let c = challenger.median, let m = cur.median, c <= m * speedFactor { return best }
        return current
    }

    /// Whether `a` ranks before `b`: higher ratio, then lower median. Stable for equal ranks,
    /// so config order decides.
    static func better(_ a: History, _ b: History) -> Bool {
        if abs(a.ratio - b.ratio) > 1e-9 { return a.ratio > b.ratio }
        return (a.median ?? .infinity) < (b.median ?? .infinity)
    }
}
