/// Why some bytes are not JSON, and where.
public struct JSONSyntaxError: Error, CustomStringConvertible, Sendable {
    /// Byte offset of the problem.
    public let offset: Int
    /// What was wrong.
    public let reason: String
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

/// A strict RFC 8259 parser over UTF-8 bytes.
public struct JSONParser: ~Copyable {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    var depth = 0
    private static let maxDepth = 128
    /// Counts the places where the text is not what ``JSONWriter`` writes for what was parsed
    /// (whitespace, an escape, a repeated member name): a value whose parse leaves it unchanged
    /// can be stored as the bytes it came in.
    var irregular = 0
    /// The depth of the objects whose members' spans are kept (0: none).
    private var recordDepth = 0
    private var spans = MemberSpans()
    /// With events below the top (``parseBatch(_:eventDepth:)``), only the array that is the
    /// document's `events` member has its elements' spans kept.
    private var inEvents = true
    private var eventsSeen = 0

    /// Parses one JSON document; trailing whitespace is allowed, anything else is an error.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONSyntaxError) -> JSON {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        if parser.index != bytes.count { throw parser.error("unexpected data after the document") }
        return value
    }

    /// Parses an event batch (one object, or an array of values) as ``parse(_:)`` does, and
    /// also says where each event's member values lie in `bytes`: for the document when it is an
    /// object, else for each element of the array (empty for an element that is not an object),
    /// one range per member in the object's order, or nil when the value's text is not exactly
    /// what ``JSONWriter`` would write for it. So a value can be kept as the bytes it came in
    /// without writing it again.
    /// - Parameter eventDepth: where the events are when not at the top: 3 for the elements of
    ///   an array that is a member of the document (a feed page's or a delta's `events`).
    public static func parseBatch(_ bytes: UnsafeRawBufferPointer, eventDepth: Int? = nil) throws(JSONSyntaxError) -> (json: JSON, spans: MemberSpans) {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        if let eventDepth {
            parser.recordDepth = eventDepth
            parser.inEvents = false
        } else if parser.index < bytes.count {
            parser.recordDepth = bytes[parser.index] == UInt8(ascii: "[") ? 2 : 1
        }
        let value = try parser.parseValue()
        parser.skipWhitespace()
        if parser.index != bytes.count { throw parser.error("unexpected data after the document") }
        // Two `events` members: the spans kept cannot be matched to the one that stays.
        return (value, parser.eventsSeen > 1 ? MemberSpans() : parser.spans)
    }

    /// Parses one JSON document from `bytes`.
    public static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSON {
        let result: Result<JSON, JSONSyntaxError> = bytes.withUnsafeBytes { b in
            Result { () throws(JSONSyntaxError) in try parse(b) }
        }
        return try result.get()
    }

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private func error(_ reason: String) -> JSONSyntaxError { JSONSyntaxError(offset: index, reason: reason) }

    mutating func skipWhitespace() {
        let start = index
        defer { if index != start { irregular &+= 1 } }
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    mutating func parseValue() throws(JSONSyntaxError) -> JSON {
        guard index < bytes.count else { throw error("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected character")
        }
    }

    mutating func expect(_ word: StaticString) throws(JSONSyntaxError) {
        let n = word.utf8CodeUnitCount
        guard index + n <= bytes.count else { throw error("unexpected end of input") }
        let w = word.utf8Start
        for i in 0..<n where bytes[index + i] != w[i] { throw error("unexpected literal") }
        index += n
    }

    private mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        if depth > Self.maxDepth { throw error("nesting deeper than \(Self.maxDepth)") }
    }

    private mutating func parseObject() throws(JSONSyntaxError) -> JSON {
        try enter()
        defer { depth -= 1 }
        index += 1
        let recording = depth == recordDepth
        if recording && depth == 1 { spans.startObject() }
        var members: [(key: String, value: JSON)] = []
        members.reserveCapacity(8)  // one allocation for an event's members, not four
        var names = MemberIndex()
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a member name") }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
            index += 1
            skipWhitespace()
            let before = irregular, start = index
            let events = depth == 1 && recordDepth == 3 && key == "events"
            if events {
                inEvents = true
                eventsSeen += 1
            }
            let value = try parseValue()
            if events { inEvents = false }
            var existing: Int? = nil
            if members.count <= MemberIndex.scanLimit {  // a scan, with no copy of each name
                for i in members.indices where members[i].key.sameBytes(as: key) {
                    existing = i
                    break
                }
            } else {
                existing = names.find(key, count: members.count, name: { members[$0].key })
            }
            if let existing {
                members[existing].value = value  // RFC 8259 leaves duplicates open; the last one wins
                irregular &+= 1
                if recording { spans.forget(member: existing) }
            } else {
                names.insert(key, at: members.count)
                members.append((key, value))
                if recording { spans.append(irregular == before ? start..<index : nil) }
            }
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(members) }
            throw error("expected ',' or '}'")
        }
    }

    private mutating func parseArray() throws(JSONSyntaxError) -> JSON {
        try enter()
        defer { depth -= 1 }
        index += 1
        var elements: [JSON] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        let recording = depth + 1 == recordDepth && inEvents
        while true {
            skipWhitespace()
            if recording { spans.startObject() }
            elements.append(try parseValue())
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(elements) }
            throw error("expected ',' or ']'")
        }
    }

    private mutating func parseNumber() throws(JSONSyntaxError) -> JSON {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw error("expected a digit") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("expected a digit after '.'") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("expected an exponent") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        return .number(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
    }

    @inline(__always) private func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    mutating func parseString() throws(JSONSyntaxError) -> String {
        index += 1
        let start = index
        // Fast path: no escapes; ASCII needs no UTF-8 validation.
        var ascii = true
        // Eight plain ASCII bytes at a time (no quote, backslash, control or non-ASCII byte).
        while index + 8 <= bytes.count {
            let w = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            if w & 0x8080_8080_8080_8080 != 0 || JSONWriter.needsEscape(w) { break }
            index += 8
        }
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                index += 1
                if ascii { return String(decoding: slice, as: UTF8.self) }
                guard let s = String(validating: slice, as: UTF8.self) else { throw error("invalid UTF-8 in string") }
                return s
            }
            if b >= 0x80 { ascii = false }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw error("control character in string") }
            index += 1
        }
        irregular &+= 1  // an escape: kept decoded, written again the writer's way
        var out: [UInt8] = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                index += 1
                guard let s = String(validating: out, as: UTF8.self) else { throw error("invalid UTF-8 in string") }
                return s
            }
            if b < 0x20 { throw error("control character in string") }
            if b != UInt8(ascii: "\\") {
                out.append(b)
                index += 1
                continue
            }
            index += 1
            guard index < bytes.count else { break }
            let e = bytes[index]
            index += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw error("unpaired surrogate")
                    }
                    index += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw error("unpaired surrogate")
                }
                out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
            default: throw error("invalid escape")
            }
        }
        throw error("unterminated string")
    }

    private mutating func parseHex4() throws(JSONSyntaxError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[index]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            case 0x61...0x66: d = UInt32(b - 0x61 + 10)
            default: throw error("invalid \\u escape")
            }
            v = v << 4 | d
            index += 1
        }
        return v
    }
}

/// Where the member values of a batch's objects lie in its bytes (``JSONParser/parseBatch(_:)``),
/// kept flat: one array of spans and where each object's start.
public struct MemberSpans: Sendable {
    private var starts: [Int] = []
    private var values: [Range<Int>?] = []

    public init() {}

    mutating func startObject() { starts.append(values.count) }
    mutating func append(_ span: Range<Int>?) { values.append(span) }
    mutating func forget(member: Int) { values[starts[starts.count - 1] + member] = nil }

    /// The span of member `member` of object `object`, when its text is what the writer writes.
    public func span(object: Int, member: Int) -> Range<Int>? {
        guard object < starts.count else { return nil }
        let start = starts[object], end = object + 1 < starts.count ? starts[object + 1] : values.count
        return start + member < end ? values[start + member] : nil
    }
}
