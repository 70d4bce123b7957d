/// A node's position in one root (contract v3, "Positions"): every event the node stores in the
/// root is numbered, in commit order, 1, 2, 3, …; a position is the number of the last event
/// stored at it (0: before the first). Local to the node that issued it: its size does not grow
/// with the number of origins.
///
/// On the wire an opaque token, `<epoch>:<n>`: the store's epoch as 16 lowercase hex digits
/// (random, made when the store is created and again by every restore, so it names the node and
/// the epoch at once) and the position in decimal; at most 37 bytes.
public struct Position: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The epoch of the store that issued it.
    public let epoch: UInt64
    /// Events stored in the root up to it.
    public let value: UInt64

    public init(epoch: UInt64, value: UInt64) {
        self.epoch = epoch
        self.value = value
    }

    /// The token.
    public var description: String {
        var out: [UInt8] = []
        out.reserveCapacity(37)
        out.append(count: 16) { $0.hex(epoch, digits: 16) }
        out.append(UInt8(ascii: ":"))
        out.append(contentsOf: String(value).utf8)
        return String(decoding: out, as: UTF8.self)
    }

    /// Reads a token; nil when it is not one of this form (the caller answers 400). Whether this
    /// node issued it is the store's question (410 when not).
    public init?(token: String) {
        let bytes = Array(token.utf8)
        guard bytes.count >= 18, bytes.count <= 64, bytes[16] == UInt8(ascii: ":") else { return nil }
        var epoch: UInt64 = 0
        for b in bytes[..<16] {
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            default: return nil
            }
            epoch = epoch << 4 | UInt64(digit)
        }
        let rest = bytes[17...]
        guard !rest.isEmpty, rest.count <= 20, rest.count == 1 || rest.first != UInt8(ascii: "0"),
              rest.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let value = UInt64(String(decoding: rest, as: UTF8.self))
        else { return nil }
        self.init(epoch: epoch, value: value)
    }

    public static func < (a: Position, b: Position) -> Bool { (a.epoch, a.value) < (b.epoch, b.value) }
}
