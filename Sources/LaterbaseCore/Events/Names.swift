/// The name rules of the wire contract.
public enum Names {
    /// A root: `^[a-z][a-z0-9_-]{0,63}$`.
    public static func isValidRoot(_ s: String) -> Bool {
        matches(s, maxLength: 64, first: isLower) { isLower($0) || isDigit($0) || $0 == 0x5F || $0 == 0x2D }
    }

    /// An aggregate id: 1 to 256 bytes of UTF-8, no control characters.
    public static func isValidAggregateID(_ s: String) -> Bool {
        let utf8 = s.utf8
        guard (1...256).contains(utf8.count) else { return false }
        if utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return true }  // printable ASCII: the common case
        return !s.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// An event type: `^[A-Za-z][A-Za-z0-9_.-]{0,127}$`.
    public static func isValidEventType(_ s: String) -> Bool {
        matches(s, maxLength: 128, first: isLetter) { isLetter($0) || isDigit($0) || $0 == 0x5F || $0 == 0x2E || $0 == 0x2D }
    }

    /// An origin (replica id): `^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`.
    public static func isValidOrigin(_ s: String) -> Bool {
        matches(s, maxLength: 64, first: { isLetter($0) || isDigit($0) }) { isLetter($0) || isDigit($0) || $0 == 0x5F || $0 == 0x2E || $0 == 0x2D }
    }

    /// Whether `s` has 1 to `maxLength` bytes, the first passing `first` and the others `rest`:
    /// over the string's own bytes (a page checks thousands of names; a copy each was most of
    /// the check).
    @inline(__always)
    private static func matches(_ s: String, maxLength: Int, first: (UInt8) -> Bool, rest: (UInt8) -> Bool) -> Bool {
        func check(_ u: some Collection<UInt8>) -> Bool {
            guard let head = u.first, u.count <= maxLength, first(head) else { return false }
            return u.dropFirst().allSatisfy(rest)
        }
        return s.utf8.withContiguousStorageIfAvailable { check($0) } ?? check(s.utf8)
    }

    /// An event version: 1 to 65535.
    public static let versions: ClosedRange<Int> = 1...65535

    @inline(__always) static func isLower(_ b: UInt8) -> Bool { b >= 0x61 && b <= 0x7A }
    @inline(__always) static func isLetter(_ b: UInt8) -> Bool { isLower(b) || (b >= 0x41 && b <= 0x5A) }
    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
}
