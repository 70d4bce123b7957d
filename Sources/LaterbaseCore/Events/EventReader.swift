#if canImport(Glibc)
import Glibc
#endif

/// Reads events straight from their JSON bytes: the common case of every way in (POST bodies,
/// ZeroMQ ingest messages, feed pages and deltas), without building a JSON tree of each event's
/// members or a `String` for its id, time, hlc and numbers, and keeping `data` as the bytes it
/// came in when they are already in the writer's form.
///
/// It takes only what is plain and valid: any member it does not know, a repeated one, an
/// escape in an id or time, a value of the wrong kind or out of range, and it gives up (nil).
/// The general path (``JSONParser/parse(_:)`` and ``EventInput/batch(from:maxEvents:)``) then
/// reads the same events the same way and says what is wrong. So there is one set of rules,
/// checked twice only for bad or unusual input. ``EventInput/batch(reading:maxEvents:)`` and
/// ``EventInput/page(reading:)`` take one path or the other.
extension EventInput {
    /// A batch body as POST and ZeroMQ ingest carry it: one event object or an array of them.
    /// - Throws: `bad_request` (not JSON, wrong shapes, bad names), `too_large`, as
    ///   ``batch(from:maxEvents:)``.
    public static func batch(reading body: UnsafeRawBufferPointer, maxEvents: Int) throws(LaterbaseError) -> [EventInput] {
        if let events = JSONParser.readEvents(body, maxEvents: maxEvents) { return events }
        let json: JSON
        do { json = try JSONParser.parse(body) } catch { throw LaterbaseError(.badRequest, "the body is not JSON: \(error.description)") }
        return try batch(from: json, maxEvents: maxEvents)
    }

    /// A feed page or a delta, `{"events": [...], ...}`: its events and the document.
    /// - Parameter check: what the caller requires of the document (its `head`, say), run
    ///   before any event is read on the general path, so a document that is wrong as a whole is
    ///   refused for that before any of its events is.
    /// - Throws: `bad_request` when it is not JSON or an event is malformed; what `check` throws.
    public static func page(
        reading body: UnsafeRawBufferPointer, check: (JSON) throws(LaterbaseError) -> Void = { _ in }
    ) throws(LaterbaseError) -> (events: [EventInput], document: JSON) {
        if let page = JSONParser.readPage(body) {
            try check(page.rest)
            return (page.events, page.rest)
        }
        let json: JSON
        do { json = try JSONParser.parse(body) } catch { throw LaterbaseError(.badRequest, "not JSON: \(error.description)") }
        try check(json)
        guard case .array(let items)? = json["events"], !items.isEmpty else { return ([], json) }
        return (try batch(from: .array(items), maxEvents: Int.max), json)
    }
}

extension JSONParser {
    /// The events of a batch body (one event object or an array of them), or nil.
    public static func readEvents(_ bytes: UnsafeRawBufferPointer, maxEvents: Int) -> [EventInput]? {
        var p = JSONParser(bytes: bytes)
        p.skipWhitespace()
        guard p.index < bytes.count else { return nil }
        var events: [EventInput] = []
        if bytes[p.index] == UInt8(ascii: "{") {
            p.depth = 1
            guard let e = p.readEvent() else { return nil }
            events.append(e)
        } else {
            p.depth = 2
            guard p.readEventArray(into: &events, maxEvents: maxEvents) else { return nil }
        }
        p.skipWhitespace()
        return p.index == bytes.count ? events : nil
    }

    /// A feed page or a delta, `{"events": [...], ...}`: its events, and the document with the
    /// other members (`head`, `vv`, `more`) and `events` as an empty array; or nil.
    public static func readPage(_ bytes: UnsafeRawBufferPointer) -> (events: [EventInput], rest: JSON)? {
        var p = JSONParser(bytes: bytes)
        p.skipWhitespace()
        guard p.index < bytes.count, bytes[p.index] == UInt8(ascii: "{") else { return nil }
        p.index += 1
        var events: [EventInput]? = nil
        var members: [(key: String, value: JSON)] = []
        while true {
            p.skipWhitespace()
            guard p.index < bytes.count, bytes[p.index] == UInt8(ascii: "\""), let key = try? p.parseString() else { return nil }
            guard !members.contains(where: { $0.key.sameBytes(as: key) }) else { return nil }
            p.skipWhitespace()
            guard p.index < bytes.count, bytes[p.index] == UInt8(ascii: ":") else { return nil }
            p.index += 1
            p.skipWhitespace()
            if key == "events" {
                var read: [EventInput] = []
                p.depth = 3
                guard p.readEventArray(into: &read, maxEvents: .max) else { return nil }
                events = read
                members.append((key, .array([])))
            } else {
                p.depth = 1
                guard let value = try? p.parseValue() else { return nil }
                members.append((key, value))
            }
            guard let more = p.separator(closing: UInt8(ascii: "}")) else { return nil }
            if !more { break }
        }
        p.skipWhitespace()
        guard p.index == bytes.count, let events else { return nil }
        return (events, .object(members))
    }

    /// `[event, ...]` at the current position (not empty: an empty batch is the general path's
    /// to refuse).
    private mutating func readEventArray(into events: inout [EventInput], maxEvents: Int) -> Bool {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "[") else { return false }
        index += 1
        let eventDepth = depth
        while true {
            skipWhitespace()
            depth = eventDepth
            guard let e = readEvent() else { return false }
            events.append(e)
            guard events.count <= maxEvents, let more = separator(closing: UInt8(ascii: "]")) else { return false }
            if !more { return true }
        }
    }

    private enum Member: UInt16 {
        case id = 1, aggregate = 2, type = 4, version = 8, data = 16, time = 32, origin = 64, seq = 128, hlc = 256

        init?(_ name: UnsafeRawBufferPointer) {
            func named(_ s: StaticString) -> Bool {
                s.utf8CodeUnitCount == name.count && memcmp(s.utf8Start, name.baseAddress!, name.count) == 0
            }
            switch name.count {
            case 2 where named("id"): self = .id
            case 9 where named("aggregate"): self = .aggregate
            case 4 where named("type"): self = .type
            case 4 where named("data"): self = .data
            case 4 where named("time"): self = .time
            case 7 where named("version"): self = .version
            case 6 where named("origin"): self = .origin
            case 3 where named("seq"): self = .seq
            case 3 where named("hlc"): self = .hlc
            default: return nil
            }
        }
    }

    /// One event object at the current position (`depth`: that of its members' values' parent).
    private mutating func readEvent() -> EventInput? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return nil }
        index += 1
        var seen: UInt16 = 0
        var id: EventID? = nil, aggregate: String? = nil, type: String? = nil, version = 1
        var data: JSON = .object([]), dataBytes: [UInt8] = Array("{}".utf8)
        var time: Int64? = nil, origin: String? = nil, seq: Int64? = nil, hlc: HLC? = nil
        let valueDepth = depth
        while true {
            skipWhitespace()
            guard let nameRange = plainString(), nameRange.count > 0,
                  let member = Member(UnsafeRawBufferPointer(rebasing: bytes[nameRange])), seen & member.rawValue == 0
            else { return nil }
            seen |= member.rawValue
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
            index += 1
            skipWhitespace()
            switch member {
            case .id:
                if isNull() { break }
                guard let r = plainString(), let v = EventID.parse(UnsafeRawBufferPointer(rebasing: bytes[r])) else { return nil }
                id = v
            case .aggregate:
                guard let s = string(), Names.isValidAggregateID(s) else { return nil }
                aggregate = s
            case .type:
                guard let s = string(), Names.isValidEventType(s) else { return nil }
                type = s
            case .version:
                if isNull() { break }
                guard let n = integer(), Names.versions.contains(Int(n)) else { return nil }
                version = Int(n)
            case .data:
                // Data may nest ``EventInput/maxDataDepth`` levels wherever it sits: deeper, and
                // this reader gives up (the general path says why).
                depth = JSONParser.maxDepth - EventInput.maxDataDepth
                let before = irregular, start = index
                guard let value = try? parseValue() else { return nil }
                data = value
                dataBytes = irregular == before ? Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index])) : value.bytes
            case .time:
                if isNull() { break }
                if let r = plainString() {
                    guard let ms = EventTime.parse(UnsafeRawBufferPointer(rebasing: bytes[r])) else { return nil }
                    time = ms
                } else {
                    guard let ms = integer() else { return nil }
                    time = ms
                }
                guard EventTime.range.contains(time!) else { return nil }
            case .origin:
                guard let s = string(), Names.isValidOrigin(s) else { return nil }
                origin = s
            case .seq:
                guard let n = integer(), n >= 1 else { return nil }
                seq = n
            case .hlc:
                guard let r = plainString(), let h = HLC(wire: UnsafeRawBufferPointer(rebasing: bytes[r])) else { return nil }
                hlc = h
            }
            guard let more = separator(closing: UInt8(ascii: "}")) else { return nil }
            if !more { break }
        }
        guard let aggregate, let type else { return nil }
        var recorded: EventInput.Recorded? = nil
        if origin != nil || seq != nil || hlc != nil {
            guard let origin, let seq, let hlc, id != nil, time != nil || EventTime.range.contains(Int64(hlc.milliseconds)) else { return nil }
            recorded = EventInput.Recorded(origin: origin, seq: UInt64(seq), hlc: hlc)
        }
        return EventInput(id: id, aggregate: aggregate, type: type, version: version, data: data, dataBytes: dataBytes, time: time, recorded: recorded, dataDepthChecked: true)
    }

    /// After a member or an element: true past a `,` (another follows), false past `closing`,
    /// nil for anything else.
    private mutating func separator(closing: UInt8) -> Bool? {
        skipWhitespace()
        guard index < bytes.count else { return nil }
        let b = bytes[index]
        guard b == UInt8(ascii: ",") || b == closing else { return nil }
        index += 1
        return b == UInt8(ascii: ",")
    }

    /// A string without escapes or control characters at the current position: the range of its
    /// contents, past its closing quote; nil (position unchanged) otherwise.
    private mutating func plainString() -> Range<Int>? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        var i = index + 1
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                defer { index = i + 1 }
                return (index + 1)..<i
            }
            if b == UInt8(ascii: "\\") || b < 0x20 { return nil }
            i += 1
        }
        return nil
    }

    /// A string at the current position, escapes decoded (as the general parser reads it).
    private mutating func string() -> String? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        return try? parseString()
    }

    /// `null` at the current position, taken.
    private mutating func isNull() -> Bool {
        guard index + 4 <= bytes.count, bytes[index] == UInt8(ascii: "n") else { return false }
        return (try? expect("null")) != nil
    }

    /// A JSON number written as an integer that fits in Int64 (what `JSON.int64Value` takes),
    /// at the current position; nil for anything else.
    private mutating func integer() -> Int64? {
        var i = index
        let negative = i < bytes.count && bytes[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        let start = i
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        let digits = i - start
        guard digits > 0, digits <= 18, !(digits > 1 && bytes[start] == 0x30) else { return nil }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") || bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") { return nil }
        var v: Int64 = 0
        for j in start..<i { v = v * 10 + Int64(bytes[j] - 0x30) }
        index = i
        return negative ? -v : v
    }
}
