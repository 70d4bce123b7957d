import Foundation
import LaterbaseCore
import LaterbaseDemo
import LaterbaseServer
import Logging

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
    var configuration = ServerConfiguration()
    configuration.ingest = "tcp://127.0.0.1:*"
    configuration.publish = "tcp://127.0.0.1:*"
    configuration.dataDirectory = temporaryFolder()
    configuration.port = 0
    configuration.replicaID = replica
    configuration.store.mapSize = 1 << 30
    configure(&configuration)
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    let server = try LaterbaseServer(roots: Demo.roots + [.jsonMerge("notes")], configuration: configuration, logger: logger)
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
