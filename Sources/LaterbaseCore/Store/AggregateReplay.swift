import LMDB

extension RootDatabases {
    /// Visits an aggregate's events in fold order after `start` (exclusive; from the first when
    /// nil), stopping before `end` (exclusive, a full `agg` key) when given: first those in the
    /// `agg` index, then those in `tail` (which all sort after them; see ``AggregateTail``).
    func replay<T: Transaction & ~Copyable>(
        _ aggregate: String, after start: FoldPosition?, before end: [UInt8]? = nil, tail: [FoldPosition], in txn: borrowing T,
        _ visit: (RecordedEvent) throws(LMDBError) -> Void
    ) throws(LMDBError) {
        func event(_ position: FoldPosition) throws(LMDBError) -> RecordedEvent {
            guard let value = try txn.get(log, Keys.dot(position.dot)) else {
                preconditionFailure("the fold order names \(position.dot) but the log has no such event")
            }
            return EventRecord.decode(position.dot, value)
        }
        let prefix = Keys.aggregatePrefix(aggregate)
        let first = start.map { prefix + $0.bytes } ?? prefix
        try txn.withCursor(agg) { (c) throws(LMDBError) in
            var entry = c.seek(atOrAfter: first)
            if let s = start, let e = entry, e.key.elementsEqual(prefix + s.bytes) { entry = c.next() }
            while let e = entry, e.key.starts(with: prefix) {
                if let end, !e.key.lexicographicallyPrecedes(end) { return }
                try visit(try event(FoldPosition(bytes: UnsafeRawBufferPointer(rebasing: e.key[prefix.count...]))))
                entry = c.next()
            }
        }
        for position in tail where start.map({ $0 < position }) ?? true {
            if let end, !position.key(aggregate: aggregate).lexicographicallyPrecedes(end) { return }
            try visit(try event(position))
        }
    }

    /// The nearest checkpoint of `aggregate` strictly before the key `bound`, skipping those
    /// that folded an event recorded after `recordedBy` (ms) when given.
    func checkpoint<T: Transaction & ~Copyable>(_ aggregate: String, before bound: [UInt8], recordedBy: Int64? = nil, in txn: borrowing T) -> AggregateSnapshot? {
        let prefix = Keys.aggregatePrefix(aggregate)
        return txn.withCursor(checkpoints) { c in
            var entry = c.seek(atOrBefore: bound)
            if let e = entry, e.key.elementsEqual(bound) { entry = c.previous() }
            while let e = entry, e.key.starts(with: prefix) {
                let snapshot = AggregateSnapshot(e.value)
                if let recordedBy, Int64(snapshot.hlc.milliseconds) > recordedBy {
                    entry = c.previous()
                    continue
                }
                return snapshot
            }
            return nil
        }
    }

    /// Decodes a stored event for folding; nil (and the event skipped) if today's schema no
    /// longer accepts it.
    func decodeForFold(_ e: RecordedEvent) -> (any Sendable)? {
        try? definition.fold.decode(type: e.type, version: e.version, data: nil, dataBytes: e.data)
    }
}

extension RecordedEvent {
    var foldContext: EventContext {
        EventContext(id: id, aggregate: aggregate, type: type, version: version, time: time, hlc: hlc, origin: origin, seq: seq)
    }
}
