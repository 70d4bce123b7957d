import Foundation
import LaterbaseCore
import Testing

/// Contract v3, "Positions", over HTTP and the publish socket.
@Suite struct PositionsHTTPTests {
    /// The feed by `since`: each event once in the order stored, `next` to go on, NDJSON, and
    /// the refusals (400 malformed or beside `vv`, 410 another node's or epoch's token).
    @Test func theFeedBySinceServesWhatWasStoredAfterAToken() async throws {
        try await withServer(replica: "hq-1") { http, _ in
            let first = try await http.post("/e/notes", newEvents(5, tag: "a").body)
            let token = try #require(first.json["position"]?.stringValue)
            #expect(first.json["head"] == nil)
            // A back-dated event and a replicated one, stored after: they come after, in the
            // order stored, not by their times.
            _ = try await http.post("/e/notes", #"{"aggregate":"old","type":"t","time":"2001-01-01T00:00:00Z"}"#)
            _ = try await http.post("/e/notes", #"{"id":"0193a1b2-c3d4-7e5f-8a9b-0000000000cc","aggregate":"r","type":"t","origin":"dev-1","seq":1,"hlc":"0001934f5a2b0000"}"#)
            let all = try await http.get("/e/notes?since=&limit=100").json
            guard case .array(let events)? = all["events"] else { Issue.record("\(all)"); return }
            #expect(events.count == 7 && all["more"] == .bool(false))
            #expect(events.map { $0["aggregate"]?.stringValue ?? "" }.suffix(2) == ["old", "r"])
            #expect(all["vv"] == nil && all["head"] == nil)
            let after = try await http.get("/e/notes?since=\(token)&limit=1").json
            guard case .array(let one)? = after["events"] else { Issue.record("\(after)"); return }
            #expect(one.first?["aggregate"] == .string("old") && after["more"] == .bool(true))
            let rest = try await http.get("/e/notes?since=\(after["next"]!.stringValue!)").json
            #expect(rest["events"].map { if case .array(let a) = $0 { a.count } else { 0 } } == 1)
            // Nothing new: the request and the answer under 1 KB together.
            let end = try #require(rest["next"]?.stringValue)
            let quiet = try await http.get("/e/notes?since=\(end)")
            #expect(quiet.json["events"] == .array([]) && quiet.json["next"] == .string(end))
            // /node says where the node stands in each root: the same token.
            #expect(try await http.get("/node").json["positions"]?["notes"] == .string(end))
            #expect(quiet.body.count + "GET /e/notes?since=\(end) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8.count < 1024)
            // NDJSON: one event a line, then {"next", "more"}.
            let lines = try await http.get("/e/notes?since=\(token)", headers: [("Accept", "application/x-ndjson")]).text.split(separator: "\n")
            #expect(lines.count == 3 && lines.last.map { try? JSONParser.parse(Array($0.utf8)) }??["next"] == .string(end))
            // A vv client switches to positions: the vv page's position, once more is false.
            let byVV = try await http.get("/e/notes?vv=&limit=10000").json
            #expect(byVV["more"] == .bool(false) && byVV["position"] == .string(end))
            _ = try await http.post("/e/notes", #"{"aggregate":"later","type":"t"}"#)
            let followed = try await http.get("/e/notes?since=\(byVV["position"]!.stringValue!)").json
            guard case .array(let later)? = followed["events"] else { Issue.record("\(followed)"); return }
            #expect(later.map { $0["aggregate"] } == [.string("later")])
            for (query, status, code) in [
                ("since=nope", 400, "bad_request"), ("since=\(end)&vv=", 400, "bad_request"),
                ("since=\(String(end.dropLast()))99", 410, "position_expired"), ("since=0000000000000001:1", 410, "position_expired"),
            ] {
                let refused = try await http.get("/e/notes?\(query)")
                #expect(refused.status == status && refused.error == code, "\(query): \(refused.status) \(refused.text)")
            }
        }
    }

    /// A probe by position (`since`, `limit=0`, `digests=true`) carries the root's two digests:
    /// `digest` as the vv feed's, `head_digest` that of the head; both 16 hex digits.
    @Test func aProbeBySinceCarriesTheRootsTwoDigests() async throws {
        try await withServer(replica: "hq-1") { http, _ in
            _ = try await http.post("/e/notes", newEvents(3, tag: "a").body)
            _ = try await http.post("/e/notes", #"{"id":"0193a1b2-c3d4-7e5f-8a9b-0000000000dd","aggregate":"r","type":"t","origin":"dev-1","seq":1,"hlc":"0001934f5a2b0000"}"#)
            let byVV = try await http.get("/e/notes?vv=&limit=0").json
            let probe = try await http.get("/e/notes?since=&limit=0&digests=true").json
            #expect(probe["events"] == .array([]) && probe["more"] == .bool(true))
            #expect(probe["digest"] == byVV["digest"])
            let head = try VersionVector(parsing: byVV["head"]!.stringValue!)
            #expect(probe["head_digest"] == .string(Hex.digest(RootSummary.headDigest(of: head))))
            // Without the flag, the page is the contract's alone.
            let plain = try await http.get("/e/notes?since=&limit=0").json
            #expect(plain["digest"] == nil && plain["head_digest"] == nil)
            _ = try await http.post("/e/notes", newEvents(1, tag: "b").body)
            let after = try await http.get("/e/notes?since=&limit=0&digests=true").json
            #expect(after["head_digest"] != probe["head_digest"] && after["digest"] != probe["digest"])
        }
    }

    /// Deltas chain by position: each one's `previous` is the last one's `position`, and the
    /// last `position` is where the feed by `since` ends.
    @Test func deltasChainByPosition() async throws {
        try await withSubscribedClient { http, client in
            for i in 0..<6 { _ = try await http.post("/e/notes", newEvents(1 + i % 3, tag: "d\(i)").body) }
            let deltas = try await client.receive(timeout: .seconds(10)) { got in got.filter { $0.topic == "notes" }.count >= 6 }.filter { $0.topic == "notes" }
            #expect(deltas.count == 6)
            for (a, b) in zip(deltas, deltas.dropFirst()) { #expect(b.body["previous"] == a.body["position"]) }
            let feed = try await http.get("/e/notes?since=").json
            #expect(deltas.last?.body["position"] == feed["next"])
            for d in deltas {
                let p = d.body["position"]?.stringValue.flatMap(Position.init(token:)), q = d.body["previous"]?.stringValue.flatMap(Position.init(token:))
                guard case .array(let events)? = d.body["events"], let p, let q else { Issue.record("\(d.body)"); continue }
                #expect(p.value - q.value == UInt64(events.count))
            }
        }
    }

    /// The live feed by position: `id:` is the token after each message, and a reconnect with
    /// `Last-Event-ID` resumes without loss or repeats.
    @Test func theLiveFeedBySinceResumesFromLastEventID() async throws {
        try await withServer(replica: "hq-1") { http, _ in
            _ = try await http.post("/e/notes", newEvents(3, tag: "a").body)
            let first = try await SSEClient.read(http, "notes", since: "", timeout: .seconds(10)) { $0.events.count >= 1 }
            let id = try #require(first.events.first?.id)
            #expect(Position(token: id) != nil && first.events.first?.data["next"] == .string(id))
            _ = try await http.post("/e/notes", newEvents(2, tag: "b").body)
            let resumed = try await SSEClient.read(http, "notes", since: "", lastEventID: id, timeout: .seconds(10)) { c in
                c.events.reduce(0) { n, e in if case .array(let a)? = e.data["events"] { n + a.count } else { n } } >= 2
            }
            let got = resumed.events.flatMap { e -> [JSON] in if case .array(let a)? = e.data["events"] { a } else { [] } }
            #expect(got.count == 2 && got.allSatisfy { $0["data"]?["b"] != nil })
        }
    }
}
