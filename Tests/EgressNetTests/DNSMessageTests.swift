import Testing
@testable import EgressNet

// MARK: - Decoding the fixtures

/// What a valid fixture must decode to.
struct DecodedAnswer: Sendable, CustomTestStringConvertible {
    let fixture: String
    let bytes: [UInt8]
    let id: UInt16
    let rcode: DNSResponseCode
    let truncated: Bool
    let recursionAvailable: Bool
    let question: DNSQuestion
    let sectionSizes: [Int]          // answers, authorities, additionals
    let addresses: [String]          // addresses(for: question name, type: question type)
    let minimumTTL: UInt32?
    /// Whether re-encoding gives back exactly these bytes (true when the fixture was compressed
    /// the way this encoder compresses).
    let reencodesExactly: Bool

    var testDescription: String { fixture }
}

@Suite("DNS message decoding")
struct DNSMessageDecodeTests {
    static let registryA = DNSQuestion(name: "registry-1.docker.io", type: .a)
    static let registryAAAA = DNSQuestion(name: "registry-1.docker.io", type: .aaaa)

    static let answers: [DecodedAnswer] = [
        DecodedAnswer(fixture: "registryA", bytes: DNSWireFixtures.registryA, id: 0x1a2b, rcode: .noError,
                      truncated: false, recursionAvailable: true, question: registryA, sectionSizes: [3, 0, 0],
                      addresses: ["54.227.20.253", "3.94.224.37", "52.1.184.176"], minimumTTL: 60,
                      reencodesExactly: true),
        DecodedAnswer(fixture: "poisonedA", bytes: DNSWireFixtures.poisonedA, id: 0x0420, rcode: .noError,
                      truncated: false, recursionAvailable: true, question: registryA, sectionSizes: [1, 0, 0],
                      addresses: ["108.160.169.181"], minimumTTL: 10, reencodesExactly: true),
        DecodedAnswer(fixture: "poisonedAAAA", bytes: DNSWireFixtures.poisonedAAAA, id: 0x0421, rcode: .noError,
                      truncated: false, recursionAvailable: true, question: registryAAAA, sectionSizes: [1, 0, 1],
                      addresses: ["2a03:2880:f11b:83:face:b00c:0:25de"], minimumTTL: 10, reencodesExactly: true),
        DecodedAnswer(fixture: "cnameChain", bytes: DNSWireFixtures.cnameChain, id: 0xc0de, rcode: .noError,
                      truncated: false, recursionAvailable: true,
                      question: DNSQuestion(name: "registry.example.com", type: .a), sectionSizes: [4, 0, 0],
                      addresses: ["192.0.2.10", "192.0.2.11"], minimumTTL: 30, reencodesExactly: true),
        DecodedAnswer(fixture: "nxdomain", bytes: DNSWireFixtures.nxdomain, id: 0x5eed, rcode: .nxDomain,
                      truncated: false, recursionAvailable: true,
                      question: DNSQuestion(name: "nonexistent.docker.io", type: .a), sectionSizes: [0, 1, 0],
                      addresses: [], minimumTTL: nil, reencodesExactly: false),
        DecodedAnswer(fixture: "servfail", bytes: DNSWireFixtures.servfail, id: 0x0bad, rcode: .servFail,
                      truncated: false, recursionAvailable: true, question: registryA, sectionSizes: [0, 0, 0],
                      addresses: [], minimumTTL: nil, reencodesExactly: true),
        DecodedAnswer(fixture: "refused", bytes: DNSWireFixtures.refused, id: 0x0bae, rcode: .refused,
                      truncated: false, recursionAvailable: false, question: registryA, sectionSizes: [0, 0, 0],
                      addresses: [], minimumTTL: nil, reencodesExactly: true),
        DecodedAnswer(fixture: "truncated", bytes: DNSWireFixtures.truncated, id: 0x7c7c, rcode: .noError,
                      truncated: true, recursionAvailable: true, question: registryA, sectionSizes: [0, 0, 0],
                      addresses: [], minimumTTL: nil, reencodesExactly: true),
        DecodedAnswer(fixture: "noAddress", bytes: DNSWireFixtures.noAddress, id: 0x00aa, rcode: .noError,
                      truncated: false, recursionAvailable: true,
                      question: DNSQuestion(name: "auth.docker.io", type: .aaaa), sectionSizes: [0, 0, 0],
                      addresses: [], minimumTTL: nil, reencodesExactly: true),
        DecodedAnswer(fixture: "danglingCNAME", bytes: DNSWireFixtures.danglingCNAME, id: 0x00ab, rcode: .noError,
                      truncated: false, recursionAvailable: true,
                      question: DNSQuestion(name: "registry.example.com", type: .a), sectionSizes: [1, 0, 0],
                      addresses: [], minimumTTL: nil, reencodesExactly: true),
    ]

    @Test("decodes", arguments: answers)
    func decodes(_ expected: DecodedAnswer) throws {
        let message = try DNSMessage.decode(expected.bytes)
        #expect(message.header.id == expected.id)
        #expect(message.header.isResponse)
        #expect(message.header.opcode == 0)
        #expect(message.header.recursionDesired)
        #expect(message.responseCode == expected.rcode)
        #expect(message.isTruncated == expected.truncated)
        #expect(message.header.recursionAvailable == expected.recursionAvailable)
        #expect(message.questions == [expected.question])
        #expect([message.answers.count, message.authorities.count, message.additionals.count] == expected.sectionSizes)
        let type = try #require(DNSRecordType(rawValue: expected.question.type))
        #expect(message.addresses(for: expected.question.name, type: type).map(\.description) == expected.addresses)
        #expect(message.minimumTTL(for: expected.question.name, type: type) == expected.minimumTTL)
    }

    @Test("re-encodes to an equal message, and to the same bytes where compressed alike", arguments: answers)
    func roundTrips(_ expected: DecodedAnswer) throws {
        let message = try DNSMessage.decode(expected.bytes)
        let encoded = try message.encode()
        #expect(try DNSMessage.decode(encoded) == message)
        if expected.reencodesExactly { #expect(encoded == expected.bytes) }
    }

    @Test func registryAnswerRecords() throws {
        let message = try DNSMessage.decode(DNSWireFixtures.registryA)
        #expect(message.answers.map(\.description) == [
            "registry-1.docker.io. 60 IN A 54.227.20.253",
            "registry-1.docker.io. 60 IN A 3.94.224.37",
            "registry-1.docker.io. 60 IN A 52.1.184.176",
        ])
        #expect(message.header.answerCount == 3)
        #expect(message.addresses(for: "registry-1.docker.io", type: .aaaa).isEmpty)
    }

    /// The answer public reports show from resolvers in mainland China decodes as what it is:
    /// a plausible public address with a short TTL. Classification alone cannot call it
    /// poisoned; comparing resolvers can.
    @Test func poisonedAnswersDecodeFaithfully() throws {
        let a = try DNSMessage.decode(DNSWireFixtures.poisonedA)
        #expect(a.answers == [DNSRecord(name: "registry-1.docker.io", type: 1, ttl: 10,
                                        data: .address(.v4(108, 160, 169, 181)))])
        #expect(a.addresses(for: "registry-1.docker.io", type: .a) == [IPAddress("108.160.169.181")!])
        #expect(!IPAddress("108.160.169.181")!.isBogonForPublicHost)

        let aaaa = try DNSMessage.decode(DNSWireFixtures.poisonedAAAA)
        #expect(aaaa.answers.first?.ttl == 10)
        #expect(aaaa.addresses(for: "registry-1.docker.io", type: .aaaa)
                == [IPAddress("2a03:2880:f11b:83:face:b00c:0:25de")!])
        #expect(aaaa.ednsUDPSize == 1232)
        #expect(aaaa.additionals == [DNSMessage.optRecord(udpSize: 1232)])
    }

    @Test func cnameChainIsFollowed() throws {
        let message = try DNSMessage.decode(DNSWireFixtures.cnameChain)
        #expect(message.cnameChain(for: "registry.example.com") == ["edge.example.com", "lb.example.net"])
        #expect(message.answers[0].data == .name("edge.example.com"))
        // Any name on the chain answers; DNS 0x20 case and a trailing dot do not matter.
        for name in ["registry.example.com", "REGISTRY.Example.CoM.", "edge.example.com", "lb.example.net"] {
            #expect(message.addresses(for: name, type: .a).map(\.description) == ["192.0.2.10", "192.0.2.11"],
                    "\(name)")
        }
        #expect(message.addresses(for: "other.example.com", type: .a).isEmpty)
        #expect(message.addresses(for: "registry.example.com", type: .aaaa).isEmpty)
        #expect(message.minimumTTL(for: "edge.example.com", type: .a) == 30)
    }

    @Test func nxdomainCarriesTheZoneSOA() throws {
        let message = try DNSMessage.decode(DNSWireFixtures.nxdomain)
        let soa = try #require(message.authorities.first?.soa)
        #expect(message.authorities.first?.name == "docker.io")
        #expect(soa == DNSSOA(primaryServer: "ns1.docker.io", responsibleMailbox: "hostmaster.docker.io",
                              serial: 2_024_010_101, refresh: 7200, retry: 900, expire: 1_209_600, minimum: 300))
        // Stored decompressed: 15 + 22 name bytes and five 32-bit fields, standing alone.
        guard case .other(let rdata) = message.authorities[0].data else {
            Issue.record("SOA rdata should be kept as bytes")
            return
        }
        #expect(rdata.count == 15 + 22 + 20)
        #expect(message.authorities[0].description
                == "docker.io. 900 IN SOA \\# 57 036e733106646f636b657202696f000a686f73746d617374657206646f636b657202696f0078a3f17500001c2000000384001275000000012c")
    }

    @Test func truncatedHeaderCanBeReadWhenTheRestIsCut() throws {
        #expect(throws: DNSError.truncatedMessage) { try DNSMessage.decode(DNSWireFixtures.truncatedCut) }
        let header = try DNSHeader.decode(DNSWireFixtures.truncatedCut)
        #expect(header.id == 0x7c7d)
        #expect(header.truncated)
        #expect(header.answerCount == 2)
        #expect(header.responseCode == .noError)
    }

    @Test func dnsCaseIsKeptForZeroX20Checks() throws {
        let query = DNSMessage.query(id: 7, name: "ReGiStRy-1.DoCkEr.Io", type: .a)
        let reply = DNSMessage.response(to: query, answers: [.address("ReGiStRy-1.DoCkEr.Io", .v4(1, 2, 3, 4))])
        let decoded = try DNSMessage.decode(try reply.encode())
        #expect(decoded.questions.first?.name == "ReGiStRy-1.DoCkEr.Io")
        #expect(decoded.addresses(for: "registry-1.docker.io", type: .a) == [.v4(1, 2, 3, 4)])
        #expect(decoded.isResponse(to: query))

        // A reply that lost the case, or the id, or is itself a query, is not the reply.
        var lowercased = decoded
        lowercased.questions[0].name = "registry-1.docker.io"
        #expect(!lowercased.isResponse(to: query))
        var otherID = decoded
        otherID.header.id = 8
        #expect(!otherID.isResponse(to: query))
        #expect(!query.isResponse(to: query))
    }
}

// MARK: - Hostile input

struct MalformedMessage: Sendable, CustomTestStringConvertible {
    let fixture: String
    let bytes: [UInt8]
    let error: DNSError
    var testDescription: String { "\(fixture): \(error)" }
}

@Suite("DNS message decoding, hostile input")
struct DNSMessageHostileTests {
    /// Five 63-byte labels: 321 bytes of name.
    static let nameTooLong: [UInt8] = {
        var bytes: [UInt8] = [0x10, 0x0a, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]  // QD 1
        for letter in UInt8(ascii: "a")...UInt8(ascii: "e") {
            bytes.append(63)
            bytes += [UInt8](repeating: letter, count: 63)
        }
        return bytes + [0, 0, 1, 0, 1]  // root, A, IN
    }()

    static let malformed: [MalformedMessage] = [
        MalformedMessage(fixture: "compressionLoop", bytes: DNSWireFixtures.compressionLoop, error: .compressionLoop),
        MalformedMessage(fixture: "pointerForward", bytes: DNSWireFixtures.pointerForward, error: .badPointer),
        MalformedMessage(fixture: "pointerOutside", bytes: DNSWireFixtures.pointerOutside, error: .badPointer),
        MalformedMessage(fixture: "rdataPastEnd", bytes: DNSWireFixtures.rdataPastEnd, error: .truncatedMessage),
        MalformedMessage(fixture: "aFiveBytes", bytes: DNSWireFixtures.aFiveBytes, error: .badRecordLength(type: 1)),
        MalformedMessage(fixture: "aaaaFourBytes", bytes: DNSWireFixtures.aaaaFourBytes,
                         error: .badRecordLength(type: 28)),
        MalformedMessage(fixture: "countsTooLarge", bytes: DNSWireFixtures.countsTooLarge, error: .countsExceedMessage),
        MalformedMessage(fixture: "extendedLabel", bytes: DNSWireFixtures.extendedLabel, error: .badLabelType(0x40)),
        MalformedMessage(fixture: "cnameOverrun", bytes: DNSWireFixtures.cnameOverrun, error: .badRecordLength(type: 5)),
        MalformedMessage(fixture: "truncatedCut", bytes: DNSWireFixtures.truncatedCut, error: .truncatedMessage),
        MalformedMessage(fixture: "headerOnly", bytes: DNSWireFixtures.headerOnly, error: .truncatedMessage),
        MalformedMessage(fixture: "empty", bytes: [], error: .truncatedMessage),
        MalformedMessage(fixture: "nameTooLong", bytes: nameTooLong, error: .nameTooLong),
        MalformedMessage(fixture: "registryA cut in the question", bytes: Array(DNSWireFixtures.registryA.prefix(20)),
                         error: .countsExceedMessage),
        MalformedMessage(fixture: "registryA cut in the last rdata", bytes: Array(DNSWireFixtures.registryA.dropLast(1)),
                         error: .truncatedMessage),
        MalformedMessage(fixture: "pointer cut in half",
                         bytes: Array(DNSWireFixtures.poisonedA.prefix(39)),
                         error: .truncatedMessage),
    ]

    @Test("is refused", arguments: malformed)
    func refuses(_ m: MalformedMessage) {
        #expect(throws: m.error) { try DNSMessage.decode(m.bytes) }
    }

    @Test func errorsReadWell() {
        #expect(DNSError.badRecordLength(type: 1).description == "DNS A record has rdata of the wrong length")
        #expect(DNSError.badRecordLength(type: 65).description == "DNS TYPE65 record has rdata of the wrong length")
        #expect(DNSError.invalidName("a..b").description == "not a valid DNS name: \"a..b\"")
    }

    /// A message whose record owner is a pointer to a pointer to a pointer ..., each strictly
    /// backwards: legal step by step, stopped by the hop limit.
    static func pointerChain(hops: Int) -> [UInt8] {
        // Header: QD 1, AN 2. Question: root name, A IN (@12...16).
        var bytes: [UInt8] = [0, 1, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 1, 0, 1]
        // Answer 1: root owner, TYPE65280, rdata = the chain: @p0 points to @12, each next one
        // to the previous.
        let chainLength = hops * 2
        bytes += [0, 0xff, 0x00, 0, 1, 0, 0, 0, 0, UInt8(chainLength >> 8), UInt8(chainLength & 0xff)]
        var previous = 12
        for _ in 0..<hops {
            let here = bytes.count
            bytes += [0xc0 | UInt8(previous >> 8), UInt8(previous & 0xff)]
            previous = here
        }
        // Answer 2: owner = pointer to the last link, A IN 1.2.3.4.
        bytes += [0xc0 | UInt8(previous >> 8), UInt8(previous & 0xff), 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4]
        return bytes
    }

    @Test func pointerChainsAreBounded() throws {
        let fine = try DNSMessage.decode(Self.pointerChain(hops: DNSName.maxPointerHops - 1))
        #expect(fine.answers.last?.name == ".")
        #expect(throws: DNSError.compressionLoop) {
            try DNSMessage.decode(Self.pointerChain(hops: DNSName.maxPointerHops))
        }
        #expect(throws: DNSError.compressionLoop) { try DNSMessage.decode(Self.pointerChain(hops: 4000)) }
    }

    /// A 64 KiB message of 5,000 records, each owned by a pointer to a 255-byte name of 127
    /// labels: the most name work a message can ask for. It decodes, and in linear time.
    @Test(.timeLimit(.minutes(1)))
    func largestNameWorkloadDecodes() throws {
        var bytes: [UInt8] = [0, 2, 0x81, 0x80, 0, 1, 0x13, 0x88, 0, 0, 0, 0]   // QD 1, AN 5000
        bytes += (0..<127).flatMap { _ in [1, 0x61] } + [0, 0, 1, 0, 1]     // a.a.a....a A IN
        for _ in 0..<5000 { bytes += [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1] }
        let message = try DNSMessage.decode(bytes)
        #expect(message.answers.count == 5000)
        #expect(message.questions.first?.name.count == 253)
        #expect(message.addresses(for: message.questions[0].name, type: .a).count == 5000)
    }

    /// Every fixture, mutated a few thousand ways: decode never traps, and whatever it accepts
    /// re-encodes to a message that decodes equal.
    @Test(arguments: [
        ("registryA", DNSWireFixtures.registryA), ("poisonedAAAA", DNSWireFixtures.poisonedAAAA),
        ("cnameChain", DNSWireFixtures.cnameChain), ("nxdomain", DNSWireFixtures.nxdomain),
        ("digQuery", DNSWireFixtures.digQuery), ("compressionLoop", DNSWireFixtures.compressionLoop),
    ])
    func mutatedMessagesNeverTrap(_ fixture: String, _ original: [UInt8]) throws {
        var random = TestRandom(seed: UInt64(original.count) &* 0x9e37_79b9)
        var accepted = 0
        for _ in 0..<3000 {
            var bytes = original
            for _ in 0...random.next(upTo: 3) {
                switch random.next(upTo: 5) {
                case 0: bytes[random.next(upTo: bytes.count)] = UInt8(truncatingIfNeeded: random.next())
                case 1: bytes[random.next(upTo: bytes.count)] ^= 1 << UInt8(random.next(upTo: 8))
                case 2: bytes[random.next(upTo: bytes.count)] = [0xc0, 0x00, 0x3f, 0x40, 0xff][random.next(upTo: 5)]
                case 3: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: random.next(upTo: bytes.count + 1))
                default: bytes = Array(bytes.prefix(random.next(upTo: bytes.count + 1)))
                }
                if bytes.isEmpty { bytes = [0] }
            }
            guard let message = try? DNSMessage.decode(bytes) else { continue }
            accepted += 1
            let again = try DNSMessage.decode(try message.encode())
            #expect(again == message, "\(fixture) mutated to \(bytes)")
        }
        #expect(accepted > 0)
    }

    @Test func randomBytesNeverTrap() {
        var random = TestRandom(seed: 20_240_101)
        for _ in 0..<20_000 {
            let count = random.next(upTo: 96)
            var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if bytes.count >= 12 {  // plausible counts make the decoder go deeper
                bytes[4] = 0; bytes[5] = UInt8(random.next(upTo: 3))
                bytes[6] = 0; bytes[7] = UInt8(random.next(upTo: 4))
                bytes[8] = 0; bytes[10] = 0
            }
            _ = try? DNSMessage.decode(bytes)
            _ = try? DNSHeader.decode(bytes)
        }
    }
}

// MARK: - Encoding

@Suite("DNS message encoding")
struct DNSMessageEncodeTests {
    @Test func queryMatchesWhatDigSends() throws {
        let query = DNSMessage.query(id: 0xb9f4, name: "registry-1.docker.io", type: .a)
        #expect(try query.encode() == DNSWireFixtures.digQuery)
        let fullyQualified = DNSMessage.query(id: 0xb9f4, name: "registry-1.docker.io.", type: .a)
        #expect(try fullyQualified.encode() == DNSWireFixtures.digQuery)
        #expect(try DNSMessage.decode(DNSWireFixtures.digQuery) == query)
    }

    @Test func queryWithoutEDNS() throws {
        let query = DNSMessage.query(id: 1, name: "auth.docker.io", type: .aaaa, recursionDesired: false, ednsUDPSize: nil)
        let bytes = try query.encode()
        #expect(Array(bytes.prefix(12)) == [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        #expect(bytes.count == 12 + 16 + 4)
        #expect(Array(bytes.suffix(4)) == [0, 28, 0, 1])
        #expect(query.ednsUDPSize == nil)
    }

    @Test func tcpFrameHasALengthPrefix() throws {
        let query = DNSMessage.query(id: 0xb9f4, name: "registry-1.docker.io", type: .a)
        #expect(try query.encodeForTCP() == [0, UInt8(DNSWireFixtures.digQuery.count)] + DNSWireFixtures.digQuery)
    }

    @Test func responseEchoesTheQuery() throws {
        var query = DNSMessage.query(id: 0x4242, name: "Registry-1.Docker.IO", type: .a)
        query.header.checkingDisabled = true
        let response = DNSMessage.response(
            to: query, rcode: .noError,
            answers: [.cname("Registry-1.Docker.IO", target: "cdn.example.net", ttl: 20),
                      .address("cdn.example.net", .v4(198, 51, 100, 7), ttl: 40)],
            truncated: true)
        let decoded = try DNSMessage.decode(try response.encode())
        #expect(decoded == response)
        let h = decoded.header
        #expect(h.id == 0x4242 && h.isResponse && h.truncated && h.recursionDesired && h.recursionAvailable)
        #expect(h.checkingDisabled && !h.authoritative)
        #expect(decoded.questions == query.questions)
        #expect(decoded.ednsUDPSize == 1232)
        #expect(decoded.addresses(for: "registry-1.docker.io", type: .a) == [.v4(198, 51, 100, 7)])
        #expect(decoded.minimumTTL(for: "registry-1.docker.io", type: .a) == 20)

        let refused = DNSMessage.response(to: DNSMessage.query(id: 9, name: "x.test", type: .a, ednsUDPSize: nil),
                                          rcode: .refused, recursionAvailable: false)
        let refusedBack = try DNSMessage.decode(try refused.encode())
        #expect(refusedBack.responseCode == .refused && refusedBack.additionals.isEmpty)
    }

    /// Messages built in code survive the wire unchanged.
    @Test(arguments: [
        DNSMessage(header: DNSHeader(id: 1, isResponse: true, opcode: 2, authoritative: true, recursionDesired: true,
                                     recursionAvailable: true, authenticData: true, responseCode: .nxDomain)),
        DNSMessage.query(id: 2, name: ".", type: .ns),
        DNSMessage.query(id: 3, name: "a\\.b.example", type: .txt),
        DNSMessage.query(id: 4, name: "\\000\\255\\032x.example", type: .a),
        DNSMessage(header: DNSHeader(id: 5, isResponse: true, responseCode: DNSResponseCode(rawValue: 11)),
                   questions: [DNSQuestion(name: "_http._tcp.example", type: 33, class: 3)],
                   answers: [
                       DNSRecord(name: "_http._tcp.example", type: 33, class: 3, ttl: 1, data: .other([0, 1, 0, 2, 0, 80, 0])),
                       DNSRecord(name: "example", type: 65, ttl: 0xffff_ffff, data: .other([1, 2, 3])),
                       DNSRecord(name: "example", type: 16, ttl: 5, data: .other([5, 0x68, 0x65, 0x6c, 0x6c, 0x6f])),
                       DNSRecord(name: "1.0.0.127.in-addr.arpa", type: 12, ttl: 5, data: .name("localhost")),
                       .address("v6.example", IPAddress("::ffff:1.2.3.4")!),
                   ],
                   authorities: [DNSRecord(name: "example", type: 2, ttl: 60, data: .name("NS1.Example"))],
                   additionals: [DNSRecord(name: "ns1.example", type: 15, ttl: 60,
                                           data: .other([0, 10, 2, 0x6d, 0x78, 7] + Array("example".utf8) + [0]))]),
    ])
    func builtMessagesRoundTrip(_ message: DNSMessage) throws {
        #expect(try DNSMessage.decode(try message.encode()) == message)
    }

    @Test func compressionPointsAtEarlierNames() throws {
        let response = DNSMessage.response(
            to: DNSMessage.query(id: 1, name: "registry.example.com", type: .a, ednsUDPSize: nil),
            answers: [.cname("registry.example.com", target: "edge.example.com"),
                      .address("edge.example.com", .v4(192, 0, 2, 1))])
        let bytes = try response.encode()
        // question 12...37; answer 1 owner is a pointer to 12, its rdata "edge" + pointer to 21
        #expect(Array(bytes[38...39]) == [0xc0, 0x0c])
        #expect(Array(bytes[50...56]) == [4, 0x65, 0x64, 0x67, 0x65, 0xc0, 21])
        #expect(Array(bytes[57...58]) == [0xc0, 50])
    }

    @Test func headerCountsFollowTheSections() {
        var message = DNSMessage.query(id: 1, name: "a.test", type: .a)
        message.header.answerCount = 99  // ignored
        #expect(message.header.answerCount == 0)
        message.answers.append(.address("a.test", .v4(1, 1, 1, 1)))
        #expect(message.header.answerCount == 1)
        #expect(message.header.additionalCount == 1)
    }

    struct BadRecord: Sendable, CustomTestStringConvertible {
        let label: String
        let record: DNSRecord
        let error: DNSError
        var testDescription: String { label }
    }

    @Test(arguments: [
        BadRecord(label: "IPv6 in A", record: DNSRecord(name: "a.test", type: 1, ttl: 1, data: .address(.loopbackIPv6)),
                  error: .rdataMismatch(type: 1)),
        BadRecord(label: "IPv4 in AAAA", record: DNSRecord(name: "a.test", type: 28, ttl: 1, data: .address(.loopbackIPv4)),
                  error: .rdataMismatch(type: 28)),
        BadRecord(label: "address in TXT", record: DNSRecord(name: "a.test", type: 16, ttl: 1, data: .address(.loopbackIPv4)),
                  error: .rdataMismatch(type: 16)),
        BadRecord(label: "bad owner", record: .address("a..test", .loopbackIPv4), error: .invalidName("a..test")),
        BadRecord(label: "bad CNAME target", record: .cname("a.test", target: ""), error: .invalidName("")),
        BadRecord(label: "huge rdata", record: DNSRecord(name: "a.test", type: 16, ttl: 1, data: .other([UInt8](repeating: 0, count: 65536))),
                  error: .rdataTooLong(type: 16)),
    ])
    func badRecordsAreRefused(_ bad: BadRecord) {
        let message = DNSMessage(answers: [bad.record])
        #expect(throws: bad.error) { try message.encode() }
    }
}

// MARK: - Names

struct NameCase: Sendable, CustomTestStringConvertible {
    let text: String
    let result: Result<[String], DNSError>   // labels as UTF-8 text, or the error
    let canonical: String?

    init(_ text: String, _ labels: [String], _ canonical: String? = nil) {
        self.text = text
        self.result = .success(labels)
        self.canonical = canonical ?? text
    }

    init(_ text: String, error: DNSError) {
        self.text = text
        self.result = .failure(error)
        self.canonical = nil
    }

    var testDescription: String { "\"\(text)\"" }
}

@Suite("DNS names")
struct DNSNameTests {
    static let label63 = String(repeating: "x", count: 63)
    /// 3 × 64 + 62 + 1 = 255 bytes in wire form: the longest name.
    static let longest = [label63, label63, label63, String(repeating: "y", count: 61)].joined(separator: ".")

    static let cases: [NameCase] = [
        NameCase("example.com", ["example", "com"]),
        NameCase("example.com.", ["example", "com"], "example.com"),
        NameCase("Registry-1.Docker.IO", ["Registry-1", "Docker", "IO"]),
        NameCase(".", [], "."),
        NameCase("a\\.b.c", ["a.b", "c"]),
        NameCase("back\\\\slash", ["back\\slash"]),
        NameCase("\\065bc", ["Abc"], "Abc"),
        NameCase("\\Abc", ["Abc"], "Abc"),
        NameCase("a b", ["a b"], "a\\032b"),
        NameCase("tab\\009", ["tab\t"]),
        NameCase("_http._tcp.example", ["_http", "_tcp", "example"]),
        NameCase(label63 + ".com", [label63, "com"]),
        NameCase(longest, longest.split(separator: ".").map(String.init)),
        NameCase("", error: .invalidName("")),
        NameCase("..", error: .invalidName("..")),
        NameCase("a..b", error: .invalidName("a..b")),
        NameCase(".a", error: .invalidName(".a")),
        NameCase("a.b..", error: .invalidName("a.b..")),
        NameCase("\\256", error: .invalidName("\\256")),
        NameCase("\\12", error: .invalidName("\\12")),
        NameCase("a\\", error: .invalidName("a\\")),
        NameCase(label63 + "x.com", error: .labelTooLong(label63 + "x.com")),
        NameCase(longest + "y", error: .nameTooLong),
        NameCase("y." + longest, error: .nameTooLong),
    ]

    @Test(arguments: cases)
    func parses(_ c: NameCase) throws {
        switch c.result {
        case .success(let labels):
            let name = try? DNSName(c.text)
            #expect(name?.labels == labels.map { Array($0.utf8) })
            #expect(name?.description == c.canonical)
            if let name { #expect(try DNSName(name.description) == name) }
        case .failure(let error):
            #expect(throws: error) { try DNSName(c.text) }
            #expect(throws: error) { try DNSMessage.query(id: 1, name: c.text, type: .a).encode() }
        }
    }

    @Test func lowercasedIsASCIIOnly() throws {
        let name = try DNSName("ReGiStRy-1.Docker.IO")
        #expect(name.lowercased() == (try DNSName("registry-1.docker.io")))
        #expect(name != (try DNSName("registry-1.docker.io")))
        #expect(try DNSName("\\200A").lowercased().labels == [[200, 0x61]])
    }

    @Test func labelsAreValidated() {
        #expect(throws: DNSError.invalidName("a.")) { try DNSName(labels: [[0x61], []]) }
        #expect(throws: DNSError.labelTooLong(String(repeating: "z", count: 64))) {
            try DNSName(labels: [[UInt8](repeating: 0x7a, count: 64)])
        }
        #expect(throws: DNSError.nameTooLong) { try DNSName(labels: Array(repeating: [0x61], count: 128)) }
        #expect((try? DNSName(labels: Array(repeating: [0x61], count: 127)))?.wireLength == 255)
    }
}

// MARK: - addresses(for:type:)

@Suite("Answer selection")
struct DNSAnswerSelectionTests {
    @Test func recordsForOtherNamesAreIgnored() {
        var message = DNSMessage.query(id: 1, name: "registry-1.docker.io", type: .a)
        message.answers = [
            .address("evil.example", .v4(6, 6, 6, 6)),
            .address("registry-1.docker.io", .v4(1, 2, 3, 4)),
            .address("registry-1.docker.io", .loopbackIPv6),          // wrong family for A
            DNSRecord(name: "registry-1.docker.io", type: 1, class: 3, ttl: 1, data: .address(.v4(9, 9, 9, 9))),  // CH
        ]
        #expect(message.addresses(for: "registry-1.docker.io", type: .a) == [.v4(1, 2, 3, 4)])
        #expect(message.addresses(for: "registry-1.docker.io", type: .cname).isEmpty)
        #expect(message.addresses(for: "not a..name", type: .a).isEmpty)
    }

    @Test func cnameLoopsEnd() {
        let message = DNSMessage(answers: [
            .cname("a.test", target: "b.test", ttl: 5),
            .cname("B.test", target: "a.test", ttl: 6),
            .cname("a.test", target: "c.test", ttl: 7),             // a second CNAME for a.test: ignored
            .address("c.test", .v4(3, 3, 3, 3)),
            .address("b.test", .v4(2, 2, 2, 2)),
        ])
        #expect(message.cnameChain(for: "a.test") == ["b.test"])
        #expect(message.addresses(for: "a.test", type: .a) == [.v4(2, 2, 2, 2)])
        #expect(message.minimumTTL(for: "a.test", type: .a) == 5)
        #expect(message.addresses(for: "c.test", type: .a) == [.v4(3, 3, 3, 3)])
    }

    @Test func longChainsAreFollowed() {
        let names = (0...40).map { "n\($0).test" }
        var answers = (0..<40).map { DNSRecord.cname(names[$0], target: names[$0 + 1], ttl: UInt32(100 + $0)) }
        var random = TestRandom(seed: 41)
        answers.shuffle(using: &random)
        answers.append(.address(names[40], IPAddress("2001:db8::40")!, ttl: 200))
        let message = DNSMessage(answers: answers)
        #expect(message.addresses(for: "n0.test", type: .aaaa) == [IPAddress("2001:db8::40")!])
        #expect(message.cnameChain(for: "n0.test") == Array(names.dropFirst()))
        #expect(message.minimumTTL(for: "n0.test", type: .aaaa) == 100)
    }
}

// MARK: - Response codes and types

@Test(arguments: [(0, "NOERROR"), (1, "FORMERR"), (2, "SERVFAIL"), (3, "NXDOMAIN"), (4, "NOTIMP"), (5, "REFUSED"),
                  (9, "NOTAUTH"), (15, "RCODE15")])
func responseCodeNames(_ raw: UInt8, _ name: String) {
    #expect(DNSResponseCode(rawValue: raw).description == name)
}

@Test func recordTypeNames() {
    #expect(DNSRecordType.allCases.map(\.description) == ["A", "NS", "CNAME", "SOA", "PTR", "MX", "TXT", "AAAA", "SRV", "OPT"])
    #expect(DNSRecordType.name(of: 65) == "TYPE65")
}
