import Foundation
import LMDB
@testable import LaterbaseCore
import Testing

/// A store whose aggregate's chain names an event its log does not hold (what two writers on
/// one folder left behind before the node took the folder's lock).
@Suite struct DamagedChainTests {
    /// Ten events of `a`, one of `b`; then hq-1:5, in `a`'s chain, is taken out of the log.
    static func damagedStore() async throws -> String {
        let folder = TestNode.temporaryFolder()
        let node = try TestNode(replica: "hq-1", folder: folder)
        for _ in 0..<10 { try await node.write("notes", #"{"aggregate":"a","type":"t","data":{"n":1}}"#) }
        try await node.write("notes", #"{"aggregate":"b","type":"t","data":{"n":1}}"#)
        await node.close(removing: false)
        let env = try Environment(path: folder)
        let log = try env.openDatabase("notes.log")
        let txn = try env.beginWrite()
        #expect(try txn.delete(log, Keys.dot(Dot(origin: "hq-1", seq: 5))))
        try txn.commit()
        return folder
    }

    @Test("a damaged aggregate fails only the batches that write to it, in a group commit too; reads of it say which; the others are written")
    func aDamagedAggregateFailsOnlyItsBatches() async throws {
        let folder = try await Self.damagedStore()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var options = EventStore.Options()
        options.noSync = true
        let store = try EventStore(directory: folder, roots: TestNode.roots, replicaID: "hq-1", options: options, logger: quietLogger)
        #expect {
            _ = try store.aggregate(root: "notes", id: "a")
        } throws: { ($0 as? LaterbaseError)?.message.contains("hq-1:5") == true }
        let writer = Writer(store: store, logger: quietLogger)
        func batch(_ aggregate: String) throws -> PreparedBatch {
            try store.prepare(root: "notes", events: [EventInput(id: nil, aggregate: aggregate, type: "t", data: .object([("n", .integer(2))]))])
        }
        let outcomes = Outcomes()
        // Queued before the writer starts: one transaction takes all three.
        for (i, b) in try [batch("b"), batch("a"), batch("c")].enumerated() { writer.submit(b) { outcomes.set(i, $0) } }
        writer.start()
        let results = await outcomes.all(3)
        await writer.shutdown()
        #expect(results[0].isSuccess && results[2].isSuccess, "\(results)")
        guard case .failure(let refusal) = results[1] else { Issue.record("a damaged aggregate took a write"); return }
        #expect(refusal.code == .internal && refusal.message.contains("damaged"), "\(refusal.message)")
        #expect(try store.aggregate(root: "notes", id: "c") != nil)
        #expect(try JSONParser.parse(store.aggregate(root: "notes", id: "b")!)["events"] == .integer(2))
    }

    @Test("the feeds of a store whose log lacks an event below its head stop at it with an error naming it, by vv and by position (a client paging by vv used to get empty pages saying more, for ever)")
    func feedsStopAtTheGap() async throws {
        let folder = try await Self.damagedStore()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let node = try TestNode(replica: "hq-1", folder: folder)
        let byVV = try node.store.feed(root: "notes", after: VersionVector(), limit: 100)
        #expect(try TestNode.events(of: byVV).count == 4 && byVV.more, "hq-1:1-4, up to the gap")
        #expect {
            _ = try node.store.feed(root: "notes", after: byVV.vv, limit: 4)
        } throws: { ($0 as? LaterbaseError)?.message.contains("lacks seq 5") == true }
        let byPosition = try node.store.changes(root: "notes", since: nil, limit: 4)
        #expect {
            _ = try node.store.changes(root: "notes", since: byPosition.next, limit: 4)
        } throws: { ($0 as? LaterbaseError)?.message.contains("hq-1:5") == true }
        await node.close(removing: false)
    }
}

