import AsyncHTTPClient
import Foundation
import LaterbaseCore
import LaterbaseServer
import NIOCore
import Testing

/// An SSE client over AsyncHTTPClient: parses `id:`, `event:`, `data:` and comment lines.
struct SSEClient: Sendable {
    struct Event: Sendable { var id: String; var data: JSON }
    var events: [Event] = []
    var comments = 0
    private var pending = ""

    /// Reads the stream from `vv` (or `Last-Event-ID`) until `done` says enough or `timeout` passes; then drops the connection.
    static func read(
        _ http: HTTP, _ root: String, vv: String = "", since: String? = nil, lastEventID: String? = nil, timeout: Duration = .seconds(30),
        until done: @escaping @Sendable (SSEClient) -> Bool
    ) async throws -> SSEClient {
        var request = HTTPClientRequest(url: http.base + "/e/\(root)?" + (since.map { "since=\($0)" } ?? "vv=\(vv)"))
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let token = http.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let lastEventID { request.headers.add(name: "Last-Event-ID", value: lastEventID) }
        let response = try await http.client.execute(request, timeout: .seconds(Int64(timeout.components.seconds) + 5))
        #expect(response.status.code == 200)
        #expect(response.headers.first(name: "content-type") == "text/event-stream")
        var client = SSEClient()
        let deadline = ContinuousClock.now + timeout
        try await withThrowingTaskGroup(of: SSEClient?.self) { group in
            group.addTask {
                var client = SSEClient()
                for try await chunk in response.body {
                    client.take(String(buffer: chunk))
                    if done(client) { return client }
                    if ContinuousClock.now > deadline { return client }
                }
                return client
            }
            group.addTask {
                try await Task.sleep(until: deadline)
                return nil
            }
            if let first = try await group.next(), let got = first { client = got }
            group.cancelAll()
        }
        return client
    }

    mutating func take(_ text: String) {
        pending += text
        while let end = pending.range(of: "\n\n") {
            let block = pending[..<end.lowerBound]
            pending = String(pending[end.upperBound...])
            var id: String? = nil, data = ""
            for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix(":") { comments += 1 }
                if line.hasPrefix("id: ") { id = String(line.dropFirst(4)) }
                if line.hasPrefix("data: ") { data += line.dropFirst(6) }
            }
            if let id, let json = try? JSONParser.parse(Array(data.utf8)) { events.append(Event(id: id, data: json)) }
        }
    }

    /// Every recorded event received, in order.
    var recorded: [JSON] { events.flatMap { e -> [JSON] in if case .array(let a)? = e.data["events"] { return a } else { return [] } } }
    var lastID: String? { events.last?.id }
}

@Suite("Live feed (SSE)", .serialized)
struct LiveFeedTests {
    @Test("backlog, then live commits; a dropped client resumes by Last-Event-ID without loss or repeats")
    func resume() async throws {
        try await withServer { http, _ in
            for i in 0..<3 { #expect(try await http.post("/e/notes", newEvents(10, tag: "a\(i)").body).status == 201) }
            // Reads the backlog (30) and one live commit, then drops the connection.
            async let first = SSEClient.read(http, "notes") { $0.recorded.count >= 40 }
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await http.post("/e/notes", newEvents(10, tag: "live").body).status == 201)
            let got = try await first
            #expect(got.recorded.count == 40)
            let id = try #require(got.lastID)
            #expect(id == "hq-1:40", "the id is the vv after the event")
            // Written while it was away, and after it is back.
            #expect(try await http.post("/e/notes", newEvents(15, tag: "away").body).status == 201)
            async let second = SSEClient.read(http, "notes", lastEventID: id) { $0.recorded.count >= 25 }
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await http.post("/e/notes", newEvents(10, tag: "back").body).status == 201)
            let rest = try await second
            let all = got.recorded + rest.recorded
            let feed = try await http.allEvents("notes").events
            #expect(all == feed, "every event once, in feed order")
            #expect(Set(all.compactMap { $0["id"]?.stringValue }).count == 65)
        }
    }

    @Test("100 clients at once while events are ingested each get every event once, in feed order")
    func hundredClients() async throws {
        // Its own client: the shared one holds 8 connections per host.
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 256
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        defer { _ = client.shutdown() }
        // One address holds them all: the per-caller limit (32 by default) raised for the test.
        try await withServer(configure: { $0.maxLiveFeedsPerPrincipal = 100 }) { plain, _ in
            let http = HTTP(base: plain.base, client: client)
            let total = 2000
            try await withThrowingTaskGroup(of: [JSON].self) { group in
                for _ in 0..<100 {
                    group.addTask { try await SSEClient.read(http, "notes", timeout: .seconds(60)) { $0.recorded.count >= total }.recorded }
                }
                group.addTask {
                    for i in 0..<(total / 50) {
                        let r = try await http.post("/e/notes", newEvents(50, aggregate: { "k-\($0 % 13)" }, tag: "b\(i)").body)
                        #expect(r.status == 201)
                    }
                    return []
                }
                let feed = try await http.allEvents("notes").events
                var clients = 0
                for try await got in group where !got.isEmpty || clients < 100 {
                    if got.isEmpty { continue }
                    clients += 1
                    #expect(got.count == total)
                    #expect(got == (try await http.allEvents("notes").events))
                }
                #expect(clients == 100)
                _ = feed
            }
        }
    }

    @Test("a client that never reads is closed after the write timeout; the node and other clients go on")
    func neverReads() async throws {
        // 3 s, not less: the suite runs in parallel, and a reader that reads (the second client
        // below) must not fall that far behind on two busy cores.
        try await withServer(configure: { $0.liveFeedWriteTimeout = .seconds(3); $0.liveFeedKeepAlive = .milliseconds(200) }) { http, _ in
            // A raw socket with a small receive buffer that sends the request and reads nothing.
            let raw = try RawConnection(port: URL(string: http.base)!.port!, receiveBuffer: 4096)
            raw.send("GET /e/notes HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
            // Big events, so the server's writes stall on the full socket.
            let payload = String(repeating: "x", count: 200_000)
            for i in 0..<40 {
                #expect(try await http.post("/e/notes", #"{"aggregate":"big-\#(i)","type":"t","data":{"p":"\#(payload)"}}"#).status == 201)
            }
            let deadline = ContinuousClock.now + .seconds(20)
            var closedSlow = 0.0
            while ContinuousClock.now < deadline {
                closedSlow = try await counter(http, "laterbase_live_feeds_closed_slow_total")
                if closedSlow >= 1 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(closedSlow == 1, "the stalled client was closed")
            withExtendedLifetime(raw) {}  // open, and unread, until the server gave up on it
            #expect(try await counter(http, "laterbase_live_feeds") == 0)
            // Another client still gets everything, with keep-alive comments after it.
            let other = try await SSEClient.read(http, "notes", timeout: .seconds(10)) { $0.recorded.count >= 40 && $0.comments >= 1 }
            #expect(other.recorded.count == 40 && other.comments >= 1)
            #expect(try await http.get("/healthz").status == 200)
        }
    }

    @Test("the live feed keeps the feed's access rules and refuses a malformed Last-Event-ID")
    func access() async throws {
        let tests = AccessTests()
        try await tests.withCredentials { http in
            var request = HTTPClientRequest(url: http.base + "/e/notes")
            request.headers.add(name: "Accept", value: "text/event-stream")
            #expect(try await HTTPClient.shared.execute(request, timeout: .seconds(5)).status.code == 401)
            request.headers.add(name: "Authorization", value: "Bearer \(tests.reader.token)")
            #expect(try await HTTPClient.shared.execute(request, timeout: .seconds(5)).status.code == 403)
            let admin = http.with(token: tests.admin.token)
            #expect(try await admin.get("/e/notes", headers: [("Accept", "text/event-stream"), ("Last-Event-ID", "x:y:z")]).status == 400)
            #expect(try await admin.post("/e/notes", #"{"aggregate":"a","type":"t"}"#).status == 201)
            let got = try await SSEClient.read(http.with(token: tests.reader.token), "shipments", timeout: .seconds(2)) { _ in false }
            #expect(got.recorded.isEmpty)
            let adminGot = try await SSEClient.read(admin, "notes", timeout: .seconds(10)) { $0.recorded.count >= 1 }
            #expect(adminGot.recorded.count == 1)
        }
    }
}
