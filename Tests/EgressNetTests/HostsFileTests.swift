#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import EgressNet

@Suite("/etc/hosts")
struct HostsFileTests {
    static let text = """
        # /etc/hosts on a build host
        127.0.0.1\tlocalhost
        127.0.1.1\tbuild-7.corp.example build-7
        ::1     localhost ip6-localhost ip6-loopback   # IPv6 loopback
        ff02::1 ip6-allnodes

        # a pinned registry mirror, IPv6 listed first
        2001:db8::53   Mirror.Lab.Example mirror
        192.0.2.53     mirror.lab.example
        192.0.2.54     mirror.lab.example  MIRROR
        192.0.2.53     mirror.lab.example
        10.0.0.9#comment-glued registry.lab.example
        300.1.1.1      broken.example
        fe80::1%eth0   zoned.example
        10.0.0.10
        #10.0.0.11     commented.example
            10.0.0.12  indented.example
        not-an-address name.example
        10.0.0.13 crlf.example\r
        """

    @Test(arguments: [
        ("localhost", ["127.0.0.1", "::1"]),
        ("LOCALHOST.", ["127.0.0.1", "::1"]),
        ("ip6-loopback", ["::1"]),
        ("build-7", ["127.0.1.1"]),
        ("build-7.corp.example", ["127.0.1.1"]),
        ("mirror.lab.example", ["2001:db8::53", "192.0.2.53", "192.0.2.54"]),
        ("mirror", ["2001:db8::53", "192.0.2.54"]),
        ("registry.lab.example", []),
        ("broken.example", []),
        ("zoned.example", []),
        ("commented.example", []),
        ("indented.example", ["10.0.0.12"]),
        ("name.example", []),
        ("crlf.example", ["10.0.0.13"]),
        ("absent.example", []),
        ("", []),
    ])
    func looksUp(_ name: String, _ expected: [String]) {
        let hosts = HostsFile.parse(Self.text)
        #expect(hosts.addresses(for: name).map(\.description) == expected)
    }

    @Test func byFamily() {
        let hosts = HostsFile.parse(Self.text)
        #expect(hosts.addresses(for: "mirror.lab.example", type: .a).map(\.description) == ["192.0.2.53", "192.0.2.54"])
        #expect(hosts.addresses(for: "mirror.lab.example", type: .aaaa).map(\.description) == ["2001:db8::53"])
        #expect(hosts.addresses(for: "mirror.lab.example", type: .cname).isEmpty)
    }

    @Test func entriesKeepFileOrderAndSpelling() {
        let hosts = HostsFile.parse(Self.text)
        #expect(hosts.entries.count == 10)
        #expect(hosts.entries[4] == HostsFile.Entry(address: IPAddress("2001:db8::53")!,
                                                   names: ["Mirror.Lab.Example", "mirror"]))
    }

    @Test func loadsAFileAndToleratesAMissingOne() throws {
        let path = "/tmp/egressnet-hosts-\(getpid())"
        #expect(TestFiles.write("192.0.2.80 registry.lab.test\n", to: path))
        defer { unlink(path) }
        #expect(HostsFile.load(path: path).addresses(for: "registry.lab.test") == [.v4(192, 0, 2, 80)])
        #expect(HostsFile.load(path: "/nonexistent/hosts") == HostsFile())
    }
}
