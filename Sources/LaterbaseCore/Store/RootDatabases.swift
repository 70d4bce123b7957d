import LMDB

/// One root's databases in the environment, opened once at start-up. See ``Keys`` for the layout.
struct RootDatabases: Sendable {
    let definition: RootDefinition
    let log: Database
    let ids: Database
    let agg: Database
    let aggs: Database
    let states: Database
    let checkpoints: Database
    let heads: Database
    let duplicates: Database
    /// Events kept that the schema refused when they came (from a peer or an admin), by dot:
    /// folded by no aggregate until the node runs a schema that knows them.
    let unfolded: Database
    /// Every event stored here, by its position (``Position``): `position(8)` → its dot.
    let positions: Database
    /// The dots whose version was replaced after they got a position (a fork resolved): `dot` →
    /// its current position. The `positions` entry of an older one is skipped.
    let moved: Database

    static let perRoot: UInt32 = 11

    init(_ definition: RootDefinition, in env: Environment) throws(LMDBError) {
        let n = definition.name
        self.definition = definition
        log = try env.openDatabase("\(n).log")
        ids = try env.openDatabase("\(n).ids")
        agg = try env.openDatabase("\(n).agg")
        aggs = try env.openDatabase("\(n).aggs")
        states = try env.openDatabase("\(n).states")
        checkpoints = try env.openDatabase("\(n).cp")
        heads = try env.openDatabase("\(n).heads")
        duplicates = try env.openDatabase("\(n).dups")
        unfolded = try env.openDatabase("\(n).unfolded")
        positions = try env.openDatabase("\(n).pos")
        moved = try env.openDatabase("\(n).moved")
    }

    /// The `dups` key of a duplicate: its id, then its dot.
    static func duplicateKey(_ id: EventID, _ dot: Dot) -> [UInt8] {
        .written(count: 16 + dot.keyLength) { w in
            w.id(id)
            w.dot(dot)
        }
    }

    /// The dots stored with `id` that do not hold it (duplicates), from the `dups` index.
    func duplicates<T: Transaction & ~Copyable>(of id: EventID, in txn: borrowing T) throws(LMDBError) -> [Dot] {
        let prefix = id.bytes
        var out: [Dot] = []
        try txn.withCursor(duplicates) { (c) throws(LMDBError) in
            var entry = try c.seek(atOrAfter: prefix)
            while let e = entry, e.key.starts(with: prefix) {
                out.append(try Keys.parseDot(UnsafeRawBufferPointer(rebasing: e.key[16...])))
                entry = try c.next()
            }
        }
        return out
    }

    /// The root's version vector and each origin's last hlc, as of `txn`.
    func heads<T: Transaction & ~Copyable>(in txn: borrowing T) throws(LMDBError) -> [String: OriginHead] {
        var out: [String: OriginHead] = [:]
        try txn.withCursor(heads) { (c) throws(LMDBError) in
            var entry = try c.first()
            while let e = entry {
                // 16 bytes: written before digests were kept; the writer adds them at start-up.
                out[String(decoding: e.key, as: UTF8.self)] = try OriginHead(decoding: e.value)
                entry = try c.next()
            }
        }
        return out
    }

    /// The event stored under `dot`, if any.
    func event<T: Transaction & ~Copyable>(_ dot: Dot, in txn: borrowing T) throws(LMDBError) -> RecordedEvent? {
        try txn.get(log, Keys.dot(dot)).map { (v) throws(LMDBError) in try EventRecord.decode(dot, v) }
    }

    /// The dot stored for `id`, if any.
    func dot<T: Transaction & ~Copyable>(for id: EventID, in txn: borrowing T) throws(LMDBError) -> Dot? {
        try txn.get(ids, id.bytes).map { (v) throws(LMDBError) in try Keys.parseDot(v) }
    }

    /// The root's last position: how many events it numbered.
    func lastPosition<T: Transaction & ~Copyable>(in txn: borrowing T) throws(LMDBError) -> UInt64 {
        try txn.withCursor(positions) { (c) throws(LMDBError) in
            guard let e = try c.last() else { return 0 }
            guard e.key.count == 8 else { throw .corrupted("a position key of \(e.key.count) bytes") }
            return Keys.readBigEndian(e.key, at: 0)
        }
    }

    /// The greatest id stored: an id above it is not stored (one cursor step, where a lookup
    /// per id would search the index).
    func lastID<T: Transaction & ~Copyable>(in txn: borrowing T) throws(LMDBError) -> EventID? {
        try txn.withCursor(ids) { (c) throws(LMDBError) in
            guard let e = try c.last() else { return nil }
            guard e.key.count == 16 else { throw .corrupted("an id key of \(e.key.count) bytes") }
            return EventID(bytes: e.key)
        }
    }
}

/// An origin's entry in a root's head: its last seq, that event's hlc, and the digest of its
/// events as this node holds them (``ContentDigest``).
struct OriginHead: Sendable, Equatable {
    var seq: UInt64
    var hlc: HLC
    /// Nil only as read from a store written before digests were kept, until the writer starts.
    var digest: UInt64?

    init(seq: UInt64, hlc: HLC, digest: UInt64?) {
        self.seq = seq
        self.hlc = hlc
        self.digest = digest
    }

    /// The head after `event`, the origin's next one.
    /// - Parameter body: the event's ``ContentDigest/body(type:aggregate:version:data:)``.
    func after(_ event: borrowing RecordedEvent, body: UInt64) -> OriginHead {
        OriginHead(seq: event.seq, hlc: event.hlc, digest: (digest ?? 0) &+ ContentDigest.of(event, body: body))
    }

    /// A `heads` value of 24 bytes, or 16 (written before digests were kept; the writer adds
    /// them at start-up); any other size is a corrupted store, never a trap.
    init(decoding value: UnsafeRawBufferPointer) throws(LMDBError) {
        guard value.count == 24 || value.count == 16 else { throw .corrupted("the head of an origin, \(value.count) bytes") }
        self.init(
            seq: Keys.readBigEndian(value, at: 0), hlc: HLC(rawValue: Keys.readBigEndian(value, at: 8)),
            digest: value.count == 24 ? Keys.readBigEndian(value, at: 16) : nil)
    }

    var encoded: [UInt8] {
        .written(count: 24) { w in
            w.u64(seq)
            w.u64(hlc.rawValue)
            w.u64(digest ?? 0)
        }
    }
}

extension Dictionary where Key == String, Value == OriginHead {
    var versionVector: VersionVector { VersionVector(mapValues(\.seq)) }
}
