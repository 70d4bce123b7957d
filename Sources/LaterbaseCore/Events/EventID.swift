/// An event id: a UUID of any version, kept as its 16 bytes.
public struct EventID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The 16 bytes, most significant first.
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 16)
        self.bytes = bytes
    }

    /// Parses the canonical text form (8-4-4-4-12 hex digits, either case).
    public init?(_ text: String) {
        let u = Array(text.utf8)
        guard u.count == 36, u[8] == 0x2D, u[13] == 0x2D, u[18] == 0x2D, u[23] == 0x2D else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(16)
        var high: UInt8? = nil
        for (i, b) in u.enumerated() where i != 8 && i != 13 && i != 18 && i != 23 {
            let v: UInt8
            switch b {
            case 0x30...0x39: v = b - 0x30
            case 0x61...0x66: v = b - 0x61 + 10
            case 0x41...0x46: v = b - 0x41 + 10
            default: return nil
            }
            if let h = high {
                out.append(h << 4 | v)
                high = nil
            } else {
                high = v
            }
        }
        bytes = out
    }

    /// A new UUID v7: 48 bits of milliseconds, then random bits, so ids made in order sort in order.
    public static func v7(milliseconds: UInt64) -> EventID {
        var b = [UInt8](repeating: 0, count: 16)
        for i in 0..<6 { b[i] = UInt8(truncatingIfNeeded: milliseconds >> UInt64(40 - 8 * i)) }
        var random = SystemRandomNumberGenerator()
        let r1 = random.next(), r2 = random.next()
        for i in 6..<16 { b[i] = UInt8(truncatingIfNeeded: (i < 11 ? r1 : r2) >> UInt64(8 * (i % 8))) }
        b[6] = 0x70 | (b[6] & 0x0F)
        b[8] = 0x80 | (b[8] & 0x3F)
        return EventID(bytes: b)
    }

    public static func < (lhs: EventID, rhs: EventID) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends the canonical lowercase text form.
    public func append(to out: inout [UInt8]) {
        for (i, b) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { out.append(0x2D) }
            out.append(Self.hex[Int(b >> 4)])
            out.append(Self.hex[Int(b & 0xF)])
        }
    }

    public var description: String {
        var out: [UInt8] = []
        append(to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
