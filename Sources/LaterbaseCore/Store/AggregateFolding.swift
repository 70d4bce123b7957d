import LMDB

/// Where an aggregate's events stand in fold order: the `agg` index holds them all but the
/// latest few, which the aggregate's own record keeps (its tail) until there are
/// ``AggregateTail/limit`` of them; then they go to the index together, as one contiguous run.
///
/// Why: the index is keyed by aggregate first, so writing each event's entry as it comes
/// scatters one random insert, and one dirtied 4 KiB page, per event across the tree. The tail
/// rides along in the aggregate record that every commit rewrites anyway. Every tail position
/// sorts after every indexed one, so a replay reads the index, then the tail.
enum AggregateTail {
    static let limit = 16
}

/// An aggregate folded up to a position, kept decoded between commits.
final class FoldedAggregate {
    let accumulator: any Accumulator
    var count: UInt64
    var time: Int64
    var hlc: HLC
    var position: FoldPosition?
    /// Positions not yet in the `agg` index, in fold order.
    var tail: [FoldPosition]

    init(accumulator: any Accumulator, snapshot: AggregateSnapshot?) {
        self.accumulator = accumulator
        count = snapshot?.count ?? 0
        time = snapshot?.time ?? 0
        hlc = snapshot?.hlc ?? HLC(rawValue: 0)
        position = snapshot?.position
        tail = snapshot?.tail ?? []
    }

    func apply(_ event: RecordedEvent, _ decoded: any Sendable, at position: FoldPosition? = nil) {
        accumulator.apply(decoded, event.foldContext)
        count += 1
        time = event.time
        hlc = max(hlc, event.hlc)
        self.position = position ?? FoldPosition(event)
    }

    /// The record for `aggs`, tail included.
    var snapshot: AggregateSnapshot? {
        position.map { AggregateSnapshot(count: count, time: time, hlc: hlc, position: $0, state: accumulator.encoded(), tail: tail) }
    }

    /// Places a new event's position in fold order: in the tail when it sorts after the tail's
    /// first entry (or after everything when the tail is empty), else straight into the index.
    func place(_ position: FoldPosition, aggregate: String, root r: RootDatabases, _ txn: borrowing WriteTransaction) throws {
        let afterIndexed = tail.first.map { $0 < position } ?? (self.position.map { $0 < position } ?? true)
        guard afterIndexed else {
            try txn.put(r.agg, position.key(aggregate: aggregate), [])
            return
        }
        let at = tail.lastIndex(where: { $0 < position }).map { $0 + 1 } ?? 0
        tail.insert(position, at: at)
        if tail.count >= AggregateTail.limit {
            for p in tail { try txn.put(r.agg, p.key(aggregate: aggregate), []) }
            tail.removeAll(keepingCapacity: true)
        }
    }
}

/// Decoded aggregates the writer folded lately, so a hot aggregate is not decoded on every
/// commit. Bounded; emptied whenever a transaction fails, since it may hold uncommitted folds.
final class AggregateCache {
    private var roots: [String: [String: FoldedAggregate]] = [:]
    private var count = 0
    private let capacity: Int

    init(capacity: Int = 50_000) { self.capacity = capacity }

    subscript(root: String, aggregate: String) -> FoldedAggregate? {
        get { roots[root]?[aggregate] }
        set {
            if roots[root]?[aggregate] == nil {
                if count >= capacity { removeAll() }
                count += 1
            }
            roots[root, default: [:]][aggregate] = newValue
        }
    }

    func removeAll() {
        roots.removeAll()
        count = 0
    }
}

extension StoreWriter {
    /// Folds a commit's new events into their aggregates. Events after an aggregate's folded
    /// position fold on top; a back-dated one refolds from the nearest earlier checkpoint.
    /// Checkpoints are kept every `checkpointEvery` events.
    func fold(_ added: [Added], root r: RootDatabases, _ txn: borrowing WriteTransaction) throws {
        // Group by aggregate without an array per aggregate: each event links to the next of its
        // aggregate, in the order written.
        var first: [String: Int] = [:]
        var last: [String: Int] = [:]
        var next = [Int](repeating: -1, count: added.count)
        for (i, item) in added.enumerated() {
            if let previous = last.updateValue(i, forKey: item.event.aggregate) {
                next[previous] = i
            } else {
                first[item.event.aggregate] = i
            }
        }
        let every = store.options.checkpointEvery
        for (aggregate, head) in first {
            var items: [Added] = []
            var inOrder = true
            var i = head
            while i >= 0 {
                if let previous = items.last, added[i].position < previous.position { inOrder = false }
                items.append(added[i])
                i = next[i]
            }
            if !inOrder { items.sort { $0.position < $1.position } }
            var (folded, cached) = try cachedOrStored(aggregate, root: r, txn)
            if let at = folded.position, items[0].position < at {
                for item in items { try folded.place(item.position, aggregate: aggregate, root: r, txn) }
                folded = try refold(aggregate, from: items[0].position, tail: folded.tail, root: r, newlyDecoded: items, txn)
                cached = false
            } else {
                for item in items {
                    try folded.place(item.position, aggregate: aggregate, root: r, txn)
                    folded.apply(item.event, item.decoded, at: item.position)
                    if folded.count % every == 0 { try writeCheckpoint(folded, aggregate, r, txn) }
                }
            }
            if let snapshot = folded.snapshot {
                try txn.put(r.aggs, Array(aggregate.utf8), snapshot.encoded())
            }
            if !cached { cacheSet(r.definition.name, aggregate, folded) }
        }
    }

    /// The aggregate as folded so far, and whether it came from the cache.
    private func cachedOrStored(_ aggregate: String, root r: RootDatabases, _ txn: borrowing WriteTransaction) throws -> (FoldedAggregate, Bool) {
        if let hit = cacheGet(r.definition.name, aggregate) { return (hit, true) }
        let snapshot = try txn.get(r.aggs, Array(aggregate.utf8)).map { AggregateSnapshot($0) }
        return (FoldedAggregate(accumulator: try r.definition.fold.accumulator(state: snapshot?.state), snapshot: snapshot), false)
    }

    /// Refolds from the last checkpoint before `first`: drops the checkpoints after it and
    /// writes them anew as the fold passes.
    private func refold(
        _ aggregate: String, from first: FoldPosition, tail: [FoldPosition], root r: RootDatabases,
        newlyDecoded: [Added], _ txn: borrowing WriteTransaction
    ) throws -> FoldedAggregate {
        let firstKey = first.key(aggregate: aggregate)
        let start = r.checkpoint(aggregate, before: firstKey, in: txn)
        let folded = FoldedAggregate(accumulator: try r.definition.fold.accumulator(state: start?.state), snapshot: start)
        folded.tail = tail
        // Drop every checkpoint after the start.
        let prefix = Keys.aggregatePrefix(aggregate)
        var stale: [[UInt8]] = []
        txn.withCursor(r.checkpoints) { c in
            var entry = c.seek(atOrAfter: start.map { $0.position.key(aggregate: aggregate) + [0] } ?? prefix)
            while let e = entry, e.key.starts(with: prefix) {
                stale.append(Array(e.key))
                entry = c.next()
            }
        }
        for key in stale { try txn.delete(r.checkpoints, key) }

        var fresh: [Dot: any Sendable] = [:]
        for item in newlyDecoded { fresh[item.event.dot] = item.decoded }
        let every = store.options.checkpointEvery
        var failure: (any Error)? = nil
        try r.replay(aggregate, after: start?.position, tail: tail, in: txn) { (e) throws(LMDBError) in
            guard let decoded = fresh[e.dot] ?? r.decodeForFold(e) else { return }
            folded.apply(e, decoded)
            if folded.count % every == 0 {
                do { try writeCheckpoint(folded, aggregate, r, txn) } catch let error as LMDBError { throw error } catch { failure = error }
            }
        }
        if let failure { throw failure }
        return folded
    }

    private func writeCheckpoint(_ folded: FoldedAggregate, _ aggregate: String, _ r: RootDatabases, _ txn: borrowing WriteTransaction) throws {
        guard var snapshot = folded.snapshot else { return }
        snapshot.tail = []
        try txn.put(r.checkpoints, snapshot.position.key(aggregate: aggregate), snapshot.encoded())
    }
}
