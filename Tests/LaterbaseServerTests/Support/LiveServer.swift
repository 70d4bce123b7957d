import Foundation
import Hummingbird
import HummingbirdTesting
import LaterbaseCore
import LaterbaseDemo
@testable import LaterbaseServer
import Logging
import Synchronization

func temporaryFolder() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("laterbase-test-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Runs a real Laterbase server in this process on a free loopback port for the length of
/// `body`, then shuts it down gracefully and removes its data.
func withServer<R: Sendable>(
    replica: String = "hq-1", configure: (inout ServerConfiguration) -> Void = { _ in }, _ body: @Sendable (HTTP, LaterbaseServer) async throws -> R
) async throws -> R {
    let (server, configuration) = try testNode(replica: replica, sockets: true, configure: configure)
    defer { try? FileManager.default.removeItem(atPath: configuration.dataDirectory) }
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run(gracefulShutdownSignals: []) }
        let port = try await server.waitUntilRunning()
        do {
            let result = try await body(HTTP(port: port), server)
            await server.shutdown()
            try await group.waitForAll()
            return result
        } catch {
            await server.shutdown()
            try? await group.waitForAll()
            throw error
        }
    }
}

/// A node's HTTP layer in this process, through HummingbirdTesting's router: no socket, no port,
/// for tests about HTTP (refusals, bodies, headers). The node's writer and its pool for parsing
/// large bodies run (writes are committed to real LMDB in a temporary folder); its sockets and
/// HTTP server do not.
func withRouter<R: Sendable>(
    replica: String = "hq-1", configure: (inout ServerConfiguration) -> Void = { _ in }, _ body: @escaping @Sendable (HTTP, LaterbaseServer) async throws -> R
) async throws -> R {
    let (node, configuration) = try testNode(replica: replica, sockets: false, configure: configure)
    defer { try? FileManager.default.removeItem(atPath: configuration.dataDirectory) }
    node.writer.start()
    node.parsers.start()
    await node.writer.ready()
    var quiet = Logger(label: "test")
    quiet.logLevel = .warning
    let result = Mutex<R?>(nil)
    do {
        try await Application(router: node.makeRouter(), logger: quiet).test(.router) { client in
            let r = try await body(HTTP(router: client), node)
            result.withLock { $0 = r }
        }
    } catch {
        await node.writer.shutdown()
        try? await node.parsers.shutdownGracefully()
        await node.shutdown()
        try? await node.run()
        throw error
    }
    await node.writer.shutdown()
    try await node.parsers.shutdownGracefully()
    await node.shutdown()
    try await node.run()  // gives back the folder
    return result.withLock { $0 }!
}

/// A node with the demo's roots and `notes` on a new temporary folder, its ZeroMQ sockets on
/// loopback ports of ZeroMQ's choosing (`sockets`) or none.
private func testNode(
    replica: String, sockets: Bool, configure: (inout ServerConfiguration) -> Void
) throws -> (LaterbaseServer, ServerConfiguration) {
    var configuration = ServerConfiguration()
    configuration.ingest = sockets ? "tcp://127.0.0.1:*" : nil
    configuration.publish = sockets ? "tcp://127.0.0.1:*" : nil
    configuration.dataDirectory = temporaryFolder()
    configuration.port = 0
    configuration.replicaID = replica
    configuration.store.mapSize = 1 << 30
    configure(&configuration)
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    return (try LaterbaseServer(roots: Demo.roots + [.jsonMerge("notes")], configuration: configuration, logger: logger), configuration)
}
