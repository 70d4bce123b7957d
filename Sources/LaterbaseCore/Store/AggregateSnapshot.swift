import LMDB

/// A folded aggregate at a position: what `aggs` keeps for the latest state and `cp` for
/// checkpoints. Stored as `count(8) time(8) hlc(8) positionLength(2) position state`.
struct AggregateSnapshot {
    /// Events folded.
    var count: UInt64
    /// Valid time of the last folded event.
    var time: Int64
    /// The largest hlc folded.
    var hlc: HLC
    /// The position of the last folded event.
    var position: FoldPosition
    /// The state as JSON.
    var state: [UInt8]

    func encoded() -> [UInt8] {
        let p = position.bytes
        var out: [UInt8] = []
        out.reserveCapacity(26 + p.count + state.count)
        Keys.appendBigEndian(count, to: &out)
        Keys.appendBigEndian(UInt64(bitPattern: time), to: &out)
        Keys.appendBigEndian(hlc.rawValue, to: &out)
        out.append(UInt8(p.count >> 8))
        out.append(UInt8(p.count & 0xFF))
        out.append(contentsOf: p)
        out.append(contentsOf: state)
        return out
    }

    init(count: UInt64, time: Int64, hlc: HLC, position: FoldPosition, state: [UInt8]) {
        self.count = count
        self.time = time
        self.hlc = hlc
        self.position = position
        self.state = state
    }

    init(_ b: UnsafeRawBufferPointer) throws(LMDBError) {
        guard b.count >= 26, b.count >= 26 + (Int(b[24]) << 8 | Int(b[25])) else { throw .corrupted("an aggregate snapshot of \(b.count) bytes") }
        count = Keys.readBigEndian(b, at: 0)
        time = Int64(bitPattern: Keys.readBigEndian(b, at: 8))
        hlc = HLC(rawValue: Keys.readBigEndian(b, at: 16))
        let n = Int(b[24]) << 8 | Int(b[25])
        position = try FoldPosition(bytes: UnsafeRawBufferPointer(rebasing: b[26..<(26 + n)]))
        state = Array(b[(26 + n)...])
    }

    /// The contract's aggregate object: `{"id", "state", "events", "time", "hlc"}`.
    func appendJSON(id: String, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"id":"#.utf8)
        JSONWriter.writeString(id, to: &out)
        out.append(contentsOf: #","state":"#.utf8)
        out.append(contentsOf: state)
        out.append(contentsOf: #","events":"#.utf8)
        EventRecord.appendDecimal(count, to: &out)
        out.append(contentsOf: #","time":""#.utf8)
        EventTime.append(time, to: &out)
        out.append(contentsOf: #"","hlc":""#.utf8)
        hlc.appendHex(to: &out)
        out.append(contentsOf: #""}"#.utf8)
    }
}
