import Foundation
import LMDB
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The durable event store: every root a G-Set of events in one LMDB environment.
///
/// Reads (``feed(root:after:limit:separator:)``, ``aggregate(root:id:asOf:recordedBy:)``,
/// ``aggregates(root:after:limit:)``) run on any thread in short read-only transactions. Writes go
/// through a ``Writer``, the only thing that opens write transactions.
public final class EventStore: Sendable {
    /// Store settings.
    public struct Options: Sendable {
        /// Largest size of the data file, in bytes (sparse: large costs nothing up front).
        public var mapSize: Int = 64 << 30
        /// A checkpoint of each aggregate's state every this many events.
        public var checkpointEvery: UInt64 = 128
        /// A `time` or `hlc` this far ahead of the node's clock, in ms, is refused.
        public var maxSkewMilliseconds: Int64 = 60_000
        /// Skip fsync on commit (benchmarks only: acknowledged events could be lost).
        public var noSync: Bool = false
        /// Largest batch one write may hold.
        public var maxBatchEvents: Int = 10_000
        /// Sync once per commit on the writer's thread and the meta page on the acknowledging
        /// thread, while the writer builds the next transaction (see ``Writer``). Off: LMDB
        /// syncs twice inside every commit. Either way nothing is acknowledged, published or
        /// readable before it is durable.
        public var overlapSyncs: Bool = true
        /// The largest event, in its recorded form as served (contract v3: 1 MiB by default,
        /// at most ``largestEventBytes``). Every transport carries an event this large.
        public var maxEventBytes: Int = 1 << 20
        public init() {}
    }

    /// The largest `maxEventBytes` a node may take: 16 MiB.
    public static let largestEventBytes = 16 << 20
    /// A feed page's bytes, but for a page of one event that alone is larger (contract v3).
    public static let pageBytes = 4 << 20

    /// This node's origin: the replica id its new events are recorded under.
    public let replicaID: String
    /// The store's epoch: random, made with the store and again by every restore; it names
    /// the node and the epoch in each ``Position`` token.
    public let epoch: UInt64
    /// The roots, in declaration order.
    public let rootNames: [String]
    public let options: Options
    let env: Environment
    let roots: [String: RootDatabases]
    let meta: Database
    let logger: Logger
    let physicalTime: @Sendable () -> UInt64

    /// Opens (creating if needed) the store in `directory`.
    /// - Parameters:
    ///   - directory: the data folder; created if missing.
    ///   - roots: the application's roots.
    ///   - replicaID: this node's origin; by default the one kept in the store, or a new one.
    ///   - options: limits and tuning.
    ///   - logger: where the store logs.
    public init(
        directory: String, roots: [RootDefinition], replicaID: String? = nil, options: Options = Options(),
        logger: Logger = Logger(label: "laterbase.store"), physicalTime: @escaping @Sendable () -> UInt64 = SystemClock.milliseconds
    ) throws {
        // A folder that cannot be made is reported by mdb_env_open just below, with its path.
        try? PrivateFiles.makeFolder(directory)
        var envOptions = Environment.Options()
        envOptions.mapSize = options.mapSize
        envOptions.maxDatabases = RootDatabases.perRoot * UInt32(roots.count) + 4
        envOptions.noSync = options.noSync
        envOptions.deferMetaSync = options.overlapSyncs
        let env = try Environment(path: directory, options: envOptions)
        var opened: [String: RootDatabases] = [:]
        for root in roots {
            guard opened[root.name] == nil else { throw LaterbaseError(.badRequest, "root '\(root.name)' is declared twice") }
            opened[root.name] = try RootDatabases(root, in: env)
        }
        let meta = try env.openDatabase("_meta")
        self.meta = meta
        self.env = env
        self.roots = opened
        self.rootNames = roots.map(\.name)
        self.options = options
        self.logger = logger
        self.physicalTime = physicalTime

        let (stored, format, storedEpoch): (String?, String?, UInt64?) = try env.read { (txn) throws(LMDBError) in
            (try txn.get(meta, Array("replica".utf8)).map { String(decoding: $0, as: UTF8.self) },
             try txn.get(meta, Array("format".utf8)).map { String(decoding: $0, as: UTF8.self) },
             try txn.get(meta, Array("epoch".utf8)).flatMap { $0.count == 8 ? Keys.readBigEndian($0, at: 0) : nil })
        }
        // Format 2: event records carry their aggregate's chain, `aggs` records its tail.
        let upgrade = stored != nil && EventStore.upgradable.contains(format ?? "1")
        if stored != nil && format != EventStore.format && !upgrade {
            throw LaterbaseError(.internal, "the data folder \(directory) holds store format \(format ?? "1") from an older Laterbase; this build reads format \(EventStore.format) and upgrades \(EventStore.upgradable.joined(separator: " and ")). Run the build that wrote it, or start this one on an empty folder and sync the events from it")
        }
        let chosen = replicaID ?? stored ?? EventStore.newReplicaID(milliseconds: physicalTime())
        guard Names.isValidOrigin(chosen) else { throw LaterbaseError(.badRequest, "'\(chosen)' is not a valid replica id") }
        let epoch = storedEpoch ?? EventStore.newEpoch()
        if chosen != stored || storedEpoch == nil {
            let txn = try env.beginWrite()
            try txn.put(meta, Array("replica".utf8), Array(chosen.utf8))
            if stored == nil { try txn.put(meta, Array("format".utf8), Array(EventStore.format.utf8)) }
            try txn.put(meta, Array("epoch".utf8), .written(count: 8) { $0.u64(epoch) })
            try txn.commit()
            if let stored, chosen != stored { logger.warning("replica id changed", metadata: ["from": "\(stored)", "to": "\(chosen)"]) }
        }
        self.replicaID = chosen
        self.epoch = epoch
        if upgrade {
            if format == "3" { try upgradeFromFormat3() }
            if format == "3" || format == "4" { try upgradeFromFormat4() }
            try upgradeFromFormat5()
        }
    }

    /// A fresh epoch, random and never 0.
    static func newEpoch() -> UInt64 {
        var g = SystemRandomNumberGenerator()
        return UInt64.random(in: 1...UInt64.max, using: &g)
    }

    /// A fresh replica id: `node-` and the last 12 hex digits of a UUID v7.
    static func newReplicaID(milliseconds: UInt64 = SystemClock.milliseconds()) -> String {
        "node-" + EventID.v7(milliseconds: milliseconds).description.suffix(12)
    }

    /// The layout this build writes and reads (see ``Keys``). Format 4 keeps each origin's
    /// content digest in its head and a root's duplicates in `dups`; format 5 numbers every
    /// event in `pos` (``Position``); format 6 keeps each root's ``RootSummary`` in `_meta`.
    /// Format 3, 4 and 5 stores are upgraded when opened.
    public static let format = "6"
    /// The formats upgraded in place when opened.
    static let upgradable = ["3", "4", "5"]

    /// Format 3 to 4: each origin's digest, from its events in the log (`dups` starts empty, as
    /// format 3 refused duplicates).
    private func upgradeFromFormat3() throws(LMDBError) {
        let txn = try env.beginWrite()
        for r in roots.values {
            for (origin, head) in try r.heads(in: txn) where head.digest == nil {
                var upgraded = head
                upgraded.digest = try ContentDigest.scan(origin: origin, through: head.seq, log: r.log, in: txn)
                try txn.put(r.heads, Array(origin.utf8), upgraded.encoded)
            }
        }
        try txn.put(meta, Array("format".utf8), Array("4".utf8))
        try txn.commit()
        logger.notice("store upgraded from format 3 to 4: origin digests kept in heads")
    }

    /// Format 4 to 5: every event stored gets a position, in feed order, root by root, in
    /// transactions of ``upgradeChunk`` events. Each records how far it got (the vv numbered so
    /// far, in `_meta`), so a start after an interruption (kill -9 midway) resumes there.
    private func upgradeFromFormat4() throws {
        for name in rootNames {
            let r = roots[name]!
            let key = Array("upgrade5:\(name)".utf8)
            while true {
                let txn = try env.beginWrite()
                let progress = try txn.get(meta, key).map { String(decoding: $0, as: UTF8.self) }
                if progress == "done" { break }
                if progress == nil {  // the start: nothing numbered yet
                    try txn.empty(r.positions)
                    try txn.empty(r.moved)
                }
                let vv = try VersionVector(parsing: progress ?? "")
                var position = try r.lastPosition(in: txn)
                let heads = try r.heads(in: txn)
                var taken = 0
                var appending = true
                let (advanced, more) = try r.walkInFeedOrder(after: vv, heads: heads, in: txn) { (origin, seq, _) throws(LMDBError) in
                    guard taken < EventStore.upgradeChunk else { return false }
                    position += 1
                    taken += 1
                    try txn.put(r.positions, .written(count: 8) { $0.u64(position) }, Keys.dot(origin: origin, seq: seq), appending: &appending)
                    return true
                }
                try txn.put(meta, key, Array((more ? advanced.description : "done").utf8))
                try txn.commit()
                let total = heads.values.reduce(UInt64(0)) { $0.saturatingAdd($1.seq) }
                logger.notice("upgrading the store to format 5: numbering events", metadata: ["root": "\(name)", "numbered": "\(position)", "of": "\(total)"])
                if !more { break }
            }
        }
        let txn = try env.beginWrite()
        for name in rootNames { _ = try txn.delete(meta, Array("upgrade5:\(name)".utf8)) }
        try txn.put(meta, Array("format".utf8), Array("5".utf8))
        try txn.commit()
        logger.notice("store upgraded to format 5: every event has a position")
    }

    /// Format 5 to 6: each root's summary, from its heads (one read of them, one transaction).
    private func upgradeFromFormat5() throws(LMDBError) {
        let txn = try env.beginWrite()
        for (name, r) in roots { try txn.put(meta, RootSummary.key(name), RootSummary(heads: try r.heads(in: txn)).encoded) }
        try txn.put(meta, Array("format".utf8), Array(EventStore.format.utf8))
        try txn.commit()
        logger.notice("store upgraded to format 6: each root's summary kept")
    }

    /// Events numbered per transaction by the format 5 upgrade.
    static let upgradeChunk = 100_000

    func root(_ name: String) throws(LaterbaseError) -> RootDatabases {
        guard let r = roots[name] else { throw LaterbaseError(.unknownRoot, "no root named '\(name)'") }
        return r
    }

    /// Refuses a name that is not one of this store's roots with `unknown_root`.
    public func checkRoot(_ name: String) throws(LaterbaseError) { _ = try root(name) }

    /// The root's version vector: what this node holds.
    public func head(of rootName: String) throws(LaterbaseError) -> VersionVector {
        let r = try root(rootName)
        do {
            return try env.read { (txn) throws(LMDBError) in try r.heads(in: txn).versionVector }
        } catch {
            throw LaterbaseError(storage: error, "reading the head of \(rootName)")
        }
    }

    /// The largest hlc this store has persisted (the clock's high-water mark).
    func persistedClock<T: Transaction & ~Copyable>(in txn: borrowing T) throws(LMDBError) -> HLC {
        guard let v = try txn.get(meta, Array("hlc".utf8)) else { return HLC(rawValue: 0) }
        guard v.count == 8 else { throw .corrupted("the clock's high-water mark, \(v.count) bytes") }
        return HLC(rawValue: Keys.readBigEndian(v, at: 0))
    }

    /// Bytes of the data file in use.
    public var usedBytes: Int { env.usedBytes() }

    /// The data folder, as opened.
    var directory: String { env.path }

    /// Whether the filesystem under the data folder has less room than one more transaction
    /// may need (a commit that failed there failed for want of space, not a bad disk).
    var filesystemIsFull: Bool {
        var stats = statvfs()
        guard statvfs(directory, &stats) == 0 else { return false }
        return Int(stats.f_bavail) * Int(stats.f_frsize) < 64 << 20
    }

    /// Checks a batch against its root's schema and the clock-skew limit, off the writer thread.
    /// - Parameter replicating: the batch comes from a peer or an admin (replication, a push,
    ///   `import`): the merge is total for it (contract v3), so a recorded event the schema
    ///   refuses is kept, to be folded once the node runs a schema that knows it, and an origin's
    ///   hlc need not grow with its seq (a fork resolved dot by dot can mix two branches). For
    ///   devices and clients both are refused, 422.
    /// - Throws: `unknown_root`, or `invalid_event` naming the event's index and what is wrong.
    public func prepare(root rootName: String, events: [EventInput], replicating: Bool = false) throws(LaterbaseError) -> PreparedBatch {
        let r = try root(rootName)
        let limit = Int64(physicalTime()) + options.maxSkewMilliseconds
        var decoded: [any Sendable] = []
        decoded.reserveCapacity(events.count)
        var unknown: [Int] = []
        for (index, e) in events.enumerated() {
            if let t = e.time, t > limit {
                throw .event(.invalidEvent, index: index, "time is more than \(options.maxSkewMilliseconds) ms ahead of this node's clock", extra: [("field", .string("time"))])
            }
            if let rec = e.recorded, Int64(rec.hlc.milliseconds) > limit {
                throw .event(.invalidEvent, index: index, "hlc is more than \(options.maxSkewMilliseconds) ms ahead of this node's clock", extra: [("field", .string("hlc"))])
            }
            if e.recordedBytes > options.maxEventBytes {
                throw .event(.tooLarge, index: index, "the event is over the limit of \(options.maxEventBytes) bytes in its recorded form", extra: [("field", .string("data"))])
            }
            if !e.dataDepthChecked && !e.dataDepthIsWithinLimit {
                throw .event(.badRequest, index: index, "data nests deeper than \(EventInput.maxDataDepth) levels", extra: [("field", .string("data"))])
            }
            do {
                decoded.append(try r.definition.fold.decode(type: e.type, version: e.version, data: e.data, dataBytes: e.dataBytes))
            } catch {
                guard replicating, e.recorded != nil else {
                    throw .event(.invalidEvent, index: index, error.description, extra: [("field", .string(error.field))])
                }
                decoded.append(error)
                unknown.append(index)
            }
        }
        // What the batch holds in memory while queued, roughly: its data plus a fixed share per
        // event for the names, the parsed value and the decoded payload.
        var bytes = 0
        for e in events { bytes += 2 * e.dataBytes.count + e.aggregate.utf8.count + e.type.utf8.count + 256 }
        // Hashed here, on the producer's thread, for the origin digests the writer keeps.
        let bodies = events.map { ContentDigest.body(type: $0.type, aggregate: $0.aggregate, version: $0.version, data: $0.dataBytes) }
        return PreparedBatch(root: rootName, events: events, decoded: decoded, bodies: bodies, bytes: bytes, replicating: replicating, unknown: unknown)
    }
}

extension EventStore {
    /// Reads a batch as POST /e/{root} and a ZeroMQ ingest message carry it (one event object or
    /// an array of them) and checks it: the one path every way in shares.
    /// - Throws: `unknown_root`, `bad_request` (not JSON, wrong shapes, bad names), `too_large`,
    ///   `invalid_event`.
    /// - Parameter replicating: see ``prepare(root:events:replicating:)``.
    public func prepare(root rootName: String, body: UnsafeRawBufferPointer, replicating: Bool = false) throws(LaterbaseError) -> PreparedBatch {
        try checkRoot(rootName)
        return try prepare(root: rootName, events: try EventInput.batch(reading: body, maxEvents: options.maxBatchEvents), replicating: replicating)
    }

    /// ``prepare(root:body:replicating:)`` over an array of bytes.
    public func prepare(root rootName: String, body: [UInt8], replicating: Bool = false) throws(LaterbaseError) -> PreparedBatch {
        try body.withUnsafeBytes { b in Result { () throws(LaterbaseError) in try prepare(root: rootName, body: b, replicating: replicating) } }.get()
    }
}

/// A batch checked against its schema, ready for the writer.
public struct PreparedBatch: Sendable {
    public let root: String
    public let events: [EventInput]
    let decoded: [any Sendable]
    /// Each event's ``ContentDigest/body(type:aggregate:version:data:)``.
    let bodies: [UInt64]
    /// An estimate of the memory it holds, for the write queue's byte bound.
    public let bytes: Int
    /// From a peer or an admin: see ``EventStore/prepare(root:events:replicating:)``.
    public let replicating: Bool
    /// The indexes of recorded events the schema refuses (only when `replicating`): stored and
    /// served, folded by no aggregate until a schema knows them (their `decoded` is the
    /// ``SchemaViolation``).
    let unknown: [Int]

    /// Whether the event at `index` is one the schema knows.
    func folds(_ index: Int) -> Bool {
        unknown.isEmpty || !unknown.contains(index)
    }
}
