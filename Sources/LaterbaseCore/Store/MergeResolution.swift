import LMDB
import Metrics

/// The merge is total (contract v3): where two replicas disagree, the writer resolves it by
/// rules of the events alone, the same on every replica whatever order events arrive in.
///
/// - One id under two dots: the first in (hlc, origin, seq) order holds the id (in `ids`) and is
///   folded; the others are duplicates (in `dups`), stored and served, folded by no aggregate.
/// - One dot with two contents: the version whose recorded form has the smaller SHA-256 stays.
/// - A recorded event the schema refuses, from a peer or an admin: stored and served, kept in
///   `unfolded` (if it holds its id) and folded by no aggregate until the node runs a schema
///   that knows it (``foldNowKnown()``, when the writer starts).
extension StoreWriter {
    /// Takes a stored event out of its aggregate's fold (it lost its id, or its dot's version
    /// gave way): ``fold(_:root:_:)`` takes it out of the index and refolds. An event this
    /// transaction added is no longer folded either. One kept unfolded leaves `unfolded`.
    func unfold(_ event: RecordedEvent, root r: RootDatabases, _ touched: inout TouchedAggregates, _ txn: borrowing WriteTransaction) throws {
        let dot = event.dot
        if try txn.delete(r.unfolded, Keys.dot(dot)) { return }
        let folded = try touch(event.aggregate, root: r, &touched, txn)
        for a in folded.added where a.holdsID && a.position.dot == dot { a.holdsID = false }
        folded.removed.append(FoldPosition(event))
    }

    /// Replaces a stored dot's version with the one ``keeps(_:over:)`` picks, in the log, the
    /// id indexes and the folds.
    func replace(_ old: RecordedEvent, with new: Added, root r: RootDatabases, _ touched: inout TouchedAggregates, _ txn: borrowing WriteTransaction) throws {
        let dot = old.dot
        let oldHeld = try r.dot(for: old.id, in: txn) == dot
        if oldHeld {
            // Before the log changes: its aggregate's chain runs through this dot.
            try unfold(old, root: r, &touched, txn)
            try txn.delete(r.ids, old.id.bytes)
        } else {
            try txn.delete(r.duplicates, RootDatabases.duplicateKey(old.id, dot))
        }
        new.holdsID = true
        if let at = try r.dot(for: new.id, in: txn), let holder = try r.event(at, in: txn) {
            if Self.precedes(new.event, holder) {
                try unfold(holder, root: r, &touched, txn)
                try txn.put(r.duplicates, RootDatabases.duplicateKey(holder.id, holder.dot), [])
            } else {
                new.holdsID = false
            }
        }
        var previous: Dot? = nil
        if new.holdsID {
            if new.folds { previous = try link(new, root: r, &touched, txn) } else { try keepUnfolded(new, root: r, txn) }
            try txn.put(r.ids, new.id.bytes, Keys.dot(dot))
        } else {
            try txn.put(r.duplicates, RootDatabases.duplicateKey(new.id, dot), [])
        }
        var record: [UInt8] = []
        EventRecord.encode(new.event, previous: previous, into: &record)
        try txn.put(r.log, Keys.dot(dot), record)
        if oldHeld, try r.dot(for: old.id, in: txn) == nil { try promoteFirstDuplicate(of: old.id, root: r, &touched, txn) }
    }

    /// The id's holder is gone: its first duplicate in (hlc, origin, seq) order holds it now,
    /// and is folded in its place.
    private func promoteFirstDuplicate(of id: EventID, root r: RootDatabases, _ touched: inout TouchedAggregates, _ txn: borrowing WriteTransaction) throws {
        var first: RecordedEvent? = nil
        for dot in try r.duplicates(of: id, in: txn) {
            guard let e = try r.event(dot, in: txn) else { throw LMDBError.corrupted("a duplicate of \(id), \(dot), which the log does not hold") }
            if first.map({ Self.precedes(e, $0) }) ?? true { first = e }
        }
        guard let first else { return }
        try txn.delete(r.duplicates, RootDatabases.duplicateKey(id, first.dot))
        try txn.put(r.ids, id.bytes, Keys.dot(first.dot))
        if r.knows(first) {
            try touch(first.aggregate, root: r, &touched, txn).inserted.append(FoldPosition(first))
        } else {
            try txn.put(r.unfolded, Keys.dot(first.dot), [])
        }
    }

    /// Keeps an event that holds its id but that the schema refused: in `unfolded`, counted.
    func keepUnfolded(_ a: Added, root r: RootDatabases, _ txn: borrowing WriteTransaction) throws {
        try txn.put(r.unfolded, Keys.dot(a.position.dot), [])
        unfoldedEvents[r.definition.name]?.increment()
    }

    /// Folds the events kept in `unfolded` that this node's schema knows now (it was upgraded),
    /// each in its place, in one transaction. Runs when the writer starts, before any batch.
    /// - Returns: per root with such events, how many it folded now and how many stay unfolded.
    func foldNowKnown() throws -> [(root: String, folded: Int, unfolded: Int)] {
        var counts: [(root: String, folded: Int, unfolded: Int)] = []
        transactionNumber += 1
        let txn = try store.env.beginWrite()
        do {
            for name in store.rootNames {
                let r = try store.root(name)
                var known: [RecordedEvent] = [], unknown = 0
                try txn.withCursor(r.unfolded) { (c) throws(LMDBError) in
                    var entry = try c.first()
                    while let e = entry {
                        let dot = try Keys.parseDot(e.key)
                        guard let event = try r.event(dot, in: txn) else { throw .corrupted("\(dot), kept unfolded, which the log does not hold") }
                        if r.knows(event) { known.append(event) } else { unknown += 1 }
                        entry = try c.next()
                    }
                }
                guard !known.isEmpty || unknown > 0 else { continue }
                counts.append((name, known.count, unknown))
                guard !known.isEmpty else { continue }
                var touched = TouchedAggregates(cache: cache.root(name))
                for e in known {
                    try txn.delete(r.unfolded, Keys.dot(e.dot))
                    try touch(e.aggregate, root: r, &touched, txn).inserted.append(FoldPosition(e))
                }
                try fold(touched, root: r, txn)
            }
            try txn.commit()
        } catch {
            cache.removeAll()
            throw error
        }
        return counts
    }

    /// Counts and logs a conflict the merge resolved: `a` met `b`, already held, and the rule
    /// kept `a` when `keptArrived`.
    func mergeConflict(_ kind: MergeConflict, root: String, _ a: borrowing RecordedEvent, _ b: borrowing RecordedEvent, keptArrived: Bool) {
        conflicts[root]?[kind]?.increment()
        let (arrived, held) = (a.digest, b.digest)
        let kept = keptArrived ? "arrived" : "held"
        logger.notice(
            "merge conflict resolved",
            metadata: [
                "root": "\(root)", "kind": "\(kind.rawValue)", "arrived": "\(a.dot) \(a.id)", "held": "\(b.dot) \(b.id)",
                "arrived_digest": "\(arrived)", "held_digest": "\(held)", "kept": "\(kept)",
            ])
    }
}
