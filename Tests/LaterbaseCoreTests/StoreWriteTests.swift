import Foundation
import LaterbaseCore
import LaterbaseDemo
import LMDB
import Synchronization
import Testing

@Suite struct StoreWriteTests {
    @Test func newEventsGetContiguousDotsAndAnIDAndAreDurable() async throws {
        try await withNode(replica: "hq-1", durable: true) { node in
            let a = try await node.write("notes", #"[{"aggregate":"x","type":"t","data":{"n":1}},{"aggregate":"y","type":"t","data":{"n":2}}]"#)
            let b = try await node.write("notes", #"{"aggregate":"x","type":"t","data":{"n":3}}"#)
            #expect(a.created && b.created)
            #expect(a.events.map(\.seq) == [1, 2])
            #expect(b.events.map(\.seq) == [3])
            #expect(a.events.allSatisfy { $0.origin == "hq-1" })
            #expect(a.events[0].hlc < a.events[1].hlc && a.events[1].hlc < b.events[0].hlc)
            #expect(b.position.value == 3 && b.position.epoch == node.store.epoch)
            #expect(a.events[0].id != a.events[1].id)
            #expect(try node.store.head(of: "notes").description == "hq-1:3")
        }
    }

    @Test func aRetriedEventWithTheSameIDIsANoOpAndOtherContentIsAConflict() async throws {
        try await withNode(replica: "hq-1") { node in
            let id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
            let first = try await node.write("notes", #"{"id":"\#(id)","aggregate":"x","type":"t","data":{"n":1}}"#)
            let again = try await node.write("notes", #"{"id":"\#(id)","aggregate":"x","type":"t","data":{"n":1}}"#)
            #expect(first.created && !again.created)
            #expect(again.events == first.events)
            await #expect(throws: LaterbaseError.self) {
                try await node.write("notes", #"{"id":"\#(id)","aggregate":"x","type":"t","data":{"n":2}}"#)
            }
            do {
                try await node.write("notes", #"[{"aggregate":"x","type":"t"},{"id":"\#(id)","aggregate":"x","type":"t","data":{"n":2}}]"#)
                Issue.record("expected a conflict")
            } catch let error as LaterbaseError {
                #expect(error.code == .conflict)
                #expect(error.details.first?["index"] == .integer(1))
            }
            // Refused batches stored nothing, the valid first event of the last one included.
            #expect(try node.store.head(of: "notes").description == "hq-1:1")
            #expect(try node.allEvents("notes").count == 1)
        }
    }

    @Test func recordedEventsReplicateAsTheyAreWithoutGaps() async throws {
        try await withNode(replica: "hq-1") { node in
            func recorded(_ seq: Int, _ hlc: String, id: String? = nil) -> String {
                let id = id ?? "0193a1b2-c3d4-7e5f-8a9b-0000000000\(String(format: "%02d", seq))"
                return #"{"id":"\#(id)","aggregate":"x","type":"t","data":{"s":\#(seq)},"origin":"truck-7","seq":\#(seq),"hlc":"\#(hlc)","time":"2026-11-20T10:00:00.000Z"}"#
            }
            let batch = "[\(recorded(1, "0001934f5a2b0000")),\(recorded(2, "0001934f5a2b0001"))]"
            let stored = try await node.write("notes", batch)
            #expect(stored.events.map(\.origin) == ["truck-7", "truck-7"])
            #expect(stored.events.map(\.hlc.description) == ["0001934f5a2b0000", "0001934f5a2b0001"])
            #expect(try node.store.head(of: "notes").description == "truck-7:2")

            // The same again: idempotent by dot.
            let again = try await node.write("notes", batch)
            #expect(!again.created)

            // A gap: seq 4 when 3 is next.
            do {
                try await node.write("notes", recorded(4, "0001934f5a2b0009"))
                Issue.record("expected a gap")
            } catch let error as LaterbaseError {
                #expect(error.code == .gap)
                #expect(error.details.first?["origin"] == .string("truck-7"))
                #expect(error.details.first?["expected"] == .integer(3))
            }
            // Counting the batch itself: 3 then 4 in one batch is fine.
            try await node.write("notes", "[\(recorded(3, "0001934f5a2b0002")),\(recorded(4, "0001934f5a2b0003"))]")
            // An hlc that does not grow with seq.
            do {
                try await node.write("notes", recorded(5, "0001934f5a2b0003"))
                Issue.record("expected invalid_event")
            } catch let error as LaterbaseError {
                #expect(error.code == .invalidEvent)
            }
            // The same dot with other content (v3, a forked origin): no refusal; one version
            // stays by the digest rule, and sending either again changes nothing.
            func second() throws -> JSON? { try node.allEvents("notes").first { $0["seq"] == .integer(2) } }
            let first = try second()
            let answer = try await node.write("notes", recorded(2, "0001934f5a2b0005"))
            let arrivedKept = answer.events[0].hlc == HLC(wire: "0001934f5a2b0005")!
            #expect(answer.created == arrivedKept)
            #expect(try second()?["hlc"] == .string(answer.events[0].hlc.description))
            #expect(arrivedKept ? try second() != first : try second() == first)
            #expect(try await !node.write("notes", recorded(2, "0001934f5a2b0005")).created)
            #expect(try node.store.head(of: "notes").description == "truck-7:4")
            // The node's own clock took in the received hlc: its next event is after them.
            let local = try await node.write("notes", #"{"aggregate":"x","type":"t"}"#)
            #expect(local.events[0].hlc > HLC(wire: "0001934f5a2b0003")!)
        }
    }

    /// The writer looks an id up only when it is not above every id stored or named before it,
    /// and indexes a batch's own events only when one is named again: each path, including an
    /// id that repeats one of the same batch above everything stored.
    @Test func idsAndDotsRepeatedWithinABatchOrBelowTheGreatestStoredAreFound() async throws {
        try await withNode(replica: "hq-1") { node in
            func local(_ id: String, _ n: Int) -> String { #"{"id":"\#(id)","aggregate":"x","type":"t","data":{"n":\#(n)}}"# }
            let high = "ffff0000-0000-7000-8000-000000000001", low = "00000000-0000-4000-8000-000000000001"
            let mid = "80000000-0000-4000-8000-000000000001", higher = "ffff0000-0000-7000-8000-000000000002"
            let first = try await node.write("notes", local(high, 1))
            // Below the greatest stored, new; the same again in the batch; above it, new; the
            // stored one again.
            let batch = try await node.write("notes", "[\(local(low, 2)),\(local(low, 2)),\(local(higher, 3)),\(local(high, 1)),\(local(mid, 4))]")
            #expect(batch.created)
            #expect(batch.events.map(\.seq) == [2, 2, 3, 1, 4])
            #expect(try node.store.head(of: "notes").description == "hq-1:4")
            // The same id in one batch with other content: below the greatest, and above it
            // (the batch's own earlier event is the only one that has it).
            for ids in [["40000000-0000-4000-8000-000000000001", "40000000-0000-4000-8000-000000000001"], ["ffff0000-0000-7000-8000-000000000009", "ffff0000-0000-7000-8000-000000000009"]] {
                do {
                    try await node.write("notes", "[\(local(ids[0], 5)),\(local(ids[1], 6))]")
                    Issue.record("expected a conflict for \(ids)")
                } catch let error as LaterbaseError {
                    #expect(error.code == .conflict)
                    #expect(error.details.first?["index"] == .integer(1))
                }
            }
            // Recorded events: a dot repeated in the batch is the same event; an id the batch
            // or the store gave another dot is no refusal (v3): the first dot in (hlc, origin,
            // seq) order holds it, the other is a duplicate that no aggregate folds.
            func recorded(_ seq: Int, _ id: String, n: Int = 0) -> String {
                #"{"id":"\#(id)","aggregate":"y","type":"t","data":{"n":\#(n)},"origin":"truck-7","seq":\#(seq),"hlc":"0001934f5a2b000\#(seq)","time":"2026-11-20T10:00:00.000Z"}"#
            }
            func folded(_ aggregate: String) throws -> Int64? {
                try node.store.aggregate(root: "notes", id: aggregate).flatMap { try JSONParser.parse($0)["events"]?.int64Value }
            }
            let r1 = "ffff0000-0000-7000-8000-0000000000a1", r2 = "ffff0000-0000-7000-8000-0000000000a2"
            let replicated = try await node.write("notes", "[\(recorded(1, r1)),\(recorded(2, r2)),\(recorded(1, r1))]")
            #expect(replicated.events.map(\.seq) == [1, 2, 1] && replicated.events.map(\.origin) == ["truck-7", "truck-7", "truck-7"])
            #expect(try folded("x") == 4 && folded("y") == 2)
            // The batch's own new event (hq-1:5, hlc now) gives way to the recorded one after it
            // (truck-7:3, an hlc of 2024), above the greatest id stored.
            let both = try await node.write("notes", "[\(local("ffff0000-0000-7000-8000-0000000000b1", 7)),\(recorded(3, "ffff0000-0000-7000-8000-0000000000b1"))]")
            #expect(both.created && both.events.map(\.dot.description) == ["hq-1:5", "truck-7:3"])
            #expect(try folded("x") == 4 && folded("y") == 3)
            // A stored event (hq-1:2, below the greatest id) gives way to a recorded one before it.
            #expect(try await node.write("notes", recorded(4, low)).created)
            #expect(try folded("x") == 3 && folded("y") == 4)
            // A recorded event after the holder of its id is a duplicate from the start.
            #expect(try await node.write("notes", #"{"id":"\#(high)","aggregate":"z","type":"t","data":{},"origin":"van-1","seq":1,"hlc":"\#(HLC(rawValue: first.events[0].hlc.rawValue + 1))","time":0}"#).created)
            #expect(try folded("x") == 3 && folded("z") == nil)
            #expect(try node.store.head(of: "notes").description == "hq-1:5,truck-7:4,van-1:1")
            #expect(try node.allEvents("notes").count == 10)
        }
    }

    @Test func schemaAndSkewAreCheckedBeforeTheWriter() async throws {
        try await withNode(replica: "hq-1") { node in
            for (body, field) in [
                (#"{"aggregate":"S","type":"shipment.created","data":{"origin":"AKL"}}"#, "data.destination"),
                (#"{"aggregate":"S","type":"shipment.created","data":{"origin":"AKL","destination":5}}"#, "data.destination"),
                (#"{"aggregate":"S","type":"shipment.lost","data":{}}"#, "type"),
                (#"{"aggregate":"S","type":"shipment.arrived","version":2,"data":{"location":"x"}}"#, "version"),
                (#"{"aggregate":"S","type":"shipment.arrived","data":{"location":"x"},"time":"2099-01-01T00:00:00Z"}"#, "time"),
            ] {
                do {
                    try await node.write("shipments", body)
                    Issue.record("expected invalid_event for \(body)")
                } catch let error as LaterbaseError {
                    #expect(error.code == .invalidEvent)
                    #expect(error.details.first?["field"] == .string(field), "\(body)")
                }
            }
            #expect(try node.store.head(of: "shipments").entries.isEmpty)
        }
    }
}

@Suite struct CommitHookTests {
    @Test func theHookSeesEachCommitInOrderWithItsHead() async throws {
        let seen = Mutex<[(root: String, seqs: [UInt64], head: String)]>([])
        let folder = TestNode.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try EventStore(directory: folder, roots: TestNode.roots, replicaID: "hq-1", logger: quietLogger)
        let writer = Writer(store: store, logger: quietLogger) { changes in
            seen.withLock { list in
                for change in changes.roots { list.append((change.root, change.events.map(\.seq), "\(change.previous.value)-\(change.position.value)")) }
            }
        }
        writer.start()
        func write(_ root: String, _ json: String) async throws {
            _ = try await writer.write(try store.prepare(root: root, events: EventInput.batch(from: JSONParser.parse(Array(json.utf8)), maxEvents: 10)))
        }
        try await write("notes", #"[{"aggregate":"a","type":"t"},{"aggregate":"b","type":"t"}]"#)
        try await write("shipments", #"{"aggregate":"S","type":"shipment.created","data":{"origin":"A","destination":"B"}}"#)
        try await write("notes", #"{"aggregate":"a","type":"t"}"#)
        await #expect(throws: LaterbaseError.self) { try await write("notes", #"{"aggregate":"a","type":"nope","origin":"x","seq":5,"hlc":"0001934f5a2b0000","id":"0193a1b2-c3d4-7e5f-8a9b-000000000001"}"#) }
        await writer.shutdown()
        let list = seen.withLock { $0 }
        #expect(list.map(\.root) == ["notes", "shipments", "notes"])  // a refused batch is not published
        #expect(list.map(\.seqs) == [[1, 2], [1], [3]])
        #expect(list.map(\.head) == ["0-2", "0-1", "2-3"])  // positions per root, before and after
    }
}

@Suite struct GroupCommitTests {
    /// Batches queued together are committed together, up to the writer's event limit.
    @Test func queuedBatchesShareCommitsUpToTheLimit() async throws {
        let commits = Mutex<[Int]>([])
        let folder = TestNode.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try EventStore(directory: folder, roots: TestNode.roots, replicaID: "hq-1", logger: quietLogger)
        var options = Writer.Options()
        options.maxTransactionEvents = 6
        options.maxDelay = .milliseconds(300)  // linger so every batch below is queued first
        let writer = Writer(store: store, options: options, logger: quietLogger) { changes in
            commits.withLock { $0.append(changes.roots.reduce(0) { $0 + $1.events.count }) }
        }
        writer.start()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<9 {
                group.addTask {
                    let json = #"[{"aggregate":"a\#(i)","type":"t"},{"aggregate":"b\#(i)","type":"t"}]"#
                    _ = try await writer.write(try store.prepare(root: "notes", events: EventInput.batch(from: JSONParser.parse(Array(json.utf8)), maxEvents: 10)))
                }
            }
            try await group.waitForAll()
        }
        await writer.shutdown()
        let sizes = commits.withLock { $0 }
        #expect(sizes.reduce(0, +) == 18)
        #expect(sizes.allSatisfy { $0 <= 6 })  // never more than the limit
        #expect(sizes.count < 9)  // but batches did share commits
        #expect(try store.head(of: "notes").description == "hq-1:18")
    }
}

@Suite struct AggregateTests {
    @Test func shipmentsFold() async throws {
        try await withNode(replica: "hq-1") { node in
            try await node.write("shipments", #"""
                [{"aggregate":"SHP-1","type":"shipment.created","data":{"origin":"AKL","destination":"CHC"}},
                 {"aggregate":"SHP-1","type":"shipment.departed","data":{"location":"AKL"}},
                 {"aggregate":"SHP-1","type":"shipment.arrived","data":{"location":"WLG"}},
                 {"aggregate":"SHP-1","type":"shipment.departed","data":{"location":"WLG"}}]
                """#)
            let body = try #require(try node.store.aggregate(root: "shipments", id: "SHP-1"))
            let json = try JSONParser.parse(body)
            #expect(json["state"]?["status"] == .string("in_transit"))
            #expect(json["state"]?["legs"] == .integer(2))
            #expect(json["state"]?["location"] == .string("WLG"))
            #expect(json["events"] == .integer(4))
            #expect(try node.store.aggregate(root: "shipments", id: "SHP-2") == nil)
        }
    }

    @Test func aBackDatedCountChangesWhatFollowsItAndThePastCanBeRead() async throws {
        try await withNode(replica: "hq-1", checkpointEvery: 2) { node in
            func stock(_ type: String, _ qty: Int, _ time: String) -> String {
                #"{"aggregate":"SKU-1@AKL","type":"stock.\#(type)","data":{"qty":\#(qty)},"time":"2026-11-20T\#(time):00.000Z"}"#
            }
            try await node.write("inventory", "[\(stock("received", 10, "10:00")),\(stock("picked", 3, "11:00")),\(stock("picked", 2, "12:00")),\(stock("received", 4, "13:00"))]")
            func onHand(asOf: String? = nil, recordedBy: Int64? = nil) throws -> Int64? {
                let body = try node.store.aggregate(root: "inventory", id: "SKU-1@AKL", asOf: asOf.flatMap { EventTime.parse("2026-11-20T\($0):00.000Z") }, recordedBy: recordedBy)
                return try body.flatMap { try JSONParser.parse($0)["state"]?["on_hand"]?.int64Value }
            }
            #expect(try onHand() == 9)
            let beforeCount = Int64(SystemClock.milliseconds())
            try await Task.sleep(for: .milliseconds(5))

            // Someone counted 20 at 10:30 and records it only now.
            let count = try await node.write("inventory", stock("counted", 20, "10:30"))
            #expect(try onHand() == 20 - 3 - 2 + 4)
            #expect(try onHand(asOf: "10:15") == 10)
            #expect(try onHand(asOf: "10:45") == 20)
            #expect(try onHand(asOf: "12:30") == 15)
            #expect(try onHand(asOf: "09:00") == nil)  // nothing had happened yet
            // What had been recorded before the count was written:
            #expect(try onHand(recordedBy: beforeCount) == 9)
            #expect(try onHand(asOf: "12:30", recordedBy: beforeCount) == 5)
            #expect(try onHand(recordedBy: Int64(count.events[0].hlc.milliseconds)) == 19)

            let json = try JSONParser.parse(try #require(try node.store.aggregate(root: "inventory", id: "SKU-1@AKL")))
            #expect(json["events"] == .integer(5))
            #expect(json["time"] == .string("2026-11-20T13:00:00.000Z"))  // the last in fold order
            #expect(json["hlc"] == .string(count.events[0].hlc.description))  // the largest hlc
        }
    }

    @Test func listsAggregatesByIDInPages() async throws {
        try await withNode(replica: "hq-1") { node in
            let ids = ["b", "a", "d", "c", "e"]
            try await node.write("notes", "[" + ids.map { #"{"aggregate":"\#($0)","type":"t","data":{"id":"\#($0)"}}"# }.joined(separator: ",") + "]")
            let first = try node.store.aggregates(root: "notes", after: nil, limit: 2)
            #expect(first.next == "b")
            let second = try node.store.aggregates(root: "notes", after: first.next, limit: 2)
            #expect(second.next == "d")
            let third = try node.store.aggregates(root: "notes", after: second.next, limit: 2)
            #expect(third.next == nil)
            let all = (first.aggregates + second.aggregates + third.aggregates).map { try! JSONParser.parse($0)["id"]!.stringValue! }
            #expect(all == ["a", "b", "c", "d", "e"])
        }
    }
}

/// The `agg` index takes an aggregate's events in runs; the latest are found through the chain
/// in the log (the aggregate's tail). Past reads and refolds must see both, across restarts.
@Suite struct AggregateTailTests {
    @Test func pastReadsAndBackDatedRefoldsSeeTheIndexAndTheTailAcrossRestarts() async throws {
        let folder = TestNode.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        struct Written { let time: Int64; let hlc: UInt64; let seq: UInt64; let type: String; let qty: Int }
        var written: [Written] = []
        var random = SystemRandomNumberGenerator()
        let base = EventTime.parse("2026-11-20T00:00:00.000Z")!
        var node = try TestNode(replica: "hq-1", folder: folder, checkpointEvery: 8)
        var minute: Int64 = 0
        // 3 × 100 events over ~70 commits: more than one run of the index, tails of every
        // length, checkpoints every 8; one in six back-dated into the past; restarts between.
        for round in 0..<3 {
            var left = 100
            while left > 0 {
                let n = min(left, Int.random(in: 1...7, using: &random))
                left -= n
                var items: [(String, Int, Int64)] = []
                for _ in 0..<n {
                    minute += 1
                    let time = Int.random(in: 0..<6, using: &random) == 0 ? Int64.random(in: 0..<minute, using: &random) : minute
                    let type = ["received", "picked", "counted"][Int.random(in: 0..<3, using: &random)]
                    items.append((type, Int.random(in: 0...20, using: &random), base + time * 60_000))
                }
                let body = "[" + items.map { #"{"aggregate":"SKU-1@AKL","type":"stock.\#($0.0)","data":{"qty":\#($0.1)},"time":\#($0.2)}"# }.joined(separator: ",")
                    + #",{"aggregate":"SKU-2@AKL","type":"stock.received","data":{"qty":1}}]"#
                let outcome = try await node.write("inventory", body)
                for (item, e) in zip(items, outcome.events) { written.append(Written(time: item.2, hlc: e.hlc.rawValue, seq: e.seq, type: item.0, qty: item.1)) }
            }
            if round < 2 {
                await node.close(removing: false)
                node = try TestNode(replica: "hq-1", folder: folder, checkpointEvery: 8)  // a cold cache: the tail comes from the chain
            }
        }
        func expected(asOf: Int64?, recordedBy: Int64?) -> (onHand: Int, events: Int)? {
            let chosen = written.filter { (asOf == nil || $0.time <= asOf!) && (recordedBy == nil || Int64($0.hlc >> 16) <= recordedBy!) }
                .sorted { ($0.time, $0.hlc, $0.seq) < ($1.time, $1.hlc, $1.seq) }
            guard !chosen.isEmpty else { return nil }
            var onHand = 0
            for e in chosen {
                switch e.type {
                case "received": onHand += e.qty
                case "picked": onHand -= e.qty
                default: onHand = e.qty
                }
            }
            return (onHand, chosen.count)
        }
        func read(asOf: Int64?, recordedBy: Int64?) throws -> (onHand: Int, events: Int)? {
            guard let body = try node.store.aggregate(root: "inventory", id: "SKU-1@AKL", asOf: asOf, recordedBy: recordedBy) else { return nil }
            let json = try JSONParser.parse(body)
            return (Int(try #require(json["state"]?["on_hand"]?.int64Value)), Int(try #require(json["events"]?.int64Value)))
        }
        #expect(try read(asOf: nil, recordedBy: nil).map { [$0.onHand, $0.events] } == expected(asOf: nil, recordedBy: nil).map { [$0.onHand, $0.events] })
        for minute in stride(from: Int64(0), through: minute, by: 7) {
            let asOf = base + minute * 60_000
            #expect(try read(asOf: asOf, recordedBy: nil).map { [$0.onHand, $0.events] } == expected(asOf: asOf, recordedBy: nil).map { [$0.onHand, $0.events] }, "as of minute \(minute)")
        }
        for w in stride(from: 0, to: written.count, by: 13) {
            let by = Int64(written[w].hlc >> 16)
            #expect(try read(asOf: nil, recordedBy: by).map { [$0.onHand, $0.events] } == expected(asOf: nil, recordedBy: by).map { [$0.onHand, $0.events] }, "recorded by event \(w)")
        }
        await node.close(removing: false)
    }
}

@Suite struct KeptStateTests {
    /// The state is kept only every `stateEvery` events (and when the tail is indexed or the
    /// aggregate refolded); a read folds the few events it lacks. After every commit, across
    /// restarts that leave events unfolded (so the writer's cold start folds them too), with
    /// back-dated events among them, `GET /a` and the listing must equal a naive fold.
    @Test func readsFoldTheEventsTheKeptStateLacks() async throws {
        let folder = TestNode.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var node = try TestNode(replica: "hq-1", folder: folder, checkpointEvery: 40)
        let base = EventTime.parse("2026-11-20T00:00:00.000Z")!
        var written: [(time: Int64, hlc: UInt64, seq: UInt64, n: Int)] = []
        var random = SeededGenerator(seed: 11)
        var n = 0
        var commits = 0
        while n < 300 {
            let k = Int.random(in: 1...5, using: &random)
            var items: [(Int, Int64)] = []
            for _ in 0..<k {
                n += 1
                let backDated = Int.random(in: 0..<10, using: &random) == 0
                items.append((n, base + (backDated ? Int64.random(in: 0..<Int64(n), using: &random) : Int64(n)) * 60_000))
            }
            let body = "[" + items.map { #"{"aggregate":"a","type":"t","data":{"n":\#($0.0),"k\#($0.0)":true},"time":\#($0.1)}"# }.joined(separator: ",") + "]"
            let outcome = try await node.write("notes", body)
            for (item, e) in zip(items, outcome.events) { written.append((item.1, e.hlc.rawValue, e.seq, item.0)) }
            commits += 1
            if [7, 23, 41].contains(commits) {  // restarts at several points of the cycle
                await node.close(removing: false)
                node = try TestNode(replica: "hq-1", folder: folder, checkpointEvery: 40)
            }
            let last = try #require(written.max { ($0.time, $0.hlc, $0.seq) < ($1.time, $1.hlc, $1.seq) })
            let json = try JSONParser.parse(try #require(try node.store.aggregate(root: "notes", id: "a")))
            #expect(json["events"]?.int64Value == Int64(written.count), "after \(n) events")
            #expect(json["state"]?["n"]?.int64Value == Int64(last.n), "after \(n) events")
            guard case .object(let members)? = json["state"] else { Issue.record("no state"); return }
            #expect(members.count == written.count + 1, "after \(n) events")
            let listed = try node.store.aggregates(root: "notes", after: nil, limit: 10).aggregates
            #expect(listed.count == 1)
            #expect(try JSONParser.parse(try #require(listed.first)) == json)
        }
        await node.close(removing: false)
    }
}

@Suite struct StoreFormatTests {
    /// A data folder written before the chained log (store format 1, no `format` key) or before
    /// states were kept apart (format 2) is refused with a message naming the formats, and
    /// nothing in it is changed.
    @Test(arguments: [nil, "2"] as [String?])
    func anOlderStoreFormatIsRefusedAtStart(_ format: String?) async throws {
        let folder = TestNode.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let node = try TestNode(replica: "hq-1", folder: folder)
        try await node.write("notes", #"{"aggregate":"a","type":"t","data":{}}"#)
        await node.close(removing: false)
        do {  // as an older store left it: format 1 has a replica id and no format
            let env = try Environment(path: folder)
            let meta = try env.openDatabase("_meta")
            let txn = try env.beginWrite()
            if let format { try txn.put(meta, Array("format".utf8), Array(format.utf8)) } else { #expect(try txn.delete(meta, Array("format".utf8))) }
            try txn.commit()
        }
        #expect {
            _ = try TestNode(replica: "hq-1", folder: folder)
        } throws: { error in
            let e = error as? LaterbaseError
            return e?.message.contains("store format \(format ?? "1")") == true && e?.message.contains("reads format \(EventStore.format)") == true
        }
        let env = try Environment(path: folder)
        let meta = try env.openDatabase("_meta")
        #expect(try env.read { (txn) throws(LMDBError) in try txn.get(meta, Array("format".utf8)).map { String(decoding: $0, as: UTF8.self) } } == format)
    }

    /// A format 3 store (heads without digests) is upgraded when opened: each origin's digest is
    /// computed from its events, the same as the writer keeps it.
    @Test func aFormat3StoreGetsItsDigestsWhenOpened() async throws {
        let folder = TestNode.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var node = try TestNode(replica: "hq-1", folder: folder)
        try await node.write("notes", #"[{"aggregate":"a","type":"t","data":{"n":1}},{"aggregate":"b","type":"t","data":{"n":2}}]"#)
        try await node.write("notes", #"{"aggregate":"a","type":"t","data":{"n":3},"origin":"dev-1","seq":1,"hlc":"0001934f5a2b0001","id":"0193d2a0-0000-7000-8000-000000000abc"}"#)
        let kept = try node.store.digests(of: "notes")
        #expect(kept.origins.count == 2 && kept.origins.values.allSatisfy { $0 != 0 })
        await node.close(removing: false)
        do {  // as format 3 left it: 16-byte heads
            let env = try Environment(path: folder)
            let meta = try env.openDatabase("_meta")
            let heads = try env.openDatabase("notes.heads")
            let txn = try env.beginWrite()
            try txn.put(meta, Array("format".utf8), Array("3".utf8))
            #expect(try txn.delete(meta, Array("summary:notes".utf8)))  // format 6 kept it
            for origin in ["hq-1", "dev-1"] {
                let v = try #require(try txn.get(heads, Array(origin.utf8)).map { Array($0) })
                try txn.put(heads, Array(origin.utf8), Array(v.prefix(16)))
            }
            try txn.commit()
        }
        node = try TestNode(replica: "hq-1", folder: folder)
        #expect(try node.store.digests(of: "notes") == kept)
        // and on to format 6: the root's summary, as the writer would have kept it
        #expect(try node.store.summary(of: "notes") == RootSummary(content: kept.root, head: RootSummary.headDigest(of: kept.head)))
        #expect(kept.root != 0)
        await node.close()
    }
}
