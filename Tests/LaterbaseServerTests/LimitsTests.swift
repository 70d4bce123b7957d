import Foundation
import LaterbaseCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Limits per node: idle HTTP connections are closed, open connections are capped, and the
/// write queue is bounded in bytes as well as events.
@Suite struct LimitsTests {
    /// A raw TCP connection to 127.0.0.1:`port` that sends nothing.
    private func idleConnection(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw POSIXError(.ECONNREFUSED) }
        return fd
    }

    /// Whether the server closed `fd` within `seconds` (a read returns 0).
    private func closedByServer(_ fd: Int32, within seconds: Int32) -> Bool {
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, seconds * 1000) == 1 else { return false }
        var byte: UInt8 = 0
        return read(fd, &byte, 1) == 0
    }

    @Test func idleConnectionsAreClosedAndCannotStarveRealClients() async throws {
        try await withServer(configure: {
            $0.httpIdleTimeout = .milliseconds(500)
            $0.maxConnections = 16
        }) { http, server in
            let port = try #require(server.port)
            // More idle connections than the cap: they hold every slot until the idle timeout.
            let idle = try (0..<40).map { _ in try idleConnection(port) }
            defer { for fd in idle { close(fd) } }
            let started = ContinuousClock.now
            let health = try await http.get("/healthz")
            #expect(health.status == 200)
            #expect(ContinuousClock.now - started < .seconds(10))
            // The first ones accepted were idle past the timeout and closed by the server.
            #expect(closedByServer(idle[0], within: 5))
            #expect(try await http.post("/e/notes", #"{"aggregate":"x","type":"t"}"#).status == 201)
        }
    }

    @Test func theWriteQueueIsBoundedInBytes() async throws {
        try await withServer(configure: {
            $0.writer.queueCapacity = 100_000
            $0.writer.queueCapacityBytes = 1 << 20
            $0.writer.maxDelay = .seconds(3)  // the writer lingers with the first batch queued
        }) { http, server in
            let pad = String(repeating: "x", count: 300_000)
            let big = #"{"aggregate":"x","type":"t","data":{"pad":"\#(pad)"}}"#
            async let first = http.post("/e/notes", big)  // alone in the queue: taken whatever its size
            while server.writer.queuedEvents == 0 { try await Task.sleep(for: .milliseconds(10)) }
            let second = try await http.post("/e/notes", big)
            #expect(second.status == 503)
            #expect(second.error == "overloaded")
            #expect(second.json["message"]?.stringValue?.contains("MiB") == true)
            let small = try await http.post("/e/notes", #"{"aggregate":"y","type":"t"}"#)  // one event of a few bytes fits
            #expect(try await first.status == 201)
            #expect(small.status == 201)
            #expect(try await http.allEvents("notes").events.count == 2)
        }
    }
}
