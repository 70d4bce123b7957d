import CLMDB

/// A position in a database, valid only inside the transaction that opened it
/// (see ``Transaction/withCursor(_:_:)``). Keys and values returned are not copies.
public struct Cursor: ~Copyable {
    let handle: OpaquePointer

    /// A key and value, valid until the cursor moves or the transaction ends.
    public typealias Entry = (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)

    private func move(_ op: MDB_cursor_op, _ key: UnsafeRawBufferPointer? = nil) -> Entry? {
        var k = MDB_val(mv_size: key?.count ?? 0, mv_data: UnsafeMutableRawPointer(mutating: key?.baseAddress))
        var v = MDB_val()
        let rc = mdb_cursor_get(handle, &k, &v, op)
        if rc == MDB_NOTFOUND { return nil }
        precondition(rc == 0, "mdb_cursor_get: \(LMDBError(code: rc, operation: "mdb_cursor_get"))")
        return (UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size), UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size))
    }

    /// Moves to the first key at or after `key`.
    public mutating func seek(atOrAfter key: [UInt8]) -> Entry? {
        key.withUnsafeBytes { move(MDB_SET_RANGE, $0) }
    }

    /// Moves to the last key at or before `key`.
    public mutating func seek(atOrBefore key: [UInt8]) -> Entry? {
        if let found = seek(atOrAfter: key) {
            if found.key.elementsEqual(key) { return found }
            return previous()
        }
        return last()
    }

    /// Moves to the first entry.
    public mutating func first() -> Entry? { move(MDB_FIRST) }
    /// Moves to the last entry.
    public mutating func last() -> Entry? { move(MDB_LAST) }
    /// Moves to the next entry.
    public mutating func next() -> Entry? { move(MDB_NEXT) }
    /// Moves to the previous entry.
    public mutating func previous() -> Entry? { move(MDB_PREV) }
}
