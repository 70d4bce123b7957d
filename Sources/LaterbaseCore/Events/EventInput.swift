/// An event as a client or replica writes it, checked for shape and names.
public struct EventInput: Sendable {
    /// What a recorded event carries beyond a new one: its dot and hlc.
    public struct Recorded: Sendable, Equatable {
        public let origin: String
        public let seq: UInt64
        public let hlc: HLC

        public init(origin: String, seq: UInt64, hlc: HLC) {
            self.origin = origin
            self.seq = seq
            self.hlc = hlc
        }
    }

    public let id: EventID?
    public let aggregate: String
    public let type: String
    public let version: Int
    public let data: JSON
    /// The data as compact JSON, as stored.
    public let dataBytes: [UInt8]
    /// Valid time in ms, when the writer gave one.
    public let time: Int64?
    /// Present for an event recorded elsewhere and replicated as it is.
    public let recorded: Recorded?
    /// Whether `data` is known to nest at most ``maxDataDepth`` levels (the event reader
    /// checks it as it reads); otherwise ``EventStore/prepare(root:events:)`` does.
    let dataDepthChecked: Bool

    public init(id: EventID?, aggregate: String, type: String, version: Int = 1, data: JSON, time: Int64? = nil, recorded: Recorded? = nil) {
        self.init(id: id, aggregate: aggregate, type: type, version: version, data: data, dataBytes: data.bytes, time: time, recorded: recorded)
    }

    /// - Parameter dataBytes: `data` as ``JSONWriter`` writes it.
    init(
        id: EventID?, aggregate: String, type: String, version: Int, data: JSON, dataBytes: [UInt8], time: Int64?, recorded: Recorded?,
        dataDepthChecked: Bool = false
    ) {
        self.dataDepthChecked = dataDepthChecked
        self.id = id
        self.aggregate = aggregate
        self.type = type
        self.version = version
        self.data = data
        self.dataBytes = dataBytes
        self.time = time
        self.recorded = recorded
    }

    /// Reads a POST body already parsed: one event object or an array of them (the general
    /// path; ``batch(reading:maxEvents:)`` takes the bytes).
    /// - Throws: `bad_request` naming the event's index for wrong shapes and bad names;
    ///   `too_large` for more than `maxEvents` events.
    public static func batch(from body: JSON, maxEvents: Int) throws(LaterbaseError) -> [EventInput] {
        let items: [JSON]
        switch body {
        case .array(let a): items = a
        case .object: items = [body]
        default: throw LaterbaseError(.badRequest, "the body must be an event object or an array of them")
        }
        guard items.count <= maxEvents else {
            throw LaterbaseError(.tooLarge, "a batch holds at most \(maxEvents) events; this one has \(items.count)")
        }
        guard !items.isEmpty else { throw LaterbaseError(.badRequest, "the batch is empty") }
        var out: [EventInput] = []
        out.reserveCapacity(items.count)
        for (index, item) in items.enumerated() { out.append(try parse(item, index: index)) }
        return out
    }

    static func parse(_ json: JSON, index: Int) throws(LaterbaseError) -> EventInput {
        func bad(_ field: String, _ reason: String) -> LaterbaseError {
            .event(.badRequest, index: index, "\(field): \(reason)", extra: [("field", .string(field))])
        }
        guard case .object(let members) = json else { throw bad("event", "must be a JSON object") }
        var idField: JSON? = nil, aggregateField: JSON? = nil, typeField: JSON? = nil, versionField: JSON? = nil
        var dataField: JSON? = nil, timeField: JSON? = nil, origin: JSON? = nil, seq: JSON? = nil, hlc: JSON? = nil
        for (key, value) in members {
            switch key {
            case "id": idField = value
            case "aggregate": aggregateField = value
            case "type": typeField = value
            case "version": versionField = value
            case "data": dataField = value
            case "time": timeField = value
            case "origin": origin = value
            case "seq": seq = value
            case "hlc": hlc = value
            default: throw bad(key, "unknown field")
            }
        }
        var id: EventID? = nil
        if let v = idField, v != .null {
            guard let s = v.stringValue, let parsed = EventID(s) else { throw bad("id", "must be a UUID in canonical text form") }
            id = parsed
        }
        guard let aggregate = aggregateField?.stringValue else { throw bad("aggregate", "a string is required") }
        guard Names.isValidAggregateID(aggregate) else { throw bad("aggregate", "must be 1 to 256 bytes of UTF-8 without control characters") }
        guard let type = typeField?.stringValue else { throw bad("type", "a string is required") }
        guard Names.isValidEventType(type) else { throw bad("type", "must match ^[A-Za-z][A-Za-z0-9_.-]{0,127}$") }
        var version = 1
        if let v = versionField, v != .null {
            guard let n = v.int64Value, Names.versions.contains(Int(n)) else { throw bad("version", "must be an integer from 1 to 65535") }
            version = Int(n)
        }
        let data = dataField ?? .object([])
        func outOfRange(_ field: String) -> LaterbaseError {
            .event(.invalidEvent, index: index, "\(field): must lie from 0000-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z", extra: [("field", .string(field))])
        }
        var time: Int64? = nil
        if let v = timeField, v != .null {
            switch v {
            case .string(let s):
                guard let ms = EventTime.parse(s) else { throw bad("time", "must be an RFC 3339 timestamp or integer milliseconds") }
                time = ms
            case .number(let text):
                if let ms = v.int64Value {
                    time = ms
                } else if text.utf8.allSatisfy({ $0 == 0x2D || ($0 >= 0x30 && $0 <= 0x39) }) {
                    throw outOfRange("time")  // an integer, beyond Int64
                } else {
                    throw bad("time", "must be an RFC 3339 timestamp or integer milliseconds")
                }
            default: throw bad("time", "must be an RFC 3339 timestamp or integer milliseconds")
            }
            guard EventTime.range.contains(time!) else { throw outOfRange("time") }
        }
        var recorded: Recorded? = nil
        if origin != nil || seq != nil || hlc != nil {
            guard let o = origin?.stringValue, Names.isValidOrigin(o) else { throw bad("origin", "a recorded event needs a valid origin") }
            guard let sv = seq?.int64Value, sv >= 1 else { throw bad("seq", "a recorded event needs a seq of 1 or more") }
            guard let hs = hlc?.stringValue, let h = HLC(wire: hs) else { throw bad("hlc", "a recorded event needs an hlc of 16 lowercase hex digits") }
            guard id != nil else { throw bad("id", "a recorded event needs its id") }
            // Its time defaults to the hlc's milliseconds, which 48 bits let run past 9999.
            guard time != nil || EventTime.range.contains(Int64(h.milliseconds)) else { throw outOfRange("hlc") }
            recorded = Recorded(origin: o, seq: UInt64(sv), hlc: h)
        }
        return EventInput(id: id, aggregate: aggregate, type: type, version: version, data: data, time: time, recorded: recorded)
    }
}
