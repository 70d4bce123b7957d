/// An event as stored, served, published and replicated.
public struct RecordedEvent: Sendable, Equatable {
    public let id: EventID
    public let aggregate: String
    public let type: String
    public let version: Int
    /// The data as compact JSON.
    public let data: [UInt8]
    /// Valid time, ms since the epoch.
    public let time: Int64
    public let hlc: HLC
    public let origin: String
    public let seq: UInt64

    public init(id: EventID, aggregate: String, type: String, version: Int, data: [UInt8], time: Int64, hlc: HLC, origin: String, seq: UInt64) {
        self.id = id
        self.aggregate = aggregate
        self.type = type
        self.version = version
        self.data = data
        self.time = time
        self.hlc = hlc
        self.origin = origin
        self.seq = seq
    }

    public var dot: Dot { Dot(origin: origin, seq: seq) }

    /// Appends the contract's JSON object for this event.
    public func appendJSON(to out: inout [UInt8]) {
        let record = EventRecord.encode(self)
        var origin = origin
        origin.withUTF8 { o in
            // A record just encoded always decodes: its lengths come from the event itself.
            record.withUnsafeBytes { try? EventRecord.appendJSON(origin: UnsafeRawBufferPointer(o), seq: seq, $0, to: &out) }
        }
    }

    /// The contract's JSON for this event.
    public var json: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160 + data.count)
        appendJSON(to: &out)
        return out
    }

    /// The acknowledgment entry of a POST response: `{"id", "origin", "seq", "hlc", "time"}`.
    public var acknowledgment: JSON {
        .object([
            ("id", .string(id.description)), ("origin", .string(origin)), ("seq", .integer(seq)),
            ("hlc", .string(hlc.description)), ("time", .string(EventTime.format(time))),
        ])
    }
}
