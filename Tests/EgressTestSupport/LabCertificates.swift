import Foundation
import EgressSync

/// A server certificate and its private key, as PEM files.
public struct CertPair: Sendable, Hashable {
    /// The certificate (PEM).
    public let certFile: String
    /// Its private key (PEM, unencrypted).
    public let keyFile: String

    public init(certFile: String, keyFile: String) {
        self.certFile = certFile
        self.keyFile = keyFile
    }

    /// The certificate's notAfter in Unix seconds, as `openssl x509 -enddate` reads it — an
    /// independent reading to compare TLSConnection's against.
    public func notAfter() throws -> Double {
        let output = try Lab.run("openssl", ["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in", certFile])
        // "notAfter=2026-12-23 08:37:17Z"
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("notAfter=") }) else {
            throw LabError("no notAfter in openssl's output: \(output)")
        }
        let text = String(line.dropFirst("notAfter=".count))
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss'Z'"
        guard let date = formatter.date(from: text) else {
            throw LabError("cannot parse notAfter \(text)")
        }
        return date.timeIntervalSince1970
    }
}

/// Test certificates made with the `openssl` command at test time: a test CA and server
/// certificates signed by it, good and bad. All keys are EC P-256 (fast to make).
///
/// | pair         | issuer        | names (SAN)                                                | validity            |
/// |--------------|---------------|------------------------------------------------------------|---------------------|
/// | `good`       | the test CA   | DNS:registry.lab.test, DNS:localhost, IP:127.0.0.1, IP:::1 | now − 1 h … +30 d   |
/// | `expired`    | the test CA   | the same                                                   | now − 60 d … −30 d  |
/// | `wrongName`  | the test CA   | DNS:other.example                                          | now − 1 h … +30 d   |
/// | `selfSigned` | itself        | the same as `good`                                         | now − 1 h … +30 d   |
///
/// OpenSSL 3.0's `x509` command cannot set a notAfter in the past, so the expired certificate
/// is issued with `openssl ca -startdate/-enddate` from a minimal CA config. Every command runs
/// with `OPENSSL_CONF` pointing at the lab's own config, so the host's openssl.cnf plays no part.
///
/// Most tests use `LabCertificates.shared()`, made once per test process.
public struct LabCertificates: Sendable {
    /// The directory holding every file below.
    public let directory: String
    /// The test CA's certificate: what a client trusts (`TLSContext.client(caFile:)`).
    public let caFile: String
    /// The test CA's private key (to issue more certificates, or sign registry tokens).
    public let caKeyFile: String
    /// Signed by the CA, names the lab hosts, valid now.
    public let good: CertPair
    /// Signed by the CA, names the lab hosts, expired a month ago.
    public let expired: CertPair
    /// Signed by the CA, valid, but names only `other.example`.
    public let wrongName: CertPair
    /// Names the lab hosts, valid, signed by its own key (not by the CA).
    public let selfSigned: CertPair

    /// The host names and addresses `good`, `expired` and `selfSigned` are issued for.
    public static let labNames = ["DNS:registry.lab.test", "DNS:localhost", "IP:127.0.0.1", "IP:::1"]

    /// The certificates for this test process, made on first use in a temp directory — on a
    /// thread of its own, so the openssl runs never hold the cooperative pool's threads.
    public static func shared() async throws -> LabCertificates {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<LabCertificates, any Error>) in
            Thread { c.resume(with: sharedResult.mapError { $0 as any Error }) }.start()
        }
    }

    private static let sharedResult: Result<LabCertificates, LabError> = {
        do {
            return .success(try make(in: try Lab.rootDirectory() + "/certs"))
        } catch let error as LabError {
            return .failure(error)
        } catch {
            return .failure(LabError("\(error)"))
        }
    }()

    /// Makes a CA and the four server certificates in `dir` (created if missing).
    public static func make(in dir: String) throws -> LabCertificates {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let maker = Maker(directory: dir)
        try maker.writeConfigs()
        try maker.makeCA()
        let good = try maker.issue("good", commonName: "registry.lab.test", subjectAltNames: labNames)
        let wrongName = try maker.issue("wrong-name", commonName: "other.example", subjectAltNames: ["DNS:other.example"])
        let now = Date()
        let expired = try maker.issue("expired", commonName: "registry.lab.test", subjectAltNames: labNames,
                                      notBefore: now.addingTimeInterval(-60 * 86_400),
                                      notAfter: now.addingTimeInterval(-30 * 86_400))
        let selfSigned = try maker.selfSigned("self-signed", commonName: "registry.lab.test", subjectAltNames: labNames)
        return LabCertificates(directory: dir, caFile: maker.caFile, caKeyFile: maker.caKeyFile,
                               good: good, expired: expired, wrongName: wrongName, selfSigned: selfSigned)
    }

    /// Issues another certificate from this CA (valid now − 1 h … +`days`, or between the given
    /// dates), for names such as `["DNS:auth.lab.test", "IP:127.0.0.1"]`.
    public func issue(_ name: String, commonName: String, subjectAltNames: [String],
                      notBefore: Date? = nil, notAfter: Date? = nil) throws -> CertPair {
        // `openssl ca` rewrites its database files: one issue at a time per process.
        try Self.issuing.withLock { _ in
            let maker = Maker(directory: directory)
            return try maker.issue(name, commonName: commonName, subjectAltNames: subjectAltNames,
                                   notBefore: notBefore, notAfter: notAfter)
        }
    }

    private static let issuing = Mutex(())
}

/// Runs the openssl commands. Files are named after `directory`.
private struct Maker {
    let directory: String
    var caFile: String { directory + "/ca.pem" }
    var caKeyFile: String { directory + "/ca.key" }
    var requestConfig: String { directory + "/req.cnf" }
    var caConfig: String { directory + "/ca.cnf" }
    var environment: [String: String] { ["OPENSSL_CONF": requestConfig] }

    func writeConfigs() throws {
        // `req` needs a distinguished_name section even when -subj gives the name.
        let request = """
            [req]
            distinguished_name = dn
            prompt = no
            [dn]
            CN = placeholder
            [ca_ext]
            basicConstraints = critical, CA:TRUE
            keyUsage = critical, keyCertSign, cRLSign
            subjectKeyIdentifier = hash

            """
        try request.write(toFile: requestConfig, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: directory + "/ca-db", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: directory + "/ca-db/index.txt", contents: Data())
        // The smallest config `openssl ca` accepts: a database, where to put issued copies,
        // random serials, a policy that asks only for a CN, and no extensions copied from the
        // request (the extension file gives them).
        let ca = """
            [ca]
            default_ca = lab_ca
            [lab_ca]
            database = \(directory)/ca-db/index.txt
            new_certs_dir = \(directory)/ca-db
            certificate = \(caFile)
            private_key = \(caKeyFile)
            rand_serial = yes
            default_md = sha256
            policy = policy_any
            unique_subject = no
            copy_extensions = none
            [policy_any]
            commonName = supplied

            """
        try ca.write(toFile: caConfig, atomically: true, encoding: .utf8)
    }

    func openssl(_ arguments: [String]) throws {
        try Lab.run("openssl", arguments, environment: environment, currentDirectory: directory)
    }

    func newKey(_ path: String) throws {
        try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path])
    }

    func makeCA() throws {
        try newKey(caKeyFile)
        try openssl(["req", "-x509", "-new", "-key", caKeyFile, "-subj", "/CN=egress-monitor lab CA",
                     "-days", "3650", "-config", requestConfig, "-extensions", "ca_ext", "-out", caFile])
    }

    /// Writes the leaf extensions for `subjectAltNames` and returns the file's path.
    func leafExtensions(_ name: String, subjectAltNames: [String], authorityKeyID: Bool) throws -> String {
        let path = directory + "/\(name).ext"
        // The [req] and [dn] sections let `req -x509` use this file as its whole config.
        var text = """
            [req]
            distinguished_name = dn
            prompt = no
            [dn]
            CN = placeholder
            [leaf]
            basicConstraints = critical, CA:FALSE
            keyUsage = critical, digitalSignature
            extendedKeyUsage = serverAuth
            subjectKeyIdentifier = hash
            subjectAltName = \(subjectAltNames.joined(separator: ", "))

            """
        if authorityKeyID { text += "authorityKeyIdentifier = keyid\n" }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func issue(_ name: String, commonName: String, subjectAltNames: [String],
               notBefore: Date? = nil, notAfter: Date? = nil) throws -> CertPair {
        let pair = CertPair(certFile: directory + "/\(name).pem", keyFile: directory + "/\(name).key")
        let request = directory + "/\(name).csr"
        let extensions = try leafExtensions(name, subjectAltNames: subjectAltNames, authorityKeyID: true)
        try newKey(pair.keyFile)
        try openssl(["req", "-new", "-key", pair.keyFile, "-subj", "/CN=\(commonName)",
                     "-config", requestConfig, "-out", request])
        // `openssl ca` takes explicit dates; an hour of back-dating absorbs clock skew.
        let start = notBefore ?? Date().addingTimeInterval(-3600)
        let end = notAfter ?? Date().addingTimeInterval(30 * 86_400)
        try openssl(["ca", "-batch", "-notext", "-config", caConfig, "-in", request, "-out", pair.certFile,
                     "-startdate", Self.generalizedTime(start), "-enddate", Self.generalizedTime(end),
                     "-extfile", extensions, "-extensions", "leaf"])
        return pair
    }

    func selfSigned(_ name: String, commonName: String, subjectAltNames: [String]) throws -> CertPair {
        let pair = CertPair(certFile: directory + "/\(name).pem", keyFile: directory + "/\(name).key")
        let extensions = try leafExtensions(name, subjectAltNames: subjectAltNames, authorityKeyID: false)
        try newKey(pair.keyFile)
        try openssl(["req", "-x509", "-new", "-key", pair.keyFile, "-subj", "/CN=\(commonName)",
                     "-days", "30", "-config", extensions, "-extensions", "leaf", "-out", pair.certFile])
        return pair
    }

    /// "YYYYMMDDHHMMSSZ", the form `openssl ca -startdate/-enddate` takes.
    static func generalizedTime(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMddHHmmss'Z'"
        return formatter.string(from: date)
    }
}
