import LMDB

/// One page of the changes feed.
public struct FeedPage: Sendable {
    /// The events' JSON objects, each followed by the separator asked for.
    public var events: [UInt8]
    /// How many events the page holds.
    public var count: Int
    /// The caller's vv advanced over the events returned.
    public var vv: VersionVector
    /// This node's vv for the root, from the same snapshot.
    public var head: VersionVector
    /// Whether the caller still lacks events.
    public var more: Bool
    /// The digest of what this node holds of the root (``RootDigests/root``), from the same
    /// snapshot: a peer whose head is the same compares it to find forked origins.
    public var digest: UInt64
    /// This node's position in the root, from the same snapshot: a client that has taken the
    /// pages until `more` is false holds everything stored up to it, and can follow by `since`
    /// from there (contract v3, "Positions"; events stored between may come again, harmlessly).
    public var position: Position

    /// The events as a JSON array: what a push or a POST of recorded events carries.
    public var array: [UInt8] { Self.array(events) }

    /// Events each followed by a separator, as a JSON array.
    static func array(_ events: [UInt8]) -> [UInt8] {
        var body: [UInt8] = [UInt8(ascii: "[")]
        body.reserveCapacity(events.count + 1)
        body.append(contentsOf: events.dropLast())  // the last separator
        body.append(UInt8(ascii: "]"))
        return body
    }
}

extension EventStore {
    /// Every event of the root that `vv` does not cover, in (hlc, origin, seq) order, up to `limit`.
    ///
    /// A merge of per-origin runs: each origin's events are read in seq order (which is its hlc
    /// order) from the first one `vv` lacks, so a page is a per-origin prefix of what the caller
    /// lacks and the returned vv is exact. Costs O(events returned + origins), in one short read
    /// transaction.
    /// - Parameter maxBytes: the page's bytes at most, but for a page of one event that alone is
    ///   larger (a peer's body limit, say); the page is still a per-origin prefix. By default the
    ///   contract's 4 MiB, which every reader of a page takes.
    public func feed(root rootName: String, after vv: VersionVector, limit: Int, maxBytes: Int = EventStore.pageBytes, separator: UInt8 = UInt8(ascii: ",")) throws(LaterbaseError) -> FeedPage {
        let r = try root(rootName)
        do {
            return try page(r, after: vv, limit: limit, maxBytes: maxBytes, separator: separator)
        } catch {
            throw LaterbaseError(storage: error, "reading the feed of \(rootName)")
        }
    }

    private func page(_ r: RootDatabases, after vv: VersionVector, limit: Int, maxBytes: Int, separator: UInt8) throws(LMDBError) -> FeedPage {
        try env.read { (txn) throws(LMDBError) in
            let heads = try r.heads(in: txn)
            var out: [UInt8] = []
            out.reserveCapacity(min(limit, 10_000) * 300)
            var count = 0
            let (advanced, more) = try r.walkInFeedOrder(after: vv, heads: heads, in: txn) { (origin, seq, value) throws(LMDBError) in
                guard count < limit else { return false }
                let before = out.count
                try EventRecord.appendJSON(origin: origin, seq: seq, value, to: &out)
                out.append(separator)
                if count > 0, out.count > maxBytes {
                    out.removeSubrange(before...)  // the next page's first event
                    return false
                }
                count += 1
                return true
            }
            return FeedPage(
                events: out, count: count, vv: advanced, head: heads.versionVector, more: more, digest: heads.digest ?? 0,
                position: Position(epoch: epoch, value: try r.lastPosition(in: txn)))
        }
    }
}

/// One page of the feed by position (contract v3, "Positions").
public struct ChangesPage: Sendable {
    /// The events' JSON objects, each followed by the separator asked for.
    public var events: [UInt8]
    /// How many events the page holds.
    public var count: Int
    /// The position after the page: the `since` of the next call.
    public var next: Position
    /// Whether events were stored after `next` (as of the page's snapshot).
    public var more: Bool
    /// The root's summary as of `next`, when asked for: what a peer following by position
    /// compares with its own (in sync, or forked).
    public var summary: RootSummary?

    /// The events as a JSON array.
    public var array: [UInt8] { FeedPage.array(events) }
}

extension EventStore {
    /// Every event this node stored in the root after `since` (the beginning when nil), in the
    /// order it stored them (a back-dated or replicated event stored now comes now), up to
    /// `limit` and `maxBytes` (one event alone may be larger). Calling again with `next` until
    /// `more` is false yields each event once, while writes go on. O(events returned), in one
    /// read transaction; the size of a request and an answer does not grow with the origins.
    /// - Throws: `position_expired` for a position this node did not issue (another node's, or
    ///   from before a restore), `unknown_root`.
    /// - Parameter summary: whether to add the root's ``RootSummary`` from the same snapshot.
    public func changes(
        root rootName: String, since: Position?, limit: Int, maxBytes: Int = EventStore.pageBytes, separator: UInt8 = UInt8(ascii: ","),
        summary withSummary: Bool = false
    ) throws(LaterbaseError) -> ChangesPage {
        let r = try root(rootName)
        if let since, since.epoch != epoch {
            throw LaterbaseError(.positionExpired, "position \(since) was not issued by this node in its present epoch (another node's, or from before a restore); start again from your vv")
        }
        // Nil: `since` lies beyond this node's last position (not issued here).
        let result: Result<ChangesPage?, LMDBError> = Result { () throws(LMDBError) in
            try env.read { (txn) throws(LMDBError) -> ChangesPage? in
                let last = try r.lastPosition(in: txn)
                let start = since?.value ?? 0
                guard start <= last else { return nil }
                let anyMoved = try txn.withCursor(r.moved) { (c) throws(LMDBError) in try c.first() != nil }
                var out: [UInt8] = []
                out.reserveCapacity(min(limit, 10_000) * 300)
                var count = 0
                var next = start
                try txn.withCursor(r.positions) { (c) throws(LMDBError) in
                    var entry = try c.seek(atOrAfter: .written(count: 8) { $0.u64(start + 1) })
                    while let e = entry, count < limit {
                        let position = Keys.readBigEndian(e.key, at: 0)
                        let key = e.value  // the dot's `log` key: origin, 0, seq
                        guard key.count >= 9, key[key.count - 9] == 0 else { throw .corrupted("position \(position) names a dot of \(key.count) bytes") }
                        if anyMoved, let current = try txn.get(r.moved, key), Keys.readBigEndian(current, at: 0) != position {
                            next = position  // an older version's place: the dot comes at its current one
                            entry = try c.next()
                            continue
                        }
                        guard let value = try txn.get(r.log, key) else {
                            throw .corrupted("position \(position) names \(try Keys.parseDot(key)), which the log does not hold")
                        }
                        let before = out.count
                        try EventRecord.appendJSON(
                            origin: UnsafeRawBufferPointer(rebasing: key[..<(key.count - 9)]), seq: Keys.readBigEndian(key, at: key.count - 8), value, to: &out)
                        out.append(separator)
                        if count > 0, out.count > maxBytes {
                            out.removeSubrange(before...)
                            break
                        }
                        count += 1
                        next = position
                        entry = try c.next()
                    }
                }
                return ChangesPage(
                    events: out, count: count, next: Position(epoch: epoch, value: next), more: next < last,
                    summary: withSummary ? try RootSummary.read(r.definition.name, meta: meta, in: txn) : nil)
            }
        }
        switch result {
        case .success(nil):
            throw LaterbaseError(.positionExpired, "position \(since.map { "\($0)" } ?? "") is beyond this node's last (\(rootName)); it was not issued here in this epoch")
        case .success(let page?): return page
        case .failure(let error): throw LaterbaseError(storage: error, "reading the changes of \(rootName)")
        }
    }

    /// The root's position now: where a `since` reader that has everything stands.
    public func position(of rootName: String) throws(LaterbaseError) -> Position {
        let r = try root(rootName)
        do {
            return Position(epoch: epoch, value: try env.read { (txn) throws(LMDBError) in try r.lastPosition(in: txn) })
        } catch {
            throw LaterbaseError(storage: error, "reading the position of \(rootName)")
        }
    }
}

extension RootDatabases {
    /// Visits the events `vv` does not cover in (hlc, origin, seq) order, until `take` says no
    /// (that event is not taken) or none is left: the feed's order, which the position upgrade
    /// numbers too.
    /// - Returns: `vv` advanced over the events taken, and whether any is left.
    func walkInFeedOrder<T: Transaction & ~Copyable>(
        after vv: VersionVector, heads: [String: OriginHead], in txn: borrowing T,
        _ take: (_ origin: UnsafeRawBufferPointer, _ seq: UInt64, _ value: UnsafeRawBufferPointer) throws(LMDBError) -> Bool
    ) throws(LMDBError) -> (vv: VersionVector, more: Bool) {
        var runs: [OriginRun] = []
        for (origin, head) in heads where head.seq > vv[origin] {
            runs.append(OriginRun(origin: Array(origin.utf8), next: vv[origin] + 1, last: head.seq))
        }
        var advanced = vv
        var took = 0
        try txn.withCursor(log) { (cursor) throws(LMDBError) in
            var heap = RunHeap()
            for i in runs.indices where try runs[i].refill(&cursor) { heap.push(i, runs) }
            while let i = heap.pop(runs) {
                let entry = runs[i].buffer[runs[i].position]
                let taken = try withBytes(runs[i].origin) { (o) throws(LMDBError) in try take(o, entry.seq, entry.value) }
                guard taken else { break }
                took += 1
                runs[i].position += 1
                if runs[i].position < runs[i].buffer.count { heap.push(i, runs) } else if try runs[i].refill(&cursor) { heap.push(i, runs) }
            }
        }
        // A page up to a gap in the log, then an error naming it: not pages of nothing that say
        // more for ever (a client paging by vv looped on them).
        if took == 0, let run = runs.first(where: { $0.missing != nil }) {
            throw .corrupted("the log of \(String(decoding: run.origin, as: UTF8.self)), which lacks seq \(run.missing!) below its head \(run.last)")
        }
        for run in runs where run.next > 0 {
            let origin = String(decoding: run.origin, as: UTF8.self)
            let consumed = run.consumedThrough
            if consumed > advanced[origin] { advanced[origin] = consumed }
        }
        return (advanced, runs.contains { $0.consumedThrough < $0.last })
    }
}

/// One origin's events that the caller lacks, read from `log` in chunks.
private struct OriginRun {
    let origin: [UInt8]
    /// The next seq to load.
    var next: UInt64
    let last: UInt64
    var buffer: [(seq: UInt64, hlc: HLC, value: UnsafeRawBufferPointer)] = []
    var position = 0
    /// The seq the log lacks below the head, once the run reached it.
    var missing: UInt64?
    static let chunk = 64

    init(origin: [UInt8], next: UInt64, last: UInt64) {
        self.origin = origin
        self.next = next
        self.last = last
    }

    /// The last seq handed out (or before the first).
    var consumedThrough: UInt64 {
        position < buffer.count ? buffer[position].seq - 1 : next - 1
    }

    var current: (hlc: HLC, seq: UInt64) { (buffer[position].hlc, buffer[position].seq) }

    /// Loads the next chunk; returns false when the run is done. Values stay valid for the
    /// read transaction.
    mutating func refill(_ cursor: inout Cursor) throws(LMDBError) -> Bool {
        buffer.removeAll(keepingCapacity: true)
        position = 0
        guard next <= last else { return false }
        var entry = try cursor.seek(atOrAfter: Keys.dot(origin: origin, seq: next))
        while let e = entry, buffer.count < Self.chunk, next <= last {
            guard e.key.count == origin.count + 9, e.key[origin.count] == 0,
                e.key.starts(with: origin)
            else { break }
            let seq = Keys.readBigEndian(e.key, at: origin.count + 1)
            guard seq == next else { break }  // never skip: the store holds no gaps
            buffer.append((seq, try EventRecord.hlc(e.value), e.value))
            next += 1
            entry = try cursor.next()
        }
        // A seq below the head the log does not hold (a store damaged by two writers).
        if buffer.isEmpty && next <= last { missing = next }
        return !buffer.isEmpty
    }
}

/// A binary min-heap of run indexes by (hlc, origin, seq) of each run's current event.
private struct RunHeap {
    private var items: [Int] = []

    private static func less(_ a: Int, _ b: Int, _ runs: [OriginRun]) -> Bool {
        let x = runs[a].current, y = runs[b].current
        if x.hlc != y.hlc { return x.hlc < y.hlc }
        if runs[a].origin != runs[b].origin { return runs[a].origin.lexicographicallyPrecedes(runs[b].origin) }
        return x.seq < y.seq
    }

    mutating func push(_ run: Int, _ runs: [OriginRun]) {
        items.append(run)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.less(items[i], items[parent], runs) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop(_ runs: [OriginRun]) -> Int? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count, Self.less(items[l], items[m], runs) { m = l }
                if r < items.count, Self.less(items[r], items[m], runs) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
