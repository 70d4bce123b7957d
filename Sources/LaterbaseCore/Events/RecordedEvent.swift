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

    /// The SHA-256 of its recorded JSON form, as 64 hex digits: what a log line shows to tell
    /// two versions of one event apart.
    public var digest: String {
        var json: [UInt8] = []
        appendJSON(to: &json)
        return Hex.encode(SHA256.hash(json))
    }

    /// Appends the contract's JSON object for this event.
    public func appendJSON(to out: inout [UInt8]) {
        var aggregate = aggregate, type = type, origin = origin
        aggregate.withUTF8 { a in
            type.withUTF8 { t in
                origin.withUTF8 { o in
                    data.withUnsafeBytes { d in
                        EventRecord.appendJSON(
                            id: (id.high, id.low), aggregate: UnsafeRawBufferPointer(a), type: UnsafeRawBufferPointer(t), version: version, data: d,
                            time: time, hlc: hlc, origin: UnsafeRawBufferPointer(o), seq: seq, to: &out)
                    }
                }
            }
        }
    }

    /// The contract's JSON for this event.
    public var json: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160 + data.count)
        appendJSON(to: &out)
        return out
    }

    /// Appends the acknowledgment entry of a POST response: `{"id", "origin", "seq", "hlc", "time"}`.
    public func appendAcknowledgment(to out: inout [UInt8]) {
        out.append(contentsOf: #"{"id":""#.utf8)
        EventID.appendHex(id.high, id.low, to: &out)
        out.append(contentsOf: #"","origin":""#.utf8)
        out.appendUTF8(origin)  // origins need no escaping
        out.append(contentsOf: #"","seq":"#.utf8)
        EventRecord.appendDecimal(seq, to: &out)
        out.append(contentsOf: #","hlc":""#.utf8)
        hlc.appendHex(to: &out)
        out.append(contentsOf: #"","time":""#.utf8)
        EventTime.append(time, to: &out)
        out.append(contentsOf: #""}"#.utf8)
    }
}
