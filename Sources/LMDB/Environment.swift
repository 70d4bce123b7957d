import Blocking
import CLMDB

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// An LMDB environment: one memory-mapped file holding named databases.
///
/// Open every ``Database`` once at start-up and keep it; LMDB handles are never closed here.
/// Read transactions use `MDB_NOTLS`, so they may be used from any thread and are pooled.
public final class Environment: @unchecked Sendable {
    let handle: OpaquePointer
    /// The folder the environment lives in.
    public let path: String
    private let readerPool = Mutex<[PooledReader]>([])
    private let maxPooledReaders: Int
    /// Whether commits skip the meta page's sync (``Options/deferMetaSync``).
    public let defersMetaSync: Bool
    /// The last transaction known durable, whether a sync failed, and the async readers waiting
    /// for a newer one (continuations, resumed outside the lock). A ``Blocking/ThreadLock``, not a
    /// `Mutex`: a synchronous reader (a thread of its own: a peer link, a tool) sleeps on it until
    /// ``markDurable(through:)``. Async readers never sleep on it (``awaitDurable()``).
    private let durability: ThreadLock<Durability>

    private struct Durability {
        var durableID: Int
        var failed = false
        var waiters: [(id: Int, waiter: CheckedContinuation<Void, any Error>)] = []
    }

    /// Options for opening an environment.
    public struct Options: Sendable {
        /// The largest size the data file may grow to; the map is sparse, so large is cheap.
        /// 0: the size the environment already has (for tools opening a node's folder).
        public var mapSize: Int = 64 << 30
        /// How many named databases may exist.
        public var maxDatabases: UInt32 = 64
        /// How many read transactions may be open at once.
        public var maxReaders: UInt32 = 256
        /// Skip fsync on commit. Only for benchmarks and tests of non-durable paths.
        public var noSync: Bool = false
        /// Sync once per commit (`MDB_NOMETASYNC`: the data, not the meta page), leaving the
        /// meta page's sync to a later ``Environment/sync()``, so a commit can be made durable
        /// by another thread while the next transaction is built. Readers never see a commit
        /// before it is durable: a read transaction whose snapshot is newer than the last
        /// commit marked durable waits for it (at most one sync).
        public var deferMetaSync: Bool = false
        public init() {}
    }

    /// Opens (creating if needed) the environment in the folder `path`.
    /// - Parameters:
    ///   - path: a folder that exists.
    ///   - options: map size, database and reader limits.
    public init(path: String, options: Options = Options()) throws(LMDBError) {
        var env: OpaquePointer?
        try check(mdb_env_create(&env), "mdb_env_create")
        guard let env else { throw LMDBError(code: -1, operation: "mdb_env_create") }
        do {
            try check(mdb_env_set_mapsize(env, options.mapSize), "mdb_env_set_mapsize")
            try check(mdb_env_set_maxdbs(env, options.maxDatabases), "mdb_env_set_maxdbs")
            try check(mdb_env_set_maxreaders(env, options.maxReaders), "mdb_env_set_maxreaders")
            var flags = UInt32(MDB_NOTLS)
            if options.noSync { flags |= UInt32(MDB_NOSYNC) }
            if options.deferMetaSync && !options.noSync { flags |= UInt32(MDB_NOMETASYNC) }
            // 0600: the events are the owner's alone, whatever the umask (it only takes bits away).
            try check(mdb_env_open(env, path, flags, 0o600), "mdb_env_open \(path)")
        } catch {
            mdb_env_close(env)
            throw error
        }
        self.handle = env
        self.path = path
        self.maxPooledReaders = Int(options.maxReaders / 2)
        self.defersMetaSync = options.deferMetaSync && !options.noSync
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        durability = ThreadLock(Durability(durableID: info.me_last_txnid))  // what is on disk at open is durable
    }

    deinit {
        for reader in readerPool.withLock({ $0 }) { mdb_txn_abort(reader.txn) }
        mdb_env_close(handle)
    }

    /// Opens a named database, creating it if needed. Call once per name at start-up.
    public func openDatabase(_ name: String) throws(LMDBError) -> Database {
        let txn = try beginWrite()
        var dbi: MDB_dbi = 0
        try check(mdb_dbi_open(txn.handle, name, UInt32(MDB_CREATE), &dbi), "mdb_dbi_open \(name)")
        try txn.commit()
        return Database(dbi: dbi, name: name)
    }

    /// Begins the (single) write transaction. Blocks while another write transaction is open.
    /// The transaction must be committed or aborted on the thread that began it.
    public func beginWrite() throws(LMDBError) -> WriteTransaction {
        var txn: OpaquePointer?
        try check(mdb_txn_begin(handle, nil, 0, &txn), "mdb_txn_begin")
        guard let txn else { throw LMDBError(code: EINVAL, operation: "mdb_txn_begin") }
        return WriteTransaction(handle: txn, environment: self)
    }

    /// Runs `body` in a short read-only transaction taken from the pool.
    /// Values read are valid only inside `body`: copy what must outlive it.
    /// - Throws: what LMDB reports, e.g. a full reader table (``LMDBError/isReadersFull``).
    public func read<R>(_ body: (borrowing ReadTransaction) throws(LMDBError) -> R) throws(LMDBError) -> R {
        let txn = try beginRead()
        return try body(txn)
    }

    /// Begins a read-only transaction; prefer ``read(_:)``.
    public func beginRead() throws(LMDBError) -> ReadTransaction {
        let read = try beginReadAnyState()
        if defersMetaSync { try awaitDurable(Int(mdb_txn_id(read.handle))) }
        return read
    }

    private func beginReadAnyState() throws(LMDBError) -> ReadTransaction {
        if let pooled = readerPool.withLock({ $0.popLast() })?.txn {
            if mdb_txn_renew(pooled) == 0 { return ReadTransaction(handle: pooled, environment: self) }
            mdb_txn_abort(pooled)
        }
        var txn: OpaquePointer?
        try check(mdb_txn_begin(handle, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin(read)")
        guard let txn else { throw LMDBError(code: EINVAL, operation: "mdb_txn_begin(read)") }
        return ReadTransaction(handle: txn, environment: self)
    }

    private static let notDurable = LMDBError(code: EIO, operation: "reading a commit that could not be made durable")

    /// Waits, blocking this thread, until the commit `id` is durable (at most one sync).
    /// - Throws: EIO when a sync failed, since then nothing newer may be shown.
    @available(*, noasync, message: "async readers await awaitDurable() before reading")
    private func awaitDurable(_ id: Int) throws(LMDBError) {
        let durable = durability.wait(until: { $0.durableID >= id || $0.failed }) { state, _ in state.durableID >= id }
        if !durable { throw Self.notDurable }
    }

    /// Waits, without blocking a thread, until every commit made so far is durable: a read begun
    /// after it returns waits for no sync (unless a commit lands in between, then for that one).
    /// What an async caller (an HTTP handler) does before reading, so a slow disk holds its
    /// request, never the cooperative pool that answers `/healthz`.
    /// - Throws: EIO when a sync failed.
    public func awaitDurable() async throws(LMDBError) {
        guard defersMetaSync else { return }
        var info = MDB_envinfo()
        mdb_env_info(handle, &info)
        try await waitDurable(info.me_last_txnid)
    }

    private func waitDurable(_ id: Int) async throws(LMDBError) {
        // Most reads find it durable already: no continuation for them.
        let (durable, failed) = durability.withLock { ($0.durableID >= id, $0.failed) }
        if durable { return }
        if failed { throw Self.notDurable }
        do {
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
                let answer: Result<Void, LMDBError>? = durability.withLock { state in
                    if state.durableID >= id { return .success(()) }
                    if state.failed { return .failure(Self.notDurable) }
                    state.waiters.append((id, waiter))
                    return nil
                }
                switch answer {
                case .success?: waiter.resume()
                case .failure(let error)?: waiter.resume(throwing: error)
                case nil: break
                }
            }
        } catch {
            throw Self.notDurable
        }
    }

    /// Says every commit up to `id` is durable (a sync that began after it returned has ended);
    /// readers waiting for them go on.
    public func markDurable(through id: Int) {
        let ready = durability.change { state -> [CheckedContinuation<Void, any Error>] in
            if id > state.durableID { state.durableID = id }
            let durable = state.durableID
            let ready = state.waiters.filter { $0.id <= durable }.map(\.waiter)
            state.waiters.removeAll { $0.id <= durable }
            return ready
        }
        for waiter in ready { waiter.resume() }
    }

    /// Says a sync failed: readers waiting for a newer commit get an error instead of waiting.
    public func durabilityFailed() {
        let waiting = durability.change { state -> [CheckedContinuation<Void, any Error>] in
            state.failed = true
            defer { state.waiters = [] }
            return state.waiters.map(\.waiter)
        }
        for waiter in waiting { waiter.resume(throwing: Self.notDurable) }
    }

    func recycle(reader txn: OpaquePointer) {
        mdb_txn_reset(txn)
        let kept = readerPool.withLock { pool -> Bool in
            guard pool.count < maxPooledReaders else { return false }
            pool.append(PooledReader(txn: txn))
            return true
        }
        if !kept { mdb_txn_abort(txn) }
    }

    /// Flushes the data file to disk (only needed with `noSync`).
    public func sync() throws(LMDBError) {
        try check(mdb_env_sync(handle, 1), "mdb_env_sync")
    }

    /// Bytes of the data file in use: last used page × page size.
    public func usedBytes() -> Int { info(readers: false).usedBytes }

    /// The map's size and fill, the last transaction and the reader table, as of now.
    public func info() -> EnvironmentInfo { info(readers: true) }

    private func info(readers: Bool) -> EnvironmentInfo {
        var info = MDB_envinfo()
        var stat = MDB_stat()
        mdb_env_info(handle, &info)
        mdb_env_stat(handle, &stat)
        return EnvironmentInfo(
            mapSize: info.me_mapsize, pageSize: Int(stat.ms_psize), pagesUsed: info.me_last_pgno + 1, lastTransaction: info.me_last_txnid,
            maxReaders: Int(info.me_maxreaders), readersInUse: readers ? readersInUse() : 0)
    }

    /// Reader slots holding a read snapshot now, all processes.
    private func readersInUse() -> Int {
        // Slots holding a live read snapshot (a reset, pooled reader holds a slot but no snapshot):
        // mdb_reader_list prints a header, then "pid thread txnid" per slot, txnid "-" when idle.
        final class Lines { var active = 0 }
        let lines = Lines()
        mdb_reader_list(handle, { message, context in
            guard let message, let context else { return 0 }
            let fields = String(cString: message).split(separator: " ", omittingEmptySubsequences: true)
            if fields.count == 3, Int(fields[0]) != nil, fields[2].first != "-" {
                Unmanaged<Lines>.fromOpaque(context).takeUnretainedValue().active += 1
            }
            return 0
        }, Unmanaged.passUnretained(lines).toOpaque())
        return lines.active
    }

    /// The names of the named databases the environment holds (the keys of its main database).
    public func databaseNames() throws(LMDBError) -> [String] {
        try read { (txn) throws(LMDBError) in
            var dbi: MDB_dbi = 0
            try check(mdb_dbi_open(txn.handle, nil, 0, &dbi), "mdb_dbi_open(main)")
            var names: [String] = []
            try txn.withCursor(Database(dbi: dbi, name: "")) { (c) throws(LMDBError) in
                var entry = try c.first()
                while let e = entry {
                    names.append(String(decoding: e.key, as: UTF8.self))
                    entry = try c.next()
                }
            }
            return names
        }
    }

    /// Writes a compacted copy of the environment (free pages left out) to `descriptor`, as of a
    /// read snapshot it takes itself: consistent beside a live writer, in this process or another.
    public func copyCompacted(to descriptor: Int32) throws(LMDBError) {
        try check(mdb_env_copyfd2(handle, descriptor, UInt32(MDB_CP_COMPACT)), "mdb_env_copyfd2")
    }
}

/// What ``Environment/info()`` reports.
public struct EnvironmentInfo: Sendable {
    /// The largest the data file may grow to.
    public var mapSize: Int
    public var pageSize: Int
    /// Pages up to the last one used (the data file's high-water mark).
    public var pagesUsed: Int
    public var lastTransaction: Int
    /// The reader table's size, and slots holding a read snapshot now (all processes).
    public var maxReaders: Int
    public var readersInUse: Int

    public var usedBytes: Int { pagesUsed * pageSize }
    public var pagesTotal: Int { mapSize / max(pageSize, 1) }
    /// How full the map is, 0 to 1: at 1 a write fails with `MDB_MAP_FULL`.
    public var fill: Double { mapSize == 0 ? 0 : Double(usedBytes) / Double(mapSize) }
}

/// A named database inside an ``Environment``. Opened once; valid for the environment's life.
public struct Database: Sendable, Hashable {
    let dbi: MDB_dbi
    /// The database's name.
    public let name: String
}

/// A reset read transaction waiting in the pool; `MDB_NOTLS` lets any thread renew it.
private struct PooledReader: @unchecked Sendable {
    let txn: OpaquePointer
}
