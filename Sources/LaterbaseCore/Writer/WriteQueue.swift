import Foundation

/// The bounded queue every producer feeds: HTTP, the ZeroMQ ingest and replication.
/// When it holds `capacity` events, a new batch is refused with `overloaded` (HTTP) or its
/// producer waits for room (the ZeroMQ ingest, which then stops reading its socket): either way
/// memory stays bounded.
final class WriteQueue: @unchecked Sendable {
    struct Item {
        let batch: PreparedBatch
        let enqueued: ContinuousClock.Instant
        /// Called on the writer thread once the batch is committed or refused.
        let complete: @Sendable (Result<WriteOutcome, LaterbaseError>) -> Void
    }

    private let condition = NSCondition()
    private var items: [Item] = []
    private var queuedEvents = 0
    private var queuedBytes = 0
    private var closed = false
    let capacity: Int
    let byteCapacity: Int

    /// - Parameters:
    ///   - capacity: most events queued.
    ///   - byteCapacity: most bytes queued (``PreparedBatch/bytes``), so a few huge events
    ///     cannot hold what a queue of small ones never would.
    init(capacity: Int, byteCapacity: Int = .max) {
        self.capacity = capacity
        self.byteCapacity = byteCapacity
    }

    /// Adds a batch, or says why not.
    /// - Parameter waitForRoom: wait while the queue is full instead of refusing with `overloaded`.
    /// - Returns: the refusal, if any, and whether the producer had to wait for room.
    func enqueue(_ item: Item, waitForRoom: Bool = false) -> (refusal: LaterbaseError?, waited: Bool) {
        condition.lock()
        defer { condition.unlock() }
        let n = item.batch.events.count, bytes = item.batch.bytes
        // An empty queue takes any one batch (its size is bounded by the body limit), so a
        // batch larger than a bound still goes through alone.
        func full() -> Bool { queuedEvents > 0 && (queuedEvents + n > capacity || queuedBytes + bytes > byteCapacity) }
        var waited = false
        while waitForRoom && !closed && full() {
            waited = true
            condition.wait()
        }
        if closed { return (LaterbaseError(.unavailable, "the store is shutting down"), waited) }
        if full() {
            return (LaterbaseError(.overloaded, "the write queue is full (\(capacity) events or \(byteCapacity >> 20) MiB); retry shortly"), waited)
        }
        items.append(item)
        queuedEvents += n
        queuedBytes += bytes
        condition.broadcast()  // the writer, and never only a producer waiting for room
        return (nil, waited)
    }

    /// Waits for work; takes up to `maxEvents` events' worth of batches (at least one batch),
    /// lingering up to `maxDelay` for more. Returns nil once closed and drained.
    func take(maxEvents: Int, maxDelay: Duration) -> [Item]? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !closed { condition.wait() }
        if items.isEmpty { return nil }
        if maxDelay > .zero && !closed && queuedEvents < maxEvents {
            let (s, a) = maxDelay.components
            let deadline = Date(timeIntervalSinceNow: Double(s) + Double(a) / 1e18)
            while queuedEvents < maxEvents && !closed && condition.wait(until: deadline) {}
        }
        var taken = 0, count = 0, bytes = 0
        while count < items.count && (count == 0 || taken + items[count].batch.events.count <= maxEvents) {
            taken += items[count].batch.events.count
            bytes += items[count].batch.bytes
            count += 1
        }
        let batch = Array(items.prefix(count))
        items.removeFirst(count)
        queuedEvents -= taken
        queuedBytes -= bytes
        condition.broadcast()  // producers waiting for room
        return batch
    }

    /// Stops taking batches; what is queued is still handed out.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    var depth: Int { load.events }

    /// Events and bytes (``PreparedBatch/bytes``) waiting.
    var load: (events: Int, bytes: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (queuedEvents, queuedBytes)
    }
}
