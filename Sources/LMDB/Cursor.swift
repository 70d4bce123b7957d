import CLMDB

/// A position in a database, valid only inside the transaction that opened it
/// (see ``Transaction/withCursor(_:_:)``). Keys and values returned are not copies.
///
/// Every move throws what LMDB reports (a key LMDB refuses, such as an empty or oversized one,
/// or a corrupt page) instead of trapping: those come from outside.
public struct Cursor: ~Copyable {
    let handle: OpaquePointer

    /// A key and value, valid until the cursor moves or the transaction ends.
    public typealias Entry = (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)

    private func move(_ op: MDB_cursor_op, _ key: UnsafeRawBufferPointer? = nil) throws(LMDBError) -> Entry? {
        var k = MDB_val(mv_size: key?.count ?? 0, mv_data: UnsafeMutableRawPointer(mutating: key?.baseAddress))
        var v = MDB_val()
        let rc = mdb_cursor_get(handle, &k, &v, op)
        if rc == MDB_NOTFOUND { return nil }
        try check(rc, "mdb_cursor_get")
        return (UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size), UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size))
    }

    /// Moves to the first key at or after `key`.
    public mutating func seek(atOrAfter key: [UInt8]) throws(LMDBError) -> Entry? {
        try withBytes(key) { (k) throws(LMDBError) in try move(MDB_SET_RANGE, k) }
    }

    /// Moves to the last key at or before `key`.
    public mutating func seek(atOrBefore key: [UInt8]) throws(LMDBError) -> Entry? {
        if let found = try seek(atOrAfter: key) {
            if found.key.elementsEqual(key) { return found }
            return try previous()
        }
        return try last()
    }

    /// Moves to the first entry.
    public mutating func first() throws(LMDBError) -> Entry? { try move(MDB_FIRST) }
    /// Moves to the last entry.
    public mutating func last() throws(LMDBError) -> Entry? { try move(MDB_LAST) }
    /// Moves to the next entry.
    public mutating func next() throws(LMDBError) -> Entry? { try move(MDB_NEXT) }
    /// Moves to the previous entry.
    public mutating func previous() throws(LMDBError) -> Entry? { try move(MDB_PREV) }

    /// Appends `value` under `key`, which must sort after every key of the database
    /// (`mdb_cursor_put` with `MDB_APPEND`: a cursor kept at the end finds the last page without
    /// searching the tree for each key). Only in a write transaction.
    public mutating func append(_ key: [UInt8], _ value: [UInt8]) throws(LMDBError) {
        let rc = key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in
                var mk = MDB_val(mv_size: k.count, mv_data: UnsafeMutableRawPointer(mutating: k.baseAddress))
                var mv = MDB_val(mv_size: v.count, mv_data: UnsafeMutableRawPointer(mutating: v.baseAddress))
                return mdb_cursor_put(handle, &mk, &mv, UInt32(MDB_APPEND))
            }
        }
        try check(rc, "mdb_cursor_put (append)")
    }
}
