import Foundation

/// The bounded queue every producer feeds (HTTP today; ZeroMQ ingest and replication next).
/// When it holds `capacity` events, new batches are refused with `overloaded` rather than held
/// in memory.
final class WriteQueue: @unchecked Sendable {
    struct Item {
        let batch: PreparedBatch
        let enqueued: ContinuousClock.Instant
        let continuation: CheckedContinuation<Result<WriteOutcome, LaterbaseError>, Never>
    }

    private let condition = NSCondition()
    private var items: [Item] = []
    private var queuedEvents = 0
    private var closed = false
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    /// Adds a batch, or says why not.
    func enqueue(_ item: Item) -> LaterbaseError? {
        condition.lock()
        defer { condition.unlock() }
        if closed { return LaterbaseError(.unavailable, "the store is shutting down") }
        let n = item.batch.events.count
        if queuedEvents > 0 && queuedEvents + n > capacity {
            return LaterbaseError(.overloaded, "the write queue is full (\(capacity) events); retry shortly")
        }
        items.append(item)
        queuedEvents += n
        condition.signal()
        return nil
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
        var taken = 0, count = 0
        while count < items.count && (count == 0 || taken + items[count].batch.events.count <= maxEvents) {
            taken += items[count].batch.events.count
            count += 1
        }
        let batch = Array(items.prefix(count))
        items.removeFirst(count)
        queuedEvents -= taken
        return batch
    }

    /// Stops taking batches; what is queued is still handed out.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    var depth: Int {
        condition.lock()
        defer { condition.unlock() }
        return queuedEvents
    }
}
