import Foundation
import LaterbaseCore
import LaterbaseServer
@testable import LaterbaseSync
import Testing

@Suite("Replication between nodes in one process", .serialized)
struct ReplicationTests {
    @Test("one node naming the other syncs both ways, back-dated events included; a quiet link sends nothing")
    func twoNodes() async throws {
        try await withServer(replica: "hq-b") { httpB, _ in
            try await withServer(replica: "hq-a", configure: { $0.peers = [httpB.base] }) { httpA, a in
                for i in 0..<20 {
                    _ = try await httpA.post("/e/notes", newEvents(10, tag: "a\(i)").body)
                    _ = try await httpB.post("/e/notes", newEvents(10, tag: "b\(i)").body)
                }
                // Back-dated on B: it must fold before A's later events on both nodes.
                let r = try await httpB.post("/e/notes", #"{"aggregate":"agg-0","type":"noted","data":{"first":true,"a0":"old"},"time":"2020-01-01T00:00:00Z"}"#)
                #expect(r.status == 201)
                try await converge([httpA, httpB], roots: ["notes"], timeout: .seconds(30))
                let head = try await httpA.allEvents("notes").head
                #expect(head == "hq-a:200,hq-b:201")
                let aggA = try await httpA.get("/a/notes/agg-0").json, aggB = try await httpB.get("/a/notes/agg-0").json
                #expect(aggA == aggB)
                #expect(aggA["state"]?["first"] == .bool(true))
                #expect(aggA["state"]?["a0"] != .string("old"))  // later events overwrote the back-dated one
                #expect(aggA["time"] != .string("2020-01-01T00:00:00.000Z"))
                // Quiet: nothing more is sent either way.
                let sent = try await counter(httpA, "laterbase_sync_events_sent_total")
                try await Task.sleep(for: .seconds(2.5))
                #expect(try await counter(httpA, "laterbase_sync_events_sent_total") == sent)
                let node = try await httpA.get("/node").json
                guard case .array(let peers)? = node["peers"] else { Issue.record("no peers in /node"); return }
                #expect(peers.first?["replica"] == .string("hq-b"))
                #expect(peers.first?["reachable"] == .bool(true))
            }
        }
    }
}

@Test("a feed page's end read from its tail is the one its full read gives; anything else gives none")
func pageEndFromTheTail() async throws {
    try await withServer(replica: "hq-b") { http, _ in
        // Data with brackets, commas and "vv" members of its own, as a tail scan might trip on.
        for i in 0..<30 {
            _ = try await http.post("/e/notes", #"{"aggregate":"a-\#(i % 4)","type":"t","data":{"vv":"x:1]","more":[true],"n":\#(i)}}"#)
        }
        var after = ""
        for limit in [7, 7, 7, 7, 7, 0] {
            let body = try await http.get("/e/notes?limit=\(limit)&vv=\(after)").body
            let full = try JSONParser.parse(body)
            let end = try #require(PeerClient.pageEnd(body))
            #expect(end.0.description == full["vv"]?.stringValue)
            #expect(.bool(end.1) == full["more"])
            after = end.0.description.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        }
        #expect(PeerClient.pageEnd(Array(#"{"events":[],"vv":"a:1"}"#.utf8)) == nil, "no more")
        #expect(PeerClient.pageEnd(Array(#"{"error":"x"}"#.utf8)) == nil)
        #expect(PeerClient.pageEnd(Array(#"{"events":[1],"vv":"a:1]","more":true}"#.utf8)) == nil)
    }
}

@Test("an endpoint a peer bound on every interface is reached through the host of its URL")
func wildcardEndpoints() {
    #expect(PeerClient.reachable("tcp://0.0.0.0:5555", host: "10.0.0.2") == "tcp://10.0.0.2:5555")
    #expect(PeerClient.reachable("tcp://*:5556", host: "hq.example") == "tcp://hq.example:5556")
    #expect(PeerClient.reachable("tcp://[::]:5556", host: "fe80::1") == "tcp://[fe80::1]:5556")
    #expect(PeerClient.reachable("tcp://127.0.0.1:5555", host: "10.0.0.2") == "tcp://127.0.0.1:5555")
}

/// Waits until every node reports the same head for every root, then checks the feeds and the
/// aggregates are the same too.
func converge(_ nodes: [HTTP], roots: [String], timeout: Duration) async throws {
    let deadline = ContinuousClock.now + timeout
    var heads: [String] = []
    while ContinuousClock.now < deadline {
        heads = []
        for node in nodes {
            for root in roots { heads.append((try? await node.get("/e/\(root)?limit=0").json["head"]?.stringValue) ?? "?") }
        }
        let perNode = stride(from: 0, to: heads.count, by: roots.count).map { Array(heads[$0..<$0 + roots.count]) }
        // Equal heads can still hold other versions of the same dots (a forked origin): wait for
        // equal feeds and aggregates too.
        if Set(perNode.map { $0.joined(separator: "|") }).count == 1 && !heads.contains("?"), (try? await sameContent(nodes, roots)) == true { break }
        try await Task.sleep(for: .milliseconds(100))
    }
    for root in roots {
        let reference = try await nodes[0].allEvents(root)
        let referenceAggregates = try await allAggregates(nodes[0], root)
        for node in nodes.dropFirst() {
            let other = try await node.allEvents(root)
            #expect(other.head == reference.head, "\(node.base) \(root): head \(other.head) vs \(reference.head)")
            #expect(other.events == reference.events, "\(node.base) \(root): feeds differ")
            let aggregates = try await allAggregates(node, root)
            #expect(aggregates == referenceAggregates, "\(node.base) \(root): aggregates differ")
        }
    }
}

/// Whether `nodes` serve the same events and aggregates for every root.
func sameContent(_ nodes: [HTTP], _ roots: [String]) async throws -> Bool {
    for root in roots {
        let events = try await nodes[0].allEvents(root).events, aggregates = try await allAggregates(nodes[0], root)
        for node in nodes.dropFirst() {
            guard try await node.allEvents(root).events == events, try await allAggregates(node, root) == aggregates else { return false }
        }
    }
    return true
}

func allAggregates(_ node: HTTP, _ root: String) async throws -> [JSON] {
    var out: [JSON] = []
    var after: String? = nil
    while true {
        let path = "/a/\(root)?limit=1000" + (after.map { "&after=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)" } ?? "")
        let page = try await node.get(path).json
        guard case .array(let items)? = page["aggregates"] else { return out }
        out += items
        guard let next = page["next"]?.stringValue else { return out }
        after = next
    }
}

/// Sum of a Prometheus counter's samples (every label set).
func counter(_ node: HTTP, _ name: String) async throws -> Double {
    let text = try await node.get("/metrics").text
    return text.split(separator: "\n").filter { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
        .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
}
