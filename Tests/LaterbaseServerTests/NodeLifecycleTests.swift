import Foundation
import LaterbaseCore
import LaterbaseDemo
import LaterbaseServer
import LaterbaseSync
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The node as an embedding application holds it: its folder is its own while it runs.
@Suite("A node's life in an embedding process")
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

    static var quiet: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    @Test("a second node or device on a folder a node holds is refused and changes nothing; once the first has stopped, the next opens it with every acknowledged event")
    func oneNodePerFolder() async throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let first = try LaterbaseServer(roots: Demo.roots + [.jsonMerge("notes")], configuration: Self.configuration(folder), logger: Self.quiet)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await first.run(gracefulShutdownSignals: []) }
            let http = HTTP(port: try await first.waitUntilRunning())
            #expect(try await http.post("/e/notes", #"[{"aggregate":"n-1","type":"t"},{"aggregate":"n-2","type":"t"}]"#).status == 201)
            // The mistake of an app started twice on one folder, here within one process.
            #expect {
                _ = try LaterbaseServer(roots: Demo.roots + [.jsonMerge("notes")], configuration: Self.configuration(folder), logger: Self.quiet)
            } throws: { error in
                (error as? LaterbaseError)?.message.contains("a node in this process already holds \(folder)") == true
            }
            #expect {
                _ = try EdgeDevice(directory: folder, roots: Demo.roots + [.jsonMerge("notes")], upstream: "http://127.0.0.1:9", logger: Self.quiet)
            } throws: { error in
                (error as? LaterbaseError)?.message.contains("already holds") == true
            }
            // The refused ones changed nothing: the first still writes, seqs go on from its own.
            let third = try await http.post("/e/notes", #"{"aggregate":"n-3","type":"t"}"#)
            #expect(third.status == 201 && third.json["position"] != nil)
            #expect(try await http.get("/e/notes?limit=0").json["head"]?.stringValue == "hq-1:3")
            await first.shutdown()
            try await group.waitForAll()
        }
        // `first` is still referenced, but it has stopped: the folder is free.
        let next = try LaterbaseServer(roots: Demo.roots + [.jsonMerge("notes")], configuration: Self.configuration(folder), logger: Self.quiet)
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
}
