import Foundation
import Hummingbird
@testable import LaterbaseServer
import LaterbaseDemo
import Logging
import NIOCore
import Synchronization
import Testing

@Suite struct HealthTests {
    /// /healthz is 503 `unavailable` while the writer is not running: here the HTTP routes are
    /// served on loopback without the writer service.
    @Test func healthIs503WithoutAWriter() async throws {
        var configuration = ServerConfiguration()
        configuration.ingest = "tcp://127.0.0.1:*"
        configuration.publish = "tcp://127.0.0.1:*"
        configuration.dataDirectory = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: configuration.dataDirectory) }
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let server = try LaterbaseServer(roots: Demo.roots, configuration: configuration, logger: logger)
        let port = Mutex<Int?>(nil)
        let app = Application(
            router: server.makeRouter(),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } },
            logger: logger
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            while port.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
            let http = HTTP(port: port.withLock { $0 }!)
            let health = try await http.get("/healthz")
            #expect(health.status == 503)
            #expect(health.error == "unavailable")
            // It names the part: the writer (ZAP and the ingest were never started: not failed).
            #expect(health.json["details"] == .array([.object([("part", .string("writer")), ("reason", .string("the writer is not running"))])]))
            #expect(health.headers["retry-after"].first == "1")
            group.cancelAll()
        }
    }

    @Test("a running node's /healthz is 200 and lists the parts it checked")
    func healthListsTheParts() async throws {
        try await withServer { http, _ in
            let health = try await http.get("/healthz")
            #expect(health.status == 200)
            #expect(health.json["parts"] == .array(["writer", "zap", "ingest", "publisher"].map { .string($0) }))
        }
    }
}
