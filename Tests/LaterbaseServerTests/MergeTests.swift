import Foundation
import LaterbaseCore
import Testing

/// Contract v3, "The merge is total": what two nodes that wrote apart do once they meet.
@Suite("The merge is total, between real processes", .serialized)
struct MergeTests {
    /// A device POSTs an event with its own id to hq-1, loses the answer and POSTs it again to
    /// hq-2. Both dots are kept, the first in (hlc, origin, seq) order is the one folded, and
    /// replication of the root goes on.
    @Test("an id retried on another node: both nodes converge and later writes still cross")
    func idRetriedOnAnotherNode() async throws {
        let one = try await ClusterNode("hq-1")
        let two = try await ClusterNode("hq-2")
        let id = UUID().uuidString.lowercased()
        let event = #"{"id":"\#(id)","aggregate":"SHP-1","type":"noted","data":{"at":"dock 4"}}"#
        _ = try await one.http.post("/e/notes", newEvents(20, tag: "one").body)
        #expect(try await one.http.post("/e/notes", event).status == 201)
        _ = try await two.http.post("/e/notes", newEvents(20, tag: "two").body)
        #expect(try await two.http.post("/e/notes", event).status == 201)

        try await one.restart(peers: [two])
        try await converge([one.http, two.http], roots: ["notes"], timeout: .seconds(10))
        for node in [one, two] {
            #expect(try await node.http.get("/e/notes?limit=0").json["head"] == .string("hq-1:21,hq-2:21"))
            let shipment = try await node.http.get("/a/notes/SHP-1").json
            #expect(shipment["events"] == .integer(1))
            #expect(try await counter(node.http, "laterbase_merge_conflicts_total") == 1)
        }
        // The one folded is hq-1's: recorded first.
        let feed = try await one.http.allEvents("notes")
        let copies = feed.events.filter { $0["id"] == .string(id) }
        #expect(copies.count == 2)
        #expect(try await one.http.get("/a/notes/SHP-1").json["hlc"] == copies.first { $0["origin"] == .string("hq-1") }?["hlc"])

        try await laterWritesCross(one, two)
    }

    /// A device restored from an old backup records seq 1 and 2 again with other data and sends
    /// them to another hub: two hubs with equal heads and different versions find the fork by
    /// digests once they meet, and all three keep the same version.
    @Test("a forked device origin: two hubs that meet later, and the device, keep one version")
    func forkedDeviceOrigin() async throws {
        let one = try await ClusterNode("hub-1")
        let two = try await ClusterNode("hub-2")
        let device = try await ClusterNode("dev-1", peers: [one])
        for i in 0..<2 { #expect(try await device.http.post("/e/notes", #"{"aggregate":"PAL-\#(i)","type":"noted","data":{"count":\#(i + 10)}}"#).status == 201) }
        try await converge([device.http, one.http], roots: ["notes"], timeout: .seconds(10))
        // Restored from a backup taken before those two: the same origin records seq 1 and 2 again.
        await device.stop(SIGKILL)
        try FileManager.default.removeItem(atPath: device.data)
        try FileManager.default.createDirectory(atPath: device.data, withIntermediateDirectories: true)
        try await device.restart(peers: [two])
        for i in 0..<2 { #expect(try await device.http.post("/e/notes", #"{"aggregate":"PAL-\#(i)","type":"noted","data":{"count":\#(i + 20)}}"#).status == 201) }
        try await converge([device.http, two.http], roots: ["notes"], timeout: .seconds(10))
        #expect(try await one.http.get("/e/notes?limit=0").json["head"] == two.http.get("/e/notes?limit=0").json["head"])
        #expect(try await one.http.get("/e/notes?limit=0").json["digest"] != two.http.get("/e/notes?limit=0").json["digest"])

        try await one.restart(peers: [two])
        try await converge([one.http, two.http, device.http], roots: ["notes"], timeout: .seconds(10))
        let kept = try await one.http.get("/a/notes/PAL-0").json["state"]?["count"]
        #expect(kept == .integer(10) || kept == .integer(20))
        for node in [one, two, device] {
            #expect(try await node.http.get("/e/notes?limit=0").json["head"] == .string("dev-1:2"))
            #expect(try await node.http.get("/a/notes/PAL-0").json["state"]?["count"] == kept)
        }
        #expect(try await counter(one.http, "laterbase_merge_conflicts_total") + counter(two.http, "laterbase_merge_conflicts_total") >= 2)
        try await laterWritesCross(one, two)
    }

    /// Deep data: refused where it would not cross (126 levels), taken where it does (64).
    @Test("data nested deeper than 64 levels is refused at the door; 64 levels cross to a peer met later")
    func deepData() async throws {
        func nested(_ levels: Int) -> String { String(repeating: #"{"a":"#, count: levels - 1) + "{}" + String(repeating: "}", count: levels - 1) }
        let one = try await ClusterNode("hq-1")
        let two = try await ClusterNode("hq-2")
        let refused = try await one.http.post("/e/notes", #"{"aggregate":"deep","type":"noted","data":\#(nested(126))}"#)
        #expect(refused.status == 400 && refused.json["error"] == .string("bad_request"))
        #expect(try await one.http.post("/e/notes", #"{"aggregate":"deep","type":"noted","data":\#(nested(64))}"#).status == 201)
        _ = try await two.http.post("/e/notes", newEvents(5, tag: "two").body)
        try await one.restart(peers: [two])
        try await converge([one.http, two.http], roots: ["notes"], timeout: .seconds(10))
        #expect(try await two.http.get("/e/notes?limit=0").json["head"] == .string("hq-1:1,hq-2:5"))
        try await laterWritesCross(one, two)
    }

    /// Escape-heavy data is measured as stored and served (`\b` becomes `\u0008`): what is
    /// accepted, a device pushes to its hub.
    @Test("escape-heavy data: over the event limit as served is 413; what fits, a device pushes to its hub")
    func escapeHeavyData() async throws {
        let hub = try await ClusterNode("hub")
        let device = try await ClusterNode("truck-7")
        let body = #"{"aggregate":"esc","type":"noted","data":""# + String(repeating: #"\b"#, count: 3_900_000) + #""}"#
        let refused = try await device.http.post("/e/notes", body)
        #expect(refused.status == 413 && refused.json["error"] == .string("too_large"))
        // 170,000 backspaces: 340 KB as sent, 1,020,000 bytes as served, under 1 MiB.
        for i in 0..<3 {
            let fits = #"{"aggregate":"esc-\#(i)","type":"noted","data":""# + String(repeating: #"\b"#, count: 170_000) + #""}"#
            #expect(try await device.http.post("/e/notes", fits).status == 201)
        }
        _ = try await device.http.post("/e/notes", newEvents(5, tag: "after").body)
        try await device.restart(peers: [hub])
        try await converge([device.http, hub.http], roots: ["notes"], timeout: .seconds(10))
        #expect(try await hub.http.get("/e/notes?limit=0").json["head"] == .string("truck-7:8"))
        try await laterWritesCross(device, hub)
    }

    /// Big events: feed pages are capped in bytes, so an empty replica catches up.
    @Test("90 events of 0.9 MiB reach an empty replica that meets their node later")
    func bigEvents() async throws {
        let full = try await ClusterNode("hq-1")
        let big = String(repeating: "x", count: 900 << 10)
        for i in 0..<90 {
            #expect(try await full.http.post("/e/notes", #"{"aggregate":"big-\#(i % 9)","type":"noted","data":"\#(big)"}"#).status == 201)
        }
        let empty = try await ClusterNode("hq-2", peers: [full])
        try await converge([full.http, empty.http], roots: ["notes"], timeout: .seconds(10))
        #expect(try await empty.http.get("/e/notes?limit=0").json["head"] == .string("hq-1:90"))
        // A page of the feed holds at most 4 MiB: four of these.
        let page = try await full.http.get("/e/notes?vv=&limit=10000").json
        guard case .array(let events)? = page["events"] else { Issue.record("no events in \(page)"); return }
        #expect(events.count == 4 && page["more"] == .bool(true))
        try await laterWritesCross(full, empty)
    }

    /// An event of a type this node's schema does not know (a node on a newer version of the
    /// application recorded it): refused from a client, kept from a peer (the peer link's
    /// `Laterbase-Replica` header on an open node), replicated and served, folded by nobody.
    @Test("an event type the schema does not know: 422 from a client, kept unfolded from a peer and replicated")
    func eventTheSchemaDoesNotKnow() async throws {
        let one = try await ClusterNode("hq-1")
        let two = try await ClusterNode("hq-2")
        let hlc = HLC(rawValue: SystemClock.milliseconds() << 16).description
        let event = #"{"id":"0193a1b2-c3d4-7e5f-8a9b-0000000000aa","aggregate":"SHP-T","type":"shipment.teleported","version":2,"data":{"to":"mars"},"origin":"hq-9","seq":1,"hlc":"\#(hlc)"}"#
        let refused = try await one.http.post("/e/shipments", event)
        #expect(refused.status == 422 && refused.json["error"] == .string("invalid_event"))
        #expect(try await one.http.get("/e/shipments?limit=0").json["head"] == .string(""))
        let kept = try await one.http.request(.POST, "/e/shipments", body: Array(event.utf8), headers: [("Laterbase-Replica", "hq-9")])
        #expect(kept.status == 201, "\(kept.text)")
        #expect(try await one.http.get("/a/shipments/SHP-T").status == 404)
        _ = try await one.http.post("/e/shipments", #"{"aggregate":"SHP-T","type":"shipment.created","data":{"origin":"AKL","destination":"SYD"}}"#)

        try await two.restart(peers: [one])
        try await converge([one.http, two.http], roots: ["shipments", "notes"], timeout: .seconds(10))
        for node in [one, two] {
            #expect(try await node.http.get("/e/shipments?limit=0").json["head"] == .string("hq-1:1,hq-9:1"))
            let served = try await node.http.allEvents("shipments").events
            #expect(served.contains { $0["type"] == .string("shipment.teleported") && $0["data"]?["to"] == .string("mars") })
            // The aggregate folds the event its schema knows, not the other.
            #expect(try await node.http.get("/a/shipments/SHP-T").json["events"] == .integer(1))
            #expect(try await counter(node.http, "laterbase_events_unfolded_total") == 1)
        }
        try await laterWritesCross(one, two)
    }

    /// A peer with a smaller event limit than this node's: its link shows why in `/node`, an
    /// event over the peer's limit stalls only its origin there (shown in `stalled`), and the
    /// peer's own events still come across.
    @Test("a peer announcing smaller limits is shown in /node; what it refuses stalls only its origin")
    func peerWithSmallerLimits() async throws {
        let small = try await ClusterNode("small", arguments: ["--max-event-bytes", "65536"])
        let big = try await ClusterNode("big", peers: [small])
        #expect(try await small.http.get("/node").json["limits"]?["max_event_bytes"] == .integer(65536))
        #expect(try await big.http.get("/node").json["limits"]?["max_event_bytes"] == .integer(1 << 20))
        let fill = String(repeating: "z", count: 100_000)
        #expect(try await big.http.post("/e/notes", #"{"aggregate":"wide","type":"noted","data":"\#(fill)"}"#).status == 201)
        _ = try await small.http.post("/e/notes", newEvents(3, tag: "small").body)
        var peer: JSON = .null
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if case .array(let peers)? = try await big.http.get("/node").json["peers"], let first = peers.first { peer = first }
            if case .array(let stalled)? = peer["stalled"], !stalled.isEmpty, peer["limits"]?.stringValue != nil,
               try await big.http.get("/e/notes?limit=0").json["head"] == .string("big:1,small:3") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(peer["limits"]?.stringValue?.contains("events of at most 65536 bytes") == true, "\(peer)")
        guard case .array(let stalled)? = peer["stalled"], let stall = stalled.first else { Issue.record("nothing stalled: \(peer)"); return }
        #expect(stall["origin"] == .string("big") && stall["error"] == .string("too_large"), "\(peer)")
        #expect(try await big.http.get("/e/notes?limit=0").json["head"] == .string("big:1,small:3"))
        #expect(try await small.http.get("/e/notes?limit=0").json["head"] == .string("small:3"))
    }

    /// Writes on both sides after they met cross within 5 s.
    func laterWritesCross(_ a: ClusterNode, _ b: ClusterNode) async throws {
        let before = try await b.http.get("/e/notes?limit=0").json["head"]?.stringValue ?? ""
        _ = try await a.http.post("/e/notes", newEvents(3, tag: "later-a").body)
        _ = try await b.http.post("/e/notes", newEvents(3, tag: "later-b").body)
        try await converge([a.http, b.http], roots: ["notes"], timeout: .seconds(5))
        let after = try VersionVector(parsing: try await a.http.get("/e/notes?limit=0").json["head"]?.stringValue ?? "")
        let was = try VersionVector(parsing: before)
        #expect(after[a.name] == was[a.name] + 3 && after[b.name] == was[b.name] + 3)
    }
}
