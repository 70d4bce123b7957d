/// Hexadecimal digits, as the wire uses them (ids, hlcs, token hashes): written lowercase.
public enum Hex {
    /// The lowercase digit of `value` (0-15).
    @inline(__always) public static func digit(_ value: UInt8) -> UInt8 { value < 10 ? 0x30 + value : 0x57 + value }

    /// The value of a digit; uppercase only when `uppercase` allows it.
    @inline(__always) public static func value(_ digit: UInt8, uppercase: Bool = false) -> UInt8? {
        switch digit {
        case 0x30...0x39: digit - 0x30
        case 0x61...0x66: digit - 0x61 + 10
        case 0x41...0x46 where uppercase: digit - 0x41 + 10
        default: nil
        }
    }

    /// Lowercase text of `bytes`.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        for b in bytes {
            out.append(digit(b >> 4))
            out.append(digit(b & 0xF))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of lowercase hex text; nil if it is not that.
    public static func decode(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let hi = value(digits[i]), let lo = value(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        return out
    }
}

extension Hex {
    /// A 64-bit digest as the wire carries it: 16 lowercase hex digits.
    public static func digest(_ value: UInt64) -> String {
        encode((0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * $0)) })
    }
}
