import Foundation
import LaterbaseCore
import Testing

/// CONTRACT.md v2, "Bad input", through the node's router (HummingbirdTesting: the HTTP layer in
/// process, no socket; the writer and LMDB are real): each hostile request gets its status and
/// changes nothing, and the node keeps serving (every test ends by checking that it still
/// answers and still writes).
@Suite struct BadInputTests {
    /// The node is alive: `/healthz` answers 200 and a write is acknowledged.
    private func expectAlive(_ http: HTTP) async throws {
        #expect(try await http.get("/healthz").status == 200)
        #expect(try await http.post("/e/notes", #"{"aggregate":"alive","type":"t"}"#).status == 201)
    }

    /// Was: LMDB's MDB_BAD_VALSIZE on an empty key trapped in the cursor wrapper.
    @Test func anEmptyAfterIs400NotACrash() async throws {
        try await withRouter { http, _ in
            for path in ["/a/shipments?after=", "/a/notes?after=&limit=5", "/a/notes?after=%00"] {
                let r = try await http.get(path)
                #expect(r.status == 400, "\(path)")
                #expect(r.error == "bad_request", "\(path)")
                #expect(r.json["details"]?.arrayFirst?["parameter"] == .string("after"))
            }
            try await expectAlive(http)
        }
    }

    /// Was: Int64.min was stored, then every read of it overflowed in the time arithmetic.
    @Test func timesOutsideYears0000To9999Are422AndInsideAreServed() async throws {
        // A skew allowance past 9999, so the range (not the skew rule) is what refuses.
        try await withRouter(configure: { $0.store.maxSkewMilliseconds = 10_000 * 366 * 86_400_000 }) { http, _ in
            let refused = [
                "-9223372036854775808", "9223372036854775807", "-62167219200001", "253402300800000",
                "99999999999999999999", #""0000-01-01T00:00:00+00:01""#, #""9999-12-31T23:59:59-00:01""#,
            ]
            for time in refused {
                let r = try await http.post("/e/notes", #"{"aggregate":"t","type":"t","time":\#(time)}"#)
                #expect(r.status == 422, "\(time)")
                #expect(r.error == "invalid_event", "\(time)")
                #expect(r.json["details"]?.arrayFirst?["field"] == .string("time"), "\(time)")
            }
            for time in [#""10000-01-01T00:00:00Z""#, #""1e3""#, "1.5", #""2026-02-30T00:00:00Z""#] {
                let r = try await http.post("/e/notes", #"{"aggregate":"t","type":"t","time":\#(time)}"#)
                #expect(r.status == 400, "\(time)")
            }
            #expect(try await http.get("/e/notes").json["head"] == .string(""))  // nothing stored

            // The ends of the range are stored and served.
            for (time, text) in [("-62167219200000", "0000-01-01T00:00:00.000Z"), (#""9999-12-31T23:59:59.999Z""#, "9999-12-31T23:59:59.999Z")] {
                let r = try await http.post("/e/notes", #"{"aggregate":"ends","type":"t","time":\#(time)}"#)
                #expect(r.status == 201)
                #expect(r.json["events"]?.arrayFirst?["time"] == .string(text))
            }
            let feed = try await http.allEvents("notes")
            #expect(feed.events.count == 2)
            let aggregate = try await http.get("/a/notes/ends")
            #expect(aggregate.json["time"] == .string("9999-12-31T23:59:59.999Z"))
            #expect(try await http.get("/a/notes/ends?as_of=0000-01-01T00:00:00Z").json["events"] == .integer(1))
            try await expectAlive(http)
        }
    }

    /// A recorded event's time defaults to its hlc's milliseconds: those must be in range too.
    @Test func recordedEventsObeyTheTimeRangeAndTheSkewRule() async throws {
        try await withRouter { http, _ in
            let cases = [
                (#""hlc":"0001934f5a2b0000","time":-9223372036854775808"#, "time"),
                (#""hlc":"ffffffffffff0000""#, "hlc"),
            ]
            for (fields, field) in cases {
                let r = try await http.post("/e/notes", #"{"id":"0193a1b2-c3d4-7e5f-8a9b-000000000009","aggregate":"x","type":"t","origin":"truck-7","seq":1,\#(fields)}"#)
                #expect(r.status == 422, "\(fields)")
                #expect(r.json["details"]?.arrayFirst?["field"] == .string(field), "\(fields)")
            }
            #expect(try await http.get("/e/notes").json["head"] == .string(""))
            try await expectAlive(http)
        }
    }

    /// Was: qty Int64.min passed the schema, then `on_hand -= qty` overflowed on the writer thread.
    @Test func demoQuantitiesAreBoundedAndIntegralNumbersCount() async throws {
        try await withRouter { http, _ in
            for qty in ["-9223372036854775808", "9223372036854775807", "1000000001", "-1000000001", "1.5", "1e10", "\"3\"", "null"] {
                let r = try await http.post("/e/inventory", #"{"aggregate":"SKU-1@AKL","type":"stock.picked","data":{"qty":\#(qty)}}"#)
                #expect(r.status == 422, "\(qty)")
                #expect(r.error == "invalid_event", "\(qty)")
                #expect(r.json["details"]?.arrayFirst?["field"] == .string("data.qty"), "\(qty)")
            }
            let batch = #"""
                [{"aggregate":"SKU-1@AKL","type":"stock.received","data":{"qty":1000000000}},
                 {"aggregate":"SKU-1@AKL","type":"stock.received","data":{"qty":1e2}},
                 {"aggregate":"SKU-1@AKL","type":"stock.picked","data":{"qty":1.0}},
                 {"aggregate":"SKU-1@AKL","type":"stock.picked","data":{"qty":-1000000000}}]
                """#
            #expect(try await http.post("/e/inventory", batch).status == 201)
            #expect(try await http.get("/a/inventory/SKU-1@AKL").json["state"] == .object([("on_hand", .integer(2_000_000_099))]))
            try await expectAlive(http)
        }
    }

    /// An aggregate id is its bytes: the NFC and NFD forms of "café" are two aggregates, in one
    /// commit and across commits (the writer's cache used Swift's canonical equality), and JSON
    /// member names are bytes too.
    @Test func aggregateIDsAndMemberNamesAreTheirBytes() async throws {
        try await withRouter { http, _ in
            let nfc = "caf\u{E9}", nfd = "cafe\u{301}"
            #expect(nfc == nfd && Array(nfc.utf8) != Array(nfd.utf8))  // what makes this a trap
            let both = #"[{"aggregate":"\#(nfc)","type":"t","data":{"a":1}},{"aggregate":"\#(nfd)","type":"t","data":{"b":2}}]"#
            #expect(try await http.post("/e/notes", both).status == 201)
            #expect(try await http.post("/e/notes", #"{"aggregate":"\#(nfd)","type":"t","data":{"c":3}}"#).status == 201)
            let enc = { (s: String) in s.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }
            #expect(try await http.get("/a/notes/\(enc(nfc))").json["state"] == .object([("a", .integer(1))]))
            #expect(try await http.get("/a/notes/\(enc(nfd))").json["state"] == .object([("b", .integer(2)), ("c", .integer(3))]))
            let list = try await http.get("/a/notes")
            guard case .array(let aggregates)? = list.json["aggregates"] else { Issue.record("no list"); return }
            #expect(aggregates.count == 2)

            // An id retried in the other form is other content: a conflict, not a no-op.
            let id = "0193a1b2-c3d4-7e5f-8a9b-00000000000a"
            #expect(try await http.post("/e/notes", #"{"id":"\#(id)","aggregate":"\#(nfc)","type":"t"}"#).status == 201)
            #expect(try await http.post("/e/notes", #"{"id":"\#(id)","aggregate":"\#(nfd)","type":"t"}"#).status == 409)

            #expect(try await http.post("/e/notes", #"{"aggregate":"names","type":"t","data":{"\#(nfc)":1,"\#(nfd)":2}}"#).status == 201)
            let state = try await http.get("/a/notes/names").json["state"]
            guard case .object(let members)? = state else { Issue.record("no state"); return }
            #expect(members.map { Array($0.key.utf8) } == [Array(nfc.utf8), Array(nfd.utf8)])
        }
    }

    @Test func versionVectorsAndTimesInQueriesAreChecked() async throws {
        try await withRouter { http, _ in
            let paths = [
                "/e/notes?vv=a:1,a:2", "/e/notes?vv=a:0", "/e/notes?vv=a:9223372036854775808", "/e/notes?vv=a%20b:1",
                "/e/notes?vv=a:-1", "/e/notes?vv=:1", "/e/notes?vv=a:1,",
                "/a/notes/x?as_of=-9223372036854775808", "/a/notes/x?as_of=253402300800000", "/a/notes/x?as_of=-62167219200001",
                "/a/notes/x?recorded_by=9223372036854775807", "/a/notes/x?as_of=0000-01-01T00:00:00%2B00:01",
            ]
            for path in paths {
                let r = try await http.get(path)
                #expect(r.status == 400, "\(path)")
                #expect(r.error == "bad_request", "\(path)")
            }
            #expect(try await http.get("/e/notes?vv=a:9223372036854775807").status == 200)
            #expect(try await http.get("/a/notes/x?as_of=253402300799999").status == 404)
            try await expectAlive(http)
        }
    }

    /// A relayed or restored event of this node's own origin is history like any other; the
    /// node's next own event follows it.
    @Test func aRecordedEventOfThisNodesOwnOriginIsStoredAndFollowed() async throws {
        try await withRouter(replica: "hq-1") { http, _ in
            let relayed = #"{"id":"0193a1b2-c3d4-7e5f-8a9b-00000000000b","aggregate":"x","type":"t","origin":"hq-1","seq":1,"hlc":"0001934f5a2b0000"}"#
            #expect(try await http.post("/e/notes", relayed).status == 201)
            let next = try await http.post("/e/notes?head=true", #"{"aggregate":"x","type":"t"}"#)
            #expect(next.status == 201)
            #expect(next.json["events"]?.arrayFirst?["seq"] == .integer(2))
            #expect(next.json["head"] == .string("hq-1:2"))
        }
    }

    /// Documents nested past the parser's limit, huge numbers and long strings are 400s.
    @Test func deepAndOddDocumentsAre400() async throws {
        try await withRouter { http, _ in
            let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
            let deepData = #"{"aggregate":"d","type":"t","data":"# + String(repeating: #"{"a":"#, count: 200) + "1" + String(repeating: "}", count: 200) + "}"
            for body in [deep, deepData, "\u{FEFF}{}", #"{"aggregate":"\ud800","type":"t"}"#] {
                let r = try await http.post("/e/notes", body)
                #expect(r.status == 400)
            }
            let big = #"{"aggregate":"n","type":"t","data":{"n":1e999999,"m":-0.0000000000000000000001e-99999}}"#
            #expect(try await http.post("/e/notes", big).status == 201)  // kept as text; nothing computes with it
            #expect(try await http.get("/a/notes/n").status == 200)
            try await expectAlive(http)
        }
    }
}
