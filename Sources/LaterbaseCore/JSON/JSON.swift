/// A JSON value. Objects keep their members in the order given; numbers keep their exact text,
/// so a value read and written again is byte-for-byte the same.
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number, as its validated JSON text (e.g. `12`, `-0.5e3`).
    case number(String)
    case string(String)
    case array([JSON])
    case object([(key: String, value: JSON)])

    public static func == (lhs: JSON, rhs: JSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.string(a), .string(b)): return a.sameBytes(as: b)
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key.sameBytes(as: $1.key) && $0.value == $1.value }
        default: return false
        }
    }

    /// The member named `key`, when this is an object that has it.
    public subscript(key: String) -> JSON? {
        guard case .object(let members) = self else { return nil }
        return members.last(where: { $0.key.sameBytes(as: key) })?.value
    }

    /// The string, when this is a string.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The integer, when this is a number written as an integer that fits in `Int64`.
    public var int64Value: Int64? {
        if case .number(let text) = self { return Int64(text) }
        return nil
    }

    /// Builds a number from an integer.
    public static func integer<I: BinaryInteger>(_ value: I) -> JSON { .number(String(value)) }

    /// This value as compact JSON text bytes.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        JSONWriter.write(self, to: &out)
        return out
    }
}
