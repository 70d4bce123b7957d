import Foundation
import LaterbaseCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Limits per node: idle HTTP connections are closed, open connections are capped, and the
/// write queue is bounded in bytes as well as events.
@Suite struct LimitsTests {
    /// Contract v3: deltas are bounded in bytes (4 MiB, or one event alone larger): a commit of
    /// eight events of 0.9 MiB goes out as two deltas of four, in hlc order, each with the
    /// commit's head, so a subscriber's message limit never has to hold a whole commit.
    @Test func aLargeCommitIsPublishedAsDeltasOfAtMostFourMiB() async throws {
        try await withSubscribedClient { http, client in
            let big = String(repeating: "y", count: 900 << 10)
            let body = "[" + (0..<8).map { #"{"aggregate":"big","type":"noted","data":{"i":\#($0),"fill":"\#(big)"}}"# }.joined(separator: ",") + "]"
            let written = try await http.post("/e/notes", body)
            #expect(written.status == 201)
            let deltas = try await client.receive(timeout: .seconds(10)) { got in
                got.reduce(0) { n, m in if case .array(let e)? = m.body["events"] { n + e.count } else { n } } >= 8
            }.filter { $0.topic == "notes" && !isPoke($0.body) }
            #expect(deltas.count == 2)
            var order: [Int64] = []
            for delta in deltas {
                #expect(delta.body.bytes.count <= 4 << 20)
                #expect(delta.body["head"] == nil)
                guard case .array(let events)? = delta.body["events"] else { continue }
                #expect(events.count == 4)
                order += events.compactMap { $0["data"]?["i"]?.int64Value }
            }
            #expect(order == Array(0..<8))
        }
    }

    @Test func idleConnectionsAreClosedAndCannotStarveRealClients() async throws {
        try await withServer(configure: {
            $0.httpIdleTimeout = .milliseconds(500)
            $0.maxConnections = 16
        }) { http, server in
            let port = try #require(server.port)
            // More idle connections than the cap: they hold every slot until the idle timeout.
            let idle = try (0..<40).map { _ in try RawConnection(port: port) }
            let started = ContinuousClock.now
            let health = try await http.get("/healthz")
            #expect(health.status == 200)
            #expect(ContinuousClock.now - started < .seconds(10))
            // The first ones accepted were idle past the timeout and closed by the server.
            #expect(await blocking { idle[0].closedByServer(within: 5) })
            withExtendedLifetime(idle) {}
            #expect(try await http.post("/e/notes", #"{"aggregate":"x","type":"t"}"#).status == 201)
        }
    }

    @Test func theWriteQueueIsBoundedInBytes() async throws {
        try await withServer(configure: {
            $0.writer.queueCapacity = 100_000
            $0.writer.queueCapacityBytes = 1 << 20
            $0.writer.maxDelay = .seconds(8)  // the writer lingers with the first batch queued (long: the suite runs in parallel)
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

    @Test func requestBodiesAreBoundedPerNode() async throws {
        try await withServer(configure: {
            $0.httpBodyMemoryBytes = 1 << 20
        }) { http, server in
            let port = try #require(server.port)
            let pad = String(repeating: "x", count: 600_000)
            let body = Array(#"{"aggregate":"slow","type":"t","data":{"pad":"\#(pad)"}}"#.utf8)
            // A client that declares 600 KB and sends half: its reservation is held while it reads.
            let slow = try RawConnection(port: port)
            slow.send(Array("POST /e/notes HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body.prefix(body.count / 2))
            // Its reservation shows in the gauge (a GET reserves nothing); only then the second body.
            try await eventually {
                let metrics = try await http.get("/metrics").text
                let line = metrics.split(separator: "\n").first { $0.hasPrefix("laterbase_http_body_bytes ") }
                return line.flatMap { Double($0.split(separator: " ").last ?? "") } == Double(body.count)
            }
            let other = #"{"aggregate":"other","type":"t","data":{"pad":"\#(pad)"}}"#
            let overloaded = try await http.post("/e/notes", other)
            #expect(overloaded.status == 503, "a second 600 KB body over a 1 MiB budget must be refused")
            #expect(overloaded.error == "overloaded")
            #expect(overloaded.json["message"]?.stringValue?.contains("request bodies") == true)
            // A small body still fits beside the reservation.
            #expect(try await http.post("/e/notes", #"{"aggregate":"small","type":"t"}"#).status == 201)
            // The slow client finishes: written, and its reservation is returned.
            slow.send(Array(body.dropFirst(body.count / 2)))
            #expect(await blocking { slow.statusLine() }.hasPrefix("HTTP/1.1 201"))
            #expect(try await http.post("/e/notes", other).status == 201)
            let events = try await http.allEvents("notes").events
            #expect(events.filter { $0["aggregate"]?.stringValue == "slow" }.count == 1)
            #expect(events.filter { $0["aggregate"]?.stringValue == "small" }.count == 1)
            withExtendedLifetime(slow) {}
        }
    }
}
