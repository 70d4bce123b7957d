import Foundation
@testable import LaterbaseCore
import Testing

/// An application's fold whose state stops encoding (a ratio that becomes infinite): JSON has no
/// number for it, so the state cannot be kept.
struct Gauges: AggregateRoot {
    struct Reading: Codable, Sendable { var divisor: Double }
    enum Event: Sendable { case read(Reading) }
    struct State: Codable, Sendable { var ratio = 1.0; var readings = 0 }

    static let name = "gauges"
    static let schema = EventSchema<Event>().event("gauge.read", version: 1, Reading.self) { .read($0) }
    static let initialState = State()

    static func fold(_ state: inout State, _ event: Event, _ context: EventContext) {
        switch event {
        case .read(let r):
            state.ratio = 1 / r.divisor
            state.readings += 1
        }
    }
}

@Suite struct GroupCommitIsolationTests {
    /// Three clients' batches in one transaction; the second makes its aggregate's state
    /// unencodable. Before, the whole transaction failed and every client heard 500.
    @Test("a batch whose aggregate's state does not encode is refused alone; the others in its transaction are stored")
    func oneBadStateFailsOnlyItsBatch() async throws {
        let folder = TestNode.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var options = EventStore.Options()
        options.noSync = true
        options.checkpointEvery = 1  // every fold's state is encoded, in the writer's transaction
        let store = try EventStore(directory: folder, roots: [.typed(Gauges.self)], replicaID: "hq-1", options: options, logger: quietLogger)
        let writer = Writer(store: store, logger: quietLogger)
        func batch(_ aggregate: String, _ divisor: Double) throws -> PreparedBatch {
            try store.prepare(root: "gauges", events: [
                EventInput(id: nil, aggregate: aggregate, type: "gauge.read", data: .object([("divisor", .number(String(divisor)))]))
            ])
        }
        let outcomes = Outcomes()
        // Queued before the writer starts: its first transaction takes all three.
        for (i, b) in try [batch("g-1", 2), batch("g-2", 0), batch("g-3", 4)].enumerated() {
            writer.submit(b) { outcomes.set(i, $0) }
        }
        writer.start()
        let results = await outcomes.all(3)
        await writer.shutdown()
        #expect(results[0].isSuccess && results[2].isSuccess, "\(results)")
        guard case .failure(let refusal) = results[1] else { Issue.record("the bad batch was stored"); return }
        #expect(refusal.code == .invalidEvent)
        #expect(refusal.message.contains("g-2") && refusal.message.contains("does not encode"), "\(refusal.message)")
        #expect(try store.aggregate(root: "gauges", id: "g-1") != nil)
        #expect(try store.aggregate(root: "gauges", id: "g-3") != nil)
        #expect(try store.aggregate(root: "gauges", id: "g-2") == nil, "nothing of the refused batch was stored")
    }
}

@Suite struct WriterLifecycleTests {
    @Test("a writer's ready() waits for start and the heads; shutdown of one never started returns and lets ready() go on; a write after shutdown is refused")
    func lifecycle() async throws {
        let folder = TestNode.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try EventStore(directory: folder, roots: TestNode.roots, replicaID: "hq-1", logger: quietLogger)
        let idle = Writer(store: store, logger: quietLogger)
        let waiting = Task { await idle.ready() }
        try await Task.sleep(for: .milliseconds(50))
        #expect(!idle.isReady && !idle.isAlive)
        await idle.shutdown()
        await waiting.value  // would hang before: nothing resumed a ready() of a writer never started
        #expect(!idle.isAlive)

        let writer = Writer(store: store, logger: quietLogger)
        writer.start()
        await writer.ready()
        #expect(writer.isReady && writer.isAlive)
        _ = try await writer.write(store.prepare(root: "notes", events: [EventInput(id: nil, aggregate: "n", type: "t", data: .object([]))]))
        await writer.shutdown()
        #expect(!writer.isAlive)
        await #expect(throws: LaterbaseError.self) {
            _ = try await writer.write(store.prepare(root: "notes", events: [EventInput(id: nil, aggregate: "n", type: "t", data: .object([]))]))
        }
    }
}

/// Outcomes of submitted batches, by index, awaited together.
final class Outcomes: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Int: Result<WriteOutcome, LaterbaseError>] = [:]

    func set(_ i: Int, _ r: Result<WriteOutcome, LaterbaseError>) { lock.withLock { results[i] = r } }

    func all(_ n: Int) async -> [Result<WriteOutcome, LaterbaseError>] {
        while lock.withLock({ results.count }) < n { try? await Task.sleep(for: .milliseconds(5)) }
        return lock.withLock { (0..<n).map { results[$0]! } }
    }
}

extension Result {
    var isSuccess: Bool { if case .success = self { true } else { false } }
}
