import LMDB

extension RootDatabases {
    /// Visits an aggregate's events in fold order after `start` (exclusive; from the first when
    /// nil), stopping before `end` (exclusive, a full `agg` key) when given.
    func replay<T: Transaction & ~Copyable>(
        _ aggregate: String, after start: FoldPosition?, before end: [UInt8]? = nil, in txn: borrowing T,
        _ visit: (RecordedEvent) throws(LMDBError) -> Void
    ) throws(LMDBError) {
        let prefix = Keys.aggregatePrefix(aggregate)
        let first = start.map { prefix + $0.bytes } ?? prefix
        try txn.withCursor(agg) { (c) throws(LMDBError) in
            var entry = c.seek(atOrAfter: first)
            if let s = start, let e = entry, e.key.elementsEqual(prefix + s.bytes) { entry = c.next() }
            while let e = entry, e.key.starts(with: prefix) {
                if let end, !e.key.lexicographicallyPrecedes(end) { break }
                let position = FoldPosition(bytes: UnsafeRawBufferPointer(rebasing: e.key[prefix.count...]))
                guard let value = try txn.get(log, Keys.dot(position.dot)) else {
                    preconditionFailure("agg index names \(position.dot) but the log has no such event")
                }
                try visit(EventRecord.decode(position.dot, value))
                entry = c.next()
            }
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
