import LMDB

/// The stored form of an event in a root's `log`, keyed by its dot:
/// `hlc(8) time(8) id(16) version(2) typeLength(1) aggregateLength(2) previousLength(1) type
/// aggregate previous data`.
///
/// `previous` is the `log` key (`origin 0x00 seq`) of the event of the same aggregate recorded
/// on this node just before this one (empty for its first): the chain through which the events
/// of an aggregate not yet in the `agg` index are found (see ``AggregateSnapshot/tail``). It is
/// this node's own bookkeeping and never leaves it.
///
/// Decoding is total: a record whose lengths do not add up throws ``LMDBError/corrupted(_:)``,
/// whatever its bytes, so a damaged page costs a 500 on the reads that touch it, never the node.
enum EventRecord {
    static let headerSize = 38

    static func encode(_ e: RecordedEvent) -> [UInt8] {
        var out: [UInt8] = []
        encode(e, previous: nil, into: &out)
        return out
    }

    /// Replaces `out`'s bytes with the record of `e`, reusing its storage.
    /// - Parameter previous: the dot of the aggregate's event recorded before it on this node.
    static func encode(_ e: RecordedEvent, previous: Dot?, into out: inout [UInt8]) {
        let type = e.type.utf8.count, aggregate = e.aggregate.utf8.count
        let previousLength = previous?.keyLength ?? 0
        out.rewrite(count: headerSize + type + aggregate + previousLength + e.data.count) { w in
            w.u64(e.hlc.rawValue)
            w.u64(UInt64(bitPattern: e.time))
            w.id(e.id)
            w.u16(Int(e.version))
            w.u8(UInt8(type))
            w.u16(aggregate)
            w.u8(UInt8(previousLength))
            w.utf8(e.type)
            w.utf8(e.aggregate)
            if let previous { w.dot(previous) }
            w.bytes(e.data)
        }
    }

    /// Where the type, the aggregate id and the previous dot end, checked against the record's length.
    static func layout(_ v: UnsafeRawBufferPointer) throws(LMDBError) -> (typeEnd: Int, aggregateEnd: Int, dataStart: Int) {
        guard v.count >= headerSize else { throw .corrupted("an event record of \(v.count) bytes") }
        let typeEnd = headerSize + Int(v[34])
        let aggregateEnd = typeEnd + (Int(v[35]) << 8 | Int(v[36]))
        let dataStart = aggregateEnd + Int(v[37])
        guard dataStart <= v.count else { throw .corrupted("an event record of \(v.count) bytes naming \(dataStart)") }
        return (typeEnd, aggregateEnd, dataStart)
    }

    /// The dot of the aggregate's event recorded before this one on this node, if any.
    static func previous(_ v: UnsafeRawBufferPointer) throws(LMDBError) -> Dot? {
        let (_, aggregateEnd, dataStart) = try layout(v)
        guard dataStart > aggregateEnd else { return nil }
        return try Keys.parseDot(UnsafeRawBufferPointer(rebasing: v[aggregateEnd..<dataStart]))
    }

    /// The position of the event in its aggregate's fold order.
    static func position(_ dot: Dot, _ v: UnsafeRawBufferPointer) throws(LMDBError) -> FoldPosition {
        guard v.count >= headerSize else { throw .corrupted("an event record of \(v.count) bytes") }
        return FoldPosition(time: Int64(bitPattern: Keys.readBigEndian(v, at: 8)), hlc: HLC(rawValue: Keys.readBigEndian(v, at: 0)), dot: dot)
    }

    static func hlc(_ v: UnsafeRawBufferPointer) throws(LMDBError) -> HLC {
        guard v.count >= 8 else { throw .corrupted("an event record of \(v.count) bytes") }
        return HLC(rawValue: Keys.readBigEndian(v, at: 0))
    }

    static func decode(_ dot: Dot, _ v: UnsafeRawBufferPointer) throws(LMDBError) -> RecordedEvent {
        let (typeEnd, aggregateEnd, dataStart) = try layout(v)
        return RecordedEvent(
            id: EventID(high: Keys.readBigEndian(v, at: 16), low: Keys.readBigEndian(v, at: 24)),
            aggregate: String(decoding: UnsafeRawBufferPointer(rebasing: v[typeEnd..<aggregateEnd]), as: UTF8.self),
            type: String(decoding: UnsafeRawBufferPointer(rebasing: v[headerSize..<typeEnd]), as: UTF8.self),
            version: Int(v[32]) << 8 | Int(v[33]),
            data: Array(v[dataStart...]),
            time: Int64(bitPattern: Keys.readBigEndian(v, at: 8)),
            hlc: HLC(rawValue: Keys.readBigEndian(v, at: 0)),
            origin: dot.origin,
            seq: dot.seq
        )
    }

    /// Writes the contract's JSON for a stored event straight from its bytes (the feed's hot path).
    static func appendJSON(origin: UnsafeRawBufferPointer, seq: UInt64, _ v: UnsafeRawBufferPointer, to out: inout [UInt8]) throws(LMDBError) {
        let (typeEnd, aggregateEnd, dataStart) = try layout(v)
        appendJSON(
            id: (Keys.readBigEndian(v, at: 16), Keys.readBigEndian(v, at: 24)), aggregate: UnsafeRawBufferPointer(rebasing: v[typeEnd..<aggregateEnd]),
            type: UnsafeRawBufferPointer(rebasing: v[headerSize..<typeEnd]), version: Int(v[32]) << 8 | Int(v[33]),
            data: UnsafeRawBufferPointer(rebasing: v[dataStart...]), time: Int64(bitPattern: Keys.readBigEndian(v, at: 8)),
            hlc: HLC(rawValue: Keys.readBigEndian(v, at: 0)), origin: origin, seq: seq, to: &out)
    }

    /// The contract's JSON object for an event, from its parts: the one writer of it, for stored
    /// records and for events in memory (``RecordedEvent/appendJSON(to:)``).
    static func appendJSON(
        id: (high: UInt64, low: UInt64), aggregate: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, version: Int, data: UnsafeRawBufferPointer,
        time: Int64, hlc: HLC, origin: UnsafeRawBufferPointer, seq: UInt64, to out: inout [UInt8]
    ) {
        out.append(literal: #"{"id":""#)
        EventID.appendHex(id.high, id.low, to: &out)
        out.append(literal: #"","aggregate":"#)
        JSONWriter.writeString(aggregate, to: &out)
        out.append(literal: #","type":""#)
        out.append(contentsOf: type)
        out.append(literal: #"","version":"#)
        appendDecimal(UInt64(version), to: &out)
        out.append(literal: #","data":"#)
        out.append(contentsOf: data)
        out.append(literal: #","time":""#)
        EventTime.append(time, to: &out)
        out.append(literal: #"","hlc":""#)
        hlc.appendHex(to: &out)
        out.append(literal: #"","origin":""#)
        out.append(contentsOf: origin)  // origins need no escaping
        out.append(literal: #"","seq":"#)
        appendDecimal(seq, to: &out)
        out.append(UInt8(ascii: "}"))
    }

    static func appendDecimal(_ v: UInt64, to out: inout [UInt8]) {
        if v < 10 {
            out.append(0x30 + UInt8(v))
            return
        }
        var divisor: UInt64 = 10
        while divisor <= v / 10 { divisor *= 10 }
        var rest = v
        while divisor > 0 {
            out.append(0x30 + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }
}
