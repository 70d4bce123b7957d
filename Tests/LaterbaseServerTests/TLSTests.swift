import AsyncHTTPClient
import Foundation
import LaterbaseCore
import NIOSSL
import Testing
import ZeroMQ

/// CONTRACT.md "Access", HTTP: `--tls-cert`/`--tls-key` serve HTTP over TLS only; a peer URL may be
/// `https://`, verified against `--tls-ca`. Real processes, certificates made by openssl.
@Suite(.serialized) struct TLSTests {
    /// A CA and a certificate for 127.0.0.1 signed by it, in `folder`.
    static func makeCertificates(in folder: String) async throws {
        let script = """
            set -e
            cd '\(folder)'
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=Laterbase test CA' 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout node.key -out node.csr -subj '/CN=127.0.0.1' 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext
            openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out node.pem -days 2 -extfile ext 2>/dev/null
            """
        let (status, output) = try await runToEnd("/bin/sh", ["-c", script])
        guard status == 0 else { throw ServerProcess.ProcessError(message: "openssl failed: \(output)") }
    }

    @Test func httpsOnlyAndAnHttpsPeerVerifiedAgainstTheGivenCA() async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try await Self.makeCertificates(in: folder)
        let peerKey = try CurveKeyPair.generate()
        let admin = AccessTests.Entry("ops", "admin"), peer = AccessTests.Entry("node-b", "peer", extra: #","curve_public_key":"\#(peerKey.publicKey)""#)
        try AccessTests.file([admin, peer]).write(toFile: folder + "/credentials.json", atomically: true, encoding: .utf8)
        try peer.token.write(toFile: folder + "/token", atomically: true, encoding: .utf8)
        try peerKey.secretKey.write(toFile: folder + "/b.key", atomically: true, encoding: .utf8)

        let a = try await ServerProcess(
            data: folder + "/a", replica: "hq-a",
            arguments: ["--credentials", folder + "/credentials.json", "--tls-cert", folder + "/node.pem", "--tls-key", folder + "/node.key"])
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.additionalTrustRoots = [.file(folder + "/ca.pem")]
        let trusting = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        let httpA = HTTP(base: "https://127.0.0.1:\(a.port)", token: admin.token, client: trusting)
        #expect(try await httpA.get("/healthz").status == 200)
        #expect(try await httpA.post("/e/notes", newEvents(10, tag: "a").body).status == 201)

        // Plain HTTP gets no answer; a client that does not trust the CA refuses the certificate.
        await #expect(throws: (any Error).self) { _ = try await HTTP(port: a.port, token: admin.token).request(.GET, "/node", timeout: .seconds(5)) }
        let untrusting = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: .makeClientConfiguration()))
        await #expect(throws: (any Error).self) { _ = try await HTTP(base: "https://127.0.0.1:\(a.port)", client: untrusting).request(.GET, "/healthz", timeout: .seconds(5)) }

        // A peer over https, trusting the CA: sync both ways.
        let b = try await ServerProcess(
            data: folder + "/b", replica: "hq-b",
            arguments: [
                "--peer", "https://127.0.0.1:\(a.port)", "--tls-ca", folder + "/ca.pem", "--token-file", folder + "/token", "--curve-secret-key", folder + "/b.key",
            ])
        let httpB = HTTP(port: b.port)
        #expect(try await httpB.post("/e/notes", newEvents(10, tag: "b").body).status == 201)
        try await converge([httpA, httpB], roots: ["notes"], timeout: .seconds(30))
        #expect(try await httpB.allEvents("notes").head == "hq-a:10,hq-b:10")

        // Without the CA, the same peer cannot verify the node and syncs nothing.
        let c = try await ServerProcess(data: folder + "/c", replica: "hq-c", arguments: ["--peer", "https://127.0.0.1:\(a.port)", "--token-file", folder + "/token"])
        let httpC = HTTP(port: c.port)
        try await eventually { (try await httpC.get("/node").json["peers"]?.arrayFirst?["error"]?.stringValue ?? "").isEmpty == false }
        #expect(try await httpC.allEvents("notes").events.isEmpty)
        for node in [a, b, c] { node.signal(SIGTERM) }
        for node in [a, b, c] { #expect(await node.waitForExit() == 0) }
        try await trusting.shutdown()
        try await untrusting.shutdown()
    }
}
