import Foundation
import LaterbaseCore
import Testing

/// Every status code and error body of CONTRACT.md's HTTP section, against a live server.
@Suite struct HTTPContractTests {
    @Test func writeReturns201ThenAnIdempotentRetryReturns200() async throws {
        try await withServer { http, _ in
            let body = #"{"id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","aggregate":"SHP-1","type":"shipment.created","data":{"origin":"AKL","destination":"WLG"}}"#
            let first = try await http.post("/e/shipments", body)
            #expect(first.status == 201)
            #expect(first.headers["content-type"].first == "application/json")
            let ack = try #require(first.json["events"].flatMap { if case .array(let a) = $0 { a } else { nil } }?.first)
            #expect(ack["id"] == .string("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"))
            #expect(ack["origin"] == .string("hq-1"))
            #expect(ack["seq"] == .integer(1))
            #expect(ack["hlc"]?.stringValue?.count == 16)
            #expect(ack["time"]?.stringValue?.hasSuffix("Z") == true)
            // v3: the node's position after the batch; the head only when asked for.
            let position = try #require(first.json["position"]?.stringValue.flatMap(Position.init(token:)))
            #expect(position.value == 1 && first.json["head"] == nil)
            #expect(first.json.bytes.count < 512)
            let retry = try await http.post("/e/shipments?head=true", body)
            #expect(retry.status == 200)
            #expect(retry.json["events"] == first.json["events"])
            #expect(retry.json["head"] == .string("hq-1:1") && retry.json["position"] == first.json["position"])
        }
    }

    @Test func badRequestsAre400AndStoreNothing() async throws {
        try await withServer { http, _ in
            let bodies = [
                "not json",
                "[1,2]",
                "\"a string\"",
                "[]",
                #"{"aggregate":"","type":"shipment.created"}"#,
                #"{"aggregate":"S","type":"9bad"}"#,
                #"{"aggregate":"S","type":"shipment.created","colour":"red"}"#,
                #"{"aggregate":"S","type":"shipment.created","version":0}"#,
                #"{"aggregate":"S","type":"shipment.created","time":"yesterday"}"#,
                #"{"id":"not-a-uuid","aggregate":"S","type":"shipment.created"}"#,
                #"{"id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","aggregate":"S","type":"t","origin":"x","seq":1}"#,
            ]
            for body in bodies {
                let r = try await http.post("/e/notes", body)
                #expect(r.status == 400, "\(body)")
                #expect(r.error == "bad_request", "\(body)")
                #expect(r.json["message"]?.stringValue?.isEmpty == false)
            }
            let named = try await http.post("/e/notes", #"[{"aggregate":"ok","type":"t"},{"aggregate":"ok","type":"t","colour":1}]"#)
            #expect(named.json["details"] == .array([.object([("index", .integer(1)), ("reason", .string("colour: unknown field")), ("field", .string("colour"))])]))
            for path in ["/e/notes?vv=nope", "/e/notes?limit=10001", "/e/notes?limit=-1", "/e/notes?limit=x", "/a/notes?limit=0", "/a/notes?limit=1001", "/a/notes/x?as_of=later", "/a/notes/x?recorded_by=soon"] {
                let r = try await http.get(path)
                #expect(r.status == 400, "\(path)")
                #expect(r.error == "bad_request", "\(path)")
            }
            let feed = try await http.get("/e/notes")
            #expect(feed.json["events"] == .array([]))
            #expect(feed.json["head"] == .string(""))
            #expect(feed.json["more"] == .bool(false))
        }
    }

    @Test func unknownRootsAndAggregatesAre404() async throws {
        try await withServer { http, _ in
            for r in [try await http.post("/e/nope", "{}"), try await http.get("/e/nope"), try await http.get("/a/nope/1"), try await http.get("/a/nope")] {
                #expect(r.status == 404)
                #expect(r.error == "unknown_root")
            }
            let missing = try await http.get("/a/shipments/SHP-404")
            #expect(missing.status == 404)
            #expect(missing.error == "not_found")
        }
    }

    @Test func gapsAndConflictsAre409() async throws {
        try await withServer { http, _ in
            let gap = try await http.post("/e/notes", #"{"id":"0193a1b2-c3d4-7e5f-8a9b-000000000001","aggregate":"x","type":"t","origin":"truck-7","seq":3,"hlc":"0001934f5a2b0000"}"#)
            #expect(gap.status == 409)
            #expect(gap.error == "gap")
            #expect(gap.json["details"]?.arrayFirst?["origin"] == .string("truck-7"))
            #expect(gap.json["details"]?.arrayFirst?["expected"] == .integer(1))

            let id = "0193a1b2-c3d4-7e5f-8a9b-000000000002"
            #expect(try await http.post("/e/notes", #"{"id":"\#(id)","aggregate":"x","type":"t","data":{"v":1}}"#).status == 201)
            let conflict = try await http.post("/e/notes", #"{"id":"\#(id)","aggregate":"x","type":"t","data":{"v":2}}"#)
            #expect(conflict.status == 409)
            #expect(conflict.error == "conflict")
            #expect(conflict.json["details"]?.arrayFirst?["index"] == .integer(0))
            #expect(try await http.allEvents("notes").events.count == 1)
        }
    }

    @Test func tooLargeIs413() async throws {
        try await withServer(configure: { $0.maxBodyBytes = 64 << 10 }) { http, _ in
            let big = #"{"aggregate":"x","type":"t","data":{"pad":""# + String(repeating: "x", count: 70_000) + #""}}"#
            let r = try await http.post("/e/notes", big)
            #expect(r.status == 413)
            #expect(r.error == "too_large")
        }
        try await withServer { http, _ in
            let many = "[" + Array(repeating: #"{"aggregate":"x","type":"t"}"#, count: 10_001).joined(separator: ",") + "]"
            let r = try await http.post("/e/notes", many)
            #expect(r.status == 413)
            #expect(r.error == "too_large")
            let exactly = "[" + Array(repeating: #"{"aggregate":"x","type":"t"}"#, count: 10_000).joined(separator: ",") + "]"
            #expect(try await http.post("/e/notes", exactly).status == 201)
        }
    }

    @Test func schemaRefusalsAndClockSkewAre422() async throws {
        try await withServer(configure: { $0.store.maxSkewMilliseconds = 5_000 }) { http, _ in
            let missing = try await http.post("/e/shipments", #"[{"aggregate":"S","type":"shipment.departed","data":{"location":"AKL"}},{"aggregate":"S","type":"shipment.created","data":{"origin":"AKL"}}]"#)
            #expect(missing.status == 422)
            #expect(missing.error == "invalid_event")
            #expect(missing.json["details"]?.arrayFirst?["index"] == .integer(1))
            #expect(missing.json["details"]?.arrayFirst?["field"] == .string("data.destination"))
            let unknownType = try await http.post("/e/shipments", #"{"aggregate":"S","type":"shipment.teleported"}"#)
            #expect(unknownType.status == 422)
            let ahead = Int64(Date().timeIntervalSince1970 * 1000) + 60_000
            let future = try await http.post("/e/notes", #"{"aggregate":"x","type":"t","time":\#(ahead)}"#)
            #expect(future.status == 422)
            #expect(future.json["details"]?.arrayFirst?["field"] == .string("time"))
            let hlc = HLC(milliseconds: UInt64(ahead), counter: 0)
            let futureHLC = try await http.post("/e/notes", #"{"id":"0193a1b2-c3d4-7e5f-8a9b-000000000003","aggregate":"x","type":"t","origin":"o","seq":1,"hlc":"\#(hlc)"}"#)
            #expect(futureHLC.status == 422)
            #expect(futureHLC.json["details"]?.arrayFirst?["field"] == .string("hlc"))
            #expect(try await http.allEvents("notes").head == "")
            #expect(try await http.allEvents("shipments").head == "")
        }
    }

    @Test func aFullQueueIs503WithRetryAfter() async throws {
        try await withServer(configure: {
            $0.writer.queueCapacity = 1
            $0.writer.maxDelay = .seconds(8)  // the writer lingers with one event queued (long: the suite runs in parallel)
        }) { http, server in
            async let first = http.post("/e/notes", #"{"aggregate":"x","type":"t"}"#)
            while server.writer.queuedEvents == 0 { try await Task.sleep(for: .milliseconds(10)) }
            let second = try await http.post("/e/notes", #"{"aggregate":"y","type":"t"}"#)
            #expect(second.status == 503)
            #expect(second.error == "overloaded")
            #expect(second.headers["retry-after"].first == "1")
            #expect(try await first.status == 201)
            #expect(try await http.allEvents("notes").events.count == 1)
        }
    }

    @Test func aFullStoreIs507AndStoresNothingOfTheBatch() async throws {
        try await withServer(configure: { $0.store.mapSize = 2 << 20 }) { http, _ in
            let pad = String(repeating: "x", count: 400)
            let batch = "[" + Array(repeating: #"{"aggregate":"x","type":"t","data":{"pad":"\#(pad)"}}"#, count: 200).joined(separator: ",") + "]"
            var full: HTTPResult? = nil
            for _ in 0..<100 {
                let r = try await http.post("/e/notes", batch)
                if r.status != 201 {
                    full = r
                    break
                }
            }
            let r = try #require(full)
            #expect(r.status == 507)
            #expect(r.error == "storage_full")
            let stored = try await http.allEvents("notes")
            #expect(stored.events.count % 200 == 0)  // whole batches only
            #expect(stored.head == "hq-1:\(stored.events.count)")
            // The failed transaction's folds were not kept: the aggregate matches what is stored.
            let aggregate = try await http.get("/a/notes/x")
            #expect(aggregate.json["events"] == .integer(stored.events.count))
            #expect(try await http.get("/healthz").status == 200)
        }
    }

    @Test func theFeedPagesAsJSONAndNDJSON() async throws {
        try await withServer { http, _ in
            for i in 0..<5 { _ = try await http.post("/e/notes", #"{"aggregate":"a\#(i)","type":"t","data":{"i":\#(i)}}"#) }
            let page = try await http.get("/e/notes?limit=2")
            #expect(page.status == 200)
            #expect(page.json["vv"] == .string("hq-1:2"))
            #expect(page.json["head"] == .string("hq-1:5"))
            #expect(page.json["more"] == .bool(true))
            let next = try await http.get("/e/notes?limit=10&vv=hq-1:2")
            #expect(next.json["events"]?.arrayCount == 3)
            #expect(next.json["more"] == .bool(false))
            #expect(next.json["events"]?.arrayFirst?["seq"] == .integer(3))
            let nd = try await http.get("/e/notes?limit=2&vv=hq-1:2", headers: [("Accept", "application/x-ndjson")])
            #expect(nd.headers["content-type"].first == "application/x-ndjson")
            let lines = nd.text.split(separator: "\n")
            #expect(lines.count == 3)
            let last = try JSONParser.parse(Array(lines[2].utf8))
            #expect(last["vv"] == .string("hq-1:4"))
            #expect(last["more"] == .bool(true))
            let zero = try await http.get("/e/notes?limit=0")
            #expect(zero.json["events"] == .array([]))
            #expect(zero.json["more"] == .bool(true))
        }
    }

    @Test func aggregatesCanBeReadNowAndInThePast() async throws {
        try await withServer { http, _ in
            func stock(_ type: String, _ qty: Int, _ time: String) -> String {
                #"{"aggregate":"SKU-1@AKL","type":"stock.\#(type)","data":{"qty":\#(qty)},"time":"2026-11-20T\#(time):00Z"}"#
            }
            _ = try await http.post("/e/inventory", "[\(stock("received", 10, "10:00")),\(stock("picked", 3, "11:00"))]")
            let recordedBefore = Int64(Date().timeIntervalSince1970 * 1000)
            try await Task.sleep(for: .milliseconds(5))
            _ = try await http.post("/e/inventory", stock("counted", 50, "10:30"))
            let now = try await http.get("/a/inventory/SKU-1@AKL")
            #expect(now.json["state"]?["on_hand"] == .integer(47))
            #expect(now.json["id"] == .string("SKU-1@AKL"))
            #expect(now.json["events"] == .integer(3))
            let past = try await http.get("/a/inventory/SKU-1%40AKL?as_of=2026-11-20T10:45:00Z")
            #expect(past.json["state"]?["on_hand"] == .integer(50))
            #expect(past.json["events"] == .integer(2))
            let recorded = try await http.get("/a/inventory/SKU-1@AKL?recorded_by=\(recordedBefore)")
            #expect(recorded.json["state"]?["on_hand"] == .integer(7))
            let before = try await http.get("/a/inventory/SKU-1@AKL?as_of=2026-11-20T09:00:00Z")
            #expect(before.status == 404)
            #expect(before.error == "not_found")

            _ = try await http.post("/e/notes", #"{"aggregate":"bay/3 ü","type":"t","data":{"x":1}}"#)
            let slashed = try await http.get("/a/notes/bay%2F3%20%C3%BC")
            #expect(slashed.json["id"] == .string("bay/3 ü"))
            #expect(slashed.json["state"] == .object([("x", .integer(1))]))
            let list = try await http.get("/a/inventory?limit=1")
            #expect(list.json["aggregates"]?.arrayCount == 1)
            #expect(list.json["next"] == .null)
        }
    }

    @Test func operationsEndpoints() async throws {
        try await withServer(replica: "hq-9") { http, server in
            let health = try await http.get("/healthz")
            #expect(health.status == 200)
            _ = try await http.post("/e/notes", #"{"aggregate":"x","type":"t"}"#)
            _ = try await http.post("/e/notes", #"{"aggregate":"x","type":"t","origin":"o","seq":9,"hlc":"0001934f5a2b0000","id":"0193a1b2-c3d4-7e5f-8a9b-000000000009"}"#)
            _ = try await http.get("/e/notes")
            let metrics = try await http.get("/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.text.contains("laterbase_events_written_total 1"))
            #expect(metrics.text.contains(#"laterbase_errors_total{code="gap"} 1"#))
            #expect(metrics.text.contains(#"laterbase_reads_total{kind="feed"}"#))
            #expect(metrics.text.contains("laterbase_commit_seconds_bucket"))
            let node = try await http.get("/node")
            #expect(node.json["replica"] == .string("hq-9"))
            #expect(node.json["roots"] == .array([.string("shipments"), .string("inventory"), .string("notes")]))
            // The endpoints actually bound, with the ports ZeroMQ chose for `*`.
            #expect(node.json["ingest"]?.stringValue == server.ingestEndpoint)
            #expect(node.json["publish"]?.stringValue == server.publishEndpoint)
            #expect(server.ingestEndpoint?.hasPrefix("tcp://127.0.0.1:") == true && server.ingest?.endpoint.hasSuffix("*") == false)
            let noRoute = try await http.get("/nowhere")
            #expect(noRoute.status == 404)
            #expect(noRoute.error == "not_found")
        }
    }
}

extension JSON {
    var arrayFirst: JSON? { if case .array(let a) = self { a.first } else { nil } }
    var arrayCount: Int? { if case .array(let a) = self { a.count } else { nil } }
}
