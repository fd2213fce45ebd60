// Raw DNS messages, as they cross the wire, one commented line per field ("@N" is the offset).
// Each valid one was replayed to dig 9.18 from a UDP socket and printed as its comment says;
// dig also rejects or flags every hostile one.

/// DNS wire fixtures shared by the codec tests (and usable by the client's tests).
enum DNSWireFixtures {
    /// The query dig sends for `dig +noadflag +nocookie +edns=0 +bufsize=1232
    /// registry-1.docker.io A`, captured from a UDP socket: what `DNSMessage.query` must produce.
    static let digQuery: [UInt8] = [
        0xb9, 0xf4,                                                        // @0: id 0xb9f4
        0x01, 0x00,                                                        // @2: RD, QUERY
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,                    // @4: QD 1, AN 0, NS 0, AR 1
        // question
        0x0a, 0x72, 0x65, 0x67, 0x69, 0x73, 0x74, 0x72, 0x79, 0x2d, 0x31,  // @12: label "registry-1"
        0x06, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72,                          // @23: label "docker"
        0x02, 0x69, 0x6f,                                                  // @30: label "io"
        0x00,                                                              // @33: root
        0x00, 0x01,                                                        // @34: type A
        0x00, 0x01,                                                        // @36: class IN
        // additional: OPT
        0x00,                                                              // @38: root
        0x00, 0x29,                                                        // @39: type OPT
        0x04, 0xd0,                                                        // @41: UDP payload size 1232
        0x00, 0x00, 0x00, 0x00,                                            // @43: ext rcode 0, version 0, flags 0
        0x00, 0x00,                                                        // @47: rdlength 0
    ]

    /// registry-1.docker.io A: three addresses, owner names compressed to the question (as BIND, Unbound and dnsmasq send it).
    static let registryA: [UInt8] = [
        0x1a, 0x2b,                                                        // @0: id 0x1a2b
        0x81, 0x80,                                                        // @2: QR RD RA, NOERROR
        0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00,                    // @4: QD 1, AN 3, NS 0, AR 0
        // question
        0x0a, 0x72, 0x65, 0x67, 0x69, 0x73, 0x74, 0x72, 0x79, 0x2d, 0x31,  // @12: label "registry-1"
        0x06, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72,                          // @23: label "docker"
        0x02, 0x69, 0x6f,                                                  // @30: label "io"
        0x00,                                                              // @33: root
        0x00, 0x01,                                                        // @34: type A
        0x00, 0x01,                                                        // @36: class IN
        // answer: registry-1.docker.io 60 IN A 54.227.20.253
        0xc0, 0x0c,                                                        // @38: pointer to @12
        0x00, 0x01,                                                        // @40: type A
        0x00, 0x01,                                                        // @42: class IN
        0x00, 0x00, 0x00, 0x3c,                                            // @44: TTL 60
        0x00, 0x04,                                                        // @48: rdlength 4
        0x36, 0xe3, 0x14, 0xfd,                                            // @50: 54.227.20.253
        // answer: registry-1.docker.io 60 IN A 3.94.224.37
        0xc0, 0x0c,                                                        // @54: pointer to @12
        0x00, 0x01,                                                        // @56: type A
        0x00, 0x01,                                                        // @58: class IN
        0x00, 0x00, 0x00, 0x3c,                                            // @60: TTL 60
        0x00, 0x04,                                                        // @64: rdlength 4
        0x03, 0x5e, 0xe0, 0x25,                                            // @66: 3.94.224.37
        // answer: registry-1.docker.io 60 IN A 52.1.184.176
        0xc0, 0x0c,                                                        // @70: pointer to @12
        0x00, 0x01,                                                        // @72: type A
        0x00, 0x01,                                                        // @74: class IN
        0x00, 0x00, 0x00, 0x3c,                                            // @76: TTL 60
        0x00, 0x04,                                                        // @80: rdlength 4
        0x34, 0x01, 0xb8, 0xb0,                                            // @82: 52.1.184.176
    ]

    /// The answer public reports show from a domestic resolver: registry-1.docker.io A 108.160.169.181, TTL 10.
    static let poisonedA: [UInt8] = [
        0x04, 0x20,                                                        // @0: id 0x0420
        0x81, 0x80,                                                        // @2: QR RD RA, NOERROR
        0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,                    // @4: QD 1, AN 1, NS 0, AR 0
        // question
        0x0a, 0x72, 0x65, 0x67, 0x69, 0x73, 0x74, 0x72, 0x79, 0x2d, 0x31,  // @12: label "registry-1"
        0x06, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72,                          // @23: label "docker"
        0x02, 0x69, 0x6f,                                                  // @30: label "io"
        0x00,                                                              // @33: root
        0x00, 0x01,                                                        // @34: type A
        0x00, 0x01,                                                        // @36: class IN
        // answer: registry-1.docker.io 10 IN A 108.160.169.181
        0xc0, 0x0c,                                                        // @38: pointer to @12
        0x00, 0x01,                                                        // @40: type A
        0x00, 0x01,                                                        // @42: class IN
        0x00, 0x00, 0x00, 0x0a,                                            // @44: TTL 10
        0x00, 0x04,                                                        // @48: rdlength 4
        0x6c, 0xa0, 0xa9, 0xb5,                                            // @50: 108.160.169.181
    ]

    /// registry-1.docker.io AAAA 2a03:2880:f11b:83:face:b00c:0:25de (a Facebook prefix), TTL 10, with an EDNS OPT record.
    static let poisonedAAAA: [UInt8] = [
        0x04, 0x21,                                                                                      // @0: id 0x0421
        0x81, 0x80,                                                                                      // @2: QR RD RA, NOERROR
        0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,                                                  // @4: QD 1, AN 1, NS 0, AR 1
        // question
        0x0a, 0x72, 0x65, 0x67, 0x69, 0x73, 0x74, 0x72, 0x79, 0x2d, 0x31,                                // @12: label "registry-1"
        0x06, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72,                                                        // @23: label "docker"
        0x02, 0x69, 0x6f,                                                                                // @30: label "io"
        0x00,                                                                                            // @33: root
        0x00, 0x1c,                                                                                      // @34: type AAAA
        0x00, 0x01,                                                                                      // @36: class IN
        // answer: registry-1.docker.io 10 IN AAAA 2a03:2880:f11b:83:face:b00c:0:25de
        0xc0, 0x0c,                                                                                      // @38: pointer to @12
        0x00, 0x1c,                                                                                      // @40: type AAAA
        0x00, 0x01,                                                                                      // @42: class IN
        0x00, 0x00, 0x00, 0x0a,                                                                          // @44: TTL 10
        0x00, 0x10,                                                                                      // @48: rdlength 16
        0x2a, 0x03, 0x28, 0x80, 0xf1, 0x1b, 0x00, 0x83, 0xfa, 0xce, 0xb0, 0x0c, 0x00, 0x00, 0x25, 0xde,  // @50: 2a03:2880:f11b:83:face:b00c:0:25de
        // additional: OPT, UDP payload 1232, version 0, no options
        0x00,                                                                                            // @66: root
        0x00, 0x29,                                                                                      // @67: type OPT
        0x04, 0xd0,                                                                                      // @69: UDP payload size 1232
        0x00, 0x00, 0x00, 0x00,                                                                          // @71: ext rcode 0, version 0, flags 0
        0x00, 0x00,                                                                                      // @75: rdlength 0
    ]

    /// registry.example.com CNAME edge.example.com CNAME lb.example.net, A 192.0.2.10 and 192.0.2.11; the CNAME rdata is compressed too.
    static let cnameChain: [UInt8] = [
        0xc0, 0xde,                                            // @0: id 0xc0de
        0x81, 0x80,                                            // @2: QR RD RA, NOERROR
        0x00, 0x01, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,        // @4: QD 1, AN 4, NS 0, AR 0
        // question
        0x08, 0x72, 0x65, 0x67, 0x69, 0x73, 0x74, 0x72, 0x79,  // @12: label "registry"
        0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,        // @21: label "example"
        0x03, 0x63, 0x6f, 0x6d,                                // @29: label "com"
        0x00,                                                  // @33: root
        0x00, 0x01,                                            // @34: type A
        0x00, 0x01,                                            // @36: class IN
        // answer: registry.example.com 300 IN CNAME edge.example.com
        0xc0, 0x0c,                                            // @38: pointer to @12
        0x00, 0x05,                                            // @40: type CNAME
        0x00, 0x01,                                            // @42: class IN
        0x00, 0x00, 0x01, 0x2c,                                // @44: TTL 300
        0x00, 0x07,                                            // @48: rdlength 7
        0x04, 0x65, 0x64, 0x67, 0x65,                          // @50: label "edge"
        0xc0, 0x15,                                            // @55: pointer to @21
        // answer: edge.example.com 60 IN CNAME lb.example.net
        0xc0, 0x32,                                            // @57: pointer to @50
        0x00, 0x05,                                            // @59: type CNAME
        0x00, 0x01,                                            // @61: class IN
        0x00, 0x00, 0x00, 0x3c,                                // @63: TTL 60
        0x00, 0x10,                                            // @67: rdlength 16
        0x02, 0x6c, 0x62,                                      // @69: label "lb"
        0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,        // @72: label "example"
        0x03, 0x6e, 0x65, 0x74,                                // @80: label "net"
        0x00,                                                  // @84: root
        // answer: lb.example.net 30 IN A 192.0.2.10
        0xc0, 0x45,                                            // @85: pointer to @69
        0x00, 0x01,                                            // @87: type A
        0x00, 0x01,                                            // @89: class IN
        0x00, 0x00, 0x00, 0x1e,                                // @91: TTL 30
        0x00, 0x04,                                            // @95: rdlength 4
        0xc0, 0x00, 0x02, 0x0a,                                // @97: 192.0.2.10
        // answer: lb.example.net 30 IN A 192.0.2.11
        0xc0, 0x45,                                            // @101: pointer to @69
        0x00, 0x01,                                            // @103: type A
        0x00, 0x01,                                            // @105: class IN
        0x00, 0x00, 0x00, 0x1e,                                // @107: TTL 30
        0x00, 0x04,                                            // @111: rdlength 4
        0xc0, 0x00, 0x02, 0x0b,                                // @113: 192.0.2.11
    ]

    /// nonexistent.docker.io A: NXDOMAIN, with the zone's SOA in the authority section, its names compressed.
    static let nxdomain: [UInt8] = [
        0x5e, 0xed,                                                              // @0: id 0x5eed
        0x81, 0x83,                                                              // @2: QR RD RA, NXDOMAIN
        0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,                          // @4: QD 1, AN 0, NS 1, AR 0
        // question
        0x0b, 0x6e, 0x6f, 0x6e, 0x65, 0x78, 0x69, 0x73, 0x74, 0x65, 0x6e, 0x74,  // @12: label "nonexistent"
        0x06, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72,                                // @24: label "docker"
        0x02, 0x69, 0x6f,                                                        // @31: label "io"
        0x00,                                                                    // @34: root
        0x00, 0x01,                                                              // @35: type A
        0x00, 0x01,                                                              // @37: class IN
        // authority: docker.io 900 IN SOA ns1.docker.io hostmaster.docker.io 2024010101 7200 900 1209600 300
        0xc0, 0x18,                                                              // @39: pointer to @24
        0x00, 0x06,                                                              // @41: type SOA
        0x00, 0x01,                                                              // @43: class IN
        0x00, 0x00, 0x03, 0x84,                                                  // @45: TTL 900
        0x00, 0x27,                                                              // @49: rdlength 39
        0x03, 0x6e, 0x73, 0x31,                                                  // @51: label "ns1"
        0xc0, 0x18,                                                              // @55: pointer to @24
        0x0a, 0x68, 0x6f, 0x73, 0x74, 0x6d, 0x61, 0x73, 0x74, 0x65, 0x72,        // @57: label "hostmaster"
        0xc0, 0x18,                                                              // @68: pointer to @24
        0x78, 0xa3, 0xf1, 0x75,                                                  // @70: serial
        0x00, 0x00, 0x1c, 0x20,                                                  // @74: refresh
        0x00, 0x00, 0x03, 0x84,                                                  // @78: retry
        0x00, 0x12, 0x75, 0x00,                                                  // @82: expire
        0x00, 0x00, 0x01, 0x2c,                                                  // @86: minimum
    ]

    /// registry-1.docker.io A: SERVFAIL, question echoed, no records.
    static let servfail: [UInt8] = [
        0x0b, 0xad,                                                        // @0: id 0x0bad
        0x81, 0x82,                                                        // @2: QR RD RA, SERVFAIL
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,                    // @4: QD 1, AN 0, NS 0, AR 0
        // question
        0x0a, 0x72, 0x65, 0x67, 0x69, 0x73, 0x74, 0x72, 0x79, 0x2d, 0x31,  // @12: label "registry-1"
        0x06, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72,                          // @23: label "docker"
        0x02, 0x69, 0x6f,                                                  // @30: label "io"
        0x00,                                                              // @33: root
        0x00, 0x01,                                                        // @34: type A
        0x00, 0x01,                                                        // @36: class IN
    ]

    /// registry-1.docker.io A: REFUSED by a server that offers no recursion (RA clear).
    static let refused: [UInt8] = [
        0x0b, 0xae,                                                        // @0: id 0x0bae
        0x81, 0x05,                                                        // @2: QR RD, REFUSED
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,                    // @4: QD 1, AN 0, NS 0, AR 0
        // question
        0x0a, 0x72, 0x65, 0x67, 0x69, 0x73, 0x74, 0x72, 0x79, 0x2d, 0x31,  // @12: label "registry-1"
        0x06, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72,                          // @23: label "docker"
        0x02, 0x69, 0x6f,                                                  // @30: label "io"
        0x00,                                                              // @33: root
        0x00, 0x01,                                                        // @34: type A
        0x00, 0x01,                                                        // @36: class IN
    ]

    /// registry-1.docker.io A over UDP: TC set, no records: ask again over TCP.
    static let truncated: [UInt8] = [
        0x7c, 0x7c,                                                        // @0: id 0x7c7c
        0x83, 0x80,                                                        // @2: QR TC RD RA, NOERROR
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,                    // @4: QD 1, AN 0, NS 0, AR 0
        // question
        0x0a, 0x72, 0x65, 0x67, 0x69, 0x73, 0x74, 0x72, 0x79, 0x2d, 0x31,  // @12: label "registry-1"
        0x06, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72,                          // @23: label "docker"
        0x02, 0x69, 0x6f,                                                  // @30: label "io"
        0x00,                                                              // @33: root
        0x00, 0x01,                                                        // @34: type A
        0x00, 0x01,                                                        // @36: class IN
    ]

    /// TC set and two answers announced, but the datagram was cut inside the first.
    static let truncatedCut: [UInt8] = [
        0x7c, 0x7d,                                                              // @0: id 0x7c7d
        0x83, 0x80,                                                              // @2: QR TC RD RA, NOERROR
        0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,                          // @4: QD 1, AN 2, NS 0, AR 0
        // question
        0x0a, 0x72, 0x65, 0x67, 0x69, 0x73, 0x74, 0x72, 0x79, 0x2d, 0x31,        // @12: label "registry-1"
        0x06, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72,                                // @23: label "docker"
        0x02, 0x69, 0x6f,                                                        // @30: label "io"
        0x00,                                                                    // @33: root
        0x00, 0x01,                                                              // @34: type A
        0x00, 0x01,                                                              // @36: class IN
        // answer, cut
        0xc0, 0x0c,                                                              // @38: pointer to @12
        0x00, 0x01,                                                              // @40: type A
        0x00, 0x01,                                                              // @42: class IN
        0x00, 0x00, 0x00, 0x3c,                                                  // @44: TTL 60
        0x00, 0x04,                                                              // @48: rdlength 4
        0x36, 0xe3,                                                              // @50: two of four address bytes
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // @52: padding, too short for the second answer
    ]

    /// auth.docker.io AAAA: NOERROR and nothing (NODATA): the name exists, no IPv6 address.
    static let noAddress: [UInt8] = [
        0x00, 0xaa,                                      // @0: id 0x00aa
        0x81, 0x80,                                      // @2: QR RD RA, NOERROR
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // @4: QD 1, AN 0, NS 0, AR 0
        // question
        0x04, 0x61, 0x75, 0x74, 0x68,                    // @12: label "auth"
        0x06, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72,        // @17: label "docker"
        0x02, 0x69, 0x6f,                                // @24: label "io"
        0x00,                                            // @27: root
        0x00, 0x1c,                                      // @28: type AAAA
        0x00, 0x01,                                      // @30: class IN
    ]

    /// registry.example.com A: only a CNAME to a name the answer says nothing more about.
    static let danglingCNAME: [UInt8] = [
        0x00, 0xab,                                                  // @0: id 0x00ab
        0x81, 0x80,                                                  // @2: QR RD RA, NOERROR
        0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,              // @4: QD 1, AN 1, NS 0, AR 0
        // question
        0x08, 0x72, 0x65, 0x67, 0x69, 0x73, 0x74, 0x72, 0x79,        // @12: label "registry"
        0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,              // @21: label "example"
        0x03, 0x63, 0x6f, 0x6d,                                      // @29: label "com"
        0x00,                                                        // @33: root
        0x00, 0x01,                                                  // @34: type A
        0x00, 0x01,                                                  // @36: class IN
        // answer: registry.example.com 300 IN CNAME elsewhere.example.net
        0xc0, 0x0c,                                                  // @38: pointer to @12
        0x00, 0x05,                                                  // @40: type CNAME
        0x00, 0x01,                                                  // @42: class IN
        0x00, 0x00, 0x01, 0x2c,                                      // @44: TTL 300
        0x00, 0x17,                                                  // @48: rdlength 23
        0x09, 0x65, 0x6c, 0x73, 0x65, 0x77, 0x68, 0x65, 0x72, 0x65,  // @50: label "elsewhere"
        0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65,              // @60: label "example"
        0x03, 0x6e, 0x65, 0x74,                                      // @68: label "net"
        0x00,                                                        // @72: root
    ]

    /// A question name that points back into itself: "a" then a pointer to @12, where "a" starts.
    static let compressionLoop: [UInt8] = [
        0x10, 0x01,                                      // @0: id 0x1001
        0x81, 0x80,                                      // @2: QR RD RA, NOERROR
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // @4: QD 1, AN 0, NS 0, AR 0
        // question
        0x01, 0x61,                                      // @12: label "a"
        0xc0, 0x0c,                                      // @14: pointer to @12
        0x00, 0x01,                                      // @16: type A
        0x00, 0x01,                                      // @18: class IN
    ]

    /// A question name that is a pointer forward, to @18.
    static let pointerForward: [UInt8] = [
        0x10, 0x02,                                      // @0: id 0x1002
        0x81, 0x80,                                      // @2: QR RD RA, NOERROR
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // @4: QD 1, AN 0, NS 0, AR 0
        // question
        0xc0, 0x12,                                      // @12: pointer to @18
        0x00, 0x01,                                      // @14: type A
        0x00, 0x01,                                      // @16: class IN
        0x01, 0x78,                                      // @18: label "x"
        0x00,                                            // @20: root
    ]

    /// A question name that points past the end of the message.
    static let pointerOutside: [UInt8] = [
        0x10, 0x03,                                      // @0: id 0x1003
        0x81, 0x80,                                      // @2: QR RD RA, NOERROR
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // @4: QD 1, AN 0, NS 0, AR 0
        // question
        0xff, 0xff,                                      // @12: pointer to @16383
        0x00, 0x01,                                      // @14: type A
        0x00, 0x01,                                      // @16: class IN
    ]

    /// An A record whose rdlength (255) runs past the end of the message.
    static let rdataPastEnd: [UInt8] = [
        0x10, 0x04,                                                        // @0: id 0x1004
        0x81, 0x80,                                                        // @2: QR RD RA, NOERROR
        0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,                    // @4: QD 1, AN 1, NS 0, AR 0
        // question
        0x0a, 0x72, 0x65, 0x67, 0x69, 0x73, 0x74, 0x72, 0x79, 0x2d, 0x31,  // @12: label "registry-1"
        0x06, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72,                          // @23: label "docker"
        0x02, 0x69, 0x6f,                                                  // @30: label "io"
        0x00,                                                              // @33: root
        0x00, 0x01,                                                        // @34: type A
        0x00, 0x01,                                                        // @36: class IN
        // answer
        0xc0, 0x0c,                                                        // @38: pointer to @12
        0x00, 0x01,                                                        // @40: type A
        0x00, 0x01,                                                        // @42: class IN
        0x00, 0x00, 0x00, 0x3c,                                            // @44: TTL 60
        0x00, 0xff,                                                        // @48: rdlength 255
        0x36, 0xe3, 0x14, 0xfd,                                            // @50: only 4 bytes follow
    ]

    /// An A record with 5 bytes of rdata.
    static let aFiveBytes: [UInt8] = [
        0x10, 0x05,                                                        // @0: id 0x1005
        0x81, 0x80,                                                        // @2: QR RD RA, NOERROR
        0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,                    // @4: QD 1, AN 1, NS 0, AR 0
        // question
        0x0a, 0x72, 0x65, 0x67, 0x69, 0x73, 0x74, 0x72, 0x79, 0x2d, 0x31,  // @12: label "registry-1"
        0x06, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72,                          // @23: label "docker"
        0x02, 0x69, 0x6f,                                                  // @30: label "io"
        0x00,                                                              // @33: root
        0x00, 0x01,                                                        // @34: type A
        0x00, 0x01,                                                        // @36: class IN
        // answer
        0xc0, 0x0c,                                                        // @38: pointer to @12
        0x00, 0x01,                                                        // @40: type A
        0x00, 0x01,                                                        // @42: class IN
        0x00, 0x00, 0x00, 0x3c,                                            // @44: TTL 60
        0x00, 0x05,                                                        // @48: rdlength 5
        0x36, 0xe3, 0x14, 0xfd, 0x01,                                      // @50: 5 bytes
    ]

    /// An AAAA record with 4 bytes of rdata.
    static let aaaaFourBytes: [UInt8] = [
        0x10, 0x06,                                                        // @0: id 0x1006
        0x81, 0x80,                                                        // @2: QR RD RA, NOERROR
        0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,                    // @4: QD 1, AN 1, NS 0, AR 0
        // question
        0x0a, 0x72, 0x65, 0x67, 0x69, 0x73, 0x74, 0x72, 0x79, 0x2d, 0x31,  // @12: label "registry-1"
        0x06, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72,                          // @23: label "docker"
        0x02, 0x69, 0x6f,                                                  // @30: label "io"
        0x00,                                                              // @33: root
        0x00, 0x1c,                                                        // @34: type AAAA
        0x00, 0x01,                                                        // @36: class IN
        // answer
        0xc0, 0x0c,                                                        // @38: pointer to @12
        0x00, 0x1c,                                                        // @40: type AAAA
        0x00, 0x01,                                                        // @42: class IN
        0x00, 0x00, 0x00, 0x3c,                                            // @44: TTL 60
        0x00, 0x04,                                                        // @48: rdlength 4
        0x36, 0xe3, 0x14, 0xfd,                                            // @50: 4 bytes
    ]

    /// A header that announces 65535 answers in a 38-byte message.
    static let countsTooLarge: [UInt8] = [
        0x10, 0x07,                                                        // @0: id 0x1007
        0x81, 0x80,                                                        // @2: QR RD RA, NOERROR
        0x00, 0x01, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,                    // @4: QD 1, AN 65535, NS 0, AR 0
        // question
        0x0a, 0x72, 0x65, 0x67, 0x69, 0x73, 0x74, 0x72, 0x79, 0x2d, 0x31,  // @12: label "registry-1"
        0x06, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72,                          // @23: label "docker"
        0x02, 0x69, 0x6f,                                                  // @30: label "io"
        0x00,                                                              // @33: root
        0x00, 0x01,                                                        // @34: type A
        0x00, 0x01,                                                        // @36: class IN
    ]

    /// A question name whose first length byte has the reserved type bits 01 (0x41).
    static let extendedLabel: [UInt8] = [
        0x10, 0x08,                                      // @0: id 0x1008
        0x81, 0x80,                                      // @2: QR RD RA, NOERROR
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // @4: QD 1, AN 0, NS 0, AR 0
        // question
        0x41, 0x61,                                      // @12: label type 01, then a byte
        0x00,                                            // @14: root
        0x00, 0x01,                                      // @15: type A
        0x00, 0x01,                                      // @17: class IN
    ]

    /// A CNAME whose target name runs past its rdlength (2) into the next bytes.
    static let cnameOverrun: [UInt8] = [
        0x10, 0x09,                                                        // @0: id 0x1009
        0x81, 0x80,                                                        // @2: QR RD RA, NOERROR
        0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,                    // @4: QD 1, AN 1, NS 0, AR 0
        // question
        0x0a, 0x72, 0x65, 0x67, 0x69, 0x73, 0x74, 0x72, 0x79, 0x2d, 0x31,  // @12: label "registry-1"
        0x06, 0x64, 0x6f, 0x63, 0x6b, 0x65, 0x72,                          // @23: label "docker"
        0x02, 0x69, 0x6f,                                                  // @30: label "io"
        0x00,                                                              // @33: root
        0x00, 0x01,                                                        // @34: type A
        0x00, 0x01,                                                        // @36: class IN
        // answer
        0xc0, 0x0c,                                                        // @38: pointer to @12
        0x00, 0x05,                                                        // @40: type CNAME
        0x00, 0x01,                                                        // @42: class IN
        0x00, 0x00, 0x00, 0x3c,                                            // @44: TTL 60
        0x00, 0x02,                                                        // @48: rdlength 2
        0x04, 0x65, 0x64, 0x67, 0x65,                                      // @50: label "edge"
        0xc0, 0x0c,                                                        // @55: pointer to @12
    ]

    /// Eleven bytes: shorter than a header.
    static let headerOnly: [UInt8] = [
        0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,  // @0: 11 header bytes
    ]
}
