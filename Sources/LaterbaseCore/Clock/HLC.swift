/// A hybrid logical clock reading: high 48 bits milliseconds since the Unix epoch, low 16 bits a
/// logical counter. On the wire it is exactly 16 lowercase hex digits, so text order is clock order.
public struct HLC: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The packed 64-bit value.
    public let rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// A reading from its parts. `counter` must fit in 16 bits.
    public init(milliseconds: UInt64, counter: UInt16) {
        rawValue = milliseconds << 16 | UInt64(counter)
    }

    /// Milliseconds since the Unix epoch.
    public var milliseconds: UInt64 { rawValue >> 16 }
    /// The logical counter.
    public var counter: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    public static func < (lhs: HLC, rhs: HLC) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The 16-hex-digit wire form.
    public var description: String {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        appendHex(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the 16-hex-digit wire form.
    public func appendHex(to out: inout [UInt8]) {
        out.append(count: 16) { $0.hex(rawValue, digits: 16) }
    }

    /// Parses exactly 16 lowercase hex digits.
    public init?(wire text: String) {
        var text = text
        guard let hlc = text.withUTF8({ HLC(wire: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = hlc
    }

    /// ``init(wire:)`` over UTF-8 bytes.
    init?(wire utf8: UnsafeRawBufferPointer) {
        guard utf8.count == 16 else { return nil }
        var v: UInt64 = 0
        for b in utf8 {
            guard let d = Hex.value(b) else { return nil }
            v = v << 4 | UInt64(d)
        }
        rawValue = v
    }
}
