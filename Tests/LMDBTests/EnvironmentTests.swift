import Foundation
import LMDB
import Synchronization
import Testing

/// A fresh environment in a temporary folder, removed when the environment is released.
private final class TemporaryEnvironment {
    let path: String
    let env: Environment

    init(options: Environment.Options = Environment.Options()) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("lmdb-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        env = try Environment(path: path, options: options)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

@Suite struct EnvironmentTests {
    @Test func committedWritesAreReadBackAndAbortedOnesAreNot() throws {
        let temporary = try TemporaryEnvironment()
        let env = temporary.env
        let db = try env.openDatabase("things")

        let txn = try env.beginWrite()
        try txn.put(db, Array("a".utf8), Array("1".utf8))
        try txn.commit()

        let aborted = try env.beginWrite()
        try aborted.put(db, Array("b".utf8), Array("2".utf8))
        aborted.abort()

        let dropped = try env.beginWrite()
        try dropped.put(db, Array("c".utf8), Array("3".utf8))
        _ = consume dropped  // dropping aborts

        try env.read { (txn) throws(LMDBError) in
            #expect(try txn.get(db, Array("a".utf8)).map { Array($0) } == Array("1".utf8))
            #expect(try txn.get(db, Array("b".utf8)).map { Array($0) } == nil)
            #expect(try txn.get(db, Array("c".utf8)).map { Array($0) } == nil)
            #expect(try txn.count(db) == 1)
        }
    }

    /// Appending while keys come in order, then an ordinary put once one does not: nothing is
    /// lost or misplaced, and the caller is told to stop appending.
    @Test func putsAppendWhileTheyCanAndFallBackWhenTheyCannot() throws {
        let temporary = try TemporaryEnvironment()
        let env = temporary.env
        let db = try env.openDatabase("things")
        func key(_ n: UInt64) -> [UInt8] { withUnsafeBytes(of: n.bigEndian) { Array($0) } }
        var appending = true
        let txn = try env.beginWrite()
        for n: UInt64 in [10, 20, 30] { try txn.put(db, key(n), Array("v\(n)".utf8), appending: &appending) }
        #expect(appending)
        try txn.put(db, key(15), Array("v15".utf8), appending: &appending)  // not past the last key
        #expect(!appending)
        try txn.put(db, key(40), Array("v40".utf8), appending: &appending)
        try txn.put(db, key(5), Array("v5".utf8), appending: &appending)
        try txn.commit()
        var again = true
        let next = try env.beginWrite()
        try next.put(db, key(50), Array("v50".utf8), appending: &again)
        try next.put(db, key(30), Array("new30".utf8), appending: &again)  // an existing key: replaced
        #expect(!again)
        try next.commit()
        let stored = try env.read { (txn) throws(LMDBError) in
            try [5, 10, 15, 20, 30, 40, 50].map { (n: UInt64) throws(LMDBError) in try txn.get(db, key(n)).map { String(decoding: $0, as: UTF8.self) } }
        }
        #expect(stored == ["v5", "v10", "v15", "v20", "new30", "v40", "v50"])
        let keys = try env.read { (txn) throws(LMDBError) in
            try txn.withCursor(db) { (c) throws(LMDBError) in
                var out: [[UInt8]] = []
                var entry = try c.first()
                while let e = entry {
                    out.append(Array(e.key))
                    entry = try c.next()
                }
                return out
            }
        }
        #expect(keys == [5, 10, 15, 20, 30, 40, 50].map(key))
    }

    @Test func cursorsSeekInKeyOrder() throws {
        let temporary = try TemporaryEnvironment()
        let env = temporary.env
        let db = try env.openDatabase("ordered")
        let txn = try env.beginWrite()
        for k in [UInt8(5), 1, 9, 3] { try txn.put(db, [k], [k * 2]) }
        try txn.commit()
        try env.read { (txn) throws(LMDBError) in
            try txn.withCursor(db) { (c) throws(LMDBError) in
                #expect(try c.seek(atOrAfter: [4]).map { Array($0.key) } == [5])
                #expect(try c.next().map { Array($0.value) } == [18])
                #expect(try c.next() == nil)
                #expect(try c.seek(atOrBefore: [4]).map { Array($0.key) } == [3])
                #expect(try c.seek(atOrBefore: [0]) == nil)
                #expect(try c.seek(atOrBefore: [200]).map { Array($0.key) } == [9])
                #expect(try c.first().map { Array($0.key) } == [1])
                #expect(try c.last().map { Array($0.key) } == [9])
            }
        }
    }

    /// LMDB refuses an empty key with MDB_BAD_VALSIZE; the wrapper used to trap on it (one
    /// `GET /a/{root}?after=` killed a node).
    @Test func keysLMDBRefusesAreErrorsNotTraps() throws {
        let temporary = try TemporaryEnvironment()
        let env = temporary.env
        let db = try env.openDatabase("keys")
        let txn = try env.beginWrite()
        try txn.put(db, [1], [1])
        try txn.commit()
        for key in [[UInt8]()] {
            let error = #expect(throws: LMDBError.self) {
                try env.read { (txn) throws(LMDBError) in
                    try txn.withCursor(db) { (c) throws(LMDBError) in _ = try c.seek(atOrAfter: key) }
                }
            }
            #expect(error?.code == -30781)  // MDB_BAD_VALSIZE
            #expect(throws: LMDBError.self) { try env.read { (txn) throws(LMDBError) in _ = try txn.get(db, key) } }
        }
        // Still usable.
        #expect(try env.read { (txn) throws(LMDBError) in try txn.count(db) } == 1)
    }

    /// With every reader slot taken, a read is an error the caller can turn into a 503.
    @Test func aFullReaderTableIsAnError() throws {
        var options = Environment.Options()
        options.maxReaders = 2
        let temporary = try TemporaryEnvironment(options: options)
        let env = temporary.env
        let db = try env.openDatabase("r")
        let first = try env.beginRead(), second = try env.beginRead()
        let error = #expect(throws: LMDBError.self) { try env.read { (txn) throws(LMDBError) in _ = try txn.count(db) } }
        #expect(error?.isReadersFull == true)
        _ = consume first
        _ = consume second
        #expect(try env.read { (txn) throws(LMDBError) in try txn.count(db) } == 0)
    }

    @Test func readersSeeASnapshotWhileTheWriterGoesOn() throws {
        let temporary = try TemporaryEnvironment()
        let env = temporary.env
        let db = try env.openDatabase("snap")
        let reader = try env.beginRead()
        let txn = try env.beginWrite()
        try txn.put(db, [1], [1])
        try txn.commit()
        #expect(try reader.get(db, [1]).map { Array($0) } == nil)
        _ = consume reader
        let after: [UInt8]? = try env.read { (txn) throws(LMDBError) in try txn.get(db, [1]).map { Array($0) } }
        #expect(after == [1])
    }

    @Test func aFullMapIsAClearErrorNotACrash() throws {
        var options = Environment.Options()
        options.mapSize = 1 << 20
        let temporary = try TemporaryEnvironment(options: options)
        let env = temporary.env
        let db = try env.openDatabase("big")
        var caught: LMDBError? = nil
        let value = [UInt8](repeating: 7, count: 4000)
        outer: for round in 0..<100 {
            do {
                let txn = try env.beginWrite()
                for i in 0..<50 { try txn.put(db, Array("\(round)-\(i)".utf8), value) }
                try txn.commit()
            } catch {
                caught = error
                break outer
            }
        }
        let error = try #require(caught)
        #expect(error.isMapFull)
        #expect(error.description.contains("MDB_MAP_FULL"))
        // The environment is still usable for reads and smaller writes after the failure.
        let before = try env.read { (txn) throws(LMDBError) in try txn.count(db) }
        #expect(before > 0)
    }
}

@Suite struct DeferredMetaSyncTests {
    /// With the meta page's sync deferred, a commit is not readable until it is marked durable:
    /// a reader that starts in between waits, then sees it.
    @Test func aCommitIsNotReadUntilMarkedDurable() async throws {
        let temporary = try TemporaryEnvironment.deferringMetaSync()
        let env = temporary.env
        #expect(env.defersMetaSync)
        let db = try env.openDatabase("things")  // a plain commit() is durable at once
        try env.read { (txn) throws(LMDBError) in #expect(try txn.get(db, Array("a".utf8)) == nil) }

        let txn = try env.beginWrite()
        try txn.put(db, Array("a".utf8), Array("1".utf8))
        let id = try txn.commitDeferringDurability()

        let seen = Mutex<[UInt8]?>(nil)
        let reader = Thread {
            let value = try? env.read { (txn) throws(LMDBError) in try txn.get(db, Array("a".utf8)).map { Array($0) } }
            seen.withLock { $0 = value ?? nil }
        }
        reader.start()
        try await Task.sleep(for: .milliseconds(300))
        #expect(seen.withLock { $0 } == nil, "the reader saw a commit before it was durable")
        try env.sync()
        env.markDurable(through: id)
        for _ in 0..<100 where seen.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(20)) }
        #expect(seen.withLock { $0 } == Array("1".utf8))
    }

    /// A failed sync makes waiting readers fail rather than wait for ever or see the commit.
    @Test func aFailedSyncFailsTheReadersWaitingForIt() async throws {
        let temporary = try TemporaryEnvironment.deferringMetaSync()
        let env = temporary.env
        let db = try env.openDatabase("things")
        let txn = try env.beginWrite()
        try txn.put(db, Array("a".utf8), Array("1".utf8))
        _ = try txn.commitDeferringDurability()
        env.durabilityFailed()
        #expect(throws: LMDBError.self) { try env.read { (txn) throws(LMDBError) in _ = try txn.get(db, Array("a".utf8)) } }
    }

    /// An async reader waits for durability without a thread: its task is suspended while the
    /// sync is out (the pool's threads are free meanwhile), goes on once the commit is marked
    /// durable, and fails, not waits, when the sync failed.
    @Test func anAsyncReaderAwaitsDurabilityWithoutAThread() async throws {
        let temporary = try TemporaryEnvironment.deferringMetaSync()
        let env = temporary.env
        let db = try env.openDatabase("things")
        try await env.awaitDurable()  // nothing pending: at once
        let txn = try env.beginWrite()
        try txn.put(db, Array("a".utf8), Array("1".utf8))
        let id = try txn.commitDeferringDurability()
        let waiters = (0..<64).map { _ in Task { try await env.awaitDurable() } }  // more than the pool has threads
        let done = Mutex(false)
        let watcher = Task {
            for w in waiters { try await w.value }
            done.withLock { $0 = true }
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(done.withLock { $0 } == false, "an async reader went on before the commit was durable")
        // The pool still runs other work while 64 readers wait.
        let other = await Task { 6 * 7 }.value
        #expect(other == 42)
        try env.sync()
        env.markDurable(through: id)
        try await watcher.value
        #expect(try env.read { (txn) throws(LMDBError) in try txn.get(db, Array("a".utf8)).map { Array($0) } } == Array("1".utf8))

        let next = try env.beginWrite()
        try next.put(db, Array("b".utf8), Array("2".utf8))
        _ = try next.commitDeferringDurability()
        let failing = Task { try await env.awaitDurable() }
        try await Task.sleep(for: .milliseconds(50))
        env.durabilityFailed()
        await #expect(throws: LMDBError.self) { try await failing.value }
    }
}

extension TemporaryEnvironment {
    /// An environment whose commits are durable only once marked (``Environment/Options/deferMetaSync``).
    static func deferringMetaSync() throws -> TemporaryEnvironment {
        var options = Environment.Options()
        options.deferMetaSync = true
        return try TemporaryEnvironment(options: options)
    }
}
