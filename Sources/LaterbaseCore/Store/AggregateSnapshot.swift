import LMDB

/// A folded aggregate at a position: what `aggs` keeps for the latest events and `cp` for
/// checkpoints. Stored as `count(8) time(8) hlc(8) positionLength(2) position tail(2)
/// lastLength(1) last unfolded(2) state`.
///
/// A checkpoint holds its state. An `aggs` record does not: the state is kept apart in `states`,
/// written only every ``StoreWriter/stateEvery`` events (and whenever the tail goes into the
/// index or the aggregate is refolded), so a commit does not encode every state it touches. The
/// record's ``unfolded`` latest events are those the kept state lacks; a read folds them on top
/// (``RootDatabases/current(_:record:in:)``).
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
    /// How many of the aggregate's latest recorded events are not in the `agg` index yet: they
    /// are found by following ``last`` back through the log (``EventRecord/previous(_:)``). The
    /// index takes them in runs, so a commit does not dirty an index page per aggregate.
    /// Always 0 in a checkpoint.
    var tail: Int = 0
    /// The dot of the aggregate's last recorded event on this node (nil in a checkpoint).
    var last: Dot? = nil
    /// How many of the aggregate's latest recorded events (following ``last`` back) the state
    /// kept in `states` lacks; never more than ``tail``. Always 0 in a checkpoint.
    var unfolded: Int = 0

    func encoded() -> [UInt8] {
        let p = position.byteCount
        let lastLength = last?.keyLength ?? 0
        return .written(count: 24 + 2 + p + 2 + 1 + lastLength + 2 + state.count) { w in
            w.u64(count)
            w.u64(UInt64(bitPattern: time))
            w.u64(hlc.rawValue)
            w.u16(p)
            position.write(to: &w)
            w.u16(tail)
            w.u8(UInt8(lastLength))
            if let last { w.dot(last) }
            w.u16(unfolded)
            w.bytes(state)
        }
    }

    init(count: UInt64, time: Int64, hlc: HLC, position: FoldPosition, state: [UInt8], tail: Int = 0, last: Dot? = nil, unfolded: Int = 0) {
        self.count = count
        self.time = time
        self.hlc = hlc
        self.position = position
        self.state = state
        self.tail = tail
        self.last = last
        self.unfolded = unfolded
    }

    init(_ b: UnsafeRawBufferPointer) throws(LMDBError) {
        guard b.count >= 29, b.count >= 29 + (Int(b[24]) << 8 | Int(b[25])) else { throw .corrupted("an aggregate snapshot of \(b.count) bytes") }
        count = Keys.readBigEndian(b, at: 0)
        time = Int64(bitPattern: Keys.readBigEndian(b, at: 8))
        hlc = HLC(rawValue: Keys.readBigEndian(b, at: 16))
        let n = Int(b[24]) << 8 | Int(b[25])
        position = try FoldPosition(bytes: UnsafeRawBufferPointer(rebasing: b[26..<(26 + n)]))
        tail = Int(b[26 + n]) << 8 | Int(b[27 + n])
        let lastLength = Int(b[28 + n])
        let lastEnd = 29 + n + lastLength
        guard lastEnd + 2 <= b.count else { throw .corrupted("an aggregate snapshot of \(b.count) bytes naming \(lastEnd + 2)") }
        last = lastLength == 0 ? nil : try Keys.parseDot(UnsafeRawBufferPointer(rebasing: b[(29 + n)..<lastEnd]))
        unfolded = Int(b[lastEnd]) << 8 | Int(b[lastEnd + 1])
        guard (tail == 0) || last != nil else { throw .corrupted("an aggregate snapshot with a tail and no last event") }
        guard unfolded <= tail else { throw .corrupted("an aggregate snapshot with \(unfolded) unfolded events in a tail of \(tail)") }
        state = Array(b[(lastEnd + 2)...])
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
