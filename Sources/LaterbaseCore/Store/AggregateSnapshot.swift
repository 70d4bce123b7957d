/// A folded aggregate at a position: what `aggs` keeps for the latest state and `cp` for
/// checkpoints. Stored as `count(8) time(8) hlc(8) positionLength(2) position stateLength(4) state
/// tailCount(2) (positionLength(2) position)*`.
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
    /// In `aggs` only: the latest events' positions, in fold order, not yet in the `agg` index
    /// (see ``AggregateTail``). Empty in checkpoints.
    var tail: [FoldPosition] = []

    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + state.count + tail.count * 40)
        Keys.appendBigEndian(count, to: &out)
        Keys.appendBigEndian(UInt64(bitPattern: time), to: &out)
        Keys.appendBigEndian(hlc.rawValue, to: &out)
        Self.append(position, to: &out)
        let n = UInt32(state.count)
        out.append(contentsOf: [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)])
        out.append(contentsOf: state)
        out.append(UInt8(tail.count >> 8))
        out.append(UInt8(tail.count & 0xFF))
        for p in tail { Self.append(p, to: &out) }
        return out
    }

    private static func append(_ p: FoldPosition, to out: inout [UInt8]) {
        let bytes = p.bytes
        out.append(UInt8(bytes.count >> 8))
        out.append(UInt8(bytes.count & 0xFF))
        out.append(contentsOf: bytes)
    }

    private static func position(_ b: UnsafeRawBufferPointer, at offset: inout Int) -> FoldPosition {
        let n = Int(b[offset]) << 8 | Int(b[offset + 1])
        defer { offset += 2 + n }
        return FoldPosition(bytes: UnsafeRawBufferPointer(rebasing: b[(offset + 2)..<(offset + 2 + n)]))
    }

    init(count: UInt64, time: Int64, hlc: HLC, position: FoldPosition, state: [UInt8], tail: [FoldPosition] = []) {
        self.count = count
        self.time = time
        self.hlc = hlc
        self.position = position
        self.state = state
        self.tail = tail
    }

    init(_ b: UnsafeRawBufferPointer) {
        count = Keys.readBigEndian(b, at: 0)
        time = Int64(bitPattern: Keys.readBigEndian(b, at: 8))
        hlc = HLC(rawValue: Keys.readBigEndian(b, at: 16))
        var offset = 24
        position = Self.position(b, at: &offset)
        let n = Int(b[offset]) << 24 | Int(b[offset + 1]) << 16 | Int(b[offset + 2]) << 8 | Int(b[offset + 3])
        state = Array(b[(offset + 4)..<(offset + 4 + n)])
        offset += 4 + n
        let tailCount = Int(b[offset]) << 8 | Int(b[offset + 1])
        offset += 2
        tail = []
        tail.reserveCapacity(tailCount)
        for _ in 0..<tailCount { tail.append(Self.position(b, at: &offset)) }
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
