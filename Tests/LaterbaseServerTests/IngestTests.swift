import Foundation
import LaterbaseCore
import LaterbaseServer
import Testing
import ZeroMQ

@Suite("ZeroMQ ingest and publish", .serialized)
struct IngestTests {
    @Test("a pushed batch is stored whole and published as one delta with head, matching GET /e")
    func pushAndPublish() async throws {
        try await withSubscribedClient { http, client in
            let (body, ids) = newEvents(100)
            try client.send(["notes", body])
            let got = try await client.receive(timeout: .seconds(10)) { $0.contains { $0.topic == "notes" && !isPoke($0.body) } }
            let deltas = got.filter { $0.topic == "notes" && !isPoke($0.body) }
            #expect(deltas.count == 1)
            let delta = try #require(deltas.first).body
            guard case .array(let published)? = delta["events"] else { Issue.record("no events in \(delta)"); return }
            #expect(published.map { $0["id"]?.stringValue } == ids.map { Optional($0) })
            let feed = try await http.allEvents("notes")
            #expect(delta["head"] == nil)
            #expect(delta["position"] == (try await http.get("/e/notes?since=").json["next"]))
            #expect(Array(feed.events.suffix(100)) == published)
            let hlcs = published.compactMap { $0["hlc"]?.stringValue }
            #expect(hlcs == hlcs.sorted())
        }
    }

    @Test("bad ZeroMQ input is refused, stores nothing, is counted and announced on _rejected")
    func badInput() async throws {
        try await withSubscribedClient { http, client in
            let good = newEvents(3)
            _ = try await http.post("/e/notes", good.body)
            _ = try await client.receive(timeout: .milliseconds(200)) { _ in false }  // the deltas so far
            let before = try await http.allEvents("notes")
            let gapID = UUID().uuidString.lowercased()
            let cases: [(frames: [String], error: String)] = [
                (["notes"], "bad_request"),
                (["notes", good.body, "extra"], "bad_request"),
                (["notes", "{not json"], "bad_request"),
                (["warehouses", newEvents(1).body], "unknown_root"),
                (["notes", #"[{"id":"\#(gapID)","aggregate":"a","type":"t","data":{},"origin":"dev-1","seq":5,"hlc":"0001934f5a2b0000"}]"#], "gap"),
                (["inventory", #"{"aggregate":"x","type":"stock.counted","data":{"sku":"x"}}"#], "invalid_event"),
            ]
            for c in cases { try client.send(c.frames) }
            let got = try await client.receive(timeout: .seconds(10)) { $0.filter { $0.topic == "_rejected" }.count >= cases.count }
            let rejected = got.filter { $0.topic == "_rejected" }.map(\.body)
            // Shape errors are found on the ingest thread, gaps by the writer: the order may differ.
            #expect(rejected.compactMap { $0["error"]?.stringValue }.sorted() == cases.map(\.error).sorted())
            #expect(rejected.first { $0["error"] == .string("unknown_root") }?["root"] == .string("warehouses"))
            let gap = try #require(rejected.first { $0["error"] == .string("gap") })
            #expect(gap["ids"] == .array([.string(gapID)]))
            guard case .array(let details)? = gap["details"], let detail = details.first else { Issue.record("no details: \(gap)"); return }
            #expect(detail["origin"] == .string("dev-1"))
            #expect(got.allSatisfy { $0.topic == "_rejected" || isPoke($0.body) })  // nothing was published as a delta
            let after = try await http.allEvents("notes")
            #expect(after.head == before.head && after.events == before.events)
            let metrics = try await http.get("/metrics").text
            #expect(metrics.contains(#"laterbase_ingest_refused_total{reason="bad_request"} 3"#))
            #expect(metrics.contains(#"laterbase_ingest_refused_total{reason="gap"} 1"#))
            #expect(metrics.contains(#"laterbase_errors_total{code="unknown_root"} 1"#))
            // The socket still works after the refusals.
            let later = newEvents(2)
            try client.send(["notes", later.body])
            _ = try await client.receive(timeout: .seconds(10)) { $0.contains { $0.topic == "notes" } }
            #expect(try await http.allEvents("notes").events.count == before.events.count + 2)
        }
    }

    @Test("a flood of PUSHes larger than the write queue loses nothing: the sender is held back, the queue stays bounded")
    func backpressure() async throws {
        try await withServer(configure: { $0.writer.queueCapacity = 2000; $0.ingestOptions.receiveHighWaterMark = 10 }) { http, server in
            let client = try ZMQClient(ingest: server.ingest!.endpoint, publish: server.publisher!.endpoint)
            defer { client.close() }
            try client.push.setSendHighWaterMark(10)
            let messages = 600, perMessage = 100
            let bodies = (0..<messages).map { m in newEvents(perMessage, aggregate: { "agg-\(m)-\($0 % 3)" }).body }
            let deepest = Deepest()
            let sampler = Task.detached {
                while !Task.isCancelled {
                    deepest.note(server.writer.queuedEvents)
                    try? await Task.sleep(for: .microseconds(200))
                }
            }
            var heldBack = 0
            for body in bodies {
                if try !client.push.send([Array("notes".utf8), Array(body.utf8)], wait: false) {
                    heldBack += 1
                    try client.push.send([Array("notes".utf8), Array(body.utf8)])
                }
            }
            let deadline = ContinuousClock.now + .seconds(120)
            var head = ""
            while ContinuousClock.now < deadline {
                head = try await http.get("/e/notes?limit=0").json["head"]?.stringValue ?? ""
                if head == "hq-1:\(messages * perMessage)" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            sampler.cancel()
            #expect(head == "hq-1:\(messages * perMessage)")
            #expect(heldBack > 0, "the sender was never held back")
            #expect(deepest.value <= 2000 + perMessage)
            let metrics = try await http.get("/metrics").text
            #expect(metrics.contains(#"laterbase_ingest_refused_total{reason="overloaded"} 0"#))
            #expect(try await http.allEvents("notes").events.count == messages * perMessage)
        }
    }
}

@Suite("ZeroMQ ingest under a flood, as a process")
struct IngestFloodProcessTests {
    /// Anonymous memory (heap, not the LMDB map) of a process, in bytes.
    static func anonymousMemory(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("RssAnon:") }),
              let kb = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        return kb * 1024
    }

    @Test("300 MB pushed at a node with a small queue: everything stored, its heap stays far below the flood")
    func flood() async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let node = try await ServerProcess(data: folder, arguments: ["--queue-capacity", "5000"])
        let http = HTTP(port: node.port)
        let endpoint = try #require(try await http.get("/node").json["ingest"]?.stringValue)
        let context = try ZMQContext()
        defer { context.terminate() }
        let push = try context.socket(.push)
        defer { push.close() }
        try push.setSendHighWaterMark(10)
        try push.connect(endpoint)
        // 3,000 messages of 100 events of about 1 KB: 300,000 events, about 300 MB (286 MiB).
        let padding = String(repeating: "p", count: 900)
        let messages = 3000
        let pid = node.process.processIdentifier
        let baseline = Self.anonymousMemory(pid) ?? 0
        var peak = baseline
        for m in 0..<messages {
            let body = "[" + (0..<100).map { #"{"aggregate":"f-\#(m % 50)","type":"t","data":{"i":\#($0),"pad":"\#(padding)"}}"# }.joined(separator: ",") + "]"
            try push.send([Array("notes".utf8), Array(body.utf8)])
            if m % 50 == 0 { peak = max(peak, Self.anonymousMemory(pid) ?? 0) }
        }
        let deadline = ContinuousClock.now + .seconds(120)
        var head = ""
        while ContinuousClock.now < deadline {
            peak = max(peak, Self.anonymousMemory(pid) ?? 0)
            head = try await http.get("/e/notes?limit=0").json["head"]?.stringValue ?? ""
            if head == "hq-1:\(messages * 100)" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(head == "hq-1:\(messages * 100)")
        print("flood: anonymous memory \(baseline >> 20) MiB before, \(peak >> 20) MiB at peak, for \((messages * 100 * 1000) >> 20) MiB pushed")
        // What it may hold: 100 messages in the socket, 5,000 parsed events in the queue, one
        // transaction's dirty pages, malloc's arenas. Seen here: 16 to 62 MiB above idle.
        #expect(peak - baseline < 100 << 20, "the node's heap grew by \((peak - baseline) >> 20) MiB")
        let metrics = try await http.get("/metrics").text
        #expect(metrics.contains(#"laterbase_ingest_refused_total{reason="overloaded"} 0"#))
    }
}

final class Deepest: @unchecked Sendable {
    private let lock = NSLock()
    private var deepest = 0
    func note(_ v: Int) { lock.withLock { deepest = max(deepest, v) } }
    var value: Int { lock.withLock { deepest } }
}

/// A live server and a ZeroMQ client pushing to it and subscribed to all of its deltas.
func withSubscribedClient(_ body: @Sendable @escaping (HTTP, ZMQClient) async throws -> Void) async throws {
    try await withServer { http, server in
        let client = try ZMQClient(ingest: server.ingest!.endpoint, publish: server.publisher!.endpoint)
        defer { client.close() }
        try await client.awaitSubscription { _ = try await http.post("/e/notes", #"{"aggregate":"poke","type":"poked"}"#) }
        try await body(http, client)
    }
}

/// Whether a delta holds only the events `awaitSubscription` wrote.
func isPoke(_ delta: JSON) -> Bool {
    guard case .array(let events)? = delta["events"] else { return false }
    return events.allSatisfy { $0["aggregate"] == .string("poke") }
}

@Suite("ZeroMQ ingest admits senders up to a number per node")
struct IngestGateTests {
    @Test("beyond --ingest-max-senders a sender waits in its handshake, counted, and gets in once one leaves")
    func sendersBeyondTheLimitWait() async throws {
        try await withServer(configure: { $0.ingestOptions.maxSenders = 3 }) { http, server in
            #expect(server.ingest?.maxSenders == 3)
            let context = try ZMQContext()
            defer { context.terminate() }
            var senders: [(socket: ZMQSocket, ids: Set<String>)] = []
            for i in 0..<8 {
                let push = try context.socket(.push)
                try push.connect(server.ingest!.endpoint)
                let (body, ids) = newEvents(10, tag: "s\(i)")
                #expect(try push.send([Array("notes".utf8), Array(body.utf8)], wait: false))
                senders.append((push, Set(ids)))
            }
            defer { for s in senders { s.socket.close() } }
            // Three get in; the others wait, and stay out while the three are connected.
            var stored: Set<String> = []
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                stored = Set(try await http.allEvents("notes").events.compactMap { $0["id"]?.stringValue })
                if stored.count >= 30 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            try await Task.sleep(for: .seconds(1))
            stored = Set(try await http.allEvents("notes").events.compactMap { $0["id"]?.stringValue })
            let admitted = senders.indices.filter { !senders[$0].ids.isDisjoint(with: stored) }
            #expect(admitted.count == 3, "\(admitted.count) senders got in")
            #expect(server.ingest!.openConnections >= 3)
            let metrics = try await http.get("/metrics").text
            let waiting = metrics.split(separator: "\n").first { $0.hasPrefix("laterbase_ingest_senders_waiting ") }
            #expect(waiting == "laterbase_ingest_senders_waiting 5.0", "\(waiting ?? "no metric")")
            // The three leave: the others get their turn and everything arrives.
            // Each sender leaves once its message is stored, giving its place to one that waits.
            let all = senders.reduce(into: Set<String>()) { $0.formUnion($1.ids) }
            let later = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < later && !all.isSubset(of: stored) {
                for s in senders where s.ids.isSubset(of: stored) { s.socket.close() }
                try await Task.sleep(for: .milliseconds(100))
                stored = Set(try await http.allEvents("notes").events.compactMap { $0["id"]?.stringValue })
            }
            #expect(all.isSubset(of: stored), "\(all.subtracting(stored).count) events never arrived")
        }
    }
}
