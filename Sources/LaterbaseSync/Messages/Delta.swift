import LaterbaseCore

/// A published delta (contract v3): `{"events": [recorded events of one commit, in hlc order],
/// "previous": "<position before them>", "position": "<position after them>"}`, sent as the
/// message `[root, body]` on the publish socket, with no head (with many origins a head is
/// large). A subscriber whose cursor is `previous` takes the events and moves to `position`; any
/// other catches up through the feed by `since`.
public struct Delta: Sendable {
    public var events: [EventInput]
    /// What the sender holds at least: a feed page's `head`; for a delta, each origin's last seq
    /// among its events (the publisher committed them, and its origins have no gaps).
    public var head: VersionVector
    /// The publisher's position before and after the events, when it sends them.
    public var previous: Position?
    public var position: Position?

    public init(events: [EventInput], head: VersionVector, previous: Position? = nil, position: Position? = nil) {
        self.events = events
        self.head = head
        self.previous = previous
        self.position = position
    }

    /// The bodies of a commit's deltas, written straight from its events: one, or several in
    /// hlc order when the events are over `maxBytes` together (each at most `maxBytes`, or one
    /// event that alone is larger), so that whatever a node accepts, a subscriber takes. Each
    /// carries the positions before and after its own events (the commit's events are numbered
    /// in this order).
    public static func encode(events: [RecordedEvent], previous: Position, maxBytes: Int = EventStore.pageBytes) -> [[UInt8]] {
        func end(_ first: UInt64, _ count: Int) -> [UInt8] {
            var out = Array(#"],"previous":""#.utf8) + Array(Position(epoch: previous.epoch, value: first).description.utf8)
            out += Array(#"","position":""#.utf8) + Array(Position(epoch: previous.epoch, value: first + UInt64(count)).description.utf8)
            return out + Array(#""}"#.utf8)
        }
        let endBytes = 110  // at most, both positions included
        var bodies: [[UInt8]] = []
        var out: [UInt8] = []
        var count = 0
        var first = previous.value
        out.reserveCapacity(min(32 + events.count * 200, maxBytes))
        out.append(contentsOf: #"{"events":["#.utf8)
        for e in events {
            let before = out.count
            if count > 0 { out.append(UInt8(ascii: ",")) }
            e.appendJSON(to: &out)
            if count > 0, out.count + endBytes > maxBytes {
                let next = Array(out[(before + 1)...])
                out.removeSubrange(before...)
                bodies.append(out + end(first, count))
                first += UInt64(count)
                out = Array(#"{"events":["#.utf8) + next
                count = 1
            } else {
                count += 1
            }
        }
        bodies.append(out + end(first, count))
        return bodies
    }

    /// Only recorded events in a delta or a peer's feed page: a plain event there would be stored
    /// as this node's own.
    static func recordedOnly(_ events: [EventInput]) throws(LaterbaseError) {
        if let index = events.firstIndex(where: { $0.recorded == nil }) {
            throw .event(.badRequest, index: index, "a delta or feed page holds only recorded events (with origin, seq and hlc)")
        }
    }

    /// Reads a delta body (or a feed page, which has the same `events` and `head`).
    /// - Throws: `bad_request` when it is not a delta.
    public init(parsing body: [UInt8]) throws(LaterbaseError) {
        let result = body.withUnsafeBytes { b in Result { () throws(LaterbaseError) in try Delta.parsing(b).delta } }
        self = try result.get()
    }

    /// Reads a delta body or a feed page (``EventInput/page(reading:)``).
    /// - Returns: the delta, and the whole document (a feed page's `vv` and `more` are beside it).
    public static func parsing(_ body: UnsafeRawBufferPointer) throws(LaterbaseError) -> (delta: Delta, json: JSON) {
        var head = VersionVector()
        var previous: Position? = nil, position: Position? = nil
        let (events, json) = try EventInput.page(reading: body) { (json) throws(LaterbaseError) in
            guard case .array? = json["events"] else { throw LaterbaseError(.badRequest, "not a delta or feed page: it needs events") }
            previous = json["previous"]?.stringValue.flatMap(Position.init(token:))
            position = json["position"]?.stringValue.flatMap(Position.init(token:))
            if let text = json["head"]?.stringValue {
                guard let parsed = try? VersionVector(parsing: text) else { throw LaterbaseError(.badRequest, "its head is not a version vector") }
                head = parsed
            } else if previous == nil || position == nil {
                throw LaterbaseError(.badRequest, "not a delta or feed page: it needs a head, or previous and position")
            }
        }
        try recordedOnly(events)
        if json["head"] == nil { head = VersionVector(events.lastSeqs()) }
        return (Delta(events: events, head: head, previous: previous, position: position), json)
    }
}

/// What the publish socket announces under `_rejected` when an ingest message is refused:
/// `{"root", "error", "message", "details", "ids": [...], "origins": [...], "seqs": [...]}`.
/// `origins` and `seqs` have one entry per event of the message (null where it names none), so
/// a peer link can tell whether the message was its own push (the dots it names are ones it sent
/// and the peer has not acknowledged) and whose event a `details` index points at: an
/// announcement of someone else's message steers nothing.
public enum Rejection {
    /// The topic frame.
    public static let topic = "_rejected"

    public static func encode(root: String, error: LaterbaseError, named: Named) -> [UInt8] {
        JSON.object([
            ("root", .string(root)), ("error", .string(error.code.rawValue)), ("message", .string(error.message)),
            ("details", .array(error.details)), ("ids", .array(named.ids.map { .string($0) })),
            ("origins", .array(named.origins.map { $0.map { .string($0) } ?? .null })),
            ("seqs", .array(named.seqs.map { $0.map { .integer(Int64(clamping: $0)) } ?? .null })),
        ]).bytes
    }

    /// What a refused body names, as far as it can be read.
    public struct Named: Sendable, Equatable {
        /// Every `id` string of its events.
        public var ids: [String] = []
        /// Each event's `origin` string, or nil.
        public var origins: [String?] = []
        /// Each event's `seq` (a positive integer), or nil.
        public var seqs: [UInt64?] = []
    }

    public static func named(in body: [UInt8]) -> Named {
        guard let json = try? JSONParser.parse(body) else { return Named() }
        let items: [JSON]
        switch json {
        case .array(let a): items = a
        case .object: items = [json]
        default: return Named()
        }
        return Named(
            ids: items.compactMap { $0["id"]?.stringValue }, origins: items.map { $0["origin"]?.stringValue },
            seqs: items.map { $0["seq"]?.int64Value.flatMap { $0 > 0 ? UInt64($0) : nil } })
    }

    /// An announcement as a peer link reads it.
    struct Announcement {
        var root: String
        var code: LaterbaseError.Code
        var message: String
        /// The refused event's index in the message, when the error names one.
        var index: Int?
        /// Each event's dot in the message, where it names one.
        var dots: [Dot?]

        init?(_ body: [UInt8]) {
            guard let json = try? JSONParser.parse(body), let root = json["root"]?.stringValue,
                  let name = json["error"]?.stringValue, let code = LaterbaseError.Code.contract.first(where: { $0.rawValue == name })
            else { return nil }
            self.root = root
            self.code = code
            message = json["message"]?.stringValue ?? ""
            if case .array(let details)? = json["details"], let i = details.first?["index"]?.int64Value { index = Int(exactly: i) }
            let origins: [JSON], seqs: [JSON]
            if case .array(let o)? = json["origins"] { origins = o } else { origins = [] }
            if case .array(let s)? = json["seqs"] { seqs = s } else { seqs = [] }
            dots = origins.indices.map { i in
                guard let origin = origins[i].stringValue, i < seqs.count, let seq = seqs[i].int64Value, seq > 0 else { return nil }
                return Dot(origin: origin, seq: UInt64(seq))
            }
        }
    }
}
