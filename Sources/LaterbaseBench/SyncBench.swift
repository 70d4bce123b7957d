import Foundation
import LaterbaseDemo
import LaterbaseCore
import LaterbaseServer
import LaterbaseSync
import Logging
import Synchronization
import ZeroMQ

/// ZeroMQ ingest, delta fan-out latency, catch-up and convergence.
enum SyncBench {
    /// Pre-encoded messages of 100 JSON events pushed as fast as the node takes them (the PUSH
    /// blocks under backpressure); events/s until the head holds them all.
    /// - Parameter curve: the key pair to present, for a node with credentials (CURVE on).
    static func ingest(server: LaterbaseServer, root: String, events: Int, aggregates: Int, curve: CurveKeyPair? = nil) throws -> Double {
        let bodies = SampleLoad.bodies(root, events: events, batchSize: 100, aggregates: aggregates)
        let total = UInt64(bodies.count * 100)
        let context = try ZMQContext()
        defer { context.terminate() }
        let push = try context.socket(.push)
        defer { push.close() }
        if let curve { try push.setCurveClient(serverKey: server.zap.keyPair.publicKey, keyPair: curve) }
        try push.connect(server.ingest!.endpoint)
        let topic = Array(root.utf8)
        let before = try server.store.head(of: root).entries.values.reduce(0, +)
        let start = ContinuousClock.now
        for body in bodies { try push.send([topic, body]) }
        while try server.store.head(of: root).entries.values.reduce(0, +) < before + total { Thread.sleep(forTimeInterval: 0.001) }
        return Double(total) / (ContinuousClock.now - start).seconds
    }

    /// When each commit of a root was published, by its position after (set from the node's `onCommit`).
    final class CommitTimes: Sendable {
        let root: String
        private let times = Mutex<[String: ContinuousClock.Instant]>([:])
        init(root: String) { self.root = root }

        func note(_ changes: CommittedChanges) {
            for change in changes.roots where change.root == root {
                let now = ContinuousClock.now
                times.withLock { $0[change.position.description] = now }
            }
        }

        func time(of position: String) -> ContinuousClock.Instant? { times.withLock { $0[position] } }
    }

    struct FanOut {
        var p50: Double
        var p99: Double
        var ingestRate: Double
        var deltas: Int
    }

    /// Pushes `rate` events/s (messages of 100) for `seconds` while a subscriber on the node's
    /// publish socket takes every delta; latency is from the commit hook to the subscriber.
    static func fanOut(server: LaterbaseServer, commits: CommitTimes, rate: Int, seconds: Double, aggregates: Int) throws -> FanOut {
        let messages = Int(Double(rate) * seconds) / 100
        let bodies = SampleLoad.bodies(commits.root, events: messages * 100, batchSize: 100, aggregates: aggregates)
        let context = try ZMQContext()
        defer { context.terminate() }
        let sub = try context.socket(.sub)
        try sub.setReceiveHighWaterMark(0)
        try sub.subscribe(commits.root)
        try sub.connect(server.publisher!.endpoint)
        Thread.sleep(forTimeInterval: 0.3)  // the subscription reaches the publisher
        let latencies = Mutex<[Double]>([])
        let done = Atomic<Bool>(false)
        let subscriber = Thread {
            let marker = Array(#""position":""#.utf8)
            while !done.load(ordering: .relaxed) {
                guard (try? zmqPoll([sub], timeout: .milliseconds(20)))?.first == true else { continue }
                while let frames = try? sub.receive(wait: false) {
                    let arrived = ContinuousClock.now
                    guard frames.count == 2, frames[0] == Array(commits.root.utf8) else { continue }
                    let body = frames[1]
                    // The position is the body's last member: read it without parsing the events.
                    guard let at = lastIndex(of: marker, in: body) else { continue }
                    let position = String(decoding: body[(at + marker.count)..<(body.count - 2)], as: UTF8.self)
                    if let committed = commits.time(of: position) {
                        latencies.withLock { $0.append((arrived - committed).seconds) }
                    }
                }
            }
            sub.close()
        }
        subscriber.start()
        let push = try context.socket(.push)
        defer { push.close() }
        try push.connect(server.ingest!.endpoint)
        let topic = Array(commits.root.utf8)
        let interval = 100.0 / Double(rate)
        let start = ContinuousClock.now
        for (i, body) in bodies.enumerated() {
            let due = start + .seconds(Double(i) * interval)
            let wait = due - ContinuousClock.now
            if wait > .zero { Thread.sleep(forTimeInterval: wait.seconds) }
            try push.send([topic, body])
        }
        let sent = ContinuousClock.now - start
        Thread.sleep(forTimeInterval: 1)
        done.store(true, ordering: .relaxed)
        while !subscriber.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        let sorted = latencies.withLock { $0 }.sorted()
        guard !sorted.isEmpty else { return FanOut(p50: .nan, p99: .nan, ingestRate: 0, deltas: 0) }
        return FanOut(
            p50: sorted[sorted.count / 2], p99: sorted[min(sorted.count - 1, sorted.count * 99 / 100)],
            ingestRate: Double(messages * 100) / sent.seconds, deltas: sorted.count)
    }

    private static func lastIndex(of marker: [UInt8], in body: [UInt8]) -> Int? {
        var i = body.count - marker.count
        while i >= 0 {
            if body[i] == marker[0] && Array(body[i..<(i + marker.count)]) == marker { return i }
            i -= 1
        }
        return nil
    }

    /// A node that starts empty and names `peer`: events/s until its head equals the peer's for `root`.
    static func catchUp(peer: LaterbaseServer, peerPort: Int, root: String, folder: String, logger: Logger) async throws -> (events: UInt64, perSecond: Double) {
        let target = try peer.store.head(of: root)
        let events = target.entries.values.reduce(0, +)
        var configuration = node(folder: folder, replica: "bench-replica")
        configuration.peers = ["http://127.0.0.1:\(peerPort)"]
        let replica = try LaterbaseServer(roots: [.jsonMerge(root)], configuration: configuration, logger: logger)
        let start = ContinuousClock.now
        let took = try await run(replica) {
            while try replica.store.head(of: root) != target { try await Task.sleep(for: .milliseconds(2)) }
            return ContinuousClock.now - start
        }
        return (events, Double(events) / took.seconds)
    }

    /// Two nodes apart, each with `events` of its own on `root`; the heal is one node starting
    /// with the other as its peer. Returns seconds from the heal to identical heads.
    static func convergence(events: Int, root: String, folder: String, logger: Logger) async throws -> Double {
        // One side records while apart, then stops.
        let apart = try LaterbaseServer(roots: [.jsonMerge(root)], configuration: node(folder: folder + "/d", replica: "bench-d"), logger: logger)
        try await run(apart) { _ = try await StoreThroughput.run(server: apart, root: root, events: events) }
        // The other side records while apart and stays up.
        let c = try LaterbaseServer(roots: [.jsonMerge(root)], configuration: node(folder: folder + "/c", replica: "bench-c"), logger: logger)
        return try await run(c) {
            _ = try await StoreThroughput.run(server: c, root: root, events: events)
            var configuration = node(folder: folder + "/d", replica: "bench-d")
            configuration.peers = ["http://127.0.0.1:\(c.port!)"]
            let d = try LaterbaseServer(roots: [.jsonMerge(root)], configuration: configuration, logger: logger)
            let healed = ContinuousClock.now
            return try await run(d) {
                while true {
                    let a = try c.store.head(of: root), b = try d.store.head(of: root)
                    if a == b && a.entries.values.reduce(0, +) == UInt64(2 * events) { break }
                    try await Task.sleep(for: .milliseconds(2))
                }
                return (ContinuousClock.now - healed).seconds
            }
        }
    }

    static func node(folder: String, replica: String) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.dataDirectory = folder
        configuration.port = 0
        configuration.replicaID = replica
        configuration.ingest = "tcp://127.0.0.1:*"
        configuration.publish = "tcp://127.0.0.1:*"
        return configuration
    }

    /// Runs a node for the length of `body`.
    static func run<R: Sendable>(_ server: LaterbaseServer, _ body: () async throws -> R) async throws -> R {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run(gracefulShutdownSignals: []) }
            _ = try await server.waitUntilRunning()
            let result = try await body()
            await server.shutdown()
            try await group.waitForAll()
            return result
        }
    }
}
