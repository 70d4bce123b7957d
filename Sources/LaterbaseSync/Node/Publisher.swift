import Blocking
import LaterbaseCore
import Logging
import Synchronization
import ZeroMQ

/// The node's PUB socket: after each commit, one `[root, delta]` message per root the commit
/// changed, in commit order; and `[_rejected, …]` for refused ingest messages.
///
/// ``publish(_:)`` is the writer's `onCommit`: it only hands the commit to the publisher's own
/// thread, which encodes the deltas and sends them in commit order, so encoding never holds up
/// the writer. Rejections come from the ingest thread; a lock hands the socket over (ZeroMQ
/// allows a socket to move between threads across a full memory barrier).
///
/// Hand-off bound: ``Options/maxPendingEvents`` events of commits not yet encoded. Beyond it the
/// oldest pending commits are dropped (`laterbase_deltas_dropped_total`), as ZeroMQ drops past
/// its high-water mark: subscribers see the gap and catch up through the feed.
///
/// High-water mark: ``Options/highWaterMark`` messages per subscriber (default 10,000, i.e. at
/// least 10,000 commits of backlog). Beyond it ZeroMQ drops messages for that subscriber rather
/// than hold up the writer. A subscriber notices the loss because the next delta is not
/// contiguous with its vv, and catches up through the changes feed.
public final class Publisher: Sendable {
    public struct Options: Sendable {
        /// Messages queued per subscriber before ZeroMQ drops (never blocks the writer).
        public var highWaterMark: Int32 = 10_000
        /// Events of commits waiting to be encoded before the oldest are dropped.
        public var maxPendingEvents: Int = 200_000
        public init() {}
    }

    private let socket: Mutex<ZMQSocket?>
    /// The endpoint subscribers connect to (with the port chosen, when `*` was asked for).
    public let endpoint: String
    private let metrics: SyncMetrics
    private let outbox: WorkQueue<CommittedChanges>
    private let thread = SocketThread(name: "laterbase-publish")

    /// Binds the PUB socket; its thread starts with ``start()``.
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
        let outbox = WorkQueue<CommittedChanges>(
            limit: .init(weight: options.maxPendingEvents, bytes: .max), weigh: { .init(weight: $0.eventCount) },
            whenFull: .dropOldest { dropped in metrics.deltasDropped.increment(by: dropped.roots.count) })
        self.outbox = outbox
    }

    /// Starts the publishing thread, once. Commits published before it starts wait for it.
    public func start() {
        let outbox = self.outbox
        thread.start { [self] in
            while let commits = outbox.take() {
                for changes in commits { send(changes) }
            }
        }
    }

    /// Publishes a commit's changes: one message per root. Called on the writer's acknowledging
    /// thread once the commit is durable; returns at once, the publisher's thread encodes and sends.
    public func publish(_ changes: CommittedChanges) {
        try? outbox.put(changes)  // refused only once closed: nothing is published after close()
    }

    private func send(_ changes: CommittedChanges) {
        // Encoded before taking the socket, so a rejection from the ingest thread never waits on it.
        let messages = changes.roots.filter { !$0.events.isEmpty }.flatMap { change in
            Delta.encode(events: change.events, previous: change.previous).map { [Array(change.root.utf8), $0] }
        }
        let events = changes.eventCount
        socket.withLock { s in
            guard let s else { return }
            var sent = 0
            for frames in messages where (try? s.send(frames, wait: false)) == true {
                metrics.deltasPublished.increment()
                sent += 1
            }
            if sent == messages.count { metrics.eventsPublished.increment(by: events) }
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

    /// Sends what is pending, then closes the socket; later publishes do nothing.
    public func close() async {
        outbox.close()
        await thread.stop()
        socket.withLock { s in
            s?.close()
            s = nil
        }
    }

    /// Closes the socket of a publisher that never started (a node whose `init` failed after
    /// making it), at once.
    @available(*, noasync, message: "for a publisher that never started; await close() otherwise")
    public func discard() {
        outbox.close()
        guard !thread.stop() else { return }
        socket.withLock { s in
            s?.close()
            s = nil
        }
    }

    /// Why the publishing thread ended without being asked to, or nil (for `/healthz`).
    public var failure: String? { thread.failure }
}

extension CommittedChanges {
    var eventCount: Int { roots.reduce(0) { $0 + $1.events.count } }
}
