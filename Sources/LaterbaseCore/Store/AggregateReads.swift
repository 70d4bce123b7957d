import LMDB

extension EventStore {
    /// One aggregate as the contract's JSON object, or nil when no event is folded.
    ///
    /// Without parameters this is one lookup of the kept state. `asOf` (ms) folds only events
    /// whose valid time is at or before it, from the nearest checkpoint; `recordedBy` (ms) folds
    /// only events whose hlc is at or before it, from the nearest checkpoint that qualifies.
    public func aggregate(root rootName: String, id: String, asOf: Int64? = nil, recordedBy: Int64? = nil) throws(LaterbaseError) -> [UInt8]? {
        let r = try root(rootName)
        let result: Result<[UInt8]?, LaterbaseError> = env.read { txn in
            if asOf == nil && recordedBy == nil {
                guard let v = try? txn.get(r.aggs, Array(id.utf8)) else { return .success(nil) }
                var out: [UInt8] = []
                AggregateSnapshot(v).appendJSON(id: id, to: &out)
                return .success(out)
            }
            do {
                return .success(try foldPast(r, id: id, asOf: asOf, recordedBy: recordedBy, in: txn))
            } catch {
                return .failure(LaterbaseError(.internal, "reading \(rootName)/\(id): \(error)"))
            }
        }
        return try result.get()
    }

    private func foldPast(_ r: RootDatabases, id: String, asOf: Int64?, recordedBy: Int64?, in txn: borrowing ReadTransaction) throws -> [UInt8]? {
        let prefix = Keys.aggregatePrefix(id)
        // Every position with time <= asOf sorts before this key.
        var end: [UInt8]? = nil
        if let asOf, asOf < Int64.max {
            end = prefix
            Keys.appendBigEndian(Keys.timeKey(asOf + 1), to: &end!)
        }
        let bound = end ?? prefix + [UInt8](repeating: 0xFF, count: 40)
        let start = r.checkpoint(id, before: bound, recordedBy: recordedBy, in: txn)
        let accumulator = try r.definition.fold.accumulator(state: start?.state)
        var snapshot = start
        try r.replay(id, after: start?.position, before: end, in: txn) { e in
            if let recordedBy, Int64(e.hlc.milliseconds) > recordedBy { return }
            guard let decoded = r.decodeForFold(e) else { return }
            accumulator.apply(decoded, e.foldContext)
            let count = (snapshot?.count ?? 0) + 1
            snapshot = AggregateSnapshot(count: count, time: e.time, hlc: max(snapshot?.hlc ?? e.hlc, e.hlc), position: FoldPosition(e), state: [])
        }
        guard var result = snapshot else { return nil }
        result.state = accumulator.encoded()
        var out: [UInt8] = []
        result.appendJSON(id: id, to: &out)
        return out
    }

    /// A page of the root's aggregates by id in byte order, after `after`.
    /// - Returns: the aggregates' JSON objects and the id to pass as `after` next, or nil at the end.
    public func aggregates(root rootName: String, after: String?, limit: Int) throws(LaterbaseError) -> (aggregates: [[UInt8]], next: String?) {
        let r = try root(rootName)
        return env.read { txn in
            var page: [[UInt8]] = []
            var next: String? = nil
            txn.withCursor(r.aggs) { c in
                var entry = after.map { c.seek(atOrAfter: Array($0.utf8)) } ?? c.first()
                if let after, let e = entry, e.key.elementsEqual(after.utf8) { entry = c.next() }
                while let e = entry, page.count < limit {
                    var out: [UInt8] = []
                    AggregateSnapshot(e.value).appendJSON(id: String(decoding: e.key, as: UTF8.self), to: &out)
                    page.append(out)
                    entry = c.next()
                    if entry != nil, page.count == limit { next = String(decoding: e.key, as: UTF8.self) }
                }
            }
            return (page, next)
        }
    }
}
