import LMDB

/// Two digests of what a node holds of a root, 16 bytes whatever its number of origins, kept in
/// `_meta` under `summary:<root>` and updated by the writer in the transaction that changes a
/// head (store format 6):
///
/// - `content`, the sum of its origins' content digests (``ContentDigest``, ``RootDigests/root``);
/// - `head`, a digest of its version vector: the sum of a hash of each origin and its last seq.
///
/// A peer link that follows another node by position (contract v3, "Positions") holds no vv of
/// the peer's: it asks the peer's feed for these two with its probe. Equal `head`s say the two
/// hold the same dots (in sync both ways); equal heads with different `content` say an origin
/// forked, as ``RootDigests`` compare origin by origin once found. Sums, so the writer updates
/// them from an origin's old and new head alone.
public struct RootSummary: Sendable, Equatable {
    public var content: UInt64
    public var head: UInt64

    public init(content: UInt64 = 0, head: UInt64 = 0) {
        self.content = content
        self.head = head
    }

    /// The summary of `heads`, computed whole (an upgrade, a test).
    init(heads: [String: OriginHead]) {
        self.init()
        for (origin, h) in heads { replace(origin: origin, old: nil, new: h) }
    }

    /// The summary of a version vector's dots (``head`` only): what a client holding the vv
    /// compares.
    public static func headDigest(of vv: VersionVector) -> UInt64 {
        vv.entries.reduce(0) { $0 &+ hash(origin: $1.key, seq: $1.value) }
    }

    /// One origin's part of ``head``.
    static func hash(origin: String, seq: UInt64) -> UInt64 {
        guard seq > 0 else { return 0 }
        var h = ContentDigest.Mixer()
        var origin = origin
        origin.withUTF8 { h.add(UnsafeRawBufferPointer($0)) }
        h.add(seq)
        return h.value
    }

    /// An origin's head went from `old` (nil: it had none) to `new`.
    mutating func replace(origin: String, old: OriginHead?, new: OriginHead) {
        if let old {
            content &-= old.digest ?? 0
            head &-= Self.hash(origin: origin, seq: old.seq)
        }
        content &+= new.digest ?? 0
        head &+= Self.hash(origin: origin, seq: new.seq)
    }

    static func key(_ root: String) -> [UInt8] { Array("summary:\(root)".utf8) }

    var encoded: [UInt8] {
        .written(count: 16) { w in
            w.u64(content)
            w.u64(head)
        }
    }

    /// The root's summary as of `txn`: zero before anything was stored.
    static func read<T: Transaction & ~Copyable>(_ root: String, meta: Database, in txn: borrowing T) throws(LMDBError) -> RootSummary {
        guard let v = try txn.get(meta, key(root)) else { return RootSummary() }
        guard v.count == 16 else { throw .corrupted("the summary of \(root), \(v.count) bytes") }
        return RootSummary(content: Keys.readBigEndian(v, at: 0), head: Keys.readBigEndian(v, at: 8))
    }
}

extension EventStore {
    /// The root's summary now (two 64-bit digests, whatever its number of origins).
    public func summary(of rootName: String) throws(LaterbaseError) -> RootSummary {
        _ = try root(rootName)
        do {
            return try env.read { (txn) throws(LMDBError) in try RootSummary.read(rootName, meta: meta, in: txn) }
        } catch {
            throw LaterbaseError(storage: error, "reading the summary of \(rootName)")
        }
    }

    /// This node's head for the given origins of a root only (0 for one it never saw): what a
    /// peer link admitting a page needs, O(origins asked) where ``head(of:)`` is O(origins held).
    public func head(of rootName: String, origins: some Sequence<String>) throws(LaterbaseError) -> VersionVector {
        let r = try root(rootName)
        do {
            return try env.read { (txn) throws(LMDBError) in
                var vv = VersionVector()
                for origin in origins {
                    guard let v = try txn.get(r.heads, Array(origin.utf8)) else { continue }
                    vv[origin] = try OriginHead(decoding: v).seq
                }
                return vv
            }
        } catch {
            throw LaterbaseError(storage: error, "reading the head of \(rootName)")
        }
    }
}
