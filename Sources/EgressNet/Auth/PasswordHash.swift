import CLinux

/// crypt(5) password hashes, as Prometheus's web config stores them (bcrypt `$2y$`/`$2b$`),
/// checked with the system's libcrypt (libxcrypt).
public enum PasswordHash {
    /// Whether `password` matches `hash`. The comparison of the computed hash runs in constant
    /// time; bcrypt itself is slow on purpose, so callers cache successful checks.
    public static func matches(password: String, hash: String) -> Bool {
        egress_crypt_matches(password, hash) == 1
    }

    private static let worker = SerialWorker(name: "egress-bcrypt")

    /// `matches`, on a thread of its own (started with the first check): bcrypt's deliberate slowness never holds a
    /// thread of Swift's cooperative pool, and a flood of bad passwords delays only other
    /// logins, never probes or scrapes that need no check.
    public static func check(password: String, hash: String) async -> Bool {
        await withCheckedContinuation { c in
            worker.submit { c.resume(returning: matches(password: password, hash: hash)) }
        }
    }

    /// A new bcrypt hash of `password` (cost 10 by default), for a config's basic_auth_users.
    public static func bcrypt(_ password: String, cost: Int = 10) -> String? {
        var out = [CChar](repeating: 0, count: 128)
        guard egress_bcrypt_hash(password, UInt(cost), &out, Int32(out.count)) == 1 else { return nil }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether `hash` looks like a bcrypt hash (`$2a$`, `$2b$` or `$2y$`, cost, 53 characters).
    public static func isBcrypt(_ hash: String) -> Bool {
        let b = Array(hash.utf8)
        guard b.count == 60, b[0] == UInt8(ascii: "$"), b[1] == UInt8(ascii: "2"),
              [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(b[2]), b[3] == UInt8(ascii: "$"),
              b[6] == UInt8(ascii: "$") else { return false }
        return true
    }
}
