import Foundation
import LaterbaseCore
import LaterbaseDemo
import Logging

/// Tests log warnings and worse only.
let quietLogger: Logger = {
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    return logger
}()

/// A store and its writer in a temporary folder: the real LMDB, the real writer thread.
final class TestNode: @unchecked Sendable {
    let folder: String
    let store: EventStore
    let writer: Writer

    static let roots: [RootDefinition] = Demo.roots + [.jsonMerge("notes")]

    init(
        replica: String, folder: String? = nil, durable: Bool = false, checkpointEvery: UInt64 = 128, maxEventBytes: Int = 1 << 20,
        roots: [RootDefinition] = TestNode.roots, physicalTime: @escaping @Sendable () -> UInt64 = SystemClock.milliseconds
    ) throws {
        self.folder = folder ?? TestNode.temporaryFolder()
        var options = EventStore.Options()
        options.noSync = !durable
        options.checkpointEvery = checkpointEvery
        options.mapSize = 1 << 30
        options.maxEventBytes = maxEventBytes
        store = try EventStore(directory: self.folder, roots: roots, replicaID: replica, options: options, logger: quietLogger, physicalTime: physicalTime)
        writer = Writer(store: store, logger: quietLogger)
        writer.start()
        // A test reads at once: wait, off the pool (this is a synchronous init), for the heads.
        while !writer.isReady { usleep(100) }
    }

    static func temporaryFolder() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("laterbase-test-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes a batch given as JSON text, the way POST /e/{root} does: from a client, or as
    /// replication (a peer's page, for which the merge is total) when `replicating`.
    @discardableResult
    func write(_ root: String, _ json: String, replicating: Bool = false) async throws(LaterbaseError) -> WriteOutcome {
        let parsed: JSON
        do { parsed = try JSONParser.parse(Array(json.utf8)) } catch { throw LaterbaseError(.badRequest, error.description) }
        let events = try EventInput.batch(from: parsed, maxEvents: 10_000)
        return try await writer.write(try store.prepare(root: root, events: events, replicating: replicating))
    }

    /// Every event of `root` this node holds, as a JSON array's elements, in feed order.
    func allEvents(_ root: String) throws -> [JSON] {
        var vv = VersionVector()
        var all: [JSON] = []
        while true {
            let page = try store.feed(root: root, after: vv, limit: 10_000)
            all += try Self.events(of: page)
            vv = page.vv
            if !page.more { return all }
        }
    }

    static func events(of page: FeedPage) throws -> [JSON] { try events(page.array) }
    static func events(of page: ChangesPage) throws -> [JSON] { try events(page.array) }
    private static func events(_ array: [UInt8]) throws -> [JSON] {
        guard case .array(let a) = try JSONParser.parse(array) else { return [] }
        return a
    }

    /// Pulls what this node lacks from `source`, page by page, as recorded events: anti-entropy
    /// through the changes feed.
    /// - Parameter again: origins whose events are fetched again from seq 1, as a node does for
    ///   the origins whose digests differ from the peer's.
    func pull(_ root: String, from source: TestNode, pageSize: Int = 1000, again: Set<String> = []) async throws {
        var vv = VersionVector(try store.head(of: root).entries.filter { !again.contains($0.key) })
        while true {
            let page = try source.store.feed(root: root, after: vv, limit: pageSize)
            if page.count > 0 {
                let batch = try Self.events(of: page)
                try await write(root, String(decoding: JSON.array(batch).bytes, as: UTF8.self), replicating: true)
            }
            vv = page.vv
            if !page.more { return }
        }
    }

    /// Anti-entropy as a peer link does it: pulls what this node lacks from `source`, and the
    /// origins whose digests differ (forked: equal seqs, other versions) again from seq 1.
    func reconcile(_ root: String, with source: TestNode, pageSize: Int = 1000) async throws {
        let forked = try store.digests(of: root).forkedOrigins(against: source.store.digests(of: root))
        try await pull(root, from: source, pageSize: pageSize, again: Set(forked))
    }

    /// Every aggregate of `root`, as the list endpoint's JSON objects.
    func allAggregates(_ root: String) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        var after: String? = nil
        repeat {
            let page = try store.aggregates(root: root, after: after, limit: 1000)
            out += page.aggregates
            after = page.next
        } while after != nil
        return out
    }

    func close(removing: Bool = true) async {
        await writer.shutdown()
        if removing { try? FileManager.default.removeItem(atPath: folder) }
    }
}

/// Runs `body` with a fresh node, then shuts its writer down and removes its folder.
func withNode<R>(replica: String, durable: Bool = false, checkpointEvery: UInt64 = 128, _ body: (TestNode) async throws -> R) async throws -> R {
    let node = try TestNode(replica: replica, durable: durable, checkpointEvery: checkpointEvery)
    do {
        let result = try await body(node)
        await node.close()
        return result
    } catch {
        await node.close()
        throw error
    }
}
