import Foundation
import LaterbaseCore
import LaterbaseDemo
import LaterbaseServer
import LaterbaseSync
import Logging
import Testing
import ZeroMQ

/// CONTRACT.md "Access" over HTTP: principals from a credentials file, their roles, 401 and 403
/// with the contract's codes and details, SIGHUP reload, and the loopback rule of open nodes.
@Suite struct AccessTests {
    /// A principal's entry in a credentials file, and the token it presents.
    struct Entry {
        let token = UUID().uuidString + UUID().uuidString
        let json: String

        init(_ name: String, _ role: String, extra: String = "") {
            json = #"{"name":"\#(name)","role":"\#(role)","token_sha256":"\#(SHA256.hex(token))"\#(extra)}"#
        }
    }

    static func file(_ entries: [Entry]) -> String { #"{"principals":[\#(entries.map(\.json).joined(separator: ","))]}"# }

    let admin = Entry("ops", "admin")
    let peer = Entry("node-b", "peer")
    let device = Entry("truck-7", "device", extra: #","origin":"truck-7","write":["notes","inventory"],"read":["notes"]"#)
    let reader = Entry("dashboard", "reader", extra: #","read":["shipments"]"#)
    let monitor = Entry("prometheus", "monitor")

    func withCredentials(_ body: @Sendable (HTTP) async throws -> Void) async throws {
        let credentials = try Credentials(json: Array(Self.file([admin, peer, device, reader, monitor]).utf8))
        try await withServer(configure: { $0.access = Access(path: nil, credentials: credentials) }) { http, _ in try await body(http) }
    }

    @Test func withoutAKnownTokenOnlyHealthzAnswers() async throws {
        try await withCredentials { http in
            #expect(try await http.get("/healthz").status == 200)
            for path in ["/node", "/metrics", "/e/notes", "/a/notes", "/a/notes/x", "/h/notes/x", "/stats", "/openapi.json", "/no-such-route"] {
                let anonymous = try await http.get(path)
                #expect(anonymous.status == 401, "\(path)")
                #expect(anonymous.error == "unauthorized")
                #expect(anonymous.headers.first(name: "www-authenticate")?.hasPrefix("Bearer") == true)
                let unknown = try await http.with(token: "not-a-token").get(path)
                #expect(unknown.status == 401)
                #expect(unknown.json["message"]?.stringValue?.contains("not-a-token") == false, "a token is never echoed")
            }
            let write = try await http.post("/e/notes", #"{"aggregate":"a","type":"t"}"#)
            #expect(write.status == 401)
            #expect(try await http.with(token: admin.token).allEvents("notes").events.isEmpty)
        }
    }

    /// A recorded event of a type the schema does not know (contract v3): kept, unfolded, from
    /// a peer or an admin (replication); refused from a device, 422, and nothing stored.
    @Test func onlyPeersAndAdminsReplicateEventsTheSchemaDoesNotKnow() async throws {
        try await withCredentials { http in
            func event(_ origin: String, _ n: Int) -> String {
                #"{"id":"0193a1b2-c3d4-7e5f-8a9b-00000000020\#(n)","aggregate":"SKU-9","type":"stock.audited","version":3,"data":{"qty":1},"origin":"\#(origin)","seq":1,"hlc":"0001934f5a2b000\#(n)"}"#
            }
            let refused = try await http.with(token: device.token).post("/e/inventory", event("truck-7", 1))
            #expect(refused.status == 422 && refused.error == "invalid_event", "\(refused.text)")
            #expect(try await http.with(token: peer.token).post("/e/inventory", event("hq-2", 2)).status == 201)
            #expect(try await http.with(token: admin.token).post("/e/inventory", event("hq-3", 3)).status == 201)
            let head = try await http.with(token: admin.token).get("/e/inventory?limit=0").json["head"]
            #expect(head == .string("hq-2:1,hq-3:1"))
            #expect(try await http.with(token: admin.token).get("/a/inventory/SKU-9").status == 404)
        }
    }

    @Test func readersReadTheirRootsOnly() async throws {
        try await withCredentials { http in
            let r = http.with(token: reader.token)
            #expect(try await r.get("/e/shipments").status == 200)
            #expect(try await r.get("/a/shipments").status == 200)
            let node = try await r.get("/node")
            #expect(node.status == 200)
            #expect(node.json["caller"]?["read"] == .array([.string("shipments")]))
            #expect(node.json["caller"]?["write"] == .array([]))
            let notes = try await r.get("/e/notes")
            #expect(notes.status == 403)
            #expect(notes.error == "forbidden")
            #expect(notes.json["details"] == .array([.object([("root", .string("notes"))])]))
            #expect(try await r.get("/a/notes/x").status == 403)
            #expect(try await r.get("/metrics").status == 403)
            let write = try await r.post("/e/shipments", #"{"aggregate":"SHP-1","type":"shipment.created","data":{"origin":"AKL","destination":"CHC"}}"#)
            #expect(write.status == 403)
            #expect(write.json["details"] == .array([.object([("root", .string("shipments"))])]))
            #expect(try await http.with(token: admin.token).allEvents("shipments").events.isEmpty)
        }
    }

    @Test func monitorsSeeMetricsAndNodeOnly() async throws {
        try await withCredentials { http in
            let m = http.with(token: monitor.token)
            let metrics = try await m.get("/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.text.contains("laterbase_errors_total"))
            #expect(try await m.get("/node").json["replica"] == .string("hq-1"))
            #expect(try await m.get("/e/notes").status == 403)
            #expect(try await m.post("/e/notes", #"{"aggregate":"a","type":"t"}"#).status == 403)
            #expect(try await http.with(token: peer.token).get("/metrics").status == 403)
        }
    }

    @Test func aDeviceWritesItsRootsAndRecordsOnlyAsItsOwnOrigin() async throws {
        try await withCredentials { http in
            let d = http.with(token: device.token)
            #expect(try await d.post("/e/notes", #"{"aggregate":"n1","type":"noted"}"#).status == 201)
            let own = #"{"id":"0193a1b2-c3d4-7e5f-8a9b-000000000001","aggregate":"n1","type":"noted","origin":"truck-7","seq":1,"hlc":"0001934f5a2b0000"}"#
            #expect(try await d.post("/e/notes", own).status == 201)
            // One event recorded as another origin refuses the whole batch.
            let forged = #"{"id":"0193a1b2-c3d4-7e5f-8a9b-000000000002","aggregate":"n2","type":"noted","origin":"truck-9","seq":1,"hlc":"0001934f5a2b0000"}"#
            let batch = try await d.post("/e/notes", #"[{"aggregate":"n3","type":"noted"},\#(forged)]"#)
            #expect(batch.status == 403)
            #expect(batch.error == "forbidden")
            #expect(batch.json["details"] == .array([.object([("root", .string("notes")), ("index", .integer(1)), ("origin", .string("truck-9"))])]))
            let stored = try await http.with(token: admin.token).allEvents("notes").events
            #expect(stored.count == 2)
            #expect(!stored.contains { $0["aggregate"] == .string("n3") || $0["origin"] == .string("truck-9") })
            // Roots: writes to notes and inventory, reads notes only.
            #expect(try await d.post("/e/shipments", #"{"aggregate":"SHP-1","type":"shipment.created","data":{"origin":"AKL","destination":"CHC"}}"#).status == 403)
            #expect(try await d.post("/e/inventory", #"{"aggregate":"SKU-1","type":"stock.counted","data":{"qty":3}}"#).status == 201)
            #expect(try await d.get("/a/notes/n1").status == 200)
            #expect(try await d.get("/e/inventory").status == 403)
        }
    }

    @Test func peersAndAdminsWriteAnyOrigin() async throws {
        try await withCredentials { http in
            for (i, token) in [peer.token, admin.token].enumerated() {
                let event = #"{"id":"0193a1b2-c3d4-7e5f-8a9b-00000000010\#(i)","aggregate":"p","type":"t","origin":"truck-9","seq":\#(i + 1),"hlc":"0001934f5a2b000\#(i)"}"#
                let written = try await http.with(token: token).post("/e/notes", event)
                let read = try await http.with(token: token).get("/e/shipments")
                #expect(written.status == 201)
                #expect(read.status == 200)
            }
            let metrics = try await http.with(token: admin.token).get("/metrics")
            #expect(metrics.status == 200)
        }
    }

    @Test func anInvalidFileIsRefusedNamingThePrincipal() throws {
        let cases: [(String, String)] = [
            (#"{"principals":[{"name":"x","role":"root","token_sha256":"\#(SHA256.hex("t"))"}]}"#, "principal 'x': role"),
            (#"{"principals":[{"name":"d","role":"device","token_sha256":"\#(SHA256.hex("t"))","write":["*"],"read":["*"]}]}"#, "principal 'd': a device needs its origin"),
            (#"{"principals":[{"name":"a","role":"admin","token_sha256":"\#(SHA256.hex("t"))"},{"name":"a","role":"admin","token_sha256":"\#(SHA256.hex("u"))"}]}"#, "principal 'a': the name is used twice"),
            (#"{"principals":[{"name":"h","role":"admin","token_sha256":"ABC"}]}"#, "principal 'h': token_sha256"),
            (#"{"principals":[{"name":"k","role":"peer","token_sha256":"\#(SHA256.hex("t"))","curve_public_key":"short"}]}"#, "principal 'k': curve_public_key"),
            (#"{"principals":"#, "not JSON"),
        ]
        for (text, message) in cases {
            #expect(throws: Credentials.Invalid.self) { try Credentials(json: Array(text.utf8)) }
            do { _ = try Credentials(json: Array(text.utf8)) } catch { #expect(error.description.contains(message), "\(error)") }
        }
    }

    @Test func sha256AndZ85MatchTheirStandards() {
        #expect(SHA256.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex(String(repeating: "a", count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        #expect(Z85.encode([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]) == "HelloWorld")
        #expect(Z85.decode("HelloWorld") == [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])
        #expect(Z85.decode("Hello Worl") == nil)
    }

    /// The real process: SIGHUP re-reads the file; an invalid one leaves the old principals in force.
    @Test func sighupReloadsTheFileAndKeepsTheOldOneWhenTheNewIsInvalid() async throws {
        let data = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let path = data + ".credentials.json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = Entry("first", "reader", extra: #","read":["*"]"#), second = Entry("second", "reader", extra: #","read":["*"]"#)
        try Self.file([first]).write(toFile: path, atomically: true, encoding: .utf8)
        let node = try await ServerProcess(data: data, arguments: ["--credentials", path])
        let http = HTTP(port: node.port)
        #expect(try await http.with(token: first.token).get("/e/notes").status == 200)
        #expect(try await http.with(token: second.token).get("/e/notes").status == 401)

        try Self.file([second]).write(toFile: path, atomically: true, encoding: .utf8)
        node.signal(SIGHUP)
        try await eventually { try await http.with(token: first.token).get("/e/notes").status == 401 }
        #expect(try await http.with(token: second.token).get("/e/notes").status == 200)

        try #"{"principals":[{"name":"bad","role":"wizard"}]}"#.write(toFile: path, atomically: true, encoding: .utf8)
        node.signal(SIGHUP)
        try await eventually { node.logText.contains("credentials not reloaded") }
        #expect(node.logText.contains("principal 'bad'"))
        #expect(try await http.with(token: second.token).get("/e/notes").status == 200)
        #expect(!node.logText.contains(second.token) && !node.logText.contains(first.token), "tokens are never logged")
        node.signal(SIGTERM)
        #expect(await node.waitForExit() == 0)
    }

    @Test func anOpenNodeRefusesToListenBeyondLoopbackUnlessInsecure() async throws {
        let data = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let refused = try await runLaterbase(["serve", "--data", data, "--http", "0.0.0.0:0", "--ingest", "none", "--publish", "none"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("--credentials") && refused.output.contains("0.0.0.0"))
        let exposedIngest = try await runLaterbase(["serve", "--data", data, "--http", "127.0.0.1:0", "--ingest", "tcp://*:0", "--publish", "none"])
        #expect(exposedIngest.status != 0)
        #expect(exposedIngest.output.contains("ingest tcp://*:0"))
        // Only addresses are loopback: a name that begins with 127. resolves wherever its owner likes.
        for (http, ingest, named) in [("127.0.0.1.nip.io:0", "none", "127.0.0.1.nip.io"), ("127.0.0.1:0", "tcp://127.attacker.example:0", "127.attacker.example")] {
            let named127 = try await runLaterbase(["serve", "--data", data, "--http", http, "--ingest", ingest, "--publish", "none"])
            #expect(named127.status != 0 && named127.output.contains(named), "\(named127.output.prefix(300))")
        }
        let bad = data + ".bad.json"
        try #"{"principals":[{"name":"d","role":"device","token_sha256":"\#(SHA256.hex("t"))"}]}"#.write(toFile: bad, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: bad) }
        let invalid = try await runLaterbase(["serve", "--data", data, "--credentials", bad])
        #expect(invalid.status != 0)
        #expect(invalid.output.contains("principal 'd'"))
        // --insecure: it starts, and says it is open.
        let node = try await ServerProcess(data: data, http: "0.0.0.0:0", arguments: ["--insecure"])
        #expect(try await HTTP(port: node.port).post("/e/notes", #"{"aggregate":"a","type":"t"}"#).status == 201)
        #expect(node.logText.contains("no credentials"))
    }
}

/// Polls `condition` every 50 ms for up to 10 s.
func eventually(_ condition: @Sendable () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("condition not met within 10 s")
}

/// CONTRACT.md "Access", ZeroMQ CURVE: with credentials both sockets are CURVE servers and the ZAP
/// handler admits only principals allowed there; each ingest message is checked with its sender's
/// principal as HTTP would check it.
@Suite struct CurveAccessTests {
    /// The count of `laterbase_zmq_handshakes_refused_total` for a socket and reason.
    static func refusals(_ metrics: String, socket: String, reason: String) -> Int {
        for line in metrics.split(separator: "\n") where line.hasPrefix("laterbase_zmq_handshakes_refused_total")
            && line.contains(#"socket="\#(socket)""#) && line.contains(#"reason="\#(reason)""#) {
            return Int(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }

    @Test func curveAdmitsOnlyPrincipalsAllowedOnEachSocket() async throws {
        let truck = try CurveKeyPair.generate(), watcher = try CurveKeyPair.generate(), stranger = try CurveKeyPair.generate()
        let admin = AccessTests.Entry("ops", "admin")
        let device = AccessTests.Entry(
            "truck-7", "device", extra: #","origin":"truck-7","write":["notes"],"read":["notes"],"curve_public_key":"\#(truck.publicKey)""#)
        let reader = AccessTests.Entry("watcher", "reader", extra: #","read":["*"],"curve_public_key":"\#(watcher.publicKey)""#)
        let credentials = try Credentials(json: Array(AccessTests.file([admin, device, reader]).utf8))
        try await withServer(configure: { $0.access = Access(path: nil, credentials: credentials) }) { anonymous, server in
            let http = anonymous.with(token: admin.token)
            let node = try await http.get("/node").json
            #expect(node["curve"] == .bool(true))
            let serverKey = try #require(node["curve_public_key"]?.stringValue)
            #expect(serverKey == server.curvePublicKey && Z85.isKey(serverKey))
            let ingest = try #require(node["ingest"]?.stringValue), publish = try #require(node["publish"]?.stringValue)

            // The reader may subscribe (it reads every root); the device pushes.
            let watching = try ZMQClient(ingest: ingest, publish: publish, curve: (serverKey, watcher))
            defer { watching.close() }
            try await watching.awaitSubscription { _ = try await http.post("/e/notes", #"{"aggregate":"poke","type":"poked"}"#) }
            let pushing = try ZMQClient(ingest: ingest, publish: publish, curve: (serverKey, truck))
            defer { pushing.close() }
            let good = newEvents(3, tag: "good")
            try pushing.send(["notes", good.body])
            let forged = #"[{"id":"0193a1b2-c3d4-7e5f-8a9b-000000000009","aggregate":"x","type":"t","origin":"truck-9","seq":1,"hlc":"0001934f5a2b0000"}]"#
            try pushing.send(["notes", forged])
            let seen = try await watching.receive(timeout: .seconds(10)) { got in got.contains { $0.topic == "_rejected" } && got.contains { $0.topic == "notes" } }
            let rejection = try #require(seen.first { $0.topic == "_rejected" }?.body)
            #expect(rejection["error"] == .string("forbidden"))
            #expect(rejection["ids"] == .array([.string("0193a1b2-c3d4-7e5f-8a9b-000000000009")]))
            let stored = try await http.allEvents("notes").events
            let storedIDs = Set(stored.compactMap { $0["id"]?.stringValue })
            #expect(storedIDs.isSuperset(of: good.ids))
            #expect(!stored.contains { $0["origin"] == .string("truck-9") })

            // A key no principal has, and a client without CURVE, get nowhere.
            let strangers = try ZMQClient(ingest: ingest, publish: publish, curve: (serverKey, stranger))
            defer { strangers.close() }
            let plain = try ZMQClient(ingest: ingest, publish: publish)
            defer { plain.close() }
            let lost = newEvents(2, tag: "lost")
            _ = try strangers.push.send([Array("notes".utf8), Array(lost.body.utf8)], wait: false)
            _ = try plain.push.send([Array("notes".utf8), Array(lost.body.utf8)], wait: false)
            try await eventually {
                let metrics = try await http.get("/metrics").text
                // The stranger is refused on both sockets; the device on publish (it reads only notes).
                return Self.refusals(metrics, socket: "ingest", reason: "unknown_key") >= 1
                    && Self.refusals(metrics, socket: "publish", reason: "unknown_key") >= 1
                    && Self.refusals(metrics, socket: "publish", reason: "forbidden") >= 1
            }
            try await Task.sleep(for: .milliseconds(300))
            let after = try await http.allEvents("notes").events
            #expect(!after.contains { lost.ids.contains($0["id"]?.stringValue ?? "") })
            #expect(try await pushing.receive(timeout: .milliseconds(300)) { _ in false }.isEmpty, "the device has no subscription")
        }
    }

    @Test func anOpenNodeSaysItsSocketsAreNotCurve() async throws {
        try await withServer { http, server in
            let node = try await http.get("/node").json
            #expect(node["curve"] == .bool(false))
            #expect(node["curve_public_key"] == .string(server.curvePublicKey))
        }
    }
}

/// Peers and devices with credentials: real processes, a token from `--token-file`, CURVE keys
/// from `--curve-secret-key` and from an `EdgeDevice`'s folder.
@Suite(.serialized) struct PeerAccessTests {
    @Test func aPeerAndADeviceSyncWithANodeThatHasCredentials() async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let peerKey = try CurveKeyPair.generate(), deviceKey = try CurveKeyPair.generate()
        let admin = AccessTests.Entry("ops", "admin")
        let peer = AccessTests.Entry("node-b", "peer", extra: #","curve_public_key":"\#(peerKey.publicKey)""#)
        let device = AccessTests.Entry(
            "truck-7", "device", extra: #","origin":"truck-7","write":["notes"],"read":["notes"],"curve_public_key":"\#(deviceKey.publicKey)""#)
        try AccessTests.file([admin, peer, device]).write(toFile: folder + "/credentials.json", atomically: true, encoding: .utf8)
        try "  \(peer.token)\n".write(toFile: folder + "/token", atomically: true, encoding: .utf8)
        try peerKey.secretKey.write(toFile: folder + "/b.key", atomically: true, encoding: .utf8)
        try "not-the-token".write(toFile: folder + "/wrong-token", atomically: true, encoding: .utf8)

        let a = try await ServerProcess(data: folder + "/a", replica: "hq-a", arguments: ["--credentials", folder + "/credentials.json"])
        let httpA = HTTP(port: a.port, token: admin.token)
        let b = try await ServerProcess(
            data: folder + "/b", replica: "hq-b",
            arguments: ["--peer", "http://127.0.0.1:\(a.port)", "--token-file", folder + "/token", "--curve-secret-key", folder + "/b.key"])
        let httpB = HTTP(port: b.port)
        #expect(try await httpB.get("/node").json["curve_public_key"] == .string(peerKey.publicKey))
        for i in 0..<5 {
            #expect(try await httpA.post("/e/notes", newEvents(10, tag: "a\(i)").body).status == 201)
            #expect(try await httpB.post("/e/notes", newEvents(10, tag: "b\(i)").body).status == 201)
        }
        try await converge([httpA, httpB], roots: ["notes"], timeout: .seconds(30))
        #expect(try await httpA.allEvents("notes").head == "hq-a:50,hq-b:50")
        // B's events reached A by push through A's CURVE ingest, as the peer principal.
        #expect(try await counter(httpA, "laterbase_ingest_events_total") > 0)

        // A node presenting a wrong token gets nothing and says why.
        let c = try await ServerProcess(data: folder + "/c", replica: "hq-c", arguments: ["--peer", "http://127.0.0.1:\(a.port)", "--token-file", folder + "/wrong-token"])
        let httpC = HTTP(port: c.port)
        try await eventually { (try await httpC.get("/node").json["peers"]?.arrayFirst?["error"]?.stringValue ?? "").contains("401") }
        #expect(try await httpC.allEvents("notes").events.isEmpty)

        // A device: its token and its key pair; it reads only notes, so it syncs from the feed.
        var logger = Logger(label: "device")
        logger.logLevel = .warning
        let edge = try EdgeDevice(
            directory: folder + "/device", roots: Demo.roots + [.jsonMerge("notes")], upstream: "http://127.0.0.1:\(a.port)", replicaID: "truck-7",
            token: device.token, keyPair: deviceKey, logger: logger)
        await edge.start()
        _ = try await edge.record(root: "notes", [EventInput(id: nil, aggregate: "n1", type: "noted", data: .object([("at", .string("AKL"))]))])
        #expect(await edge.sync(timeout: .seconds(30)))
        #expect(try await httpA.allEvents("notes").head == "hq-a:50,hq-b:50,truck-7:1")
        #expect(try edge.store.head(of: "notes").description == "hq-a:50,hq-b:50,truck-7:1")
        await edge.stop()

        // A device presenting truck-7's credentials as replica truck-9 gets nothing stored.
        let impostor = try EdgeDevice(
            directory: folder + "/impostor", roots: Demo.roots + [.jsonMerge("notes")], upstream: "http://127.0.0.1:\(a.port)", replicaID: "truck-9",
            token: device.token, keyPair: deviceKey, logger: logger)
        await impostor.start()
        _ = try await impostor.record(root: "notes", [EventInput(id: nil, aggregate: "n9", type: "noted", data: .object([]))])
        #expect(await impostor.sync(timeout: .seconds(3)) == false)
        await impostor.stop()
        #expect(try await httpA.allEvents("notes").head == "hq-a:50,hq-b:50,truck-7:1")
        for node in [a, b, c] { node.signal(SIGTERM) }
        for node in [a, b, c] { #expect(await node.waitForExit() == 0) }
    }
}

/// `laterbase credentials`, and a device written in Python with CURVE, against real processes.
@Suite(.serialized) struct CredentialsToolTests {
    /// The value printed after `label: ` in `output`.
    static func printed(_ label: String, in output: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix(label + ": ") }.map { String($0.dropFirst(label.count + 2)) }
    }

    @Test func addListRemoveAndAPythonDeviceOverCurve() async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/credentials.json"
        let added = try await runLaterbase(["credentials", "add", "ops", "--role", "admin", "--file", file])
        #expect(added.status == 0, "\(added.output)")
        let adminToken = try #require(Self.printed("token", in: added.output))
        let device = try await runLaterbase([
            "credentials", "add", "truck-7", "--role", "device", "--origin", "truck-7", "--write", "notes", "--read", "notes", "--file", file, "--curve",
        ])
        #expect(device.status == 0, "\(device.output)")
        let deviceToken = try #require(Self.printed("token", in: device.output))
        let publicKey = try #require(Self.printed("curve public key", in: device.output))
        let secretKey = try #require(Self.printed("curve secret key", in: device.output))
        // The file holds hashes, never a token, and only its owner reads it.
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(!text.contains(adminToken) && !text.contains(deviceToken) && !text.contains(secretKey))
        #expect(text.contains(SHA256.hex(deviceToken)) && text.contains(publicKey))
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // A principal that would make the file invalid is not added, and the file is unchanged.
        let invalid = try await runLaterbase(["credentials", "add", "truck-8", "--role", "device", "--file", file])
        #expect(invalid.status != 0 && invalid.output.contains("origin"))
        #expect(try String(contentsOfFile: file, encoding: .utf8) == text)
        let listed = try await runLaterbase(["credentials", "list", "--file", file])
        #expect(listed.output.contains("truck-7\tdevice\torigin=truck-7\twrite=notes\tread=notes\tcurve=\(publicKey)"))

        let node = try await ServerProcess(data: folder + "/node", arguments: ["--credentials", file])
        let http = HTTP(port: node.port, token: adminToken)
        #expect(try await http.get("/node").status == 200)

        // A device in another language: pyzmq, its key pair, the node's key from /node.
        let (pythonStatus, pythonText) = try await runForeignClient("zmq_curve.py", ["http://127.0.0.1:\(node.port)", deviceToken, publicKey, secretKey, "truck-7"])
        #expect(pythonStatus == 0, "\(pythonText)")
        #expect(pythonText.contains("OK: 5 events over CURVE"), "\(pythonText)")

        // Removed, then SIGHUP: its token is refused.
        #expect(try await runLaterbase(["credentials", "remove", "truck-7", "--file", file]).status == 0)
        node.signal(SIGHUP)
        try await eventually { try await http.with(token: deviceToken).get("/e/notes").status == 401 }
        #expect(try await http.get("/e/notes").status == 200)
        node.signal(SIGTERM)
        #expect(await node.waitForExit() == 0)
    }
}

extension CurveAccessTests {
    /// The rest of the role table on ZeroMQ: an admin pushes and subscribes; a reader may not push;
    /// a monitor may not connect to either socket.
    @Test func theRoleTableOnZeroMQ() async throws {
        let adminKey = try CurveKeyPair.generate(), readerKey = try CurveKeyPair.generate(), monitorKey = try CurveKeyPair.generate()
        let admin = AccessTests.Entry("ops", "admin", extra: #","curve_public_key":"\#(adminKey.publicKey)""#)
        let reader = AccessTests.Entry("dashboard", "reader", extra: #","read":["*"],"curve_public_key":"\#(readerKey.publicKey)""#)
        let monitor = AccessTests.Entry("prom", "monitor", extra: #","curve_public_key":"\#(monitorKey.publicKey)""#)
        let credentials = try Credentials(json: Array(AccessTests.file([admin, reader, monitor]).utf8))
        try await withServer(configure: { $0.access = Access(path: nil, credentials: credentials) }) { anonymous, _ in
            let http = anonymous.with(token: admin.token)
            let node = try await http.get("/node").json
            let serverKey = try #require(node["curve_public_key"]?.stringValue)
            let ingest = try #require(node["ingest"]?.stringValue), publish = try #require(node["publish"]?.stringValue)

            let asAdmin = try ZMQClient(ingest: ingest, publish: publish, curve: (serverKey, adminKey))
            defer { asAdmin.close() }
            try await asAdmin.awaitSubscription { _ = try await http.post("/e/notes", #"{"aggregate":"poke","type":"poked"}"#) }
            let fromAdmin = newEvents(2, tag: "admin")
            try asAdmin.send(["notes", fromAdmin.body])
            let asReader = try ZMQClient(ingest: ingest, publish: publish, curve: (serverKey, readerKey))
            defer { asReader.close() }
            let asMonitor = try ZMQClient(ingest: ingest, publish: publish, curve: (serverKey, monitorKey))
            defer { asMonitor.close() }
            let refused = newEvents(2, tag: "refused")
            _ = try asReader.push.send([Array("notes".utf8), Array(refused.body.utf8)], wait: false)
            _ = try asMonitor.push.send([Array("notes".utf8), Array(refused.body.utf8)], wait: false)
            try await eventually {
                let metrics = try await http.get("/metrics").text
                return Self.refusals(metrics, socket: "ingest", reason: "forbidden") >= 2 && Self.refusals(metrics, socket: "publish", reason: "forbidden") >= 1
            }
            try await eventually {
                let ids = Set(try await http.allEvents("notes").events.compactMap { $0["id"]?.stringValue })
                return ids.isSuperset(of: fromAdmin.ids)
            }
            let ids = Set(try await http.allEvents("notes").events.compactMap { $0["id"]?.stringValue })
            #expect(ids.isDisjoint(with: refused.ids))
            // The reader's subscription is admitted (deltas reach it); the monitor's is not.
            try await asReader.awaitSubscription { _ = try await http.post("/e/notes", #"{"aggregate":"later","type":"t"}"#) }
            #expect(try await asMonitor.receive(timeout: .milliseconds(300)) { _ in false }.isEmpty)
        }
    }
}
