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
}
