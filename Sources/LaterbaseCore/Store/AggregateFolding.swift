import LMDB

/// An aggregate folded up to a position, kept decoded between commits.
final class FoldedAggregate {
    let accumulator: any Accumulator
    var count: UInt64
    var time: Int64
    var hlc: HLC
    var position: FoldPosition?
    /// The aggregate's last recorded event on this node: the head of its chain.
    var last: Dot?
    /// The positions of its latest recorded events not in the `agg` index yet, oldest first.
    var tail: [FoldPosition] = []

    init(accumulator: any Accumulator, snapshot: AggregateSnapshot?) {
        self.accumulator = accumulator
        count = snapshot?.count ?? 0
        time = snapshot?.time ?? 0
        hlc = snapshot?.hlc ?? HLC(rawValue: 0)
        position = snapshot?.position
        last = snapshot?.last
    }

    func apply(_ event: borrowing RecordedEvent, _ decoded: any Sendable, at position: FoldPosition? = nil) {
        accumulator.apply(decoded, of: event)
        count += 1
        time = event.time
        hlc = max(hlc, event.hlc)
        self.position = position ?? FoldPosition(copy event)
    }

    /// - Parameter chain: with the tail and the last event (the `aggs` record), or without (a checkpoint).
    func snapshot(chain: Bool) throws -> AggregateSnapshot? {
        guard let position else { return nil }
        return AggregateSnapshot(
            count: count, time: time, hlc: hlc, position: position, state: try accumulator.encoded(),
            tail: chain ? tail.count : 0, last: chain ? last : nil)
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

/// One aggregate a transaction touches: its fold and the new events for it, in the order written.
final class TouchedAggregate {
    let folded: FoldedAggregate
    /// Whether `folded` came from the cache (otherwise it is cached after the commit's fold).
    let cached: Bool
    var added: [StoreWriter.Added] = []

    init(_ folded: FoldedAggregate, cached: Bool) {
        self.folded = folded
        self.cached = cached
    }
}

extension StoreWriter {
    /// The aggregate as folded so far, from this transaction, the cache or the store.
    func touch(_ aggregate: String, root r: RootDatabases, _ touched: inout [ByteString: TouchedAggregate], _ txn: borrowing WriteTransaction) throws -> TouchedAggregate {
        let key = ByteString(aggregate)
        if let t = touched[key] { return t }
        let t: TouchedAggregate
        if let hit = cache[r.definition.name, aggregate] {
            t = TouchedAggregate(hit, cached: true)
        } else {
            let snapshot = try txn.get(r.aggs, Array(aggregate.utf8)).map { (v) throws(LMDBError) in try AggregateSnapshot(v) }
            let folded = FoldedAggregate(accumulator: try r.definition.fold.accumulator(state: snapshot?.state), snapshot: snapshot)
            if let snapshot, snapshot.tail > 0 {
                folded.tail = try r.chain(from: snapshot.last, count: snapshot.tail, in: txn).reversed()
            }
            t = TouchedAggregate(folded, cached: false)
        }
        touched[key] = t
        return t
    }

    /// Folds a commit's new events into their aggregates. Events after an aggregate's folded
    /// position fold on top; a back-dated one refolds from the nearest earlier checkpoint.
    /// Checkpoints are kept every `checkpointEvery` events; a tail of `indexEvery` events goes
    /// into the `agg` index in one run.
    func fold(_ touched: [ByteString: TouchedAggregate], root r: RootDatabases, _ txn: borrowing WriteTransaction) throws {
        let every = store.options.checkpointEvery
        for (key, t) in touched {
            let aggregate = key.string
            var items = t.added
            var folded = t.folded
            var cached = t.cached
            var inOrder = true
            for (a, b) in zip(items, items.dropFirst()) where b.position < a.position {
                inOrder = false
                break
            }
            if !inOrder { items.sort { $0.position < $1.position } }
            if let at = folded.position, items[0].position < at {
                let fresh = try refold(aggregate, from: items[0].position, root: r, tail: folded.tail, newlyDecoded: items, txn)
                fresh.last = folded.last
                fresh.tail = folded.tail
                folded = fresh
                cached = false
            } else {
                for item in items {
                    folded.apply(item.event, item.decoded, at: item.position)
                    if folded.count % every == 0 { try writeCheckpoint(folded, aggregate, r, txn) }
                }
            }
            if folded.tail.count >= StoreWriter.indexEvery {
                var keys = folded.tail.map { $0.key(aggregate: aggregate) }
                keys.sort { $0.lexicographicallyPrecedes($1) }
                for k in keys { try txn.put(r.agg, k, []) }
                folded.tail.removeAll(keepingCapacity: true)
            }
            if let snapshot = try folded.snapshot(chain: true) {
                try txn.put(r.aggs, Array(aggregate.utf8), snapshot.encoded())
            }
            if !cached { cache[r.definition.name, aggregate] = folded }
        }
    }

    /// Refolds from the last checkpoint before `first`: drops the checkpoints after it and
    /// writes them anew as the fold passes.
    private func refold(
        _ aggregate: String, from first: FoldPosition, root r: RootDatabases, tail: [FoldPosition],
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
        try r.replay(aggregate, after: start?.position, tail: tail, in: txn) { (e) throws(LMDBError) in
            if let decoded = fresh[e.dot] { folded.apply(e, decoded) } else { folded.apply(e, try r.decodeForFold(e)) }
            if folded.count % every == 0 {
                do { try writeCheckpoint(folded, aggregate, r, txn) } catch let error as LMDBError { throw error } catch { failure = error }
            }
        }
        if let failure { throw failure }
        return folded
    }

    private func writeCheckpoint(_ folded: FoldedAggregate, _ aggregate: String, _ r: RootDatabases, _ txn: borrowing WriteTransaction) throws {
        guard let snapshot = try folded.snapshot(chain: false) else { return }
        try txn.put(r.checkpoints, snapshot.position.key(aggregate: aggregate), snapshot.encoded())
    }
}
