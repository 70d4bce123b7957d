import Blocking
import Foundation
import LMDB

#if canImport(Glibc)
import Glibc
#endif

/// Backups of a data folder while its node serves, and nodes made from them.
///
/// A backup is one file: a compacted copy of the LMDB environment (`mdb_env_copyfd2` with
/// `MDB_CP_COMPACT`) as of one read snapshot, which LMDB takes beside a live writer in any
/// process. Every commit the snapshot holds is made durable at the source before the backup is
/// complete, so a backup never holds an event its node could still lose.
public enum Backup {
    /// What a backup wrote.
    public struct Summary: Sendable {
        /// Bytes of the backup file.
        public var bytes: Int
        /// Bytes of the data file in use when it began (the copy leaves free pages out).
        public var sourceBytes: Int
    }

    /// Copies the store in `directory` to `file`, written beside it as `file.partial` and renamed
    /// once complete and synced (an interrupted backup never leaves a file that looks whole).
    /// - Parameter progress: called with the bytes copied so far and the data file's bytes in use.
    public static func create(from directory: String, to file: String, progress: (Int, Int) -> Void = { _, _ in }) throws -> Summary {
        guard FileManager.default.fileExists(atPath: directory + "/data.mdb") else {
            throw DataFolderError(.notAStore, "\(directory) holds no Laterbase store (no data.mdb)")
        }
        var options = Environment.Options()
        options.mapSize = 0
        let env = try Environment(path: directory, options: options)
        let sourceBytes = env.usedBytes()
        let partial = file + ".partial"
        let out = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, PrivateFiles.fileMode)
        guard out >= 0 else { throw DataFolderError(.io, "cannot create \(partial): \(String(cString: strerror(errno)))") }
        var closed = false
        defer { if !closed { close(out); unlink(partial) } }

        // LMDB writes the copy into a pipe from a thread; this one moves it to the file, counting.
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw DataFolderError(.io, "pipe: \(String(cString: strerror(errno)))") }
        // Copying, then done with LMDB's error if any: the one thing this thread waits for.
        let copied = ThreadLock<Result<Void, LMDBError>?>(nil)
        let writeEnd = fds[1]
        let copier = Thread {
            let result = Result { () throws(LMDBError) in try env.copyCompacted(to: writeEnd) }
            close(writeEnd)
            copied.change { $0 = result }
        }
        copier.name = "laterbase-backup"
        copier.start()
        // On a failed write, read the pipe to its end anyway, so the copying thread finishes.
        let pumped = Result { () throws(DataFolderError) in
            try pump(from: fds[0], named: "the copy of \(directory)", to: out, named: partial) { progress($0, sourceBytes) }
        }
        if case .failure = pumped { while drain(fds[0]) {} }
        close(fds[0])
        let copy = copied.wait(until: { $0.map { _ in true } ?? false }) { result, _ in result! }
        if case .failure(let error) = copy { throw DataFolderError(.io, "copying \(directory): \(error)") }
        let total = try pumped.get()
        // What the snapshot holds may include a commit the node has not yet synced: sync it here.
        try env.sync()
        guard fsync(out) == 0 else { throw DataFolderError(.noSpace, "syncing \(partial): \(String(cString: strerror(errno)))") }
        close(out)
        closed = true
        guard rename(partial, file) == 0 else { throw DataFolderError(.io, "renaming \(partial) to \(file): \(String(cString: strerror(errno)))") }
        syncFolder(of: file)
        return Summary(bytes: total, sourceBytes: sourceBytes)
    }

    /// Who a restored node is.
    public enum Identity: Sendable {
        /// A new replica id (the default): the node's peers may hold events its old id recorded
        /// after the backup, and minting those seqs again would fork that origin. Its old id's
        /// events are history it holds, and peers give it back what it lacks.
        case fresh
        /// The backup's replica id, for a node whose id never recorded anything after the backup.
        case kept
        /// A given id.
        case named(String)
    }

    /// Makes a data folder from a backup file.
    /// - Returns: the backup's replica id and the restored node's.
    /// - Throws: ``DataFolderError`` (`holdsAStore` when `directory` already holds a store, `notABackup` when `file` is not a backup
    ///   this build reads), or the store's own error reading the copy.
    public static func restore(from file: String, into directory: String, identity: Identity = .fresh) throws -> (old: String, new: String) {
        guard FileManager.default.fileExists(atPath: file) else { throw DataFolderError(.notABackup, "no backup file at \(file)") }
        let target = directory + "/data.mdb"
        if FileManager.default.fileExists(atPath: target) {
            throw DataFolderError(.holdsAStore, "\(directory) already holds a store; restore into a new or empty folder")
        }
        try PrivateFiles.makeFolder(directory)
        let partial = target + ".partial"
        try copyFile(file, to: partial)
        guard rename(partial, target) == 0 else { throw DataFolderError(.io, "renaming \(partial): \(String(cString: strerror(errno)))") }
        func discard() {
            try? FileManager.default.removeItem(atPath: target)
            try? FileManager.default.removeItem(atPath: directory + "/lock.mdb")
        }
        var options = Environment.Options()
        options.mapSize = 0
        let env: Environment
        do { env = try Environment(path: directory, options: options) } catch {
            discard()
            throw DataFolderError(.notABackup, "\(file) is not a Laterbase backup: \(error)")
        }
        let meta = try env.openDatabase("_meta")
        let (stored, format) = try env.read { (txn) throws(LMDBError) in
            (try txn.get(meta, Array("replica".utf8)).map { String(decoding: $0, as: UTF8.self) },
             try txn.get(meta, Array("format".utf8)).map { String(decoding: $0, as: UTF8.self) })
        }
        guard let stored, let format, format == EventStore.format || EventStore.upgradable.contains(format) else {
            discard()
            throw DataFolderError(.notABackup, "\(file) is not a Laterbase backup of store format \(([EventStore.format] + EventStore.upgradable).joined(separator: ", "))")
        }
        let new: String
        switch identity {
        case .fresh: new = EventStore.newReplicaID()
        case .kept: new = stored
        case .named(let id):
            guard Names.isValidOrigin(id) else { throw DataFolderError(.invalidArgument, "'\(id)' is not a valid replica id") }
            new = id
        }
        // A restore starts a new epoch: positions issued before it are refused (410), and a
        // client falls back to its vv, which misses nothing the backup lacks.
        let txn = try env.beginWrite()
        try txn.put(meta, Array("replica".utf8), Array(new.utf8))
        try txn.put(meta, Array("epoch".utf8), .written(count: 8) { $0.u64(EventStore.newEpoch()) })
        try txn.commit()
        return (stored, new)
    }

    private static func copyFile(_ source: String, to destination: String) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw DataFolderError(.io, "cannot read \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, PrivateFiles.fileMode)
        guard output >= 0 else { throw DataFolderError(.io, "cannot create \(destination): \(String(cString: strerror(errno)))") }
        defer { close(output) }
        _ = try pump(from: input, named: source, to: output, named: destination)
        guard fsync(output) == 0 else { throw DataFolderError(.noSpace, "syncing \(destination): \(String(cString: strerror(errno)))") }
    }

    /// Copies everything `input` gives to `output`; returns the bytes copied.
    private static func pump(
        from input: Int32, named source: String, to output: Int32, named destination: String, progress: (Int) -> Void = { _ in }
    ) throws(DataFolderError) -> Int {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw DataFolderError(.io, "reading \(source): \(String(cString: strerror(errno)))") }
            if n == 0 { return total }
            guard writeAll(output, buffer, count: n) else { throw DataFolderError(.noSpace, "writing \(destination): \(String(cString: strerror(errno)))") }
            total += n
            progress(total)
        }
    }

    /// Reads and discards a chunk; false at the end.
    private static func drain(_ fd: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        return n > 0 || (n < 0 && errno == EINTR)
    }

    private static func writeAll(_ fd: Int32, _ buffer: [UInt8], count: Int) -> Bool {
        var done = 0
        while done < count {
            let n = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + done, count - done) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            done += n
        }
        return true
    }

    /// Syncs the folder holding `path`, so a rename into it survives a crash.
    private static func syncFolder(of path: String) {
        let folder = (path as NSString).deletingLastPathComponent
        let fd = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}
