import CLMDB

#if canImport(Glibc)
import Glibc
#endif

/// What read-only and write transactions share: lookups and cursors.
public protocol Transaction: ~Copyable {
    /// The raw `MDB_txn`.
    var handle: OpaquePointer { get }
}

extension Transaction where Self: ~Copyable {
    /// The value stored under `key`, without a copy: valid only until the transaction ends or,
    /// in a write transaction, until the next write.
    /// - Returns: the value, or nil when the key is absent.
    public func get(_ db: Database, _ key: UnsafeRawBufferPointer) throws(LMDBError) -> UnsafeRawBufferPointer? {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val()
        let rc = mdb_get(handle, db.dbi, &k, &v)
        if rc == MDB_NOTFOUND { return nil }
        try check(rc, "mdb_get \(db.name)")
        return UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size)
    }

    /// The value stored under `key`, without a copy. See ``get(_:_:)-(Database,UnsafeRawBufferPointer)``.
    public func get(_ db: Database, _ key: [UInt8]) throws(LMDBError) -> UnsafeRawBufferPointer? {
        try withBytes(key) { (k) throws(LMDBError) in try get(db, k) }
    }

    /// Runs `body` with a cursor over `db`; the cursor is closed when `body` returns.
    public func withCursor<R>(_ db: Database, _ body: (inout Cursor) throws(LMDBError) -> R) throws(LMDBError) -> R {
        var cursor: OpaquePointer?
        try check(mdb_cursor_open(handle, db.dbi, &cursor), "mdb_cursor_open \(db.name)")
        guard let cursor else { throw LMDBError(code: EINVAL, operation: "mdb_cursor_open \(db.name)") }
        var c = Cursor(handle: cursor)
        defer { mdb_cursor_close(cursor) }
        return try body(&c)
    }

    /// Number of entries in `db`.
    public func count(_ db: Database) throws(LMDBError) -> Int {
        try statistics(db).entries
    }

    /// How many entries `db` holds and how many pages they take.
    public func statistics(_ db: Database) throws(LMDBError) -> DatabaseStatistics {
        var stat = MDB_stat()
        try check(mdb_stat(handle, db.dbi, &stat), "mdb_stat \(db.name)")
        return DatabaseStatistics(
            entries: stat.ms_entries, pages: stat.ms_branch_pages + stat.ms_leaf_pages + stat.ms_overflow_pages, pageSize: Int(stat.ms_psize))
    }
}

/// A database's size, as `mdb_stat` reports it.
public struct DatabaseStatistics: Sendable, Equatable {
    /// Key/value pairs.
    public var entries: Int
    /// Branch, leaf and overflow pages.
    public var pages: Int
    public var pageSize: Int
    /// The bytes of its pages.
    public var bytes: Int { pages * pageSize }
}

/// A read-only transaction (`MDB_NOTLS`, so any thread). Keep it short: it pins pages.
/// Ends, returning to the environment's pool, when it goes out of scope.
public struct ReadTransaction: Transaction, ~Copyable {
    public let handle: OpaquePointer
    let environment: Environment

    deinit { environment.recycle(reader: handle) }
}

/// The single write transaction. Commit or abort consumes it, so it cannot be used afterwards;
/// dropping it aborts. A failed commit has already freed the transaction, and is never aborted.
///
/// LMDB requires a write transaction to stay on the thread that began it: never `await` while
/// one is open.
public struct WriteTransaction: Transaction, ~Copyable {
    public let handle: OpaquePointer
    /// Unmanaged so the transaction stays trivially destroyable; the environment outlives it.
    private let unmanagedEnvironment: Unmanaged<Environment>
    var environment: Environment { unmanagedEnvironment.takeUnretainedValue() }

    init(handle: OpaquePointer, environment: Environment) {
        self.handle = handle
        self.unmanagedEnvironment = .passUnretained(environment)
    }

    deinit { mdb_txn_abort(handle) }

    /// Stores `value` under `key`. `append: true` asserts the key sorts after every key in `db`.
    public func put(_ db: Database, _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, append: Bool = false) throws(LMDBError) {
        try check(put(db, key, value, flags: append ? UInt32(MDB_APPEND) : 0), "mdb_put \(db.name)")
    }

    /// Stores `value` under `key`, appending (`MDB_APPEND`: no search, and a full page is left
    /// full rather than split in half) when `appending` is true and the key sorts after every
    /// key of `db`; otherwise an ordinary put, and `appending` turns false so the caller stops
    /// trying for the rest of the transaction.
    public func put(_ db: Database, _ key: [UInt8], _ value: [UInt8], appending: inout Bool) throws(LMDBError) {
        let append = appending
        let rc = key.withUnsafeBytes { k in value.withUnsafeBytes { v in put(db, k, v, flags: append ? UInt32(MDB_APPEND) : 0) } }
        if append && rc == MDB_KEYEXIST {
            appending = false  // not past the last key: nothing was written
            return try put(db, key, value)
        }
        try check(rc, "mdb_put \(db.name)")
    }

    /// `mdb_put`, its return code.
    private func put(_ db: Database, _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, flags: UInt32) -> Int32 {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        return mdb_put(handle, db.dbi, &k, &v, flags)
    }

    /// Stores `value` under `key`.
    public func put(_ db: Database, _ key: [UInt8], _ value: [UInt8], append: Bool = false) throws(LMDBError) {
        try withBytes(key) { (k) throws(LMDBError) in
            try withBytes(value) { (v) throws(LMDBError) in try put(db, k, v, append: append) }
        }
    }

    /// Removes `key`. - Returns: whether it was there.
    @discardableResult
    public func delete(_ db: Database, _ key: [UInt8]) throws(LMDBError) -> Bool {
        try withBytes(key) { (kb) throws(LMDBError) -> Bool in
            var k = MDB_val(mv_size: kb.count, mv_data: UnsafeMutableRawPointer(mutating: kb.baseAddress))
            let rc = mdb_del(handle, db.dbi, &k, nil)
            if rc == MDB_NOTFOUND { return false }
            try check(rc, "mdb_del \(db.name)")
            return true
        }
    }

    /// Removes every key of `db` (`mdb_drop` without deleting the database).
    public func empty(_ db: Database) throws(LMDBError) {
        try check(mdb_drop(handle, db.dbi, 0), "mdb_drop \(db.name)")
    }

    /// Commits, making every write durable (fsync) unless the environment was opened `noSync`.
    public consuming func commit() throws(LMDBError) {
        let env = environment
        let id = try commitDeferringDurability()
        if env.defersMetaSync {
            do { try env.sync() } catch {
                env.durabilityFailed()
                throw error
            }
            env.markDurable(through: id)
        }
    }

    /// Commits with one sync instead of two when the environment ``Environment/defersMetaSync``:
    /// the data is synced, the meta page that points at it is not yet. Readers do not see the
    /// commit until ``Environment/markDurable(through:)`` is called with the id returned, after an
    /// ``Environment/sync()`` that began after this returned. Without `defersMetaSync` this is
    /// ``commit()``.
    /// - Returns: the transaction's id.
    public consuming func commitDeferringDurability() throws(LMDBError) -> Int {
        let h = handle
        let env = environment
        let id = Int(mdb_txn_id(h))
        discard self
        try check(mdb_txn_commit(h), "mdb_txn_commit")
        if !env.defersMetaSync { env.markDurable(through: id) }
        return id
    }

    /// Abandons every write of this transaction.
    public consuming func abort() {
        let h = handle
        discard self
        mdb_txn_abort(h)
    }
}
