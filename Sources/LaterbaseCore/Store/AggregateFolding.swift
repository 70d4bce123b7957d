import LMDB

/// An aggregate folded up to a position, kept decoded between commits.
final class FoldedAggregate {
    let aggregateID: String
    let accumulator: any Accumulator
    var count: UInt64
    var time: Int64
    var hlc: HLC
    var position: FoldPosition?
    /// The aggregate's last recorded event on this node: the head of its chain.
    var last: Dot?
    /// The positions of its latest recorded events not in the `agg` index yet, oldest first.
    var tail: [FoldPosition] = []
    /// The transaction's new events for it, in the order written (see ``StoreWriter/touch``).
    var added: [StoreWriter.Added] = []
    /// Its events that lost their id to an event recorded before them, found in this
    /// transaction: the fold takes them out (see ``StoreWriter/precedes(_:_:)``).
    var removed: [FoldPosition] = []
    /// Its events that came to hold their id in this transaction, having been duplicates: the
    /// fold takes them in.
    var inserted: [FoldPosition] = []
    /// The transaction that last touched it (``StoreWriter/transactionNumber``).
    var touchedIn = 0
    /// How many of its latest events the state kept in `states` lacks (see ``AggregateSnapshot/unfolded``).
    var unfolded = 0

    init(_ aggregate: String, accumulator: any Accumulator, snapshot: AggregateSnapshot?) {
        aggregateID = aggregate
        self.accumulator = accumulator
        count = snapshot?.count ?? 0
        time = snapshot?.time ?? 0
        hlc = snapshot?.hlc ?? HLC(rawValue: 0)
        position = snapshot?.position
        last = snapshot?.last
        unfolded = snapshot?.unfolded ?? 0
    }

    func apply(_ event: borrowing RecordedEvent, _ decoded: any Sendable, at position: FoldPosition? = nil) {
        accumulator.apply(decoded, of: event)
        count += 1
        time = event.time
        hlc = max(hlc, event.hlc)
        self.position = position ?? FoldPosition(copy event)
    }

    /// The `aggs` record: where the fold is, its tail and last event, without the state.
    func record() -> AggregateSnapshot? {
        guard let position else { return nil }
        return AggregateSnapshot(count: count, time: time, hlc: hlc, position: position, state: [], tail: tail.count, last: last, unfolded: unfolded)
    }

    /// A checkpoint: where the fold is, with its state.
    func checkpoint() throws -> AggregateSnapshot? {
        guard let position else { return nil }
        return AggregateSnapshot(count: count, time: time, hlc: hlc, position: position, state: try accumulator.encoded())
    }
}

/// Decoded aggregates the writer folded lately, so a hot aggregate is not decoded on every
/// commit: per root, by aggregate id. Bounded between transactions (``trim()``), never inside
/// one, so an aggregate has one fold per transaction; emptied whenever a transaction fails,
/// since it may hold uncommitted folds.
final class AggregateCache {
    /// One root's folds.
    final class Root {
        var folds: [ByteString: FoldedAggregate] = [:]
    }

    private var roots: [String: Root] = [:]
    private let capacity: Int

    init(capacity: Int = 50_000) { self.capacity = capacity }

    /// The folds of `root` (one lookup per batch, not per event).
    func root(_ name: String) -> Root {
        if let r = roots[name] { return r }
        let r = Root()
        roots[name] = r
        return r
    }

    /// Empties the cache when it holds more than its capacity. Only between transactions.
    func trim() {
        if roots.values.reduce(0, { $0 + $1.folds.count }) > capacity { removeAll() }
    }

    func removeAll() {
        roots.removeAll()
    }
}

/// The aggregates one transaction touches in a root, in the order first touched, each with the
/// new events for it (``FoldedAggregate/added``).
struct TouchedAggregates {
    let cache: AggregateCache.Root
    var list: [FoldedAggregate] = []
}

extension StoreWriter {
    /// The aggregate as folded so far, from this transaction, the cache or the store; the first
    /// touch in a transaction adds it to `touched`. One dictionary lookup for a cached aggregate.
    func touch(_ aggregate: String, root r: RootDatabases, _ touched: inout TouchedAggregates, _ txn: borrowing WriteTransaction) throws -> FoldedAggregate {
        let key = ByteString(aggregate)
        if let hit = touched.cache.folds[key] {
            if hit.touchedIn != transactionNumber {
                hit.touchedIn = transactionNumber
                hit.added.removeAll(keepingCapacity: true)
                touched.list.append(hit)
            }
            return hit
        }
        let key8 = Array(aggregate.utf8)
        let snapshot = try txn.get(r.aggs, key8).map { (v) throws(LMDBError) in try AggregateSnapshot(v) }
        let accumulator = try r.definition.fold.accumulator(state: try txn.get(r.states, key8).map { Array($0) })
        let chain = try snapshot.map { (s) throws(LMDBError) in try r.chain(from: s.last, count: s.tail, in: txn) } ?? []
        if let snapshot { try r.foldUnfolded(snapshot, chain: chain, into: accumulator, in: txn) }
        let folded = FoldedAggregate(aggregate, accumulator: accumulator, snapshot: snapshot)
        folded.tail = chain.reversed()
        folded.touchedIn = transactionNumber
        touched.cache.folds[key] = folded
        touched.list.append(folded)
        return folded
    }

    /// Puts an event that holds its id at the head of its aggregate's chain, to be folded.
    /// - Returns: the aggregate's previous event on this node, for the event's record.
    func link(_ a: Added, root r: RootDatabases, _ touched: inout TouchedAggregates, _ txn: borrowing WriteTransaction) throws -> Dot? {
        let folded = try touch(a.event.aggregate, root: r, &touched, txn)
        let previous = folded.last
        folded.last = a.position.dot
        folded.tail.append(a.position)
        folded.added.append(a)
        return previous
    }

    /// Folds a commit's new events into their aggregates. Events after an aggregate's folded
    /// position fold on top; a back-dated one refolds from the nearest earlier checkpoint.
    /// Checkpoints are kept every `checkpointEvery` events; a tail of `indexEvery` events goes
    /// into the `agg` index in one run.
    func fold(_ touched: TouchedAggregates, root r: RootDatabases, _ txn: borrowing WriteTransaction) throws {
        var key: [UInt8] = []
        for folded in touched.list {
            do {
                try fold(folded, &key, touched, root: r, txn)
            } catch let error as EncodingError {
                // The application's state did not encode: the batches with events of this
                // aggregate are refused, the transaction tried again without them.
                throw AggregateFoldFailure(root: r.definition.name, aggregate: folded.aggregateID, reason: "\(error)", damaged: false)
            } catch let error as LMDBError where error.isCorrupted {
                // What is stored of it does not decode (its chain names an event the log lacks):
                // writes to it fail, the others' go on.
                throw AggregateFoldFailure(root: r.definition.name, aggregate: folded.aggregateID, reason: "\(error)", damaged: true)
            }
        }
    }

    private func fold(_ folded: FoldedAggregate, _ key: inout [UInt8], _ touched: TouchedAggregates, root r: RootDatabases, _ txn: borrowing WriteTransaction) throws {
        let every = store.options.checkpointEvery
        var folded = folded
        let aggregate = folded.aggregateID
        key.rewrite(count: aggregate.utf8.count) { $0.utf8(aggregate) }
        var items = folded.added
        folded.added.removeAll(keepingCapacity: true)
        // Events taken out of the fold or into it (the merge's rules; rare): the earliest
        // of them is where the refold starts.
        var reindexedFrom: FoldPosition? = nil
        if !folded.removed.isEmpty || !folded.inserted.isEmpty {
            let removed = folded.removed, inserted = folded.inserted
            folded.removed.removeAll()
            folded.inserted.removeAll()
            try reindex(folded, removing: removed, inserting: inserted, &items, root: r, txn)
            reindexedFrom = (removed + inserted).min()
        }
        var inOrder = true
        for (a, b) in zip(items, items.dropFirst()) where b.position < a.position {
            inOrder = false
            break
        }
        if !inOrder { items.sort { $0.position < $1.position } }
        var writeState = false
        var earliest = items.first?.position
        if let from = reindexedFrom, earliest.map({ from < $0 }) ?? true { earliest = from }
        if let earliest, reindexedFrom != nil || folded.position.map({ earliest < $0 }) == true {
            let fresh = try refold(aggregate, from: earliest, root: r, tail: folded.tail, newlyDecoded: items, txn)
            fresh.last = folded.last
            fresh.tail = folded.tail
            fresh.touchedIn = folded.touchedIn
            folded = fresh
            touched.cache.folds[ByteString(aggregate)] = fresh
            writeState = true
        } else {
            for item in items {
                folded.apply(item.event, item.decoded, at: item.position)
                if folded.count % every == 0 { try writeCheckpoint(folded, aggregate, r, txn) }
            }
            folded.unfolded += items.count
            writeState = folded.unfolded >= StoreWriter.stateEvery
        }
        if folded.tail.count >= StoreWriter.indexEvery {
            var keys = folded.tail.map { $0.key(aggregate: aggregate) }
            keys.sort { $0.lexicographicallyPrecedes($1) }
            for k in keys { try txn.put(r.agg, k, []) }
            folded.tail.removeAll(keepingCapacity: true)
            writeState = true  // the unfolded events must stay within the tail
        }
        if writeState {
            try txn.put(r.states, key, try folded.accumulator.encoded())
            folded.unfolded = 0
        }
        if let record = folded.record() {
            try txn.put(r.aggs, key, record.encoded())
        } else {
            // Its only events were taken out: no event is folded, as if it had none.
            try txn.delete(r.aggs, key)
            try txn.delete(r.states, key)
        }
    }

    /// Takes events out of an aggregate's fold order and others into it: its tail goes into the
    /// `agg` index first (its chain may run through those taken out), then their `agg` keys go
    /// and the others' come. A position both taken out and added again (a dot's new version
    /// with the same time and hlc) stays. The caller refolds.
    private func reindex(
        _ folded: FoldedAggregate, removing removed: [FoldPosition], inserting inserted: [FoldPosition], _ items: inout [Added],
        root r: RootDatabases, _ txn: borrowing WriteTransaction
    ) throws {
        let aggregate = folded.aggregateID
        items.removeAll { !$0.holdsID }
        let gone = Set(removed).subtracting(items.map(\.position))
        var keys = (folded.tail.filter { !gone.contains($0) } + inserted).map { $0.key(aggregate: aggregate) }
        keys.sort { $0.lexicographicallyPrecedes($1) }
        for k in keys { try txn.put(r.agg, k, []) }
        folded.tail.removeAll(keepingCapacity: true)
        for p in gone { try txn.delete(r.agg, p.key(aggregate: aggregate)) }
    }

    /// Refolds from the last checkpoint before `first`: drops the checkpoints after it and
    /// writes them anew as the fold passes.
    private func refold(
        _ aggregate: String, from first: FoldPosition, root r: RootDatabases, tail: [FoldPosition],
        newlyDecoded: [Added], _ txn: borrowing WriteTransaction
    ) throws -> FoldedAggregate {
        let firstKey = first.key(aggregate: aggregate)
        let start = try r.checkpoint(aggregate, before: firstKey, in: txn)
        let folded = FoldedAggregate(aggregate, accumulator: try r.definition.fold.accumulator(state: start?.state), snapshot: start)
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
        guard let snapshot = try folded.checkpoint() else { return }
        try txn.put(r.checkpoints, snapshot.position.key(aggregate: aggregate), snapshot.encoded())
    }
}

/// An aggregate a commit could not fold: the application's `State` did not encode once the
/// commit's events were folded into it (a non-finite Double, say), or what is stored of the
/// aggregate does not decode (`damaged`).
struct AggregateFoldFailure: Error {
    let root: String
    let aggregate: String
    let reason: String
    let damaged: Bool
}
