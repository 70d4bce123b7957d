import LMDB

extension RootDatabases {
    /// Visits an aggregate's events in fold order after `start` (exclusive; from the first when
    /// nil), stopping before `end` (exclusive, a full `agg` key) when given.
    /// - Throws: what LMDB reports, and ``LMDBError/corrupted(_:)`` when the `agg` index names an
    ///   event the log does not hold.
    func replay<T: Transaction & ~Copyable>(
        _ aggregate: String, after start: FoldPosition?, before end: [UInt8]? = nil, in txn: borrowing T,
        _ visit: (RecordedEvent) throws(LMDBError) -> Void
    ) throws(LMDBError) {
        let prefix = Keys.aggregatePrefix(aggregate)
        let first = start.map { prefix + $0.bytes } ?? prefix
        try txn.withCursor(agg) { (c) throws(LMDBError) in
            var entry = try c.seek(atOrAfter: first)
            if let s = start, let e = entry, e.key.elementsEqual(prefix + s.bytes) { entry = try c.next() }
            while let e = entry, e.key.starts(with: prefix) {
                if let end, !e.key.lexicographicallyPrecedes(end) { break }
                let position = try FoldPosition(bytes: UnsafeRawBufferPointer(rebasing: e.key[prefix.count...]))
                guard let value = try txn.get(log, Keys.dot(position.dot)) else {
                    throw .corrupted("the agg index entry for \(position.dot), which the log does not hold")
                }
                try visit(EventRecord.decode(position.dot, value))
                entry = try c.next()
            }
        }
    }

    /// The nearest checkpoint of `aggregate` strictly before the key `bound`, skipping those
    /// that folded an event recorded after `recordedBy` (ms) when given.
    func checkpoint<T: Transaction & ~Copyable>(
        _ aggregate: String, before bound: [UInt8], recordedBy: Int64? = nil, in txn: borrowing T
    ) throws(LMDBError) -> AggregateSnapshot? {
        let prefix = Keys.aggregatePrefix(aggregate)
        return try txn.withCursor(checkpoints) { (c) throws(LMDBError) in
            var entry = try c.seek(atOrBefore: bound)
            if let e = entry, e.key.elementsEqual(bound) { entry = try c.previous() }
            while let e = entry, e.key.starts(with: prefix) {
                let snapshot = try AggregateSnapshot(e.value)
                if let recordedBy, Int64(snapshot.hlc.milliseconds) > recordedBy {
                    entry = try c.previous()
                    continue
                }
                return snapshot
            }
            return nil
        }
    }

    /// Decodes a stored event for folding.
    /// - Throws: ``LMDBError/corrupted(_:)`` with the schema's refusal. The store only holds
    ///   events its schema accepted, so this means the application changed its schema without an
    ///   upcast for what it already stored; folding on without the event would serve a state that
    ///   silently ignores history.
    func decodeForFold(_ e: RecordedEvent) throws(LMDBError) -> any Sendable {
        do {
            return try definition.fold.decode(type: e.type, version: e.version, data: nil, dataBytes: e.data)
        } catch {
            throw .corrupted("\(e.dot), which today's schema refuses: \(error)")
        }
    }
}

extension RecordedEvent {
    var foldContext: EventContext {
        EventContext(id: id, aggregate: aggregate, type: type, version: version, time: time, hlc: hlc, origin: origin, seq: seq)
    }
}
