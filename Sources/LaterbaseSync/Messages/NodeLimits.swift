import LaterbaseCore

/// The limits a node announces in `/node` (`"limits": {"max_event_bytes", "max_body_bytes",
/// "max_batch_events"}`). All replicas of a deployment should share them (contract v3): a peer
/// whose limits are smaller than this node's may refuse events this node accepted, and its
/// link shows why in `/node`'s `peers`.
public struct NodeLimits: Sendable, Equatable {
    /// An event's recorded form (as served), at most (`--max-event-bytes`).
    public var maxEventBytes: Int
    /// A POST body or ZeroMQ message, at most (`--max-body-bytes`).
    public var maxBodyBytes: Int
    /// Events in one batch, at most.
    public var maxBatchEvents: Int

    public init(maxEventBytes: Int, maxBodyBytes: Int, maxBatchEvents: Int) {
        self.maxEventBytes = maxEventBytes
        self.maxBodyBytes = maxBodyBytes
        self.maxBatchEvents = maxBatchEvents
    }

    public var json: JSON {
        .object([
            ("max_event_bytes", .integer(Int64(maxEventBytes))), ("max_body_bytes", .integer(Int64(maxBodyBytes))),
            ("max_batch_events", .integer(Int64(maxBatchEvents))),
        ])
    }

    /// Reads `/node`'s `limits`; nil when absent or not three positive integers (a node from
    /// before limits were announced).
    init?(json: JSON?) {
        func value(_ key: String) -> Int? { json?[key]?.int64Value.flatMap { $0 > 0 ? Int(exactly: $0) : nil } }
        guard let e = value("max_event_bytes"), let b = value("max_body_bytes"), let n = value("max_batch_events") else { return nil }
        self.init(maxEventBytes: e, maxBodyBytes: b, maxBatchEvents: n)
    }

    /// Why a peer with these limits may refuse what a node with `ours` accepts, or nil when
    /// it takes whatever that node does.
    func shortfall(against ours: NodeLimits) -> String? {
        var reasons: [String] = []
        if maxEventBytes < ours.maxEventBytes { reasons.append("events of at most \(maxEventBytes) bytes (this node: \(ours.maxEventBytes))") }
        if maxBodyBytes < ours.maxBodyBytes { reasons.append("bodies of at most \(maxBodyBytes) bytes (this node: \(ours.maxBodyBytes))") }
        if maxBatchEvents < ours.maxBatchEvents { reasons.append("batches of at most \(maxBatchEvents) events (this node: \(ours.maxBatchEvents))") }
        return reasons.isEmpty ? nil : "the peer takes " + reasons.joined(separator: ", ") + ": events this node accepts may stop there"
    }
}
