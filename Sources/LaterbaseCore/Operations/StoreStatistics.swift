import Foundation
import LMDB

/// What a store holds and how full its map is: `laterbase stats` and `GET /stats`.
public struct StoreStatistics: Sendable {
    /// One root's share.
    public struct Root: Sendable {
        public var name: String
        /// Events stored (all origins).
        public var events: Int
        /// Origins that recorded them.
        public var origins: Int
        public var aggregates: Int
        /// Bytes of the pages its databases take (log, ids, index, aggregates, checkpoints, heads,
        /// duplicates, unfolded, positions).
        public var bytes: Int
        public var head: VersionVector
    }

    public var replicaID: String
    public var roots: [Root]
    public var environment: EnvironmentInfo

    /// As `GET /stats` answers: `{"replica", "roots": [{"root", "events", "origins",
    /// "aggregates", "bytes", "head"}], "map": {...}, "readers": {"in_use", "max"}}`.
    public var json: JSON {
        let e = environment
        return .object([
            ("replica", .string(replicaID)),
            ("roots", .array(roots.map { r in
                .object([
                    ("root", .string(r.name)), ("events", .integer(r.events)), ("origins", .integer(r.origins)),
                    ("aggregates", .integer(r.aggregates)), ("bytes", .integer(r.bytes)), ("head", .string(r.head.description)),
                ])
            })),
            ("map", .object([
                ("size_bytes", .integer(e.mapSize)), ("used_bytes", .integer(e.usedBytes)), ("fill", .number(String(format: "%.6f", e.fill))),
                ("page_size", .integer(e.pageSize)), ("pages_used", .integer(e.pagesUsed)), ("pages_total", .integer(e.pagesTotal)),
                ("last_transaction", .integer(e.lastTransaction)),
            ])),
            ("readers", .object([("in_use", .integer(e.readersInUse)), ("max", .integer(e.maxReaders))])),
        ])
    }
}

extension EventStore {
    /// Counts and sizes per root, the map's fill and the reader table, from one read snapshot.
    public func statistics() throws(LaterbaseError) -> StoreStatistics {
        do {
            let perRoot = try env.read { (txn) throws(LMDBError) -> [StoreStatistics.Root] in
                var out: [StoreStatistics.Root] = []
                for name in rootNames {
                    let r = self.roots[name]!
                    var bytes = 0
                    for db in [r.log, r.ids, r.agg, r.aggs, r.states, r.checkpoints, r.heads, r.duplicates, r.unfolded, r.positions, r.moved] {
                        bytes += try txn.statistics(db).bytes
                    }
                    let heads = try r.heads(in: txn)
                    out.append(StoreStatistics.Root(
                        name: name, events: try txn.count(r.log), origins: heads.count, aggregates: try txn.count(r.aggs), bytes: bytes,
                        head: heads.versionVector))
                }
                return out
            }
            return StoreStatistics(replicaID: replicaID, roots: perRoot, environment: env.info())
        } catch {
            throw LaterbaseError(storage: error, "reading the store's statistics")
        }
    }

    /// Makes every commit made so far, by any process, durable (an fsync of the data file). A tool
    /// reading a serving node's folder calls it before it hands out what it read, since the
    /// node acknowledges a commit only once it is durable.
    public func makeDurable() throws(LaterbaseError) {
        do { try env.sync() } catch { throw LaterbaseError(storage: error, "syncing the data file") }
    }

    /// The roots whose databases a data folder holds, or nil when it holds no store. Opens nothing
    /// for writing; a node may be serving the folder meanwhile.
    public static func storedRoots(in directory: String) throws -> [String]? {
        guard FileManager.default.fileExists(atPath: directory + "/data.mdb") else { return nil }
        var options = Environment.Options()
        options.mapSize = 0
        let env = try Environment(path: directory, options: options)
        return try env.databaseNames().compactMap { $0.hasSuffix(".log") ? String($0.dropLast(4)) : nil }.sorted()
    }
}
