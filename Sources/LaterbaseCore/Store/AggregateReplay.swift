import LMDB

extension RootDatabases {
    /// Visits an aggregate's events in fold order after `start` (exclusive; from the first when
    /// nil), stopping before `end` (exclusive, a full `agg` key) when given: those of the `agg`
    /// index merged with its tail, the latest events not indexed yet.
    /// - Parameter tail: the tail's positions when the caller knows them (the writer, whose
    ///   `aggs` record is not written yet); otherwise read from the `aggs` record and the chain.
    /// - Throws: what LMDB reports, and ``LMDBError/corrupted(_:)`` when the `agg` index or the
    ///   chain names an event the log does not hold.
    func replay<T: Transaction & ~Copyable>(
        _ aggregate: String, after start: FoldPosition?, before end: [UInt8]? = nil, tail known: [FoldPosition]? = nil, in txn: borrowing T,
        _ visit: (RecordedEvent) throws(LMDBError) -> Void
    ) throws(LMDBError) {
        let prefix = Keys.aggregatePrefix(aggregate)
        var tail: [FoldPosition]
        if let known { tail = known } else { tail = try self.tail(of: aggregate, in: txn) }
        tail.removeAll { p in
            if let start, !(start < p) { return true }
            if let end, !(prefix + p.bytes).lexicographicallyPrecedes(end) { return true }
            return false
        }
        tail.sort(by: <)
        var next = 0
        func emit(_ position: FoldPosition) throws(LMDBError) {
            guard let value = try txn.get(log, Keys.dot(position.dot)) else {
                throw .corrupted("the agg index or chain entry for \(position.dot), which the log does not hold")
            }
            try visit(EventRecord.decode(position.dot, value))
        }
        let first = start.map { prefix + $0.bytes } ?? prefix
        try txn.withCursor(agg) { (c) throws(LMDBError) in
            var entry = try c.seek(atOrAfter: first)
            if let s = start, let e = entry, e.key.elementsEqual(prefix + s.bytes) { entry = try c.next() }
            while let e = entry, e.key.starts(with: prefix) {
                if let end, !e.key.lexicographicallyPrecedes(end) { break }
                let position = try FoldPosition(bytes: UnsafeRawBufferPointer(rebasing: e.key[prefix.count...]))
                while next < tail.count, tail[next] < position {
                    try emit(tail[next])
                    next += 1
                }
                try emit(position)
                entry = try c.next()
            }
        }
        while next < tail.count {
            try emit(tail[next])
            next += 1
        }
    }

    /// Folds the events an `aggs` record's kept state lacks (its ``AggregateSnapshot/unfolded``
    /// latest events, in fold order) into `accumulator`, which holds that state.
    /// - Parameter chain: the record's tail as ``chain(from:count:in:)`` gives it (newest first),
    ///   when the caller has it already; the unfolded events are its first ones.
    func foldUnfolded<T: Transaction & ~Copyable>(
        _ record: AggregateSnapshot, chain known: [FoldPosition]? = nil, into accumulator: any Accumulator, in txn: borrowing T
    ) throws(LMDBError) {
        guard record.unfolded > 0 else { return }
        var positions: [FoldPosition]
        if let known { positions = Array(known.prefix(record.unfolded)) } else { positions = try chain(from: record.last, count: record.unfolded, in: txn) }
        positions.sort(by: <)
        for p in positions {
            guard let e = try event(p.dot, in: txn) else { throw .corrupted("an aggregate's chain names \(p.dot), which the log does not hold") }
            accumulator.apply(try decodeForFold(e), of: e)
        }
    }

    /// The aggregate as `GET /a` serves it: its `aggs` record with the state, the one kept in
    /// `states` with the record's unfolded events folded on top.
    func current<T: Transaction & ~Copyable>(_ aggregate: String, record value: UnsafeRawBufferPointer, in txn: borrowing T) throws(LMDBError) -> AggregateSnapshot {
        var snapshot = try AggregateSnapshot(value)
        let kept = try txn.get(states, Array(aggregate.utf8)).map { Array($0) }
        if snapshot.unfolded == 0, let kept {
            snapshot.state = kept
            return snapshot
        }
        let accumulator: any Accumulator
        do { accumulator = try definition.fold.accumulator(state: kept) } catch { throw .corrupted("the kept state of \(aggregate): \(error)") }
        try foldUnfolded(snapshot, into: accumulator, in: txn)
        do { snapshot.state = try accumulator.encoded() } catch { throw .corrupted("the state of \(aggregate), which does not encode: \(error)") }
        return snapshot
    }

    /// The positions of the aggregate's tail, as its `aggs` record and the chain say.
    func tail<T: Transaction & ~Copyable>(of aggregate: String, in txn: borrowing T) throws(LMDBError) -> [FoldPosition] {
        guard let v = try txn.get(aggs, Array(aggregate.utf8)) else { return [] }
        let snapshot = try AggregateSnapshot(v)
        return try chain(from: snapshot.last, count: snapshot.tail, in: txn)
    }

    /// The positions of the `count` events recorded last, following the chain back from `last`.
    func chain<T: Transaction & ~Copyable>(from last: Dot?, count: Int, in txn: borrowing T) throws(LMDBError) -> [FoldPosition] {
        var out: [FoldPosition] = []
        out.reserveCapacity(count)
        var dot = last
        for _ in 0..<count {
            guard let d = dot, let value = try txn.get(log, Keys.dot(d)) else {
                throw .corrupted("an aggregate's chain, which names \(dot.map { "\($0)" } ?? "no event") the log does not hold")
            }
            out.append(try EventRecord.position(d, value))
            dot = try EventRecord.previous(value)
        }
        return out
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

    /// Whether the root's schema knows a stored event (it may not, for one kept unfolded).
    func knows(_ e: RecordedEvent) -> Bool {
        (try? definition.fold.decode(type: e.type, version: e.version, data: nil, dataBytes: e.data)) != nil
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
