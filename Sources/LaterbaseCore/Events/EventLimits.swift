/// The limits every way in checks before anything is stored (contract v3, "Whatever a node
/// accepts, every transport carries"): an event's recorded form and its data's nesting. Both are
/// of the event alone, so a page, a delta or a push that carries it counts the same.
extension EventInput {
    /// How deep `data` may nest: far below the JSON reader's own limit counted from any
    /// envelope (a page's is three levels), so every transport reads what was accepted.
    public static let maxDataDepth = 64

    /// An upper bound of the event's recorded JSON form as served: its data as stored, its
    /// aggregate id escaped, its type, and the rest at their widest (a 64-byte origin, a
    /// 20-digit seq).
    public var recordedBytes: Int {
        // An aggregate id escapes to at most twice its bytes (it holds no control characters).
        dataBytes.count + 2 * aggregate.utf8.count + type.utf8.count + Self.recordedEnvelopeBytes
    }

    /// Everything of a recorded event but its data, aggregate and type, at its widest.
    static let recordedEnvelopeBytes = 256

    /// Whether `data` nests at most ``maxDataDepth`` levels. Most data opens fewer brackets than
    /// that in all, which one quick count shows (this runs for every event of every way in);
    /// only other data is walked, strings skipped.
    public var dataDepthIsWithinLimit: Bool {
        let opens = dataBytes.withUnsafeBytes { b in
            var n = 0
            for byte in b { n &+= byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") ? 1 : 0 }
            return n
        }
        return opens <= Self.maxDataDepth || dataDepth <= Self.maxDataDepth
    }

    /// How deep `data` nests: 0 for a scalar, 1 for `{}` or `[]`, one more for each level
    /// inside. One pass over its bytes, strings skipped.
    public var dataDepth: Int {
        var depth = 0, deepest = 0, inString = false, escaped = false
        for b in dataBytes {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                deepest = max(deepest, depth)
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            default: break
            }
        }
        return deepest
    }
}
