import Blocking
import Foundation
import Logging
import Synchronization

/// The single writer: one thread that drains the write queue, writes what it took in one LMDB
/// transaction and commits it, then hands the commit to the acknowledging thread and goes on
/// with the next.
///
/// A durable LMDB commit syncs twice: the data pages, then the meta page that points at them.
/// The writer's commit does the first. The second needs no sync of its own while the writer is
/// busy: commit N's meta page is written before commit N+1's data sync, which makes it durable
/// too. So the acknowledging thread waits for the next commit when one is coming (the writer is
/// in a transaction or work is queued) and syncs itself only when the writer has gone idle: under
/// load, one sync per commit. Then it marks the commits durable, and only then publishes them
/// (`onCommit`) and releases their callers, in commit order. Readers never see a commit before it
/// is durable (``LMDB/Environment/Options/deferMetaSync``). The callers' bookkeeping is freed off
/// the writer's thread.
///
/// LMDB write transactions belong to one OS thread, so the writer owns a `Thread` rather than
/// running on the cooperative pool; nothing awaits while a transaction is open.
public final class Writer: Sendable {
    /// Group-commit settings.
    public struct Options: Sendable {
        /// Most events one transaction takes.
        public var maxTransactionEvents: Int = 20_000
        /// How long the writer lingers for more work once it has some (0: take what is queued).
        public var maxDelay: Duration = .zero
        /// Most events waiting in the queue before writes are refused with `overloaded`.
        public var queueCapacity: Int = 40_000
        /// Most bytes (``PreparedBatch/bytes``) waiting in the queue, likewise.
        public var queueCapacityBytes: Int = 256 << 20
        public init() {}
    }

    public let store: EventStore
    /// The bounded queue every producer feeds: HTTP, the ZeroMQ ingest and replication. When it
    /// holds ``Options/queueCapacity`` events (or bytes), a new batch is refused with
    /// `overloaded` (HTTP) or its producer waits for room (the ZeroMQ ingest, which then stops
    /// reading its socket): either way memory stays bounded.
    private let queue: WorkQueue<QueuedBatch>
    private let options: Options
    private let metrics: StoreMetrics
    private let onCommit: @Sendable (CommittedChanges) -> Void
    private let lifecycle = Mutex(Lifecycle.idle(readyWaiters: []))
    private let logger: Logger
    /// Commits waiting for the acknowledging thread.
    private let acknowledgements = WorkQueue<Acknowledgement>()
    /// What the writer's own data syncs have made durable (``CommitCoverage``). A thread lock, not
    /// a continuation: the one wait on it is the acknowledging thread's own, with a deadline of a
    /// few syncs (``coveredByNextCommit(_:)``), never on the cooperative pool.
    private let coverage = ThreadLock(CommitCoverage())

    /// Where the writer is in its one life. Those who wait for it to be ready or to finish are
    /// continuations, resumed outside the lock.
    private enum Lifecycle {
        case idle(readyWaiters: [CheckedContinuation<Void, Never>])
        /// The threads run; `ready` once the heads are read and what a newer schema knows is
        /// folded (or the writer failed to start and refuses every write).
        case running(ready: Bool, readyWaiters: [CheckedContinuation<Void, Never>], endWaiters: [CheckedContinuation<Void, Never>])
        /// Everything queued was written and acknowledged; the threads have ended.
        case finished
    }

    /// A batch waiting for the writer.
    struct QueuedBatch {
        let batch: PreparedBatch
        let enqueued: ContinuousClock.Instant
        /// Called on the writer thread once the batch is committed or refused.
        let complete: @Sendable (Result<WriteOutcome, LaterbaseError>) -> Void
    }

    /// A commit on its way to being acknowledged.
    private struct Acknowledgement {
        let items: [QueuedBatch]
        let results: [Result<WriteOutcome, LaterbaseError>]
        let changes: CommittedChanges
        /// What the transaction held, freed with the commit.
        let spent: Any
        /// The LMDB transaction to make durable; nil when nothing was committed.
        let id: Int?
    }

    /// - Parameters:
    ///   - store: the store it writes to; nothing else may write to it.
    ///   - options: batch and queue limits.
    ///   - metrics: where it reports.
    ///   - onCommit: called on the acknowledging thread once each commit is durable, in commit
    ///     order, before its callers are released, with what it added (the seam for publishing
    ///     deltas). Must not block for long.
    public init(
        store: EventStore, options: Options = Options(), metrics: StoreMetrics = StoreMetrics(),
        logger: Logger = Logger(label: "laterbase.writer"), onCommit: @escaping @Sendable (CommittedChanges) -> Void = { _ in }
    ) {
        self.store = store
        self.options = options
        self.queue = WorkQueue(limit: .init(weight: options.queueCapacity, bytes: options.queueCapacityBytes)) {
            .init(weight: $0.batch.events.count, bytes: $0.batch.bytes)
        }
        self.metrics = metrics
        self.onCommit = onCommit
        self.logger = logger
    }

    /// Starts the writer's threads, once, and returns at once: writes queue until the writer is
    /// ready (``ready()``).
    public func start() {
        let starts = lifecycle.withLock { state -> Bool in
            guard case .idle(let waiters) = state else { return false }
            state = .running(ready: false, readyWaiters: waiters, endWaiters: [])
            return true
        }
        guard starts else { return }
        let thread = Thread { [self] in self.loop() }
        thread.name = "laterbase-writer"
        thread.start()
    }

    /// Returns once the writer has read the heads and folded the stored events a newer schema
    /// knows now (see ``StoreWriter/foldNowKnown()``), so that reads from then on see them
    /// folded; at once if it has finished. Waits for ``start()`` if it was not called yet.
    public func ready() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let now = lifecycle.withLock { state -> Bool in
                switch state {
                case .idle(var waiters):
                    waiters.append(waiter)
                    state = .idle(readyWaiters: waiters)
                    return false
                case .running(false, var waiters, let end):
                    waiters.append(waiter)
                    state = .running(ready: false, readyWaiters: waiters, endWaiters: end)
                    return false
                case .running(true, _, _), .finished:
                    return true
                }
            }
            if now { waiter.resume() }
        }
    }

    /// Whether ``ready()`` would return at once.
    package var isReady: Bool {
        lifecycle.withLock { state -> Bool in
            switch state {
            case .running(let ready, _, _): ready
            case .finished: true
            case .idle: false
            }
        }
    }

    private func becomeReady() {
        let waiters = lifecycle.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard case .running(false, let waiters, let end) = state else { return [] }
            state = .running(ready: true, readyWaiters: [], endWaiters: end)
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Whether the writer thread is running.
    public var isAlive: Bool {
        lifecycle.withLock { state -> Bool in
            if case .running = state { true } else { false }
        }
    }

    /// Events waiting in the queue for the writer.
    public var queuedEvents: Int { queue.load.weight }

    /// Writes a batch atomically and durably.
    /// - Returns: once the batch is committed and fsync'd, what was stored.
    /// - Throws: the batch's refusal (`gap`, `conflict`, `invalid_event`), `overloaded` when the
    ///   queue is full, `storage_full`, or `unavailable` after shutdown began.
    public func write(_ batch: PreparedBatch) async throws(LaterbaseError) -> WriteOutcome {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<WriteOutcome, LaterbaseError>, Never>) in
            submit(batch) { c.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Queues a batch without waiting for it to be written.
    /// - Parameter completion: called once with the outcome: on the writer thread after the
    ///   commit, or at once on the caller's thread when the batch is refused before queueing
    ///   (`overloaded` when the queue is full, `unavailable` after shutdown began).
    public func submit(_ batch: PreparedBatch, completion: @escaping @Sendable (Result<WriteOutcome, LaterbaseError>) -> Void) {
        do {
            try queue.put(QueuedBatch(batch: batch, enqueued: .now, complete: completion))
        } catch {
            completion(.failure(refusal(error)))
        }
    }

    /// Queues a batch, blocking this thread while the queue is full (backpressure): for a
    /// producer on a thread of its own (the ZeroMQ ingest, a peer link), which then stops reading
    /// its socket.
    /// - Parameter completion: as ``submit(_:completion:)``'s.
    /// - Returns: whether the caller had to wait for room.
    @available(*, noasync, message: "blocks while the write queue is full; async code calls write(_:) or submit(_:completion:)")
    @discardableResult
    public func submitWaitingForRoom(_ batch: PreparedBatch, completion: @escaping @Sendable (Result<WriteOutcome, LaterbaseError>) -> Void) -> Bool {
        do {
            return try queue.putWaitingForRoom(QueuedBatch(batch: batch, enqueued: .now, complete: completion))
        } catch {
            completion(.failure(refusal(error)))
            return false
        }
    }

    private func refusal(_ refusal: WorkQueue<QueuedBatch>.Refusal) -> LaterbaseError {
        switch refusal {
        case .closed: LaterbaseError(.unavailable, "the store is shutting down")
        case .full:
            LaterbaseError(
                .overloaded, "the write queue is full (\(options.queueCapacity) events or \(options.queueCapacityBytes >> 20) MiB); retry shortly")
        }
    }

    /// Stops taking writes, writes everything queued, and returns once it is all acknowledged
    /// and the writer's threads have ended (at once if it never started).
    public func shutdown() async {
        queue.close()
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let resume = lifecycle.withLock { state -> [CheckedContinuation<Void, Never>] in
                switch state {
                case .running(let ready, let waiters, var end):
                    end.append(waiter)
                    state = .running(ready: ready, readyWaiters: waiters, endWaiters: end)
                    return []
                case .idle(let waiters):
                    // Never started: it never will; whoever awaits ready() goes on.
                    state = .finished
                    return waiters + [waiter]
                case .finished:
                    return [waiter]
                }
            }
            for w in resume { w.resume() }
        }
    }

    /// The writer's thread: the acknowledging thread beside it, then writes until the queue is
    /// closed and empty. The acknowledging thread ends the life (``acknowledge()``).
    private func loop() {
        let acknowledger = Thread { [self] in self.acknowledge() }
        acknowledger.name = "laterbase-ack"
        acknowledger.start()
        drain()
        acknowledgements.close()
    }

    /// Writes until the queue is closed and empty. Everything it holds of the store is released
    /// when it returns, so the store can close.
    private func drain() {
        let writer: StoreWriter
        do {
            writer = try StoreWriter(store: store, metrics: metrics)
        } catch {
            // The store cannot be read (e.g. a corrupt head): refuse every write rather than
            // guess the heads and fork an origin. /healthz says 503 once this returns.
            logger.critical("writer cannot start: the store's heads are unreadable", metadata: ["error": "\(error)"])
            becomeReady()
            queue.close()
            let refusal = LaterbaseError(.unavailable, "the writer could not start: \(error)")
            while let items = queue.take(maxWeight: options.maxTransactionEvents) {
                for item in items { item.complete(.failure(refusal)) }
            }
            return
        }
        logger.info("writer started", metadata: ["replica": "\(store.replicaID)"])
        // Events a schema refused when they came (from a peer or an admin): those this
        // node's schema knows now fold in their places before any new batch.
        do {
            for (root, folded, unfolded) in try writer.foldNowKnown() {
                logger.notice(
                    "events kept unfolded", metadata: ["root": "\(root)", "folded_now": "\(folded)", "still_unfolded": "\(unfolded)"])
            }
        } catch {
            logger.error("folding the events a newer schema knows failed; they stay unfolded", metadata: ["error": "\(error)"])
        }
        becomeReady()
        while let items = queue.take(maxWeight: options.maxTransactionEvents, linger: options.maxDelay) {
            coverage.change { $0.began() }
            let started = ContinuousClock.now
            for item in items { metrics.queueWait.record(duration: started - item.enqueued) }
            let (results, changes, spent, commit) = writer.write(items.map(\.batch))
            coverage.change { $0.ended(commit: commit) }
            let elapsed = ContinuousClock.now - started
            metrics.commitLatency.record(duration: elapsed)
            metrics.commits.increment()
            var written = 0
            for (item, result) in zip(items, results) {
                if case .success(let outcome) = result, outcome.created {
                    metrics.batchesWritten.increment()
                    metrics.batchSize.record(item.batch.events.count)
                }
            }
            for change in changes.roots { written += change.events.count }
            metrics.eventsWritten.increment(by: written)
            metrics.commitEvents.record(written)
            let load = queue.load
            metrics.queueDepth.record(load.weight)
            metrics.queueBytes.record(load.bytes)
            // Never refused: the acknowledgements are unbounded and closed only after this loop.
            try? acknowledgements.put(Acknowledgement(items: items, results: results, changes: changes, spent: spent, id: commit))
        }
    }

    /// Waits while a commit that will cover `id`'s meta page is coming: the writer is in a
    /// transaction or has work queued. Returns whether one did; false once the writer is idle
    /// without having covered it, or after ``coverWait`` (a large commit under way would hold
    /// the acknowledgements longer than a sync of their own): then the caller syncs.
    private func coveredByNextCommit(_ id: Int) -> Bool {
        let queue = self.queue
        var decision = CommitCoverage.Decision.wait
        coverage.wait(
            until: { coverage in
                decision = coverage.decide(for: id, workQueued: queue.load.weight > 0, waitedEnough: false)
                return decision != .wait
            }, deadline: .now + Self.coverWait
        ) { coverage, ready in
            if !ready { decision = coverage.decide(for: id, workQueued: true, waitedEnough: true) }
        }
        return decision == .covered
    }

    /// How long acknowledgements wait for the next commit to cover them: a few syncs.
    static let coverWait = Duration.milliseconds(5)

    /// The acknowledging thread: makes commits durable (one sync for all waiting), then
    /// publishes them and releases their callers in commit order. What they held (the batches'
    /// parsed JSON, the commit's bookkeeping) is freed here, not on the writer's thread.
    private func acknowledge() {
        let env = store.env
        while let commits = acknowledgements.take() {
            var failure: LaterbaseError? = nil
            if env.defersMetaSync, let last = commits.lazy.compactMap(\.id).max() {
                do {
                    if coveredByNextCommit(last) {
                        metrics.metaSyncsCovered.increment()
                    } else {
                        metrics.metaSyncs.increment()
                        try env.sync()
                    }
                    env.markDurable(through: last)
                } catch {
                    // Whether these commits reached the disk is unknown: nothing newer is shown,
                    // and their callers hear the storage error (a retry by id is safe).
                    env.durabilityFailed()
                    logger.critical("sync failed: commits not acknowledged", metadata: ["error": "\(error)"])
                    failure = LaterbaseError(storage: error, "syncing")
                }
            }
            for commit in commits {
                if failure == nil, !commit.changes.roots.isEmpty { onCommit(commit.changes) }
                for (item, result) in zip(commit.items, commit.results) {
                    item.complete(failure.map { f in result.flatMap { _ in .failure(f) } } ?? result)
                }
            }
        }
        // Every commit is acknowledged and the writer's thread has closed the handoff: it is done.
        logger.info("writer stopped: queue drained")
        let waiters = lifecycle.withLock { state -> [CheckedContinuation<Void, Never>] in
            defer { state = .finished }
            if case .running(_, let ready, let end) = state { return ready + end }
            return []
        }
        for waiter in waiters { waiter.resume() }
    }
}
