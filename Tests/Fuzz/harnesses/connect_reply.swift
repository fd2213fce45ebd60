// libFuzzer harness: the HTTP CONNECT handshake (`HTTPConnectTunnel.open`), reading a proxy's
// answer to CONNECT from the fuzz input.
//
// Input: byte 0 picks credentials or none; byte 1 the size of the pieces the proxy's bytes
// arrive in; the rest is what the proxy sends. Beyond "never traps": a tunnel that opens
// returns exactly the input's bytes after the answer's head, first.
import EgressNet

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let input = PiecedInput(data, size) else { return 0 }
    let credentials = input.control & 1 != 0 ? ProxyCredentials(username: "egress", password: "s3cret") : nil
    runBlocking {
        let stream = MemoryStream(input.bytes, pieceSize: input.pieceSize)
        do throws(ProxyError) {
            let tunnel = try await HTTPConnectTunnel.open(over: stream, authority: "registry-1.docker.io:443",
                                                          credentials: credentials, deadline: .after(seconds: 5))
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
