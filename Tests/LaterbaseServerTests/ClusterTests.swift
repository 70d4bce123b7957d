import Foundation
import LaterbaseCore
import LaterbaseDemo
import Testing

/// A `laterbase serve` process on a fixed HTTP port, so it can be stopped and started again at
/// the same address while its peers keep its URL. Its ZeroMQ ports are chosen anew on each start
/// (`*`): peers find them again through `/node`.
final class ClusterNode: @unchecked Sendable {
    let name: String
    let data: String
    let port: Int
    private(set) var peers: [String]
    private(set) var process: ServerProcess?
    var http: HTTP { HTTP(port: port) }
    var url: String { "http://127.0.0.1:\(port)" }

    let arguments: [String]

    init(_ name: String, peers: [ClusterNode] = [], arguments: [String] = []) async throws {
        self.name = name
        data = temporaryFolder()
        port = try freePort()
        self.peers = peers.map(\.url)
        self.arguments = arguments
        try await start()
    }

    /// A node on a port chosen beforehand, naming peers by URL: how a full mesh is made.
    init(_ name: String, port: Int, peerURLs: [String]) async throws {
        self.name = name
        data = temporaryFolder()
        self.port = port
        self.peers = peerURLs
        self.arguments = []
        try await start()
    }

    func start() async throws {
        process = try await ServerProcess(data: data, replica: name, http: "127.0.0.1:\(port)", arguments: peers.flatMap { ["--peer", $0] } + arguments)
    }

    func signal(_ sig: Int32) { process?.signal(sig) }

    /// Stops the node (SIGTERM) and starts it again naming `peers`: nodes peered after their writes.
    func restart(peers: [ClusterNode]) async throws {
        await stop(SIGTERM)
        self.peers = peers.map(\.url)
        try await start()
    }

    /// SIGKILL or SIGTERM, then wait for the process to be gone.
    func stop(_ sig: Int32) async {
        process?.signal(sig)
        _ = await process?.waitForExit()
        process = nil
    }

    deinit {
        process = nil
        try? FileManager.default.removeItem(atPath: data)
    }
}

@Suite("Clusters of real processes", .serialized)
struct ClusterTests {
    /// Stated bound: after the last heal and the last write, every node agrees within this.
    static let convergenceBound: Duration = .seconds(60)

    @Test("three nodes and two edge devices converge through SIGSTOP, kill -9, restarts and offline writes")
    func threeNodesTwoDevices() async throws {
        // n1 ← n2 ← n3 in a line (n1 and n3 never connected); dev-1 syncs with n1, dev-2 with n3.
        let n1 = try await ClusterNode("n1")
        let n2 = try await ClusterNode("n2", peers: [n1])
        let n3 = try await ClusterNode("n3", peers: [n2])
        let d1 = try await ClusterNode("dev-1", peers: [n1])
        let d2 = try await ClusterNode("dev-2", peers: [n3])
        let all = [n1, n2, n3, d1, d2]
        let seed = UInt64(Date().timeIntervalSince1970)
        print("cluster test seed \(seed)")
        var rng = SeededGenerator(seed: seed)
        var acknowledged: [String: Int] = [:]  // events acknowledged per origin, all roots

        func writeRandom(on nodes: [ClusterNode], rounds: Int) async throws {
            for _ in 0..<rounds {
                for node in nodes {
                    let n = Int.random(in: 1...20, using: &rng)
                    let r = try await node.http.post("/e/notes", newEvents(n, aggregate: { "agg-\(($0 + n) % 9)" }, tag: node.name).body)
                    #expect(r.status == 201, "\(node.name): \(r.text)")
                    acknowledged[node.name, default: 0] += n
                    let shipment = "SHP-\(Int.random(in: 1...5, using: &rng))"
                    let s = try await node.http.post("/e/shipments", #"{"aggregate":"\#(shipment)","type":"shipment.departed","data":{"location":"\#(node.name)"}}"#)
                    #expect(s.status == 201, "\(node.name): \(s.text)")
                    acknowledged[node.name, default: 0] += 1
                }
            }
        }

        try await writeRandom(on: all, rounds: 3)

        // A partition: n2 frozen, so {n1, dev-1} and {n3, dev-2} are apart.
        n2.signal(SIGSTOP)
        try await writeRandom(on: [n1, n3, d1, d2], rounds: 3)
        // Back-dated on dev-2 while apart: it happened before every departure above.
        let early = try await d2.http.post("/e/shipments", #"{"aggregate":"SHP-1","type":"shipment.arrived","data":{"location":"EARLY"},"time":"2020-01-01T00:00:00Z"}"#)
        #expect(early.status == 201)
        acknowledged["dev-2", default: 0] += 1
        n2.signal(SIGCONT)

        // dev-1 killed right after an acknowledged write, then started again.
        try await writeRandom(on: [d1], rounds: 2)
        await d1.stop(SIGKILL)
        try await writeRandom(on: [n1, n2, n3, d2], rounds: 2)
        try await d1.start()

        // n3 taken away: dev-2 records offline, then n3 comes back (on new ZeroMQ ports).
        await n3.stop(SIGTERM)
        try await writeRandom(on: [n1, n2, d1, d2], rounds: 2)
        let offline = try await d2.http.post("/e/shipments", #"{"aggregate":"SHP-2","type":"shipment.arrived","data":{"location":"OFFLINE"},"time":"2021-06-01T00:00:00Z"}"#)
        #expect(offline.status == 201)
        acknowledged["dev-2", default: 0] += 1
        try await n3.start()
        try await writeRandom(on: all, rounds: 2)

        // The last heal and the last write are behind us.
        let healed = ContinuousClock.now
        try await converge(all.map(\.http), roots: ["notes", "shipments", "inventory"], timeout: Self.convergenceBound)
        let took = ContinuousClock.now - healed
        print("cluster converged \(took) after the last write")
        #expect(took < Self.convergenceBound)

        // Nothing acknowledged was lost: per origin, the heads add up to what was acknowledged.
        var held: [String: Int] = [:]
        for root in ["notes", "shipments"] {
            let head = try VersionVector(parsing: try await n1.http.get("/e/\(root)?limit=0").json["head"]!.stringValue!)
            for (origin, seq) in head.entries { held[origin, default: 0] += Int(seq) }
        }
        #expect(held == acknowledged)

        // The back-dated arrival folded where it happened, before the departures, on every node;
        // `as_of` before the departures sees it.
        for node in all {
            let shp1 = try await node.http.get("/a/shipments/SHP-1").json
            #expect(shp1["state"]?["status"] == .string("in_transit"), "\(node.name): \(shp1)")
            let then = try await node.http.get("/a/shipments/SHP-1?as_of=2020-06-01T00:00:00Z").json
            #expect(then["state"]?["location"] == .string("EARLY"), "\(node.name): \(then)")
            let shp2 = try await node.http.get("/a/shipments/SHP-2?as_of=2021-06-01T00:00:00Z").json
            #expect(shp2["state"]?["location"] == .string("OFFLINE"), "\(node.name): \(shp2)")
        }
    }

    @Test("a restarted replica resumes from its persisted peer state: nothing new, nothing sent")
    func restartSendsNothing() async throws {
        let b = try await ClusterNode("hq-b")
        let a = try await ClusterNode("hq-a", peers: [b])
        for i in 0..<5 {
            _ = try await a.http.post("/e/notes", newEvents(50, tag: "a\(i)").body)
            _ = try await b.http.post("/e/notes", newEvents(50, tag: "b\(i)").body)
        }
        try await converge([a.http, b.http], roots: ["notes"], timeout: .seconds(30))
        #expect(try await counter(a.http, "laterbase_sync_events_sent_total") == 250)
        try await Task.sleep(for: .milliseconds(600))  // the acknowledgment is saved at most every 250 ms
        await a.stop(SIGTERM)
        let saved = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: a.data + "/peers/hq-b.json"))))
        #expect(saved["acked"]?["notes"] == .string("hq-a:250,hq-b:250"))
        #expect(saved["peer"] == .string(b.url))
        // By position: b's token for all it stored (250 events of its own, 250 it took from a).
        let bPosition = try await b.http.get("/e/notes?since=&limit=10000").json["next"]
        #expect(saved["tokens"]?["notes"] == bPosition && bPosition?.stringValue?.hasSuffix(":500") == true, "\(saved)")

        try await a.start()
        // Wait for the link to be up and to have probed, then give it time to (not) send.
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let node = try await a.http.get("/node").json
            if case .array(let peers)? = node["peers"], peers.first?["reachable"] == .bool(true) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .seconds(2))
        #expect(try await counter(a.http, "laterbase_sync_events_sent_total") == 0)
        #expect(try await counter(a.http, "laterbase_sync_events_received_total") == 0)
        #expect(try await counter(b.http, "laterbase_ingest_events_total") == 250)

        // The restarted link resumed from its token: its probes and catch-ups went by position.
        let node = try await a.http.get("/node").json
        let peer = firstPeer(node)
        var inSync: [JSON] = []
        if case .array(let roots)? = peer?["in_sync"] { inSync = roots }
        #expect(peer?["positions"]?["notes"] == bPosition && inSync.contains(.string("notes")), "\(node)")

        // Something new is sent, and only that.
        _ = try await a.http.post("/e/notes", newEvents(7).body)
        try await converge([a.http, b.http], roots: ["notes"], timeout: .seconds(30))
        #expect(try await counter(a.http, "laterbase_sync_events_sent_total") == 7)
    }
}

/// The first of `/node`'s peers.
func firstPeer(_ node: JSON) -> JSON? {
    if case .array(let peers)? = node["peers"] { return peers.first }
    return nil
}

extension ClusterTests {
    @Test("a peer restored from a backup answers 410 to the link's token; the link goes on by vv, gives back what the peer lost, and follows its new epoch")
    func restoredPeerAnswers410() async throws {
        let b = try await ClusterNode("hq-b")
        let a = try await ClusterNode("hq-a", peers: [b])
        _ = try await b.http.post("/e/notes", newEvents(50, tag: "before").body)
        try await converge([a.http, b.http], roots: ["notes"], timeout: .seconds(30))
        let backupFile = b.data + "-backup.lbk"
        #expect(try await runLaterbase(["backup", "--data", b.data, "--to", backupFile]).status == 0)
        // Events after the backup: the restore loses them on b; a holds them.
        _ = try await b.http.post("/e/notes", newEvents(30, tag: "lost").body)
        try await converge([a.http, b.http], roots: ["notes"], timeout: .seconds(30))
        let oldToken = try #require(try await b.http.get("/e/notes?since=&limit=10000").json["next"]?.stringValue)
        try await Task.sleep(for: .milliseconds(600))  // a's token saved
        await b.stop(SIGKILL)
        try FileManager.default.removeItem(atPath: b.data)
        // The same replica id (an operator's choice that risks forks; here nothing was written
        // on b in between): a's saved token is from b's old epoch.
        let restore = try await runLaterbase(["restore", "--from", backupFile, "--data", b.data, "--keep-replica-id"])
        #expect(restore.status == 0, "\(restore.output)")
        try await b.start()
        #expect(try await b.http.get("/e/notes?since=\(oldToken)").status == 410)
        // a: 410, then by vv; it pushes b's lost events back (b does not link to a).
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, try await b.http.get("/e/notes?limit=0").json["head"] != .string("hq-b:80") {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await b.http.get("/e/notes?limit=0").json["head"] == .string("hq-b:80"))
        #expect(a.process?.logText.contains("peer does not know this link's position") == true)
        try await converge([a.http, b.http], roots: ["notes"], timeout: .seconds(30))
        // New events on b reach a, and a follows b's new epoch by position.
        _ = try await b.http.post("/e/notes", newEvents(5, tag: "after").body)
        try await converge([a.http, b.http], roots: ["notes"], timeout: .seconds(30))
        #expect(try await a.http.allEvents("notes").events.count == 85)
        let newToken = try #require(try await b.http.get("/e/notes?since=&limit=10000").json["next"]?.stringValue)
        #expect(newToken.prefix(16) != oldToken.prefix(16))
        let followed = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < followed, firstPeer(try await a.http.get("/node").json)?["positions"]?["notes"]?.stringValue != newToken {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(firstPeer(try await a.http.get("/node").json)?["positions"]?["notes"]?.stringValue == newToken)
    }

    @Test("in a full mesh of three, each node takes each event about once and pushes nothing to peers that pull")
    func meshSendsEachEventOnce() async throws {
        let ports = try (0..<3).map { _ in try freePort() }
        let urls = ports.map { "http://127.0.0.1:\($0)" }
        var nodes: [ClusterNode] = []
        for i in 0..<3 { nodes.append(try await ClusterNode("mesh-\(i)", port: ports[i], peerURLs: urls.enumerated().filter { $0.offset != i }.map(\.element))) }
        // Every link up and reachable both ways before the writes, so each node knows its peers pull.
        let deadline = ContinuousClock.now + .seconds(30)
        outer: while ContinuousClock.now < deadline {
            for node in nodes {
                let json = try await node.http.get("/node").json
                guard case .array(let peers)? = json["peers"], peers.count == 2, peers.allSatisfy({ $0["reachable"] == .bool(true) && $0["pushing"] == .bool(false) }) else {
                    try await Task.sleep(for: .milliseconds(100))
                    continue outer
                }
            }
            break
        }
        let perNode = 3000
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, node) in nodes.enumerated() {
                group.addTask {
                    for b in 0..<(perNode / 100) { _ = try await node.http.post("/e/notes", newEvents(100, tag: "n\(i)b\(b)").body) }
                }
            }
            try await group.waitForAll()
        }
        try await converge(nodes.map(\.http), roots: ["notes"], timeout: .seconds(60))
        var received: [Double] = []
        for node in nodes {
            #expect(try await node.http.allEvents("notes").events.count == 3 * perNode)
            received.append(try await counter(node.http, "laterbase_sync_events_received_total"))
            #expect(try await counter(node.http, "laterbase_sync_events_sent_total") == 0, "\(node.name) pushed to peers that pull")
            #expect(try await counter(node.http, "laterbase_ingest_events_total") == 0)
        }
        // Each node lacks 2 × perNode events; what it handed its writer beyond that was duplicates.
        let needed = Double(2 * perNode)
        print("mesh: events taken per node \(received), needed \(needed) each")
        for r in received { #expect(r >= needed && r <= needed * 1.05, "\(r) events taken for \(needed) needed") }
    }

    @Test("a subscriber that misses deltas tells from the vv and catches up through the feed")
    func missedDeltas() async throws {
        // The publisher keeps 2 deltas per subscriber; the subscriber is frozen while a burst of
        // deltas larger than every buffer on the way goes out, so ZeroMQ drops some. Its probes
        // are a minute apart: only noticing the gap in the deltas can bring it up to date in time.
        let b = try await ClusterNode("hq-b", arguments: ["--publish-hwm", "2"])
        let a = try await ClusterNode("hq-a", peers: [b], arguments: ["--peer-probe-seconds", "60"])
        _ = try await b.http.post("/e/notes", newEvents(5).body)
        try await converge([a.http, b.http], roots: ["notes"], timeout: .seconds(30))
        a.signal(SIGSTOP)
        for i in 0..<60 { _ = try await b.http.post("/e/notes", newEvents(1000, tag: String(repeating: "x", count: 200) + "\(i)").body) }
        a.signal(SIGCONT)
        try await Task.sleep(for: .seconds(1))  // A takes what reached it; the rest was dropped
        // The next delta is not contiguous with A's vv: that is how A tells.
        _ = try await b.http.post("/e/notes", newEvents(1).body)
        try await converge([a.http, b.http], roots: ["notes"], timeout: .seconds(30))
        #expect(try await counter(a.http, "laterbase_sync_gaps_total") > 0)
        #expect(try await a.http.allEvents("notes").events.count == 60_006)
    }
}
