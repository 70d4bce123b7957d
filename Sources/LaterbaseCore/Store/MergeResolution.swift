import LMDB
import Metrics

/// The merge is total (contract v3): where two replicas disagree, the writer resolves it by
/// rules of the events alone, the same on every replica whatever order events arrive in.
///
/// - One id under two dots: the first in (hlc, origin, seq) order holds the id (in `ids`) and is
///   folded; the others are duplicates (in `dups`), stored and served, folded by no aggregate.
/// - One dot with two contents: the version whose recorded form has the smaller SHA-256 stays.
extension StoreWriter {
    /// Takes a stored event out of its aggregate's fold (it lost its id, or its dot's version
    /// gave way): ``fold(_:root:_:)`` takes it out of the index and refolds. An event this
    /// transaction added is no longer folded either.
    func unfold(_ event: RecordedEvent, root r: RootDatabases, _ touched: inout TouchedAggregates, _ txn: borrowing WriteTransaction) throws {
        let folded = try touch(event.aggregate, root: r, &touched, txn)
        let dot = event.dot
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
            previous = try link(new, root: r, &touched, txn)
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
        try touch(first.aggregate, root: r, &touched, txn).inserted.append(FoldPosition(first))
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
