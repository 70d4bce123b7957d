import LaterbaseCore
import LaterbaseDemo
import PropertyBased
import Testing

/// The demo's inventory as version 1 of the application had it: counts came with version 2.
struct InventoryBeforeCounts: AggregateRoot {
    static let name = Inventory.name
    static let schema = EventSchema<Inventory.Event>()
        .event("stock.received", Inventory.Quantity.self) { .received($0.qty) }
        .event("stock.picked", Inventory.Quantity.self) { .picked($0.qty) }
    static let initialState = Inventory.initialState
    static func fold(_ state: inout Inventory.State, _ event: Inventory.Event, _ context: EventContext) {
        Inventory.fold(&state, event, context)
    }
}

/// The roots of a node that runs version 1 of the application.
let rootsBeforeCounts: [RootDefinition] = TestNode.roots.map { $0.name == Inventory.name ? .typed(InventoryBeforeCounts.self) : $0 }

@Suite struct UnfoldedEventsProperties {
    /// Nodes on two versions of an application (contract v3, "The merge is total"): events the
    /// older schema refuses reach its nodes from peers, are stored, served and replicated like
    /// any, and folded by no aggregate there; once such a node runs the newer schema, they fold
    /// in their places. Retried ids (an unknown event holding an id, a known one its duplicate)
    /// and back-dated times in random orders and page sizes.
    @Test(.shrinking(false)) func eventsAnOlderSchemaRefusesAreKeptAndFoldedOnceItKnowsThem() async throws {
        await propertyCheck(count: 12, input: RandomIDWrite.generator.array(of: 1...30), Gen.int(in: 0...Int.max)) { writes, seed in
            do {
                // a and b run version 2, c version 1 (which cannot record a count itself).
                let src = try [("a", TestNode.roots), ("b", TestNode.roots), ("c", rootsBeforeCounts)].map {
                    try TestNode(replica: $0.0, checkpointEvery: 3, roots: $0.1)
                }
                var sent: [String: String] = [:]
                for w in writes where !(w.write.node == 2 && w.write.kind == 2) {
                    var json = w.write.json
                    if let id = w.id {
                        let key = "\(w.write.node)/\(id)"
                        json = sent[key] ?? (String(json.dropLast()) + #","id":"\#(RandomIDWrite.ids[id])"}"#)
                        sent[key] = json
                    }
                    try await src[w.write.node].write("inventory", json)
                }
                let old = try [2, 5].enumerated().map { try TestNode(replica: "old\($0.offset)", checkpointEvery: UInt64($0.element), roots: rootsBeforeCounts) }
                let new = try TestNode(replica: "new", checkpointEvery: 4)
                let all = src + old + [new]
                try await exchange(all, seed: seed)

                let reference = try new.allEvents("inventory")
                let head = try new.store.head(of: "inventory")
                for node in all {
                    #expect(try node.allEvents("inventory") == reference)
                    #expect(try node.store.head(of: "inventory") == head)
                }
                let folded = holdersOfTheirIDs(reference)
                let known = folded.filter { $0["type"] != .string("stock.counted") }
                for node in [src[2]] + old {
                    let expected = naiveOnHand(known)
                    let ids = try node.allAggregates("inventory").map { try JSONParser.parse($0)["id"]!.stringValue! }
                    #expect(Set(ids) == Set(expected.keys), "\(node.store.replicaID) folds only what its schema knows")
                    for (id, onHand) in expected {
                        let parsed = try JSONParser.parse(try #require(try node.store.aggregate(root: "inventory", id: id)))
                        #expect(parsed["state"]?["on_hand"]?.int64Value == onHand, "\(node.store.replicaID) \(id)")
                    }
                }
                try expectPastMatchesNaiveFold(old[1], known, seed: seed)

                // A client's recorded count is still refused by a version 1 node.
                if let count = reference.first(where: { $0["type"] == .string("stock.counted") }) {
                    let fresh = try TestNode(replica: "fresh", roots: rootsBeforeCounts)
                    await #expect(throws: LaterbaseError.self) { try await fresh.write("inventory", "[\(String(decoding: count.bytes, as: UTF8.self))]") }
                    #expect(try fresh.allEvents("inventory").isEmpty)
                    await fresh.close()
                }

                // Version 2 everywhere: what was kept unfolded folds in its place.
                let aggregates = try new.allAggregates("inventory")
                for node in [src[2]] + old {
                    await node.close(removing: false)
                    let upgraded = try TestNode(replica: node.store.replicaID, folder: node.folder, checkpointEvery: 3)
                    #expect(try upgraded.allAggregates("inventory") == aggregates, "\(node.store.replicaID) after the upgrade")
                    try expectPastMatchesNaiveFold(upgraded, folded, seed: seed)
                    #expect(try upgraded.allEvents("inventory") == reference)
                    await upgraded.close()
                }
                for node in src.prefix(2) + [new] { await node.close() }
            } catch {
                Issue.record("\(error)")
            }
        }
    }
}
