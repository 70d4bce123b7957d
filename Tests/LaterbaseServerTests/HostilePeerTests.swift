import Foundation
import Hummingbird
import LaterbaseCore
import NIOCore
import Synchronization
import Testing

/// A peer that is not a Laterbase node: a real HTTP server on loopback answering `/node` and the
/// feed as the test says, counting the feed requests it gets.
private final class FakePeer: Sendable {
    let node: String
    let feed: @Sendable (_ query: String) -> String
    let feedRequests = Mutex(0)
    /// Bytes of an endless `/node` body, when set: chunks of 1 MiB up to this many.
    let endlessNodeBytes: Int?

    init(node: String, endlessNodeBytes: Int? = nil, feed: @escaping @Sendable (_ query: String) -> String) {
        self.node = node
        self.feed = feed
        self.endlessNodeBytes = endlessNodeBytes
    }

    func run<R: Sendable>(_ body: @Sendable (String) async throws -> R) async throws -> R {
        let router = Router()
        let node = self.node, feed = self.feed, endless = self.endlessNodeBytes
        let requests = self
        router.get("/node") { _, _ -> Response in
            if let endless {
                return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody { writer in
                    let chunk = ByteBuffer(bytes: [UInt8](repeating: 0x20, count: 1 << 20))
                    for _ in 0..<(endless >> 20) { try await writer.write(chunk) }
                    try await writer.finish(nil)
                })
            }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: node)))
        }
        router.get("/e/:root") { request, _ -> Response in
            let query = request.uri.query ?? ""
            if !query.contains("limit=0") { requests.feedRequests.withLock { $0 += 1 } }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: feed(query))))
        }
        let port = Mutex<Int?>(nil)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: { channel in
            port.withLock { $0 = channel.localAddress?.port }
        })
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            while port.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
            defer { group.cancelAll() }
            return try await body("http://127.0.0.1:\(port.withLock { $0 }!)")
        }
    }
}

/// CONTRACT.md v2, "Bad input", for peers: a peer's answers are input.
@Suite("Hostile peers", .serialized)
struct HostilePeerTests {
    private func peerStatus(_ http: HTTP) async throws -> JSON? {
        guard case .array(let peers)? = try await http.get("/node").json["peers"] else { return nil }
        return peers.first
    }

    /// Was: the replica became a file name under peers/, so `../` escaped the data folder.
    @Test func aPeerNamingAnInvalidReplicaIsNotSyncedWith() async throws {
        let peer = FakePeer(node: #"{"replica":"../../escaped","roots":["notes"],"ingest":null,"publish":null}"#, feed: { _ in "{}" })
        try await peer.run { url in
            try await withServer(configure: { $0.peers = [url]; $0.peerProbeInterval = .milliseconds(100) }) { http, server in
                var status: JSON? = nil
                // Under load a discovery may time out first ("not reachable"); the refusal follows.
                for _ in 0..<300 {
                    status = try await peerStatus(http)
                    if status?["error"]?.stringValue?.contains("not a valid origin") == true { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(status?["error"]?.stringValue?.contains("not a valid origin") == true)
                #expect(status?["replica"] == .null)
                let folder = server.configuration.dataDirectory
                #expect(!FileManager.default.fileExists(atPath: folder + "/peers/../../escaped.json"))
                #expect(!FileManager.default.fileExists(atPath: folder + "/../escaped.json"))
                #expect(peer.feedRequests.withLock { $0 } == 0)
                #expect(try await http.get("/healthz").status == 200)
            }
        }
    }

    /// Was: a page of plain events was stored as this node's own.
    @Test func aFeedPageOfPlainEventsIsRefusedWhole() async throws {
        let page = #"{"events":[{"id":"0193a1b2-c3d4-7e5f-8a9b-000000000001","aggregate":"x","type":"t","origin":"evil-1","seq":1,"hlc":"0001934f5a2b0000"},{"aggregate":"y","type":"t"}],"vv":"evil-1:1","head":"evil-1:1","more":false}"#
        let peer = FakePeer(node: #"{"replica":"evil-1","roots":["notes"],"ingest":null,"publish":null}"#, feed: { _ in page })
        try await peer.run { url in
            try await withServer(configure: { $0.peers = [url]; $0.peerProbeInterval = .milliseconds(100) }) { http, _ in
                while peer.feedRequests.withLock({ $0 }) < 2 { try await Task.sleep(for: .milliseconds(20)) }
                #expect(try await http.get("/e/notes").json["head"] == .string(""))
                #expect(try await http.get("/healthz").status == 200)
            }
        }
    }

    /// A peer that says `more: true` and moves nothing is retried with backoff, not spun on.
    @Test func aFeedThatNeverProgressesIsRetriedWithBackoff() async throws {
        let peer = FakePeer(node: #"{"replica":"stuck-1","roots":["notes"],"ingest":null,"publish":null}"#, feed: { _ in
            #"{"events":[],"vv":"","head":"stuck-1:5","more":true}"#
        })
        try await peer.run { url in
            try await withServer(configure: { $0.peers = [url]; $0.peerProbeInterval = .milliseconds(100) }) { http, _ in
                try await Task.sleep(for: .seconds(4))
                let requests = peer.feedRequests.withLock { $0 }
                #expect(requests >= 1)
                #expect(requests <= 4, "catch-up retried \(requests) times in 4 s")  // 1 s, 2 s, 4 s apart
                #expect(try await http.get("/healthz").status == 200)
            }
        }
    }

    /// An endless answer costs bounded memory and time: it is cut off, and the node serves on.
    @Test func anEndlessAnswerIsCutOff() async throws {
        let peer = FakePeer(node: "", endlessNodeBytes: 200 << 20, feed: { _ in "{}" })
        try await peer.run { url in
            try await withServer(configure: { $0.peers = [url] }) { http, _ in
                var status: JSON? = nil
                for _ in 0..<200 {
                    status = try await peerStatus(http)
                    if status?["error"]?.stringValue != nil { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(status?["error"]?.stringValue != nil)
                #expect(status?["reachable"] == .bool(false))
                #expect(try await http.get("/healthz").status == 200)
            }
        }
    }
}

/// CONTRACT.md v3, "The front door under load": numbers a peer sends never overflow anything.
@Suite("Hostile peers' numbers", .serialized)
struct HostilePeerNumberTests {
    /// Was: two origins at 2^63-1 in a peer's head trapped `GET /metrics` (the lag gauge summed
    /// them), and the head was saved with the peer's checkpoint, so the node died on every scrape.
    @Test func aHeadAtTheTopOfTheRangeSaturatesTheLag() async throws {
        let huge = "peer-x:9223372036854775807,peer-y:9223372036854775807"
        let peer = FakePeer(node: #"{"replica":"peer-x","roots":["notes"],"ingest":null,"publish":null}"#, feed: { query in
            query.contains("since=")
                ? #"{"events":[],"next":"00000000000000aa:0","more":false,"digest":"0000000000000001","head_digest":"0000000000000002"}"#
                : #"{"events":[],"vv":"","head":"\#(huge)","more":false,"position":"00000000000000aa:0"}"#
        })
        try await peer.run { url in
            try await withServer(configure: { $0.peers = [url]; $0.peerProbeInterval = .milliseconds(100) }) { http, _ in
                _ = try await http.post("/e/notes", #"{"aggregate":"n-1","type":"note.added","data":{}}"#)
                var lag: String? = nil
                let deadline = ContinuousClock.now + .seconds(60)  // a deadline, not a count: the suite runs in parallel
                while ContinuousClock.now < deadline {
                    let metrics = try await http.get("/metrics")
                    #expect(metrics.status == 200)
                    lag = metrics.text.split(separator: "\n").first { $0.hasPrefix("laterbase_sync_lag_events{") && $0.contains(#"direction="pull""#) }.map(String.init)
                    if let lag, !lag.hasSuffix(" 0") && !lag.hasSuffix(" 0.0") { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                // Two origins at 2^63-1 each: the sum stops at Int.max (9.2e18), it does not trap.
                #expect(lag.flatMap { Double($0.split(separator: " ").last!) } == Double(Int.max))
                #expect(try await http.get("/healthz").status == 200)
            }
        }
    }
}

extension HostilePeerNumberTests {
    /// Was: a peer's publish socket could send frame after frame marked "more" and the
    /// subscriber held them all (and it took frames of any size, 100,000 messages deep).
    @Test func aPeersUnfinishedMultipartMessageIsCutOff() async throws {
        let publish = try RawListener()
        let peer = FakePeer(node: #"{"replica":"evil-pub","roots":["notes"],"ingest":null,"publish":"tcp://127.0.0.1:\#(publish.port)"}"#, feed: { query in
            query.contains("since=")
                ? #"{"events":[],"next":"00000000000000aa:0","more":false,"digest":"0000000000000000","head_digest":"0000000000000000"}"#
                : #"{"events":[],"vv":"","head":"","more":false,"position":"00000000000000aa:0"}"#
        })
        try await peer.run { url in
            try await withServer(configure: { $0.peers = [url]; $0.maxBodyBytes = 1 << 20; $0.peerProbeInterval = .milliseconds(100) }) { http, _ in
                // The node's subscriber, through its relay: play a PUB socket (ZMTP 3.0, NULL).
                let connection = await blocking { publish.accept(within: 10) }
                let sub = try #require(connection)
                sub.send(ZMTP.greeting + ZMTP.ready("PUB"))
                let greeted = await blocking { sub.read(exactly: 64) != nil }
                #expect(greeted)
                // 4 MiB deltas (a page) + 64 KiB, 8 of them: the budget. Frames of 64 KiB marked "more".
                let budget = 8 * ((4 << 20) + (64 << 10))
                let sent = await ZMTP.flood(sub, with: ZMTP.moreFrame(size: 64 << 10), upTo: 4 * budget)
                #expect(sent < 4 * budget, "the subscriber took \(sent >> 20) MiB of one unfinished message (budget \(budget >> 20) MiB)")
                #expect(try await counter(http, "laterbase_zmq_connections_over_budget_total") >= 1)
                #expect(try await http.get("/healthz").status == 200)
            }
        }
    }
}
