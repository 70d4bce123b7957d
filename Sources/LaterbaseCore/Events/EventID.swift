/// An event id: a UUID of any version, kept as two big-endian halves (no allocation).
public struct EventID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The first and last 8 bytes, most significant first.
    public let high: UInt64
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// From 16 bytes, most significant first.
    public init(bytes: some Collection<UInt8>) {
        precondition(bytes.count == 16)
        var h: UInt64 = 0, l: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { h = h << 8 | UInt64(b) } else { l = l << 8 | UInt64(b) }
        }
        self.init(high: h, low: l)
    }

    /// The 16 bytes, most significant first.
    public var bytes: [UInt8] {
        .written(count: 16) { $0.id(self) }
    }

    /// Parses the canonical text form (8-4-4-4-12 hex digits, either case).
    public init?(_ text: String) {
        var text = text
        guard let parsed = text.withUTF8({ Self.parse(UnsafeRawBufferPointer($0)) }) else { return nil }
        self = parsed
    }

    /// Parses the canonical text form from its UTF-8 bytes (one pass over contiguous bytes: a
    /// feed page or delta names thousands of ids).
    static func parse(_ u: UnsafeRawBufferPointer) -> EventID? {
        guard u.count == 36 else { return nil }
        var h: UInt64 = 0, l: UInt64 = 0, n = 0
        for i in 0..<36 {
            let b = u[i]
            if i == 8 || i == 13 || i == 18 || i == 23 {
                guard b == 0x2D else { return nil }
                continue
            }
            guard let d = Hex.value(b, uppercase: true) else { return nil }
            let v = UInt64(d)
            if n < 16 { h = h << 4 | v } else { l = l << 4 | v }
            n += 1
        }
        return EventID(high: h, low: l)
    }

    /// A new UUID v7: 48 bits of milliseconds, then random bits, so ids made in order sort in order.
    public static func v7(milliseconds: UInt64, using random: inout some RandomNumberGenerator) -> EventID {
        v7(milliseconds: milliseconds, randA: random.next(), using: &random)
    }

    /// A new UUID v7 for an event recorded at `hlc`: its milliseconds, then the low 12 bits of
    /// its counter where v7 has random bits (RFC 9562's counter method), so ids the writer makes
    /// sort in hlc order (unless over 4,096 share a millisecond) and are appended to the id index.
    static func v7(_ hlc: HLC, using random: inout some RandomNumberGenerator) -> EventID {
        v7(milliseconds: hlc.milliseconds, randA: hlc.rawValue, using: &random)
    }

    /// The v7 layout: milliseconds, version, the low 12 bits of `randA`, variant, random bits.
    private static func v7(milliseconds: UInt64, randA: UInt64, using random: inout some RandomNumberGenerator) -> EventID {
        let high = (milliseconds & 0xFFFF_FFFF_FFFF) << 16 | 0x7000 | (randA & 0x0FFF)
        let low = 0x8000_0000_0000_0000 | (random.next() & 0x3FFF_FFFF_FFFF_FFFF)
        return EventID(high: high, low: low)
    }

    /// A new UUID v7 from the system's random source.
    public static func v7(milliseconds: UInt64) -> EventID {
        var random = SystemRandomNumberGenerator()
        return v7(milliseconds: milliseconds, using: &random)
    }

    public static func < (lhs: EventID, rhs: EventID) -> Bool { (lhs.high, lhs.low) < (rhs.high, rhs.low) }

    /// Appends the canonical lowercase text form.
    public func append(to out: inout [UInt8]) {
        Self.appendHex(high, low, to: &out)
    }

    /// Appends the canonical form of the UUID whose halves are given.
    static func appendHex(_ high: UInt64, _ low: UInt64, to out: inout [UInt8]) {
        out.append(count: 36) { w in
            w.hex(high >> 32, digits: 8)
            w.u8(0x2D)
            w.hex(high >> 16, digits: 4)
            w.u8(0x2D)
            w.hex(high, digits: 4)
            w.u8(0x2D)
            w.hex(low >> 48, digits: 4)
            w.u8(0x2D)
            w.hex(low, digits: 12)
        }
    }

    public var description: String {
        var out: [UInt8] = []
        out.reserveCapacity(36)
        append(to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// xoshiro256**, seeded from the system: fast random bits for ids on the writer's hot path.
struct FastRandom: RandomNumberGenerator {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    init() {
        var system = SystemRandomNumberGenerator()
        s = (system.next(), system.next(), system.next(), system.next() | 1)
    }

    mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
