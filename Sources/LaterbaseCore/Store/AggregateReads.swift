import LMDB

extension EventStore {
    /// One aggregate as the contract's JSON object, or nil when no event is folded.
    ///
    /// Without parameters this is the kept state with the few latest events it lacks folded on
    /// top (fewer than ``StoreWriter/stateEvery``; none for most aggregates). `asOf` (ms) folds only events
    /// whose valid time is at or before it, from the nearest checkpoint; `recordedBy` (ms) folds
    /// only events whose hlc is at or before it, from the nearest checkpoint that qualifies.
    /// - Throws: `unknown_root`; a storage failure as ``LaterbaseError/init(storage:_:)`` says
    ///   (never a 404 for a read that failed).
    public func aggregate(root rootName: String, id: String, asOf: Int64? = nil, recordedBy: Int64? = nil) throws(LaterbaseError) -> [UInt8]? {
        let r = try root(rootName)
        do {
            return try env.read { (txn) throws(LMDBError) -> [UInt8]? in
                if asOf == nil && recordedBy == nil {
                    guard let v = try txn.get(r.aggs, Array(id.utf8)) else { return nil }
                    var out: [UInt8] = []
                    try r.current(id, record: v, in: txn).appendJSON(id: id, to: &out)
                    return out
                }
                return try foldPast(r, id: id, asOf: asOf, recordedBy: recordedBy, in: txn)
            }
        } catch {
            throw LaterbaseError(storage: error, "reading \(rootName)/\(id)")
        }
    }

    private func foldPast(_ r: RootDatabases, id: String, asOf: Int64?, recordedBy: Int64?, in txn: borrowing ReadTransaction) throws(LMDBError) -> [UInt8]? {
        let prefix = Keys.aggregatePrefix(id)
        // Every position with time <= asOf sorts before this key.
        var end: [UInt8]? = nil
        if let asOf, asOf < Int64.max {
            end = .written(count: prefix.count + 8) { w in
                w.bytes(prefix)
                w.u64(Keys.timeKey(asOf + 1))
            }
        }
        let bound = end ?? prefix + [UInt8](repeating: 0xFF, count: 40)
        let start = try r.checkpoint(id, before: bound, recordedBy: recordedBy, in: txn)
        let accumulator: any Accumulator
        do { accumulator = try r.definition.fold.accumulator(state: start?.state) } catch {
            throw .corrupted("the checkpoint state of \(id): \(error)")
        }
        var snapshot = start
        try r.replay(id, after: start?.position, before: end, in: txn) { (e) throws(LMDBError) in
            if let recordedBy, Int64(e.hlc.milliseconds) > recordedBy { return }
            accumulator.apply(try r.decodeForFold(e), of: e)
            let count = (snapshot?.count ?? 0) + 1
            snapshot = AggregateSnapshot(count: count, time: e.time, hlc: max(snapshot?.hlc ?? e.hlc, e.hlc), position: FoldPosition(e), state: [])
        }
        guard var result = snapshot else { return nil }
        do { result.state = try accumulator.encoded() } catch { throw .corrupted("the state of \(id), which does not encode: \(error)") }
        var out: [UInt8] = []
        result.appendJSON(id: id, to: &out)
        return out
    }

    /// An aggregate's events in fold order, (time, hlc, origin, seq), at most `limit`: what the
    /// console plots on its two time axes.
    /// - Returns: the events' JSON objects joined by commas, and whether more follow; nil when the
    ///   aggregate has no event.
    public func history(root rootName: String, id: String, limit: Int) throws(LaterbaseError) -> (events: [UInt8], more: Bool)? {
        let r = try root(rootName)
        do {
            return try env.read { (txn) throws(LMDBError) -> (events: [UInt8], more: Bool)? in
                guard try txn.get(r.aggs, Array(id.utf8)) != nil else { return nil }
                var out: [UInt8] = []
                var count = 0
                var more = false
                try r.replay(id, after: nil, in: txn) { (e) throws(LMDBError) in
                    guard count < limit else {
                        more = true
                        return
                    }
                    if count > 0 { out.append(UInt8(ascii: ",")) }
                    e.appendJSON(to: &out)
                    count += 1
                }
                return (out, more)
            }
        } catch {
            throw LaterbaseError(storage: error, "reading the history of \(rootName)/\(id)")
        }
    }

    /// A page of the root's aggregates by id in byte order, after `after`.
    /// - Returns: the aggregates' JSON objects and the id to pass as `after` next, or nil at the end.
    public func aggregates(root rootName: String, after: String?, limit: Int) throws(LaterbaseError) -> (aggregates: [[UInt8]], next: String?) {
        let r = try root(rootName)
        if let after { _ = try ReadParameters.aggregateID(after, name: "after") }  // LMDB refuses an empty key
        do {
            return try env.read { (txn) throws(LMDBError) in
                var page: [[UInt8]] = []
                var next: String? = nil
                try txn.withCursor(r.aggs) { (c) throws(LMDBError) in
                    var entry: Cursor.Entry?
                    if let after { entry = try c.seek(atOrAfter: Array(after.utf8)) } else { entry = try c.first() }
                    if let after, let e = entry, e.key.elementsEqual(after.utf8) { entry = try c.next() }
                    while let e = entry, page.count < limit {
                        var out: [UInt8] = []
                        let id = String(decoding: e.key, as: UTF8.self)
                        try r.current(id, record: e.value, in: txn).appendJSON(id: id, to: &out)
                        page.append(out)
                        entry = try c.next()
                        if entry != nil, page.count == limit { next = String(decoding: e.key, as: UTF8.self) }
                    }
                }
                return (page, next)
            }
        } catch {
            throw LaterbaseError(storage: error, "listing \(rootName)")
        }
    }
}
