import LaterbaseCore
import PropertyBased
import Testing

/// A random write that may carry a client id from a small pool, so that one id is written at
/// several nodes (a device that retries on another node after a lost answer).
struct RandomIDWrite: Sendable, CustomStringConvertible {
    let write: RandomWrite
    /// An index into ``ids``, or nil for a write without an id.
    let id: Int?

    static let ids = (0..<4).map { "0193d2a0-0000-7000-8000-00000000000\($0)" }

    static let generator = zip(RandomWrite.generator, Gen.int(in: 0...9)).map { w, r in
        RandomIDWrite(write: w, id: r < ids.count ? r : nil)
    }

    var description: String { "\(write)\(id.map { " id\($0)" } ?? "")" }
}

/// Only the first event of each id in (hlc, origin, seq) order: what every replica folds.
func holdersOfTheirIDs(_ events: [JSON]) -> [JSON] {
    func key(_ e: JSON) -> (String, String, Int64) { (e["hlc"]!.stringValue!, e["origin"]!.stringValue!, e["seq"]!.int64Value!) }
    var first: [String: JSON] = [:]
    for e in events {
        let id = e["id"]!.stringValue!
        if let held = first[id], key(held) < key(e) { continue }
        first[id] = e
    }
    let kept = Set(first.values.map { "\($0["origin"]!.stringValue!):\($0["seq"]!.int64Value!)" })
    return events.filter { kept.contains("\($0["origin"]!.stringValue!):\($0["seq"]!.int64Value!)") }
}

/// Random pulls between any two of `nodes` in random page sizes (some fetching the `again`
/// origins from seq 1, as a fork's exchange does), then anti-entropy as peer links do it (heads,
/// then forks by digests) from every node to every node, twice.
func exchange(_ nodes: [TestNode], seed: Int, again: Set<String> = []) async throws {
    var r = seed
    func next(_ n: Int) -> Int {
        r = r / 31 + 7919 * (r % 31)
        return r % n
    }
    for _ in 0..<12 {
        let to = nodes[next(nodes.count)], from = nodes[next(nodes.count)]
        if to !== from { try await to.pull("inventory", from: from, pageSize: 1 + next(7), again: next(2) == 0 ? again : []) }
    }
    for to in nodes {
        let k = next(nodes.count)
        for from in nodes[k...] + nodes[..<k] where to !== from { try await to.reconcile("inventory", with: from, pageSize: 1 + next(9)) }
    }
    for to in nodes { for from in nodes where to !== from { try await to.reconcile("inventory", with: from) } }
}

@Suite struct MergeProperties {
    /// Random histories in which ids are written at several nodes, with the same content or
    /// another, reach several replicas in random orders and page sizes: every replica ends with
    /// the same events, heads and aggregates, and the aggregates are a naive fold of each id's
    /// first event; nothing is refused.
    @Test(.shrinking(false)) func oneIDUnderSeveralDotsFoldsTheFirstEverywhere() async throws {
        await propertyCheck(count: 15, input: RandomIDWrite.generator.array(of: 1...60), Gen.int(in: 0...Int.max)) { writes, seed in
            do {
                let src = try ["a", "b", "c"].map { try TestNode(replica: $0, checkpointEvery: 3) }
                // A retry at the same node sends the same event again (a no-op); another node
                // may get other content under the same id.
                var sent: [String: String] = [:]
                var distinct = 0
                var i = 0
                while i < writes.count {
                    let n = min(1 + i % 3, writes.count - i)
                    for w in writes[i..<(i + n)] {
                        var json = w.write.json
                        if let id = w.id {
                            let key = "\(w.write.node)/\(id)"
                            if sent[key] == nil { distinct += 1 }
                            json = sent[key] ?? (String(json.dropLast()) + #","id":"\#(RandomIDWrite.ids[id])"}"#)
                            sent[key] = json
                        } else {
                            distinct += 1
                        }
                        try await src[w.write.node].write("inventory", json)
                    }
                    i += n
                }
                let replicas = try [3, 2, 5].enumerated().map { try TestNode(replica: "t\($0.offset)", checkpointEvery: UInt64($0.element)) }
                let all = src + replicas
                try await exchange(all, seed: seed)

                let reference = try all[0].allEvents("inventory")
                #expect(reference.count == distinct)
                let head = try all[0].store.head(of: "inventory")
                let aggregates = try all[0].allAggregates("inventory")
                for n in all.dropFirst() {
                    #expect(try n.allEvents("inventory") == reference)
                    #expect(try n.store.head(of: "inventory") == head)
                    #expect(try n.allAggregates("inventory") == aggregates)
                }
                let folded = holdersOfTheirIDs(reference)
                let expected = naiveOnHand(folded)
                for n in all {
                    for (id, onHand) in expected {
                        let body = try #require(try n.store.aggregate(root: "inventory", id: id))
                        let parsed = try JSONParser.parse(body)
                        #expect(parsed["state"]?["on_hand"]?.int64Value == onHand, "\(n.store.replicaID) \(id)")
                        #expect(parsed["events"]?.int64Value == Int64(folded.filter { $0["aggregate"]?.stringValue == id }.count))
                    }
                    // An aggregate whose events are all duplicates has none folded.
                    for k in 0..<3 where expected["SKU-\(k)"] == nil {
                        #expect(try n.store.aggregate(root: "inventory", id: "SKU-\(k)") == nil)
                    }
                }
                try expectPastMatchesNaiveFold(replicas[1], folded, seed: seed)
                for n in all { await n.close() }
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    /// An origin that forked (a device restored from an old backup records its seqs again with
    /// other content) reaches replicas in two versions, with ordinary writes and retried ids
    /// beside it: every replica keeps, per dot, the version with the smaller digest, and all
    /// end with the same events, heads and aggregates, a naive fold of what they keep.
    @Test(.shrinking(false)) func aForkedOriginEndsWithTheSameVersionEverywhere() async throws {
        let gen = zip(RandomIDWrite.generator.array(of: 0...30), RandomWrite.generator.array(of: 2...8), Gen.int(in: 0...Int.max))
        await propertyCheck(count: 15, input: gen) { writes, forked, seed in
            do {
                let src = try ["a", "b", "c"].map { try TestNode(replica: $0, checkpointEvery: 3) }
                var distinct = 0
                var sent: [String: String] = [:]
                for w in writes {
                    var json = w.write.json
                    if let id = w.id {
                        let key = "\(w.write.node)/\(id)"
                        json = sent[key] ?? (String(json.dropLast()) + #","id":"\#(RandomIDWrite.ids[id])"}"#)
                        sent[key] = json
                    }
                    if try await src[w.write.node].write("inventory", json).created { distinct += 1 }
                }
                // Two versions of dev-1:1...n: `forked` in pairs, each version's hlcs growing with
                // seq, to different nodes; some with one id in both versions. The second was
                // recorded after the first (a device restored from a backup): a replica that
                // keeps some dots of each holds an origin whose hlcs do not grow with seq, and
                // the merge takes that from a peer too.
                let n = forked.count / 2
                let base = (SystemClock.milliseconds() - 3_600_000) << 16
                func version(_ v: Int, _ i: Int) -> (json: String, event: RecordedEvent) {
                    let w = forked[2 * i + v]
                    let type = ["stock.received", "stock.picked", "stock.counted"][w.kind]
                    let id = (seed >> i) % 3 == 0 ? "0193d2a0-0000-7000-8000-0000000001\(i)0" : "0193d2a0-0000-7000-8000-0000000001\(i)\(v + 1)"
                    let time = Int64(1_795_600_000_000) + Int64(w.minutes) * 60_000
                    let hlc = HLC(rawValue: base + UInt64(10 * (i + 1) + 10 * (n + 1) * v))
                    let data = #"{"qty":\#(w.qty)}"#
                    let json = #"{"id":"\#(id)","aggregate":"SKU-\#(w.aggregate)","type":"\#(type)","data":\#(data),"time":\#(time),"origin":"dev-1","seq":\#(i + 1),"hlc":"\#(hlc)"}"#
                    let event = RecordedEvent(
                        id: EventID(id)!, aggregate: "SKU-\(w.aggregate)", type: type, version: 1, data: Array(data.utf8), time: time, hlc: hlc, origin: "dev-1", seq: UInt64(i + 1))
                    return (json, event)
                }
                for v in 0..<2 {
                    let node = src[(seed / 7 + v) % 3]
                    try await node.write("inventory", "[" + (0..<n).map { version(v, $0).json }.joined(separator: ",") + "]")
                }
                let replicas = try [3, 2, 5].enumerated().map { try TestNode(replica: "t\($0.offset)", checkpointEvery: UInt64($0.element)) }
                let all = src + replicas
                try await exchange(all, seed: seed, again: ["dev-1"])
                let digests = try all[0].store.digests(of: "inventory")
                for node in all { #expect(try node.store.digests(of: "inventory") == digests) }
                // The writer's running summary (forks replaced, duplicates kept) is the one computed whole.
                let summary = RootSummary(content: digests.root, head: RootSummary.headDigest(of: digests.head))
                for node in all { #expect(try node.store.summary(of: "inventory") == summary) }

                let reference = try all[0].allEvents("inventory")
                #expect(reference.count == distinct + n)
                let head = try all[0].store.head(of: "inventory")
                let aggregates = try all[0].allAggregates("inventory")
                for node in all.dropFirst() {
                    #expect(try node.allEvents("inventory") == reference)
                    #expect(try node.store.head(of: "inventory") == head)
                    #expect(try node.allAggregates("inventory") == aggregates)
                }
                // Per forked dot, the version with the smaller digest.
                for i in 0..<n {
                    let (a, b) = (version(0, i).event, version(1, i).event)
                    let kept = a.digest < b.digest ? a : b
                    let served = reference.first { $0["origin"] == .string("dev-1") && $0["seq"] == .integer(Int64(i + 1)) }
                    #expect(served?["id"] == .string(kept.id.description) && served?["hlc"] == .string(kept.hlc.description), "dev-1:\(i + 1)")
                }
                let folded = holdersOfTheirIDs(reference)
                for node in all {
                    for (id, onHand) in naiveOnHand(folded) {
                        let parsed = try JSONParser.parse(try #require(try node.store.aggregate(root: "inventory", id: id)))
                        #expect(parsed["state"]?["on_hand"]?.int64Value == onHand, "\(node.store.replicaID) \(id)")
                        #expect(parsed["events"]?.int64Value == Int64(folded.filter { $0["aggregate"]?.stringValue == id }.count))
                    }
                }
                try expectPastMatchesNaiveFold(replicas[1], folded, seed: seed)
                for node in all { await node.close() }
            } catch {
                Issue.record("\(error)")
            }
        }
    }

}

/// Examples the property tests met rarely.
@Suite struct MergeExamples {
    /// A forked dot whose two versions are both duplicates of an id held elsewhere: replacing one
    /// with the other touches no aggregate, and the origin's digest and the positions must still
    /// follow (the commit wrote neither, and the node's digest stayed the loser's after a restart).
    @Test func aVersionReplacedBetweenTwoDuplicatesStillMovesTheDigestAndThePosition() async throws {
        let id = "0193d2a0-0000-7000-8000-000000000777"
        let base = (SystemClock.milliseconds() - 60_000) << 16
        let holder = #"{"id":"\#(id)","aggregate":"SKU-1","type":"stock.received","data":{"qty":1},"origin":"hq-9","seq":1,"hlc":"\#(HLC(rawValue: base))"}"#
        func version(_ qty: Int) -> (json: String, event: RecordedEvent) {
            let hlc = HLC(rawValue: base + 10)
            return (#"{"id":"\#(id)","aggregate":"SKU-1","type":"stock.received","data":{"qty":\#(qty)},"time":1795600000000,"origin":"dev-1","seq":1,"hlc":"\#(hlc)"}"#,
                    RecordedEvent(id: EventID(id)!, aggregate: "SKU-1", type: "stock.received", version: 1, data: Array(#"{"qty":\#(qty)}"#.utf8), time: 1_795_600_000_000, hlc: hlc, origin: "dev-1", seq: 1))
        }
        let (a, b) = (version(2), version(3))
        let (loser, winner) = a.event.digest < b.event.digest ? (b, a) : (a, b)
        let node = try TestNode(replica: "n")
        try await node.write("inventory", holder, replicating: true)
        try await node.write("inventory", loser.json, replicating: true)
        try await node.write("inventory", winner.json, replicating: true)
        let other = try TestNode(replica: "m")
        try await other.write("inventory", "[" + holder + "," + winner.json + "]", replicating: true)
        #expect(try node.store.digests(of: "inventory") == other.store.digests(of: "inventory"))
        #expect(try node.store.position(of: "inventory").value == 3)
        await node.close(removing: false)
        let reopened = try TestNode(replica: "n", folder: node.folder)
        #expect(try reopened.store.digests(of: "inventory") == other.store.digests(of: "inventory"), "after a restart")
        #expect(try reopened.allEvents("inventory") == other.allEvents("inventory"))
        let byPosition = try TestNode.events(of: reopened.store.changes(root: "inventory", since: nil, limit: 10))
        let kept = try JSONParser.parse(winner.event.data)
        #expect(byPosition.count == 2 && byPosition.last?["data"] == kept)
        await reopened.close()
        await other.close()
    }
}
