import LaterbaseCore
import Testing

/// Contract v3: whatever a node accepts, every transport carries. The limits are checked on the
/// one path every way in shares, before anything is stored.
@Suite struct EventLimitsTests {
    func nested(_ levels: Int) -> String { String(repeating: #"{"a":"#, count: levels - 1) + "{}" + String(repeating: "}", count: levels - 1) }

    @Test func dataNestedDeeperThan64IsRefusedAndNothingIsStored() async throws {
        try await withNode(replica: "hq-1") { node in
            #expect(try await node.write("notes", #"{"aggregate":"deep","type":"t","data":\#(nested(64))}"#).created)
            do {
                try await node.write("notes", #"[{"aggregate":"ok","type":"t","data":{}},{"aggregate":"deep","type":"t","data":\#(nested(65))}]"#)
                Issue.record("65 levels were accepted")
            } catch let error as LaterbaseError {
                #expect(error.code == .badRequest)
                #expect(error.details.first?["index"] == .integer(1))
            }
            // 126 levels inside a page's envelope: the JSON reader refuses those, so the writer must never store them.
            do {
                try await node.write("notes", #"{"aggregate":"deep","type":"t","data":\#(nested(126))}"#)
                Issue.record("126 levels were accepted")
            } catch let error as LaterbaseError {
                #expect(error.code == .badRequest)
            }
            #expect(try node.store.head(of: "notes").description == "hq-1:1")
            // What was accepted reads back as a page, as a peer reads it.
            let page = try node.store.feed(root: "notes", after: VersionVector(), limit: 10)
            let body = Array(#"{"events":["#.utf8) + page.events.dropLast() + Array(#"],"more":false}"#.utf8)
            let read = try body.withUnsafeBytes { b in try EventInput.page(reading: b) }
            #expect(read.events.count == 1 && read.events[0].dataDepth == 64)
        }
    }

    @Test func anEventIsMeasuredInItsRecordedFormAsServed() async throws {
        // 1,500 backspaces: 3,000 bytes as sent, 9,000 as stored and served (\u0008).
        let escapes = String(repeating: #"\b"#, count: 1500)
        let node = try TestNode(replica: "hq-1", maxEventBytes: 8192)
        do {
            try await node.write("notes", #"{"aggregate":"esc","type":"t","data":"\#(escapes)"}"#)
            Issue.record("an event of 9,000 bytes as served was accepted under a limit of 8,192")
        } catch let error as LaterbaseError {
            #expect(error.code == .tooLarge)
        }
        let fits = String(repeating: #"\b"#, count: 1200)
        let stored = try await node.write("notes", #"{"aggregate":"esc","type":"t","data":"\#(fits)"}"#)
        var served: [UInt8] = []
        stored.events[0].appendJSON(to: &served)
        #expect(served.count <= 8192 && served.count > 7200)
        #expect(try node.store.head(of: "notes").description == "hq-1:1")
        await node.close()
    }

    @Test func feedPagesAreCappedInBytesButAlwaysTakeOneEvent() async throws {
        let node = try TestNode(replica: "hq-1", maxEventBytes: 6 << 20)
        let big = String(repeating: "x", count: 900 << 10)
        for i in 0..<10 { try await node.write("notes", #"{"aggregate":"a\#(i)","type":"t","data":"\#(big)"}"#) }
        // One event larger than a page alone.
        try await node.write("notes", #"{"aggregate":"huge","type":"t","data":"\#(String(repeating: "y", count: 5 << 20))"}"#)
        var vv = VersionVector(), counts: [Int] = []
        while true {
            let page = try node.store.feed(root: "notes", after: vv, limit: 10_000)
            #expect(page.events.count <= EventStore.pageBytes || page.count == 1)
            counts.append(page.count)
            vv = page.vv
            if !page.more { break }
        }
        #expect(counts == [4, 4, 2, 1])
        #expect(vv == (try node.store.head(of: "notes")))
        await node.close()
    }
}
