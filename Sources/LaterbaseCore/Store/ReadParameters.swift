/// The parameters of the read endpoints, parsed from their text as the contract settles them.
/// Every refusal is `bad_request` naming the parameter; nothing here can trap on any input.
public enum ReadParameters {
    /// A time: RFC 3339 or integer milliseconds, within ``EventTime/range``.
    public static func time(_ text: String, name: String) throws(LaterbaseError) -> Int64 {
        let ms = Int64(text) ?? EventTime.parse(text)
        guard let ms, EventTime.range.contains(ms) else {
            throw refusal(name, "must be an RFC 3339 timestamp or integer milliseconds from 0000-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z")
        }
        return ms
    }

    /// An integer in `range`.
    public static func integer(_ text: String, name: String, in range: ClosedRange<Int>) throws(LaterbaseError) -> Int {
        guard let n = Int(text), range.contains(n) else {
            throw refusal(name, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    /// An aggregate id (`after` of the aggregate list): never empty.
    public static func aggregateID(_ text: String, name: String) throws(LaterbaseError) -> String {
        guard Names.isValidAggregateID(text) else {
            throw refusal(name, "must be an aggregate id: 1 to 256 bytes of UTF-8 without control characters")
        }
        return text
    }

    /// A version vector in its wire form.
    public static func versionVector(_ text: String, name: String) throws(LaterbaseError) -> VersionVector {
        do {
            return try VersionVector(parsing: text)
        } catch {
            throw refusal(name, error.description)
        }
    }

    /// A position token (``Position``); nil for the empty text (the beginning).
    public static func position(_ text: String, name: String) throws(LaterbaseError) -> Position? {
        if text.isEmpty { return nil }
        guard let p = Position(token: text) else {
            throw refusal(name, "not a position token (16 hex digits, ':', a decimal number), as `next` or `position` gave it")
        }
        return p
    }

    private static func refusal(_ name: String, _ reason: String) -> LaterbaseError {
        LaterbaseError(.badRequest, "\(name): \(reason)", details: [.object([("parameter", .string(name)), ("reason", .string(reason))])])
    }
}
