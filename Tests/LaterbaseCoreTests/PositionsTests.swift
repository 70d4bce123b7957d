import Foundation
import LaterbaseCore
import LMDB
import PropertyBased
import Synchronization
import Testing

/// Contract v3, "Positions": every node numbers what it stores in each root, in commit order.
@Suite struct PositionsTests {
    /// A reader paging by `since` in random page sizes while new, back-dated, replicated and
    /// forked events are written (one commit at a time, and pulls in random page sizes) sees
    /// each stored version of each dot exactly once, ends with every event the store holds, and
    /// never sees a dot after its replacement in an older version.
    @Test(.shrinking(false)) func pagingBySinceYieldsEachEventOnceWhileWritesGoOn() async throws {
        await propertyCheck(count: 10, input: RandomIDWrite.generator.array(of: 10...60), Gen.int(in: 0...Int.max)) { writes, seed in
            do {
                let src = try ["a", "b", "c"].map { try TestNode(replica: $0, checkpointEvery: 3) }
                let node = try TestNode(replica: "n", checkpointEvery: 4)
                // Two versions of dev-1:1...2, at b and c: n meets both, and keeps one.
                for (v, s) in [(0, src[1]), (1, src[2])] {
                    let events = (1...2).map { i in
                        #"{"id":"0193d2a0-0000-7000-8000-0000000002\#(v)\#(i)","aggregate":"SKU-1","type":"stock.received","data":{"qty":\#(10 * v + i)},"origin":"dev-1","seq":\#(i),"hlc":"\#(HLC(rawValue: (SystemClock.milliseconds() - 60_000) << 16 + UInt64(i)))"}"#
                    }
                    try await s.write("inventory", "[" + events.joined(separator: ",") + "]", replicating: true)
                }
                let reader = Task { () throws -> [(dot: String, event: JSON)] in
                    var seen: [(dot: String, event: JSON)] = []
                    var since: Position? = nil
                    var r = seed
                    var quiet = 0
                    while quiet < 3 {
                        r = r / 31 + 7919 * (r % 31)
                        let page = try node.store.changes(root: "inventory", since: since, limit: 1 + r % 7)
                        for e in try TestNode.events(of: page) {
                            seen.append(("\(e["origin"]!.stringValue!):\(e["seq"]!.int64Value!)", e))
                        }
                        #expect(page.next.value >= since?.value ?? 0)
                        since = page.next
                        if page.count == 0 && !page.more && Task.isCancelled { quiet += 1 }  // the writes ended: drained
                        await Task.yield()
                    }
                    return seen
                }
                var r = seed
                var sent: [String: String] = [:]
                for w in writes {
                    r = r / 31 + 7919 * (r % 31)
                    if r % 4 == 0 {
                        try await node.pull("inventory", from: src[r % 3], pageSize: 1 + r % 5)
                    } else {
                        var json = w.write.json
                        if let id = w.id {  // a retry: the same event again at its node, or at another
                            let key = "\(w.write.node)/\(id)"
                            json = sent[key] ?? (String(json.dropLast()) + #","id":"\#(RandomIDWrite.ids[id])"}"#)
                            sent[key] = json
                        }
                        try await (w.write.node == 0 ? node : src[w.write.node]).write("inventory", json)
                    }
                }
                for s in src { try await node.reconcile("inventory", with: s) }
                reader.cancel()
                let seen = try await reader.value
                let stored = try node.allEvents("inventory")
                // Each (dot, version) once; every stored event among them, in its stored version
                // as the last seen of its dot.
                var versions = Set<String>()
                for (dot, e) in seen { #expect(versions.insert(dot + String(decoding: e.bytes, as: UTF8.self)).inserted, "\(dot) twice") }
                var last: [String: JSON] = [:]
                for (dot, e) in seen { last[dot] = e }
                #expect(last.count == stored.count)
                for e in stored { #expect(last["\(e["origin"]!.stringValue!):\(e["seq"]!.int64Value!)"] == e) }
                // Each position served once, or skipped (an older place of a replaced dot).
                #expect(try node.store.position(of: "inventory").value >= UInt64(seen.count))
                // Read again from the beginning, here and at a node that met the fork's versions
                // in the other order (one of the two replaced each dot): each dot once, as stored.
                let other = try TestNode(replica: "m")
                for s in src.reversed() { try await other.reconcile("inventory", with: s) }
                for n in [node, other] {
                    var all: [JSON] = []
                    var since: Position? = nil
                    repeat {
                        let page = try n.store.changes(root: "inventory", since: since, limit: 1 + seed % 5)
                        all += try TestNode.events(of: page)
                        since = page.next
                        if !page.more { break }
                    } while true
                    #expect(Set(all.map { "\($0["origin"]!.stringValue!):\($0["seq"]!.int64Value!)" }).count == all.count, "\(n.store.replicaID): a dot twice")
                    #expect(Set(all.map(\.bytes)) == Set(try n.allEvents("inventory").map(\.bytes)))
                }
                for n in src + [node, other] { await n.close() }
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    @Test func tokensOfAnotherEpochOrBeyondTheLastAreExpiredAndMalformedOnesRefused() async throws {
        try await withNode(replica: "hq-1") { node in
            let written = try await node.write("notes", #"[{"aggregate":"a","type":"t"},{"aggregate":"b","type":"t"}]"#)
            #expect(written.position == Position(epoch: node.store.epoch, value: 2))
            let all = try node.store.changes(root: "notes", since: nil, limit: 10)
            #expect(all.count == 2 && all.next == written.position && !all.more)
            let empty = try node.store.changes(root: "notes", since: all.next, limit: 10)
            #expect(empty.count == 0 && empty.next == all.next && !empty.more)
            for expired in [Position(epoch: node.store.epoch &+ 1, value: 1), Position(epoch: node.store.epoch, value: 3)] {
                #expect { _ = try node.store.changes(root: "notes", since: expired, limit: 10) } throws: { ($0 as? LaterbaseError)?.code == .positionExpired }
            }
            for bad in ["", "1:2", "0123456789abcdeg:1", "0123456789abcdef:", "0123456789abcdef:01", "0123456789ABCDEF:1", "0123456789abcdef:1:2",
                        "0123456789abcdef:99999999999999999999"] {
                #expect(Position(token: bad) == nil, "\(bad)")
            }
            #expect(Position(token: all.next.description) == all.next)
        }
    }

    /// A restore starts a new epoch: a token from before it is 410, and the vv still works.
    @Test func aRestoreStartsANewEpoch() async throws {
        let node = try TestNode(replica: "hq-1")
        try await node.write("notes", #"{"aggregate":"a","type":"t"}"#)
        let token = try node.store.position(of: "notes")
        await node.close(removing: false)
        let file = TestNode.temporaryFolder() + "/backup.mdb"
        _ = try Backup.create(from: node.folder, to: file)
        let folder = TestNode.temporaryFolder() + "/restored"
        _ = try Backup.restore(from: file, into: folder, identity: .kept)
        let restored = try TestNode(replica: "hq-1", folder: folder)
        #expect(restored.store.epoch != token.epoch)
        #expect { _ = try restored.store.changes(root: "notes", since: token, limit: 10) } throws: { ($0 as? LaterbaseError)?.code == .positionExpired }
        #expect(try restored.store.changes(root: "notes", since: nil, limit: 10).count == 1)
        await restored.close()
        try? FileManager.default.removeItem(atPath: node.folder)
    }

    /// A format 4 folder (no positions) gets them when opened, in feed order; an upgrade cut
    /// off midway (its progress recorded, as kill -9 leaves it) resumes where it stopped.
    @Test(arguments: [false, true]) func aFormat4StoreIsNumberedInFeedOrderWhenOpened(interrupted: Bool) async throws {
        let folder = TestNode.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var node = try TestNode(replica: "hq-1", folder: folder)
        for i in 0..<5 {
            try await node.write("notes", #"[{"aggregate":"a","type":"t","data":{"n":\#(i)}},{"aggregate":"b","type":"t","time":"2020-01-01T00:00:00Z"}]"#)
            try await node.write("notes", #"{"aggregate":"c","type":"t","origin":"dev-\#(i % 2)","seq":\#(i / 2 + 1),"hlc":"\#(HLC(rawValue: (SystemClock.milliseconds() - 60_000 + UInt64(i)) << 16))","id":"0193d2a0-0000-7000-8000-00000000030\#(i)"}"#, replicating: true)
        }
        let feed = try node.allEvents("notes")
        await node.close(removing: false)
        do {  // as format 4 left it: no positions
            let env = try Environment(path: folder)
            let meta = try env.openDatabase("_meta")
            let positions = try env.openDatabase("notes.pos")
            let txn = try env.beginWrite()
            try txn.put(meta, Array("format".utf8), Array("4".utf8))
            try txn.empty(positions)
            if interrupted {  // the first 4 events numbered, and the vv after them recorded
                var vv = VersionVector()
                for (i, e) in feed.prefix(4).enumerated() {
                    let origin = e["origin"]!.stringValue!, seq = UInt64(e["seq"]!.int64Value!)
                    vv[origin] = seq
                    let key = [UInt8](unsafeUninitializedCapacity: 8) { b, n in
                        for k in 0..<8 { b[k] = UInt8(truncatingIfNeeded: UInt64(i + 1) >> (56 - 8 * k)) }
                        n = 8
                    }
                    try txn.put(positions, key, Array(origin.utf8) + [0] + (0..<8).map { UInt8(truncatingIfNeeded: seq >> (56 - 8 * $0)) })
                }
                try txn.put(meta, Array("upgrade5:notes".utf8), Array(vv.description.utf8))
            }
            try txn.commit()
        }
        node = try TestNode(replica: "hq-1", folder: folder)
        let numbered = try TestNode.events(of: node.store.changes(root: "notes", since: nil, limit: 1000))
        #expect(numbered == feed)
        let written = try await node.write("notes", #"{"aggregate":"d","type":"t"}"#)
        #expect(written.position.value == UInt64(feed.count + 1))
        await node.close()
    }
}
