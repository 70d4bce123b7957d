/// An event's identity in its root's G-Set: the replica that recorded it and that replica's
/// counter for the root (1, 2, 3, … with no gaps).
public struct Dot: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let origin: String
    public let seq: UInt64

    public init(origin: String, seq: UInt64) {
        self.origin = origin
        self.seq = seq
    }

    public static func < (lhs: Dot, rhs: Dot) -> Bool {
        (lhs.origin, lhs.seq) < (rhs.origin, rhs.seq)
    }

    public var description: String { "\(origin):\(seq)" }
}
