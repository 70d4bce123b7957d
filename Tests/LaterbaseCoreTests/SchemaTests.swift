import LaterbaseCore
import Testing

/// A root whose event changed shape: version 1 carried a bay number, version 2 a location name.
struct Pallets: AggregateRoot {
    struct Moved: Codable, Sendable { var to: String }
    struct MovedV1: Codable, Sendable { var bay: Int }
    enum Event: Sendable { case moved(Moved) }
    struct State: Codable, Sendable { var location = "unknown"; var moves = 0; var lastOrigin = "" }

    static let name = "pallets"
    static let schema = EventSchema<Event>()
        .event("pallet.moved", version: 2, Moved.self) { .moved($0) }
        .event("pallet.moved", version: 1, MovedV1.self) { .moved(Moved(to: "bay-\($0.bay)")) }
    static let initialState = State()

    static func fold(_ state: inout State, _ event: Event, _ context: EventContext) {
        switch event {
        case .moved(let m):
            state.location = m.to
            state.moves += 1
            state.lastOrigin = context.origin
        }
    }
}

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
