import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Says one process writes a data folder: `laterbase serve`, `import --data` and `restore` hold it
/// while they run. LMDB would let two processes write one folder, but a node keeps its heads and
/// clock in memory, so a second writer's events would be unknown to it. Readers (`backup`,
/// `export`, `stats`) take no lock: they may run beside a serving node.
public final class DataFolderLock: Sendable {
    private let descriptor: Int32

    /// Takes the lock on `directory` (creating the folder), or throws naming the holder.
    public init(directory: String) throws(LaterbaseError) {
        try? PrivateFiles.makeFolder(directory)
        let path = directory + "/laterbase.pid"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, PrivateFiles.fileMode)
        guard fd >= 0 else { throw LaterbaseError(.badRequest, "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            throw LaterbaseError(.badRequest, "another laterbase process\(holder.isEmpty ? "" : " (pid \(holder))") is using \(directory); stop it first, or use a copy (laterbase backup)")
        }
        ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        descriptor = fd
    }

    deinit { close(descriptor) }
}
