// libFuzzer harness: the SOCKS5 client handshake (`SOCKS5Tunnel.open`), reading a proxy's
// method choice, RFC 1929 status and CONNECT reply from the fuzz input.
//
// Input: byte 0 picks credentials or none and a name or an address destination; byte 1 the
// size of the pieces the proxy's bytes arrive in; the rest is what the proxy sends.
// Beyond "never traps": a tunnel that opens returns exactly the bytes the handshake did not
// consume, first.
import EgressNet

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let input = PiecedInput(data, size, maxPiece: 32) else { return 0 }
    let control = input.control
    let credentials = control & 1 != 0 ? ProxyCredentials(username: "egress", password: "s3cret") : nil
    let destination: SOCKS5Tunnel.Destination = control & 2 != 0
        ? .name("registry-1.docker.io") : .address(control & 4 != 0 ? IPAddress("2001:db8::1")! : IPAddress("127.0.0.1")!)
    runBlocking {
        let stream = MemoryStream(input.bytes, pieceSize: input.pieceSize)
        do throws(ProxyError) {
            let tunnel = try await SOCKS5Tunnel.open(over: stream, to: destination, port: 443, credentials: credentials,
                                                    deadline: .after(seconds: 5))
            var rest: [UInt8] = []
            while true {
                let more = (try? await tunnel.read(maxBytes: 4096, deadline: .after(seconds: 5))) ?? []
                if more.isEmpty { break }
                rest += more
            }
            precondition(rest.count <= input.bytes.count && Array(input.bytes.suffix(rest.count)) == rest,
                         "the tunnel's first bytes are not the input's tail")
        } catch {
            _ = error.description
        }
    }
    return 0
}
