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
        device.start()

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
}
