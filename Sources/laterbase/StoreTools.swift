import ArgumentParser
import Foundation
import LaterbaseCore
import LaterbaseDemo

#if canImport(Glibc)
import Glibc
#endif

/// What the store commands share: opening a node's folder beside a node that may be serving it,
/// and progress lines on a terminal.
enum StoreTools {
    /// Opens the store in `directory` with every root it holds (the demo's typed roots as the
    /// node defines them, any other as schema-less) and `extra` roots.
    /// - Throws: when the folder holds no store and `create` is false.
    static func open(_ directory: String, extra: [String] = [], create: Bool = false) throws -> EventStore {
        let stored = try EventStore.storedRoots(in: directory)
        guard stored != nil || create else { throw ValidationError("\(directory) holds no Laterbase store (no data.mdb)") }
        var roots = Demo.roots
        for name in (stored ?? []) + extra where !roots.contains(where: { $0.name == name }) { roots.append(.jsonMerge(name)) }
        var options = EventStore.Options()
        if stored != nil { options.mapSize = 0 }  // as the node made it
        options.overlapSyncs = false  // a tool's reads must not wait for another process's marks
        return try EventStore(directory: directory, roots: roots, options: options)
    }

    /// Whether progress lines go to stderr: only on a terminal.
    static let interactive = isatty(STDERR_FILENO) == 1

    /// Rewrites the progress line on stderr (a terminal only).
    static func progress(_ line: String) {
        guard interactive else { return }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
    }

    /// Ends the progress line and prints `line` on stderr.
    static func report(_ line: String) {
        FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + line + "\n").utf8))
    }

    static func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
}

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy a node's store to one file, while it serves.",
        discussion: """
            A compacted copy (free pages left out) of one consistent snapshot, taken beside the live \
            writer; everything it holds is made durable before the file is complete. The file is \
            written as FILE.partial and renamed when whole. Restore it with `laterbase restore`.
            """)

    @Option(help: "The node's data folder.")
    var data: String = "./laterbase-data"
    @Option(help: "The backup file to write.")
    var to: String

    func run() throws {
        let started = Date()
        let summary = try Backup.create(from: data, to: to) { copied, total in
            StoreTools.progress("backup: \(StoreTools.mib(copied)) copied (the data file uses \(StoreTools.mib(total)))")
        }
        StoreTools.report(String(format: "backup: %@ written to %@ in %.1f s (the data file used %@)",
            StoreTools.mib(summary.bytes), to, Date().timeIntervalSince(started), StoreTools.mib(summary.sourceBytes)))
    }
}

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Make a node's data folder from a backup file.",
        discussion: """
            The restored node gets a new replica id. Its old id may have recorded events after the \
            backup that its peers hold; new events under the old id would reuse those seqs and fork \
            the origin. With a new id the old id's events are history like any peer's, and once \
            the node peers again its peers give it back what it lacks. Start it with `laterbase \
            serve --data DIR --peer ...` (without --replica-id).
            """)

    @Option(help: "The backup file.")
    var from: String
    @Option(help: "The data folder to make (new, or empty).")
    var data: String
    @Flag(name: .customLong("keep-replica-id"), help: ArgumentHelp(
        "Keep the backup's replica id. DANGEROUS: only when that id recorded nothing after the backup.",
        discussion: "If the old node (or anything under its id) took writes after the backup, its peers hold events this node would mint again under the same seqs with other content: they are refused as conflicts and that origin stops syncing."))
    var keepReplicaID = false

    func run() throws {
        let lock = try DataFolderLock(directory: data)
        let (old, new) = try Backup.restore(from: from, into: data, identity: keepReplicaID ? .kept : .fresh)
        withExtendedLifetime(lock) {}
        let store = try StoreTools.open(data)
        let stats = try store.statistics()
        let events = stats.roots.map { "\($0.name) \($0.events)" }.joined(separator: ", ")
        StoreTools.report("restored \(from) into \(data): replica id \(new)\(new == old ? " (kept)" : " (was \(old))"); events: \(events)")
    }
}

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "What a data folder holds, and how full its map is (a node may be serving it).",
        discussion: "The same JSON as GET /stats with --json.")

    @Option(help: "The node's data folder.")
    var data: String = "./laterbase-data"
    @Flag(help: "Print JSON, as GET /stats answers.")
    var json = false

    func run() throws {
        let stats = try StoreTools.open(data).statistics()
        if json {
            print(String(decoding: stats.json.bytes, as: UTF8.self))
            return
        }
        let e = stats.environment
        print("replica \(stats.replicaID)")
        print(String(format: "map: %@ of %@ used (%.2f%%), %d of %d pages of %d bytes, transaction %d",
            StoreTools.mib(e.usedBytes), StoreTools.mib(e.mapSize), e.fill * 100, e.pagesUsed, e.pagesTotal, e.pageSize, e.lastTransaction))
        print("readers: \(e.readersInUse) in use of \(e.maxReaders)")
        for r in stats.roots {
            print("\(r.name): \(r.events) events, \(r.origins) origins, \(r.aggregates) aggregates, \(StoreTools.mib(r.bytes)); head \(r.head.description.isEmpty ? "(empty)" : r.head.description)")
        }
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a root's recorded events as NDJSON, in feed order (a node may be serving the folder).",
        discussion: """
            One recorded event a line, as GET /e/{root} serves them, in (hlc, origin, seq) order, \
            to stdout. `laterbase import` reads it back, into a running node or a stopped node's \
            folder. With --vv, only the events that vv lacks.
            """)

    @Option(help: "The node's data folder.")
    var data: String = "./laterbase-data"
    @Option(help: "The root to export.")
    var root: String
    @Option(help: "Export only what this version vector lacks (origin:seq,...).")
    var vv: String = ""

    func run() throws {
        let store = try StoreTools.open(data)
        var after: VersionVector
        do { after = try VersionVector(parsing: vv) } catch { throw ValidationError("--vv: \(error)") }
        let head = try store.head(of: root)
        let total = after.count(missingFrom: head)
        var written = 0
        let out = FileHandle.standardOutput
        while true {
            let page = try store.feed(root: root, after: after, limit: 10_000, maxBytes: 8 << 20, separator: UInt8(ascii: "\n"))
            // Hand out only what is durable: the node acknowledges nothing before it is.
            try store.makeDurable()
            if page.count > 0 { out.write(Data(page.events)) }
            written += page.count
            after = page.vv
            StoreTools.progress("export \(root): \(written) of \(total) events")
            if !page.more || page.count == 0 { break }
        }
        StoreTools.report("export \(root): \(written) events; vv \(after)")
    }
}
