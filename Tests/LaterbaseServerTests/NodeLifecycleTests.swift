import Foundation
import LaterbaseCore
import LaterbaseDemo
import LaterbaseServer
import LaterbaseSync
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import ZeroMQ

#if canImport(Glibc)
import Glibc
#endif

/// The node as an embedding application holds it: its folder is its own while it runs. The time
/// limit catches a node that never stops; three minutes, since a parallel run on a loaded two-core
/// machine once took 68 s for the composed test (a router test beside it took 63 s, not 0.1).
@Suite("A node's life in an embedding process", .timeLimit(.minutes(3)))
struct NodeLifecycleTests {
    static func configuration(_ folder: String) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.ingest = nil
        configuration.publish = nil
        configuration.dataDirectory = folder
        configuration.port = 0
        configuration.replicaID = "hq-1"
        configuration.store.mapSize = 1 << 30
        return configuration
    }

    /// A node on `folder` with the demo's roots (and `notes`).
    static func node(_ folder: String, notes: Bool = false) throws -> LaterbaseServer {
        try LaterbaseServer(roots: Demo.roots + (notes ? [.jsonMerge("notes")] : []), configuration: configuration(folder), logger: quiet)
    }

    static var quiet: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    @Test("a second node or device on a folder a node holds is refused and changes nothing; once the first has stopped, the next opens it with every acknowledged event")
    func oneNodePerFolder() async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let first = try Self.node(folder, notes: true)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await first.run(gracefulShutdownSignals: []) }
            let http = HTTP(port: try await first.waitUntilRunning())
            #expect(try await http.post("/e/notes", #"[{"aggregate":"n-1","type":"t"},{"aggregate":"n-2","type":"t"}]"#).status == 201)
            // The mistake of an app started twice on one folder, here within one process.
            #expect {
                _ = try Self.node(folder, notes: true)
            } throws: { error in
                (error as? DataFolderError)?.message.contains("a node in this process already holds \(folder)") == true
            }
            #expect {
                _ = try EdgeDevice(directory: folder, roots: Demo.roots + [.jsonMerge("notes")], upstream: "http://127.0.0.1:9", logger: Self.quiet)
            } throws: { error in
                (error as? DataFolderError)?.message.contains("already holds") == true
            }
            // The refused ones changed nothing: the first still writes, seqs go on from its own.
            let third = try await http.post("/e/notes", #"{"aggregate":"n-3","type":"t"}"#)
            #expect(third.status == 201 && third.json["position"] != nil)
            #expect(try await http.get("/e/notes?limit=0").json["head"]?.stringValue == "hq-1:3")
            await first.shutdown()
            try await group.waitForAll()
        }
        // `first` is still referenced, but it has stopped: the folder is free.
        let next = try Self.node(folder, notes: true)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await next.run(gracefulShutdownSignals: []) }
            let http = HTTP(port: try await next.waitUntilRunning())
            let feed = try await http.allEvents("notes")
            #expect(feed.head == "hq-1:3" && feed.events.count == 3)
            await next.shutdown()
            try await group.waitForAll()
        }
        withExtendedLifetime(first) {}
    }

    @Test("waitUntilRunning throws run()'s error (a port in use) instead of waiting for ever, and the failed node gives its folder back")
    func aPortInUseIsThrownToTheWaiter() async throws {
        let holder = temporaryFolder(), folder = temporaryFolder()
        defer { for f in [holder, folder] { try? FileManager.default.removeItem(atPath: f) } }
        let first = try Self.node(holder)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await first.run() }
            let port = try await first.waitUntilRunning()
            var configuration = Self.configuration(folder)
            configuration.port = port
            let second = try LaterbaseServer(roots: Demo.roots, configuration: configuration, logger: Self.quiet)
            let waiting = Task { try await second.waitUntilRunning() }  // asked before run() starts
            try await Task.sleep(for: .milliseconds(50))
            await #expect(throws: (any Error).self) { try await second.run() }
            await #expect(throws: (any Error).self) { _ = try await waiting.value }
            await #expect(throws: (any Error).self) { _ = try await second.waitUntilRunning() }
            #expect(second.port == nil)
            _ = try Self.node(folder)
            await first.shutdown()
            try await group.waitForAll()
        }
    }

    @Test("shutdown() before run() makes run() return at once, without listening, and frees the folder")
    func shutdownBeforeRun() async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let node = try Self.node(folder)
        await node.shutdown()
        try await node.run()
        #expect(node.port == nil)
        await #expect(throws: LaterbaseError.self) { _ = try await node.waitUntilRunning() }
        await #expect(throws: LaterbaseError.self) { try await node.run() }  // one life
        _ = try Self.node(folder)
    }

    final class Acknowledged: Sendable {
        let ids = Mutex<[String]>([])
        func withLock<R>(_ body: (inout [String]) -> R) -> R { ids.withLock { body(&$0) } }
    }

    /// A service of the test's own that writes through the node's HTTP API and then ends, which
    /// shuts the whole group down gracefully.
    struct Client: Service {
        let node: LaterbaseServer
        let acknowledged: Acknowledged

        func run() async throws {
            let http = HTTP(port: try await node.waitUntilRunning())
            for i in 0..<20 {
                let answer = try await http.post("/e/notes", #"{"aggregate":"n-\#(i)","type":"t"}"#)
                if answer.status == 201, let head = answer.json["events"]?.arrayFirst?["id"]?.stringValue { acknowledged.withLock { $0.append(head) } }
            }
        }
    }

    @Test("a node whose ingest port is taken fails in init and keeps nothing: its publish port and its folder are free for the next node at once")
    func aFailedInitGivesEverythingBack() async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let taken = try RawListener()  // someone else's socket on the ingest port
        let publish = "tcp://127.0.0.1:\(try freePort())"
        var configuration = Self.configuration(folder)
        configuration.publish = publish
        configuration.ingest = "tcp://127.0.0.1:\(taken.port)"
        configuration.ingestOptions.relay = false
        #expect(throws: ZMQError.self) { _ = try LaterbaseServer(roots: [.jsonMerge("notes")], configuration: configuration, logger: Self.quiet) }
        // Before, the publisher's socket stayed bound (and its thread ran) in a context never
        // ended: the same publish endpoint could not be bound again in this process.
        configuration.ingest = "tcp://127.0.0.1:*"
        let next = try LaterbaseServer(roots: [.jsonMerge("notes")], configuration: configuration, logger: Self.quiet)
        #expect(next.publishEndpoint == publish)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await next.run() }
            let http = HTTP(port: try await next.waitUntilRunning())
            #expect(try await http.post("/e/notes", #"{"aggregate":"n-1","type":"t"}"#).status == 201)
            await next.shutdown()
            try await group.waitForAll()
        }
        withExtendedLifetime(taken) {}
    }

    @Test("the node runs as one Service in an application's ServiceGroup and stops with it, every acknowledged write kept")
    func composedInAServiceGroup() async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let node = try Self.node(folder, notes: true)
        let acknowledged = Acknowledged()
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: node),
                .init(service: Client(node: node, acknowledged: acknowledged), successTerminationBehavior: .gracefullyShutdownGroup),
            ],
            logger: Self.quiet))
        try await group.run()  // returns once the client has ended and the node has stopped
        #expect(node.port == nil)
        let ids = acknowledged.withLock { $0 }
        #expect(ids.count == 20)
        // A node opened on the folder afterwards has each of them.
        let next = try Self.node(folder, notes: true)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await next.run() }
            let feed = try await HTTP(port: try await next.waitUntilRunning()).allEvents("notes")
            #expect(Set(feed.events.compactMap { $0["id"]?.stringValue }) == Set(ids))
            await next.shutdown()
            try await tasks.waitForAll()
        }
    }

    @Test("an embedding app writes and reads a typed root in its own types: checked by the schema, served over HTTP like any write; refused while the node is not running")
    func typedInProcessWritesAndReads() async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let node = try Self.node(folder)
        await #expect(throws: LaterbaseError.self) {
            try await node.write(Inventory.self, aggregate: "SKU-1@AKL", type: "stock.received", Inventory.Quantity(qty: 5))
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run() }
            let http = HTTP(port: try await node.waitUntilRunning())
            let first = try await node.write(Inventory.self, aggregate: "SKU-1@AKL", type: "stock.received", Inventory.Quantity(qty: 5))
            #expect(first.events.count == 1 && first.created)
            try await node.write(Inventory.self, aggregate: "SKU-1@AKL", type: "stock.picked", Inventory.Quantity(qty: 2))
            #expect(try node.aggregate(Inventory.self, id: "SKU-1@AKL")?.on_hand == 3)
            #expect(try node.aggregate(Inventory.self, id: "SKU-9@AKL") == nil)
            // The same aggregate over HTTP.
            #expect(try await http.get("/a/inventory/SKU-1@AKL").json["state"]?["on_hand"] == .integer(3))
            // The schema refuses what it refuses from any client, and nothing is stored.
            await #expect {
                try await node.write(Inventory.self, aggregate: "SKU-1@AKL", type: "stock.lost", Inventory.Quantity(qty: 1))
            } throws: { ($0 as? LaterbaseError)?.code == .invalidEvent }
            #expect(try await http.get("/e/inventory?limit=0").json["head"]?.stringValue == "hq-1:2")
            await node.shutdown()
            try await group.waitForAll()
        }
        // Reads work once it has stopped; writes are refused.
        #expect(try node.aggregate(Inventory.self, id: "SKU-1@AKL")?.on_hand == 3)
        await #expect(throws: LaterbaseError.self) {
            try await node.write(Inventory.self, aggregate: "SKU-1@AKL", type: "stock.received", Inventory.Quantity(qty: 1))
        }
    }
}
