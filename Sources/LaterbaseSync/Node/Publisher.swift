import LaterbaseCore
import Logging
import Synchronization
import ZeroMQ

/// The node's PUB socket: after each commit, one `[root, delta]` message per root the commit
/// changed, in commit order; and `[_rejected, …]` for refused ingest messages.
///
/// Deltas are sent from the writer thread (``publish(_:)`` is the writer's `onCommit`), so they
/// leave in commit order. Rejections come from the ingest thread; a lock hands the socket over
/// (ZeroMQ allows a socket to move between threads across a full memory barrier).
///
/// High-water mark: ``Options/highWaterMark`` messages per subscriber (default 10,000, i.e. at
/// least 10,000 commits of backlog). Beyond it ZeroMQ drops messages for that subscriber rather
/// than hold up the writer. A subscriber notices the loss because the next delta is not
/// contiguous with its vv, and catches up through the changes feed.
public final class Publisher: Sendable {
    public struct Options: Sendable {
        /// Messages queued per subscriber before ZeroMQ drops (never blocks the writer).
        public var highWaterMark: Int32 = 10_000
        public init() {}
    }

    private let socket: Mutex<ZMQSocket?>
    /// The endpoint subscribers connect to (with the port chosen, when `*` was asked for).
    public let endpoint: String
    private let metrics: SyncMetrics

    /// Binds the PUB socket.
    /// - Parameter zap: the node's ZAP handler: with credentials, only principals that may read
    ///   every root can subscribe, over CURVE.
    public init(context: ZMQContext, endpoint: String, zap: ZAPHandler, options: Options = Options(), metrics: SyncMetrics) throws(ZMQError) {
        let s = try context.socket(.pub)
        try s.setSendHighWaterMark(options.highWaterMark)
        try zap.protect(publish: s)
        try s.bind(endpoint)
        self.endpoint = s.lastEndpoint ?? endpoint
        self.socket = Mutex(s)
        self.metrics = metrics
    }

    /// Publishes a commit's changes: one message per root. Called on the writer thread.
    public func publish(_ changes: CommittedChanges) {
        // Encoded before taking the socket, so a rejection from the ingest thread never waits on it.
        let messages = changes.roots.filter { !$0.events.isEmpty }.map { change in
            (frames: [Array(change.root.utf8), Delta.encode(events: change.events, head: change.head)], events: change.events.count)
        }
        socket.withLock { s in
            guard let s else { return }
            for message in messages where (try? s.send(message.frames, wait: false)) == true {
                metrics.deltasPublished.increment()
                metrics.eventsPublished.increment(by: message.events)
            }
        }
    }

    /// Announces a refused ingest message under `_rejected`.
    public func announce(rejectionOf root: String, _ error: LaterbaseError, named: Rejection.Named) {
        let body = Rejection.encode(root: root, error: error, named: named)
        socket.withLock { s in
            _ = try? s?.send([Array(Rejection.topic.utf8), body], wait: false)
        }
        metrics.rejectionsPublished.increment()
    }

    /// Closes the socket; later publishes do nothing.
    public func close() {
        socket.withLock { s in
            s?.close()
            s = nil
        }
    }
}
