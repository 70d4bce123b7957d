import LMDB

/// An aggregate folded up to a position, kept decoded between commits.
final class FoldedAggregate {
    let accumulator: any Accumulator
    var count: UInt64
    var time: Int64
    var hlc: HLC
    var position: FoldPosition?

    init(accumulator: any Accumulator, snapshot: AggregateSnapshot?) {
        self.accumulator = accumulator
        count = snapshot?.count ?? 0
        time = snapshot?.time ?? 0
        hlc = snapshot?.hlc ?? HLC(rawValue: 0)
        position = snapshot?.position
    }

    func apply(_ event: RecordedEvent, _ decoded: any Sendable, at position: FoldPosition? = nil) {
        accumulator.apply(decoded, event.foldContext)
        count += 1
        time = event.time
        hlc = max(hlc, event.hlc)
        self.position = position ?? FoldPosition(event)
    }

    func snapshot() throws -> AggregateSnapshot? {
        guard let position else { return nil }
        return AggregateSnapshot(count: count, time: time, hlc: hlc, position: position, state: try accumulator.encoded())
    }
}

/// Decoded aggregates the writer folded lately, so a hot aggregate is not decoded on every
/// commit. Bounded; emptied whenever a transaction fails, since it may hold uncommitted folds.
final class AggregateCache {
    private var roots: [String: [ByteString: FoldedAggregate]] = [:]
    private var count = 0
    private let capacity: Int

    init(capacity: Int = 50_000) { self.capacity = capacity }

    subscript(root: String, aggregate: String) -> FoldedAggregate? {
        get { roots[root]?[ByteString(aggregate)] }
        set {
            let key = ByteString(aggregate)
            if roots[root]?[key] == nil {
                if count >= capacity { removeAll() }
                count += 1
            }
            roots[root, default: [:]][key] = newValue
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
        // aggregate, in the order written. Keyed by bytes: ids that differ in any byte are
        // different aggregates (see ByteString).
        var first: [ByteString: Int] = [:]
        var last: [ByteString: Int] = [:]
        var next = [Int](repeating: -1, count: added.count)
        for (i, item) in added.enumerated() {
            let key = ByteString(item.event.aggregate)
            if let previous = last.updateValue(i, forKey: key) {
                next[previous] = i
            } else {
                first[key] = i
            }
        }
        let every = store.options.checkpointEvery
        for (key, head) in first {
            let aggregate = key.string
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
                folded = try refold(aggregate, from: items[0].position, root: r, newlyDecoded: items, txn)
                cached = false
            } else {
                for item in items {
                    folded.apply(item.event, item.decoded, at: item.position)
                    if folded.count % every == 0 { try writeCheckpoint(folded, aggregate, r, txn) }
                }
            }
            if let snapshot = try folded.snapshot() {
                try txn.put(r.aggs, Array(aggregate.utf8), snapshot.encoded())
            }
            if !cached { cache[r.definition.name, aggregate] = folded }
        }
    }

    /// The aggregate as folded so far, and whether it came from the cache.
    private func cachedOrStored(_ aggregate: String, root r: RootDatabases, _ txn: borrowing WriteTransaction) throws -> (FoldedAggregate, Bool) {
        if let hit = cache[r.definition.name, aggregate] { return (hit, true) }
        let snapshot = try txn.get(r.aggs, Array(aggregate.utf8)).map { (v) throws(LMDBError) in try AggregateSnapshot(v) }
        return (FoldedAggregate(accumulator: try r.definition.fold.accumulator(state: snapshot?.state), snapshot: snapshot), false)
    }

    /// Refolds from the last checkpoint before `first`: drops the checkpoints after it and
    /// writes them anew as the fold passes.
    private func refold(
        _ aggregate: String, from first: FoldPosition, root r: RootDatabases,
        newlyDecoded: [Added], _ txn: borrowing WriteTransaction
    ) throws -> FoldedAggregate {
        let firstKey = first.key(aggregate: aggregate)
        let start = try r.checkpoint(aggregate, before: firstKey, in: txn)
        let folded = FoldedAggregate(accumulator: try r.definition.fold.accumulator(state: start?.state), snapshot: start)
        // Drop every checkpoint after the start.
        let prefix = Keys.aggregatePrefix(aggregate)
        var stale: [[UInt8]] = []
        try txn.withCursor(r.checkpoints) { (c) throws(LMDBError) in
            var entry = try c.seek(atOrAfter: start.map { $0.position.key(aggregate: aggregate) + [0] } ?? prefix)
            while let e = entry, e.key.starts(with: prefix) {
                stale.append(Array(e.key))
                entry = try c.next()
            }
        }
        for key in stale { try txn.delete(r.checkpoints, key) }

        var fresh: [Dot: any Sendable] = [:]
        for item in newlyDecoded { fresh[item.event.dot] = item.decoded }
        let every = store.options.checkpointEvery
        var failure: (any Error)? = nil
        try r.replay(aggregate, after: start?.position, in: txn) { (e) throws(LMDBError) in
            if let decoded = fresh[e.dot] { folded.apply(e, decoded) } else { folded.apply(e, try r.decodeForFold(e)) }
            if folded.count % every == 0 {
                do { try writeCheckpoint(folded, aggregate, r, txn) } catch let error as LMDBError { throw error } catch { failure = error }
            }
        }
        if let failure { throw failure }
        return folded
    }

    private func writeCheckpoint(_ folded: FoldedAggregate, _ aggregate: String, _ r: RootDatabases, _ txn: borrowing WriteTransaction) throws {
        guard let snapshot = try folded.snapshot() else { return }
        try txn.put(r.checkpoints, snapshot.position.key(aggregate: aggregate), snapshot.encoded())
    }
}
