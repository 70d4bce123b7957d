import Foundation
import LaterbaseCore
import LaterbaseServer

/// The store without HTTP: JSON batches of 1000 events parsed, checked, and written through the
/// single writer (dots, hlc, log, id and aggregate indexes, heads, folds), several in flight so
/// the writer group-commits.
enum StoreThroughput {
    /// A 200-byte event for `root`, on one of `aggregates` aggregates.
    static func event(_ root: String, _ i: Int, aggregates: Int = 10_000) -> String {
        let aggregate = "A-\(i % aggregates)"
        let body: String
        if root == "inventory" {
            body = #"{"aggregate":"SKU-\#(i % aggregates)@AKL","type":"stock.received","data":{"qty":\#(i % 50 + 1)}}"#
        } else {
            body = #"{"aggregate":"\#(aggregate)","type":"item.scanned","data":{"sku":"SKU-\#(i % 977)","site":"AKL","bin":"B-\#(i % 40)","qty":\#(i % 50),"note":""#
        }
        if root == "inventory" { return body }
        let pad = max(0, 200 - body.utf8.count - 3)
        return body + String(repeating: "x", count: pad) + #""}}"#
    }

    /// `events` as JSON array bodies of `batchSize` events each.
    static func bodies(_ root: String, events: Int, batchSize: Int, aggregates: Int = 10_000) -> [[UInt8]] {
        (0..<(events / batchSize)).map { b in
            Array(("[" + (0..<batchSize).map { event(root, b * batchSize + $0, aggregates: aggregates) }.joined(separator: ",") + "]").utf8)
        }
    }

    static func run(server: LaterbaseServer, root: String, events: Int, aggregates: Int = 10_000) async throws -> Double {
        let batchSize = 1000
        let batches = bodies(root, events: events, batchSize: batchSize, aggregates: aggregates)
        func prepare(_ b: Int) throws -> PreparedBatch {
            try server.store.prepare(root: root, body: batches[b])
        }
        let start = ContinuousClock.now
        let inFlight = 16
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<inFlight {
                group.addTask {
                    var b = worker
                    while b < batches.count {
                        _ = try await server.writer.write(try prepare(b))
                        b += inFlight
                    }
                }
            }
            try await group.waitForAll()
        }
        return Double(batches.count * batchSize) / (ContinuousClock.now - start).seconds
    }
}
