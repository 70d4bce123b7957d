import Foundation
import LaterbaseCore
import Testing

/// Under load a commit's meta page is made durable by the next commit's data sync instead of a
/// sync of its own; on an idle node the acknowledging thread syncs it. Either way, every event a
/// 201 acknowledged is in the feed (which shows only durable commits).
@Suite struct GroupCommitSyncTests {
    static func metaSyncs(_ node: HTTP, by: String) async throws -> Double {
        let text = try await node.get("/metrics").text
        return text.split(separator: "\n").filter { $0.hasPrefix("laterbase_meta_syncs_total{") && $0.contains("by=\"\(by)\"") }
            .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
    }

    @Test func theNextCommitCoversTheMetaSyncUnderLoadAndAnIdleNodeSyncsItself() async throws {
        try await withServer { http, _ in
            let one = try await http.post("/e/notes", #"{"aggregate":"a","type":"t","data":{"n":0}}"#)
            #expect(one.status == 201)
            #expect(try await Self.metaSyncs(http, by: "acknowledger") >= 1)

            let ids = try await withThrowingTaskGroup(of: [String].self) { group in
                for client in 0..<64 {
                    group.addTask {
                        var ids: [String] = []
                        for i in 0..<25 {
                            let r = try await http.post("/e/notes", #"{"aggregate":"c\#(client)","type":"t","data":{"n":\#(i)}}"#)
                            guard r.status == 201, case .array(let acks)? = r.json["events"], let id = acks.first?["id"]?.stringValue else {
                                throw FeedError(status: r.status, body: r.text)
                            }
                            ids.append(id)
                        }
                        return ids
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(ids.count == 64 * 25)
            #expect(try await Self.metaSyncs(http, by: "next_commit") > 0)
            let stored = Set(try await http.allEvents("notes").events.compactMap { $0["id"]?.stringValue })
            #expect(ids.allSatisfy(stored.contains))
        }
    }
}
