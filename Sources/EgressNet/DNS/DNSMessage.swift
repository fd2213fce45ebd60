// The DNS message codec (RFC 1035 section 4, RFC 3597, RFC 6891 OPT): values, an encoder that
// validates names and compresses them, and a decoder that faces hostile input.
//
// The decoder is written for answers that may be poisoned, injected or garbage: it never traps,
// never reads out of bounds, refuses counts the message cannot hold before it allocates, follows
// compression pointers only strictly backwards and at most `DNSName.maxPointerHops` times, and
// stops every name at 255 bytes. Its work is linear in the message size (each name costs at most
// 255 label bytes and a bounded number of pointer hops).

/// Record types known by name. Records keep the raw `UInt16` type, so unknown types pass
/// through decode and encode untouched.
public enum DNSRecordType: UInt16, Sendable, CaseIterable, CustomStringConvertible {
    case a = 1, ns = 2, cname = 5, soa = 6, ptr = 12, mx = 15, txt = 16, aaaa = 28, srv = 33, opt = 41

    public var description: String {
        switch self {
        case .a: return "A"
        case .ns: return "NS"
        case .cname: return "CNAME"
        case .soa: return "SOA"
        case .ptr: return "PTR"
        case .mx: return "MX"
        case .txt: return "TXT"
        case .aaaa: return "AAAA"
        case .srv: return "SRV"
        case .opt: return "OPT"
        }
    }

    /// `"A"` for 1, `"TYPE65"` (RFC 3597) for a type without a name here.
    public static func name(of type: UInt16) -> String {
        DNSRecordType(rawValue: type)?.description ?? "TYPE\(type)"
    }
}

/// Record classes. Everything on the Internet is `IN`; OPT records reuse the class field for
/// the sender's UDP payload size.
public enum DNSClass: UInt16, Sendable {
    case internet = 1, chaos = 3, any = 255
}

/// The 4-bit RCODE of the header. Unknown codes keep their raw value.
public struct DNSResponseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let noError = DNSResponseCode(rawValue: 0)
    public static let formErr = DNSResponseCode(rawValue: 1)
    public static let servFail = DNSResponseCode(rawValue: 2)
    public static let nxDomain = DNSResponseCode(rawValue: 3)
    public static let notImp = DNSResponseCode(rawValue: 4)
    public static let refused = DNSResponseCode(rawValue: 5)

    /// The mnemonic dig prints: `NOERROR`, `NXDOMAIN`, ... or `RCODE11`.
    public var description: String {
        switch rawValue {
        case 0: return "NOERROR"
        case 1: return "FORMERR"
        case 2: return "SERVFAIL"
        case 3: return "NXDOMAIN"
        case 4: return "NOTIMP"
        case 5: return "REFUSED"
        case 6: return "YXDOMAIN"
        case 7: return "YXRRSET"
        case 8: return "NXRRSET"
        case 9: return "NOTAUTH"
        case 10: return "NOTZONE"
        default: return "RCODE\(rawValue)"
        }
    }
}

/// Why a message could not be decoded or encoded.
public enum DNSError: Error, Sendable, Equatable, CustomStringConvertible {
    // Decoding.
    /// The message ends inside something it announces: the header, a name, a record, its rdata.
    case truncatedMessage
    /// The header counts more questions and records than the message's bytes could hold.
    case countsExceedMessage
    /// A label length byte with the type bits `01` or `10` (extended or reserved label types).
    case badLabelType(UInt8)
    /// A compression pointer that points forward, at itself, or past the message.
    case badPointer
    /// Compression pointers that revisit the name they are in, or hop too often.
    case compressionLoop
    /// A name longer than 255 bytes in wire form.
    case nameTooLong
    /// Rdata whose length does not fit its type: A not 4 bytes, AAAA not 16, a name that does
    /// not end exactly at the end of the rdata.
    case badRecordLength(type: UInt16)
    // Encoding.
    /// Text that is not a domain name: empty, an empty label (`a..b`), a bad `\` escape.
    case invalidName(String)
    /// A label longer than 63 bytes.
    case labelTooLong(String)
    /// Record data that does not fit the record type: an IPv6 address in an A record, an
    /// address in anything but A or AAAA.
    case rdataMismatch(type: UInt16)
    /// Rdata longer than 65535 bytes.
    case rdataTooLong(type: UInt16)
    /// A section with more than 65535 entries.
    case tooManyEntries
    /// A message longer than 65535 bytes cannot be framed for TCP.
    case messageTooLong(Int)

    public var description: String {
        switch self {
        case .truncatedMessage: return "DNS message truncated"
        case .countsExceedMessage: return "DNS header counts more records than the message holds"
        case .badLabelType(let bits): return "DNS name has a label of unsupported type 0x\(String(bits, radix: 16))"
        case .badPointer: return "DNS name compression pointer does not point backwards"
        case .compressionLoop: return "DNS name compression pointers loop"
        case .nameTooLong: return "DNS name longer than 255 bytes"
        case .badRecordLength(let type): return "DNS \(DNSRecordType.name(of: type)) record has rdata of the wrong length"
        case .invalidName(let text): return "not a valid DNS name: \"\(text)\""
        case .labelTooLong(let text): return "DNS name has a label longer than 63 bytes: \"\(text)\""
        case .rdataMismatch(let type): return "record data does not fit a \(DNSRecordType.name(of: type)) record"
        case .rdataTooLong(let type): return "\(DNSRecordType.name(of: type)) record data longer than 65535 bytes"
        case .tooManyEntries: return "DNS message section with more than 65535 entries"
        case .messageTooLong(let n): return "DNS message of \(n) bytes is too long for TCP framing"
        }
    }
}

// MARK: - Names

/// A domain name as its labels of raw bytes, without the root label.
///
/// Text form is the master-file presentation format dig prints: labels joined by `.`, a `.` or
/// `\` inside a label escaped as `\.` or `\\`, bytes outside printable ASCII (and space) as
/// `\DDD` in decimal. ``description`` prints no trailing dot (`example.com`) and `.` for the
/// root; the parser takes a name with or without its trailing dot. Non-ASCII text is taken as
/// its UTF-8 bytes (no IDNA: give `xn--` names).
///
/// `==` compares the bytes exactly, which is what a DNS 0x20 check needs; compare
/// ``lowercased()`` values for DNS's case-insensitive equality.
public struct DNSName: Hashable, Sendable, CustomStringConvertible {
    /// The labels, each 1...63 bytes; empty for the root.
    public let labels: [[UInt8]]

    /// The root name `.`.
    public static let root = DNSName(validatedLabels: [])

    /// How many compression pointers one name may follow. A real encoder needs at most one per
    /// label (127 in a 255-byte name); more means a hostile pointer chain.
    public static let maxPointerHops = 128

    /// Parses presentation text: `"example.com"`, `"example.com."`, `"."`, `"a\.b.example"`.
    public init(_ text: String) throws(DNSError) {
        let utf8 = Array(text.utf8)
        if utf8 == [UInt8(ascii: ".")] { self = .root; return }
        guard !utf8.isEmpty else { throw DNSError.invalidName(text) }
        var labels: [[UInt8]] = []
        var current: [UInt8] = []
        var i = 0
        while i < utf8.count {
            let c = utf8[i]
            if c == UInt8(ascii: ".") {
                guard !current.isEmpty else { throw DNSError.invalidName(text) }
                labels.append(current)
                current = []
                i += 1
                continue
            }
            if c == UInt8(ascii: "\\") {
                guard i + 1 < utf8.count else { throw DNSError.invalidName(text) }
                let next = utf8[i + 1]
                if DNSName.isDigit(next) {
                    guard i + 3 < utf8.count, DNSName.isDigit(utf8[i + 2]), DNSName.isDigit(utf8[i + 3])
                    else { throw DNSError.invalidName(text) }
                    let value = Int(next - 48) * 100 + Int(utf8[i + 2] - 48) * 10 + Int(utf8[i + 3] - 48)
                    guard value <= 255 else { throw DNSError.invalidName(text) }
                    current.append(UInt8(value))
                    i += 4
                } else {
                    current.append(next)
                    i += 2
                }
            } else {
                current.append(c)
                i += 1
            }
            guard current.count <= 63 else { throw DNSError.labelTooLong(text) }
        }
        if !current.isEmpty { labels.append(current) }
        guard DNSName.wireLength(of: labels) <= 255 else { throw DNSError.nameTooLong }
        self.labels = labels
    }

    /// A name from raw labels: each 1...63 bytes, 255 bytes in all in wire form.
    public init(labels: [[UInt8]]) throws(DNSError) {
        for label in labels where label.isEmpty || label.count > 63 {
            let text = DNSName(validatedLabels: labels).description
            throw label.isEmpty ? DNSError.invalidName(text) : DNSError.labelTooLong(text)
        }
        guard DNSName.wireLength(of: labels) <= 255 else { throw DNSError.nameTooLong }
        self.labels = labels
    }

    private init(validatedLabels: [[UInt8]]) { self.labels = validatedLabels }

    public var isRoot: Bool { labels.isEmpty }

    /// Bytes in uncompressed wire form, the root label included.
    public var wireLength: Int { DNSName.wireLength(of: labels) }

    /// The name with ASCII letters lowercased: the key for DNS's case-insensitive comparison.
    public func lowercased() -> DNSName {
        DNSName(validatedLabels: labels.map { label in
            label.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
        })
    }

    public var description: String {
        if labels.isEmpty { return "." }
        var out: [UInt8] = []
        out.reserveCapacity(wireLength + 8)
        for (index, label) in labels.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ".")) }
            for byte in label {
                switch byte {
                case UInt8(ascii: "."), UInt8(ascii: "\\"):
                    out.append(UInt8(ascii: "\\"))
                    out.append(byte)
                case 0x21...0x7e:
                    out.append(byte)
                default:
                    out.append(UInt8(ascii: "\\"))
                    out.append(48 + byte / 100)
                    out.append(48 + byte / 10 % 10)
                    out.append(48 + byte % 10)
                }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the uncompressed wire form.
    func appendWire(to out: inout [UInt8]) {
        for label in labels {
            out.append(UInt8(label.count))
            out.append(contentsOf: label)
        }
        out.append(0)
    }

    /// Reads a name at `start` in `message`, following compression pointers.
    ///
    /// The name's own bytes (before any pointer) must end by `end`, else `overrun` is thrown;
    /// this keeps a name inside its record's rdata. Each pointer must point before the start of
    /// the run of labels it ends, which both forbids forward pointers and makes every hop go
    /// strictly backwards, so reading terminates; hops are also capped at `maxPointerHops`.
    ///
    /// - Returns: the name, and the position just after its bytes at `start`.
    static func read(from message: [UInt8], at start: Int, end: Int, overrun: DNSError,
                     allowPointers: Bool = true) throws(DNSError) -> (DNSName, next: Int) {
        var labels: [[UInt8]] = []
        var position = start
        var runStart = start        // first byte of the current run of labels
        var limit = min(end, message.count)
        var limitError = overrun
        var next: Int? = nil        // just after the first pointer, once one was followed
        var length = 1              // wire length so far, the root label included
        var hops = 0
        while true {
            guard position >= 0, position < limit else { throw limitError }
            let byte = message[position]
            switch byte & 0xc0 {
            case 0x00:
                if byte == 0 {
                    return (DNSName(validatedLabels: labels), next ?? position + 1)
                }
                let count = Int(byte)
                guard count < limit - position else { throw limitError }
                length += count + 1
                guard length <= 255 else { throw DNSError.nameTooLong }
                labels.append(Array(message[(position + 1)...(position + count)]))
                position += count + 1
            case 0xc0:
                guard allowPointers else { throw DNSError.badPointer }
                guard position + 1 < limit else { throw limitError }
                let target = Int(byte & 0x3f) << 8 | Int(message[position + 1])
                if target >= position { throw DNSError.badPointer }
                if target >= runStart { throw DNSError.compressionLoop }
                hops += 1
                guard hops <= maxPointerHops else { throw DNSError.compressionLoop }
                if next == nil { next = position + 2 }
                position = target
                runStart = target
                // Past a pointer the name may run anywhere in the message before the pointer.
                limit = message.count
                limitError = .truncatedMessage
            default:
                throw DNSError.badLabelType(byte & 0xc0)
            }
        }
    }

    private static func wireLength(of labels: [[UInt8]]) -> Int {
        var total = 1
        for label in labels { total += label.count + 1 }
        return total
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
}

// MARK: - Header, question, record

/// The fixed 12-byte header.
public struct DNSHeader: Sendable, Equatable {
    public var id: UInt16
    /// QR: a response, not a query.
    public var isResponse: Bool
    /// 0 is QUERY.
    public var opcode: UInt8
    /// AA
    public var authoritative: Bool
    /// TC: the answer did not fit; ask again over TCP.
    public var truncated: Bool
    /// RD
    public var recursionDesired: Bool
    /// RA
    public var recursionAvailable: Bool
    /// AD (RFC 4035)
    public var authenticData: Bool
    /// CD (RFC 4035)
    public var checkingDisabled: Bool
    public var responseCode: DNSResponseCode
    /// The counts. In a ``DNSMessage`` they always equal the sections' sizes.
    public var questionCount: UInt16
    public var answerCount: UInt16
    public var authorityCount: UInt16
    public var additionalCount: UInt16

    /// The header is 12 bytes.
    public static let byteCount = 12

    public init(id: UInt16 = 0, isResponse: Bool = false, opcode: UInt8 = 0, authoritative: Bool = false,
                truncated: Bool = false, recursionDesired: Bool = false, recursionAvailable: Bool = false,
                authenticData: Bool = false, checkingDisabled: Bool = false,
                responseCode: DNSResponseCode = .noError, questionCount: UInt16 = 0, answerCount: UInt16 = 0,
                authorityCount: UInt16 = 0, additionalCount: UInt16 = 0) {
        self.id = id
        self.isResponse = isResponse
        self.opcode = opcode
        self.authoritative = authoritative
        self.truncated = truncated
        self.recursionDesired = recursionDesired
        self.recursionAvailable = recursionAvailable
        self.authenticData = authenticData
        self.checkingDisabled = checkingDisabled
        self.responseCode = responseCode
        self.questionCount = questionCount
        self.answerCount = answerCount
        self.authorityCount = authorityCount
        self.additionalCount = additionalCount
    }

    /// Reads only the header: enough to match a reply's id and see TC or the rcode when the rest
    /// of the message is cut or malformed. The Z bit is ignored.
    public static func decode(_ bytes: [UInt8]) throws(DNSError) -> DNSHeader {
        guard bytes.count >= byteCount else { throw DNSError.truncatedMessage }
        func u16(_ i: Int) -> UInt16 { UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]) }
        let flags = bytes[2], more = bytes[3]
        return DNSHeader(
            id: u16(0), isResponse: flags & 0x80 != 0, opcode: (flags >> 3) & 0x0f,
            authoritative: flags & 0x04 != 0, truncated: flags & 0x02 != 0, recursionDesired: flags & 0x01 != 0,
            recursionAvailable: more & 0x80 != 0, authenticData: more & 0x20 != 0,
            checkingDisabled: more & 0x10 != 0, responseCode: DNSResponseCode(rawValue: more & 0x0f),
            questionCount: u16(4), answerCount: u16(6), authorityCount: u16(8), additionalCount: u16(10))
    }

    /// The 12 bytes; opcode and rcode are cut to their 4 bits.
    func encode(into out: inout [UInt8]) {
        var flags = (opcode & 0x0f) << 3
        if isResponse { flags |= 0x80 }
        if authoritative { flags |= 0x04 }
        if truncated { flags |= 0x02 }
        if recursionDesired { flags |= 0x01 }
        var more = responseCode.rawValue & 0x0f
        if recursionAvailable { more |= 0x80 }
        if authenticData { more |= 0x20 }
        if checkingDisabled { more |= 0x10 }
        out.append(UInt8(id >> 8))
        out.append(UInt8(id & 0xff))
        out.append(flags)
        out.append(more)
        for value in [questionCount, answerCount, authorityCount, additionalCount] {
            out.append(UInt8(value >> 8))
            out.append(UInt8(value & 0xff))
        }
    }
}

public struct DNSQuestion: Sendable, Equatable, CustomStringConvertible {
    /// Presentation text as decoded (case kept, for DNS 0x20 checks), no trailing dot.
    public var name: String
    public var type: UInt16
    public var `class`: UInt16

    public init(name: String, type: UInt16, class: UInt16 = DNSClass.internet.rawValue) {
        self.name = name
        self.type = type
        self.class = `class`
    }

    public init(name: String, type: DNSRecordType) {
        self.init(name: name, type: type.rawValue)
    }

    public var description: String { "\(name) \(DNSRecordType.name(of: type))" }
}

/// Record data, decoded for the types the agent reads and kept as bytes for the rest.
public enum DNSRecordData: Sendable, Equatable {
    /// A (class IN, exactly 4 bytes) or AAAA (class IN, exactly 16 bytes).
    case address(IPAddress)
    /// The one domain name of a CNAME, NS or PTR record, in presentation text.
    case name(String)
    /// Any other rdata, as bytes. Types whose rdata holds domain names that may be compressed
    /// (SOA, MX, SRV, ...) are stored with those names decompressed, so the bytes stand alone
    /// and re-encode correctly.
    case other([UInt8])
}

/// Start of authority data (RFC 1035 3.3.13), read from an SOA record's rdata.
public struct DNSSOA: Sendable, Equatable {
    public var primaryServer: String
    public var responsibleMailbox: String
    public var serial: UInt32
    public var refresh: UInt32
    public var retry: UInt32
    public var expire: UInt32
    /// The negative-caching TTL (RFC 2308).
    public var minimum: UInt32
}

public struct DNSRecord: Sendable, Equatable, CustomStringConvertible {
    /// Owner name, presentation text as decoded (case kept), no trailing dot.
    public var name: String
    public var type: UInt16
    public var `class`: UInt16
    public var ttl: UInt32
    public var data: DNSRecordData

    public init(name: String, type: UInt16, class: UInt16 = DNSClass.internet.rawValue, ttl: UInt32,
                data: DNSRecordData) {
        self.name = name
        self.type = type
        self.class = `class`
        self.ttl = ttl
        self.data = data
    }

    /// An A record for an IPv4 address, AAAA for IPv6.
    public static func address(_ name: String, _ address: IPAddress, ttl: UInt32 = 300) -> DNSRecord {
        DNSRecord(name: name, type: (address.isIPv4 ? DNSRecordType.a : .aaaa).rawValue, ttl: ttl,
                  data: .address(address))
    }

    /// A CNAME record: `name` is an alias of `target`.
    public static func cname(_ name: String, target: String, ttl: UInt32 = 300) -> DNSRecord {
        DNSRecord(name: name, type: DNSRecordType.cname.rawValue, ttl: ttl, data: .name(target))
    }

    /// The known type, nil for a type without a name here.
    public var recordType: DNSRecordType? { DNSRecordType(rawValue: type) }

    /// The SOA data of an SOA record, else nil.
    public var soa: DNSSOA? {
        guard type == DNSRecordType.soa.rawValue, case .other(let rdata) = data,
              let (primary, afterPrimary) = try? DNSName.read(from: rdata, at: 0, end: rdata.count,
                                                              overrun: .truncatedMessage, allowPointers: false),
              let (mailbox, afterMailbox) = try? DNSName.read(from: rdata, at: afterPrimary, end: rdata.count,
                                                              overrun: .truncatedMessage, allowPointers: false),
              rdata.count - afterMailbox == 20 else { return nil }
        func u32(_ i: Int) -> UInt32 {
            let at = afterMailbox + 4 * i
            return UInt32(rdata[at]) << 24 | UInt32(rdata[at + 1]) << 16 | UInt32(rdata[at + 2]) << 8 | UInt32(rdata[at + 3])
        }
        return DNSSOA(primaryServer: primary.description, responsibleMailbox: mailbox.description,
                      serial: u32(0), refresh: u32(1), retry: u32(2), expire: u32(3), minimum: u32(4))
    }

    /// One line as dig prints it: `example.com. 300 IN A 93.184.216.34`.
    public var description: String {
        func absolute(_ text: String) -> String {
            guard let name = try? DNSName(text) else { return text }
            return name.isRoot ? "." : "\(name)."
        }
        let owner = absolute(name)
        let cls = `class` == 1 ? "IN" : "CLASS\(`class`)"
        let rdata: String
        switch data {
        case .address(let ip): rdata = ip.description
        case .name(let target): rdata = absolute(target)
        case .other(let bytes): rdata = "\\# \(bytes.count)" + (bytes.isEmpty ? "" : " " + bytes.map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined())
        }
        return "\(owner) \(ttl) \(cls) \(DNSRecordType.name(of: type)) \(rdata)"
    }
}

// MARK: - Message

public struct DNSMessage: Sendable, Equatable {
    /// The header with its counts held at zero: the counts are the sections' sizes.
    private var flags: DNSHeader
    public var questions: [DNSQuestion]
    public var answers: [DNSRecord]
    public var authorities: [DNSRecord]
    public var additionals: [DNSRecord]

    /// The header. Its counts always read as the sections' sizes (capped at 65535; ``encode()``
    /// refuses larger sections); counts set here are ignored.
    public var header: DNSHeader {
        get {
            var h = flags
            h.questionCount = UInt16(clamping: questions.count)
            h.answerCount = UInt16(clamping: answers.count)
            h.authorityCount = UInt16(clamping: authorities.count)
            h.additionalCount = UInt16(clamping: additionals.count)
            return h
        }
        set {
            flags = newValue
            flags.questionCount = 0
            flags.answerCount = 0
            flags.authorityCount = 0
            flags.additionalCount = 0
        }
    }

    public init(header: DNSHeader = DNSHeader(), questions: [DNSQuestion] = [], answers: [DNSRecord] = [],
                authorities: [DNSRecord] = [], additionals: [DNSRecord] = []) {
        self.flags = DNSHeader()
        self.questions = questions
        self.answers = answers
        self.authorities = authorities
        self.additionals = additionals
        self.header = header
    }

    /// A standard query for `name` and `type`, with an EDNS0 OPT record advertising
    /// `ednsUDPSize` bytes (1232, the DNS Flag Day 2020 size that avoids IP fragmentation)
    /// unless it is nil.
    public static func query(id: UInt16, name: String, type: DNSRecordType, recursionDesired: Bool = true,
                             ednsUDPSize: UInt16? = 1232) -> DNSMessage {
        var message = DNSMessage(header: DNSHeader(id: id, recursionDesired: recursionDesired),
                                 questions: [DNSQuestion(name: name, type: type)])
        if let size = ednsUDPSize { message.additionals.append(optRecord(udpSize: size)) }
        return message
    }

    /// A response to `query`: same id, opcode, RD and CD, the question echoed, QR set, and an OPT
    /// record (1232 bytes) when the query had one. For tests and the in-test DNS server.
    public static func response(to query: DNSMessage, rcode: DNSResponseCode = .noError,
                                answers: [DNSRecord] = [], authorities: [DNSRecord] = [],
                                truncated: Bool = false, authoritative: Bool = false,
                                recursionAvailable: Bool = true) -> DNSMessage {
        let q = query.header
        var message = DNSMessage(
            header: DNSHeader(id: q.id, isResponse: true, opcode: q.opcode, authoritative: authoritative,
                              truncated: truncated, recursionDesired: q.recursionDesired,
                              recursionAvailable: recursionAvailable, checkingDisabled: q.checkingDisabled,
                              responseCode: rcode),
            questions: query.questions, answers: answers, authorities: authorities)
        if query.ednsUDPSize != nil { message.additionals.append(optRecord(udpSize: 1232)) }
        return message
    }

    /// The EDNS0 OPT pseudo-record: root owner, the UDP payload size in the class field, no
    /// extended rcode, version 0, DO clear, no options.
    public static func optRecord(udpSize: UInt16) -> DNSRecord {
        DNSRecord(name: ".", type: DNSRecordType.opt.rawValue, class: udpSize, ttl: 0, data: .other([]))
    }

    /// The UDP payload size from the first OPT record in the additional section, if any.
    public var ednsUDPSize: UInt16? {
        additionals.first { $0.type == DNSRecordType.opt.rawValue }?.class
    }

    public var responseCode: DNSResponseCode { flags.responseCode }
    public var isTruncated: Bool { flags.truncated }

    /// Whether this message is the reply to `query`: QR set, the same id, opcode and
    /// questions, names compared byte for byte — so the mixed case of a DNS 0x20 query must
    /// come back unchanged. These are the checks that turn away off-path spoofed replies; an
    /// on-path injector (which sees the query) passes them.
    public func isResponse(to query: DNSMessage) -> Bool {
        flags.isResponse && flags.id == query.flags.id && flags.opcode == query.flags.opcode
            && questions == query.questions
    }

    // MARK: Answers

    /// The addresses that answer `name` for `type` (`.a` or `.aaaa`), in answer-section order.
    ///
    /// Follows the CNAME chain from `name` inside the answer section (loop-safe: a name is
    /// visited once) and takes the address records owned by `name` or any alias on the chain.
    /// Records for other names are ignored: an injected extra record does not count. Names
    /// compare case-insensitively (DNS 0x20), with or without the trailing dot.
    public func addresses(for name: String, type: DNSRecordType) -> [IPAddress] {
        guard type == .a || type == .aaaa, let chain = aliasChain(for: name) else { return [] }
        let wanted = Set(chain.names)
        var result: [IPAddress] = []
        for record in answers where record.type == type.rawValue && record.class == DNSClass.internet.rawValue {
            guard case .address(let ip) = record.data, ip.isIPv4 == (type == .a),
                  let owner = try? DNSName(record.name), wanted.contains(owner.lowercased()) else { continue }
            result.append(ip)
        }
        return result
    }

    /// The aliases the answer section leads through from `name`, in order, as the CNAME
    /// records spell them. Empty when `name` has no CNAME.
    public func cnameChain(for name: String) -> [String] {
        aliasChain(for: name)?.targets ?? []
    }

    /// The smallest TTL among the CNAME records on the chain and the address records that
    /// ``addresses(for:type:)`` returns; nil when it returns none. A resolver may cache the
    /// answer this long (a TTL of 10 on a public name is one sign of an injected answer).
    public func minimumTTL(for name: String, type: DNSRecordType) -> UInt32? {
        guard type == .a || type == .aaaa, let chain = aliasChain(for: name) else { return nil }
        let wanted = Set(chain.names)
        var minimum: UInt32? = nil
        for record in answers where record.type == type.rawValue && record.class == DNSClass.internet.rawValue {
            guard case .address(let ip) = record.data, ip.isIPv4 == (type == .a),
                  let owner = try? DNSName(record.name), wanted.contains(owner.lowercased()) else { continue }
            minimum = min(minimum ?? record.ttl, record.ttl)
        }
        guard var result = minimum else { return nil }
        for ttl in chain.ttls { result = min(result, ttl) }
        return result
    }

    /// Lowercased names on the chain from `name`, the CNAME targets as written, and the TTLs of
    /// the CNAME records followed. Nil when `name` is not a valid name.
    private func aliasChain(for name: String) -> (names: [DNSName], targets: [String], ttls: [UInt32])? {
        guard let start = try? DNSName(name) else { return nil }
        // Owner -> (target, its text, TTL), first CNAME per owner wins.
        var aliases: [DNSName: (DNSName, String, UInt32)] = [:]
        for record in answers where record.type == DNSRecordType.cname.rawValue
            && record.class == DNSClass.internet.rawValue {
            guard case .name(let text) = record.data, let owner = try? DNSName(record.name),
                  let target = try? DNSName(text) else { continue }
            let key = owner.lowercased()
            if aliases[key] == nil { aliases[key] = (target.lowercased(), text, record.ttl) }
        }
        var names = [start.lowercased()]
        var seen: Set<DNSName> = [start.lowercased()]
        var targets: [String] = []
        var ttls: [UInt32] = []
        while let (next, text, ttl) = aliases[names[names.count - 1]], !seen.contains(next) {
            names.append(next)
            seen.insert(next)
            targets.append(text)
            ttls.append(ttl)
        }
        return (names, targets, ttls)
    }

    // MARK: Encoding

    /// The message in wire form, names compressed (owner names, and the names inside NS, CNAME,
    /// PTR, SOA and MX rdata, as RFC 3597 allows).
    public func encode() throws(DNSError) -> [UInt8] {
        guard questions.count <= 0xffff, answers.count <= 0xffff, authorities.count <= 0xffff,
              additionals.count <= 0xffff else { throw DNSError.tooManyEntries }
        var writer = Writer()
        header.encode(into: &writer.bytes)
        for question in questions {
            writer.name(try DNSName(question.name), compress: true)
            writer.u16(question.type)
            writer.u16(question.class)
        }
        for section in [answers, authorities, additionals] {
            for record in section { try writer.record(record) }
        }
        return writer.bytes
    }

    /// The wire form prefixed with its 2-byte length, as sent over TCP (RFC 1035 4.2.2).
    public func encodeForTCP() throws(DNSError) -> [UInt8] {
        let body = try encode()
        guard body.count <= 0xffff else { throw DNSError.messageTooLong(body.count) }
        return [UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
    }

    private struct Writer {
        var bytes: [UInt8] = []
        /// Offsets of names already written, by their label suffix (exact bytes, so a decoded
        /// message re-encodes to the same names, case included).
        var offsets: [[[UInt8]]: Int] = [:]

        mutating func u16(_ value: UInt16) {
            bytes.append(UInt8(value >> 8))
            bytes.append(UInt8(value & 0xff))
        }

        mutating func u32(_ value: UInt32) {
            u16(UInt16(value >> 16))
            u16(UInt16(value & 0xffff))
        }

        mutating func name(_ name: DNSName, compress: Bool) {
            let labels = name.labels
            for i in labels.indices {
                let suffix = Array(labels[i...])
                if compress, let offset = offsets[suffix] {
                    u16(0xc000 | UInt16(offset))
                    return
                }
                if bytes.count < 0x4000 && offsets[suffix] == nil { offsets[suffix] = bytes.count }
                bytes.append(UInt8(labels[i].count))
                bytes.append(contentsOf: labels[i])
            }
            bytes.append(0)
        }

        mutating func record(_ record: DNSRecord) throws(DNSError) {
            name(try DNSName(record.name), compress: true)
            u16(record.type)
            u16(record.class)
            u32(record.ttl)
            let lengthAt = bytes.count
            u16(0)
            switch record.data {
            case .address(let ip):
                let fits = (record.type == DNSRecordType.a.rawValue && ip.isIPv4)
                    || (record.type == DNSRecordType.aaaa.rawValue && !ip.isIPv4)
                guard fits else { throw DNSError.rdataMismatch(type: record.type) }
                bytes.append(contentsOf: ip.bytes)
            case .name(let text):
                let compressible: Set<UInt16> = [2, 5, 12]  // NS, CNAME, PTR
                name(try DNSName(text), compress: compressible.contains(record.type))
            case .other(let rdata):
                bytes.append(contentsOf: rdata)
            }
            let length = bytes.count - lengthAt - 2
            guard length <= 0xffff else { throw DNSError.rdataTooLong(type: record.type) }
            bytes[lengthAt] = UInt8(length >> 8)
            bytes[lengthAt + 1] = UInt8(length & 0xff)
        }
    }

    // MARK: Decoding

    /// Decodes a message; see the notes at the top of this file for what hostile input meets.
    /// Bytes after the last record are ignored, as glibc's and Go's resolvers ignore them.
    public static func decode(_ bytes: [UInt8]) throws(DNSError) -> DNSMessage {
        let header = try DNSHeader.decode(bytes)
        let questionCount = Int(header.questionCount)
        let recordCount = Int(header.answerCount) + Int(header.authorityCount) + Int(header.additionalCount)
        // The smallest question is 5 bytes (root name, type, class), the smallest record 11.
        guard questionCount * 5 + recordCount * 11 <= bytes.count - DNSHeader.byteCount else {
            throw DNSError.countsExceedMessage
        }
        var reader = Reader(bytes: bytes, position: DNSHeader.byteCount)
        var questions: [DNSQuestion] = []
        questions.reserveCapacity(questionCount)
        for _ in 0..<questionCount {
            let name = try reader.name()
            let type = try reader.u16()
            let cls = try reader.u16()
            questions.append(DNSQuestion(name: name.description, type: type, class: cls))
        }
        let answers = try reader.records(Int(header.answerCount))
        let authorities = try reader.records(Int(header.authorityCount))
        let additionals = try reader.records(Int(header.additionalCount))
        return DNSMessage(header: header, questions: questions, answers: answers, authorities: authorities,
                          additionals: additionals)
    }

    private struct Reader {
        let bytes: [UInt8]
        var position: Int

        mutating func u16() throws(DNSError) -> UInt16 {
            guard position + 2 <= bytes.count else { throw DNSError.truncatedMessage }
            defer { position += 2 }
            return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
        }

        mutating func u32() throws(DNSError) -> UInt32 {
            let high = try u16()
            let low = try u16()
            return UInt32(high) << 16 | UInt32(low)
        }

        mutating func name() throws(DNSError) -> DNSName {
            let (name, next) = try DNSName.read(from: bytes, at: position, end: bytes.count,
                                                overrun: .truncatedMessage)
            position = next
            return name
        }

        mutating func records(_ count: Int) throws(DNSError) -> [DNSRecord] {
            var records: [DNSRecord] = []
            records.reserveCapacity(count)
            for _ in 0..<count { records.append(try record()) }
            return records
        }

        mutating func record() throws(DNSError) -> DNSRecord {
            let owner = try name()
            let type = try u16()
            let cls = try u16()
            let ttl = try u32()
            let length = Int(try u16())
            guard length <= bytes.count - position else { throw DNSError.truncatedMessage }
            let start = position, end = position + length
            let data = try rdata(type: type, class: cls, start: start, end: end)
            position = end
            return DNSRecord(name: owner.description, type: type, class: cls, ttl: ttl, data: data)
        }

        /// Fields of rdata that hold domain names that may be compressed (RFC 3597 section 4,
        /// RFC 2782 for SRV, RFC 6672 for DNAME), so they can be stored decompressed.
        private enum Field { case u16, u32, name }

        private static func layout(of type: UInt16) -> [Field]? {
            switch type {
            case 3, 4, 7, 8, 9, 39: return [.name]                         // MD MF MB MG MR DNAME
            case 6: return [.name, .name, .u32, .u32, .u32, .u32, .u32]    // SOA
            case 14, 17: return [.name, .name]                             // MINFO RP
            case 15, 18, 21, 36: return [.u16, .name]                      // MX AFSDB RT KX
            case 26: return [.u16, .name, .name]                           // PX
            case 33: return [.u16, .u16, .u16, .name]                      // SRV
            default: return nil
            }
        }

        func rdata(type: UInt16, class cls: UInt16, start: Int, end: Int) throws(DNSError) -> DNSRecordData {
            let length = end - start
            let isInternet = cls == DNSClass.internet.rawValue
            switch type {
            case DNSRecordType.a.rawValue where isInternet:
                guard length == 4 else { throw DNSError.badRecordLength(type: type) }
                return .address(.v4(bytes[start], bytes[start + 1], bytes[start + 2], bytes[start + 3]))
            case DNSRecordType.aaaa.rawValue where isInternet:
                guard length == 16 else { throw DNSError.badRecordLength(type: type) }
                return .address(.v6(Array(bytes[start..<end])))
            case DNSRecordType.ns.rawValue, DNSRecordType.cname.rawValue, DNSRecordType.ptr.rawValue:
                let (name, next) = try DNSName.read(from: bytes, at: start, end: end,
                                                    overrun: .badRecordLength(type: type))
                guard next == end else { throw DNSError.badRecordLength(type: type) }
                return .name(name.description)
            default:
                guard let fields = Reader.layout(of: type) else { return .other(Array(bytes[start..<end])) }
                var out: [UInt8] = []
                var at = start
                for field in fields {
                    switch field {
                    case .u16, .u32:
                        let size = field == .u16 ? 2 : 4
                        guard size <= end - at else { throw DNSError.badRecordLength(type: type) }
                        out.append(contentsOf: bytes[at..<(at + size)])
                        at += size
                    case .name:
                        let (name, next) = try DNSName.read(from: bytes, at: at, end: end,
                                                            overrun: .badRecordLength(type: type))
                        name.appendWire(to: &out)
                        at = next
                    }
                }
                guard at == end else { throw DNSError.badRecordLength(type: type) }
                return .other(out)
            }
        }
    }
}

extension DNSMessage: CustomStringConvertible {
    /// A dig-like summary, for logs and test failures.
    public var description: String {
        let h = header
        var flagNames: [String] = []
        if h.isResponse { flagNames.append("qr") }
        if h.authoritative { flagNames.append("aa") }
        if h.truncated { flagNames.append("tc") }
        if h.recursionDesired { flagNames.append("rd") }
        if h.recursionAvailable { flagNames.append("ra") }
        if h.authenticData { flagNames.append("ad") }
        if h.checkingDisabled { flagNames.append("cd") }
        var lines = [";; id \(h.id) opcode \(h.opcode) \(h.responseCode) flags: \(flagNames.joined(separator: " "))"]
        for q in questions { lines.append(";\(q)") }
        for (title, section) in [("ANSWER", answers), ("AUTHORITY", authorities), ("ADDITIONAL", additionals)]
        where !section.isEmpty {
            lines.append(";; \(title)")
            for record in section { lines.append(record.description) }
        }
        return lines.joined(separator: "\n")
    }
}
