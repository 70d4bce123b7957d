import LMDB

/// Checks of stored bytes against the key layout, for tools that read a store's raw records
/// (and the fuzzer, which feeds them every bit pattern). Each check decodes the record the way
/// reads do and renders what a read would serve; a record that does not decode throws
/// ``LMDBError/corrupted(_:)``. None of them traps, whatever the bytes.
public enum StoreIntegrity {
    /// A `log` entry: its key (`origin 0x00 seq`) and value (the event record).
    /// - Returns: the event's JSON, as the feed serves it.
    public static func checkEvent(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(LMDBError) -> [UInt8] {
        let dot = try Keys.parseDot(key)
        _ = try EventRecord.decode(dot, value)  // what reads and refolds use
        var out: [UInt8] = []
        try withBytes(Array(dot.origin.utf8)) { (o) throws(LMDBError) in try EventRecord.appendJSON(origin: o, seq: dot.seq, value, to: &out) }
        return out
    }

    /// An `aggs` or `cp` value (a folded aggregate).
    /// - Returns: the aggregate's JSON, as `GET /a` serves it, under `id`.
    public static func checkSnapshot(_ value: UnsafeRawBufferPointer, id: String) throws(LMDBError) -> [UInt8] {
        var out: [UInt8] = []
        try AggregateSnapshot(value).appendJSON(id: id, to: &out)
        return out
    }

    /// An `agg` or `cp` key's position part (after `aggregate 0x00`).
    /// - Returns: the position's dot.
    public static func checkPosition(_ bytes: UnsafeRawBufferPointer) throws(LMDBError) -> Dot {
        try FoldPosition(bytes: bytes).dot
    }
}
