import LaterbaseCore
@testable import PalletsExample
import Testing

/// The README's example root (`Sources/PalletsExample`): version 1 of `pallet.moved` carried a bay
/// number, version 2 a location name.
@Suite struct SchemaTests {
    @Test func olderVersionsAreUpcastAndUnknownOnesRefused() async throws {
        let folder = TestNode.temporaryFolder()
        let store = try EventStore(directory: folder, roots: [.typed(Pallets.self)], replicaID: "hq-1", logger: quietLogger)
        let writer = Writer(store: store, logger: quietLogger)
        writer.start()
        func write(_ json: String) async throws(LaterbaseError) {
            let parsed = try! JSONParser.parse(Array(json.utf8))
            _ = try await writer.write(try store.prepare(root: "pallets", events: EventInput.batch(from: parsed, maxEvents: 10)))
        }
        try await write(#"[{"aggregate":"P-1","type":"pallet.moved","version":1,"data":{"bay":7}}]"#)
        var state = try JSONParser.parse(try #require(try store.aggregate(root: "pallets", id: "P-1")))["state"]
        #expect(state?["location"] == .string("bay-7"))
        try await write(#"{"aggregate":"P-1","type":"pallet.moved","version":2,"data":{"to":"dock"}}"#)
        state = try JSONParser.parse(try #require(try store.aggregate(root: "pallets", id: "P-1")))["state"]
        #expect(state?["location"] == .string("dock"))
        #expect(state?["moves"] == .integer(2))
        #expect(state?["lastOrigin"] == .string("hq-1"))

        do {
            try await write(#"{"aggregate":"P-1","type":"pallet.moved","version":3,"data":{"to":"x"}}"#)
            Issue.record("version 3 should be refused")
        } catch {
            #expect(error.code == .invalidEvent)
            #expect(error.details.first?["field"] == .string("version"))
            #expect(error.message.contains("known: 1, 2"))
        }
        do {
            try await write(#"{"aggregate":"P-1","type":"pallet.moved","version":1,"data":{"bay":"seven"}}"#)
            Issue.record("a string bay should be refused")
        } catch {
            #expect(error.details.first?["field"] == .string("data.bay"))
        }
        #expect(Pallets.schema.accepted.map(\.version) == [1, 2])
        await writer.shutdown()
    }
}
