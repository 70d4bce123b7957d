import Foundation
import LaterbaseCore
import LaterbaseDemo
import LaterbaseSync
import Logging
import Testing

@Suite("Edge device API")
struct EdgeDeviceTests {
    @Test("a device records while its upstream is unreachable and syncs both ways when it comes back")
    func offlineThenSync() async throws {
        let port = try freePort()
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var logger = Logger(label: "device")
        logger.logLevel = .warning
        let device = try EdgeDevice(
            directory: folder, roots: Demo.roots + [.jsonMerge("notes")], upstream: "http://127.0.0.1:\(port)", replicaID: "truck-7", logger: logger)
        await device.start()

        // Offline: writes are taken and durable locally.
        func departed(_ location: String, time: String? = nil) -> EventInput {
            EventInput(id: nil, aggregate: "SHP-9", type: "shipment.departed", data: .object([("location", .string(location))]),
                       time: time.flatMap { EventTime.parse($0) })
        }
        let first = try await device.record(root: "shipments", [departed("AKL")])
        #expect(first.position.value == 1 && first.events.map(\.origin) == ["truck-7"])
        _ = try await device.record(root: "shipments", [departed("EARLY", time: "2020-01-01T00:00:00Z")])
        #expect(await device.sync(timeout: .milliseconds(500)) == false)
        #expect(device.upstream.reachable == false)

        // The upstream comes up, already holding events of its own.
        try await withServer(replica: "hq-1", configure: { $0.port = port }) { http, _ in
            let arrived = try await http.post("/e/shipments", #"{"aggregate":"SHP-9","type":"shipment.arrived","data":{"location":"WLG"}}"#)
            #expect(arrived.status == 201)
            #expect(await device.sync(timeout: .seconds(30)))
            let head = try await http.get("/e/shipments?limit=0").json["head"]?.stringValue
            #expect(head == "hq-1:1,truck-7:2")
            #expect(device.upstream.peerHeads["shipments"]?.description == head)
            let upstream = try await http.get("/a/shipments/SHP-9").json
            let local = try #require(try device.aggregate(root: "shipments", id: "SHP-9"))
            #expect(local == upstream)
            #expect(local["state"]?["location"] == .string("WLG"))
            #expect(local["state"]?["legs"] == .number("2"))
            let early = try await http.get("/a/shipments/SHP-9?as_of=2021-01-01T00:00:00Z").json
            #expect(early["state"]?["location"] == .string("EARLY"))
        }
        await device.stop()
    }
    @Test("a device that was away a week resumes by its saved position: what the hub stored meanwhile, then live")
    func resumesByPositionAfterAWeekAway() async throws {
        let port = try freePort()
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let logger = { var l = Logger(label: "device"); l.logLevel = .warning; return l }()
        @Sendable func device() throws -> EdgeDevice {
            try EdgeDevice(directory: folder, roots: [.jsonMerge("notes")], upstream: "http://127.0.0.1:\(port)", replicaID: "truck-7", logger: logger)
        }
        try await withServer(replica: "hq-1", configure: { $0.port = port }) { http, _ in
            _ = try await http.post("/e/notes", #"[{"aggregate":"a","type":"t","data":{}},{"aggregate":"b","type":"t","data":{}}]"#)
            var d = try device()
            await d.start()
            #expect(await d.sync(timeout: .seconds(30)))
            let before = try #require(d.upstream.tokens["notes"])
            #expect(before.hasSuffix(":2"), "the hub's position after its two events: \(before)")
            await d.stop()

            // A week's worth while the truck is away (in events, not days: a token does not age),
            // many origins among them (other devices, through the hub).
            for batch in 0..<20 {
                let body = "[" + (0..<100).map { i in
                    #"{"id":"\#(EventID.v7(milliseconds: SystemClock.milliseconds()))","aggregate":"agg-\#(i % 7)","type":"t","data":{"i":\#(i)},"origin":"scanner-\#(batch)-\#(i)","seq":1,"hlc":"\#(HLC(rawValue: (SystemClock.milliseconds() - 3_600_000) << 16 | UInt64(batch * 100 + i)))"}"#
                }.joined(separator: ",") + "]"
                let r = try await http.request(.POST, "/e/notes", body: Array(body.utf8), headers: [("Laterbase-Replica", "hub-relay")])
                #expect(r.status == 201, "\(r.text)")
            }
            let hubPosition = try #require(try await http.get("/e/notes?since=&limit=10000").json["next"]?.stringValue)

            d = try device()
            await d.start()
            // Discovered again: it starts from the saved token, not from a vv of 2,000 origins.
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline, d.upstream.replica == nil { try await Task.sleep(for: .milliseconds(10)) }
            #expect(d.upstream.tokens["notes"] == before)
            #expect(await d.sync(timeout: .seconds(30)))
            #expect(d.upstream.tokens["notes"] == hubPosition)
            #expect(try d.store.head(of: "notes") == VersionVector(parsing: try await http.get("/e/notes?limit=0").json["head"]!.stringValue!))
            // And live: a new event on the hub comes by delta.
            let posted = try await http.post("/e/notes", #"{"aggregate":"c","type":"t","data":{}}"#)
            let seq = try #require(posted.json["events"].flatMap { if case .array(let a) = $0 { a.first?["seq"]?.int64Value } else { nil } })
            let live = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < live, try d.store.head(of: "notes")["hq-1"] < UInt64(seq) { try await Task.sleep(for: .milliseconds(10)) }
            #expect(try d.store.head(of: "notes")["hq-1"] == UInt64(seq))
            await d.stop()
        }
    }
}
