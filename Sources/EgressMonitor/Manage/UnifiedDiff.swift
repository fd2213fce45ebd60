import EgressNet
/// A unified diff of two texts, as `diff -u --label OLD --label NEW` prints it: three lines of
/// context, hunks closer than twice that merged, `\ No newline at end of file` where a last line
/// has no newline. `apply` prints one per file it would change.
///
/// The edit script is Myers' shortest one (lines compared with their newline), changes shown as
/// their removed lines then their added ones, as GNU diff does; where several shortest scripts
/// exist GNU diff may pick another, which `patch` applies all the same.
public enum UnifiedDiff {
    public static let context = 3

    /// The diff, or "" when the texts are equal.
    public static func render(old: String, new: String, oldLabel: String, newLabel: String) -> String {
        guard old != new else { return "" }
        let a = lines(old), b = lines(new)
        let ops = script(a, b)
        // Indexes of changed ops, grouped into hunks.
        var hunks: [Range<Int>] = []
        var k = 0
        while k < ops.count {
            guard ops[k] != .same else { k += 1; continue }
            var start = k, end = k + 1
            while end < ops.count {
                if ops[end] != .same { end += 1; continue }
                var run = end
                while run < ops.count, ops[run] == .same { run += 1 }
                if run < ops.count, run - end <= 2 * context { end = run } else { break }
            }
            start = max(0, start - context)
            end = min(ops.count, end + context)
            hunks.append(start..<end)
            k = end
        }
        var out = "--- \(oldLabel)\n+++ \(newLabel)\n"
        // Line positions before each op.
        var posA = [Int](repeating: 0, count: ops.count + 1), posB = posA
        for (i, op) in ops.enumerated() {
            posA[i + 1] = posA[i] + (op == .insert ? 0 : 1)
            posB[i + 1] = posB[i] + (op == .delete ? 0 : 1)
        }
        for hunk in hunks {
            let countA = posA[hunk.upperBound] - posA[hunk.lowerBound]
            let countB = posB[hunk.upperBound] - posB[hunk.lowerBound]
            out += "@@ -\(range(posA[hunk.lowerBound], countA)) +\(range(posB[hunk.lowerBound], countB)) @@\n"
            var i = hunk.lowerBound
            while i < hunk.upperBound {
                if ops[i] == .same {
                    out += line(" ", a[posA[i]])
                    i += 1
                    continue
                }
                var j = i
                while j < hunk.upperBound, ops[j] != .same { j += 1 }
                for x in i..<j where ops[x] == .delete { out += line("-", a[posA[x]]) }
                for x in i..<j where ops[x] == .insert { out += line("+", b[posB[x]]) }
                i = j
            }
        }
        return out
    }

    enum Op: Equatable { case same, delete, insert }

    static func range(_ before: Int, _ count: Int) -> String {
        switch count {
        case 0: return "\(before),0"
        case 1: return "\(before + 1)"
        default: return "\(before + 1),\(count)"
        }
    }

    static func line(_ mark: String, _ text: Substring) -> String {
        text.hasSuffix("\n") ? mark + text : mark + text + "\n\\ No newline at end of file\n"
    }

    /// The text's lines, each with its newline (the last may have none).
    static func lines(_ text: String) -> [Substring] {
        var out: [Substring] = []
        var start = text.startIndex
        while start < text.endIndex {
            let end = text[start...].firstIndex(of: "\n").map { text.index(after: $0) } ?? text.endIndex
            out.append(text[start..<end])
            start = end
        }
        return out
    }

    /// Myers' greedy shortest edit script from `a` to `b`.
    static func script(_ a: [Substring], _ b: [Substring]) -> [Op] {
        let n = a.count, m = b.count
        let max = n + m
        guard max > 0 else { return [] }
        var v = [Int](repeating: 0, count: 2 * max + 2)
        var trace: [[Int]] = []
        var found = false
        for d in 0...max {
            trace.append(v)
            for k in stride(from: -d, through: d, by: 2) {
                var x: Int
                if k == -d || (k != d && v[max + k - 1] < v[max + k + 1]) {
                    x = v[max + k + 1]
                } else {
                    x = v[max + k - 1] + 1
                }
                var y = x - k
                while x < n, y < m, a[x] == b[y] { x += 1; y += 1 }
                v[max + k] = x
                if x >= n && y >= m { found = true; break }
            }
            if found { break }
        }
        // Walk back through the saved frontiers.
        var ops: [Op] = []
        var x = n, y = m
        for d in stride(from: trace.count - 1, through: 0, by: -1) {
            let v = trace[d]
            let k = x - y
            let prevK = (k == -d || (k != d && v[max + k - 1] < v[max + k + 1])) ? k + 1 : k - 1
            let prevX = d == 0 ? 0 : v[max + prevK]
            let prevY = prevX - prevK
            while x > prevX && y > prevY {
                ops.append(.same)
                x -= 1; y -= 1
            }
            if d > 0 {
                ops.append(x == prevX ? .insert : .delete)
            }
            x = prevX; y = prevY
        }
        return ops.reversed()
    }
}
