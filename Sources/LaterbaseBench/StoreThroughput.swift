import Foundation
import LaterbaseCore
import LaterbaseDemo
import LaterbaseServer

/// The store without HTTP: JSON batches of 1000 events parsed, checked, and written through the
/// single writer (dots, hlc, log, id and aggregate indexes, heads, folds), several in flight so
/// the writer group-commits.
enum StoreThroughput {
    static func run(server: LaterbaseServer, root: String, events: Int, aggregates: Int = 10_000) async throws -> Double {
        let batchSize = 1000
        let batches = SampleLoad.bodies(root, events: events, batchSize: batchSize, aggregates: aggregates)
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
