import AsyncHTTPClient
import Foundation
import LaterbaseCore
import LaterbaseServer
import Logging
import NIOCore

/// Contract v3, "Positions": what a fleet of many origins costs one write and one quiet sync,
/// against the same node's root with one origin, in the same run.
enum PositionsBench {
    struct Side {
        /// A one-event POST's answer, in bytes, and its median latency (s).
        var postBytes = 0
        var postMedian = 0.0
        /// A feed request by token with nothing new: request line and headers plus the answer.
        var quietBytes = 0
        var quietMedian = 0.0
        /// The vv feed's `limit=0` answer: the whole head, for contrast.
        var headBytes = 0
        /// Events/s the writer stored the root's events at, 1,000 a batch: for the large root,
        /// recorded events of new origins (what a replica's catch-up writes).
        var storeRate = 0.0
    }

    /// - Parameter origins: how many origins the large root holds (recorded events from new
    ///   origins, 1,000 a batch), beside a root of as many events written by this node alone
    ///   (so the two differ in origins, not in the size of their indexes).
    static func run(server: LaterbaseServer, port: Int, origins: Int, rounds: Int = 300) async throws -> (one: Side, many: Side) {
        let base = SystemClock.milliseconds() - 3_600_000
        let fleetStart = ContinuousClock.now
        for chunk in stride(from: 0, to: origins, by: 1000) {
            let events = (chunk..<min(origins, chunk + 1000)).map { i in
                #"{"id":"\#(EventID.v7(milliseconds: base))","aggregate":"truck-\#(i % 1000)","type":"t","data":{"i":\#(i)},"origin":"dev-\#(i)","seq":1,"hlc":"\#(HLC(rawValue: (base + UInt64(i / 1000)) << 16 | UInt64(i % 1000)))"}"#
            }
            _ = try await server.writer.write(try server.store.prepare(root: "fleet", body: Array(("[" + events.joined(separator: ",") + "]").utf8), replicating: true))
        }
        let fleetRate = Double(origins) / (ContinuousClock.now - fleetStart).seconds
        let soloStart = ContinuousClock.now
        for chunk in stride(from: 0, to: origins, by: 1000) {
            let events = (chunk..<min(origins, chunk + 1000)).map { i in #"{"aggregate":"truck-\#(i % 1000)","type":"t","data":{"i":\#(i)}}"# }
            _ = try await server.writer.write(try server.store.prepare(root: "solo", body: Array(("[" + events.joined(separator: ",") + "]").utf8)))
        }
        let soloRate = Double(origins) / (ContinuousClock.now - soloStart).seconds
        var one = try await side("solo", port: port, rounds: rounds), many = try await side("fleet", port: port, rounds: rounds)
        one.storeRate = soloRate
        many.storeRate = fleetRate
        return (one, many)
    }

    private static func side(_ root: String, port: Int, rounds: Int) async throws -> Side {
        let url = "http://127.0.0.1:\(port)/e/\(root)"
        var side = Side()
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        var posts: [Double] = []
        var token = ""
        for i in 0..<(rounds + 20) {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: #"{"aggregate":"a","type":"t","data":{"n":\#(i)}}"#))
            let start = ContinuousClock.now
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 16 << 20)
            if i >= 20 { posts.append((ContinuousClock.now - start).seconds) }  // the first warm the connection up
            guard response.status.code == 201, let json = try? JSONParser.parse(Array(buffer: body)) else { throw BenchError("POST /e/\(root): \(response.status)") }
            side.postBytes = body.readableBytes
            token = json["position"]?.stringValue ?? ""
        }
        side.postMedian = median(posts)
        var quiet: [Double] = []
        for i in 0..<(rounds + 20) {
            let path = "/e/\(root)?since=\(token)"
            let start = ContinuousClock.now
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)" + path), timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 16 << 20)
            if i >= 20 { quiet.append((ContinuousClock.now - start).seconds) }
            guard response.status.code == 200 else { throw BenchError("GET \(path): \(response.status)") }
            // What crossed: the request line and the client's headers, the status line, headers and body.
            let requestBytes = "GET \(path) HTTP/1.1\r\nhost: 127.0.0.1:\(port)\r\n\r\n".utf8.count
            let answerHeaders = response.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 } + "HTTP/1.1 200 OK\r\n\r\n".utf8.count
            side.quietBytes = requestBytes + answerHeaders + body.readableBytes
        }
        side.quietMedian = median(quiet)
        let head = try await HTTPClient.shared.execute(HTTPClientRequest(url: url + "?vv=&limit=0"), timeout: .seconds(30))
        side.headBytes = try await head.body.collect(upTo: 64 << 20).readableBytes
        return side
    }
}

extension PositionsBench {
    /// A replica linked to the node through a ``CountingProxy``, syncing one root.
    struct Link {
        /// Events/s until the empty replica held the root.
        var catchUp = 0.0
        /// One new event on the node, until the replica holds it (s).
        var follow = 0.0
        /// HTTP bytes both ways per minute between the two, idle and in sync.
        var idleBytesPerMinute = 0.0
    }

    /// An empty replica of `root` (the only root it has, so its link syncs that one) names the
    /// node through a proxy that counts what crosses: how fast it catches up, how soon it has a
    /// new event, and what the idle link costs over `idle`. ZeroMQ carries nothing while idle
    /// (no deltas; TCP keepalives only), so the proxy sees the link's whole idle traffic.
    /// - Parameter positions: false: the link by vv only, as before v3 (the baseline).
    static func link(
        node: LaterbaseServer, port: Int, root: String, folder: String, positions: Bool = true, idle: Duration = .seconds(20), logger: Logger
    ) async throws -> Link {
        let proxy = try CountingProxy(to: port)
        defer { proxy.stop() }
        var configuration = SyncBench.node(folder: folder, replica: "bench-link-\(root)\(positions ? "" : "-vv")")
        configuration.peers = ["http://127.0.0.1:\(proxy.port)"]
        configuration.peerPositions = positions
        let replica = try LaterbaseServer(roots: [.jsonMerge(root)], configuration: configuration, logger: logger)
        let target = try node.store.head(of: root)
        let events = target.entries.values.reduce(0, +)
        var link = Link()
        let start = ContinuousClock.now
        try await SyncBench.run(replica) {
            while try replica.store.head(of: root) != target { try await Task.sleep(for: .milliseconds(2)) }
            link.catchUp = Double(events) / (ContinuousClock.now - start).seconds
            // Settle (the last pages' acknowledgments, a probe or two), then one new event.
            try await Task.sleep(for: .seconds(3))
            let written = try await node.writer.write(try node.store.prepare(root: root, body: Array(#"{"aggregate":"a","type":"t","data":{"new":1}}"#.utf8)))
            let dot = written.events[0]
            let sent = ContinuousClock.now
            while try replica.store.head(of: root, origins: [dot.origin])[dot.origin] < dot.seq { try await Task.sleep(for: .milliseconds(1)) }
            link.follow = (ContinuousClock.now - sent).seconds
            try await Task.sleep(for: .seconds(3))
            proxy.reset()
            try await Task.sleep(for: idle)
            link.idleBytesPerMinute = Double(proxy.carried) * 60 / idle.seconds
        }
        return link
    }
}
