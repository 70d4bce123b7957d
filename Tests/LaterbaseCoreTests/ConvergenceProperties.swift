import LaterbaseCore
import PropertyBased
import Testing

/// One random write: which node records it, on which aggregate, what, and when it happened.
struct RandomWrite: Sendable, CustomStringConvertible {
    let node: Int
    let aggregate: Int
    let kind: Int
    let qty: Int
    let minutes: Int

    static let generator = Gen.int(in: 0...Int.max).map { r in
        RandomWrite(node: r % 3, aggregate: (r / 3) % 3, kind: (r / 9) % 3, qty: 1 + (r / 27) % 20, minutes: (r / 540) % 600)
    }

    var json: String {
        let type = ["stock.received", "stock.picked", "stock.counted"][kind]
        let time = Int64(1_795_600_000_000) + Int64(minutes) * 60_000
        return #"{"aggregate":"SKU-\#(aggregate)","type":"\#(type)","data":{"qty":\#(qty)},"time":\#(time)}"#
    }

    var description: String { "n\(node) SKU-\(aggregate) k\(kind) q\(qty) +\(minutes)m" }
}

/// Writes `writes` at three source nodes, in small batches.
func sources(_ writes: [RandomWrite]) async throws -> [TestNode] {
    let nodes = try ["a", "b", "c"].map { try TestNode(replica: $0, checkpointEvery: 3) }
    var i = 0
    while i < writes.count {
        let n = min(1 + i % 3, writes.count - i)
        for w in writes[i..<(i + n)] { try await nodes[w.node].write("inventory", w.json) }
        i += n
    }
    return nodes
}

/// The inventory fold done the slow, obvious way: sort every event by (time, hlc, origin, seq).
func naiveOnHand(_ events: [JSON]) -> [String: Int64] {
    let sorted = events.sorted { x, y in
        let a = (EventTime.parse(x["time"]!.stringValue!)!, x["hlc"]!.stringValue!, x["origin"]!.stringValue!, x["seq"]!.int64Value!)
        let b = (EventTime.parse(y["time"]!.stringValue!)!, y["hlc"]!.stringValue!, y["origin"]!.stringValue!, y["seq"]!.int64Value!)
        return a < b
    }
    var state: [String: Int64] = [:]
    for e in sorted {
        let id = e["aggregate"]!.stringValue!, qty = e["data"]!["qty"]!.int64Value!
        switch e["type"]!.stringValue! {
        case "stock.received": state[id, default: 0] += qty
        case "stock.picked": state[id, default: 0] -= qty
        default: state[id] = qty
        }
    }
    return state
}

/// `as_of` reads at a few times picked from `seed` give what a naive fold of the events up to
/// then gives.
func expectPastMatchesNaiveFold(_ node: TestNode, _ events: [JSON], seed: Int) throws {
    for k in 0..<5 {
        let asOf = Int64(1_795_600_000_000) + Int64((seed / (k + 1)) % 600) * 60_000
        let upTo = events.filter { EventTime.parse($0["time"]!.stringValue!)! <= asOf }
        for (id, onHand) in naiveOnHand(upTo) {
            let body = try #require(try node.store.aggregate(root: "inventory", id: id, asOf: asOf))
            #expect(try JSONParser.parse(body)["state"]?["on_hand"]?.int64Value == onHand)
        }
    }
}

/// Each case builds real stores, so shrinking a failure would take long: failures report their
/// seed and input instead (add `.fixedSeed(...)` to replay one).
@Suite struct ConvergenceProperties {
    /// Merging is set union: any order, any number of times, any page size gives the same store.
    @Test(.shrinking(false)) func mergingStoresInAnyOrderAnyNumberOfTimesGivesTheSameStore() async throws {
        await propertyCheck(count: 15, input: RandomWrite.generator.array(of: 1...30), Gen.int(in: 0...Int.max)) { writes, seed in
            do {
                let src = try await sources(writes)
                let t1 = try TestNode(replica: "t1", checkpointEvery: 3)
                let t2 = try TestNode(replica: "t2", checkpointEvery: 2)
                let t3 = try TestNode(replica: "t3")
                for s in src { try await t1.pull("inventory", from: s) }
                var r = seed
                for _ in 0..<6 {
                    let from = ([t1] + src)[r % 4]
                    try await t2.pull("inventory", from: from, pageSize: 1 + (r / 4) % 7)
                    r = r / 28 + 7919 * (r % 28)
                }
                for s in src.reversed() { try await t2.pull("inventory", from: s, pageSize: 1 + r % 5) }
                for s in src { try await t2.pull("inventory", from: s) }  // again: changes nothing
                try await t3.pull("inventory", from: t2, pageSize: 2)
                try await t3.pull("inventory", from: t1)

                let reference = try t1.allEvents("inventory")
                #expect(reference.count == writes.count)
                for t in [t2, t3] {
                    #expect(try t.allEvents("inventory") == reference)
                    #expect(try t.store.head(of: "inventory") == t1.store.head(of: "inventory"))
                    let d = try t.store.digests(of: "inventory")
                    #expect(try t.store.summary(of: "inventory") == RootSummary(content: d.root, head: RootSummary.headDigest(of: d.head)))
                    #expect(try t.allAggregates("inventory") == t1.allAggregates("inventory"))
                }
                let expected = naiveOnHand(reference)
                for (id, onHand) in expected {
                    let body = try #require(try t2.store.aggregate(root: "inventory", id: id))
                    #expect(try JSONParser.parse(body)["state"]?["on_hand"]?.int64Value == onHand)
                }
                // The past, from checkpoints, matches a naive fold of the events up to then.
                try expectPastMatchesNaiveFold(t2, reference, seed: seed)
                for n in src + [t1, t2, t3] { await n.close() }
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    /// Long, back-dated histories (past the in-record tail and several checkpoints) fold to what
    /// a naive fold gives, now and at any past time.
    @Test(.shrinking(false)) func longBackDatedHistoriesFoldLikeANaiveFold() async throws {
        await propertyCheck(count: 8, input: RandomWrite.generator.array(of: 60...240), Gen.int(in: 0...Int.max)) { writes, seed in
            do {
                let node = try TestNode(replica: "a", checkpointEvery: 5)
                var i = 0, r = seed
                while i < writes.count {
                    let n = min(1 + r % 12, writes.count - i)
                    try await node.write("inventory", "[" + writes[i..<(i + n)].map(\.json).joined(separator: ",") + "]")
                    i += n
                    r = r / 13 + 7919 * (r % 13)
                }
                let events = try node.allEvents("inventory")
                for (id, onHand) in naiveOnHand(events) {
                    let body = try #require(try node.store.aggregate(root: "inventory", id: id))
                    #expect(try JSONParser.parse(body)["state"]?["on_hand"]?.int64Value == onHand)
                    #expect(try JSONParser.parse(body)["events"]?.int64Value == Int64(events.filter { $0["aggregate"]?.stringValue == id }.count))
                }
                try expectPastMatchesNaiveFold(node, events, seed: seed)
                await node.close()
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    /// Paging the feed with any limit yields each unseen event exactly once, in (hlc, origin,
    /// seq) order, and the final vv equals head.
    @Test(.shrinking(false)) func pagingTheFeedYieldsEachEventOnceInOrder() async throws {
        await propertyCheck(count: 20, input: RandomWrite.generator.array(of: 1...40), Gen.int(in: 1...12), Gen.int(in: 0...2)) { writes, limit, startFrom in
            do {
                let src = try await sources(writes)
                let target = try TestNode(replica: "t")
                // Interleave the origins' arrival in small pages.
                for round in 0..<20 { for s in src { try await target.pull("inventory", from: s, pageSize: 1 + round % 3) } }
                // A caller that already holds some of one origin's events.
                var vv = VersionVector()
                let skipped = try src[startFrom].store.head(of: "inventory")
                let held = skipped.entries.mapValues { $0 / 2 }
                vv = VersionVector(held)

                var seen: [JSON] = []
                var pages = 0
                while true {
                    let page = try target.store.feed(root: "inventory", after: vv, limit: limit)
                    let events = try TestNode.events(of: page)
                    #expect(events.count <= limit)
                    seen += events
                    vv = page.vv
                    pages += 1
                    if !page.more { break }
                    #expect(events.count == limit)
                }
                let head = try target.store.head(of: "inventory")
                #expect(vv == head)
                let dots = seen.map { "\($0["origin"]!.stringValue!):\($0["seq"]!.int64Value!)" }
                #expect(Set(dots).count == dots.count)  // exactly once
                let expectedCount = writes.count - held.values.reduce(0) { $0 + Int($1) }
                #expect(seen.count == expectedCount)
                let keys = seen.map { ($0["hlc"]!.stringValue!, $0["origin"]!.stringValue!, $0["seq"]!.int64Value!) }
                #expect(zip(keys, keys.dropFirst()).allSatisfy { $0 < $1 })
                // None of what the caller held came back.
                #expect(seen.allSatisfy { UInt64($0["seq"]!.int64Value!) > held[$0["origin"]!.stringValue!, default: 0] })
                let zero = try target.store.feed(root: "inventory", after: VersionVector(), limit: 0)
                #expect(zero.count == 0 && zero.more && zero.vv == VersionVector())
                for n in src + [target] { await n.close() }
            } catch {
                Issue.record("\(error)")
            }
        }
    }
}
