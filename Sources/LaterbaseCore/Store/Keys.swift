import LMDB

/// The key layout. Every root has its own databases (see ``RootDatabases``); within them:
///
/// - `log`: `origin 0x00 seq(8, big-endian)` → the event record. Per-origin appends are sequential,
///   and a feed reads each origin's run in seq order (which is its hlc order).
/// - `ids`: `id(16)` → `origin 0x00 seq`: idempotency by id in one lookup.
/// - `agg`: `aggregate 0x00 position` → empty: each aggregate's events in fold order, but for
///   its tail (its last events recorded here, fewer than ``StoreWriter/indexEvery``), which is
///   found by following the chain in the log from the `aggs` record's last event.
/// - `aggs`: `aggregate` → the folded aggregate, its last event and its tail's length
///   (``AggregateSnapshot``).
/// - `cp`: `aggregate 0x00 position` → a checkpoint snapshot every N events, for refolds and `as_of`.
/// - `heads`: `origin` → `seq(8) hlc(8)`: the root's version vector, with each origin's last hlc.
/// - `dups`: `id(16) origin 0x00 seq` → empty: the dots stored with an id they do not hold (the
///   first in (hlc, origin, seq) order holds it, in `ids`): served, folded by no aggregate.
/// - `unfolded`: `origin 0x00 seq` → empty: events holding their id that the root's schema
///   refused when they came from a peer or an admin: served, folded once a schema knows them.
/// - `pos`: `position(8)` → `origin 0x00 seq`: every event in the order this node stored it
///   (``Position``), appended; the feed by `since` reads it.
/// - `moved`: `origin 0x00 seq` → `position(8)`: a dot whose version was replaced after it got a
///   position, and its current one (the older `pos` entry is skipped).
///
/// A position is `time(8, sign-flipped big-endian) hlc(8) origin 0x00 seq(8)`, so byte order is fold
/// order (time, hlc, origin, seq). 0x00 cannot occur in an origin or an aggregate id.
enum Keys {
    /// The `log` key of `dot`.
    static func dot(_ dot: Dot) -> [UInt8] {
        var key: [UInt8] = []
        setDot(dot, in: &key)
        return key
    }

    /// The `log` key of an origin given as its bytes, and a seq.
    static func dot(origin: UnsafeRawBufferPointer, seq: UInt64) -> [UInt8] {
        .written(count: origin.count + 9) { w in
            w.bytes(origin)
            w.u8(0)
            w.u64(seq)
        }
    }

    static func dot(origin: [UInt8], seq: UInt64) -> [UInt8] { origin.withUnsafeBytes { dot(origin: $0, seq: seq) } }

    /// Replaces `key`'s bytes with the `log` key of `dot`, reusing its storage.
    static func setDot(_ dot: Dot, in key: inout [UInt8]) {
        key.rewrite(count: dot.keyLength) { $0.dot(dot) }
    }

    /// Splits a `log` key (or the tail of a position) into origin and seq.
    static func parseDot(_ key: UnsafeRawBufferPointer) throws(LMDBError) -> Dot {
        let n = key.count
        guard n >= 9, key[n - 9] == 0 else { throw .corrupted("a dot of \(n) bytes") }
        let origin = String(decoding: UnsafeRawBufferPointer(rebasing: key[0..<(n - 9)]), as: UTF8.self)
        return Dot(origin: origin, seq: readBigEndian(key, at: n - 8))
    }

    static func aggregatePrefix(_ aggregate: String) -> [UInt8] {
        var k = Array(aggregate.utf8)
        k.append(0)
        return k
    }

    static func readBigEndian(_ b: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        precondition(offset >= 0 && offset + 8 <= b.count, "a big-endian read past the end")
        return UInt64(bigEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    static func readBigEndian(_ b: [UInt8], at offset: Int) -> UInt64 {
        b.withUnsafeBytes { readBigEndian($0, at: offset) }
    }

    /// Times sort as unsigned bytes once the sign bit is flipped.
    static func timeKey(_ ms: Int64) -> UInt64 { UInt64(bitPattern: ms) ^ (1 << 63) }
    static func time(fromKey k: UInt64) -> Int64 { Int64(bitPattern: k ^ (1 << 63)) }
}

/// Where an event sits in its aggregate's fold order: (time, hlc, origin, seq).
struct FoldPosition: Hashable, Comparable, Sendable {
    let time: Int64
    let hlc: HLC
    let dot: Dot

    static func < (a: FoldPosition, b: FoldPosition) -> Bool {
        (a.time, a.hlc, a.dot.origin, a.dot.seq) < (b.time, b.hlc, b.dot.origin, b.dot.seq)
    }

    var bytes: [UInt8] { .written(count: byteCount) { write(to: &$0) } }

    /// The length of ``bytes``.
    var byteCount: Int { 16 + dot.keyLength }

    /// Writes ``bytes``.
    func write(to w: inout ByteWriter) {
        w.u64(Keys.timeKey(time))
        w.u64(hlc.rawValue)
        w.dot(dot)
    }

    init(time: Int64, hlc: HLC, dot: Dot) {
        self.time = time
        self.hlc = hlc
        self.dot = dot
    }

    init(_ e: RecordedEvent) { self.init(time: e.time, hlc: e.hlc, dot: e.dot) }

    init(bytes b: UnsafeRawBufferPointer) throws(LMDBError) {
        guard b.count >= 25 else { throw .corrupted("a fold position of \(b.count) bytes") }
        time = Keys.time(fromKey: Keys.readBigEndian(b, at: 0))
        hlc = HLC(rawValue: Keys.readBigEndian(b, at: 8))
        dot = try Keys.parseDot(UnsafeRawBufferPointer(rebasing: b[16...]))
    }

    /// The key of this position in `agg` or `cp` for `aggregate`.
    func key(aggregate: String) -> [UInt8] {
        .written(count: aggregate.utf8.count + 1 + byteCount) { w in
            w.utf8(aggregate)
            w.u8(0)
            write(to: &w)
        }
    }
}

extension Dot {
    /// The length of the dot's key: origin, a 0 byte, seq (big-endian).
    var keyLength: Int { origin.utf8.count + 9 }
}

extension ByteWriter {
    /// A dot as keys and records hold it: origin, a 0 byte, seq (big-endian).
    mutating func dot(_ d: Dot) {
        utf8(d.origin)
        u8(0)
        u64(d.seq)
    }

    /// An id's 16 bytes, most significant first (its `ids` key).
    mutating func id(_ id: EventID) {
        u64(id.high)
        u64(id.low)
    }
}
