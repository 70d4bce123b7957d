import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Says one process writes a data folder. A node takes it before it opens its store and holds it
/// until it has stopped (`LaterbaseServer`, so `laterbase serve` and an app that embeds a node;
/// ``EdgeDevice``); `import --data` and `restore` hold it while they run. LMDB would let two
/// processes write one folder, but a node keeps its heads, seqs and clock in memory, so a second
/// writer would hand out the same seqs and lose acknowledged events. The lock is `flock` on
/// `laterbase.pid`, per open file, so a second node on the folder in the same process is refused
/// too. Readers (`backup`, `export`, `stats`) take no lock: they may run beside a serving node.
public final class DataFolderLock: Sendable {
    private let descriptor: Mutex<Int32?>

    /// Takes the lock on `directory` (creating the folder), or throws naming the holder.
    public init(directory: String) throws(DataFolderError) {
        try? PrivateFiles.makeFolder(directory)
        let path = directory + "/laterbase.pid"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, PrivateFiles.fileMode)
        guard fd >= 0 else { throw DataFolderError(.io, "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            if holder == "\(getpid())" {
                throw DataFolderError(.inUse, "a node in this process already holds \(directory); stop it (its run() returns) before opening another on the folder")
            }
            throw DataFolderError(.inUse, "another laterbase process\(holder.isEmpty ? "" : " (pid \(holder))") is using \(directory); stop it first, or use a copy (laterbase backup)")
        }
        ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        descriptor = Mutex(fd)
    }

    /// Lets the folder go (a node that has stopped); again is nothing.
    public func release() {
        descriptor.withLock { fd in
            if let held = fd { close(held) }
            fd = nil
        }
    }

    deinit { release() }
}
