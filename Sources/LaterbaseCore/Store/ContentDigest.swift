import LMDB

/// What a replica holds, in 64 bits per origin, so two replicas whose heads agree can tell
/// whether they hold the same versions of the same dots (a vv cannot: a forked origin gives two
/// replicas equal heads and different events). An origin's digest is the wrapping sum of its
/// events' hashes, kept in its `heads` entry and updated by the writer as it adds or replaces an
/// event; a root's is the sum of its origins'. Sums, so order does not matter and a replaced
/// version is taken out by subtracting it.
///
/// The hash is of the event's content and dot as stored (never this node's own bookkeeping), the
/// same on every replica: not Swift's `Hasher`, which is seeded per process. It finds forks, not
/// forgeries: an adversary who can make two versions of one dot hash alike could hide one.
enum ContentDigest {
    /// The hash of one event.
    /// - Parameter body: ``body(of:)`` of its content, when known already (``PreparedBatch``
    ///   computes it on the producer's thread, so the writer mixes only the rest).
    static func of(_ e: borrowing RecordedEvent, body: UInt64? = nil) -> UInt64 {
        var h = Mixer()
        h.add(body ?? Self.body(type: e.type, aggregate: e.aggregate, version: e.version, data: e.data))
        h.add(e.hlc.rawValue)
        h.add(UInt64(bitPattern: e.time))
        h.add(e.id.high)
        h.add(e.id.low)
        h.add(e.seq)
        var origin = e.origin
        origin.withUTF8 { h.add(UnsafeRawBufferPointer($0)) }
        return h.value
    }

    /// The hash of what a client writes (type, aggregate, version, data): the part of an event
    /// known before the writer gives it a dot.
    static func body(type: String, aggregate: String, version: Int, data: [UInt8]) -> UInt64 {
        var h = Mixer()
        h.add(UInt64(version))
        var type = type, aggregate = aggregate
        type.withUTF8 { h.add(UnsafeRawBufferPointer($0)) }
        aggregate.withUTF8 { h.add(UnsafeRawBufferPointer($0)) }
        data.withUnsafeBytes { h.add($0) }
        return h.value
    }

    /// A 64-bit multiply-xorshift mix over words (8 bytes at a time, little-endian on every
    /// machine), with each byte run's length: two runs that differ only in where one ends and
    /// the next begins hash apart. It runs on the writer for every event, so it is cheap.
    struct Mixer {
        private var state: UInt64 = 0x9E37_79B9_7F4A_7C15

        @inline(__always) mutating func add(_ word: UInt64) {
            state = (state ^ word) &* 0xBF58_476D_1CE4_E5B9
            state ^= state >> 31
        }

        mutating func add(_ bytes: UnsafeRawBufferPointer) {
            let n = bytes.count
            var i = 0
            while i + 8 <= n {
                add(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
                i += 8
            }
            var word: UInt64 = 0, shift: UInt64 = 0
            while i < n {
                word |= UInt64(bytes[i]) << shift
                shift += 8
                i += 1
            }
            add(word)
            add(UInt64(n))
        }

        var value: UInt64 {
            var z = state
            z = (z ^ (z >> 30)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// The digest of `origin`'s events in `log`, read in full: for heads written before digests
    /// were kept (store format 3).
    static func scan<T: Transaction & ~Copyable>(origin: String, through last: UInt64, log: Database, in txn: borrowing T) throws(LMDBError) -> UInt64 {
        var sum: UInt64 = 0
        var seq: UInt64 = 1
        while seq <= last {
            let dot = Dot(origin: origin, seq: seq)
            guard let v = try txn.get(log, Keys.dot(dot)) else { throw .corrupted("\(dot), under its origin's head, which the log does not hold") }
            sum &+= of(try EventRecord.decode(dot, v))
            seq += 1
        }
        return sum
    }
}

extension Dictionary where Key == String, Value == OriginHead {
    /// The root's digest: the sum of its origins'; nil while one is not known yet.
    var digest: UInt64? {
        var sum: UInt64 = 0
        for head in values {
            guard let d = head.digest else { return nil }
            sum &+= d
        }
        return sum
    }
}

/// A root's digests as one node holds it: what two replicas compare when their heads agree.
public struct RootDigests: Sendable, Equatable {
    /// The node's vv for the root.
    public var head: VersionVector
    /// Each origin's digest.
    public var origins: [String: UInt64]
    /// The root's: the sum of its origins'.
    public var root: UInt64 { origins.values.reduce(0, &+) }

    public init(head: VersionVector, origins: [String: UInt64]) {
        self.head = head
        self.origins = origins
    }

    /// The origins both hold up to the same seq whose digests differ: where the two hold
    /// different versions of the same dots.
    public func forkedOrigins(against other: RootDigests) -> [String] {
        origins.keys.filter { o in head[o] == other.head[o] && other.origins[o].map { $0 != origins[o] } == true }.sorted()
    }
}

extension EventStore {
    /// The root's head and digests from one snapshot.
    public func digests(of rootName: String) throws(LaterbaseError) -> RootDigests {
        let r = try root(rootName)
        do {
            return try env.read { (txn) throws(LMDBError) in
                let heads = try r.heads(in: txn)
                return RootDigests(head: heads.versionVector, origins: heads.mapValues { $0.digest ?? 0 })
            }
        } catch {
            throw LaterbaseError(storage: error, "reading the heads of \(rootName)")
        }
    }
}
